//! The default config.json, as `runc spec` writes it: a typed [`Spec`] made with oci-spec's
//! builders ([`runc_spec`], [`runc_rootless_spec`]), the baseline of
//! [`crate::describe::Baseline::Runc`]. [`default_spec`] and [`rootless_spec`] give the same
//! as JSON values, for the callers that write a `config.json`.

use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilities, LinuxCapabilitiesBuilder,
    LinuxDeviceCgroupBuilder, LinuxIdMappingBuilder, LinuxNamespace, LinuxNamespaceBuilder,
    LinuxNamespaceType, LinuxResourcesBuilder, Mount, MountBuilder, PosixRlimitBuilder,
    PosixRlimitType, ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};
use serde_json::Value;

use crate::config::OCI_VERSION;
use crate::describe::built;
use crate::Result;

/// `PATH` of a container whose config sets none.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `runc spec`'s capabilities.
pub const RUNC_CAPS: &[&str] = &["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

/// `runc spec`'s masked paths.
pub const RUNC_MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
];

/// `runc spec`'s read-only paths.
pub const RUNC_READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The oci-spec capability of a name (`CAP_` prefix optional, any case).
pub fn capability(name: &str) -> Option<Capability> {
    let n = crate::names::cap_number(name)?;
    let full = crate::names::CAPS[n as usize];
    full.strip_prefix("CAP_")?.parse().ok()
}

/// A capability set of `names` in bounding, effective and permitted (and ambient when
/// `ambient`); no inheritable set. Unknown names are refused by name.
pub fn capabilities(names: &[impl AsRef<str>], ambient: bool) -> Result<LinuxCapabilities> {
    let mut set = oci_spec::runtime::Capabilities::new();
    for n in names {
        let n = n.as_ref();
        set.insert(capability(n).ok_or_else(|| crate::Error::Config {
            field: "process.capabilities".into(),
            reason: format!("{n:?}: unknown capability"),
        })?);
    }
    let mut b = LinuxCapabilitiesBuilder::default()
        .bounding(set.clone())
        .effective(set.clone())
        .permitted(set.clone());
    if ambient {
        b = b.ambient(set);
    }
    let mut c = b.build().map_err(built("process.capabilities"))?;
    // The builder's unset sets are oci-spec's defaults: clear what was not asked for.
    c.set_inheritable(None);
    if !ambient {
        c.set_ambient(None);
    }
    Ok(c)
}

/// A mount of `kind` from `source` at `destination` with `options`.
pub fn mount(destination: &str, kind: &str, source: &str, options: &[&str]) -> Result<Mount> {
    let mut b = MountBuilder::default()
        .destination(destination)
        .typ(kind)
        .source(source);
    if !options.is_empty() {
        b = b.options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>());
    }
    b.build().map_err(built("mounts"))
}

fn namespace(t: LinuxNamespaceType) -> Result<LinuxNamespace> {
    LinuxNamespaceBuilder::default()
        .typ(t)
        .build()
        .map_err(built("linux.namespaces"))
}

/// The default spec: mount, pid, network, ipc, uts and cgroup namespaces; the standard
/// mounts; masked and read-only paths; the default capabilities; `sh` on a terminal in
/// `rootfs`.
pub fn runc_spec() -> Result<Spec> {
    let process = ProcessBuilder::default()
        .terminal(true)
        .user(
            UserBuilder::default()
                .uid(0u32)
                .gid(0u32)
                .build()
                .map_err(built("process.user"))?,
        )
        .args(vec!["sh".to_string()])
        .env(vec![DEFAULT_PATH.to_string(), "TERM=xterm".to_string()])
        .cwd("/")
        .capabilities(capabilities(RUNC_CAPS, true)?)
        .rlimits(vec![PosixRlimitBuilder::default()
            .typ(PosixRlimitType::RlimitNofile)
            .hard(1024u64)
            .soft(1024u64)
            .build()
            .map_err(built("process.rlimits"))?])
        .no_new_privileges(true)
        .build()
        .map_err(built("process"))?;
    let mounts = vec![
        mount("/proc", "proc", "proc", &[])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        )?,
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        )?,
    ];
    let deny_all = LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .access("rwm")
        .build()
        .map_err(built("linux.resources.devices"))?;
    let resources = LinuxResourcesBuilder::default()
        .devices(vec![deny_all])
        .build()
        .map_err(built("linux.resources"))?;
    let mut namespaces = Vec::new();
    for t in [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Cgroup,
    ] {
        namespaces.push(namespace(t)?);
    }
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let linux = LinuxBuilder::default()
        .resources(resources)
        .namespaces(namespaces)
        .masked_paths(strings(RUNC_MASKED_PATHS))
        .readonly_paths(strings(RUNC_READONLY_PATHS))
        .build()
        .map_err(built("linux"))?;
    let mut spec = SpecBuilder::default()
        .version(OCI_VERSION)
        .process(process)
        .root(
            RootBuilder::default()
                .path("rootfs")
                .readonly(true)
                .build()
                .map_err(built("root"))?,
        )
        .hostname("corral")
        .mounts(mounts)
        .linux(linux)
        .build()
        .map_err(built("spec"))?;
    spec.set_annotations(None);
    Ok(spec)
}

/// The default spec for a container run by the non-root user `uid`/`gid`: a user namespace
/// mapping them to root, no network or cgroup namespace, and no cgroup limits (as `runc
/// spec --rootless`).
pub fn runc_rootless_spec(uid: u32, gid: u32) -> Result<Spec> {
    let mut s = runc_spec()?;
    let map = |host: u32| {
        LinuxIdMappingBuilder::default()
            .container_id(0u32)
            .host_id(host)
            .size(1u32)
            .build()
            .map_err(built("linux.uidMappings"))
    };
    let (um, gm) = (map(uid)?, map(gid)?);
    if let Some(l) = s.linux_mut() {
        if let Some(ns) = l.namespaces_mut() {
            ns.retain(|n| {
                !matches!(
                    n.typ(),
                    LinuxNamespaceType::Network | LinuxNamespaceType::Cgroup
                )
            });
            ns.push(namespace(LinuxNamespaceType::User)?);
        }
        l.set_uid_mappings(Some(vec![um]));
        l.set_gid_mappings(Some(vec![gm]));
        l.set_resources(None);
    }
    if let Some(ms) = s.mounts_mut() {
        // No gid 5 in a single-id map: devpts would refuse gid=5.
        drop_option(ms, "/dev/pts", "gid=5");
        for m in ms.iter_mut() {
            if m.destination().as_os_str() == "/sys" {
                *m = sys_bind()?;
            }
        }
    }
    Ok(s)
}

/// `/sys` bound from the host (sysfs cannot be mounted fresh without a network namespace of
/// one's own).
pub(crate) fn sys_bind() -> Result<Mount> {
    mount(
        "/sys",
        "none",
        "/sys",
        &["rbind", "nosuid", "noexec", "nodev", "ro"],
    )
}

/// Removes `option` from the mount at `destination`.
pub(crate) fn drop_option(mounts: &mut [Mount], destination: &str, option: &str) {
    for m in mounts.iter_mut() {
        if m.destination().as_os_str() == destination {
            if let Some(o) = m.options_mut() {
                o.retain(|x| x != option);
            }
        }
    }
}

/// [`runc_spec`] as a JSON value (`corral spec`, tests that write a `config.json`).
pub fn default_spec() -> Value {
    runc_spec()
        .ok()
        .and_then(|s| serde_json::to_value(s).ok())
        .unwrap_or_default()
}

/// [`runc_rootless_spec`] as a JSON value.
pub fn rootless_spec(uid: u32, gid: u32) -> Value {
    runc_rootless_spec(uid, gid)
        .ok()
        .and_then(|s| serde_json::to_value(s).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_spec_parses() {
        let text = serde_json::to_string_pretty(&default_spec()).unwrap();
        crate::config::parse(std::path::Path::new("config.json"), &text).unwrap();
        let text = serde_json::to_string_pretty(&rootless_spec(1000, 1000)).unwrap();
        crate::config::parse(std::path::Path::new("config.json"), &text).unwrap();
    }

    #[test]
    fn every_capability_name_is_an_oci_spec_capability() {
        for n in crate::names::CAPS {
            let c = capability(n).unwrap_or_else(|| panic!("{n}"));
            assert_eq!(format!("CAP_{c}"), n);
        }
        assert!(capability("CAP_NOPE").is_none());
    }

    #[test]
    fn the_typed_default_is_runc_specs() {
        let v = default_spec();
        assert_eq!(v["process"]["capabilities"].get("inheritable"), None);
        assert_eq!(
            v["process"]["capabilities"]["ambient"]
                .as_array()
                .unwrap()
                .len(),
            3
        );
        assert!(v.get("annotations").is_none(), "{v}");
        assert_eq!(v["linux"]["namespaces"].as_array().unwrap().len(), 6);
        assert_eq!(v["mounts"].as_array().unwrap().len(), 7);
        assert_eq!(v["linux"]["resources"]["devices"][0]["allow"], false);
        let r = rootless_spec(1000, 1001);
        assert!(r["linux"].get("resources").is_none());
        assert_eq!(r["linux"]["gidMappings"][0]["hostID"], 1001);
        assert_eq!(r["mounts"][5]["type"], "none");
    }
}

//! `corral features` (the OCI features document) and `corral spec`.
//!
//! The document is an `oci_spec::runtime::Features` built from the tables the parsers use:
//! each seccomp action, operator and flag that oci-spec can carry is listed when
//! `runtime::filter::policy` (the parser of `linux.seccomp`) takes it; the architectures
//! are the seccomp crate's; the namespaces `runtime::describe::Namespace::ALL`; the
//! capabilities `runtime::names::CAPS`; the hooks `runtime::hooks::HOOKS`; the mount options
//! `runtime::prepare::MOUNT_OPTIONS`, the names of the option table its parser works from (a
//! test feeds each through a real container).

use std::collections::HashMap;
use std::io::Write as _;
use std::path::Path;

use oci_spec::runtime::{
    ApparmorBuilder, Arch, CgroupBuilder, Features, FeaturesBuilder, IDMapBuilder, IntelRdtBuilder,
    LinuxFeatureBuilder, LinuxNamespaceType, LinuxSeccomp, LinuxSeccompAction as Act,
    LinuxSeccompArgBuilder, LinuxSeccompBuilder, LinuxSeccompFilterFlag as Flag,
    LinuxSeccompOperator as Op, LinuxSyscallBuilder, MountExtensionsBuilder, SeccompBuilder,
    SelinuxBuilder,
};

use crate::error::{msg, R};

/// Every variant of an oci-spec enum, as an array; does not build when oci-spec gains one
/// (the match has no wildcard), so that a new name cannot go unlisted.
macro_rules! every {
    ($t:ident: $($v:ident),+) => {{
        #[allow(dead_code)]
        fn exhaustive(x: $t) {
            match x { $($t::$v)|+ => {} }
        }
        [$($t::$v),+]
    }};
}

/// Whether the parser of `linux.seccomp` takes this section.
fn seccomp_takes(s: Option<LinuxSeccomp>) -> bool {
    s.is_some_and(|s| runtime::filter::policy(&s).is_ok())
}

/// A seccomp section with `default` as its default action, a listener (for
/// `SCMP_ACT_NOTIFY`) and `edit` applied to its builder.
fn seccomp_with(
    default: Act,
    edit: impl FnOnce(LinuxSeccompBuilder) -> LinuxSeccompBuilder,
) -> Option<LinuxSeccomp> {
    edit(
        LinuxSeccompBuilder::default()
            .default_action(default)
            .listener_path("/run/listener"),
    )
    .build()
    .ok()
}

/// The seccomp names the parser takes, as the features document lists them.
fn seccomp_names() -> (Vec<Act>, Vec<String>, Vec<Arch>, Vec<String>) {
    let actions = every!(Act: ScmpActAllow, ScmpActErrno, ScmpActKill, ScmpActKillProcess,
        ScmpActKillThread, ScmpActLog, ScmpActNotify, ScmpActTrace, ScmpActTrap)
    .into_iter()
    .filter(|a| seccomp_takes(seccomp_with(*a, |b| b)))
    .collect();
    let operators = every!(Op: ScmpCmpEq, ScmpCmpGe, ScmpCmpGt, ScmpCmpLe, ScmpCmpLt,
        ScmpCmpMaskedEq, ScmpCmpNe)
    .into_iter()
    .filter(|o| {
        let rule = LinuxSeccompArgBuilder::default()
            .index(0usize)
            .value(0u64)
            .op(*o)
            .build()
            .and_then(|arg| {
                LinuxSyscallBuilder::default()
                    .names(vec!["getpid".to_string()])
                    .action(Act::ScmpActErrno)
                    .args(vec![arg])
                    .build()
            });
        rule.is_ok_and(|r| seccomp_takes(seccomp_with(Act::ScmpActAllow, |b| b.syscalls(vec![r]))))
    })
    .map(|o| o.to_string())
    .collect();
    let archs = seccomp::Arch::ALL
        .iter()
        .filter_map(|a| a.oci_name().parse::<Arch>().ok())
        .collect();
    let flags = every!(Flag: SeccompFilterFlagLog, SeccompFilterFlagSpecAllow,
        SeccompFilterFlagTsync)
    .into_iter()
    .filter(|f| seccomp_takes(seccomp_with(Act::ScmpActAllow, |b| b.flags(vec![*f]))))
    .map(|f| f.to_string())
    .collect();
    (actions, operators, archs, flags)
}

/// The mount options `runtime::prepare` takes as its own (its option table), sorted.
fn mount_options() -> Vec<String> {
    let mut v: Vec<String> = runtime::prepare::MOUNT_OPTIONS
        .iter()
        .map(|o| o.to_string())
        .collect();
    v.sort();
    v.dedup();
    v
}

/// The OCI features document: what this build and this host really do.
pub fn features() -> R<Features> {
    let hier = cgroup::Hierarchy::detect().ok();
    let security = runtime::Security::detect();
    let (v1, v2) = match hier.as_ref().map(|h| h.version()) {
        Some(cgroup::Version::V1) => (true, false),
        Some(cgroup::Version::V2) => (false, true),
        Some(cgroup::Version::Hybrid) => (true, true),
        None => (false, false),
    };
    let (actions, operators, archs, flags) = seccomp_names();
    let mut namespaces: Vec<LinuxNamespaceType> = runtime::describe::Namespace::ALL
        .iter()
        .filter_map(|n| LinuxNamespaceType::try_from(n.oci_name()).ok())
        .collect();
    namespaces.sort_by_key(|n| serde_json::to_string(n).unwrap_or_default());
    let bad = |e: oci_spec::OciSpecError| msg(format!("building the features document: {e}"));
    let linux = LinuxFeatureBuilder::default()
        .namespaces(namespaces)
        .capabilities(runtime::names::CAPS.map(String::from).to_vec())
        .cgroup(
            CgroupBuilder::default()
                .v1(v1)
                .v2(v2)
                .systemd(false)
                .systemd_user(false)
                .rdma(false)
                .build()
                .map_err(bad)?,
        )
        .seccomp(
            SeccompBuilder::default()
                .enabled(true)
                .actions(actions)
                .operators(operators)
                .archs(archs)
                .known_flags(flags.clone())
                .supported_flags(flags)
                .build()
                .map_err(bad)?,
        )
        .apparmor(
            ApparmorBuilder::default()
                .enabled(security.apparmor)
                .build()
                .map_err(bad)?,
        )
        .selinux(
            SelinuxBuilder::default()
                .enabled(security.selinux)
                .build()
                .map_err(bad)?,
        )
        .intel_rdt(
            IntelRdtBuilder::default()
                .enabled(false)
                .build()
                .map_err(bad)?,
        )
        .mount_extensions(
            MountExtensionsBuilder::default()
                .idmap(IDMapBuilder::default().enabled(true).build().map_err(bad)?)
                .build()
                .map_err(bad)?,
        )
        .build()
        .map_err(bad)?;
    FeaturesBuilder::default()
        .oci_version_min("1.0.0")
        .oci_version_max(runtime::OCI_VERSION)
        .hooks(
            runtime::hooks::HOOKS
                .iter()
                .map(|h| h.to_string())
                .collect::<Vec<_>>(),
        )
        .mount_options(mount_options())
        .linux(linux)
        .annotations(HashMap::from([(
            "org.corral.version".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        )]))
        .build()
        .map_err(bad)
}

/// The features document as JSON, without the fields corral does not fill (oci-spec writes
/// them as `null`).
pub fn features_json() -> R<serde_json::Value> {
    let mut v = serde_json::to_value(features()?)
        .map_err(|e| msg(format!("encoding the features document: {e}")))?;
    drop_nulls(&mut v);
    Ok(v)
}

fn drop_nulls(v: &mut serde_json::Value) {
    if let serde_json::Value::Object(m) = v {
        m.retain(|_, x| !x.is_null());
        m.values_mut().for_each(drop_nulls);
    }
}

pub fn spec(bundle: &Path, rootless: bool) -> R {
    let path = bundle.join("config.json");
    if path.exists() {
        return Err(msg(format!("{}: already exists", path.display())));
    }
    let v = if rootless {
        runtime::spec::rootless_spec(
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        )
    } else {
        runtime::default_spec()
    };
    let text = serde_json::to_string_pretty(&v).map_err(|e| msg(format!("encoding spec: {e}")))?;
    std::fs::File::create(&path)
        .and_then(|mut f| writeln!(f, "{text}"))
        .map_err(|e| msg(format!("{}: {e}", path.display())))?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> serde_json::Value {
        features_json().unwrap_or_else(|e| panic!("{e}"))
    }

    fn names(v: &serde_json::Value) -> Vec<String> {
        v.as_array()
            .unwrap_or_else(|| panic!("{v} is not a list"))
            .iter()
            .map(|x| x.as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Engines read these keys: the document keeps them.
    #[test]
    fn keys_are_kept() {
        let f = doc();
        for p in [
            "/ociVersionMin",
            "/ociVersionMax",
            "/hooks",
            "/mountOptions",
            "/linux/namespaces",
            "/linux/capabilities",
            "/linux/cgroup/v1",
            "/linux/cgroup/v2",
            "/linux/cgroup/systemd",
            "/linux/cgroup/systemdUser",
            "/linux/cgroup/rdma",
            "/linux/seccomp/enabled",
            "/linux/seccomp/actions",
            "/linux/seccomp/operators",
            "/linux/seccomp/archs",
            "/linux/seccomp/knownFlags",
            "/linux/seccomp/supportedFlags",
            "/linux/apparmor/enabled",
            "/linux/selinux/enabled",
            "/linux/intelRdt/enabled",
            "/linux/mountExtensions/idmap/enabled",
            "/annotations/org.corral.version",
        ] {
            assert!(f.pointer(p).is_some(), "{p} missing from {f:#}");
        }
        assert!(!f.to_string().contains("null"), "{f:#}");
    }

    /// Each seccomp name listed is taken by the parser of `linux.seccomp`, and every one
    /// the hand-written document listed before is still there (but the flag oci-spec cannot
    /// carry, which a `config.json` could never use).
    #[test]
    fn seccomp_names_are_the_parsers() {
        let f = doc();
        let s = &f["linux"]["seccomp"];
        for a in names(&s["actions"]) {
            let act: Act = a.parse().unwrap_or_else(|_| panic!("{a}"));
            assert!(seccomp_takes(seccomp_with(act, |b| b)), "{a}");
            assert!(seccomp::Action::parse(&a, None).is_ok(), "{a}");
        }
        for o in names(&s["operators"]) {
            assert!(o.parse::<seccomp::Op>().is_ok(), "{o}");
            assert!(o.parse::<Op>().is_ok(), "{o}");
        }
        for a in names(&s["archs"]) {
            assert!(seccomp::Arch::ALL.iter().any(|x| x.oci_name() == a), "{a}");
        }
        for fl in names(&s["knownFlags"]) {
            assert!(fl.parse::<seccomp::Flag>().is_ok(), "{fl}");
            let flag: Flag = fl.parse().unwrap_or_else(|_| panic!("{fl}"));
            assert!(seccomp_takes(
                seccomp_with(Act::ScmpActAllow, |b| b.flags(vec![flag]))
            ));
        }
        let had = |key: &str, old: &str| {
            let now = names(&s[key]);
            for o in old.split_whitespace() {
                assert!(now.iter().any(|n| n == o), "{key}: {o} is gone: {now:?}");
            }
        };
        had(
            "actions",
            "SCMP_ACT_ALLOW SCMP_ACT_ERRNO SCMP_ACT_KILL SCMP_ACT_KILL_PROCESS
            SCMP_ACT_KILL_THREAD SCMP_ACT_LOG SCMP_ACT_NOTIFY SCMP_ACT_TRACE SCMP_ACT_TRAP",
        );
        had(
            "operators",
            "SCMP_CMP_EQ SCMP_CMP_GE SCMP_CMP_GT SCMP_CMP_LE SCMP_CMP_LT
            SCMP_CMP_MASKED_EQ SCMP_CMP_NE",
        );
        had(
            "archs",
            "SCMP_ARCH_AARCH64 SCMP_ARCH_ARM SCMP_ARCH_X32 SCMP_ARCH_X86
            SCMP_ARCH_X86_64",
        );
        had(
            "knownFlags",
            "SECCOMP_FILTER_FLAG_LOG SECCOMP_FILTER_FLAG_SPEC_ALLOW
            SECCOMP_FILTER_FLAG_TSYNC",
        );
    }

    /// Namespaces parse as the description and oci-spec take them; capabilities as the
    /// runtime numbers them; hooks are the six kinds the runtime runs.
    #[test]
    fn namespaces_capabilities_hooks_are_the_parsers() {
        let f = doc();
        let ns = names(&f["linux"]["namespaces"]);
        assert_eq!(
            ns,
            ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"]
        );
        for n in &ns {
            assert!(n.parse::<runtime::describe::Namespace>().is_ok(), "{n}");
            assert!(
                serde_json::from_value::<LinuxNamespaceType>(serde_json::json!(n)).is_ok(),
                "{n}"
            );
        }
        let caps = names(&f["linux"]["capabilities"]);
        assert_eq!(caps.len(), runtime::names::CAPS.len());
        for c in &caps {
            assert!(runtime::names::cap_number(c).is_some(), "{c}");
            assert!(
                serde_json::from_value::<oci_spec::runtime::Capability>(serde_json::json!(c))
                    .is_ok(),
                "{c}"
            );
        }
        let mut hooks = names(&f["hooks"]);
        hooks.sort();
        assert_eq!(
            hooks,
            [
                "createContainer",
                "createRuntime",
                "poststart",
                "poststop",
                "prestart",
                "startContainer"
            ]
        );
    }

    /// The mount options listed before are all still listed, once each, sorted.
    #[test]
    fn mount_options_listed() {
        let opts = names(&doc()["mountOptions"]);
        let mut sorted = opts.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(opts, sorted);
        let old = "async atime bind defaults dev diratime dirsync exec mand noatime nodev
            nodiratime noexec nomand norelatime nostrictatime idmap nosuid private rbind relatime
            remount ridmap ro rprivate rshared rslave runbindable rw shared slave strictatime suid
            sync unbindable";
        for o in old.split_whitespace() {
            assert!(opts.iter().any(|x| x == o), "{o}");
        }
    }
}

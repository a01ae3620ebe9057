//! The security settings of a container: `docker run`'s defaults for an image container
//! ([`crate::describe::Baseline::Docker`]) and what a caller opts out of, named as docker
//! names it (`--privileged`, `--cap-add`/`--cap-drop`, `--security-opt`, `--device`).
//!
//! An image is code its user did not write, so its container gets what `docker run` gives
//! by default: docker's default seccomp profile ([`DOCKER_SECCOMP`]), docker's default
//! capabilities ([`IMAGE_CAPS`]), deny-all device rules plus the standard devices, docker's
//! masked and read-only paths, `noNewPrivileges` false (as docker: setuid programs of the
//! image work; the seccomp profile still refuses new user namespaces and mounts).

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Arch, LinuxDevice, LinuxDeviceBuilder, LinuxDeviceType, LinuxSeccomp, LinuxSeccompAction,
    LinuxSeccompBuilder, LinuxSyscallBuilder,
};

use crate::{Error, Result};

fn invalid(field: &str, reason: String) -> Error {
    Error::Config {
        field: field.into(),
        reason,
    }
}

/// Docker's default capability set, which image users expect (package managers chown,
/// drop to other users, make device-less roots...).
pub const IMAGE_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Docker's default seccomp profile in OCI form (`linux.seccomp`), for amd64 and docker's
/// default capabilities: moby v28.5.2's `profiles/seccomp/default.json` converted as dockerd's
/// `setupSeccomp` does (kernel 6.1). The same file as the seccomp crate's test fixture
/// `seccomp/tests/fixtures/engines/docker-28.json` (see its README for the conversion).
pub const DOCKER_SECCOMP: &str = include_str!("../../data/docker-28-seccomp.json");

/// Docker's masked paths (moby `oci/defaults.go`, v28): a file under /dev/null, a directory
/// under an empty read-only tmpfs.
pub const IMAGE_MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Docker's read-only paths (moby `oci/defaults.go`).
pub const IMAGE_READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Which seccomp filter an image container gets.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Seccomp {
    /// The baseline's: docker's default profile ([`DOCKER_SECCOMP`]) for
    /// [`crate::describe::Baseline::Docker`], none for `Runc` (as `runc spec`).
    #[default]
    Default,
    /// corral's short deny list ([`default_seccomp`]), the library's opt-in filter.
    Minimal,
    /// None (`--security-opt seccomp=unconfined`).
    Unconfined,
    /// This file: a `linux.seccomp` object in OCI form (`--security-opt seccomp=PATH`).
    Profile(PathBuf),
}

/// A host device given to the container (`--device HOST[:CONTAINER][:PERMS]`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeviceMap {
    /// The device node on the host.
    pub host: PathBuf,
    /// Its path in the container (default: the host's).
    pub container: String,
    /// Some of `r`, `w`, `m` (default `rwm`).
    pub perms: String,
}

/// The security settings of a container: its baseline's defaults unless changed, and each
/// change named as docker names it. Every face fills this through [`Security::option`]
/// and friends, so they parse the same words the same way.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Security {
    /// `--privileged`: every capability, no seccomp, no masked or read-only paths, every
    /// host device, /sys and the cgroup mount writable.
    pub privileged: bool,
    /// `--cap-add` (names with or without `CAP_`, any case; `ALL`).
    pub cap_add: Vec<String>,
    /// `--cap-drop` (likewise).
    pub cap_drop: Vec<String>,
    /// `--security-opt seccomp=...`.
    pub seccomp: Seccomp,
    /// `--security-opt no-new-privileges`.
    pub no_new_privileges: bool,
    /// `--device`.
    pub devices: Vec<DeviceMap>,
    /// The AppArmor profile of the process (`process.apparmorProfile`).
    pub apparmor: Option<String>,
    /// The SELinux label of the process (`process.selinuxLabel`).
    pub label: Option<String>,
}

impl Security {
    /// One `--security-opt` word: `seccomp=unconfined`, `seccomp=PATH` (`seccomp:` too, as
    /// older docker), `no-new-privileges[=true|false]`. Anything else (apparmor, label,
    /// systempaths...) is refused by name.
    pub fn option(&mut self, opt: &str) -> Result<()> {
        let (k, v) = match opt.split_once(['=', ':']) {
            Some((k, v)) => (k, Some(v)),
            None => (opt, None),
        };
        match (k, v) {
            ("seccomp", Some("unconfined")) => self.seccomp = Seccomp::Unconfined,
            ("seccomp", Some("default" | "builtin")) => self.seccomp = Seccomp::Default,
            ("seccomp", Some(p)) if !p.is_empty() => {
                self.seccomp = Seccomp::Profile(PathBuf::from(p))
            }
            ("no-new-privileges", None | Some("true")) => self.no_new_privileges = true,
            ("no-new-privileges", Some("false")) => self.no_new_privileges = false,
            _ => {
                return Err(invalid(
                    "linux.seccomp",
                    format!(
                        "--security-opt {opt:?}: want seccomp=unconfined, seccomp=PROFILE.json or \
                     no-new-privileges[=true|false]"
                    ),
                ))
            }
        }
        Ok(())
    }

    /// One `--device HOST[:CONTAINER][:PERMS]`; the host path must be a device node.
    pub fn device(&mut self, spec: &str) -> Result<()> {
        let parts: Vec<&str> = spec.split(':').collect();
        let perms_ok = |p: &str| !p.is_empty() && p.chars().all(|c| "rwm".contains(c));
        let (host, container, perms) = match parts.as_slice() {
            [h] => (*h, *h, "rwm"),
            [h, p] if perms_ok(p) => (*h, *h, *p),
            [h, c] => (*h, *c, "rwm"),
            [h, c, p] => (*h, *c, *p),
            _ => {
                return Err(invalid(
                    "linux.devices",
                    format!("--device {spec:?}: want HOST[:CONTAINER][:PERMS]"),
                ))
            }
        };
        if !perms_ok(perms) {
            return Err(invalid(
                "linux.devices",
                format!(
                    "--device {spec:?}: permissions {perms:?} are not a combination of r, w and m"
                ),
            ));
        }
        if !host.starts_with('/') || !container.starts_with('/') {
            return Err(invalid(
                "linux.devices",
                format!("--device {spec:?}: both paths must be absolute"),
            ));
        }
        let m = std::fs::metadata(host)
            .map_err(|e| invalid("linux.devices", format!("--device {spec:?}: {host}: {e}")))?;
        let ft = m.file_type();
        if !ft.is_char_device() && !ft.is_block_device() {
            return Err(invalid(
                "linux.devices",
                format!("--device {spec:?}: {host} is not a device node"),
            ));
        }
        self.devices.push(DeviceMap {
            host: PathBuf::from(host),
            container: container.to_string(),
            perms: perms.to_string(),
        });
        Ok(())
    }

    /// A `--cap-add` name (checked).
    pub fn cap_add(&mut self, name: &str) -> Result<()> {
        self.cap_add.push(cap_name("--cap-add", name)?);
        Ok(())
    }

    /// A `--cap-drop` name (checked).
    pub fn cap_drop(&mut self, name: &str) -> Result<()> {
        self.cap_drop.push(cap_name("--cap-drop", name)?);
        Ok(())
    }

    /// The capability set, as docker's `TweakCapabilities`: privileged gets all; `--cap-add
    /// ALL` all but the dropped; `--cap-drop ALL` only the added; else the defaults minus the
    /// dropped plus the added.
    pub fn capabilities(&self) -> Result<Vec<String>> {
        self.capabilities_over(IMAGE_CAPS)
    }

    /// [`Security::capabilities`] over the default set `base`.
    pub fn capabilities_over(&self, base: &[&str]) -> Result<Vec<String>> {
        let norm = |v: &[String], flag: &str| -> Result<Vec<String>> {
            v.iter().map(|n| cap_name(flag, n)).collect()
        };
        let (add, drop) = (
            norm(&self.cap_add, "--cap-add")?,
            norm(&self.cap_drop, "--cap-drop")?,
        );
        let all = all_caps();
        let mut caps: Vec<String> = if self.privileged || add.iter().any(|c| c == "ALL") {
            all.into_iter()
                .filter(|c| self.privileged || !drop.contains(c))
                .collect()
        } else if drop.iter().any(|c| c == "ALL") {
            add.clone()
        } else {
            let mut c: Vec<String> = base
                .iter()
                .map(|c| c.to_string())
                .filter(|c| !drop.contains(c))
                .collect();
            c.extend(add.iter().cloned());
            c
        };
        let mut seen = std::collections::HashSet::new();
        caps.retain(|c| seen.insert(c.clone()));
        Ok(caps)
    }
}

/// `CAP_X` from `x`, `X` or `CAP_X`; `ALL` stays `ALL`.
fn cap_name(flag: &str, name: &str) -> Result<String> {
    let up = name.trim().to_ascii_uppercase();
    if up == "ALL" {
        return Ok(up);
    }
    match crate::names::cap_number(&up) {
        Some(n) => Ok(crate::names::CAPS[n as usize].to_string()),
        None => Err(invalid(
            "process.capabilities",
            format!("{flag} {name:?}: unknown capability"),
        )),
    }
}

/// Every capability that can be granted: those the host's kernel knows
/// (`/proc/sys/kernel/cap_last_cap`) that this process holds in its permitted set (a runtime
/// run without some, as in a container, cannot give them; docker's "all" is the kernel's).
fn all_caps() -> Vec<String> {
    let last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .unwrap_or(40);
    let own = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|st| {
            st.lines()
                .find_map(|l| l.strip_prefix("CapPrm:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX);
    crate::names::CAPS
        .iter()
        .enumerate()
        .take(last + 1)
        .filter(|(i, _)| own & (1u64 << i) != 0)
        .map(|(_, c)| c.to_string())
        .collect()
}

/// The seccomp filter `sec` asks for over `baseline` (`None`: no filter).
pub(crate) fn seccomp_of(
    sec: &Security,
    baseline: super::Baseline,
) -> Result<Option<LinuxSeccomp>> {
    let bad = |reason: String| invalid("linux.seccomp", reason);
    Ok(match (&sec.seccomp, sec.privileged, baseline) {
        (Seccomp::Unconfined, _, _) | (Seccomp::Default, true, _) => None,
        (Seccomp::Default, false, super::Baseline::Runc) => None,
        (Seccomp::Default, false, super::Baseline::Docker) => Some(
            serde_json::from_str(DOCKER_SECCOMP)
                .map_err(|e| bad(format!("the built-in seccomp profile: {e}")))?,
        ),
        (Seccomp::Minimal, _, _) => Some(default_seccomp()?),
        (Seccomp::Profile(p), _, _) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| bad(format!("--security-opt seccomp={}: {e}", p.display())))?;
            let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                bad(format!(
                    "--security-opt seccomp={}: not JSON: {e}",
                    p.display()
                ))
            })?;
            if !v.is_object() || v.get("defaultAction").is_none() {
                return Err(bad(format!(
                    "--security-opt seccomp={}: want a linux.seccomp object in OCI form \
                     (with defaultAction)",
                    p.display()
                )));
            }
            Some(serde_json::from_value(v).map_err(|e| {
                bad(format!(
                    "--security-opt seccomp={}: not a linux.seccomp object: {e}",
                    p.display()
                ))
            })?)
        }
    })
}

/// Docker's masked paths on this host: [`IMAGE_MASKED_PATHS`] and, as docker 28, each
/// CPU's `thermal_throttle` directory.
pub(crate) fn docker_masked_paths() -> Vec<String> {
    let mut masked: Vec<String> = IMAGE_MASKED_PATHS.iter().map(|p| p.to_string()).collect();
    if let Ok(rd) = std::fs::read_dir("/sys/devices/system/cpu") {
        let mut cpus: Vec<String> = rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| {
                n.strip_prefix("cpu")
                    .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
            })
            .filter(|n| {
                Path::new("/sys/devices/system/cpu")
                    .join(n)
                    .join("thermal_throttle")
                    .is_dir()
            })
            .collect();
        cpus.sort();
        masked.extend(
            cpus.iter()
                .map(|n| format!("/sys/devices/system/cpu/{n}/thermal_throttle")),
        );
    }
    masked
}

/// The `linux.devices` entry of a host device node `m` at `path` in the container.
pub(crate) fn device_entry(path: &str, m: &std::fs::Metadata) -> Option<LinuxDevice> {
    let ft = m.file_type();
    let kind = if ft.is_char_device() {
        LinuxDeviceType::C
    } else if ft.is_block_device() {
        LinuxDeviceType::B
    } else {
        return None;
    };
    let rdev = m.rdev();
    LinuxDeviceBuilder::default()
        .path(path)
        .typ(kind)
        .major(libc::major(rdev) as i64)
        .minor(libc::minor(rdev) as i64)
        .file_mode(m.mode() & 0o7777)
        .uid(m.uid())
        .gid(m.gid())
        .build()
        .ok()
}

/// The host's device nodes under `dir` (as runc's `HostDevices`, which docker's
/// `--privileged` uses), but not those every container gets anyway or the pseudo-terminal
/// and special filesystems.
pub(crate) fn host_devices(dir: &Path, out: &mut Vec<LinuxDevice>, depth: usize) {
    const SKIP_DIRS: &[&str] = &["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"];
    const OWN: &[&str] = &[
        "/dev/null",
        "/dev/zero",
        "/dev/full",
        "/dev/random",
        "/dev/urandom",
        "/dev/tty",
        "/dev/console",
        "/dev/ptmx",
    ];
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = rd.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let Ok(m) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let name = e.file_name().to_string_lossy().into_owned();
        if m.is_dir() {
            if depth < 4 && !SKIP_DIRS.contains(&name.as_str()) {
                host_devices(&path, out, depth + 1);
            }
            continue;
        }
        let Some(p) = path.to_str() else { continue };
        if OWN.contains(&p) {
            continue;
        }
        if let Some(d) = device_entry(p, &m) {
            out.push(d);
        }
    }
}

/// The default seccomp filter of [`Seccomp::Minimal`]: everything is allowed except the
/// calls a container has no business making, which fail with `EPERM` (Docker's default
/// profile refuses the same ones): loading kernels and modules, rebooting, clocks, swap,
/// accounting and quotas, keyrings, `ptrace` and cross-process memory access, `bpf`,
/// `perf_event_open`, `userfaultfd`, handles by file id, the mount and namespace calls.
pub fn default_seccomp() -> Result<LinuxSeccomp> {
    const DENIED: &[&str] = &[
        "acct",
        "add_key",
        "bpf",
        "clock_adjtime",
        "clock_settime",
        "clock_settime64",
        "create_module",
        "delete_module",
        "finit_module",
        "fsconfig",
        "fsmount",
        "fsopen",
        "fspick",
        "get_kernel_syms",
        "init_module",
        "ioperm",
        "iopl",
        "kcmp",
        "kexec_file_load",
        "kexec_load",
        "keyctl",
        "lookup_dcookie",
        "mount",
        "mount_setattr",
        "move_mount",
        "name_to_handle_at",
        "nfsservctl",
        "open_by_handle_at",
        "open_tree",
        "perf_event_open",
        "pivot_root",
        "process_vm_readv",
        "process_vm_writev",
        "ptrace",
        "query_module",
        "quotactl",
        "quotactl_fd",
        "reboot",
        "request_key",
        "setns",
        "settimeofday",
        "stime",
        "swapoff",
        "swapon",
        "syslog",
        "_sysctl",
        "umount",
        "umount2",
        "unshare",
        "uselib",
        "userfaultfd",
        "ustat",
        "vm86",
        "vm86old",
    ];
    let rule = LinuxSyscallBuilder::default()
        .names(DENIED.iter().map(|n| n.to_string()).collect::<Vec<_>>())
        .action(LinuxSeccompAction::ScmpActErrno)
        .errno_ret(libc::EPERM as u32)
        .build()
        .map_err(super::built("linux.seccomp.syscalls"))?;
    LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActAllow)
        .architectures(vec![
            Arch::ScmpArchX86_64,
            Arch::ScmpArchX86,
            Arch::ScmpArchX32,
            Arch::ScmpArchAarch64,
            Arch::ScmpArchArm,
        ])
        .syscalls(vec![rule])
        .build()
        .map_err(super::built("linux.seccomp"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_as_docker_tweaks_them() {
        let caps = |add: &[&str], drop: &[&str]| {
            let mut s = Security::default();
            for a in add {
                s.cap_add(a).unwrap();
            }
            for d in drop {
                s.cap_drop(d).unwrap();
            }
            s.capabilities().unwrap()
        };
        assert_eq!(caps(&[], &[]), IMAGE_CAPS);
        assert_eq!(
            caps(&["net_bind_service"], &["ALL"]),
            ["CAP_NET_BIND_SERVICE"]
        );
        let c = caps(&["SYS_ADMIN"], &["cap_chown"]);
        assert!(c.contains(&"CAP_SYS_ADMIN".to_string()));
        assert!(!c.contains(&"CAP_CHOWN".to_string()));
        assert_eq!(c.len(), IMAGE_CAPS.len());
        let all = caps(&["all"], &["MKNOD"]);
        assert!(!all.contains(&"CAP_MKNOD".to_string()));
        assert!(Security::default().cap_add("NOPE").is_err());
    }

    #[test]
    fn security_options_and_devices_parse_as_dockers() {
        let mut s = Security::default();
        s.option("seccomp=unconfined").unwrap();
        assert_eq!(s.seccomp, Seccomp::Unconfined);
        s.option("seccomp:/p.json").unwrap();
        assert_eq!(s.seccomp, Seccomp::Profile("/p.json".into()));
        s.option("no-new-privileges").unwrap();
        assert!(s.no_new_privileges);
        s.option("no-new-privileges=false").unwrap();
        assert!(!s.no_new_privileges);
        for bad in [
            "apparmor=x",
            "seccomp=",
            "no-new-privileges=maybe",
            "label=disable",
        ] {
            let e = s.option(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
        s.device("/dev/null").unwrap();
        s.device("/dev/null:r").unwrap();
        s.device("/dev/null:/dev/n2:rw").unwrap();
        let d: Vec<_> = s
            .devices
            .iter()
            .map(|d| (d.container.as_str(), d.perms.as_str()))
            .collect();
        assert_eq!(
            d,
            [("/dev/null", "rwm"), ("/dev/null", "r"), ("/dev/n2", "rw")]
        );
        assert!(s.device("/etc/passwd").is_err());
        assert!(s.device("/dev/null:/dev/x:rwx").is_err());
        assert!(s.device("dev/null").is_err());
    }

    #[test]
    fn the_embedded_profile_is_oci_seccomp() {
        let s = seccomp_of(&Security::default(), super::super::Baseline::Docker)
            .unwrap()
            .unwrap();
        assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert!(
            seccomp_of(&Security::default(), super::super::Baseline::Runc)
                .unwrap()
                .is_none()
        );
        assert!(default_seccomp().unwrap().syscalls().as_ref().unwrap()[0]
            .names()
            .contains(&"ptrace".to_string()));
    }
}

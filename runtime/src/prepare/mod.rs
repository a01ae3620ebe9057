//! Turns an OCI spec into the spawn plan of the `ns` crate: every string, path, flag and
//! number the child needs, checked and converted before the clone.
//!
//! One file per part of the plan: `namespaces`, `mounts` (the root, its mounts and
//! devices) and `process`; this file assembles them ([`plan`], [`exec_plan`]). The rules a
//! spec must keep are checked before, by [`crate::validate`]; what is checked here is what
//! only converting (a NUL byte in a string) or the host (a path, a sysctl) can tell.
#![deny(clippy::undocumented_unsafe_blocks)]

mod mounts;
mod namespaces;
mod process;

pub(crate) use mounts::{mount_options, propagation};
pub use mounts::{refuse_symlinked_mount_points, MOUNT_OPTIONS};
pub use process::{exec_candidates, exec_cpu_affinity, process_of, CpuMask};
pub(crate) use process::{node_mask, personality};

use std::ffi::CString;
use std::path::{Path, PathBuf};

use nix::unistd::{getegid, geteuid};
use ns::{Kind, Plan, Target};
use oci_spec::runtime::Spec;

use crate::{Error, Result};

/// The default PATH when the process env has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A cgroup directory to show inside the container under `/sys/fs/cgroup/<name>`.
#[derive(Debug, Clone)]
pub struct CgroupView {
    /// Sub-directory name (`memory`, `cpu,cpuacct`, `unified`), or "" for a pure v2 host.
    pub name: String,
    pub host_dir: PathBuf,
}

/// Inputs to the plan beyond the spec.
pub struct Inputs<'a> {
    pub spec: &'a Spec,
    pub bundle: &'a Path,
    /// Host path of the root filesystem (root.path, or the mounted overlay).
    pub rootfs: &'a Path,
    pub cgroups: &'a [CgroupView],
    pub cgroup_fd: Option<std::os::fd::OwnedFd>,
    pub no_pivot: bool,
    pub preserve_fds: u32,
    pub stdio: [libc::c_int; 3],
    /// Idmapped-mount mappings by mount index (see `Bundle::mount_idmaps`).
    pub mount_idmaps: &'a [Option<crate::config::MountIdmap>],
    /// The host's security modules.
    pub security: &'a crate::lsm::Security,
}

fn cfg(field: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::Config {
        field: field.into(),
        reason: reason.into(),
    }
}

fn cstr(field: &str, s: impl Into<Vec<u8>>) -> Result<CString> {
    CString::new(s).map_err(|_| cfg(field, "contains a NUL byte"))
}

fn target(field: &str, p: &str) -> Result<Target> {
    Target::new(p).map_err(|e| cfg(field, e.to_string()))
}

/// Builds the plan of a spec that passed [`crate::validate::spec`] (every [`crate::Bundle`]'s
/// has; create checks it again before anything is made).
pub fn plan(inp: Inputs<'_>) -> Result<Plan> {
    let spec = inp.spec;
    let linux = spec.linux().clone().unwrap_or_default();
    let nss = namespaces::of(&linux)?;
    let userns = nss.has(Kind::User);
    let (uid_map, gid_map) = namespaces::id_maps(&linux);
    let hostname = namespaces::uts_name("hostname", spec.hostname())?;
    let domainname = namespaces::uts_name("domainname", spec.domainname())?;
    let sysctls = namespaces::sysctls(&linux)?;
    let time_offsets = namespaces::time_offsets(&linux)?;
    let process = process::of_container(spec, &linux, userns, &inp)?;
    let oom_score_adj = process::oom_score_adj(spec)?;

    // Without a mount namespace (the spec allows sharing the host's), the mounts are made
    // inside the root in the host's namespace and the process is chrooted there (runc).
    let rootfs = Some(mounts::rootfs(
        &inp,
        &linux,
        userns,
        nss.creates(Kind::Net),
        nss.has(Kind::Mount),
    )?);

    // Without privilege, setgroups must be denied before the process may write its own gid
    // map. Any other gid map goes through newgidmap, which leaves setgroups allowed when a
    // range comes from /etc/subgid (and denies it itself for an own-gid-only map): then the
    // child must set the groups, or it keeps the caller's.
    let (euid, egid) = (geteuid().as_raw(), getegid().as_raw());
    let own_gid_only = matches!(gid_map.as_slice(), [m] if m.outside == egid && m.count == 1);
    let deny_setgroups = nss.creates(Kind::User) && euid != 0 && own_gid_only;
    let (cgroup_fd, cgroup_tasks) = self_placement(
        inp.cgroups,
        inp.cgroup_fd,
        process.affinity_initial.is_some(),
    );
    Ok(Plan {
        new_ns: nss.new_ns,
        join_ns: nss.join_ns,
        uid_map,
        gid_map,
        deny_setgroups,
        cgroup_fd,
        cgroup_tasks,
        rootfs,
        hostname,
        domainname,
        sysctls,
        time_offsets,
        oom_score_adj,
        process,
        gate: None,
        close_fds: Vec::new(),
        seccomp: None,
        hook_pause: false,
        keyring: None,
        attr_root: None,
        start_hooks: Vec::new(),
        late_exec: false,
    })
}

/// How the process gets into its cgroups without the parent writing its pid (which, on cgroup
/// v1, waits for an RCU grace period after the machine was idle: see `ns::CgroupTasks`): each
/// v1 hierarchy's `tasks` file opened for the child to join by itself, and a cgroup2 directory
/// (a hybrid host's; a pure v2 one comes as `given`) for `CLONE_INTO_CGROUP`. When one of
/// them cannot be opened, or the process has an initial CPU affinity (set by the parent before
/// the process joins its cpuset), nothing is planned and the caller places it as before.
fn self_placement(
    views: &[CgroupView],
    given: Option<std::os::fd::OwnedFd>,
    initial_affinity: bool,
) -> (Option<std::os::fd::OwnedFd>, Vec<ns::CgroupTasks>) {
    use std::os::unix::fs::OpenOptionsExt;
    if views.is_empty() || initial_affinity {
        return (given, Vec::new());
    }
    let mut tasks = Vec::new();
    let mut v2 = None;
    for v in views {
        let path = v.host_dir.join("tasks");
        match std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
        {
            Ok(f) => tasks.push(ns::CgroupTasks { path, fd: f.into() }),
            // No `tasks`: the cgroup2 directory.
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound && given.is_none() && v2.is_none() =>
            {
                match std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
                    .open(&v.host_dir)
                {
                    Ok(d) => v2 = Some(std::os::fd::OwnedFd::from(d)),
                    Err(_) => return (given, Vec::new()),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && given.is_some() => {}
            Err(_) => return (given, Vec::new()),
        }
    }
    (given.or(v2), tasks)
}

/// The plan of an `exec`: join the namespaces of the container's init process `pid` (those
/// that differ from the caller's), run `p` with the container's root.
pub fn exec_plan(
    pid: i32,
    p: &oci_spec::runtime::Process,
    cgroup_fd: Option<std::os::fd::OwnedFd>,
    preserve_fds: u32,
    stdio: [libc::c_int; 3],
) -> Result<Plan> {
    let (join_ns, userns) = namespaces::exec_joins(pid)?;
    let rootfs = namespaces::exec_root(pid, &join_ns)?;
    let mut process = process_of(p, userns, preserve_fds, stdio)?;
    process.setsid = false;
    Ok(Plan {
        new_ns: Vec::new(),
        join_ns,
        uid_map: Vec::new(),
        gid_map: Vec::new(),
        deny_setgroups: false,
        cgroup_fd,
        cgroup_tasks: Vec::new(),
        rootfs,
        hostname: None,
        domainname: None,
        sysctls: Vec::new(),
        time_offsets: None,
        oom_score_adj: None,
        process,
        gate: None,
        close_fds: Vec::new(),
        seccomp: None,
        hook_pause: false,
        keyring: None,
        attr_root: None,
        start_hooks: Vec::new(),
        late_exec: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_with(security: &crate::lsm::Security, mount_label: &str) -> Result<Plan> {
        let dir = tempfile::tempdir().unwrap();
        let mut spec: serde_json::Value = crate::default_spec();
        spec["root"]["path"] = serde_json::json!(dir.path());
        spec["linux"]["mountLabel"] = serde_json::json!(mount_label);
        let spec: Spec = serde_json::from_value(spec).unwrap();
        plan(Inputs {
            spec: &spec,
            bundle: dir.path(),
            rootfs: dir.path(),
            cgroups: &[],
            cgroup_fd: None,
            no_pivot: false,
            preserve_fds: 0,
            stdio: [-1; 3],
            mount_idmaps: &[],
            security,
        })
    }

    #[test]
    fn mount_label_is_a_context_option_of_the_container_filesystems() {
        let selinux = crate::lsm::Security {
            apparmor: false,
            selinux: true,
            proc_dir: "/proc".into(),
        };
        let label = "system_u:object_r:container_file_t:s0:c1,c2";
        let p = plan_with(&selinux, label).unwrap();
        let ctx = format!("context=\"{label}\"");
        let mut seen = Vec::new();
        for m in &p.rootfs.as_ref().unwrap().mounts {
            let Some(t) = m.fstype.as_ref().map(|t| t.to_string_lossy().into_owned()) else {
                continue;
            };
            let data = m
                .data
                .as_ref()
                .map(|d| d.to_string_lossy().into_owned())
                .unwrap_or_default();
            let want = crate::lsm::takes_mount_label(&t);
            assert_eq!(
                data.contains(&ctx),
                want,
                "{t} at {}: {data}",
                m.target.display()
            );
            seen.push((t, want));
        }
        // The default spec has both kinds: tmpfs and devpts take it, proc and mqueue do not.
        for (t, want) in [
            ("tmpfs", true),
            ("devpts", true),
            ("proc", false),
            ("mqueue", false),
        ] {
            assert!(seen.contains(&(t.to_string(), want)), "{t}: {seen:?}");
        }
        // Without SELinux, the label is ignored (runc's choice): no context option anywhere.
        let p = plan_with(&crate::lsm::Security::none(), label).unwrap();
        for m in &p.rootfs.as_ref().unwrap().mounts {
            let data = m
                .data
                .as_ref()
                .map(|d| d.to_string_lossy().into_owned())
                .unwrap_or_default();
            assert!(!data.contains("context="), "{data}");
        }
        // An empty label is none.
        assert!(plan_with(&crate::lsm::Security::none(), "").is_ok());
    }
}

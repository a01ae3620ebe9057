//! Turns an OCI spec into the spawn plan of the `ns` crate: every string, path, flag and
//! number the child needs, checked and converted before the clone.

use std::collections::HashSet;
use std::ffi::CString;
use std::path::{Path, PathBuf};

use libc::c_ulong;
use ns::{
    CStringArray, Caps, Device, IdMap, JoinNs, Kind, Mount, Plan, Process, Rlimit, Rootfs, Symlink,
    Target,
};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::names::{cap_number, rlimit_number, serde_name};
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

fn ns_kind(t: LinuxNamespaceType) -> Kind {
    match t {
        LinuxNamespaceType::Mount => Kind::Mount,
        LinuxNamespaceType::Cgroup => Kind::Cgroup,
        LinuxNamespaceType::Uts => Kind::Uts,
        LinuxNamespaceType::Ipc => Kind::Ipc,
        LinuxNamespaceType::User => Kind::User,
        LinuxNamespaceType::Pid => Kind::Pid,
        LinuxNamespaceType::Network => Kind::Net,
        LinuxNamespaceType::Time => Kind::Time,
    }
}

/// A proc or sysfs mount whose mount point in the root is a symlink (`/proc -> /tmp/fake`) or
/// anything but a directory is refused by name before anything is made: the mount point must
/// be an ordinary directory (runc's CVE-2019-19921, where procfs was mounted where the symlink
/// pointed). Looked up inside the root without following the last component. The child holds
/// to the same rule when it opens the mount point (`ns::Mount::plain_dir`), so a root changed
/// after this check is refused too.
pub fn refuse_symlinked_mount_points(spec: &Spec, rootfs: &Path) -> Result<()> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let mounts = spec.mounts().clone().unwrap_or_default();
    let mut root: Option<OwnedFd> = None;
    for (i, m) in mounts.iter().enumerate() {
        let typ = m.typ().clone().unwrap_or_default();
        let bind = m
            .options()
            .as_ref()
            .is_some_and(|o| o.iter().any(|o| o == "bind" || o == "rbind"));
        if (typ != "proc" && typ != "sysfs") || bind {
            continue;
        }
        let field = format!("mounts[{i}].destination");
        let dest = m.destination().to_string_lossy().into_owned();
        let rel = dest.trim_start_matches('/');
        if rel.is_empty() {
            continue;
        }
        let root_fd = match &root {
            Some(r) => r.as_raw_fd(),
            None => {
                let f = std::fs::File::open(rootfs)
                    .map_err(|e| cfg("root.path", format!("{}: {e}", rootfs.display())))?;
                root.insert(OwnedFd::from(f)).as_raw_fd()
            }
        };
        let c = std::ffi::CString::new(rel).map_err(|_| cfg(&field, "contains a NUL byte"))?;
        // SAFETY: open_how is plain data; all zeroes is its default.
        let mut how: libc::open_how = unsafe { std::mem::zeroed() };
        how.flags = (libc::O_PATH | libc::O_CLOEXEC | libc::O_NOFOLLOW) as u64;
        how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
        // SAFETY: openat2 with a C string and a properly sized open_how.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                root_fd,
                c.as_ptr(),
                &mut how as *mut libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        } as i32;
        if fd < 0 {
            // Missing (made by the child), or a parent the child will report on.
            continue;
        }
        // SAFETY: a fresh fd owned here.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: fstat into a zeroed struct.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fstat on an owned fd.
        if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } < 0 {
            continue;
        }
        let what = match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => continue,
            libc::S_IFLNK => {
                let mut buf = [0u8; 4096];
                // SAFETY: readlinkat of the symlink an O_PATH fd holds, into a local buffer.
                let n = unsafe {
                    libc::readlinkat(
                        fd.as_raw_fd(),
                        c"".as_ptr(),
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                    )
                };
                let to = buf.get(..n.max(0) as usize).unwrap_or_default();
                format!("a symlink (to {})", String::from_utf8_lossy(to))
            }
            _ => "not a directory".to_string(),
        };
        return Err(cfg(
            field,
            format!(
                "{dest} in the root is {what}: the mount point of a {typ} mount must be an ordinary directory (CVE-2019-19921)"
            ),
        ));
    }
    Ok(())
}

/// Fields corral does not honour yet: refused by name, never silently ignored. Security
/// labels are checked against the host where they are applied (`lsm`).
pub fn refuse_unsupported(spec: &Spec) -> Result<()> {
    if let Some(p) = spec.process() {
        // Not applicable to the init process (the spec's words); checked here, applied to
        // the container's exec'd processes that name none of their own.
        if let Some(a) = p.exec_cpu_affinity() {
            exec_cpu_affinity("process.execCPUAffinity", a)?;
        }
    }
    if let Some(l) = spec.linux() {
        if l.intel_rdt().is_some() {
            let why = if Path::new("/sys/fs/resctrl").exists() {
                "not supported by corral yet"
            } else {
                "this host has no Intel RDT (/sys/fs/resctrl is missing)"
            };
            return Err(cfg("linux.intelRdt", why));
        }
    }
    Ok(())
}

/// Builds the plan.
pub fn plan(inp: Inputs<'_>) -> Result<Plan> {
    let spec = inp.spec;
    refuse_unsupported(spec)?;
    let linux = spec.linux().clone().unwrap_or_default();

    // Namespaces.
    let mut new_ns = Vec::new();
    let mut join_ns: Vec<JoinNs> = Vec::new();
    let mut seen = HashSet::new();
    for (i, n) in linux
        .namespaces()
        .clone()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let kind = ns_kind(n.typ());
        let field = format!("linux.namespaces[{i}]");
        if !seen.insert(kind) {
            return Err(cfg(field, format!("{kind} namespace listed twice")));
        }
        match n.path() {
            // The spec: "This value MUST be an absolute path in the runtime mount namespace";
            // a relative one would resolve against corral's cwd.
            Some(p) if !p.is_absolute() => {
                return Err(cfg(
                    format!("{field}.path"),
                    format!("{} is not an absolute path", p.display()),
                ));
            }
            Some(p) => join_ns.push(
                JoinNs::open(kind, p).map_err(|e| cfg(format!("{field}.path"), e.to_string()))?,
            ),
            None => new_ns.push(kind),
        }
    }
    let has = |k: Kind| seen.contains(&k);
    let creates = |k: Kind| new_ns.contains(&k);
    let userns = has(Kind::User);

    // Id maps.
    let maps = |v: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| -> Vec<IdMap> {
        v.clone()
            .unwrap_or_default()
            .iter()
            .map(|m| IdMap {
                inside: m.container_id(),
                outside: m.host_id(),
                count: m.size(),
            })
            .collect()
    };
    let uid_map = maps(linux.uid_mappings());
    let gid_map = maps(linux.gid_mappings());
    if creates(Kind::User) && (uid_map.is_empty() || gid_map.is_empty()) {
        return Err(cfg(
            "linux.uidMappings",
            "a new user namespace needs linux.uidMappings and linux.gidMappings",
        ));
    }
    if !creates(Kind::User) && (!uid_map.is_empty() || !gid_map.is_empty()) {
        return Err(cfg(
            "linux.uidMappings",
            "id mappings given without a new user namespace",
        ));
    }

    // Hostname, domainname, sysctls, time offsets.
    let hostname = match spec.hostname() {
        Some(h) if !h.is_empty() => {
            if !has(Kind::Uts) {
                return Err(cfg(
                    "hostname",
                    "setting the hostname needs a uts namespace",
                ));
            }
            Some(cstr("hostname", h.as_str())?)
        }
        _ => None,
    };
    let domainname = match spec.domainname() {
        Some(h) if !h.is_empty() => {
            if !has(Kind::Uts) {
                return Err(cfg(
                    "domainname",
                    "setting the domainname needs a uts namespace",
                ));
            }
            Some(cstr("domainname", h.as_str())?)
        }
        _ => None,
    };
    let mut sysctls = Vec::new();
    let mut keys: Vec<_> = linux
        .sysctl()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    keys.sort();
    for (k, v) in keys {
        let field = format!("linux.sysctl.{k}");
        check_sysctl(&k, &new_ns, &join_ns).map_err(|r| cfg(&field, r))?;
        let path = format!("/proc/sys/{}", k.replace('.', "/"));
        if !Path::new(&path).exists() {
            return Err(cfg(
                field,
                format!("unknown sysctl ({path} does not exist)"),
            ));
        }
        sysctls.push((cstr(&field, path)?, cstr(&field, v)?));
    }
    let time_offsets = match linux.time_offsets() {
        Some(map) if !map.is_empty() => {
            if !creates(Kind::Time) {
                return Err(cfg("linux.timeOffsets", "needs a new time namespace"));
            }
            let mut s = String::new();
            for (clock, off) in map {
                if clock != "monotonic" && clock != "boottime" {
                    return Err(cfg(
                        format!("linux.timeOffsets.{clock}"),
                        "unknown clock (monotonic or boottime)",
                    ));
                }
                s.push_str(&format!(
                    "{clock} {} {}\n",
                    off.secs().unwrap_or(0),
                    off.nanosecs().unwrap_or(0)
                ));
            }
            Some(cstr("linux.timeOffsets", s)?)
        }
        _ => None,
    };

    let mut process = process(spec, userns, inp.preserve_fds, inp.stdio)?;
    if let Some(p) = spec.process() {
        process.exec_labels = inp.security.exec_labels(
            "process",
            p.apparmor_profile().as_deref(),
            p.selinux_label().as_deref(),
        )?;
    }
    if let Some(pers) = linux.personality() {
        process.personality = Some(personality(pers)?);
    }
    if let Some(mp) = linux.memory_policy() {
        process.mempolicy = Some(mempolicy(mp)?);
    }
    let oom_score_adj = spec
        .process()
        .as_ref()
        .and_then(|p| p.oom_score_adj())
        .map(|v| {
            if !(-1000..=1000).contains(&v) {
                return Err(cfg(
                    "process.oomScoreAdj",
                    format!("{v} is outside -1000..1000"),
                ));
            }
            cstr("process.oomScoreAdj", v.to_string())
        })
        .transpose()?;

    // Without a mount namespace (the spec allows sharing the host's), the mounts are made
    // inside the root in the host's namespace and the process is chrooted there (runc).
    if !has(Kind::Mount) && userns {
        return Err(cfg(
            "linux.namespaces",
            "a user namespace without a mount namespace: its processes may not mount in the host's mount namespace (add a mount namespace)",
        ));
    }
    let rootfs = Some(rootfs(
        &inp,
        &linux,
        userns,
        creates(Kind::Net),
        has(Kind::Mount),
    )?);

    // Without privilege, setgroups must be denied before the process may write its own gid
    // map. Any other gid map goes through newgidmap, which leaves setgroups allowed when a
    // range comes from /etc/subgid (and denies it itself for an own-gid-only map): then the
    // child must set the groups, or it keeps the caller's.
    // SAFETY: plain getters.
    let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let own_gid_only = matches!(gid_map.as_slice(), [m] if m.outside == egid && m.count == 1);
    let deny_setgroups = creates(Kind::User) && euid != 0 && own_gid_only;
    let (cgroup_fd, cgroup_tasks) = self_placement(
        inp.cgroups,
        inp.cgroup_fd,
        process.affinity_initial.is_some(),
    );
    Ok(Plan {
        new_ns,
        join_ns,
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

/// Only namespaced sysctls may be set, and only in a namespace that is not the host's: one
/// the container creates, or one it joins that is not the runtime's own (a pod's, as runc
/// allows). A namespace that is not listed is the host's, shared.
fn check_sysctl(k: &str, new_ns: &[Kind], join_ns: &[JoinNs]) -> std::result::Result<(), String> {
    const IPC: [&str; 8] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let (kind, name) = if IPC.contains(&k) || k.starts_with("fs.mqueue.") {
        (Kind::Ipc, "ipc")
    } else if k.starts_with("net.") {
        (Kind::Net, "network")
    } else if k == "kernel.hostname" || k == "kernel.domainname" {
        (Kind::Uts, "uts")
    } else {
        return Err("not a namespaced sysctl: it would change the host".into());
    };
    if new_ns.contains(&kind) {
        return Ok(());
    }
    let Some(j) = join_ns.iter().find(|j| j.kind == kind) else {
        return Err(format!(
            "needs a {name} namespace of the container's own: none is listed, so the host's is shared and the sysctl would change it"
        ));
    };
    if is_hosts(kind, j) {
        return Err(format!(
            "the {name} namespace joined from {} is the host's (the runtime's own): the sysctl would change the host",
            j.path.display()
        ));
    }
    Ok(())
}

/// Whether a joined namespace is the runtime's own, or the initial one (when it can be read).
fn is_hosts(kind: Kind, j: &JoinNs) -> bool {
    use std::os::unix::fs::MetadataExt;
    let id = |p: String| std::fs::metadata(p).map(|m| (m.dev(), m.ino())).ok();
    let Some(joined) = id(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&j.fd)
    )) else {
        return false;
    };
    ["self", "1"]
        .iter()
        .any(|p| id(format!("/proc/{p}/ns/{}", kind.proc_name())) == Some(joined))
}

fn process(
    spec: &Spec,
    userns: bool,
    preserve_fds: u32,
    stdio: [libc::c_int; 3],
) -> Result<Process> {
    let p = spec
        .process()
        .as_ref()
        .ok_or_else(|| cfg("process", "missing"))?;
    process_of(p, userns, preserve_fds, stdio)
}

/// The process part of a plan, from an OCI process (the spec's, or `exec`'s).
/// The paths `execve` tries for `arg0`: itself when it holds a `/`, else each directory of
/// the `PATH` in `env` (the default `PATH` when it has none) joined with it, in order.
pub fn exec_candidates(arg0: &str, env: &[String]) -> Result<Vec<CString>> {
    let path_var = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    if arg0.contains('/') {
        return Ok(vec![cstr("process.args[0]", arg0)?]);
    }
    path_var
        .split(':')
        .map(|d| {
            let d = if d.is_empty() { "." } else { d };
            cstr(
                "process.env PATH",
                format!("{}/{arg0}", d.trim_end_matches('/')),
            )
        })
        .collect()
}

pub fn process_of(
    p: &oci_spec::runtime::Process,
    userns: bool,
    preserve_fds: u32,
    stdio: [libc::c_int; 3],
) -> Result<Process> {
    let args = p.args().clone().unwrap_or_default();
    if args.is_empty() || args[0].is_empty() {
        return Err(cfg("process.args", "must not be empty"));
    }
    let env = p.env().clone().unwrap_or_default();
    for (i, e) in env.iter().enumerate() {
        if !e.contains('=') {
            return Err(cfg(
                format!("process.env[{i}]"),
                format!("{e:?} is not KEY=VALUE"),
            ));
        }
    }
    let exec_candidates = exec_candidates(&args[0], &env)?;
    let cwd = p.cwd().to_string_lossy().into_owned();
    if !cwd.starts_with('/') {
        return Err(cfg(
            "process.cwd",
            format!("{cwd:?} is not an absolute path"),
        ));
    }
    let user = p.user();
    let mut rlimits = Vec::new();
    let mut seen = HashSet::new();
    for (i, r) in p.rlimits().clone().unwrap_or_default().iter().enumerate() {
        let name = serde_name(&r.typ());
        let field = format!("process.rlimits[{i}]");
        let resource =
            rlimit_number(&name).ok_or_else(|| cfg(&field, format!("unknown rlimit {name:?}")))?;
        if !seen.insert(resource) {
            return Err(cfg(field, format!("{name} given twice")));
        }
        if r.soft() > r.hard() {
            return Err(cfg(
                field,
                format!(
                    "{name}: soft limit {} above hard limit {}",
                    r.soft(),
                    r.hard()
                ),
            ));
        }
        rlimits.push(Rlimit {
            resource,
            soft: r.soft(),
            hard: r.hard(),
        });
    }
    let caps = match p.capabilities() {
        None => None,
        Some(c) => {
            let set = |field: &str, v: &Option<oci_spec::runtime::Capabilities>| -> Result<u64> {
                let mut bits = 0u64;
                for cap in v.clone().unwrap_or_default() {
                    let name = serde_name(&cap);
                    let n = cap_number(&name).ok_or_else(|| {
                        cfg(
                            format!("process.capabilities.{field}"),
                            format!("unknown capability {name:?}"),
                        )
                    })?;
                    bits |= 1 << n;
                }
                Ok(bits)
            };
            let mut caps = Caps {
                bounding: set("bounding", c.bounding())?,
                effective: set("effective", c.effective())?,
                permitted: set("permitted", c.permitted())?,
                inheritable: set("inheritable", c.inheritable())?,
                ambient: set("ambient", c.ambient())?,
                last_cap: ns::last_cap(),
            };
            // The kernel raises an ambient capability only if it is permitted and
            // inheritable; like runc, leave out the others with a warning.
            let dropped = caps.ambient & !(caps.permitted & caps.inheritable);
            if dropped != 0 {
                tracing::debug!(
                    "process.capabilities.ambient: {dropped:#x} not raised (ambient capabilities must also be permitted and inheritable)"
                );
                caps.ambient &= caps.permitted & caps.inheritable;
            }
            // What we do not hold ourselves we cannot give (the bounding set of this host may
            // lack some, e.g. CAP_SYS_RESOURCE). Name the first such capability.
            let held = held_caps();
            let wanted = caps.permitted | caps.effective | caps.ambient;
            if !userns && wanted & !held != 0 {
                let n = (0..64)
                    .find(|b| wanted & !held & (1 << b) != 0)
                    .unwrap_or(0);
                return Err(cfg(
                    "process.capabilities",
                    format!(
                        "{} is not in this runtime's own permitted set, so it cannot be granted",
                        crate::names::CAPS.get(n).copied().unwrap_or("?")
                    ),
                ));
            }
            Some(caps)
        }
    };
    let umask = user.umask().unwrap_or(0o022);
    Ok(Process {
        argv: CStringArray::new("process.args", args.clone())
            .map_err(|e| cfg("process.args", e.to_string()))?,
        envp: CStringArray::new("process.env", env)
            .map_err(|e| cfg("process.env", e.to_string()))?,
        exec_candidates,
        cwd: cstr("process.cwd", cwd)?,
        uid: user.uid(),
        gid: user.gid(),
        additional_gids: user.additional_gids().clone().unwrap_or_default(),
        umask,
        rlimits,
        no_new_privs: p.no_new_privileges().unwrap_or(false),
        caps,
        preserve_fds,
        setsid: true,
        stdio,
        terminal: p.terminal().unwrap_or(false),
        personality: None,
        sched: p.scheduler().as_ref().map(sched_attr).transpose()?,
        ioprio: p.io_priority().as_ref().map(ioprio).transpose()?,
        mempolicy: None,
        exec_labels: Vec::new(),
        affinity_initial: None,
        affinity_final: None,
    })
}

fn held_caps() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapPrm:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX)
}

/// The mount flags of a propagation name (`rprivate` -> `MS_PRIVATE|MS_REC`), as mount
/// options and `linux.rootfsPropagation` spell them.
fn propagation(name: &str) -> Option<c_ulong> {
    let (base, rec) = match name.strip_prefix('r') {
        Some(b @ ("private" | "shared" | "slave" | "unbindable")) => (b, libc::MS_REC),
        _ => (name, 0),
    };
    let flag = match base {
        "private" => libc::MS_PRIVATE,
        "shared" => libc::MS_SHARED,
        "slave" => libc::MS_SLAVE,
        "unbindable" => libc::MS_UNBINDABLE,
        _ => return None,
    };
    Some(flag | rec)
}

/// Parsed mount options.
struct MountOpts {
    flags: c_ulong,
    clear: c_ulong,
    propagation: c_ulong,
    bind: bool,
    rec: bool,
    idmap: bool,
    data: Vec<String>,
    /// Recursive attributes (`rro`, `rnoexec`, `rnoatime`...): `mount_setattr` set and clear.
    recursive: Option<(u64, u64)>,
}

/// The atime modes of `mount_setattr` (an enum in `MOUNT_ATTR__ATIME`, not bits).
const ATIME_MASK: u64 = libc::MOUNT_ATTR__ATIME;

/// A recursive mount attribute option, as runc lists them: the `MOUNT_ATTR_*` bit and
/// whether the option sets it (`rnoexec`) or clears it (`rexec`). The atime options are
/// [`recursive_atime`].
fn recursive_flag(name: &str) -> Option<(u64, bool)> {
    Some(match name {
        "rro" => (libc::MOUNT_ATTR_RDONLY, true),
        "rrw" => (libc::MOUNT_ATTR_RDONLY, false),
        "rnosuid" => (libc::MOUNT_ATTR_NOSUID, true),
        "rsuid" => (libc::MOUNT_ATTR_NOSUID, false),
        "rnodev" => (libc::MOUNT_ATTR_NODEV, true),
        "rdev" => (libc::MOUNT_ATTR_NODEV, false),
        "rnoexec" => (libc::MOUNT_ATTR_NOEXEC, true),
        "rexec" => (libc::MOUNT_ATTR_NOEXEC, false),
        "rnodiratime" => (libc::MOUNT_ATTR_NODIRATIME, true),
        "rdiratime" => (libc::MOUNT_ATTR_NODIRATIME, false),
        "rnosymfollow" => (libc::MOUNT_ATTR_NOSYMFOLLOW, true),
        "rsymfollow" => (libc::MOUNT_ATTR_NOSYMFOLLOW, false),
        _ => return None,
    })
}

/// The atime mode a recursive atime option selects. The kernel keeps one of three modes per
/// mount, so the options that only undo one (`ratime`, `rnorelatime`, `rnostrictatime`)
/// select the kernel's default, relatime, as `atime`, `norelatime` and `nostrictatime` do
/// with `mount(2)`; the last atime option wins.
fn recursive_atime(name: &str) -> Option<u64> {
    match name {
        "rnoatime" => Some(libc::MOUNT_ATTR_NOATIME),
        "rstrictatime" => Some(libc::MOUNT_ATTR_STRICTATIME),
        "rrelatime" | "ratime" | "rnorelatime" | "rnostrictatime" => {
            Some(libc::MOUNT_ATTR_RELATIME)
        }
        _ => None,
    }
}

fn parse_options(field: &str, opts: &[String]) -> Result<MountOpts> {
    let mut o = MountOpts {
        flags: 0,
        clear: 0,
        propagation: 0,
        bind: false,
        rec: false,
        idmap: false,
        data: Vec::new(),
        recursive: None,
    };
    let mut atime: Option<u64> = None;
    for opt in opts {
        let (set, clear): (c_ulong, c_ulong) = match opt.as_str() {
            "ro" => (libc::MS_RDONLY, 0),
            "rw" => (0, libc::MS_RDONLY),
            "nosuid" => (libc::MS_NOSUID, 0),
            "suid" => (0, libc::MS_NOSUID),
            "nodev" => (libc::MS_NODEV, 0),
            "dev" => (0, libc::MS_NODEV),
            "noexec" => (libc::MS_NOEXEC, 0),
            "exec" => (0, libc::MS_NOEXEC),
            "sync" => (libc::MS_SYNCHRONOUS, 0),
            "async" => (0, libc::MS_SYNCHRONOUS),
            "dirsync" => (libc::MS_DIRSYNC, 0),
            "remount" => (libc::MS_REMOUNT, 0),
            // mount(8)'s: "defaults" sets nothing of its own here (as runc).
            "defaults" => (0, 0),
            "silent" => (libc::MS_SILENT, 0),
            "loud" => (0, libc::MS_SILENT),
            "iversion" => (libc::MS_I_VERSION, 0),
            "noiversion" => (0, libc::MS_I_VERSION),
            "mand" => (libc::MS_MANDLOCK, 0),
            "nomand" => (0, libc::MS_MANDLOCK),
            "atime" => (0, libc::MS_NOATIME),
            "noatime" => (libc::MS_NOATIME, 0),
            "diratime" => (0, libc::MS_NODIRATIME),
            "nodiratime" => (libc::MS_NODIRATIME, 0),
            "relatime" => (libc::MS_RELATIME, 0),
            "norelatime" => (0, libc::MS_RELATIME),
            "strictatime" => (libc::MS_STRICTATIME, 0),
            "nostrictatime" => (0, libc::MS_STRICTATIME),
            "nosymfollow" => (libc::MS_NOSYMFOLLOW, 0),
            "symfollow" => (0, libc::MS_NOSYMFOLLOW),
            "lazytime" => (libc::MS_LAZYTIME, 0),
            "nolazytime" => (0, libc::MS_LAZYTIME),
            "bind" => {
                o.bind = true;
                (0, 0)
            }
            "rbind" => {
                o.bind = true;
                o.rec = true;
                (0, 0)
            }
            p if propagation(p).is_some() => {
                o.propagation = propagation(p).unwrap_or(0);
                (0, 0)
            }
            "idmap" => {
                o.idmap = true;
                (0, 0)
            }
            "ridmap" => {
                o.idmap = true;
                o.rec = true;
                (0, 0)
            }
            r if recursive_flag(r).is_some() => {
                let (attr, on) = recursive_flag(r).unwrap_or((0, false));
                let (mut set, mut clr) = o.recursive.unwrap_or((0, 0));
                if on {
                    set |= attr;
                    clr &= !attr;
                } else {
                    clr |= attr;
                    set &= !attr;
                }
                o.recursive = Some((set, clr));
                (0, 0)
            }
            r if recursive_atime(r).is_some() => {
                atime = recursive_atime(r);
                o.recursive.get_or_insert((0, 0));
                (0, 0)
            }
            "tmpcopyup" => return Err(cfg(field, "option \"tmpcopyup\" is not supported")),
            other => {
                if other.contains(',') {
                    return Err(cfg(field, format!("option {other:?} contains a comma")));
                }
                o.data.push(other.to_string());
                (0, 0)
            }
        };
        o.flags = (o.flags | set) & !clear;
        o.clear |= clear;
    }
    if let (Some(mode), Some((set, clr))) = (atime, o.recursive.as_mut()) {
        // A new atime mode needs the whole atime field in attr_clr (mount_setattr(2)).
        *set = (*set & !ATIME_MASK) | mode;
        *clr |= ATIME_MASK;
    }
    Ok(o)
}

fn rootfs(
    inp: &Inputs<'_>,
    linux: &oci_spec::runtime::Linux,
    userns: bool,
    new_net: bool,
    mount_ns: bool,
) -> Result<Rootfs> {
    let spec = inp.spec;
    let root = inp.rootfs;
    if !root.is_dir() {
        return Err(cfg(
            "root.path",
            format!("{} is not a directory", root.display()),
        ));
    }
    let requested = match linux.rootfs_propagation().as_deref() {
        None | Some("") => None,
        Some(name) => Some(propagation(name).ok_or_else(|| {
            cfg(
                "linux.rootfsPropagation",
                format!("unknown propagation {name:?}"),
            )
        })?),
    };
    let readonly = spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false);
    if !mount_ns {
        // Both would change the host's own mounts: the propagation of the mounts the root
        // sits on, and (a read-only bind of root.path) the host's view of the root.
        if requested.is_some() {
            return Err(cfg(
                "linux.rootfsPropagation",
                "needs a mount namespace of the container's own (without one it would change the host's mounts)",
            ));
        }
        if readonly {
            return Err(cfg(
                "root.readonly",
                "needs a mount namespace of the container's own (without one the read-only bind of root.path would be the host's view of it too)",
            ));
        }
    }
    // `/` first gets a propagation that shares nothing with the host, except for shared
    // values, which keep the host's peer groups (so that a shared bind mount reaches the
    // host, as engines expect of rshared); the root itself gets a shared or unbindable value
    // once it is the root (it cannot before: pivot_root refuses a shared parent, and an
    // unbindable root cannot be bound onto itself). The non-recursive private and slave
    // values are made recursive for `/`: the root's own mount then has the value asked,
    // and no mount copied from the host stays in a peer group of the host.
    let requested = requested.unwrap_or(libc::MS_SLAVE | libc::MS_REC);
    let (propagation, root_propagation) = if requested & libc::MS_SHARED != 0 {
        (requested, requested)
    } else if requested & libc::MS_UNBINDABLE != 0 {
        (libc::MS_SLAVE | libc::MS_REC, requested)
    } else {
        (requested | libc::MS_REC, 0)
    };
    let context = inp.security.mount_context(linux.mount_label().as_deref())?;
    let mut mounts = Vec::new();
    let mut dev_bound = false;
    let mut has_pts = false;
    for (i, m) in spec.mounts().clone().unwrap_or_default().iter().enumerate() {
        let field = format!("mounts[{i}]");
        let dest = m.destination().to_string_lossy().into_owned();
        if dest.is_empty() {
            return Err(cfg(format!("{field}.destination"), "empty"));
        }
        let t = target(&format!("{field}.destination"), &dest)?;
        let opts = parse_options(
            &format!("{field}.options"),
            &m.options().clone().unwrap_or_default(),
        )?;
        let typ = m.typ().clone().unwrap_or_default();
        let bind = opts.bind || typ == "bind";
        if bind && !opts.data.is_empty() {
            // A bind mount takes no filesystem options. Every option that is not a mount
            // flag, a propagation, a recursive attribute or (r)bind/(r)idmap (`mode=755`,
            // `size=1k`, `uid=0`, or any other word) is ignored, as runc and youki ignore it
            // (they pass it as data, which the kernel ignores for MS_BIND): engines send
            // such options. corral does not pass it on at all. A bare word (no `=`) is more
            // likely a mistyped flag (`rrro`, `noxec`) than filesystem data: a warning names
            // it, so the mistake is seen, but the mount is made as runc makes it.
            let (data, words): (Vec<&String>, Vec<&String>) =
                opts.data.iter().partition(|o| o.contains('='));
            if !words.is_empty() {
                tracing::warn!(
                    "{field}.options: {words:?} ignored: not a flag a bind mount knows (a typo?)"
                );
            }
            if !data.is_empty() {
                tracing::debug!(
                    "{field}.options: {data:?} ignored (filesystem data; a bind mount takes none)"
                );
            }
        }
        let recursive_attr = opts.recursive;
        let mut data = opts.data.clone();
        if let Some(c) = &context {
            if !bind && crate::lsm::takes_mount_label(&typ) {
                data.push(c.clone());
            }
        }
        let data = if data.is_empty() {
            None
        } else {
            Some(cstr(&field, data.join(","))?)
        };
        if typ == "cgroup" || typ == "cgroup2" {
            cgroup_mounts(
                &field,
                t,
                &opts,
                inp.cgroups,
                context.as_deref(),
                &mut mounts,
            )?;
            continue;
        }
        if bind {
            let src = m
                .source()
                .clone()
                .ok_or_else(|| cfg(format!("{field}.source"), "a bind mount needs a source"))?;
            let src = if src.is_absolute() {
                src
            } else {
                inp.bundle.join(src)
            };
            let meta = std::fs::metadata(&src)
                .map_err(|e| cfg(format!("{field}.source"), format!("{}: {e}", src.display())))?;
            if dest == "/dev" || dest == "/dev/" {
                dev_bound = true;
            }
            let user_flags = opts.flags & !libc::MS_REMOUNT;
            let idmap = inp.mount_idmaps.get(i).cloned().flatten();
            if opts.idmap && idmap.is_none() {
                return Err(cfg(
                    format!("{field}.options"),
                    "\"idmap\" needs the mount's uidMappings and gidMappings",
                ));
            }
            let detached = match &idmap {
                Some(map) => Some(
                    crate::idmap::detached(&src, opts.rec, user_flags, map)
                        .map_err(|e| cfg(format!("{field}.uidMappings"), e))?,
                ),
                None => None,
            };
            mounts.push(Mount {
                source: Some(cstr(&field, src.to_string_lossy().as_bytes())?),
                target: t,
                fstype: None,
                flags: libc::MS_BIND | if opts.rec { libc::MS_REC } else { 0 },
                data: None,
                remount_flags: if user_flags != 0 && detached.is_none() {
                    Some(user_flags)
                } else {
                    None
                },
                propagation: opts.propagation,
                is_file: !meta.is_dir(),
                detached,
                recursive_attr,
                plain_dir: false,
            });
            continue;
        }
        if typ.is_empty() {
            return Err(cfg(
                format!("{field}.type"),
                "missing (and not a bind mount)",
            ));
        }
        if typ == "devpts" {
            has_pts = true;
        }
        // sysfs can only be mounted by the owner of the network namespace; in a user
        // namespace without its own network namespace, bind the host's /sys instead.
        if typ == "sysfs" && userns && !new_net {
            mounts.push(Mount {
                source: Some(c"/sys".into()),
                target: t,
                fstype: None,
                flags: libc::MS_BIND | libc::MS_REC,
                data: None,
                remount_flags: Some(opts.flags | libc::MS_RDONLY),
                propagation: 0,
                is_file: false,
                detached: None,
                recursive_attr,
                plain_dir: true,
            });
            continue;
        }
        let source = m
            .source()
            .as_ref()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| typ.clone());
        mounts.push(Mount {
            source: Some(cstr(&field, source)?),
            target: t,
            fstype: Some(cstr(&field, typ.as_str())?),
            flags: opts.flags,
            data,
            remount_flags: None,
            propagation: opts.propagation,
            is_file: false,
            detached: None,
            recursive_attr,
            plain_dir: typ == "proc" || typ == "sysfs",
        });
    }

    // Devices: the defaults, then the spec's (a spec device replaces a default of its path).
    let mut devices = Vec::new();
    let mut symlinks = Vec::new();
    if !dev_bound {
        let mut list: Vec<(String, u32, u64, u64, u32, u32, u32)> = vec![
            ("/dev/null".into(), libc::S_IFCHR, 1, 3, 0o666, 0, 0),
            ("/dev/zero".into(), libc::S_IFCHR, 1, 5, 0o666, 0, 0),
            ("/dev/full".into(), libc::S_IFCHR, 1, 7, 0o666, 0, 0),
            ("/dev/random".into(), libc::S_IFCHR, 1, 8, 0o666, 0, 0),
            ("/dev/urandom".into(), libc::S_IFCHR, 1, 9, 0o666, 0, 0),
            ("/dev/tty".into(), libc::S_IFCHR, 5, 0, 0o666, 0, 0),
        ];
        for (i, d) in linux
            .devices()
            .clone()
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let field = format!("linux.devices[{i}]");
            let path = d.path().to_string_lossy().into_owned();
            if !path.starts_with("/dev/") {
                return Err(cfg(
                    format!("{field}.path"),
                    format!("{path:?} is not under /dev"),
                ));
            }
            let kind = match serde_name(&d.typ()).as_str() {
                "c" | "u" => libc::S_IFCHR,
                "b" => libc::S_IFBLK,
                "p" => libc::S_IFIFO,
                other => {
                    return Err(cfg(
                        format!("{field}.type"),
                        format!("{other:?} is not c, u, b or p"),
                    ))
                }
            };
            let perm = d.file_mode().unwrap_or(0o666) & 0o7777;
            let entry = (
                path.clone(),
                kind,
                d.major() as u64,
                d.minor() as u64,
                perm,
                d.uid().unwrap_or(0),
                d.gid().unwrap_or(0),
            );
            list.retain(|x| x.0 != path);
            list.push(entry);
        }
        for (i, (path, kind, major, minor, perm, uid, gid)) in list.into_iter().enumerate() {
            let field = format!("linux.devices[{i}]");
            devices.push(Device {
                target: target(&field, &path)?,
                mode: kind | perm,
                major,
                minor,
                uid,
                gid,
                host_path: cstr(&field, path.as_str())?,
            });
        }
        let mut links = vec![
            ("/proc/self/fd", "/dev/fd"),
            ("/proc/self/fd/0", "/dev/stdin"),
            ("/proc/self/fd/1", "/dev/stdout"),
            ("/proc/self/fd/2", "/dev/stderr"),
        ];
        if has_pts {
            links.push(("pts/ptmx", "/dev/ptmx"));
        }
        for (to, link) in links {
            symlinks.push(Symlink {
                target: cstr("symlink", to)?,
                link: target("symlink", link)?,
            });
        }
    }
    // The spec says these values MUST be absolute: a rule for whoever writes the config. A
    // relative entry is taken as relative to the container's "/" (it is resolved inside the
    // root either way, and ".." is refused), as runc and youki take it and conformance
    // suites expect: refusing it would only break configs that run elsewhere.
    let paths = |field: &str, v: &Option<Vec<String>>| -> Result<Vec<Target>> {
        v.clone()
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, p)| target(&format!("{field}[{i}]"), p))
            .collect()
    };
    Ok(Rootfs {
        path: cstr("root.path", root.to_string_lossy().as_bytes())?,
        mount_ns,
        propagation,
        root_propagation,
        mounts,
        devices,
        bind_devices: userns,
        symlinks,
        masked: paths("linux.maskedPaths", linux.masked_paths())?,
        readonly_paths: paths("linux.readonlyPaths", linux.readonly_paths())?,
        readonly,
        no_pivot: inp.no_pivot,
        private_parent: if mount_ns && propagation & libc::MS_SHARED != 0 {
            let canon = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
            match mount_point_of(&canon) {
                Some(m) => Some(cstr("root.path", m.as_os_str().as_encoded_bytes())?),
                None => None,
            }
        } else {
            None
        },
    })
}

/// The mount point of the mount that holds `path` (the last, topmost, of the longest match
/// in this process's mountinfo).
fn mount_point_of(path: &Path) -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut best: Option<PathBuf> = None;
    for line in info.lines() {
        let Some(mp) = line.split(' ').nth(4) else {
            continue;
        };
        let mp = PathBuf::from(unescape_mountinfo(mp));
        if path.starts_with(&mp)
            && best
                .as_ref()
                .is_none_or(|b| mp.components().count() >= b.components().count())
        {
            best = Some(mp);
        }
    }
    best
}

/// Undoes mountinfo's octal escapes (`\040` for a space, ...).
pub(crate) fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The cgroup mount: on v1 and hybrid hosts a tmpfs with each hierarchy's container cgroup
/// bound under it; on a pure v2 host the container's cgroup bound at the destination.
fn cgroup_mounts(
    field: &str,
    t: Target,
    opts: &MountOpts,
    views: &[CgroupView],
    context: Option<&str>,
    out: &mut Vec<Mount>,
) -> Result<()> {
    let ro = opts.flags & libc::MS_RDONLY != 0;
    let base = opts.flags & (libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC);
    let bind = |target: Target, dir: &Path, out: &mut Vec<Mount>| -> Result<()> {
        out.push(Mount {
            source: Some(cstr(field, dir.to_string_lossy().as_bytes())?),
            target,
            fstype: None,
            flags: libc::MS_BIND | libc::MS_REC,
            data: None,
            remount_flags: Some(base | if ro { libc::MS_RDONLY } else { 0 }),
            propagation: 0,
            is_file: false,
            detached: None,
            recursive_attr: opts.recursive,
            plain_dir: false,
        });
        Ok(())
    };
    if let [v] = views {
        if v.name.is_empty() {
            return bind(t, &v.host_dir, out);
        }
    }
    let dest = t.display();
    out.push(Mount {
        source: Some(c"tmpfs".into()),
        target: t.clone(),
        fstype: Some(c"tmpfs".into()),
        flags: base,
        data: Some(match context {
            Some(c) => cstr(field, format!("mode=755,{c}"))?,
            None => c"mode=755".into(),
        }),
        remount_flags: None,
        propagation: 0,
        is_file: false,
        detached: None,
        // Applied by the last entry, once the binds below are in place (an `rro` tmpfs
        // could not take their mount points).
        recursive_attr: None,
        plain_dir: false,
    });
    for v in views {
        let sub = target(field, &format!("{dest}/{}", v.name))?;
        bind(sub, &v.host_dir, out)?;
    }
    if ro || opts.recursive.is_some() {
        out.push(Mount {
            source: None,
            target: t,
            fstype: None,
            flags: libc::MS_REMOUNT | if ro { libc::MS_RDONLY } else { 0 } | base,
            data: Some(c"mode=755".into()),
            remount_flags: None,
            propagation: 0,
            is_file: false,
            detached: None,
            recursive_attr: opts.recursive,
            plain_dir: false,
        });
    }
    Ok(())
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
    use std::os::unix::fs::MetadataExt;
    let mut join_ns = Vec::new();
    let mut userns = false;
    for kind in Kind::ALL {
        let theirs = PathBuf::from(format!("/proc/{pid}/ns/{}", kind.proc_name()));
        let mine = PathBuf::from(format!("/proc/self/ns/{}", kind.proc_name()));
        let (Ok(a), Ok(b)) = (std::fs::metadata(&theirs), std::fs::metadata(&mine)) else {
            continue;
        };
        if a.ino() == b.ino() && a.dev() == b.dev() {
            continue;
        }
        if kind == Kind::User {
            userns = true;
        }
        join_ns.push(JoinNs::open(kind, &theirs).map_err(|e| cfg("exec", e.to_string()))?);
    }
    // A container without a mount namespace of its own: joining its namespaces does not
    // give the process its root; it is chrooted into the init's root instead.
    let rootfs = if join_ns.iter().any(|j| j.kind == Kind::Mount) {
        None
    } else {
        let theirs = format!("/proc/{pid}/root");
        let id = |p: &str| std::fs::metadata(p).map(|m| (m.dev(), m.ino()));
        match (id(&theirs), id("/")) {
            (Ok(a), Ok(b)) if a == b => None,
            (Ok(_), Ok(_)) => Some(chroot_only(cstr("exec", theirs)?)),
            (Err(e), _) | (_, Err(e)) => {
                return Err(cfg("exec", format!("the container's root {theirs}: {e}")))
            }
        }
    };
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

/// A root that is only `chroot`ed into, in the caller's mount namespace (nothing mounted).
fn chroot_only(path: CString) -> Rootfs {
    Rootfs {
        path,
        mount_ns: false,
        propagation: 0,
        root_propagation: 0,
        mounts: Vec::new(),
        devices: Vec::new(),
        bind_devices: false,
        symlinks: Vec::new(),
        masked: Vec::new(),
        readonly_paths: Vec::new(),
        readonly: false,
        no_pivot: false,
        private_parent: None,
    }
}

fn sched_attr(s: &oci_spec::runtime::Scheduler) -> Result<ns::SchedAttr> {
    let f = "process.scheduler";
    let policy = match serde_name(&s.policy()).as_str() {
        "SCHED_OTHER" => 0,
        "SCHED_FIFO" => 1,
        "SCHED_RR" => 2,
        "SCHED_BATCH" => 3,
        "SCHED_ISO" => 4,
        "SCHED_IDLE" => 5,
        "SCHED_DEADLINE" => 6,
        other => {
            return Err(cfg(
                format!("{f}.policy"),
                format!("unknown policy {other:?}"),
            ))
        }
    };
    let mut flags = 0u64;
    for fl in s.flags().clone().unwrap_or_default() {
        flags |= match serde_name(&fl).as_str() {
            "SCHED_FLAG_RESET_ON_FORK" => 0x01,
            "SCHED_FLAG_RECLAIM" => 0x02,
            "SCHED_FLAG_DL_OVERRUN" => 0x04,
            "SCHED_FLAG_KEEP_POLICY" => 0x08,
            "SCHED_FLAG_KEEP_PARAMS" => 0x10,
            "SCHED_FLAG_UTIL_CLAMP_MIN" => 0x20,
            "SCHED_FLAG_UTIL_CLAMP_MAX" => 0x40,
            other => return Err(cfg(format!("{f}.flags"), format!("unknown flag {other:?}"))),
        };
    }
    let nice = s.nice().unwrap_or(0);
    if !(-20..=19).contains(&nice) {
        return Err(cfg(
            format!("{f}.nice"),
            format!("{nice} is outside -20..19"),
        ));
    }
    let priority = s.priority().unwrap_or(0);
    if (policy == 1 || policy == 2) && !(1..=99).contains(&priority) {
        return Err(cfg(
            format!("{f}.priority"),
            format!("{priority} is outside 1..99 for a real-time policy"),
        ));
    }
    if (policy != 1 && policy != 2) && priority != 0 {
        return Err(cfg(
            format!("{f}.priority"),
            "only SCHED_FIFO and SCHED_RR take a priority",
        ));
    }
    Ok(ns::SchedAttr {
        size: std::mem::size_of::<ns::SchedAttr>() as u32,
        policy,
        flags,
        nice,
        priority: priority as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
    })
}

fn ioprio(p: &oci_spec::runtime::LinuxIOPriority) -> Result<libc::c_int> {
    let class = match serde_name(&p.class()).as_str() {
        "IOPRIO_CLASS_RT" => 1,
        "IOPRIO_CLASS_BE" => 2,
        "IOPRIO_CLASS_IDLE" => 3,
        other => {
            return Err(cfg(
                "process.ioPriority.class",
                format!("unknown class {other:?}"),
            ))
        }
    };
    let prio = p.priority();
    if !(0..=7).contains(&prio) {
        return Err(cfg(
            "process.ioPriority.priority",
            format!("{prio} is outside 0..7"),
        ));
    }
    Ok((class << 13) | prio as libc::c_int)
}

pub(crate) fn personality(p: &oci_spec::runtime::LinuxPersonality) -> Result<u64> {
    if p.flags().as_ref().is_some_and(|f| !f.is_empty()) {
        return Err(cfg(
            "linux.personality.flags",
            "personality flags are not supported",
        ));
    }
    match serde_name(&p.domain()).as_str() {
        "LINUX" => Ok(0),
        "LINUX32" => Ok(8),
        other => Err(cfg(
            "linux.personality.domain",
            format!("unknown domain {other:?}"),
        )),
    }
}

/// Parses a list such as "0-3,7" of ids below `limit` into mask words (empty for "").
fn bit_mask(field: &str, list: &str, what: &str, limit: u64) -> Result<Vec<libc::c_ulong>> {
    let mut set = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (part, part),
        };
        let (Ok(a), Ok(b)) = (a.parse::<u64>(), b.parse::<u64>()) else {
            return Err(cfg(
                field,
                format!("{list:?} is not a {what} list like 0-3,7"),
            ));
        };
        if a > b || b >= limit {
            return Err(cfg(field, format!("{list:?}: bad range {part}")));
        }
        set.extend(a..=b);
    }
    let Some(max) = set.iter().max() else {
        return Ok(Vec::new());
    };
    let mut mask = vec![0 as libc::c_ulong; (max / 64 + 1) as usize];
    for n in set {
        mask[(n / 64) as usize] |= 1 << (n % 64);
    }
    Ok(mask)
}

/// Parses a node list such as "0-3,7" into mask words and the maxnode of set_mempolicy.
fn node_mask(field: &str, nodes: &str) -> Result<(Vec<libc::c_ulong>, libc::c_ulong)> {
    let mask = bit_mask(field, nodes, "node", 1024)?;
    let maxnode = if mask.is_empty() {
        0
    } else {
        (mask.len() * 64) as libc::c_ulong + 1
    };
    Ok((mask, maxnode))
}

/// A CPU mask in `sched_setaffinity` words.
pub type CpuMask = Vec<libc::c_ulong>;

/// `process.execCPUAffinity` of an exec'd process: the initial and final CPU masks (an
/// omitted or empty list leaves the affinity alone).
pub fn exec_cpu_affinity(
    field: &str,
    a: &oci_spec::runtime::ExecCPUAffinity,
) -> Result<(Option<CpuMask>, Option<CpuMask>)> {
    let one = |name: &str, v: &Option<String>| -> Result<Option<CpuMask>> {
        let m = bit_mask(
            &format!("{field}.{name}"),
            v.as_deref().unwrap_or(""),
            "CPU",
            1 << 16,
        )?;
        Ok((!m.is_empty()).then_some(m))
    };
    Ok((
        one("initial", a.initial())?,
        one("final", a.cpu_affinity_final())?,
    ))
}

fn mempolicy(
    m: &oci_spec::runtime::LinuxMemoryPolicy,
) -> Result<(libc::c_int, Vec<libc::c_ulong>, libc::c_ulong)> {
    let f = "linux.memoryPolicy";
    let mut mode = match serde_name(&m.mode()).as_str() {
        "MPOL_DEFAULT" => 0,
        "MPOL_PREFERRED" => 1,
        "MPOL_BIND" => 2,
        "MPOL_INTERLEAVE" => 3,
        "MPOL_LOCAL" => 4,
        "MPOL_PREFERRED_MANY" => 5,
        "MPOL_WEIGHTED_INTERLEAVE" => 6,
        other => return Err(cfg(format!("{f}.mode"), format!("unknown mode {other:?}"))),
    };
    for fl in m.flags().clone().unwrap_or_default() {
        mode |= match serde_name(&fl).as_str() {
            "MPOL_F_NUMA_BALANCING" => 1 << 13,
            "MPOL_F_RELATIVE_NODES" => 1 << 14,
            "MPOL_F_STATIC_NODES" => 1 << 15,
            other => return Err(cfg(format!("{f}.flags"), format!("unknown flag {other:?}"))),
        };
    }
    let (mask, maxnode) = node_mask(&format!("{f}.nodes"), m.nodes().as_deref().unwrap_or(""))?;
    if matches!(mode & 0xff, 2 | 3 | 5 | 6) && mask.is_empty() {
        return Err(cfg(format!("{f}.nodes"), "this mode needs nodes"));
    }
    Ok((mode, mask, maxnode))
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
    fn propagation_names() {
        assert_eq!(propagation("private"), Some(libc::MS_PRIVATE));
        assert_eq!(propagation("rslave"), Some(libc::MS_SLAVE | libc::MS_REC));
        assert_eq!(
            propagation("runbindable"),
            Some(libc::MS_UNBINDABLE | libc::MS_REC)
        );
        assert_eq!(propagation("rbind"), None);
        assert_eq!(propagation("ro"), None);
    }

    #[test]
    fn recursive_options() {
        let rec = |v: &[&str]| {
            let v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
            parse_options("mounts[0].options", &v).unwrap().recursive
        };
        use libc::{
            MOUNT_ATTR_NOATIME as NOATIME, MOUNT_ATTR_NODIRATIME as NODIRATIME,
            MOUNT_ATTR_NOEXEC as NOEXEC, MOUNT_ATTR_RDONLY as RDONLY,
            MOUNT_ATTR_RELATIME as RELATIME, MOUNT_ATTR_STRICTATIME as STRICTATIME,
        };
        assert_eq!(rec(&["rbind", "ro", "rprivate"]), None);
        assert_eq!(rec(&["rro", "rnoexec"]), Some((RDONLY | NOEXEC, 0)));
        // The last of opposite options wins.
        assert_eq!(rec(&["rro", "rrw"]), Some((0, RDONLY)));
        assert_eq!(rec(&["rrw", "rro"]), Some((RDONLY, 0)));
        // An atime mode replaces the whole atime field.
        assert_eq!(rec(&["rnoatime"]), Some((NOATIME, ATIME_MASK)));
        assert_eq!(rec(&["rnoatime", "ratime"]), Some((RELATIME, ATIME_MASK)));
        assert_eq!(
            rec(&["rnoatime", "rstrictatime", "rnodiratime"]),
            Some((STRICTATIME | NODIRATIME, ATIME_MASK))
        );
        assert_eq!(rec(&["rnostrictatime"]), Some((RELATIME, ATIME_MASK)));
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

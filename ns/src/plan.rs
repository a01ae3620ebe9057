//! The prepared plan: everything the child needs, as C strings and plain arrays.

use std::ffi::{CStr, CString};
use std::os::fd::OwnedFd;

use libc::{c_char, c_int, c_ulong};

use crate::{Error, IdMap, JoinNs, Kind};

/// A NULL-terminated array of C strings (argv, envp), built in the parent.
#[derive(Debug, Default)]
pub struct CStringArray {
    strings: Vec<CString>,
    ptrs: Vec<*const c_char>,
}

// SAFETY: the pointers point into `strings`, which is owned and never mutated after
// construction; the array is only read.
unsafe impl Send for CStringArray {}
// SAFETY: as above, read-only.
unsafe impl Sync for CStringArray {}

impl CStringArray {
    /// Builds the array; fails naming `what` if a string holds a NUL byte.
    pub fn new<I, S>(what: &str, items: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<Vec<u8>>,
    {
        let strings = items
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                CString::new(s).map_err(|_| Error::Plan(format!("{what}[{i}] contains a NUL byte")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut ptrs: Vec<*const c_char> = strings.iter().map(|s| s.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        Ok(CStringArray { strings, ptrs })
    }

    pub fn as_ptr(&self) -> *const *const c_char {
        self.ptrs.as_ptr()
    }

    pub fn strings(&self) -> &[CString] {
        &self.strings
    }

    pub fn is_empty(&self) -> bool {
        self.strings.is_empty()
    }
}

/// A path inside the root filesystem, split ahead of time so that the child can create and
/// resolve it without building strings.
#[derive(Debug, Clone)]
pub struct Target {
    /// The whole path relative to the root, e.g. `sys/fs/cgroup` (`.` for the root itself).
    pub path: CString,
    /// For each component: (its parent path relative to the root, or "" for the root; its name).
    pub components: Vec<(CString, CString)>,
}

impl Target {
    /// Splits an absolute or relative in-container path. `..` components are refused.
    pub fn new(path: &str) -> Result<Target, Error> {
        let mut comps: Vec<&str> = Vec::new();
        for c in path.split('/') {
            match c {
                "" | "." => {}
                ".." => return Err(Error::Plan(format!("path {path:?} has a \"..\" component"))),
                c => comps.push(c),
            }
        }
        let cs = |s: &str| {
            CString::new(s).map_err(|_| Error::Plan(format!("path {path:?} contains a NUL byte")))
        };
        let mut components = Vec::with_capacity(comps.len());
        for i in 0..comps.len() {
            components.push((cs(&comps[..i].join("/"))?, cs(comps[i])?));
        }
        let whole = if comps.is_empty() {
            ".".to_string()
        } else {
            comps.join("/")
        };
        Ok(Target {
            path: cs(&whole)?,
            components,
        })
    }

    /// The path as written inside the container (with a leading slash), for messages.
    pub fn display(&self) -> String {
        let p = self.path.to_string_lossy();
        if p == "." {
            "/".into()
        } else {
            format!("/{p}")
        }
    }

    pub(crate) fn parent(&self) -> &CStr {
        match self.components.last() {
            Some((p, _)) => p,
            None => c"",
        }
    }
}

/// One mount inside the root filesystem.
#[derive(Debug)]
pub struct Mount {
    /// Source: a host path for bind mounts, or the device/name for others.
    pub source: Option<CString>,
    pub target: Target,
    pub fstype: Option<CString>,
    /// Flags of the first `mount(2)` (for a bind: `MS_BIND`, maybe `MS_REC`).
    pub flags: c_ulong,
    pub data: Option<CString>,
    /// For bind mounts with flags (ro, nosuid, ...): the flags of a second
    /// `MS_BIND|MS_REMOUNT` mount; the child adds the flags the kernel has locked.
    pub remount_flags: Option<c_ulong>,
    /// Propagation flags applied afterwards (`MS_PRIVATE`, `MS_SHARED|MS_REC`, ...), or 0.
    pub propagation: c_ulong,
    /// The mount point is a file (bind mount of a file), not a directory.
    pub is_file: bool,
    /// A detached mount (open_tree) to move into place instead of calling `mount(2)`: an
    /// idmapped bind mount, its flags already set.
    pub detached: Option<OwnedFd>,
    /// Recursive mount attributes (`rro`, `rnosuid`, `rnoatime`, ...): the `attr_set` and
    /// `attr_clr` of a `struct mount_attr`, applied with `mount_setattr(2)` and
    /// `AT_RECURSIVE` to the mount and every mount below it, once it is in place (after its
    /// remount). A failure is an error.
    pub recursive_attr: Option<(u64, u64)>,
    /// The mount point's last component must be a directory, never a symlink (proc and
    /// sysfs: CVE-2019-19921, where a symlinked `/proc` made runc mount procfs elsewhere).
    /// The child opens it with `O_NOFOLLOW|O_DIRECTORY` inside the root, so the check and
    /// the mount act on the same directory.
    pub plain_dir: bool,
}

/// A device node to create in the container.
#[derive(Debug)]
pub struct Device {
    pub target: Target,
    /// `S_IFCHR`, `S_IFBLK` or `S_IFIFO` plus permission bits.
    pub mode: u32,
    pub major: u64,
    pub minor: u64,
    pub uid: u32,
    pub gid: u32,
    /// The same device on the host, bind-mounted instead of `mknod` where the child may not
    /// create devices (a user namespace).
    pub host_path: CString,
}

/// A symlink to create: `link` -> `target`.
#[derive(Debug)]
pub struct Symlink {
    pub target: CString,
    pub link: Target,
}

/// The root filesystem plan.
#[derive(Debug)]
pub struct Rootfs {
    /// Host path of the root filesystem (a directory or an already mounted overlay).
    pub path: CString,
    /// The set-up runs in a mount namespace of the container's own (made or joined). Without
    /// one (the host's namespace is shared) the mounts are made inside `path` in the host's
    /// namespace, nothing else of the host's mounts is changed (no propagation, no bind of
    /// the root onto itself), and the process `chroot`s into `path`.
    pub mount_ns: bool,
    /// Propagation of `/` in the new mount namespace before anything is mounted (default
    /// `MS_SLAVE|MS_REC`).
    pub propagation: c_ulong,
    /// Propagation given to the container's root once it is the root (after `pivot_root`),
    /// or 0: `linux.rootfsPropagation` when it is shared or unbindable, which the root cannot
    /// have before (a shared parent is refused by pivot_root; an unbindable root cannot be
    /// bound onto itself).
    pub root_propagation: c_ulong,
    pub mounts: Vec<Mount>,
    pub devices: Vec<Device>,
    /// Bind-mount devices from the host instead of `mknod` (user namespace).
    pub bind_devices: bool,
    pub symlinks: Vec<Symlink>,
    pub masked: Vec<Target>,
    pub readonly_paths: Vec<Target>,
    pub readonly: bool,
    pub no_pivot: bool,
    /// The mount the root filesystem sits on, made private (in the container's mount
    /// namespace only) right before the root is bound onto itself when `propagation` is
    /// shared: the bind must not propagate to the host, and pivot_root refuses a new root
    /// whose parent mount is shared (runc does the same).
    pub private_parent: Option<CString>,
}

/// One rlimit.
#[derive(Debug, Clone, Copy)]
pub struct Rlimit {
    pub resource: c_int,
    pub soft: u64,
    pub hard: u64,
}

/// The kernel's `struct sched_attr`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct SchedAttr {
    pub size: u32,
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
}

/// Capability sets as bit masks (bit N = capability N).
#[derive(Debug, Clone, Copy, Default)]
pub struct Caps {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
    /// The host's highest capability number (`/proc/sys/kernel/cap_last_cap`).
    pub last_cap: u32,
}

/// The process to run.
#[derive(Debug)]
pub struct Process {
    pub argv: CStringArray,
    pub envp: CStringArray,
    /// Full candidate paths for `argv[0]`: the path itself when it contains a `/`, else each
    /// PATH directory joined with it, tried in order.
    pub exec_candidates: Vec<CString>,
    pub cwd: CString,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<libc::gid_t>,
    pub umask: u32,
    pub rlimits: Vec<Rlimit>,
    pub no_new_privs: bool,
    /// `None` leaves the capabilities as they are.
    pub caps: Option<Caps>,
    /// Number of fds after stdio that stay open (3 .. 3+N).
    pub preserve_fds: u32,
    /// Start a new session (container init).
    pub setsid: bool,
    /// Give the process a terminal: a pty opened in the container, its slave as stdio and
    /// controlling terminal, its master sent to the parent (`TTY` message).
    pub terminal: bool,
    /// `personality(2)` persona (`PER_LINUX`, `PER_LINUX32`).
    pub personality: Option<u64>,
    /// `sched_setattr(2)` attributes.
    pub sched: Option<SchedAttr>,
    /// `ioprio_set(2)` value (class << 13 | level).
    pub ioprio: Option<c_int>,
    /// `set_mempolicy(2)`: mode (with flags), node mask words, max node.
    pub mempolicy: Option<(c_int, Vec<c_ulong>, c_ulong)>,
    /// Fds to become the process's stdin, stdout and stderr (`-1`: keep the inherited one).
    pub stdio: [c_int; 3],
    /// Security-module labels the program gets at exec (AppArmor profile, SELinux label),
    /// written while the process is still privileged.
    pub exec_labels: Vec<LsmAttr>,
    /// CPU affinity masks (`sched_setaffinity` words), set by the parent: `initial` right
    /// after the clone, before the process is placed in its cgroup; `final` once it is ready
    /// and waits at its start gate.
    pub affinity_initial: Option<Vec<c_ulong>>,
    pub affinity_final: Option<Vec<c_ulong>>,
}

/// A security-module attribute: `value` written to `file` (relative to [`Plan::attr_root`]),
/// one of the process's own `thread-self/attr/...` files.
#[derive(Debug, Clone)]
pub struct LsmAttr {
    pub file: CString,
    pub value: CString,
}

/// A session keyring of the process's own, instead of the caller's.
#[derive(Debug, Clone)]
pub struct Keyring {
    /// Its name: a keyring of this name the process may search is joined, else one is made.
    pub name: CString,
    /// The SELinux label of the keyring (`attr/keycreate`), set first.
    pub label: Option<LsmAttr>,
}

/// Everything the spawn needs, prepared before the clone.
#[derive(Debug)]
pub struct Plan {
    /// Namespaces to create.
    pub new_ns: Vec<Kind>,
    /// Namespaces to join.
    pub join_ns: Vec<JoinNs>,
    pub uid_map: Vec<IdMap>,
    pub gid_map: Vec<IdMap>,
    pub deny_setgroups: bool,
    /// A cgroup v2 directory for `CLONE_INTO_CGROUP`.
    pub cgroup_fd: Option<OwnedFd>,
    /// cgroup v1 `tasks` files the child writes `0` to first thing, moving itself (see
    /// [`CgroupTasks`]). With these, [`crate::Spawning::placed_in_cgroup`] is true: the caller
    /// lists every cgroup the process goes into, v1 here and v2 in `cgroup_fd`.
    pub cgroup_tasks: Vec<CgroupTasks>,
    pub rootfs: Option<Rootfs>,
    pub hostname: Option<CString>,
    pub domainname: Option<CString>,
    /// (`/proc/sys/...` path, value).
    pub sysctls: Vec<(CString, CString)>,
    /// Content for `/proc/self/timens_offsets` (needs a new time namespace).
    pub time_offsets: Option<CString>,
    pub oom_score_adj: Option<CString>,
    pub process: Process,
    /// The start gate as a FIFO: after `READY` the child opens `name` (write-only, relative to
    /// the directory `dir`, opened before the root changes) and blocks until a `start` opens it
    /// for reading; then it execs. Without one, the child waits for `START` on the socket.
    pub gate: Option<Gate>,
    /// Fds of the caller that the child closes first thing (locks it must not keep).
    pub close_fds: Vec<c_int>,
    /// A seccomp filter to install as the last step before `execve` (startContainer hooks
    /// each install it before their own `execve`); one with a notify listener goes in before
    /// the start gate instead, so that the listener reaches the creating process. Without
    /// no_new_privs the process keeps CAP_SYS_ADMIN effective until then (installing needs
    /// it); `execve` does not carry it over.
    pub seccomp: Option<Seccomp>,
    /// Pause before changing the root and let the parent run its hooks (`HOOKS` message).
    pub hook_pause: bool,
    /// Join a session keyring of the container's (runc does; `--no-new-keyring` keeps the
    /// caller's).
    pub keyring: Option<Keyring>,
    /// The host's procfs (`/proc`), where the security-module attribute files are found. The
    /// child opens it first thing, before it joins any namespace: a container's own /proc may
    /// be missing or a fake, and a label written to a fake file would leave the process
    /// unconfined.
    pub attr_root: Option<CString>,
    /// startContainer hooks, run by the process itself between its start gate and `execve`.
    pub start_hooks: Vec<Hook>,
    /// The program comes with `START` ([`crate::Spawning::start_late`]): the process does all
    /// its set-up and waits at its (socket) gate not knowing what it will run; `START` brings
    /// a memfd with the arguments, environment and exec candidates (see [`crate::late`]).
    /// `process.argv`, `envp` and `exec_candidates` are not used. Needs `gate: None`. The
    /// process keeps its parent-death signal until `START` (a warm pool's processes die with
    /// the pool).
    pub late_exec: bool,
}

/// A hook that the container's process runs itself once its start gate opened, right before
/// it execs (OCI `startContainer`): with the process's own credentials, capabilities,
/// seccomp filter, cgroup and namespaces, its path resolved in the container's root. It gets
/// the container's state on stdin (the `STATE` message) and its output is kept for the error.
#[derive(Debug)]
pub struct Hook {
    pub path: CString,
    pub argv: CStringArray,
    pub envp: CStringArray,
    /// Seconds; 0: no timeout.
    pub timeout_secs: u32,
}

/// A compiled seccomp filter.
#[derive(Debug, Clone)]
pub struct Seccomp {
    pub filter: Vec<libc::sock_filter>,
    /// `SECCOMP_FILTER_FLAG_*`.
    pub flags: u32,
}

/// A cgroup v1 `tasks` file of the container's cgroup, opened for writing by the caller. The
/// child writes `0` to it before anything else: a thread that moves itself is placed without
/// the kernel's global `cgroup_threadgroup_rwsem`, whose writer side (any pid written to
/// `cgroup.procs`, as a parent places its child) waits for an RCU grace period when no other
/// writer ran in the last one: 7-14 ms on an idle machine, most of a cold spawn. The child is
/// single-threaded, so its one thread is the whole process. Permission is checked against the
/// credentials that opened the file.
#[derive(Debug)]
pub struct CgroupTasks {
    /// The file, for errors.
    pub path: std::path::PathBuf,
    pub fd: OwnedFd,
}

/// A FIFO start gate (see [`Plan::gate`]).
#[derive(Debug)]
pub struct Gate {
    pub dir: OwnedFd,
    pub name: CString,
}

impl Plan {
    pub(crate) fn creates(&self, k: Kind) -> bool {
        self.new_ns.contains(&k)
    }
}

impl Target {
    /// `self` is `t` or a directory above it.
    fn covers(&self, t: &Target) -> bool {
        self.components.len() <= t.components.len()
            && self
                .components
                .iter()
                .zip(&t.components)
                .all(|((_, a), (_, b))| a == b)
    }

    /// `self` is the directory `t` is in.
    fn is_parent_of(&self, t: &Target) -> bool {
        self.components.len() + 1 == t.components.len() && self.covers(t)
    }
}

/// How many mounts' roots the child keeps open for the items it makes in them ([`Fresh`]).
pub(crate) const FRESH_SLOTS: usize = 8;

/// The items of the root that go straight into a tmpfs the child itself has just mounted
/// (`/dev`'s nodes and links, `/dev/shm`, the cgroup tmpfs's binds, its read-only remount),
/// computed by the parent before the clone. Nothing of the container's can be in such a
/// tmpfs yet (it started empty, and only the child's own earlier items are there), so the
/// child makes them relative to an fd of the tmpfs's root, one component each, never
/// following a symlink: no lookup from the root (`RESOLVE_IN_ROOT`), no probe for what is
/// already there (a node to unlink, a directory to make), no fd per item. An item under
/// any other mount (the container's own content, a bind, anything mounted over the tmpfs
/// since) is made as before, looked up inside the root.
#[derive(Debug, Default)]
pub(crate) struct Fresh {
    /// Per mount: the slot (below [`FRESH_SLOTS`]) to keep an fd of its root in, once made.
    pub keep: Vec<Option<u8>>,
    /// Per mount: the slot of the tmpfs its mount point (a directory) goes into.
    pub mount_parent: Vec<Option<u8>>,
    /// Per mount: a remount of the tmpfs in that slot (the same target).
    pub mount_same: Vec<Option<u8>>,
    /// Per device (made with `mknod`) and per symlink: the slot of the tmpfs it goes into.
    pub device_parent: Vec<Option<u8>>,
    pub symlink_parent: Vec<Option<u8>>,
    /// Per device: the node needs its owner set (`fchownat`): it is not what `mknod` gives
    /// it already (the creator's ids, in a tmpfs whose root is not set-group-ID).
    pub device_chown: Vec<bool>,
}

impl Fresh {
    /// For `r`; `creator`: the ids a node the child makes gets (the parent's effective ids),
    /// `None` when they are not known (the child enters a user namespace).
    pub(crate) fn of(r: &Rootfs, creator: Option<(u32, u32)>) -> Fresh {
        let n = r.mounts.len();
        let mut f = Fresh {
            keep: vec![None; n],
            mount_parent: vec![None; n],
            mount_same: vec![None; n],
            device_parent: vec![None; r.devices.len()],
            symlink_parent: vec![None; r.symlinks.len()],
            device_chown: vec![true; r.devices.len()],
        };
        if !r.mount_ns {
            return f;
        }
        // The last of the first `upto` mounts whose target is `t` or above it: what a lookup
        // of `t` meets last. Only a tmpfs the child mounts (not a bind, not a remount).
        let fresh_under = |upto: usize, t: &Target| -> Option<usize> {
            let i = r.mounts[..upto].iter().rposition(|m| m.target.covers(t))?;
            let m = &r.mounts[i];
            let tmpfs = m.fstype.as_deref() == Some(c"tmpfs")
                && m.flags & (libc::MS_BIND | libc::MS_REMOUNT | libc::MS_MOVE) == 0
                && m.detached.is_none()
                && !m.is_file
                // Not over the root itself (its fd, opened before, does not see it).
                && !m.target.components.is_empty();
            tmpfs.then_some(i)
        };
        let mut slots = 0u8;
        let mut slot = |f: &mut Fresh, i: usize| -> Option<u8> {
            if f.keep[i].is_none() && (slots as usize) < FRESH_SLOTS {
                f.keep[i] = Some(slots);
                slots += 1;
            }
            f.keep[i]
        };
        for (j, m) in r.mounts.iter().enumerate() {
            let Some(i) = fresh_under(j, &m.target) else {
                continue;
            };
            let under = &r.mounts[i].target;
            if under.is_parent_of(&m.target) && !m.is_file {
                f.mount_parent[j] = slot(&mut f, i);
            } else if under.path == m.target.path
                && m.flags & libc::MS_REMOUNT != 0
                && m.fstype.is_none()
                && m.remount_flags.is_none()
                && m.detached.is_none()
            {
                f.mount_same[j] = slot(&mut f, i);
            }
        }
        for (j, d) in r.devices.iter().enumerate() {
            let Some(i) = fresh_under(n, &d.target) else {
                continue;
            };
            if !r.mounts[i].target.is_parent_of(&d.target) {
                continue;
            }
            f.device_parent[j] = slot(&mut f, i);
            if f.device_parent[j].is_some() && creator == Some((d.uid, d.gid)) {
                f.device_chown[j] = setgid_tmpfs(&r.mounts[i]);
            }
        }
        for (j, s) in r.symlinks.iter().enumerate() {
            if let Some(i) = fresh_under(n, &s.link) {
                if r.mounts[i].target.is_parent_of(&s.link) {
                    f.symlink_parent[j] = slot(&mut f, i);
                }
            }
        }
        f
    }
}

/// A tmpfs whose root may give its nodes another group than their creator's: a `gid=`
/// option, or a set-group-ID `mode=`.
fn setgid_tmpfs(m: &Mount) -> bool {
    let data = m
        .data
        .as_deref()
        .map(|d| d.to_string_lossy())
        .unwrap_or_default();
    data.split(',').any(|o| {
        if o.starts_with("gid=") {
            return true;
        }
        match o.strip_prefix("mode=") {
            Some(v) => u32::from_str_radix(v, 8).map_or(true, |mode| mode & libc::S_ISGID != 0),
            None => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_splits_components() {
        let t = Target::new("/sys/fs//cgroup/").unwrap();
        assert_eq!(t.path.to_str().unwrap(), "sys/fs/cgroup");
        let comps: Vec<(String, String)> = t
            .components
            .iter()
            .map(|(p, n)| (p.to_str().unwrap().into(), n.to_str().unwrap().into()))
            .collect();
        assert_eq!(
            comps,
            [
                ("".into(), "sys".into()),
                ("sys".into(), "fs".into()),
                ("sys/fs".into(), "cgroup".into())
            ]
        );
        assert_eq!(t.parent().to_str().unwrap(), "sys/fs");
        assert_eq!(t.display(), "/sys/fs/cgroup");
        let root = Target::new("/").unwrap();
        assert_eq!(root.path.to_str().unwrap(), ".");
        assert_eq!(root.display(), "/");
        assert!(Target::new("/a/../etc").is_err());
    }

    fn tmpfs(path: &str, data: &str) -> Mount {
        Mount {
            source: Some(c"tmpfs".into()),
            target: Target::new(path).unwrap(),
            fstype: Some(c"tmpfs".into()),
            flags: libc::MS_NOSUID,
            data: Some(CString::new(data).unwrap()),
            remount_flags: None,
            propagation: 0,
            is_file: false,
            detached: None,
            recursive_attr: None,
            plain_dir: false,
        }
    }

    fn bind(path: &str) -> Mount {
        Mount {
            source: Some(c"/host".into()),
            fstype: None,
            flags: libc::MS_BIND | libc::MS_REC,
            data: None,
            ..tmpfs(path, "")
        }
    }

    fn rootfs(mounts: Vec<Mount>, devices: &[&str], links: &[&str]) -> Rootfs {
        Rootfs {
            path: c"/r".into(),
            mount_ns: true,
            propagation: 0,
            root_propagation: 0,
            mounts,
            devices: devices
                .iter()
                .map(|p| Device {
                    target: Target::new(p).unwrap(),
                    mode: libc::S_IFCHR | 0o666,
                    major: 1,
                    minor: 3,
                    uid: 0,
                    gid: 0,
                    host_path: c"/dev/null".into(),
                })
                .collect(),
            bind_devices: false,
            symlinks: links
                .iter()
                .map(|p| Symlink {
                    target: c"x".into(),
                    link: Target::new(p).unwrap(),
                })
                .collect(),
            masked: Vec::new(),
            readonly_paths: Vec::new(),
            readonly: false,
            no_pivot: false,
            private_parent: None,
        }
    }

    #[test]
    fn fresh_items_are_those_right_in_a_tmpfs_nothing_covered() {
        let mut remount = tmpfs("/sys/fs/cgroup", "mode=755");
        remount.flags = libc::MS_REMOUNT | libc::MS_RDONLY;
        remount.fstype = None;
        remount.source = None;
        let r = rootfs(
            vec![
                tmpfs("/dev", "mode=755"),           // 0
                tmpfs("/dev/shm", "mode=1777"),      // 1: into 0
                bind("/dev/vol"),                    // 2: into 0
                bind("/dev/vol/sub"),                // 3: into a bind: no
                tmpfs("/sys/fs/cgroup", "mode=755"), // 4: into the root: no
                bind("/sys/fs/cgroup/cpu"),          // 5: into 4
                remount,                             // 6: a remount of 4
                bind("/sys/fs/cgroup/a/b"),          // 7: two levels down: no
            ],
            &["/dev/null", "/dev/vol/x", "/dev/shm/y", "/tty"],
            &["/dev/fd"],
        );
        let f = Fresh::of(&r, Some((0, 0)));
        assert_eq!(
            f.mount_parent,
            [None, Some(0), Some(0), None, None, Some(1), None, None]
        );
        assert_eq!(
            f.mount_same,
            [None, None, None, None, None, None, Some(1), None]
        );
        assert_eq!(
            f.keep,
            [Some(0), Some(2), None, None, Some(1), None, None, None]
        );
        assert_eq!(f.device_parent, [Some(0), None, Some(2), None]);
        // The creator's ids in a tmpfs that is not set-group-ID: no chown.
        assert_eq!(f.device_chown, [false, true, false, true]);
        assert_eq!(f.symlink_parent, [Some(0)]);
        // Unknown creator (a user namespace): every node is chowned.
        assert!(Fresh::of(&r, None).device_chown.iter().all(|c| *c));
        // A set-group-ID /dev, or a bind over it: chowned; nothing fresh under the bind.
        let r = rootfs(vec![tmpfs("/dev", "mode=2755")], &["/dev/null"], &[]);
        assert_eq!(Fresh::of(&r, Some((0, 0))).device_chown, [true]);
        let r = rootfs(
            vec![tmpfs("/dev", "mode=755"), bind("/dev")],
            &["/dev/null"],
            &["/dev/fd"],
        );
        let f = Fresh::of(&r, Some((0, 0)));
        assert_eq!(
            (f.device_parent, f.symlink_parent),
            (vec![None], vec![None])
        );
        // A tmpfs over the root itself: nothing (the root's fd does not see it).
        let r = rootfs(vec![tmpfs("/", "mode=755")], &["/null"], &[]);
        assert_eq!(Fresh::of(&r, Some((0, 0))).device_parent, [None]);
        // No mount namespace of its own: nothing.
        let mut r = rootfs(vec![tmpfs("/dev", "mode=755")], &["/dev/null"], &[]);
        r.mount_ns = false;
        assert_eq!(Fresh::of(&r, Some((0, 0))).device_parent, [None]);
    }

    #[test]
    fn cstring_array_is_null_terminated() {
        let a = CStringArray::new("args", ["a", "bc"]).unwrap();
        // SAFETY: reading the three pointers of a two-string array.
        unsafe {
            let p = a.as_ptr();
            assert_eq!(CStr::from_ptr(*p).to_str().unwrap(), "a");
            assert_eq!(CStr::from_ptr(*p.add(1)).to_str().unwrap(), "bc");
            assert!((*p.add(2)).is_null());
        }
        assert!(CStringArray::new("args", ["a\0b"]).is_err());
    }
}

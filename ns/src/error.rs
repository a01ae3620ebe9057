use std::path::PathBuf;

use crate::Kind;

/// A step of the child's set-up, as reported over the sync socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Step {
    /// Waiting for a message from the parent.
    Sync = 1,
    /// `setns` into a joined namespace (index: `Plan::join_ns`).
    Setns,
    /// `unshare` of a new namespace (index: the `Kind::flag`).
    Unshare,
    /// The second fork into a pid namespace.
    ForkPid,
    /// Writing the time namespace offsets.
    TimeOffsets,
    /// Bringing the loopback interface up.
    Loopback,
    /// Writing a sysctl (index: `Plan::sysctls`).
    Sysctl,
    /// Writing oom_score_adj.
    OomScoreAdj,
    /// `sethostname`.
    Hostname,
    /// `setdomainname`.
    Domainname,
    /// Setting the propagation of `/` (rootfsPropagation).
    RootPropagation,
    /// Bind-mounting the root filesystem onto itself.
    RootBind,
    /// Opening the root filesystem.
    RootOpen,
    /// Creating a mount point (index: `Rootfs::mounts`).
    MountPoint,
    /// Mounting (index: `Rootfs::mounts`).
    Mount,
    /// Re-mounting a bind mount with its flags (index: `Rootfs::mounts`).
    MountRemount,
    /// Setting a mount's propagation (index: `Rootfs::mounts`).
    MountPropagation,
    /// Creating a device node (index: `Rootfs::devices`).
    Device,
    /// Creating a symlink (index: `Rootfs::symlinks`).
    Symlink,
    /// Masking a path (index: `Rootfs::masked`).
    Mask,
    /// Making a path read-only (index: `Rootfs::readonly_paths`).
    ReadonlyPath,
    /// `pivot_root` (or the move-mount + chroot fallback).
    PivotRoot,
    /// Remounting the root read-only.
    ReadonlyRoot,
    /// Setting an rlimit (index: `Process::rlimits`).
    Rlimit,
    /// Installing the stdio fds (index: 0, 1 or 2).
    Stdio,
    /// Setting up the terminal (opening /dev/ptmx, the slave, the controlling tty).
    Terminal,
    /// `setsid`.
    Setsid,
    /// Dropping capabilities from the bounding set.
    CapBounding,
    /// `setgroups`.
    Setgroups,
    /// `setresgid`.
    Setgid,
    /// `setresuid`.
    Setuid,
    /// `capset`.
    Capset,
    /// Raising ambient capabilities.
    CapAmbient,
    /// `PR_SET_NO_NEW_PRIVS`.
    NoNewPrivs,
    /// `chdir` into the process cwd.
    Chdir,
    /// Closing inherited file descriptors.
    CloseFds,
    /// Installing the seccomp filter.
    Seccomp,
    /// Setting the personality, scheduler, I/O priority, memory policy or the initial and final
    /// CPU affinity (index: 0 to 5).
    ProcessAttr,
    /// Joining the session keyring (index 0) or setting its permissions (index 1).
    Keyring,
    /// Writing a security-module label (index: `Process::exec_labels`, or
    /// `exec_labels.len()` for the keyring's label).
    SecurityLabel,
    /// `execve` of the process.
    Exec,
    /// Running a startContainer hook (index: `Plan::start_hooks`).
    StartHook,
    /// Making the process non-dumpable (or dumpable again while the parent writes its id maps).
    Dumpable,
    /// Setting a mount's recursive attributes, `mount_setattr(2)` (index: `Rootfs::mounts`).
    MountAttr,
    /// Moving itself into a cgroup v1 hierarchy (index: `Plan::cgroup_tasks`).
    CgroupJoin,
}

impl Step {
    pub(crate) fn from_u32(v: u32) -> Option<Step> {
        use Step::*;
        const ALL: [Step; 45] = [
            Sync,
            Setns,
            Unshare,
            ForkPid,
            TimeOffsets,
            Loopback,
            Sysctl,
            OomScoreAdj,
            Hostname,
            Domainname,
            RootPropagation,
            RootBind,
            RootOpen,
            MountPoint,
            Mount,
            MountRemount,
            MountPropagation,
            Device,
            Symlink,
            Mask,
            ReadonlyPath,
            PivotRoot,
            ReadonlyRoot,
            Rlimit,
            Stdio,
            Terminal,
            Setsid,
            CapBounding,
            Setgroups,
            Setgid,
            Setuid,
            Capset,
            CapAmbient,
            NoNewPrivs,
            Chdir,
            CloseFds,
            Seccomp,
            ProcessAttr,
            Keyring,
            SecurityLabel,
            Exec,
            StartHook,
            Dumpable,
            MountAttr,
            CgroupJoin,
        ];
        ALL.into_iter().find(|s| *s as u32 == v)
    }

    /// A short lower-case name of the step.
    pub fn name(self) -> &'static str {
        use Step::*;
        match self {
            Sync => "sync with parent",
            Setns => "join namespace",
            Unshare => "create namespace",
            ForkPid => "fork into pid namespace",
            TimeOffsets => "set time namespace offsets",
            Loopback => "bring up loopback",
            Sysctl => "set sysctl",
            OomScoreAdj => "set oom_score_adj",
            Hostname => "set hostname",
            Domainname => "set domainname",
            RootPropagation => "set rootfs propagation",
            RootBind => "bind root filesystem",
            RootOpen => "open root filesystem",
            MountPoint => "create mount point",
            Mount => "mount",
            MountRemount => "remount with mount options",
            MountPropagation => "set mount propagation",
            Device => "create device",
            Symlink => "create symlink",
            Mask => "mask path",
            ReadonlyPath => "make path read-only",
            PivotRoot => "pivot_root",
            ReadonlyRoot => "remount root read-only",
            Rlimit => "set rlimit",
            Stdio => "set up stdio fd",
            Terminal => "set up terminal",
            Setsid => "setsid",
            CapBounding => "drop bounding capabilities",
            Setgroups => "setgroups",
            Setgid => "setgid",
            Setuid => "setuid",
            Capset => "set capabilities",
            CapAmbient => "raise ambient capabilities",
            NoNewPrivs => "set no_new_privs",
            Chdir => "chdir to cwd",
            CloseFds => "close inherited fds",
            Seccomp => "install seccomp filter",
            ProcessAttr => "set process attribute",
            Keyring => "join session keyring",
            SecurityLabel => "set security label",
            Exec => "exec",
            StartHook => "run startContainer hook",
            Dumpable => "set dumpable",
            MountAttr => "set recursive mount attributes",
            CgroupJoin => "join cgroup",
        }
    }
}

/// A failure of the container's process before `execve`, as it reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildError {
    pub step: Step,
    pub errno: nix::errno::Errno,
    /// What the step worked on (a path, a namespace, a sysctl, an rlimit), if any.
    pub subject: Option<String>,
}

impl std::fmt::Display for ChildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.subject {
            Some(s) => write!(f, "{} {}: {}", self.step.name(), s, self.errno.desc()),
            None => write!(f, "{}: {}", self.step.name(), self.errno.desc()),
        }?;
        write!(f, " (errno {})", self.errno as i32)
    }
}

impl std::error::Error for ChildError {}

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{kind} namespace {path}: {reason}")]
    Namespace {
        kind: Kind,
        path: PathBuf,
        reason: String,
    },
    #[error("{what} {path}: {source}")]
    Io {
        what: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {errno}")]
    Sys {
        what: &'static str,
        errno: nix::errno::Errno,
    },
    #[error("invalid plan: {0}")]
    Plan(String),
    #[error("container process: {0}")]
    Child(#[from] ChildError),
    #[error("container process exited during set-up ({0})")]
    ChildExited(String),
    #[error("{0}")]
    Hook(String),
}

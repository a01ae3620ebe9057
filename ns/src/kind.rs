use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::Error;

/// A kind of Linux namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Mount,
    Pid,
    Net,
    Ipc,
    Uts,
    User,
    Cgroup,
    Time,
}

impl Kind {
    /// All kinds, in the order the child joins or creates them (user first).
    pub const ALL: [Kind; 8] = [
        Kind::User,
        Kind::Mount,
        Kind::Net,
        Kind::Ipc,
        Kind::Uts,
        Kind::Cgroup,
        Kind::Pid,
        Kind::Time,
    ];

    /// The `CLONE_NEW*` flag.
    pub fn flag(self) -> libc::c_int {
        match self {
            Kind::Mount => libc::CLONE_NEWNS,
            Kind::Pid => libc::CLONE_NEWPID,
            Kind::Net => libc::CLONE_NEWNET,
            Kind::Ipc => libc::CLONE_NEWIPC,
            Kind::Uts => libc::CLONE_NEWUTS,
            Kind::User => libc::CLONE_NEWUSER,
            Kind::Cgroup => libc::CLONE_NEWCGROUP,
            Kind::Time => libc::CLONE_NEWTIME,
        }
    }

    /// The name under `/proc/PID/ns/`.
    pub fn proc_name(self) -> &'static str {
        match self {
            Kind::Mount => "mnt",
            Kind::Pid => "pid",
            Kind::Net => "net",
            Kind::Ipc => "ipc",
            Kind::Uts => "uts",
            Kind::User => "user",
            Kind::Cgroup => "cgroup",
            Kind::Time => "time",
        }
    }

    fn from_flag(flag: libc::c_int) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.flag() == flag)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.proc_name())
    }
}

/// A namespace to join, opened and checked in the parent before the clone.
#[derive(Debug)]
pub struct JoinNs {
    pub kind: Kind,
    pub fd: OwnedFd,
    pub path: PathBuf,
}

const NS_GET_NSTYPE: libc::c_ulong = 0xb703;

impl JoinNs {
    /// Opens `path` and checks that it is a namespace of `kind` (ioctl `NS_GET_NSTYPE`).
    pub fn open(kind: Kind, path: &Path) -> Result<JoinNs, Error> {
        let fd = nix::fcntl::open(
            path,
            // O_NONBLOCK: a path that names a FIFO must not block the open forever.
            nix::fcntl::OFlag::O_RDONLY
                | nix::fcntl::OFlag::O_CLOEXEC
                | nix::fcntl::OFlag::O_NONBLOCK,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|errno| Error::Namespace {
            kind,
            path: path.to_path_buf(),
            reason: format!("cannot open: {}", errno.desc()),
        })?;
        // SAFETY: fd was just returned by open and is owned here.
        let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        // SAFETY: NS_GET_NSTYPE takes no argument and only reads the fd.
        let t = unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_NSTYPE as _) };
        if t < 0 {
            return Err(Error::Namespace {
                kind,
                path: path.to_path_buf(),
                reason: "not a namespace file".into(),
            });
        }
        if t != kind.flag() {
            let got = Kind::from_flag(t).map_or_else(|| format!("{t:#x}"), |k| k.to_string());
            return Err(Error::Namespace {
                kind,
                path: path.to_path_buf(),
                reason: format!("is a {got} namespace, not a {kind} namespace"),
            });
        }
        Ok(JoinNs {
            kind,
            fd,
            path: path.to_path_buf(),
        })
    }
}

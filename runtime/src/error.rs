use std::path::PathBuf;

/// Errors of the runtime. Each says what was wrong and where: the container id, the config
/// field, the path, the errno.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("bundle {path}: {reason}")]
    Bundle { path: PathBuf, reason: String },
    #[error("{path}:{line}:{column}: {reason}")]
    ConfigParse {
        path: PathBuf,
        line: usize,
        column: usize,
        reason: String,
    },
    #[error("config {field}: {reason}")]
    Config { field: String, reason: String },
    #[error("container id {id:?}: {reason}")]
    InvalidId { id: String, reason: String },
    #[error("container {0:?} already exists")]
    AlreadyExists(String),
    #[error("container {0:?} does not exist")]
    NotFound(String),
    #[error("container {id:?} is {status}, not {want}")]
    State {
        id: String,
        status: &'static str,
        want: &'static str,
    },
    #[error("container {id:?}: {what}: {source}")]
    Namespace {
        id: String,
        what: String,
        #[source]
        source: ns::Error,
    },
    #[error("container {id:?}: cgroup{field}: {source}")]
    Cgroup {
        id: String,
        /// The OCI field the failing setting came from (with a leading space), if known.
        field: String,
        #[source]
        source: Box<cgroup::Error>,
    },
    #[error("container {id:?}: root filesystem: {source}")]
    Rootfs {
        id: String,
        #[source]
        source: unionfs::Error,
    },
    #[error("container {id:?}: {source}")]
    Child {
        id: String,
        #[source]
        source: ns::ChildError,
    },
    #[error("container {id:?}: {what} {path}: {source}")]
    Io {
        id: String,
        what: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("container {id:?}: {message}")]
    Hook { id: String, message: String },
    #[error("container {id:?}: {what}: {errno}")]
    Sys {
        id: String,
        what: String,
        errno: nix::errno::Errno,
    },
}

impl Error {
    /// The errno that best says what went wrong (positive): the system call's own where one
    /// failed, else `EINVAL` for bad input, `EEXIST`, `ENOENT`, `EBUSY` for a container in the
    /// wrong state, `ECANCELED` for a failed hook, `EIO` for the rest. The C library returns
    /// it negated; Python puts it in `.errno`.
    pub fn errno(&self) -> i32 {
        use std::error::Error as _;
        match self {
            Error::Bundle { .. }
            | Error::ConfigParse { .. }
            | Error::Config { .. }
            | Error::InvalidId { .. } => libc::EINVAL,
            Error::AlreadyExists(_) => libc::EEXIST,
            Error::NotFound(_) => libc::ENOENT,
            Error::State { .. } => libc::EBUSY,
            Error::Namespace { source, .. } => match source {
                ns::Error::Sys { errno, .. } => *errno as i32,
                ns::Error::Child(c) => c.errno as i32,
                ns::Error::Io { source, .. } => source.raw_os_error().unwrap_or(libc::EIO),
                ns::Error::Namespace { .. } | ns::Error::Plan(_) => libc::EINVAL,
                ns::Error::Hook(_) => libc::ECANCELED,
                ns::Error::ChildExited(_) => libc::ECHILD,
            },
            Error::Cgroup { source, .. } => source.errno().unwrap_or(libc::EIO),
            Error::Rootfs { source, .. } => source.errno().map(|e| e as i32).unwrap_or(libc::EIO),
            Error::Child { source, .. } => source.errno as i32,
            Error::Io { source, .. } => source.raw_os_error().unwrap_or_else(|| {
                source
                    .source()
                    .and_then(|s| s.downcast_ref::<std::io::Error>())
                    .and_then(|e| e.raw_os_error())
                    .unwrap_or(libc::EIO)
            }),
            Error::Hook { .. } => libc::ECANCELED,
            Error::Sys { errno, .. } => *errno as i32,
        }
    }

    /// The step that failed, in a word: `config` (bad input), `state`, `cgroup`, `rootfs`,
    /// `hook`, `spawn`, the container process's own set-up step (`mount`, `exec`,
    /// `pivot_root`...), or `io`/`sys` with what was being done.
    pub fn step(&self) -> String {
        match self {
            Error::Bundle { .. } | Error::ConfigParse { .. } | Error::Config { .. } => {
                "config".into()
            }
            Error::InvalidId { .. } => "id".into(),
            Error::AlreadyExists(_) | Error::NotFound(_) | Error::State { .. } => "state".into(),
            Error::Namespace { source, .. } => match source {
                ns::Error::Child(c) => c.step.name().into(),
                ns::Error::Hook(_) => "hook".into(),
                _ => "spawn".into(),
            },
            Error::Cgroup { .. } => "cgroup".into(),
            Error::Rootfs { .. } => "rootfs".into(),
            Error::Child { source, .. } => source.step.name().into(),
            Error::Io { what, .. } => what.clone(),
            Error::Hook { .. } => "hook".into(),
            Error::Sys { what, .. } => what.clone(),
        }
    }

    /// Where it failed: the config field, the path, or what the failing step worked on (a
    /// mount target, a namespace path); `None` when nothing more precise than the message is
    /// known.
    pub fn path(&self) -> Option<String> {
        match self {
            Error::Bundle { path, .. } | Error::ConfigParse { path, .. } => {
                Some(path.display().to_string())
            }
            Error::Config { field, .. } => Some(field.clone()),
            Error::Io { path, .. } => Some(path.display().to_string()),
            Error::Child { source, .. } => child_path(source),
            Error::Namespace { source, .. } => match source {
                ns::Error::Child(c) => child_path(c),
                ns::Error::Namespace { path, .. } | ns::Error::Io { path, .. } => {
                    Some(path.display().to_string())
                }
                _ => None,
            },
            Error::Cgroup { field, source, .. } => {
                let f = field.trim().trim_start_matches('(').trim_end_matches(')');
                if f.is_empty() {
                    source.file_name().map(str::to_string)
                } else {
                    Some(f.to_string())
                }
            }
            _ => None,
        }
    }

    /// The shell's convention for this error, for faces that want one (the CLI exits 1, as
    /// runc): 127 when the container's executable was not found, 126 when it could not be
    /// executed, 125 for every other failure of the runtime itself.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Child { source, .. } if source.step == ns::Step::Exec => {
                if source.errno == nix::errno::Errno::ENOENT {
                    127
                } else {
                    126
                }
            }
            _ => 125,
        }
    }
}

/// What a failed step of the container process worked on, bare: an exec's program is quoted in
/// the message (`"sh": executable file not found in $PATH`), not in the path.
fn child_path(c: &ns::ChildError) -> Option<String> {
    let s = c.subject.as_ref()?;
    if c.step == ns::Step::Exec && s.starts_with('"') {
        if let Some(end) = s[1..].find('"') {
            return Some(s[1..1 + end].to_string());
        }
    }
    Some(s.clone())
}

/// Result type of the runtime.
pub type Result<T, E = Error> = std::result::Result<T, E>;

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

/// Result type of the runtime.
pub type Result<T, E = Error> = std::result::Result<T, E>;

//! The engine's errors, in docker's words where docker has some.

use std::path::PathBuf;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No container of that name, id or id prefix.
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    /// An id prefix that names more than one container.
    #[error("multiple IDs found with provided prefix: {0}")]
    Ambiguous(String),
    /// The name is taken.
    #[error("Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name.")]
    NameInUse { name: String, id: String },
    /// Bad input (a name, an option).
    #[error("{0}")]
    Invalid(String),
    /// The container is in the wrong state for what was asked (docker's wording).
    #[error("{0}")]
    State(String),
    /// The container could not be started: `code` is docker's exit code for it (126: the
    /// command cannot be invoked, 127: not found, 125: anything else).
    #[error("{message}")]
    Start { code: i32, message: String },
    #[error(transparent)]
    Runtime(#[from] runtime::Error),
    #[error(transparent)]
    Image(#[from] corral_image::Error),
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl From<corral_image::ImageError> for Error {
    fn from(e: corral_image::ImageError) -> Self {
        Error::Image(e.into())
    }
}

impl Error {
    /// Docker's exit code for this failure of a `run` or `start`: 126 when the command
    /// cannot be invoked, 127 when it is not found, else 125.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Start { code, .. } => *code,
            Error::Runtime(e) => start_code(e),
            Error::Image(corral_image::Error::Runtime(e)) => start_code(e),
            _ => 125,
        }
    }
}

/// Docker's exit code for a runtime error of a create or start: the `exec` step's ENOENT is
/// 127, its EACCES, ENOEXEC, EISDIR, EPERM are 126.
pub fn start_code(e: &runtime::Error) -> i32 {
    if e.step() == "exec" {
        match e.errno() {
            libc::ENOENT | libc::ENOTDIR => return 127,
            libc::EACCES | libc::ENOEXEC | libc::EISDIR | libc::EPERM => return 126,
            _ => {}
        }
    }
    125
}

pub(crate) fn io_err(
    what: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { what, path, source }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

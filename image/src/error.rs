//! What can go wrong with images.

use std::io;
use std::path::{Path, PathBuf};

/// What can go wrong with images.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// A layer could not be stored or read (the error names the tar entry or path).
    #[error("{context}: {source}")]
    Layer {
        context: String,
        #[source]
        source: unionfs::Error,
    },
    /// A file operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A JSON document is not what it should be.
    #[error("{}: {reason}", path.display())]
    Json { path: PathBuf, reason: String },
    /// No such image.
    #[error("image {0:?} not found in the store")]
    NotFound(String),
    /// Anything else the caller got wrong.
    #[error("{0}")]
    Invalid(String),
}

/// Result alias of this crate.
pub type Result<T, E = ImageError> = std::result::Result<T, E>;

impl ImageError {
    /// The errno that best says what went wrong (positive), as `runtime::Error::errno`.
    pub fn errno(&self) -> i32 {
        match self {
            ImageError::Layer { source, .. } => {
                source.errno().map(|e| e as i32).unwrap_or(libc::EIO)
            }
            ImageError::Io { source, .. } => source.raw_os_error().unwrap_or(libc::EIO),
            ImageError::Json { .. } | ImageError::Invalid(_) => libc::EINVAL,
            ImageError::NotFound(_) => libc::ENOENT,
        }
    }
}

pub(crate) fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ImageError {
    let path = path.to_path_buf();
    move |source| ImageError::Io { op, path, source }
}

pub(crate) fn layer_err(context: impl Into<String>) -> impl FnOnce(unionfs::Error) -> ImageError {
    let context = context.into();
    move |source| ImageError::Layer { context, source }
}

pub(crate) fn invalid(s: impl Into<String>) -> ImageError {
    ImageError::Invalid(s.into())
}

/// A failure of [`crate::create`] or [`crate::remove`]: of the image store, or of the
/// runtime.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Runtime(#[from] runtime::Error),
    #[error(transparent)]
    Net(Box<runtime::net::Error>),
}

impl From<runtime::net::Error> for Error {
    fn from(e: runtime::net::Error) -> Error {
        Error::Net(Box::new(e))
    }
}

impl Error {
    /// The errno that best says what went wrong (positive).
    pub fn errno(&self) -> i32 {
        match self {
            Error::Image(e) => e.errno(),
            Error::Runtime(e) => e.errno(),
            Error::Net(e) => e.errno(),
        }
    }
}

//! What can go wrong with images.
//!
//! [`ImageError`] is defined in `runtime::image` for now, because `runtime::image_spec`
//! (the image config merged into a runtime spec) still returns it; it moves here when
//! `image_spec` does.

use std::io;
use std::path::Path;

pub use runtime::image::ImageError;

/// Result alias of this crate.
pub type Result<T, E = ImageError> = std::result::Result<T, E>;

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
}

impl Error {
    /// The errno that best says what went wrong (positive).
    pub fn errno(&self) -> i32 {
        match self {
            Error::Image(e) => e.errno(),
            Error::Runtime(e) => e.errno(),
        }
    }
}

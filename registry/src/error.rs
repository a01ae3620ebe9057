//! The registry client's errors.

/// A failure of a registry operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store's own error (a layer that does not unpack, a full disk, ...).
    #[error(transparent)]
    Image(#[from] corral_image::ImageError),
    /// The registry's answer, a refused blob, bad input.
    #[error("{0}")]
    Msg(String),
}

/// The registry client's result.
pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn msg(s: impl Into<String>) -> Error {
    Error::Msg(s.into())
}

/// An error of the registry protocol, with what was being done.
pub(crate) fn oci(
    what: impl std::fmt::Display,
) -> impl FnOnce(oci_client::errors::OciDistributionError) -> Error {
    move |e| Error::Msg(format!("{what}: {e}"))
}

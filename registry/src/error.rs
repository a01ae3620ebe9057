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

/// An error of the registry protocol, with what was being done and every cause under it
/// (reqwest's "error sending request" alone hides the refused connection or bad certificate).
pub(crate) fn oci(
    what: impl std::fmt::Display,
) -> impl FnOnce(oci_client::errors::OciDistributionError) -> Error {
    move |e| Error::Msg(format!("{what}: {}", chain(&e)))
}

/// `e` and its sources, joined by ": ".
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

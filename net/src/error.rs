//! [`Error`]: what went wrong, naming the network, the plugin, the field or the path.

use std::path::PathBuf;

/// A networking error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input: `field` names what was wrong (a flag, a config key, a port spec).
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    /// A network that does not exist, or cannot be made, removed or used as asked.
    #[error("network {name:?}: {reason}")]
    Network { name: String, reason: String },
    /// A CNI plugin failed: the error it returned (CNI's `code`, `msg`, `details`), or
    /// why it could not be run or understood (code 0).
    #[error("CNI plugin {plugin:?} ({command}) of network {network:?}: {msg}{}{}", if *code != 0 { format!(" (CNI error code {code})") } else { String::new() }, if details.is_empty() { String::new() } else { format!(": {details}") })]
    Plugin {
        network: String,
        plugin: String,
        command: String,
        code: u32,
        msg: String,
        details: String,
    },
    /// A file or directory operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// A closure turning an `io::Error` into [`Error::Io`] for `op` on `path`.
#[allow(dead_code)]
pub(crate) fn io_err<'a>(
    op: &'static str,
    path: &'a std::path::Path,
) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// [`Error::Invalid`].
pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

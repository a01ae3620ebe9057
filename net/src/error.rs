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

impl Error {
    /// The errno that best says what went wrong (positive): the I/O error's own, `ENOENT`
    /// for a network that does not exist, `EIO` for a failing plugin, else `EINVAL`.
    pub fn errno(&self) -> i32 {
        match self {
            Error::Io { source, .. } => source.raw_os_error().unwrap_or(libc::EIO),
            Error::Network { reason, .. } if reason.contains("no such network") => libc::ENOENT,
            Error::Plugin { .. } => libc::EIO,
            _ => libc::EINVAL,
        }
    }
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

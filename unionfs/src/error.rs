//! The crate's error type.

use std::io;
use std::path::PathBuf;

use nix::errno::Errno;

/// Everything that can go wrong in this crate.
///
/// Messages are lower-case, name the path involved and, for failed system
/// calls, the errno (e.g. `mkdir /a/b: EEXIST: File exists`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call on `path` failed.
    #[error("{op} {}: {errno}", path.display())]
    Sys {
        op: &'static str,
        path: PathBuf,
        errno: Errno,
    },
    /// An I/O operation on `path` failed without an errno.
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Mounting the overlay failed; `detail` holds the kernel's own message when available.
    #[error("overlay {op} on {}: {errno}{}", target.display(), fmt_detail(detail))]
    Mount {
        op: &'static str,
        target: PathBuf,
        errno: Errno,
        detail: String,
    },
    /// The overlay description is unusable.
    #[error("invalid overlay: {0}")]
    InvalidOverlay(String),
    /// A path cannot be expressed in legacy mount(2) overlay options.
    #[error("overlay path {} contains {ch:?}, which legacy mount(2) options cannot express", path.display())]
    UnrepresentablePath { path: PathBuf, ch: char },
    /// The legacy mount(2) option string would exceed the kernel's one-page limit.
    #[error("overlay mount options are {len} bytes, over the {max}-byte limit of legacy mount(2)")]
    OptionsTooLong { len: usize, max: usize },
    /// Reading or writing a tar stream failed.
    #[error("{op} layer tar: {source}")]
    Tar {
        op: &'static str,
        #[source]
        source: io::Error,
    },
    /// Reading the tar stream failed at some point (`op` says after which entry).
    #[error("{op} layer tar: {source}")]
    TarAt {
        op: String,
        #[source]
        source: io::Error,
    },
    /// Unpacking a tar entry failed.
    #[error("tar entry {}: {source}", entry.display())]
    Entry {
        entry: PathBuf,
        #[source]
        source: Box<Error>,
    },
    /// A tar entry would write outside the destination or is otherwise unsafe.
    #[error("refusing tar entry {}: {reason}", entry.display())]
    UnsafeEntry { entry: PathBuf, reason: String },
    /// The upper directory uses an overlay feature that cannot be expressed as an OCI layer.
    #[error("unsupported overlay feature at {}: {what}", path.display())]
    Unsupported { path: PathBuf, what: &'static str },
    /// A digest string is malformed.
    #[error("invalid digest {0:?}: expected sha256:<64 lower-case hex digits>")]
    InvalidDigest(String),
    /// The layer is not in the store.
    #[error("layer {0} not found in store")]
    LayerNotFound(String),
}

fn fmt_detail(d: &str) -> String {
    if d.is_empty() {
        String::new()
    } else {
        format!(" ({d})")
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn sys(op: &'static str, path: impl Into<PathBuf>, errno: Errno) -> Self {
        Error::Sys {
            op,
            path: path.into(),
            errno,
        }
    }

    /// Build from a std `io::Error`, keeping the errno when there is one.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, e: io::Error) -> Self {
        match e.raw_os_error() {
            Some(n) => Error::sys(op, path, Errno::from_raw(n)),
            None => Error::Io {
                op,
                path: path.into(),
                source: e,
            },
        }
    }

    /// The errno behind this error, if any.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::Sys { errno, .. } | Error::Mount { errno, .. } => Some(*errno),
            Error::Entry { source, .. } => source.errno(),
            Error::Io { source, .. } | Error::Tar { source, .. } | Error::TarAt { source, .. } => {
                source.raw_os_error().map(Errno::from_raw)
            }
            _ => None,
        }
    }
}

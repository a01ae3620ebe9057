//! The crate's error type.

use std::path::{Path, PathBuf};

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while managing a cgroup.
///
/// Every variant names the path it concerns; write errors also carry the
/// value written and the errno (through the `std::io::Error` source).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Writing a value to a control file failed.
    #[error("writing {value:?} to {}: {source}", path.display())]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: std::io::Error,
    },
    /// Reading a control file failed.
    #[error("reading {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A control file held something we could not parse.
    #[error("parsing {}: {reason}", path.display())]
    Parse { path: PathBuf, reason: String },
    /// Creating a cgroup directory failed.
    #[error("creating {}: {source}", path.display())]
    Mkdir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Removing a cgroup directory failed.
    #[error("removing {}: {source}", path.display())]
    Remove {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The leaf cgroup directory already existed (a container id reused?).
    #[error("cgroup {} already exists", path.display())]
    AlreadyExists { path: PathBuf },
    /// The requested setting cannot be honoured on this host: no hierarchy
    /// has the controller, or the kernel lacks the control file(s).
    #[error("{setting} is not supported: {reason}{}", looked_for(files))]
    Unsupported {
        /// The [`crate::Resources`] field name, e.g. `blkio_weight`.
        setting: String,
        /// The control files that were looked for (may be empty).
        files: Vec<PathBuf>,
        reason: String,
    },
    /// The cgroup path given to [`crate::Cgroup::new`] is not acceptable.
    #[error("invalid cgroup path {path:?}: {reason}")]
    InvalidPath { path: String, reason: String },
    /// The host's cgroup layout could not be understood.
    #[error("cgroup hierarchy: {0}")]
    Hierarchy(String),
    /// Sending a signal to a member process failed.
    #[error("sending {signal} to pid {pid} (in {}): {source}", path.display())]
    Signal {
        pid: i32,
        signal: String,
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    /// The freezer did not reach the wanted state in time.
    #[error("timed out waiting for {} to become {state}", path.display())]
    FreezeTimeout { path: PathBuf, state: String },
    /// A device rule cannot be turned into an eBPF device filter (unknown
    /// type or access letter, negative or too large major/minor).
    #[error("invalid device rule {rule:?}: {reason}")]
    InvalidDeviceRule { rule: String, reason: String },
    /// A `bpf(2)` step of installing the eBPF device filter on the cgroup2
    /// directory `path` failed. `log` is the kernel verifier's log when the
    /// program was rejected at load time (empty otherwise).
    #[error("{op} for {}: {source}{}", path.display(), verifier_log(log))]
    Bpf {
        path: PathBuf,
        /// What was being done, e.g. `"loading the device filter"`.
        op: String,
        #[source]
        source: std::io::Error,
        log: String,
    },
}

/// At most this many bytes of the verifier log go into the message (its end:
/// that is where the verifier says what it rejected).
const LOG_TAIL: usize = 4096;

fn verifier_log(log: &str) -> String {
    let log = log.trim_end();
    if log.is_empty() {
        return String::new();
    }
    let mut start = log.len().saturating_sub(LOG_TAIL);
    while !log.is_char_boundary(start) {
        start += 1;
    }
    let cut = if start > 0 { "...\n" } else { "" };
    format!("; verifier log:\n{cut}{}", &log[start..])
}

fn looked_for(files: &[PathBuf]) -> String {
    if files.is_empty() {
        return String::new();
    }
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    format!(" (looked for {})", names.join(", "))
}

impl Error {
    /// Basename of the control file (e.g. `"cpuset.cpus"`) when the error
    /// came from writing a control file, so callers can map it back to the
    /// setting that caused it.
    pub fn file_name(&self) -> Option<&str> {
        match self {
            Error::Write { path, .. } => path.file_name().and_then(|n| n.to_str()),
            _ => None,
        }
    }

    /// The [`crate::Resources`] field name when this is [`Error::Unsupported`].
    pub fn setting(&self) -> Option<&str> {
        match self {
            Error::Unsupported { setting, .. } => Some(setting),
            _ => None,
        }
    }

    /// The errno behind this error, when there is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Write { source, .. }
            | Error::Read { source, .. }
            | Error::Mkdir { source, .. }
            | Error::Remove { source, .. }
            | Error::Bpf { source, .. } => source.raw_os_error(),
            Error::Signal { source, .. } => Some(*source as i32),
            _ => None,
        }
    }

    pub(crate) fn unsupported(
        setting: &str,
        files: Vec<PathBuf>,
        reason: impl Into<String>,
    ) -> Self {
        Error::Unsupported {
            setting: setting.to_string(),
            files,
            reason: reason.into(),
        }
    }

    pub(crate) fn parse(path: &Path, reason: impl Into<String>) -> Self {
        Error::Parse {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}

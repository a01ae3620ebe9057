//! Advisory file locks (`flock`) that serialise commands sharing a store.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use crate::error::{Error, Result};

/// A held `flock` on a file; released when dropped (or when the process dies, so a
/// command killed halfway never leaves the store locked).
#[derive(Debug)]
pub struct FileLock {
    _file: File,
    path: PathBuf,
}

impl FileLock {
    /// Wait for a shared lock on `path` (created if missing).
    pub fn shared(path: &Path) -> Result<FileLock> {
        Self::take(path, libc::LOCK_SH)
    }

    /// Wait for an exclusive lock on `path` (created if missing).
    pub fn exclusive(path: &Path) -> Result<FileLock> {
        Self::take(path, libc::LOCK_EX)
    }

    fn take(path: &Path, how: libc::c_int) -> Result<FileLock> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| Error::io("open lock", path, e))?;
        loop {
            // SAFETY: flock takes integers only; `f` keeps the fd open through the call.
            if unsafe { libc::flock(f.as_raw_fd(), how) } == 0 {
                break;
            }
            match Errno::last() {
                Errno::EINTR => continue,
                e => return Err(Error::sys("flock", path, e)),
            }
        }
        Ok(FileLock {
            _file: f,
            path: path.to_path_buf(),
        })
    }

    /// The locked file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

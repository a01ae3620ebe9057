//! Waiting on a pidfd without holding a lock, and the small helpers around it.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use runtime::ExitStatus;

use crate::errors::Fail;

/// A close-on-exec duplicate of `fd`, owned by the caller.
pub(crate) fn dup_fd(fd: RawFd) -> Result<OwnedFd, Fail> {
    // SAFETY: plain fcntl on an fd the caller keeps open for the call.
    let d = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if d < 0 {
        return Err(Fail::Sys("duplicating the pidfd", errno()));
    }
    // SAFETY: a fresh fd owned here.
    Ok(unsafe { OwnedFd::from_raw_fd(d) })
}

pub(crate) fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// Waits until `fd` is readable, at most until `deadline`: Ok(true) when readable,
/// Ok(false) when the time ran out, `Interrupted` when a signal came (Python's handlers must
/// run before the wait goes on).
pub(crate) fn poll_until(fd: RawFd, deadline: Option<Instant>) -> Result<bool, Fail> {
    poll_any(&[fd], deadline).map(|r| r.is_some())
}

/// Waits until one of `fds` is readable, at most until `deadline`: the index of the first
/// readable one, or None when the time ran out (see [`poll_until`]).
pub(crate) fn poll_any(fds: &[RawFd], deadline: Option<Instant>) -> Result<Option<usize>, Fail> {
    let mut ps: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: *fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    loop {
        let ms = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                i32::try_from(left.as_micros().div_ceil(1000)).unwrap_or(i32::MAX)
            }
        };
        // SAFETY: polling fds we own, `ps.len()` entries.
        let n = unsafe { libc::poll(ps.as_mut_ptr(), ps.len() as libc::nfds_t, ms) };
        if n > 0 {
            return Ok(ps.iter().position(|p| p.revents != 0));
        }
        if n == 0 {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(None);
            }
            continue;
        }
        let e = errno();
        if e == libc::EINTR {
            return Err(Fail::Interrupted);
        }
        return Err(Fail::Sys("waiting on the pidfd", e));
    }
}

/// `(returncode, signal)`: the exit code or `-signal`, and the signal (None if it exited);
/// `(None, None)` when the status is unknown (a container this process did not create).
pub(crate) fn exit_tuple(e: ExitStatus) -> (Option<i32>, Option<i32>) {
    match e {
        ExitStatus::Exited(c) => (Some(c), None),
        ExitStatus::Signaled(s) => (Some(-s), Some(s)),
        ExitStatus::Unknown => (None, None),
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The process id of the caller (a container made before a fork is not the child's).
pub(crate) fn my_pid() -> u32 {
    std::process::id()
}

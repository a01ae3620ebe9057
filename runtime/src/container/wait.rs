//! Signals and waits: the init process's end, and the exec'd processes reaped on the way.
#![deny(clippy::undocumented_unsafe_blocks)]

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use nix::errno::Errno;

use super::{cgroup_err, pidfd_signal, Container};
use crate::state::Status;
use crate::{Error, Result};

/// How the container's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// It exited with this code.
    Exited(i32),
    /// A signal killed it.
    Signaled(i32),
    /// It is gone, but it was not this process's child, so its status is not known.
    Unknown,
}

impl ExitStatus {
    /// The shell convention: the exit code, or 128 + the signal number.
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => c,
            ExitStatus::Signaled(s) => 128 + s,
            ExitStatus::Unknown => 255,
        }
    }

    pub(super) fn from_wait(st: libc::c_int) -> ExitStatus {
        if libc::WIFSIGNALED(st) {
            ExitStatus::Signaled(libc::WTERMSIG(st))
        } else {
            ExitStatus::Exited(libc::WEXITSTATUS(st))
        }
    }
}

impl Container {
    /// Sends `sig` to every process of the container (through its cgroup).
    pub fn signal_all(&self, sig: i32) -> Result<()> {
        let s = nix::sys::signal::Signal::try_from(sig).map_err(|e| Error::Sys {
            id: self.id.clone(),
            what: format!("signal {sig}"),
            errno: e,
        })?;
        match &self.cgroup {
            Some(cg) => cg.kill_all(s).map_err(|e| cgroup_err(&self.id, e)),
            None => self.signal(sig),
        }
    }

    /// Sends `sig` to the init process (through its pidfd: never to a recycled pid).
    pub fn signal(&self, sig: i32) -> Result<()> {
        if self.exit.is_some()
            || self.pidfd.is_none() && !self.own_child
            || !self.own_child && self.status() == Status::Stopped
        {
            return Err(Error::State {
                id: self.id.clone(),
                status: "stopped",
                want: "created or running",
            });
        }
        let r = match &self.pidfd {
            Some(fd) => pidfd_signal(fd, sig),
            // Our own child, not reaped yet (so its pid is not reused). libc's kill, not
            // nix's: `sig` may be a real-time signal, which nix's `Signal` cannot hold.
            // SAFETY: kill(2) takes two integers and touches no memory of ours.
            None => Errno::result(unsafe { libc::kill(self.pid, sig) }).map(drop),
        };
        match r {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(errno) => {
                return Err(Error::Sys {
                    id: self.id.clone(),
                    what: format!("sending signal {sig}"),
                    errno,
                })
            }
        }
        Ok(())
    }

    /// Waits for the init process to exit (returns at once if it already did). For a
    /// container this process did not create, the exit status is [`ExitStatus::Unknown`].
    pub fn wait(&mut self) -> Result<ExitStatus> {
        if !self.own_child {
            if let Some(fd) = &self.pidfd {
                let mut p = libc::pollfd {
                    fd: fd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: `p` is one live pollfd (count 1) on the pidfd we own; poll only
                // writes its `revents`.
                while unsafe { libc::poll(&mut p, 1, -1) } < 0 {}
            }
            self.exit = Some(ExitStatus::Unknown);
            return Ok(ExitStatus::Unknown);
        }
        self.reap(true).map(|s| s.unwrap_or(ExitStatus::Unknown))
    }

    /// Waits at most `timeout` (`None`: for ever) for the init process to exit: `Ok(None)`
    /// when it is still running then. It waits on the process's pidfd, so it takes no signal
    /// and leaves every other child of the caller alone.
    pub fn wait_timeout(
        &mut self,
        timeout: Option<std::time::Duration>,
    ) -> Result<Option<ExitStatus>> {
        if let Some(e) = self.exit {
            return Ok(Some(e));
        }
        let fd = self.wait_fd().unwrap_or(-1);
        if fd < 0 {
            // No pidfd (a kernel without one): only the blocking wait can tell.
            return match timeout {
                None => self.wait().map(Some),
                Some(_) => self.try_wait(),
            };
        }
        if self.own_child && !self.live_execs().is_empty() {
            return self.wait_with_execs(timeout.map(|t| std::time::Instant::now() + t));
        }
        if !poll_readable(fd, timeout) {
            return self.try_wait();
        }
        if self.own_child {
            self.reap(true)
        } else {
            self.exit = Some(ExitStatus::Unknown);
            Ok(Some(ExitStatus::Unknown))
        }
    }

    /// Returns the exit status if the init process has exited, without blocking.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        if !self.own_child {
            return Ok(if self.status() == Status::Stopped {
                Some(ExitStatus::Unknown)
            } else {
                None
            });
        }
        self.reap(false)
    }

    /// The exec'd processes not reaped yet.
    fn live_execs(&self) -> Vec<Arc<ExecReaper>> {
        let mut execs = self.execs.lock().unwrap_or_else(|p| p.into_inner());
        execs.retain(|r| !r.done.load(Ordering::Relaxed));
        execs.clone()
    }

    /// Waits (until `deadline`, or for ever) for our init to exit while reaping the exec'd
    /// processes as they end: the init of a pid namespace finishes exiting only once every
    /// process of its namespace is reaped, and ours are ours to reap. `Ok(None)`: time ran
    /// out.
    pub(super) fn wait_with_execs(
        &mut self,
        deadline: Option<std::time::Instant>,
    ) -> Result<Option<ExitStatus>> {
        loop {
            let live = self.live_execs();
            for r in &live {
                let _ = r.reap(false);
            }
            if let Some(e) = self.reap_now()? {
                return Ok(Some(e));
            }
            let mut fds: Vec<libc::pollfd> = live
                .iter()
                .filter(|r| !r.done.load(Ordering::Relaxed))
                .map(|r| libc::pollfd {
                    fd: r.pidfd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect();
            if let Some(fd) = self.pidfd() {
                fds.push(libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                });
            }
            let ms = match deadline {
                None => -1,
                Some(d) => {
                    let left = d.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        return Ok(None);
                    }
                    i32::try_from(left.as_micros().div_ceil(1000)).unwrap_or(i32::MAX)
                }
            };
            // A pidfd-less kernel: look again soon.
            let ms = if fds.is_empty() { ms.clamp(0, 1) } else { ms };
            // SAFETY: `fds` holds `fds.len()` live pollfds on pidfds owned by the container and by
            // the reapers in `live`, which outlive the call; poll only writes their `revents`.
            unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        }
    }

    fn reap_now(&mut self) -> Result<Option<ExitStatus>> {
        self.reap_inner(false)
    }

    fn reap(&mut self, block: bool) -> Result<Option<ExitStatus>> {
        if block && self.exit.is_none() && !self.live_execs().is_empty() {
            return self.wait_with_execs(None);
        }
        self.reap_inner(block)
    }

    fn reap_inner(&mut self, block: bool) -> Result<Option<ExitStatus>> {
        if let Some(e) = self.exit {
            return Ok(Some(e));
        }
        let mut st = 0;
        loop {
            let flags = if block { 0 } else { libc::WNOHANG };
            // SAFETY: `st` is a live c_int the kernel writes the status into; the pid is our
            // own child's (own_child), reaped here or by another handle (then ECHILD).
            let r = unsafe { libc::waitpid(self.pid, &mut st, flags) };
            if r < 0 {
                if Errno::last() == Errno::EINTR {
                    continue;
                }
                if Errno::last() == Errno::ECHILD {
                    // Not (or no longer) our child: another handle in this process reaped it.
                    // Its pidfd still tells when it is gone; how it ended is not ours to know.
                    self.own_child = false;
                    return if block {
                        self.wait().map(Some)
                    } else {
                        self.try_wait()
                    };
                }
                return Err(Error::Sys {
                    id: self.id.clone(),
                    what: format!("waiting for pid {}", self.pid),
                    errno: Errno::last(),
                });
            }
            if r == 0 {
                return Ok(None);
            }
            let e = ExitStatus::from_wait(st);
            self.exit = Some(e);
            // Recorded when the container is kept (detach, or a handle dropped without
            // delete), not here: a delete right after the wait removes the state dir, and a
            // status is derived from the process anyway (its recorded pid is gone).
            self.state.status = Status::Stopped;
            self.stopped_unwritten = true;
            return Ok(Some(e));
        }
    }
}

/// Waits until `fd` is readable (a pidfd: its process exited), at most `timeout`; false when
/// the time ran out. Interrupted waits go on with the time that is left. (For faces that wait
/// on a duplicate of a container's pidfd without holding the container.)
pub fn poll_readable(fd: RawFd, timeout: Option<std::time::Duration>) -> bool {
    let deadline = timeout.map(|t| std::time::Instant::now() + t);
    loop {
        let ms = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(std::time::Instant::now());
                // Round up, so that a wait never ends before its time.
                i32::try_from(left.as_micros().div_ceil(1000)).unwrap_or(i32::MAX)
            }
        };
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `p` is one live pollfd (count 1); poll only writes its `revents`. An fd that
        // is not open is reported in `revents` (POLLNVAL), never used as memory.
        let n = unsafe { libc::poll(&mut p, 1, ms) };
        if n > 0 {
            return true;
        }
        if n == 0 {
            return false;
        }
        if Errno::last() != Errno::EINTR {
            return false;
        }
    }
}

/// The end of an exec'd process, shared by its [`ExecProcess`] and its [`Container`]: the init
/// of a pid namespace cannot finish exiting while a process of its namespace is an unreaped
/// child of ours, so the container's delete reaps what its exec'd processes left.
#[derive(Debug)]
pub(super) struct ExecReaper {
    pub(super) pid: i32,
    pub(super) pidfd: OwnedFd,
    pub(super) exit: Mutex<Option<ExitStatus>>,
    pub(super) done: AtomicBool,
}

impl ExecReaper {
    pub(super) fn reap(&self, block: bool) -> Result<Option<ExitStatus>> {
        let mut exit = self.exit.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = *exit {
            return Ok(Some(e));
        }
        let flags = if block { 0 } else { libc::WNOHANG };
        let mut st = 0;
        loop {
            // SAFETY: `st` is a live c_int the kernel writes the status into; the pid is our own
            // child's, which only this reaper (under its lock) reaps.
            let r = unsafe { libc::waitpid(self.pid, &mut st, flags) };
            if r < 0 && Errno::last() == Errno::EINTR {
                continue;
            }
            let e = if r < 0 && Errno::last() == Errno::ECHILD {
                // Reaped by someone else in this process (a wait of its own on the pid).
                ExitStatus::Unknown
            } else if r < 0 {
                return Err(Error::Sys {
                    id: String::new(),
                    what: format!("waiting for pid {}", self.pid),
                    errno: Errno::last(),
                });
            } else if r == 0 {
                return Ok(None);
            } else {
                ExitStatus::from_wait(st)
            };
            *exit = Some(e);
            self.done.store(true, Ordering::Relaxed);
            return Ok(Some(e));
        }
    }
}

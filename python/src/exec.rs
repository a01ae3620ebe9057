//! Processes exec'd into a container: `corral._corral.Process` and the container's list
//! of them.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use pyo3::prelude::*;
use runtime::ExitStatus;

use crate::args::{signal_arg, timeout_arg};
use crate::errors::{fail_err, Fail};
use crate::wait::{dup_fd, exit_tuple, lock, my_pid, poll_until};

/// One exec'd process, shared by its handle and its container.
pub(crate) type ExecSlot = Arc<Mutex<Option<runtime::ExecProcess>>>;

/// Reaps the exec'd processes that have exited (with `kill`: kills the others first and
/// waits for them), and forgets them.
pub(crate) fn reap_execs(execs: &Mutex<Vec<ExecSlot>>, kill: bool) {
    lock(execs).retain(|slot| {
        let mut g = lock(slot);
        let Some(p) = g.as_mut() else { return false };
        if kill {
            let _ = p.signal(libc::SIGKILL);
            let _ = p.wait();
            false
        } else {
            matches!(p.try_wait(), Ok(None))
        }
    });
}

/// Duplicates of the pidfds of the exec'd processes still running.
pub(crate) fn exec_fds(execs: &Mutex<Vec<ExecSlot>>) -> Vec<OwnedFd> {
    lock(execs)
        .iter()
        .filter_map(|slot| lock(slot).as_ref().and_then(|p| dup_fd(p.pidfd()).ok()))
        .collect()
}

/// The native handle of a process started by `Container.exec`.
#[pyclass(frozen, module = "corral._corral")]
pub(crate) struct Process {
    pub(crate) id: String,
    pub(crate) pid: i32,
    pub(crate) owner: u32,
    /// Shared with its container, which reaps it if it exits while nobody waits.
    pub(crate) inner: ExecSlot,
}

impl Process {
    fn wait_once(&self, deadline: Option<Instant>) -> Result<Option<ExitStatus>, Fail> {
        let fd = {
            let g = lock(&self.inner);
            let p = g.as_ref().ok_or(Fail::State("process handle is closed"))?;
            dup_fd(p.pidfd())?
        };
        if !poll_until(fd.as_raw_fd(), deadline)? {
            return Ok(None);
        }
        let mut g = lock(&self.inner);
        let p = g.as_mut().ok_or(Fail::State("process handle is closed"))?;
        Ok(p.try_wait()?)
    }
}

#[pymethods]
impl Process {
    /// Its pid (host pid namespace).
    #[getter]
    fn pid(&self) -> i32 {
        self.pid
    }

    /// Waits at most `timeout` seconds; None when the time ran out, else
    /// `(returncode, signal)`.
    #[pyo3(signature = (timeout=None))]
    fn wait(
        &self,
        py: Python<'_>,
        timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Option<(Option<i32>, Option<i32>)>> {
        let deadline = timeout_arg(timeout)?.map(|t| Instant::now() + t);
        loop {
            let r = py.allow_threads(|| self.wait_once(deadline));
            match r {
                Err(Fail::Interrupted) => py.check_signals()?,
                r => {
                    return r
                        .map(|o| o.map(exit_tuple))
                        .map_err(|e| fail_err(py, &self.id, e))
                }
            }
        }
    }

    /// `(returncode, signal)` if it has exited, else None; never blocks.
    fn poll(&self, py: Python<'_>) -> PyResult<Option<(Option<i32>, Option<i32>)>> {
        let r = py.allow_threads(|| -> Result<_, Fail> {
            let mut g = lock(&self.inner);
            let p = g.as_mut().ok_or(Fail::State("process handle is closed"))?;
            Ok(p.try_wait()?)
        });
        r.map(|o| o.map(exit_tuple))
            .map_err(|e| fail_err(py, &self.id, e))
    }

    /// Sends `signal` to it.
    fn kill(&self, py: Python<'_>, signal: &Bound<'_, PyAny>) -> PyResult<()> {
        let sig = signal_arg(signal)?;
        let r = py.allow_threads(|| -> Result<(), Fail> {
            let g = lock(&self.inner);
            let p = g.as_ref().ok_or(Fail::State("process handle is closed"))?;
            Ok(p.signal(sig)?)
        });
        r.map_err(|e| fail_err(py, &self.id, e))
    }

    /// A new fd (the caller closes it) readable when the process exits.
    fn wait_fd(&self, py: Python<'_>) -> PyResult<RawFd> {
        let r = py.allow_threads(|| -> Result<RawFd, Fail> {
            let g = lock(&self.inner);
            let p = g.as_ref().ok_or(Fail::State("process handle is closed"))?;
            let d = dup_fd(p.pidfd())?;
            let raw = d.as_raw_fd();
            std::mem::forget(d);
            Ok(raw)
        });
        r.map_err(|e| fail_err(py, &self.id, e))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if my_pid() != self.owner {
            return;
        }
        // Reap it if it has exited; else it runs on, and its container reaps it.
        if let Some(p) = lock(&self.inner).as_mut() {
            let _ = p.try_wait();
        }
    }
}

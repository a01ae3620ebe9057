//! `delete`: the container's processes killed, its cgroups, mounts and state dir removed.
#![deny(clippy::undocumented_unsafe_blocks)]

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use nix::errno::Errno;

use super::cgroup_ops::kill_and_remove;
use super::wait::ExecReaper;
use super::{pidfd_open, pidfd_signal, Container, ExitStatus};
use crate::state::{self, Status};
use crate::{Error, Result};

impl Container {
    /// Kills what is left of the container and removes everything it made: its processes,
    /// cgroups, root filesystem mount and state dir. Every step is tried; the first error is
    /// returned.
    pub fn delete(mut self) -> Result<()> {
        self.teardown()
    }

    /// `delete` as the CLI does it: a running or paused container is refused unless `force`.
    pub fn delete_checked(self, force: bool) -> Result<()> {
        let st = self.status();
        if !force && matches!(st, Status::Running | Status::Paused) {
            return Err(Error::State {
                id: self.id.clone(),
                status: st.as_str(),
                want: "stopped or created (or use --force)",
            });
        }
        self.delete()
    }

    fn teardown(&mut self) -> Result<()> {
        if let Some(d) = &mut self.state_dir {
            d.relock()?;
        }
        let mut first: Option<Error> = None;
        let mut note = |r: Result<()>| {
            if let Err(e) = r {
                if first.is_none() {
                    first = Some(e);
                }
            }
        };
        // A process still at its start gate: dropping its Spawning kills and reaps it, so
        // there is nothing left to wait for (waiting again would fail with ECHILD).
        if let Some(sp) = self.spawning.take() {
            drop(sp);
            self.exit.get_or_insert(ExitStatus::Signaled(libc::SIGKILL));
        }
        if self.half_made {
            // Its creator died: its process may still wait at its start gate (it no longer
            // dies with its creator there). Kill it by its recorded pid (the pidfd was opened
            // only if the start time matched), and any process that holds the state dir open
            // as its gate (one whose pid was not recorded yet, after a second fork).
            if let Some(fd) = &self.pidfd {
                kill_and_wait(&self.id, self.pid, fd, &mut note);
            }
            if let Some(d) = &self.state_dir {
                for (pid, fd) in gate_holders(d.path()) {
                    kill_and_wait(&self.id, pid, &fd, &mut note);
                }
            }
        } else if self.exit.is_none() {
            if self.status() == Status::Paused {
                if let Some(cg) = &self.cgroup {
                    let _ = cg.thaw();
                }
            }
            let _ = self.signal(libc::SIGKILL);
            let execs: Vec<Arc<ExecReaper>> =
                std::mem::take(&mut *self.execs.lock().unwrap_or_else(|p| p.into_inner()));
            let live: Vec<_> = execs
                .into_iter()
                .filter(|r| !r.done.load(Ordering::Relaxed))
                .collect();
            if self.own_child && !live.is_empty() {
                // Its exec'd processes die with it, but its exit waits until they are reaped.
                let _ = self.signal_all(libc::SIGKILL);
                *self.execs.lock().unwrap_or_else(|p| p.into_inner()) = live;
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
                match self.wait_with_execs(Some(deadline)) {
                    Ok(Some(_)) => {}
                    Ok(None) => note(Err(Error::Sys {
                        id: self.id.clone(),
                        what: format!("process {} did not exit within 10 s of SIGKILL", self.pid),
                        errno: Errno::ETIMEDOUT,
                    })),
                    Err(e) => note(Err(e)),
                }
            } else if self.own_child {
                note(self.wait().map(|_| ()));
            } else if let Some(fd) = &self.pidfd {
                wait_gone(&self.id, self.pid, fd, &mut note);
                self.exit = Some(ExitStatus::Unknown);
            }
        }
        crate::fault::point("delete:after-kill");
        if let Some(cg) = self.cgroup.take() {
            note(kill_and_remove(&self.id, &cg));
        }
        crate::fault::point("delete:after-cgroup");
        // Mounts made in the host's namespace (no mount namespace of its own), before the
        // overlay root they may sit in.
        let host_mounts = std::mem::take(&mut self.state.host_mounts);
        if let Err((p, errno)) = crate::hostmounts::unmount(&host_mounts) {
            note(Err(Error::Sys {
                id: self.id.clone(),
                what: format!("unmounting {}", p.display()),
                errno,
            }));
        }
        if let Some(m) = self.overlay.take() {
            note(m.unmount().map_err(|e| Error::Rootfs {
                id: self.id.clone(),
                source: e,
            }));
        } else if let Some(p) = self.state.rootfs_mount.take().or_else(|| {
            // Nothing recorded: a root mounted there all the same goes first.
            self.state_dir
                .as_ref()
                .filter(|_| self.half_made)
                .map(|d| state::overlay_paths(d.path()).0)
        }) {
            // Mounted by the process that created the container.
            if let Err(e) = nix::mount::umount2(&p, nix::mount::MntFlags::MNT_DETACH) {
                if e != Errno::EINVAL && e != Errno::ENOENT {
                    note(Err(Error::Sys {
                        id: self.id.clone(),
                        what: format!("unmounting {}", p.display()),
                        errno: e,
                    }));
                }
            }
        }
        // Removed with the state dir: nothing to record.
        self.stopped_unwritten = false;
        if let Some(d) = self.state_dir.take() {
            crate::fault::point("delete:before-state-dir");
            note(d.remove());
            // poststop hooks: after the container is gone; a failure only warns.
            if let Some(spec) = &self.config {
                let hooks = crate::hooks::of(spec, "poststop");
                if !hooks.is_empty() {
                    let json = crate::hooks::state_json(&self.state, "stopped");
                    for e in crate::hooks::run_all("poststop", &hooks, &json) {
                        tracing::warn!(container = %self.id, "{e}");
                    }
                }
            }
        }
        match first {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if !self.owned {
            if self.state_dir.is_some() {
                if let Err(e) = self.write_stopped() {
                    tracing::warn!(container = %self.id, "recording its stop: {e}");
                }
            }
            return;
        }
        if let Err(e) = self.teardown() {
            tracing::warn!(container = %self.id, "cleanup: {e}");
        }
    }
}

/// Kills a process that is not our child through its pidfd and waits until it is gone.
fn kill_and_wait(id: &str, pid: i32, fd: &OwnedFd, note: &mut impl FnMut(Result<()>)) {
    let _ = pidfd_signal(fd, libc::SIGKILL);
    wait_gone(id, pid, fd, note);
}

/// Waits until the pidfd of a process that is not our child is readable (it exited). Its exit
/// can hang on processes of its pid namespace that their parent has not reaped; do not wait
/// forever for that.
fn wait_gone(id: &str, pid: i32, fd: &OwnedFd, note: &mut impl FnMut(Result<()>)) {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `p` is one live pollfd (count 1) on a pidfd borrowed for the call; poll only
    // writes its `revents`.
    let n = unsafe { libc::poll(&mut p, 1, 10_000) };
    if n == 0 {
        note(Err(Error::Sys {
            id: id.to_string(),
            what: format!("process {pid} did not exit within 10 s of SIGKILL (unreaped processes in its pid namespace?)"),
            errno: Errno::ETIMEDOUT,
        }));
    }
}

/// Processes (pid and pidfd) holding an `O_PATH` fd on `dir`: a container's process waiting
/// at its start gate holds one on its state dir (whatever its cgroup, and also when its pid
/// was never recorded). Other commands waiting for the dir's lock hold it open too, but not
/// `O_PATH`.
fn gate_holders(dir: &Path) -> Vec<(i32, OwnedFd)> {
    use std::os::unix::fs::MetadataExt;
    let me = nix::unistd::getpid().as_raw();
    // The same directory: compared by device and inode, whatever path reached it.
    let Ok(want) = std::fs::metadata(dir).map(|m| (m.dev(), m.ino())) else {
        return Vec::new();
    };
    let holds = |pid: i32| -> bool {
        let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            return false;
        };
        rd.flatten().any(|e| {
            std::fs::metadata(e.path()).is_ok_and(|m| (m.dev(), m.ino()) == want)
                && std::fs::read_to_string(format!(
                    "/proc/{pid}/fdinfo/{}",
                    e.file_name().to_string_lossy()
                ))
                .ok()
                .and_then(|info| {
                    let flags = info.lines().find_map(|l| l.strip_prefix("flags:"))?;
                    u32::from_str_radix(flags.trim(), 8).ok()
                })
                .is_some_and(|f| f & libc::O_PATH as u32 != 0)
        })
    };
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me && holds(pid))
        .filter_map(|pid| {
            let fd = pidfd_open(pid).ok()?;
            // Still the same process (a recycled pid would not hold the fd).
            holds(pid).then_some((pid, fd))
        })
        .collect()
}

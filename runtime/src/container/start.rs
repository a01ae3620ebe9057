//! `start`: the gate opened (or, for a warm pool's container, the program sent, and the
//! state `running` written), the poststart hooks run.
#![deny(clippy::undocumented_unsafe_blocks)]

use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::{io_err, ns_error, Container, ExitStatus, Options, FIFO};
use crate::prepare;
use crate::state::Status;
use crate::{Error, Result};

impl Container {
    /// Creates the container and starts its process (create + start), through the socket
    /// gate ([`Options::start_in_process`]).
    pub fn create_and_start(id: &str, bundle: &Path, opts: &Options) -> Result<Container> {
        let opts = Options {
            start_in_process: true,
            ..opts.clone()
        };
        let mut c = Container::create(id, bundle, &opts)?;
        c.start()?;
        Ok(c)
    }

    /// Opens the start gate: the process execs. Fails if it is not waiting there. Its
    /// duration is the phase `start` of [`Container::timings`].
    pub fn start(&mut self) -> Result<()> {
        let t = std::time::Instant::now();
        let r = self.start_inner();
        if r.is_ok() {
            self.timings.push(crate::timings::START_PHASE, t.elapsed());
        }
        r
    }

    fn start_inner(&mut self) -> Result<()> {
        let status = self.status();
        if status != Status::Created {
            return Err(Error::State {
                id: self.id.clone(),
                status: status.as_str(),
                want: "created",
            });
        }
        if self.late_exec {
            return Err(Error::State {
                id: self.id.clone(),
                status: "waiting for its program",
                want: "started with start_with",
            });
        }
        let dir = self
            .state_dir
            .as_ref()
            .map(|d| d.path().to_path_buf())
            .unwrap_or_default();
        let fifo = dir.join(FIFO);
        // The config create accepted; read before the gate opens, so that a config that
        // cannot be read fails the start before anything runs.
        let poststart = crate::hooks::of(self.config()?, "poststart");
        // Our own child at the socket gate (`Options::start_in_process`): `START`, and it
        // execs.
        if let Some(sp) = self.spawning.take_if(|sp| !sp.has_fifo_gate()) {
            crate::fault::point("start:before-gate");
            let spawned = sp.start().map_err(|e| self.failed_exec(e))?;
            crate::fault::point("start:after-gate");
            self.pidfd = Some(spawned.pidfd);
            return self.started(&poststart);
        }
        // Our own child: it may now outlive us (it waits for that word before its gate).
        if let Some(sp) = self.spawning.as_mut() {
            sp.let_go().map_err(|e| ns_error(&self.id, e))?;
        }
        crate::fault::point("start:before-gate");
        // Non-blocking open: never wait for a writer that died. Then wait until the process
        // writes its byte, or dies.
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&fifo)
            .map_err(|e| io_err(&self.id, "opening start gate", &fifo, e))?;
        crate::fault::point("start:gate-opened");
        let death = match &self.spawning {
            Some(sp) => sp.pidfd().unwrap_or(-1),
            None => self.pidfd.as_ref().map(|f| f.as_raw_fd()).unwrap_or(-1),
        };
        let mut passed = false;
        loop {
            let mut fds = [
                libc::pollfd {
                    fd: f.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: death,
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: `fds` is an array of exactly 2 live pollfds; poll only writes their
            // `revents`. The gate fd is `f`'s, open here; `death` is a pidfd the container
            // holds for the call, or -1, which poll ignores.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
            if n < 0 {
                continue;
            }
            if fds[0].revents & libc::POLLIN != 0 {
                // The process's report: it passed the gate, or a startContainer hook (which
                // it runs itself, past the gate) failed.
                let mut b = [0u8; ns::GATE_REPORT_MAX];
                let n = std::io::Read::read(&mut &f, &mut b).unwrap_or(0);
                match ns::gate_result(b.get(..n).unwrap_or_default()) {
                    Ok(p) => passed = p,
                    Err(h) => {
                        // A failed startContainer hook. The spec says the runtime generates an
                        // error and stops the container; runc 1.1 and youki (and the
                        // engines and conformance suites written against them) have `start`
                        // succeed, run the poststart hooks, and the container's process exit
                        // without running its program. corral does as they do: the program
                        // never runs (the process exits 127 after its report, so the
                        // container is stopped), the error is a warning in runc's words,
                        // and the lifecycle goes on. (ARCHITECTURE.md, "Conformance".)
                        let _ = std::fs::remove_file(&fifo);
                        let warning = format!(
                            "error running hook #{}: {}; the container's program did not run",
                            h.index,
                            crate::hooks::start_failure(self.config()?, &h)
                        );
                        tracing::warn!(container = %self.id, "{warning}");
                        self.warnings.push(warning);
                        // The process exits after its report: reap it here when it is ours.
                        if let Some(sp) = self.spawning.take() {
                            let _ = sp.wait_exec();
                            self.exit = Some(ExitStatus::Exited(127));
                        }
                        return self.started(&poststart);
                    }
                }
                break;
            }
            if fds[0].revents & libc::POLLHUP != 0 || fds[1].revents != 0 {
                break;
            }
        }
        let _ = std::fs::remove_file(&fifo);
        crate::fault::point("start:after-gate");
        if let Some(sp) = self.spawning.take() {
            // Exec succeeded, or the child says why it failed (before or after the gate).
            let spawned = sp.wait_exec().map_err(|e| self.failed_exec(e))?;
            self.pidfd = Some(spawned.pidfd);
        } else if !passed {
            return Err(Error::State {
                id: self.id.clone(),
                status: "stopped",
                want: "created",
            });
        }
        self.started(&poststart)
    }

    /// The error of a child that did not exec. It was reaped on the way (all but a pidfd
    /// that could not be opened after a successful exec): teardown has nothing left to wait
    /// for.
    fn failed_exec(&mut self, e: ns::Error) -> Error {
        if !matches!(
            e,
            ns::Error::Sys {
                what: "pidfd_open",
                ..
            }
        ) {
            self.exit = Some(ExitStatus::Unknown);
        }
        ns_error(&self.id, e)
    }

    /// Starts a container made with [`Options::late_exec`] (a warm pool's): its process execs
    /// `args` with the config's environment plus `env`, looked up in that environment's `PATH`,
    /// with `stdio` as its stdin, stdout and stderr (`-1`: those it was created with). Its
    /// duration is the phase `start` of [`Container::timings`].
    pub fn start_with(
        &mut self,
        args: &[String],
        env: &[(String, String)],
        stdio: [RawFd; 3],
    ) -> Result<()> {
        let t = std::time::Instant::now();
        let r = self.start_late(args, env, stdio);
        if r.is_ok() {
            self.timings.push(crate::timings::START_PHASE, t.elapsed());
        }
        r
    }

    fn start_late(
        &mut self,
        args: &[String],
        env: &[(String, String)],
        stdio: [RawFd; 3],
    ) -> Result<()> {
        if !self.late_exec || self.spawning.is_none() || self.exit.is_some() {
            return Err(Error::State {
                id: self.id.clone(),
                status: self.status().as_str(),
                want: "created with Options::late_exec and not started",
            });
        }
        let cfg = |field: String, reason: &str| Error::Config {
            field,
            reason: reason.into(),
        };
        if args.first().is_none_or(|a| a.is_empty()) {
            return Err(cfg("process.args".into(), "must not be empty"));
        }
        let process = self.config()?.process().clone().unwrap_or_default();
        let mut envs = process.env().clone().unwrap_or_default();
        for (k, v) in env {
            if k.is_empty() || k.contains('=') {
                return Err(cfg("process.env".into(), "not a variable name"));
            }
            envs.retain(|e| e.split('=').next() != Some(k.as_str()));
            envs.push(format!("{k}={v}"));
        }
        let cs = |field: String, v: &str| {
            std::ffi::CString::new(v).map_err(|_| cfg(field, "contains a NUL byte"))
        };
        let argv = args
            .iter()
            .enumerate()
            .map(|(i, a)| cs(format!("process.args[{i}]"), a))
            .collect::<Result<Vec<_>>>()?;
        let envp = envs
            .iter()
            .enumerate()
            .map(|(i, e)| cs(format!("process.env[{i}]"), e))
            .collect::<Result<Vec<_>>>()?;
        let cands = prepare::exec_candidates(&args[0], &envs)?;
        let poststart = crate::hooks::of(self.config()?, "poststart");
        let mut sp = self.spawning.take().ok_or_else(|| Error::State {
            id: self.id.clone(),
            status: "started",
            want: "created",
        })?;
        if let Err(e) = sp.send_late(&argv, &envp, &cands, stdio) {
            // Nothing was sent: it still waits.
            self.spawning = Some(sp);
            return Err(ns_error(&self.id, e));
        }
        // The state is written while the process execs (on the other CPU), not after.
        self.state.status = Status::Running;
        let written = match &self.state_dir {
            Some(d) => d.write(&self.state),
            None => Ok(()),
        };
        let spawned = sp.wait_late().map_err(|e| {
            self.exit = Some(ExitStatus::Unknown);
            ns_error(&self.id, e)
        })?;
        self.pidfd = Some(spawned.pidfd);
        written?;
        self.started_written(&poststart)
    }

    /// After the exec: the poststart hooks, the lock released. Nothing is written: the state
    /// stays `created`, and the status `running` is derived from the process (alive, past
    /// its gate: `exec.fifo` removed, the state dir no longer held open), as runc derives
    /// it. Saves replacing state.json on every start (on ext4, a rename over a file starts
    /// the writeback of its data).
    fn started(&mut self, poststart: &[oci_spec::runtime::Hook]) -> Result<()> {
        self.started_written(poststart)
    }

    /// [`Container::started`] once the state says what it must (a warm pool's container
    /// recorded `running`: its status cannot be derived from a gate).
    fn started_written(&mut self, poststart: &[oci_spec::runtime::Hook]) -> Result<()> {
        crate::fault::point("start:after-state");
        if !poststart.is_empty() {
            // runtime-spec 1.3 (and runc): a failing poststart hook fails the start and stops
            // the container.
            let json = crate::hooks::state_json(&self.state, "running");
            if let Err(message) = crate::hooks::run("poststart", poststart, &json) {
                let _ = self.signal_all(libc::SIGKILL);
                if self.own_child {
                    let _ = self.wait();
                }
                return Err(Error::Hook {
                    id: self.id.clone(),
                    message,
                });
            }
        }
        if let Some(d) = &mut self.state_dir {
            d.unlock();
        }
        Ok(())
    }
}

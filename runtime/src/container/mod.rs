//! A container's life in one process: create, start, wait, signal, delete.

mod create;

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use cgroup::{Cgroup, Hierarchy};
use nix::errno::Errno;
use unionfs::OverlayMount;

use crate::prepare;
use crate::state::{self, State, StateDir, Status};
use crate::{resources, Error, Result};

/// How to create a container, beyond its bundle.
#[derive(Debug, Clone)]
pub struct Options {
    /// The state root (`/run/corral` by default).
    pub root: PathBuf,
    /// Read-only image layers, bottom first. When given, the root filesystem is an overlay of
    /// these layers under a writable upper layer kept in the state dir, instead of
    /// `root.path`.
    pub layers: Vec<PathBuf>,
    /// Move the root instead of `pivot_root` (for roots on initramfs).
    pub no_pivot: bool,
    /// Number of fds after stdio that the process inherits (3 .. 3+N), at most
    /// [`ns::MAX_PRESERVE_FDS`]. The runtime keeps its own fds out of that range.
    pub preserve_fds: u32,
    /// Fds in the preserved range that are not the caller's to pass: placeholders a host put
    /// there so that its own later fds stay out of the range (see the CLI). The container's
    /// process closes them.
    pub preserve_holes: Vec<RawFd>,
    /// Fds to use as the process's stdin, stdout and stderr (`-1`: the caller's own). They
    /// must stay open until `create_and_start` returns.
    pub stdio: [RawFd; 3],
    /// With `process.terminal`: a unix socket to send the pty master to (SCM_RIGHTS), as
    /// runc's `--console-socket`. Without one, the master stays with the [`Container`]
    /// ([`Container::take_console`]).
    pub console_socket: Option<PathBuf>,
    /// Keep the caller's session keyring instead of joining one of the container's own (named
    /// after its id), as runc's `--no-new-keyring`.
    pub no_new_keyring: bool,
    /// The host's security modules, for `apparmorProfile`, `selinuxLabel` and `mountLabel`
    /// (detected by default).
    pub security: crate::lsm::Security,
    /// The program is given when the container starts ([`Container::start_with`]), not by the
    /// config: the process does all its set-up and waits at its gate not knowing what it will
    /// run (a warm pool's containers, [`crate::Pool`]). Such a container can only be started
    /// by this process, and its process dies with the thread that created it until then.
    pub late_exec: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            root: PathBuf::from(state::DEFAULT_ROOT),
            layers: Vec::new(),
            no_pivot: false,
            preserve_fds: 0,
            preserve_holes: Vec::new(),
            stdio: [-1; 3],
            console_socket: None,
            no_new_keyring: false,
            security: crate::lsm::Security::detect(),
            late_exec: false,
        }
    }
}

/// Where an exec'd process goes beyond [`Container::exec`]'s defaults, as runc's `exec`
/// flags say.
#[derive(Debug, Clone, Default)]
pub struct ExecPlacement {
    /// `--ignore-paused`: exec into a paused container too. The process joins the frozen
    /// cgroup, so it (and the exec) waits until the container is resumed, as with runc: a
    /// caller that loaded the container should [`Container::unlock`] it first, or the
    /// `resume` it waits for cannot take the lock.
    pub ignore_paused: bool,
    /// `--cgroup [CONTROLLERS:]PATH` (runc 1.1): run the process in `PATH`, an existing
    /// sub-cgroup of the container's cgroup, in the hierarchies of the listed controllers
    /// (comma-separated), or in every hierarchy without them. Hierarchies no entry names keep
    /// the container's cgroup.
    pub sub_cgroups: Vec<(Vec<String>, String)>,
}

impl ExecPlacement {
    /// Parses runc's `--cgroup` values: `PATH` or `CONTROLLER[,CONTROLLER...]:PATH`.
    pub fn parse_cgroup(v: &str) -> Result<(Vec<String>, String)> {
        let bad = |reason: &str| Error::Config {
            field: "exec --cgroup".into(),
            reason: format!("{v:?}: {reason}"),
        };
        let (ctrls, path) = match v.split_once(':') {
            Some((c, p)) => {
                let c: Vec<String> = c.split(',').map(str::to_string).collect();
                if c.iter().any(String::is_empty) {
                    return Err(bad("an empty controller name"));
                }
                (c, p)
            }
            None => (Vec::new(), v),
        };
        let rel = path.trim_start_matches('/');
        if rel.is_empty() {
            return Err(bad("an empty path"));
        }
        if rel.split('/').any(|c| c == "..") {
            return Err(bad("the path leaves the container's cgroup (\"..\")"));
        }
        Ok((ctrls, rel.to_string()))
    }

    /// The directories of `cg` the process goes into, one per hierarchy.
    fn targets(&self, cg: &Cgroup) -> Result<Vec<PathBuf>> {
        let dirs = cg.dirs();
        for (ctrls, path) in &self.sub_cgroups {
            for c in ctrls {
                if !dirs
                    .iter()
                    .any(|d| d.controllers.iter().any(|x| x == c) || d.name == *c)
                {
                    return Err(Error::Config {
                        field: "exec --cgroup".into(),
                        reason: format!("{c}:{path}: the container has no cgroup hierarchy with controller {c:?}"),
                    });
                }
            }
        }
        let mut out = Vec::new();
        for d in dirs {
            let named = self.sub_cgroups.iter().find(|(ctrls, _)| {
                ctrls
                    .iter()
                    .any(|c| d.controllers.iter().any(|x| x == c) || d.name == *c)
            });
            let sub = named.or_else(|| self.sub_cgroups.iter().find(|(c, _)| c.is_empty()));
            let dir = match sub {
                Some((_, path)) => {
                    let t = d.dir.join(path);
                    if !t.is_dir() {
                        return Err(Error::Config {
                            field: "exec --cgroup".into(),
                            reason: format!(
                                "{}: no such sub-cgroup of the container (it must exist)",
                                t.display()
                            ),
                        });
                    }
                    t
                }
                None => d.dir,
            };
            out.push(dir);
        }
        Ok(out)
    }
}

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

    fn from_wait(st: libc::c_int) -> ExitStatus {
        if libc::WIFSIGNALED(st) {
            ExitStatus::Signaled(libc::WTERMSIG(st))
        } else {
            ExitStatus::Exited(libc::WEXITSTATUS(st))
        }
    }
}

/// A container: made by this process ([`Container::create`]) or loaded from its state
/// ([`Container::load`]). A container this process created and did not [`Container::detach`]
/// is torn down when dropped, as [`Container::delete`] would.
#[derive(Debug)]
pub struct Container {
    id: String,
    bundle: PathBuf,
    pid: i32,
    pidfd: Option<OwnedFd>,
    /// True when the init process is our child (we can wait for its exit status).
    own_child: bool,
    /// The child waiting at its start gate (created by this process, not started yet).
    spawning: Option<ns::Spawning>,
    /// The pty master of a process with a terminal (when no console socket took it).
    console: Option<OwnedFd>,
    exit: Option<ExitStatus>,
    cgroup: Option<Cgroup>,
    overlay: Option<OverlayMount>,
    state_dir: Option<StateDir>,
    state: State,
    /// The config create accepted, kept in the state dir (never the bundle's file again).
    config: Option<oci_spec::runtime::Spec>,
    warnings: Vec<String>,
    /// Tear down on drop (false for detached or loaded containers).
    owned: bool,
    /// Loaded in state `creating` (or with no readable state) after its creator died: it
    /// counts as stopped, and `delete` kills whatever of it is left, even a process waiting
    /// at its start gate that nobody will start.
    half_made: bool,
    /// How long each phase of create and start took (empty for a loaded container).
    timings: crate::timings::Timings,
    /// Made with [`Options::late_exec`]: started by [`Container::start_with`] only.
    late_exec: bool,
    /// The processes `exec` started, until they are reaped.
    execs: Mutex<Vec<Arc<ExecReaper>>>,
}

fn io_err(id: &str, what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::Io {
        id: id.to_string(),
        what: what.into(),
        path: path.to_path_buf(),
        source: e,
    }
}

fn cgroup_err(id: &str, e: cgroup::Error) -> Error {
    let field = e
        .file_name()
        .and_then(resources::field_of)
        .map(str::to_string)
        .or_else(|| e.setting().and_then(resources::field_of_setting))
        .map(|f| format!(" ({f})"))
        .unwrap_or_default();
    Error::Cgroup {
        id: id.to_string(),
        field,
        source: Box::new(e),
    }
}

impl Container {
    /// Creates the container and starts its process (create + start).
    pub fn create_and_start(id: &str, bundle: &Path, opts: &Options) -> Result<Container> {
        let mut c = Container::create(id, bundle, opts)?;
        c.start()?;
        Ok(c)
    }

    /// Loads a container from its state under `root` (made by any process). The state dir
    /// stays locked while the value lives.
    ///
    /// A container whose state says `creating` (or whose state dir holds no state yet) once
    /// the lock is ours lost its creator, which held the lock until the state said `created`:
    /// it is loaded as half-made, and counts as stopped.
    pub fn load(root: &Path, id: &str) -> Result<Container> {
        let (dir, st) = StateDir::open_raw(root, id)?;
        Container::from_record(dir, st, false)
    }

    /// [`Container::load`] without waiting: `None` while another process holds the
    /// container's lock (it is at work on it).
    pub fn try_load(root: &Path, id: &str) -> Result<Option<Container>> {
        match StateDir::try_open_raw(root, id)? {
            Some((dir, st)) => Container::from_record(dir, st, false).map(Some),
            None => Ok(None),
        }
    }

    /// `delete --force`: removes whatever is left of the container, however little of it was
    /// made or recorded (a state dir without a readable state is removed too). An id with no
    /// state dir is not an error.
    pub fn force_delete(root: &Path, id: &str) -> Result<()> {
        let (dir, st) = match StateDir::open_raw(root, id) {
            Ok(r) => r,
            Err(Error::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        Container::from_record(dir, st, true)?.delete_checked(true)
    }

    /// The live state for a listing: as [`Container::load`] shows it, but without waiting
    /// for a lock (a container being created is shown `creating` while its creator runs).
    pub fn listed_state(root: &Path, id: &str) -> Result<State> {
        if let Some((dir, st)) = StateDir::try_open_raw(root, id)? {
            return Ok(Container::from_record(dir, st, false)?.oci_state());
        }
        // Locked: by its creator at work, by another command, or by a process that holds
        // the container (a library user between create and start, in this very process
        // maybe): the state as written, with its process checked, never waiting for the lock.
        let mut st = state::peek(root, id)?;
        let gone = if st.status == Status::Creating {
            !st.creator_alive()
        } else {
            st.pid <= 0 || state::pid_start_time(st.pid) != st.pid_start_time || zombie(st.pid)
        };
        if gone {
            st.status = Status::Stopped;
            st.pid = 0;
        }
        Ok(st)
    }

    /// A container from what its state dir holds. `lenient` (for `delete --force`): an
    /// unreadable state, or cgroup dirs that cannot be reopened, leave a half-made container
    /// to remove rather than an error.
    fn from_record(dir: StateDir, st: Result<State>, lenient: bool) -> Result<Container> {
        let id = dir
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let id = id.as_str();
        let st = match st {
            Ok(st) => st,
            Err(Error::NotFound(_)) => State::unrecorded(id),
            Err(e) if lenient => {
                tracing::warn!(container = id, "{e}; removing what is left");
                State::unrecorded(id)
            }
            Err(e) => return Err(e),
        };
        let half_made = st.status == Status::Creating;
        // The pidfd, only if the pid still is the process we started (not a recycled pid).
        let mut pidfd = None;
        if st.pid > 0 && state::pid_start_time(st.pid) == st.pid_start_time {
            // SAFETY: plain syscall.
            let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, st.pid, 0) } as i32;
            if fd >= 0 {
                // SAFETY: fresh fd owned here.
                pidfd = Some(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) });
                // Re-check: the pid could have been recycled between the two reads.
                if state::pid_start_time(st.pid) != st.pid_start_time {
                    pidfd = None;
                }
            }
        }
        let cgroup = if st.cgroup_leaves.is_empty() {
            None
        } else {
            let reopened = Hierarchy::detect()
                .and_then(|hier| Cgroup::from_dirs(&hier, &st.cgroup_leaves))
                .map_err(|e| cgroup_err(id, e));
            match reopened {
                Ok(mut cg) => {
                    cg.set_created_dirs(st.cgroup_dirs.clone());
                    Some(cg)
                }
                Err(e) if lenient => {
                    tracing::warn!(container = id, "{e}; its cgroups are left");
                    None
                }
                Err(e) => return Err(e),
            }
        };
        let exit = if pidfd.is_none() || half_made {
            Some(ExitStatus::Unknown)
        } else {
            None
        };
        let config = dir.read_config().ok();
        // Loaded by the process that created it (a library user that detached it): it is
        // still our child, so it is waited for (and reaped) as one, with its exit status.
        // SAFETY: plain getter.
        let own_child =
            pidfd.is_some() && !half_made && parent_of(st.pid) == unsafe { libc::getpid() };
        Ok(Container {
            id: id.to_string(),
            bundle: st.bundle.clone(),
            pid: st.pid,
            pidfd,
            own_child,
            spawning: None,
            console: None,
            exit,
            cgroup,
            overlay: None,
            state_dir: Some(dir),
            state: st,
            config,
            warnings: Vec::new(),
            owned: false,
            half_made,
            timings: Default::default(),
            late_exec: false,
            execs: Mutex::new(Vec::new()),
        })
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
            // SAFETY: polling two fds (a negative one is ignored).
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
            let spawned = sp.wait_exec().map_err(|e| {
                // The failed child was reaped on the way (all but a pidfd that could not be
                // opened after a successful exec): teardown has nothing left to wait for.
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
            })?;
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

    /// After the exec: the state `running`, the poststart hooks, the lock released.
    fn started(&mut self, poststart: &[oci_spec::runtime::Hook]) -> Result<()> {
        self.state.status = Status::Running;
        if let Some(d) = &mut self.state_dir {
            d.write(&self.state)?;
        }
        self.started_written(poststart)
    }

    /// [`Container::started`] once the state `running` is written.
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

    /// The config that create accepted (kept in the state dir; the bundle's `config.json` is
    /// not read again after create).
    pub fn config(&self) -> Result<&oci_spec::runtime::Spec> {
        if let Some(c) = &self.config {
            return Ok(c);
        }
        match self.state_dir.as_ref().map(StateDir::read_config) {
            Some(Err(e)) => Err(e),
            _ => Err(Error::State {
                id: self.id.clone(),
                status: "without a kept config",
                want: "created by this version of corral",
            }),
        }
    }

    /// The pty master of a container with a terminal and no console socket.
    pub fn take_console(&mut self) -> Option<OwnedFd> {
        self.console.take()
    }

    /// Leaves the container as it is when this value is dropped (for a `create` or `run -d`
    /// whose container lives on after this process).
    pub fn detach(mut self) -> Result<()> {
        if self.late_exec && self.spawning.is_some() {
            return Err(Error::State {
                id: self.id.clone(),
                status: "waiting for its program",
                want: "started (a late_exec container is started by its creator only)",
            });
        }
        if let Some(sp) = self.spawning.take() {
            let s = sp.release().map_err(|e| ns_error(&self.id, e))?;
            self.pidfd = Some(s.pidfd);
        }
        if let Some(m) = self.overlay.take() {
            m.leak();
        }
        if let Some(d) = &mut self.state_dir {
            d.keep();
        }
        self.owned = false;
        Ok(())
    }

    /// The live status: from the process itself, not from what was last written.
    pub fn status(&self) -> Status {
        if self.exit.is_some() {
            return Status::Stopped;
        }
        let alive = match &self.pidfd {
            Some(fd) => {
                let mut p = libc::pollfd {
                    fd: fd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: polling one owned fd without blocking.
                let n = unsafe { libc::poll(&mut p, 1, 0) };
                !(n > 0 && p.revents & libc::POLLIN != 0)
            }
            None => self.spawning.is_some(),
        };
        if !alive || zombie(self.pid) {
            return Status::Stopped;
        }
        if self.spawning.is_some() || (self.state.status == Status::Created && self.at_gate()) {
            return Status::Created;
        }
        if self.is_frozen() {
            return Status::Paused;
        }
        Status::Running
    }

    /// Whether the live process of a container recorded `created` still waits at its start
    /// gate. The kernel says so, not the state file, which a `start` killed after opening
    /// the gate left `created`: a process at its FIFO gate holds its state dir open
    /// (`O_PATH`, until the gate opens); when its fds cannot be read (a rootless caller),
    /// the gate is still closed while `exec.fifo` is there (a start removes it once past).
    /// A warm pool's process waits on its creator's socket: created until its creator
    /// starts it.
    fn at_gate(&self) -> bool {
        let Some(d) = &self.state_dir else {
            return true;
        };
        if self.state.late_exec {
            return true;
        }
        match holds_open(self.pid, d.path()) {
            Some(held) => held,
            None => d.path().join(FIFO).exists(),
        }
    }

    /// Whether the container is frozen: the freezer of its cgroup says so (frozen, or on its
    /// way there), whatever the state file says (a `pause` or `resume` killed between the
    /// freezer and the file left them apart). Without a freezer, the state file.
    fn is_frozen(&self) -> bool {
        match self.cgroup.as_ref().map(Cgroup::is_frozen) {
            Some(Ok(Some(frozen))) => frozen,
            _ => self.state.status == Status::Paused,
        }
    }

    /// The OCI state with the live status.
    pub fn oci_state(&self) -> State {
        let mut st = self.state.clone();
        st.status = self.status();
        if st.status == Status::Stopped {
            st.pid = 0;
        }
        st
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn bundle(&self) -> &Path {
        &self.bundle
    }

    /// The container's init process, in the caller's pid namespace.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// A pidfd of the init process (readable when it exits), for poll loops: also while it
    /// waits at its start gate. It stays owned by the container (dup it to keep it longer).
    pub fn pidfd(&self) -> Option<RawFd> {
        match (&self.pidfd, &self.spawning) {
            (Some(f), _) => Some(f.as_raw_fd()),
            (None, Some(sp)) => sp.pidfd(),
            (None, None) => None,
        }
    }

    /// The state root the container's state dir lives under.
    pub fn state_root(&self) -> PathBuf {
        self.state_dir
            .as_ref()
            .and_then(|d| d.path().parent())
            .map(Path::to_path_buf)
            .unwrap_or_else(state::default_root)
    }

    /// Releases the lock on the container's state dir that [`Container::load`] took, so that
    /// a long-lived handle (a library's, a language binding's) does not block other
    /// processes' commands on the container. [`Container::delete`] takes it again.
    pub fn unlock(&mut self) {
        if let Some(d) = &mut self.state_dir {
            d.unlock();
        }
    }

    /// The fd that becomes readable when the init process exits: its pidfd, also while it
    /// waits at its start gate (where [`Container::pidfd`] has none yet). For callers that
    /// wait outside the container's lock (an event loop, another thread): once it is
    /// readable, [`Container::try_wait`] returns at once. Valid while the value lives.
    pub fn wait_fd(&self) -> Option<RawFd> {
        match (&self.pidfd, &self.spawning) {
            (Some(fd), _) => Some(fd.as_raw_fd()),
            (None, Some(sp)) => sp.pidfd(),
            (None, None) => None,
        }
    }

    /// How long each phase of this process's create and start of the container took
    /// ([`crate::timings::CREATE_PHASES`], then `start`); empty for a loaded container.
    pub fn timings(&self) -> &crate::timings::Timings {
        &self.timings
    }

    /// The state as last written.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Warnings from set-up (e.g. a swap limit the host cannot enforce) and start (a failed
    /// startContainer hook: `start` succeeds, the program did not run).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The cgroup of the container.
    pub fn cgroup(&self) -> Option<&Cgroup> {
        self.cgroup.as_ref()
    }

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
            // SAFETY: plain syscall on an owned pidfd.
            Some(fd) => unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    fd.as_raw_fd(),
                    sig,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                ) as i32
            },
            // SAFETY: the pid is our unreaped child.
            None => unsafe { libc::kill(self.pid, sig) },
        };
        if r < 0 && Errno::last() != Errno::ESRCH {
            return Err(Error::Sys {
                id: self.id.clone(),
                what: format!("sending signal {sig}"),
                errno: Errno::last(),
            });
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
                // SAFETY: polling one owned fd.
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
    fn wait_with_execs(
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
            // SAFETY: polling fds owned by the container and its reapers.
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
            // SAFETY: waiting for our own child.
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
            self.state.status = Status::Stopped;
            if let Some(d) = &self.state_dir {
                let _ = d.write(&self.state);
            }
            return Ok(Some(e));
        }
    }

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

    /// The container's usage as `runc events --stats` shows it (`type`, `id`, `data` with
    /// cpu, memory and pids).
    pub fn stats_json(&self) -> Result<serde_json::Value> {
        let s = self.stats()?;
        Ok(serde_json::json!({
            "type": "stats",
            "id": self.id,
            "data": {
                "cpu": {"usage": {"total": s.cpu_usage_ns}},
                "memory": {
                    "usage": {"usage": s.memory_usage, "limit": s.memory_limit, "max": s.memory_max_usage},
                    "swap": {"usage": s.swap_usage},
                    "oomKills": s.oom_kill_count,
                },
                "pids": {"current": s.pids_current, "limit": s.pids_limit},
            }
        }))
    }

    /// The live state of every container under `root` (a container deleted meanwhile is
    /// not listed; one being created is listed without waiting for its creator).
    pub fn list(root: &Path) -> Result<Vec<State>> {
        let mut states = Vec::new();
        for id in state::list_ids(root)? {
            if let Ok(s) = Container::listed_state(root, &id) {
                states.push(s);
            }
        }
        Ok(states)
    }

    /// Runs `e` in the running container: the container's own process settings with
    /// `e`'s arguments, environment, cwd, user and terminal (see [`Container::exec`]).
    pub fn exec_with(&self, e: &crate::builder::ExecSpec, opts: &Options) -> Result<ExecProcess> {
        let base = self.config()?.process().clone().unwrap_or_default();
        self.exec(&e.process(&base)?, opts)
    }

    /// Runs another process in the running container (`exec`): it joins the container's
    /// namespaces and cgroup and gets `p`'s user, capabilities, env and cwd. The returned
    /// process is this process's child.
    pub fn exec(&self, p: &oci_spec::runtime::Process, opts: &Options) -> Result<ExecProcess> {
        self.exec_placed(p, opts, &ExecPlacement::default())
    }

    /// [`Container::exec`] with runc's `exec --ignore-paused` and `--cgroup`
    /// ([`ExecPlacement`]).
    pub fn exec_placed(
        &self,
        p: &oci_spec::runtime::Process,
        opts: &Options,
        place: &ExecPlacement,
    ) -> Result<ExecProcess> {
        let st = self.status();
        if st == Status::Paused && !place.ignore_paused {
            return Err(Error::State {
                id: self.id.clone(),
                status: st.as_str(),
                want: "running (use --ignore-paused to exec into a paused container)",
            });
        }
        if st != Status::Running && st != Status::Paused {
            return Err(Error::State {
                id: self.id.clone(),
                status: st.as_str(),
                want: "running",
            });
        }
        // The leaves (or the sub-cgroups of them `--cgroup` names) the process goes into.
        let targets = match &self.cgroup {
            Some(cg) => place.targets(cg)?,
            None if !place.sub_cgroups.is_empty() => {
                return Err(Error::Config {
                    field: "exec --cgroup".into(),
                    reason: "the container has no cgroup".into(),
                })
            }
            None => Vec::new(),
        };
        let cgroup_fd = match &self.cgroup {
            Some(cg) => match (cg.dirs().len(), cg.v2_dir(), targets.first()) {
                (1, Some(_), Some(dir)) => Some(open_dir(&self.id, dir)?),
                _ => None,
            },
            None => None,
        };
        let config = self.config()?;
        let mut p = p.clone();
        // What the process does not say is the container's (runc): its capabilities and
        // no_new_privs. (Its seccomp filter is always the container's.)
        let init = config.process().clone().unwrap_or_default();
        if p.capabilities().is_none() {
            p.set_capabilities(init.capabilities().clone());
        }
        if p.no_new_privileges().is_none() {
            p.set_no_new_privileges(init.no_new_privileges());
        }
        let p = &p;
        let mut plan = prepare::exec_plan(self.pid, p, cgroup_fd, opts.preserve_fds, opts.stdio)?;
        // linux.personality holds for every process of the container, as for its init.
        if let Some(pers) = config
            .linux()
            .as_ref()
            .and_then(|l| l.personality().clone())
        {
            plan.process.personality = Some(prepare::personality(&pers)?);
        }
        // The lock on the state dir (a host directory) is the runtime's, not the process's.
        plan.close_fds
            .extend(self.state_dir.as_ref().and_then(StateDir::lock_fd));
        plan.close_fds.extend(&opts.preserve_holes);
        // An exec'd process is confined as the container is, unless it names labels of its own.
        let mut labelled = p.clone();
        if let Some(init) = config.process() {
            if p.apparmor_profile().as_ref().is_none_or(|s| s.is_empty()) {
                labelled.set_apparmor_profile(init.apparmor_profile().clone());
            }
            if p.selinux_label().as_ref().is_none_or(|s| s.is_empty()) {
                labelled.set_selinux_label(init.selinux_label().clone());
            }
        }
        // Its CPU affinity: its own, else the one the config gives exec'd processes.
        let affinity = match p.exec_cpu_affinity() {
            Some(a) => Some(("exec.execCPUAffinity", a.clone())),
            None => config
                .process()
                .as_ref()
                .and_then(|i| i.exec_cpu_affinity().clone())
                .map(|a| ("process.execCPUAffinity", a)),
        };
        if let Some((field, a)) = affinity {
            (plan.process.affinity_initial, plan.process.affinity_final) =
                prepare::exec_cpu_affinity(field, &a)?;
        }
        plan.process.exec_labels = opts.security.exec_labels(
            "exec",
            labelled.apparmor_profile().as_deref(),
            labelled.selinux_label().as_deref(),
        )?;
        plan.keyring = if self.state.no_new_keyring {
            None
        } else {
            keyring(&self.id, Some(&labelled), opts)?
        };
        plan.attr_root = opts.security.attr_root(&plan)?;
        // The container's seccomp filter holds for exec'd processes too.
        if let Some(sc) = config.linux().as_ref().and_then(|l| l.seccomp().clone()) {
            let root = self
                .state_dir
                .as_ref()
                .and_then(|d| d.path().parent().map(Path::to_path_buf))
                .unwrap_or_default();
            let prog = crate::filter::compile(&sc, &root.join(SECCOMP_CACHE))?;
            plan.seccomp = Some(crate::filter::to_plan(&prog));
        }
        let mut sp = ns::spawn(plan).map_err(|e| ns_error(&self.id, e))?;
        crate::fault::point("exec:after-clone");
        if !sp.placed_in_cgroup() {
            for dir in &targets {
                let procs = dir.join("cgroup.procs");
                std::fs::write(&procs, sp.pid().to_string())
                    .map_err(|e| io_err(&self.id, "joining cgroup", &procs, e))?;
            }
        }
        // A notify filter's listener goes to linux.seccomp.listenerPath as it arrives (the
        // container's state, this process's pid), as for the init.
        let mut listener_err = None;
        let mut listener = |pid: i32, fd: OwnedFd| -> std::result::Result<(), String> {
            let Some(sc) = config.linux().as_ref().and_then(|l| l.seccomp().clone()) else {
                return Ok(());
            };
            crate::filter::send_listener(&sc, &self.state, pid, st.as_str(), fd).map_err(|e| {
                let m = e.to_string();
                listener_err = Some(e);
                m
            })
        };
        sp.go_with_listener(&mut |_| Ok(()), Some(&mut listener))
            .map_err(|e| listener_err.take().unwrap_or_else(|| ns_error(&self.id, e)))?;
        crate::fault::point("exec:after-go");
        let mut console = sp.take_console();
        if let (Some(sock), Some(m)) = (&opts.console_socket, console.take()) {
            send_console(&self.id, sock, m)?;
        }
        let s = sp.start().map_err(|e| ns_error(&self.id, e))?;
        let reaper = Arc::new(ExecReaper {
            pid: s.pid,
            pidfd: s.pidfd,
            exit: Mutex::new(None),
            done: AtomicBool::new(false),
        });
        {
            let mut execs = self.execs.lock().unwrap_or_else(|p| p.into_inner());
            execs.retain(|r| !r.done.load(Ordering::Relaxed));
            execs.push(reaper.clone());
        }
        Ok(ExecProcess {
            pid: s.pid,
            reaper,
            console,
        })
    }

    /// Freezes every process of the container.
    pub fn pause(&mut self) -> Result<()> {
        self.freezer(Status::Running, Status::Paused)
    }

    /// Thaws a paused container.
    pub fn resume(&mut self) -> Result<()> {
        self.freezer(Status::Paused, Status::Running)
    }

    fn freezer(&mut self, from: Status, to: Status) -> Result<()> {
        let st = self.status();
        if st != from {
            return Err(Error::State {
                id: self.id.clone(),
                status: st.as_str(),
                want: from.as_str(),
            });
        }
        let cg = self.cgroup.as_ref().ok_or_else(|| Error::State {
            id: self.id.clone(),
            status: "without cgroup",
            want: from.as_str(),
        })?;
        match to {
            Status::Paused => cg.freeze(),
            _ => cg.thaw(),
        }
        .map_err(|e| cgroup_err(&self.id, e))?;
        crate::fault::point(match to {
            Status::Paused => "pause:after-freeze",
            _ => "resume:after-thaw",
        });
        self.state.status = to;
        self.write_state()
    }

    /// Pids of every process in the container (host pid namespace).
    pub fn pids(&self) -> Result<Vec<i32>> {
        match &self.cgroup {
            Some(cg) => cg.pids().map_err(|e| cgroup_err(&self.id, e)),
            None => Ok(if self.status() == Status::Stopped {
                vec![]
            } else {
                vec![self.pid]
            }),
        }
    }

    /// Applies new limits (`update`).
    pub fn update(&self, res: &cgroup::Resources) -> Result<()> {
        let st = self.status();
        if st == Status::Stopped {
            return Err(Error::State {
                id: self.id.clone(),
                status: st.as_str(),
                want: "created, running or paused",
            });
        }
        let cg = self.cgroup.as_ref().ok_or_else(|| Error::State {
            id: self.id.clone(),
            status: "without cgroup",
            want: "running",
        })?;
        cg.apply(res).map_err(|e| cgroup_err(&self.id, e))
    }

    /// An fd that becomes readable when the OOM killer acts in the container (see
    /// `cgroup::Cgroup::oom_notifier`).
    pub fn oom_notifier(&self) -> Result<OwnedFd> {
        let cg = self.cgroup.as_ref().ok_or_else(|| Error::State {
            id: self.id.clone(),
            status: "without cgroup",
            want: "running",
        })?;
        cg.oom_notifier().map_err(|e| cgroup_err(&self.id, e))
    }

    /// Resource usage from the cgroup.
    pub fn stats(&self) -> Result<cgroup::Stats> {
        let cg = self.cgroup.as_ref().ok_or_else(|| Error::State {
            id: self.id.clone(),
            status: "without cgroup",
            want: "running",
        })?;
        cg.stats().map_err(|e| cgroup_err(&self.id, e))
    }

    fn write_state(&self) -> Result<()> {
        match &self.state_dir {
            Some(d) => d.write(&self.state),
            None => Ok(()),
        }
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
            return;
        }
        if let Err(e) = self.teardown() {
            tracing::warn!(container = %self.id, "cleanup: {e}");
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
        // SAFETY: polling one fd the caller owns.
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

/// Kills a process that is not our child through its pidfd and waits until it is gone.
fn kill_and_wait(id: &str, pid: i32, fd: &OwnedFd, note: &mut impl FnMut(Result<()>)) {
    // SAFETY: plain syscall on an owned pidfd.
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
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
    // SAFETY: polling one owned fd.
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
/// Whether process `pid` holds `dir` open (compared by device and inode); `None` when its
/// fds cannot be read.
fn holds_open(pid: i32, dir: &Path) -> Option<bool> {
    use std::os::unix::fs::MetadataExt;
    let want = std::fs::metadata(dir).map(|m| (m.dev(), m.ino())).ok()?;
    let rd = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    Some(
        rd.flatten()
            .any(|e| std::fs::metadata(e.path()).is_ok_and(|m| (m.dev(), m.ino()) == want)),
    )
}

fn gate_holders(dir: &Path) -> Vec<(i32, OwnedFd)> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: plain getter.
    let me = unsafe { libc::getpid() };
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
            // SAFETY: plain syscall.
            let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
            if fd < 0 {
                return None;
            }
            // SAFETY: fresh fd owned here.
            let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
            // Still the same process (a recycled pid would not hold the fd).
            holds(pid).then_some((pid, fd))
        })
        .collect()
}

/// The directories that making `leaves` (`mkdir -p`) would create: each leaf and its
/// ancestors that are not there yet, shallowest first.
fn to_be_made(leaves: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for leaf in leaves {
        let mut missing = Vec::new();
        let mut d = leaf.as_path();
        while !d.as_os_str().is_empty() && std::fs::symlink_metadata(d).is_err() {
            missing.push(d.to_path_buf());
            match d.parent() {
                Some(p) => d = p,
                None => break,
            }
        }
        out.extend(missing.into_iter().rev());
    }
    out
}

/// Kills every process left in the cgroup (a container without its own pid namespace can
/// leave some), waits until it is empty, and removes it. Only what corral made: processes
/// are killed in the hierarchies whose leaf it made (a leaf made beforehand and joined may
/// hold processes of others: there only the init was killed), and only the dirs it made go.
fn kill_and_remove(id: &str, cg: &Cgroup) -> Result<()> {
    let Some(made) = cg.made_part() else {
        return cg.remove().map_err(|e| cgroup_err(id, e));
    };
    let cg_all = cg;
    let cg = &made;
    for _ in 0..100 {
        match cg.pids() {
            Ok(p) if p.is_empty() => break,
            Ok(_) => {
                let _ = cg.kill_all(nix::sys::signal::Signal::SIGKILL);
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(_) => break,
        }
    }
    cg_all.remove().map_err(|e| cgroup_err(id, e))
}

/// Removes a half-made cgroup on an error path.
struct CgroupGuard(Option<Cgroup>);

impl CgroupGuard {
    fn take(mut self) -> Option<Cgroup> {
        self.0.take()
    }
}

impl Drop for CgroupGuard {
    fn drop(&mut self) {
        if let Some(cg) = self.0.take() {
            if let Err(e) = kill_and_remove("", &cg) {
                tracing::warn!("cleanup: {e}");
            }
        }
    }
}

const FIFO: &str = "exec.fifo";

/// Sets a terminal's window size.
pub fn set_winsize(fd: &OwnedFd, rows: u16, cols: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize.
    unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
}

/// Sends the pty master to a console socket (SCM_RIGHTS), as runc does.
fn send_console(id: &str, path: &Path, master: OwnedFd) -> Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let stream = std::os::unix::net::UnixStream::connect(path)
        .map_err(|e| io_err(id, "connecting to console socket", path, e))?;
    let fds = [master.as_raw_fd()];
    let name = b"/dev/ptmx";
    let iov = [std::io::IoSlice::new(name)];
    sendmsg::<()>(
        stream.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| Error::Sys {
        id: id.to_string(),
        what: format!("sending the pty master to {}", path.display()),
        errno: e,
    })?;
    Ok(())
}
/// Compiled seccomp filters, by policy hash, under the state root.
const SECCOMP_CACHE: &str = ".seccomp-cache";

/// True when the cgroup's OOM killer has killed something in it.
fn oom_killed(cg: Option<&Cgroup>) -> bool {
    cg.and_then(|c| c.stats().ok())
        .and_then(|s| s.oom_kill_count)
        .is_some_and(|n| n > 0)
}

fn ns_error(id: &str, e: ns::Error) -> Error {
    match e {
        ns::Error::Child(c) => Error::Child {
            id: id.to_string(),
            source: c,
        },
        e => Error::Namespace {
            id: id.to_string(),
            what: "spawn".into(),
            source: e,
        },
    }
}

/// A zombie (exited, not yet reaped by its parent) counts as stopped.
/// The parent pid of `pid` (field 4 of /proc/PID/stat), 0 if it cannot be read.
fn parent_of(pid: i32) -> i32 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = s.get(s.rfind(')')? + 1..)?;
            rest.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

fn zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rfind(')')
                .and_then(|i| s.get(i + 2..i + 3))
                .map(|c| c == "Z" || c == "X")
        })
        .unwrap_or(true)
}

fn open_path(id: &str, dir: &Path) -> Result<OwnedFd> {
    nix::fcntl::open(
        dir,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    // SAFETY: fresh fd owned here.
    .map(|fd| unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
    .map_err(|e| Error::Sys {
        id: id.to_string(),
        what: format!("opening {}", dir.display()),
        errno: e,
    })
}

fn open_dir(id: &str, dir: &Path) -> Result<OwnedFd> {
    std::fs::File::open(dir)
        .map(OwnedFd::from)
        .map_err(|e| io_err(id, "opening cgroup", dir, e))
}

/// A process started by [`Container::exec`]; this process's child.
#[derive(Debug)]
pub struct ExecProcess {
    pid: i32,
    /// Its end, shared with the container, which reaps it at delete if nobody did.
    reaper: Arc<ExecReaper>,
    console: Option<OwnedFd>,
}

/// The end of an exec'd process, shared by its [`ExecProcess`] and its [`Container`]: the init
/// of a pid namespace cannot finish exiting while a process of its namespace is an unreaped
/// child of ours, so the container's delete reaps what its exec'd processes left.
#[derive(Debug)]
struct ExecReaper {
    pid: i32,
    pidfd: OwnedFd,
    exit: Mutex<Option<ExitStatus>>,
    done: AtomicBool,
}

impl ExecReaper {
    fn reap(&self, block: bool) -> Result<Option<ExitStatus>> {
        let mut exit = self.exit.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = *exit {
            return Ok(Some(e));
        }
        let flags = if block { 0 } else { libc::WNOHANG };
        let mut st = 0;
        loop {
            // SAFETY: waiting for our own child.
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

impl ExecProcess {
    /// The pty master of a process with a terminal and no console socket.
    pub fn take_console(&mut self) -> Option<OwnedFd> {
        self.console.take()
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    pub fn pidfd(&self) -> RawFd {
        self.reaper.pidfd.as_raw_fd()
    }

    /// Sends a signal through the pidfd.
    pub fn signal(&self, sig: i32) -> Result<()> {
        // SAFETY: plain syscall on an owned pidfd.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.reaper.pidfd.as_raw_fd(),
                sig,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if r < 0 && Errno::last() != Errno::ESRCH {
            return Err(Error::Sys {
                id: String::new(),
                what: format!("sending signal {sig} to pid {}", self.pid),
                errno: Errno::last(),
            });
        }
        Ok(())
    }

    /// The exit status, without blocking.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        self.wait_flags(libc::WNOHANG)
    }

    /// Waits for the exit status.
    pub fn wait(&mut self) -> Result<ExitStatus> {
        self.wait_flags(0).map(|s| s.unwrap_or(ExitStatus::Unknown))
    }

    fn wait_flags(&mut self, flags: libc::c_int) -> Result<Option<ExitStatus>> {
        self.reaper.reap(flags & libc::WNOHANG == 0)
    }

    /// Leaves the process running without waiting for it.
    pub fn detach(self) {}
}

/// The session keyring of a container's processes: one named after the container, labelled
/// with the process's SELinux label; none with `no_new_keyring`.
fn keyring(
    id: &str,
    p: Option<&oci_spec::runtime::Process>,
    opts: &Options,
) -> Result<Option<ns::Keyring>> {
    if opts.no_new_keyring {
        return Ok(None);
    }
    let label = opts.security.key_label(
        "process.selinuxLabel",
        p.and_then(|p| p.selinux_label().as_deref()),
    )?;
    Ok(Some(ns::Keyring {
        name: std::ffi::CString::new(id).map_err(|_| Error::Config {
            field: "id".into(),
            reason: "contains a NUL byte".into(),
        })?,
        label,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_be_made_lists_only_what_is_missing_shallowest_first() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("a")).unwrap();
        let leaves = [t.path().join("a/b/c"), t.path().join("x")];
        assert_eq!(
            to_be_made(&leaves),
            [
                t.path().join("a/b"),
                t.path().join("a/b/c"),
                t.path().join("x")
            ]
        );
        // A leaf that exists is someone else's: nothing of it is ours to remove.
        assert!(to_be_made(&[t.path().join("a")]).is_empty());
    }
}

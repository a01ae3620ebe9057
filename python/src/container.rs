//! `corral._corral.Core`: the native handle of one container.

use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use pyo3::types::PyDict;
use runtime::{Error as RtError, ExitStatus};

use crate::args::{
    args_arg, env_arg, path_arg, root_arg, signal_arg, stdio_arg, str_arg, timeout_arg, type_err,
    user_arg,
};
use crate::describe::{source, Kw, Source};
use crate::errors::{config_err, fail_err, rt_err, Fail};
use crate::exec::{exec_fds, reap_execs, ExecSlot, Process};
use crate::limits::Limits;
use crate::network::{attachment_dict, attachments, net_err, NetKw};
use crate::wait::{dup_fd, exit_tuple, lock, my_pid, poll_any};

pub(crate) struct Inner {
    /// Created (or loaded) and not deleted yet.
    pub(crate) c: Option<runtime::Container>,
    /// How it ended, once known (kept after delete).
    pub(crate) exit: Option<ExitStatus>,
    /// Its init's pid (kept after delete).
    pub(crate) pid: i32,
    pub(crate) phase: Phase,
    pub(crate) timings: Vec<(String, f64)>,
    /// How many of the container's warnings Python was told of.
    pub(crate) warned: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    New,
    Live,
    Deleted,
    Detached,
}

/// The native handle of one container (`corral.Container` wraps it).
#[pyclass(frozen, module = "corral._corral")]
pub(crate) struct Core {
    pub(crate) id: String,
    pub(crate) root: PathBuf,
    /// What create makes (None: a handle on a live container, loaded or from a pool).
    pub(crate) source: Option<Source>,
    pub(crate) opts: runtime::Options,
    /// The process that created or loaded it: in a child after `os.fork()` the handle is a
    /// copy, and dropping it there leaves the parent's container alone.
    pub(crate) owner: u32,
    pub(crate) inner: Mutex<Inner>,
    /// The processes exec'd into it that have not been reaped yet, shared with their
    /// handles. They are this process's children, in the container's pid namespace: its init
    /// cannot finish exiting until they are reaped, so the container's own wait reaps them as
    /// they exit, and delete kills and reaps them before it waits for the init.
    pub(crate) execs: Mutex<Vec<ExecSlot>>,
}

impl Core {
    pub(crate) fn no_gil<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut Inner) -> Result<T, Fail> + Send,
    ) -> PyResult<T> {
        let r = py.allow_threads(|| {
            let mut g = lock(&self.inner);
            f(&mut g)
        });
        r.map_err(|e| fail_err(py, &self.id, e))
    }

    pub(crate) fn live(g: &mut Inner) -> Result<&mut runtime::Container, Fail> {
        match g.phase {
            Phase::New => Err(Fail::State("is not created yet")),
            Phase::Deleted => Err(Fail::State("was deleted")),
            Phase::Detached => Err(Fail::State("was detached from this handle")),
            Phase::Live => g.c.as_mut().ok_or(Fail::State("was deleted")),
        }
    }
}

impl Core {
    /// A handle: not created yet (`c` None, from `bundle` or `image`), or on the live
    /// container `c` (loaded, or taken from a pool).
    pub(crate) fn made_of(
        py: Python<'_>,
        id: String,
        root: PathBuf,
        stdio: [RawFd; 3],
        c: Option<runtime::Container>,
        source: Option<Source>,
    ) -> Core {
        let inner = match c {
            None => Inner {
                c: None,
                exit: None,
                pid: 0,
                phase: Phase::New,
                timings: Vec::new(),
                warned: 0,
            },
            Some(c) => Inner {
                exit: None,
                pid: c.pid(),
                timings: phases(&c),
                c: Some(c),
                phase: Phase::Live,
                warned: 0,
            },
        };
        Core {
            id,
            root: root.clone(),
            source,
            // The host's security modules are detected from files: without the GIL.
            opts: py.allow_threads(|| runtime::Options {
                root,
                stdio,
                ..Default::default()
            }),
            owner: my_pid(),
            inner: Mutex::new(inner),
            execs: Mutex::new(Vec::new()),
        }
    }

    /// The image store whose record of the container goes with it: its image's store, else
    /// the default one (a loaded container may be of an image of it).
    fn store_dir(&self) -> PathBuf {
        match &self.source {
            Some(Source::Described { store, .. }) => store.clone(),
            _ => corral_image::default_store(),
        }
    }

    /// Tells Python (`warnings.warn(..., corral.CorralWarning)`) of the container's warnings
    /// it was not told of yet: a limit the host does not enforce, a failed startContainer
    /// hook. A warning filter that makes them errors raises here.
    pub(crate) fn warn_new(&self, py: Python<'_>) -> PyResult<()> {
        let new: Vec<String> = py.allow_threads(|| {
            let mut g = lock(&self.inner);
            let Some(c) = g.c.as_ref() else {
                return Vec::new();
            };
            let w = c.warnings().get(g.warned..).unwrap_or_default().to_vec();
            g.warned += w.len();
            w
        });
        if new.is_empty() {
            return Ok(());
        }
        let category = py.import("corral.errors")?.getattr("CorralWarning")?;
        for w in new {
            let msg =
                std::ffi::CString::new(format!("container {:?}: {w}", self.id)).unwrap_or_default();
            PyErr::warn(py, &category, &msg, 2)?;
        }
        Ok(())
    }
}

#[pymethods]
impl Core {
    /// Describes a container (nothing is made until create): from a bundle directory, or
    /// built from the keyword arguments over the defaults of `corral spec`.
    #[new]
    #[pyo3(signature = (id, *, root=None, stdio=None, rootfs=None, bundle=None, args=None,
                        env=None, cwd=None, hostname=None, user=None, namespaces=None,
                        mounts=None, limits=None, seccomp=None, readonly_root=None,
                        annotations=None, image=None, store=None, privileged=false,
                        cap_add=None, cap_drop=None, security_opt=None, devices=None,
                        network=None, networks=None, ports=None, publish_all=false,
                        ingress_rate=None, egress_rate=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        id: &Bound<'_, PyAny>,
        root: Option<&Bound<'_, PyAny>>,
        stdio: Option<&Bound<'_, PyAny>>,
        rootfs: Option<&Bound<'_, PyAny>>,
        bundle: Option<&Bound<'_, PyAny>>,
        args: Option<&Bound<'_, PyAny>>,
        env: Option<&Bound<'_, PyAny>>,
        cwd: Option<&Bound<'_, PyAny>>,
        hostname: Option<&Bound<'_, PyAny>>,
        user: Option<&Bound<'_, PyAny>>,
        namespaces: Option<&Bound<'_, PyAny>>,
        mounts: Option<&Bound<'_, PyAny>>,
        limits: Option<&Bound<'_, PyAny>>,
        seccomp: Option<&Bound<'_, PyAny>>,
        readonly_root: Option<bool>,
        annotations: Option<&Bound<'_, PyAny>>,
        image: Option<&Bound<'_, PyAny>>,
        store: Option<&Bound<'_, PyAny>>,
        privileged: bool,
        cap_add: Option<&Bound<'_, PyAny>>,
        cap_drop: Option<&Bound<'_, PyAny>>,
        security_opt: Option<&Bound<'_, PyAny>>,
        devices: Option<&Bound<'_, PyAny>>,
        network: Option<&Bound<'_, PyAny>>,
        networks: Option<&Bound<'_, PyAny>>,
        ports: Option<&Bound<'_, PyAny>>,
        publish_all: bool,
        ingress_rate: Option<&Bound<'_, PyAny>>,
        egress_rate: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Core> {
        let kw = Kw {
            args,
            env,
            cwd,
            hostname,
            user,
            namespaces,
            mounts,
            limits,
            seccomp,
            readonly_root,
            annotations,
            privileged,
            cap_add,
            cap_drop,
            security_opt,
            devices,
            net: NetKw {
                network,
                networks,
                ports,
                publish_all,
                ingress_rate,
                egress_rate,
            },
        };
        let id = str_arg("id", id)?;
        runtime::state::check_id(&id).map_err(|e| rt_err(py, e))?;
        let root = root_arg(root)?;
        let stdio = match stdio.filter(|s| !s.is_none()) {
            Some(s) => stdio_arg(s)?,
            None => [-1; 3],
        };
        let src = source(py, rootfs, bundle, image, store, &kw)?;
        Ok(Core::made_of(py, id, root, stdio, None, Some(src)))
    }

    /// A handle on an existing container under `root` (made by any process). Its state stays
    /// locked while the handle lives, until delete or detach.
    #[staticmethod]
    #[pyo3(signature = (id, root=None))]
    fn load(
        py: Python<'_>,
        id: &Bound<'_, PyAny>,
        root: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Core> {
        let id = str_arg("id", id)?;
        let root = root_arg(root)?;
        let c = py
            .allow_threads(|| runtime::Container::load(&root, &id))
            .map_err(|e| rt_err(py, e))?;
        Ok(Core::made_of(py, id, root, [-1; 3], Some(c), None))
    }

    /// Creates the container: its process is set up and waits at its start gate. A bundle
    /// is created as it is; a description through `corral_image::create` (a directory root,
    /// or an image of its store). The container's warnings are warned of.
    fn create(&self, py: Python<'_>) -> PyResult<()> {
        self.no_gil(py, |g| {
            match g.phase {
                Phase::New => {}
                _ => return Err(Fail::State("is already created")),
            }
            let c = match &self.source {
                None => return Err(Fail::State("is already created")),
                Some(Source::Bundle(b)) => {
                    runtime::Container::create_from(&self.id, b, &self.opts)?
                }
                Some(Source::Described { d, store }) => {
                    corral_image::create(store, &self.opts.root, &self.id, d, &self.opts)?
                }
            };
            g.pid = c.pid();
            g.timings = phases(&c);
            g.c = Some(c);
            g.phase = Phase::Live;
            Ok(())
        })?;
        self.warn_new(py)
    }

    /// Starts the created container's process.
    fn start(&self, py: Python<'_>) -> PyResult<()> {
        self.no_gil(py, |g| {
            let c = Core::live(g)?;
            let r = c.start();
            g.timings = g.c.as_ref().map(phases).unwrap_or_default();
            r.map_err(Fail::Rt)
        })?;
        self.warn_new(py)
    }

    /// Waits at most `timeout` seconds (None: for ever) for the container's init to exit.
    /// Returns None when the time ran out, else `(returncode, signal)`.
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

    /// `(returncode, signal)` if the init has exited, else None; never blocks.
    fn poll(&self, py: Python<'_>) -> PyResult<Option<(Option<i32>, Option<i32>)>> {
        self.no_gil(py, |g| {
            if let Some(e) = g.exit {
                return Ok(Some(exit_tuple(e)));
            }
            let c = Core::live(g)?;
            let e = c.try_wait()?;
            g.exit = e;
            Ok(e.map(exit_tuple))
        })
    }

    /// Sends `signal` to the init (all: to every process of the container).
    #[pyo3(signature = (signal, all=false))]
    fn kill(&self, py: Python<'_>, signal: &Bound<'_, PyAny>, all: bool) -> PyResult<()> {
        let sig = signal_arg(signal)?;
        self.no_gil(py, |g| {
            let c = Core::live(g)?;
            if all {
                c.signal_all(sig)?
            } else {
                c.signal(sig)?
            }
            Ok(())
        })
    }

    /// Freezes every process of the container.
    fn pause(&self, py: Python<'_>) -> PyResult<()> {
        self.no_gil(py, |g| Ok(Core::live(g)?.pause()?))
    }

    /// Thaws a paused container.
    fn resume(&self, py: Python<'_>) -> PyResult<()> {
        self.no_gil(py, |g| Ok(Core::live(g)?.resume()?))
    }

    /// Applies new limits (those set in `limits`; the others stay as they are).
    fn update(&self, py: Python<'_>, limits: &Bound<'_, PyAny>) -> PyResult<()> {
        let l = limits
            .downcast::<Limits>()
            .map_err(|_| type_err("limits", "a corral.Limits", limits))?;
        let res = l
            .get()
            .inner
            .to_linux_resources()
            .map_err(|e| rt_err(py, e))?;
        self.no_gil(py, |g| Ok(Core::live(g)?.update_resources(&res)?))
    }

    /// Resource usage from the container's cgroup, as a dict.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.no_gil(py, |g| Ok(Core::live(g)?.stats()?))?;
        let d = PyDict::new(py);
        d.set_item("memory_usage", s.memory_usage)?;
        d.set_item("memory_limit", s.memory_limit)?;
        d.set_item("memory_max_usage", s.memory_max_usage)?;
        d.set_item("swap_usage", s.swap_usage)?;
        d.set_item("oom_kill_count", s.oom_kill_count)?;
        d.set_item("pids_current", s.pids_current)?;
        d.set_item("pids_limit", s.pids_limit)?;
        d.set_item("cpu_usage_ns", s.cpu_usage_ns)?;
        Ok(d)
    }

    /// The pids of every process of the container (host pid namespace).
    fn pids(&self, py: Python<'_>) -> PyResult<Vec<i32>> {
        self.no_gil(py, |g| Ok(Core::live(g)?.pids()?))
    }

    /// Runs another process in the running container; returns its handle.
    #[pyo3(signature = (args, *, env=None, cwd=None, user=None, stdio=None))]
    fn exec(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyAny>,
        env: Option<&Bound<'_, PyAny>>,
        cwd: Option<&Bound<'_, PyAny>>,
        user: Option<&Bound<'_, PyAny>>,
        stdio: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Process> {
        let args = args_arg("args", args)?;
        if args.is_empty() {
            return Err(config_err(py, "args", "empty: give the program to run"));
        }
        let mut spec = runtime::ExecSpec {
            args,
            ..Default::default()
        };
        if let Some(e) = env.filter(|v| !v.is_none()) {
            spec.env = env_arg(e)?;
        }
        if let Some(c) = cwd.filter(|v| !v.is_none()) {
            spec.cwd = Some(path_arg("cwd", c)?);
        }
        if let Some(u) = user.filter(|v| !v.is_none()) {
            let (uid, gid, _) = user_arg(u)?;
            spec.user = Some((uid, gid));
        }
        let stdio = match stdio.filter(|s| !s.is_none()) {
            Some(s) => stdio_arg(s)?,
            None => [-1; 3],
        };
        let opts = runtime::Options {
            stdio,
            ..self.opts.clone()
        };
        let execs = &self.execs;
        let p = self.no_gil(py, |g| {
            reap_execs(execs, false);
            let p = Core::live(g)?.exec_with(&spec, &opts)?;
            let pid = p.pid();
            let slot: ExecSlot = Arc::new(Mutex::new(Some(p)));
            lock(execs).push(slot.clone());
            Ok((pid, slot))
        })?;
        Ok(Process {
            id: self.id.clone(),
            pid: p.0,
            owner: my_pid(),
            inner: p.1,
        })
    }

    /// Removes the container and everything it made. A running or paused container is
    /// refused unless `force` (then it is killed first). Deleting twice does nothing.
    #[pyo3(signature = (force=false))]
    fn delete(&self, py: Python<'_>, force: bool) -> PyResult<()> {
        self.no_gil(py, |g| {
            match g.phase {
                Phase::New | Phase::Deleted => {
                    g.phase = Phase::Deleted;
                    return Ok(());
                }
                Phase::Detached => return Err(Fail::State("was detached from this handle")),
                Phase::Live => {}
            }
            let Some(mut c) = g.c.take() else {
                g.phase = Phase::Deleted;
                return Ok(());
            };
            if g.exit.is_none() {
                g.exit = c.try_wait().ok().flatten();
            }
            let st = c.status();
            if !force && matches!(st, runtime::Status::Running | runtime::Status::Paused) {
                g.c = Some(c);
                return Err(Fail::Rt(RtError::State {
                    id: self.id.clone(),
                    status: st.as_str(),
                    want: "stopped or created (or delete(force=True))",
                }));
            }
            let was_alive = st != runtime::Status::Stopped;
            g.phase = Phase::Deleted;
            reap_execs(&self.execs, true);
            // Checked above: a live one only with force.
            let r = corral_image::delete(&self.store_dir(), c, true);
            if g.exit.is_none() && was_alive {
                g.exit = Some(ExitStatus::Signaled(libc::SIGKILL));
            }
            Ok(r?)
        })
    }

    /// Leaves the container running when this handle goes away: it lives on under its
    /// state root (for `corral delete` or `Container.load`).
    fn detach(&self, py: Python<'_>) -> PyResult<()> {
        self.no_gil(py, |g| {
            Core::live(g)?;
            if let Some(c) = g.c.take() {
                c.detach()?;
            }
            g.phase = Phase::Detached;
            Ok(())
        })
    }

    /// A new fd (the caller closes it) that becomes readable when the init exits: for an
    /// event loop. None when the init has already been waited for.
    fn wait_fd(&self, py: Python<'_>) -> PyResult<Option<RawFd>> {
        self.no_gil(py, |g| {
            if g.exit.is_some() {
                return Ok(None);
            }
            let c = Core::live(g)?;
            match c.wait_fd() {
                Some(fd) => {
                    let d = dup_fd(fd)?;
                    let raw = d.as_raw_fd();
                    std::mem::forget(d);
                    Ok(Some(raw))
                }
                None => Ok(None),
            }
        })
    }

    /// New fds (the caller closes them), one per exec'd process still running, each readable
    /// when that process exits: an event loop waiting for the container calls `reap_execs`
    /// then, as `wait` does by itself.
    fn exec_wait_fds(&self, py: Python<'_>) -> Vec<RawFd> {
        py.allow_threads(|| {
            exec_fds(&self.execs)
                .into_iter()
                .map(|f| {
                    let raw = f.as_raw_fd();
                    std::mem::forget(f);
                    raw
                })
                .collect()
        })
    }

    /// Reaps the exec'd processes that have exited (never blocks).
    fn reap_execs(&self, py: Python<'_>) {
        py.allow_threads(|| reap_execs(&self.execs, false))
    }

    /// The container's id.
    #[getter]
    fn id(&self) -> &str {
        &self.id
    }

    /// The state root it lives under.
    #[getter]
    fn root(&self) -> String {
        self.root.display().to_string()
    }

    /// The pid of its init (host pid namespace); 0 before create.
    #[getter]
    fn pid(&self, py: Python<'_>) -> i32 {
        py.allow_threads(|| lock(&self.inner).pid)
    }

    /// "new" (not created yet), "created", "running", "paused", "stopped", "deleted" or
    /// "detached".
    #[getter]
    fn state(&self, py: Python<'_>) -> &'static str {
        py.allow_threads(|| {
            let g = lock(&self.inner);
            match g.phase {
                Phase::New => "new",
                Phase::Deleted => "deleted",
                Phase::Detached => "detached",
                Phase::Live => match &g.c {
                    Some(c) => c.status().as_str(),
                    None => "deleted",
                },
            }
        })
    }

    /// `(returncode, signal)` once the init's end is known, else None.
    #[getter]
    fn exit(&self, py: Python<'_>) -> Option<(Option<i32>, Option<i32>)> {
        py.allow_threads(|| lock(&self.inner).exit.map(exit_tuple))
    }

    /// The phases of create and start, in order: `[(name, seconds)]`.
    #[getter]
    fn timings(&self, py: Python<'_>) -> Vec<(String, f64)> {
        py.allow_threads(|| lock(&self.inner).timings.clone())
    }

    /// What the networks gave the container, one dict per interface in the order of its
    /// networks: `network`, `ifname`, `ips`, `gateway`, `mac`, `ports` (with the host
    /// ports chosen). Empty for a container on no network (or not created yet).
    #[allow(clippy::result_large_err)] // corral_net's error, made an exception at once
    fn networks<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyList>> {
        let created = py.allow_threads(|| {
            let g = lock(&self.inner);
            g.phase == Phase::Live || g.phase == Phase::Detached
        });
        let l = pyo3::types::PyList::empty(py);
        if !created {
            return Ok(l);
        }
        let store = self.store_dir();
        let a = py
            .allow_threads(|| attachments(&store, &self.id))
            .map_err(|e| net_err(py, None, e))?;
        for a in &a {
            l.append(attachment_dict(py, a)?)?;
        }
        Ok(l)
    }

    /// The OCI state (`id`, `status`, `pid`, `bundle`, `created`, `annotations`) as a dict.
    fn oci_state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let st = self.no_gil(py, |g| Ok(Core::live(g)?.oci_state()))?;
        state_dict(py, &st)
    }
}

pub(crate) fn phases(c: &runtime::Container) -> Vec<(String, f64)> {
    c.timings()
        .phases()
        .iter()
        .map(|(n, d)| (n.to_string(), d.as_secs_f64()))
        .collect()
}

pub(crate) fn state_dict<'py>(
    py: Python<'py>,
    st: &runtime::State,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("id", &st.id)?;
    d.set_item("status", st.status.as_str())?;
    d.set_item("pid", st.pid)?;
    d.set_item("bundle", st.bundle.display().to_string())?;
    d.set_item("created", st.created)?;
    d.set_item("annotations", st.annotations.clone())?;
    Ok(d)
}

impl Core {
    /// One wait without the GIL: the pidfd is duplicated under the lock and polled outside
    /// it, so that kill, delete and the rest go on from other threads meanwhile.
    fn wait_once(&self, deadline: Option<Instant>) -> Result<Option<ExitStatus>, Fail> {
        let fd = {
            let mut g = lock(&self.inner);
            if let Some(e) = g.exit {
                return Ok(Some(e));
            }
            let c = Core::live(&mut g)?;
            match c.wait_fd() {
                Some(fd) => Some(dup_fd(fd)?),
                None => None,
            }
        };
        match fd {
            // The exec'd processes are watched too: one that exits is reaped at once (the
            // init of a pid namespace cannot finish exiting while one is unreaped).
            Some(fd) => loop {
                let others = exec_fds(&self.execs);
                let mut fds = vec![fd.as_raw_fd()];
                fds.extend(others.iter().map(|f| f.as_raw_fd()));
                match poll_any(&fds, deadline)? {
                    None => return Ok(None),
                    Some(0) => break,
                    Some(_) => reap_execs(&self.execs, false),
                }
            },
            None => {
                // No pidfd: only the runtime's own wait can tell, under the lock.
                let mut g = lock(&self.inner);
                let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
                let c = Core::live(&mut g)?;
                let e = c.wait_timeout(left)?;
                g.exit = e;
                return Ok(e);
            }
        }
        let mut g = lock(&self.inner);
        if let Some(e) = g.exit {
            return Ok(Some(e));
        }
        let Some(c) = g.c.as_mut() else {
            // Deleted by another thread meanwhile: it was killed.
            return Ok(g.exit);
        };
        let e = c.wait_timeout(Some(Duration::ZERO))?;
        g.exit = e;
        Ok(e)
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        let g = self.inner.get_mut().unwrap_or_else(|p| p.into_inner());
        let Some(c) = g.c.take() else { return };
        if my_pid() != self.owner {
            // A copy made by os.fork(): the container is the parent's.
            std::mem::forget(c);
            return;
        }
        // Kill and reap what was exec'd, then tear down (kill, wait, remove), without
        // holding the GIL.
        let execs = &self.execs;
        Python::with_gil(|py| {
            let store = self.store_dir();
            py.allow_threads(move || {
                reap_execs(execs, true);
                let _ = corral_image::delete(&store, c, true);
            })
        });
    }
}

//! `corral._corral`: the native core of the Python module `corral`.
//!
//! This crate maps Python arguments, objects and errors onto the `runtime` crate's library
//! API (the spec builder, `Container`, `ExecProcess`); it holds no container logic of its
//! own. The Python package around it (`corral/`) adds what is Python's: `run` in the shape of
//! `subprocess.run` (pipes, input, timeouts), the context manager, `asyncio` waiting and the
//! exception classes.
//!
//! It promises that every call that can block (create, start, wait, signal, pause, resume,
//! update, stats, exec, delete, load, list) runs with the GIL released, that no lock of a
//! container is held while the GIL is wanted (so threads cannot deadlock on the pair), and
//! that a container is waited for on its pidfd, never with a thread of its own. It never
//! panics on input: bad arguments become `TypeError` or `corral.ConfigError` naming the
//! argument.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};
use runtime::{Error as RtError, ExitStatus, Namespace, NsMode};

// ---------------------------------------------------------------------------------------
// Errors

/// Raises `corral.errors.<class>(message, step=, errno=, path=)`.
fn raise(
    py: Python<'_>,
    class: &str,
    message: String,
    step: Option<String>,
    errno: Option<i32>,
    path: Option<String>,
) -> PyErr {
    let made = (|| -> PyResult<PyErr> {
        let cls = py.import("corral.errors")?.getattr(class)?;
        let kw = PyDict::new(py);
        kw.set_item("step", step)?;
        kw.set_item("errno", errno)?;
        kw.set_item("path", path)?;
        Ok(PyErr::from_value(cls.call((message,), Some(&kw))?))
    })();
    made.unwrap_or_else(|e| e)
}

/// The Python exception for a runtime error: its class by kind, its step, errno and path.
fn rt_err(py: Python<'_>, e: RtError) -> PyErr {
    let class = match &e {
        RtError::Bundle { .. }
        | RtError::ConfigParse { .. }
        | RtError::Config { .. }
        | RtError::InvalidId { .. } => "ConfigError",
        RtError::NotFound(_) => "NotFoundError",
        RtError::State { .. } | RtError::AlreadyExists(_) => "StateError",
        _ => "SpawnError",
    };
    raise(
        py,
        class,
        e.to_string(),
        Some(e.step()),
        Some(e.errno()),
        e.path(),
    )
}

/// A `corral.ConfigError` for the Python argument `arg`.
fn config_err(py: Python<'_>, arg: &str, reason: impl std::fmt::Display) -> PyErr {
    raise(
        py,
        "ConfigError",
        format!("{arg}: {reason}"),
        Some("config".into()),
        Some(libc::EINVAL),
        Some(arg.to_string()),
    )
}

/// A `corral.StateError` for a call the container's state does not allow.
fn state_err(py: Python<'_>, id: &str, what: &str) -> PyErr {
    raise(
        py,
        "StateError",
        format!("container {id:?} {what}"),
        Some("state".into()),
        Some(libc::EBUSY),
        None,
    )
}

/// What a call run without the GIL can fail with.
enum Fail {
    Rt(RtError),
    /// The container is not created yet, or was deleted (the words say which).
    State(&'static str),
    /// A system call of this module's own (`what`, errno).
    Sys(&'static str, i32),
    /// A signal arrived while waiting: Python's handlers must run (with the GIL).
    Interrupted,
    /// The image store said no (a missing image: `NotFoundError`).
    Image(corral_image::ImageError),
}

impl From<RtError> for Fail {
    fn from(e: RtError) -> Fail {
        Fail::Rt(e)
    }
}

fn fail_err(py: Python<'_>, id: &str, f: Fail) -> PyErr {
    match f {
        Fail::Rt(e) => rt_err(py, e),
        Fail::State(what) => state_err(py, id, what),
        Fail::Sys(what, errno) => raise(
            py,
            "SpawnError",
            format!(
                "container {id:?}: {what}: {}",
                std::io::Error::from_raw_os_error(errno)
            ),
            Some(what.to_string()),
            Some(errno),
            None,
        ),
        Fail::Image(e) => {
            let class = match e {
                corral_image::ImageError::NotFound(_) => "NotFoundError",
                corral_image::ImageError::Invalid(_) => "ConfigError",
                _ => "SpawnError",
            };
            let errno = e.errno();
            raise(
                py,
                class,
                format!("container {id:?}: {e}"),
                Some("image".into()),
                Some(errno),
                None,
            )
        }
        Fail::Interrupted => match py.check_signals() {
            Err(e) => e,
            Ok(()) => raise(
                py,
                "Error",
                "interrupted".into(),
                None,
                Some(libc::EINTR),
                None,
            ),
        },
    }
}

// ---------------------------------------------------------------------------------------
// Argument conversion

fn type_name(v: &Bound<'_, PyAny>) -> String {
    v.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

fn type_err(arg: &str, want: &str, v: &Bound<'_, PyAny>) -> PyErr {
    PyTypeError::new_err(format!("{arg}: expected {want}, got {}", type_name(v)))
}

/// A `str` (or `os.PathLike`) argument as a string.
fn path_arg(arg: &str, v: &Bound<'_, PyAny>) -> PyResult<String> {
    let py = v.py();
    let p = if v.is_instance_of::<PyString>() {
        v.clone()
    } else {
        match py.import("os")?.getattr("fspath")?.call1((v,)) {
            Ok(p) => p,
            Err(_) => return Err(type_err(arg, "a str or os.PathLike", v)),
        }
    };
    match p.extract::<String>() {
        Ok(s) if s.contains('\0') => Err(config_err(py, arg, "contains a NUL byte")),
        Ok(s) => Ok(s),
        Err(_) => Err(type_err(arg, "a str path", v)),
    }
}

fn str_arg(arg: &str, v: &Bound<'_, PyAny>) -> PyResult<String> {
    if !v.is_instance_of::<PyString>() {
        return Err(type_err(arg, "a str", v));
    }
    let s: String = v.extract()?;
    if s.contains('\0') {
        return Err(config_err(v.py(), arg, "contains a NUL byte"));
    }
    Ok(s)
}

/// An argument list: a list or tuple of str (a bare str is refused: it is almost always a
/// command line that wanted splitting).
fn args_arg(arg: &str, v: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    list_of(arg, v, path_arg)
}

/// A list or tuple (not a bare str), each item read by `item` with its index in its name.
fn list_of(
    arg: &str,
    v: &Bound<'_, PyAny>,
    item: fn(&str, &Bound<'_, PyAny>) -> PyResult<String>,
) -> PyResult<Vec<String>> {
    if v.is_instance_of::<PyString>() {
        return Err(type_err(arg, "a list of str (not one str)", v));
    }
    let items: Vec<Bound<'_, PyAny>> = match v.try_iter() {
        Ok(it) => it.collect::<PyResult<_>>()?,
        Err(_) => return Err(type_err(arg, "a list of str", v)),
    };
    items
        .iter()
        .enumerate()
        .map(|(i, x)| item(&format!("{arg}[{i}]"), x))
        .collect()
}

fn int_arg(arg: &str, v: &Bound<'_, PyAny>) -> PyResult<i64> {
    if v.is_instance_of::<pyo3::types::PyBool>() || !v.is_instance_of::<pyo3::types::PyInt>() {
        return Err(type_err(arg, "an int", v));
    }
    v.extract::<i64>()
        .map_err(|_| config_err(v.py(), arg, "out of range"))
}

fn id_arg(arg: &str, v: &Bound<'_, PyAny>) -> PyResult<u32> {
    let n = int_arg(arg, v)?;
    u32::try_from(n).map_err(|_| config_err(v.py(), arg, format!("{n}: not a user or group id")))
}

/// `env`: a mapping of str to str.
fn env_arg(v: &Bound<'_, PyAny>) -> PyResult<Vec<(String, String)>> {
    let Ok(d) = v.downcast::<PyDict>() else {
        let items = v
            .call_method0("items")
            .map_err(|_| type_err("env", "a dict of str to str", v))?;
        let d = PyDict::new(v.py());
        for kv in items.try_iter()? {
            let (k, val): (Bound<'_, PyAny>, Bound<'_, PyAny>) = kv?.extract()?;
            d.set_item(k, val)?;
        }
        return env_arg(d.as_any());
    };
    let mut out = Vec::new();
    for (k, val) in d.iter() {
        let k = str_arg("env key", &k)?;
        let val = str_arg(&format!("env[{k:?}]"), &val)?;
        out.push((k, val));
    }
    Ok(out)
}

/// `user`: a uid, or `(uid, gid)`, or `(uid, gid, [additional gids])`.
fn user_arg(v: &Bound<'_, PyAny>) -> PyResult<(u32, u32, Vec<u32>)> {
    if v.is_instance_of::<pyo3::types::PyInt>() && !v.is_instance_of::<pyo3::types::PyBool>() {
        let u = id_arg("user", v)?;
        return Ok((u, u, Vec::new()));
    }
    let want = "an int uid, or a (uid, gid) or (uid, gid, [gids]) tuple";
    let Ok(t) = v.downcast::<pyo3::types::PyTuple>() else {
        return Err(type_err("user", want, v));
    };
    match t.len() {
        2 | 3 => {
            let uid = id_arg("user[0] (uid)", &t.get_item(0)?)?;
            let gid = id_arg("user[1] (gid)", &t.get_item(1)?)?;
            let mut extra = Vec::new();
            if t.len() == 3 {
                let g = t.get_item(2)?;
                let it = g
                    .try_iter()
                    .map_err(|_| type_err("user[2] (additional gids)", "a list of int", &g))?;
                for (i, x) in it.enumerate() {
                    extra.push(id_arg(&format!("user[2][{i}]"), &x?)?);
                }
            }
            Ok((uid, gid, extra))
        }
        _ => Err(type_err("user", want, v)),
    }
}

fn signal_arg(v: &Bound<'_, PyAny>) -> PyResult<i32> {
    let n = int_arg("signal", v)?;
    i32::try_from(n)
        .ok()
        .filter(|s| (1..=64).contains(s))
        .ok_or_else(|| config_err(v.py(), "signal", format!("{n}: not a signal number")))
}

fn timeout_arg(v: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Duration>> {
    let Some(v) = v.filter(|v| !v.is_none()) else {
        return Ok(None);
    };
    if v.is_instance_of::<pyo3::types::PyBool>() {
        return Err(type_err("timeout", "a number of seconds", v));
    }
    let s: f64 = v
        .extract()
        .map_err(|_| type_err("timeout", "a number of seconds", v))?;
    if !s.is_finite() || s < 0.0 {
        return Err(PyValueError::new_err(format!(
            "timeout: {s}: must be a number of seconds >= 0"
        )));
    }
    Ok(Some(Duration::from_secs_f64(s.min(1e9))))
}

// ---------------------------------------------------------------------------------------
// Limits and mounts

/// Resource limits of a container: `corral.Limits(memory="64M", pids=64, cpus=0.5)`.
///
/// memory, memory_swap: bytes, as an int or a str with a suffix k, M, G or T ("64M", "1.5G");
/// memory_swap is memory plus swap (-1: unlimited). pids: the most processes at once (-1:
/// unlimited). cpus: CPU time as a number of CPUs (0.5 is half of one). cpu_shares: the
/// relative CPU weight (2..262144). A limit left at None is not set (unlimited for a new
/// container, unchanged for an update). A bad value raises corral.ConfigError naming it.
#[pyclass(frozen, eq, module = "corral")]
#[derive(Clone, PartialEq)]
struct Limits {
    inner: runtime::Limits,
}

fn size_arg(
    arg: &str,
    v: Option<&Bound<'_, PyAny>>,
    allow_unlimited: bool,
) -> PyResult<Option<i64>> {
    let Some(v) = v.filter(|v| !v.is_none()) else {
        return Ok(None);
    };
    let py = v.py();
    if v.is_instance_of::<PyString>() {
        let s: String = v.extract()?;
        if allow_unlimited && s.trim() == "-1" {
            return Ok(Some(-1));
        }
        return runtime::parse_size(arg, &s).map(Some).map_err(|_| {
            config_err(
                py,
                arg,
                format!("{s:?} is not a size (want bytes, or a number with k, M, G or T)"),
            )
        });
    }
    let n =
        int_arg(arg, v).map_err(|_| type_err(arg, "an int (bytes) or a str such as \"64M\"", v))?;
    Ok(Some(n))
}

/// The Python argument that names an OCI resource field.
fn limit_arg_of(field: &str) -> &'static str {
    match field.trim_start_matches("linux.resources.") {
        "memory.limit" => "memory",
        "memory.swap" => "memory_swap",
        "pids.limit" => "pids",
        "cpu.quota" => "cpus",
        "cpu.shares" => "cpu_shares",
        _ => "limits",
    }
}

#[pymethods]
impl Limits {
    #[new]
    #[pyo3(signature = (*, memory=None, memory_swap=None, pids=None, cpus=None, cpu_shares=None))]
    fn new(
        py: Python<'_>,
        memory: Option<&Bound<'_, PyAny>>,
        memory_swap: Option<&Bound<'_, PyAny>>,
        pids: Option<&Bound<'_, PyAny>>,
        cpus: Option<&Bound<'_, PyAny>>,
        cpu_shares: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Limits> {
        let cpus = match cpus.filter(|v| !v.is_none()) {
            None => None,
            Some(v) if v.is_instance_of::<pyo3::types::PyBool>() => {
                return Err(type_err("cpus", "a number of CPUs", v))
            }
            Some(v) => Some(
                v.extract::<f64>()
                    .map_err(|_| type_err("cpus", "a number of CPUs", v))?,
            ),
        };
        let cpu_shares = match cpu_shares.filter(|v| !v.is_none()) {
            None => None,
            Some(v) => {
                let n = int_arg("cpu_shares", v)?;
                Some(u64::try_from(n).map_err(|_| {
                    config_err(py, "cpu_shares", format!("{n}: must be in 2..=262144"))
                })?)
            }
        };
        let pids = match pids.filter(|v| !v.is_none()) {
            None => None,
            Some(v) => Some(int_arg("pids", v)?),
        };
        let inner = runtime::Limits {
            memory: size_arg("memory", memory, false)?,
            memory_swap: size_arg("memory_swap", memory_swap, true)?,
            pids,
            cpus,
            cpu_shares,
            ..Default::default()
        };
        if let Err(e) = inner.check() {
            return Err(match e {
                RtError::Config { field, reason } => {
                    let arg = limit_arg_of(&field);
                    raise(
                        py,
                        "ConfigError",
                        format!("{arg}: {reason} ({field})"),
                        Some("config".into()),
                        Some(libc::EINVAL),
                        Some(arg.to_string()),
                    )
                }
                e => rt_err(py, e),
            });
        }
        Ok(Limits { inner })
    }

    /// The memory limit in bytes, or None.
    #[getter]
    fn memory(&self) -> Option<i64> {
        self.inner.memory
    }

    /// The memory plus swap limit in bytes (-1: unlimited), or None.
    #[getter]
    fn memory_swap(&self) -> Option<i64> {
        self.inner.memory_swap
    }

    /// The most processes at once (-1: unlimited), or None.
    #[getter]
    fn pids(&self) -> Option<i64> {
        self.inner.pids
    }

    /// CPU time as a number of CPUs, or None.
    #[getter]
    fn cpus(&self) -> Option<f64> {
        self.inner.cpus
    }

    /// The relative CPU weight, or None.
    #[getter]
    fn cpu_shares(&self) -> Option<u64> {
        self.inner.cpu_shares
    }

    fn __repr__(&self) -> String {
        let l = &self.inner;
        let mut parts = Vec::new();
        if let Some(v) = l.memory {
            parts.push(format!("memory={v}"));
        }
        if let Some(v) = l.memory_swap {
            parts.push(format!("memory_swap={v}"));
        }
        if let Some(v) = l.pids {
            parts.push(format!("pids={v}"));
        }
        if let Some(v) = l.cpus {
            parts.push(format!("cpus={v}"));
        }
        if let Some(v) = l.cpu_shares {
            parts.push(format!("cpu_shares={v}"));
        }
        format!("Limits({})", parts.join(", "))
    }
}

/// One mount of a container: `Mount(destination, source, type="bind", options=[...])`, or
/// `Mount.bind(source, destination, readonly=False)`, or `Mount.tmpfs(destination)`.
///
/// destination is absolute, inside the container; source is a host path for a bind mount
/// (else a name such as "tmpfs"); options are mount options as in an OCI config ("ro",
/// "nosuid", "size=64m"...).
#[pyclass(frozen, eq, module = "corral")]
#[derive(Clone, PartialEq)]
struct Mount {
    inner: runtime::Mount,
}

#[pymethods]
impl Mount {
    #[new]
    #[pyo3(signature = (destination, source, r#type="bind", options=None))]
    fn new(
        destination: &Bound<'_, PyAny>,
        source: &Bound<'_, PyAny>,
        r#type: &str,
        options: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Mount> {
        let kind = r#type.to_string();
        let mut opts = match options.filter(|o| !o.is_none()) {
            Some(o) => args_arg("options", o)?,
            None => Vec::new(),
        };
        if kind == "bind" && opts.is_empty() {
            opts = vec!["rbind".into(), "nosuid".into(), "nodev".into()];
        }
        Ok(Mount {
            inner: runtime::Mount {
                destination: path_arg("destination", destination)?,
                kind,
                source: path_arg("source", source)?,
                options: opts,
            },
        })
    }

    /// A bind mount of the host path `source` at `destination` (read-only if `readonly`).
    #[staticmethod]
    #[pyo3(signature = (source, destination, readonly=false))]
    fn bind(
        source: &Bound<'_, PyAny>,
        destination: &Bound<'_, PyAny>,
        readonly: bool,
    ) -> PyResult<Mount> {
        Ok(Mount {
            inner: runtime::Mount::bind(
                path_arg("source", source)?,
                path_arg("destination", destination)?,
                readonly,
            ),
        })
    }

    /// An empty tmpfs at `destination`.
    #[staticmethod]
    fn tmpfs(destination: &Bound<'_, PyAny>) -> PyResult<Mount> {
        Ok(Mount {
            inner: runtime::Mount::tmpfs(path_arg("destination", destination)?),
        })
    }

    /// Where it goes, inside the container.
    #[getter]
    fn destination(&self) -> &str {
        &self.inner.destination
    }

    /// The host path (bind mounts) or the name of the source.
    #[getter]
    fn source(&self) -> &str {
        &self.inner.source
    }

    /// The filesystem type ("bind", "tmpfs", ...).
    #[getter]
    fn r#type(&self) -> &str {
        &self.inner.kind
    }

    /// The mount options.
    #[getter]
    fn options(&self) -> Vec<String> {
        self.inner.options.clone()
    }

    fn __repr__(&self) -> String {
        let m = &self.inner;
        format!(
            "Mount({:?}, {:?}, type={:?}, options={:?})",
            m.destination, m.source, m.kind, m.options
        )
    }
}

// ---------------------------------------------------------------------------------------
// Waiting on a pidfd without holding a lock

/// A close-on-exec duplicate of `fd`, owned by the caller.
fn dup_fd(fd: RawFd) -> Result<OwnedFd, Fail> {
    // SAFETY: plain fcntl on an fd the caller keeps open for the call.
    let d = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if d < 0 {
        return Err(Fail::Sys("duplicating the pidfd", errno()));
    }
    // SAFETY: a fresh fd owned here.
    Ok(unsafe { OwnedFd::from_raw_fd(d) })
}

fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// Waits until `fd` is readable, at most until `deadline`: Ok(true) when readable,
/// Ok(false) when the time ran out, `Interrupted` when a signal came (Python's handlers must
/// run before the wait goes on).
fn poll_until(fd: RawFd, deadline: Option<Instant>) -> Result<bool, Fail> {
    poll_any(&[fd], deadline).map(|r| r.is_some())
}

/// Waits until one of `fds` is readable, at most until `deadline`: the index of the first
/// readable one, or None when the time ran out (see [`poll_until`]).
fn poll_any(fds: &[RawFd], deadline: Option<Instant>) -> Result<Option<usize>, Fail> {
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
fn exit_tuple(e: ExitStatus) -> (Option<i32>, Option<i32>) {
    match e {
        ExitStatus::Exited(c) => (Some(c), None),
        ExitStatus::Signaled(s) => (Some(-s), Some(s)),
        ExitStatus::Unknown => (None, None),
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The process id of the caller (a container made before a fork is not the child's).
fn my_pid() -> u32 {
    std::process::id()
}

// ---------------------------------------------------------------------------------------
// The container

struct Inner {
    /// Created (or loaded) and not deleted yet.
    c: Option<runtime::Container>,
    /// How it ended, once known (kept after delete).
    exit: Option<ExitStatus>,
    /// Its init's pid (kept after delete).
    pid: i32,
    phase: Phase,
    timings: Vec<(String, f64)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    New,
    Live,
    Deleted,
    Detached,
}

/// The native handle of one container (`corral.Container` wraps it).
#[pyclass(frozen, module = "corral._corral")]
struct Core {
    id: String,
    root: PathBuf,
    bundle: Option<runtime::Bundle>,
    opts: runtime::Options,
    /// The process that created or loaded it: in a child after `os.fork()` the handle is a
    /// copy, and dropping it there leaves the parent's container alone.
    owner: u32,
    inner: Mutex<Inner>,
    /// The processes exec'd into it that have not been reaped yet, shared with their
    /// handles. They are this process's children, in the container's pid namespace: its init
    /// cannot finish exiting until they are reaped, so the container's own wait reaps them as
    /// they exit, and delete kills and reaps them before it waits for the init.
    execs: Mutex<Vec<ExecSlot>>,
    /// A container from an image of a store: its spec and root come from there at create.
    image: Option<ImageSrc>,
}

/// Which image of which store, and what the caller set on top of its config.
struct ImageSrc {
    store: PathBuf,
    name: String,
    rc: corral_image::RunConfig,
}

impl ImageSrc {
    /// Forgets the store's record of container `id` once its state under `root` is gone.
    fn forget(&self, root: &std::path::Path, id: &str) {
        corral_image::forget_container(&self.store, root, id);
    }
}

/// One exec'd process, shared by its handle and its container.
type ExecSlot = Arc<Mutex<Option<runtime::ExecProcess>>>;

/// Reaps the exec'd processes that have exited (with `kill`: kills the others first and
/// waits for them), and forgets them.
fn reap_execs(execs: &Mutex<Vec<ExecSlot>>, kill: bool) {
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
fn exec_fds(execs: &Mutex<Vec<ExecSlot>>) -> Vec<OwnedFd> {
    lock(execs)
        .iter()
        .filter_map(|slot| lock(slot).as_ref().and_then(|p| dup_fd(p.pidfd()).ok()))
        .collect()
}

impl Core {
    fn no_gil<T: Send>(
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

    fn live(g: &mut Inner) -> Result<&mut runtime::Container, Fail> {
        match g.phase {
            Phase::New => Err(Fail::State("is not created yet")),
            Phase::Deleted => Err(Fail::State("was deleted")),
            Phase::Detached => Err(Fail::State("was detached from this handle")),
            Phase::Live => g.c.as_mut().ok_or(Fail::State("was deleted")),
        }
    }
}

fn namespaces_arg(b: &mut runtime::SpecBuilder, v: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = v.py();
    let Ok(d) = v.downcast::<PyDict>() else {
        return Err(type_err(
            "namespaces",
            "a dict of namespace name to \"new\", \"host\" or a path to join",
            v,
        ));
    };
    for (k, m) in d.iter() {
        let name = str_arg("namespaces key", &k)?;
        let ns: Namespace = name.parse().map_err(|_| {
            config_err(
                py,
                &format!("namespaces[{name:?}]"),
                "unknown namespace (want pid, network, ipc, uts, mount, user, cgroup or time)",
            )
        })?;
        let arg = format!("namespaces[{name:?}]");
        let mode = if m.is_instance_of::<PyString>() {
            match m.extract::<String>()?.as_str() {
                "new" => NsMode::New,
                "host" => NsMode::Host,
                p if p.starts_with('/') => NsMode::Join(PathBuf::from(p)),
                other => {
                    return Err(config_err(
                        py,
                        &arg,
                        format!("{other:?}: want \"new\", \"host\" or an absolute path to join"),
                    ))
                }
            }
        } else {
            let p = path_arg(&arg, &m)?;
            if !p.starts_with('/') {
                return Err(config_err(py, &arg, format!("{p:?}: not an absolute path")));
            }
            NsMode::Join(PathBuf::from(p))
        };
        b.namespace(ns, mode);
    }
    Ok(())
}

fn stdio_arg(v: &Bound<'_, PyAny>) -> PyResult<[RawFd; 3]> {
    let (a, b, c): (i64, i64, i64) = v
        .extract()
        .map_err(|_| type_err("stdio", "a tuple of three fds (-1: inherit)", v))?;
    let mut out = [-1; 3];
    for (i, (name, fd)) in [("stdin", a), ("stdout", b), ("stderr", c)]
        .into_iter()
        .enumerate()
    {
        out[i] = i32::try_from(fd)
            .ok()
            .filter(|fd| *fd >= -1)
            .ok_or_else(|| config_err(v.py(), name, format!("{fd}: not a file descriptor")))?;
    }
    Ok(out)
}

/// `mounts`: a list of `corral.Mount`.
fn mounts_arg(ms: &Bound<'_, PyAny>) -> PyResult<Vec<runtime::Mount>> {
    let it = ms
        .try_iter()
        .map_err(|_| type_err("mounts", "a list of corral.Mount", ms))?;
    let mut out = Vec::new();
    for (i, m) in it.enumerate() {
        let m = m?;
        let m = m
            .downcast::<Mount>()
            .map_err(|_| type_err(&format!("mounts[{i}]"), "a corral.Mount", &m))?;
        out.push(m.get().inner.clone());
    }
    Ok(out)
}

/// `limits`: a `corral.Limits`.
fn limits_arg(l: &Bound<'_, PyAny>) -> PyResult<runtime::Limits> {
    let l = l
        .downcast::<Limits>()
        .map_err(|_| type_err("limits", "a corral.Limits", l))?;
    Ok(l.get().inner.clone())
}

/// A list of str (a bare str is refused).
fn str_list(arg: &str, v: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<String>> {
    let Some(v) = v.filter(|v| !v.is_none()) else {
        return Ok(Vec::new());
    };
    list_of(arg, v, str_arg)
}

/// The security settings of a container from an image: docker's defaults, less what the
/// arguments opt out of (named as docker's options). `seccomp`: None or True for docker's
/// profile, False or "unconfined" for none, else a profile's path.
fn security_arg(
    py: Python<'_>,
    seccomp: Option<&Bound<'_, PyAny>>,
    privileged: bool,
    cap_add: Option<&Bound<'_, PyAny>>,
    cap_drop: Option<&Bound<'_, PyAny>>,
    security_opt: Option<&Bound<'_, PyAny>>,
    devices: Option<&Bound<'_, PyAny>>,
) -> PyResult<runtime::describe::Security> {
    use runtime::describe::Seccomp;
    let mut sec = runtime::describe::Security {
        privileged,
        ..Default::default()
    };
    let e = |arg: &'static str| move |err: runtime::Error| config_err(py, arg, err);
    for c in str_list("cap_add", cap_add)? {
        sec.cap_add(&c).map_err(e("cap_add"))?;
    }
    for c in str_list("cap_drop", cap_drop)? {
        sec.cap_drop(&c).map_err(e("cap_drop"))?;
    }
    for o in str_list("security_opt", security_opt)? {
        sec.option(&o).map_err(e("security_opt"))?;
    }
    for d in str_list("devices", devices)? {
        sec.device(&d).map_err(e("devices"))?;
    }
    if let Some(v) = seccomp.filter(|v| !v.is_none()) {
        sec.seccomp = if v.is_instance_of::<pyo3::types::PyBool>() {
            if v.extract::<bool>()? {
                Seccomp::Default
            } else {
                Seccomp::Unconfined
            }
        } else {
            match path_arg("seccomp", v)?.as_str() {
                "unconfined" => Seccomp::Unconfined,
                "" => return Err(config_err(py, "seccomp", "an empty path")),
                p => Seccomp::Profile(PathBuf::from(p)),
            }
        };
    }
    Ok(sec)
}

fn root_arg(root: Option<&Bound<'_, PyAny>>) -> PyResult<PathBuf> {
    match root.filter(|r| !r.is_none()) {
        Some(r) => Ok(PathBuf::from(path_arg("root", r)?)),
        None => Ok(runtime::state::default_root()),
    }
}

impl Core {
    /// `Core::new` with `image`: the spec comes from the image's config at create, with the
    /// arguments given here on top.
    #[allow(clippy::too_many_arguments)]
    fn from_image(
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
        security: runtime::describe::Security,
        annotations: Option<&Bound<'_, PyAny>>,
        image: Option<&Bound<'_, PyAny>>,
        store: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Core> {
        let set = |v: Option<&Bound<'_, PyAny>>| v.is_some_and(|v| !v.is_none());
        let id = str_arg("id", id)?;
        runtime::state::check_id(&id).map_err(|e| rt_err(py, e))?;
        for (name, v) in [
            ("rootfs", rootfs),
            ("bundle", bundle),
            ("namespaces", namespaces),
            ("annotations", annotations),
        ] {
            if set(v) {
                return Err(config_err(
                    py,
                    name,
                    "cannot be combined with image (its config says it)",
                ));
            }
        }
        let name = str_arg("image", image.expect("set"))?;
        corral_image::Reference::parse(&name)
            .map_err(|e| config_err(py, "image", e.to_string()))?;
        let store = match store.filter(|v| !v.is_none()) {
            Some(s) => PathBuf::from(path_arg("store", s)?),
            None => corral_image::default_store(),
        };
        let mut rc = corral_image::RunConfig {
            security,
            ..Default::default()
        };
        if let Some(a) = args.filter(|v| !v.is_none()) {
            rc.command = args_arg("args", a)?;
        }
        if let Some(e) = env.filter(|v| !v.is_none()) {
            for (k, v) in env_arg(e)? {
                if k.is_empty() || k.contains('=') {
                    return Err(config_err(
                        py,
                        "env",
                        format!("{k:?} is not a variable name"),
                    ));
                }
                rc.env.push(format!("{k}={v}"));
            }
        }
        if let Some(c) = cwd.filter(|v| !v.is_none()) {
            rc.workdir = Some(path_arg("cwd", c)?);
        }
        if let Some(h) = hostname.filter(|v| !v.is_none()) {
            rc.hostname = Some(str_arg("hostname", h)?);
        }
        if let Some(u) = user.filter(|v| !v.is_none()) {
            let (uid, gid, _) = user_arg(u)?;
            rc.user = Some(format!("{uid}:{gid}"));
        }
        if let Some(l) = limits.filter(|v| !v.is_none()) {
            let l = limits_arg(l)?;
            rc.memory = l.memory;
            rc.cpus = l.cpus;
            rc.pids_limit = l.pids;
        }
        if let Some(ms) = mounts.filter(|v| !v.is_none()) {
            for (i, m) in mounts_arg(ms)?.iter().enumerate() {
                if m.kind != "bind" {
                    return Err(config_err(
                        py,
                        &format!("mounts[{i}]"),
                        "a container from an image takes bind mounts only",
                    ));
                }
                let ro = m.options.iter().any(|o| o == "ro");
                rc.volumes
                    .push((PathBuf::from(&m.source), m.destination.clone(), ro));
            }
        }
        let root = root_arg(root)?;
        let stdio = match stdio.filter(|s| !s.is_none()) {
            Some(s) => stdio_arg(s)?,
            None => [-1; 3],
        };
        Ok(Core::made_of(
            py,
            id,
            root,
            stdio,
            None,
            None,
            Some(ImageSrc { store, name, rc }),
        ))
    }

    /// A handle: not created yet (`c` None, from `bundle` or `image`), or on the live
    /// container `c` (loaded, or taken from a pool).
    fn made_of(
        py: Python<'_>,
        id: String,
        root: PathBuf,
        stdio: [RawFd; 3],
        c: Option<runtime::Container>,
        bundle: Option<runtime::Bundle>,
        image: Option<ImageSrc>,
    ) -> Core {
        let inner = match c {
            None => Inner {
                c: None,
                exit: None,
                pid: 0,
                phase: Phase::New,
                timings: Vec::new(),
            },
            Some(c) => Inner {
                exit: None,
                pid: c.pid(),
                timings: phases(&c),
                c: Some(c),
                phase: Phase::Live,
            },
        };
        Core {
            id,
            root: root.clone(),
            bundle,
            // The host's security modules are detected from files: without the GIL.
            opts: py.allow_threads(|| runtime::Options {
                root,
                stdio,
                ..Default::default()
            }),
            owner: my_pid(),
            inner: Mutex::new(inner),
            execs: Mutex::new(Vec::new()),
            image,
        }
    }
}

#[pymethods]
impl Core {
    /// Describes a container (nothing is made until create): from a bundle directory, or
    /// built from the keyword arguments over the defaults of `corral spec`.
    #[new]
    #[pyo3(signature = (id, *, root=None, stdio=None, rootfs=None, bundle=None, args=None,
                        env=None, cwd=None, hostname=None, user=None, namespaces=None,
                        mounts=None, limits=None, seccomp=None, readonly_root=true,
                        annotations=None, image=None, store=None, privileged=false,
                        cap_add=None, cap_drop=None, security_opt=None, devices=None))]
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
        readonly_root: bool,
        annotations: Option<&Bound<'_, PyAny>>,
        image: Option<&Bound<'_, PyAny>>,
        store: Option<&Bound<'_, PyAny>>,
        privileged: bool,
        cap_add: Option<&Bound<'_, PyAny>>,
        cap_drop: Option<&Bound<'_, PyAny>>,
        security_opt: Option<&Bound<'_, PyAny>>,
        devices: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Core> {
        let set = |v: Option<&Bound<'_, PyAny>>| v.is_some_and(|v| !v.is_none());
        if set(image) {
            let security = security_arg(
                py,
                seccomp,
                privileged,
                cap_add,
                cap_drop,
                security_opt,
                devices,
            )?;
            return Core::from_image(
                py,
                id,
                root,
                stdio,
                rootfs,
                bundle,
                args,
                env,
                cwd,
                hostname,
                user,
                namespaces,
                mounts,
                limits,
                security,
                annotations,
                image,
                store,
            );
        }
        if set(store) {
            return Err(config_err(
                py,
                "store",
                "is for a container from an image (image=...)",
            ));
        }
        for (name, v) in [
            ("cap_add", cap_add),
            ("cap_drop", cap_drop),
            ("security_opt", security_opt),
            ("devices", devices),
        ] {
            if set(v) {
                return Err(config_err(
                    py,
                    name,
                    "is for a container from an image (image=...)",
                ));
            }
        }
        if privileged {
            return Err(config_err(
                py,
                "privileged",
                "is for a container from an image (image=...)",
            ));
        }
        let seccomp = match seccomp.filter(|v| !v.is_none()) {
            None => false,
            Some(v) if v.is_instance_of::<pyo3::types::PyBool>() => v.extract::<bool>()?,
            Some(v) => return Err(type_err("seccomp", "a bool", v)),
        };
        let id = str_arg("id", id)?;
        runtime::state::check_id(&id).map_err(|e| rt_err(py, e))?;
        let root = root_arg(root)?;
        let stdio = match stdio.filter(|s| !s.is_none()) {
            Some(s) => stdio_arg(s)?,
            None => [-1; 3],
        };
        let set = |v: Option<&Bound<'_, PyAny>>| v.is_some_and(|v| !v.is_none());
        let bundle = match (set(rootfs), set(bundle)) {
            (true, true) => {
                return Err(config_err(py, "bundle", "give rootfs or bundle, not both"))
            }
            (false, false) => {
                return Err(config_err(
                    py,
                    "rootfs",
                    "missing: give rootfs (a root filesystem directory) or bundle",
                ))
            }
            (false, true) => {
                for (name, v) in [
                    ("args", args),
                    ("env", env),
                    ("cwd", cwd),
                    ("hostname", hostname),
                    ("user", user),
                    ("namespaces", namespaces),
                    ("mounts", mounts),
                    ("limits", limits),
                    ("annotations", annotations),
                ] {
                    if set(v) {
                        return Err(config_err(
                            py,
                            name,
                            "cannot be combined with bundle (its config.json says it)",
                        ));
                    }
                }
                let dir = PathBuf::from(path_arg("bundle", bundle.expect("set"))?);
                py.allow_threads(|| runtime::Bundle::load(&dir))
                    .map_err(|e| rt_err(py, e))?
            }
            (true, false) => {
                let rootfs = path_arg("rootfs", rootfs.expect("set"))?;
                let mut b = runtime::SpecBuilder::new(&rootfs);
                if let Some(a) = args.filter(|v| !v.is_none()) {
                    let a = args_arg("args", a)?;
                    if a.is_empty() {
                        return Err(config_err(py, "args", "empty: give the program to run"));
                    }
                    b.args(a);
                }
                if let Some(e) = env.filter(|v| !v.is_none()) {
                    for (k, v) in env_arg(e)? {
                        if k.is_empty() || k.contains('=') {
                            return Err(config_err(
                                py,
                                "env",
                                format!("{k:?} is not a variable name"),
                            ));
                        }
                        b.env(k, v);
                    }
                }
                if let Some(c) = cwd.filter(|v| !v.is_none()) {
                    let c = path_arg("cwd", c)?;
                    if !c.starts_with('/') {
                        return Err(config_err(
                            py,
                            "cwd",
                            format!("{c:?}: not an absolute path"),
                        ));
                    }
                    b.cwd(c);
                }
                if let Some(h) = hostname.filter(|v| !v.is_none()) {
                    b.hostname(str_arg("hostname", h)?);
                }
                if let Some(u) = user.filter(|v| !v.is_none()) {
                    let (uid, gid, extra) = user_arg(u)?;
                    b.user(uid, gid);
                    if !extra.is_empty() {
                        b.additional_gids(&extra);
                    }
                }
                if let Some(n) = namespaces.filter(|v| !v.is_none()) {
                    namespaces_arg(&mut b, n)?;
                }
                if let Some(ms) = mounts.filter(|v| !v.is_none()) {
                    for m in mounts_arg(ms)? {
                        b.mount(m);
                    }
                }
                if let Some(l) = limits.filter(|v| !v.is_none()) {
                    b.limits(limits_arg(l)?);
                }
                if let Some(a) = annotations.filter(|v| !v.is_none()) {
                    let d = a
                        .downcast::<PyDict>()
                        .map_err(|_| type_err("annotations", "a dict of str to str", a))?;
                    for (k, v) in d.iter() {
                        let k = str_arg("annotations key", &k)?;
                        let v = str_arg(&format!("annotations[{k:?}]"), &v)?;
                        b.annotation(k, v);
                    }
                }
                b.seccomp(seccomp).readonly_root(readonly_root);
                let built = py.allow_threads(|| b.build());
                built.map_err(|e| match e {
                    RtError::Config { field, reason } if field == "root.path" => raise(
                        py,
                        "ConfigError",
                        format!("rootfs: {reason}"),
                        Some("config".into()),
                        Some(libc::ENOENT),
                        Some(rootfs.clone()),
                    ),
                    e => rt_err(py, e),
                })?
            }
        };
        Ok(Core::made_of(py, id, root, stdio, None, Some(bundle), None))
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
        Ok(Core::made_of(py, id, root, [-1; 3], Some(c), None, None))
    }

    /// Creates the container: its process is set up and waits at its start gate.
    fn create(&self, py: Python<'_>) -> PyResult<()> {
        let bundle = self.bundle.as_ref();
        self.no_gil(py, |g| {
            match g.phase {
                Phase::New => {}
                _ => return Err(Fail::State("is already created")),
            }
            let c = match &self.image {
                None => {
                    let b = bundle.ok_or(Fail::State("is already created"))?;
                    runtime::Container::create_from(&self.id, b, &self.opts)?
                }
                Some(img) => {
                    let d = img.rc.describe(&img.name).map_err(Fail::Image)?;
                    corral_image::create(&img.store, &self.opts.root, &self.id, &d, &self.opts)
                        .map_err(|e| match e {
                            corral_image::Error::Image(e) => Fail::Image(e),
                            corral_image::Error::Runtime(e) => Fail::Rt(e),
                        })?
                }
            };
            g.pid = c.pid();
            g.timings = phases(&c);
            g.c = Some(c);
            g.phase = Phase::Live;
            Ok(())
        })
    }

    /// Starts the created container's process.
    fn start(&self, py: Python<'_>) -> PyResult<()> {
        self.no_gil(py, |g| {
            let c = Core::live(g)?;
            let r = c.start();
            g.timings = g.c.as_ref().map(phases).unwrap_or_default();
            r.map_err(Fail::Rt)
        })
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
        let res = l.get().inner.to_resources().map_err(|e| rt_err(py, e))?;
        self.no_gil(py, |g| Ok(Core::live(g)?.update(&res)?))
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
            let r = c.delete();
            if let Some(img) = &self.image {
                img.forget(&self.root, &self.id);
            }
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

    /// The OCI state (`id`, `status`, `pid`, `bundle`, `created`, `annotations`) as a dict.
    fn oci_state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let st = self.no_gil(py, |g| Ok(Core::live(g)?.oci_state()))?;
        state_dict(py, &st)
    }
}

/// The native handle of a warm pool (`corral.Pool` wraps it).
#[pyclass(frozen, module = "corral._corral")]
struct PoolCore {
    root: PathBuf,
    /// `None` once closed.
    pool: Mutex<Option<runtime::Pool>>,
    /// In a child after `os.fork()` the pool is the parent's: it is not used there.
    owner: u32,
}

#[pymethods]
impl PoolCore {
    /// A pool of `size` containers made ahead from `template`'s description (a `Core` that
    /// was not created), ids `ID_PREFIX-PID-N`. The first is made before this returns.
    #[new]
    #[pyo3(signature = (template, size, id_prefix=None))]
    fn new(
        py: Python<'_>,
        template: &Bound<'_, Core>,
        size: &Bound<'_, PyAny>,
        id_prefix: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PoolCore> {
        let t = template.get();
        let size: usize = size
            .extract::<i64>()
            .ok()
            .filter(|n| (1..=4096).contains(n))
            .map(|n| n as usize)
            .ok_or_else(|| config_err(py, "size", "want a number of containers from 1 to 4096"))?;
        let prefix = match id_prefix.filter(|v| !v.is_none()) {
            Some(p) => str_arg("id_prefix", p)?,
            None => "corral-pool".to_string(),
        };
        let bundle = t
            .bundle
            .clone()
            .ok_or_else(|| config_err(py, "template", "a loaded container cannot be a template"))?;
        let opts = t.opts.clone();
        let pool = py
            .allow_threads(|| {
                runtime::Pool::new(
                    bundle,
                    opts,
                    runtime::PoolOptions {
                        size,
                        id_prefix: prefix,
                    },
                )
            })
            .map_err(|e| rt_err(py, e))?;
        Ok(PoolCore {
            root: t.root.clone(),
            pool: Mutex::new(Some(pool)),
            owner: my_pid(),
        })
    }

    /// A container of the pool started with `args`, the template's environment plus `env`,
    /// and `stdio`: running when this returns. With `wait`, waits for a ready one rather than
    /// making one here when none is ready.
    #[pyo3(signature = (args, env=None, stdio=None, wait=false))]
    fn take(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyAny>,
        env: Option<&Bound<'_, PyAny>>,
        stdio: Option<&Bound<'_, PyAny>>,
        wait: bool,
    ) -> PyResult<Core> {
        let args = args_arg("args", args)?;
        if args.is_empty() {
            return Err(config_err(py, "args", "empty: give the program to run"));
        }
        let env = match env.filter(|v| !v.is_none()) {
            Some(e) => env_arg(e)?,
            None => Vec::new(),
        };
        let stdio = match stdio.filter(|s| !s.is_none()) {
            Some(s) => stdio_arg(s)?,
            None => [-1; 3],
        };
        if self.owner != my_pid() {
            return Err(config_err(
                py,
                "pool",
                "belongs to the parent process (os.fork)",
            ));
        }
        let c = py
            .allow_threads(|| {
                let g = lock(&self.pool);
                let p = g.as_ref().ok_or(Fail::State("was closed"))?;
                let c = if wait {
                    p.take_ready(&args, &env, stdio)
                } else {
                    p.take(&args, &env, stdio)
                };
                c.map_err(Fail::Rt)
            })
            .map_err(|e| fail_err(py, "pool", e))?;
        let id = c.id().to_string();
        Ok(Core::made_of(
            py,
            id,
            self.root.clone(),
            [-1; 3],
            Some(c),
            None,
            None,
        ))
    }

    /// Containers ready now.
    #[getter]
    fn ready(&self, py: Python<'_>) -> usize {
        py.allow_threads(|| lock(&self.pool).as_ref().map(|p| p.ready()).unwrap_or(0))
    }

    /// Stops the refill and removes every container still waiting in the pool.
    fn close(&self, py: Python<'_>) {
        let p = py.allow_threads(|| lock(&self.pool).take());
        py.allow_threads(|| drop(p));
    }
}

impl Drop for PoolCore {
    fn drop(&mut self) {
        let p = lock(&self.pool).take();
        if self.owner != my_pid() {
            // A copy in a forked child: the parent's pool, not to be torn down here.
            std::mem::forget(p);
        }
    }
}

fn phases(c: &runtime::Container) -> Vec<(String, f64)> {
    c.timings()
        .phases()
        .iter()
        .map(|(n, d)| (n.to_string(), d.as_secs_f64()))
        .collect()
}

fn state_dict<'py>(py: Python<'py>, st: &runtime::State) -> PyResult<Bound<'py, PyDict>> {
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
            let image = &self.image;
            let (root, id) = (&self.root, &self.id);
            py.allow_threads(move || {
                reap_execs(execs, true);
                drop(c);
                if let Some(img) = image {
                    img.forget(root, id);
                }
            })
        });
    }
}

// ---------------------------------------------------------------------------------------
// A process exec'd into a container

/// The native handle of a process started by `Container.exec`.
#[pyclass(frozen, module = "corral._corral")]
struct Process {
    id: String,
    pid: i32,
    owner: u32,
    /// Shared with its container, which reaps it if it exits while nobody waits.
    inner: ExecSlot,
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

// ---------------------------------------------------------------------------------------
// Module functions

/// The containers under `root` (default: corral's state root) as a list of dicts (`id`,
/// `status`, `pid`, `bundle`, `created`, `annotations`), sorted by id. A container that
/// vanishes while listed is left out.
#[pyfunction]
#[pyo3(signature = (root=None))]
fn list_states<'py>(
    py: Python<'py>,
    root: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyList>> {
    let root = root_arg(root)?;
    let states = py
        .allow_threads(|| -> Result<Vec<runtime::State>, RtError> {
            let mut out = Vec::new();
            for id in runtime::state::list_ids(&root)? {
                match runtime::Container::listed_state(&root, &id) {
                    Ok(st) => out.push(st),
                    Err(RtError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(out)
        })
        .map_err(|e| rt_err(py, e))?;
    let l = PyList::empty(py);
    for st in &states {
        l.append(state_dict(py, st)?)?;
    }
    Ok(l)
}

/// Removes whatever is left of the container `id` under `root`, however little of it was
/// made (`corral delete --force`). An id with nothing left is not an error.
#[pyfunction]
#[pyo3(signature = (id, root=None))]
fn force_delete(
    py: Python<'_>,
    id: &Bound<'_, PyAny>,
    root: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    let id = str_arg("id", id)?;
    let root = root_arg(root)?;
    py.allow_threads(|| runtime::Container::force_delete(&root, &id))
        .map_err(|e| rt_err(py, e))
}

/// corral's default state root (`/run/corral`, or `$XDG_RUNTIME_DIR/corral` for a user).
#[pyfunction]
fn default_root() -> String {
    runtime::state::default_root().display().to_string()
}

/// Bytes in a size such as "64M" (k, M, G, T: powers of 1024); `what` names it in errors.
#[pyfunction]
fn parse_size(py: Python<'_>, what: &str, size: &str) -> PyResult<i64> {
    runtime::parse_size(what, size).map_err(|e| rt_err(py, e))
}

/// The native core of the module `corral`; use `corral` itself.
#[pymodule]
fn _corral(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Limits>()?;
    m.add_class::<Mount>()?;
    m.add_class::<Core>()?;
    m.add_class::<PoolCore>()?;
    m.add_class::<Process>()?;
    m.add_function(wrap_pyfunction!(list_states, m)?)?;
    m.add_function(wrap_pyfunction!(force_delete, m)?)?;
    m.add_function(wrap_pyfunction!(default_root, m)?)?;
    m.add_function(wrap_pyfunction!(parse_size, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    let phases: Vec<&str> = runtime::timings::CREATE_PHASES
        .iter()
        .copied()
        .chain([runtime::timings::START_PHASE])
        .collect();
    m.add("PHASES", phases)?;
    Ok(())
}

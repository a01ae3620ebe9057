//! Containers: create, run, open, start, wait, signal, state, update, delete, free, list.

use std::ffi::{c_char, c_int, CStr};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use runtime::{Container, ExitStatus, Options, Root};

use crate::args::*;
use crate::error::*;
use crate::handles::*;

use crate::limits::{corral_limits, to_limits};
use crate::spec::*;

/// Flag of corral_options.flags: move the root instead of pivot_root (for roots on initramfs).
pub const CORRAL_NO_PIVOT: u32 = 1;
/// Flags of corral_options.flags: keep the caller's session keyring.
pub const CORRAL_NO_NEW_KEYRING: u32 = 2;

/// How to create a container. Initialise with corral_options_init() (which sets `size` and the
/// defaults), then set fields. Strings are copied; fds must stay open until the call returns.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct corral_options {
    /// sizeof(struct corral_options), set by corral_options_init().
    pub size: u32,
    /// CORRAL_NO_PIVOT, CORRAL_NO_NEW_KEYRING.
    pub flags: u32,
    /// The state directory (NULL: /run/corral).
    pub root: *const c_char,
    /// The process's stdin (-1: the caller's own). The fd stays the caller's.
    pub stdin_fd: c_int,
    /// The process's stdout (-1: the caller's own). The fd stays the caller's.
    pub stdout_fd: c_int,
    /// The process's stderr (-1: the caller's own). The fd stays the caller's.
    pub stderr_fd: c_int,
    /// Number of fds after stdio (3 .. 3+N) the process inherits.
    pub preserve_fds: u32,
    /// With a terminal: a unix socket to send the pty master to (SCM_RIGHTS), as runc's
    /// --console-socket (NULL: keep it, see corral_console()).
    pub console_socket: *const c_char,
}

pub(crate) const OPTIONS_DEFAULT: corral_options = corral_options {
    size: std::mem::size_of::<corral_options>() as u32,
    flags: 0,
    root: std::ptr::null(),
    stdin_fd: -1,
    stdout_fd: -1,
    stderr_fd: -1,
    preserve_fds: 0,
    console_socket: std::ptr::null(),
};

/// Initialises `opts`: sets `size`, the default state directory, the caller's stdio.
#[no_mangle]
pub extern "C" fn corral_options_init(opts: *mut corral_options) {
    call_void("corral_options_init", || {
        // SAFETY: a non-NULL `opts` points to a writable struct of this type (the
        // header says so).
        if let Some(o) = unsafe { opts.as_mut() } {
            *o = OPTIONS_DEFAULT;
        }
    });
}

pub(crate) fn root_of(root: Option<&str>) -> PathBuf {
    root.map(PathBuf::from)
        .unwrap_or_else(runtime::state::default_root)
}

pub(crate) fn to_options(p: *const corral_options) -> Result<Options, Fail> {
    let o = sized("opts", p, OPTIONS_DEFAULT)?;
    if o.flags & !(CORRAL_NO_PIVOT | CORRAL_NO_NEW_KEYRING) != 0 {
        return Err(invalid("opts.flags", "unknown flag bits"));
    }
    let mut opts = Options {
        root: root_of(opt_str_arg("opts.root", o.root)?),
        no_pivot: o.flags & CORRAL_NO_PIVOT != 0,
        no_new_keyring: o.flags & CORRAL_NO_NEW_KEYRING != 0,
        preserve_fds: o.preserve_fds,
        stdio: [o.stdin_fd, o.stdout_fd, o.stderr_fd],
        ..Options::default()
    };
    if let Some(s) = opt_str_arg("opts.console_socket", o.console_socket)? {
        opts.console_socket = Some(PathBuf::from(s));
    }
    check_stdio(&opts.stdio)?;
    Ok(opts)
}

pub(crate) struct ContainerObj {
    /// `None` once deleted.
    pub(crate) c: Mutex<Option<Container>>,
    /// The image store of a container made from an image, or on networks: its record there
    /// and its networks go with it.
    pub(crate) store: Option<PathBuf>,
}

pub(crate) fn new_container(out: *mut *mut corral_container, c: Container) -> Result<(), Fail> {
    new_container_of(out, c, None)
}

pub(crate) fn new_container_of(
    out: *mut *mut corral_container,
    c: Container,
    store: Option<PathBuf>,
) -> Result<(), Fail> {
    let o = out_ptr("out", out)?;
    *o = CONTAINERS.add(ContainerObj {
        c: Mutex::new(Some(c)),
        store,
    })? as *mut corral_container;
    Ok(())
}

/// Runs `f` on the live container behind `h`.
pub(crate) fn with_container<T>(
    h: *mut corral_container,
    f: impl FnOnce(&mut Container) -> Result<T, Fail>,
) -> Result<T, Fail> {
    let obj = CONTAINERS.get("container", h as usize)?;
    let mut g = lock(&obj.c);
    match g.as_mut() {
        Some(c) => f(c),
        None => Err(fail(libc::ENOENT, "the container was deleted")),
    }
}

/// Runs `f` on the live container behind `h` and the store it was made in (None: opened,
/// or made from a bundle).
pub(crate) fn with_container_store<T>(
    h: *mut corral_container,
    f: impl FnOnce(&mut Container, Option<&std::path::Path>) -> Result<T, Fail>,
) -> Result<T, Fail> {
    let obj = CONTAINERS.get("container", h as usize)?;
    let mut g = lock(&obj.c);
    match g.as_mut() {
        Some(c) => f(c, obj.store.as_deref()),
        None => Err(fail(libc::ENOENT, "the container was deleted")),
    }
}

/// Makes container `id` of `spec`: a description (a root directory or an image) through
/// the one create of every face, a bundle as it is; then starts it if `start`.
pub(crate) fn create_impl(
    spec: *mut corral_spec,
    id: *const c_char,
    opts: *const corral_options,
    out: *mut *mut corral_container,
    start: bool,
) -> Result<(), Fail> {
    let id = str_arg("id", id)?;
    out_ptr("out", out)?;
    let o = to_options(opts)?;
    let (made, store) = match spec_of(spec)? {
        // The store goes with the handle of a container of an image (its record is there)
        // or on networks (their leases and caches are there): its delete goes through it.
        SpecKind::Described { d, store } => {
            let keep = matches!(d.root, Root::Image(_)) || d.network.attaches();
            (
                corral_image::create(&store, &o.root, id, &d, &o)?,
                keep.then_some(store),
            )
        }
        SpecKind::Bundle(b) => (Container::create_from(id, &b, &o)?, None),
    };
    let mut c = made;
    if start {
        if let Err(e) = c.start() {
            // Dropping the handle's container removes it; then its record in the store.
            drop(c);
            if let Some(s) = &store {
                corral_image::forget_container(s, &o.root, id);
            }
            return Err(e.into());
        }
    }
    new_container_of(out, c, store)
}

/// Creates the container `id` from `spec` with `opts` (NULL: the defaults): its process has
/// done all its set-up (namespaces, cgroups and limits, mounts, root) and waits for
/// corral_start(). On failure nothing of it is left. `*out` is a new handle: free it with
/// corral_container_free(), which also removes the container unless it was deleted or
/// detached.
#[no_mangle]
pub extern "C" fn corral_create(
    spec: *mut corral_spec,
    id: *const c_char,
    opts: *const corral_options,
    out: *mut *mut corral_container,
) -> c_int {
    call("corral_create", || create_impl(spec, id, opts, out, false))
}

/// corral_create() then corral_start(): the process is running when it returns.
#[no_mangle]
pub extern "C" fn corral_run(
    spec: *mut corral_spec,
    id: *const c_char,
    opts: *const corral_options,
    out: *mut *mut corral_container,
) -> c_int {
    call("corral_run", || create_impl(spec, id, opts, out, true))
}

/// Starts a created container: its process execs its program. -EBUSY if it is not created.
#[no_mangle]
pub extern "C" fn corral_start(c: *mut corral_container) -> c_int {
    call("corral_start", || with_container(c, |c| Ok(c.start()?)))
}

/// Opens the existing container `id` under the state directory `root` (NULL: /run/corral),
/// made by any process. `*out` is a new handle; freeing it leaves the container as it is.
/// Its store is taken to be the default one ($CORRAL_STORE, else /var/lib/corral): its
/// attachments are read there, and corral_delete() removes its record and its networks
/// there too, as `corral rm` does.
#[no_mangle]
pub extern "C" fn corral_open(
    root: *const c_char,
    id: *const c_char,
    out: *mut *mut corral_container,
) -> c_int {
    call("corral_open", || {
        let r = root_of(opt_str_arg("root", root)?);
        let id = str_arg("id", id)?;
        out_ptr("out", out)?;
        let mut c = Container::load(&r, id)?;
        // A long-lived handle must not block other processes' commands on it.
        c.unlock();
        new_container_of(out, c, Some(corral_image::default_store()))
    })
}

/// How a process ended.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum corral_exit_kind {
    /// It exited: see `code`.
    CORRAL_EXITED = 1,
    /// A signal killed it: see `signal`.
    CORRAL_SIGNALED = 2,
    /// It is gone, but it was not this process's child (a container opened with
    /// corral_open()), so how it ended is not known.
    CORRAL_UNKNOWN = 3,
}

/// The end of a process, filled by corral_wait() and corral_process_wait().
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct corral_exit {
    pub kind: corral_exit_kind,
    /// The exit code (CORRAL_EXITED), else 0.
    pub code: c_int,
    /// The signal number (CORRAL_SIGNALED), else 0.
    pub signal: c_int,
}

pub(crate) fn fill_exit(out: *mut corral_exit, e: ExitStatus) -> Result<(), Fail> {
    let o = out_ptr("out", out)?;
    *o = match e {
        ExitStatus::Exited(c) => corral_exit {
            kind: corral_exit_kind::CORRAL_EXITED,
            code: c,
            signal: 0,
        },
        ExitStatus::Signaled(s) => corral_exit {
            kind: corral_exit_kind::CORRAL_SIGNALED,
            code: 0,
            signal: s,
        },
        ExitStatus::Unknown => corral_exit {
            kind: corral_exit_kind::CORRAL_UNKNOWN,
            code: 0,
            signal: 0,
        },
    };
    Ok(())
}

/// Waits at most `timeout_ms` milliseconds (-1: for ever, 0: just look) for the container's
/// process to end, and fills `*out`. -ETIMEDOUT if it is still running then. Other threads may
/// use the container (corral_kill(), ...) while one waits.
#[no_mangle]
pub extern "C" fn corral_wait(
    c: *mut corral_container,
    timeout_ms: c_int,
    out: *mut corral_exit,
) -> c_int {
    call("corral_wait", || {
        let timeout = timeout_of(timeout_ms)?;
        out_ptr("out", out)?;
        // Look first; then wait on a dup of the pidfd without holding the container, so that
        // other threads can signal it meanwhile.
        let fd = with_container(c, |c| {
            if let Some(e) = c.wait_timeout(Some(Duration::ZERO))? {
                return Ok(Err(e));
            }
            match c.pidfd() {
                Some(fd) => Ok(Ok(Some(dup_cloexec(fd)?))),
                None => Ok(Ok(None)),
            }
        })?;
        let e = match fd {
            Err(e) => e,
            Ok(Some(fd)) => {
                use std::os::fd::AsRawFd;
                runtime::poll_readable(fd.as_raw_fd(), timeout);
                with_container(c, |c| Ok(c.wait_timeout(Some(Duration::ZERO))?))?
                    .ok_or_else(|| fail(libc::ETIMEDOUT, "the container is still running"))?
            }
            Ok(None) => with_container(c, |c| Ok(c.wait_timeout(timeout)?))?
                .ok_or_else(|| fail(libc::ETIMEDOUT, "the container is still running"))?,
        };
        fill_exit(out, e)
    })
}

/// Sends signal `sig` to the container's init process, or with `all` non-zero to every process
/// in it. -EBUSY if it has stopped.
#[no_mangle]
pub extern "C" fn corral_kill(c: *mut corral_container, sig: c_int, all: c_int) -> c_int {
    call("corral_kill", || {
        if !(1..=64).contains(&sig) {
            return Err(invalid("sig", "not a signal number"));
        }
        with_container(c, |c| {
            if all != 0 {
                Ok(c.signal_all(sig)?)
            } else {
                Ok(c.signal(sig)?)
            }
        })
    })
}

/// Writes the container's OCI state as JSON to `*out` ({"ociVersion", "id", "status",
/// "pid", "bundle", ...}); free it with corral_string_free().
#[no_mangle]
pub extern "C" fn corral_state_json(c: *mut corral_container, out: *mut *mut c_char) -> c_int {
    call("corral_state_json", || {
        out_ptr("out", out)?;
        let v = with_container(c, |c| Ok(c.oci_state().to_json()))?;
        strdup_out(out, v.to_string())
    })
}

/// The pid of the container's init process (in the caller's pid namespace).
#[no_mangle]
pub extern "C" fn corral_pid(c: *mut corral_container, out: *mut c_int) -> c_int {
    call("corral_pid", || {
        let o = out_ptr("out", out)?;
        *o = with_container(c, |c| Ok(c.pid()))?;
        Ok(())
    })
}

/// A pidfd of the container's init process, for poll/epoll (readable once it has exited).
/// `*out` is a new fd (close-on-exec) that the caller closes.
#[no_mangle]
pub extern "C" fn corral_pidfd(c: *mut corral_container, out: *mut c_int) -> c_int {
    call("corral_pidfd", || {
        let o = out_ptr("out", out)?;
        let fd = with_container(c, |c| match c.pidfd() {
            Some(fd) => dup_cloexec(fd),
            None => Err(fail(libc::ESRCH, "the container has no live process")),
        })?;
        *o = std::os::fd::IntoRawFd::into_raw_fd(fd);
        Ok(())
    })
}

/// The pty master of a container with a terminal (corral_spec_set_terminal()) and no console
/// socket: `*out` is the fd, now the caller's to close. -ENOENT if there is none (or it was
/// taken already).
#[no_mangle]
pub extern "C" fn corral_console(c: *mut corral_container, out: *mut c_int) -> c_int {
    call("corral_console", || {
        let o = out_ptr("out", out)?;
        let fd = with_container(c, |c| {
            c.take_console()
                .ok_or_else(|| fail(libc::ENOENT, "no terminal (or it was taken already)"))
        })?;
        *o = std::os::fd::IntoRawFd::into_raw_fd(fd);
        Ok(())
    })
}

/// Freezes every process of the container.
#[no_mangle]
pub extern "C" fn corral_pause(c: *mut corral_container) -> c_int {
    call("corral_pause", || with_container(c, |c| Ok(c.pause()?)))
}

/// Thaws a paused container.
#[no_mangle]
pub extern "C" fn corral_resume(c: *mut corral_container) -> c_int {
    call("corral_resume", || with_container(c, |c| Ok(c.resume()?)))
}

/// Changes the limits of a created or running container: only those set in `limits`.
#[no_mangle]
pub extern "C" fn corral_update(c: *mut corral_container, limits: *const corral_limits) -> c_int {
    call("corral_update", || {
        let r = to_limits(limits)?.to_linux_resources()?;
        with_container(c, |c| Ok(c.update_resources(&r)?))
    })
}

/// Writes the container's usage as JSON to `*out`, as `runc events --stats` shows it
/// ({"type":"stats","id":...,"data":{"cpu":...,"memory":...,"pids":...}}); free it with
/// corral_string_free().
#[no_mangle]
pub extern "C" fn corral_stats_json(c: *mut corral_container, out: *mut *mut c_char) -> c_int {
    call("corral_stats_json", || {
        out_ptr("out", out)?;
        let v = with_container(c, |c| Ok(c.stats_json()?))?;
        strdup_out(out, v.to_string())
    })
}

/// Writes the warnings of the container's set-up and start as a JSON array of strings to
/// `*json_out` (`[]` when there are none): what the library did not do as asked but did not
/// fail for, e.g. a swap limit the host cannot enforce (no swap accounting), or a
/// startContainer hook that failed (the start succeeded, the program did not run). Free it
/// with corral_string_free(). A container opened with corral_open() has none.
#[no_mangle]
pub extern "C" fn corral_warnings(c: *mut corral_container, json_out: *mut *mut c_char) -> c_int {
    call("corral_warnings", || {
        out_ptr("json_out", json_out)?;
        let w = with_container(c, |c| Ok(c.warnings().to_vec()))?;
        strdup_out(json_out, serde_json::Value::from(w).to_string())
    })
}

/// Removes the container: kills what is left of it and removes its cgroups, mounts and state.
/// A running or paused container is refused (-EBUSY) unless `force` is non-zero. The handle
/// stays valid (and must still be freed); calls on it then get -ENOENT.
#[no_mangle]
pub extern "C" fn corral_delete(c: *mut corral_container, force: c_int) -> c_int {
    call("corral_delete", || {
        let obj = CONTAINERS.get("container", c as usize)?;
        let mut g = lock(&obj.c);
        let ct = g
            .take()
            .ok_or_else(|| fail(libc::ENOENT, "the container was deleted"))?;
        let st = ct.status();
        if force == 0 && matches!(st, runtime::Status::Running | runtime::Status::Paused) {
            *g = Some(ct);
            return Err(fail(
                libc::EBUSY,
                format!(
                    "the container is {}: stop it first, or delete with force",
                    st.as_str()
                ),
            ));
        }
        match &obj.store {
            Some(s) => corral_image::delete(s, ct, true)?,
            None => ct.delete_checked(true)?,
        }
        Ok(())
    })
}

/// Leaves the container as it is when the handle is freed (it goes on running, and another
/// process can corral_open() it).
#[no_mangle]
pub extern "C" fn corral_detach(c: *mut corral_container) -> c_int {
    call("corral_detach", || {
        let obj = CONTAINERS.get("container", c as usize)?;
        let mut g = lock(&obj.c);
        let ct = g
            .take()
            .ok_or_else(|| fail(libc::ENOENT, "the container was deleted"))?;
        let id = ct.id().to_string();
        let root = ct.state_root();
        ct.detach()?;
        // Keep a handle on it, as corral_open() would.
        let mut again = Container::load(&root, &id)?;
        again.unlock();
        *g = Some(again);
        Ok(())
    })
}

/// Frees the handle. A container this handle created, and did not delete or detach, is
/// removed (its processes killed, its networks left); one opened with corral_open() is left as it is. NULL is
/// ignored.
/// A handle made by another process (inherited through fork()) is left as it is (last
/// error -EXDEV).
#[no_mangle]
pub extern "C" fn corral_container_free(c: *mut corral_container) {
    call("corral_container_free", || {
        if let Some(obj) = CONTAINERS.remove("container", c as usize)? {
            // Container's Drop removes what it owns (here, or by the last thread still using
            // it); the image store's record goes once its state is gone.
            let ct = lock(&obj.c).take();
            let where_ = ct.as_ref().map(|c| (c.state_root(), c.id().to_string()));
            drop(ct);
            if let (Some(s), Some((root, id))) = (&obj.store, where_) {
                // Gone with the handle (not detached, not another's): its networks go too.
                if !root.join(&id).exists() {
                    let _ = runtime::net::NetRoot::open(s).detach(&id, None);
                }
                corral_image::forget_container(s, &root, &id);
            }
        }
        Ok(())
    });
}

/// One phase of a spawn and how long it took.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct corral_timing {
    /// The phase: "check", "record", "rootfs", "cgroup", "plan", "clone", "setup",
    /// "created", then "start". A static string: do not free it.
    pub phase: *const c_char,
    /// Its duration in nanoseconds.
    pub nanoseconds: u64,
}

pub(crate) fn phase_name(n: &str) -> &'static CStr {
    match n {
        "check" => c"check",
        "record" => c"record",
        "rootfs" => c"rootfs",
        "cgroup" => c"cgroup",
        "plan" => c"plan",
        "clone" => c"clone",
        "setup" => c"setup",
        "created" => c"created",
        "start" => c"start",
        _ => c"other",
    }
}

/// The duration of each phase of this handle's create and start, in order: `*out` is an
/// array of `*len` entries, freed with corral_timings_free(). Empty (NULL, 0) for a
/// container opened with corral_open().
#[no_mangle]
pub extern "C" fn corral_timings(
    c: *mut corral_container,
    out: *mut *mut corral_timing,
    len: *mut usize,
) -> c_int {
    call("corral_timings", || {
        out_ptr("out", out)?;
        out_ptr("len", len)?;
        let v: Vec<corral_timing> = with_container(c, |c| {
            Ok(c.timings()
                .phases()
                .iter()
                .map(|(n, d)| corral_timing {
                    phase: phase_name(n).as_ptr(),
                    nanoseconds: u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
                })
                .collect())
        })?;
        let n = v.len();
        let p = if n == 0 {
            std::ptr::null_mut()
        } else {
            Box::into_raw(v.into_boxed_slice()) as *mut corral_timing
        };
        *out_ptr("out", out)? = p;
        *out_ptr("len", len)? = n;
        Ok(())
    })
}

/// Frees an array from corral_timings() (`len` as it returned). NULL is ignored.
#[no_mangle]
pub extern "C" fn corral_timings_free(t: *mut corral_timing, len: usize) {
    call_void("corral_timings_free", || {
        if !t.is_null() && len > 0 {
            // SAFETY: made by Box::into_raw of a boxed slice of `len` entries.
            drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(t, len)) });
        }
    });
}

/// Writes the OCI states of every container under `root` (NULL: /run/corral) as a JSON array
/// to `*out`; free it with corral_string_free().
#[no_mangle]
pub extern "C" fn corral_list(root: *const c_char, out: *mut *mut c_char) -> c_int {
    call("corral_list", || {
        out_ptr("out", out)?;
        let r = root_of(opt_str_arg("root", root)?);
        let states = Container::list(&r)?;
        let v: Vec<serde_json::Value> = states.iter().map(|s| s.to_json()).collect();
        strdup_out(out, serde_json::Value::from(v).to_string())
    })
}

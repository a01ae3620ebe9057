//! Processes run in a running container (`corral_exec`).

use std::ffi::{c_char, c_int};
use std::sync::Mutex;

use runtime::{ExecProcess, Options};

use crate::args::*;
use crate::container::*;
use crate::error::*;
use crate::handles::*;

/// How to run a process in a running container. Initialise with corral_exec_options_init()
/// (which sets `size`), then set fields. Unset fields take the container's own settings.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct corral_exec_options {
    /// sizeof(struct corral_exec_options), set by corral_exec_options_init().
    pub size: u32,
    /// Give the process a terminal of its own (non-zero).
    pub terminal: c_int,
    /// "KEY=VALUE" strings set on top of the container's environment (`env_len` of them;
    /// copied).
    pub env: *const *const c_char,
    /// The number of strings in `env`.
    pub env_len: usize,
    /// The working directory (NULL: the container's).
    pub cwd: *const c_char,
    /// User id (-1: the container's; set with `gid`).
    pub uid: i64,
    /// Group id (-1: the container's; set with `uid`).
    pub gid: i64,
    /// stdin (-1: the caller's own). The fd stays the caller's.
    pub stdin_fd: c_int,
    /// stdout (-1: the caller's own). The fd stays the caller's.
    pub stdout_fd: c_int,
    /// stderr (-1: the caller's own). The fd stays the caller's.
    pub stderr_fd: c_int,
    /// Zero.
    pub _reserved: c_int,
}

pub(crate) const EXEC_DEFAULT: corral_exec_options = corral_exec_options {
    size: std::mem::size_of::<corral_exec_options>() as u32,
    terminal: 0,
    env: std::ptr::null(),
    env_len: 0,
    cwd: std::ptr::null(),
    uid: -1,
    gid: -1,
    stdin_fd: -1,
    stdout_fd: -1,
    stderr_fd: -1,
    _reserved: 0,
};

/// Initialises `opts`: sets `size`; everything else is the container's own.
#[no_mangle]
pub extern "C" fn corral_exec_options_init(opts: *mut corral_exec_options) {
    call_void("corral_exec_options_init", || {
        // SAFETY: a non-NULL `opts` points to a writable struct of this type (the
        // header says so).
        if let Some(o) = unsafe { opts.as_mut() } {
            *o = EXEC_DEFAULT;
        }
    });
}

/// Runs `argv[0..argc]` in the running container `c`, in its namespaces and cgroup, with its
/// user, capabilities and environment unless `opts` (NULL: none) says otherwise. `*out` is a
/// new process handle for corral_process_free().
#[no_mangle]
pub extern "C" fn corral_exec(
    c: *mut corral_container,
    argv: *const *const c_char,
    argc: usize,
    opts: *const corral_exec_options,
    out: *mut *mut corral_process,
) -> c_int {
    call("corral_exec", || {
        out_ptr("out", out)?;
        let args = str_array("argv", argv, argc)?;
        if args.is_empty() {
            return Err(invalid("argv", "empty: give the program to run"));
        }
        let o = sized("opts", opts, EXEC_DEFAULT)?;
        let env = env_pairs(o.env, o.env_len)?;
        let user = match (o.uid, o.gid) {
            (-1, -1) => None,
            (u, g) if (0..=u32::MAX as i64).contains(&u) && (0..=u32::MAX as i64).contains(&g) => {
                Some((u as u32, g as u32))
            }
            _ => {
                return Err(invalid(
                    "opts.uid",
                    "set both uid and gid (0..2^32-1), or neither",
                ))
            }
        };
        let spec = runtime::ExecSpec {
            args,
            env,
            cwd: opt_str_arg("opts.cwd", o.cwd)?.map(str::to_string),
            user,
            terminal: o.terminal != 0,
        };
        let p = with_container(c, |c| {
            let opts = Options {
                root: c.state_root(),
                stdio: [o.stdin_fd, o.stdout_fd, o.stderr_fd],
                ..Options::default()
            };
            Ok(c.exec_with(&spec, &opts)?)
        })?;
        *out_ptr("out", out)? = PROCESSES.add(ProcessObj(Mutex::new(p)))? as *mut corral_process;
        Ok(())
    })
}

pub(crate) fn with_process<T>(
    h: *mut corral_process,
    f: impl FnOnce(&mut ExecProcess) -> Result<T, Fail>,
) -> Result<T, Fail> {
    let obj = PROCESSES.get("process", h as usize)?;
    let mut g = lock(&obj.0);
    f(&mut g)
}

/// Waits at most `timeout_ms` (-1: for ever) for an exec'd process to end and fills `*out`;
/// -ETIMEDOUT if it is still running then.
#[no_mangle]
pub extern "C" fn corral_process_wait(
    p: *mut corral_process,
    timeout_ms: c_int,
    out: *mut corral_exit,
) -> c_int {
    call("corral_process_wait", || {
        let timeout = timeout_of(timeout_ms)?;
        out_ptr("out", out)?;
        let fd = with_process(p, |p| {
            if let Some(e) = p.try_wait()? {
                return Ok(Err(e));
            }
            Ok(Ok(dup_cloexec(p.pidfd())?))
        })?;
        let e = match fd {
            Err(e) => e,
            Ok(fd) => {
                use std::os::fd::AsRawFd;
                runtime::poll_readable(fd.as_raw_fd(), timeout);
                with_process(p, |p| Ok(p.try_wait()?))?
                    .ok_or_else(|| fail(libc::ETIMEDOUT, "the process is still running"))?
            }
        };
        fill_exit(out, e)
    })
}

/// Sends signal `sig` to an exec'd process.
#[no_mangle]
pub extern "C" fn corral_process_kill(p: *mut corral_process, sig: c_int) -> c_int {
    call("corral_process_kill", || {
        if !(1..=64).contains(&sig) {
            return Err(invalid("sig", "not a signal number"));
        }
        with_process(p, |p| Ok(p.signal(sig)?))
    })
}

/// The pid of an exec'd process (in the caller's pid namespace).
#[no_mangle]
pub extern "C" fn corral_process_pid(p: *mut corral_process, out: *mut c_int) -> c_int {
    call("corral_process_pid", || {
        let o = out_ptr("out", out)?;
        *o = with_process(p, |p| Ok(p.pid()))?;
        Ok(())
    })
}

/// Frees a process handle. A process still running is killed and reaped. NULL is ignored.
/// A handle made by another process (inherited through fork()) is left as it is (last
/// error -EXDEV).
#[no_mangle]
pub extern "C" fn corral_process_free(p: *mut corral_process) {
    call("corral_process_free", || {
        if let Some(obj) = PROCESSES.remove("process", p as usize)? {
            let mut g = lock(&obj.0);
            if matches!(g.try_wait(), Ok(None)) {
                let _ = g.signal(libc::SIGKILL);
                let _ = g.wait();
            }
        }
        Ok(())
    });
}

pub(crate) struct ProcessObj(pub(crate) Mutex<ExecProcess>);

//! Warm pools of containers made ahead from one spec.

use std::ffi::{c_char, c_int};

use crate::args::*;
use crate::container::*;
use crate::error::*;
use crate::handles::*;
use crate::spec::*;

/// Makes a warm pool: `size` containers made ahead from `spec` with `opts` (NULL: the
/// defaults), each with its namespaces, cgroups and limits, root and mounts set up, its process
/// waiting for the program that corral_pool_take() gives it. A background thread keeps `size`
/// ready. Ids are `ID_PREFIX-PID-N` (`id_prefix` NULL: "corral-pool"); leftovers of a killed
/// earlier pool with the same prefix and state directory are removed now. The first container
/// is made before this returns, so a spec that cannot run fails here. `*out` is a new handle
/// for corral_pool_free().
#[no_mangle]
pub extern "C" fn corral_pool_new(
    spec: *mut corral_spec,
    opts: *const corral_options,
    size: usize,
    id_prefix: *const c_char,
    out: *mut *mut corral_pool,
) -> c_int {
    call("corral_pool_new", || {
        out_ptr("out", out)?;
        if size == 0 || size > 4096 {
            return Err(invalid("size", "want 1 to 4096"));
        }
        let o = to_options(opts)?;
        let b = bundle_for_pool(spec)?;
        let prefix = opt_str_arg("id_prefix", id_prefix)?.unwrap_or("corral-pool");
        let pool = runtime::Pool::new(
            b,
            o,
            runtime::PoolOptions {
                size,
                id_prefix: prefix.to_string(),
            },
        )?;
        *out_ptr("out", out)? = POOLS.add(pool)? as *mut corral_pool;
        Ok(())
    })
}

/// Flag of corral_take_options.flags: wait for a ready container instead of making one on the
/// calling thread when none is ready.
pub const CORRAL_TAKE_WAIT: u32 = 1;

/// How to start a container taken from a pool. Initialise with corral_take_options_init()
/// (which sets `size`), then set fields.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct corral_take_options {
    /// sizeof(struct corral_take_options), set by corral_take_options_init().
    pub size: u32,
    /// CORRAL_TAKE_WAIT.
    pub flags: u32,
    /// "KEY=VALUE" strings set on top of the spec's environment (`env_len` of them; copied).
    pub env: *const *const c_char,
    /// The number of strings in `env`.
    pub env_len: usize,
    /// stdin (-1: the pool's). The fd stays the caller's.
    pub stdin_fd: c_int,
    /// stdout (-1: the pool's). The fd stays the caller's.
    pub stdout_fd: c_int,
    /// stderr (-1: the pool's). The fd stays the caller's.
    pub stderr_fd: c_int,
    /// Zero.
    pub _reserved: c_int,
}

pub(crate) const TAKE_DEFAULT: corral_take_options = corral_take_options {
    size: std::mem::size_of::<corral_take_options>() as u32,
    flags: 0,
    env: std::ptr::null(),
    env_len: 0,
    stdin_fd: -1,
    stdout_fd: -1,
    stderr_fd: -1,
    _reserved: 0,
};

/// Initialises `opts`: sets `size`; no extra environment, the pool's stdio.
#[no_mangle]
pub extern "C" fn corral_take_options_init(opts: *mut corral_take_options) {
    call_void("corral_take_options_init", || {
        // SAFETY: a non-NULL `opts` points to a writable struct of this type (the
        // header says so).
        if let Some(o) = unsafe { opts.as_mut() } {
            *o = TAKE_DEFAULT;
        }
    });
}

/// Takes a container from the pool and starts `argv[0..argc]` in it (looked up in the spec's
/// PATH), with `opts` (NULL: none): running when this returns. `*out` is a new container
/// handle, as corral_run() gives (wait, kill, exec, delete; corral_container_free() removes
/// it). Its corral_timings() end with the phase "start": the take itself.
#[no_mangle]
pub extern "C" fn corral_pool_take(
    pool: *mut corral_pool,
    argv: *const *const c_char,
    argc: usize,
    opts: *const corral_take_options,
    out: *mut *mut corral_container,
) -> c_int {
    call("corral_pool_take", || {
        out_ptr("out", out)?;
        let p = POOLS.get("pool", pool as usize)?;
        let args = str_array("argv", argv, argc)?;
        if args.is_empty() {
            return Err(invalid("argv", "empty: give the program to run"));
        }
        let o = sized("opts", opts, TAKE_DEFAULT)?;
        if o.flags & !CORRAL_TAKE_WAIT != 0 {
            return Err(invalid("opts.flags", "unknown flag bits"));
        }
        let env = env_pairs(o.env, o.env_len)?;
        let stdio = [o.stdin_fd, o.stdout_fd, o.stderr_fd];
        check_stdio(&stdio)?;
        let c = if o.flags & CORRAL_TAKE_WAIT != 0 {
            p.take_ready(&args, &env, stdio)?
        } else {
            p.take(&args, &env, stdio)?
        };
        new_container(out, c)
    })
}

/// The number of containers ready in the pool now.
#[no_mangle]
pub extern "C" fn corral_pool_ready(pool: *mut corral_pool, out: *mut usize) -> c_int {
    call("corral_pool_ready", || {
        let o = out_ptr("out", out)?;
        *o = POOLS.get("pool", pool as usize)?.ready();
        Ok(())
    })
}

/// Frees the pool: its thread stops and every container still waiting in it is removed.
/// Containers taken from it are not affected. NULL is ignored.
/// A handle made by another process (inherited through fork()) is left as it is (last
/// error -EXDEV).
#[no_mangle]
pub extern "C" fn corral_pool_free(pool: *mut corral_pool) {
    call("corral_pool_free", || {
        drop(POOLS.remove("pool", pool as usize)?);
        Ok(())
    });
}

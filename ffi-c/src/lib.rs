//! libcontainer: the C ABI of corral.
//!
//! This crate owns the mapping between C and the `runtime` crate's API: opaque handles, `int`
//! returns (0 or a negative errno), a per-thread last error, options structs that carry their
//! own size, and a free function for everything it hands out. It holds no container logic:
//! every container is described by [`runtime::SpecBuilder`] or a bundle and made by
//! [`runtime::Container`].
//!
//! It promises that no Rust panic crosses the boundary (it becomes `-ENOTRECOVERABLE`), that a
//! NULL or stale handle is an error and never a crash, and that it never exits, aborts or
//! prints on the caller's behalf. Handles live in a registry (the only global state here):
//! a handle is an id never reused (the maker's pid, a serial number and a tag, see
//! `handle_for`), looked up before it is used, so a freed or made-up pointer is refused, and
//! one used in another process than its maker (a child after `fork()`) gets `-EXDEV`.
//!
//! The header `container.h` is generated from this file by cbindgen (see `build.rs`): the
//! doc comments below are the C documentation.

#![allow(non_camel_case_types)]
// Every exported function takes C pointers: their contract (NULL or valid) is the header's,
// and each is checked for NULL before use. Marking them `unsafe` would change nothing for C.
#![allow(clippy::not_unsafe_ptr_arg_deref)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{c_char, c_int, CStr, CString};
use std::os::fd::RawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use runtime::{Bundle, Container, ExecProcess, ExitStatus, Limits, Options, SpecBuilder};

// ---------------------------------------------------------------------------------------
// Errors

/// What went wrong, before it becomes the thread's last error.
#[derive(Debug)]
struct Fail {
    /// Positive errno.
    code: i32,
    message: String,
    step: Option<String>,
    path: Option<String>,
}

impl From<runtime::Error> for Fail {
    fn from(e: runtime::Error) -> Fail {
        Fail {
            code: e.errno(),
            message: e.to_string(),
            step: Some(e.step()),
            path: e.path(),
        }
    }
}

impl From<corral_image::Error> for Fail {
    fn from(e: corral_image::Error) -> Fail {
        match e {
            corral_image::Error::Image(e) => e.into(),
            corral_image::Error::Runtime(e) => e.into(),
        }
    }
}

impl From<corral_image::ImageError> for Fail {
    fn from(e: corral_image::ImageError) -> Fail {
        Fail {
            code: e.errno(),
            message: e.to_string(),
            step: Some("image".into()),
            path: None,
        }
    }
}

fn fail(code: i32, message: impl Into<String>) -> Fail {
    Fail {
        code,
        message: message.into(),
        step: None,
        path: None,
    }
}

fn invalid(arg: &str, why: &str) -> Fail {
    Fail {
        code: libc::EINVAL,
        message: format!("{arg}: {why}"),
        step: Some("argument".into()),
        path: Some(arg.into()),
    }
}

struct LastError {
    code: c_int,
    message: CString,
    step: Option<CString>,
    path: Option<CString>,
}

thread_local! {
    static LAST: RefCell<Option<LastError>> = const { RefCell::new(None) };
    static PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn cstring_lossy(s: String) -> CString {
    CString::new(s.replace('\0', "\\0")).unwrap_or_default()
}

fn set_last(func: &str, f: Fail) -> c_int {
    let code = if f.code > 0 { f.code } else { libc::EIO };
    let e = LastError {
        code: -code,
        message: cstring_lossy(format!("{func}: {}", f.message)),
        step: f.step.map(cstring_lossy),
        path: f.path.map(cstring_lossy),
    };
    LAST.with(|l| *l.borrow_mut() = Some(e));
    -code
}

/// Panics are caught at the boundary; the hook only keeps the message for the error (the
/// default hook would print on the caller's stderr). This is the library's own copy of std:
/// the hook is not the host program's.
fn quiet_panics() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        std::panic::set_hook(Box::new(|info| {
            let msg = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            let at = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            PANIC.with(|p| *p.borrow_mut() = Some(format!("{msg}{at}")));
        }));
    });
}

/// Runs the body of an exported function: its error becomes the thread's last error and a
/// negative errno; a panic becomes `-ENOTRECOVERABLE`.
fn call(func: &str, body: impl FnOnce() -> Result<(), Fail>) -> c_int {
    quiet_panics();
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => 0,
        Ok(Err(f)) => set_last(func, f),
        Err(_) => {
            let what = PANIC
                .with(|p| p.borrow_mut().take())
                .unwrap_or_else(|| "unknown panic".into());
            set_last(
                func,
                Fail {
                    code: libc::ENOTRECOVERABLE,
                    message: format!("internal error (a bug in corral; please report it): {what}"),
                    step: Some("internal".into()),
                    path: None,
                },
            )
        }
    }
}

/// Like [`call`] for functions that return nothing: a panic is swallowed (and kept as the
/// last error).
fn call_void(func: &str, body: impl FnOnce()) {
    call(func, || {
        body();
        Ok(())
    });
}

/// The negative errno of the last failing call on this thread (`-EINVAL`...), or 0 if no call
/// on this thread has failed yet.
#[no_mangle]
pub extern "C" fn corral_last_error_code() -> c_int {
    LAST.with(|l| l.borrow().as_ref().map(|e| e.code).unwrap_or(0))
}

/// The message of the last failing call on this thread: the function, what failed and where
/// (the config field, the path, the errno), e.g. `"corral_create: container \"web\":
/// mount /proc: Permission denied (errno 13)"`; NULL if none failed. The string belongs to
/// the library and stays valid until the next failing call on this thread; copy it to keep it.
#[no_mangle]
pub extern "C" fn corral_last_error_message() -> *const c_char {
    LAST.with(|l| {
        l.borrow()
            .as_ref()
            .map(|e| e.message.as_ptr())
            .unwrap_or(std::ptr::null())
    })
}

/// The step that failed in the last failing call on this thread, in a word: `config`,
/// `argument`, `state`, `cgroup`, `rootfs`, `hook`, `spawn`, or the container process's own
/// set-up step (`mount`, `exec`, `pivot_root`, ...); NULL if not known. Owned by the library,
/// valid as corral_last_error_message().
#[no_mangle]
pub extern "C" fn corral_last_error_step() -> *const c_char {
    LAST.with(|l| {
        l.borrow()
            .as_ref()
            .and_then(|e| e.step.as_ref().map(|s| s.as_ptr()))
            .unwrap_or(std::ptr::null())
    })
}

/// Where the last failing call on this thread failed: the config field (`process.args`), the
/// argument, or the path; NULL if nothing more precise than the message is known. Owned by
/// the library, valid as corral_last_error_message().
#[no_mangle]
pub extern "C" fn corral_last_error_path() -> *const c_char {
    LAST.with(|l| {
        l.borrow()
            .as_ref()
            .and_then(|e| e.path.as_ref().map(|s| s.as_ptr()))
            .unwrap_or(std::ptr::null())
    })
}

/// Forgets this thread's last error.
#[no_mangle]
pub extern "C" fn corral_clear_error() {
    LAST.with(|l| *l.borrow_mut() = None);
}

// ---------------------------------------------------------------------------------------
// Version and features

/// The ABI version: the `0` of the soname `libcontainer.so.0`. It changes only when a
/// program built against an older header could break.
pub const CORRAL_ABI_VERSION: c_int = 0;

const VERSION: &CStr =
    match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(v) => v,
        Err(_) => c"unknown",
    };

/// The library's version, as "MAJOR.MINOR.PATCH". A static string: do not free it.
#[no_mangle]
pub extern "C" fn corral_version() -> *const c_char {
    VERSION.as_ptr()
}

/// The ABI version of the library that is loaded (CORRAL_ABI_VERSION when the program was
/// built against the same one).
#[no_mangle]
pub extern "C" fn corral_abi_version() -> c_int {
    CORRAL_ABI_VERSION
}

/// The features this build has, by name, for corral_has_feature().
const FEATURES: &[&str] = &[
    "spec-builder",
    "bundle",
    "config-json",
    "create",
    "start",
    "run",
    "wait-timeout",
    "pidfd",
    "kill",
    "state-json",
    "exec",
    "pause",
    "resume",
    "update",
    "stats-json",
    "delete",
    "stdio-fds",
    "timings",
    "list",
    "terminal",
    "seccomp-default",
    "cgroup-v1",
    "cgroup-v2",
    "user-namespace",
    "overlay-layers",
    "pool",
    "image",
];

/// 1 if this library has the feature `name`, 0 if not, -EINVAL for NULL. Names: "spec-builder",
/// "bundle", "config-json", "create", "start", "run", "wait-timeout", "pidfd", "kill",
/// "state-json", "exec", "pause", "resume", "update", "stats-json", "delete", "stdio-fds",
/// "timings", "list", "terminal", "seccomp-default", "cgroup-v1", "cgroup-v2",
/// "user-namespace", "overlay-layers", "pool", "image". A name this version does not know gets 0: probe
/// before you use something newer than the library you run with.
#[no_mangle]
pub extern "C" fn corral_has_feature(name: *const c_char) -> c_int {
    let mut r = 0;
    let rc = call("corral_has_feature", || {
        let n = str_arg("name", name)?;
        r = c_int::from(FEATURES.contains(&n));
        Ok(())
    });
    if rc < 0 {
        rc
    } else {
        r
    }
}

// ---------------------------------------------------------------------------------------
// Handles

/// A container's description: built field by field, or from a bundle or a config JSON.
/// Opaque; made by corral_spec_new(), corral_spec_from_bundle() or corral_spec_from_json(),
/// freed by corral_spec_free().
pub struct corral_spec {
    _opaque: [u8; 0],
}

/// A container. Opaque; made by corral_create(), corral_run() or corral_open(), freed by
/// corral_container_free().
pub struct corral_container {
    _opaque: [u8; 0],
}

/// A process started by corral_exec(). Opaque; freed by corral_process_free().
pub struct corral_process {
    _opaque: [u8; 0],
}

/// A warm pool of containers made ahead from one spec. Opaque; made by corral_pool_new(),
/// freed by corral_pool_free().
pub struct corral_pool {
    _opaque: [u8; 0],
}

enum SpecKind {
    Built(Box<SpecBuilder>),
    Bundle(Box<Bundle>),
    Image(Box<ImageSpec>),
}

/// A container from an image of a store: the spec comes from the image's config at create.
struct ImageSpec {
    store: PathBuf,
    image: String,
    rc: corral_image::RunConfig,
}

struct SpecObj(Mutex<SpecKind>);

struct ContainerObj {
    /// `None` once deleted.
    c: Mutex<Option<Container>>,
    /// The image store of a container made from an image: its record there goes with it.
    store: Option<PathBuf>,
}

struct ProcessObj(Mutex<ExecProcess>);

/// Live handles of one kind. A handle is an id, never an address, and never reused in a
/// process (see [`handle_for`]), so a freed handle stays invalid whatever is made after it;
/// it is looked up before use. Each process has its own map: a child after `fork()` starts
/// with an empty one and leaves the copy of its parent's as it is (never locked, since a
/// parent thread may have held the lock at the fork, and never dropped, since the objects in
/// it are the parent's).
struct Registry<T> {
    live: AtomicPtr<Live<T>>,
}

struct Live<T> {
    pid: i32,
    map: Mutex<HashMap<usize, Arc<T>>>,
}

/// The low bits of every handle: a real address (of an 8-byte aligned object) never has
/// them, so a made-up pointer is not taken for another process's handle.
const HANDLE_TAG: usize = 0xa;
/// Bits of a handle's serial number (between the tag and the pid).
const SERIAL_BITS: u32 = 38;
/// Where the pid of the process that made a handle starts (pids are below 2^22).
const PID_SHIFT: u32 = SERIAL_BITS + 4;

/// The next handle's serial number, shared by every kind of handle.
static NEXT_SERIAL: AtomicU64 = AtomicU64::new(1);

#[cfg(not(target_pointer_width = "64"))]
compile_error!("corral's C handles carry a 64-bit id");

fn my_pid() -> i32 {
    // SAFETY: plain getter (a real syscall: glibc caches no pid since 2.25).
    unsafe { libc::getpid() }
}

/// A new handle of process `pid`: `pid << 42 | serial << 4 | 0xa`; an error once the
/// process has made 2^38 handles (rather than reuse one).
fn handle_for(pid: i32) -> Result<usize, Fail> {
    let serial = NEXT_SERIAL.fetch_add(1, Ordering::Relaxed);
    if serial >= 1 << SERIAL_BITS {
        return Err(Fail {
            code: libc::EMFILE,
            message: "this process has made every handle it may (2^38); ids are never reused"
                .into(),
            step: Some("argument".into()),
            path: None,
        });
    }
    Ok(((pid as usize) << PID_SHIFT) | ((serial as usize) << 4) | HANDLE_TAG)
}

/// The process that made handle `h`, if `h` has the shape of a handle.
fn handle_pid(h: usize) -> Option<i32> {
    (h & 0xf == HANDLE_TAG).then_some((h >> PID_SHIFT) as i32)
}

/// The error for a handle made by another process (a parent, before `fork()`).
fn foreign(what: &str, owner: i32, me: i32) -> Fail {
    Fail {
        code: libc::EXDEV,
        message: format!(
            "{what}: a handle of process {owner}, used in process {me}: handles belong to \
             the process that made them and do not cross fork()"
        ),
        step: Some("argument".into()),
        path: Some(what.into()),
    }
}

impl<T> Registry<T> {
    const fn new() -> Self {
        Registry {
            live: AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    /// This process's map (made at its first use, or after a fork).
    fn live(&self, me: i32) -> &Live<T> {
        let cur = self.live.load(Ordering::Acquire);
        // SAFETY: a non-null pointer here came from Box::into_raw below and is never freed.
        if let Some(l) = unsafe { cur.as_ref() } {
            if l.pid == me {
                return l;
            }
        }
        let fresh = Box::into_raw(Box::new(Live {
            pid: me,
            map: Mutex::new(HashMap::new()),
        }));
        match self
            .live
            .compare_exchange(cur, fresh, Ordering::AcqRel, Ordering::Acquire)
        {
            // SAFETY: just made, never freed.
            Ok(_) => unsafe { &*fresh },
            Err(other) => {
                // Another thread of this process made it first.
                // SAFETY: `fresh` was never shared; `other` is never freed.
                unsafe {
                    drop(Box::from_raw(fresh));
                    &*other
                }
            }
        }
    }

    fn map(&self, me: i32) -> MutexGuard<'_, HashMap<usize, Arc<T>>> {
        // A panic while the map was locked cannot leave it inconsistent (one insert or remove).
        self.live(me).map.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn add(&self, obj: T) -> Result<usize, Fail> {
        let me = my_pid();
        let key = handle_for(me)?;
        self.map(me).insert(key, Arc::new(obj));
        Ok(key)
    }

    fn get(&self, what: &str, h: usize) -> Result<Arc<T>, Fail> {
        if h == 0 {
            return Err(invalid(what, "NULL handle"));
        }
        let me = my_pid();
        match handle_pid(h) {
            Some(owner) if owner != me => return Err(foreign(what, owner, me)),
            _ => {}
        }
        self.map(me).get(&h).cloned().ok_or_else(|| Fail {
            code: libc::EBADF,
            message: format!(
                "{what}: not a live handle (freed already, or never made by this library)"
            ),
            step: Some("argument".into()),
            path: Some(what.into()),
        })
    }

    /// Takes the handle out of the registry: `None` for NULL, a freed or a made-up handle
    /// (a free function ignores them); an error for another process's handle, which is left
    /// as it is.
    fn remove(&self, what: &str, h: usize) -> Result<Option<Arc<T>>, Fail> {
        if h == 0 {
            return Ok(None);
        }
        let me = my_pid();
        match handle_pid(h) {
            Some(owner) if owner != me => Err(foreign(what, owner, me)),
            _ => Ok(self.map(me).remove(&h)),
        }
    }
}

static SPECS: Registry<SpecObj> = Registry::new();
static CONTAINERS: Registry<ContainerObj> = Registry::new();
static PROCESSES: Registry<ProcessObj> = Registry::new();
static POOLS: Registry<runtime::Pool> = Registry::new();

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

// ---------------------------------------------------------------------------------------
// Arguments

fn str_arg<'a>(what: &str, p: *const c_char) -> Result<&'a str, Fail> {
    if p.is_null() {
        return Err(invalid(what, "NULL"));
    }
    // SAFETY: the caller passes a NUL-terminated string (the header says so).
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map_err(|_| invalid(what, "not UTF-8"))
}

fn opt_str_arg<'a>(what: &str, p: *const c_char) -> Result<Option<&'a str>, Fail> {
    if p.is_null() {
        Ok(None)
    } else {
        str_arg(what, p).map(Some)
    }
}

fn str_array(what: &str, p: *const *const c_char, n: usize) -> Result<Vec<String>, Fail> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if p.is_null() {
        return Err(invalid(what, "NULL with a non-zero count"));
    }
    if n > 1 << 20 {
        return Err(invalid(what, "too many entries"));
    }
    // SAFETY: the caller passes `n` valid pointers.
    let items = unsafe { std::slice::from_raw_parts(p, n) };
    items
        .iter()
        .enumerate()
        .map(|(i, s)| str_arg(&format!("{what}[{i}]"), *s).map(str::to_string))
        .collect()
}

fn out_ptr<'a, T>(what: &str, p: *mut T) -> Result<&'a mut T, Fail> {
    // SAFETY: a non-NULL out pointer points to writable memory (the header says so).
    unsafe { p.as_mut() }.ok_or_else(|| invalid(what, "NULL"))
}

/// Copies a size-carrying options struct: the caller's `size` first bytes over the defaults,
/// as the kernel's copy_struct_from_user does (a bigger struct must be zero past what this
/// library knows).
fn sized<T: Copy>(what: &str, p: *const T, default: T) -> Result<T, Fail> {
    if p.is_null() {
        return Ok(default);
    }
    // SAFETY: every options struct starts with its `uint32_t size`.
    let size = unsafe { *(p as *const u32) } as usize;
    let ours = std::mem::size_of::<T>();
    if size < std::mem::size_of::<u64>() {
        return Err(invalid(
            &format!("{what}.size"),
            "not set (call the struct's _init function first)",
        ));
    }
    let mut out = default;
    let n = size.min(ours);
    // SAFETY: the caller's struct has `size` readable bytes; ours has `ours`.
    unsafe {
        std::ptr::copy_nonoverlapping(p as *const u8, &mut out as *mut T as *mut u8, n);
        if size > ours {
            let extra = std::slice::from_raw_parts((p as *const u8).add(ours), size - ours);
            if extra.iter().any(|&b| b != 0) {
                return Err(Fail {
                    code: libc::E2BIG,
                    message: format!(
                        "{what}: sets fields this library (version {}) does not know",
                        env!("CARGO_PKG_VERSION")
                    ),
                    step: Some("argument".into()),
                    path: Some(what.into()),
                });
            }
        }
    }
    // The size we read is ours from here.
    // SAFETY: `out` starts with its u32 size.
    unsafe { *(&mut out as *mut T as *mut u32) = ours as u32 };
    Ok(out)
}

fn strdup_out(out: *mut *mut c_char, s: String) -> Result<(), Fail> {
    let o = out_ptr("out", out)?;
    *o = cstring_lossy(s).into_raw();
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Specs

fn new_spec(out: *mut *mut corral_spec, kind: SpecKind) -> Result<(), Fail> {
    let o = out_ptr("out", out)?;
    *o = SPECS.add(SpecObj(Mutex::new(kind)))? as *mut corral_spec;
    Ok(())
}

/// Makes a container description whose root filesystem is the directory `rootfs`, with
/// corral's defaults: the namespaces, mounts, masked paths and capabilities of `corral spec`,
/// a read-only root, no terminal, `/bin/sh` as the program. Set fields with the
/// corral_spec_set_* functions. On success `*out` is a new handle for corral_spec_free().
#[no_mangle]
pub extern "C" fn corral_spec_new(rootfs: *const c_char, out: *mut *mut corral_spec) -> c_int {
    call("corral_spec_new", || {
        let r = str_arg("rootfs", rootfs)?;
        new_spec(out, SpecKind::Built(Box::new(SpecBuilder::new(r))))
    })
}

/// Reads the OCI bundle in the directory `bundle_dir` (its `config.json`, checked now: errors
/// name the file, line and column, or the field). `*out` is a new handle for
/// corral_spec_free(). A spec from a bundle cannot be changed with corral_spec_set_*.
#[no_mangle]
pub extern "C" fn corral_spec_from_bundle(
    bundle_dir: *const c_char,
    out: *mut *mut corral_spec,
) -> c_int {
    call("corral_spec_from_bundle", || {
        let d = str_arg("bundle_dir", bundle_dir)?;
        let b = Bundle::load(Path::new(d))?;
        new_spec(out, SpecKind::Bundle(Box::new(b)))
    })
}

/// Takes the config `json` (the text of a `config.json`), whose relative paths (`root.path`,
/// hook paths) are relative to `bundle_dir` (NULL: the current directory). Checked now, as a
/// bundle's. `*out` is a new handle for corral_spec_free().
#[no_mangle]
pub extern "C" fn corral_spec_from_json(
    json: *const c_char,
    bundle_dir: *const c_char,
    out: *mut *mut corral_spec,
) -> c_int {
    call("corral_spec_from_json", || {
        let text = str_arg("json", json)?;
        let dir = match opt_str_arg("bundle_dir", bundle_dir)? {
            Some(d) => PathBuf::from(d),
            None => std::env::current_dir().map_err(|e| {
                fail(
                    e.raw_os_error().unwrap_or(libc::EIO),
                    format!("current directory: {e}"),
                )
            })?,
        };
        let dir = std::fs::canonicalize(&dir).map_err(|e| Fail {
            code: e.raw_os_error().unwrap_or(libc::EIO),
            message: format!("bundle_dir {}: {e}", dir.display()),
            step: Some("argument".into()),
            path: Some(dir.display().to_string()),
        })?;
        let b = Bundle::from_text(dir, text)?;
        new_spec(out, SpecKind::Bundle(Box::new(b)))
    })
}

/// Frees a spec handle. NULL is ignored. Containers made from it are not affected.
/// A handle made by another process (inherited through fork()) is left as it is (last
/// error -EXDEV).
#[no_mangle]
pub extern "C" fn corral_spec_free(spec: *mut corral_spec) {
    call("corral_spec_free", || {
        SPECS.remove("spec", spec as usize)?;
        Ok(())
    });
}

fn with_builder(
    func: &str,
    spec: *mut corral_spec,
    f: impl FnOnce(&mut SpecBuilder) -> Result<(), Fail>,
) -> c_int {
    with_spec(func, spec, f, |_| Err(not_for_image()))
}

fn not_for_image() -> Fail {
    Fail {
        code: libc::ENOTSUP,
        message: "not for a spec from an image (its config decides)".into(),
        step: Some("argument".into()),
        path: Some("spec".into()),
    }
}

/// Runs `built` on a spec made field by field, or `image` on one from an image.
fn with_spec(
    func: &str,
    spec: *mut corral_spec,
    built: impl FnOnce(&mut SpecBuilder) -> Result<(), Fail>,
    image: impl FnOnce(&mut corral_image::RunConfig) -> Result<(), Fail>,
) -> c_int {
    call(func, || {
        let s = SPECS.get("spec", spec as usize)?;
        let mut k = lock(&s.0);
        match &mut *k {
            SpecKind::Built(b) => built(b),
            SpecKind::Image(i) => image(&mut i.rc),
            SpecKind::Bundle(_) => Err(Fail {
                code: libc::ENOTSUP,
                message: "a spec from a bundle or config JSON is changed by editing its config"
                    .into(),
                step: Some("argument".into()),
                path: Some("spec".into()),
            }),
        }
    })
}

/// Makes a container description from the image `image` ("name[:tag]", or an image id) of
/// the image store `store` (NULL: $CORRAL_STORE, else /var/lib/corral; see `corral image`):
/// its entrypoint, command, environment, working directory and user, its layers as the root
/// (shared, read-only) under a writable layer of the container's own. corral_spec_set_args
/// (the command, after the image's entrypoint), _set_env, _set_cwd, _set_hostname,
/// _set_user, _set_limits, _set_terminal and _add_mount (bind mounts) apply; the others get
/// -ENOTSUP. The container gets what `docker run` gives by default (docker's seccomp
/// profile and capabilities, only the standard devices, docker's masked and read-only
/// paths); corral_spec_set_seccomp, _set_privileged, _add_cap, _drop_cap,
/// _add_security_opt and _add_device opt out, as docker's options of the same names. The
/// image is looked up at create. `*out` is a new handle for corral_spec_free().
#[no_mangle]
pub extern "C" fn corral_spec_from_image(
    store: *const c_char,
    image: *const c_char,
    out: *mut *mut corral_spec,
) -> c_int {
    call("corral_spec_from_image", || {
        let image = str_arg("image", image)?;
        let store = opt_str_arg("store", store)?
            .map(PathBuf::from)
            .unwrap_or_else(corral_image::default_store);
        corral_image::Reference::parse(image).map_err(|e| {
            let mut f = Fail::from(e);
            f.path = Some("image".into());
            f
        })?;
        new_spec(
            out,
            SpecKind::Image(Box::new(ImageSpec {
                store,
                image: image.to_string(),
                rc: corral_image::RunConfig::default(),
            })),
        )
    })
}

/// Sets the program and its arguments: `argv[0]` .. `argv[argc-1]` (copied). `argv[0]` is
/// looked up in the container's PATH when it has no `/`.
#[no_mangle]
pub extern "C" fn corral_spec_set_args(
    spec: *mut corral_spec,
    argv: *const *const c_char,
    argc: usize,
) -> c_int {
    with_spec(
        "corral_spec_set_args",
        spec,
        |b| {
            let a = str_array("argv", argv, argc)?;
            if a.is_empty() {
                return Err(invalid("argv", "empty: give the program to run"));
            }
            b.args(a);
            Ok(())
        },
        |rc| {
            let a = str_array("argv", argv, argc)?;
            if a.is_empty() {
                return Err(invalid("argv", "empty: give the program to run"));
            }
            rc.command = a;
            Ok(())
        },
    )
}

/// Sets the environment variable `key` to `value` (replacing an earlier value; PATH has a
/// default).
#[no_mangle]
pub extern "C" fn corral_spec_set_env(
    spec: *mut corral_spec,
    key: *const c_char,
    value: *const c_char,
) -> c_int {
    with_spec(
        "corral_spec_set_env",
        spec,
        |b| {
            let k = str_arg("key", key)?;
            let v = str_arg("value", value)?;
            if k.is_empty() || k.contains('=') {
                return Err(invalid("key", "not a variable name"));
            }
            b.env(k, v);
            Ok(())
        },
        |rc| {
            let k = str_arg("key", key)?;
            let v = str_arg("value", value)?;
            if k.is_empty() || k.contains('=') {
                return Err(invalid("key", "not a variable name"));
            }
            rc.env.retain(|e| e.split('=').next() != Some(k));
            rc.env.push(format!("{k}={v}"));
            Ok(())
        },
    )
}

/// Sets the working directory (absolute, inside the container; default "/").
#[no_mangle]
pub extern "C" fn corral_spec_set_cwd(spec: *mut corral_spec, cwd: *const c_char) -> c_int {
    with_spec(
        "corral_spec_set_cwd",
        spec,
        |b| {
            let c = str_arg("cwd", cwd)?;
            if !c.starts_with('/') {
                return Err(invalid("cwd", "must be an absolute path"));
            }
            b.cwd(c);
            Ok(())
        },
        |rc| {
            let c = str_arg("cwd", cwd)?;
            if !c.starts_with('/') {
                return Err(invalid("cwd", "must be an absolute path"));
            }
            rc.workdir = Some(c.into());
            Ok(())
        },
    )
}

/// Sets the hostname (the container needs its own UTS namespace, the default).
#[no_mangle]
pub extern "C" fn corral_spec_set_hostname(
    spec: *mut corral_spec,
    hostname: *const c_char,
) -> c_int {
    with_spec(
        "corral_spec_set_hostname",
        spec,
        |b| {
            b.hostname(str_arg("hostname", hostname)?);
            Ok(())
        },
        |rc| {
            rc.hostname = Some(str_arg("hostname", hostname)?.into());
            Ok(())
        },
    )
}

/// Sets the user and group the process runs as (inside the container; default 0:0).
#[no_mangle]
pub extern "C" fn corral_spec_set_user(spec: *mut corral_spec, uid: u32, gid: u32) -> c_int {
    with_spec(
        "corral_spec_set_user",
        spec,
        |b| {
            b.user(uid, gid);
            Ok(())
        },
        |rc| {
            rc.user = Some(format!("{uid}:{gid}"));
            Ok(())
        },
    )
}

/// Sets what the container gets of the namespace `kind` ("pid", "network" or "net", "ipc",
/// "uts", "mount" or "mnt", "user", "cgroup", "time"): `mode` "new" (one of its own), "host"
/// (the caller's: none of its own), or the path of a namespace to join ("/proc/PID/ns/net").
#[no_mangle]
pub extern "C" fn corral_spec_set_namespace(
    spec: *mut corral_spec,
    kind: *const c_char,
    mode: *const c_char,
) -> c_int {
    with_builder("corral_spec_set_namespace", spec, |b| {
        let k: runtime::Namespace =
            str_arg("kind", kind)?
                .parse()
                .map_err(|e: runtime::Error| {
                    let mut f = Fail::from(e);
                    f.path = Some("kind".into());
                    f
                })?;
        let m = match str_arg("mode", mode)? {
            "new" => runtime::NsMode::New,
            "host" => runtime::NsMode::Host,
            p if p.starts_with('/') => runtime::NsMode::Join(PathBuf::from(p)),
            _ => {
                return Err(invalid(
                    "mode",
                    "want \"new\", \"host\" or an absolute path",
                ))
            }
        };
        b.namespace(k, m);
        Ok(())
    })
}

/// Resource limits. Initialise with corral_limits_init() (which sets `size`), then set the
/// fields you want; 0 leaves a limit unset.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct corral_limits {
    /// sizeof(struct corral_limits), set by corral_limits_init().
    pub size: u32,
    /// Zero.
    pub _reserved: u32,
    /// Memory limit in bytes (0: none).
    pub memory: i64,
    /// Memory + swap limit in bytes (0: none, -1: unlimited).
    pub memory_swap: i64,
    /// Most processes (0: none, -1: unlimited).
    pub pids: i64,
    /// CPU time as a number of CPUs, e.g. 0.5 (0: none).
    pub cpus: f64,
    /// Relative CPU weight, 2..262144 (0: none).
    pub cpu_shares: u64,
}

const LIMITS_DEFAULT: corral_limits = corral_limits {
    size: std::mem::size_of::<corral_limits>() as u32,
    _reserved: 0,
    memory: 0,
    memory_swap: 0,
    pids: 0,
    cpus: 0.0,
    cpu_shares: 0,
};

/// Initialises `limits`: sets `size` and leaves every limit unset.
#[no_mangle]
pub extern "C" fn corral_limits_init(limits: *mut corral_limits) {
    call_void("corral_limits_init", || {
        if let Some(l) = unsafe { limits.as_mut() } {
            *l = LIMITS_DEFAULT;
        }
    });
}

fn to_limits(p: *const corral_limits) -> Result<Limits, Fail> {
    if p.is_null() {
        return Err(invalid("limits", "NULL"));
    }
    let l = sized("limits", p, LIMITS_DEFAULT)?;
    let set_i = |v: i64| (v != 0).then_some(v);
    let lim = Limits {
        memory: set_i(l.memory),
        memory_swap: set_i(l.memory_swap),
        pids: set_i(l.pids),
        cpus: (l.cpus != 0.0).then_some(l.cpus),
        cpu_shares: (l.cpu_shares != 0).then_some(l.cpu_shares),
        ..Limits::default()
    };
    lim.check()?;
    Ok(lim)
}

/// Sets the container's resource limits (copied).
#[no_mangle]
pub extern "C" fn corral_spec_set_limits(
    spec: *mut corral_spec,
    limits: *const corral_limits,
) -> c_int {
    with_spec(
        "corral_spec_set_limits",
        spec,
        |b| {
            b.limits(to_limits(limits)?);
            Ok(())
        },
        |rc| {
            let l = to_limits(limits)?;
            rc.memory = l.memory;
            rc.cpus = l.cpus;
            rc.pids_limit = l.pids;
            Ok(())
        },
    )
}

/// Adds a mount after the default ones: `type` "bind" (with `source` a host path) or a
/// filesystem type ("tmpfs", ...); `options` a comma-separated list as in `mount -o`
/// ("ro,nosuid"), or NULL. A bind mount gets "rbind" unless `options` says "bind".
#[no_mangle]
pub extern "C" fn corral_spec_add_mount(
    spec: *mut corral_spec,
    source: *const c_char,
    destination: *const c_char,
    r#type: *const c_char,
    options: *const c_char,
) -> c_int {
    with_spec(
        "corral_spec_add_mount",
        spec,
        |b| {
            let src = str_arg("source", source)?;
            let dst = str_arg("destination", destination)?;
            if !dst.starts_with('/') {
                return Err(invalid("destination", "must be an absolute path"));
            }
            let kind = str_arg("type", r#type)?;
            let mut opts: Vec<String> = opt_str_arg("options", options)?
                .unwrap_or("")
                .split(',')
                .filter(|o| !o.is_empty())
                .map(str::to_string)
                .collect();
            if kind == "bind" && !opts.iter().any(|o| o == "bind" || o == "rbind") {
                opts.insert(0, "rbind".into());
            }
            b.mount(runtime::Mount {
                destination: dst.into(),
                kind: kind.into(),
                source: src.into(),
                options: opts,
            });
            Ok(())
        },
        |rc| {
            let src = str_arg("source", source)?;
            let dst = str_arg("destination", destination)?;
            if str_arg("type", r#type)? != "bind" {
                return Err(invalid(
                    "type",
                    "a spec from an image takes bind mounts only",
                ));
            }
            if !dst.starts_with('/') {
                return Err(invalid("destination", "must be an absolute path"));
            }
            let ro = opt_str_arg("options", options)?
                .unwrap_or("")
                .split(',')
                .any(|o| o == "ro");
            rc.volumes.push((PathBuf::from(src), dst.to_string(), ro));
            Ok(())
        },
    )
}

/// Gives the process a terminal (1) or not (0, the default). Its pty master is
/// corral_console().
#[no_mangle]
pub extern "C" fn corral_spec_set_terminal(spec: *mut corral_spec, on: c_int) -> c_int {
    with_spec(
        "corral_spec_set_terminal",
        spec,
        |b| {
            b.terminal(on != 0);
            Ok(())
        },
        |rc| {
            rc.tty = on != 0;
            Ok(())
        },
    )
}

/// Turns corral's default seccomp filter on (1) or off (0, the default): it refuses with
/// EPERM the calls a container has no business making (module loading, reboot, mount,
/// unshare, setns, ptrace, bpf, keyctl, ...). For a spec from an image: docker's default
/// profile (1, the default) or none (0, as `--security-opt seccomp=unconfined`).
#[no_mangle]
pub extern "C" fn corral_spec_set_seccomp(spec: *mut corral_spec, on: c_int) -> c_int {
    with_spec(
        "corral_spec_set_seccomp",
        spec,
        |b| {
            b.seccomp(on != 0);
            Ok(())
        },
        |rc| {
            rc.security.seccomp = if on != 0 {
                runtime::describe::Seccomp::Default
            } else {
                runtime::describe::Seccomp::Unconfined
            };
            Ok(())
        },
    )
}

/// Runs `f` on the security settings of a spec from an image; other specs get -ENOTSUP.
fn with_image_security(
    func: &str,
    spec: *mut corral_spec,
    f: impl FnOnce(&mut runtime::describe::Security) -> Result<(), Fail>,
) -> c_int {
    with_spec(
        func,
        spec,
        |_| {
            Err(Fail {
                code: libc::ENOTSUP,
                message: "only for a spec from an image (corral_spec_from_image)".into(),
                step: Some("argument".into()),
                path: Some("spec".into()),
            })
        },
        |rc| f(&mut rc.security),
    )
}

/// The error of a refused security argument `arg`.
fn security_fail(arg: &'static str) -> impl FnOnce(runtime::Error) -> Fail {
    move |e| {
        let mut f = Fail::from(e);
        f.step = Some("argument".into());
        f.path = Some(arg.into());
        f
    }
}

/// A spec from an image: every capability, every host device, no seccomp filter, no masked
/// or read-only paths (1), or docker's defaults (0, the default), as docker's `--privileged`.
#[no_mangle]
pub extern "C" fn corral_spec_set_privileged(spec: *mut corral_spec, on: c_int) -> c_int {
    with_image_security("corral_spec_set_privileged", spec, |s| {
        s.privileged = on != 0;
        Ok(())
    })
}

/// A spec from an image: adds capability `name` ("NET_ADMIN", "CAP_NET_ADMIN" or "ALL") to
/// docker's default set, as docker's `--cap-add`.
#[no_mangle]
pub extern "C" fn corral_spec_add_cap(spec: *mut corral_spec, name: *const c_char) -> c_int {
    with_image_security("corral_spec_add_cap", spec, |s| {
        s.cap_add(str_arg("name", name)?)
            .map_err(security_fail("name"))
    })
}

/// A spec from an image: drops capability `name` (or "ALL") from docker's default set, as
/// docker's `--cap-drop`.
#[no_mangle]
pub extern "C" fn corral_spec_drop_cap(spec: *mut corral_spec, name: *const c_char) -> c_int {
    with_image_security("corral_spec_drop_cap", spec, |s| {
        s.cap_drop(str_arg("name", name)?)
            .map_err(security_fail("name"))
    })
}

/// A spec from an image: one docker `--security-opt`: "seccomp=unconfined",
/// "seccomp=PROFILE.json" (a `linux.seccomp` object in OCI form) or "no-new-privileges".
#[no_mangle]
pub extern "C" fn corral_spec_add_security_opt(
    spec: *mut corral_spec,
    opt: *const c_char,
) -> c_int {
    with_image_security("corral_spec_add_security_opt", spec, |s| {
        s.option(str_arg("opt", opt)?).map_err(security_fail("opt"))
    })
}

/// A spec from an image: gives the container a host device, "HOST[:CONTAINER][:PERMS]" as
/// docker's `--device` (PERMS of r, w, m; default rwm).
#[no_mangle]
pub extern "C" fn corral_spec_add_device(spec: *mut corral_spec, device: *const c_char) -> c_int {
    with_image_security("corral_spec_add_device", spec, |s| {
        s.device(str_arg("device", device)?)
            .map_err(security_fail("device"))
    })
}

/// Makes the root filesystem read-only (1, the default) or writable (0).
#[no_mangle]
pub extern "C" fn corral_spec_set_readonly_root(spec: *mut corral_spec, on: c_int) -> c_int {
    with_builder("corral_spec_set_readonly_root", spec, |b| {
        b.readonly_root(on != 0);
        Ok(())
    })
}

/// Writes the spec as a `config.json` text to `*out` (free it with corral_string_free()).
#[no_mangle]
pub extern "C" fn corral_spec_to_json(spec: *mut corral_spec, out: *mut *mut c_char) -> c_int {
    call("corral_spec_to_json", || {
        let s = SPECS.get("spec", spec as usize)?;
        let v = match &*lock(&s.0) {
            SpecKind::Built(b) => serde_json::to_value(b.to_spec()?)
                .map_err(|e| fail(libc::EINVAL, format!("spec: {e}")))?,
            SpecKind::Bundle(b) => serde_json::to_value(&b.spec)
                .map_err(|e| fail(libc::EINVAL, format!("spec: {e}")))?,
            SpecKind::Image(i) => {
                return Err(fail(
                    libc::ENOTSUP,
                    format!("the spec of image {:?} is made at create", i.image),
                ))
            }
        };
        let text = serde_json::to_string_pretty(&v)
            .map_err(|e| fail(libc::EINVAL, format!("spec: {e}")))?;
        strdup_out(out, text)
    })
}

/// Frees a string the library handed out. NULL is ignored.
#[no_mangle]
pub extern "C" fn corral_string_free(s: *mut c_char) {
    call_void("corral_string_free", || {
        if !s.is_null() {
            // SAFETY: made by CString::into_raw in this library (the header says so).
            drop(unsafe { CString::from_raw(s) });
        }
    });
}

// ---------------------------------------------------------------------------------------
// Containers

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

const OPTIONS_DEFAULT: corral_options = corral_options {
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
        if let Some(o) = unsafe { opts.as_mut() } {
            *o = OPTIONS_DEFAULT;
        }
    });
}

/// Stdio fds given by the caller must be open (-1: not given).
fn check_stdio(stdio: &[RawFd; 3]) -> Result<(), Fail> {
    for (fd, name) in stdio
        .iter()
        .zip(["opts.stdin_fd", "opts.stdout_fd", "opts.stderr_fd"])
    {
        // SAFETY: F_GETFD only asks.
        if *fd >= 0 && unsafe { libc::fcntl(*fd, libc::F_GETFD) } < 0 {
            return Err(Fail {
                code: libc::EBADF,
                message: format!("{name}: fd {fd} is not open"),
                step: Some("argument".into()),
                path: Some(name.into()),
            });
        }
    }
    Ok(())
}

/// `opts.env`: `len` "KEY=VALUE" strings, as pairs.
fn env_pairs(p: *const *const c_char, len: usize) -> Result<Vec<(String, String)>, Fail> {
    let mut env = Vec::new();
    for (i, kv) in str_array("opts.env", p, len)?.into_iter().enumerate() {
        let Some((k, v)) = kv.split_once('=') else {
            return Err(invalid(&format!("opts.env[{i}]"), "want KEY=VALUE"));
        };
        env.push((k.to_string(), v.to_string()));
    }
    Ok(env)
}

fn root_of(root: Option<&str>) -> PathBuf {
    root.map(PathBuf::from)
        .unwrap_or_else(runtime::state::default_root)
}

fn to_options(p: *const corral_options) -> Result<Options, Fail> {
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

/// The image store and the layer dirs of a container from an image.
type ImageLayers = (PathBuf, Vec<PathBuf>);

/// What a container of `spec` is made from: its bundle, and for an image the store and the
/// layers (the store's record of container `id` is made now).
fn bundle_of(
    spec: *mut corral_spec,
    id: &str,
    root: &Path,
) -> Result<(Bundle, Option<ImageLayers>), Fail> {
    let s = SPECS.get("spec", spec as usize)?;
    let k = lock(&s.0);
    Ok(match &*k {
        SpecKind::Built(b) => (b.build()?, None),
        SpecKind::Bundle(b) => ((**b).clone(), None),
        SpecKind::Image(i) => {
            let store = corral_image::ImageStore::open(&i.store)?;
            let d = i.rc.describe(&i.image)?;
            let (b, layers) = corral_image::prepare_container(&store, id, &d, root)?;
            (b, Some((i.store.clone(), layers)))
        }
    })
}

fn new_container(out: *mut *mut corral_container, c: Container) -> Result<(), Fail> {
    new_container_of(out, c, None)
}

fn new_container_of(
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
fn with_container<T>(
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

fn create_impl(
    spec: *mut corral_spec,
    id: *const c_char,
    opts: *const corral_options,
    out: *mut *mut corral_container,
    start: bool,
) -> Result<(), Fail> {
    let id = str_arg("id", id)?;
    out_ptr("out", out)?;
    let mut o = to_options(opts)?;
    let (b, image) = bundle_of(spec, id, &o.root)?;
    let store = image.as_ref().map(|(s, _)| s.clone());
    if let Some((_, layers)) = image {
        o.layers = layers;
    }
    let made = Container::create_from(id, &b, &o).and_then(|mut c| {
        if start {
            c.start()?;
        }
        Ok(c)
    });
    match made {
        Ok(c) => new_container_of(out, c, store),
        Err(e) => {
            if let Some(s) = &store {
                corral_image::forget_container(s, &o.root, id);
            }
            Err(e.into())
        }
    }
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
        new_container(out, c)
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

fn fill_exit(out: *mut corral_exit, e: ExitStatus) -> Result<(), Fail> {
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

fn timeout_of(ms: c_int) -> Result<Option<Duration>, Fail> {
    match ms {
        -1 => Ok(None),
        m if m >= 0 => Ok(Some(Duration::from_millis(m as u64))),
        _ => Err(invalid(
            "timeout_ms",
            "want -1 (no timeout) or a number of ms >= 0",
        )),
    }
}

fn dup_cloexec(fd: RawFd) -> Result<std::os::fd::OwnedFd, Fail> {
    // SAFETY: duplicating an fd the container owns.
    let n = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if n < 0 {
        let e = std::io::Error::last_os_error();
        return Err(fail(
            e.raw_os_error().unwrap_or(libc::EIO),
            format!("dup of the pidfd: {e}"),
        ));
    }
    // SAFETY: fresh fd owned here.
    Ok(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(n) })
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
        let l = to_limits(limits)?;
        let r = l.to_resources()?;
        with_container(c, |c| Ok(c.update(&r)?))
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
        let root = ct.state_root();
        let id = ct.id().to_string();
        ct.delete_checked(true)?;
        if let Some(s) = &obj.store {
            corral_image::forget_container(s, &root, &id);
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
/// removed (its processes killed); one opened with corral_open() is left as it is. NULL is
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

fn phase_name(n: &str) -> &'static CStr {
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

// ---------------------------------------------------------------------------------------
// Exec

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

const EXEC_DEFAULT: corral_exec_options = corral_exec_options {
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

fn with_process<T>(
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

// ---------------------------------------------------------------------------------------
// Warm pool

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
        let b = {
            let s = SPECS.get("spec", spec as usize)?;
            let k = lock(&s.0);
            match &*k {
                SpecKind::Built(b) => b.build()?,
                SpecKind::Bundle(b) => (**b).clone(),
                SpecKind::Image(_) => return Err(not_for_image()),
            }
        };
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

const TAKE_DEFAULT: corral_take_options = corral_take_options {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_code_and_a_message() {
        let rc = call("corral_test", || panic!("boom"));
        assert_eq!(rc, -libc::ENOTRECOVERABLE);
        assert_eq!(corral_last_error_code(), -libc::ENOTRECOVERABLE);
        // SAFETY: a valid C string from this thread's last error.
        let m = unsafe { CStr::from_ptr(corral_last_error_message()) }
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            m.starts_with("corral_test: internal error") && m.contains("boom"),
            "{m}"
        );
    }

    #[test]
    fn errors_are_per_thread() {
        let rc = corral_spec_new(std::ptr::null(), std::ptr::null_mut());
        assert_eq!(rc, -libc::EINVAL);
        let other = std::thread::spawn(|| corral_last_error_code())
            .join()
            .unwrap();
        assert_eq!(other, 0);
        assert_eq!(corral_last_error_code(), -libc::EINVAL);
    }

    #[test]
    fn sized_structs_grow_both_ways() {
        // An older caller (a shorter struct): the fields it did not know keep their defaults.
        let mut small = OPTIONS_DEFAULT;
        small.flags = CORRAL_NO_PIVOT;
        small.size = 8;
        let o = sized("opts", &small, OPTIONS_DEFAULT).unwrap();
        assert_eq!(o.flags, CORRAL_NO_PIVOT);
        assert_eq!(o.stdin_fd, -1);
        // A newer caller (a bigger struct): zero past ours is fine, anything else is not.
        #[repr(C)]
        #[derive(Clone, Copy)]
        struct Bigger {
            o: corral_options,
            extra: u64,
        }
        let mut b = Bigger {
            o: OPTIONS_DEFAULT,
            extra: 0,
        };
        b.o.size = std::mem::size_of::<Bigger>() as u32;
        assert!(sized("opts", &b.o as *const corral_options, OPTIONS_DEFAULT).is_ok());
        b.extra = 1;
        let e = sized("opts", &b.o as *const corral_options, OPTIONS_DEFAULT)
            .err()
            .unwrap();
        assert_eq!(e.code, libc::E2BIG);
        // Never initialised.
        small.size = 0;
        assert_eq!(
            sized("opts", &small, OPTIONS_DEFAULT).err().unwrap().code,
            libc::EINVAL
        );
    }
}

//! What went wrong: the per-thread last error, and [`call`]/[`call_void`], which run
//! every exported function's body, turn its error into a negative errno and catch panics.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

/// What went wrong, before it becomes the thread's last error.
#[derive(Debug)]
pub(crate) struct Fail {
    /// Positive errno.
    pub(crate) code: i32,
    pub(crate) message: String,
    pub(crate) step: Option<String>,
    pub(crate) path: Option<String>,
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

impl From<corral_image::Error> for Fail {
    fn from(e: corral_image::Error) -> Fail {
        match e {
            corral_image::Error::Image(e) => e.into(),
            corral_image::Error::Runtime(e) => e.into(),
            corral_image::Error::Net(e) => Fail {
                code: e.errno(),
                message: e.to_string(),
                step: Some("network".into()),
                path: None,
            },
        }
    }
}

pub(crate) fn fail(code: i32, message: impl Into<String>) -> Fail {
    Fail {
        code,
        message: message.into(),
        step: None,
        path: None,
    }
}

pub(crate) fn invalid(arg: &str, why: &str) -> Fail {
    Fail {
        code: libc::EINVAL,
        message: format!("{arg}: {why}"),
        step: Some("argument".into()),
        path: Some(arg.into()),
    }
}

pub(crate) struct LastError {
    pub(crate) code: c_int,
    pub(crate) message: CString,
    pub(crate) step: Option<CString>,
    pub(crate) path: Option<CString>,
}

thread_local! {
    static LAST: RefCell<Option<LastError>> = const { RefCell::new(None) };
    static PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

pub(crate) fn cstring_lossy(s: String) -> CString {
    CString::new(s.replace('\0', "\\0")).unwrap_or_default()
}

pub(crate) fn set_last(func: &str, f: Fail) -> c_int {
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
pub(crate) fn quiet_panics() {
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

/// Runs `f` with SIGPIPE blocked on this thread, and so on the threads it starts (a hook's
/// stdin is written on this thread, a CNI plugin's from another): a write to a pipe whose reader is gone is then an
/// EPIPE error, never the death of the caller's process (SIGPIPE's default action in a C
/// program; Rust and Python programs ignore it). A SIGPIPE left pending on this thread
/// meanwhile is dropped (its write saw EPIPE). Processes the library starts do not inherit
/// the mask: the container's init empties it, and `std::process::Command` resets it.
fn without_sigpipe<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: sigset_t is plain data, emptied before use; the calls only read and write the
    // sets passed and this thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut old);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
        let r = f();
        if libc::sigismember(&old, libc::SIGPIPE) != 1 {
            let mut pending: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut pending);
            if libc::sigpending(&mut pending) == 0
                && libc::sigismember(&pending, libc::SIGPIPE) == 1
            {
                let zero = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
                libc::sigtimedwait(&set, std::ptr::null_mut(), &zero);
            }
            libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        }
        r
    }
}

/// Runs the body of an exported function: its error becomes the thread's last error and a
/// negative errno; a panic becomes `-ENOTRECOVERABLE`. SIGPIPE is blocked while it runs
/// ([`without_sigpipe`]).
pub(crate) fn call(func: &str, body: impl FnOnce() -> Result<(), Fail>) -> c_int {
    quiet_panics();
    match without_sigpipe(|| catch_unwind(AssertUnwindSafe(body))) {
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
pub(crate) fn call_void(func: &str, body: impl FnOnce()) {
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

#[cfg(test)]
mod tests {
    use std::ffi::CStr;

    use super::*;
    use crate::spec::corral_spec_new;

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
}

//! Reading C arguments: strings, string arrays, out pointers, size-carrying options
//! structs, fds and timeouts; and handing strings out.

use std::ffi::{c_char, c_int, CStr, CString};
use std::os::fd::RawFd;
use std::time::Duration;

use crate::error::{call_void, cstring_lossy, fail, invalid, Fail};

pub(crate) fn str_arg<'a>(what: &str, p: *const c_char) -> Result<&'a str, Fail> {
    if p.is_null() {
        return Err(invalid(what, "NULL"));
    }
    // SAFETY: the caller passes a NUL-terminated string (the header says so).
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map_err(|_| invalid(what, "not UTF-8"))
}

pub(crate) fn opt_str_arg<'a>(what: &str, p: *const c_char) -> Result<Option<&'a str>, Fail> {
    if p.is_null() {
        Ok(None)
    } else {
        str_arg(what, p).map(Some)
    }
}

pub(crate) fn str_array(
    what: &str,
    p: *const *const c_char,
    n: usize,
) -> Result<Vec<String>, Fail> {
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

pub(crate) fn out_ptr<'a, T>(what: &str, p: *mut T) -> Result<&'a mut T, Fail> {
    // SAFETY: a non-NULL out pointer points to writable memory (the header says so).
    unsafe { p.as_mut() }.ok_or_else(|| invalid(what, "NULL"))
}

/// Copies a size-carrying options struct: the caller's `size` first bytes over the defaults,
/// as the kernel's copy_struct_from_user does (a bigger struct must be zero past what this
/// library knows).
pub(crate) fn sized<T: Copy>(what: &str, p: *const T, default: T) -> Result<T, Fail> {
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

pub(crate) fn strdup_out(out: *mut *mut c_char, s: String) -> Result<(), Fail> {
    let o = out_ptr("out", out)?;
    *o = cstring_lossy(s).into_raw();
    Ok(())
}

/// Stdio fds given by the caller must be open (-1: not given).
pub(crate) fn check_stdio(stdio: &[RawFd; 3]) -> Result<(), Fail> {
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
pub(crate) fn env_pairs(
    p: *const *const c_char,
    len: usize,
) -> Result<Vec<(String, String)>, Fail> {
    let mut env = Vec::new();
    for (i, kv) in str_array("opts.env", p, len)?.into_iter().enumerate() {
        let Some((k, v)) = kv.split_once('=') else {
            return Err(invalid(&format!("opts.env[{i}]"), "want KEY=VALUE"));
        };
        env.push((k.to_string(), v.to_string()));
    }
    Ok(env)
}

pub(crate) fn timeout_of(ms: c_int) -> Result<Option<Duration>, Fail> {
    match ms {
        -1 => Ok(None),
        m if m >= 0 => Ok(Some(Duration::from_millis(m as u64))),
        _ => Err(invalid(
            "timeout_ms",
            "want -1 (no timeout) or a number of ms >= 0",
        )),
    }
}

pub(crate) fn dup_cloexec(fd: RawFd) -> Result<std::os::fd::OwnedFd, Fail> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::{corral_options, CORRAL_NO_PIVOT, OPTIONS_DEFAULT};

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

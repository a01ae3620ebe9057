//! Opening paths that must stay inside a directory tree (a build context, an image
//! archive, a layer, a container's root): `openat2(2)` resolves every component, symlinks
//! included, under a directory fd, so nothing named inside can lead to the host. [`openat2`]
//! is the runtime's one wrapper of the syscall on the parent side (the child's own, which
//! must not allocate, lives in `ns`).
#![deny(clippy::undocumented_unsafe_blocks)]

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

/// Symlinks resolve with `dirfd` as `/` (as in a chroot; `..` stops at it): the rule of
/// a container's root and of `docker build`'s context.
pub const IN_ROOT: u64 = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
/// A path (or a symlink on it) that would leave `dirfd` fails with `EXDEV`.
pub const BENEATH: u64 = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;

/// `openat2(dirfd, rel, flags, resolve)`; an empty `rel` opens `dirfd` itself.
pub fn openat2(dirfd: RawFd, rel: &Path, flags: i32, resolve: u64) -> io::Result<OwnedFd> {
    let bytes = rel.as_os_str().as_encoded_bytes();
    let c = CString::new(if bytes.is_empty() {
        b"." as &[u8]
    } else {
        bytes
    })
    .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `open_how` is a C struct of three u64s, for which all zeroes is valid (and
    // the kernel's default).
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = resolve;
    // SAFETY: `c` is a NUL-terminated string and `how` an open_how, both alive for the call,
    // with the size passed that of `how`; the kernel only reads them.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dirfd,
            c.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the fd was just returned by the kernel and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Open `rel` below `dir` for reading, resolved with `resolve`, and only if it is a
/// regular file: a FIFO (which would block the reader for ever), a device or a directory is
/// refused. The error says which.
pub fn open_regular(dir: &File, rel: &Path, resolve: u64) -> io::Result<File> {
    let fd = openat2(
        dir.as_raw_fd(),
        rel,
        libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY,
        resolve,
    )
    .map_err(|e| match e.raw_os_error() {
        Some(libc::EXDEV) | Some(libc::ELOOP) => io::Error::new(
            e.kind(),
            format!("{}: leads out of its directory ({e})", rel.display()),
        ),
        _ => io::Error::new(e.kind(), format!("{}: {e}", rel.display())),
    })?;
    let f = File::from(fd);
    let md = f.metadata()?;
    if !md.is_file() {
        return Err(io::Error::other(format!(
            "{}: not a regular file",
            rel.display()
        )));
    }
    // Back to blocking reads (a regular file never blocks, but the flag is not ours to
    // leave on).
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let fl = OFlag::from_bits_retain(fcntl(f.as_raw_fd(), FcntlArg::F_GETFL)?);
    fcntl(f.as_raw_fd(), FcntlArg::F_SETFL(fl & !OFlag::O_NONBLOCK))?;
    Ok(f)
}

/// Read all of `f`, refusing more than `cap` bytes (named `what` in the error).
pub fn read_capped(f: impl Read, cap: u64, what: &Path) -> io::Result<Vec<u8>> {
    let mut v = Vec::new();
    f.take(cap + 1).read_to_end(&mut v)?;
    if v.len() as u64 > cap {
        return Err(io::Error::other(format!(
            "{}: larger than {cap} bytes (the limit for this file)",
            what.display()
        )));
    }
    Ok(v)
}

//! Thin wrappers over raw libc calls used by the crate.

use std::ffi::{CStr, CString, OsStr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::stat::{FchmodatFlags, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid};

pub(crate) type SysResult<T> = std::result::Result<T, Errno>;

pub(crate) fn cstring(s: &OsStr) -> SysResult<CString> {
    CString::new(s.as_bytes()).map_err(|_| Errno::EINVAL)
}

pub(crate) fn cpath(p: &Path) -> SysResult<CString> {
    cstring(p.as_os_str())
}

fn cvt(r: libc::c_int) -> SysResult<libc::c_int> {
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(r)
    }
}

fn cvt_long(r: libc::c_long) -> SysResult<libc::c_long> {
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(r)
    }
}

/// `openat(dir, name, flags | O_CLOEXEC, mode)`.
pub(crate) fn openat(dir: RawFd, name: &CStr, flags: libc::c_int, mode: u32) -> SysResult<OwnedFd> {
    // SAFETY: name is a valid C string; the returned fd is owned by us.
    let fd = cvt(unsafe { libc::openat(dir, name.as_ptr(), flags | libc::O_CLOEXEC, mode) })?;
    // SAFETY: fd was just returned by the kernel and is not owned elsewhere.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn perm(mode: u32) -> Mode {
    Mode::from_bits_truncate((mode & 0o7777) as libc::mode_t)
}

pub(crate) fn mkdirat(dir: RawFd, name: &CStr, mode: u32) -> SysResult<()> {
    nix::sys::stat::mkdirat(Some(dir), name, perm(mode))
}

/// `mknodat(dir, name, mode, dev)`: `mode` holds the file type and the permission bits.
pub(crate) fn mknodat(dir: RawFd, name: &CStr, mode: u32, dev: libc::dev_t) -> SysResult<()> {
    let kind = SFlag::from_bits_truncate(mode as libc::mode_t & libc::S_IFMT);
    nix::sys::stat::mknodat(Some(dir), name, kind, perm(mode), dev)
}

pub(crate) fn symlinkat(target: &CStr, dir: RawFd, name: &CStr) -> SysResult<()> {
    nix::unistd::symlinkat(target, Some(dir), name)
}

/// `linkat(odir, oname, ndir, nname, 0)`: a symlink source is linked itself, never followed.
pub(crate) fn linkat(odir: RawFd, oname: &CStr, ndir: RawFd, nname: &CStr) -> SysResult<()> {
    nix::unistd::linkat(Some(odir), oname, Some(ndir), nname, AtFlags::empty())
}

pub(crate) fn unlinkat(dir: RawFd, name: &CStr, flags: libc::c_int) -> SysResult<()> {
    // SAFETY: valid C string.
    cvt(unsafe { libc::unlinkat(dir, name.as_ptr(), flags) }).map(drop)
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`; `Ok(None)` if it does not exist.
pub(crate) fn lstatat(dir: RawFd, name: &CStr) -> SysResult<Option<libc::stat>> {
    match nix::sys::stat::fstatat(Some(dir), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

pub(crate) fn fchown(fd: &OwnedFd, uid: u32, gid: u32) -> SysResult<()> {
    nix::unistd::fchown(
        fd.as_raw_fd(),
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
    )
}

pub(crate) fn fchmod(fd: &OwnedFd, mode: u32) -> SysResult<()> {
    nix::sys::stat::fchmod(fd.as_raw_fd(), perm(mode))
}

pub(crate) fn lchownat(dir: RawFd, name: &CStr, uid: u32, gid: u32) -> SysResult<()> {
    nix::unistd::fchownat(
        Some(dir),
        name,
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
}

pub(crate) fn fchmodat(dir: RawFd, name: &CStr, mode: u32) -> SysResult<()> {
    nix::sys::stat::fchmodat(Some(dir), name, perm(mode), FchmodatFlags::FollowSymlink)
}

fn time(mtime: i64) -> TimeSpec {
    TimeSpec::new(mtime as libc::time_t, 0)
}

pub(crate) fn futimens(fd: &OwnedFd, mtime: i64) -> SysResult<()> {
    let t = time(mtime);
    nix::sys::stat::futimens(fd.as_raw_fd(), &t, &t)
}

pub(crate) fn lutimensat(dir: RawFd, name: &CStr, mtime: i64) -> SysResult<()> {
    let t = time(mtime);
    nix::sys::stat::utimensat(Some(dir), name, &t, &t, UtimensatFlags::NoFollowSymlink)
}

pub(crate) fn fsetxattr(fd: &OwnedFd, name: &CStr, value: &[u8]) -> SysResult<()> {
    // SAFETY: valid C string and value buffer.
    cvt(unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    })
    .map(drop)
}

/// `lgetxattr(path, name)`; `Ok(None)` when the attribute is absent.
pub(crate) fn lgetxattr(path: &Path, name: &CStr) -> SysResult<Option<Vec<u8>>> {
    let p = cpath(path)?;
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: valid C strings; buf is writable for buf.len() bytes.
        let r = unsafe {
            libc::lgetxattr(
                p.as_ptr(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if r >= 0 {
            buf.truncate(r as usize);
            return Ok(Some(buf));
        }
        match Errno::last() {
            Errno::ENODATA | Errno::ENOTSUP => return Ok(None),
            Errno::ERANGE if buf.len() < 65536 => buf.resize(buf.len() * 4, 0),
            e => return Err(e),
        }
    }
}

/// The names of `path`'s extended attributes (not following a symlink).
pub(crate) fn llistxattr(path: &Path) -> SysResult<Vec<CString>> {
    let p = cpath(path)?;
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: valid C string; buf is writable for buf.len() bytes.
        let r = unsafe { libc::llistxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if r >= 0 {
            buf.truncate(r as usize);
            return Ok(buf
                .split(|b| *b == 0)
                .filter(|n| !n.is_empty())
                .filter_map(|n| CString::new(n).ok())
                .collect());
        }
        match Errno::last() {
            Errno::ENOTSUP => return Ok(Vec::new()),
            Errno::ERANGE if buf.len() < 1 << 20 => buf.resize(buf.len() * 4, 0),
            e => return Err(e),
        }
    }
}

// ---- new mount API ----

pub(crate) const FSOPEN_CLOEXEC: libc::c_uint = 1;
pub(crate) const FSMOUNT_CLOEXEC: libc::c_uint = 1;
pub(crate) const FSCONFIG_SET_STRING: libc::c_uint = 1;
pub(crate) const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
pub(crate) const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;

pub(crate) fn fsopen(fstype: &CStr) -> SysResult<OwnedFd> {
    // SAFETY: valid C string; returns a new fd.
    let fd = cvt_long(unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) })?;
    // SAFETY: fd freshly returned by the kernel.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

pub(crate) fn fsconfig(
    fd: &OwnedFd,
    cmd: libc::c_uint,
    key: Option<&CStr>,
    value: Option<&CStr>,
) -> SysResult<()> {
    let k = key.map_or(std::ptr::null(), |k| k.as_ptr());
    let v = value.map_or(std::ptr::null(), |v| v.as_ptr());
    // SAFETY: pointers are valid C strings or null as the command requires.
    cvt_long(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fd.as_raw_fd(),
            cmd,
            k,
            v,
            0 as libc::c_int,
        )
    })
    .map(drop)
}

pub(crate) fn fsmount(fd: &OwnedFd) -> SysResult<OwnedFd> {
    // SAFETY: integer arguments only (the fs context's fd and flags).
    let m = cvt_long(unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            fd.as_raw_fd(),
            FSMOUNT_CLOEXEC,
            0 as libc::c_uint,
        )
    })?;
    // SAFETY: fd freshly returned by the kernel.
    Ok(unsafe { OwnedFd::from_raw_fd(m as RawFd) })
}

pub(crate) fn move_mount_to(mfd: &OwnedFd, target: &CStr) -> SysResult<()> {
    // SAFETY: valid C strings.
    cvt_long(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mfd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    })
    .map(drop)
}

/// Drain the fs-context message log of an `fsopen` fd (one message per read).
pub(crate) fn fs_context_log(fd: &OwnedFd) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    for _ in 0..16 {
        let n = match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
            Ok(n) if n > 0 => n,
            _ => break,
        };
        let msg = String::from_utf8_lossy(&buf[..n]);
        // Messages are prefixed by "e ", "w " or "i ".
        let msg = msg.get(2..).unwrap_or(&msg).trim().to_string();
        out.push(msg);
    }
    out.join("; ")
}

pub(crate) fn umount2(target: &CStr, flags: libc::c_int) -> SysResult<()> {
    nix::mount::umount2(target, nix::mount::MntFlags::from_bits_truncate(flags))
}

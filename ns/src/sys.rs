//! Raw syscalls used on both sides of the clone. Everything here is async-signal-safe: no
//! allocation, no locks.
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::ffi::CStr;

use libc::{c_char, c_int, c_long, c_uint, c_ulong};

/// A `/proc/self/fd/N` path in a stack buffer.
pub(crate) struct FdPath {
    buf: [u8; 32],
}

impl FdPath {
    pub(crate) fn new(fd: c_int) -> FdPath {
        const PREFIX: &[u8] = b"/proc/self/fd/";
        let mut buf = [0u8; 32];
        // The decimal digits of fd, last first.
        let mut digits = [0u8; 12];
        let mut n = if fd < 0 { 0u32 } else { fd as u32 };
        let mut count = 0usize;
        for d in digits.iter_mut() {
            *d = b'0'.saturating_add((n % 10) as u8);
            n /= 10;
            count = count.saturating_add(1);
            if n == 0 {
                break;
            }
        }
        let number = digits.iter().take(count).rev();
        // 14 + at most 10 digits + the NUL left as 0: fits 32.
        for (slot, b) in buf.iter_mut().zip(PREFIX.iter().chain(number)) {
            *slot = *b;
        }
        FdPath { buf }
    }

    pub(crate) fn as_ptr(&self) -> *const c_char {
        self.buf.as_ptr().cast()
    }
}

pub(crate) fn errno() -> c_int {
    // SAFETY: __errno_location returns the calling thread's errno slot, always valid.
    unsafe { *libc::__errno_location() }
}

pub(crate) fn set_errno(e: c_int) {
    // SAFETY: __errno_location returns the calling thread's errno slot, always valid.
    unsafe { *libc::__errno_location() = e };
}

/// clone3(2).
///
/// # Safety
/// Forks the calling process: the caller must make sure the child runs only
/// async-signal-safe code (a multi-threaded parent's locks stay taken in the child), and
/// every pointer in `args` must be valid for the kernel to write.
pub(crate) unsafe fn clone3(args: &mut libc::clone_args) -> c_long {
    // SAFETY: `args` is a live clone_args of the size passed; the caller holds up the rest.
    unsafe {
        libc::syscall(
            libc::SYS_clone3,
            args as *mut libc::clone_args,
            std::mem::size_of::<libc::clone_args>(),
        )
    }
}

/// clone(2) with fork semantics (no new stack). With `CLONE_PIDFD` the kernel writes the
/// pidfd to `pidfd`.
///
/// # Safety
/// Forks the calling process: the caller must make sure the child runs only
/// async-signal-safe code.
pub(crate) unsafe fn clone_legacy(flags: c_ulong, pidfd: &mut c_int) -> c_long {
    // SAFETY: no new stack (fork semantics); `pidfd` is a live int for the kernel to write;
    // the caller holds up what the child may run.
    unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags,
            0usize,
            pidfd as *mut c_int,
            std::ptr::null_mut::<c_int>(),
            0usize,
        )
    }
}

/// openat2(2): the new fd, or -1 (errno set).
pub(crate) fn openat2(dirfd: c_int, path: &CStr, flags: u64, resolve: u64) -> c_int {
    // SAFETY: open_how is plain integers; all zeroes is a valid value.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = flags;
    how.resolve = resolve;
    // SAFETY: `path` is NUL-terminated and `how` a live open_how of the size passed; the
    // kernel only reads them.
    unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dirfd,
            path.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        ) as c_int
    }
}

/// pivot_root(2).
pub(crate) fn pivot_root(new: &CStr, old: &CStr) -> c_int {
    // SAFETY: both paths are NUL-terminated strings that live through the call.
    unsafe { libc::syscall(libc::SYS_pivot_root, new.as_ptr(), old.as_ptr()) as c_int }
}

/// close_range(2). Closing fds is memory-safe here: its callers are the single-threaded
/// child, where no Rust object owns the fds closed (the plan's `OwnedFd`s are never dropped:
/// the child leaves by `execve` or `_exit`).
pub(crate) fn close_range(first: c_uint, last: c_uint, flags: c_uint) -> c_int {
    // SAFETY: integer arguments only.
    unsafe { libc::syscall(libc::SYS_close_range, first, last, flags) as c_int }
}

pub(crate) fn pidfd_open(pid: c_int) -> c_int {
    // SAFETY: plain syscall with integer arguments.
    unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) as c_int }
}

pub(crate) fn pidfd_send_signal(pidfd: c_int, sig: c_int) -> c_int {
    // SAFETY: plain syscall; a NULL siginfo is allowed.
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd,
            sig,
            std::ptr::null_mut::<libc::siginfo_t>(),
            0,
        ) as c_int
    }
}

#[repr(C)]
pub(crate) struct CapHeader {
    pub version: u32,
    pub pid: c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct CapData {
    pub effective: u32,
    pub permitted: u32,
    pub inheritable: u32,
}

pub(crate) const CAP_V3: u32 = 0x2008_0522;

/// capget(2) for the calling thread (version 3: two data structs).
pub(crate) fn capget(hdr: &mut CapHeader, data: &mut [CapData; 2]) -> c_int {
    // SAFETY: `hdr` and the two structs of `data` (what version 3 writes) are live and
    // writable for the call.
    unsafe { libc::syscall(libc::SYS_capget, hdr as *mut CapHeader, data.as_mut_ptr()) as c_int }
}

/// capset(2) for the calling thread (version 3: two data structs).
pub(crate) fn capset(hdr: &mut CapHeader, data: &[CapData; 2]) -> c_int {
    // SAFETY: `hdr` and the two structs of `data` (what version 3 reads) are live for the call.
    unsafe { libc::syscall(libc::SYS_capset, hdr as *mut CapHeader, data.as_ptr()) as c_int }
}

/// The host's highest capability number, from `/proc/sys/kernel/cap_last_cap` (40 if unreadable).
pub fn last_cap() -> u32 {
    // One read of a few bytes (`read_to_string` adds a statx and a second read).
    use std::io::Read;
    let mut buf = [0u8; 16];
    let n = std::fs::File::open("/proc/sys/kernel/cap_last_cap")
        .and_then(|mut f| f.read(&mut buf))
        .unwrap_or(0);
    std::str::from_utf8(buf.get(..n).unwrap_or_default())
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// The calling thread's permitted capabilities (bit N: capability N), from `capget(2)`;
/// `None` if it fails.
pub fn permitted_caps() -> Option<u64> {
    let mut hdr = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    if capget(&mut hdr, &mut data) < 0 {
        return None;
    }
    let [lo, hi] = data;
    Some(u64::from(lo.permitted) | (u64::from(hi.permitted) << 32))
}

/// The kernel's `struct statfs` on 64-bit Linux (glibc's lacks `f_flags`).
#[repr(C)]
#[derive(Default)]
pub(crate) struct KStatfs {
    pub f_type: libc::c_long,
    pub f_bsize: libc::c_long,
    pub f_blocks: u64,
    pub f_bfree: u64,
    pub f_bavail: u64,
    pub f_files: u64,
    pub f_ffree: u64,
    pub f_fsid: [c_int; 2],
    pub f_namelen: libc::c_long,
    pub f_frsize: libc::c_long,
    pub f_flags: libc::c_long,
    pub f_spare: [libc::c_long; 4],
}

/// fstatfs(2), the raw syscall (glibc's fstatvfs may read /proc/mounts and allocate).
pub(crate) fn fstatfs(fd: c_int, st: &mut KStatfs) -> c_int {
    // SAFETY: `st` is a live, writable struct statfs of the kernel's layout.
    unsafe { libc::syscall(libc::SYS_fstatfs, fd, st as *mut KStatfs) as c_int }
}

/// statfs(2), the raw syscall, as [`fstatfs`].
pub(crate) fn statfs(path: &CStr, st: &mut KStatfs) -> c_int {
    // SAFETY: `path` is NUL-terminated and lives through the call; `st` is a live, writable
    // struct statfs of the kernel's layout.
    unsafe { libc::syscall(libc::SYS_statfs, path.as_ptr(), st as *mut KStatfs) as c_int }
}

pub(crate) const OPEN_TREE_CLONE: c_uint = 1;
pub(crate) const AT_RECURSIVE: c_uint = 0x8000;
const MOVE_MOUNT_F_EMPTY_PATH: c_uint = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: c_uint = 0x40;

/// `open_tree(2)`: with `OPEN_TREE_CLONE`, a detached copy of the mount at `dirfd`/`path`
/// (recursive with `AT_RECURSIVE`), close-on-exec.
pub(crate) fn open_tree(dirfd: c_int, path: &CStr, flags: c_uint) -> c_int {
    // SAFETY: `path` is NUL-terminated and lives through the call.
    unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            dirfd,
            path.as_ptr(),
            flags | libc::O_CLOEXEC as c_uint,
        ) as c_int
    }
}

/// `move_mount(2)` of the mount `from` (an fd from `open_tree`) onto the file `to` is.
pub(crate) fn move_mount_fd(from: c_int, to: c_int) -> c_int {
    // SAFETY: the two paths are static empty C strings.
    unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from,
            c"".as_ptr(),
            to,
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        ) as c_int
    }
}

/// `move_mount(2)` of the detached mount `from` onto `name` in the directory `dir`: one
/// component, its last symlink not followed (no `MOVE_MOUNT_T_SYMLINKS`).
pub(crate) fn move_mount_at(from: c_int, dir: c_int, name: &CStr) -> c_int {
    // SAFETY: a static empty C string and `name`, NUL-terminated, live through the call.
    unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from,
            c"".as_ptr(),
            dir,
            name.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        ) as c_int
    }
}

/// `mount_setattr(2)` on the mount `fd` is (and the mounts below it with `AT_RECURSIVE`).
pub(crate) fn mount_setattr_fd(
    fd: c_int,
    flags: c_uint,
    set: u64,
    clr: u64,
    propagation: u64,
) -> c_int {
    let attr = libc::mount_attr {
        attr_set: set,
        attr_clr: clr,
        propagation,
        userns_fd: 0,
    };
    // SAFETY: a static empty path and a live mount_attr of the size passed, read only.
    unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd,
            c"".as_ptr(),
            libc::AT_EMPTY_PATH as c_uint | flags,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        ) as c_int
    }
}

/// The unique id (`STATX_MNT_ID_UNIQUE`, Linux 6.8) of the mount `fd` is on, or 0.
pub(crate) fn mount_id(fd: c_int) -> u64 {
    // SAFETY: statx is plain data; all zeroes is a valid value.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: a static empty path and a live, writable statx.
    let r = unsafe {
        libc::syscall(
            libc::SYS_statx,
            fd,
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            libc::STATX_MNT_ID_UNIQUE,
            &mut st as *mut libc::statx,
        )
    };
    if r < 0 || st.stx_mask & libc::STATX_MNT_ID_UNIQUE == 0 {
        return 0;
    }
    st.stx_mnt_id
}

/// The kernel's `struct mnt_id_req` (version 0).
#[repr(C)]
struct MntIdReq {
    size: u32,
    spare: u32,
    mnt_id: u64,
    param: u64,
}

const SYS_LISTMOUNT: c_long = 458;

/// `listmount(2)` of the mount `parent` (a unique id): the first mount on it whose id is
/// above `after` (0: none), or `None` if listmount fails.
pub(crate) fn first_child_after(parent: u64, after: u64) -> Option<u64> {
    let req = MntIdReq {
        size: std::mem::size_of::<MntIdReq>() as u32,
        spare: 0,
        mnt_id: parent,
        param: after,
    };
    let mut out: u64 = 0;
    // SAFETY: a live request of the size it names, and room for the one id asked for.
    let n = unsafe {
        libc::syscall(
            SYS_LISTMOUNT,
            &req as *const MntIdReq,
            &mut out as *mut u64,
            1usize,
            0u64,
        )
    };
    match n {
        0 => Some(0),
        1 => Some(out),
        _ => None,
    }
}

/// The `mount_setattr` set and clear that give a bind mount the flags of `mount(2)`'s
/// `MS_BIND|MS_REMOUNT|flags` as corral makes it (the mount's other flags kept, see
/// `locked_flags` in the child): the asked flags set, read-only cleared unless asked, and an
/// asked atime mode replacing the mount's (strictatime over noatime over relatime, as
/// `mount(2)` ranks them). Filesystem-wide flags (`sync`, `dirsync`, `lazytime`, ...) are not
/// a bind mount's and are ignored, as the remount ignores them.
pub(crate) fn bind_attr(flags: c_ulong) -> (u64, u64) {
    let mut set = 0;
    let mut clr = 0;
    for (ms, attr) in [
        (libc::MS_RDONLY, libc::MOUNT_ATTR_RDONLY),
        (libc::MS_NOSUID, libc::MOUNT_ATTR_NOSUID),
        (libc::MS_NODEV, libc::MOUNT_ATTR_NODEV),
        (libc::MS_NOEXEC, libc::MOUNT_ATTR_NOEXEC),
        (libc::MS_NODIRATIME, libc::MOUNT_ATTR_NODIRATIME),
        (libc::MS_NOSYMFOLLOW, libc::MOUNT_ATTR_NOSYMFOLLOW),
    ] {
        if flags & ms != 0 {
            set |= attr;
        }
    }
    if flags & libc::MS_RDONLY == 0 {
        clr |= libc::MOUNT_ATTR_RDONLY;
    }
    let atime = if flags & libc::MS_STRICTATIME != 0 {
        Some(libc::MOUNT_ATTR_STRICTATIME)
    } else if flags & libc::MS_NOATIME != 0 {
        Some(libc::MOUNT_ATTR_NOATIME)
    } else if flags & libc::MS_RELATIME != 0 {
        Some(libc::MOUNT_ATTR_RELATIME)
    } else {
        None
    };
    if let Some(mode) = atime {
        set |= mode;
        clr |= libc::MOUNT_ATTR__ATIME;
    }
    (set, clr)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bind_attr_mirrors_the_remount() {
        assert_eq!(
            bind_attr(libc::MS_RDONLY | libc::MS_NOSUID),
            (libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NOSUID, 0)
        );
        // Not asked read-only: the copy is made writable, as the remount does.
        assert_eq!(
            bind_attr(libc::MS_NODEV | libc::MS_SYNCHRONOUS),
            (libc::MOUNT_ATTR_NODEV, libc::MOUNT_ATTR_RDONLY)
        );
        assert_eq!(
            bind_attr(libc::MS_RDONLY | libc::MS_NOATIME | libc::MS_STRICTATIME),
            (
                libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_STRICTATIME,
                libc::MOUNT_ATTR__ATIME
            )
        );
        assert_eq!(
            bind_attr(libc::MS_RDONLY | libc::MS_RELATIME | libc::MS_NODIRATIME),
            (
                libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_RELATIME | libc::MOUNT_ATTR_NODIRATIME,
                libc::MOUNT_ATTR__ATIME
            )
        );
    }

    #[test]
    fn fd_path() {
        for (fd, want) in [
            (0, "/proc/self/fd/0"),
            (7, "/proc/self/fd/7"),
            (12345, "/proc/self/fd/12345"),
            (i32::MAX, "/proc/self/fd/2147483647"),
        ] {
            let p = FdPath::new(fd);
            // SAFETY: FdPath is NUL-terminated.
            let s = unsafe { std::ffi::CStr::from_ptr(p.as_ptr()) };
            assert_eq!(s.to_str().unwrap(), want);
        }
    }
}

//! The child's syscalls as safe functions: each takes references (C strings, plain structs,
//! slices) whose validity the borrow checker holds up, makes one call, and returns the
//! kernel's result as it is (-1 and errno on failure): nothing here allocates, locks or panics.
//!
//! Two facts of the child make closing and forking fds memory-safe here: it has one thread
//! (the clone copied only the calling one), and no Rust object in it owns a raw fd it closes
//! (the plan's `OwnedFd`s are never dropped: the child leaves by `execve` or `_exit`).
//!
//! The calls that take raw pointer arrays (`execve` of a late program, the exec shim) stay
//! `unsafe fn`s with their contract written down.
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unreachable,
    clippy::todo,
    clippy::unimplemented,
    clippy::string_slice
)]

use std::ffi::CStr;

use libc::{c_char, c_int, c_ulong};

use crate::plan::{CStringArray, SchedAttr};
use crate::proto::Msg;
use crate::sys::FdPath;

/// A NUL-terminated path that lives as long as the borrow: a C string or a
/// `/proc/self/fd/N` buffer.
pub(super) trait CPath {
    fn ptr(&self) -> *const c_char;
}

impl CPath for CStr {
    fn ptr(&self) -> *const c_char {
        self.as_ptr()
    }
}

impl CPath for FdPath {
    fn ptr(&self) -> *const c_char {
        self.as_ptr()
    }
}

fn opt<P: CPath + ?Sized>(p: Option<&P>) -> *const c_char {
    match p {
        Some(p) => p.ptr(),
        None => std::ptr::null(),
    }
}

/// close(2) of a raw fd (see the module's note).
pub(super) fn close(fd: c_int) {
    // SAFETY: an integer argument; no Rust object in the child owns `fd`.
    unsafe { libc::close(fd) };
}

/// _exit(2): leaves without running the host's atexit handlers.
pub(super) fn exit(code: c_int) -> ! {
    // SAFETY: ends the process; nothing of Rust's runs after it.
    unsafe { libc::_exit(code) }
}

pub(super) fn open(path: &CStr, flags: c_int, mode: libc::mode_t) -> c_int {
    // SAFETY: `path` is NUL-terminated and lives through the call.
    unsafe { libc::open(path.as_ptr(), flags, mode) }
}

pub(super) fn openat(dir: c_int, name: &CStr, flags: c_int, mode: libc::mode_t) -> c_int {
    // SAFETY: `name` is NUL-terminated and lives through the call.
    unsafe { libc::openat(dir, name.as_ptr(), flags, mode) }
}

pub(super) fn write(fd: c_int, b: &[u8]) -> isize {
    // SAFETY: the kernel reads at most `b.len()` bytes of `b`.
    unsafe { libc::write(fd, b.as_ptr().cast(), b.len()) }
}

pub(super) fn read(fd: c_int, b: &mut [u8]) -> isize {
    // SAFETY: the kernel writes at most `b.len()` bytes into `b`, which is ours to write.
    unsafe { libc::read(fd, b.as_mut_ptr().cast(), b.len()) }
}

/// fcntl(2) with an integer argument (F_DUPFD_CLOEXEC, F_SETFD, F_SETFL).
pub(super) fn fcntl(fd: c_int, cmd: c_int, arg: c_int) -> c_int {
    // SAFETY: the commands used take an integer argument, never a pointer.
    unsafe { libc::fcntl(fd, cmd, arg) }
}

pub(super) fn dup2(from: c_int, to: c_int) -> c_int {
    // SAFETY: integer arguments; `to` is replaced, which no Rust object owns (module note).
    unsafe { libc::dup2(from, to) }
}

pub(super) fn dup3(from: c_int, to: c_int, flags: c_int) -> c_int {
    // SAFETY: as `dup2`.
    unsafe { libc::dup3(from, to, flags) }
}

/// prctl(2) with integer arguments only (every option the child uses).
pub(super) fn prctl(op: c_int, a: c_ulong, b: c_ulong) -> c_int {
    // SAFETY: the options used read no pointer; the unused arguments are 0.
    unsafe { libc::prctl(op, a, b, 0 as c_ulong, 0 as c_ulong) }
}

pub(super) fn setns(fd: c_int, kind: c_int) -> c_int {
    // SAFETY: integer arguments.
    unsafe { libc::setns(fd, kind) }
}

pub(super) fn unshare(flags: c_int) -> c_int {
    // SAFETY: integer argument; the child is single-threaded, as CLONE_NEWUSER needs.
    unsafe { libc::unshare(flags) }
}

pub(super) fn sethostname(name: &CStr) -> c_int {
    let b = name.to_bytes();
    // SAFETY: the kernel reads `b.len()` bytes of `name`.
    unsafe { libc::sethostname(b.as_ptr().cast(), b.len()) }
}

pub(super) fn setdomainname(name: &CStr) -> c_int {
    let b = name.to_bytes();
    // SAFETY: the kernel reads `b.len()` bytes of `name`.
    unsafe { libc::setdomainname(b.as_ptr().cast(), b.len()) }
}

pub(super) fn umask(mode: libc::mode_t) {
    // SAFETY: integer argument.
    unsafe { libc::umask(mode) };
}

pub(super) fn setsid() -> c_int {
    // SAFETY: no arguments.
    unsafe { libc::setsid() }
}

pub(super) fn setrlimit(resource: c_int, soft: u64, hard: u64) -> c_int {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: `lim` is a live rlimit the kernel only reads.
    unsafe { libc::setrlimit(resource as _, &lim) }
}

/// The soft limit on open files, if it can be read.
pub(super) fn nofile_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a live rlimit for the kernel to write.
    (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0).then_some(lim.rlim_cur)
}

/// mount(2). `data` is a C string: every mount the child makes passes text options or none.
pub(super) fn mount<S: CPath + ?Sized, T: CPath + ?Sized>(
    source: Option<&S>,
    target: &T,
    fstype: Option<&CStr>,
    flags: c_ulong,
    data: Option<&CStr>,
) -> c_int {
    // SAFETY: every pointer is NULL or a NUL-terminated string that lives through the call.
    unsafe {
        libc::mount(
            opt(source),
            target.ptr(),
            opt(fstype),
            flags,
            opt(data).cast(),
        )
    }
}

pub(super) fn umount2(target: &CStr, flags: c_int) -> c_int {
    // SAFETY: `target` is NUL-terminated and lives through the call.
    unsafe { libc::umount2(target.as_ptr(), flags) }
}

pub(super) fn chroot(path: &CStr) -> c_int {
    // SAFETY: `path` is NUL-terminated and lives through the call.
    unsafe { libc::chroot(path.as_ptr()) }
}

pub(super) fn chdir(path: &CStr) -> c_int {
    // SAFETY: `path` is NUL-terminated and lives through the call.
    unsafe { libc::chdir(path.as_ptr()) }
}

pub(super) fn fchdir(fd: c_int) -> c_int {
    // SAFETY: integer argument.
    unsafe { libc::fchdir(fd) }
}

pub(super) fn mkdirat(dir: c_int, name: &CStr, mode: libc::mode_t) -> c_int {
    // SAFETY: `name` is NUL-terminated and lives through the call.
    unsafe { libc::mkdirat(dir, name.as_ptr(), mode) }
}

pub(super) fn mknodat(dir: c_int, name: &CStr, mode: libc::mode_t, dev: libc::dev_t) -> c_int {
    // SAFETY: `name` is NUL-terminated and lives through the call.
    unsafe { libc::mknodat(dir, name.as_ptr(), mode, dev) }
}

pub(super) fn fchownat(dir: c_int, name: &CStr, uid: u32, gid: u32, flags: c_int) -> c_int {
    // SAFETY: `name` is NUL-terminated and lives through the call.
    unsafe { libc::fchownat(dir, name.as_ptr(), uid, gid, flags) }
}

pub(super) fn symlinkat(target: &CStr, dir: c_int, name: &CStr) -> c_int {
    // SAFETY: both strings are NUL-terminated and live through the call.
    unsafe { libc::symlinkat(target.as_ptr(), dir, name.as_ptr()) }
}

pub(super) fn unlinkat(dir: c_int, name: &CStr, flags: c_int) -> c_int {
    // SAFETY: `name` is NUL-terminated and lives through the call.
    unsafe { libc::unlinkat(dir, name.as_ptr(), flags) }
}

/// An all-zero `struct stat`, for the kernel to fill.
pub(super) fn zeroed_stat() -> libc::stat {
    // SAFETY: struct stat is plain integers; all zeroes is a valid value.
    unsafe { std::mem::zeroed() }
}

pub(super) fn fstat(fd: c_int, st: &mut libc::stat) -> c_int {
    // SAFETY: `st` is a live struct stat for the kernel to write.
    unsafe { libc::fstat(fd, st) }
}

pub(super) fn stat(path: &CStr, st: &mut libc::stat) -> c_int {
    // SAFETY: `path` is NUL-terminated; `st` is a live struct stat for the kernel to write.
    unsafe { libc::stat(path.as_ptr(), st) }
}

/// faccessat(2), the raw syscall (glibc's may check with the effective ids in user space).
pub(super) fn faccessat(path: &CStr, mode: c_int) -> c_int {
    // SAFETY: `path` is NUL-terminated and lives through the call.
    unsafe { libc::syscall(libc::SYS_faccessat, libc::AT_FDCWD, path.as_ptr(), mode) as c_int }
}

pub(super) fn socket(domain: c_int, kind: c_int) -> c_int {
    // SAFETY: integer arguments.
    unsafe { libc::socket(domain, kind, 0) }
}

/// ioctl(2) whose argument is an integer (TIOCGPTPEER, TIOCSCTTY).
pub(super) fn ioctl_int(fd: c_int, req: c_ulong, arg: c_int) -> c_int {
    // SAFETY: the requests used take an integer, never a pointer.
    unsafe { libc::ioctl(fd, req as _, arg) }
}

/// ioctl(2) whose argument points to an int the kernel reads (TIOCSPTLCK).
pub(super) fn ioctl_int_ptr(fd: c_int, req: c_ulong, arg: &c_int) -> c_int {
    // SAFETY: `arg` is a live int; the requests used read one int through it.
    unsafe { libc::ioctl(fd, req as _, arg as *const c_int) }
}

/// ioctl(2) on an interface request (SIOCGIFFLAGS, SIOCSIFFLAGS).
pub(super) fn ioctl_ifreq(fd: c_int, req: c_ulong, ifr: &mut libc::ifreq) -> c_int {
    // SAFETY: `ifr` is a live, writable ifreq, what these requests read and write.
    unsafe { libc::ioctl(fd, req as _, ifr as *mut libc::ifreq) }
}

/// An all-zero `struct ifreq`.
pub(super) fn zeroed_ifreq() -> libc::ifreq {
    // SAFETY: ifreq is plain integers and unions of them; all zeroes is valid.
    unsafe { std::mem::zeroed() }
}

pub(super) fn personality(p: c_ulong) -> c_int {
    // SAFETY: integer argument.
    unsafe { libc::personality(p) }
}

// Raw credential syscalls. glibc's wrappers (setresuid, setgroups, ...) believe the process
// still has the parent's threads (a raw clone does not reset glibc's thread list as fork()
// does) and run their all-threads broadcast, which takes a lock another parent thread may
// hold at the moment of the clone: a deadlock, seen here once in a few hundred spawns from a
// busy threaded host. Credentials are per thread in the kernel, and this process has one.
pub(super) fn setresuid(id: u32) -> c_int {
    // SAFETY: integer arguments.
    unsafe { libc::syscall(libc::SYS_setresuid, id, id, id) as c_int }
}

pub(super) fn setresgid(id: u32) -> c_int {
    // SAFETY: integer arguments.
    unsafe { libc::syscall(libc::SYS_setresgid, id, id, id) as c_int }
}

pub(super) fn setgroups(gids: &[libc::gid_t]) -> c_int {
    // SAFETY: the kernel reads `gids.len()` ids from `gids`.
    unsafe { libc::syscall(libc::SYS_setgroups, gids.len(), gids.as_ptr()) as c_int }
}

/// keyctl(KEYCTL_JOIN_SESSION_KEYRING, name): the keyring's id, or -1.
pub(super) fn keyctl_join(name: &CStr) -> libc::c_long {
    const KEYCTL_JOIN_SESSION_KEYRING: c_int = 1;
    // SAFETY: `name` is NUL-terminated and lives through the call.
    unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) }
}

/// keyctl(KEYCTL_SETPERM, id, perm).
pub(super) fn keyctl_setperm(id: libc::c_long, perm: u32) -> libc::c_long {
    const KEYCTL_SETPERM: c_int = 5;
    // SAFETY: integer arguments.
    unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_SETPERM, id, perm) }
}

pub(super) fn sched_setattr(a: &SchedAttr) -> libc::c_long {
    // SAFETY: `a` is a live sched_attr (its `size` field says how much the kernel reads).
    unsafe { libc::syscall(libc::SYS_sched_setattr, 0, a as *const SchedAttr, 0) }
}

/// ioprio_set(IOPRIO_WHO_PROCESS, this process, value).
pub(super) fn ioprio_set(value: c_int) -> libc::c_long {
    // SAFETY: integer arguments.
    unsafe { libc::syscall(libc::SYS_ioprio_set, 1, 0, value) }
}

/// set_mempolicy(2). The plan sized `mask` for `maxnode` bits.
pub(super) fn set_mempolicy(mode: c_int, mask: &[c_ulong], maxnode: c_ulong) -> libc::c_long {
    let ptr = if mask.is_empty() {
        std::ptr::null()
    } else {
        mask.as_ptr()
    };
    // SAFETY: `ptr` is NULL or `mask`, which the plan made `maxnode` bits long; the kernel
    // only reads it.
    unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, ptr, maxnode) }
}

/// seccomp(SECCOMP_SET_MODE_FILTER, flags, filter): the listener fd, 0, or -1.
pub(super) fn seccomp_filter(filter: &[libc::sock_filter], flags: u32) -> libc::c_long {
    const SECCOMP_SET_MODE_FILTER: libc::c_long = 1;
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` points to `filter` (its length checked by the parent to fit u16), both
    // live through the call; the kernel only reads them.
    unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            flags as c_ulong,
            &prog as *const libc::sock_fprog,
        )
    }
}

pub(super) fn pipe2(fds: &mut [c_int; 2], flags: c_int) -> c_int {
    // SAFETY: `fds` is room for the two fds the kernel writes.
    unsafe { libc::pipe2(fds.as_mut_ptr(), flags) }
}

pub(super) fn lseek_start(fd: c_int) {
    // SAFETY: integer arguments.
    unsafe { libc::lseek(fd, 0, libc::SEEK_SET) };
}

pub(super) fn kill(pid: libc::pid_t, sig: c_int) {
    // SAFETY: integer arguments.
    unsafe { libc::kill(pid, sig) };
}

pub(super) fn waitpid(pid: libc::pid_t, status: &mut c_int) -> libc::pid_t {
    // SAFETY: `status` is a live int for the kernel to write.
    unsafe { libc::waitpid(pid, status, 0) }
}

pub(super) fn poll(fds: &mut [libc::pollfd], timeout: c_int) -> c_int {
    // SAFETY: the kernel reads and writes `fds.len()` entries of `fds`.
    unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) }
}

/// Milliseconds on the monotonic clock.
pub(super) fn now_ms() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a live timespec for the kernel to write.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec
        .saturating_mul(1000)
        .saturating_add(ts.tv_nsec / 1_000_000)
}

/// Every signal, for [`default_signals`] where the dispositions are not known.
pub(super) const ALL_SIGNALS: u64 = u64::MAX;

/// The signals whose disposition is not the default in this process (ignored or caught:
/// `SigIgn | SigCgt` of its `/proc/thread-self/status`, bit N-1 for signal N), or
/// [`ALL_SIGNALS`] when they cannot be read. An ignored signal stays ignored across
/// `execve` (a caught one is reset by it, but would run the host's handler in this process if
/// it came between the mask's emptying and the exec); any other is at its default already.
/// Three syscalls instead of one per signal: a host (Rust's std ignores SIGPIPE, Python
/// ignores or catches a few) changes only a handful.
pub(super) fn changed_signals() -> u64 {
    let fd = open(
        c"/proc/thread-self/status",
        libc::O_RDONLY | libc::O_CLOEXEC,
        0,
    );
    if fd < 0 {
        return ALL_SIGNALS;
    }
    let mut buf = [0u8; 4096];
    let mut len = 0usize;
    let mut out = ALL_SIGNALS;
    while let Some(room) = buf.get_mut(len..) {
        if room.is_empty() {
            break;
        }
        let n = read(fd, room);
        if n <= 0 {
            break;
        }
        len = len.saturating_add(n as usize);
        // Both lines whole in what was read so far: done (one read, as a rule).
        if let Some(sigs) = buf.get(..len).and_then(status_signals) {
            out = sigs;
            break;
        }
    }
    close(fd);
    out
}

/// `SigIgn | SigCgt` of a `/proc/PID/status` text: `None` unless both lines are there whole.
pub(super) fn status_signals(text: &[u8]) -> Option<u64> {
    let (mut ign, mut cgt) = (None, None);
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix(b"SigIgn:\t") {
            let (v, tail) = hex_line(after)?;
            ign = Some(v);
            rest = tail;
        } else if let Some(after) = rest.strip_prefix(b"SigCgt:\t") {
            let (v, tail) = hex_line(after)?;
            cgt = Some(v);
            rest = tail;
        } else {
            rest = skip_line(rest);
        }
        if let (Some(i), Some(c)) = (ign, cgt) {
            return Some(i | c);
        }
    }
    None
}

/// A hex number that ends its line, and the text after the line; `None` if the line is not
/// whole (no newline) or not such a number.
fn hex_line(s: &[u8]) -> Option<(u64, &[u8])> {
    let mut v: u64 = 0;
    let mut digits = 0u32;
    let mut rest = s;
    while let Some((&c, tail)) = rest.split_first() {
        rest = tail;
        let d = match c {
            b'0'..=b'9' => c.wrapping_sub(b'0'),
            b'a'..=b'f' => c.wrapping_sub(b'a').wrapping_add(10),
            b'A'..=b'F' => c.wrapping_sub(b'A').wrapping_add(10),
            b'\n' if digits > 0 => return Some((v, rest)),
            _ => return None,
        };
        v = v.checked_mul(16)? | u64::from(d);
        digits = digits.saturating_add(1);
    }
    None
}

/// The text after the first newline of `s` (empty if there is none).
fn skip_line(s: &[u8]) -> &[u8] {
    let mut rest = s;
    while let Some((&c, tail)) = rest.split_first() {
        rest = tail;
        if c == b'\n' {
            break;
        }
    }
    rest
}

/// Default dispositions for the signals in `which` (bit N-1: signal N; see
/// [`changed_signals`]) and an empty mask, for a new program.
pub(super) fn default_signals(which: u64) {
    // The kernel's struct sigaction, all zero: SIG_DFL, no flags, an empty mask, whichever
    // of its layouts (with or without `sa_restorer`) the architecture reads.
    let dfl = [0u64; 4];
    let mut bits = which;
    let mut sig: c_int = 1;
    while bits != 0 && sig < 65 {
        if bits & 1 != 0 && sig != libc::SIGKILL && sig != libc::SIGSTOP {
            // The raw syscall: glibc's signal() refuses its own two real-time signals (32 and
            // 33), which a host may have ignored too (cargo leaves both ignored for the
            // processes it starts), and an ignored signal survives execve.
            // SAFETY: `dfl` is a live, zeroed kernel sigaction the kernel only reads; no old
            // action is asked for (NULL); the set size is the kernel's (64 signals).
            unsafe {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    sig,
                    dfl.as_ptr(),
                    std::ptr::null_mut::<u64>(),
                    8usize,
                )
            };
        }
        bits = bits.wrapping_shr(1);
        sig = sig.saturating_add(1);
    }
    // SAFETY: sigset_t is plain data; all zeroes is a valid (then emptied) set.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a live sigset for these calls to write and read; the old mask is not
    // asked for (NULL).
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// Sends one message on the sync socket (a failure shows on the parent's side as a missing
/// message).
pub(super) fn send(sock: c_int, m: &Msg) {
    // SAFETY: the kernel reads the `size_of::<Msg>()` bytes of `m`, a plain repr(C) struct.
    unsafe {
        libc::send(
            sock,
            (m as *const Msg).cast(),
            std::mem::size_of::<Msg>(),
            libc::MSG_NOSIGNAL,
        )
    };
}

/// Receives one message from the sync socket into `m`: the byte count, or -1.
pub(super) fn recv(sock: c_int, m: &mut Msg) -> isize {
    // SAFETY: the kernel writes at most `size_of::<Msg>()` bytes into `m`, a plain repr(C)
    // struct that any bytes make valid.
    unsafe { libc::recv(sock, (m as *mut Msg).cast(), std::mem::size_of::<Msg>(), 0) }
}

/// fork(2) as a raw clone with `flags` (the exit signal and CLONE_* bits, never a new
/// stack); with `CLONE_PIDFD` the pidfd goes to `pidfd`. Returns 0 in the new process.
pub(super) fn fork(flags: c_ulong, pidfd: &mut c_int) -> libc::c_long {
    // SAFETY: this process has one thread, so no lock is held by a thread the copy lacks;
    // both copies go on in child code only (no allocation, no locks), and `pidfd` is a live
    // int for the kernel to write.
    unsafe { crate::sys::clone_legacy(flags, pidfd) }
}

/// execve(2) of `path` with the plan's argument and environment arrays: returns only on
/// failure.
pub(super) fn execve(path: &CStr, argv: &CStringArray, envp: &CStringArray) {
    // SAFETY: a CStringArray is a NULL-terminated array of pointers to the NUL-terminated
    // strings it owns; all three live through the call.
    unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
}

/// execve(2) with raw arrays: returns only on failure.
///
/// # Safety
/// `argv` and `envp` must be NULL-terminated arrays of pointers to NUL-terminated strings,
/// valid through the call.
pub(super) unsafe fn execve_raw(
    path: &CStr,
    argv: *const *const c_char,
    envp: *const *const c_char,
) {
    // SAFETY: `path` is a C string; the caller holds up `argv` and `envp`.
    unsafe { libc::execve(path.as_ptr(), argv, envp) };
}

/// `execveat(shim, "", argv, envp, AT_EMPTY_PATH)`: returns only on failure.
///
/// # Safety
/// As [`execve_raw`]: `argv` and `envp` NULL-terminated arrays of C strings (for the shim,
/// `envp` is its layout: candidates, `""`, environment, NULL).
pub(super) unsafe fn execveat_shim(
    shim: c_int,
    argv: *const *const c_char,
    envp: *const *const c_char,
) {
    // SAFETY: a static empty path; the caller holds up `argv` and `envp`.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            shim,
            c"".as_ptr(),
            argv,
            envp,
            libc::AT_EMPTY_PATH,
        )
    };
}

#[cfg(test)]
mod tests {
    use super::status_signals;

    #[test]
    fn status_signals_are_the_ignored_and_caught_ones() {
        let text = b"Name:\tx\nSigQ:\t0/1\nSigPnd:\t0000000000000001\nShdPnd:\t0000000000000000\n\
SigBlk:\t0000000000000002\nSigIgn:\t0000000000001000\nSigCgt:\t0000000180000a00\nCapInh:\t0\n";
        assert_eq!(status_signals(text), Some(0x0000_0001_8000_1a00));
        // A line cut short (a partial read), or one missing: not known.
        assert_eq!(
            status_signals(b"SigIgn:\t0000000000001000\nSigCgt:\t00000"),
            None
        );
        assert_eq!(status_signals(b"SigIgn:\t0000000000001000\n"), None);
        assert_eq!(status_signals(b"SigIgn:\tzz\nSigCgt:\t0\n"), None);
        // Only at the start of a line.
        assert_eq!(
            status_signals(b"X SigIgn:\t1\nSigIgn:\t2\nSigCgt:\t4\n"),
            Some(6)
        );
    }
}

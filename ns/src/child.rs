//! The container process between the clone and `execve`.
//!
//! Rules for every line in this file: no allocation, no locks, no panics (no indexing that can
//! fail, no unwrap), no Rust std I/O, no logging. Only raw syscalls over the prepared [`Plan`].
//! A failure is sent to the parent as `(step, errno, index)` and the process exits.
//!
//! The lints below hold those rules with the compiler, and `ns/tests/child_code.rs` checks the
//! release build: nothing reachable from [`run`] may call the allocator or a panic routine.
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

use libc::{c_int, c_ulong};

use crate::plan::{Hook, Mount, Plan, Target};
use crate::spawn::{msg, ChildArgs, Msg, GATE_HOOK, GATE_OK, GATE_REPORT_MAX};
use crate::sys::{self, errno, FdPath};
use crate::{Kind, Step};

type Fail = (Step, c_int, u32);
type R<T = ()> = Result<T, Fail>;

/// `s.iter().enumerate()` without `enumerate`'s overflow check, which a build with overflow
/// checks keeps as a panic path: the index comes from a bounded range.
fn indexed<T>(s: &[T]) -> impl Iterator<Item = (usize, &T)> {
    (0..s.len()).zip(s.iter())
}

fn fail<T>(step: Step, idx: usize) -> R<T> {
    Err((step, errno(), idx as u32))
}

fn check(ret: c_int, step: Step, idx: usize) -> R<c_int> {
    if ret < 0 {
        fail(step, idx)
    } else {
        Ok(ret)
    }
}

struct Fd(c_int);

impl Drop for Fd {
    fn drop(&mut self) {
        if self.0 >= 0 {
            // SAFETY: closing an fd this process owns.
            unsafe { libc::close(self.0) };
        }
    }
}

fn send(sock: c_int, m: Msg) {
    // SAFETY: sending a plain struct over a socket.
    unsafe {
        libc::send(
            sock,
            (&m as *const Msg).cast(),
            std::mem::size_of::<Msg>(),
            libc::MSG_NOSIGNAL,
        )
    };
}

fn expect(sock: c_int, tag: u32) -> R {
    let mut m = Msg::default();
    loop {
        // SAFETY: receiving into a plain struct owned by this frame.
        let n = unsafe {
            libc::recv(
                sock,
                (&mut m as *mut Msg).cast(),
                std::mem::size_of::<Msg>(),
                0,
            )
        };
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        if n != std::mem::size_of::<Msg>() as isize || m.tag != tag {
            return Err((Step::Sync, if n < 0 { errno() } else { libc::EPROTO }, tag));
        }
        return Ok(());
    }
}

/// Entry point of the child. Never returns.
///
/// # Safety
/// Must be called only in the child right after the clone, with the parent's plan.
#[inline(never)]
pub(crate) unsafe fn run(plan: &Plan, args: &ChildArgs, sock: c_int, parent_sock: c_int) -> ! {
    // Not dumpable from the first instruction (CVE-2019-5736): until it execs, this process
    // is a copy of the runtime holding the runtime's fds, and a process of the container must
    // not reach it through /proc/PID/{fd,exe,mem}. Only a child whose unprivileged parent must
    // still write its id maps waits for GO; it is alone in new namespaces until then.
    let dumpable_until_go = args.dumpable_for_maps && plan.join_ns.is_empty();
    // The time namespace's offsets file is this process's own /proc file: opened before it is
    // non-dumpable and changes credentials (then only the host's root may open it), written
    // once the namespace exists.
    let timens = open_timens(plan, args.first);
    let early = if dumpable_until_go {
        Ok(())
    } else {
        set_dumpable(false)
    };
    let (step, err, idx) = match early.and_then(|()| setup(plan, args, sock, parent_sock, timens)) {
        Ok(()) => (Step::Exec, libc::ENOENT, 0),
        Err(f) => f,
    };
    send(
        sock,
        Msg {
            tag: msg::ERR,
            a: step as u32 as i32,
            b: err,
            c: idx,
        },
    );
    libc::_exit(127)
}

/// Opens /proc/self/timens_offsets (at an fd past the preserved ones) when the plan writes
/// time offsets; -1 otherwise or on failure (reported when it is written).
unsafe fn open_timens(plan: &Plan, first: c_int) -> c_int {
    if plan.time_offsets.is_none() || !plan.creates(Kind::Time) {
        return -1;
    }
    let fd = libc::open(
        c"/proc/self/timens_offsets".as_ptr(),
        libc::O_WRONLY | libc::O_CLOEXEC,
    );
    if fd < 0 || fd >= first {
        return fd;
    }
    let high = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, first);
    libc::close(fd);
    high
}

unsafe fn set_dumpable(on: bool) -> R {
    check(
        libc::prctl(libc::PR_SET_DUMPABLE, c_ulong::from(on), 0, 0, 0),
        Step::Dumpable,
        0,
    )
    .map(|_| ())
}

/// Closes every fd from `first` on except `keep` (sorted): nothing of the runtime's may stay
/// open in the process longer than it is needed, and the caller's fds past the preserved
/// ones never reach the container (CVE-2024-21626).
unsafe fn close_others(keep: &[c_int], first: c_int, extra: c_int) -> R {
    let mut from = first.max(3) as u32;
    let mut extra_left = extra >= 0;
    let mut rest = keep.iter().copied().peekable();
    loop {
        // The next fd to keep, in order: from `keep` (sorted) or `extra`.
        let next = match rest.peek().copied() {
            Some(k) if extra_left && extra < k => {
                extra_left = false;
                extra
            }
            Some(_) => rest.next().unwrap_or(-1),
            None if extra_left => {
                extra_left = false;
                extra
            }
            None => break,
        };
        if next < 0 || (next as u32) < from {
            continue;
        }
        let k = next as u32;
        if k > from && sys::close_range(from, k.saturating_sub(1), 0) < 0 {
            close_loop(from, k, keep, extra);
        }
        from = k.saturating_add(1);
    }
    if sys::close_range(from, u32::MAX, 0) < 0 {
        let mut lim: libc::rlimit = std::mem::zeroed();
        let max = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur.min(1 << 20) as u32
        } else {
            1 << 16
        };
        close_loop(from, max, keep, extra);
    }
    Ok(())
}

/// Without close_range(2): close `from .. to` one by one, sparing `keep` and `extra`.
unsafe fn close_loop(from: u32, to: u32, keep: &[c_int], extra: c_int) {
    let mut fd = from;
    while fd < to {
        let n = fd as c_int;
        if n != extra && !keep.contains(&n) {
            libc::close(n);
        }
        fd = fd.saturating_add(1);
    }
}

unsafe fn setup(
    plan: &Plan,
    args: &ChildArgs,
    sock: c_int,
    parent_sock: c_int,
    timens: c_int,
) -> R {
    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
    libc::close(parent_sock);
    // Into the container's v1 cgroups by itself, before it does anything else (see
    // `CgroupTasks`: no wait for an RCU grace period, unlike a pid the parent writes).
    for (i, t) in indexed(&plan.cgroup_tasks) {
        let fd = fd_of(&t.fd);
        let n = libc::write(fd, c"0".as_ptr().cast(), 1);
        let e = errno();
        libc::close(fd);
        if n != 1 {
            return Err((
                Step::CgroupJoin,
                if n < 0 { e } else { libc::EIO },
                i as u32,
            ));
        }
    }
    for fd in &plan.close_fds {
        libc::close(*fd);
    }
    close_others(&args.keep, args.first, timens)?;
    libc::umask(0);
    // The host's /proc, for the security-module attribute files (see `Plan::attr_root`).
    let attr_root = match &plan.attr_root {
        Some(p) => {
            let fd = libc::open(
                p.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            );
            if fd < 0 {
                return fail(
                    Step::SecurityLabel,
                    plan.process.exec_labels.len().saturating_add(1),
                );
            }
            Fd(fd)
        }
        None => Fd(-1),
    };
    expect(sock, msg::GO)?;
    let slow = !plan.join_ns.is_empty();
    if args.dumpable_for_maps && !slow {
        set_dumpable(false)?;
    }

    if !slow {
        become_ns_root(plan)?;
    }
    // Joined user namespace first: it decides what the rest may do.
    for (i, j) in indexed(&plan.join_ns) {
        if j.kind == Kind::User {
            check(
                libc::setns(fd_of(&j.fd), libc::CLONE_NEWUSER),
                Step::Setns,
                i,
            )?;
        }
    }
    if slow {
        if plan.creates(Kind::User) {
            check(
                libc::unshare(libc::CLONE_NEWUSER),
                Step::Unshare,
                libc::CLONE_NEWUSER as usize,
            )?;
            // An unprivileged parent can write the maps of a dumpable process only. This one
            // is still in the runtime's pid namespace, out of the container's sight.
            if args.dumpable_for_maps {
                set_dumpable(true)?;
            }
            send(
                sock,
                Msg {
                    tag: msg::MAPS,
                    ..Msg::default()
                },
            );
            expect(sock, msg::MAPS_OK)?;
            if args.dumpable_for_maps {
                set_dumpable(false)?;
            }
        }
        become_ns_root(plan)?;
        for (i, j) in indexed(&plan.join_ns) {
            if j.kind != Kind::User {
                check(libc::setns(fd_of(&j.fd), j.kind.flag()), Step::Setns, i)?;
            }
        }
        for j in &plan.join_ns {
            libc::close(fd_of(&j.fd));
        }
        for k in [Kind::Mount, Kind::Net, Kind::Ipc, Kind::Uts] {
            if plan.creates(k) {
                check(libc::unshare(k.flag()), Step::Unshare, k.flag() as usize)?;
            }
        }
    }
    // The cgroup namespace is made after the parent placed us in our cgroup, so that its root
    // is the container's cgroup.
    if plan.creates(Kind::Cgroup) {
        check(
            libc::unshare(libc::CLONE_NEWCGROUP),
            Step::Unshare,
            libc::CLONE_NEWCGROUP as usize,
        )?;
    }
    // The time namespace: its offsets are written before any process is in it (a process
    // after the second fork enters it at its birth, this one at exec).
    if plan.creates(Kind::Time) {
        check(
            libc::unshare(libc::CLONE_NEWTIME),
            Step::Unshare,
            libc::CLONE_NEWTIME as usize,
        )?;
        if let Some(off) = &plan.time_offsets {
            let fd = Fd(timens);
            if fd.0 < 0 {
                return fail(Step::TimeOffsets, 0);
            }
            let b = off.to_bytes();
            let n = libc::write(fd.0, b.as_ptr().cast(), b.len());
            if n < 0 {
                return fail(Step::TimeOffsets, 0);
            }
            if n as usize != b.len() {
                return Err((Step::TimeOffsets, libc::EIO, 0));
            }
        }
    }
    let joins_pid = plan.join_ns.iter().any(|j| j.kind == Kind::Pid);
    if slow && (plan.creates(Kind::Pid) || joins_pid) {
        if plan.creates(Kind::Pid) {
            check(
                libc::unshare(libc::CLONE_NEWPID),
                Step::Unshare,
                libc::CLONE_NEWPID as usize,
            )?;
        }
        // The second fork: only a child enters the pid namespace. CLONE_PARENT makes the
        // runtime its parent, so that it can wait for it.
        let pid = sys::clone_legacy(
            (libc::CLONE_PARENT | libc::SIGCHLD) as c_ulong,
            std::ptr::null_mut(),
        );
        if pid < 0 {
            return fail(Step::ForkPid, 0);
        }
        if pid > 0 {
            send(
                sock,
                Msg {
                    tag: msg::PID,
                    a: pid as i32,
                    ..Msg::default()
                },
            );
            libc::_exit(0);
        }
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        // The runtime may have died before the line above: then its end of the socket is
        // closed, and this process must not go on alone.
        let mut p = libc::pollfd {
            fd: sock,
            events: libc::POLLRDHUP,
            revents: 0,
        };
        if libc::poll(&mut p, 1, 0) > 0 && p.revents & (libc::POLLHUP | libc::POLLRDHUP) != 0 {
            libc::_exit(1);
        }
    }
    if plan.creates(Kind::Net) {
        loopback_up()?;
    }
    if let Some(h) = &plan.hostname {
        check(
            libc::sethostname(h.as_ptr(), h.to_bytes().len()),
            Step::Hostname,
            0,
        )?;
    }
    if let Some(d) = &plan.domainname {
        check(
            libc::setdomainname(d.as_ptr(), d.to_bytes().len()),
            Step::Domainname,
            0,
        )?;
    }
    for (i, (path, value)) in indexed(&plan.sysctls) {
        write_file(path, value, Step::Sysctl, i)?;
    }
    if let Some(v) = &plan.oom_score_adj {
        write_file(c"/proc/self/oom_score_adj", v, Step::OomScoreAdj, 0)?;
    }
    if let Some(k) = &plan.keyring {
        session_keyring(k, attr_root.0, plan.process.exec_labels.len())?;
    }
    // The exec labels go to this thread's own attribute files, in the host's /proc; opened now,
    // by the process that will exec.
    let mut labels = [Fd(-1), Fd(-1)];
    for (i, a) in indexed(&plan.process.exec_labels) {
        match labels.get_mut(i) {
            Some(l) => *l = open_attr(attr_root.0, a, i)?,
            None => return Err((Step::SecurityLabel, libc::E2BIG, i as u32)),
        }
    }
    if let Some(r) = &plan.rootfs {
        rootfs(r, plan.hook_pause, sock)?;
    }
    process(plan, args, sock, &labels)
}

unsafe fn open_attr(root: c_int, a: &crate::plan::LsmAttr, idx: usize) -> R<Fd> {
    let fd = libc::openat(
        root,
        a.file.as_ptr(),
        libc::O_WRONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
    );
    if fd < 0 {
        return fail(Step::SecurityLabel, idx);
    }
    Ok(Fd(fd))
}

unsafe fn write_attr(fd: c_int, a: &crate::plan::LsmAttr, idx: usize) -> R {
    let b = a.value.to_bytes();
    let n = libc::write(fd, b.as_ptr().cast(), b.len());
    if n < 0 {
        return fail(Step::SecurityLabel, idx);
    }
    if n as usize != b.len() {
        return Err((Step::SecurityLabel, libc::EIO, idx as u32));
    }
    Ok(())
}

/// Joins (or makes) the container's session keyring, so that the process does not share the
/// caller's keys. Kernels without keyrings (ENOSYS) are let be, as runc does.
unsafe fn session_keyring(k: &crate::plan::Keyring, attr_root: c_int, label_idx: usize) -> R {
    const KEYCTL_JOIN_SESSION_KEYRING: c_int = 1;
    const KEYCTL_SETPERM: c_int = 5;
    // Possessor: everything; owner: view, read, search, link.
    const PERM: u32 = 0x3f00_0000 | 0x0001_0000 | 0x0002_0000 | 0x0008_0000 | 0x0010_0000;
    if let Some(l) = &k.label {
        let fd = open_attr(attr_root, l, label_idx)?;
        write_attr(fd.0, l, label_idx)?;
    }
    let id = libc::syscall(
        libc::SYS_keyctl,
        KEYCTL_JOIN_SESSION_KEYRING,
        k.name.as_ptr(),
    );
    if id < 0 {
        if errno() == libc::ENOSYS {
            return Ok(());
        }
        return fail(Step::Keyring, 0);
    }
    if libc::syscall(libc::SYS_keyctl, KEYCTL_SETPERM, id, PERM) < 0 {
        return fail(Step::Keyring, 1);
    }
    Ok(())
}

/// In a new user namespace (its maps written), take the namespace's root ids: until then the
/// process keeps its host ids, which are unmapped there, and filesystems the namespace owns
/// refuse them (EOVERFLOW).
unsafe fn become_ns_root(plan: &Plan) -> R {
    if plan.creates(Kind::User) {
        check(raw_setresgid(0), Step::Setgid, 0)?;
        check(raw_setresuid(0), Step::Setuid, 0)?;
    }
    Ok(())
}

/// `CAP_SYS_ADMIN`, which installing a filter without no_new_privs needs.
const CAP_SYS_ADMIN: u32 = 21;

/// Whether the process installs its seccomp filter right before `execve` (and each
/// startContainer hook its own, right before the hook's `execve`): always, but for a filter
/// with a notify listener, which goes in before the start gate.
fn seccomp_late(plan: &Plan) -> bool {
    const SECCOMP_FILTER_FLAG_NEW_LISTENER: u32 = 1 << 3;
    plan.seccomp
        .as_ref()
        .is_some_and(|sc| sc.flags & SECCOMP_FILTER_FLAG_NEW_LISTENER == 0)
}

unsafe fn install_seccomp(plan: &Plan, args: &ChildArgs, sock: c_int) -> R {
    if let Some(sc) = &plan.seccomp {
        let prog = libc::sock_fprog {
            len: args.filter.len() as u16,
            filter: args.filter.as_ptr() as *mut libc::sock_filter,
        };
        const SECCOMP_SET_MODE_FILTER: libc::c_long = 1;
        const SECCOMP_FILTER_FLAG_NEW_LISTENER: u32 = 1 << 3;
        let r = libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            sc.flags as libc::c_ulong,
            &prog as *const libc::sock_fprog,
        );
        if r < 0 {
            return fail(Step::Seccomp, 0);
        }
        if sc.flags & SECCOMP_FILTER_FLAG_NEW_LISTENER != 0 {
            // The notify listener goes to the parent, which hands it to the spec's listener.
            let fd = Fd(r as c_int);
            send_fd(sock, msg::SECCOMP, fd.0, Step::Seccomp)?;
        }
    }
    Ok(())
}

/// Sends `fd` to the parent with SCM_RIGHTS in a message tagged `tag`.
unsafe fn send_fd(sock: c_int, tag: u32, fd: c_int, step: Step) -> R {
    let mut m_msg = Msg {
        tag,
        ..Msg::default()
    };
    let mut iov = libc::iovec {
        iov_base: (&mut m_msg as *mut Msg).cast(),
        iov_len: std::mem::size_of::<Msg>(),
    };
    let mut cbuf = [0u64; 4];
    let mut mh: libc::msghdr = std::mem::zeroed();
    mh.msg_iov = &mut iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cbuf.as_mut_ptr().cast();
    mh.msg_controllen = libc::CMSG_SPACE(std::mem::size_of::<c_int>() as u32) as _;
    let c = libc::CMSG_FIRSTHDR(&mh);
    if c.is_null() {
        return Err((step, libc::EINVAL, 5));
    }
    (*c).cmsg_level = libc::SOL_SOCKET;
    (*c).cmsg_type = libc::SCM_RIGHTS;
    (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<c_int>() as u32) as _;
    std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut c_int, fd);
    if libc::sendmsg(sock, &mh, libc::MSG_NOSIGNAL) < 0 {
        return fail(step, 5);
    }
    Ok(())
}

/// Opens a pty in the container's /dev/ptmx, makes its slave the controlling terminal and
/// stdio (and, for the container's init, `/dev/console`), and sends the master to the parent.
unsafe fn terminal(sock: c_int, setsid: bool, console: bool) -> R {
    let m = Fd(check(
        libc::open(
            c"/dev/ptmx".as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        ),
        Step::Terminal,
        0,
    )?);
    let unlock: c_int = 0;
    check(
        libc::ioctl(m.0, libc::TIOCSPTLCK, &unlock),
        Step::Terminal,
        1,
    )?;
    // TIOCGPTPEER: the slave without a path lookup.
    const TIOCGPTPEER: libc::c_ulong = 0x5441;
    let s = Fd(check(
        libc::ioctl(m.0, TIOCGPTPEER as _, libc::O_RDWR | libc::O_NOCTTY),
        Step::Terminal,
        2,
    )?);
    if setsid {
        check(libc::setsid(), Step::Setsid, 0)?;
    } else {
        // An exec'd process: a session of its own to own the terminal.
        libc::setsid();
    }
    check(libc::ioctl(s.0, libc::TIOCSCTTY, 0), Step::Terminal, 3)?;
    if console {
        bind_console(s.0)?;
    }
    let mut i = 0;
    while i < 3 {
        check(libc::dup2(s.0, i), Step::Terminal, 4)?;
        i = i.saturating_add(1);
    }
    // The master goes to the parent with SCM_RIGHTS.
    send_fd(sock, msg::TTY, m.0, Step::Terminal)
}

/// The container's `/dev/console` is its terminal (config-linux.md, "Default Devices"): an
/// empty file made if missing (never following a symlink), the pty slave bound over it.
unsafe fn bind_console(slave: c_int) -> R {
    let f = libc::open(
        c"/dev/console".as_ptr(),
        libc::O_CREAT | libc::O_WRONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY,
        0o600,
    );
    if f < 0 && errno() != libc::EEXIST {
        return fail(Step::Terminal, 5);
    }
    drop(Fd(f));
    let target = Fd(libc::open(
        c"/dev/console".as_ptr(),
        libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
    ));
    if target.0 < 0 {
        return fail(Step::Terminal, 5);
    }
    let (src, dst) = (FdPath::new(slave), FdPath::new(target.0));
    check(
        libc::mount(
            src.as_ptr(),
            dst.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        ),
        Step::Terminal,
        5,
    )?;
    Ok(())
}

// Raw credential syscalls. glibc's wrappers (setresuid, setgroups, ...) believe the process
// still has the parent's threads (a raw clone does not reset glibc's thread list as fork()
// does) and run their all-threads broadcast, which takes a lock another parent thread may
// hold at the moment of the clone: a deadlock, seen here once in a few hundred spawns from a
// busy threaded host. Credentials are per thread in the kernel, and this process has one.
unsafe fn raw_setresuid(id: u32) -> c_int {
    libc::syscall(libc::SYS_setresuid, id, id, id) as c_int
}

unsafe fn raw_setresgid(id: u32) -> c_int {
    libc::syscall(libc::SYS_setresgid, id, id, id) as c_int
}

fn fd_of(fd: &std::os::fd::OwnedFd) -> c_int {
    std::os::fd::AsRawFd::as_raw_fd(fd)
}

unsafe fn write_file(path: &CStr, data: &CStr, step: Step, idx: usize) -> R {
    let fd = Fd(check(
        libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC),
        step,
        idx,
    )?);
    let bytes = data.to_bytes();
    let n = libc::write(fd.0, bytes.as_ptr().cast(), bytes.len());
    if n < 0 {
        return fail(step, idx);
    }
    if n as usize != bytes.len() {
        return Err((step, libc::EIO, idx as u32));
    }
    Ok(())
}

unsafe fn loopback_up() -> R {
    let s = Fd(check(
        libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0),
        Step::Loopback,
        0,
    )?);
    let mut req: libc::ifreq = std::mem::zeroed();
    req.ifr_name[0] = b'l' as libc::c_char;
    req.ifr_name[1] = b'o' as libc::c_char;
    check(
        libc::ioctl(s.0, libc::SIOCGIFFLAGS, &mut req),
        Step::Loopback,
        0,
    )?;
    req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
    check(
        libc::ioctl(s.0, libc::SIOCSIFFLAGS, &mut req),
        Step::Loopback,
        0,
    )?;
    Ok(())
}

const IN_ROOT: u64 = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;

/// Opens `path` (relative to the root) without leaving the root.
unsafe fn resolve(root: c_int, path: &CStr, extra: c_int) -> c_int {
    if path.to_bytes().is_empty() {
        return libc::fcntl(root, libc::F_DUPFD_CLOEXEC, 3);
    }
    sys::openat2(
        root,
        path.as_ptr(),
        (libc::O_PATH | libc::O_CLOEXEC | extra) as u64,
        IN_ROOT,
    )
}

/// Creates the parent directories of `t` (all but its last component) inside the root and
/// returns an fd of the parent directory.
unsafe fn ensure_parent(root: c_int, t: &Target, step: Step, idx: usize) -> R<Fd> {
    // The parent is most often there (`/dev` of every device, symlink and mask): one lookup,
    // and the walk that makes each missing component only when it is not.
    let fd = resolve(root, t.parent(), libc::O_DIRECTORY);
    if fd >= 0 {
        return Ok(Fd(fd));
    }
    if errno() != libc::ENOENT {
        return fail(step, idx);
    }
    let n = t.components.len();
    for (parent, name) in t.components.iter().take(n.saturating_sub(1)) {
        mkdir_in(root, parent, name, step, idx)?;
    }
    let fd = resolve(root, t.parent(), libc::O_DIRECTORY);
    if fd < 0 {
        return fail(step, idx);
    }
    Ok(Fd(fd))
}

unsafe fn mkdir_in(root: c_int, parent: &CStr, name: &CStr, step: Step, idx: usize) -> R {
    let p = Fd(resolve(root, parent, libc::O_DIRECTORY));
    if p.0 < 0 {
        return fail(step, idx);
    }
    if libc::mkdirat(p.0, name.as_ptr(), 0o755) < 0 && errno() != libc::EEXIST {
        return fail(step, idx);
    }
    Ok(())
}

/// Resolves `t` inside the root, creating it (a directory, or an empty file) if missing.
/// `extra` flags apply to the opening of `t` itself (`O_NOFOLLOW|O_DIRECTORY`: a symlink or
/// non-directory as the last component fails, ENOTDIR).
unsafe fn ensure(
    root: c_int,
    t: &Target,
    is_file: bool,
    extra: c_int,
    step: Step,
    idx: usize,
) -> R<Fd> {
    let fd = resolve(root, &t.path, extra);
    if fd >= 0 {
        return Ok(Fd(fd));
    }
    if errno() != libc::ENOENT {
        return fail(step, idx);
    }
    let p = ensure_parent(root, t, step, idx)?;
    if let Some((_, name)) = t.components.last() {
        if is_file {
            let f = libc::openat(
                p.0,
                name.as_ptr(),
                libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
                0o644,
            );
            if f < 0 && errno() != libc::EEXIST {
                return fail(step, idx);
            }
            drop(Fd(f));
        } else if libc::mkdirat(p.0, name.as_ptr(), 0o755) < 0 && errno() != libc::EEXIST {
            return fail(step, idx);
        }
    }
    let fd = resolve(root, &t.path, extra);
    if fd < 0 {
        return fail(step, idx);
    }
    Ok(Fd(fd))
}

/// Mount flags the kernel may have locked on the mount at `fd` (they must be kept on remount).
unsafe fn locked_flags(fd: c_int) -> c_ulong {
    // The raw syscall: glibc's fstatvfs may read /proc/mounts and allocate.
    let mut st: sys::KStatfs = std::mem::zeroed();
    if sys::fstatfs(fd, &mut st) < 0 {
        return 0;
    }
    let f = st.f_flags as c_ulong;
    let mut out = 0;
    for (st_flag, ms_flag) in [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
        (libc::ST_RDONLY, libc::MS_RDONLY),
    ] {
        if f & st_flag as c_ulong != 0 {
            out |= ms_flag;
        }
    }
    out
}

fn opt_ptr(s: &Option<std::ffi::CString>) -> *const libc::c_char {
    match s {
        Some(s) => s.as_ptr(),
        None => std::ptr::null(),
    }
}

/// Makes mount `i`. A bind mount (and an idmapped one, made detached by the parent) is made
/// as a detached mount, given its flags and recursive attributes before it is attached, moved
/// onto the mount point resolved once inside the root, and given its propagation through the
/// same fd: every step acts on the mount made, never on its path looked up again, which a
/// racer sharing a volume could swap for a symlink in between (CVE-2021-30465). Without the
/// new mount API (ENOSYS) a bind takes the `mount(2)` steps of [`legacy_mount`].
unsafe fn do_mount(root: c_int, i: usize, m: &Mount) -> R {
    if let Some(d) = &m.detached {
        return attach(root, i, m, fd_of(d));
    }
    if let (true, Some(src)) = (is_new_bind(m), &m.source) {
        let rec = if m.flags & libc::MS_REC != 0 {
            sys::AT_RECURSIVE
        } else {
            0
        };
        let tree = sys::open_tree(libc::AT_FDCWD, src.as_ptr(), sys::OPEN_TREE_CLONE | rec);
        if tree >= 0 {
            let tree = Fd(tree);
            if let Some(flags) = m.remount_flags {
                let (set, clr) = sys::bind_attr(flags);
                if sys::mount_setattr_fd(tree.0, 0, set, clr, 0) < 0 {
                    return fail(Step::MountRemount, i);
                }
            }
            return attach(root, i, m, tree.0);
        }
        if errno() != libc::ENOSYS {
            return fail(Step::Mount, i);
        }
    }
    legacy_mount(root, i, m)
}

/// A new bind mount (not a remount).
fn is_new_bind(m: &Mount) -> bool {
    m.flags & libc::MS_BIND != 0 && m.flags & libc::MS_REMOUNT == 0 && m.fstype.is_none()
}

/// Gives the detached mount `tree` its recursive attributes, moves it onto its mount point
/// and gives it its propagation, all through `tree`.
unsafe fn attach(root: c_int, i: usize, m: &Mount, tree: c_int) -> R {
    if let Some((set, clr)) = m.recursive_attr {
        if sys::mount_setattr_fd(tree, sys::AT_RECURSIVE, set, clr, 0) < 0 {
            return fail(Step::MountAttr, i);
        }
    }
    let fd = ensure(
        root,
        &m.target,
        m.is_file,
        plain_dir(m),
        Step::MountPoint,
        i,
    )?;
    if sys::move_mount_fd(tree, fd.0) < 0 {
        return fail(Step::Mount, i);
    }
    if m.propagation != 0 {
        // Now attached: `tree` is the mount's root in this namespace.
        let rec = if m.propagation & libc::MS_REC != 0 {
            sys::AT_RECURSIVE
        } else {
            0
        };
        let prop = m.propagation & !libc::MS_REC;
        if sys::mount_setattr_fd(tree, rec, 0, 0, prop) < 0 {
            return fail(Step::MountPropagation, i);
        }
    }
    Ok(())
}

/// proc and sysfs go onto a real directory only, never through a symlink (CVE-2019-19921):
/// the lookup of their mount point does not follow one.
fn plain_dir(m: &Mount) -> c_int {
    if m.plain_dir {
        libc::O_NOFOLLOW | libc::O_DIRECTORY
    } else {
        0
    }
}

/// A mount with `mount(2)`: a filesystem (its flags in the one call), or a bind where the new
/// mount API is missing. The steps that follow (a bind's flags, the recursive attributes, the
/// propagation) find the mount by its path again, and take what they find only if it is the
/// mount made: the youngest mount on the mount the target was on ([`made_mount`]); a racer
/// who swapped the path in between fails the create instead of redirecting the step.
unsafe fn legacy_mount(root: c_int, i: usize, m: &Mount) -> R {
    let below = {
        let fd = ensure(
            root,
            &m.target,
            m.is_file,
            plain_dir(m),
            Step::MountPoint,
            i,
        )?;
        let steps_after =
            m.remount_flags.is_some() || m.recursive_attr.is_some() || m.propagation != 0;
        let below = if steps_after { sys::mount_id(fd.0) } else { 0 };
        let p = FdPath::new(fd.0);
        check(
            libc::mount(
                opt_ptr(&m.source),
                p.as_ptr(),
                opt_ptr(&m.fstype),
                m.flags,
                opt_ptr(&m.data).cast(),
            ),
            Step::Mount,
            i,
        )?;
        below
    };
    // A remount changes the mount that was there; anything else made a new one on it.
    let remount = m.flags & libc::MS_REMOUNT != 0;
    if let Some(flags) = m.remount_flags {
        let fd = made_mount(root, i, m, below, remount, Step::MountRemount)?;
        let p = FdPath::new(fd.0);
        let keep = locked_flags(fd.0) & !libc::MS_RDONLY;
        check(
            libc::mount(
                std::ptr::null(),
                p.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND | libc::MS_REMOUNT | flags | keep,
                std::ptr::null(),
            ),
            Step::MountRemount,
            i,
        )?;
    }
    if let Some((set, clr)) = m.recursive_attr {
        // The mount now at the target and every mount under it.
        let fd = made_mount(root, i, m, below, remount, Step::MountAttr)?;
        if sys::mount_setattr_fd(fd.0, sys::AT_RECURSIVE, set, clr, 0) < 0 {
            return fail(Step::MountAttr, i);
        }
    }
    if m.propagation != 0 {
        let fd = made_mount(root, i, m, below, remount, Step::MountPropagation)?;
        let p = FdPath::new(fd.0);
        check(
            libc::mount(
                std::ptr::null(),
                p.as_ptr(),
                std::ptr::null(),
                m.propagation,
                std::ptr::null(),
            ),
            Step::MountPropagation,
            i,
        )?;
    }
    Ok(())
}

/// The mount made by [`legacy_mount`], its target resolved again (a fresh fd: the one the
/// mount was made on points below it). `below` is the unique id of the mount the target was
/// on before (0: unknown). The mount found must be the youngest mount on `below` (for a
/// remount: `below` itself): this process is the only one that mounts in its namespace while
/// it is set up, so the youngest child of `below` is the one it just made (listmount, Linux
/// 6.8; without it the mount found is taken as before). Otherwise: EBUSY.
unsafe fn made_mount(
    root: c_int,
    i: usize,
    m: &Mount,
    below: u64,
    remount: bool,
    step: Step,
) -> R<Fd> {
    let fd = Fd(resolve(root, &m.target.path, 0));
    if fd.0 < 0 {
        return fail(step, i);
    }
    if below == 0 {
        return Ok(fd);
    }
    let found = sys::mount_id(fd.0);
    let ok = if remount {
        found == below
    } else {
        match (
            sys::first_child_after(below, found.saturating_sub(1)),
            sys::first_child_after(below, found),
        ) {
            // listmount is missing: nothing to check with.
            (None, _) | (_, None) => true,
            (Some(next), Some(after)) => next == found && after == 0,
        }
    };
    if !ok || found == 0 {
        *libc::__errno_location() = libc::EBUSY;
        return fail(step, i);
    }
    Ok(fd)
}

unsafe fn rootfs(r: &crate::plan::Rootfs, hook_pause: bool, sock: c_int) -> R {
    // Without a mount namespace of its own, every mount of the host stays as it is: the
    // mounts below are made inside the root (the runtime records and removes them), and
    // the process is chrooted there.
    if r.mount_ns {
        prepare_root(r)?;
    }
    let root = Fd(check(
        libc::open(
            r.path.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        ),
        Step::RootOpen,
        0,
    )?);
    populate(r, &root)?;
    // The runtime's hooks (prestart, createRuntime) run now: namespaces made, mounts done,
    // root not yet changed.
    if hook_pause {
        send(
            sock,
            Msg {
                tag: msg::HOOKS,
                ..Msg::default()
            },
        );
        expect(sock, msg::HOOKS_DONE)?;
    }
    check(libc::fchdir(root.0), Step::PivotRoot, 0)?;
    if !r.mount_ns {
        check(libc::chroot(c".".as_ptr()), Step::PivotRoot, 0)?;
    } else if r.no_pivot {
        check(
            libc::mount(
                c".".as_ptr(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_MOVE,
                std::ptr::null(),
            ),
            Step::PivotRoot,
            0,
        )?;
        check(libc::chroot(c".".as_ptr()), Step::PivotRoot, 0)?;
    } else {
        check(
            sys::pivot_root(c".".as_ptr(), c".".as_ptr()),
            Step::PivotRoot,
            0,
        )?;
        // The old root now sits on top of the new one: detach it without propagating the
        // unmount to the host. Only a shared root propagation needs the rslave first (any
        // other made every mount of this namespace slave or private before anything was
        // mounted); done always, it would reach the container's own mounts too and turn a
        // shared bind mount, alone in its peer group, private.
        if r.propagation & libc::MS_SHARED != 0 {
            check(
                libc::mount(
                    std::ptr::null(),
                    c".".as_ptr(),
                    std::ptr::null(),
                    libc::MS_SLAVE | libc::MS_REC,
                    std::ptr::null(),
                ),
                Step::PivotRoot,
                0,
            )?;
        }
        check(
            libc::umount2(c".".as_ptr(), libc::MNT_DETACH),
            Step::PivotRoot,
            0,
        )?;
    }
    check(libc::chdir(c"/".as_ptr()), Step::PivotRoot, 0)?;
    // A shared or unbindable root propagation is the root's own now (see
    // `Rootfs::root_propagation`).
    if r.mount_ns && r.root_propagation != 0 {
        check(
            libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                r.root_propagation,
                std::ptr::null(),
            ),
            Step::RootPropagation,
            2,
        )?;
    }
    if r.mount_ns && r.readonly {
        let fd = Fd(libc::open(c"/".as_ptr(), libc::O_PATH | libc::O_CLOEXEC));
        let keep = if fd.0 >= 0 { locked_flags(fd.0) } else { 0 };
        check(
            libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | keep,
                std::ptr::null(),
            ),
            Step::ReadonlyRoot,
            0,
        )?;
    }
    Ok(())
}

/// In the container's own mount namespace: the propagation of `/`, and the root bound onto
/// itself (a mount of its own, which pivot_root needs).
unsafe fn prepare_root(r: &crate::plan::Rootfs) -> R {
    check(
        libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            r.propagation,
            std::ptr::null(),
        ),
        Step::RootPropagation,
        0,
    )?;
    // With a shared root propagation ("shared", "rshared"), the mount the root filesystem
    // sits on becomes private first (in this namespace only), as runc does: the bind below
    // must not propagate to the host, and pivot_root refuses a shared parent. The propagation
    // is given to the new root after pivot_root.
    if let Some(parent) = &r.private_parent {
        check(
            libc::mount(
                std::ptr::null(),
                parent.as_ptr(),
                std::ptr::null(),
                libc::MS_PRIVATE,
                std::ptr::null(),
            ),
            Step::RootPropagation,
            1,
        )?;
    }
    check(
        libc::mount(
            r.path.as_ptr(),
            r.path.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND | libc::MS_REC,
            std::ptr::null(),
        ),
        Step::RootBind,
        0,
    )?;
    Ok(())
}

/// The mounts, devices, symlinks, masks and read-only paths inside the root (`root`: its fd).
unsafe fn populate(r: &crate::plan::Rootfs, root: &Fd) -> R {
    for (i, m) in indexed(&r.mounts) {
        do_mount(root.0, i, m)?;
    }
    for (i, d) in indexed(&r.devices) {
        let dir = ensure_parent(root.0, &d.target, Step::Device, i)?;
        let Some((_, name)) = d.target.components.last() else {
            continue;
        };
        if r.bind_devices {
            let f = libc::openat(
                dir.0,
                name.as_ptr(),
                libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
                0o644,
            );
            if f < 0 {
                return fail(Step::Device, i);
            }
            drop(Fd(f));
            let t = Fd(resolve(root.0, &d.target.path, libc::O_NOFOLLOW));
            if t.0 < 0 {
                return fail(Step::Device, i);
            }
            let p = FdPath::new(t.0);
            check(
                libc::mount(
                    d.host_path.as_ptr(),
                    p.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND,
                    std::ptr::null(),
                ),
                Step::Device,
                i,
            )?;
        } else {
            if libc::unlinkat(dir.0, name.as_ptr(), 0) < 0 && errno() != libc::ENOENT {
                return fail(Step::Device, i);
            }
            check(
                libc::mknodat(
                    dir.0,
                    name.as_ptr(),
                    d.mode as libc::mode_t,
                    libc::makedev(d.major as u32, d.minor as u32),
                ),
                Step::Device,
                i,
            )?;
            check(
                libc::fchownat(
                    dir.0,
                    name.as_ptr(),
                    d.uid,
                    d.gid,
                    libc::AT_SYMLINK_NOFOLLOW,
                ),
                Step::Device,
                i,
            )?;
        }
    }
    for (i, s) in indexed(&r.symlinks) {
        let dir = ensure_parent(root.0, &s.link, Step::Symlink, i)?;
        if let Some((_, name)) = s.link.components.last() {
            if libc::symlinkat(s.target.as_ptr(), dir.0, name.as_ptr()) < 0
                && errno() != libc::EEXIST
            {
                return fail(Step::Symlink, i);
            }
        }
    }
    for (i, t) in indexed(&r.masked) {
        // A symlink is followed, inside the root (RESOLVE_IN_ROOT), as runc follows it; one
        // whose target is missing masks nothing, as a missing path.
        let fd = Fd(resolve(root.0, &t.path, 0));
        if fd.0 < 0 {
            if errno() == libc::ENOENT {
                continue;
            }
            return fail(Step::Mask, i);
        }
        let mut st: libc::stat = std::mem::zeroed();
        check(libc::fstat(fd.0, &mut st), Step::Mask, i)?;
        let p = FdPath::new(fd.0);
        let ret = if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            libc::mount(
                c"tmpfs".as_ptr(),
                p.as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                // Reads as an empty directory (runc's read-only tmpfs), not EACCES.
                c"size=0k,mode=755".as_ptr().cast(),
            )
        } else {
            libc::mount(
                c"/dev/null".as_ptr(),
                p.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            )
        };
        check(ret, Step::Mask, i)?;
    }
    for (i, t) in indexed(&r.readonly_paths) {
        readonly_path(root.0, i, t)?;
    }
    Ok(())
}

/// Makes the path `t` read-only: a recursive bind of the path onto itself, made read-only
/// while detached and moved onto the fd it was copied from (one lookup, no path looked up
/// again). Without the new mount API, `mount(2)` through `/proc/self/fd/N`.
unsafe fn readonly_path(root: c_int, i: usize, t: &Target) -> R {
    let fd = Fd(resolve(root, &t.path, libc::O_NOFOLLOW));
    if fd.0 < 0 {
        if errno() == libc::ENOENT {
            return Ok(());
        }
        return fail(Step::ReadonlyPath, i);
    }
    let tree = Fd(sys::open_tree(
        fd.0,
        c"".as_ptr(),
        sys::OPEN_TREE_CLONE | sys::AT_RECURSIVE | libc::AT_EMPTY_PATH as libc::c_uint,
    ));
    if tree.0 >= 0 {
        // The top mount only, as the remount below (the mounts under it keep their flags).
        if sys::mount_setattr_fd(tree.0, 0, libc::MOUNT_ATTR_RDONLY, 0, 0) < 0
            || sys::move_mount_fd(tree.0, fd.0) < 0
        {
            return fail(Step::ReadonlyPath, i);
        }
        return Ok(());
    }
    if errno() != libc::ENOSYS {
        return fail(Step::ReadonlyPath, i);
    }
    {
        let p = FdPath::new(fd.0);
        check(
            libc::mount(
                p.as_ptr(),
                p.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND | libc::MS_REC,
                std::ptr::null(),
            ),
            Step::ReadonlyPath,
            i,
        )?;
    }
    let fd = Fd(resolve(root, &t.path, libc::O_NOFOLLOW));
    if fd.0 < 0 {
        return fail(Step::ReadonlyPath, i);
    }
    let p = FdPath::new(fd.0);
    let keep = locked_flags(fd.0);
    check(
        libc::mount(
            std::ptr::null(),
            p.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_REC | keep,
            std::ptr::null(),
        ),
        Step::ReadonlyPath,
        i,
    )?;
    Ok(())
}

unsafe fn process(plan: &Plan, args: &ChildArgs, sock: c_int, labels: &[Fd; 2]) -> R {
    let p = &plan.process;
    for (i, rl) in indexed(&p.rlimits) {
        let lim = libc::rlimit {
            rlim_cur: rl.soft,
            rlim_max: rl.hard,
        };
        check(libc::setrlimit(rl.resource as _, &lim), Step::Rlimit, i)?;
    }
    for (i, &fd) in indexed(&p.stdio) {
        let target = i as c_int;
        if fd >= 0 && fd != target {
            check(libc::dup2(fd, target), Step::Stdio, i)?;
        } else if fd == target {
            libc::fcntl(fd, libc::F_SETFD, 0);
        }
    }
    if p.terminal {
        terminal(
            sock,
            p.setsid,
            p.setsid && plan.rootfs.as_ref().is_some_and(|r| r.mount_ns),
        )?;
    } else if p.setsid {
        check(libc::setsid(), Step::Setsid, 0)?;
    }
    // Scheduling and memory attributes, while still privileged (RT policies need
    // CAP_SYS_NICE); they are inherited across the credential change and exec.
    if let Some(a) = &p.sched {
        if libc::syscall(
            libc::SYS_sched_setattr,
            0,
            a as *const crate::plan::SchedAttr,
            0,
        ) < 0
        {
            return fail(Step::ProcessAttr, 1);
        }
    }
    if let Some(v) = p.ioprio {
        // IOPRIO_WHO_PROCESS = 1, this process.
        if libc::syscall(libc::SYS_ioprio_set, 1, 0, v) < 0 {
            return fail(Step::ProcessAttr, 2);
        }
    }
    if let Some((mode, mask, maxnode)) = &p.mempolicy {
        let ptr = if mask.is_empty() {
            std::ptr::null()
        } else {
            mask.as_ptr()
        };
        if libc::syscall(libc::SYS_set_mempolicy, *mode, ptr, *maxnode) < 0 {
            return fail(Step::ProcessAttr, 3);
        }
    }
    if let Some(pers) = p.personality {
        if libc::personality(pers as libc::c_ulong) < 0 {
            return fail(Step::ProcessAttr, 0);
        }
    }
    // The labels of the program to exec, while still privileged (and before a seccomp filter
    // that might refuse the write).
    for (i, (a, fd)) in (0..labels.len()).zip(p.exec_labels.iter().zip(labels.iter())) {
        write_attr(fd.0, a, i)?;
    }
    // The seccomp filter goes in as late as it can (see `seccomp_late`): nothing of corral's
    // own runs under the container's profile but `execve`. Without no_new_privs installing it
    // needs CAP_SYS_ADMIN, which the process keeps in its effective and permitted sets until
    // then (`admin`); `execve` computes the new sets from the bounding, inheritable and ambient
    // sets alone, so the extra capability never reaches the container's program.
    let admin = if plan.seccomp.is_some() && !p.no_new_privs {
        1u64 << CAP_SYS_ADMIN
    } else {
        0
    };
    if p.caps.is_some() || admin != 0 {
        libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0);
    }
    if let Some(c) = &p.caps {
        let mut cap = 0u32;
        while cap <= c.last_cap && cap < 64 {
            if c.bounding & (1u64 << cap) == 0
                && libc::prctl(libc::PR_CAPBSET_DROP, cap as c_ulong, 0, 0, 0) < 0
                && errno() != libc::EINVAL
            {
                return fail(Step::CapBounding, cap as usize);
            }
            cap = cap.saturating_add(1);
        }
    }
    if !plan.deny_setgroups {
        check(
            libc::syscall(
                libc::SYS_setgroups,
                p.additional_gids.len(),
                p.additional_gids.as_ptr(),
            ) as c_int,
            Step::Setgroups,
            0,
        )?;
    }
    check(raw_setresgid(p.gid), Step::Setgid, 0)?;
    check(raw_setresuid(p.uid), Step::Setuid, 0)?;
    if let Some(c) = &p.caps {
        libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0);
        let mut hdr = sys::CapHeader {
            version: sys::CAP_V3,
            pid: 0,
        };
        let lo = |v: u64| v as u32;
        let hi = |v: u64| (v >> 32) as u32;
        let (eff, perm) = (c.effective | admin, c.permitted | admin);
        let data = [
            sys::CapData {
                effective: lo(eff),
                permitted: lo(perm),
                inheritable: lo(c.inheritable),
            },
            sys::CapData {
                effective: hi(eff),
                permitted: hi(perm),
                inheritable: hi(c.inheritable),
            },
        ];
        check(sys::capset(&mut hdr, &data), Step::Capset, 0)?;
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as c_ulong,
            0,
            0,
            0,
        );
        let mut cap = 0u32;
        while cap <= c.last_cap && cap < 64 {
            if c.ambient & (1u64 << cap) != 0 {
                check(
                    libc::prctl(
                        libc::PR_CAP_AMBIENT,
                        libc::PR_CAP_AMBIENT_RAISE as c_ulong,
                        cap as c_ulong,
                        0,
                        0,
                    ),
                    Step::CapAmbient,
                    cap as usize,
                )?;
            }
            cap = cap.saturating_add(1);
        }
    }
    if p.caps.is_none() && admin != 0 {
        // No capabilities of the config's: the process keeps what it has (the permitted set
        // survived the uid change through keep-caps); CAP_SYS_ADMIN effective until the filter.
        libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0);
        let mut hdr = sys::CapHeader {
            version: sys::CAP_V3,
            pid: 0,
        };
        let mut data = [sys::CapData::default(), sys::CapData::default()];
        if sys::capget(&mut hdr, &mut data) == 0 {
            let [lo, _] = &mut data;
            lo.effective |= lo.permitted & (admin as u32);
            check(sys::capset(&mut hdr, &data), Step::Capset, 0)?;
        }
    }
    if p.no_new_privs {
        check(
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0),
            Step::NoNewPrivs,
            0,
        )?;
    }
    // The cwd is resolved inside the process's root, never through a magic link such as
    // /proc/self/fd/N, whatever fds the process held (CVE-2024-21626).
    {
        let root = Fd(libc::open(
            c"/".as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        ));
        if root.0 < 0 {
            return fail(Step::Chdir, 0);
        }
        let dir = Fd(sys::openat2(
            root.0,
            p.cwd.as_ptr(),
            (libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) as u64,
            IN_ROOT,
        ));
        if dir.0 < 0 {
            return fail(Step::Chdir, 0);
        }
        check(libc::fchdir(dir.0), Step::Chdir, 0)?;
    }
    libc::umask(p.umask as libc::mode_t);
    // Only stdio, the preserved fds and what this process still needs are open (see
    // `close_others`); mark all but stdio and the preserved ones close-on-exec, so that the sync
    // socket's closing tells the parent that exec succeeded.
    let first = args.first.max(3) as u32;
    if sys::close_range(first, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) < 0 {
        for &fd in &args.keep {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        }
    }
    let mut fd: c_int = 3;
    while fd < args.first {
        libc::fcntl(fd, libc::F_SETFD, 0);
        fd = fd.saturating_add(1);
    }

    // Find the executable before reporting ready, so that a missing one (or a directory)
    // fails the create, not the start. (A late program is not known yet.)
    if !plan.late_exec {
        find_executable(p.exec_candidates.iter().map(|c| c.as_ptr()))?;
    }

    // Without a FIFO gate the parent opens the gate itself: from here on the process owes it
    // nothing (no parent-death signal). A process waiting for its program keeps it: a pool's
    // processes die with the pool.
    if plan.gate.is_none() && !plan.late_exec {
        libc::prctl(libc::PR_SET_PDEATHSIG, 0, 0, 0, 0);
    }
    // A filter with a notify listener goes in before the gate, so that its listener reaches
    // the process that creates the container; the gate's own syscalls then run under it.
    if !seccomp_late(plan) {
        install_seccomp(plan, args, sock)?;
    }
    send(
        sock,
        Msg {
            tag: msg::READY,
            ..Msg::default()
        },
    );
    // The state for the startContainer hooks, which run past the gate.
    let state = if plan.start_hooks.is_empty() {
        Fd(-1)
    } else {
        Fd(recv_fd(sock, msg::STATE)?)
    };
    // The start gate. From here on the process may outlive the one that created it (a
    // `create` exits, a later `start` opens the gate): it drops its parent-death signal only
    // when the parent says create is complete (`RELEASE`), so that a create killed before
    // that takes its half-made process with it; and says it did (`RELEASED`).
    if plan.gate.is_some() {
        expect(sock, msg::RELEASE)?;
        libc::prctl(libc::PR_SET_PDEATHSIG, 0, 0, 0, 0);
        send(
            sock,
            Msg {
                tag: msg::RELEASED,
                ..Msg::default()
            },
        );
    }
    let mut report = [0u8; GATE_REPORT_MAX];
    let mut late = None;
    match &plan.gate {
        None if plan.late_exec => {
            // The memfd, then the stdio fds that `a`'s bits 0, 1, 2 say come with it.
            let mut fds = [-1; 4];
            let (m, n) = recv_fds(sock, msg::START, &mut fds)?;
            let [mem, s0, s1, s2] = fds;
            let given = [s0, s1, s2];
            // (Counted by hand: `Iterator::count` keeps an overflow panic path.)
            let mut wanted = 0usize;
            for b in [1, 2, 4] {
                if m.a & b != 0 {
                    wanted = wanted.saturating_add(1);
                }
            }
            if n != wanted.saturating_add(1) {
                for fd in fds {
                    if fd >= 0 {
                        libc::close(fd);
                    }
                }
                return Err((Step::Sync, libc::EPROTO, msg::START));
            }
            let l = map_late(mem)?;
            find_executable(LateCands(l.cands))?;
            late = Some(l);
            let mut next = given.into_iter();
            for (target, bit) in [(0, 1), (1, 2), (2, 4)] {
                if m.a & bit == 0 {
                    continue;
                }
                let fd = next.next().unwrap_or(-1);
                if libc::dup2(fd, target) < 0 {
                    return fail(Step::Stdio, target as usize);
                }
                libc::close(fd);
            }
            libc::prctl(libc::PR_SET_PDEATHSIG, 0, 0, 0, 0);
            if let Err((_, idx)) = start_hooks(plan, args, state.0, &mut report) {
                return Err((Step::StartHook, libc::ECANCELED, idx as u32));
            }
        }
        None => {
            expect(sock, msg::START)?;
            if let Err((_, idx)) = start_hooks(plan, args, state.0, &mut report) {
                return Err((Step::StartHook, libc::ECANCELED, idx as u32));
            }
        }
        Some(g) => {
            let fd = loop {
                let fd = libc::openat(
                    fd_of(&g.dir),
                    g.name.as_ptr(),
                    libc::O_WRONLY | libc::O_CLOEXEC,
                );
                if fd < 0 && errno() == libc::EINTR {
                    continue;
                }
                break fd;
            };
            if fd < 0 {
                return fail(Step::Sync, 0);
            }
            let fifo = Fd(fd);
            // The state dir is the host's: not one moment longer than needed.
            libc::close(fd_of(&g.dir));
            let hooks = start_hooks(plan, args, state.0, &mut report);
            let len = match hooks {
                Ok(()) => {
                    report[0] = GATE_OK;
                    1
                }
                Err((len, _)) => len,
            };
            libc::write(fifo.0, report.as_ptr().cast(), len.min(report.len()));
            drop(fifo);
            if let Err((_, idx)) = hooks {
                return Err((Step::StartHook, libc::ECANCELED, idx as u32));
            }
        }
    }
    drop(state);

    default_signals();
    // The filter: the last step before `execve`, which is the one syscall of corral's own
    // that runs under the container's profile.
    if seccomp_late(plan) {
        install_seccomp(plan, args, sock)?;
    }
    // Through the shim (see `crate::shim`): the process stops being a copy of the host's
    // executable before anything of the container's is executed.
    if let (true, Some(l)) = (args.shim >= 0, &late) {
        execveat_shim(args.shim, l.argv, l.cands);
        return fail(Step::Exec, 0);
    }
    if args.shim >= 0 && late.is_none() {
        execveat_shim(args.shim, p.argv.as_ptr(), args.shim_envp.as_ptr());
        return fail(Step::Exec, 0);
    }
    let mut err = libc::ENOENT;
    if let Some(l) = late {
        let mut c = l.cands;
        while !(*c).is_null() && *(*c) != 0 {
            libc::execve(*c, l.argv, l.envp);
            match errno() {
                libc::ENOENT | libc::ENOTDIR => {}
                libc::EACCES => err = libc::EACCES,
                e => return Err((Step::Exec, e, 0)),
            }
            c = c.add(1);
        }
        return Err((Step::Exec, err, 0));
    }
    for cand in &p.exec_candidates {
        libc::execve(cand.as_ptr(), p.argv.as_ptr(), p.envp.as_ptr());
        match errno() {
            libc::ENOENT | libc::ENOTDIR => {}
            libc::EACCES => err = libc::EACCES,
            e => return Err((Step::Exec, e, 0)),
        }
    }
    Err((Step::Exec, err, 0))
}

/// Checks that one of `cands` (in order) is an executable regular file, as `execve` will
/// need, so that a missing program fails with its errno here rather than in the exec shim.
unsafe fn find_executable(cands: impl Iterator<Item = *const libc::c_char>) -> R {
    let mut err = libc::ENOENT;
    for cand in cands {
        if libc::syscall(libc::SYS_faccessat, libc::AT_FDCWD, cand, libc::X_OK) == 0 {
            let mut st: libc::stat = std::mem::zeroed();
            if libc::stat(cand, &mut st) == 0 && st.st_mode & libc::S_IFMT == libc::S_IFREG {
                return Ok(());
            }
            // execve(2) refuses anything but a regular file with EACCES.
            err = libc::EACCES;
            continue;
        }
        match errno() {
            libc::ENOENT | libc::ENOTDIR => {}
            e => err = e,
        }
    }
    Err((Step::Exec, err, 0))
}

/// The candidates of a late program, up to the empty string that ends them.
struct LateCands(*const *const libc::c_char);

impl Iterator for LateCands {
    type Item = *const libc::c_char;
    fn next(&mut self) -> Option<Self::Item> {
        // SAFETY: `map_late` checked the slots; the list ends with "" (or NULL).
        unsafe {
            let c = *self.0;
            if c.is_null() || *c == 0 {
                return None;
            }
            self.0 = self.0.add(1);
            Some(c)
        }
    }
}

/// `execveat(shim, "", argv, envp, AT_EMPTY_PATH)`: returns only on failure.
unsafe fn execveat_shim(
    shim: c_int,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
) {
    libc::syscall(
        libc::SYS_execveat,
        shim,
        c"".as_ptr(),
        argv,
        envp,
        libc::AT_EMPTY_PATH,
    );
}

/// A late program ([`crate::late`]) as mapped in this process: `argv` and `envp` are
/// NULL-terminated; `cands` ends with an empty string, which `envp` follows (the exec shim's
/// layout).
pub(crate) struct Late {
    pub argv: *const *const libc::c_char,
    pub envp: *const *const libc::c_char,
    pub cands: *const *const libc::c_char,
}

/// Maps the memfd `fd` that came with `START` (and closes it), checks it, and fills its
/// pointer slots: every bound is checked before a byte is read, nothing is allocated.
pub(crate) unsafe fn map_late(fd: c_int) -> R<Late> {
    use crate::late::{HEADER_WORDS, MAGIC, MAX_SIZE};
    let fd = Fd(fd);
    let bad = || Err((Step::Sync, libc::EPROTO, msg::START));
    let mut st: libc::stat = std::mem::zeroed();
    if libc::fstat(fd.0, &mut st) < 0 {
        return fail(Step::Sync, msg::START as usize);
    }
    let Ok(size) = usize::try_from(st.st_size) else {
        return bad();
    };
    let header = HEADER_WORDS.saturating_mul(8);
    if size < header || size > MAX_SIZE {
        return bad();
    }
    let base = libc::mmap(
        std::ptr::null_mut(),
        size,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_PRIVATE,
        fd.0,
        0,
    );
    if base == libc::MAP_FAILED {
        return fail(Step::Sync, msg::START as usize);
    }
    drop(fd);
    let words = base.cast::<u64>();
    let word = |i: usize| -> u64 { std::ptr::read(words.add(i)) };
    if word(0) != MAGIC || word(4) != size as u64 {
        return bad();
    }
    let (Ok(argc), Ok(envc), Ok(candc)) = (
        usize::try_from(word(1)),
        usize::try_from(word(2)),
        usize::try_from(word(3)),
    ) else {
        return bad();
    };
    if argc == 0 || candc == 0 {
        return bad();
    }
    // Slots: args, NULL, candidates, "", env, NULL.
    let Some(slots) = argc
        .checked_add(envc)
        .and_then(|n| n.checked_add(candc))
        .and_then(|n| n.checked_add(3))
    else {
        return bad();
    };
    let Some(strings) = slots
        .checked_add(HEADER_WORDS)
        .and_then(|n| n.checked_mul(8))
        .filter(|&n| n <= size)
    else {
        return bad();
    };
    let bytes = base.cast::<u8>();
    let mut off = strings;
    let mut slot = HEADER_WORDS;
    let mut starts = [0usize; 3];
    for (i, n) in [argc, candc, envc].into_iter().enumerate() {
        if let Some(s) = starts.get_mut(i) {
            *s = slot;
        }
        for _ in 0..n {
            let Some(left) = size.checked_sub(off).filter(|&l| l > 0) else {
                return bad();
            };
            let p = bytes.add(off).cast::<libc::c_char>();
            let len = libc::strnlen(p, left);
            if len >= left {
                return bad();
            }
            std::ptr::write(words.add(slot), p as u64);
            slot = slot.saturating_add(1);
            off = off.saturating_add(len).saturating_add(1);
        }
        // The candidates end with an empty string (the shim's separator), the others with NULL.
        let end = if i == 1 { c"".as_ptr() as u64 } else { 0 };
        std::ptr::write(words.add(slot), end);
        slot = slot.saturating_add(1);
    }
    let [a, c, e] = starts;
    Ok(Late {
        argv: words.add(a).cast(),
        envp: words.add(e).cast(),
        cands: words.add(c).cast(),
    })
}

/// Default signal dispositions and an empty mask, for a new program.
unsafe fn default_signals() {
    let mut sig = 1;
    while sig < 65 {
        libc::signal(sig, libc::SIG_DFL);
        sig = sig.saturating_add(1);
    }
    let mut set: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut set);
    libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
}

/// Receives message `tag` with exactly one fd (SCM_RIGHTS), close-on-exec.
unsafe fn recv_fd(sock: c_int, tag: u32) -> R<c_int> {
    let mut fds = [-1; 4];
    let (_, n) = recv_fds(sock, tag, &mut fds)?;
    let [first, rest @ ..] = fds;
    for fd in rest {
        if fd >= 0 {
            libc::close(fd);
        }
    }
    if n == 0 {
        return Err((Step::Sync, libc::EPROTO, tag));
    }
    Ok(first)
}

/// Receives message `tag` with up to 4 fds (SCM_RIGHTS), close-on-exec, into `fds`: the
/// message and how many came.
unsafe fn recv_fds(sock: c_int, tag: u32, fds: &mut [c_int; 4]) -> R<(Msg, usize)> {
    let mut m = Msg::default();
    let mut iov = libc::iovec {
        iov_base: (&mut m as *mut Msg).cast(),
        iov_len: std::mem::size_of::<Msg>(),
    };
    // Room for one header and four fds (CMSG_SPACE(16) is 32 on 64-bit), and to spare.
    let mut cbuf = [0u64; 8];
    let mut mh: libc::msghdr = std::mem::zeroed();
    mh.msg_iov = &mut iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cbuf.as_mut_ptr().cast();
    mh.msg_controllen = std::mem::size_of_val(&cbuf) as _;
    let n = loop {
        let n = libc::recvmsg(sock, &mut mh, libc::MSG_CMSG_CLOEXEC);
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        break n;
    };
    if n != std::mem::size_of::<Msg>() as isize || m.tag != tag {
        return Err((Step::Sync, if n < 0 { errno() } else { libc::EPROTO }, tag));
    }
    let c = libc::CMSG_FIRSTHDR(&mh);
    if c.is_null() || (*c).cmsg_level != libc::SOL_SOCKET || (*c).cmsg_type != libc::SCM_RIGHTS {
        return Err((Step::Sync, libc::EPROTO, tag));
    }
    let data = libc::CMSG_DATA(c) as *const c_int;
    let bytes = ((*c).cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
    let count = bytes
        .checked_div(std::mem::size_of::<c_int>())
        .unwrap_or(0)
        .min(fds.len());
    for (i, slot) in (0..count).zip(fds.iter_mut()) {
        *slot = std::ptr::read_unaligned(data.add(i));
    }
    Ok((m, count))
}

/// Milliseconds on the monotonic clock.
unsafe fn now_ms() -> i64 {
    let mut ts: libc::timespec = std::mem::zeroed();
    libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
    ts.tv_sec
        .saturating_mul(1000)
        .saturating_add(ts.tv_nsec / 1_000_000)
}

/// How a hook ended: (kind, value) as in the gate report (0 exited with value, 1 killed by
/// signal value, 2 timed out after value seconds, 3 not started, errno value).
type HookEnd = (u8, i32);

/// Runs the startContainer hooks in order. On a failure, `report` holds the gate report
/// (see `spawn::gate_result`) and the error is (its length, the hook's index).
unsafe fn start_hooks(
    plan: &Plan,
    args: &ChildArgs,
    state: c_int,
    report: &mut [u8; GATE_REPORT_MAX],
) -> Result<(), (usize, usize)> {
    for (i, h) in indexed(&plan.start_hooks) {
        let (head, out) = report.split_at_mut(10);
        let mut len = 0usize;
        let shim_envp = args
            .hook_envps
            .get(i)
            .map_or(std::ptr::null(), |e| e.as_ptr());
        let (kind, value) = run_hook(plan, args, (h, shim_envp), state, out, &mut len);
        if kind == 0 && value == 0 {
            continue;
        }
        let v = value.to_le_bytes();
        let l = (len.min(u16::MAX as usize) as u16).to_le_bytes();
        let fields = [
            GATE_HOOK,
            i.min(255) as u8,
            kind,
            0,
            v[0],
            v[1],
            v[2],
            v[3],
            l[0],
            l[1],
        ];
        for (d, s) in head.iter_mut().zip(fields) {
            *d = s;
        }
        return Err((len.saturating_add(10), i));
    }
    Ok(())
}

/// Runs one hook as a child of this process, with its state on stdin; keeps the start of its
/// output in `out`; kills it at its timeout.
unsafe fn run_hook(
    plan: &Plan,
    args: &ChildArgs,
    (h, shim_envp): (&Hook, *const *const libc::c_char),
    state: c_int,
    out: &mut [u8],
    len: &mut usize,
) -> HookEnd {
    if libc::syscall(
        libc::SYS_faccessat,
        libc::AT_FDCWD,
        h.path.as_ptr(),
        libc::X_OK,
    ) != 0
    {
        return (3, errno());
    }
    let mut pipe: [c_int; 2] = [-1, -1];
    if libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) < 0 {
        return (3, errno());
    }
    let [rd, wr] = pipe;
    let (rd, wr) = (Fd(rd), Fd(wr));
    libc::lseek(state, 0, libc::SEEK_SET);
    let mut pidfd: c_int = -1;
    let pid = sys::clone_legacy(
        libc::CLONE_PIDFD as c_ulong | libc::SIGCHLD as c_ulong,
        &mut pidfd,
    );
    if pid < 0 {
        return (3, errno());
    }
    if pid == 0 {
        // The hook: the state on stdin, its output to the pipe, nothing else inherited.
        if libc::dup2(state, 0) < 0 || libc::dup2(wr.0, 1) < 0 || libc::dup2(wr.0, 2) < 0 {
            libc::_exit(126);
        }
        // The exec shim's memfd as fd 3 (close-on-exec), the only one kept past stdio.
        let shim = if args.shim >= 0 && !shim_envp.is_null() {
            libc::dup3(args.shim, 3, libc::O_CLOEXEC)
        } else {
            -1
        };
        sys::close_range(if shim == 3 { 4 } else { 3 }, u32::MAX, 0);
        default_signals();
        // The container's filter, as for its program: the last step before `execve`.
        if seccomp_late(plan) && install_seccomp(plan, args, -1).is_err() {
            libc::_exit(126);
        }
        if shim == 3 {
            execveat_shim(shim, h.argv.as_ptr(), shim_envp);
        } else {
            libc::execve(h.path.as_ptr(), h.argv.as_ptr(), h.envp.as_ptr());
        }
        libc::_exit(127);
    }
    let pid = pid as libc::pid_t;
    let pidfd = Fd(pidfd);
    drop(wr);
    libc::fcntl(rd.0, libc::F_SETFL, libc::O_NONBLOCK);
    let deadline = if h.timeout_secs > 0 {
        now_ms().saturating_add(i64::from(h.timeout_secs).saturating_mul(1000))
    } else {
        i64::MAX
    };
    let mut open = true;
    loop {
        if open {
            open = drain(rd.0, out, len);
        }
        let left = deadline.saturating_sub(now_ms());
        if left <= 0 {
            libc::kill(pid, libc::SIGKILL);
            reap(pid);
            return (2, h.timeout_secs.min(i32::MAX as u32) as i32);
        }
        let mut fds = [
            libc::pollfd {
                fd: if open { rd.0 } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: pidfd.0,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let t = if deadline == i64::MAX {
            -1
        } else {
            left.min(i64::from(i32::MAX)) as c_int
        };
        let n = libc::poll(fds.as_mut_ptr(), 2, t);
        if n < 0 && errno() != libc::EINTR {
            let e = errno();
            libc::kill(pid, libc::SIGKILL);
            reap(pid);
            return (3, e);
        }
        let [_, exited] = fds;
        if exited.revents != 0 {
            break;
        }
    }
    if open {
        drain(rd.0, out, len);
    }
    let st = reap(pid);
    if libc::WIFSIGNALED(st) {
        (1, libc::WTERMSIG(st))
    } else {
        (0, libc::WEXITSTATUS(st))
    }
}

/// Waits for a child; its wait status.
unsafe fn reap(pid: libc::pid_t) -> c_int {
    let mut st = 0;
    while libc::waitpid(pid, &mut st, 0) < 0 && errno() == libc::EINTR {}
    st
}

/// Reads what the pipe holds now into `out` (past `len`), dropping what does not fit;
/// false once the pipe is closed.
unsafe fn drain(fd: c_int, out: &mut [u8], len: &mut usize) -> bool {
    let mut scratch = [0u8; 512];
    loop {
        let room = out.get_mut(*len..).unwrap_or_default();
        let (buf, cap) = if room.is_empty() {
            (scratch.as_mut_ptr(), scratch.len())
        } else {
            (room.as_mut_ptr(), room.len())
        };
        let n = libc::read(fd, buf.cast(), cap);
        if n == 0 {
            return false;
        }
        if n < 0 {
            return errno() == libc::EAGAIN || errno() == libc::EINTR;
        }
        if !room.is_empty() {
            *len = len.saturating_add(n as usize).min(out.len());
        }
    }
}

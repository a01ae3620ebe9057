//! The container process between the clone and `execve`.
//!
//! Rules for every line in this file: no allocation, no locks, no panics (no indexing that can
//! fail, no unwrap), no Rust std I/O, no logging. Only raw syscalls over the prepared [`Plan`].
//! A failure is sent to the parent as `(step, errno, index)` and the process exits.

use std::ffi::CStr;

use libc::{c_int, c_ulong};

use crate::plan::{Mount, Plan, Target};
use crate::spawn::{msg, Msg};
use crate::sys::{self, errno, FdPath};
use crate::{Kind, Step};

type Fail = (Step, c_int, u32);
type R<T = ()> = Result<T, Fail>;

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
pub(crate) unsafe fn run(plan: &Plan, sock: c_int, parent_sock: c_int) -> ! {
    libc::close(parent_sock);
    let (step, err, idx) = match setup(plan, sock) {
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

unsafe fn setup(plan: &Plan, sock: c_int) -> R {
    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
    for fd in &plan.close_fds {
        libc::close(*fd);
    }
    libc::umask(0);
    // The host's /proc, for the security-module attribute files (see `Plan::attr_root`).
    let attr_root = match &plan.attr_root {
        Some(p) => {
            let fd = libc::open(
                p.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            );
            if fd < 0 {
                return fail(Step::SecurityLabel, plan.process.exec_labels.len() + 1);
            }
            Fd(fd)
        }
        None => Fd(-1),
    };
    expect(sock, msg::GO)?;

    let slow = !plan.join_ns.is_empty();
    if !slow {
        become_ns_root(plan)?;
    }
    // Joined user namespace first: it decides what the rest may do.
    for (i, j) in plan.join_ns.iter().enumerate() {
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
            send(
                sock,
                Msg {
                    tag: msg::MAPS,
                    ..Msg::default()
                },
            );
            expect(sock, msg::MAPS_OK)?;
        }
        become_ns_root(plan)?;
        for (i, j) in plan.join_ns.iter().enumerate() {
            if j.kind != Kind::User {
                check(libc::setns(fd_of(&j.fd), j.kind.flag()), Step::Setns, i)?;
            }
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
    }
    if plan.creates(Kind::Time) {
        check(
            libc::unshare(libc::CLONE_NEWTIME),
            Step::Unshare,
            libc::CLONE_NEWTIME as usize,
        )?;
        if let Some(off) = &plan.time_offsets {
            write_file(c"/proc/self/timens_offsets", off, Step::TimeOffsets, 0)?;
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
    for (i, (path, value)) in plan.sysctls.iter().enumerate() {
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
    for (i, a) in plan.process.exec_labels.iter().enumerate() {
        if i >= labels.len() {
            return Err((Step::SecurityLabel, libc::E2BIG, i as u32));
        }
        labels[i] = open_attr(attr_root.0, a, i)?;
    }
    if let Some(r) = &plan.rootfs {
        rootfs(r, plan.hook_pause, sock)?;
    }
    process(plan, sock, &labels)
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

unsafe fn install_seccomp(plan: &Plan, sock: c_int) -> R {
    if let Some(sc) = &plan.seccomp {
        let prog = libc::sock_fprog {
            len: sc.filter.len() as u16,
            filter: sc.filter.as_ptr() as *mut libc::sock_filter,
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
/// stdio, and sends the master to the parent.
unsafe fn terminal(sock: c_int, setsid: bool) -> R {
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
    let mut i = 0;
    while i < 3 {
        check(libc::dup2(s.0, i), Step::Terminal, 4)?;
        i += 1;
    }
    // The master goes to the parent with SCM_RIGHTS.
    send_fd(sock, msg::TTY, m.0, Step::Terminal)
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
unsafe fn ensure(root: c_int, t: &Target, is_file: bool, step: Step, idx: usize) -> R<Fd> {
    let fd = resolve(root, &t.path, 0);
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
    let fd = resolve(root, &t.path, 0);
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

unsafe fn do_mount(root: c_int, i: usize, m: &Mount) -> R {
    {
        let fd = ensure(root, &m.target, m.is_file, Step::MountPoint, i)?;
        if let Some(d) = &m.detached {
            const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
            const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
            let r = libc::syscall(
                libc::SYS_move_mount,
                fd_of(d),
                c"".as_ptr(),
                fd.0,
                c"".as_ptr(),
                MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
            );
            if r < 0 {
                return fail(Step::Mount, i);
            }
            return Ok(());
        }
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
    }
    if let Some(flags) = m.remount_flags {
        // A fresh fd: the one above points below the new mount.
        let fd = Fd(resolve(root, &m.target.path, 0));
        if fd.0 < 0 {
            return fail(Step::MountRemount, i);
        }
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
    if m.propagation != 0 {
        let fd = Fd(resolve(root, &m.target.path, 0));
        if fd.0 < 0 {
            return fail(Step::MountPropagation, i);
        }
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

unsafe fn rootfs(r: &crate::plan::Rootfs, hook_pause: bool, sock: c_int) -> R {
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
    let root = Fd(check(
        libc::open(
            r.path.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        ),
        Step::RootOpen,
        0,
    )?);
    for (i, m) in r.mounts.iter().enumerate() {
        do_mount(root.0, i, m)?;
    }
    for (i, d) in r.devices.iter().enumerate() {
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
    for (i, s) in r.symlinks.iter().enumerate() {
        let dir = ensure_parent(root.0, &s.link, Step::Symlink, i)?;
        if let Some((_, name)) = s.link.components.last() {
            if libc::symlinkat(s.target.as_ptr(), dir.0, name.as_ptr()) < 0
                && errno() != libc::EEXIST
            {
                return fail(Step::Symlink, i);
            }
        }
    }
    for (i, t) in r.masked.iter().enumerate() {
        let fd = Fd(resolve(root.0, &t.path, libc::O_NOFOLLOW));
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
                c"size=0k,mode=000".as_ptr().cast(),
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
    for (i, t) in r.readonly_paths.iter().enumerate() {
        {
            let fd = Fd(resolve(root.0, &t.path, libc::O_NOFOLLOW));
            if fd.0 < 0 {
                if errno() == libc::ENOENT {
                    continue;
                }
                return fail(Step::ReadonlyPath, i);
            }
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
        let fd = Fd(resolve(root.0, &t.path, libc::O_NOFOLLOW));
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
    }
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
    if r.no_pivot {
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
        // unmount to the host.
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
        check(
            libc::umount2(c".".as_ptr(), libc::MNT_DETACH),
            Step::PivotRoot,
            0,
        )?;
    }
    check(libc::chdir(c"/".as_ptr()), Step::PivotRoot, 0)?;
    if r.readonly {
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

unsafe fn process(plan: &Plan, sock: c_int, labels: &[Fd; 2]) -> R {
    let p = &plan.process;
    for (i, rl) in p.rlimits.iter().enumerate() {
        let lim = libc::rlimit {
            rlim_cur: rl.soft,
            rlim_max: rl.hard,
        };
        check(libc::setrlimit(rl.resource as _, &lim), Step::Rlimit, i)?;
    }
    let mut i = 0;
    while i < 3 {
        let fd = p.stdio[i];
        if fd >= 0 && fd != i as c_int {
            check(libc::dup2(fd, i as c_int), Step::Stdio, i)?;
        } else if fd == i as c_int {
            libc::fcntl(fd, libc::F_SETFD, 0);
        }
        i += 1;
    }
    if p.terminal {
        terminal(sock, p.setsid)?;
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
    for (i, a) in p.exec_labels.iter().enumerate() {
        write_attr(labels[i].0, a, i)?;
    }
    if !p.no_new_privs {
        install_seccomp(plan, sock)?;
    }
    if let Some(c) = &p.caps {
        libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0);
        let mut cap = 0u32;
        while cap <= c.last_cap && cap < 64 {
            if c.bounding & (1u64 << cap) == 0
                && libc::prctl(libc::PR_CAPBSET_DROP, cap as c_ulong, 0, 0, 0) < 0
                && errno() != libc::EINVAL
            {
                return fail(Step::CapBounding, cap as usize);
            }
            cap += 1;
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
        let data = [
            sys::CapData {
                effective: lo(c.effective),
                permitted: lo(c.permitted),
                inheritable: lo(c.inheritable),
            },
            sys::CapData {
                effective: hi(c.effective),
                permitted: hi(c.permitted),
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
            cap += 1;
        }
    }
    if p.no_new_privs {
        check(
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0),
            Step::NoNewPrivs,
            0,
        )?;
    }
    check(libc::chdir(p.cwd.as_ptr()), Step::Chdir, 0)?;
    libc::umask(p.umask as libc::mode_t);
    // Every fd past stdio and the preserved ones is closed at exec (CVE-2024-21626); the sync
    // socket is CLOEXEC too, so its closing tells the parent that exec succeeded.
    let first = 3 + p.preserve_fds;
    if sys::close_range(first, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) < 0 {
        let mut lim: libc::rlimit = std::mem::zeroed();
        let max = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur.min(1 << 20) as c_int
        } else {
            1024
        };
        let mut fd = first as c_int;
        while fd < max {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            fd += 1;
        }
    }
    let mut fd = 3;
    while fd < first as c_int {
        libc::fcntl(fd, libc::F_SETFD, 0);
        fd += 1;
    }

    // With no_new_privs the filter goes in last, as runc does: before the gate, so that a
    // failure (or a notify listener) still reaches the process that creates the container.
    if p.no_new_privs {
        install_seccomp(plan, sock)?;
    }

    // Find the executable before reporting ready, so that a missing one fails the create,
    // not the start.
    let mut found = false;
    let mut err = libc::ENOENT;
    for cand in &p.exec_candidates {
        if libc::syscall(
            libc::SYS_faccessat,
            libc::AT_FDCWD,
            cand.as_ptr(),
            libc::X_OK,
        ) == 0
        {
            found = true;
            break;
        }
        match errno() {
            libc::ENOENT | libc::ENOTDIR => {}
            e => err = e,
        }
    }
    if !found {
        return Err((Step::Exec, err, 0));
    }

    // The start gate. From here on the process may outlive the one that created it (a
    // `create` exits, a later `start` opens the gate): no parent-death signal any more.
    libc::prctl(libc::PR_SET_PDEATHSIG, 0, 0, 0, 0);
    send(
        sock,
        Msg {
            tag: msg::READY,
            ..Msg::default()
        },
    );
    match &plan.gate {
        None => expect(sock, msg::START)?,
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
            let b = [b'0'];
            libc::write(fd, b.as_ptr().cast(), 1);
            libc::close(fd);
        }
    }

    // Default signal dispositions and an empty mask for the new program.
    let mut sig = 1;
    while sig < 65 {
        libc::signal(sig, libc::SIG_DFL);
        sig += 1;
    }
    let mut set: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut set);
    libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());

    let mut err = libc::ENOENT;
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

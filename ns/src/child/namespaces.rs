//! Namespaces: the ones joined (user first) and the ones created, the time namespace's
//! offsets, the second fork into a pid namespace, and what is set inside the new namespaces
//! (loopback, host and domain names, sysctls, the OOM score).
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

use super::{check, fail, fd_of, indexed, raw, sync, Fd, R};
use crate::plan::Plan;
use crate::proto::{msg, ChildArgs, Msg};
use crate::{Kind, Step};

/// Opens /proc/self/timens_offsets (at an fd past the preserved ones) when the plan writes
/// time offsets; -1 otherwise or on failure (reported when it is written).
pub(super) fn open_timens(plan: &Plan, first: c_int) -> c_int {
    if plan.time_offsets.is_none() || !plan.creates(Kind::Time) {
        return -1;
    }
    let fd = raw::open(
        c"/proc/self/timens_offsets",
        libc::O_WRONLY | libc::O_CLOEXEC,
        0,
    );
    if fd < 0 || fd >= first {
        return fd;
    }
    let high = raw::fcntl(fd, libc::F_DUPFD_CLOEXEC, first);
    raw::close(fd);
    high
}

pub(super) fn set_dumpable(on: bool) -> R {
    check(
        raw::prctl(libc::PR_SET_DUMPABLE, c_ulong::from(on), 0),
        Step::Dumpable,
        0,
    )
    .map(|_| ())
}

/// In a new user namespace (its maps written), take the namespace's root ids: until then the
/// process keeps its host ids, which are unmapped there, and filesystems the namespace owns
/// refuse them (EOVERFLOW).
fn become_ns_root(plan: &Plan) -> R {
    if plan.creates(Kind::User) {
        check(raw::setresgid(0), Step::Setgid, 0)?;
        check(raw::setresuid(0), Step::Setuid, 0)?;
    }
    Ok(())
}

fn unshare(flag: c_int) -> R {
    check(raw::unshare(flag), Step::Unshare, flag as usize).map(|_| ())
}

/// Joins and creates the plan's namespaces. Fast path (nothing joined): the clone made them,
/// the process only takes the new user namespace's root ids. Slow path: the joined user
/// namespace first, a new one with the parent writing its maps, the other joins, then the
/// others made with `unshare` and a second fork into a pid namespace.
pub(super) fn enter(plan: &Plan, args: &ChildArgs, sock: c_int, timens: c_int) -> R {
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
                raw::setns(fd_of(&j.fd), libc::CLONE_NEWUSER),
                Step::Setns,
                i,
            )?;
        }
    }
    if slow {
        join_and_unshare(plan, args, sock)?;
    }
    // The cgroup namespace is made after the parent placed us in our cgroup, so that its root
    // is the container's cgroup.
    if plan.creates(Kind::Cgroup) {
        unshare(libc::CLONE_NEWCGROUP)?;
    }
    // The time namespace: its offsets are written before any process is in it (a process
    // after the second fork enters it at its birth, this one at exec).
    if plan.creates(Kind::Time) {
        unshare(libc::CLONE_NEWTIME)?;
        if let Some(off) = &plan.time_offsets {
            time_offsets(timens, off)?;
        }
    }
    let joins_pid = plan.join_ns.iter().any(|j| j.kind == Kind::Pid);
    if slow && (plan.creates(Kind::Pid) || joins_pid) {
        if plan.creates(Kind::Pid) {
            unshare(libc::CLONE_NEWPID)?;
        }
        fork_into_pid_ns(sock)?;
    }
    Ok(())
}

/// The slow path after the joined user namespace: a new user namespace (the parent writes
/// its maps), its root ids, the other joins, the other new namespaces.
fn join_and_unshare(plan: &Plan, args: &ChildArgs, sock: c_int) -> R {
    if plan.creates(Kind::User) {
        unshare(libc::CLONE_NEWUSER)?;
        // An unprivileged parent can write the maps of a dumpable process only. This one
        // is still in the runtime's pid namespace, out of the container's sight.
        if args.dumpable_for_maps {
            set_dumpable(true)?;
        }
        sync::tell(sock, msg::MAPS);
        sync::expect(sock, msg::MAPS_OK)?;
        if args.dumpable_for_maps {
            set_dumpable(false)?;
        }
    }
    become_ns_root(plan)?;
    for (i, j) in indexed(&plan.join_ns) {
        if j.kind != Kind::User {
            check(raw::setns(fd_of(&j.fd), j.kind.flag()), Step::Setns, i)?;
        }
    }
    for j in &plan.join_ns {
        raw::close(fd_of(&j.fd));
    }
    for k in [Kind::Mount, Kind::Net, Kind::Ipc, Kind::Uts] {
        if plan.creates(k) {
            unshare(k.flag())?;
        }
    }
    Ok(())
}

/// Writes the time namespace's offsets through the fd [`open_timens`] opened.
fn time_offsets(timens: c_int, off: &CStr) -> R {
    let fd = Fd(timens);
    if fd.0 < 0 {
        return fail(Step::TimeOffsets, 0);
    }
    let b = off.to_bytes();
    let n = raw::write(fd.0, b);
    if n < 0 {
        return fail(Step::TimeOffsets, 0);
    }
    if n as usize != b.len() {
        return Err((Step::TimeOffsets, libc::EIO, 0));
    }
    Ok(())
}

/// The second fork: only a child enters the pid namespace. CLONE_PARENT makes the runtime its
/// parent, so that it can wait for it. The first process reports the pid and exits.
fn fork_into_pid_ns(sock: c_int) -> R {
    let mut unused: c_int = -1;
    let pid = raw::fork((libc::CLONE_PARENT | libc::SIGCHLD) as c_ulong, &mut unused);
    if pid < 0 {
        return fail(Step::ForkPid, 0);
    }
    if pid > 0 {
        raw::send(
            sock,
            &Msg {
                tag: msg::PID,
                a: pid as i32,
                ..Msg::default()
            },
        );
        raw::exit(0);
    }
    raw::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as c_ulong, 0);
    // The runtime may have died before the line above: then its end of the socket is
    // closed, and this process must not go on alone.
    let mut p = [libc::pollfd {
        fd: sock,
        events: libc::POLLRDHUP,
        revents: 0,
    }];
    if raw::poll(&mut p, 0) > 0 {
        let [q] = p;
        if q.revents & (libc::POLLHUP | libc::POLLRDHUP) != 0 {
            raw::exit(1);
        }
    }
    Ok(())
}

/// What is set inside the new namespaces: loopback up, host and domain names, sysctls, the
/// OOM score.
pub(super) fn settings(plan: &Plan) -> R {
    if plan.creates(Kind::Net) {
        loopback_up()?;
    }
    if let Some(h) = &plan.hostname {
        check(raw::sethostname(h), Step::Hostname, 0)?;
    }
    if let Some(d) = &plan.domainname {
        check(raw::setdomainname(d), Step::Domainname, 0)?;
    }
    for (i, (path, value)) in indexed(&plan.sysctls) {
        write_file(path, value, Step::Sysctl, i)?;
    }
    if let Some(v) = &plan.oom_score_adj {
        write_file(c"/proc/self/oom_score_adj", v, Step::OomScoreAdj, 0)?;
    }
    Ok(())
}

fn write_file(path: &CStr, data: &CStr, step: Step, idx: usize) -> R {
    let fd = Fd(check(
        raw::open(path, libc::O_WRONLY | libc::O_CLOEXEC, 0),
        step,
        idx,
    )?);
    let bytes = data.to_bytes();
    let n = raw::write(fd.0, bytes);
    if n < 0 {
        return fail(step, idx);
    }
    if n as usize != bytes.len() {
        return Err((step, libc::EIO, idx as u32));
    }
    Ok(())
}

fn loopback_up() -> R {
    let s = Fd(check(
        raw::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC),
        Step::Loopback,
        0,
    )?);
    let mut req = raw::zeroed_ifreq();
    let [l, o, ..] = &mut req.ifr_name;
    *l = b'l' as libc::c_char;
    *o = b'o' as libc::c_char;
    check(
        raw::ioctl_ifreq(s.0, libc::SIOCGIFFLAGS, &mut req),
        Step::Loopback,
        0,
    )?;
    // SAFETY: after SIOCGIFFLAGS the union holds the interface's flags.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    check(
        raw::ioctl_ifreq(s.0, libc::SIOCSIFFLAGS, &mut req),
        Step::Loopback,
        0,
    )?;
    Ok(())
}

//! The process itself, after its root: rlimits, stdio, scheduling and memory attributes, its
//! credentials, cwd and umask, then the start gate (and what comes through it: a late
//! program, the startContainer hooks) and the `execve`.
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

use libc::{c_int, c_ulong};

use super::credentials::{self, install_seccomp, seccomp_late};
use super::exec::{self, Late};
use super::hooks::start_hooks;
use super::mounts::IN_ROOT;
use super::{check, fail, fd_of, fds, indexed, io, raw, sync, Fd, R};
use crate::plan::{Gate, Plan, Process};
use crate::proto::{msg, ChildArgs, GATE_OK, GATE_REPORT_MAX};
use crate::sys::{self, errno};
use crate::Step;

/// `signals`: those whose disposition the program must get back to the default (see
/// [`raw::changed_signals`]).
pub(super) fn process(
    plan: &Plan,
    args: &ChildArgs,
    sock: c_int,
    labels: &[Fd; 2],
    signals: u64,
) -> R {
    let p = &plan.process;
    for (i, rl) in indexed(&p.rlimits) {
        check(
            raw::setrlimit(rl.resource as c_int, rl.soft, rl.hard),
            Step::Rlimit,
            i,
        )?;
    }
    io::stdio(plan, sock)?;
    attributes(p)?;
    // The labels of the program to exec, while still privileged (and before a seccomp filter
    // that might refuse the write).
    credentials::write_exec_labels(p, labels)?;
    credentials::credentials(plan)?;
    cwd(plan)?;
    raw::umask(p.umask as libc::mode_t);
    fds::mark_cloexec(args);

    // Find the executable before reporting ready, so that a missing one (or a directory)
    // fails the create, not the start. (A late program is not known yet.)
    if !plan.late_exec {
        exec::find_executable(p.exec_candidates.iter().map(|c| c.as_c_str()))?;
    }
    // Without a FIFO gate the parent opens the gate itself: from here on the process owes it
    // nothing (no parent-death signal). A process waiting for its program keeps it: a pool's
    // processes die with the pool.
    if plan.gate.is_none() && !plan.late_exec {
        raw::prctl(libc::PR_SET_PDEATHSIG, 0, 0);
    }
    // A filter with a notify listener goes in before the gate, so that its listener reaches
    // the process that creates the container; the gate's own syscalls then run under it.
    if !seccomp_late(plan) {
        install_seccomp(plan, args, sock)?;
    }
    sync::tell(sock, msg::READY);
    // The state for the startContainer hooks, which run past the gate.
    let state = if plan.start_hooks.is_empty() {
        Fd(-1)
    } else {
        Fd(sync::recv_fd(sock, msg::STATE)?)
    };
    // The start gate. From here on the process may outlive the one that created it (a
    // `create` exits, a later `start` opens the gate): it drops its parent-death signal only
    // when the parent says create is complete (`RELEASE`), so that a create killed before
    // that takes its half-made process with it; and says it did (`RELEASED`).
    if plan.gate.is_some() {
        sync::expect(sock, msg::RELEASE)?;
        raw::prctl(libc::PR_SET_PDEATHSIG, 0, 0);
        sync::tell(sock, msg::RELEASED);
    }
    let late = gate(plan, args, sock, state.0)?;
    drop(state);

    raw::default_signals(signals);
    // The filter: the last step before `execve`, which is the one syscall of corral's own
    // that runs under the container's profile.
    if seccomp_late(plan) {
        install_seccomp(plan, args, sock)?;
    }
    exec::exec(plan, args, late.as_ref())
}

/// Scheduling and memory attributes, while still privileged (RT policies need
/// CAP_SYS_NICE); they are inherited across the credential change and exec.
fn attributes(p: &Process) -> R {
    if let Some(a) = &p.sched {
        if raw::sched_setattr(a) < 0 {
            return fail(Step::ProcessAttr, 1);
        }
    }
    if let Some(v) = p.ioprio {
        if raw::ioprio_set(v) < 0 {
            return fail(Step::ProcessAttr, 2);
        }
    }
    if let Some((mode, mask, maxnode)) = &p.mempolicy {
        if raw::set_mempolicy(*mode, mask, *maxnode) < 0 {
            return fail(Step::ProcessAttr, 3);
        }
    }
    if let Some(pers) = p.personality {
        if raw::personality(pers as c_ulong) < 0 {
            return fail(Step::ProcessAttr, 0);
        }
    }
    Ok(())
}

/// The cwd is resolved inside the process's root, never through a magic link such as
/// /proc/self/fd/N, whatever fds the process held (CVE-2024-21626).
fn cwd(plan: &Plan) -> R {
    let p = &plan.process;
    // "/" in a root of its own: the root's step ended with chdir("/") there already.
    if plan.rootfs.is_some() && p.cwd.to_bytes() == b"/" {
        return Ok(());
    }
    let root = Fd(raw::open(
        c"/",
        libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        0,
    ));
    if root.0 < 0 {
        return fail(Step::Chdir, 0);
    }
    let dir = Fd(sys::openat2(
        root.0,
        &p.cwd,
        (libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) as u64,
        IN_ROOT,
    ));
    if dir.0 < 0 {
        return fail(Step::Chdir, 0);
    }
    check(raw::fchdir(dir.0), Step::Chdir, 0)?;
    Ok(())
}

/// Waits at the start gate (the parent's `START`, a late program with `START`, or the FIFO
/// opened by a later `start`), then runs the startContainer hooks; the late program if one
/// came.
fn gate(plan: &Plan, args: &ChildArgs, sock: c_int, state: c_int) -> R<Option<Late>> {
    let mut report = [0u8; GATE_REPORT_MAX];
    let hooks_failed = |(_, idx): (usize, usize)| (Step::StartHook, libc::ECANCELED, idx as u32);
    match &plan.gate {
        None if plan.late_exec => {
            let late = receive_late(sock)?;
            raw::prctl(libc::PR_SET_PDEATHSIG, 0, 0);
            start_hooks(plan, args, state, &mut report).map_err(hooks_failed)?;
            Ok(Some(late))
        }
        None => {
            sync::expect(sock, msg::START)?;
            start_hooks(plan, args, state, &mut report).map_err(hooks_failed)?;
            Ok(None)
        }
        Some(g) => {
            fifo_gate(plan, args, g, state, &mut report)?;
            Ok(None)
        }
    }
}

/// `START` with a late program: the memfd, then the stdio fds that `a`'s bits 0, 1, 2 say
/// come with it, put in place once the program's executable is found.
fn receive_late(sock: c_int) -> R<Late> {
    let mut fds = [-1; 4];
    let (m, n) = sync::recv_fds(sock, msg::START, &mut fds)?;
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
                raw::close(fd);
            }
        }
        return Err((Step::Sync, libc::EPROTO, msg::START));
    }
    let l = exec::map_late(mem)?;
    exec::find_executable(l.candidates())?;
    let mut next = given.into_iter();
    for (target, bit) in [(0, 1), (1, 2), (2, 4)] {
        if m.a & bit == 0 {
            continue;
        }
        let fd = next.next().unwrap_or(-1);
        if raw::dup2(fd, target) < 0 {
            return fail(Step::Stdio, target as usize);
        }
        raw::close(fd);
    }
    Ok(l)
}

/// The FIFO gate: blocks in the open until a `start` opens the other end, runs the hooks, and
/// writes their report (or `GATE_OK`) for the `start` to read.
fn fifo_gate(
    plan: &Plan,
    args: &ChildArgs,
    g: &Gate,
    state: c_int,
    report: &mut [u8; GATE_REPORT_MAX],
) -> R {
    let fd = loop {
        let fd = raw::openat(fd_of(&g.dir), &g.name, libc::O_WRONLY | libc::O_CLOEXEC, 0);
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
    raw::close(fd_of(&g.dir));
    let hooks = start_hooks(plan, args, state, report);
    let len = match hooks {
        Ok(()) => {
            if let Some(first) = report.first_mut() {
                *first = GATE_OK;
            }
            1
        }
        Err((len, _)) => len,
    };
    raw::write(fifo.0, report.get(..len).unwrap_or(report));
    drop(fifo);
    if let Err((_, idx)) = hooks {
        return Err((Step::StartHook, libc::ECANCELED, idx as u32));
    }
    Ok(())
}

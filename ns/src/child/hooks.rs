//! The startContainer hooks: each run as a child of this process past the start gate, with
//! the state on its stdin, its output kept for the gate's report, killed at its timeout.
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

use libc::{c_char, c_int, c_ulong};

use super::credentials::{install_seccomp, seccomp_late};
use super::{indexed, raw, Fd};
use crate::plan::{Hook, Plan};
use crate::proto::{ChildArgs, GATE_HOOK, GATE_REPORT_MAX};
use crate::sys::{self, errno};

/// How a hook ended: (kind, value) as in the gate report (0 exited with value, 1 killed by
/// signal value, 2 timed out after value seconds, 3 not started, errno value).
type HookEnd = (u8, i32);

/// Runs the startContainer hooks in order. On a failure, `report` holds the gate report
/// (see `spawn::gate_result`) and the error is (its length, the hook's index).
pub(super) fn start_hooks(
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
        let [v0, v1, v2, v3] = v;
        let [l0, l1] = l;
        let fields = [GATE_HOOK, i.min(255) as u8, kind, 0, v0, v1, v2, v3, l0, l1];
        for (d, s) in head.iter_mut().zip(fields) {
            *d = s;
        }
        return Err((len.saturating_add(10), i));
    }
    Ok(())
}

/// Runs one hook as a child of this process, with its state on stdin; keeps the start of its
/// output in `out`; kills it at its timeout.
fn run_hook(
    plan: &Plan,
    args: &ChildArgs,
    (h, shim_envp): (&Hook, *const *const c_char),
    state: c_int,
    out: &mut [u8],
    len: &mut usize,
) -> HookEnd {
    if raw::faccessat(&h.path, libc::X_OK) != 0 {
        return (3, errno());
    }
    let mut pipe: [c_int; 2] = [-1, -1];
    if raw::pipe2(&mut pipe, libc::O_CLOEXEC) < 0 {
        return (3, errno());
    }
    let [rd, wr] = pipe;
    let (rd, wr) = (Fd(rd), Fd(wr));
    raw::lseek_start(state);
    let mut pidfd: c_int = -1;
    let pid = raw::fork(
        libc::CLONE_PIDFD as c_ulong | libc::SIGCHLD as c_ulong,
        &mut pidfd,
    );
    if pid < 0 {
        return (3, errno());
    }
    if pid == 0 {
        exec_hook(plan, args, (h, shim_envp), state, wr.0);
    }
    let pid = pid as libc::pid_t;
    let pidfd = Fd(pidfd);
    drop(wr);
    raw::fcntl(rd.0, libc::F_SETFL, libc::O_NONBLOCK);
    wait_hook(h, pid, pidfd.0, rd.0, out, len)
}

/// In the hook's process: the state on stdin, its output to the pipe `wr`, nothing else
/// inherited; then its `execve` (through the shim when there is one).
fn exec_hook(
    plan: &Plan,
    args: &ChildArgs,
    (h, shim_envp): (&Hook, *const *const c_char),
    state: c_int,
    wr: c_int,
) -> ! {
    if raw::dup2(state, 0) < 0 || raw::dup2(wr, 1) < 0 || raw::dup2(wr, 2) < 0 {
        raw::exit(126);
    }
    // The exec shim's memfd as fd 3 (close-on-exec), the only one kept past stdio.
    let shim = if args.shim >= 0 && !shim_envp.is_null() {
        raw::dup3(args.shim, 3, libc::O_CLOEXEC)
    } else {
        -1
    };
    sys::close_range(if shim == 3 { 4 } else { 3 }, u32::MAX, 0);
    // (A hook is rare: every signal, rather than reading the dispositions again.)
    raw::default_signals(raw::ALL_SIGNALS);
    // The container's filter, as for its program: the last step before `execve`.
    if seccomp_late(plan) && install_seccomp(plan, args, -1).is_err() {
        raw::exit(126);
    }
    if shim == 3 {
        // SAFETY: the hook's argv is a CStringArray (NULL-terminated); `shim_envp` is the
        // parent's `hook_envps` entry for it (non-null, checked above), NULL-terminated, over
        // the plan's strings, which live on.
        unsafe { raw::execveat_shim(shim, h.argv.as_ptr(), shim_envp) };
    } else {
        raw::execve(&h.path, &h.argv, &h.envp);
    }
    raw::exit(127)
}

/// Waits for the hook `pid` (its `pidfd`) while reading its output from `rd`, killing it at
/// its timeout.
fn wait_hook(
    h: &Hook,
    pid: libc::pid_t,
    pidfd: c_int,
    rd: c_int,
    out: &mut [u8],
    len: &mut usize,
) -> HookEnd {
    let deadline = if h.timeout_secs > 0 {
        raw::now_ms().saturating_add(i64::from(h.timeout_secs).saturating_mul(1000))
    } else {
        i64::MAX
    };
    let mut open = true;
    loop {
        if open {
            open = drain(rd, out, len);
        }
        let left = deadline.saturating_sub(raw::now_ms());
        if left <= 0 {
            raw::kill(pid, libc::SIGKILL);
            reap(pid);
            return (2, h.timeout_secs.min(i32::MAX as u32) as i32);
        }
        let mut fds = [
            libc::pollfd {
                fd: if open { rd } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: pidfd,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let t = if deadline == i64::MAX {
            -1
        } else {
            left.min(i64::from(i32::MAX)) as c_int
        };
        let n = raw::poll(&mut fds, t);
        if n < 0 && errno() != libc::EINTR {
            let e = errno();
            raw::kill(pid, libc::SIGKILL);
            reap(pid);
            return (3, e);
        }
        let [_, exited] = fds;
        if exited.revents != 0 {
            break;
        }
    }
    if open {
        drain(rd, out, len);
    }
    let st = reap(pid);
    if libc::WIFSIGNALED(st) {
        (1, libc::WTERMSIG(st))
    } else {
        (0, libc::WEXITSTATUS(st))
    }
}

/// Waits for a child; its wait status.
fn reap(pid: libc::pid_t) -> c_int {
    let mut st = 0;
    while raw::waitpid(pid, &mut st) < 0 && errno() == libc::EINTR {}
    st
}

/// Reads what the pipe holds now into `out` (past `len`), dropping what does not fit;
/// false once the pipe is closed.
fn drain(fd: c_int, out: &mut [u8], len: &mut usize) -> bool {
    let mut scratch = [0u8; 512];
    loop {
        let room = out.get_mut(*len..).unwrap_or_default();
        let full = room.is_empty();
        let n = if full {
            raw::read(fd, &mut scratch)
        } else {
            raw::read(fd, room)
        };
        if n == 0 {
            return false;
        }
        if n < 0 {
            return errno() == libc::EAGAIN || errno() == libc::EINTR;
        }
        if !full {
            *len = len.saturating_add(n as usize).min(out.len());
        }
    }
}

//! Which fds the process holds: its v1 cgroups joined through the plan's `tasks` fds, every
//! fd of the runtime's closed, and at the end all but stdio and the preserved ones marked
//! close-on-exec.
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

use libc::c_int;

use super::{fd_of, indexed, raw, R};
use crate::plan::Plan;
use crate::proto::ChildArgs;
use crate::sys::{self, errno};
use crate::Step;

/// Into the container's v1 cgroups by itself, before it does anything else (see
/// `CgroupTasks`: no wait for an RCU grace period, unlike a pid the parent writes). The
/// `tasks` fds are not closed one by one: the parent lifted them past `first` and left them
/// out of `keep`, so [`close_others`], right after, closes them with the rest.
pub(super) fn join_cgroups(plan: &Plan) -> R {
    for (i, t) in indexed(&plan.cgroup_tasks) {
        let fd = fd_of(&t.fd);
        let n = raw::write(fd, b"0");
        let e = errno();
        if n != 1 {
            return Err((
                Step::CgroupJoin,
                if n < 0 { e } else { libc::EIO },
                i as u32,
            ));
        }
    }
    Ok(())
}

/// Closes every fd from `first` on except `keep` (sorted): nothing of the runtime's may stay
/// open in the process longer than it is needed, and the caller's fds past the preserved
/// ones never reach the container (CVE-2024-21626).
pub(super) fn close_others(keep: &[c_int], first: c_int, extra: c_int) -> R {
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
        let max = match raw::nofile_limit() {
            Some(cur) => cur.min(1 << 20) as u32,
            None => 1 << 16,
        };
        close_loop(from, max, keep, extra);
    }
    Ok(())
}

/// Without close_range(2): close `from .. to` one by one, sparing `keep` and `extra`.
fn close_loop(from: u32, to: u32, keep: &[c_int], extra: c_int) {
    let mut fd = from;
    while fd < to {
        let n = fd as c_int;
        if n != extra && !keep.contains(&n) {
            raw::close(n);
        }
        fd = fd.saturating_add(1);
    }
}

/// Only stdio, the preserved fds and what this process still needs are open (see
/// [`close_others`]); marks all but stdio and the preserved ones close-on-exec, so that the
/// sync socket's closing tells the parent that exec succeeded.
pub(super) fn mark_cloexec(args: &ChildArgs) {
    let first = args.first.max(3) as u32;
    if sys::close_range(first, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) < 0 {
        for &fd in &args.keep {
            raw::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        }
    }
    let mut fd: c_int = 3;
    while fd < args.first {
        raw::fcntl(fd, libc::F_SETFD, 0);
        fd = fd.saturating_add(1);
    }
}

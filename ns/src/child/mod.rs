//! The container process between the clone and `execve`.
//!
//! Rules for every line under this module: no allocation, no locks, no panics (no indexing
//! that can fail, no unwrap), no Rust std I/O, no logging. Only raw syscalls over the prepared
//! [`Plan`]. A failure is sent to the parent as `(step, errno, index)` and the process exits.
//!
//! The steps are safe functions; the syscalls they make are the small wrappers of [`raw`] (and
//! of `crate::sys`), each one `unsafe` block with the reason it holds. The modules follow the
//! order of the work: [`fds`] (what stays open), [`namespaces`] (join, create, the second
//! fork, the namespace's own settings), [`root`] and [`mounts`] (the root filesystem),
//! [`credentials`] (labels, keyring, capabilities, ids, seccomp), [`io`] (stdio and the
//! terminal), [`process`] (the process's attributes and the start gate), [`hooks`] (the
//! startContainer hooks), [`exec`] (the program), over [`sync`] (the socket to the parent).
//!
//! The lints below hold those rules with the compiler (each module repeats them), and
//! `ns/tests/child_code.rs` checks the release build: nothing reachable from [`run`] may call
//! the allocator or a panic routine.
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

mod credentials;
mod exec;
mod fds;
mod hooks;
mod io;
mod mounts;
mod namespaces;
mod process;
mod raw;
mod root;
mod sync;

use libc::c_int;

#[cfg(test)]
pub(crate) use exec::map_late;

use crate::plan::Plan;
use crate::proto::{msg, ChildArgs, Msg};
use crate::sys::errno;
use crate::Step;

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

/// An fd this process opened and closes when done with it (-1: none).
struct Fd(c_int);

impl Drop for Fd {
    fn drop(&mut self) {
        if self.0 >= 0 {
            raw::close(self.0);
        }
    }
}

fn fd_of(fd: &std::os::fd::OwnedFd) -> c_int {
    std::os::fd::AsRawFd::as_raw_fd(fd)
}

/// Entry point of the child. Never returns.
///
/// # Safety
/// Must be called only in the child right after the clone, with the parent's plan: the
/// process must have one thread, and nothing of the parent's may be dropped or unlocked in it.
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
    let timens = namespaces::open_timens(plan, args.first);
    let early = if dumpable_until_go {
        Ok(())
    } else {
        namespaces::set_dumpable(false)
    };
    let (step, err, idx) = match early.and_then(|()| setup(plan, args, sock, parent_sock, timens)) {
        Ok(()) => (Step::Exec, libc::ENOENT, 0),
        Err(f) => f,
    };
    raw::send(
        sock,
        &Msg {
            tag: msg::ERR,
            a: step as u32 as i32,
            b: err,
            c: idx,
        },
    );
    raw::exit(127)
}

/// Everything from the clone to `execve`, in order; returns only on failure.
fn setup(plan: &Plan, args: &ChildArgs, sock: c_int, parent_sock: c_int, timens: c_int) -> R {
    raw::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0);
    raw::close(parent_sock);
    fds::join_cgroups(plan)?;
    for fd in &plan.close_fds {
        raw::close(*fd);
    }
    fds::close_others(&args.keep, args.first, timens)?;
    raw::umask(0);
    // The signals the host ignores or catches, read while the host's /proc is still this
    // process's (before any namespace is joined or the root changes); nothing in this
    // process changes a disposition before the exec.
    let signals = raw::changed_signals();
    // The host's /proc, for the security-module attribute files (see `Plan::attr_root`).
    let attr_root = credentials::open_attr_root(plan)?;
    sync::expect(sock, msg::GO)?;
    namespaces::enter(plan, args, sock, timens)?;
    namespaces::settings(plan)?;
    if let Some(k) = &plan.keyring {
        credentials::session_keyring(k, attr_root.0, plan.process.exec_labels.len())?;
    }
    // The exec labels go to this thread's own attribute files, in the host's /proc; opened now,
    // by the process that will exec.
    let labels = credentials::open_exec_labels(plan, attr_root.0)?;
    if let Some(r) = &plan.rootfs {
        root::rootfs(r, &args.fresh, plan.hook_pause, sock)?;
    }
    process::process(plan, args, sock, &labels, signals)
}

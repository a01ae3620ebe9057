//! The process's stdio: the fds the caller gave, or a pty opened in the container whose
//! master goes to the parent (and, for the container's init, bound over `/dev/console`).
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

use super::{check, fail, indexed, raw, sync, Fd, R};
use crate::plan::Plan;
use crate::proto::msg;
use crate::sys::{errno, FdPath};
use crate::Step;

/// The plan's stdio fds onto 0, 1, 2 (one already in place is made inheritable), then the
/// terminal or a new session as asked.
pub(super) fn stdio(plan: &Plan, sock: c_int) -> R {
    let p = &plan.process;
    for (i, &fd) in indexed(&p.stdio) {
        let target = i as c_int;
        if fd >= 0 && fd != target {
            check(raw::dup2(fd, target), Step::Stdio, i)?;
        } else if fd == target {
            raw::fcntl(fd, libc::F_SETFD, 0);
        }
    }
    if p.terminal {
        terminal(
            sock,
            p.setsid,
            p.setsid && plan.rootfs.as_ref().is_some_and(|r| r.mount_ns),
        )?;
    } else if p.setsid {
        check(raw::setsid(), Step::Setsid, 0)?;
    }
    Ok(())
}

/// Opens a pty in the container's /dev/ptmx, makes its slave the controlling terminal and
/// stdio (and, for the container's init, `/dev/console`), and sends the master to the parent.
fn terminal(sock: c_int, setsid: bool, console: bool) -> R {
    let m = Fd(check(
        raw::open(
            c"/dev/ptmx",
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
            0,
        ),
        Step::Terminal,
        0,
    )?);
    let unlock: c_int = 0;
    check(
        raw::ioctl_int_ptr(m.0, libc::TIOCSPTLCK, &unlock),
        Step::Terminal,
        1,
    )?;
    // TIOCGPTPEER: the slave without a path lookup.
    const TIOCGPTPEER: libc::c_ulong = 0x5441;
    let s = Fd(check(
        raw::ioctl_int(m.0, TIOCGPTPEER, libc::O_RDWR | libc::O_NOCTTY),
        Step::Terminal,
        2,
    )?);
    if setsid {
        check(raw::setsid(), Step::Setsid, 0)?;
    } else {
        // An exec'd process: a session of its own to own the terminal.
        raw::setsid();
    }
    check(raw::ioctl_int(s.0, libc::TIOCSCTTY, 0), Step::Terminal, 3)?;
    if console {
        bind_console(s.0)?;
    }
    let mut i = 0;
    while i < 3 {
        check(raw::dup2(s.0, i), Step::Terminal, 4)?;
        i = i.saturating_add(1);
    }
    // The master goes to the parent with SCM_RIGHTS.
    sync::send_fd(sock, msg::TTY, m.0, Step::Terminal)
}

/// The container's `/dev/console` is its terminal (config-linux.md, "Default Devices"): an
/// empty file made if missing (never following a symlink), the pty slave bound over it.
fn bind_console(slave: c_int) -> R {
    let f = raw::open(
        c"/dev/console",
        libc::O_CREAT | libc::O_WRONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY,
        0o600,
    );
    if f < 0 && errno() != libc::EEXIST {
        return fail(Step::Terminal, 5);
    }
    drop(Fd(f));
    let target = Fd(raw::open(
        c"/dev/console",
        libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        0,
    ));
    if target.0 < 0 {
        return fail(Step::Terminal, 5);
    }
    let (src, dst) = (FdPath::new(slave), FdPath::new(target.0));
    check(
        raw::mount(Some(&src), &dst, None, libc::MS_BIND, None),
        Step::Terminal,
        5,
    )?;
    Ok(())
}

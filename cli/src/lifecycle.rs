//! Making containers from bundles: `create`, `run` (foreground, with signals passed on and
//! the terminal bridged, or detached), and what both write (pid file, timings).

use std::path::Path;

use runtime::Container;

use crate::args::CreateArgs;
use crate::error::{msg, R};
use crate::signals::{block_signals, wait_forwarding};

/// A detached container with a terminal needs somewhere to send the pty master.
fn check_terminal(c: &CreateArgs) -> R<()> {
    if c.console_socket.is_none() {
        let b = runtime::Bundle::load(&c.bundle)?;
        if b.spec.process().as_ref().and_then(|p| p.terminal()) == Some(true) {
            return Err(msg(
                "process.terminal is true: a detached container needs --console-socket",
            ));
        }
    }
    Ok(())
}

pub fn create(root: &Path, id: &str, c: &CreateArgs) -> R<()> {
    check_terminal(c)?;
    create_with(c, || {
        Ok(Container::create(id, &c.bundle, &c.options(root))?)
    })
}

/// `create` of the container `make` creates (from a bundle, or from an image): its timings
/// and pid file written, left waiting for `start`.
pub fn create_with(c: &CreateArgs, make: impl FnOnce() -> R<Container>) -> R<()> {
    let ct = make()?;
    print_timings(c, &ct);
    write_pid_file(c, &ct)?;
    ct.detach()?;
    Ok(())
}

/// `--timings`: the spawn's phases on stderr, `corral: timings: check 0.041ms, ...`.
fn print_timings(c: &CreateArgs, ct: &Container) {
    if c.timings {
        let t = ct.timings();
        eprintln!(
            "corral: timings: {t} (total {:.3}ms)",
            t.total().as_secs_f64() * 1e3
        );
    }
}

fn write_pid_file(c: &CreateArgs, ct: &Container) -> R<()> {
    if let Some(p) = &c.pid_file {
        // Atomically, as engines poll for it.
        runtime::atomic_file::write(p, ct.pid().to_string().as_bytes(), 0o644)
            .map_err(|e| msg(format!("--pid-file {}: {e}", p.display())))?;
    }
    Ok(())
}

pub fn run(root: &Path, id: &str, c: &CreateArgs, detach: bool, keep: bool) -> R {
    if detach {
        check_terminal(c)?;
    }
    run_with(
        c,
        detach,
        keep,
        || {
            // Started by this process alone: the socket gate, no FIFO.
            let opts = runtime::Options {
                start_in_process: true,
                ..c.options(root)
            };
            Ok(Container::create(id, &c.bundle, &opts)?)
        },
        |ct, _| Ok(ct.delete()?),
    )
}

/// runc's `state ID`: the container's state as the OCI runtime spec has it, on stdout.
pub fn state(root: &Path, id: &str) -> R {
    crate::output::print_json(&Container::load(root, id)?.oci_state().to_json())?;
    Ok(0)
}

/// runc's `kill [--all] ID [SIGNAL]` of a runtime container (SIGTERM by default).
pub fn signal(root: &Path, id: &str, sig: Option<i32>, all: bool) -> R<()> {
    let c = Container::load(root, id)?;
    let sig = sig.unwrap_or(libc::SIGTERM);
    if all {
        c.signal_all(sig)?;
    } else {
        c.signal(sig)?;
    }
    Ok(())
}

/// `run` of the container `make` creates (from a bundle, or from an image): started, then
/// detached (`detach`), or waited for with signals passed on and kept (`keep`) or deleted
/// by `delete` (`true`: forced, it may still run).
pub fn run_with(
    c: &CreateArgs,
    detach: bool,
    keep: bool,
    make: impl FnOnce() -> R<Container>,
    delete: impl FnOnce(Container, bool) -> R<()>,
) -> R {
    if detach {
        let mut ct = make()?;
        ct.start()?;
        print_timings(c, &ct);
        write_pid_file(c, &ct)?;
        ct.detach()?;
        return Ok(0);
    }
    // Block the forwarded signals before the container exists, so that none is lost or kills
    // corral; they are read from a signalfd and passed on. The container's process starts
    // with an empty mask.
    let sfd = block_signals().map_err(|e| msg(format!("signalfd: {e}")))?;
    let mut ct = make()?;
    ct.start()?;
    print_timings(c, &ct);
    if let Err(e) = write_pid_file(c, &ct) {
        let _ = delete(ct, true);
        return Err(e);
    }
    let pidfd = ct.pidfd().unwrap_or(-1);
    let console = ct.take_console();
    let status = {
        let ctr = std::cell::RefCell::new(&mut ct);
        let exited = || -> R<Option<runtime::ExitStatus>> { Ok(ctr.borrow_mut().try_wait()?) };
        let signal = |s: i32| -> R<()> { Ok(ctr.borrow().signal(s)?) };
        match console {
            Some(m) => crate::tty::bridge(&sfd, pidfd, m, exited, signal)?,
            None => wait_forwarding(&sfd, pidfd, exited, signal)?,
        }
    };
    if keep {
        ct.detach()?;
    } else {
        delete(ct, false)?;
    }
    Ok(status.code())
}

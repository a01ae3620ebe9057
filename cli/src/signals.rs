//! Signals: names and numbers, the ones a foreground container gets passed on (read from a
//! signalfd), and waiting for a process while passing them on.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::error::{msg, R};

pub fn parse_signal(s: &str) -> R<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        return Err(msg(format!("unknown signal {s:?}")));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .map(|s| s as i32)
        .map_err(|_| msg(format!("unknown signal {s:?}")))
}

/// Signals that a foreground `run` passes on to the container.
pub const FORWARDED: [libc::c_int; 7] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
];

/// Waits for `pidfd`'s process, passing on the forwarded signals through `signal`.
pub fn wait_forwarding(
    sfd: &OwnedFd,
    pidfd: libc::c_int,
    mut exited: impl FnMut() -> R<Option<runtime::ExitStatus>>,
    signal: impl Fn(i32) -> R<()>,
) -> R<runtime::ExitStatus> {
    loop {
        if let Some(st) = exited()? {
            return Ok(st);
        }
        let mut fds = [pollin(pidfd), pollin(sfd.as_raw_fd())];
        let timeout = if pidfd < 0 { 50 } else { -1 };
        // SAFETY: polling two fds (a negative fd is ignored by poll).
        if unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout) } < 0 {
            continue;
        }
        if fds[1].revents & libc::POLLIN != 0 {
            if let Some(sig) = read_signal(sfd) {
                tracing::debug!(signal = sig, "forwarding");
                if let Err(e) = signal(sig) {
                    eprintln!("corral: {e}");
                }
            }
        }
    }
}

/// A pollfd waiting for input on `fd` (a negative fd is ignored by poll).
pub fn pollin(fd: libc::c_int) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

/// Reads one signal number from a signalfd.
pub fn read_signal(sfd: &OwnedFd) -> Option<i32> {
    // SAFETY: all-zero is a valid signalfd_siginfo.
    let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
    // SAFETY: reading one record into a buffer of its size.
    let r = unsafe {
        libc::read(
            sfd.as_raw_fd(),
            (&mut info as *mut libc::signalfd_siginfo).cast(),
            std::mem::size_of::<libc::signalfd_siginfo>(),
        )
    };
    (r == std::mem::size_of::<libc::signalfd_siginfo>() as isize).then_some(info.ssi_signo as i32)
}

pub fn block_signals() -> std::io::Result<OwnedFd> {
    // SAFETY: plain sigset manipulation and signalfd creation.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in FORWARDED {
            libc::sigaddset(&mut set, s);
        }
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("KILL").ok(), Some(9));
        assert_eq!(parse_signal("sigterm").ok(), Some(15));
        assert_eq!(parse_signal("10").ok(), Some(10));
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("0").is_err());
    }
}

//! The terminal bridge of a foreground container or exec with a pty.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;

use crate::error::R;
use crate::signals::{pollin, read_signal};

/// Bridges the caller's terminal (or plain stdio) and the container's pty master until the
/// process exits: stdin to the master, the master to stdout, window size changes passed on,
/// other forwarded signals sent to the process. The caller's terminal is raw meanwhile.
pub fn bridge(
    sfd: &OwnedFd,
    pidfd: libc::c_int,
    master: OwnedFd,
    mut exited: impl FnMut() -> R<Option<runtime::ExitStatus>>,
    signal: impl Fn(i32) -> R<()>,
) -> R<runtime::ExitStatus> {
    use nix::sys::termios;
    let stdin = std::io::stdin();
    let saved = termios::tcgetattr(&stdin).ok();
    if let Some(t) = &saved {
        let mut raw = t.clone();
        termios::cfmakeraw(&mut raw);
        let _ = termios::tcsetattr(&stdin, termios::SetArg::TCSANOW, &raw);
    }
    let copy_winsize = || {
        // SAFETY: TIOCGWINSZ/TIOCSWINSZ on two fds with a winsize buffer.
        unsafe {
            let mut ws: libc::winsize = std::mem::zeroed();
            if libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) == 0 {
                libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws);
            }
        }
    };
    copy_winsize();
    // SAFETY: setting O_NONBLOCK on an owned fd.
    unsafe {
        let fl = libc::fcntl(master.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(master.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
    let write_all = |fd: libc::c_int, mut buf: &[u8]| {
        while !buf.is_empty() {
            // SAFETY: writing from a live buffer.
            let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
            if n <= 0 {
                if n < 0 && Errno::last() == Errno::EAGAIN {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                    continue;
                }
                return;
            }
            buf = &buf[n as usize..];
        }
    };
    let drain = || {
        let mut buf = [0u8; 8192];
        loop {
            // SAFETY: reading into a live buffer.
            let n = unsafe { libc::read(master.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return n == 0 || Errno::last() != Errno::EAGAIN;
            }
            write_all(1, &buf[..n as usize]);
        }
    };
    let mut stdin_open = true;
    let mut buf = [0u8; 8192];
    let status = loop {
        if let Some(st) = exited()? {
            drain();
            break st;
        }
        let mut fds = [
            pollin(pidfd),
            pollin(sfd.as_raw_fd()),
            pollin(master.as_raw_fd()),
            pollin(if stdin_open { 0 } else { -1 }),
        ];
        // SAFETY: polling fds owned here (negative ones are ignored).
        if unsafe { libc::poll(fds.as_mut_ptr(), 4, if pidfd < 0 { 50 } else { -1 }) } < 0 {
            continue;
        }
        if fds[2].revents & (libc::POLLIN | libc::POLLHUP) != 0 && drain() {
            // The slave side is closed: the process is exiting.
            if fds[0].revents == 0 && pidfd >= 0 {
                let mut p = [pollin(pidfd)];
                // SAFETY: polling one fd.
                unsafe { libc::poll(p.as_mut_ptr(), 1, 1000) };
            }
        }
        if fds[3].revents & (libc::POLLIN | libc::POLLHUP) != 0 {
            // SAFETY: reading into a live buffer.
            let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                stdin_open = false;
                if saved.is_none() {
                    write_all(master.as_raw_fd(), &[4]); // end of input: ^D
                }
            } else {
                write_all(master.as_raw_fd(), &buf[..n as usize]);
            }
        }
        if fds[1].revents & libc::POLLIN != 0 {
            match read_signal(sfd) {
                Some(libc::SIGWINCH) => copy_winsize(),
                Some(sig) => {
                    if let Err(e) = signal(sig) {
                        eprintln!("corral: {e}");
                    }
                }
                None => {}
            }
        }
    };
    if let Some(t) = &saved {
        let _ = termios::tcsetattr(&stdin, termios::SetArg::TCSANOW, t);
    }
    Ok(status)
}

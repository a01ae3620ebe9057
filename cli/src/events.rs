//! `corral events`: stats every interval, OOM kills as they happen.

use std::io::Write as _;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use runtime::{Container, Status};
use serde_json::json;

use crate::error::{msg, R};
use crate::signals::pollin;

/// `--interval`: a duration as humantime reads it (`5s`, `500ms`, `1m30s`, `2h`), or a bare
/// number of seconds; more than zero.
fn parse_duration(s: &str) -> R<std::time::Duration> {
    let d = match s.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 => {
            std::time::Duration::try_from_secs_f64(secs).ok()
        }
        Ok(_) => None,
        Err(_) => humantime::parse_duration(s).ok(),
    };
    d.filter(|d| !d.is_zero()).ok_or_else(|| {
        msg(format!(
            "--interval {s:?}: want a duration such as 5s, 500ms or 1m30s"
        ))
    })
}

pub fn events(root: &Path, id: &str, once: bool, interval: &str) -> R {
    let every = parse_duration(interval)?;
    let c = Container::load(root, id)?;
    if once {
        println!("{}", c.stats_json()?);
        return Ok(0);
    }
    // OOM kills are pushed by the kernel (eventfd on v1, inotify on v2) and printed as they
    // happen; stats every interval.
    let notifier = c.oom_notifier()?;
    let mut ooms = c.stats()?.oom_kill_count.unwrap_or(0);
    // Wake when the container's process goes, too.
    // SAFETY: plain syscall; a negative result is ignored by poll below.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, c.pid(), 0) } as i32;
    // SAFETY: pidfd_open returned a new fd that nothing else owns.
    let pidfd = (pidfd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(pidfd) });
    drop(c);
    let mut next = std::time::Instant::now();
    loop {
        let wait = next.saturating_duration_since(std::time::Instant::now());
        let mut p = [
            pollin(notifier.as_raw_fd()),
            pollin(pidfd.as_ref().map(|f| f.as_raw_fd()).unwrap_or(-1)),
        ];
        // SAFETY: polling owned fds (a negative one is ignored).
        let n = unsafe {
            libc::poll(
                p.as_mut_ptr(),
                2,
                wait.as_millis().min(i32::MAX as u128) as i32,
            )
        };
        let fired = n > 0 && p[0].revents & libc::POLLIN != 0;
        if fired {
            let mut buf = [0u8; 4096];
            // SAFETY: consuming the notification into a buffer we own.
            unsafe { libc::read(notifier.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        }
        // Re-load each time: the state lock must not be held while waiting.
        let c = match Container::load(root, id) {
            Ok(c) => c,
            Err(runtime::Error::NotFound(_)) => return Ok(0),
            Err(e) => return Err(e.into()),
        };
        // The oom_kill counter decides where the host has one (v2's memory.events also
        // changes for other reasons); else the notification itself.
        let oom = match c.stats().ok().and_then(|s| s.oom_kill_count) {
            Some(now) => {
                let grew = now > ooms;
                ooms = ooms.max(now);
                grew
            }
            None => fired,
        };
        if oom {
            println!("{}", json!({"type": "oom", "id": id}));
        }
        if c.status() == Status::Stopped {
            let _ = std::io::stdout().flush();
            return Ok(0);
        }
        if std::time::Instant::now() >= next {
            println!("{}", c.stats_json()?);
            next = std::time::Instant::now() + every;
        }
        let _ = std::io::stdout().flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("5s").ok(),
            Some(std::time::Duration::from_secs(5))
        );
        assert_eq!(
            parse_duration("250ms").ok(),
            Some(std::time::Duration::from_millis(250))
        );
        assert_eq!(
            parse_duration("1m30s").ok(),
            Some(std::time::Duration::from_secs(90))
        );
        assert_eq!(
            parse_duration("2").ok(),
            Some(std::time::Duration::from_secs(2))
        );
        for bad in ["x", "0", "0s", "-1", "5parsecs", ""] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}

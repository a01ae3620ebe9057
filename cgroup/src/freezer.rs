//! Freezing: v1 `freezer.state`, v2 `cgroup.freeze`.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::fs::{read, read_opt, write};

const TIMEOUT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(5);

/// Writes FROZEN/THAWED and waits until the state is reached. Like runc,
/// FROZEN is re-written while the kernel reports FREEZING.
pub(crate) fn set_v1(dir: &Path, frozen: bool) -> Result<()> {
    let want = if frozen { "FROZEN" } else { "THAWED" };
    let path = dir.join("freezer.state");
    let start = Instant::now();
    loop {
        write(&path, want)?;
        let cur = read(&path)?;
        if cur.trim() == want {
            return Ok(());
        }
        if start.elapsed() > TIMEOUT {
            return Err(Error::FreezeTimeout {
                path,
                state: want.to_string(),
            });
        }
        std::thread::sleep(POLL);
    }
}

/// Writes `cgroup.freeze` and waits for `cgroup.events` to report it.
pub(crate) fn set_v2(dir: &Path, frozen: bool) -> Result<()> {
    let v = if frozen { "1" } else { "0" };
    write(&dir.join("cgroup.freeze"), v)?;
    let events = dir.join("cgroup.events");
    let start = Instant::now();
    loop {
        let Some(ev) = read_opt(&events)? else {
            return Ok(());
        };
        let done = ev.lines().any(|l| {
            let mut it = l.split_whitespace();
            it.next() == Some("frozen") && it.next() == Some(v)
        });
        if done {
            return Ok(());
        }
        if start.elapsed() > TIMEOUT {
            return Err(Error::FreezeTimeout {
                path: events,
                state: format!("frozen {v}"),
            });
        }
        std::thread::sleep(POLL);
    }
}

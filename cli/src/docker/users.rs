//! User and group names of a running container, read from its own `/etc/passwd` and
//! `/etc/group` (through `/proc/PID/root`, resolved inside it with `RESOLVE_IN_ROOT`: a
//! symlinked `/etc/passwd` in the image cannot make corral read the host's).

use std::io::Read;
use std::path::Path;

use runtime::in_root::{open_regular, IN_ROOT};

fn read_in_root(pid: i32, path: &str) -> Result<String, String> {
    let root = std::fs::File::open(format!("/proc/{pid}/root"))
        .map_err(|e| format!("the container's root: {e}"))?;
    let mut f = open_regular(&root, Path::new(path), IN_ROOT)
        .map_err(|e| format!("the container's {path}: {e}"))?;
    let mut s = String::new();
    f.by_ref()
        .take(4 << 20)
        .read_to_string(&mut s)
        .map_err(|e| format!("the container's {path}: {e}"))?;
    Ok(s)
}

/// `name`'s uid and primary gid in the container.
pub fn user(pid: i32, name: &str) -> Result<(u32, u32), String> {
    let text = read_in_root(pid, "etc/passwd")?;
    for l in text.lines() {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() >= 4 && f[0] == name {
            if let (Ok(u), Ok(g)) = (f[2].parse(), f[3].parse()) {
                return Ok((u, g));
            }
        }
    }
    Err(format!(
        "unable to find user {name}: no matching entries in passwd file"
    ))
}

/// `name`'s gid in the container.
pub fn group(pid: i32, name: &str) -> Result<u32, String> {
    let text = read_in_root(pid, "etc/group")?;
    for l in text.lines() {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() >= 3 && f[0] == name {
            if let Ok(g) = f[2].parse() {
                return Ok(g);
            }
        }
    }
    Err(format!(
        "unable to find group {name}: no matching entries in group file"
    ))
}

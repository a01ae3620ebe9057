use std::fmt::Write as _;

use crate::Error;

/// One line of a `uid_map` / `gid_map`: `count` ids from `inside` map to `outside` on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdMap {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

fn render(maps: &[IdMap]) -> String {
    let mut s = String::new();
    for m in maps {
        let _ = writeln!(s, "{} {} {}", m.inside, m.outside, m.count);
    }
    s
}

/// Writes the id maps of process `pid`'s user namespace. With `deny_setgroups`, writes `deny`
/// to `setgroups` first (needed when the writer lacks CAP_SETGID in the parent namespace).
pub fn write_id_maps(
    pid: i32,
    uid: &[IdMap],
    gid: &[IdMap],
    deny_setgroups: bool,
) -> Result<(), Error> {
    let write = |name: &str, data: &str| -> Result<(), Error> {
        if data.is_empty() {
            return Ok(());
        }
        let path = format!("/proc/{pid}/{name}");
        std::fs::write(&path, data).map_err(|e| Error::Io {
            what: format!("writing {:?} to", data.trim_end()),
            path: path.into(),
            source: e,
        })
    };
    if deny_setgroups {
        write("setgroups", "deny")?;
    }
    write("uid_map", &render(uid))?;
    write("gid_map", &render(gid))?;
    Ok(())
}

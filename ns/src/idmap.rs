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
    // SAFETY: plain getters.
    let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
    // Without privilege a process may only map its own id, once; anything else goes through
    // the setuid helpers newuidmap/newgidmap (shadow's uidmap package, /etc/subuid).
    let own =
        |maps: &[IdMap], id: u32| maps.len() == 1 && maps[0].outside == id && maps[0].count == 1;
    if euid != 0 && !(own(uid, euid) && own(gid, egid)) {
        helper("newuidmap", pid, uid)?;
        helper("newgidmap", pid, gid)?;
        return Ok(());
    }
    if deny_setgroups {
        write("setgroups", "deny")?;
    }
    write("uid_map", &render(uid))?;
    write("gid_map", &render(gid))?;
    Ok(())
}

fn helper(tool: &str, pid: i32, maps: &[IdMap]) -> Result<(), Error> {
    let mut cmd = std::process::Command::new(tool);
    cmd.arg(pid.to_string());
    for m in maps {
        cmd.args([
            m.inside.to_string(),
            m.outside.to_string(),
            m.count.to_string(),
        ]);
    }
    let out = cmd.output().map_err(|e| Error::Io {
        what: format!("running {tool} (install the uidmap package) for"),
        path: format!("/proc/{pid}").into(),
        source: e,
    })?;
    if !out.status.success() {
        return Err(Error::Plan(format!(
            "{tool} {pid}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

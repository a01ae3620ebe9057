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
///
/// Without privilege, maps other than the caller's own uid and gid (once each) are written by
/// the setuid helpers newuidmap and newgidmap instead, and `deny_setgroups` is not used:
/// newgidmap itself denies setgroups for a map of only the caller's own gid and leaves it
/// allowed when a range comes from /etc/subgid. The plan's `deny_setgroups` (the child skips
/// `setgroups` when it is set) has to agree with that.
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
    let (euid, egid) = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
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

/// Runs `tool` (newuidmap or newgidmap) to write `maps` for `pid`. Its complaint becomes one
/// line of the error, with the command that was run.
fn helper(tool: &str, pid: i32, maps: &[IdMap]) -> Result<(), Error> {
    let mut args = vec![pid.to_string()];
    for m in maps {
        args.extend([
            m.inside.to_string(),
            m.outside.to_string(),
            m.count.to_string(),
        ]);
    }
    let (file, subids) = if tool == "newuidmap" {
        ("uid_map", "/etc/subuid")
    } else {
        ("gid_map", "/etc/subgid")
    };
    let path = std::path::PathBuf::from(format!("/proc/{pid}/{file}"));
    let out = std::process::Command::new(tool)
        .args(&args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| Error::Io {
            what: if e.kind() == std::io::ErrorKind::NotFound {
                format!("running {tool} (install the uidmap package) to write")
            } else {
                format!("running {tool} to write")
            },
            path: path.clone(),
            source: e,
        })?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        let said = if said.is_empty() {
            format!("{tool} failed ({}) and said nothing", out.status)
        } else {
            said
        };
        // The range check is the usual failure: say where the ranges come from.
        let hint = if said.contains("not allowed") {
            format!("; each range must be the caller's own id or lie in its {subids} ranges")
        } else {
            String::new()
        };
        return Err(Error::Io {
            what: format!("{tool} could not write"),
            path,
            source: std::io::Error::other(format!(
                "{said} (ran `{tool} {}`{hint})",
                args.join(" ")
            )),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_one_line_per_range() {
        let m = |inside, outside, count| IdMap {
            inside,
            outside,
            count,
        };
        assert_eq!(
            render(&[m(0, 1000, 1), m(1, 100000, 65536)]),
            "0 1000 1\n1 100000 65536\n"
        );
    }

    #[test]
    fn a_helper_that_fails_silently_is_still_explained() {
        // `false` stands in for a helper that exits 1 without a word.
        let e = helper("false", 1, &[]).unwrap_err().to_string();
        assert_eq!(
            e,
            "false could not write /proc/1/gid_map: false failed (exit status: 1) and said nothing (ran `false 1`)"
        );
    }

    #[test]
    fn a_missing_helper_names_its_package() {
        let e = helper("corral-no-such-helper", 1, &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("install the uidmap package"), "{e}");
        assert!(e.contains("/proc/1/gid_map"), "{e}");
    }
}

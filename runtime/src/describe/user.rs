//! `user[:group]` resolved against a root's `/etc/passwd` and `/etc/group`.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

fn invalid(reason: String) -> Error {
    Error::Config {
        field: "process.user".into(),
        reason,
    }
}

fn lookup(file: Option<PathBuf>, name: &str, field: usize) -> Option<(u32, u32)> {
    let text = std::fs::read_to_string(file?).ok()?;
    for line in text.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() > field.max(3) && f[0] == name {
            let id = f[2].parse().ok()?;
            let gid = f[3].parse().unwrap_or(id);
            return Some((id, gid));
        }
    }
    None
}

fn lookup_uid_gid(file: Option<PathBuf>, uid: u32) -> Option<u32> {
    let text = std::fs::read_to_string(file?).ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 3 && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[3].parse().ok())?
    })
}

/// Resolves `user[:group]` (names or numbers); `find` gives the host path of a file of the
/// root (`etc/passwd`, `etc/group`), `what` names the root in errors ("the image's").
pub fn resolve(
    find: &dyn Fn(&str) -> Option<PathBuf>,
    what: &str,
    spec: &str,
) -> Result<(u32, u32)> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let (uid, mut gid) = match u.parse::<u32>() {
        Ok(n) => (n, lookup_uid_gid(find("etc/passwd"), n).unwrap_or(n)),
        Err(_) => lookup(find("etc/passwd"), u, 3)
            .ok_or_else(|| invalid(format!("user {u:?}: no such user in {what} /etc/passwd")))?,
    };
    if let Some(g) = g {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                lookup(find("etc/group"), g, 2)
                    .ok_or_else(|| {
                        invalid(format!("group {g:?}: no such group in {what} /etc/group"))
                    })?
                    .0
            }
        };
    }
    Ok((uid, gid))
}

/// [`resolve`] in the root filesystem directory `dir`.
pub fn resolve_in_dir(dir: &Path, spec: &str) -> Result<(u32, u32)> {
    // Component by component without following links: a link in the root (to the host's
    // /etc) must not be read on the host.
    let find = |rel: &str| -> Option<PathBuf> {
        let comps: Vec<&str> = rel.split('/').filter(|c| !c.is_empty()).collect();
        let mut p = dir.to_path_buf();
        for (i, c) in comps.iter().enumerate() {
            p.push(c);
            let m = std::fs::symlink_metadata(&p).ok()?;
            let last = i + 1 == comps.len();
            if (last && !m.is_file()) || (!last && !m.is_dir()) {
                return None;
            }
        }
        Some(p)
    };
    resolve(&find, "the root's", spec)
}

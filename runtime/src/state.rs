//! Container state on disk: `<root>/<id>/state.json`, written atomically.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The default state root.
pub const DEFAULT_ROOT: &str = "/run/corral";

/// Lifecycle status, as in the OCI state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Stopped,
}

/// The OCI state plus what corral needs to find and undo what it made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    pub status: Status,
    pub pid: i32,
    pub bundle: PathBuf,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// Start time of `pid` (field 22 of /proc/PID/stat), so a recycled pid is not mistaken.
    #[serde(default)]
    pub pid_start_time: u64,
    /// Cgroup directories that this container's create made.
    #[serde(default)]
    pub cgroup_dirs: Vec<PathBuf>,
    /// The overlay root filesystem mounted for this container, if any.
    #[serde(default)]
    pub rootfs_mount: Option<PathBuf>,
}

/// Checks a container id: 1 to 255 characters from `[A-Za-z0-9_.-]`, not starting with `.`
/// or `-`.
pub fn check_id(id: &str) -> Result<()> {
    let bad = |reason: &str| Error::InvalidId {
        id: id.to_string(),
        reason: reason.into(),
    };
    if id.is_empty() || id.len() > 255 {
        return Err(bad("must be 1 to 255 characters"));
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    {
        return Err(bad("may only hold letters, digits, '_', '.' and '-'"));
    }
    if id.starts_with('.') || id.starts_with('-') {
        return Err(bad("must not start with '.' or '-'"));
    }
    Ok(())
}

/// The state directory of a container, removed on drop unless [`StateDir::keep`] was called.
#[derive(Debug)]
pub struct StateDir {
    path: PathBuf,
    id: String,
    keep: bool,
}

impl StateDir {
    /// Creates `<root>/<id>`; fails with `AlreadyExists` if it is there.
    pub fn create(root: &Path, id: &str) -> Result<StateDir> {
        check_id(id)?;
        let io = |what: &str, path: &Path, e: std::io::Error| Error::Io {
            id: id.to_string(),
            what: what.into(),
            path: path.to_path_buf(),
            source: e,
        };
        std::fs::create_dir_all(root).map_err(|e| io("creating state root", root, e))?;
        let path = root.join(id);
        match std::fs::create_dir(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::AlreadyExists(id.to_string()))
            }
            Err(e) => return Err(io("creating state dir", &path, e)),
        }
        Ok(StateDir {
            path,
            id: id.to_string(),
            keep: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes state.json atomically (a temporary file renamed over it).
    pub fn write(&self, st: &State) -> Result<()> {
        let tmp = self.path.join(".state.json.tmp");
        let dst = self.path.join("state.json");
        let data = serde_json::to_vec_pretty(st).map_err(|e| Error::Io {
            id: self.id.clone(),
            what: "encoding state".into(),
            path: dst.clone(),
            source: e.into(),
        })?;
        std::fs::write(&tmp, data)
            .and_then(|()| std::fs::rename(&tmp, &dst))
            .map_err(|e| Error::Io {
                id: self.id.clone(),
                what: "writing".into(),
                path: dst,
                source: e,
            })
    }

    /// Keeps the directory when this guard is dropped.
    pub fn keep(&mut self) {
        self.keep = true;
    }

    /// Removes the directory now.
    pub fn remove(mut self) -> Result<()> {
        self.keep = true;
        std::fs::remove_dir_all(&self.path).map_err(|e| Error::Io {
            id: self.id.clone(),
            what: "removing state dir".into(),
            path: self.path.clone(),
            source: e,
        })
    }
}

impl Drop for StateDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Start time of a process (clock ticks since boot), 0 if it cannot be read.
pub fn pid_start_time(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = &s[s.rfind(')')? + 2..];
            rest.split(' ').nth(19)?.parse().ok()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(check_id("abc-1.2_x").is_ok());
        assert!(check_id("").is_err());
        assert!(check_id("../x").is_err());
        assert!(check_id("-x").is_err());
        assert!(check_id("a/b").is_err());
    }

    #[test]
    fn start_time_of_self() {
        assert!(pid_start_time(std::process::id() as i32) > 0);
    }
}

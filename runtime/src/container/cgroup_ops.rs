//! What acts on the container's cgroups: pause and resume, limits, usage, and their removal.
#![deny(clippy::undocumented_unsafe_blocks)]

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use cgroup::Cgroup;

use super::{cgroup_err, Container};
use crate::state::Status;
use crate::{Error, Result};

impl Container {
    /// The container's usage as `runc events --stats` shows it (`type`, `id`, `data` with
    /// cpu, memory and pids).
    pub fn stats_json(&self) -> Result<serde_json::Value> {
        let s = self.stats()?;
        Ok(serde_json::json!({
            "type": "stats",
            "id": self.id,
            "data": {
                "cpu": {"usage": {"total": s.cpu_usage_ns}},
                "memory": {
                    "usage": {"usage": s.memory_usage, "limit": s.memory_limit, "max": s.memory_max_usage},
                    "swap": {"usage": s.swap_usage},
                    "oomKills": s.oom_kill_count,
                },
                "pids": {"current": s.pids_current, "limit": s.pids_limit},
            }
        }))
    }

    /// Freezes every process of the container.
    pub fn pause(&mut self) -> Result<()> {
        self.freezer(Status::Running, Status::Paused)
    }

    /// Thaws a paused container.
    pub fn resume(&mut self) -> Result<()> {
        self.freezer(Status::Paused, Status::Running)
    }

    fn freezer(&mut self, from: Status, to: Status) -> Result<()> {
        let st = self.status();
        if st != from {
            return Err(Error::State {
                id: self.id.clone(),
                status: st.as_str(),
                want: from.as_str(),
            });
        }
        let cg = self.cgroup.as_ref().ok_or_else(|| Error::State {
            id: self.id.clone(),
            status: "without cgroup",
            want: from.as_str(),
        })?;
        match to {
            Status::Paused => cg.freeze(),
            _ => cg.thaw(),
        }
        .map_err(|e| cgroup_err(&self.id, e))?;
        crate::fault::point(match to {
            Status::Paused => "pause:after-freeze",
            _ => "resume:after-thaw",
        });
        self.state.status = to;
        self.write_state()
    }

    /// Pids of every process in the container (host pid namespace).
    pub fn pids(&self) -> Result<Vec<i32>> {
        match &self.cgroup {
            Some(cg) => cg.pids().map_err(|e| cgroup_err(&self.id, e)),
            None => Ok(if self.status() == Status::Stopped {
                vec![]
            } else {
                vec![self.pid]
            }),
        }
    }

    /// Applies new limits (`update`).
    pub fn update(&self, res: &cgroup::Resources) -> Result<()> {
        let st = self.status();
        if st == Status::Stopped {
            return Err(Error::State {
                id: self.id.clone(),
                status: st.as_str(),
                want: "created, running or paused",
            });
        }
        let cg = self.cgroup.as_ref().ok_or_else(|| Error::State {
            id: self.id.clone(),
            status: "without cgroup",
            want: "running",
        })?;
        cg.apply(res).map_err(|e| cgroup_err(&self.id, e))
    }

    /// An fd that becomes readable when the OOM killer acts in the container (see
    /// `cgroup::Cgroup::oom_notifier`).
    pub fn oom_notifier(&self) -> Result<OwnedFd> {
        let cg = self.cgroup.as_ref().ok_or_else(|| Error::State {
            id: self.id.clone(),
            status: "without cgroup",
            want: "running",
        })?;
        cg.oom_notifier().map_err(|e| cgroup_err(&self.id, e))
    }

    /// Resource usage from the cgroup.
    pub fn stats(&self) -> Result<cgroup::Stats> {
        let cg = self.cgroup.as_ref().ok_or_else(|| Error::State {
            id: self.id.clone(),
            status: "without cgroup",
            want: "running",
        })?;
        cg.stats().map_err(|e| cgroup_err(&self.id, e))
    }
}

/// The directories that making `leaves` (`mkdir -p`) would create: each leaf and its
/// ancestors that are not there yet, shallowest first. Each leaf comes with its
/// hierarchy's mount point, which is there (it is mounted): the walk up stops at it without
/// looking, so a leaf right under it costs one `statx`.
pub(super) fn to_be_made<'a>(
    leaves: impl IntoIterator<Item = (&'a Path, &'a Path)>,
) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for (leaf, mount_point) in leaves {
        let mut missing = Vec::new();
        let mut d = leaf;
        while !d.as_os_str().is_empty() && d != mount_point && std::fs::symlink_metadata(d).is_err()
        {
            missing.push(d.to_path_buf());
            match d.parent() {
                Some(p) => d = p,
                None => break,
            }
        }
        out.extend(missing.into_iter().rev());
    }
    out
}

/// Kills every process left in the cgroup (a container without its own pid namespace can
/// leave some), waits until it is empty, and removes it. Only what corral made: processes
/// are killed in the hierarchies whose leaf it made (a leaf made beforehand and joined may
/// hold processes of others: there only the init was killed), and only the dirs it made go.
/// The usual case, an empty cgroup (its init reaped, nothing escaped), costs one `rmdir` per
/// dir: the processes are looked for only when a leaf does not go.
pub(super) fn kill_and_remove(id: &str, cg: &Cgroup) -> Result<()> {
    let Some(made) = cg.made_part() else {
        return cg.remove().map_err(|e| cgroup_err(id, e));
    };
    if cg.remove_if_empty() {
        return Ok(());
    }
    let cg_all = cg;
    let cg = &made;
    for _ in 0..100 {
        match cg.pids() {
            Ok(p) if p.is_empty() => break,
            Ok(_) => {
                let _ = cg.kill_all(nix::sys::signal::Signal::SIGKILL);
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(_) => break,
        }
    }
    cg_all.remove().map_err(|e| cgroup_err(id, e))
}

/// Removes a half-made cgroup on an error path.
pub(super) struct CgroupGuard(pub(super) Option<Cgroup>);

impl CgroupGuard {
    pub(super) fn take(mut self) -> Option<Cgroup> {
        self.0.take()
    }
}

impl Drop for CgroupGuard {
    fn drop(&mut self) {
        if let Some(cg) = self.0.take() {
            if let Err(e) = kill_and_remove("", &cg) {
                tracing::warn!("cleanup: {e}");
            }
        }
    }
}

/// True when the cgroup's OOM killer has killed something in it.
pub(super) fn oom_killed(cg: Option<&Cgroup>) -> bool {
    cg.and_then(|c| c.stats().ok())
        .and_then(|s| s.oom_kill_count)
        .is_some_and(|n| n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_be_made_lists_only_what_is_missing_shallowest_first() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("a")).unwrap();
        let leaves = [t.path().join("a/b/c"), t.path().join("x")];
        let mount = t.path();
        assert_eq!(
            to_be_made(leaves.iter().map(|l| (l.as_path(), mount))),
            [
                t.path().join("a/b"),
                t.path().join("a/b/c"),
                t.path().join("x")
            ]
        );
        // A leaf that exists is someone else's: nothing of it is ours to remove.
        assert!(to_be_made([(t.path().join("a").as_path(), mount)]).is_empty());
        // The mount point itself (a container in the hierarchy's root) is never made.
        assert!(to_be_made([(mount, mount)]).is_empty());
        // Nor is anything above the mount point looked for: a leaf under a mount point
        // that is not there (yet) is made, its mount point not.
        let gone = t.path().join("gone");
        assert_eq!(
            to_be_made([(gone.join("c").as_path(), gone.as_path())]),
            [gone.join("c")]
        );
    }
}

//! A container from its state dir: `load`, the listing, and `delete --force` of what a
//! dead creator left.
#![deny(clippy::undocumented_unsafe_blocks)]

use std::path::Path;
use std::sync::Mutex;

use cgroup::{Cgroup, Hierarchy};

use super::{at_gate, cgroup_err, parent_of, pidfd_open, zombie, Container, ExitStatus};
use crate::state::{self, State, StateDir, Status};
use crate::{Error, Result};

impl Container {
    /// Loads a container from its state under `root` (made by any process). The state dir
    /// stays locked while the value lives.
    ///
    /// A container whose state says `creating` (or whose state dir holds no state yet) once
    /// the lock is ours lost its creator, which held the lock until the state said `created`:
    /// it is loaded as half-made, and counts as stopped.
    pub fn load(root: &Path, id: &str) -> Result<Container> {
        let (dir, st) = StateDir::open_raw(root, id)?;
        Container::from_record(dir, st, false)
    }

    /// [`Container::load`] without waiting: `None` while another process holds the
    /// container's lock (it is at work on it).
    pub fn try_load(root: &Path, id: &str) -> Result<Option<Container>> {
        match StateDir::try_open_raw(root, id)? {
            Some((dir, st)) => Container::from_record(dir, st, false).map(Some),
            None => Ok(None),
        }
    }

    /// `delete --force`: removes whatever is left of the container, however little of it was
    /// made or recorded (a state dir without a readable state is removed too). An id with no
    /// state dir is not an error.
    pub fn force_delete(root: &Path, id: &str) -> Result<()> {
        let (dir, st) = match StateDir::open_raw(root, id) {
            Ok(r) => r,
            Err(Error::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        Container::from_record(dir, st, true)?.delete_checked(true)
    }

    /// runc's `delete [--force] ID`: [`Container::force_delete`] with `force`, else the
    /// container loaded and deleted unless it runs or is paused.
    pub fn delete_by_id(root: &Path, id: &str, force: bool) -> Result<()> {
        if force {
            Container::force_delete(root, id)
        } else {
            Container::load(root, id)?.delete_checked(false)
        }
    }

    /// The live state for a listing: as [`Container::load`] shows it, but without waiting
    /// for a lock (a container being created is shown `creating` while its creator runs).
    pub fn listed_state(root: &Path, id: &str) -> Result<State> {
        if let Some((dir, st)) = StateDir::try_open_raw(root, id)? {
            return Ok(Container::from_record(dir, st, false)?.oci_state());
        }
        // Locked: by its creator at work, by another command, or by a process that holds
        // the container (a library user between create and start, in this very process
        // maybe): the state as written, with its process checked, never waiting for the lock.
        Container::peeked_state(root, id)
    }

    /// The state as written, read without the lock, with its process checked (a recorded
    /// process that is gone: `stopped`; one recorded `created` that is past its start gate:
    /// `running`, as a start writes nothing). It writes nothing and never waits. Paused shows
    /// only as recorded (the freezer is not read).
    pub fn peeked_state(root: &Path, id: &str) -> Result<State> {
        let mut st = state::peek(root, id)?;
        let gone = if st.status == Status::Creating {
            !st.creator_alive()
        } else {
            st.pid <= 0 || state::pid_start_time(st.pid) != st.pid_start_time || zombie(st.pid)
        };
        if gone {
            st.status = Status::Stopped;
            st.pid = 0;
        } else if st.status == Status::Created && !at_gate(st.pid, &root.join(id), st.late_exec) {
            st.status = Status::Running;
        }
        Ok(st)
    }

    /// A container from what its state dir holds. `lenient` (for `delete --force`): an
    /// unreadable state, or cgroup dirs that cannot be reopened, leave a half-made container
    /// to remove rather than an error.
    fn from_record(dir: StateDir, st: Result<State>, lenient: bool) -> Result<Container> {
        let id = dir
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let id = id.as_str();
        let st = match st {
            Ok(st) => st,
            Err(Error::NotFound(_)) => State::unrecorded(id),
            Err(e) if lenient => {
                tracing::warn!(container = id, "{e}; removing what is left");
                State::unrecorded(id)
            }
            Err(e) => return Err(e),
        };
        let half_made = st.status == Status::Creating;
        // The pidfd, only if the pid still is the process we started (not a recycled pid).
        let mut pidfd = None;
        if st.pid > 0 && state::pid_start_time(st.pid) == st.pid_start_time {
            if let Ok(fd) = pidfd_open(st.pid) {
                pidfd = Some(fd);
                // Re-check: the pid could have been recycled between the two reads.
                if state::pid_start_time(st.pid) != st.pid_start_time {
                    pidfd = None;
                }
            }
        }
        let cgroup = if st.cgroup_leaves.is_empty() {
            None
        } else {
            let reopened = Hierarchy::detect()
                .and_then(|hier| Cgroup::from_dirs(&hier, &st.cgroup_leaves))
                .map_err(|e| cgroup_err(id, e));
            match reopened {
                Ok(mut cg) => {
                    cg.set_created_dirs(st.cgroup_dirs.clone());
                    Some(cg)
                }
                Err(e) if lenient => {
                    tracing::warn!(container = id, "{e}; its cgroups are left");
                    None
                }
                Err(e) => return Err(e),
            }
        };
        let exit = if pidfd.is_none() || half_made {
            Some(ExitStatus::Unknown)
        } else {
            None
        };
        let config = dir.read_config().ok();
        // Loaded by the process that created it (a library user that detached it): it is
        // still our child, so it is waited for (and reaped) as one, with its exit status.
        let own_child =
            pidfd.is_some() && !half_made && parent_of(st.pid) == nix::unistd::getpid().as_raw();
        Ok(Container {
            id: id.to_string(),
            bundle: st.bundle.clone(),
            pid: st.pid,
            pidfd,
            own_child,
            spawning: None,
            console: None,
            exit,
            cgroup,
            overlay: None,
            state_dir: Some(dir),
            state: st,
            config,
            warnings: Vec::new(),
            owned: false,
            half_made,
            timings: Default::default(),
            late_exec: false,
            execs: Mutex::new(Vec::new()),
            stopped_unwritten: false,
        })
    }

    /// The live state of every container under `root` (a container deleted meanwhile is
    /// not listed; one being created is listed without waiting for its creator).
    pub fn list(root: &Path) -> Result<Vec<State>> {
        let mut states = Vec::new();
        for id in state::list_ids(root)? {
            if let Ok(s) = Container::listed_state(root, &id) {
                states.push(s);
            }
        }
        Ok(states)
    }
}

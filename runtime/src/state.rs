//! Container state on disk: `<root>/<id>/state.json`, written atomically (the first one in
//! place, into a dir just made).
#![deny(clippy::undocumented_unsafe_blocks)]

use std::collections::HashMap;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The default state root.
pub const DEFAULT_ROOT: &str = "/run/corral";

/// The state root when none is given: [`DEFAULT_ROOT`] for root; for another user
/// `$XDG_RUNTIME_DIR/corral`, or `/tmp/corral-<uid>` without one.
pub fn default_root() -> PathBuf {
    let uid = nix::unistd::geteuid().as_raw();
    if uid == 0 {
        return PathBuf::from(DEFAULT_ROOT);
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d).join("corral"),
        _ => PathBuf::from(format!("/tmp/corral-{uid}")),
    }
}

/// Checks, without following a symlink, that `dir` is a directory owned by the caller's
/// effective uid and writable by nobody else: another local user must not be able to
/// pre-create (or swap) a state root or cache and plant files in it.
pub fn check_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(dir)?;
    let euid = nix::unistd::geteuid().as_raw();
    if !m.file_type().is_dir() || m.uid() != euid || m.mode() & 0o022 != 0 {
        return Err(std::io::Error::other(format!(
            "not a directory owned by uid {euid} and writable only by it (a {}, owner uid {}, \
             mode {:o})",
            if m.file_type().is_symlink() {
                "symlink"
            } else if m.is_dir() {
                "directory"
            } else {
                "file"
            },
            m.uid(),
            m.mode() & 0o7777
        )));
    }
    Ok(())
}

/// Checks that no directory above `dir` lets another user replace it: each ancestor is owned
/// by root or the caller and writable by nobody else, unless sticky (as `/tmp`: others may
/// add names there but not rename or remove ours). A path with a symlink is resolved as the
/// kernel would, then checked.
pub fn check_ancestors(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let euid = nix::unistd::geteuid().as_raw();
    let abs = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.canonicalize()?,
        _ => std::env::current_dir()?,
    };
    for a in abs.ancestors() {
        let m = std::fs::metadata(a)?;
        let open = m.mode() & 0o022 != 0 && m.mode() & 0o1000 == 0;
        if (m.uid() != 0 && m.uid() != euid) || open {
            return Err(std::io::Error::other(format!(
                "its parent {} can be changed by another user (owner uid {}, mode {:o})",
                a.display(),
                m.uid(),
                m.mode() & 0o7777
            )));
        }
    }
    Ok(())
}

/// Where a container on an overlay root keeps it, in its state dir `dir`: the mount point,
/// the upper and the work dir, all in `dir/overlay`, a dir (0700) that only the caller may
/// enter (the state dir itself is searchable by the container's user, for its start gate).
pub fn overlay_paths(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let o = dir.join("overlay");
    (o.join("rootfs"), o.join("upper"), o.join("work"))
}

/// Lifecycle status, as in the OCI state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
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
    /// The container's leaf cgroup directory in every hierarchy.
    #[serde(default)]
    pub cgroup_leaves: Vec<PathBuf>,
    /// When it was created (seconds since the epoch).
    #[serde(default)]
    pub created: u64,
    /// Created with `--no-new-keyring`: its exec'd processes keep their caller's keyring too.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_new_keyring: bool,
    /// Made with `late_exec` (a warm pool's): its process waits for its program on its
    /// creator's socket, not at a FIFO gate in the state dir.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub late_exec: bool,
    /// Without a mount namespace of its own: the mounts its set-up made inside its root in
    /// the host's mount namespace, in the order they were made, unmounted by delete.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_mounts: Vec<HostMount>,
    /// The process creating the container (pid and start time), recorded while the status is
    /// `creating`: a command that finds the state dir locked tells a creator at work from
    /// one that died by them (one that can take the lock knows the creator is gone).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub creator_pid: i32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub creator_start_time: u64,
}

/// A mount in the host's mount namespace: its mount point and its id (as in mountinfo and
/// `statx(STATX_MNT_ID)`), so that another mount made at the same point later is not taken
/// for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostMount {
    pub path: PathBuf,
    pub id: u64,
}

fn is_zero<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

impl State {
    /// The state as the OCI runtime spec (and `runc state`) shows it: `ociVersion`, `id`,
    /// `pid`, `status`, `bundle`, plus `rootfs`, `created` (RFC 3339), `owner` and the
    /// annotations, as runc adds them.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "ociVersion": self.oci_version,
            "id": self.id,
            "pid": self.pid,
            "status": self.status.as_str(),
            "bundle": self.bundle,
            "rootfs": self.rootfs_mount.clone().unwrap_or_else(|| self.bundle.join("rootfs")),
            "created": rfc3339(self.created),
            "owner": "",
        });
        if !self.annotations.is_empty() {
            v["annotations"] = serde_json::json!(self.annotations);
        }
        v
    }

    /// What is known of a container whose state dir holds no readable state: its id.
    pub fn unrecorded(id: &str) -> State {
        State {
            oci_version: crate::OCI_VERSION.into(),
            id: id.to_string(),
            status: Status::Creating,
            pid: 0,
            bundle: PathBuf::new(),
            annotations: HashMap::new(),
            pid_start_time: 0,
            cgroup_dirs: Vec::new(),
            rootfs_mount: None,
            cgroup_leaves: Vec::new(),
            created: 0,
            no_new_keyring: false,
            late_exec: false,
            creator_pid: 0,
            creator_start_time: 0,
            host_mounts: Vec::new(),
        }
    }

    /// Whether the recorded creator is still running (same pid, same start time).
    pub fn creator_alive(&self) -> bool {
        self.creator_pid > 0
            && self.creator_start_time != 0
            && pid_start_time(self.creator_pid) == self.creator_start_time
    }
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
    /// The directory, opened and `flock`ed while a command works on the container: commands
    /// on one id are serialized, commands on different ids never wait for each other.
    lock: Option<std::fs::File>,
}

fn lock_dir(id: &str, path: &Path) -> Result<std::fs::File> {
    lock_dir_with(id, path, true)?.ok_or_else(|| Error::NotFound(id.to_string()))
}

/// Checks the state root that holds `<root>/<id>` before anything in it is trusted (see
/// [`check_private_dir`]): another user who made the root, or can write to it, could have
/// planted a container dir whose `config.json` names hooks. A missing root is `NotFound`.
fn check_root(id: &str, root: &Path) -> Result<()> {
    match check_private_dir(root) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::NotFound(id.to_string())),
        Err(e) => Err(Error::Io {
            id: id.to_string(),
            what: "refusing state root".into(),
            path: root.to_path_buf(),
            source: e,
        }),
    }
}

/// Opens a container's state dir without following a symlink, once its root passed
/// [`check_root`], and checks the dir itself as the root is checked (owned by the caller,
/// writable by nobody else). Every command that works on a container opens it here.
fn open_checked(id: &str, path: &Path) -> Result<std::fs::File> {
    use std::os::unix::fs::MetadataExt;
    let root = path.parent().unwrap_or(Path::new("/"));
    check_root(id, root)?;
    let io = |what: &str, e: std::io::Error| Error::Io {
        id: id.to_string(),
        what: what.into(),
        path: path.to_path_buf(),
        source: e,
    };
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::NotFound(id.to_string())
            } else {
                io("opening state dir", e)
            }
        })?;
    let m = f.metadata().map_err(|e| io("opening state dir", e))?;
    let euid = nix::unistd::geteuid().as_raw();
    if m.uid() != euid || m.mode() & 0o022 != 0 {
        return Err(io(
            "refusing state dir",
            std::io::Error::other(format!(
                "not a directory owned by uid {euid} and writable only by it (owner uid {}, \
                 mode {:o})",
                m.uid(),
                m.mode() & 0o7777
            )),
        ));
    }
    Ok(f)
}

/// Opens and locks the dir; `None` when `wait` is false and another process holds the lock.
fn lock_dir_with(id: &str, path: &Path, wait: bool) -> Result<Option<std::fs::File>> {
    let f = open_checked(id, path)?;
    let op = if wait {
        libc::LOCK_EX
    } else {
        libc::LOCK_EX | libc::LOCK_NB
    };
    loop {
        // SAFETY: flock(2) takes an fd (borrowed from `f`, open for the call) and an
        // operation; it touches no memory of ours.
        let r = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&f), op) };
        if r == 0 {
            break;
        }
        let errno = nix::errno::Errno::last();
        if errno == nix::errno::Errno::EWOULDBLOCK && !wait {
            return Ok(None);
        }
        if errno != nix::errno::Errno::EINTR {
            return Err(Error::Sys {
                id: id.to_string(),
                what: format!("locking {}", path.display()),
                errno,
            });
        }
    }
    // The one that held the lock before us may have removed the container (a concurrent
    // delete): then it is gone.
    if !still_at(&f, path) {
        return Err(Error::NotFound(id.to_string()));
    }
    Ok(Some(f))
}

/// Whether `f` (an open dir) is still the entry at `path` (not removed meanwhile).
fn still_at(f: &std::fs::File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (f.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino() && a.nlink() > 0,
        _ => false,
    }
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
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .map_err(|e| io("creating state root", root, e))?;
        check_private_dir(root).map_err(|e| io("refusing state root", root, e))?;
        let path = root.join(id);
        match std::fs::create_dir(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::AlreadyExists(id.to_string()))
            }
            Err(e) => return Err(io("creating state dir", &path, e)),
        }
        // Searchable by the container's own user (it opens its start gate in here).
        let _ =
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o711));
        let lock = match lock_dir(id, &path) {
            Ok(l) => l,
            Err(e) => {
                let _ = std::fs::remove_dir(&path);
                return Err(e);
            }
        };
        // A `delete --force` that took the lock between our mkdir and our flock saw an empty
        // (half-made) dir and may have removed it: then this create must not go on in it.
        if !still_at(&lock, &path) {
            return Err(Error::Io {
                id: id.to_string(),
                what: "creating state dir (removed by another command meanwhile)".into(),
                path,
                source: std::io::ErrorKind::NotFound.into(),
            });
        }
        Ok(StateDir {
            path,
            id: id.to_string(),
            keep: false,
            lock: Some(lock),
        })
    }

    /// Opens and locks the state dir of an existing container and reads its state.
    pub fn open(root: &Path, id: &str) -> Result<(StateDir, State)> {
        let (dir, st) = StateDir::open_raw(root, id)?;
        Ok((dir, st?))
    }

    /// Opens and locks the state dir of a container (`NotFound` if there is none) and reads
    /// its state, which may be missing (`NotFound`) or unreadable: a state dir whose creator
    /// died before it wrote one, or whose `delete` died while removing it.
    pub fn open_raw(root: &Path, id: &str) -> Result<(StateDir, Result<State>)> {
        check_id(id)?;
        let path = root.join(id);
        let lock = lock_dir(id, &path)?;
        Ok(StateDir::opened(path, id, lock))
    }

    /// [`StateDir::open_raw`] without waiting: `None` while another process holds the lock.
    pub fn try_open_raw(root: &Path, id: &str) -> Result<Option<(StateDir, Result<State>)>> {
        check_id(id)?;
        let path = root.join(id);
        Ok(lock_dir_with(id, &path, false)?.map(|lock| StateDir::opened(path, id, lock)))
    }

    fn opened(path: PathBuf, id: &str, lock: std::fs::File) -> (StateDir, Result<State>) {
        let st = read_state(id, &path);
        (
            StateDir {
                path,
                id: id.to_string(),
                keep: true,
                lock: Some(lock),
            },
            st,
        )
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The locked fd (the container's process must close its inherited copy).
    pub fn lock_fd(&self) -> Option<std::os::fd::RawFd> {
        self.lock.as_ref().map(std::os::fd::AsRawFd::as_raw_fd)
    }

    /// Releases the lock (a long-running `run` must not block other commands).
    pub fn unlock(&mut self) {
        self.lock = None;
    }

    /// Takes the lock again.
    pub fn relock(&mut self) -> Result<()> {
        if self.lock.is_none() {
            self.lock = Some(lock_dir(&self.id, &self.path)?);
        }
        Ok(())
    }

    /// Writes state.json atomically (a temporary file swapped with it, see
    /// [`crate::atomic_file::write_replacing`]).
    pub fn write(&self, st: &State) -> Result<()> {
        let (dst, data) = self.encode(st)?;
        // 0600: ids, annotations and bundle paths are the caller's business.
        crate::atomic_file::write_replacing(&dst, &data, 0o600).map_err(|e| Error::Io {
            id: self.id.clone(),
            what: "writing".into(),
            path: dst,
            source: e,
        })
    }

    /// Writes the first state.json of a dir that [`StateDir::create`] just made (and holds
    /// locked), in place: no temp file, no rename. A reader never takes a half-written file
    /// for a state: the one write(2) of a few hundred bytes to the page cache is whole once
    /// a kill -9 can see it, and before it the file is empty, which reads as no state at all
    /// (see [`read_state`]), as a dir whose creator died before writing one.
    pub fn write_first(&self, st: &State) -> Result<()> {
        let (dst, data) = self.encode(st)?;
        write_new(&dst, &data).map_err(|e| Error::Io {
            id: self.id.clone(),
            what: "writing".into(),
            path: dst,
            source: e,
        })
    }

    fn encode(&self, st: &State) -> Result<(PathBuf, Vec<u8>)> {
        let dst = self.path.join("state.json");
        let data = serde_json::to_vec_pretty(st).map_err(|e| Error::Io {
            id: self.id.clone(),
            what: "encoding state".into(),
            path: dst.clone(),
            source: e.into(),
        })?;
        Ok((dst, data))
    }

    /// Keeps the directory when this guard is dropped.
    pub fn keep(&mut self) {
        self.keep = true;
    }

    /// Removes the directory now.
    pub fn remove(mut self) -> Result<()> {
        let _ = &self.lock;
        self.keep = true;
        std::fs::remove_dir_all(&self.path).map_err(|e| Error::Io {
            id: self.id.clone(),
            what: "removing state dir".into(),
            path: self.path.clone(),
            source: e,
        })
    }

    /// Keeps the config that create accepted (`config.json` in the state dir, 0600): start,
    /// exec and delete use it, never the bundle's file again, which anyone who can write the
    /// bundle (the container itself, with the bundle inside its root) could have changed.
    pub fn write_config(&self, spec: &oci_spec::runtime::Spec) -> Result<()> {
        let dst = self.path.join(CONFIG);
        let io = |what: &str, e: std::io::Error| Error::Io {
            id: self.id.clone(),
            what: what.into(),
            path: dst.clone(),
            source: e,
        };
        let data = serde_json::to_vec(spec).map_err(|e| io("encoding config", e.into()))?;
        // A new file in the dir just made, before the first state: no temp file and rename.
        // A config cut short by a kill -9 only ever sits beside no state (or an empty one),
        // a half-made container whose config nothing reads (see `Container::from_record`).
        write_new(&dst, &data).map_err(|e| io("writing", e))
    }

    /// The config that create accepted (see [`StateDir::write_config`]).
    pub fn read_config(&self) -> Result<oci_spec::runtime::Spec> {
        let path = self.path.join(CONFIG);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::Io {
            id: self.id.clone(),
            what: "reading the config kept at create".into(),
            path: path.clone(),
            source: e,
        })?;
        serde_json::from_str(&text).map_err(|e| Error::Io {
            id: self.id.clone(),
            what: "parsing the config kept at create".into(),
            path,
            source: e.into(),
        })
    }
}

/// The config create accepted, in the state dir.
const CONFIG: &str = "config.json";

/// Creates `path` (0600) and writes `data` to it: a new file only (`O_EXCL`, so never through
/// a file or symlink someone put there), in one write.
fn write_new(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    f.write_all(data)
}

impl Drop for StateDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Reads `<dir>/state.json`: `NotFound` if it is missing or empty (the first state is
/// written in place, [`StateDir::write_first`]: a creator killed between making the file and
/// writing it left an empty one, which is no state yet).
fn read_state(id: &str, dir: &Path) -> Result<State> {
    let file = dir.join("state.json");
    let text = std::fs::read_to_string(&file).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::NotFound(id.to_string())
        } else {
            Error::Io {
                id: id.to_string(),
                what: "reading".into(),
                path: file.clone(),
                source: e,
            }
        }
    })?;
    if text.is_empty() {
        return Err(Error::NotFound(id.to_string()));
    }
    serde_json::from_str(&text).map_err(|e| Error::Io {
        id: id.to_string(),
        what: "parsing".into(),
        path: file,
        source: e.into(),
    })
}

/// The state as last written, read without taking the lock (for a listing that must not
/// wait for a container being created).
pub fn peek(root: &Path, id: &str) -> Result<State> {
    check_id(id)?;
    let path = root.join(id);
    open_checked(id, &path)?;
    read_state(id, &path)
}

/// `/proc/PID/stat`: one line, read in one `read` (std's `read_to_string` stats the file,
/// which says 0 bytes, then reads it in growing pieces: seven calls where one does).
pub(crate) fn proc_stat(pid: i32) -> Option<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(format!("/proc/{pid}/stat")).ok()?;
    let mut buf = Vec::new();
    loop {
        let n = buf.len();
        buf.resize(n + 1024, 0);
        let got = f.read(buf.get_mut(n..)?).ok()?;
        buf.truncate(n + got);
        if got == 0 || buf.ends_with(b"\n") {
            break;
        }
    }
    String::from_utf8(buf).ok()
}

/// Start time of a process (clock ticks since boot), 0 if it cannot be read.
pub fn pid_start_time(pid: i32) -> u64 {
    proc_stat(pid)
        .and_then(|s| {
            let rest = &s[s.rfind(')')? + 2..];
            rest.split(' ').nth(19)?.parse().ok()
        })
        .unwrap_or(0)
}

/// Ids of the containers under `root`, sorted: every dir named as an id, with or without a
/// state (a half-made container may have none).
pub fn list_ids(root: &Path) -> Result<Vec<String>> {
    match check_root("", root) {
        Ok(()) => {}
        Err(Error::NotFound(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    }
    let rd = match std::fs::read_dir(root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(Error::Io {
                id: String::new(),
                what: "listing".into(),
                path: root.to_path_buf(),
                source: e,
            })
        }
    };
    let mut ids: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|id| check_id(id).is_ok())
        .collect();
    ids.sort();
    Ok(ids)
}

/// Seconds since the epoch as an RFC 3339 UTC timestamp (`2000-02-29T00:00:00Z`). humantime
/// formats years up to 9999 only; a later time (which only a damaged state file holds) is
/// shown as the last second of 9999 rather than failing.
pub fn rfc3339(secs: u64) -> String {
    const LAST: u64 = 253_402_300_799;
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.min(LAST));
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(u64::MAX), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn ids() {
        assert!(check_id("abc-1.2_x").is_ok());
        assert!(check_id("").is_err());
        assert!(check_id("../x").is_err());
        assert!(check_id("-x").is_err());
        assert!(check_id("a/b").is_err());
    }

    /// A state root another user could write to (or owns) is refused, naming the path, the
    /// owner and the mode; a fresh one is made 0700.
    #[test]
    fn foreign_or_open_state_root_is_refused() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let base = std::env::temp_dir().join(format!("corral-root-check-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        let fresh = base.join("fresh");
        StateDir::create(&fresh, "c1").unwrap();
        assert_eq!(std::fs::metadata(&fresh).unwrap().mode() & 0o777, 0o700);
        let open = base.join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = StateDir::create(&open, "c1").unwrap_err().to_string();
        assert!(
            e.contains(&open.display().to_string()) && e.contains("mode 777"),
            "{e}"
        );
        assert!(!open.join("c1").exists());
        let link = base.join("link");
        std::os::unix::fs::symlink(&fresh, &link).unwrap();
        let e = StateDir::create(&link, "c2").unwrap_err().to_string();
        assert!(e.contains("symlink"), "{e}");
        if nix::unistd::geteuid().as_raw() == 0 {
            let foreign = base.join("foreign");
            std::fs::create_dir(&foreign).unwrap();
            std::os::unix::fs::chown(&foreign, Some(65534), Some(65534)).unwrap();
            let e = StateDir::create(&foreign, "c1").unwrap_err().to_string();
            assert!(e.contains("owner uid 65534"), "{e}");
        }
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn creator_is_recorded_only_while_creating() {
        let me = std::process::id() as i32;
        let creating = State {
            creator_pid: me,
            creator_start_time: pid_start_time(me),
            ..State::unrecorded("x")
        };
        assert!(creating.creator_alive());
        let text = serde_json::to_string(&creating).unwrap();
        assert!(text.contains("\"status\":\"creating\"") && text.contains("creator_pid"));
        let back: State = serde_json::from_str(&text).unwrap();
        assert_eq!(back.creator_start_time, creating.creator_start_time);
        let created = State {
            status: Status::Created,
            creator_pid: 0,
            creator_start_time: 0,
            ..creating
        };
        assert!(!created.creator_alive());
        assert!(!serde_json::to_string(&created).unwrap().contains("creator"));
        // A state written before these fields existed still loads.
        let old = r#"{"ociVersion":"1.2.0","id":"x","status":"created","pid":1,"bundle":"/b"}"#;
        assert_eq!(serde_json::from_str::<State>(old).unwrap().creator_pid, 0);
    }

    #[test]
    fn start_time_of_self() {
        assert!(pid_start_time(std::process::id() as i32) > 0);
    }
}

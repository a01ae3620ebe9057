//! corral's docker-level containers, without a daemon.
//!
//! # The model
//!
//! An engine container is a container of an image whose store record is **kept** until it
//! is removed on purpose (`rm`): `create` writes the record and nothing runs; `start` makes
//! the runtime container from the record, runs it, and when it ends the runtime container
//! (state dir, cgroup, mounts, network attachments) is deleted but the record stays, with
//! its writable layer, its log and what happened (exit code, times). `start` again makes a
//! new runtime container on the same writable layer.
//!
//! - **Ids and names.** The id is 64 random lowercase hex digits (the first 12 are the
//!   short id); it is also the runtime id (state dir `<state root>/<id>`, cgroup named
//!   after it). Names are unique per store: claimed by making the symlink
//!   `<store>/names/<name>` -> id, which fails when it exists. Without `--name`, a
//!   generated `adjective_noun`. [`resolve`] takes a name, a full id, a unique id prefix or
//!   the id of a runtime container that is not the engine's.
//! - **Files.** `<store>/containers/<id>/` holds the image crate's record (`image.json`,
//!   with `keep`, and `config.json`, the bundle's spec), `container.json` ([`Config`]),
//!   `state.json` ([`RunState`], written by rename under `state.lock`), `upper/` and
//!   `work/` (the writable layer, through [`runtime::Options::upper`]), and the log
//!   `<id>-json.log` (+ `.1`, `.2`... when rotated). `<store>/waits/` holds the tickets of
//!   `wait`s, into which the remover of a container writes its exit code (a `--rm`
//!   container's record is gone when its waiter looks).
//! - **The monitor.** `start` spawns `EXE --root R --store S _monitor ID` (its own session,
//!   stdio `/dev/null`, detached from the caller by a double fork) and waits on a readiness
//!   pipe for `ok PID` or the error. The monitor makes the runtime container with
//!   [`corral_image::create`] from the stored [`runtime::describe::Description`] (the
//!   image pinned by its manifest digest), holds its stdout and stderr pipes (or the pty
//!   master with `-t`), copies them to the log, waits for the exit, records the exit code
//!   (`128+N` for signal N), the time, an OOM kill (the memory cgroup's `oom_kill` count,
//!   read before the cgroup goes), deletes the runtime container, then removes everything
//!   (`--rm`) or applies the restart policy (docker's: 100 ms doubling backoff, reset after
//!   10 s of running, never after a user's stop). It holds no lock of the store while the
//!   container runs. A foreground `run` ([`Engine::run_attached`]) is the same supervision
//!   in the calling process, its output also on the caller's stdout and stderr.
//! - **Logs.** docker's json-file lines `{"log":"text\n","stream":"stdout","time":"..."}`,
//!   one per line of output (a line longer than 16 KiB is split), rotated by size
//!   (`max-size`, default 10 MiB) keeping `max-file` files (default 3): stricter than
//!   docker's unbounded default, so that a chatty container cannot fill the disk.
//! - **The truth without a monitor.** [`Engine::status`] reads `state.json` and checks it
//!   against the kernel: a recorded supervisor (pid and start time) that is gone while the
//!   container's process lives is `running` with no monitor (`Up 3 minutes (no
//!   monitor)`); gone with the process gone too is `exited` with its exit code lost
//!   (`Exited (unknown)`, `ExitCode: -1` in inspect). `rm -f` cleans up either.

use std::path::{Path, PathBuf};

mod error;
mod files;
pub mod jsonlog;
mod model;
mod ops;
mod supervise;
pub mod time;

pub use error::{start_code, Error, Result};
pub use model::{
    Config, CreateOptions, LogConfig, LogOptions, RestartPolicy, RunState, Status, Summary, Time,
    VolumeUse,
};
pub use ops::status_text;
pub use supervise::{FORWARDED, READY_FD_ENV, UNKNOWN_EXIT};

/// What a name, id or prefix names: a container of the engine, or a runtime container that is
/// not the engine's (made by the runc verbs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Engine(String),
    Runtime(String),
}

/// Resolves `s` for any verb: a name of the engine, an engine container's full id, a runtime
/// container's id (under `state_root`), or a unique prefix of either kind of id.
pub fn resolve(store: &Path, state_root: &Path, s: &str) -> Result<Target> {
    ops::resolve(store, state_root, s)
}

/// The engine over one image store and one state root.
#[derive(Debug, Clone)]
pub struct Engine {
    store: PathBuf,
    root: PathBuf,
    exe: PathBuf,
}

impl Engine {
    /// An engine over the store at `store` and the state root `state_root`; `exe` is the
    /// program whose `--root R --store S _monitor ID` runs a monitor: the `corral` binary
    /// (`std::env::current_exe()` in the CLI), or `corral-engine-monitor`. Nothing is made
    /// on disk until a container is.
    pub fn new(
        store: impl Into<PathBuf>,
        state_root: impl Into<PathBuf>,
        exe: impl Into<PathBuf>,
    ) -> Engine {
        Engine {
            store: store.into(),
            root: state_root.into(),
            exe: exe.into(),
        }
    }

    pub fn store_dir(&self) -> &Path {
        &self.store
    }

    pub fn state_root(&self) -> &Path {
        &self.root
    }

    /// The program that runs monitors.
    pub fn monitor_exe(&self) -> &Path {
        &self.exe
    }

    /// `create`: the kept record, `container.json` and the state `created`; the name
    /// claimed. `d`'s root must be an image of the store. Nothing runs. Returns the id.
    pub fn create(&self, d: &runtime::describe::Description, o: &CreateOptions) -> Result<String> {
        self.create_impl(d, o)
    }

    /// `start` (detached): spawns the monitor and returns once the container runs (its init
    /// pid), or with the monitor's error. A running container is left as it is.
    pub fn start(&self, id: &str) -> Result<i32> {
        self.start_impl(id)
    }

    /// Foreground `run`/`start -a`: this process supervises the container: its output goes
    /// to this process's stdout and stderr and to the log, the caller's terminal is bridged
    /// with `-t`, stdin passed on when `stdin`, forwarded signals passed on; the exit is
    /// recorded, then `--rm` or the restart policy (a restart goes to a monitor). Returns
    /// the container's exit code.
    pub fn run_attached(&self, id: &str, stdin: bool) -> Result<i32> {
        self.run_attached_impl(id, stdin)
    }

    /// `stop`: the stop signal, then SIGKILL after `timeout` seconds (default: the
    /// container's stop timeout); returns once the exit is recorded. A container that is
    /// not running is left as it is.
    pub fn stop(&self, id: &str, timeout: Option<u32>) -> Result<()> {
        self.stop_impl(id, timeout)
    }

    /// `kill`: `signal` to the container's init (no restart after it).
    pub fn kill(&self, id: &str, signal: i32) -> Result<()> {
        self.kill_impl(id, signal)
    }

    /// `restart`: stop (if running), then start.
    pub fn restart(&self, id: &str, timeout: Option<u32>) -> Result<i32> {
        self.stop_impl(id, timeout)?;
        self.start_impl(id)
    }

    /// `rm`: refused for a running container without `force`; removes the runtime
    /// container, its network attachments, the name, the record, the log; `volumes`: its
    /// anonymous volumes too.
    pub fn remove(&self, id: &str, force: bool, volumes: bool) -> Result<()> {
        self.remove_impl(id, force, volumes)
    }

    /// `wait`: blocks until the container is not running; its exit code (-1: not known).
    pub fn wait(&self, id: &str) -> Result<i32> {
        self.wait_impl(id)
    }

    /// The engine container `s` names (name, full id, unique prefix).
    pub fn resolve(&self, s: &str) -> Result<String> {
        match resolve(&self.store, &self.root, s)? {
            Target::Engine(id) => Ok(id),
            Target::Runtime(_) => Err(Error::NoSuchContainer(s.to_string())),
        }
    }

    /// Every engine container of this store and state root (`all`: not only running ones),
    /// newest first.
    pub fn list(&self, all: bool) -> Result<Vec<Summary>> {
        self.list_impl(all)
    }

    /// The container's `container.json`.
    pub fn config(&self, id: &str) -> Result<Config> {
        self.config_impl(id)
    }

    /// The container's state, checked against the kernel (see the crate doc).
    pub fn status(&self, id: &str) -> Result<RunState> {
        self.status_impl(id)
    }

    /// `inspect`: docker's shape (Id, Created, Path, Args, State, Image, Name, RestartCount,
    /// LogPath, HostConfig, Mounts, Config, NetworkSettings).
    pub fn inspect(&self, id: &str) -> Result<serde_json::Value> {
        self.inspect_impl(id)
    }

    /// `logs`: the log's lines to `out` (stdout's) and `err` (stderr's).
    pub fn logs(
        &self,
        id: &str,
        o: &LogOptions,
        out: &mut dyn std::io::Write,
        err: &mut dyn std::io::Write,
    ) -> Result<()> {
        self.logs_impl(id, o, out, err)
    }

    /// `rename`: claims `new`, then lets the old name go.
    pub fn rename(&self, id: &str, new: &str) -> Result<()> {
        self.rename_impl(id, new)
    }

    /// The volumes the engine's containers use (any status): volume name -> the ids of
    /// the containers that name it (in [`CreateOptions::volumes`], or a mount of
    /// `<store>/volumes/<name>/...`). A volume is in use while one names it.
    pub fn volumes_in_use(&self) -> Result<std::collections::BTreeMap<String, Vec<String>>> {
        self.volumes_in_use_impl()
    }

    /// The path of the container's current log file.
    pub fn log_path(&self, id: &str) -> PathBuf {
        self.store
            .join("containers")
            .join(id)
            .join(format!("{id}-json.log"))
    }
}

/// The monitor of container `id` (the hidden `_monitor` verb): supervises it until it is
/// removed or will not be restarted. Reports readiness on the fd named by
/// `CORRAL_MONITOR_READY_FD`, if set. Returns the process's exit code.
pub fn monitor_main(store: &Path, state_root: &Path, id: &str) -> i32 {
    supervise::monitor_main(store, state_root, id)
}

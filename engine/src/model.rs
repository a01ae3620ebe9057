//! What the engine keeps of a container (`container.json`, `state.json`) and what callers
//! give and get.

use std::collections::BTreeMap;
use std::time::SystemTime;

use runtime::describe::Description;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Docker's restart policies (`--restart`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Never restarted (`no`).
    #[default]
    No,
    /// Restarted when it exits with a non-zero code, at most `max` times (`0`: no limit).
    OnFailure { max: u32 },
    /// Always restarted, unless a user stopped it.
    Always,
    /// Always restarted, unless a user stopped it (the same while the machine is up: there
    /// is no daemon to restart containers at boot).
    UnlessStopped,
}

impl RestartPolicy {
    /// Parses `no`, `on-failure[:N]`, `always`, `unless-stopped` (docker's wording for
    /// errors).
    pub fn parse(s: &str) -> Result<RestartPolicy> {
        let bad = || {
            Error::Invalid(format!("invalid restart policy {s:?}: want no, on-failure[:max-retries], always or unless-stopped"))
        };
        let (name, arg) = match s.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (s, None),
        };
        let p = match (name, arg) {
            ("no" | "", None) => RestartPolicy::No,
            ("always", None) => RestartPolicy::Always,
            ("unless-stopped", None) => RestartPolicy::UnlessStopped,
            ("on-failure", None) => RestartPolicy::OnFailure { max: 0 },
            ("on-failure", Some(n)) => RestartPolicy::OnFailure {
                max: n.parse().map_err(|_| {
                    Error::Invalid(format!("maximum retry count must be an integer: {n:?}"))
                })?,
            },
            ("always" | "unless-stopped" | "no", Some(_)) => {
                return Err(Error::Invalid(format!(
                    "maximum retry count cannot be used with restart policy '{name}'"
                )))
            }
            _ => return Err(bad()),
        };
        Ok(p)
    }

    /// Docker's name of the policy (`no`, `on-failure`, `always`, `unless-stopped`).
    pub fn name(&self) -> &'static str {
        match self {
            RestartPolicy::No => "no",
            RestartPolicy::OnFailure { .. } => "on-failure",
            RestartPolicy::Always => "always",
            RestartPolicy::UnlessStopped => "unless-stopped",
        }
    }

    /// The retry limit (`on-failure:N`; 0 otherwise).
    pub fn max_retries(&self) -> u32 {
        match self {
            RestartPolicy::OnFailure { max } => *max,
            _ => 0,
        }
    }
}

/// The json-file log's options (`--log-opt max-size=10m --log-opt max-file=3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogConfig {
    /// The size at which the log is rotated, in bytes (default 10 MiB; docker's own default
    /// is no limit).
    pub max_size: u64,
    /// How many files are kept, the current one included (default 3; 1: the file is
    /// truncated when full).
    pub max_file: u32,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            max_size: 10 << 20,
            max_file: 3,
        }
    }
}

impl LogConfig {
    /// Applies one `--log-opt KEY=VALUE` (`max-size` with docker's units `k`, `m`, `g`;
    /// `max-file` >= 1). Other keys are refused.
    pub fn set(&mut self, opt: &str) -> Result<()> {
        let (k, v) = opt
            .split_once('=')
            .ok_or_else(|| Error::Invalid(format!("invalid log opt {opt:?}: want KEY=VALUE")))?;
        match k {
            "max-size" => {
                let n = runtime::describe::parse_size("max-size", v)
                    .map_err(|e| Error::Invalid(e.to_string()))?;
                if n <= 0 {
                    return Err(Error::Invalid(format!(
                        "max-size {v:?}: must be a positive size"
                    )));
                }
                self.max_size = n as u64;
            }
            "max-file" => {
                let n: u32 = v
                    .parse()
                    .map_err(|_| Error::Invalid(format!("max-file {v:?}: not a number")))?;
                if n == 0 {
                    return Err(Error::Invalid("max-file must be at least 1".into()));
                }
                self.max_file = n;
            }
            _ => {
                return Err(Error::Invalid(format!(
                    "unknown log opt '{k}' for json-file log driver"
                )))
            }
        }
        Ok(())
    }
}

/// A volume a container uses (for `rm -v` and for "in use").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeUse {
    /// The volume's name (`<store>/volumes/<name>`).
    pub name: String,
    /// Where it is mounted in the container.
    pub destination: String,
    /// An anonymous volume (an image `VOLUME`, `-v /path`): removed by `rm -v`.
    pub anonymous: bool,
}

/// What `create` is given besides the [`Description`].
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// `--name` (else a generated `adjective_noun`).
    pub name: Option<String>,
    /// `--restart`.
    pub restart: RestartPolicy,
    /// `--rm`.
    pub auto_remove: bool,
    /// `--stop-signal` (a number; the image's `StopSignal` wins, else SIGTERM).
    pub stop_signal: Option<i32>,
    /// `--stop-timeout` in seconds (default 10).
    pub stop_timeout: Option<u32>,
    /// `--log-opt`s.
    pub log: LogConfig,
    /// `-t`.
    pub tty: bool,
    /// `-i`.
    pub interactive: bool,
    /// `--label`s.
    pub labels: BTreeMap<String, String>,
    /// The volumes its mounts use.
    pub volumes: Vec<VolumeUse>,
}

/// `container.json`: what a container is, written at create (rewritten by rename).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    /// The full id (64 hex digits).
    pub id: String,
    /// Its name (without docker's leading `/`).
    pub name: String,
    /// When it was made (seconds and nanoseconds since the epoch).
    pub created: Time,
    /// The image as the user gave it.
    pub image: String,
    /// The image's id (its config digest, `sha256:...`).
    pub image_id: String,
    /// The image's manifest digest: what the container is pinned to.
    pub image_manifest: String,
    /// The description the container is made from (its root the image as given).
    pub description: Description,
    /// The program and arguments it runs (the image's Entrypoint and Cmd merged), for
    /// `ps` and `inspect`.
    pub path: String,
    pub args: Vec<String>,
    /// The image's config, as `inspect` shows it (Env, Cmd, Entrypoint, WorkingDir...).
    #[serde(default)]
    pub image_config: serde_json::Value,
    /// The environment it gets (the image's, then the caller's), `KEY=VALUE`.
    #[serde(default)]
    pub env: Vec<String>,
    /// Its working directory.
    #[serde(default)]
    pub working_dir: String,
    /// Its user as given (`--user`, else the image's), empty for root.
    #[serde(default)]
    pub user: String,
    /// Its hostname.
    #[serde(default)]
    pub hostname: String,
    pub restart: RestartPolicy,
    pub auto_remove: bool,
    /// The stop signal (the image's `StopSignal`, else `--stop-signal`, else SIGTERM).
    pub stop_signal: i32,
    /// Seconds `stop` waits before SIGKILL.
    pub stop_timeout: u32,
    pub log: LogConfig,
    pub tty: bool,
    pub interactive: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub volumes: Vec<VolumeUse>,
    /// The state root its runtime container lives under.
    pub state_root: std::path::PathBuf,
}

/// A point in time (seconds and nanoseconds since the epoch, UTC).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Time {
    pub secs: u64,
    pub nanos: u32,
}

impl Time {
    pub fn now() -> Time {
        Time::from(SystemTime::now())
    }

    /// Zero: never.
    pub fn is_zero(&self) -> bool {
        self.secs == 0 && self.nanos == 0
    }

    /// RFC 3339 with nanoseconds (docker's `RFC3339Nano`: trailing zeros dropped), UTC;
    /// docker's zero time for zero.
    pub fn rfc3339(&self) -> String {
        crate::time::rfc3339_nano(*self)
    }

    pub fn system_time(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + std::time::Duration::new(self.secs, self.nanos)
    }
}

impl From<SystemTime> for Time {
    fn from(t: SystemTime) -> Time {
        let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        Time {
            secs: d.as_secs(),
            nanos: d.subsec_nanos(),
        }
    }
}

/// A container's status, docker's words.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Made, never started.
    #[default]
    Created,
    /// Its process runs (or is frozen: see [`Summary::paused`]).
    Running,
    /// Waiting to be restarted by its monitor (restart policy).
    Restarting,
    /// Its process ended.
    Exited,
    /// Being removed.
    Removing,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Restarting => "restarting",
            Status::Exited => "exited",
            Status::Removing => "removing",
        }
    }
}

/// `state.json`: what happened to the container, as last written (by rename).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunState {
    pub status: Status,
    /// Its init process (0 when none).
    pub pid: i32,
    /// The process that supervises it (a monitor, or a foreground `run`), and its start
    /// time (`/proc/PID/stat`), so that a reused pid is not taken for it.
    pub monitor_pid: i32,
    pub monitor_start_time: u64,
    pub started_at: Time,
    pub finished_at: Time,
    /// Its exit code (128+N for signal N); `None` when never ended or not known.
    pub exit_code: Option<i32>,
    pub oom_killed: bool,
    /// How many times the restart policy restarted it.
    pub restart_count: u32,
    /// A user stopped it (`stop`, `kill`, `rm -f`): no restart.
    pub stopped_by_user: bool,
    /// What went wrong (a start that failed, a monitor that was killed).
    pub error: String,
    /// Frozen (`pause`): seen by [`crate::Engine::status`], never written.
    #[serde(skip)]
    pub paused: bool,
    /// Running with its monitor gone: seen by [`crate::Engine::status`], never written.
    #[serde(skip)]
    pub unsupervised: bool,
}

/// One line of `ps`.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub id: String,
    pub name: String,
    /// The image as given.
    pub image: String,
    /// The command, as docker quotes it (`"sh -c 'exit 3'"` without the outer quotes).
    pub command: String,
    pub created: Time,
    /// The status as the engine sees it now (the truth, see [`crate::Engine::status`]).
    pub status: Status,
    /// Frozen (`pause`).
    pub paused: bool,
    /// Running with no monitor (it was killed).
    pub unsupervised: bool,
    /// Docker's status text: `Up 5 seconds`, `Exited (3) 2 minutes ago`, `Created`...
    pub status_text: String,
    /// The exit code, when known.
    pub exit_code: Option<i32>,
    /// Published ports, docker's way (`0.0.0.0:8080->80/tcp`).
    pub ports: String,
    pub labels: BTreeMap<String, String>,
}

/// How `logs` reads.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    /// Keep following the log while the container runs (`-f`).
    pub follow: bool,
    /// Only the last N lines (`--tail N`; `None`: all).
    pub tail: Option<usize>,
    /// Only lines at or after this time (`--since`).
    pub since: Option<SystemTime>,
    /// Only lines before this time (`--until`).
    pub until: Option<SystemTime>,
    /// Each line prefixed with its RFC 3339 time (`-t`).
    pub timestamps: bool,
}

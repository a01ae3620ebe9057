//! `corral`: an OCI runtime command line over the `runtime` crate.
//!
//! Exit codes: a container's own status (its exit code, or 128+N when signal N killed it) for
//! `run` and `exec`; 1 when corral itself fails (bad input, a set-up step, a command in the
//! wrong state, an executable that cannot be run), as runc exits.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod build;
mod commands;
mod image;
mod log;
use runtime::Options;

/// Exit code for failures of corral itself (runc's).
const EXIT_RUNTIME_ERROR: u8 = 1;

#[derive(Parser, Debug)]
#[command(
    name = "corral",
    version,
    about = "corral: a daemonless OCI container runtime",
    after_help = "Exit status: the container's own for run and exec (128+N if signal N \
                  killed it); 1 if corral failed (as runc)."
)]
struct Cli {
    /// Directory for container state (default /run/corral; for a non-root user
    /// $XDG_RUNTIME_DIR/corral)
    #[arg(long, global = true)]
    root: Option<PathBuf>,
    /// Image store directory (default $CORRAL_STORE, else /var/lib/corral)
    #[arg(long, global = true)]
    store: Option<PathBuf>,
    /// Write logs to this file instead of stderr
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Log format: text or json
    #[arg(long = "log-format", global = true, default_value = "text")]
    log_format: String,
    /// Log debug messages
    #[arg(long, global = true)]
    debug: bool,
    /// Use systemd to manage cgroups (not supported: a clear error)
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Create a container: its process is set up and waits for `start`
    Create {
        /// The container id
        id: String,
        #[command(flatten)]
        c: CreateArgs,
    },
    /// Start a created container: its process execs
    Start {
        /// The container id
        id: String,
    },
    /// Create and run a container (from a bundle, or an image with --image); in the
    /// foreground, exit with its status
    Run {
        /// The container id (with --image: optional, as --name)
        id: Option<String>,
        #[command(flatten)]
        c: CreateArgs,
        #[command(flatten)]
        img: image::RunImageArgs,
        /// Do not wait: leave the container running and exit
        #[arg(short, long)]
        detach: bool,
        /// Keep the container's state after it exits (until `delete`)
        #[arg(long)]
        keep: bool,
    },
    /// Print the state of a container (OCI state JSON)
    State {
        /// The container id
        id: String,
    },
    /// Send a signal to the container's init process (default SIGTERM)
    Kill {
        /// The container id
        id: String,
        /// Signal name (TERM, SIGKILL) or number
        signal: Option<String>,
        /// Send it to every process of the container
        #[arg(short, long)]
        all: bool,
    },
    /// Delete a container and everything it made
    Delete {
        /// The container id
        id: String,
        /// Kill it first if it is running
        #[arg(short, long)]
        force: bool,
    },
    /// List containers
    #[command(alias = "ls")]
    List {
        /// Output format: table or json
        #[arg(short, long, default_value = "table")]
        format: String,
        /// Only print ids
        #[arg(short, long)]
        quiet: bool,
    },
    /// List the processes of a container
    Ps {
        /// The container id
        id: String,
        /// Output format: table or json
        #[arg(short, long, default_value = "table")]
        format: String,
        /// Options for ps(1) (default -ef)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Run another process in a running container; exit with its status
    Exec {
        /// The container id
        id: String,
        /// The command and its arguments (unless --process is given)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
        /// An OCI process.json to run instead of a command
        #[arg(short, long)]
        process: Option<PathBuf>,
        /// Allocate a terminal (process.terminal)
        #[arg(short, long)]
        tty: bool,
        /// Unix socket to send the terminal's pty master to
        #[arg(long)]
        console_socket: Option<PathBuf>,
        /// Do not wait for the process
        #[arg(short, long)]
        detach: bool,
        /// Write the process's pid to this file
        #[arg(long)]
        pid_file: Option<PathBuf>,
        /// Add an environment variable (KEY=VALUE)
        #[arg(short, long = "env")]
        env: Vec<String>,
        /// Working directory in the container
        #[arg(long)]
        cwd: Option<String>,
        /// User as uid[:gid]
        #[arg(short, long)]
        user: Option<String>,
        /// Additional gids
        #[arg(short = 'g', long = "additional-gids")]
        additional_gids: Vec<u32>,
        /// Add a capability (CAP_NAME) to the process's sets
        #[arg(short, long = "cap")]
        cap: Vec<String>,
        /// Set no_new_privs for the process
        #[arg(long)]
        no_new_privs: bool,
        /// Pass N extra fds (3 .. 3+N-1) to the process
        #[arg(long, default_value_t = 0)]
        preserve_fds: u32,
        /// SELinux label of the process (needs SELinux on the host)
        #[arg(long)]
        process_label: Option<String>,
        /// AppArmor profile of the process (needs AppArmor on the host)
        #[arg(long)]
        apparmor: Option<String>,
        /// Exec into a paused container too (the process waits, frozen, until it resumes)
        #[arg(long)]
        ignore_paused: bool,
        /// Run the process in an existing sub-cgroup of the container's:
        /// [CONTROLLER[,CONTROLLER...]:]PATH (repeatable; without controllers, every hierarchy)
        #[arg(long = "cgroup")]
        cgroup: Vec<String>,
    },
    /// Freeze every process of a container
    Pause {
        /// The container id
        id: String,
    },
    /// Thaw a paused container
    Resume {
        /// The container id
        id: String,
    },
    /// Change a container's limits
    Update {
        /// The container id
        id: String,
        /// Resources as OCI linux.resources JSON ("-" for stdin)
        #[arg(short, long)]
        resources: Option<PathBuf>,
        /// Memory limit in bytes
        #[arg(long)]
        memory: Option<i64>,
        /// Memory plus swap limit in bytes (-1 for unlimited)
        #[arg(long = "memory-swap")]
        memory_swap: Option<i64>,
        /// Memory reservation in bytes
        #[arg(long = "memory-reservation")]
        memory_reservation: Option<i64>,
        /// CPU shares
        #[arg(long = "cpu-shares")]
        cpu_shares: Option<u64>,
        /// CPU CFS quota in microseconds
        #[arg(long = "cpu-quota")]
        cpu_quota: Option<i64>,
        /// CPU CFS period in microseconds
        #[arg(long = "cpu-period")]
        cpu_period: Option<u64>,
        /// CPUs the container may use (cpuset)
        #[arg(long = "cpuset-cpus")]
        cpuset_cpus: Option<String>,
        /// Memory nodes the container may use (cpuset)
        #[arg(long = "cpuset-mems")]
        cpuset_mems: Option<String>,
        /// Maximum number of processes
        #[arg(long = "pids-limit")]
        pids_limit: Option<i64>,
        /// Block IO weight (10-1000)
        #[arg(long = "blkio-weight")]
        blkio_weight: Option<u16>,
    },
    /// Print resource usage of a container
    Events {
        /// The container id
        id: String,
        /// Print stats once and exit
        #[arg(long)]
        stats: bool,
        /// Interval between stats
        #[arg(long, default_value = "5s")]
        interval: String,
    },
    /// Print the OCI features document of this build and host
    Features,
    /// Manage images: import, export, ls, inspect, rm, prune, tag, history, build
    Image {
        #[command(subcommand)]
        cmd: image::ImageCmd,
    },
    /// Make an image of a container made from an image: its writable layer on top
    Commit {
        /// The container id
        id: String,
        /// NAME[:TAG] of the new image
        reference: String,
        /// A comment kept in the image's history
        #[arg(short, long)]
        message: Option<String>,
    },
    /// Show the image store, storage driver, cgroup layout and counts
    Info,
    /// Write a default config.json (as `runc spec` does)
    Spec {
        /// Directory to write config.json into
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        /// A spec for a container run by a non-root user
        #[arg(long)]
        rootless: bool,
    },
    /// Not supported: corral does not checkpoint containers
    Checkpoint {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Not supported: corral does not restore containers
    Restore {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

#[derive(clap::Args, Debug)]
struct CreateArgs {
    /// Path to the bundle (holding config.json)
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// Root the container on an overlay of these read-only layer dirs (bottom first)
    /// instead of root.path; its writes go to a layer in the state dir
    #[arg(long = "layer", value_name = "DIR")]
    layers: Vec<PathBuf>,
    /// Do not use pivot_root (for roots on initramfs)
    #[arg(long)]
    no_pivot: bool,
    /// Keep the caller's session keyring instead of giving the container its own
    #[arg(long)]
    no_new_keyring: bool,
    /// Pass N extra fds (3 .. 3+N-1) to the container
    #[arg(long, default_value_t = 0)]
    preserve_fds: u32,
    /// Write the container's pid to this file
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// Unix socket to send the terminal's pty master to (process.terminal)
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// Print how long each phase of the spawn took, on stderr
    #[arg(long)]
    timings: bool,
}

impl CreateArgs {
    fn options(&self, root: &std::path::Path) -> Options {
        Options {
            root: root.to_path_buf(),
            layers: self.layers.clone(),
            no_pivot: self.no_pivot,
            preserve_fds: self.preserve_fds,
            preserve_holes: preserve_holes(),
            console_socket: self.console_socket.clone(),
            no_new_keyring: self.no_new_keyring,
            ..Options::default()
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Before corral opens anything: the fds the caller passes with --preserve-fds must be
    // the caller's alone (no signalfd, log file or state-dir fd of ours may land there).
    let holes = match reserve_preserved(&cli) {
        Ok(h) => h,
        Err(msg) => {
            eprintln!("corral: error: {msg}");
            return ExitCode::from(EXIT_RUNTIME_ERROR);
        }
    };
    let _ = PRESERVE_HOLES.set(holes);
    if let Err(msg) = init_logging(&cli) {
        eprintln!("corral: error: {msg}");
        return ExitCode::from(EXIT_RUNTIME_ERROR);
    }
    if cli.systemd_cgroup {
        report_error(&cli, "--systemd-cgroup: corral manages cgroups through cgroupfs only; systemd cgroup driver is not supported");
        return ExitCode::from(EXIT_RUNTIME_ERROR);
    }
    quiet_when_stdout_closes();
    let code = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        image::dispatch(&cli).unwrap_or_else(|| commands::dispatch(&cli))
    })) {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => {
            report_error(&cli, &e.to_string());
            e.exit_code()
        }
        // The reader of our stdout went away (`corral image ls | head -1`): what was being
        // done has been undone on the way out (the unwinding dropped it); exit as a C tool
        // killed by SIGPIPE shows in a shell, without a word.
        Err(p) if stdout_closed(p.as_ref()) => i32::from(EXIT_STDOUT_CLOSED),
        Err(p) => std::panic::resume_unwind(p),
    };
    ExitCode::from(code as u8)
}

/// Text that came from an image (history, dates, names), made safe to print on a terminal:
/// control characters (escape sequences, carriage returns, bells...) and the Unicode
/// direction overrides that reorder what a terminal shows become `\xNN` / `\u{NNNN}`; other
/// text (a backslash too) is shown as it is.
pub(crate) fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| {
        c.is_control()
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !s.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            c if (c as u32) < 0x100 && unsafe_char(c) => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if unsafe_char(c) => out.push_str(&format!("\\u{{{:04x}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The exit status when stdout was closed by its reader: 128 + SIGPIPE, what a shell shows
/// for `ls` in `ls | head -1`.
pub(crate) const EXIT_STDOUT_CLOSED: u8 = 141;

/// The unwinding payload of a write to a closed stdout (see [`stdout_closed_unwind`]).
pub(crate) struct StdoutClosed;

/// Leaves the command by unwinding (so that what it holds is dropped and undone) to `main`,
/// which exits [`EXIT_STDOUT_CLOSED`] quietly. For writes to stdout that fail with `EPIPE`.
pub(crate) fn stdout_closed_unwind() -> ! {
    std::panic::resume_unwind(Box::new(StdoutClosed))
}

/// Whether a panic is a write to a stdout whose reader is gone: ours, or `println!`'s
/// ("failed printing to stdout: Broken pipe (os error 32)").
fn stdout_closed(p: &(dyn std::any::Any + Send)) -> bool {
    p.is::<StdoutClosed>() || payload_text(p).is_some_and(is_epipe_message)
}

/// A panic's message, when it is text (`PanicHookInfo::payload_as_str` needs Rust 1.91).
fn payload_text(p: &(dyn std::any::Any + Send)) -> Option<&str> {
    p.downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| p.downcast_ref::<&str>().copied())
}

fn is_epipe_message(s: &str) -> bool {
    s.starts_with("failed printing to stdout") && s.contains("(os error 32)")
}

/// A panic hook that says nothing (no message, no backtrace) for `println!` to a closed
/// stdout, and leaves every other panic to the default hook.
fn quiet_when_stdout_closes() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !payload_text(info.payload()).is_some_and(is_epipe_message) {
            default(info)
        }
    }));
}

/// Placeholders in the preserved fd range (see `reserve_preserved`), set once at start.
static PRESERVE_HOLES: std::sync::OnceLock<Vec<i32>> = std::sync::OnceLock::new();

/// The placeholder fds `reserve_preserved` put in the preserved range: the container's
/// process closes them.
pub(crate) fn preserve_holes() -> Vec<i32> {
    PRESERVE_HOLES.get().cloned().unwrap_or_default()
}

/// Fills every closed fd of 0 .. 3+N (N = --preserve-fds) with /dev/null, so that nothing
/// corral opens later lands among the fds the container inherits; returns the placeholders
/// past stdio (a closed stdio fd stays /dev/null, as is usual).
fn reserve_preserved(cli: &Cli) -> Result<Vec<i32>, String> {
    let n = match &cli.cmd {
        Cmd::Create { c, .. } | Cmd::Run { c, .. } => c.preserve_fds,
        Cmd::Exec { preserve_fds, .. } => *preserve_fds,
        _ => 0,
    };
    let mut lim: libc::rlimit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct.
    let limit = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        lim.rlim_cur
    } else {
        1024
    };
    let end = 3u64 + u64::from(n);
    if n > runtime::MAX_PRESERVE_FDS || end + 16 > limit {
        return Err(format!(
            "--preserve-fds {n}: too many (the open-file limit is {limit}, and corral needs some fds of its own)"
        ));
    }
    let mut holes = Vec::new();
    for fd in 0..end as i32 {
        // SAFETY: probing and filling fd numbers of this process; nothing else runs yet.
        unsafe {
            if libc::fcntl(fd, libc::F_GETFD) >= 0 {
                continue;
            }
            let flags = if fd < 3 {
                libc::O_RDWR
            } else {
                libc::O_RDWR | libc::O_CLOEXEC
            };
            let got = libc::open(c"/dev/null".as_ptr(), flags);
            if got < 0 {
                return Err(format!(
                    "--preserve-fds: opening /dev/null: {}",
                    std::io::Error::last_os_error()
                ));
            }
            if got != fd {
                libc::dup3(got, fd, flags & libc::O_CLOEXEC);
                libc::close(got);
            }
        }
        if fd >= 3 {
            holes.push(fd);
        }
    }
    Ok(holes)
}

/// Where logs go, in runc's format (see `log.rs`): the `--log` file, or stderr.
fn init_logging(cli: &Cli) -> Result<(), String> {
    let level = if cli.debug { "debug" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CORRAL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let json = match cli.log_format.as_str() {
        "text" => false,
        "json" => true,
        other => return Err(format!("--log-format {other:?}: want text or json")),
    };
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .event_format(log::Logrus { json });
    match &cli.log {
        Some(path) => {
            let f = open_log(path)?;
            b.with_writer(std::sync::Mutex::new(f)).init();
        }
        None => b.with_writer(std::io::stderr).init(),
    }
    Ok(())
}

fn open_log(path: &std::path::Path) -> Result<std::fs::File, String> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("--log {}: {e}", path.display()))
}

/// Reports corral's own failure as runc does: one line on stderr, and (with `--log`) an
/// `error` entry in the log file, where engines look for it.
fn report_error(cli: &Cli, message: &str) {
    eprintln!("corral: error: {message}");
    if let Some(path) = &cli.log {
        if let Ok(mut f) = open_log(path) {
            use std::io::Write;
            let json = cli.log_format == "json";
            let _ = writeln!(f, "{}", log::line(json, "error", message, &[]));
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn printable_escapes_what_a_terminal_would_act_on() {
        assert_eq!(super::printable("plain text é"), "plain text é");
        assert_eq!(
            super::printable("a\x1b]0;t\x07b\rc\\x1b\u{202e}d\u{9b}"),
            "a\\x1b]0;t\\x07b\\x0dc\\x1b\\u{202e}d\\x9b"
        );
    }
}

//! `corral`: an OCI runtime command line over the `runtime` crate.
//!
//! Exit codes: a container's own status (its exit code, or 128+N when signal N killed it);
//! 125 when corral itself fails (bad input, a set-up step that failed); 126 when the
//! container's executable could not be run; 127 when it was not found.

use std::io::Write as _;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use runtime::{Container, Options};

/// Exit code for failures of corral itself.
const EXIT_RUNTIME_ERROR: u8 = 125;

#[derive(Parser, Debug)]
#[command(
    name = "corral",
    version,
    about = "corral: a daemonless OCI container runtime",
    after_help = "Exit status: the container's own (128+N if signal N killed it); \
                  125 if corral failed; 126 if the executable could not be run; \
                  127 if it was not found."
)]
struct Cli {
    /// Directory for container state
    #[arg(long, global = true, default_value = runtime::state::DEFAULT_ROOT)]
    root: PathBuf,
    /// Write logs to this file instead of stderr
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Log format: text or json
    #[arg(long = "log-format", global = true, default_value = "text")]
    log_format: String,
    /// Log debug messages
    #[arg(long, global = true)]
    debug: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Create and run a container in the foreground; exits with its status
    Run {
        /// The container id
        id: String,
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
        /// Pass N extra fds (3 .. 3+N-1) to the container
        #[arg(long, default_value_t = 0)]
        preserve_fds: u32,
        /// Write the container's pid to this file
        #[arg(long)]
        pid_file: Option<PathBuf>,
    },
    /// Write a default config.json (as `runc spec` does)
    Spec {
        /// Directory to write config.json into
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(msg) = init_logging(&cli) {
        eprintln!("corral: {msg}");
        return ExitCode::from(EXIT_RUNTIME_ERROR);
    }
    let code = match &cli.cmd {
        Cmd::Run {
            id,
            bundle,
            layers,
            no_pivot,
            preserve_fds,
            pid_file,
        } => {
            let opts = Options {
                root: cli.root.clone(),
                layers: layers.clone(),
                no_pivot: *no_pivot,
                preserve_fds: *preserve_fds,
                ..Options::default()
            };
            run(id, bundle, &opts, pid_file.as_deref())
        }
        Cmd::Spec { bundle } => spec(bundle),
    };
    ExitCode::from(code as u8)
}

fn init_logging(cli: &Cli) -> Result<(), String> {
    let level = if cli.debug { "debug" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CORRAL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let json = match cli.log_format.as_str() {
        "text" => false,
        "json" => true,
        other => return Err(format!("--log-format {other:?}: want text or json")),
    };
    match &cli.log {
        Some(path) => {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("--log {}: {e}", path.display()))?;
            let b = b.with_writer(std::sync::Mutex::new(f)).with_ansi(false);
            if json {
                b.json().init()
            } else {
                b.init()
            }
        }
        None => {
            let b = b.with_writer(std::io::stderr);
            if json {
                b.json().init()
            } else {
                b.init()
            }
        }
    }
    Ok(())
}

fn fail(e: &runtime::Error) -> i32 {
    eprintln!("corral: {e}");
    e.exit_code()
}

/// Signals that `run` passes on to the container.
const FORWARDED: [libc::c_int; 7] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
];

fn run(
    id: &str,
    bundle: &std::path::Path,
    opts: &Options,
    pid_file: Option<&std::path::Path>,
) -> i32 {
    // Block the forwarded signals before the container exists, so that none is lost or kills
    // corral; they are read from a signalfd and passed on. The container's process starts
    // with an empty mask.
    let sfd = match block_signals() {
        Ok(fd) => fd,
        Err(e) => {
            eprintln!("corral: signalfd: {e}");
            return EXIT_RUNTIME_ERROR as i32;
        }
    };
    let mut c = match Container::create_and_start(id, bundle, opts) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    if let Some(p) = pid_file {
        if let Err(e) = std::fs::write(p, c.pid().to_string()) {
            eprintln!("corral: --pid-file {}: {e}", p.display());
            let _ = c.delete();
            return EXIT_RUNTIME_ERROR as i32;
        }
    }
    let status = loop {
        match c.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) => {}
            Err(e) => return fail(&e),
        }
        let mut fds = [
            libc::pollfd {
                fd: c.pidfd().unwrap_or(-1),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: sfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: polling two valid fds (a -1 fd is ignored by poll).
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, if fds[0].fd < 0 { 50 } else { -1 }) };
        if n < 0 {
            continue;
        }
        if fds[1].revents & libc::POLLIN != 0 {
            let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
            // SAFETY: reading one siginfo record into a properly sized buffer.
            let r = unsafe {
                libc::read(
                    sfd.as_raw_fd(),
                    (&mut info as *mut libc::signalfd_siginfo).cast(),
                    std::mem::size_of::<libc::signalfd_siginfo>(),
                )
            };
            if r == std::mem::size_of::<libc::signalfd_siginfo>() as isize {
                tracing::debug!(signal = info.ssi_signo, "forwarding");
                if let Err(e) = c.signal(info.ssi_signo as i32) {
                    eprintln!("corral: {e}");
                }
            }
        }
    };
    if let Err(e) = c.delete() {
        eprintln!("corral: {e}");
    }
    status.code()
}

fn block_signals() -> std::io::Result<OwnedFd> {
    // SAFETY: plain sigset manipulation and signalfd creation.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in FORWARDED {
            libc::sigaddset(&mut set, s);
        }
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

fn spec(bundle: &std::path::Path) -> i32 {
    let path = bundle.join("config.json");
    if path.exists() {
        eprintln!("corral: {}: already exists", path.display());
        return EXIT_RUNTIME_ERROR as i32;
    }
    let text = match serde_json::to_string_pretty(&runtime::default_spec()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("corral: encoding spec: {e}");
            return EXIT_RUNTIME_ERROR as i32;
        }
    };
    let r = std::fs::File::create(&path).and_then(|mut f| writeln!(f, "{text}"));
    if let Err(e) = r {
        eprintln!("corral: {}: {e}", path.display());
        return EXIT_RUNTIME_ERROR as i32;
    }
    0
}

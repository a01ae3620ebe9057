//! `corral`: an OCI runtime command line over the `runtime` crate, as two binaries (see
//! [`front`]): `corral`, which engines run at every spawn, and `corral-full`, every command.
//!
//! Exit codes: a container's own status (its exit code, or 128+N when signal N killed it) for
//! `run` and `exec`. corral's own failures: 1 for runc's verbs (bad input, a set-up step, a
//! command in the wrong state, an executable that cannot be run), as runc exits; docker's
//! codes for docker's (125 corral failed, 126 the command cannot be invoked, 127 it is not
//! found).

use std::process::ExitCode;

use clap::Parser;

mod args;
mod args_fast;
mod args_image;
mod args_limits;
mod args_pull;
mod build;
mod commands;
mod docker;
mod docker_image;
mod error;
mod events;
mod exec;
mod fds;
mod features;
mod front;
mod image;
mod info;
mod lifecycle;
mod limits;
mod list;
mod log;
mod monitor;
mod network;
mod output;
mod pull;
mod signals;
mod tty;
mod update;
mod volume;

use args::{Cli, Cmd};
use error::EXIT_RUNTIME_ERROR;

/// `corral-full`: every command. The engines' everyday command lines are read without
/// clap's whole tree (args_fast).
pub fn main_full() -> ExitCode {
    let mut cli = front::argv()
        .and_then(|a| args_fast::parse(&a))
        .unwrap_or_else(Cli::parse);
    // `run` and `create` keep their arguments raw until their form is known (runc's with
    // -b/--bundle, the legacy --image one, docker's IMAGE [COMMAND]).
    docker::args::settle(&mut cli);
    run_command(&cli, commands::dispatch)
}

/// `corral`: what engines run at every spawn, done here; any other command line is handed
/// to `corral-full` (see [`front`]).
pub fn main_front() -> ExitCode {
    match front::argv().and_then(|a| front::take(&a)) {
        Some(cli) => run_command(&cli, front::dispatch),
        None => front::hand_over(),
    }
}

/// The command `cli`, done by `dispatch`, with what every command gets first: the fds
/// `--preserve-fds` keeps, logging, and the exit status of corral's own failures.
fn run_command(cli: &Cli, dispatch: fn(&Cli) -> error::R) -> ExitCode {
    // Before corral opens anything: the fds the caller passes with --preserve-fds must be
    // the caller's alone (no signalfd, log file or state-dir fd of ours may land there).
    let preserved = match &cli.cmd {
        Cmd::Create { form: Some(f), .. } | Cmd::Run { form: Some(f), .. } => f.preserve_fds(),
        Cmd::Exec(e) => e.preserve_fds,
        _ => 0,
    };
    let holes = match fds::reserve_preserved(preserved) {
        Ok(h) => h,
        Err(msg) => {
            eprintln!("corral: error: {msg}");
            return ExitCode::from(error_exit(cli));
        }
    };
    fds::set_holes(holes);
    if let Err(msg) = init_logging(cli) {
        eprintln!("corral: error: {msg}");
        return ExitCode::from(error_exit(cli));
    }
    if cli.systemd_cgroup {
        report_error(cli, "--systemd-cgroup: corral manages cgroups through cgroupfs only; systemd cgroup driver is not supported");
        return ExitCode::from(EXIT_RUNTIME_ERROR);
    }
    output::quiet_when_stdout_closes();
    let code = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| dispatch(cli))) {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => {
            report_error(cli, &e.to_string());
            if e.docker() || commands::docker_form(cli) {
                e.docker_exit_code()
            } else {
                e.exit_code()
            }
        }
        // The reader of our stdout went away (`corral image ls | head -1`): what was being
        // done has been undone on the way out (the unwinding dropped it); exit as a C tool
        // killed by SIGPIPE shows in a shell, without a word.
        Err(p) if output::stdout_closed(p.as_ref()) => i32::from(output::EXIT_STDOUT_CLOSED),
        Err(p) => std::panic::resume_unwind(p),
    };
    ExitCode::from(code as u8)
}

/// The status of a failure before the command ran: docker's 125 for its verbs, else 1.
fn error_exit(cli: &Cli) -> u8 {
    if commands::docker_form(cli) {
        error::EXIT_DOCKER_ERROR
    } else {
        EXIT_RUNTIME_ERROR
    }
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

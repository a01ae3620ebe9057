//! `corral`, the front: the command lines an engine runs at every spawn, done in a binary
//! that links the runtime and nothing of the docker face, and every other command line
//! handed, by `execve`, to `corral-full`, installed beside it.
//!
//! Why two binaries: a binary's size is paid at each start. The whole command line (docker's
//! verbs, the image store, the registry client with its TLS and async runtime, builds,
//! networks) is a 12 MB text with 0.5 MB of pointers that a position-independent binary
//! relocates at each start, and the container's first process is a copy of it. The front
//! is under half of that: about 2 MB of peak RSS, 40 page faults and 0.3 ms of CPU less per
//! `corral run` (BENCHMARKS.md, the `full` experiment). Users and engines still run `corral`
//! for everything.
//!
//! What the front does itself, exactly as `corral-full` would do it:
//! - `run`/`create` in runc's form (`-b/--bundle` before the first operand, with runc's
//!   flags only);
//! - `start ID`, `kill ID [SIGNAL]`, `delete [-f] ID` of a runtime container: one whose id
//!   names a directory of the state root and that the engine resolves to that same
//!   runtime container (not one of its own, by name or id); `delete` only when the image
//!   store holds no record of it and no network state at all (nothing there to undo);
//! - `state ID` of a runtime container of that id.
//!
//! Anything else, however it is spelled, goes to `corral-full` with the same arguments, the
//! same `argv[0]`, environment, fds and signal mask: the front has opened nothing and
//! changed nothing by then.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use runtime::Container;

use crate::args::{Cli, Cmd};
use crate::docker::args::MakeForm;
use crate::error::{msg, EXIT_RUNTIME_ERROR, R};
use crate::lifecycle;

/// The name of the binary with every command, looked for beside the front.
pub const FULL: &str = "corral-full";

/// The arguments after the program's name, when all are UTF-8.
pub fn argv() -> Option<Vec<String>> {
    std::env::args_os()
        .skip(1)
        .map(|a| a.into_string().ok())
        .collect()
}

/// `argv` read as one of the front's own command lines (the module's list), or `None`.
pub fn take(argv: &[String]) -> Option<Cli> {
    let mut cli = crate::args_fast::parse(argv)?;
    if matches!(cli.cmd, Cmd::Run { .. } | Cmd::Create { .. })
        && !crate::docker::args::settle_runc(&mut cli)
    {
        return None;
    }
    let root = root(&cli);
    let store = crate::image::store_dir(&cli);
    let ours = match &cli.cmd {
        Cmd::Run { .. } | Cmd::Create { .. } => true,
        Cmd::Start { ids, attach: false } => {
            matches!(ids.as_slice(), [id] if runtime_only(&store, &root, id))
        }
        Cmd::State { id } => exact(&root, id),
        Cmd::Kill {
            args,
            signal: None,
            all: false,
        } => match args.as_slice() {
            [id] => runtime_only(&store, &root, id),
            [id, sig] => {
                crate::signals::parse_signal(sig).is_ok() && runtime_only(&store, &root, id)
            }
            _ => false,
        },
        Cmd::Delete { id, .. } => {
            runtime_only(&store, &root, id)
                && !store.join("containers").join(id).exists()
                && !store.join("cni").exists()
        }
        _ => false,
    };
    ours.then_some(cli)
}

/// A command line [`take`] kept.
pub fn dispatch(cli: &Cli) -> R {
    let root = root(cli);
    let root = root.as_path();
    match &cli.cmd {
        Cmd::Create {
            form: Some(MakeForm::RuncCreate(r)),
            ..
        } => lifecycle::create(root, &r.id, &r.c).map(|_| 0),
        Cmd::Run {
            form: Some(MakeForm::RuncRun(r)),
            ..
        } => lifecycle::run(root, &r.id, &r.c, r.detach, r.keep),
        Cmd::Start { ids, .. } if ids.len() == 1 => {
            Container::load(root, &ids[0])?.start()?;
            Ok(0)
        }
        Cmd::State { id } => lifecycle::state(root, id),
        Cmd::Kill { args, .. } => {
            let sig = match args.get(1) {
                Some(s) => Some(crate::signals::parse_signal(s)?),
                None => None,
            };
            lifecycle::signal(root, &args[0], sig, false).map(|_| 0)
        }
        Cmd::Delete { id, force } => {
            Container::delete_by_id(root, id, *force)?;
            Ok(0)
        }
        _ => Err(msg("corral: a command line the front did not take")),
    }
}

/// Replaces this process with `corral-full`, given the same arguments; returns only when
/// that fails.
pub fn hand_over() -> ExitCode {
    let full = full_binary();
    let args: Option<Vec<CString>> = std::env::args_os()
        .map(|a| CString::new(OsString::into_vec(a)).ok())
        .collect();
    let err = match (CString::new(full.as_os_str().as_encoded_bytes()), args) {
        (Ok(path), Some(args)) => match nix::unistd::execv(&path, &args) {
            Err(e) => std::io::Error::from(e),
            Ok(never) => match never {},
        },
        _ => std::io::Error::from(std::io::ErrorKind::InvalidInput),
    };
    eprintln!(
        "corral: error: this command is done by {}, which could not be run: {err} (install \
         {FULL} beside corral, as the README says)",
        full.display()
    );
    ExitCode::from(EXIT_RUNTIME_ERROR)
}

/// `corral-full` in the directory of this very binary (`/proc/self/exe`, so a symlink to
/// `corral` finds it too).
fn full_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe"));
    exe.parent().unwrap_or(Path::new("/")).join(FULL)
}

fn root(cli: &Cli) -> PathBuf {
    cli.root
        .clone()
        .unwrap_or_else(runtime::state::default_root)
}

/// A runtime container of exactly this id: a directory of the state root.
fn exact(root: &Path, id: &str) -> bool {
    runtime::state::check_id(id).is_ok() && root.join(id).is_dir()
}

/// [`exact`], and the engine resolves `id` to that runtime container (it is none of the
/// engine's names or ids).
fn runtime_only(store: &Path, root: &Path, id: &str) -> bool {
    exact(root, id)
        && matches!(corral_engine::resolve(store, root, id),
                    Ok(crate::docker::Target::Runtime(r)) if r == id)
}

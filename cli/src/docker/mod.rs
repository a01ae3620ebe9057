//! docker's verbs for containers, over the engine (`corral_engine`: kept records, monitors,
//! logs, exit codes) and the runtime (what runs: processes, cgroup stats, the root).
//! `args` holds their flags and how `run`/`create` pick their form.

use std::path::{Path, PathBuf};

use corral_engine::Engine;
use runtime::Container;

use crate::args::{Cli, ExecArgs};
use crate::error::{msg, CliError, R};

pub mod args;
mod cp;
mod inspect;
pub mod ps;
pub mod run;
mod stats;
pub mod template;
pub mod users;

pub use corral_engine::Target;

use args::DockerCmd;

/// The engine over this command's store and state root; monitors are this binary.
pub fn engine(cli: &Cli, root: &Path) -> Engine {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe"));
    Engine::new(crate::image::store_dir(cli), root, exe)
}

/// What `s` names: an engine container (name, id, unique id prefix) or a runtime container
/// (its id). A runtime container of exactly that id is found even when the engine's
/// resolution fails.
pub fn resolve(cli: &Cli, root: &Path, s: &str) -> R<Target> {
    match corral_engine::resolve(&crate::image::store_dir(cli), root, s) {
        Ok(t) => Ok(t),
        Err(e) => {
            if runtime::state::check_id(s).is_ok() && root.join(s).is_dir() {
                Ok(Target::Runtime(s.to_string()))
            } else {
                Err(e.into())
            }
        }
    }
}

/// The runtime id for a runc verb: `s` itself when a runtime container has that id (runc's
/// behaviour unchanged), else what it names (an engine container's name or id prefix),
/// else `s` (the runtime's own error then names it).
pub fn runtime_id(cli: &Cli, root: &Path, s: &str) -> String {
    if runtime::state::check_id(s).is_ok() && root.join(s).exists() {
        return s.to_string();
    }
    match resolve(cli, root, s) {
        Ok(Target::Engine(id) | Target::Runtime(id)) => id,
        Err(_) => s.to_string(),
    }
}

/// Runs `f` on each container's runtime id, as docker does for several: every one is tried,
/// each failure reported, and the status is 1 if any failed (docker's).
pub fn each(cli: &Cli, root: &Path, ids: &[String], f: impl Fn(&str) -> R<()>) -> R {
    if ids.len() == 1 {
        f(&runtime_id(cli, root, &ids[0]))?;
        return Ok(0);
    }
    let mut failed = false;
    for s in ids {
        if let Err(e) = f(&runtime_id(cli, root, s)) {
            eprintln!("corral: error: {s}: {e}");
            failed = true;
        }
    }
    Ok(i32::from(failed))
}

/// Like [`each`] for docker's verbs that print each name they acted on.
fn each_printed(ids: &[String], f: impl Fn(&str) -> R<()>) -> R {
    let mut failed = None;
    for s in ids {
        match f(s) {
            Ok(()) => println!("{s}"),
            Err(e) if ids.len() == 1 => return Err(CliError::Docker(Box::new(e))),
            Err(e) => {
                eprintln!("corral: error: {e}");
                failed = Some(1);
            }
        }
    }
    Ok(failed.unwrap_or(0))
}

/// The engine container `s` names, or docker's error.
fn engine_id(cli: &Cli, root: &Path, s: &str) -> R<String> {
    match resolve(cli, root, s)? {
        Target::Engine(id) => Ok(id),
        Target::Runtime(id) => Err(msg(format!(
            "{id}: a container of the runc verbs (made from a bundle or with --image): use \
             `corral delete`, `corral kill`, `corral start`"
        ))),
    }
}

/// `start`: runc's for a runtime container waiting at its start gate; docker's (the engine)
/// for an engine container (`-a`: attached, its exit code returned).
pub fn start(cli: &Cli, root: &Path, ids: &[String], attach: bool) -> R {
    if attach && ids.len() != 1 {
        return Err(msg("start -a: one container at a time"));
    }
    let mut failed = 0;
    for s in ids {
        let r: R<()> = match resolve(cli, root, s) {
            Ok(Target::Engine(id)) => {
                let e = engine(cli, root);
                if attach {
                    return Ok(e.run_attached(&id, false)?);
                }
                e.start(&id)
                    .map(|_| ())
                    .map_err(|e| CliError::Docker(Box::new(CliError::from(e))))?;
                if ids.len() > 1 || !attach {
                    println!("{s}");
                }
                Ok(())
            }
            Ok(Target::Runtime(id)) => Ok(Container::load(root, &id)?.start()?),
            // runc's error for an unknown id, as before.
            Err(_) => Ok(Container::load(root, s)?.start()?),
        };
        if let Err(e) = r {
            if ids.len() == 1 {
                return Err(e);
            }
            eprintln!("corral: error: {s}: {e}");
            failed = 1;
        }
    }
    Ok(failed)
}

/// `kill`: runc's `kill ID [SIGNAL] [--all]` when a second argument is a signal, docker's
/// `kill [-s SIGNAL] ID...` otherwise. Without a signal: SIGKILL for an engine container
/// (docker's), SIGTERM for a runtime one (runc's).
pub fn kill(cli: &Cli, root: &Path, args: &[String], signal: Option<&str>, all: bool) -> R {
    use crate::signals::parse_signal;
    // A second argument that is a signal, or looks like one (a number, an upper-case
    // name: runc's `kill ID SIGNOPE` gets runc's error, not a container lookup).
    let looks_like_signal = |s: &str| {
        parse_signal(s).is_ok()
            || (!s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '+' || c == '-'))
    };
    if signal.is_none() && args.len() == 2 && looks_like_signal(&args[1]) {
        let sig = parse_signal(&args[1])?;
        return kill_one(cli, root, &args[0], Some(sig), all).map(|_| 0);
    }
    let sig = signal.map(parse_signal).transpose()?;
    // runc's `kill ID` prints nothing; docker's prints each container it signalled.
    let runc = args.len() == 1
        && signal.is_none()
        && !matches!(resolve(cli, root, &args[0]), Ok(Target::Engine(_)));
    if runc {
        return kill_one(cli, root, &args[0], sig, all).map(|_| 0);
    }
    each_printed(args, |s| kill_one(cli, root, s, sig, all))
}

fn kill_one(cli: &Cli, root: &Path, s: &str, sig: Option<i32>, all: bool) -> R<()> {
    match resolve(cli, root, s) {
        Ok(Target::Engine(id)) => {
            let sig = sig.unwrap_or(libc::SIGKILL);
            Ok(engine(cli, root).kill(&id, sig)?)
        }
        other => {
            let id = match other {
                Ok(Target::Runtime(id)) => id,
                _ => s.to_string(),
            };
            crate::lifecycle::signal(root, &id, sig, all)
        }
    }
}

/// `exec`: one form for both (runc's flags and docker's `-i`, `-w`). A container of the
/// engine or made from an image gets docker's exit codes for corral's failures (126, 127,
/// else 125); a docker container, docker's stdin too (the caller's only with `-i` or `-t`).
/// One from a bundle keeps runc's 1, and runc-level containers their stdin passed on.
pub fn exec(cli: &Cli, root: &Path, a: &ExecArgs) -> R {
    let (id, docker, engine) = match resolve(cli, root, &a.id) {
        Ok(Target::Engine(id)) => (id, true, true),
        Ok(Target::Runtime(id)) => {
            let imaged = corral_image::ImageStore::open(&crate::image::store_dir(cli))
                .ok()
                .and_then(|s| s.container(&id).ok().flatten())
                .is_some();
            (id, imaged, false)
        }
        Err(_) => (a.id.clone(), false, false),
    };
    if engine && !a.interactive && !a.tty {
        // docker's: without -i the process's stdin is not the caller's (it reads nothing).
        if let Ok(null) = std::fs::File::open("/dev/null") {
            // SAFETY: dup2 onto our own stdin of an fd we hold.
            unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), 0) };
        }
    }
    match crate::exec::exec(root, &id, a) {
        Err(e) if docker => Err(CliError::Docker(Box::new(e))),
        r => r,
    }
}

/// `port ID [PORT[/PROTO]]`.
pub fn port(cli: &Cli, root: &Path, s: &str, only: Option<&str>) -> R {
    let id = match resolve(cli, root, s) {
        Ok(Target::Engine(id) | Target::Runtime(id)) => id,
        Err(_) => s.to_string(),
    };
    runtime::Container::load(root, &id)?;
    let net = crate::network::net_root(cli);
    let want = only.map(|p| match p.split_once('/') {
        Some((n, proto)) => (n.to_string(), proto.to_string()),
        None => (p.to_string(), "tcp".to_string()),
    });
    let mut found = false;
    for a in net.attachments(&id)? {
        for p in &a.ports {
            let ip = p
                .host_ip
                .map_or_else(|| "0.0.0.0".to_string(), |ip| ip.to_string());
            match &want {
                Some((n, proto)) => {
                    if p.container_port.to_string() == *n && p.protocol.to_string() == *proto {
                        println!("{ip}:{}", p.host_port);
                        found = true;
                    }
                }
                None => println!(
                    "{}/{} -> {ip}:{}",
                    p.container_port, p.protocol, p.host_port
                ),
            }
        }
    }
    if let (Some(p), false) = (only, found) {
        return Err(CliError::Docker(Box::new(msg(format!(
            "No public port '{p}' published for {s}"
        )))));
    }
    Ok(0)
}

/// docker's verbs of their own.
pub fn dispatch(cli: &Cli, root: &Path, cmd: &DockerCmd) -> R {
    match cmd {
        DockerCmd::Stop { time, ids } => {
            let t = timeout(*time)?;
            each_printed(ids, |s| {
                Ok(engine(cli, root).stop(&engine_id(cli, root, s)?, t)?)
            })
        }
        DockerCmd::Restart { time, ids } => {
            let t = timeout(*time)?;
            each_printed(ids, |s| {
                engine(cli, root).restart(&engine_id(cli, root, s)?, t)?;
                Ok(())
            })
        }
        DockerCmd::Rm {
            force,
            volumes,
            ids,
        } => each_printed(ids, |s| match resolve(cli, root, s)? {
            Target::Engine(id) => Ok(engine(cli, root).remove(&id, *force, *volumes)?),
            Target::Runtime(id) => Ok(corral_image::remove(
                &crate::image::store_dir(cli),
                root,
                &id,
                *force,
            )?),
        }),
        DockerCmd::Logs {
            follow,
            tail,
            since,
            timestamps,
            id,
        } => {
            let id = engine_id(cli, root, id)?;
            let o = corral_engine::LogOptions {
                follow: *follow,
                tail: match tail.as_deref() {
                    None | Some("all") => None,
                    Some(n) => Some(n.parse().map_err(|_| {
                        msg(format!("--tail {n:?}: want a number of lines or `all`"))
                    })?),
                },
                since: since.as_deref().map(parse_since).transpose()?,
                until: None,
                timestamps: *timestamps,
            };
            let mut out = std::io::stdout();
            let mut err = std::io::stderr();
            engine(cli, root).logs(&id, &o, &mut out, &mut err)?;
            Ok(0)
        }
        DockerCmd::Inspect {
            format,
            kind,
            names,
        } => inspect::inspect(cli, root, names, kind.as_deref(), format.as_deref()),
        DockerCmd::Top { id: name, ps_args } => {
            let id = runtime_id(cli, root, name);
            if !root.join(&id).exists() {
                return Err(msg(format!("container {name} is not running")));
            }
            crate::list::ps(root, &id, "table", ps_args)
        }
        DockerCmd::Stats {
            no_stream,
            all,
            format,
            no_trunc,
            ids,
        } => stats::stats(
            cli,
            root,
            ids,
            *all,
            *no_stream,
            *no_trunc,
            format.as_deref(),
        ),
        DockerCmd::Cp {
            follow_link,
            archive,
            src,
            dst,
        } => cp::cp(cli, root, src, dst, *follow_link, *archive),
        DockerCmd::Wait { ids } => {
            let mut failed = 0;
            for s in ids {
                let r = match resolve(cli, root, s) {
                    Ok(Target::Engine(id)) => engine(cli, root).wait(&id).map_err(CliError::from),
                    Ok(Target::Runtime(id)) => wait_runtime(root, &id),
                    Err(e) => Err(e),
                };
                match r {
                    Ok(code) => println!("{code}"),
                    Err(e) if ids.len() == 1 => return Err(e),
                    Err(e) => {
                        eprintln!("corral: error: {e}");
                        failed = 1;
                    }
                }
            }
            Ok(failed)
        }
        DockerCmd::Rename {
            container,
            new_name,
        } => {
            let id = engine_id(cli, root, container)?;
            engine(cli, root).rename(&id, new_name)?;
            Ok(0)
        }
    }
}

/// `wait` of a runtime container: until its process is gone (its exit code is not known to
/// a process that is not its parent: -1 then, as docker's for a code it lost).
fn wait_runtime(root: &Path, id: &str) -> R<i32> {
    let c = Container::load(root, id)?;
    let pid = c.pid();
    drop(c);
    if pid > 0 {
        // SAFETY: plain syscall; the fd is owned below.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
        if fd >= 0 {
            // SAFETY: pidfd_open returned a new fd that nothing else owns.
            let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
            runtime::poll_readable(std::os::fd::AsRawFd::as_raw_fd(&fd), None);
        }
    }
    Ok(-1)
}

fn timeout(t: Option<i64>) -> R<Option<u32>> {
    t.map(|t| {
        u32::try_from(t).map_err(|_| msg(format!("--time {t}: want a number of seconds >= 0")))
    })
    .transpose()
}

/// `--since`: RFC 3339 (`2026-12-07T22:00:00Z`), Unix seconds, or a duration ago (`10m`).
fn parse_since(s: &str) -> R<std::time::SystemTime> {
    let now = std::time::SystemTime::now();
    if let Ok(secs) = s.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Ok(std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(secs));
        }
    }
    if let Ok(d) = humantime::parse_duration(s) {
        return Ok(now.checked_sub(d).unwrap_or(std::time::UNIX_EPOCH));
    }
    humantime::parse_rfc3339_weak(s).map_err(|_| {
        msg(format!(
            "--since {s:?}: want a time (RFC 3339), Unix seconds or a duration (10m)"
        ))
    })
}

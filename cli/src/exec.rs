//! `corral exec`: another process in a running container, its settings from the
//! container's own process or `--process`, changed by the flags.

use std::path::Path;

use oci_spec::runtime::{Capability, Process};
use runtime::{Container, Options, Status};

use crate::args::ExecArgs;
use crate::error::{msg, R};
use crate::signals::{block_signals, wait_forwarding};

pub fn exec(root: &Path, id: &str, a: &ExecArgs) -> R {
    let place = runtime::ExecPlacement {
        ignore_paused: a.ignore_paused,
        sub_cgroups: a
            .cgroup
            .iter()
            .map(|v| runtime::ExecPlacement::parse_cgroup(v))
            .collect::<Result<_, _>>()?,
    };
    let mut c = Container::load(root, id)?;
    let p = process(&c, a)?;
    let opts = Options {
        preserve_fds: a.preserve_fds,
        preserve_holes: crate::fds::preserve_holes(),
        console_socket: a.console_socket.clone(),
        ..Options::default()
    };
    let sfd = if a.detach {
        None
    } else {
        Some(block_signals().map_err(|e| msg(format!("signalfd: {e}")))?)
    };
    if place.ignore_paused && c.status() == Status::Paused {
        // The process joins the frozen cgroup and waits, frozen, for the `resume` that needs
        // this lock: not held meanwhile (runc holds no lock across it either).
        c.unlock();
    }
    let mut proc_ = c.exec_placed(&p, &opts, &place)?;
    // Do not hold the container's lock while the process runs.
    drop(c);
    if let Some(path) = &a.pid_file {
        runtime::atomic_file::write(path, proc_.pid().to_string().as_bytes(), 0o644)
            .map_err(|e| msg(format!("--pid-file {}: {e}", path.display())))?;
    }
    let Some(sfd) = sfd else {
        proc_.detach();
        return Ok(0);
    };
    let pidfd = proc_.pidfd();
    let status = {
        let sig = |s: i32| -> R<()> {
            // SAFETY: plain syscall on the process's pidfd.
            unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    pidfd,
                    s,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                )
            };
            Ok(())
        };
        match proc_.take_console() {
            Some(m) => {
                let p = std::cell::RefCell::new(&mut proc_);
                crate::tty::bridge(&sfd, pidfd, m, || Ok(p.borrow_mut().try_wait()?), sig)?
            }
            None => wait_forwarding(&sfd, pidfd, || Ok(proc_.try_wait()?), sig)?,
        }
    };
    Ok(status.code())
}

/// The process to run: `--process`'s, or the container's own with the command; then the
/// flags over it.
fn process(c: &Container, a: &ExecArgs) -> R<Process> {
    let mut p: Process = match &a.process {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| msg(format!("--process {}: {e}", path.display())))?;
            serde_json::from_str(&text).map_err(|e| {
                msg(format!(
                    "--process {}:{}:{}: {}",
                    path.display(),
                    e.line(),
                    e.column(),
                    e.to_string().split(" at line ").next().unwrap_or("")
                ))
            })?
        }
        None => {
            if a.command.is_empty() {
                return Err(msg("exec needs a command or --process"));
            }
            // The container's own process settings (as create accepted them), with this
            // command.
            let mut p = c.config()?.process().clone().unwrap_or_default();
            p.set_args(Some(a.command.clone()));
            p.set_terminal(Some(a.tty));
            p
        }
    };
    if a.tty {
        p.set_terminal(Some(true));
    }
    if p.terminal() == Some(true) && a.detach && a.console_socket.is_none() {
        return Err(msg(
            "a detached exec with a terminal needs --console-socket",
        ));
    }
    if !a.env.is_empty() {
        let mut e = p.env().clone().unwrap_or_default();
        for kv in &a.env {
            if !kv.contains('=') {
                return Err(msg(format!("--env {kv:?}: want KEY=VALUE")));
            }
            let key = kv.split('=').next().unwrap_or("");
            e.retain(|x| x.split('=').next() != Some(key));
            e.push(kv.clone());
        }
        p.set_env(Some(e));
    }
    if let Some(d) = &a.cwd {
        p.set_cwd(d.into());
    }
    if let Some(u) = &a.user {
        // A bare UID keeps the process's gid (the config's or --process's), as runc does.
        // A name (docker's `-u nobody`, `-u web:staff`) is looked up in the container's own
        // /etc/passwd and /etc/group; a bare user name takes its primary group.
        let (user, group) = match u.split_once(':') {
            Some((a, b)) => (a, Some(b)),
            None => (u.as_str(), None),
        };
        let (uid, primary) = match user.parse::<u32>() {
            Ok(n) => (n, None),
            Err(_) => {
                let (uid, gid) = crate::docker::users::user(c.pid(), user)
                    .map_err(|e| msg(format!("--user {u:?}: {e}")))?;
                (uid, Some(gid))
            }
        };
        let gid = match group {
            Some(g) => match g.parse::<u32>() {
                Ok(n) => n,
                Err(_) => crate::docker::users::group(c.pid(), g)
                    .map_err(|e| msg(format!("--user {u:?}: {e}")))?,
            },
            None => primary.unwrap_or(p.user().gid()),
        };
        let mut usr = p.user().clone();
        usr.set_uid(uid);
        usr.set_gid(gid);
        p.set_user(usr);
    }
    if !a.additional_gids.is_empty() {
        let mut usr = p.user().clone();
        usr.set_additional_gids(Some(a.additional_gids.clone()));
        p.set_user(usr);
    }
    if !a.cap.is_empty() {
        add_caps(c, &mut p, &a.cap)?;
    }
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if let Some(l) = &a.process_label {
        p.set_selinux_label(Some(l.clone()));
    }
    if let Some(l) = &a.apparmor {
        p.set_apparmor_profile(Some(l.clone()));
    }
    Ok(p)
}

/// `--cap`: added to the process's bounding, effective and permitted sets, or the
/// container's when it names none.
fn add_caps(c: &Container, p: &mut Process, names: &[String]) -> R<()> {
    let init = c.config()?.process().clone().unwrap_or_default();
    let mut caps = p
        .capabilities()
        .clone()
        .or_else(|| init.capabilities().clone())
        .unwrap_or_default();
    for name in names {
        let cap: Capability = serde_json::from_value(serde_json::json!(name.to_ascii_uppercase()))
            .map_err(|_| msg(format!("--cap {name:?}: unknown capability")))?;
        let add = |set: &Option<oci_spec::runtime::Capabilities>| {
            let mut s = set.clone().unwrap_or_default();
            s.insert(cap);
            Some(s)
        };
        let (b, e, pm) = (
            add(caps.bounding()),
            add(caps.effective()),
            add(caps.permitted()),
        );
        caps.set_bounding(b);
        caps.set_effective(e);
        caps.set_permitted(pm);
    }
    p.set_capabilities(Some(caps));
    Ok(())
}

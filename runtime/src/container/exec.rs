//! `exec`: another process in a running container, and its end.
#![deny(clippy::undocumented_unsafe_blocks)]

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use cgroup::Cgroup;
use nix::errno::Errno;

use super::wait::ExecReaper;
use super::{
    io_err, keyring, ns_error, open_dir, pidfd_signal, send_console, Container, ExitStatus,
    Options, SECCOMP_CACHE,
};
use crate::prepare;
use crate::state::{StateDir, Status};
use crate::{Error, Result};

/// Where an exec'd process goes beyond [`Container::exec`]'s defaults, as runc's `exec`
/// flags say.
#[derive(Debug, Clone, Default)]
pub struct ExecPlacement {
    /// `--ignore-paused`: exec into a paused container too. The process joins the frozen
    /// cgroup, so it (and the exec) waits until the container is resumed, as with runc: a
    /// caller that loaded the container should [`Container::unlock`] it first, or the
    /// `resume` it waits for cannot take the lock.
    pub ignore_paused: bool,
    /// `--cgroup [CONTROLLERS:]PATH` (runc 1.1): run the process in `PATH`, an existing
    /// sub-cgroup of the container's cgroup, in the hierarchies of the listed controllers
    /// (comma-separated), or in every hierarchy without them. Hierarchies no entry names keep
    /// the container's cgroup.
    pub sub_cgroups: Vec<(Vec<String>, String)>,
}

impl ExecPlacement {
    /// Parses runc's `--cgroup` values: `PATH` or `CONTROLLER[,CONTROLLER...]:PATH`.
    pub fn parse_cgroup(v: &str) -> Result<(Vec<String>, String)> {
        let bad = |reason: &str| Error::Config {
            field: "exec --cgroup".into(),
            reason: format!("{v:?}: {reason}"),
        };
        let (ctrls, path) = match v.split_once(':') {
            Some((c, p)) => {
                let c: Vec<String> = c.split(',').map(str::to_string).collect();
                if c.iter().any(String::is_empty) {
                    return Err(bad("an empty controller name"));
                }
                (c, p)
            }
            None => (Vec::new(), v),
        };
        let rel = path.trim_start_matches('/');
        if rel.is_empty() {
            return Err(bad("an empty path"));
        }
        if rel.split('/').any(|c| c == "..") {
            return Err(bad("the path leaves the container's cgroup (\"..\")"));
        }
        Ok((ctrls, rel.to_string()))
    }

    /// The directories of `cg` the process goes into, one per hierarchy.
    fn targets(&self, cg: &Cgroup) -> Result<Vec<PathBuf>> {
        let dirs = cg.dirs();
        for (ctrls, path) in &self.sub_cgroups {
            for c in ctrls {
                if !dirs
                    .iter()
                    .any(|d| d.controllers.iter().any(|x| x == c) || d.name == *c)
                {
                    return Err(Error::Config {
                        field: "exec --cgroup".into(),
                        reason: format!("{c}:{path}: the container has no cgroup hierarchy with controller {c:?}"),
                    });
                }
            }
        }
        let mut out = Vec::new();
        for d in dirs {
            let named = self.sub_cgroups.iter().find(|(ctrls, _)| {
                ctrls
                    .iter()
                    .any(|c| d.controllers.iter().any(|x| x == c) || d.name == *c)
            });
            let sub = named.or_else(|| self.sub_cgroups.iter().find(|(c, _)| c.is_empty()));
            let dir = match sub {
                Some((_, path)) => {
                    let t = d.dir.join(path);
                    if !t.is_dir() {
                        return Err(Error::Config {
                            field: "exec --cgroup".into(),
                            reason: format!(
                                "{}: no such sub-cgroup of the container (it must exist)",
                                t.display()
                            ),
                        });
                    }
                    t
                }
                None => d.dir,
            };
            out.push(dir);
        }
        Ok(out)
    }
}

impl Container {
    /// Runs `e` in the running container: the container's own process settings with
    /// `e`'s arguments, environment, cwd, user and terminal (see [`Container::exec`]).
    pub fn exec_with(&self, e: &crate::ExecSpec, opts: &Options) -> Result<ExecProcess> {
        let base = self.config()?.process().clone().unwrap_or_default();
        self.exec(&e.process(&base)?, opts)
    }

    /// Runs another process in the running container (`exec`): it joins the container's
    /// namespaces and cgroup and gets `p`'s user, capabilities, env and cwd. The returned
    /// process is this process's child.
    pub fn exec(&self, p: &oci_spec::runtime::Process, opts: &Options) -> Result<ExecProcess> {
        self.exec_placed(p, opts, &ExecPlacement::default())
    }

    /// [`Container::exec`] with runc's `exec --ignore-paused` and `--cgroup`
    /// ([`ExecPlacement`]).
    pub fn exec_placed(
        &self,
        p: &oci_spec::runtime::Process,
        opts: &Options,
        place: &ExecPlacement,
    ) -> Result<ExecProcess> {
        let st = self.status();
        if st == Status::Paused && !place.ignore_paused {
            return Err(Error::State {
                id: self.id.clone(),
                status: st.as_str(),
                want: "running (use --ignore-paused to exec into a paused container)",
            });
        }
        if st != Status::Running && st != Status::Paused {
            return Err(Error::State {
                id: self.id.clone(),
                status: st.as_str(),
                want: "running",
            });
        }
        // The leaves (or the sub-cgroups of them `--cgroup` names) the process goes into.
        let targets = match &self.cgroup {
            Some(cg) => place.targets(cg)?,
            None if !place.sub_cgroups.is_empty() => {
                return Err(Error::Config {
                    field: "exec --cgroup".into(),
                    reason: "the container has no cgroup".into(),
                })
            }
            None => Vec::new(),
        };
        let cgroup_fd = match &self.cgroup {
            Some(cg) => match (cg.dirs().len(), cg.v2_dir(), targets.first()) {
                (1, Some(_), Some(dir)) => Some(open_dir(&self.id, dir)?),
                _ => None,
            },
            None => None,
        };
        let config = self.config()?;
        let plan = self.exec_plan(config, p, opts, cgroup_fd)?;
        let mut sp = ns::spawn(plan).map_err(|e| ns_error(&self.id, e))?;
        crate::fault::point("exec:after-clone");
        if !sp.placed_in_cgroup() {
            for dir in &targets {
                let procs = dir.join("cgroup.procs");
                std::fs::write(&procs, sp.pid().to_string())
                    .map_err(|e| io_err(&self.id, "joining cgroup", &procs, e))?;
            }
        }
        // A notify filter's listener goes to linux.seccomp.listenerPath as it arrives (the
        // container's state, this process's pid), as for the init.
        let mut listener_err = None;
        let mut listener = |pid: i32, fd: OwnedFd| -> std::result::Result<(), String> {
            let Some(sc) = config.linux().as_ref().and_then(|l| l.seccomp().clone()) else {
                return Ok(());
            };
            crate::filter::send_listener(&sc, &self.state, pid, st.as_str(), fd).map_err(|e| {
                let m = e.to_string();
                listener_err = Some(e);
                m
            })
        };
        sp.go_with_listener(&mut |_| Ok(()), Some(&mut listener))
            .map_err(|e| listener_err.take().unwrap_or_else(|| ns_error(&self.id, e)))?;
        crate::fault::point("exec:after-go");
        let mut console = sp.take_console();
        // The master goes to the console socket if there is one, else it stays ours: taken
        // out of `console` only then (dropping it would hang up the process's session).
        if let Some(sock) = &opts.console_socket {
            if let Some(m) = console.take() {
                send_console(&self.id, sock, m)?;
            }
        }
        let s = sp.start().map_err(|e| ns_error(&self.id, e))?;
        let reaper = Arc::new(ExecReaper {
            pid: s.pid,
            pidfd: s.pidfd,
            exit: Mutex::new(None),
            done: AtomicBool::new(false),
        });
        {
            let mut execs = self.execs.lock().unwrap_or_else(|p| p.into_inner());
            execs.retain(|r| !r.done.load(Ordering::Relaxed));
            execs.push(reaper.clone());
        }
        Ok(ExecProcess {
            pid: s.pid,
            reaper,
            console,
        })
    }

    /// The plan of an exec'd process: `p` with what it does not say taken from the
    /// container's own process (capabilities, no_new_privs, labels, CPU affinity), and what
    /// holds for every process of the container (personality, keyring, seccomp filter).
    fn exec_plan(
        &self,
        config: &oci_spec::runtime::Spec,
        p: &oci_spec::runtime::Process,
        opts: &Options,
        cgroup_fd: Option<OwnedFd>,
    ) -> Result<ns::Plan> {
        let mut p = p.clone();
        // What the process does not say is the container's (runc): its capabilities and
        // no_new_privs. (Its seccomp filter is always the container's.)
        let init = config.process().clone().unwrap_or_default();
        if p.capabilities().is_none() {
            p.set_capabilities(init.capabilities().clone());
        }
        if p.no_new_privileges().is_none() {
            p.set_no_new_privileges(init.no_new_privileges());
        }
        let p = &p;
        let mut plan = prepare::exec_plan(self.pid, p, cgroup_fd, opts.preserve_fds, opts.stdio)?;
        // linux.personality holds for every process of the container, as for its init.
        if let Some(pers) = config
            .linux()
            .as_ref()
            .and_then(|l| l.personality().clone())
        {
            plan.process.personality = Some(prepare::personality(&pers)?);
        }
        // The lock on the state dir (a host directory) is the runtime's, not the process's.
        plan.close_fds
            .extend(self.state_dir.as_ref().and_then(StateDir::lock_fd));
        plan.close_fds.extend(&opts.preserve_holes);
        // An exec'd process is confined as the container is, unless it names labels of its own.
        let mut labelled = p.clone();
        if let Some(init) = config.process() {
            if p.apparmor_profile().as_ref().is_none_or(|s| s.is_empty()) {
                labelled.set_apparmor_profile(init.apparmor_profile().clone());
            }
            if p.selinux_label().as_ref().is_none_or(|s| s.is_empty()) {
                labelled.set_selinux_label(init.selinux_label().clone());
            }
        }
        // Its CPU affinity: its own, else the one the config gives exec'd processes.
        let affinity = match p.exec_cpu_affinity() {
            Some(a) => Some(("exec.execCPUAffinity", a.clone())),
            None => config
                .process()
                .as_ref()
                .and_then(|i| i.exec_cpu_affinity().clone())
                .map(|a| ("process.execCPUAffinity", a)),
        };
        if let Some((field, a)) = affinity {
            (plan.process.affinity_initial, plan.process.affinity_final) =
                prepare::exec_cpu_affinity(field, &a)?;
        }
        plan.process.exec_labels = opts.security.exec_labels(
            "exec",
            labelled.apparmor_profile().as_deref(),
            labelled.selinux_label().as_deref(),
        )?;
        plan.keyring = if self.state.no_new_keyring {
            None
        } else {
            keyring(&self.id, Some(&labelled), opts)?
        };
        plan.attr_root = opts.security.attr_root(&plan)?;
        // The container's seccomp filter holds for exec'd processes too.
        if let Some(sc) = config.linux().as_ref().and_then(|l| l.seccomp().clone()) {
            let root = self
                .state_dir
                .as_ref()
                .and_then(|d| d.path().parent().map(Path::to_path_buf))
                .unwrap_or_default();
            let prog = crate::filter::compile(&sc, &root.join(SECCOMP_CACHE))?;
            plan.seccomp = Some(crate::filter::to_plan(&prog));
        }
        Ok(plan)
    }
}

/// A process started by [`Container::exec`]; this process's child.
#[derive(Debug)]
pub struct ExecProcess {
    pid: i32,
    /// Its end, shared with the container, which reaps it at delete if nobody did.
    reaper: Arc<ExecReaper>,
    console: Option<OwnedFd>,
}

impl ExecProcess {
    /// The pty master of a process with a terminal and no console socket.
    pub fn take_console(&mut self) -> Option<OwnedFd> {
        self.console.take()
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    pub fn pidfd(&self) -> RawFd {
        self.reaper.pidfd.as_raw_fd()
    }

    /// Sends a signal through the pidfd.
    pub fn signal(&self, sig: i32) -> Result<()> {
        match pidfd_signal(&self.reaper.pidfd, sig) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(errno) => {
                return Err(Error::Sys {
                    id: String::new(),
                    what: format!("sending signal {sig} to pid {}", self.pid),
                    errno,
                })
            }
        }
        Ok(())
    }

    /// The exit status, without blocking.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        self.wait_flags(libc::WNOHANG)
    }

    /// Waits for the exit status.
    pub fn wait(&mut self) -> Result<ExitStatus> {
        self.wait_flags(0).map(|s| s.unwrap_or(ExitStatus::Unknown))
    }

    fn wait_flags(&mut self, flags: libc::c_int) -> Result<Option<ExitStatus>> {
        self.reaper.reap(flags & libc::WNOHANG == 0)
    }

    /// Leaves the process running without waiting for it.
    pub fn detach(self) {}
}

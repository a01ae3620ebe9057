//! The verbs: create, start, run, stop, kill, restart, rm, wait, rename, ps, inspect, logs,
//! and the resolution of names.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use runtime::describe::{Description, Root, UserSpec};
use serde_json::{json, Map, Value};

use crate::error::{io_err, Error, Result};
use crate::files::{self, record_dir};
use crate::model::{Config, CreateOptions, LogOptions, RunState, Status, Summary, Time};
use crate::supervise::{self, After, Foreground};
use crate::time::{human_duration, since};
use crate::{Engine, Target};

/// How long `stop` and `rm -f` wait for a monitor to record an exit it was told of.
const MONITOR_GRACE: Duration = Duration::from_secs(30);

/// Resolves `s` (see [`crate::resolve`]).
pub fn resolve(store: &Path, state_root: &Path, s: &str) -> Result<Target> {
    let s = s.strip_prefix('/').unwrap_or(s);
    if s.is_empty() {
        return Err(Error::NoSuchContainer(s.to_string()));
    }
    if let Some(id) = files::name_target(store, s) {
        if record_dir(store, &id).join(files::CONFIG).exists() {
            return Ok(Target::Engine(id));
        }
    }
    if files::read_config(store, s)?.is_some() {
        return Ok(Target::Engine(s.to_string()));
    }
    let engine_ids = engine_ids(store);
    if runtime::state::check_id(s).is_ok() && state_root.join(s).is_dir() {
        return Ok(Target::Runtime(s.to_string()));
    }
    let mut found: Vec<Target> = engine_ids
        .iter()
        .filter(|id| id.starts_with(s))
        .map(|id| Target::Engine(id.clone()))
        .collect();
    if let Ok(rd) = fs::read_dir(state_root) {
        for e in rd.flatten() {
            let Some(n) = e.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if n.starts_with('.') || !n.starts_with(s) || engine_ids.contains(&n) {
                continue;
            }
            if e.path().is_dir() && runtime::state::check_id(&n).is_ok() {
                found.push(Target::Runtime(n));
            }
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(Error::NoSuchContainer(s.to_string())),
        _ => Err(Error::Ambiguous(s.to_string())),
    }
}

/// The ids of every engine container of a store.
fn engine_ids(store: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir(store.join("containers")) {
        for e in rd.flatten() {
            let Some(n) = e.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if runtime::state::check_id(&n).is_ok() && e.path().join(files::CONFIG).is_file() {
                out.push(n);
            }
        }
    }
    out
}

/// Docker's quoting of a command for `ps`: arguments with a space in single quotes.
fn command_text(path: &str, args: &[String]) -> String {
    let mut out = path.to_string();
    for a in args {
        out.push(' ');
        if a.contains(' ') {
            out.push('\'');
            out.push_str(a);
            out.push('\'');
        } else {
            out.push_str(a);
        }
    }
    out
}

fn parse_signal_name(s: &str) -> Option<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .ok()
        .map(|s| s as i32)
}

impl Engine {
    pub(crate) fn create_impl(&self, d: &Description, o: &CreateOptions) -> Result<String> {
        let Root::Image(image) = &d.root else {
            return Err(Error::Invalid(
                "an engine container is made from an image (its root is a directory)".into(),
            ));
        };
        if o.auto_remove && o.restart != crate::RestartPolicy::No {
            return Err(Error::Invalid(
                "Conflicting options: --restart and --rm".into(),
            ));
        }
        if let Some(n) = &o.name {
            files::check_name(n)?;
        }
        let store = corral_image::ImageStore::open(&self.store)?;
        let id = files::new_id()?;
        // The image's config merged and the spec made now: a description that cannot be
        // run is refused at create, as docker does.
        let (img, described, spec, vols) = {
            let _l = store.lock_shared()?;
            let img = corral_image::resolve_pinned(&store, image)?;
            let dirs = store.layer_dirs(&img.diff_ids()?)?;
            // The volumes made (and filled from the image) now, as docker does at create;
            // the description keeps naming them, and every start binds them again.
            let vols = corral_image::volume::planned(&id, &img.config, d);
            let made = (|| {
                let mut dv = d.clone();
                corral_image::volume::mount_volumes(&self.store, &id, &img.config, &dirs, &mut dv)?;
                let described = corral_image::describe_image(&id, &img.config, &dirs, &dv)?;
                let spec = described.to_spec()?;
                Ok::<_, Error>((described, spec))
            })();
            let (described, spec) = match made {
                Ok(m) => m,
                Err(e) => {
                    corral_image::volume::remove_anonymous_of(&self.store, &id);
                    return Err(e);
                }
            };
            (img, described, spec, vols)
        };
        let dir = store.record_kept(&id, &self.root, &img, image)?;
        let undo = |name: Option<&str>| {
            if let Some(n) = name {
                files::release_name(&self.store, n, &id);
            }
            let _ = fs::remove_dir_all(&dir);
            corral_image::volume::remove_anonymous_of(&self.store, &id);
        };
        // The name.
        let name = match &o.name {
            Some(n) => match files::claim_name(&self.store, n, &id) {
                Ok(()) => files::check_name(n)?.to_string(),
                Err(e) => {
                    undo(None);
                    return Err(e);
                }
            },
            None => {
                let mut got = None;
                for attempt in 0..20 {
                    let n = files::generate_name(attempt);
                    if files::claim_name(&self.store, &n, &id).is_ok() {
                        got = Some(n);
                        break;
                    }
                }
                match got {
                    Some(n) => n,
                    None => {
                        undo(None);
                        return Err(Error::Invalid("no free generated name".into()));
                    }
                }
            }
        };
        let ic = img.config.config().clone().unwrap_or_default();
        let image_stop = ic.stop_signal().as_deref().and_then(parse_signal_name);
        let mut args = described.args.clone();
        let path = if args.is_empty() {
            String::new()
        } else {
            args.remove(0)
        };
        let hostname = match &d.hostname {
            Some(h) => h.clone(),
            None => id[..12].to_string(),
        };
        let user = match &d.user {
            Some(UserSpec::Name(n)) => n.clone(),
            Some(UserSpec::Ids { uid, gid }) => format!("{uid}:{gid}"),
            None => ic.user().clone().unwrap_or_default(),
        };
        let cfg = Config {
            id: id.clone(),
            name: name.clone(),
            created: Time::now(),
            image: image.clone(),
            image_id: img.id.to_string(),
            image_manifest: img.manifest_digest.to_string(),
            description: d.clone(),
            path,
            args,
            image_config: serde_json::to_value(&ic).unwrap_or(Value::Null),
            env: described
                .env
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect(),
            working_dir: described.cwd.clone().unwrap_or_else(|| "/".into()),
            user,
            hostname,
            restart: o.restart,
            auto_remove: o.auto_remove,
            stop_signal: o.stop_signal.or(image_stop).unwrap_or(libc::SIGTERM),
            stop_timeout: o.stop_timeout.unwrap_or(10),
            log: o.log,
            tty: o.tty,
            interactive: o.interactive,
            labels: o.labels.clone(),
            volumes: {
                let mut v = o.volumes.clone();
                for (name, destination, anonymous) in vols {
                    if !v.iter().any(|u| u.name == name) {
                        v.push(crate::VolumeUse {
                            name,
                            destination,
                            anonymous,
                        });
                    }
                }
                v
            },
            state_root: self.root.clone(),
        };
        // The bundle's spec as it will be (each start writes it again): what the container
        // mounts is known from its record before it ever runs.
        let spec_text = serde_json::to_vec_pretty(&spec)
            .map_err(|e| Error::Invalid(format!("encoding config.json: {e}")));
        let written = spec_text
            .and_then(|t| files::write_atomic(&dir.join("config.json"), &t))
            .and_then(|()| files::write_config(&self.store, &cfg))
            .and_then(|()| files::write_state(&self.store, &id, &RunState::default()));
        if let Err(e) = written {
            undo(Some(&name));
            return Err(e);
        }
        Ok(id)
    }

    pub(crate) fn config_impl(&self, id: &str) -> Result<Config> {
        files::read_config(&self.store, id)?.ok_or_else(|| Error::NoSuchContainer(id.to_string()))
    }

    pub(crate) fn status_impl(&self, id: &str) -> Result<RunState> {
        self.config_impl(id)?;
        let mut st = files::read_state(&self.store, id)?;
        if !matches!(st.status, Status::Running | Status::Restarting) {
            // A monitor killed between making the container and recording it left it
            // running unrecorded.
            if matches!(st.status, Status::Created | Status::Exited) && self.root.join(id).exists()
            {
                if let Ok(rt) = runtime::Container::listed_state(&self.root, id) {
                    if matches!(
                        rt.status,
                        runtime::Status::Running | runtime::Status::Paused
                    ) {
                        st.status = Status::Running;
                        st.unsupervised = true;
                        st.paused = rt.status == runtime::Status::Paused;
                        st.pid = rt.pid;
                    }
                }
            }
            return Ok(st);
        }
        let rt = runtime::Container::listed_state(&self.root, id).ok();
        let rt_alive = rt.as_ref().is_some_and(|s| {
            matches!(
                s.status,
                runtime::Status::Running | runtime::Status::Paused | runtime::Status::Created
            )
        });
        st.paused = rt
            .as_ref()
            .is_some_and(|s| s.status == runtime::Status::Paused);
        if files::process_is(st.monitor_pid, st.monitor_start_time) {
            return Ok(st);
        }
        if rt_alive {
            st.status = Status::Running;
            st.unsupervised = true;
            if let Some(s) = &rt {
                st.pid = s.pid;
            }
        } else {
            st.status = Status::Exited;
            st.pid = 0;
            st.exit_code = None;
            st.paused = false;
            st.error = "its monitor was killed; the exit code is lost".into();
        }
        Ok(st)
    }

    /// Makes ready for a start: what a killed monitor left (a runtime container whose
    /// process is gone) removed; the state's user stop, error and restart count reset.
    fn prepare_start(&self, id: &str) -> Result<()> {
        if self.root.join(id).exists() {
            corral_image::remove(&self.store, &self.root, id, true)?;
        }
        files::update_state(&self.store, id, |s| {
            s.stopped_by_user = false;
            s.restart_count = 0;
            s.error.clear();
        })
    }

    pub(crate) fn start_impl(&self, id: &str) -> Result<i32> {
        self.config_impl(id)?;
        let _one = files::lock_start(&self.store, id)?;
        let st = self.status_impl(id)?;
        match st.status {
            Status::Running => return Ok(st.pid),
            Status::Restarting => return Ok(0),
            Status::Removing => {
                return Err(Error::State(format!(
                    "container {id} is marked for removal and cannot be started"
                )))
            }
            Status::Created | Status::Exited => {}
        }
        self.prepare_start(id)?;
        self.spawn_monitor(id)
    }

    pub(crate) fn run_attached_impl(&self, id: &str, stdin: bool) -> Result<i32> {
        let cfg = self.config_impl(id)?;
        let one = files::lock_start(&self.store, id)?;
        let st = self.status_impl(id)?;
        if matches!(st.status, Status::Running | Status::Restarting) {
            return Err(Error::State(format!("container {id} is already running")));
        }
        self.prepare_start(id)?;
        let sfd = supervise::block_signals()?;
        let fg = Foreground {
            sfd,
            stdin: stdin && cfg.tty,
        };
        let stdin_fd = (stdin && !cfg.tty).then_some(0);
        let l = match self.launch(&cfg, stdin_fd) {
            Ok(l) => l,
            Err(e) => {
                drop(fg);
                supervise::unblock_signals();
                self.record_failed_start(id, &e);
                if cfg.auto_remove {
                    let _ = self.remove_all(&cfg, true);
                }
                return Err(e);
            }
        };
        let pid = l.ct.pid();
        let _ = self.record_running(id, pid);
        drop(one);
        let (code, after) = self.supervise(&cfg, l, Some(&fg));
        // Signals that came meanwhile were the container's: drop them before unblocking.
        while supervise_read_pending(&fg) {}
        drop(fg);
        supervise::unblock_signals();
        match after {
            After::Done => {}
            After::Remove => self.remove_all(&cfg, true)?,
            After::Restart => {
                // The monitor carries on with the restarts (the backoff's first step).
                std::thread::sleep(Duration::from_millis(100));
                if let Err(e) = self.spawn_monitor(id) {
                    tracing::warn!("restarting {id}: {e}");
                }
            }
        }
        Ok(code)
    }

    /// Waits until the state is not running/restarting (a monitor recording an exit), at
    /// most `limit`. Returns the state seen last.
    fn wait_recorded(&self, id: &str, limit: Duration) -> Result<RunState> {
        let until = Instant::now() + limit;
        loop {
            let st = self.status_impl(id)?;
            if !matches!(st.status, Status::Running | Status::Restarting) || st.unsupervised {
                return Ok(st);
            }
            if Instant::now() >= until {
                return Ok(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Cleans up after a container whose monitor is gone: the runtime container removed (its
    /// processes killed), the exit recorded as not known.
    fn cleanup_unsupervised(&self, id: &str) -> Result<()> {
        corral_image::remove(&self.store, &self.root, id, true)?;
        files::update_state(&self.store, id, |s| {
            s.status = Status::Exited;
            s.pid = 0;
            s.exit_code = None;
            s.finished_at = Time::now();
            s.error = "its monitor was killed; the exit code is lost".into();
        })
    }

    pub(crate) fn stop_impl(&self, id: &str, timeout: Option<u32>) -> Result<()> {
        let cfg = self.config_impl(id)?;
        let st = self.status_impl(id)?;
        if !matches!(st.status, Status::Running | Status::Restarting) {
            return Ok(());
        }
        files::update_state(&self.store, id, |s| s.stopped_by_user = true)?;
        if st.status == Status::Restarting {
            self.wait_recorded(id, MONITOR_GRACE)?;
            return Ok(());
        }
        let timeout = Duration::from_secs(u64::from(timeout.unwrap_or(cfg.stop_timeout)));
        if let Ok(mut ct) = runtime::Container::load(&self.root, id) {
            ct.unlock();
            if st.paused {
                let _ = ct.resume();
            }
            let _ = ct.signal(cfg.stop_signal);
            if !wait_fd(ct.wait_fd(), timeout) {
                let _ = ct.signal_all(libc::SIGKILL);
            }
        }
        if st.unsupervised {
            // Nobody records its end: this command does.
            return self.cleanup_unsupervised(id);
        }
        let now = self.wait_recorded(id, MONITOR_GRACE)?;
        if now.unsupervised || now.status == Status::Running {
            self.cleanup_unsupervised(id)?;
        }
        Ok(())
    }

    pub(crate) fn kill_impl(&self, id: &str, signal: i32) -> Result<()> {
        let cfg = self.config_impl(id)?;
        let st = self.status_impl(id)?;
        if st.status != Status::Running {
            return Err(Error::State(format!(
                "Cannot kill container: {id}: container {id} is not running"
            )));
        }
        if matches!(signal, libc::SIGKILL | libc::SIGTERM | libc::SIGINT)
            || signal == cfg.stop_signal
        {
            files::update_state(&self.store, id, |s| s.stopped_by_user = true)?;
        }
        let mut ct = runtime::Container::load(&self.root, id)?;
        ct.unlock();
        ct.signal(signal)?;
        if st.unsupervised && signal == libc::SIGKILL {
            drop(ct);
            self.cleanup_unsupervised(id)?;
        }
        Ok(())
    }

    pub(crate) fn remove_impl(&self, id: &str, force: bool, volumes: bool) -> Result<()> {
        let cfg = self.config_impl(id)?;
        let st = self.status_impl(id)?;
        let live = matches!(st.status, Status::Running | Status::Restarting);
        if live && !force {
            return Err(Error::State(format!(
                "You cannot remove a running container {id}. Stop the container before attempting removal or force remove"
            )));
        }
        if live {
            files::update_state(&self.store, id, |s| s.stopped_by_user = true)?;
            if let Ok(mut ct) = runtime::Container::load(&self.root, id) {
                ct.unlock();
                let _ = ct.resume();
                let _ = ct.signal_all(libc::SIGKILL);
            }
            if !st.unsupervised {
                self.wait_recorded(id, MONITOR_GRACE)?;
            }
        }
        // A monitor still there (in a restart's backoff, or stuck) goes before its record.
        let now = files::read_state(&self.store, id)?;
        if files::process_is(now.monitor_pid, now.monitor_start_time)
            && now.monitor_pid != std::process::id() as i32
        {
            let until = Instant::now() + Duration::from_secs(2);
            while files::process_is(now.monitor_pid, now.monitor_start_time)
                && Instant::now() < until
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            if files::process_is(now.monitor_pid, now.monitor_start_time) {
                // SAFETY: kill(2) of a pid just checked to be the monitor (by start time).
                unsafe { libc::kill(now.monitor_pid, libc::SIGKILL) };
            }
        }
        self.remove_all(&cfg, volumes)
    }

    /// Removes everything of a container that is not running: its runtime container (what
    /// is left), network attachments, name, record (log and writable layer), and with
    /// `volumes` its anonymous volumes.
    pub(crate) fn remove_all(&self, cfg: &Config, volumes: bool) -> Result<()> {
        let id = cfg.id.as_str();
        let _ = files::update_state(&self.store, id, |s| s.status = Status::Removing);
        corral_image::remove(&self.store, &self.root, id, true)?;
        files::release_name(&self.store, &cfg.name, id);
        if volumes {
            corral_image::volume::remove_anonymous_of(&self.store, id);
            for v in cfg.volumes.iter().filter(|v| v.anonymous) {
                if runtime::state::check_id(&v.name).is_ok() {
                    let d = self.store.join("volumes").join(&v.name);
                    if d.exists() {
                        fs::remove_dir_all(&d).map_err(io_err("remove", &d))?;
                    }
                }
            }
        }
        self.tell_waiters(id);
        // The record goes at once (a rename out of the store's sight), then its files (a
        // writable layer may take a while); what a killed rm left is swept here too.
        let dir = record_dir(&self.store, id);
        let gone = self.store.join("containers").join(format!(".rm-{id}"));
        fs::rename(&dir, &gone).map_err(io_err("rename", &dir))?;
        let res = match fs::remove_dir_all(&gone) {
            // (Another rm's sweep may be removing it too.)
            Err(e) if gone.exists() => Err(io_err("remove", &gone)(e)),
            _ => Ok(()),
        };
        if let Ok(rd) = fs::read_dir(self.store.join("containers")) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with(".rm-") {
                    let _ = fs::remove_dir_all(e.path());
                }
            }
        }
        res
    }

    pub(crate) fn wait_impl(&self, id: &str) -> Result<i32> {
        self.config_impl(id)?;
        // A ticket the remover writes the exit code into (a `--rm` container's record is
        // gone when it ends).
        let waits = self.store.join("waits");
        fs::create_dir_all(&waits).map_err(io_err("mkdir", &waits))?;
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let ticket = waits.join(format!("{id}.{}.{n}", std::process::id()));
        fs::write(&ticket, b"").map_err(io_err("create", &ticket))?;
        let res = (|| loop {
            let st = match self.status_impl(id) {
                Ok(s) => s,
                Err(Error::NoSuchContainer(_)) => {
                    let code = fs::read_to_string(&ticket).unwrap_or_default();
                    return Ok(code.trim().parse().unwrap_or(supervise::UNKNOWN_EXIT));
                }
                Err(e) => return Err(e),
            };
            if !matches!(
                st.status,
                Status::Running | Status::Restarting | Status::Removing
            ) {
                // (docker's "not-running": a created container's code is 0.)
                if st.status == Status::Created {
                    return Ok(0);
                }
                return Ok(st.exit_code.unwrap_or(supervise::UNKNOWN_EXIT));
            }
            std::thread::sleep(Duration::from_millis(50));
        })();
        let _ = fs::remove_file(&ticket);
        res
    }

    /// Gives the waiters of a container being removed its exit code; tickets of waiters
    /// that died are swept.
    fn tell_waiters(&self, id: &str) {
        let Ok(rd) = fs::read_dir(self.store.join("waits")) else {
            return;
        };
        let code = files::read_state(&self.store, id)
            .ok()
            .and_then(|s| s.exit_code)
            .unwrap_or(supervise::UNKNOWN_EXIT);
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let mut parts = name.rsplitn(3, '.');
            let (_, pid, of) = (parts.next(), parts.next(), parts.next());
            let alive = pid
                .and_then(|p| p.parse::<i32>().ok())
                .is_some_and(|p| Path::new(&format!("/proc/{p}")).exists());
            if !alive {
                let _ = fs::remove_file(e.path());
            } else if of == Some(id) {
                let _ = fs::write(e.path(), code.to_string());
            }
        }
    }

    pub(crate) fn rename_impl(&self, id: &str, new: &str) -> Result<()> {
        let mut cfg = self.config_impl(id)?;
        let new = files::check_name(new)?.to_string();
        if new == cfg.name {
            return Err(Error::Invalid(
                "Renaming a container with the same name as its current name".into(),
            ));
        }
        files::claim_name(&self.store, &new, id)?;
        let old = std::mem::replace(&mut cfg.name, new.clone());
        if let Err(e) = files::write_config(&self.store, &cfg) {
            files::release_name(&self.store, &new, id);
            return Err(e);
        }
        files::release_name(&self.store, &old, id);
        Ok(())
    }

    pub(crate) fn logs_impl(
        &self,
        id: &str,
        o: &LogOptions,
        out: &mut dyn std::io::Write,
        err: &mut dyn std::io::Write,
    ) -> Result<()> {
        self.config_impl(id)?;
        let path = self.log_path(id);
        let mut running = || {
            self.status_impl(id)
                .is_ok_and(|s| matches!(s.status, Status::Running | Status::Restarting))
        };
        crate::jsonlog::read(&path, o, out, err, &mut running)
    }

    pub(crate) fn volumes_in_use_impl(
        &self,
    ) -> Result<std::collections::BTreeMap<String, Vec<String>>> {
        let mut out: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        let vdir = self.store.join("volumes");
        for id in engine_ids(&self.store) {
            let Ok(cfg) = self.config_impl(&id) else {
                continue;
            };
            let mut names: Vec<String> = cfg.volumes.iter().map(|v| v.name.clone()).collect();
            for m in &cfg.description.mounts {
                if let Some(n) = Path::new(&m.source)
                    .strip_prefix(&vdir)
                    .ok()
                    .and_then(|r| r.components().next())
                {
                    names.push(n.as_os_str().to_string_lossy().into_owned());
                }
            }
            names.sort();
            names.dedup();
            for n in names {
                out.entry(n).or_default().push(id.clone());
            }
        }
        Ok(out)
    }

    /// The network attachments of a running container (none for another).
    fn attachments(&self, id: &str, st: &RunState) -> Vec<runtime::net::Attachment> {
        if st.status != Status::Running {
            return Vec::new();
        }
        runtime::net::NetRoot::open(&self.store)
            .attachments(id)
            .unwrap_or_default()
    }

    /// The published ports of a running container: as attached (`-P`'s chosen host ports),
    /// else as asked.
    fn ports(&self, cfg: &Config, st: &RunState) -> Vec<runtime::net::PortMapping> {
        if st.status != Status::Running {
            return Vec::new();
        }
        let attached: Vec<_> = self
            .attachments(&cfg.id, st)
            .into_iter()
            .flat_map(|a| a.ports)
            .collect();
        if attached.is_empty() {
            cfg.description.network.ports.clone()
        } else {
            attached
        }
    }

    fn summary(&self, cfg: &Config, st: &RunState) -> Summary {
        let status_text = status_text(st);
        let ports = if st.status == Status::Running {
            self.ports(cfg, st)
                .iter()
                .map(|p| {
                    let ip = p
                        .host_ip
                        .map(|i| i.to_string())
                        .unwrap_or_else(|| "0.0.0.0".into());
                    format!("{ip}:{}->{}/{}", p.host_port, p.container_port, p.protocol)
                })
                .collect::<Vec<_>>()
                .join(", ")
        } else {
            String::new()
        };
        Summary {
            id: cfg.id.clone(),
            name: cfg.name.clone(),
            image: cfg.image.clone(),
            command: command_text(&cfg.path, &cfg.args),
            created: cfg.created,
            status: st.status,
            paused: st.paused,
            unsupervised: st.unsupervised,
            status_text,
            exit_code: st.exit_code,
            ports,
            labels: cfg.labels.clone(),
        }
    }

    pub(crate) fn list_impl(&self, all: bool) -> Result<Vec<Summary>> {
        let mut out = Vec::new();
        for id in engine_ids(&self.store) {
            let Ok(cfg) = self.config_impl(&id) else {
                continue;
            };
            if cfg.state_root != self.root {
                continue;
            }
            let Ok(st) = self.status_impl(&id) else {
                continue;
            };
            if !all && !matches!(st.status, Status::Running | Status::Restarting) {
                continue;
            }
            out.push(self.summary(&cfg, &st));
        }
        out.sort_by_key(|b| std::cmp::Reverse(b.created));
        Ok(out)
    }

    pub(crate) fn inspect_impl(&self, id: &str) -> Result<Value> {
        let cfg = self.config_impl(id)?;
        let st = self.status_impl(id)?;
        let d = &cfg.description;
        let status = if st.paused {
            "paused"
        } else {
            st.status.as_str()
        };
        let restart = json!({
            "Name": cfg.restart.name(),
            "MaximumRetryCount": cfg.restart.max_retries(),
        });
        let mut binds = Vec::new();
        let mut mounts = Vec::new();
        let volumes_dir = self.store.join("volumes");
        for m in &d.mounts {
            let rw = !m.options.iter().any(|o| o == "ro");
            if m.kind == "bind" {
                let vol = Path::new(&m.source)
                    .strip_prefix(&volumes_dir)
                    .ok()
                    .and_then(|r| r.components().next())
                    .map(|c| c.as_os_str().to_string_lossy().into_owned());
                match vol {
                    Some(name) => mounts.push(json!({
                        "Type": "volume",
                        "Name": name,
                        "Source": m.source,
                        "Destination": m.destination,
                        "Driver": "local",
                        "Mode": if rw { "z" } else { "ro" },
                        "RW": rw,
                        "Propagation": "",
                    })),
                    None => {
                        binds.push(format!(
                            "{}:{}{}",
                            m.source,
                            m.destination,
                            if rw { "" } else { ":ro" }
                        ));
                        mounts.push(json!({
                            "Type": "bind",
                            "Source": m.source,
                            "Destination": m.destination,
                            "Mode": if rw { "" } else { "ro" },
                            "RW": rw,
                            "Propagation": "rprivate",
                        }));
                    }
                }
            } else if m.kind == "tmpfs" {
                mounts.push(json!({
                    "Type": "tmpfs",
                    "Source": "",
                    "Destination": m.destination,
                    "Mode": m.options.join(","),
                    "RW": rw,
                    "Propagation": "",
                }));
            }
        }
        let binding = |p: &runtime::net::PortMapping| {
            json!({
                "HostIp": p.host_ip.map(|i| i.to_string()).unwrap_or_else(|| "0.0.0.0".into()),
                "HostPort": p.host_port.to_string(),
            })
        };
        let add = |map: &mut Map<String, Value>, p: &runtime::net::PortMapping| {
            let key = format!("{}/{}", p.container_port, p.protocol);
            if let Value::Array(a) = map.entry(key).or_insert_with(|| json!([])) {
                a.push(binding(p));
            }
        };
        let mut bindings = Map::new();
        for p in &d.network.ports {
            add(&mut bindings, p);
        }
        let mut ports = Map::new();
        for p in &self.ports(&cfg, &st) {
            add(&mut ports, p);
        }
        let network_mode = match &d.network.mode {
            runtime::describe::NetworkMode::Host => "host".to_string(),
            runtime::describe::NetworkMode::None => "none".to_string(),
            runtime::describe::NetworkMode::Join(p) => format!("path:{}", p.display()),
            runtime::describe::NetworkMode::Private => d
                .network
                .networks
                .first()
                .cloned()
                .unwrap_or_else(|| "none".into()),
        };
        let mut networks = Map::new();
        let attached = self.attachments(id, &st);
        if d.network.attaches() {
            for n in &d.network.networks {
                let a = attached.iter().find(|a| &a.network == n);
                let ip = a.and_then(|a| a.ips.first()).cloned().unwrap_or_default();
                let (addr, len) = ip.split_once('/').unwrap_or((ip.as_str(), "0"));
                networks.insert(
                    n.clone(),
                    json!({
                        "NetworkID": n,
                        "IPAddress": addr,
                        "IPPrefixLen": len.parse::<u32>().unwrap_or(0),
                        "Gateway": a.and_then(|a| a.gateway).map(|g| g.to_string()).unwrap_or_default(),
                        "MacAddress": a.and_then(|a| a.mac.clone()).unwrap_or_default(),
                    }),
                );
            }
        } else {
            networks.insert(network_mode.clone(), json!({}));
        }
        let first_ip = networks
            .values()
            .next()
            .and_then(|n| n.get("IPAddress"))
            .cloned()
            .unwrap_or_else(|| json!(""));
        let running = st.status == Status::Running;
        let ic = &cfg.image_config;
        let l = &d.limits;
        Ok(json!({
            "Id": cfg.id,
            "Created": cfg.created.rfc3339(),
            "Path": cfg.path,
            "Args": cfg.args,
            "State": {
                "Status": status,
                "Running": running,
                "Paused": st.paused,
                "Restarting": st.status == Status::Restarting,
                "OOMKilled": st.oom_killed,
                "Dead": false,
                "Pid": if running { st.pid } else { 0 },
                "ExitCode": match (st.status, st.exit_code) {
                    (Status::Created, _) => 0,
                    (Status::Running, _) => 0,
                    (_, Some(c)) => c,
                    (_, None) => supervise::UNKNOWN_EXIT,
                },
                "Error": st.error,
                "StartedAt": st.started_at.rfc3339(),
                "FinishedAt": st.finished_at.rfc3339(),
                "Monitor": !st.unsupervised && running,
            },
            "Image": cfg.image_id,
            "ResolvConfPath": "",
            "HostnamePath": "",
            "HostsPath": "",
            "LogPath": self.log_path(id),
            "Name": format!("/{}", cfg.name),
            "RestartCount": st.restart_count,
            "Driver": "overlay2",
            "Platform": "linux",
            "HostConfig": {
                "Binds": if binds.is_empty() { Value::Null } else { json!(binds) },
                "LogConfig": {
                    "Type": "json-file",
                    "Config": {
                        "max-size": cfg.log.max_size.to_string(),
                        "max-file": cfg.log.max_file.to_string(),
                    },
                },
                "NetworkMode": network_mode,
                "PortBindings": bindings,
                "RestartPolicy": restart,
                "AutoRemove": cfg.auto_remove,
                "CapAdd": d.security.cap_add,
                "CapDrop": d.security.cap_drop,
                "Privileged": d.security.privileged,
                "PublishAllPorts": d.network.publish_all,
                "ReadonlyRootfs": d.readonly_root.unwrap_or(false),
                "Memory": l.memory.unwrap_or(0),
                "MemorySwap": l.memory_swap.unwrap_or(0),
                "NanoCpus": l.cpus.map(|c| (c * 1e9) as i64).unwrap_or(0),
                "CpuShares": l.cpu_shares.unwrap_or(0),
                "PidsLimit": l.pids,
                "BlkioWeight": l.blkio_weight.unwrap_or(0),
            },
            "Mounts": mounts,
            "Config": {
                "Hostname": cfg.hostname,
                "User": cfg.user,
                "Tty": cfg.tty,
                "OpenStdin": cfg.interactive,
                "Env": cfg.env,
                "Cmd": if d.args.is_empty() { ic.get("Cmd").cloned().unwrap_or(Value::Null) } else { json!(d.args) },
                "Entrypoint": match &d.entrypoint {
                    Some(e) => json!(e),
                    None => ic.get("Entrypoint").cloned().unwrap_or(Value::Null),
                },
                "Image": cfg.image,
                "WorkingDir": cfg.working_dir,
                "Labels": cfg.labels,
                "StopSignal": signal_name(cfg.stop_signal),
                "StopTimeout": cfg.stop_timeout,
                "ExposedPorts": ic.get("ExposedPorts").cloned().unwrap_or(Value::Null),
                "Volumes": ic.get("Volumes").cloned().unwrap_or(Value::Null),
            },
            "NetworkSettings": {
                "IPAddress": first_ip,
                "Ports": ports,
                "Networks": networks,
            },
        }))
    }
}

fn supervise_read_pending(fg: &Foreground) -> bool {
    use std::os::fd::AsRawFd;
    let mut info = [0u8; 128];
    // SAFETY: reading one signalfd record into a buffer of its size (the fd is nonblocking).
    let n = unsafe { libc::read(fg.sfd.as_raw_fd(), info.as_mut_ptr().cast(), info.len()) };
    n > 0
}

/// Waits until `fd` (a pidfd) is readable, at most `limit`; true if it became so. No fd:
/// true (nothing to wait for).
fn wait_fd(fd: Option<std::os::fd::RawFd>, limit: Duration) -> bool {
    let Some(fd) = fd else {
        return true;
    };
    let until = Instant::now() + limit;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: polling one pollfd.
        let n = unsafe { libc::poll(&mut p, 1, ms) };
        if n > 0 {
            return true;
        }
        if n == 0 || Instant::now() >= until {
            return false;
        }
    }
}

/// `SIGTERM` for 15.
fn signal_name(sig: i32) -> String {
    nix::sys::signal::Signal::try_from(sig)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| sig.to_string())
}

/// Docker's status text of a state.
pub fn status_text(st: &RunState) -> String {
    match st.status {
        Status::Created => "Created".into(),
        Status::Removing => "Removal In Progress".into(),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            st.exit_code.unwrap_or(supervise::UNKNOWN_EXIT),
            human_duration(since(st.finished_at))
        ),
        Status::Running => {
            let mut s = format!("Up {}", human_duration(since(st.started_at)));
            if st.paused {
                s.push_str(" (Paused)");
            }
            if st.unsupervised {
                s.push_str(" (no monitor)");
            }
            s
        }
        Status::Exited => {
            let code = match st.exit_code {
                Some(c) => c.to_string(),
                None => "unknown".into(),
            };
            if st.finished_at.is_zero() {
                format!("Exited ({code})")
            } else {
                format!(
                    "Exited ({code}) {} ago",
                    human_duration(since(st.finished_at))
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_quoted_as_docker_quotes_them() {
        assert_eq!(
            command_text("sh", &["-c".into(), "exit 3".into()]),
            "sh -c 'exit 3'"
        );
        assert_eq!(parse_signal_name("SIGQUIT"), Some(libc::SIGQUIT));
        assert_eq!(parse_signal_name("usr1"), Some(libc::SIGUSR1));
        assert_eq!(signal_name(15), "SIGTERM");
    }

    #[test]
    fn status_texts_are_dockers() {
        let mut st = RunState::default();
        assert_eq!(status_text(&st), "Created");
        st.status = Status::Exited;
        st.exit_code = Some(3);
        st.finished_at = Time::now();
        assert!(
            status_text(&st).starts_with("Exited (3) "),
            "{}",
            status_text(&st)
        );
        st.exit_code = None;
        assert!(status_text(&st).starts_with("Exited (unknown)"));
        st.status = Status::Running;
        st.started_at = Time::now();
        st.unsupervised = true;
        let s = status_text(&st);
        assert!(s.starts_with("Up ") && s.ends_with("(no monitor)"), "{s}");
    }
}

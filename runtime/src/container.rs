//! A container's life in one process: create, start, wait, signal, delete.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use cgroup::{Cgroup, CgroupPath, Hierarchy, Version};
use nix::errno::Errno;
use unionfs::{Overlay, OverlayMount};

use crate::config::{Bundle, OCI_VERSION};
use crate::prepare::{self, CgroupView, Inputs};
use crate::state::{self, State, StateDir, Status};
use crate::{resources, Error, Result};

/// How to create a container, beyond its bundle.
#[derive(Debug, Clone)]
pub struct Options {
    /// The state root (`/run/corral` by default).
    pub root: PathBuf,
    /// Read-only image layers, bottom first. When given, the root filesystem is an overlay of
    /// these layers under a writable upper layer kept in the state dir, instead of
    /// `root.path`.
    pub layers: Vec<PathBuf>,
    /// Move the root instead of `pivot_root` (for roots on initramfs).
    pub no_pivot: bool,
    /// Number of fds after stdio that the process inherits.
    pub preserve_fds: u32,
    /// Fds to use as the process's stdin, stdout and stderr (`-1`: the caller's own). They
    /// must stay open until `create_and_start` returns.
    pub stdio: [RawFd; 3],
}

impl Default for Options {
    fn default() -> Self {
        Options {
            root: PathBuf::from(state::DEFAULT_ROOT),
            layers: Vec::new(),
            no_pivot: false,
            preserve_fds: 0,
            stdio: [-1; 3],
        }
    }
}

/// How the container's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// It exited with this code.
    Exited(i32),
    /// A signal killed it.
    Signaled(i32),
}

impl ExitStatus {
    /// The shell convention: the exit code, or 128 + the signal number.
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => c,
            ExitStatus::Signaled(s) => 128 + s,
        }
    }

    fn from_wait(st: libc::c_int) -> ExitStatus {
        if libc::WIFSIGNALED(st) {
            ExitStatus::Signaled(libc::WTERMSIG(st))
        } else {
            ExitStatus::Exited(libc::WEXITSTATUS(st))
        }
    }
}

/// A container made by this process. Dropping it without [`Container::delete`] kills its
/// processes and removes everything it made, as delete does.
#[derive(Debug)]
pub struct Container {
    id: String,
    bundle: PathBuf,
    pid: i32,
    pidfd: Option<OwnedFd>,
    exit: Option<ExitStatus>,
    cgroup: Option<Cgroup>,
    overlay: Option<OverlayMount>,
    state_dir: Option<StateDir>,
    state: State,
    warnings: Vec<String>,
}

fn io_err(id: &str, what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::Io {
        id: id.to_string(),
        what: what.into(),
        path: path.to_path_buf(),
        source: e,
    }
}

fn cgroup_err(id: &str, e: cgroup::Error) -> Error {
    let field = e
        .file_name()
        .and_then(resources::field_of)
        .map(str::to_string)
        .or_else(|| e.setting().and_then(resources::field_of_setting))
        .map(|f| format!(" ({f})"))
        .unwrap_or_default();
    Error::Cgroup {
        id: id.to_string(),
        field,
        source: e,
    }
}

impl Container {
    /// Creates the container from the bundle at `bundle` and starts its process. Everything
    /// made on the way is undone if any step fails.
    pub fn create_and_start(id: &str, bundle: &Path, opts: &Options) -> Result<Container> {
        state::check_id(id)?;
        let b = Bundle::load(bundle)?;
        let spec = &b.spec;
        let state_dir = StateDir::create(&opts.root, id)?;

        // Root filesystem: the bundle's root, or an overlay of the given layers.
        let mut overlay = None;
        let rootfs = if opts.layers.is_empty() {
            b.rootfs()?
        } else {
            let dir = state_dir.path();
            let target = dir.join("rootfs");
            std::fs::create_dir(&target)
                .map_err(|e| io_err(id, "creating overlay mount point", &target, e))?;
            let ov = Overlay::new(opts.layers.clone(), dir.join("upper"), dir.join("work"));
            let m = ov.mount(&target).map_err(|e| Error::Rootfs {
                id: id.to_string(),
                source: e,
            })?;
            overlay = Some(m);
            target
        };

        // Cgroups: made and limited before the clone, so the limits hold from the first
        // instruction.
        let hier = Hierarchy::detect().map_err(|e| cgroup_err(id, e))?;
        let linux = spec.linux().clone().unwrap_or_default();
        let path = match linux.cgroups_path() {
            None => CgroupPath::Relative(id.to_string()),
            Some(p) => {
                let s = p.to_string_lossy().into_owned();
                if s.contains(':') {
                    return Err(Error::Config {
                        field: "linux.cgroupsPath".into(),
                        reason: format!(
                            "{s:?} is a systemd slice path; corral manages cgroupfs paths only"
                        ),
                    });
                }
                if p.is_absolute() {
                    CgroupPath::Absolute(s)
                } else {
                    CgroupPath::Relative(s)
                }
            }
        };
        let v1_devices = hier.v1_mount("devices").is_some();
        let res = resources::from_spec(spec, v1_devices)?;
        let mut cg = Cgroup::new(&hier, &path).map_err(|e| cgroup_err(id, e))?;
        cg.create(&res).map_err(|e| match e {
            cgroup::Error::AlreadyExists { .. } => Error::AlreadyExists(id.to_string()),
            e => cgroup_err(id, e),
        })?;
        let cg = CgroupGuard(Some(cg));
        let cgr = cg.0.as_ref().expect("set above");
        cgr.apply(&res).map_err(|e| cgroup_err(id, e))?;
        let warnings = cgr.warnings();
        for w in &warnings {
            tracing::warn!(container = id, "{w}");
        }
        let views: Vec<CgroupView> = cgr
            .dirs()
            .into_iter()
            .map(|d| CgroupView {
                name: d.name,
                host_dir: d.dir,
            })
            .collect();
        let cgroup_fd = match (hier.version(), cgr.v2_dir()) {
            (Version::V2, Some(dir)) => Some(open_dir(id, dir)?),
            _ => None,
        };

        let plan = prepare::plan(Inputs {
            spec,
            bundle: &b.dir,
            rootfs: &rootfs,
            cgroups: &views,
            cgroup_fd,
            no_pivot: opts.no_pivot,
            preserve_fds: opts.preserve_fds,
            stdio: opts.stdio,
        })?;

        let ns_err = |e: ns::Error| match e {
            ns::Error::Child(c) => Error::Child {
                id: id.to_string(),
                source: c,
            },
            e => Error::Namespace {
                id: id.to_string(),
                what: "spawn".into(),
                source: e,
            },
        };
        let mut sp = ns::spawn(&plan).map_err(ns_err)?;
        if !sp.placed_in_cgroup() {
            cgr.add_pid(sp.pid()).map_err(|e| cgroup_err(id, e))?;
        }
        sp.go().map_err(ns_err)?;
        let mut st = State {
            oci_version: OCI_VERSION.into(),
            id: id.to_string(),
            status: Status::Created,
            pid: sp.pid(),
            bundle: b.dir.clone(),
            annotations: spec.annotations().clone().unwrap_or_default(),
            pid_start_time: state::pid_start_time(sp.pid()),
            cgroup_dirs: cgr.created_dirs().to_vec(),
            rootfs_mount: overlay.as_ref().map(|m| m.target().to_path_buf()),
        };
        state_dir.write(&st)?;
        let spawned = sp.start().map_err(ns_err)?;
        st.status = Status::Running;
        state_dir.write(&st)?;

        Ok(Container {
            id: id.to_string(),
            bundle: b.dir,
            pid: spawned.pid,
            pidfd: Some(spawned.pidfd),
            exit: None,
            cgroup: cg.take(),
            overlay,
            state_dir: Some(state_dir),
            state: st,
            warnings,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn bundle(&self) -> &Path {
        &self.bundle
    }

    /// The container's init process, in the caller's pid namespace.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// A pidfd of the init process (readable when it exits), for poll loops.
    pub fn pidfd(&self) -> Option<RawFd> {
        self.pidfd.as_ref().map(|f| f.as_raw_fd())
    }

    /// The state as last written.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Warnings from set-up (e.g. a swap limit the host cannot enforce).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The cgroup of the container.
    pub fn cgroup(&self) -> Option<&Cgroup> {
        self.cgroup.as_ref()
    }

    /// Sends `sig` to the init process (through its pidfd: never to a recycled pid).
    pub fn signal(&self, sig: i32) -> Result<()> {
        if self.exit.is_some() {
            return Ok(());
        }
        let r = match &self.pidfd {
            // SAFETY: plain syscall on an owned pidfd.
            Some(fd) => unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    fd.as_raw_fd(),
                    sig,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                ) as i32
            },
            // SAFETY: the pid is our unreaped child.
            None => unsafe { libc::kill(self.pid, sig) },
        };
        if r < 0 && Errno::last() != Errno::ESRCH {
            return Err(Error::Sys {
                id: self.id.clone(),
                what: format!("sending signal {sig}"),
                errno: Errno::last(),
            });
        }
        Ok(())
    }

    /// Waits for the init process to exit (returns at once if it already did).
    pub fn wait(&mut self) -> Result<ExitStatus> {
        self.reap(true)
            .map(|s| s.expect("blocking wait yields a status"))
    }

    /// Returns the exit status if the init process has exited, without blocking.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        self.reap(false)
    }

    fn reap(&mut self, block: bool) -> Result<Option<ExitStatus>> {
        if let Some(e) = self.exit {
            return Ok(Some(e));
        }
        let mut st = 0;
        loop {
            let flags = if block { 0 } else { libc::WNOHANG };
            // SAFETY: waiting for our own child.
            let r = unsafe { libc::waitpid(self.pid, &mut st, flags) };
            if r < 0 {
                if Errno::last() == Errno::EINTR {
                    continue;
                }
                return Err(Error::Sys {
                    id: self.id.clone(),
                    what: format!("waiting for pid {}", self.pid),
                    errno: Errno::last(),
                });
            }
            if r == 0 {
                return Ok(None);
            }
            let e = ExitStatus::from_wait(st);
            self.exit = Some(e);
            self.state.status = Status::Stopped;
            if let Some(d) = &self.state_dir {
                let _ = d.write(&self.state);
            }
            return Ok(Some(e));
        }
    }

    /// Kills what is left of the container and removes everything it made: its processes,
    /// cgroups, root filesystem mount and state dir. Every step is tried; the first error is
    /// returned.
    pub fn delete(mut self) -> Result<()> {
        self.teardown()
    }

    fn teardown(&mut self) -> Result<()> {
        let mut first: Option<Error> = None;
        let mut note = |r: Result<()>| {
            if let Err(e) = r {
                if first.is_none() {
                    first = Some(e);
                }
            }
        };
        if self.exit.is_none() {
            note(self.signal(libc::SIGKILL));
            note(self.wait().map(|_| ()));
        }
        if let Some(cg) = self.cgroup.take() {
            note(kill_and_remove(&self.id, &cg));
        }
        if let Some(m) = self.overlay.take() {
            note(m.unmount().map_err(|e| Error::Rootfs {
                id: self.id.clone(),
                source: e,
            }));
        }
        if let Some(d) = self.state_dir.take() {
            note(d.remove());
        }
        match first {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if let Err(e) = self.teardown() {
            tracing::warn!(container = %self.id, "cleanup: {e}");
        }
    }
}

/// Kills every process left in the cgroup (a container without its own pid namespace can
/// leave some), waits until it is empty, and removes it.
fn kill_and_remove(id: &str, cg: &Cgroup) -> Result<()> {
    for _ in 0..100 {
        match cg.pids() {
            Ok(p) if p.is_empty() => break,
            Ok(_) => {
                let _ = cg.kill_all(nix::sys::signal::Signal::SIGKILL);
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(_) => break,
        }
    }
    cg.remove().map_err(|e| cgroup_err(id, e))
}

/// Removes a half-made cgroup on an error path.
struct CgroupGuard(Option<Cgroup>);

impl CgroupGuard {
    fn take(mut self) -> Option<Cgroup> {
        self.0.take()
    }
}

impl Drop for CgroupGuard {
    fn drop(&mut self) {
        if let Some(cg) = self.0.take() {
            if let Err(e) = kill_and_remove("", &cg) {
                tracing::warn!("cleanup: {e}");
            }
        }
    }
}

fn open_dir(id: &str, dir: &Path) -> Result<OwnedFd> {
    std::fs::File::open(dir)
        .map(OwnedFd::from)
        .map_err(|e| io_err(id, "opening cgroup", dir, e))
}

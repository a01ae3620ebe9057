//! A container's life in one process, one file per concern: [`create`] (the phases of
//! create), [`load`] (a container from its state dir), [`start`], [`wait`] (signals and
//! waits), [`exec`], [`cgroup_ops`] (pause, resume, update, stats) and [`delete`]. This file
//! holds the [`Container`] value, its options, its accessors and the helpers they share.
#![deny(clippy::undocumented_unsafe_blocks)]

mod cgroup_ops;
mod create;
mod delete;
mod exec;
mod load;
mod start;
mod update;
mod wait;

pub use exec::{ExecPlacement, ExecProcess};
use wait::ExecReaper;
pub use wait::{poll_readable, ExitStatus};

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cgroup::Cgroup;
use unionfs::OverlayMount;

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
    /// With [`Options::layers`]: the dir that holds the writable layer (`upper/` and
    /// `work/` in it, made when missing), so that it outlives the container's state dir
    /// (an engine's container started again keeps its files). `None`: in the state dir
    /// ([`crate::state::overlay_paths`]), removed with it. The caller keeps the dir private
    /// (only root may enter it).
    pub upper: Option<PathBuf>,
    /// Move the root instead of `pivot_root` (for roots on initramfs).
    pub no_pivot: bool,
    /// Number of fds after stdio that the process inherits (3 .. 3+N), at most
    /// [`ns::MAX_PRESERVE_FDS`]. The runtime keeps its own fds out of that range.
    pub preserve_fds: u32,
    /// Fds in the preserved range that are not the caller's to pass: placeholders a host put
    /// there so that its own later fds stay out of the range (see the CLI). The container's
    /// process closes them.
    pub preserve_holes: Vec<RawFd>,
    /// Fds to use as the process's stdin, stdout and stderr (`-1`: the caller's own). They
    /// must stay open until `create_and_start` returns.
    pub stdio: [RawFd; 3],
    /// With `process.terminal`: a unix socket to send the pty master to (SCM_RIGHTS), as
    /// runc's `--console-socket`. Without one, the master stays with the [`Container`]
    /// ([`Container::take_console`]).
    pub console_socket: Option<PathBuf>,
    /// Keep the caller's session keyring instead of joining one of the container's own (named
    /// after its id), as runc's `--no-new-keyring`.
    pub no_new_keyring: bool,
    /// The host's security modules, for `apparmorProfile`, `selinuxLabel` and `mountLabel`
    /// (detected by default).
    pub security: crate::lsm::Security,
    /// The program is given when the container starts ([`Container::start_with`]), not by the
    /// config: the process does all its set-up and waits at its gate not knowing what it will
    /// run (a warm pool's containers, [`crate::Pool`]). Such a container can only be started
    /// by this process, and its process dies with the thread that created it until then.
    pub late_exec: bool,
    /// Only this handle starts the container ([`Container::start`] in this process, as
    /// `run` and [`Container::create_and_start`] do): its start gate is the socket to this
    /// process instead of a FIFO in the state dir (no file made and removed, fewer wake-ups),
    /// so no other process can start it, and from outside it reads `running` from its
    /// creation. A container with startContainer hooks keeps the FIFO: the hooks' failure is
    /// reported through it (as a warning, the way runc does).
    pub start_in_process: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            root: PathBuf::from(state::DEFAULT_ROOT),
            layers: Vec::new(),
            upper: None,
            no_pivot: false,
            preserve_fds: 0,
            preserve_holes: Vec::new(),
            stdio: [-1; 3],
            console_socket: None,
            no_new_keyring: false,
            security: crate::lsm::Security::detect(),
            late_exec: false,
            start_in_process: false,
        }
    }
}

/// A container: made by this process ([`Container::create`]) or loaded from its state
/// ([`Container::load`]). A container this process created and did not [`Container::detach`]
/// is torn down when dropped, as [`Container::delete`] would.
#[derive(Debug)]
pub struct Container {
    id: String,
    bundle: PathBuf,
    pid: i32,
    pidfd: Option<OwnedFd>,
    /// True when the init process is our child (we can wait for its exit status).
    own_child: bool,
    /// The child waiting at its start gate (created by this process, not started yet).
    spawning: Option<ns::Spawning>,
    /// The pty master of a process with a terminal (when no console socket took it).
    console: Option<OwnedFd>,
    exit: Option<ExitStatus>,
    cgroup: Option<Cgroup>,
    overlay: Option<OverlayMount>,
    state_dir: Option<StateDir>,
    state: State,
    /// The config create accepted, kept in the state dir (never the bundle's file again).
    config: Option<oci_spec::runtime::Spec>,
    warnings: Vec<String>,
    /// Tear down on drop (false for detached or loaded containers).
    owned: bool,
    /// Loaded in state `creating` (or with no readable state) after its creator died: it
    /// counts as stopped, and `delete` kills whatever of it is left, even a process waiting
    /// at its start gate that nobody will start.
    half_made: bool,
    /// How long each phase of create and start took (empty for a loaded container).
    timings: crate::timings::Timings,
    /// Made with [`Options::late_exec`]: started by [`Container::start_with`] only.
    late_exec: bool,
    /// The processes `exec` started, until they are reaped.
    execs: Mutex<Vec<Arc<ExecReaper>>>,
    /// Reaped here, and the state `stopped` not written yet: written when the container is
    /// kept ([`Container::detach`], or dropped without teardown), never when it is deleted.
    stopped_unwritten: bool,
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
        source: Box::new(e),
    }
}

impl Container {
    /// The config that create accepted (kept in the state dir; the bundle's `config.json` is
    /// not read again after create).
    pub fn config(&self) -> Result<&oci_spec::runtime::Spec> {
        if let Some(c) = &self.config {
            return Ok(c);
        }
        match self.state_dir.as_ref().map(StateDir::read_config) {
            Some(Err(e)) => Err(e),
            _ => Err(Error::State {
                id: self.id.clone(),
                status: "without a kept config",
                want: "created by this version of corral",
            }),
        }
    }

    /// The pty master of a container with a terminal and no console socket.
    pub fn take_console(&mut self) -> Option<OwnedFd> {
        self.console.take()
    }

    /// Leaves the container as it is when this value is dropped (for a `create` or `run -d`
    /// whose container lives on after this process).
    pub fn detach(mut self) -> Result<()> {
        if self.late_exec && self.spawning.is_some() {
            return Err(Error::State {
                id: self.id.clone(),
                status: "waiting for its program",
                want: "started (a late_exec container is started by its creator only)",
            });
        }
        if let Some(sp) = self.spawning.take() {
            let s = sp.release().map_err(|e| ns_error(&self.id, e))?;
            self.pidfd = Some(s.pidfd);
        }
        if let Some(m) = self.overlay.take() {
            m.leak();
        }
        if let Some(d) = &mut self.state_dir {
            d.keep();
        }
        self.owned = false;
        self.write_stopped()
    }

    /// Records `stopped` for a container reaped here that is kept (its `stopped_unwritten`).
    fn write_stopped(&mut self) -> Result<()> {
        if !std::mem::take(&mut self.stopped_unwritten) {
            return Ok(());
        }
        self.write_state()
    }

    /// The live status: from the process itself, not from what was last written.
    pub fn status(&self) -> Status {
        if self.exit.is_some() {
            return Status::Stopped;
        }
        let alive = match &self.pidfd {
            Some(fd) => {
                let mut p = libc::pollfd {
                    fd: fd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: `p` is one live pollfd (count 1) on the pidfd we own; timeout 0, and
                // poll only writes its `revents`.
                let n = unsafe { libc::poll(&mut p, 1, 0) };
                !(n > 0 && p.revents & libc::POLLIN != 0)
            }
            None => self.spawning.is_some(),
        };
        if !alive || zombie(self.pid) {
            return Status::Stopped;
        }
        if self.spawning.is_some() || (self.state.status == Status::Created && self.at_gate()) {
            return Status::Created;
        }
        if self.is_frozen() {
            return Status::Paused;
        }
        Status::Running
    }

    /// Whether the live process of a container recorded `created` still waits at its start
    /// gate. The kernel says so, not the state file, which a start does not change (as
    /// runc, the status after start is derived): the gate is open once `exec.fifo` is gone
    /// (a start removes it once past); while it is there, a process at its FIFO gate holds
    /// its state dir open (`O_PATH`, until the gate opens), which tells a start killed
    /// after opening the gate (and before removing the FIFO) from one that never came. When
    /// its fds cannot be read (a rootless caller), the FIFO alone tells. A warm pool's
    /// process waits on its creator's socket: created until its creator starts it (which
    /// writes `running`).
    fn at_gate(&self) -> bool {
        let Some(d) = &self.state_dir else {
            return true;
        };
        at_gate(self.pid, d.path(), self.state.late_exec)
    }

    /// Whether the container is frozen: the freezer of its cgroup says so (frozen, or on its
    /// way there), whatever the state file says (a `pause` or `resume` killed between the
    /// freezer and the file left them apart). Without a freezer, the state file.
    fn is_frozen(&self) -> bool {
        match self.cgroup.as_ref().map(Cgroup::is_frozen) {
            Some(Ok(Some(frozen))) => frozen,
            _ => self.state.status == Status::Paused,
        }
    }

    /// The OCI state with the live status.
    pub fn oci_state(&self) -> State {
        let mut st = self.state.clone();
        st.status = self.status();
        if st.status == Status::Stopped {
            st.pid = 0;
        }
        st
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

    /// A pidfd of the init process (readable when it exits), for poll loops: also while it
    /// waits at its start gate. It stays owned by the container (dup it to keep it longer).
    pub fn pidfd(&self) -> Option<RawFd> {
        match (&self.pidfd, &self.spawning) {
            (Some(f), _) => Some(f.as_raw_fd()),
            (None, Some(sp)) => sp.pidfd(),
            (None, None) => None,
        }
    }

    /// The state root the container's state dir lives under.
    pub fn state_root(&self) -> PathBuf {
        self.state_dir
            .as_ref()
            .and_then(|d| d.path().parent())
            .map(Path::to_path_buf)
            .unwrap_or_else(state::default_root)
    }

    /// Releases the lock on the container's state dir that [`Container::load`] took, so that
    /// a long-lived handle (a library's, a language binding's) does not block other
    /// processes' commands on the container. [`Container::delete`] takes it again.
    pub fn unlock(&mut self) {
        if let Some(d) = &mut self.state_dir {
            d.unlock();
        }
    }

    /// The fd that becomes readable when the init process exits: its pidfd, also while it
    /// waits at its start gate (where [`Container::pidfd`] has none yet). For callers that
    /// wait outside the container's lock (an event loop, another thread): once it is
    /// readable, [`Container::try_wait`] returns at once. Valid while the value lives.
    pub fn wait_fd(&self) -> Option<RawFd> {
        match (&self.pidfd, &self.spawning) {
            (Some(fd), _) => Some(fd.as_raw_fd()),
            (None, Some(sp)) => sp.pidfd(),
            (None, None) => None,
        }
    }

    /// How long each phase of this process's create and start of the container took
    /// ([`crate::timings::CREATE_PHASES`], then `start`); empty for a loaded container.
    pub fn timings(&self) -> &crate::timings::Timings {
        &self.timings
    }

    /// The state as last written.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Warnings from set-up (e.g. a swap limit the host cannot enforce) and start (a failed
    /// startContainer hook: `start` succeeds, the program did not run).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The cgroup of the container.
    pub fn cgroup(&self) -> Option<&Cgroup> {
        self.cgroup.as_ref()
    }

    fn write_state(&self) -> Result<()> {
        match &self.state_dir {
            Some(d) => d.write(&self.state),
            None => Ok(()),
        }
    }
}

/// [`Container::at_gate`] of the live process `pid` of the container in state dir `dir`,
/// recorded `created`.
fn at_gate(pid: i32, dir: &Path, late_exec: bool) -> bool {
    if late_exec {
        return true;
    }
    // lstat, never following a link: only start removes the FIFO.
    if std::fs::symlink_metadata(dir.join(FIFO)).is_err() {
        return false;
    }
    holds_open(pid, dir).unwrap_or(true)
}

/// Whether process `pid` holds `dir` open (compared by device and inode); `None` when its
/// fds cannot be read.
fn holds_open(pid: i32, dir: &Path) -> Option<bool> {
    use std::os::unix::fs::MetadataExt;
    let want = std::fs::metadata(dir).map(|m| (m.dev(), m.ino())).ok()?;
    let rd = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    Some(
        rd.flatten()
            .any(|e| std::fs::metadata(e.path()).is_ok_and(|m| (m.dev(), m.ino()) == want)),
    )
}

const FIFO: &str = "exec.fifo";

/// Sets a terminal's window size.
pub fn set_winsize(fd: &OwnedFd, rows: u16, cols: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one `winsize` from the pointer, which points at `ws`, alive for
    // the call; the fd is borrowed from `fd`, open for the call.
    unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
}

/// Sends the pty master to a console socket (SCM_RIGHTS), as runc does.
fn send_console(id: &str, path: &Path, master: OwnedFd) -> Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let stream = std::os::unix::net::UnixStream::connect(path)
        .map_err(|e| io_err(id, "connecting to console socket", path, e))?;
    let fds = [master.as_raw_fd()];
    let name = b"/dev/ptmx";
    let iov = [std::io::IoSlice::new(name)];
    sendmsg::<()>(
        stream.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| Error::Sys {
        id: id.to_string(),
        what: format!("sending the pty master to {}", path.display()),
        errno: e,
    })?;
    Ok(())
}
/// Compiled seccomp filters, by policy hash, under the state root.
const SECCOMP_CACHE: &str = ".seccomp-cache";

fn ns_error(id: &str, e: ns::Error) -> Error {
    match e {
        ns::Error::Child(c) => Error::Child {
            id: id.to_string(),
            source: c,
        },
        e => Error::Namespace {
            id: id.to_string(),
            what: "spawn".into(),
            source: e,
        },
    }
}

/// The parent pid of `pid` (field 4 of /proc/PID/stat), 0 if it cannot be read.
fn parent_of(pid: i32) -> i32 {
    crate::state::proc_stat(pid)
        .and_then(|s| {
            let rest = s.get(s.rfind(')')? + 1..)?;
            rest.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

/// A zombie (exited, not yet reaped by its parent) counts as stopped.
fn zombie(pid: i32) -> bool {
    crate::state::proc_stat(pid)
        .and_then(|s| {
            s.rfind(')')
                .and_then(|i| s.get(i + 2..i + 3))
                .map(|c| c == "Z" || c == "X")
        })
        .unwrap_or(true)
}

fn open_path(id: &str, dir: &Path) -> Result<OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    // std adds O_CLOEXEC.
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(dir)
        .map(OwnedFd::from)
        .map_err(|e| Error::Sys {
            id: id.to_string(),
            what: format!("opening {}", dir.display()),
            errno: nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        })
}

fn open_dir(id: &str, dir: &Path) -> Result<OwnedFd> {
    std::fs::File::open(dir)
        .map(OwnedFd::from)
        .map_err(|e| io_err(id, "opening cgroup", dir, e))
}

/// The session keyring of a container's processes: one named after the container, labelled
/// with the process's SELinux label; none with `no_new_keyring`.
fn keyring(
    id: &str,
    p: Option<&oci_spec::runtime::Process>,
    opts: &Options,
) -> Result<Option<ns::Keyring>> {
    if opts.no_new_keyring {
        return Ok(None);
    }
    let label = opts.security.key_label(
        "process.selinuxLabel",
        p.and_then(|p| p.selinux_label().as_deref()),
    )?;
    Ok(Some(ns::Keyring {
        name: std::ffi::CString::new(id).map_err(|_| Error::Config {
            field: "id".into(),
            reason: "contains a NUL byte".into(),
        })?,
        label,
    }))
}

/// `pidfd_open(2)`: an fd that refers to process `pid` (whatever later reuses its number).
fn pidfd_open(pid: i32) -> nix::Result<OwnedFd> {
    // SAFETY: pidfd_open takes two integers and reads or writes no memory of ours.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(nix::errno::Errno::last());
    }
    // SAFETY: the fd was just returned by the kernel and nothing else owns it.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as RawFd) })
}

/// `pidfd_send_signal(2)`: `sig` (any number, real-time signals included) to the process of
/// `fd`, never to a process that reused its pid.
fn pidfd_signal(fd: &OwnedFd, sig: i32) -> nix::Result<()> {
    // SAFETY: the pidfd is open for the whole call (borrowed); the siginfo pointer is null
    // (the kernel then makes one as kill(2) would) and the flags are 0, so the kernel reads
    // and writes no memory of ours.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        return Err(nix::errno::Errno::last());
    }
    Ok(())
}

//! The parent side of the spawn: one clone, then the sync protocol with the child.
//!
//! | message          | direction      | meaning                                                      |
//! |------------------|----------------|--------------------------------------------------------------|
//! | `GO`             | parent → child | id maps written (fast path), cgroups joined: go on            |
//! | `MAPS`           | child → parent | (slow path) I unshared a user namespace: write my id maps     |
//! | `MAPS_OK`        | parent → child | the id maps are written                                      |
//! | `PID(n)`         | child → parent | (slow path) after the second fork, the container's pid is n  |
//! | `HOOKS`          | child → parent | (hook_pause) mounts done, root not changed yet: run hooks    |
//! | `HOOKS_DONE`     | parent → child | the hooks ran                                                |
//! | `TTY` + fd       | child → parent | (process.terminal) the pty master, opened in the container   |
//! | `SECCOMP` + fd   | child → parent | (a notify filter) the seccomp listener fd                     |
//! | `READY`          | child → parent | set-up done; waiting at the start gate                       |
//! | `STATE` + fd     | parent → child | (startContainer hooks) a memfd with the state JSON           |
//! | `RELEASE`        | parent → child | (FIFO gate) create is complete: drop the parent-death signal |
//! | `RELEASED`       | child → parent | done; the process may now outlive the parent                 |
//! | `START`          | parent → child | exec the process now                                         |
//! | `START` + fd     | parent → child | (late_exec) exec this program: a memfd, see [`crate::late`]  |
//! | `ERR(step,errno,index)` | child → parent | set-up failed at `step`; the child exits 127          |
//! | end of file      | child → parent | `execve` succeeded (the CLOEXEC socket closed)               |
//!
//! Fast path (no namespace to join): the clone itself creates the user, mount, pid, net, ipc
//! and uts namespaces. Slow path (some namespace is joined): the clone creates none; the child
//! joins with `setns` (user first) and creates with `unshare`, and a new or joined pid
//! namespace costs a second fork (`CLONE_PARENT`, so the runtime stays the parent). The
//! cgroup and time namespaces are always made by `unshare`, after the cgroup placement.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use libc::c_int;
use nix::errno::Errno;

use crate::error::{ChildError, Error, Step};
use crate::plan::{Fresh, Plan};
use crate::proto::{msg, ChildArgs, Msg, GATE_HOOK, GATE_OK};
use crate::sys;
use crate::Kind;

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// How a startContainer hook failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookEnd {
    /// It exited with this non-zero status.
    Exited(i32),
    /// A signal killed it.
    Signaled(i32),
    /// It ran past its timeout (seconds) and was killed.
    TimedOut(u32),
    /// It could not be started (errno).
    NotStarted(nix::errno::Errno),
}

/// A startContainer hook that failed, as the container's process reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookFailure {
    /// Its index in `Plan::start_hooks`.
    pub index: usize,
    pub end: HookEnd,
    /// The start of what it wrote to stdout and stderr.
    pub output: String,
}

/// Reads what the process wrote on its FIFO gate: `Ok(true)` when it passed the gate (and its
/// startContainer hooks succeeded), `Ok(false)` when it wrote nothing, or the failed hook.
pub fn gate_result(report: &[u8]) -> Result<bool, HookFailure> {
    match report.first() {
        None => Ok(false),
        Some(&GATE_OK) => Ok(true),
        Some(&GATE_HOOK) if report.len() >= 10 => {
            let value = i32::from_le_bytes([report[4], report[5], report[6], report[7]]);
            let len = u16::from_le_bytes([report[8], report[9]]) as usize;
            let output = report.get(10..10 + len).unwrap_or(&report[10..]);
            let end = match report[2] {
                0 => HookEnd::Exited(value),
                1 => HookEnd::Signaled(value),
                2 => HookEnd::TimedOut(value as u32),
                _ => HookEnd::NotStarted(nix::errno::Errno::from_raw(value)),
            };
            Err(HookFailure {
                index: report[1] as usize,
                end,
                output: String::from_utf8_lossy(output).into_owned(),
            })
        }
        Some(_) => Ok(false),
    }
}

/// A container process that has been cloned but has not exec'd yet.
///
/// Dropping it kills and reaps the process.
#[derive(Debug)]
pub struct Spawning {
    plan: Plan,
    pid: i32,
    pidfd: Option<OwnedFd>,
    sock: OwnedFd,
    in_cgroup: bool,
    done: bool,
    console: Option<OwnedFd>,
    seccomp_listener: Option<OwnedFd>,
    received: Option<OwnedFd>,
    /// The child was told it may outlive this process (`RELEASE`).
    released: bool,
    /// The program sent by [`Spawning::send_late`] (for its exec error).
    late_arg0: Option<String>,
}

/// A running container process: it has exec'd.
#[derive(Debug)]
pub struct Spawned {
    pub pid: i32,
    pub pidfd: OwnedFd,
}

fn sys_err(what: &'static str) -> Error {
    Error::Sys {
        what,
        errno: Errno::last(),
    }
}

/// The most fds after stdio a caller may hand to the container (`preserve_fds`).
pub const MAX_PRESERVE_FDS: u32 = 1 << 20;

/// Moves `fd` to a number at or past `min` if it is below (the child keeps it, and fds below
/// `min` are the caller's to pass).
fn lift(fd: &mut OwnedFd, min: c_int) -> Result<(), Error> {
    if fd.as_raw_fd() >= min {
        return Ok(());
    }
    // SAFETY: duplicating an owned fd.
    let n = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min) };
    if n < 0 {
        return Err(sys_err("moving an fd out of the preserved range"));
    }
    // SAFETY: just duplicated, owned here; the old one is closed when replaced.
    *fd = unsafe { OwnedFd::from_raw_fd(n) };
    Ok(())
}

/// The exec shim's environment (see `shim/exec_shim.rs`): the candidates, an empty string,
/// then the program's environment, NULL-terminated.
fn shim_envp(cands: &[std::ffi::CString], envp: &crate::CStringArray) -> Vec<*const libc::c_char> {
    cands
        .iter()
        .map(|c| c.as_ptr())
        .chain(std::iter::once(c"".as_ptr()))
        .chain(envp.strings().iter().map(|e| e.as_ptr()))
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// The container's filter, with (when the shim is used) a prologue that lets
/// `execveat(fd, "", ..., AT_EMPTY_PATH)` through on the native architecture: the process
/// runs the shim that way right after installing the filter, and a profile that names only
/// `execve` must not stop it. It gives the container nothing `execve` of `/proc/self/fd/N`
/// would not.
fn seccomp_with_shim(filter: &[libc::sock_filter], shim: bool) -> Vec<libc::sock_filter> {
    #[cfg(target_arch = "x86_64")]
    const NATIVE: Option<(u32, u32)> = Some((0xC000_003E, 322));
    #[cfg(target_arch = "aarch64")]
    const NATIVE: Option<(u32, u32)> = Some((0xC000_00B7, 281));
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    const NATIVE: Option<(u32, u32)> = None;
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    const RET_ALLOW: u32 = 0x7fff_0000;
    const AT_EMPTY_PATH: u32 = 0x1000;
    let ins = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let mut out = Vec::with_capacity(filter.len() + 7);
    if let (true, Some((audit_arch, execveat))) = (shim, NATIVE) {
        out.extend([
            ins(LD_W_ABS, 0, 0, 4),          // arch
            ins(JEQ_K, 0, 5, audit_arch),    // other arch: the filter
            ins(LD_W_ABS, 0, 0, 0),          // nr
            ins(JEQ_K, 0, 3, execveat),      // other syscall: the filter
            ins(LD_W_ABS, 0, 0, 16 + 8 * 4), // args[4], low half (flags is an int)
            ins(JEQ_K, 0, 1, AT_EMPTY_PATH), // other flags: the filter
            ins(RET_K, 0, 0, RET_ALLOW),
        ]);
    }
    out.extend_from_slice(filter);
    out
}

/// Clones the container process. The child waits for [`Spawning::go`].
pub fn spawn(mut plan: Plan) -> Result<Spawning, Error> {
    check_plan(&plan)?;
    // No overflow: bounded above.
    let first = 3 + plan.process.preserve_fds as c_int;
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    let (mut parent_sock, mut child_sock) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|_| sys_err("socketpair"))?;
    // Nothing the runtime opened may sit among the fds the caller preserves (3 .. 3+N): the
    // child keeps those as they are.
    lift(&mut parent_sock, first)?;
    lift(&mut child_sock, first)?;
    let mut keep = vec![child_sock.as_raw_fd()];
    lift_plan_fds(&mut plan, first, &mut keep)?;
    // The exec shim (see `crate::shim`): the process becomes it right before the program.
    let shim = crate::shim::make_at_least(first)?;
    keep.extend(shim.as_ref().map(|f| f.as_raw_fd()));
    keep.retain(|fd| !plan.close_fds.contains(fd));
    keep.sort_unstable();
    keep.dedup();
    let cargs = child_args(&plan, first, keep, shim.as_ref());
    let fast = plan.join_ns.is_empty();
    let (pid, pidfd, in_cgroup) = clone_child(&plan, &cargs, &child_sock, &parent_sock)?;
    drop(child_sock);
    // Placed by the spawn when the clone put the child into the v2 cgroup it was given (if
    // any) and the child joins its v1 cgroups itself (if any): the caller lists them all.
    let in_cgroup = (plan.cgroup_fd.is_none() || in_cgroup)
        && (plan.cgroup_fd.is_some() || !plan.cgroup_tasks.is_empty());
    // The child has its copies; the parent's are not needed any more.
    plan.cgroup_tasks.clear();
    let s = Spawning {
        plan,
        pid,
        pidfd,
        sock: parent_sock,
        in_cgroup,
        done: false,
        console: None,
        seccomp_listener: None,
        received: None,
        released: false,
        late_arg0: None,
    };
    // The initial CPU affinity, before the process is placed in its cgroup (unless the clone
    // placed it already); the process after a second fork inherits it.
    s.set_affinity(s.plan.process.affinity_initial.as_deref(), 4)?;
    if fast && s.plan.creates(Kind::User) {
        s.write_maps()?;
    }
    Ok(s)
}

/// Refuses a plan the spawn cannot carry out.
fn check_plan(plan: &Plan) -> Result<(), Error> {
    if plan.late_exec && plan.gate.is_some() {
        return Err(Error::Plan(
            "late_exec needs the socket start gate (gate: None)".into(),
        ));
    }
    if plan.process.argv.is_empty() {
        return Err(Error::Plan("process args must not be empty".into()));
    }
    if plan.process.preserve_fds > MAX_PRESERVE_FDS {
        return Err(Error::Plan(format!(
            "preserve_fds {} is more than {MAX_PRESERVE_FDS}",
            plan.process.preserve_fds
        )));
    }
    Ok(())
}

/// Moves the plan's fds at or past `first` (see [`lift`]) and adds those the child keeps
/// until it uses them to `keep`.
fn lift_plan_fds(plan: &mut Plan, first: c_int, keep: &mut Vec<c_int>) -> Result<(), Error> {
    if let Some(g) = plan.gate.as_mut() {
        lift(&mut g.dir, first)?;
        keep.push(g.dir.as_raw_fd());
    }
    for j in plan.join_ns.iter_mut() {
        lift(&mut j.fd, first)?;
        keep.push(j.fd.as_raw_fd());
    }
    if let Some(r) = plan.rootfs.as_mut() {
        for m in r.mounts.iter_mut() {
            if let Some(d) = m.detached.as_mut() {
                lift(d, first)?;
                keep.push(d.as_raw_fd());
            }
        }
    }
    if let Some(cg) = plan.cgroup_fd.as_mut() {
        lift(cg, first)?;
    }
    for t in plan.cgroup_tasks.iter_mut() {
        lift(&mut t.fd, first)?;
    }
    keep.extend(plan.process.stdio.iter().copied().filter(|fd| *fd >= first));
    Ok(())
}

/// What the child needs besides the plan (see [`ChildArgs`]).
fn child_args(plan: &Plan, first: c_int, keep: Vec<c_int>, shim: Option<&OwnedFd>) -> ChildArgs {
    let euid = nix::unistd::geteuid();
    let unprivileged = !euid.is_root();
    // The ids a node the child makes gets, unless it enters a user namespace first.
    let userns = plan.creates(Kind::User) || plan.join_ns.iter().any(|j| j.kind == Kind::User);
    let creator = (!userns).then(|| (euid.as_raw(), nix::unistd::getegid().as_raw()));
    ChildArgs {
        fresh: plan
            .rootfs
            .as_ref()
            .map(|r| Fresh::of(r, creator))
            .unwrap_or_default(),
        first,
        keep,
        dumpable_for_maps: unprivileged && plan.creates(Kind::User),
        shim: shim.map_or(-1, |f| f.as_raw_fd()),
        shim_envp: if shim.is_some() && !plan.late_exec {
            shim_envp(&plan.process.exec_candidates, &plan.process.envp)
        } else {
            Vec::new()
        },
        hook_envps: if shim.is_some() {
            plan.start_hooks
                .iter()
                .map(|h| shim_envp(std::slice::from_ref(&h.path), &h.envp))
                .collect()
        } else {
            Vec::new()
        },
        filter: plan
            .seccomp
            .as_ref()
            .map(|sc| seccomp_with_shim(&sc.filter, shim.is_some()))
            .unwrap_or_default(),
    }
}

/// The one clone (clone3, or clone where it is missing), with every signal blocked around
/// it; the child runs `child::run` and never returns here. The pid, its pidfd, and whether
/// the clone put it in the plan's v2 cgroup.
fn clone_child(
    plan: &Plan,
    cargs: &ChildArgs,
    child_sock: &OwnedFd,
    parent_sock: &OwnedFd,
) -> Result<(i32, Option<OwnedFd>, bool), Error> {
    let mut flags: u64 = libc::CLONE_PIDFD as u64;
    if plan.join_ns.is_empty() {
        for k in [
            Kind::User,
            Kind::Mount,
            Kind::Pid,
            Kind::Net,
            Kind::Ipc,
            Kind::Uts,
        ] {
            if plan.creates(k) {
                flags |= k.flag() as u64;
            }
        }
    }
    let mut pidfd: c_int = -1;
    // SAFETY: clone_args is plain integers; all zeroes is a valid value (no flags, no
    // pointers).
    let mut args: libc::clone_args = unsafe { std::mem::zeroed() };
    args.flags = flags;
    args.pidfd = &mut pidfd as *mut c_int as u64;
    args.exit_signal = libc::SIGCHLD as u64;
    let mut in_cgroup = false;
    if let Some(cg) = &plan.cgroup_fd {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = cg.as_raw_fd() as u64;
        in_cgroup = true;
    }

    // Block every signal around the clone: the child must not run the host's handlers
    // (Python's, a server's) before it has reset them.
    use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow};
    let mut old = SigSet::empty();
    // (It fails only for a bad `how`.)
    let _ = pthread_sigmask(
        SigmaskHow::SIG_SETMASK,
        Some(&SigSet::all()),
        Some(&mut old),
    );
    // SAFETY: fork semantics; the child runs only `child::run`, which allocates nothing and
    // takes no lock (ns/tests/child_code.rs), so the locks other threads held at the clone
    // do not matter; `args.pidfd` points to `pidfd`, alive through the call.
    let mut pid = unsafe { sys::clone3(&mut args) };
    if pid < 0 && matches!(Errno::last(), Errno::ENOSYS | Errno::E2BIG) {
        in_cgroup = false;
        // SAFETY: as for clone3 above.
        pid = unsafe {
            sys::clone_legacy(
                (flags & !(CLONE_INTO_CGROUP)) as libc::c_ulong | libc::SIGCHLD as libc::c_ulong,
                &mut pidfd,
            )
        };
    }
    if pid == 0 {
        // SAFETY: this is the child of the clone above, with one thread; `run` never returns,
        // so nothing of the parent's is dropped here.
        unsafe { crate::child::run(plan, cargs, child_sock.as_raw_fd(), parent_sock.as_raw_fd()) }
    }
    let clone_errno = Errno::last();
    let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
    if pid < 0 {
        return Err(Error::Sys {
            what: "clone3",
            errno: clone_errno,
        });
    }
    let pidfd = if pidfd >= 0 {
        // SAFETY: the kernel handed us this pidfd (CLONE_PIDFD); nothing else owns it.
        Some(unsafe { OwnedFd::from_raw_fd(pidfd) })
    } else {
        None
    };
    Ok((pid as i32, pidfd, in_cgroup))
}

impl Spawning {
    /// The pid of the (first) child, in the caller's pid namespace.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Whether the spawn places the child into the plan's cgroups by itself: the clone into
    /// `cgroup_fd` (`CLONE_INTO_CGROUP`) and the child into `cgroup_tasks` (before its set-up,
    /// so by `READY` it is there); the caller moves it otherwise.
    pub fn placed_in_cgroup(&self) -> bool {
        self.in_cgroup
    }

    fn write_maps(&self) -> Result<(), Error> {
        crate::write_id_maps(
            self.pid,
            &self.plan.uid_map,
            &self.plan.gid_map,
            self.plan.deny_setgroups,
        )
    }

    fn send(&mut self, tag: u32) -> Result<(), Error> {
        let m = Msg {
            tag,
            ..Msg::default()
        };
        // SAFETY: sending a plain struct.
        let n = unsafe {
            libc::send(
                self.sock.as_raw_fd(),
                (&m as *const Msg).cast(),
                std::mem::size_of::<Msg>(),
                libc::MSG_NOSIGNAL,
            )
        };
        if n < 0 {
            // The child is gone; it may have said why before it went. A pending
            // ECONNRESET (our message unread) is reported first, once: then the queue.
            let mut m = Msg::default();
            let mut n = -1;
            for _ in 0..2 {
                // SAFETY: receiving a plain struct into this frame.
                n = unsafe {
                    libc::recv(
                        self.sock.as_raw_fd(),
                        (&mut m as *mut Msg).cast(),
                        std::mem::size_of::<Msg>(),
                        libc::MSG_DONTWAIT,
                    )
                };
                if n >= 0 || Errno::last() != Errno::ECONNRESET {
                    break;
                }
            }
            if n == std::mem::size_of::<Msg>() as isize && m.tag == msg::ERR {
                self.done = true;
                return Err(self.child_error(&m));
            }
            self.done = true;
            return Err(self.died());
        }
        Ok(())
    }

    /// Receives one message; `None` at end of file.
    fn recv(&mut self) -> Result<Option<Msg>, Error> {
        recv_msg(self.sock.as_raw_fd(), &mut self.received)
    }

    /// Sends `tag` with a memfd holding `bytes` (SCM_RIGHTS).
    fn send_memfd(&self, tag: u32, bytes: &[u8], what: &'static str) -> Result<(), Error> {
        self.send_memfd_with(tag, bytes, &[], 0, what)
    }

    /// Sends `tag` with a memfd holding `bytes`, then `extra` fds, and `a` in the message.
    fn send_memfd_with(
        &self,
        tag: u32,
        bytes: &[u8],
        extra: &[RawFd],
        a: i32,
        what: &'static str,
    ) -> Result<(), Error> {
        use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
        use std::io::Write;
        let fd = memfd_create(c"corral", MemFdCreateFlag::MFD_CLOEXEC)
            .map_err(|_| sys_err("memfd_create"))?;
        let mut f = std::fs::File::from(fd);
        f.write_all(bytes).map_err(|e| Error::Io {
            what: format!("writing {what}"),
            path: "memfd".into(),
            source: e,
        })?;
        let m = Msg {
            tag,
            a,
            ..Msg::default()
        };
        // SAFETY: a plain struct viewed as bytes for the duration of the call.
        let mb = unsafe {
            std::slice::from_raw_parts((&m as *const Msg).cast::<u8>(), std::mem::size_of::<Msg>())
        };
        let mut fds = vec![f.as_raw_fd()];
        fds.extend_from_slice(extra);
        nix::sys::socket::sendmsg::<()>(
            self.sock.as_raw_fd(),
            &[std::io::IoSlice::new(mb)],
            &[nix::sys::socket::ControlMessage::ScmRights(&fds)],
            nix::sys::socket::MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .map_err(|errno| Error::Sys { what, errno })?;
        Ok(())
    }

    /// Starts a process made with [`Plan::late_exec`]: [`Spawning::send_late`], then
    /// [`Spawning::wait_exec`].
    pub fn start_late(
        mut self,
        argv: &[std::ffi::CString],
        envp: &[std::ffi::CString],
        candidates: &[std::ffi::CString],
        stdio: [RawFd; 3],
    ) -> Result<Spawned, Error> {
        self.send_late(argv, envp, candidates, stdio)?;
        self.wait_late()
    }

    /// Sends `START` to a process made with [`Plan::late_exec`] with its program (the
    /// arguments, environment and the paths to try for `argv[0]`, see [`crate::late`]), and
    /// returns at once: the caller may do other work while the process execs, then call
    /// [`Spawning::wait_late`]. `stdio`: fds to become the program's stdin, stdout and stderr
    /// (`-1`: keep what the process was made with).
    pub fn send_late(
        &mut self,
        argv: &[std::ffi::CString],
        envp: &[std::ffi::CString],
        candidates: &[std::ffi::CString],
        stdio: [RawFd; 3],
    ) -> Result<(), Error> {
        if !self.plan.late_exec {
            return Err(Error::Plan("start_late: the plan has no late_exec".into()));
        }
        if argv.is_empty() || candidates.is_empty() {
            return Err(Error::Plan("start_late: no program".into()));
        }
        let bytes = crate::late::encode(argv, envp, candidates);
        if bytes.len() > crate::late::MAX_SIZE {
            return Err(Error::Plan(format!(
                "start_late: arguments and environment take {} bytes, more than {}",
                bytes.len(),
                crate::late::MAX_SIZE
            )));
        }
        let mut mask = 0;
        let mut extra = Vec::new();
        for (i, fd) in stdio.iter().enumerate() {
            if *fd >= 0 {
                mask |= 1 << i;
                extra.push(*fd);
            }
        }
        self.send_memfd_with(
            msg::START,
            &bytes,
            &extra,
            mask,
            "sending the program to the container process",
        )?;
        self.late_arg0 = Some(argv[0].to_string_lossy().into_owned());
        Ok(())
    }

    /// After [`Spawning::send_late`]: waits until `execve` succeeded or the process says why
    /// it failed (naming the program that was sent).
    pub fn wait_late(mut self) -> Result<Spawned, Error> {
        let arg0 = self.late_arg0.take().unwrap_or_default();
        self.wait_exec().map_err(|e| match e {
            // The plan's argv is not the program: name the one that was sent.
            Error::Child(mut c) if c.step == Step::Exec => {
                c.subject = Some(exec_subject(&arg0, c.errno));
                Error::Child(c)
            }
            e => e,
        })
    }

    /// Hands the process its state (the JSON its startContainer hooks read on stdin) in a
    /// sealed memfd (`STATE`). Call after [`Spawning::go`] when the plan has `start_hooks`:
    /// the process waits for it before it reaches its start gate.
    pub fn send_state(&mut self, state: &[u8]) -> Result<(), Error> {
        if self.plan.start_hooks.is_empty() {
            return Ok(());
        }
        self.send_memfd(
            msg::STATE,
            state,
            "sending the state to the container process",
        )
    }

    /// The seccomp notify listener, once the child sent it.
    pub fn take_seccomp_listener(&mut self) -> Option<OwnedFd> {
        self.seccomp_listener.take()
    }

    /// The pty master of a process with a terminal, once the child sent it.
    pub fn take_console(&mut self) -> Option<OwnedFd> {
        self.console.take()
    }

    /// Sets the process's CPU affinity from here (`index`: 4 initial, 5 final, for the error).
    /// The final one is set once the process is in its cgroup and waits at its gate, so that
    /// its own seccomp filter has no say.
    fn set_affinity(&self, mask: Option<&[libc::c_ulong]>, index: usize) -> Result<(), Error> {
        let Some(mask) = mask else {
            return Ok(());
        };
        // SAFETY: the mask outlives the call; the length is its size in bytes.
        let r = unsafe {
            libc::syscall(
                libc::SYS_sched_setaffinity,
                self.pid,
                std::mem::size_of_val(mask),
                mask.as_ptr(),
            )
        };
        if r < 0 {
            // The caller drops this Spawning, which kills and reaps the process.
            let errno = Errno::last();
            return Err(Error::Child(ChildError {
                step: Step::ProcessAttr,
                errno,
                subject: subject(&self.plan, Step::ProcessAttr, index, errno),
            }));
        }
        Ok(())
    }

    fn child_error(&self, m: &Msg) -> Error {
        let step = Step::from_u32(m.a as u32).unwrap_or(Step::Sync);
        let errno = Errno::from_raw(m.b);
        let subject = subject(&self.plan, step, m.c as usize, errno);
        self.reap();
        Error::Child(ChildError {
            step,
            errno,
            subject,
        })
    }

    /// The child closed the socket without a word: reap it and say how it ended.
    fn died(&self) -> Error {
        let status = self.reap();
        Error::ChildExited(status)
    }

    fn reap(&self) -> String {
        let mut st = 0;
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(self.pid, &mut st, 0) };
        if r < 0 {
            return format!("waitpid: {}", Errno::last().desc());
        }
        if libc::WIFSIGNALED(st) {
            format!("killed by signal {}", libc::WTERMSIG(st))
        } else {
            format!("exit status {}", libc::WEXITSTATUS(st))
        }
    }

    /// Lets the child run its set-up (the caller has placed it in its cgroups) and waits
    /// until it reaches the start gate.
    pub fn go(&mut self) -> Result<(), Error> {
        self.go_with(&mut |_| Ok(()))
    }

    /// [`Spawning::go`], calling `hooks(pid)` when the child pauses for them (`hook_pause`).
    /// An error from `hooks` kills the child and comes back as [`Error::Hook`].
    pub fn go_with(
        &mut self,
        hooks: &mut dyn FnMut(i32) -> Result<(), String>,
    ) -> Result<(), Error> {
        self.go_with_listener(hooks, None)
    }

    /// [`Spawning::go_with`], handing a seccomp notify listener to `listener(pid, fd)` as soon
    /// as it arrives (and the container's pid is known), so that it can answer the syscalls
    /// the child makes before its gate; without `listener` it is kept for
    /// [`Spawning::take_seccomp_listener`]. An error from `listener` kills the child and comes
    /// back as [`Error::Hook`].
    pub fn go_with_listener(
        &mut self,
        hooks: &mut dyn FnMut(i32) -> Result<(), String>,
        mut listener: Option<&mut dyn FnMut(i32, OwnedFd) -> Result<(), String>>,
    ) -> Result<(), Error> {
        self.send(msg::GO)?;
        // On the slow path with a pid namespace, PID comes from the intermediate process and
        // READY from its child: two writers, so READY can come first. Wait for both.
        let joins_pid = self.plan.join_ns.iter().any(|j| j.kind == Kind::Pid);
        let mut want_pid =
            !self.plan.join_ns.is_empty() && (self.plan.creates(Kind::Pid) || joins_pid);
        let mut ready = false;
        loop {
            if let Some(f) = listener.as_mut().filter(|_| !want_pid) {
                if let Some(fd) = self.seccomp_listener.take() {
                    f(self.pid, fd).map_err(Error::Hook)?;
                }
            }
            if ready && !want_pid {
                return self.set_affinity(self.plan.process.affinity_final.as_deref(), 5);
            }
            match self.recv()? {
                None => {
                    self.done = true;
                    return Err(self.died());
                }
                Some(m) => match m.tag {
                    msg::MAPS => {
                        self.write_maps()?;
                        self.send(msg::MAPS_OK)?;
                    }
                    msg::PID => {
                        want_pid = false;
                        // The intermediate process exits; its child is the container.
                        let mut st = 0;
                        // SAFETY: reaping our own child.
                        unsafe { libc::waitpid(self.pid, &mut st, 0) };
                        self.pid = m.a;
                        let fd = sys::pidfd_open(self.pid);
                        self.pidfd = if fd >= 0 {
                            // SAFETY: fresh pidfd owned here.
                            Some(unsafe { OwnedFd::from_raw_fd(fd) })
                        } else {
                            None
                        };
                    }
                    msg::TTY => self.console = self.received.take(),
                    msg::SECCOMP => self.seccomp_listener = self.received.take(),
                    msg::HOOKS => {
                        hooks(self.pid).map_err(Error::Hook)?;
                        self.send(msg::HOOKS_DONE)?;
                    }
                    msg::READY => ready = true,
                    msg::ERR => {
                        // The process after the second fork failed: learn its pid too (the
                        // intermediate's PID can come after), so that it is reaped here and
                        // never left a zombie in the container's pid namespace.
                        if want_pid {
                            self.await_pid();
                        }
                        self.done = true;
                        return Err(self.child_error(&m));
                    }
                    other => {
                        return Err(Error::Plan(format!(
                            "unexpected message {other} from the container process"
                        )))
                    }
                },
            }
        }
    }

    /// Reads until the intermediate process's `PID` (then reaps the intermediate and takes the
    /// pid) or the end of the socket.
    fn await_pid(&mut self) {
        while let Ok(Some(m)) = self.recv() {
            if m.tag == msg::PID {
                let mut st = 0;
                // SAFETY: reaping our own child.
                unsafe { libc::waitpid(self.pid, &mut st, 0) };
                self.pid = m.a;
                self.pidfd = None;
                return;
            }
        }
    }

    /// Whether the child waits at a FIFO gate ([`crate::Plan::gate`]); else at the socket.
    pub fn has_fifo_gate(&self) -> bool {
        self.plan.gate.is_some()
    }

    /// Opens the start gate (the socket one: for a plan with a FIFO gate, open the FIFO and
    /// call [`Spawning::wait_exec`] instead) and waits until `execve` succeeded.
    pub fn start(mut self) -> Result<Spawned, Error> {
        self.send(msg::START)?;
        self.wait_exec()
    }

    /// After the gate was opened: waits until `execve` succeeded (the socket closes) or the
    /// child reports why it failed.
    pub fn wait_exec(mut self) -> Result<Spawned, Error> {
        match self.recv()? {
            None => {}
            Some(m) if m.tag == msg::ERR => {
                self.done = true;
                return Err(self.child_error(&m));
            }
            Some(m) => {
                return Err(Error::Plan(format!(
                    "unexpected message {} from the container process",
                    m.tag
                )))
            }
        }
        self.into_spawned()
    }

    /// Leaves the child waiting at its gate and hands over its pid and pidfd: dropping the
    /// result no longer kills it (for a `create` whose `start` runs in another process).
    pub fn release(mut self) -> Result<Spawned, Error> {
        self.let_go()?;
        self.into_spawned()
    }

    /// Tells a child with a FIFO gate that it may outlive this process (`RELEASE`: it drops its
    /// parent-death signal) and waits until it did. Until then, a create that dies takes its
    /// process with it. Called by [`Spawning::release`], and before the gate is opened in this
    /// process; once only.
    pub fn let_go(&mut self) -> Result<(), Error> {
        if self.plan.gate.is_none() || self.released {
            return Ok(());
        }
        self.send(msg::RELEASE)?;
        loop {
            match self.recv()? {
                None => {
                    self.done = true;
                    return Err(self.died());
                }
                Some(m) if m.tag == msg::RELEASED => break,
                Some(m) if m.tag == msg::ERR => {
                    self.done = true;
                    return Err(self.child_error(&m));
                }
                Some(_) => {}
            }
        }
        self.released = true;
        Ok(())
    }

    /// Hands over pid and pidfd (opened now if the clone gave none); the child is no longer
    /// killed on drop.
    fn into_spawned(mut self) -> Result<Spawned, Error> {
        self.done = true;
        let pidfd = match self.pidfd.take() {
            Some(fd) => fd,
            None => {
                let fd = sys::pidfd_open(self.pid);
                if fd < 0 {
                    return Err(sys_err("pidfd_open"));
                }
                // SAFETY: fresh pidfd owned here.
                unsafe { OwnedFd::from_raw_fd(fd) }
            }
        };
        Ok(Spawned {
            pid: self.pid,
            pidfd,
        })
    }

    /// The pidfd, if the kernel gave one.
    pub fn pidfd(&self) -> Option<RawFd> {
        self.pidfd.as_ref().map(|f| f.as_raw_fd())
    }
}

impl Drop for Spawning {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        match &self.pidfd {
            Some(fd) => {
                sys::pidfd_send_signal(fd.as_raw_fd(), libc::SIGKILL);
            }
            None => {
                // The pid is our unreaped child, so it cannot have been recycled.
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(self.pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        self.reap();
    }
}

/// What a failed `execve` of `arg0` says, in runc's words, which engines match (podman:
/// "executable file not found in", "no such file or directory", "permission denied").
fn exec_subject(arg0: &str, errno: Errno) -> String {
    if errno == Errno::ENOENT && !arg0.contains('/') {
        format!("{arg0:?}: executable file not found in $PATH")
    } else {
        format!("{arg0:?}")
    }
}

fn subject(plan: &Plan, step: Step, i: usize, errno: Errno) -> Option<String> {
    let r = plan.rootfs.as_ref();
    let mount = |i: usize| {
        r.and_then(|r| r.mounts.get(i)).map(|m| {
            let src = m
                .source
                .as_ref()
                .map(|s| format!(" (source {})", s.to_string_lossy()))
                .unwrap_or_default();
            format!("{}{}", m.target.display(), src)
        })
    };
    match step {
        Step::Setns => plan
            .join_ns
            .get(i)
            .map(|j| format!("{} {}", j.kind, j.path.display())),
        Step::Unshare => Kind::ALL
            .into_iter()
            .find(|k| k.flag() as usize == i)
            .map(|k| format!("{k} namespace")),
        Step::Sysctl => plan
            .sysctls
            .get(i)
            .map(|(p, v)| format!("{} = {}", p.to_string_lossy(), v.to_string_lossy())),
        Step::Hostname => plan
            .hostname
            .as_ref()
            .map(|h| h.to_string_lossy().into_owned()),
        Step::RootBind | Step::RootOpen => r.map(|r| r.path.to_string_lossy().into_owned()),
        Step::MountPoint
        | Step::Mount
        | Step::MountRemount
        | Step::MountPropagation
        | Step::MountAttr => mount(i),
        Step::Device => r.and_then(|r| r.devices.get(i)).map(|d| d.target.display()),
        Step::Symlink => r.and_then(|r| r.symlinks.get(i)).map(|s| s.link.display()),
        Step::Mask => r.and_then(|r| r.masked.get(i)).map(|t| t.display()),
        Step::ReadonlyPath => r.and_then(|r| r.readonly_paths.get(i)).map(|t| t.display()),
        Step::Rlimit => plan
            .process
            .rlimits
            .get(i)
            .map(|l| format!("resource {}", l.resource)),
        Step::CapBounding | Step::CapAmbient => Some(format!("capability {i}")),
        Step::ProcessAttr => Some(
            [
                "personality",
                "scheduler",
                "ioPriority",
                "memoryPolicy",
                "execCPUAffinity.initial",
                "execCPUAffinity.final",
            ]
            .get(i)
            .copied()
            .unwrap_or("?")
            .to_string(),
        ),
        Step::Keyring => plan.keyring.as_ref().map(|k| {
            let what = if i == 0 {
                ""
            } else {
                " (setting its permissions)"
            };
            format!("{:?}{what}", k.name)
        }),
        Step::SecurityLabel => {
            let root = plan
                .attr_root
                .as_ref()
                .map(|r| r.to_string_lossy().into_owned())
                .unwrap_or_default();
            let n = plan.process.exec_labels.len();
            let attr = if i < n {
                plan.process.exec_labels.get(i)
            } else if i == n {
                plan.keyring.as_ref().and_then(|k| k.label.as_ref())
            } else {
                return Some(format!("(opening {root})"));
            };
            attr.map(|a| format!("{:?} ({root}/{})", a.value, a.file.to_string_lossy()))
        }
        Step::Chdir => Some(plan.process.cwd.to_string_lossy().into_owned()),
        Step::CgroupJoin => plan
            .cgroup_tasks
            .get(i)
            .map(|t| t.path.display().to_string()),
        Step::Exec => plan
            .process
            .argv
            .strings()
            .first()
            .map(|a| exec_subject(&a.to_string_lossy(), errno)),
        _ => None,
    }
}

/// Receives one message from the container process on `sock` (an fd it passed goes to
/// `received`); `None` at end of file.
fn recv_msg(sock: RawFd, received: &mut Option<OwnedFd>) -> Result<Option<Msg>, Error> {
    let mut m = Msg::default();
    let mut reset_seen = false;
    loop {
        let mut iov = libc::iovec {
            iov_base: (&mut m as *mut Msg).cast(),
            iov_len: std::mem::size_of::<Msg>(),
        };
        // Room for one SCM_RIGHTS fd (the pty master).
        let mut cbuf = [0u64; 4];
        // SAFETY: all-zero is a valid msghdr; the pointers below outlive the call.
        let mut mh: libc::msghdr = unsafe { std::mem::zeroed() };
        mh.msg_iov = &mut iov;
        mh.msg_iovlen = 1;
        mh.msg_control = cbuf.as_mut_ptr().cast();
        mh.msg_controllen = std::mem::size_of_val(&cbuf) as _;
        // SAFETY: receiving into buffers owned by this frame.
        let n = unsafe { libc::recvmsg(sock, &mut mh, libc::MSG_CMSG_CLOEXEC) };
        if n < 0 {
            match Errno::last() {
                Errno::EINTR => continue,
                // The child died with a message of ours unread. The kernel reports that
                // (once) before what the child sent last, so receive again: its error
                // message, if it sent one, is still queued; else end of file.
                Errno::ECONNRESET if !reset_seen => {
                    reset_seen = true;
                    continue;
                }
                Errno::ECONNRESET => return Ok(None),
                _ => return Err(sys_err("receiving from the container process")),
            }
        }
        if n == 0 {
            return Ok(None);
        }
        // SAFETY: walking the control messages the kernel wrote into cbuf.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&mh);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                    let fd = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const c_int);
                    *received = Some(OwnedFd::from_raw_fd(fd));
                }
                c = libc::CMSG_NXTHDR(&mh, c);
            }
        }
        return Ok(Some(m));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::msg;
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};

    fn send(fd: RawFd, m: &Msg) {
        // SAFETY: a plain struct viewed as bytes for the duration of the call.
        let b = unsafe {
            std::slice::from_raw_parts((m as *const Msg).cast::<u8>(), std::mem::size_of::<Msg>())
        };
        assert_eq!(
            nix::sys::socket::send(fd, b, nix::sys::socket::MsgFlags::empty()),
            Ok(b.len())
        );
    }

    /// A child that fails before it reads our GO sends its error and exits with GO unread:
    /// the kernel then reports ECONNRESET once, before the error still queued for us. The
    /// error must come through (it was lost as "exited during set-up" now and then).
    #[test]
    fn an_error_sent_before_exit_survives_our_unread_message() {
        let (parent, child) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .expect("socketpair");
        send(
            parent.as_raw_fd(),
            &Msg {
                tag: msg::GO,
                ..Msg::default()
            },
        );
        send(
            child.as_raw_fd(),
            &Msg {
                tag: msg::ERR,
                a: 3,
                b: 2,
                c: 0,
            },
        );
        drop(child);
        let mut received = None;
        let m = recv_msg(parent.as_raw_fd(), &mut received)
            .expect("recv")
            .expect("the child's error, not end of file");
        assert_eq!((m.tag, m.a, m.b), (msg::ERR, 3, 2));
        assert!(recv_msg(parent.as_raw_fd(), &mut received)
            .expect("recv")
            .is_none());
    }
}

//! Supervision: the runtime container made and started from the record, its output copied
//! to the log (and, in the foreground, to the caller), its exit recorded, then `--rm` or the
//! restart policy. The same code runs in a monitor (`monitor_main`) and in a foreground
//! `run` ([`Engine::run_attached`]).

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use runtime::describe::Root;
use runtime::{Container, ExitStatus};

use crate::error::{io_err, Error, Result};
use crate::files::{self, record_dir};
use crate::jsonlog::{LogWriter, Stream};
use crate::model::{Config, RestartPolicy, RunState, Status, Time};
use crate::Engine;

/// The environment variable that names the monitor's readiness fd.
pub const READY_FD_ENV: &str = "CORRAL_MONITOR_READY_FD";

/// The exit code recorded when the code is not known.
pub const UNKNOWN_EXIT: i32 = -1;

/// A started runtime container and the ends of its output this process holds.
pub(crate) struct Launched {
    pub ct: Container,
    pub out: Option<OwnedFd>,
    pub err: Option<OwnedFd>,
    pub console: Option<OwnedFd>,
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Error::Io {
        what: "pipe",
        path: "".into(),
        source: e.into(),
    })
}

fn set_nonblock(fd: RawFd) {
    // SAFETY: fcntl flag changes on an fd the caller owns.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        if fl >= 0 {
            libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
    }
}

impl Engine {
    /// Makes and starts the runtime container of `cfg` on its kept record: the image pinned
    /// by its manifest digest, the writable layer in the record dir, stdin `stdin` (else
    /// `/dev/null`), stdout and stderr pipes (or the pty) kept here.
    pub(crate) fn launch(&self, cfg: &Config, stdin: Option<RawFd>) -> Result<Launched> {
        let id = cfg.id.as_str();
        let mut d = cfg.description.clone();
        d.root = Root::Image(cfg.image_manifest.clone());
        d.terminal = cfg.tty;
        let null = std::fs::File::open("/dev/null").map_err(io_err("open", "/dev/null"))?;
        let (mut out_r, mut err_r, mut keep_w) = (None, None, Vec::new());
        let mut stdio = [stdin.unwrap_or(null.as_raw_fd()), -1, -1];
        if !cfg.tty {
            let (r1, w1) = pipe()?;
            let (r2, w2) = pipe()?;
            stdio[1] = w1.as_raw_fd();
            stdio[2] = w2.as_raw_fd();
            out_r = Some(r1);
            err_r = Some(r2);
            keep_w.push(w1);
            keep_w.push(w2);
        }
        let opts = runtime::Options {
            root: self.root.clone(),
            upper: Some(record_dir(&self.store, id)),
            stdio,
            ..runtime::Options::default()
        };
        let mut ct = corral_image::create(&self.store, &self.root, id, &d, &opts)?;
        if let Err(e) = ct.start() {
            let _ = corral_image::delete(&self.store, ct, true);
            return Err(e.into());
        }
        drop(keep_w);
        drop(null);
        // Other commands (kill, exec, pause) load it while it runs.
        ct.unlock();
        let console = ct.take_console();
        for fd in [&out_r, &err_r, &console].into_iter().flatten() {
            set_nonblock(fd.as_raw_fd());
        }
        Ok(Launched {
            ct,
            out: out_r,
            err: err_r,
            console,
        })
    }

    /// Records that the container runs, supervised by this process. Returns whether a user
    /// stopped it meanwhile (a `stop` or `rm -f` while it was being restarted): then it is
    /// to be killed at once.
    pub(crate) fn record_running(&self, id: &str, pid: i32) -> Result<bool> {
        let (me, me_start) = files::me();
        files::update_state(&self.store, id, |s| {
            s.status = Status::Running;
            s.pid = pid;
            s.monitor_pid = me;
            s.monitor_start_time = me_start;
            s.started_at = Time::now();
            s.finished_at = Time::default();
            s.exit_code = None;
            s.oom_killed = false;
            s.error.clear();
            s.stopped_by_user
        })
    }

    /// After the container's process ended: the OOM kill read, the runtime container
    /// deleted (the record kept), the exit recorded with what follows it (`--rm`, a restart
    /// by the policy: the state says `restarting` at once, never `exited` in between).
    /// Returns the exit code and what follows.
    pub(crate) fn finish(&self, cfg: &Config, ct: Container, st: ExitStatus) -> (i32, After) {
        let id = cfg.id.as_str();
        let oom = oom_killed(&ct);
        let code = match st {
            ExitStatus::Unknown => UNKNOWN_EXIT,
            s => s.code(),
        };
        let gone = corral_image::delete(&self.store, ct, true).err();
        let after = files::update_state(&self.store, id, |s| {
            s.status = Status::Exited;
            s.pid = 0;
            s.exit_code = (code != UNKNOWN_EXIT).then_some(code);
            s.finished_at = Time::now();
            s.oom_killed = oom;
            if let Some(e) = gone {
                s.error = format!("removing its runtime container: {e}");
            }
            let after = decide(cfg, s, code);
            if let After::Restart = after {
                s.status = Status::Restarting;
                s.restart_count += 1;
            }
            after
        })
        .unwrap_or(After::Done);
        (code, after)
    }

    /// Records a start that failed.
    pub(crate) fn record_failed_start(&self, id: &str, e: &Error) {
        let _ = files::update_state(&self.store, id, |s| {
            s.status = Status::Exited;
            s.pid = 0;
            s.exit_code = Some(e.exit_code());
            s.finished_at = Time::now();
            s.error = e.to_string();
        });
    }

    /// Spawns the monitor of `id` (its own session, detached from this process by a double
    /// fork, stdio `/dev/null`) and waits for its word: the container's pid, or its error.
    pub(crate) fn spawn_monitor(&self, id: &str) -> Result<i32> {
        let (r, w) = pipe()?;
        let wfd = w.as_raw_fd();
        // The monitor runs in `/` (it must not keep the caller's cwd busy), so its paths are
        // absolute.
        let abs = |p: &Path| -> PathBuf {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                std::env::current_dir().unwrap_or_default().join(p)
            }
        };
        let mut cmd = std::process::Command::new(abs(&self.exe));
        cmd.current_dir("/")
            .arg("--root")
            .arg(abs(&self.root))
            .arg("--store")
            .arg(abs(&self.store))
            .arg("_monitor")
            .arg(id)
            .env(READY_FD_ENV, "3")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        // SAFETY: only async-signal-safe calls (setsid, fork, _exit, dup2, fcntl) between
        // fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                match libc::fork() {
                    -1 => return Err(std::io::Error::last_os_error()),
                    0 => {}
                    _ => libc::_exit(0),
                }
                if wfd == 3 {
                    let fl = libc::fcntl(3, libc::F_GETFD);
                    libc::fcntl(3, libc::F_SETFD, fl & !libc::FD_CLOEXEC);
                } else if libc::dup2(wfd, 3) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // Nothing else of the caller's (a pipe someone waits on for its end) lives
                // on in the monitor. (An old kernel without close_range: the fds the caller
                // did not mark close-on-exec stay.)
                libc::syscall(libc::SYS_close_range, 4u32, u32::MAX, 0u32);
                Ok(())
            });
        }
        let spawned = cmd.spawn();
        drop(w);
        let mut child = spawned.map_err(io_err("spawning the monitor", &self.exe))?;
        let _ = child.wait();
        let mut word = String::new();
        let _ = std::fs::File::from(r).read_to_string(&mut word);
        parse_ready(&word)
    }

    /// Supervises a launched container until its process ends, its output copied to the
    /// log (and to this process's stdout and stderr with `fg`); records the exit. Returns the
    /// exit code.
    pub(crate) fn supervise(
        &self,
        cfg: &Config,
        l: Launched,
        fg: Option<&Foreground>,
    ) -> (i32, After) {
        let id = cfg.id.as_str();
        let log_path = self.log_path(id);
        let mut log = LogWriter::open(&log_path, cfg.log).ok();
        let Launched {
            mut ct,
            out,
            err,
            console,
        } = l;
        let st = pump(&mut ct, out, err, console, log.as_mut(), fg);
        if let Some(l) = log.as_mut() {
            l.flush();
        }
        self.finish(cfg, ct, st)
    }
}

/// What follows an exit of `cfg`'s container whose state is `s`: `--rm`, a restart by the
/// policy (never after a user's stop), or nothing.
fn decide(cfg: &Config, s: &RunState, code: i32) -> After {
    if cfg.auto_remove {
        return After::Remove;
    }
    if s.stopped_by_user {
        return After::Done;
    }
    let again = match cfg.restart {
        RestartPolicy::No => false,
        RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
        RestartPolicy::OnFailure { max } => code != 0 && (max == 0 || s.restart_count < max),
    };
    if again {
        After::Restart
    } else {
        After::Done
    }
}

/// What a supervisor does after an exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum After {
    Done,
    Remove,
    Restart,
}

/// What a foreground supervisor adds: the caller's terminal and signals.
pub(crate) struct Foreground {
    /// The signalfd of the forwarded signals (blocked in this process meanwhile).
    pub sfd: OwnedFd,
    /// Copy this process's stdin to the pty master (`-i` with `-t`).
    pub stdin: bool,
}

/// The OOM killer killed a process of the container: its memory cgroup's `oom_kill` count.
fn oom_killed(ct: &Container) -> bool {
    let Some(cg) = ct.cgroup() else {
        return false;
    };
    cg.dirs().iter().any(|d| {
        let f = if d.v2 {
            d.dir.join("memory.events")
        } else if d.controllers.iter().any(|c| c == "memory") {
            d.dir.join("memory.oom_control")
        } else {
            return false;
        };
        std::fs::read_to_string(f).is_ok_and(|t| {
            t.lines().any(|l| {
                l.strip_prefix("oom_kill ")
                    .and_then(|n| n.trim().parse::<u64>().ok())
                    .is_some_and(|n| n > 0)
            })
        })
    })
}

fn pollin(fd: RawFd) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

fn raw_fd(f: &Option<OwnedFd>) -> RawFd {
    f.as_ref().map(|f| f.as_raw_fd()).unwrap_or(-1)
}

fn write_all(fd: RawFd, mut buf: &[u8]) {
    while !buf.is_empty() {
        // SAFETY: writing from a live buffer to an fd open for the call.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n <= 0 {
            let e = nix::errno::Errno::last();
            if n < 0 && (e == nix::errno::Errno::EAGAIN || e == nix::errno::Errno::EINTR) {
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
            return;
        }
        buf = &buf[n as usize..];
    }
}

/// Reads what `fd` has: `Some(n)` bytes (0: nothing now), `None` at its end.
fn read_some(fd: &Option<OwnedFd>, buf: &mut [u8]) -> Option<usize> {
    let f = fd.as_ref()?;
    // SAFETY: reading into a live buffer of its length from an fd we own.
    let n = unsafe { libc::read(f.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    if n > 0 {
        return Some(n as usize);
    }
    if n < 0 {
        let e = nix::errno::Errno::last();
        if e == nix::errno::Errno::EAGAIN || e == nix::errno::Errno::EINTR {
            return Some(0);
        }
    }
    // 0: end of the pipe; EIO: the pty's other side is closed.
    None
}

/// Copies the container's output until its process ends and the output is drained.
fn pump(
    ct: &mut Container,
    mut out: Option<OwnedFd>,
    mut err: Option<OwnedFd>,
    mut console: Option<OwnedFd>,
    mut log: Option<&mut LogWriter>,
    fg: Option<&Foreground>,
) -> ExitStatus {
    let pidfd = ct.wait_fd().unwrap_or(-1);
    let raw = fg
        .filter(|_| console.is_some())
        .and_then(|_| RawTerminal::new());
    if let (Some(c), Some(_)) = (&console, fg) {
        copy_winsize(c.as_raw_fd());
    }
    let mut stdin_open = fg.is_some_and(|f| f.stdin) && console.is_some();
    let mut buf = vec![0u8; 64 << 10];
    let mut exited: Option<ExitStatus> = None;
    let mut drain_deadline: Option<Instant> = None;
    loop {
        if exited.is_none() {
            if let Ok(Some(st)) = ct.try_wait() {
                exited = Some(st);
                drain_deadline = Some(Instant::now() + Duration::from_secs(2));
            }
        }
        let open = out.is_some() || err.is_some() || console.is_some();
        if let Some(st) = exited {
            if !open || drain_deadline.is_some_and(|d| Instant::now() >= d) {
                return st;
            }
        }
        let mut fds = [
            pollin(if exited.is_none() { pidfd } else { -1 }),
            pollin(raw_fd(&out)),
            pollin(raw_fd(&err)),
            pollin(raw_fd(&console)),
            pollin(fg.map(|f| f.sfd.as_raw_fd()).unwrap_or(-1)),
            pollin(if stdin_open { 0 } else { -1 }),
        ];
        let timeout = if exited.is_some() || pidfd < 0 {
            100
        } else {
            -1
        };
        // SAFETY: polling an array of pollfds of its length (negative fds are ignored).
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if n < 0 {
            continue;
        }
        if n == 0 && exited.is_some() {
            // Nothing more came: what is left open is held by a process that outlived init.
            return exited.unwrap_or(ExitStatus::Unknown);
        }
        let ready = |i: usize| fds[i].revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0;
        for (i, stream) in [
            (1, Stream::Stdout),
            (2, Stream::Stderr),
            (3, Stream::Stdout),
        ] {
            if !ready(i) {
                continue;
            }
            let slot = match i {
                1 => &mut out,
                2 => &mut err,
                _ => &mut console,
            };
            // Read until nothing is left now, so that a hang-up is not taken for the end
            // while data waits.
            loop {
                match read_some(slot, &mut buf) {
                    Some(0) => break,
                    Some(n) => {
                        if let Some(l) = log.as_deref_mut() {
                            l.write(stream, &buf[..n]);
                        }
                        if fg.is_some() {
                            write_all(if stream == Stream::Stderr { 2 } else { 1 }, &buf[..n]);
                        }
                    }
                    None => {
                        *slot = None;
                        break;
                    }
                }
            }
        }
        if let Some(f) = fg {
            if fds[4].revents & libc::POLLIN != 0 {
                if let Some(sig) = read_signal(&f.sfd) {
                    match (sig, &console) {
                        (libc::SIGWINCH, Some(c)) => copy_winsize(c.as_raw_fd()),
                        (libc::SIGWINCH, None) => {}
                        _ => {
                            let _ = ct.signal(sig);
                        }
                    }
                }
            }
            if fds[5].revents & (libc::POLLIN | libc::POLLHUP) != 0 {
                // SAFETY: reading into a live buffer from fd 0.
                let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
                match (n, &console) {
                    (n, Some(c)) if n > 0 => write_all(c.as_raw_fd(), &buf[..n as usize]),
                    (_, Some(c)) => {
                        stdin_open = false;
                        if raw.is_none() {
                            // The end of a piped stdin: ^D to the terminal.
                            write_all(c.as_raw_fd(), &[4]);
                        }
                    }
                    _ => stdin_open = false,
                }
            }
        }
    }
}

/// The caller's terminal in raw mode while the value lives (a foreground `-t`).
struct RawTerminal(nix::sys::termios::Termios);

impl RawTerminal {
    fn new() -> Option<RawTerminal> {
        use nix::sys::termios;
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(&stdin, termios::SetArg::TCSANOW, &raw).ok()?;
        Some(RawTerminal(saved))
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = nix::sys::termios::tcsetattr(
            std::io::stdin(),
            nix::sys::termios::SetArg::TCSANOW,
            &self.0,
        );
    }
}

/// The caller's window size onto the pty master.
fn copy_winsize(master: RawFd) {
    // SAFETY: TIOCGWINSZ writes one winsize into `ws`; TIOCSWINSZ reads it; both fds are
    // open for the calls.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(master, libc::TIOCSWINSZ, &ws);
        }
    }
}

/// Signals a foreground supervisor passes on to the container.
pub const FORWARDED: [libc::c_int; 7] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
];

fn forwarded_set() -> libc::sigset_t {
    // SAFETY: all-zero is a valid sigset_t, then filled by the libc calls.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in FORWARDED {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// Blocks the forwarded signals in this thread and returns a signalfd for them.
pub(crate) fn block_signals() -> Result<OwnedFd> {
    let set = forwarded_set();
    // SAFETY: sigmask change of this thread, and a new signalfd (owned on success).
    unsafe {
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return Err(io_err("blocking signals", "")(
                std::io::Error::last_os_error(),
            ));
        }
        let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
        if fd < 0 {
            return Err(io_err("signalfd", "")(std::io::Error::last_os_error()));
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Unblocks the forwarded signals (after a foreground run).
pub(crate) fn unblock_signals() {
    let set = forwarded_set();
    // SAFETY: sigmask change of this thread.
    unsafe {
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
    }
}

fn read_signal(sfd: &OwnedFd) -> Option<i32> {
    // SAFETY: all-zero is a valid signalfd_siginfo.
    let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::signalfd_siginfo>();
    // SAFETY: reading one record into a buffer of its size.
    let r = unsafe {
        libc::read(
            sfd.as_raw_fd(),
            (&mut info as *mut libc::signalfd_siginfo).cast(),
            size,
        )
    };
    (r == size as isize).then_some(info.ssi_signo as i32)
}

/// The monitor's word on its readiness fd: `ok PID`, or `err CODE MESSAGE`.
fn parse_ready(word: &str) -> Result<i32> {
    let word = word.trim_end();
    if let Some(pid) = word.strip_prefix("ok ") {
        return pid.trim().parse().map_err(|_| Error::Start {
            code: 125,
            message: format!("the monitor said {word:?}"),
        });
    }
    if let Some(rest) = word.strip_prefix("err ") {
        let (code, message) = rest.split_once(' ').unwrap_or((rest, ""));
        return Err(Error::Start {
            code: code.parse().unwrap_or(125),
            message: message.to_string(),
        });
    }
    Err(Error::Start {
        code: 125,
        message: if word.is_empty() {
            "the monitor ended before the container started".into()
        } else {
            format!("the monitor said {word:?}")
        },
    })
}

/// Tells whoever waits on the readiness fd.
fn tell(ready: &mut Option<std::fs::File>, word: &str) {
    if let Some(mut f) = ready.take() {
        use std::io::Write;
        let _ = f.write_all(word.as_bytes());
    }
}

/// The readiness fd named by [`READY_FD_ENV`], taken (close-on-exec from here on).
fn take_ready_fd() -> Option<std::fs::File> {
    let n: RawFd = std::env::var(READY_FD_ENV).ok()?.parse().ok()?;
    std::env::remove_var(READY_FD_ENV);
    // SAFETY: F_GETFD only looks at the fd; an invalid one gives -1.
    if n < 0 || unsafe { libc::fcntl(n, libc::F_GETFD) } < 0 {
        return None;
    }
    // SAFETY: the fd was given to this process for this use only; it is taken once.
    let f = unsafe { std::fs::File::from_raw_fd(n) };
    // SAFETY: a flag change on the fd just taken.
    unsafe { libc::fcntl(n, libc::F_SETFD, libc::FD_CLOEXEC) };
    Some(f)
}

/// The monitor's life (see the crate doc). Returns its exit code.
pub fn monitor_main(store: &Path, state_root: &Path, id: &str) -> i32 {
    let mut ready = take_ready_fd();
    let e = Engine::new(store, state_root, "");
    let cfg = match e.config(id) {
        Ok(c) => c,
        Err(err) => {
            tell(&mut ready, &format!("err 125 {err}\n"));
            return 125;
        }
    };
    let mut delay = Duration::from_millis(100);
    loop {
        let l = match e.launch(&cfg, None) {
            Ok(l) => l,
            Err(err) => {
                e.record_failed_start(id, &err);
                tell(
                    &mut ready,
                    &format!("err {} {}\n", err.exit_code(), one_line(&err)),
                );
                if cfg.auto_remove {
                    let _ = e.remove_all(&cfg, true);
                }
                return 0;
            }
        };
        let pid = l.ct.pid();
        match e.record_running(id, pid) {
            Ok(true) => {
                let _ = l.ct.signal_all(libc::SIGKILL);
            }
            Ok(false) => {}
            Err(err) => tracing::warn!("recording the start of {id}: {err}"),
        }
        tell(&mut ready, &format!("ok {pid}\n"));
        let began = Instant::now();
        let (_, after) = e.supervise(&cfg, l, None);
        let ran = began.elapsed();
        match after {
            After::Done => return 0,
            After::Remove => {
                let _ = e.remove_all(&cfg, true);
                return 0;
            }
            After::Restart => {}
        }
        // docker's backoff: 100 ms doubling, back to 100 ms after 10 s of running.
        if ran >= Duration::from_secs(10) {
            delay = Duration::from_millis(100);
        }
        let until = Instant::now() + delay;
        delay = (delay * 2).min(Duration::from_secs(60));
        loop {
            let st: RunState = match files::read_state(store, id) {
                Ok(s) if record_dir(store, id).join(files::CONFIG).exists() => s,
                _ => return 0,
            };
            if st.stopped_by_user {
                let _ = files::update_state(store, id, |s| {
                    if s.status == Status::Restarting {
                        s.status = Status::Exited;
                    }
                });
                return 0;
            }
            let now = Instant::now();
            if now >= until {
                break;
            }
            std::thread::sleep((until - now).min(Duration::from_millis(50)));
        }
    }
}

fn one_line(e: &Error) -> String {
    e.to_string().replace('\n', " ")
}

//! The subcommands. Each maps arguments to `runtime` calls and formats the output the way
//! runc does, because engines parse it.

use std::io::Write as _;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use runtime::{Container, Options, State, Status};
use serde_json::json;

use crate::{Cli, Cmd, CreateArgs};

/// A failure of a command: a runtime error, or a message of the CLI's own (exit 125).
pub enum CliError {
    Runtime(runtime::Error),
    Msg(String),
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Runtime(e) => write!(f, "{e}"),
            CliError::Msg(m) => f.write_str(m),
        }
    }
}

impl CliError {
    /// corral's own failure exits 1, as runc, crun and youki do (engines read the reason from
    /// the message, not the status).
    pub fn exit_code(&self) -> i32 {
        crate::EXIT_RUNTIME_ERROR as i32
    }
}

impl From<corral_image::Error> for CliError {
    fn from(e: corral_image::Error) -> Self {
        match e {
            corral_image::Error::Runtime(e) => CliError::Runtime(e),
            corral_image::Error::Image(e) => CliError::Msg(e.to_string()),
        }
    }
}

impl From<runtime::Error> for CliError {
    fn from(e: runtime::Error) -> Self {
        CliError::Runtime(e)
    }
}

pub(crate) fn msg(s: impl Into<String>) -> CliError {
    CliError::Msg(s.into())
}

pub(crate) type R<T = i32> = Result<T, CliError>;

pub fn dispatch(cli: &Cli) -> R {
    let root_buf = cli
        .root
        .clone()
        .unwrap_or_else(runtime::state::default_root);
    let root = root_buf.as_path();
    match &cli.cmd {
        Cmd::Create { id, c } => create(root, id, c).map(|_| 0),
        Cmd::Start { id } => {
            Container::load(root, id)?.start()?;
            Ok(0)
        }
        Cmd::Run {
            id,
            c,
            img,
            detach,
            keep,
        } => match (&img.image, id) {
            (Some(_), _) => Err(msg("internal: run --image is an image command")),
            (None, Some(id)) => run(root, id, c, *detach, *keep),
            (None, None) => Err(msg("run needs a container id (or --image)")),
        },
        Cmd::State { id } => {
            let c = Container::load(root, id)?;
            print_json(&c.oci_state().to_json())?;
            Ok(0)
        }
        Cmd::Kill { id, signal, all } => {
            let sig = parse_signal(signal.as_deref().unwrap_or("TERM"))?;
            let c = Container::load(root, id)?;
            if *all {
                c.signal_all(sig)?;
            } else {
                c.signal(sig)?;
            }
            Ok(0)
        }
        Cmd::Delete { id, force } => {
            // With --force, whatever is left, however little was made; no state dir at all
            // is fine (as runc), but only after looking. A container made from an image
            // leaves its store's record too.
            let store = cli
                .store
                .clone()
                .unwrap_or_else(corral_image::default_store);
            corral_image::remove(&store, root, id, *force)?;
            Ok(0)
        }
        Cmd::List { format, quiet } => list(root, format, *quiet),
        Cmd::Ps {
            id,
            format,
            ps_args,
        } => ps(root, id, format, ps_args),
        Cmd::Exec { .. } => exec(root, &cli.cmd),
        Cmd::Pause { id } => {
            Container::load(root, id)?.pause()?;
            Ok(0)
        }
        Cmd::Resume { id } => {
            Container::load(root, id)?.resume()?;
            Ok(0)
        }
        Cmd::Update { .. } => update(root, &cli.cmd),
        Cmd::Events {
            id,
            stats,
            interval,
        } => events(root, id, *stats, interval),
        Cmd::Features => {
            print_json(&features())?;
            Ok(0)
        }
        Cmd::Spec { bundle, rootless } => spec(bundle, *rootless),
        Cmd::Image { .. } | Cmd::Commit { .. } | Cmd::Info => Err(msg(
            "internal: an image command reached the container commands",
        )),
        Cmd::Checkpoint { .. } => Err(msg("checkpoint is not supported by corral")),
        Cmd::Restore { .. } => Err(msg("restore is not supported by corral")),
    }
}

fn print_json(v: &serde_json::Value) -> R<()> {
    let s = serde_json::to_string_pretty(v).map_err(|e| msg(format!("encoding json: {e}")))?;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{s}") {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => crate::stdout_closed_unwind(),
        r => r.map_err(|e| msg(format!("writing output: {e}"))),
    }
}

pub fn parse_signal(s: &str) -> R<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        return Err(msg(format!("unknown signal {s:?}")));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .map(|s| s as i32)
        .map_err(|_| msg(format!("unknown signal {s:?}")))
}

/// A detached container with a terminal needs somewhere to send the pty master.
fn check_terminal(c: &CreateArgs) -> R<()> {
    if c.console_socket.is_none() {
        let b = runtime::Bundle::load(&c.bundle)?;
        if b.spec.process().as_ref().and_then(|p| p.terminal()) == Some(true) {
            return Err(msg(
                "process.terminal is true: a detached container needs --console-socket",
            ));
        }
    }
    Ok(())
}

fn create(root: &Path, id: &str, c: &CreateArgs) -> R<()> {
    check_terminal(c)?;
    let ct = Container::create(id, &c.bundle, &c.options(root))?;
    print_timings(c, &ct);
    write_pid_file(c, &ct)?;
    ct.detach()?;
    Ok(())
}

/// `--timings`: the spawn's phases on stderr, `corral: timings: check 0.041ms, ...`.
fn print_timings(c: &CreateArgs, ct: &Container) {
    if c.timings {
        let t = ct.timings();
        eprintln!(
            "corral: timings: {t} (total {:.3}ms)",
            t.total().as_secs_f64() * 1e3
        );
    }
}

fn write_pid_file(c: &CreateArgs, ct: &Container) -> R<()> {
    if let Some(p) = &c.pid_file {
        // Atomically, as engines poll for it.
        runtime::atomic_file::write(p, ct.pid().to_string().as_bytes(), 0o644)
            .map_err(|e| msg(format!("--pid-file {}: {e}", p.display())))?;
    }
    Ok(())
}

/// Signals that a foreground `run` passes on to the container.
const FORWARDED: [libc::c_int; 7] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
];

fn run(root: &Path, id: &str, c: &CreateArgs, detach: bool, keep: bool) -> R {
    if detach {
        check_terminal(c)?;
    }
    run_with(c, detach, keep, || {
        Ok(Container::create(id, &c.bundle, &c.options(root))?)
    })
}

/// `run` of the container `make` creates (from a bundle, or from an image): started, then
/// detached (`detach`), or waited for with signals passed on and kept (`keep`) or deleted.
pub(crate) fn run_with(
    c: &CreateArgs,
    detach: bool,
    keep: bool,
    make: impl FnOnce() -> R<Container>,
) -> R {
    if detach {
        let mut ct = make()?;
        ct.start()?;
        print_timings(c, &ct);
        write_pid_file(c, &ct)?;
        ct.detach()?;
        return Ok(0);
    }
    // Block the forwarded signals before the container exists, so that none is lost or kills
    // corral; they are read from a signalfd and passed on. The container's process starts
    // with an empty mask.
    let sfd = block_signals().map_err(|e| msg(format!("signalfd: {e}")))?;
    let mut ct = make()?;
    ct.start()?;
    print_timings(c, &ct);
    if let Err(e) = write_pid_file(c, &ct) {
        let _ = ct.delete();
        return Err(e);
    }
    let pidfd = ct.pidfd().unwrap_or(-1);
    let console = ct.take_console();
    let status = {
        let ctr = std::cell::RefCell::new(&mut ct);
        let exited = || -> R<Option<runtime::ExitStatus>> { Ok(ctr.borrow_mut().try_wait()?) };
        let signal = |s: i32| -> R<()> { Ok(ctr.borrow().signal(s)?) };
        match console {
            Some(m) => bridge(&sfd, pidfd, m, exited, signal)?,
            None => wait_forwarding(&sfd, pidfd, exited, signal)?,
        }
    };
    if keep {
        ct.detach()?;
    } else {
        ct.delete()?;
    }
    Ok(status.code())
}

/// Waits for `pidfd`'s process, passing on the forwarded signals through `signal`.
fn wait_forwarding(
    sfd: &OwnedFd,
    pidfd: libc::c_int,
    mut exited: impl FnMut() -> R<Option<runtime::ExitStatus>>,
    signal: impl Fn(i32) -> R<()>,
) -> R<runtime::ExitStatus> {
    loop {
        if let Some(st) = exited()? {
            return Ok(st);
        }
        let mut fds = [pollin(pidfd), pollin(sfd.as_raw_fd())];
        let timeout = if pidfd < 0 { 50 } else { -1 };
        // SAFETY: polling two fds (a negative fd is ignored by poll).
        if unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout) } < 0 {
            continue;
        }
        if fds[1].revents & libc::POLLIN != 0 {
            if let Some(sig) = read_signal(sfd) {
                tracing::debug!(signal = sig, "forwarding");
                if let Err(e) = signal(sig) {
                    eprintln!("corral: {e}");
                }
            }
        }
    }
}

fn exec(root: &Path, cmd: &Cmd) -> R {
    let Cmd::Exec {
        id,
        command,
        process,
        tty,
        console_socket,
        detach,
        pid_file,
        env,
        cwd,
        user,
        additional_gids,
        cap,
        no_new_privs,
        preserve_fds,
        process_label,
        apparmor,
        ignore_paused,
        cgroup,
    } = cmd
    else {
        return Err(msg("internal: not an exec"));
    };
    let place = runtime::ExecPlacement {
        ignore_paused: *ignore_paused,
        sub_cgroups: cgroup
            .iter()
            .map(|v| runtime::ExecPlacement::parse_cgroup(v))
            .collect::<Result<_, _>>()?,
    };
    let mut c = Container::load(root, id)?;
    let mut p: oci_spec::runtime::Process = match process {
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
            if command.is_empty() {
                return Err(msg("exec needs a command or --process"));
            }
            // The container's own process settings (as create accepted them), with this
            // command.
            let mut p = c.config()?.process().clone().unwrap_or_default();
            p.set_args(Some(command.clone()));
            p.set_terminal(Some(*tty));
            p
        }
    };
    if *tty {
        p.set_terminal(Some(true));
    }
    if p.terminal() == Some(true) && *detach && console_socket.is_none() {
        return Err(msg(
            "a detached exec with a terminal needs --console-socket",
        ));
    }
    if !env.is_empty() {
        let mut e = p.env().clone().unwrap_or_default();
        for kv in env {
            if !kv.contains('=') {
                return Err(msg(format!("--env {kv:?}: want KEY=VALUE")));
            }
            let key = kv.split('=').next().unwrap_or("");
            e.retain(|x| x.split('=').next() != Some(key));
            e.push(kv.clone());
        }
        p.set_env(Some(e));
    }
    if let Some(d) = cwd {
        p.set_cwd(d.into());
    }
    if let Some(u) = user {
        // A bare UID keeps the process's gid (the config's or --process's), as runc does.
        let (uid, gid) = match u.split_once(':') {
            Some((a, b)) => (a.parse::<u32>().ok(), b.parse::<u32>().ok()),
            None => (u.parse::<u32>().ok(), Some(p.user().gid())),
        };
        let (Some(uid), Some(gid)) = (uid, gid) else {
            return Err(msg(format!("--user {u:?}: want numeric uid[:gid]")));
        };
        let mut usr = p.user().clone();
        usr.set_uid(uid);
        usr.set_gid(gid);
        p.set_user(usr);
    }
    if !additional_gids.is_empty() {
        let mut usr = p.user().clone();
        usr.set_additional_gids(Some(additional_gids.clone()));
        p.set_user(usr);
    }
    if !cap.is_empty() {
        // Added to the process's own sets, or the container's when it names none.
        let init = c.config()?.process().clone().unwrap_or_default();
        let mut caps = p
            .capabilities()
            .clone()
            .or_else(|| init.capabilities().clone())
            .unwrap_or_default();
        for name in cap {
            let c: oci_spec::runtime::Capability =
                serde_json::from_value(json!(name.to_ascii_uppercase()))
                    .map_err(|_| msg(format!("--cap {name:?}: unknown capability")))?;
            for set in [
                caps.bounding().clone(),
                caps.effective().clone(),
                caps.permitted().clone(),
            ]
            .iter()
            .enumerate()
            {
                let mut s = set.1.clone().unwrap_or_default();
                s.insert(c);
                match set.0 {
                    0 => caps.set_bounding(Some(s)),
                    1 => caps.set_effective(Some(s)),
                    _ => caps.set_permitted(Some(s)),
                };
            }
        }
        p.set_capabilities(Some(caps));
    }
    if *no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if let Some(l) = process_label {
        p.set_selinux_label(Some(l.clone()));
    }
    if let Some(a) = apparmor {
        p.set_apparmor_profile(Some(a.clone()));
    }
    let opts = Options {
        preserve_fds: *preserve_fds,
        preserve_holes: crate::preserve_holes(),
        console_socket: console_socket.clone(),
        ..Options::default()
    };
    let sfd = if *detach {
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
    if let Some(path) = pid_file {
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
                bridge(&sfd, pidfd, m, || Ok(p.borrow_mut().try_wait()?), sig)?
            }
            None => wait_forwarding(&sfd, pidfd, || Ok(proc_.try_wait()?), sig)?,
        }
    };
    Ok(status.code())
}

/// Bridges the caller's terminal (or plain stdio) and the container's pty master until the
/// process exits: stdin to the master, the master to stdout, window size changes passed on,
/// other forwarded signals sent to the process. The caller's terminal is raw meanwhile.
fn bridge(
    sfd: &OwnedFd,
    pidfd: libc::c_int,
    master: OwnedFd,
    mut exited: impl FnMut() -> R<Option<runtime::ExitStatus>>,
    signal: impl Fn(i32) -> R<()>,
) -> R<runtime::ExitStatus> {
    use nix::sys::termios;
    let stdin = std::io::stdin();
    let saved = termios::tcgetattr(&stdin).ok();
    if let Some(t) = &saved {
        let mut raw = t.clone();
        termios::cfmakeraw(&mut raw);
        let _ = termios::tcsetattr(&stdin, termios::SetArg::TCSANOW, &raw);
    }
    let copy_winsize = || {
        // SAFETY: TIOCGWINSZ/TIOCSWINSZ on two fds with a winsize buffer.
        unsafe {
            let mut ws: libc::winsize = std::mem::zeroed();
            if libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) == 0 {
                libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws);
            }
        }
    };
    copy_winsize();
    // SAFETY: setting O_NONBLOCK on an owned fd.
    unsafe {
        let fl = libc::fcntl(master.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(master.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
    let write_all = |fd: libc::c_int, mut buf: &[u8]| {
        while !buf.is_empty() {
            // SAFETY: writing from a live buffer.
            let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
            if n <= 0 {
                if n < 0 && Errno::last() == Errno::EAGAIN {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                    continue;
                }
                return;
            }
            buf = &buf[n as usize..];
        }
    };
    let drain = || {
        let mut buf = [0u8; 8192];
        loop {
            // SAFETY: reading into a live buffer.
            let n = unsafe { libc::read(master.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return n == 0 || Errno::last() != Errno::EAGAIN;
            }
            write_all(1, &buf[..n as usize]);
        }
    };
    let mut stdin_open = true;
    let mut buf = [0u8; 8192];
    let status = loop {
        if let Some(st) = exited()? {
            drain();
            break st;
        }
        let mut fds = [
            pollin(pidfd),
            pollin(sfd.as_raw_fd()),
            pollin(master.as_raw_fd()),
            pollin(if stdin_open { 0 } else { -1 }),
        ];
        // SAFETY: polling fds owned here (negative ones are ignored).
        if unsafe { libc::poll(fds.as_mut_ptr(), 4, if pidfd < 0 { 50 } else { -1 }) } < 0 {
            continue;
        }
        if fds[2].revents & (libc::POLLIN | libc::POLLHUP) != 0 && drain() {
            // The slave side is closed: the process is exiting.
            if fds[0].revents == 0 && pidfd >= 0 {
                let mut p = [pollin(pidfd)];
                // SAFETY: polling one fd.
                unsafe { libc::poll(p.as_mut_ptr(), 1, 1000) };
            }
        }
        if fds[3].revents & (libc::POLLIN | libc::POLLHUP) != 0 {
            // SAFETY: reading into a live buffer.
            let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                stdin_open = false;
                if saved.is_none() {
                    write_all(master.as_raw_fd(), &[4]); // end of input: ^D
                }
            } else {
                write_all(master.as_raw_fd(), &buf[..n as usize]);
            }
        }
        if fds[1].revents & libc::POLLIN != 0 {
            match read_signal(sfd) {
                Some(libc::SIGWINCH) => copy_winsize(),
                Some(sig) => {
                    if let Err(e) = signal(sig) {
                        eprintln!("corral: {e}");
                    }
                }
                None => {}
            }
        }
    };
    if let Some(t) = &saved {
        let _ = termios::tcsetattr(&stdin, termios::SetArg::TCSANOW, t);
    }
    Ok(status)
}

/// A pollfd waiting for input on `fd` (a negative fd is ignored by poll).
fn pollin(fd: libc::c_int) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

/// Reads one signal number from a signalfd.
fn read_signal(sfd: &OwnedFd) -> Option<i32> {
    // SAFETY: all-zero is a valid signalfd_siginfo.
    let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
    // SAFETY: reading one record into a buffer of its size.
    let r = unsafe {
        libc::read(
            sfd.as_raw_fd(),
            (&mut info as *mut libc::signalfd_siginfo).cast(),
            std::mem::size_of::<libc::signalfd_siginfo>(),
        )
    };
    (r == std::mem::size_of::<libc::signalfd_siginfo>() as isize).then_some(info.ssi_signo as i32)
}

fn block_signals() -> std::io::Result<OwnedFd> {
    // SAFETY: plain sigset manipulation and signalfd creation.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in FORWARDED {
            libc::sigaddset(&mut set, s);
        }
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

fn list(root: &Path, format: &str, quiet: bool) -> R {
    let states = Container::list(root)?;
    if quiet {
        for s in &states {
            println!("{}", s.id);
        }
        return Ok(0);
    }
    match format {
        "json" => print_json(&json!(states
            .iter()
            .map(State::to_json)
            .collect::<Vec<_>>()))?,
        "table" => {
            let mut out = String::new();
            out.push_str(&format!(
                "{:<24} {:<8} {:<10} {:<40} {:<21} {}\n",
                "ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"
            ));
            for s in &states {
                out.push_str(&format!(
                    "{:<24} {:<8} {:<10} {:<40} {:<21} {}\n",
                    s.id,
                    s.pid,
                    s.status.as_str(),
                    s.bundle.display(),
                    runtime::state::rfc3339(s.created),
                    "root"
                ));
            }
            print!("{out}");
        }
        other => return Err(msg(format!("--format {other:?}: want table or json"))),
    }
    Ok(0)
}

fn ps(root: &Path, id: &str, format: &str, ps_args: &[String]) -> R {
    let c = Container::load(root, id)?;
    let pids = c.pids()?;
    match format {
        "json" => {
            print_json(&json!(pids))?;
            return Ok(0);
        }
        "table" => {}
        other => return Err(msg(format!("--format {other:?}: want table or json"))),
    }
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| msg(format!("running ps: {e}")))?;
    if !out.status.success() {
        return Err(msg(format!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| msg("ps output has no PID column"))?;
    println!("{header}");
    for l in lines {
        if let Some(p) = l
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok())
        {
            if pids.contains(&p) {
                println!("{l}");
            }
        }
    }
    Ok(0)
}

fn update(root: &Path, cmd: &Cmd) -> R {
    let Cmd::Update {
        id,
        resources,
        memory,
        memory_swap,
        memory_reservation,
        cpu_shares,
        cpu_quota,
        cpu_period,
        cpuset_cpus,
        cpuset_mems,
        pids_limit,
        blkio_weight,
    } = cmd
    else {
        return Err(msg("internal: not an update"));
    };
    let mut r = match resources {
        Some(p) => {
            let text = if p.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())
            } else {
                std::fs::read_to_string(p)
            }
            .map_err(|e| msg(format!("--resources {}: {e}", p.display())))?;
            let lr: oci_spec::runtime::LinuxResources = serde_json::from_str(&text)
                .map_err(|e| msg(format!("--resources {}: {e}", p.display())))?;
            runtime::resources::limits(&lr)?
        }
        None => cgroup_resources_default(),
    };
    macro_rules! set {
        ($field:ident, $v:expr) => {
            if let Some(v) = $v {
                r.$field = Some(v.clone());
            }
        };
    }
    set!(memory_limit, memory);
    set!(memory_swap, memory_swap);
    set!(memory_reservation, memory_reservation);
    set!(cpu_shares, cpu_shares);
    set!(cpu_quota, cpu_quota);
    set!(cpu_period, cpu_period);
    set!(cpuset_cpus, cpuset_cpus);
    set!(cpuset_mems, cpuset_mems);
    set!(pids_limit, pids_limit);
    set!(blkio_weight, blkio_weight);
    Container::load(root, id)?.update(&r)?;
    Ok(0)
}

fn cgroup_resources_default() -> runtime::CgroupResources {
    runtime::CgroupResources::default()
}

fn parse_duration(s: &str) -> R<std::time::Duration> {
    let bad = || {
        msg(format!(
            "--interval {s:?}: want a duration such as 5s, 500ms or 1m"
        ))
    };
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map(|i| s.split_at(i))
        .unwrap_or((s, "s"));
    let n: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad()),
    };
    if secs <= 0.0 {
        return Err(bad());
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

fn events(root: &Path, id: &str, once: bool, interval: &str) -> R {
    let every = parse_duration(interval)?;
    let c = Container::load(root, id)?;
    if once {
        println!("{}", c.stats_json()?);
        return Ok(0);
    }
    // OOM kills are pushed by the kernel (eventfd on v1, inotify on v2) and printed as they
    // happen; stats every interval.
    let notifier = c.oom_notifier()?;
    let mut ooms = c.stats()?.oom_kill_count.unwrap_or(0);
    // Wake when the container's process goes, too.
    // SAFETY: plain syscall; a negative result is ignored by poll below.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, c.pid(), 0) } as i32;
    let pidfd = (pidfd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(pidfd) });
    drop(c);
    let mut next = std::time::Instant::now();
    loop {
        let wait = next.saturating_duration_since(std::time::Instant::now());
        let mut p = [
            pollin(notifier.as_raw_fd()),
            pollin(pidfd.as_ref().map(|f| f.as_raw_fd()).unwrap_or(-1)),
        ];
        // SAFETY: polling owned fds (a negative one is ignored).
        let n = unsafe {
            libc::poll(
                p.as_mut_ptr(),
                2,
                wait.as_millis().min(i32::MAX as u128) as i32,
            )
        };
        let fired = n > 0 && p[0].revents & libc::POLLIN != 0;
        if fired {
            let mut buf = [0u8; 4096];
            // SAFETY: consuming the notification into a buffer we own.
            unsafe { libc::read(notifier.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        }
        // Re-load each time: the state lock must not be held while waiting.
        let c = match Container::load(root, id) {
            Ok(c) => c,
            Err(runtime::Error::NotFound(_)) => return Ok(0),
            Err(e) => return Err(e.into()),
        };
        // The oom_kill counter decides where the host has one (v2's memory.events also
        // changes for other reasons); else the notification itself.
        let oom = match c.stats().ok().and_then(|s| s.oom_kill_count) {
            Some(now) => {
                let grew = now > ooms;
                ooms = ooms.max(now);
                grew
            }
            None => fired,
        };
        if oom {
            println!("{}", json!({"type": "oom", "id": id}));
        }
        if c.status() == Status::Stopped {
            let _ = std::io::stdout().flush();
            return Ok(0);
        }
        if std::time::Instant::now() >= next {
            println!("{}", c.stats_json()?);
            next = std::time::Instant::now() + every;
        }
        let _ = std::io::stdout().flush();
    }
}

/// The OCI features document: what this build and this host really do.
pub fn features() -> serde_json::Value {
    let caps: Vec<&str> = runtime::names::CAPS.to_vec();
    let hier = cgroup::Hierarchy::detect().ok();
    let security = runtime::Security::detect();
    let (v1, v2) = match hier.as_ref().map(|h| h.version()) {
        Some(cgroup::Version::V1) => (true, false),
        Some(cgroup::Version::V2) => (false, true),
        Some(cgroup::Version::Hybrid) => (true, true),
        None => (false, false),
    };
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": runtime::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": [
            "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "mand",
            "noatime", "nodev", "nodiratime", "noexec", "nomand", "norelatime", "nostrictatime",
            "idmap", "nosuid", "private", "rbind", "relatime", "remount", "ridmap", "ro", "rprivate", "rshared",
            "rslave", "runbindable", "rw", "shared", "slave", "strictatime", "suid", "sync",
            "unbindable"
        ],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": caps,
            "cgroup": {"v1": v1, "v2": v2, "systemd": false, "systemdUser": false, "rdma": false},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                            "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE",
                            "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                              "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_X32", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64"],
                "knownFlags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                               "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
                "supportedFlags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                                   "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
            },
            "apparmor": {"enabled": security.apparmor},
            "selinux": {"enabled": security.selinux},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": true}}
        },
        "annotations": {
            "org.corral.version": env!("CARGO_PKG_VERSION")
        }
    })
}

fn spec(bundle: &Path, rootless: bool) -> R {
    let path = bundle.join("config.json");
    if path.exists() {
        return Err(msg(format!("{}: already exists", path.display())));
    }
    let v = if rootless {
        runtime::spec::rootless_spec(
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        )
    } else {
        runtime::default_spec()
    };
    let text = serde_json::to_string_pretty(&v).map_err(|e| msg(format!("encoding spec: {e}")))?;
    std::fs::File::create(&path)
        .and_then(|mut f| writeln!(f, "{text}"))
        .map_err(|e| msg(format!("{}: {e}", path.display())))?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(runtime::state::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            runtime::state::rfc3339(1_700_000_000),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(runtime::state::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn signals() {
        assert_eq!(parse_signal("KILL").ok(), Some(9));
        assert_eq!(parse_signal("sigterm").ok(), Some(15));
        assert_eq!(parse_signal("10").ok(), Some(10));
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("0").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("5s").ok(),
            Some(std::time::Duration::from_secs(5))
        );
        assert_eq!(
            parse_duration("250ms").ok(),
            Some(std::time::Duration::from_millis(250))
        );
        assert!(parse_duration("x").is_err());
    }
}

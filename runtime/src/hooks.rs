//! OCI hooks: prestart, createRuntime, poststart and poststop in the runtime's namespaces,
//! createContainer and startContainer in the container's; each with the state JSON on stdin,
//! its args, env and timeout. A failing hook fails its step, with its output in the error (poststop hooks
//! only warn).
#![deny(clippy::undocumented_unsafe_blocks)]

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::{Hook, Hooks, Spec};

use crate::{Error, Result};

/// The hook names of the runtime-spec, in the order of a container's life (`prestart` is
/// deprecated but still run); the OCI features document lists them.
pub const HOOKS: &[&str] = &[
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// Checks, before anything is made, that the hooks' programs exist (startContainer's resolve
/// in the container, so they are checked when they run). Their form (absolute paths,
/// timeouts) is [`crate::validate::spec`]'s.
pub fn check(spec: &Spec) -> Result<()> {
    let Some(h) = spec.hooks() else {
        return Ok(());
    };
    for (name, v) in all(h) {
        for (i, hook) in v.iter().enumerate() {
            let p = hook.path();
            if name != "startContainer" && !p.exists() {
                return Err(Error::Config {
                    field: format!("hooks.{name}[{i}].path"),
                    reason: format!("{} does not exist", p.display()),
                });
            }
        }
    }
    Ok(())
}

/// Each kind of hook with its list, named as [`HOOKS`] names them.
pub(crate) fn all(h: &Hooks) -> Vec<(&'static str, Vec<Hook>)> {
    #[allow(deprecated)]
    let prestart = h.prestart().clone().unwrap_or_default();
    vec![
        ("prestart", prestart),
        (
            "createRuntime",
            h.create_runtime().clone().unwrap_or_default(),
        ),
        (
            "createContainer",
            h.create_container().clone().unwrap_or_default(),
        ),
        (
            "startContainer",
            h.start_container().clone().unwrap_or_default(),
        ),
        ("poststart", h.poststart().clone().unwrap_or_default()),
        ("poststop", h.poststop().clone().unwrap_or_default()),
    ]
}

/// The hooks of one kind (`prestart`, `createRuntime`, `createContainer`, `startContainer`,
/// `poststart`, `poststop`).
pub fn of(spec: &Spec, kind: &str) -> Vec<Hook> {
    spec.hooks()
        .as_ref()
        .map(|h| {
            all(h)
                .into_iter()
                .filter(|(n, _)| *n == kind)
                .flat_map(|(_, v)| v)
                .collect()
        })
        .unwrap_or_default()
}

/// Runs `hooks` in order; stops at the first failure and returns it as a message naming the
/// hook, its status and its output.
pub fn run(kind: &str, hooks: &[Hook], state_json: &str) -> std::result::Result<(), String> {
    for (i, h) in hooks.iter().enumerate() {
        run_one(h, state_json)
            .map_err(|e| format!("hooks.{kind}[{i}] {}: {e}", h.path().display()))?;
    }
    Ok(())
}

/// Runs every hook of `hooks` in order, whatever happens to the others, and returns the
/// failures (worded as [`run`] words them). The spec for poststart and poststop: a failing hook
/// is a warning, and the remaining hooks and the lifecycle go on as if it had succeeded.
pub fn run_all(kind: &str, hooks: &[Hook], state_json: &str) -> Vec<String> {
    hooks
        .iter()
        .enumerate()
        .filter_map(|(i, h)| {
            run_one(h, state_json)
                .err()
                .map(|e| format!("hooks.{kind}[{i}] {}: {e}", h.path().display()))
        })
        .collect()
}

fn run_one(h: &Hook, state_json: &str) -> std::result::Result<(), String> {
    let mut cmd = Command::new(h.path());
    let args = h.args().clone().unwrap_or_default();
    if let Some((arg0, rest)) = args.split_first() {
        cmd.arg0(arg0).args(rest);
    }
    cmd.env_clear();
    for kv in h.env().clone().unwrap_or_default() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    let out = tempfile::tempfile().map_err(|e| format!("output file: {e}"))?;
    cmd.stdin(Stdio::piped())
        .stdout(out.try_clone().map_err(|e| e.to_string())?)
        .stderr(out.try_clone().map_err(|e| e.to_string())?);
    let mut child = cmd.spawn().map_err(|e| format!("cannot run: {e}"))?;
    let stdin = child.stdin.take().map(OwnedFd::from);
    let status = feed_and_wait(stdin, state_json.as_bytes(), h.timeout(), || {
        child.try_wait().map_err(|e| format!("waiting: {e}"))
    })?;
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(timed_out(h));
    };
    if status.success() {
        return Ok(());
    }
    let mut text = String::new();
    let mut f = out;
    let _ = std::io::Seek::rewind(&mut f);
    let _ = f.take(4096).read_to_string(&mut text);
    let text = text.trim().replace('\n', " | ");
    Err(format!("{status}: {text}"))
}

/// Writes `data` to a hook's stdin `w` while waiting for the hook to exit (`exited`, whose
/// result comes back), or until its timeout (seconds; none or 0: no limit) has passed (`None`:
/// the caller kills it). The deadline
/// starts before the first byte is written and the writes never block, so a hook that does not
/// read a state larger than the pipe's buffer is still killed in time. Stdin is closed once
/// all is written, or when the hook exits or closes its end.
fn feed_and_wait<S>(
    mut w: Option<OwnedFd>,
    data: &[u8],
    timeout: Option<i64>,
    mut exited: impl FnMut() -> std::result::Result<Option<S>, String>,
) -> std::result::Result<Option<S>, String> {
    let deadline = timeout
        .filter(|t| *t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    if let Some(fd) = &w {
        use nix::fcntl::{fcntl, FcntlArg, OFlag};
        if let Ok(fl) = fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL) {
            let _ = fcntl(
                fd.as_raw_fd(),
                FcntlArg::F_SETFL(OFlag::from_bits_retain(fl) | OFlag::O_NONBLOCK),
            );
        }
    }
    let mut off = 0;
    loop {
        if let Some(fd) = &w {
            while off < data.len() {
                let rest = &data[off..];
                match nix::unistd::write(fd, rest) {
                    Ok(n) => off += n,
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(nix::errno::Errno::EAGAIN) => break,
                    // EPIPE: the hook closed its stdin; a hook need not read it.
                    Err(_) => off = data.len(),
                }
            }
            if off >= data.len() {
                w = None;
            }
        }
        if let Some(st) = exited()? {
            return Ok(Some(st));
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            return Ok(None);
        }
        match &w {
            Some(fd) => {
                // Until the pipe has room, or 2 ms pass (the hook may have exited).
                let mut p = libc::pollfd {
                    fd: fd.as_raw_fd(),
                    events: libc::POLLOUT,
                    revents: 0,
                };
                // SAFETY: `p` is one live pollfd (count 1) on the pipe `w` holds open; poll
                // only writes its `revents`.
                unsafe { libc::poll(&mut p, 1, 2) };
            }
            None => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

fn timed_out(h: &Hook) -> String {
    format!("timed out after {} s", h.timeout().unwrap_or(0))
}

/// The state JSON a hook reads on stdin. A stopped container's has no pid (as runc's): its
/// init was reaped, and a hook acting on the number could hit a recycled host pid.
pub fn state_json(st: &crate::State, status: &str) -> String {
    let mut v = serde_json::json!({
        "ociVersion": st.oci_version,
        "id": st.id,
        "status": status,
        "bundle": st.bundle,
        "annotations": st.annotations,
    });
    if status != "stopped" && st.pid > 0 {
        v["pid"] = st.pid.into();
    }
    v.to_string()
}

/// Runs `hooks` in the namespaces of process `pid` (the container's): createContainer while
/// the container's root is not changed yet (so paths resolve in the runtime's filesystem),
/// startContainer after (so they resolve in the container's). Each gets the state on stdin.
pub fn run_in_namespaces(
    kind: &str,
    hooks: &[Hook],
    pid: i32,
    state_json: &str,
) -> std::result::Result<(), String> {
    for (i, h) in hooks.iter().enumerate() {
        run_in_one(h, pid, state_json)
            .map_err(|e| format!("hooks.{kind}[{i}] {}: {e}", h.path().display()))?;
    }
    Ok(())
}

fn run_in_one(h: &Hook, pid: i32, state_json: &str) -> std::result::Result<(), String> {
    let mut args = h.args().clone().unwrap_or_default();
    if args.is_empty() {
        args.push(h.path().to_string_lossy().into_owned());
    }
    let mut p = oci_spec::runtime::Process::default();
    p.set_args(Some(args));
    p.set_env(Some(h.env().clone().unwrap_or_default()));
    p.set_cwd("/".into());
    p.set_capabilities(None);
    p.set_no_new_privileges(Some(false));
    p.set_rlimits(None);
    p.set_terminal(Some(false));
    // stdin: the state; stdout and stderr: a file kept for the error message.
    let (r, w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
    let out = tempfile::tempfile().map_err(|e| format!("output file: {e}"))?;
    let mut plan = crate::prepare::exec_plan(
        pid,
        &p,
        None,
        0,
        [r.as_raw_fd(), out.as_raw_fd(), out.as_raw_fd()],
    )
    .map_err(|e| e.to_string())?;
    plan.process.exec_candidates =
        vec![
            std::ffi::CString::new(h.path().to_string_lossy().as_bytes())
                .map_err(|_| "path contains a NUL byte".to_string())?,
        ];
    let mut sp = ns::spawn(plan).map_err(|e| e.to_string())?;
    sp.go().map_err(|e| e.to_string())?;
    let spawned = sp.start().map_err(|e| e.to_string())?;
    drop(r);
    let pid = spawned.pid;
    let st = feed_and_wait(Some(w), state_json.as_bytes(), h.timeout(), || {
        let mut st = 0;
        // SAFETY: `st` is a live c_int the kernel writes the status into; `pid` is the
        // hook, our own child, reaped only here.
        let n = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) };
        if n < 0 {
            return Err(format!("waiting: {}", nix::errno::Errno::last()));
        }
        Ok((n == pid).then_some(st))
    })?;
    let Some(st) = st else {
        let mut st = 0;
        // Our own child, not reaped yet: its pid cannot have been reused.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        // SAFETY: as the waitpid above.
        unsafe { libc::waitpid(pid, &mut st, 0) };
        return Err(timed_out(h));
    };
    if libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0 {
        return Ok(());
    }
    let mut text = String::new();
    let mut f = out;
    let _ = std::io::Seek::rewind(&mut f);
    let _ = f.take(4096).read_to_string(&mut text);
    let status = if libc::WIFEXITED(st) {
        format!("exit status: {}", libc::WEXITSTATUS(st))
    } else {
        format!("killed by signal {}", libc::WTERMSIG(st))
    };
    Err(format!("{status}: {}", text.trim().replace('\n', " | ")))
}

/// The startContainer hooks as the container's process runs them itself, between its start
/// gate and `execve` (runc's way): with the process's credentials, capabilities, seccomp filter
/// and cgroup, so that a hook binary from the image gets nothing the container would not. Its
/// path resolves in the container's root.
pub fn start_plan(spec: &Spec) -> Result<Vec<ns::Hook>> {
    of(spec, "startContainer")
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let field = format!("hooks.startContainer[{i}]");
            let bad = |e: ns::Error| Error::Config {
                field: field.clone(),
                reason: e.to_string(),
            };
            let path = h.path().to_string_lossy().into_owned();
            let mut args = h.args().clone().unwrap_or_default();
            if args.is_empty() {
                args.push(path.clone());
            }
            Ok(ns::Hook {
                path: std::ffi::CString::new(path).map_err(|_| Error::Config {
                    field: format!("{field}.path"),
                    reason: "contains a NUL byte".into(),
                })?,
                argv: ns::CStringArray::new("args", args).map_err(bad)?,
                // Without an `env` of its own the hook gets the container process's
                // environment. The spec gives `env` no default; this hook is started by the
                // container's process, past its gate, and a program started without an
                // explicit environment inherits its parent's (runc runs it from its init
                // with the process env, youki likewise, and suites expect it). With an
                // `env`, exactly that.
                envp: ns::CStringArray::new(
                    "env",
                    h.env().clone().unwrap_or_else(|| {
                        spec.process()
                            .as_ref()
                            .and_then(|p| p.env().clone())
                            .unwrap_or_default()
                    }),
                )
                .map_err(bad)?,
                timeout_secs: h.timeout().filter(|t| *t > 0).unwrap_or(0) as u32,
            })
        })
        .collect()
}

/// The message of a startContainer hook that failed, worded as [`run`] words the others.
pub fn start_failure(spec: &Spec, f: &ns::HookFailure) -> String {
    let path = of(spec, "startContainer")
        .get(f.index)
        .map(|h| h.path().display().to_string())
        .unwrap_or_default();
    let status = match &f.end {
        ns::HookEnd::Exited(c) => format!("exit status: {c}"),
        ns::HookEnd::Signaled(s) => format!("killed by signal {s}"),
        ns::HookEnd::TimedOut(t) => format!("timed out after {t} s"),
        ns::HookEnd::NotStarted(e) => format!("cannot run: {}", e.desc()),
    };
    format!(
        "hooks.startContainer[{}] {path}: {status}: {}",
        f.index,
        f.output.trim().replace('\n', " | ")
    )
}

//! OCI hooks: run in the runtime's namespaces with the state JSON on stdin, their args, env
//! and timeout. A failing hook fails its step, with its output in the error (poststop hooks
//! only warn).

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::{Hook, Hooks, Spec};

use crate::{Error, Result};

/// Hooks corral runs, and hooks it refuses (they must run inside the container's
/// namespaces, which corral does not do yet).
pub fn check(spec: &Spec) -> Result<()> {
    let Some(h) = spec.hooks() else {
        return Ok(());
    };
    for (name, v) in [
        ("createContainer", h.create_container()),
        ("startContainer", h.start_container()),
    ] {
        if v.as_ref().is_some_and(|v| !v.is_empty()) {
            return Err(Error::Config {
                field: format!("hooks.{name}"),
                reason: "hooks in the container's namespaces are not supported yet".into(),
            });
        }
    }
    for (name, v) in all(h) {
        for (i, hook) in v.iter().enumerate() {
            let p = hook.path();
            if !p.is_absolute() {
                return Err(Error::Config {
                    field: format!("hooks.{name}[{i}].path"),
                    reason: format!("{} is not an absolute path", p.display()),
                });
            }
            if !p.exists() {
                return Err(Error::Config {
                    field: format!("hooks.{name}[{i}].path"),
                    reason: format!("{} does not exist", p.display()),
                });
            }
        }
    }
    Ok(())
}

fn all(h: &Hooks) -> Vec<(&'static str, Vec<Hook>)> {
    #[allow(deprecated)]
    let prestart = h.prestart().clone().unwrap_or_default();
    vec![
        ("prestart", prestart),
        (
            "createRuntime",
            h.create_runtime().clone().unwrap_or_default(),
        ),
        ("poststart", h.poststart().clone().unwrap_or_default()),
        ("poststop", h.poststop().clone().unwrap_or_default()),
    ]
}

/// The hooks of one kind (`prestart`, `createRuntime`, `poststart`, `poststop`).
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
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine.
        let _ = stdin.write_all(state_json.as_bytes());
    }
    let deadline = h
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) => {}
            Err(e) => return Err(format!("waiting: {e}")),
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("timed out after {} s", h.timeout().unwrap_or(0)));
        }
        std::thread::sleep(Duration::from_millis(2));
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

/// The state JSON a hook reads on stdin.
pub fn state_json(st: &crate::State, status: &str) -> String {
    serde_json::json!({
        "ociVersion": st.oci_version,
        "id": st.id,
        "status": status,
        "pid": st.pid,
        "bundle": st.bundle,
        "annotations": st.annotations,
    })
    .to_string()
}

//! `linux.seccomp` to a compiled BPF program, cached on disk by the policy's hash so that a
//! repeated spawn of the same policy pays no compile.

use std::path::Path;

use oci_spec::runtime::LinuxSeccomp;
use seccomp::{Action, Arch, ArgCmp, Flag, Op, Policy, Program, Rule};
use sha2::{Digest, Sha256};

use crate::names::serde_name;
use crate::{Error, Result};

fn cfg(field: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::Config {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Converts the spec's seccomp section to a policy.
pub fn policy(s: &LinuxSeccomp) -> Result<Policy> {
    let f = "linux.seccomp";
    let action = |field: &str, a: &dyn erased::Named, errno: Option<u32>| -> Result<Action> {
        let name = a.name();
        if name == "SCMP_ACT_NOTIFY" && s.listener_path().is_none() {
            return Err(cfg(
                field,
                "SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath",
            ));
        }
        Action::parse(&name, errno).map_err(|e| cfg(field, e.to_string()))
    };
    let default_action = action(
        &format!("{f}.defaultAction"),
        &erased::N(s.default_action()),
        s.default_errno_ret(),
    )?;
    let mut architectures = Vec::new();
    for (i, a) in s
        .architectures()
        .clone()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let name = serde_name(a);
        match name.parse::<Arch>() {
            Ok(a) => architectures.push(a),
            // Architectures this build has no table for cannot run here anyway.
            Err(_) => tracing::debug!("{f}.architectures[{i}]: {name} skipped"),
        }
    }
    let mut flags = Vec::new();
    for (i, fl) in s.flags().clone().unwrap_or_default().iter().enumerate() {
        let name = serde_name(fl);
        flags.push(
            name.parse::<Flag>()
                .map_err(|e| cfg(format!("{f}.flags[{i}]"), e.to_string()))?,
        );
    }
    let mut rules = Vec::new();
    for (i, sc) in s.syscalls().clone().unwrap_or_default().iter().enumerate() {
        let field = format!("{f}.syscalls[{i}]");
        let act = action(
            &format!("{field}.action"),
            &erased::N(sc.action()),
            sc.errno_ret(),
        )?;
        let mut args = Vec::new();
        for (j, a) in sc.args().clone().unwrap_or_default().iter().enumerate() {
            let op: Op = serde_name(&a.op())
                .parse()
                .map_err(|e: seccomp::Error| cfg(format!("{field}.args[{j}].op"), e.to_string()))?;
            args.push(ArgCmp {
                index: a.index() as u32,
                value: a.value(),
                value_two: a.value_two().unwrap_or(0),
                op,
            });
        }
        rules.push(Rule {
            names: sc.names().clone(),
            action: act,
            args,
        });
    }
    Ok(Policy {
        default_action,
        architectures,
        rules,
        flags,
    })
}

mod erased {
    /// Anything serde names (the oci-spec enums).
    pub trait Named {
        fn name(&self) -> String;
    }
    pub struct N<T>(pub T);
    impl<T: serde::Serialize> Named for N<T> {
        fn name(&self) -> String {
            crate::names::serde_name(&self.0)
        }
    }
}

/// Compiles the spec's seccomp section, through the cache dir `cache` (created if missing).
pub fn compile(s: &LinuxSeccomp, cache: &Path) -> Result<Program> {
    let json = serde_json::to_vec(s).map_err(|e| cfg("linux.seccomp", e.to_string()))?;
    let mut h = Sha256::new();
    h.update(b"corral-seccomp-v1\0");
    h.update(&json);
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let file = cache.join(format!("{hex}.bpf"));
    if let Ok(bytes) = std::fs::read(&file) {
        if let Ok(p) = Program::from_bytes(&bytes) {
            return Ok(p);
        }
    }
    let prog = seccomp::compile(&policy(s)?).map_err(|e| cfg("linux.seccomp", e.to_string()))?;
    for w in &prog.warnings {
        tracing::debug!("linux.seccomp: {w}");
    }
    // Best effort: a cache that cannot be written only costs a compile next time.
    if std::fs::create_dir_all(cache).is_ok() {
        let tmp = cache.join(format!(".{hex}.{}", std::process::id()));
        if std::fs::write(&tmp, prog.to_bytes()).is_ok() {
            let _ = std::fs::rename(&tmp, &file);
        }
    }
    Ok(prog)
}

/// The program as the kernel's `sock_filter` array, for the spawn plan.
pub fn to_plan(p: &Program) -> ns::Seccomp {
    ns::Seccomp {
        filter: p
            .instructions()
            .iter()
            .map(|i| libc::sock_filter {
                code: i.code,
                jt: i.jt,
                jf: i.jf,
                k: i.k,
            })
            .collect(),
        flags: p.flags(),
    }
}

/// Hands the seccomp notify listener of process `pid` to the spec's listener socket: the
/// container process state as JSON (the container's state with `status`) plus the fd
/// (SCM_RIGHTS), as the runtime spec describes.
pub fn send_listener(
    s: &LinuxSeccomp,
    st: &crate::State,
    pid: i32,
    status: &str,
    fd: std::os::fd::OwnedFd,
) -> Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    use std::os::fd::AsRawFd;
    let Some(path) = s.listener_path() else {
        return Ok(());
    };
    let io = |e: std::io::Error| Error::Io {
        id: st.id.clone(),
        what: "connecting to the seccomp listener".into(),
        path: path.clone(),
        source: e,
    };
    let stream = std::os::unix::net::UnixStream::connect(path).map_err(io)?;
    let msg = serde_json::json!({
        "ociVersion": st.oci_version,
        "fds": ["seccompFd"],
        "pid": pid,
        "metadata": s.listener_metadata().clone().unwrap_or_default(),
        "state": {
            "ociVersion": st.oci_version,
            "id": st.id,
            "status": status,
            "pid": st.pid,
            "bundle": st.bundle,
            "annotations": st.annotations,
        }
    })
    .to_string();
    let iov = [std::io::IoSlice::new(msg.as_bytes())];
    let fds = [fd.as_raw_fd()];
    sendmsg::<()>(
        stream.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| Error::Sys {
        id: st.id.clone(),
        what: format!("sending the seccomp listener to {}", path.display()),
        errno: e,
    })?;
    Ok(())
}

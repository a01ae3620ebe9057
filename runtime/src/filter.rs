//! `linux.seccomp` to a compiled BPF program, cached on disk by the policy's hash so that a
//! repeated spawn of the same policy pays no compile.
#![deny(clippy::undocumented_unsafe_blocks)]

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Arch as OciArch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};
use seccomp::{Action, Arch, ArgCmp, Flag, Op, Policy, Program, Rule};
use sha2::{Digest, Sha256};

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
    let action = |field: &str, a: LinuxSeccompAction, errno: Option<u32>| -> Result<Action> {
        let name = action_name(a);
        if name == "SCMP_ACT_NOTIFY" && s.listener_path().is_none() {
            return Err(cfg(
                field,
                "SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath",
            ));
        }
        Action::parse(name, errno).map_err(|e| cfg(field, e.to_string()))
    };
    let default_action = action(
        &format!("{f}.defaultAction"),
        s.default_action(),
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
        match arch(*a) {
            Some(a) => architectures.push(a),
            // Architectures this build has no table for cannot run here anyway.
            None => tracing::debug!("{f}.architectures[{i}]: {a} skipped"),
        }
    }
    let mut flags = Vec::new();
    for fl in s.flags().iter().flatten() {
        flags.push(match fl {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => Flag::Log,
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => Flag::Tsync,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => Flag::SpecAllow,
        });
    }
    let mut rules = Vec::new();
    for (i, sc) in s.syscalls().clone().unwrap_or_default().iter().enumerate() {
        let field = format!("{f}.syscalls[{i}]");
        let act = action(&format!("{field}.action"), sc.action(), sc.errno_ret())?;
        let mut args = Vec::new();
        for a in sc.args().iter().flatten() {
            let op = match a.op() {
                LinuxSeccompOperator::ScmpCmpNe => Op::Ne,
                LinuxSeccompOperator::ScmpCmpLt => Op::Lt,
                LinuxSeccompOperator::ScmpCmpLe => Op::Le,
                LinuxSeccompOperator::ScmpCmpEq => Op::Eq,
                LinuxSeccompOperator::ScmpCmpGe => Op::Ge,
                LinuxSeccompOperator::ScmpCmpGt => Op::Gt,
                LinuxSeccompOperator::ScmpCmpMaskedEq => Op::MaskedEq,
            };
            args.push(ArgCmp {
                index: a.index() as u32,
                value: a.value(),
                value_two: a.value_two().unwrap_or(0),
                op,
            });
        }
        // Several comparisons of one argument: one rule per comparison (any of them
        // matches), as runc builds them (oci-runtime-tool's default profile allows
        // `personality` for 0, 8, 0x20000 and 0xffffffff that way); otherwise all must hold.
        let repeated = args
            .iter()
            .enumerate()
            .any(|(k, a)| args[..k].iter().any(|b| b.index == a.index));
        if repeated {
            for a in args {
                rules.push(Rule {
                    names: sc.names().clone(),
                    action: act,
                    args: vec![a],
                });
            }
        } else {
            rules.push(Rule {
                names: sc.names().clone(),
                action: act,
                args,
            });
        }
    }
    Ok(Policy {
        default_action,
        architectures,
        rules,
        flags,
    })
}

/// The OCI name of an action, as [`Action::parse`] takes it.
fn action_name(a: LinuxSeccompAction) -> &'static str {
    match a {
        LinuxSeccompAction::ScmpActKill => "SCMP_ACT_KILL",
        LinuxSeccompAction::ScmpActKillThread => "SCMP_ACT_KILL_THREAD",
        LinuxSeccompAction::ScmpActKillProcess => "SCMP_ACT_KILL_PROCESS",
        LinuxSeccompAction::ScmpActTrap => "SCMP_ACT_TRAP",
        LinuxSeccompAction::ScmpActErrno => "SCMP_ACT_ERRNO",
        LinuxSeccompAction::ScmpActNotify => "SCMP_ACT_NOTIFY",
        LinuxSeccompAction::ScmpActTrace => "SCMP_ACT_TRACE",
        LinuxSeccompAction::ScmpActLog => "SCMP_ACT_LOG",
        LinuxSeccompAction::ScmpActAllow => "SCMP_ACT_ALLOW",
    }
}

/// The seccomp crate's architecture of an OCI one (`None`: no table for it in this build).
fn arch(a: OciArch) -> Option<Arch> {
    Some(match a {
        OciArch::ScmpArchX86_64 => Arch::X86_64,
        OciArch::ScmpArchX86 => Arch::X86,
        OciArch::ScmpArchX32 => Arch::X32,
        OciArch::ScmpArchAarch64 => Arch::Aarch64,
        OciArch::ScmpArchArm => Arch::Arm,
        _ => return None,
    })
}

/// Cache file: magic, format version, sha256 of the policy encoding it was compiled from,
/// sha256 of the program bytes, then the program bytes ([`Program::to_bytes`]).
const CACHE_MAGIC: &[u8; 8] = b"CRLSCC\0\0";
const CACHE_VERSION: u32 = 1;
const CACHE_HEADER: usize = 8 + 4 + 32 + 32;

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// The key of a policy: its JSON encoding, and the compiler's version (a compiler change
/// must not reuse programs an older one made).
fn policy_hash(s: &LinuxSeccomp) -> Result<[u8; 32]> {
    let json = serde_json::to_vec(s).map_err(|e| cfg("linux.seccomp", e.to_string()))?;
    Ok(sha256(&[
        // v3: the ENOSYS stub for syscalls newer than the profile, and rules with several
        // comparisons of one argument split as runc splits them.
        b"corral-seccomp-v3\0",
        env!("CARGO_PKG_VERSION").as_bytes(),
        b"\0",
        &json,
    ]))
}

/// Opens the cache dir without following a symlink, and only if it is the caller's and
/// writable by nobody else (see [`crate::state::check_private_dir`]).
fn open_cache_dir(cache: &Path, create: bool) -> Option<std::fs::File> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if create {
        let _ = std::fs::DirBuilder::new().mode(0o700).create(cache);
    }
    let dir = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(cache)
        .ok()?;
    let proc_path = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    match crate::state::check_private_dir(&proc_path.join(".")) {
        Ok(()) => Some(dir),
        Err(e) => {
            tracing::warn!("seccomp cache {} not used: {e}", cache.display());
            None
        }
    }
}

/// Reads and verifies a cached program: a regular file of the caller's, writable by nobody
/// else, opened without following a symlink, whose header matches `key` and whose program
/// bytes match their hash and deserialise.
fn load_cached(dir: &std::fs::File, name: &str, key: &[u8; 32]) -> Option<Program> {
    use std::io::Read;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let path = format!("/proc/self/fd/{}/{name}", dir.as_raw_fd());
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .ok()?;
    let m = f.metadata().ok()?;
    let euid = nix::unistd::geteuid().as_raw();
    if !m.is_file() || m.uid() != euid || m.mode() & 0o022 != 0 {
        tracing::warn!(
            "seccomp cache file {name} not used: owner {} mode {:o}",
            m.uid(),
            m.mode()
        );
        return None;
    }
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).ok()?;
    if bytes.len() < CACHE_HEADER
        || &bytes[..8] != CACHE_MAGIC
        || bytes[8..12] != CACHE_VERSION.to_le_bytes()
        || &bytes[12..44] != key
        || bytes[44..76] != sha256(&[&bytes[CACHE_HEADER..]])
    {
        tracing::debug!("seccomp cache file {name} does not verify: recompiling");
        return None;
    }
    Program::from_bytes(&bytes[CACHE_HEADER..]).ok()
}

/// Writes a cache file atomically (a 0600 temporary file renamed over it).
fn store_cached(dir: &std::fs::File, name: &str, key: &[u8; 32], prog: &Program) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let body = prog.to_bytes();
    let mut data = Vec::with_capacity(CACHE_HEADER + body.len());
    data.extend_from_slice(CACHE_MAGIC);
    data.extend_from_slice(&CACHE_VERSION.to_le_bytes());
    data.extend_from_slice(key);
    data.extend_from_slice(&sha256(&[&body]));
    data.extend_from_slice(&body);
    let d = format!("/proc/self/fd/{}", dir.as_raw_fd());
    let tmp = format!("{d}/.{name}.{}", std::process::id());
    let ok = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .and_then(|mut f| f.write_all(&data))
        .and_then(|()| std::fs::rename(&tmp, format!("{d}/{name}")));
    if ok.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

/// Compiles the spec's seccomp section, through the cache dir `cache` (created 0700 if
/// missing). A cache dir or file that is not the caller's, is writable by others, is a
/// symlink, or does not verify against the policy is ignored (and not written into).
pub fn compile(s: &LinuxSeccomp, cache: &Path) -> Result<Program> {
    let key = policy_hash(s)?;
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let name = format!("{hex}.bpf");
    let dir = open_cache_dir(cache, false);
    if let Some(p) = dir.as_ref().and_then(|d| load_cached(d, &name, &key)) {
        return Ok(p);
    }
    let prog = seccomp::compile(&policy(s)?).map_err(|e| cfg("linux.seccomp", e.to_string()))?;
    for w in &prog.warnings {
        tracing::debug!("linux.seccomp: {w}");
    }
    // Best effort: a cache that cannot be written only costs a compile next time.
    if let Some(d) = dir.or_else(|| open_cache_dir(cache, true)) {
        store_cached(&d, &name, &key, &prog);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Two comparisons of one argument in one rule: either matches (runc's split), so
    /// oci-runtime-tool's `personality` rule allows each of its values.
    #[test]
    fn comparisons_of_one_argument_are_alternatives() {
        let s: LinuxSeccomp = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [
                {"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}
            ]}, {"names": ["mmap"], "action": "SCMP_ACT_ALLOW", "args": [
                {"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                {"index": 1, "value": 8, "op": "SCMP_CMP_EQ"}
            ]}]
        }))
        .unwrap();
        let prog = seccomp::compile(&policy(&s).unwrap()).unwrap();
        let arch = seccomp::Arch::X86_64;
        let nr = |n| arch.syscall_number(n).unwrap();
        let run = |n, a0, a1| prog.evaluate(arch.audit_arch(), nr(n), &[a0, a1, 0, 0, 0, 0]);
        const ALLOW: u32 = 0x7fff_0000;
        assert_eq!(run("personality", 0, 0), ALLOW);
        assert_eq!(run("personality", 8, 0), ALLOW);
        assert_ne!(run("personality", 5, 0), ALLOW);
        // Comparisons of different arguments must all hold.
        assert_eq!(run("mmap", 0, 8), ALLOW);
        assert_ne!(run("mmap", 0, 7), ALLOW);
        assert_ne!(run("mmap", 1, 8), ALLOW);
    }
}

//! linux.seccomp honoured: filters installed in the container (and its exec'd processes),
//! big default-deny policies, the compile cache, and clear errors.

mod common;

use common::{assert_fails, stdout, Env};
use serde_json::{json, Value};

#[test]
fn errno_rule_denies_one_syscall() {
    let env = Env::new("sc-errno");
    let mut spec = env.spec(&["/bin/sh", "-c", "mkdir /tmp/x; echo rc=$?"]);
    spec["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    });
    for nnp in [true, false] {
        spec["process"]["noNewPrivileges"] = json!(nnp);
        let out = env.run(&spec);
        common::assert_exit(&out, 0);
        assert_eq!(stdout(&out), "rc=1\n", "nnp={nnp}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("Operation not permitted"));
    }
    // The probe sees seccomp mode 2 (filter).
    let r = env.report(spec.clone(), &[]);
    assert_eq!(r["seccomp"], 2);
    // The compiled filter was cached under the state root.
    let cache = env.state_root().join(".seccomp-cache");
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 1);
}

#[test]
fn default_deny_with_a_large_allow_list() {
    let env = Env::new("sc-deny");
    let allowed: Vec<&str> = seccomp::Arch::X86_64
        .syscall_names()
        .filter(|n| *n != "mkdir" && *n != "mkdirat")
        .collect();
    assert!(allowed.len() > 300);
    let mut spec = env.spec(&["/bin/sh", "-c", "echo hi; mkdir /tmp/x || echo denied"]);
    spec["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 38,
        "syscalls": [{"names": allowed, "action": "SCMP_ACT_ALLOW"}]
    });
    let out = env.run(&spec);
    common::assert_exit(&out, 0);
    assert_eq!(stdout(&out), "hi\ndenied\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Function not implemented"));
}

#[test]
fn kill_action_kills_the_process() {
    let env = Env::new("sc-kill");
    let mut spec = env.spec(&["/bin/sh", "-c", "mkdir /tmp/x"]);
    spec["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL_PROCESS"}]
    });
    // Killed by SIGSYS (31): 128 + 31.
    assert_eq!(env.run(&spec).status.code(), Some(159));
}

#[test]
fn bad_seccomp_sections_are_refused() {
    let env = Env::new("sc-bad");
    let mut spec = env.spec(&["/bin/true"]);
    spec["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 9, "value": 1, "op": "SCMP_CMP_EQ"}]}]
    });
    assert_fails(&env.run(&spec), 1, &["linux.seccomp", "getpid", "9"]);
    spec["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_NOPE"});
    assert_fails(&env.run(&spec), 1, &["SCMP_ACT_NOPE"]);
    let _: Value = spec;
}

#[repr(C)]
#[derive(Default)]
struct Notif {
    id: u64,
    pid: u32,
    flags: u32,
    nr: i32,
    arch: u32,
    ip: u64,
    args: [u64; 6],
}

#[repr(C)]
#[derive(Default)]
struct NotifResp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

#[test]
fn notify_listener_gets_the_fd_and_answers() {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let env = Env::new("sc-notify");
    let sock = env.state_root().join("listener.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    // The listener: read the state and the fd, then answer every notified mkdir with
    // "success" without doing it.
    let t = std::thread::spawn(move || {
        use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
        let (s, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 8192];
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let (n, fd) = {
            let msg =
                recvmsg::<()>(s.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::empty()).unwrap();
            let mut fd = None;
            for c in msg.cmsgs().unwrap() {
                if let ControlMessageOwned::ScmRights(fds) = c {
                    // SAFETY: received fd, owned here.
                    fd = Some(unsafe { OwnedFd::from_raw_fd(fds[0]) });
                }
            }
            (msg.bytes, fd.expect("listener fd"))
        };
        let state: Value = serde_json::from_slice(&buf[..n]).unwrap();
        let mut answered = 0;
        loop {
            let mut req = Notif::default();
            // SAFETY: SECCOMP_IOCTL_NOTIF_RECV fills a seccomp_notif.
            if unsafe { libc::ioctl(fd.as_raw_fd(), 0xc0502100u64 as _, &mut req) } != 0 {
                break;
            }
            let mut resp = NotifResp {
                id: req.id,
                val: 0,
                error: 0,
                flags: 0,
            };
            // SAFETY: SECCOMP_IOCTL_NOTIF_SEND reads a seccomp_notif_resp.
            unsafe { libc::ioctl(fd.as_raw_fd(), 0xc0182101u64 as _, &mut resp) };
            answered += 1;
        }
        (state, answered)
    });
    let mut spec = env.spec(&[
        "/bin/sh",
        "-c",
        "mkdir /tmp/x && echo mkdir-ok; test -d /tmp/x || echo absent",
    ]);
    spec["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock,
        "listenerMetadata": "meta-42",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    });
    let out = env.run(&spec);
    common::assert_exit(&out, 0);
    assert_eq!(stdout(&out), "mkdir-ok\nabsent\n");
    let (state, answered) = t.join().unwrap();
    assert_eq!(answered, 1);
    assert_eq!(state["fds"], json!(["seccompFd"]));
    assert_eq!(state["metadata"], "meta-42");
    assert_eq!(state["state"]["id"], json!(env.id));
    assert!(state["pid"].as_i64().unwrap() > 0);
}

/// A profile older than the syscalls the runtime itself uses (every x86_64 syscall before
/// Linux 5.1 allowed: no pidfd_*, openat2, close_range, clone3, faccessat2), denying the rest
/// with EPERM, as `oci-runtime-tool generate` and older engines write them. The container and
/// its exec'd processes run with a cwd other than `/`, with and without noNewPrivileges:
/// nothing of corral's own runs under the container's filter but the final execve.
#[test]
fn a_profile_older_than_the_runtimes_syscalls_runs_run_and_exec() {
    use common::{cli, cli_ok, reap};
    let env = Env::new("sc-old");
    let arch = seccomp::Arch::X86_64;
    let allowed: Vec<&str> = arch
        .syscall_names()
        .filter(|n| arch.syscall_number(n).is_some_and(|nr| nr < 424))
        .collect();
    assert!(!allowed.contains(&"openat2") && !allowed.contains(&"close_range"));
    let mut spec = env.spec(&["/bin/sh", "-c", "pwd; echo ok"]);
    spec["process"]["cwd"] = json!("/tmp");
    spec["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": allowed, "action": "SCMP_ACT_ALLOW"}]
    });
    let bundle = env.bundle().to_string_lossy().into_owned();
    for nnp in [true, false] {
        spec["process"]["noNewPrivileges"] = json!(nnp);
        spec["process"]["args"] = json!(["/bin/sh", "-c", "pwd; echo ok"]);
        let out = env.run(&spec);
        common::assert_exit(&out, 0);
        assert_eq!(stdout(&out), "/tmp\nok\n", "run, nnp={nnp}");

        spec["process"]["args"] = json!(["/bin/sleep", "1000"]);
        env.rootfs.write_config(&spec);
        cli_ok(&env, &["run", "-d", "-b", &bundle, &env.id]);
        let out = cli(
            &env,
            &["exec", "--cwd", "/etc", &env.id, "/bin/sh", "-c", "pwd"],
        );
        common::assert_exit(&out, 0);
        assert_eq!(stdout(&out), "/etc\n", "exec, nnp={nnp}");
        let st: Value = serde_json::from_str(&cli_ok(&env, &["state", &env.id])).unwrap();
        cli_ok(&env, &["kill", &env.id, "KILL"]);
        reap(st["pid"].as_i64().unwrap());
        cli_ok(&env, &["delete", "--force", &env.id]);
    }
}

fn hex_caps(v: &Value) -> u64 {
    u64::from_str_radix(v.as_str().unwrap_or_default(), 16).unwrap()
}

/// Without noNewPrivileges the process keeps CAP_SYS_ADMIN until it installs its filter
/// right before `execve`: the program (as root, as another user, and with no capabilities in
/// the config at all) gets exactly its configured sets, never that one.
#[test]
fn the_late_filter_leaves_no_extra_capability() {
    const CAP_SYS_ADMIN: u64 = 1 << 21;
    // CAP_AUDIT_WRITE, CAP_KILL, CAP_NET_BIND_SERVICE: the default spec's.
    const DEFAULT: u64 = (1 << 29) | (1 << 5) | (1 << 10);
    let env = Env::new("sc-caps");
    let mut spec = env.spec(&["/probe", "report"]);
    spec["process"]["noNewPrivileges"] = json!(false);
    spec["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]
    });
    let r = env.report(spec.clone(), &[]);
    assert_eq!(r["seccomp"], 2);
    for set in ["eff", "prm", "bnd"] {
        assert_eq!(
            hex_caps(&r["caps"][set]),
            DEFAULT,
            "root {set}: {}",
            r["caps"]
        );
    }
    spec["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    let r = env.report(spec.clone(), &[]);
    assert_eq!(r["uid"], 1000);
    for set in ["eff", "prm", "inh", "amb"] {
        assert_eq!(
            hex_caps(&r["caps"][set]),
            0,
            "uid 1000 {set}: {}",
            r["caps"]
        );
    }
    // No capabilities in the config: the runtime's own set, then what execve gives a
    // non-root user (nothing), as before the filter moved.
    spec["process"]
        .as_object_mut()
        .unwrap()
        .remove("capabilities");
    let r = env.report(spec.clone(), &[]);
    assert_eq!(r["seccomp"], 2);
    assert_eq!(
        hex_caps(&r["caps"]["eff"]) & CAP_SYS_ADMIN,
        0,
        "{}",
        r["caps"]
    );
    assert_eq!(hex_caps(&r["caps"]["prm"]), 0, "{}", r["caps"]);
}

/// startContainer hooks run under the container's filter and capabilities (each installs the
/// filter right before its own `execve`), with an old profile too.
#[test]
fn start_container_hooks_run_under_the_filter() {
    let env = Env::new("sc-hook");
    let arch = seccomp::Arch::X86_64;
    let allowed: Vec<&str> = arch
        .syscall_names()
        .filter(|n| arch.syscall_number(n).is_some_and(|nr| nr < 424))
        .collect();
    let mut spec = env.spec(&["/bin/true"]);
    spec["root"]["readonly"] = json!(false);
    spec["process"]["cwd"] = json!("/tmp");
    spec["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": allowed, "action": "SCMP_ACT_ALLOW"}]
    });
    spec["hooks"] = json!({"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c",
        "grep -E '^(Seccomp|CapEff):' /proc/self/status > /tmp/hook.out"]}]});
    for nnp in [true, false] {
        spec["process"]["noNewPrivileges"] = json!(nnp);
        let out = env.run(&spec);
        common::assert_exit(&out, 0);
        let got = std::fs::read_to_string(env.rootfs.rootfs().join("tmp/hook.out")).unwrap();
        // The default spec's capabilities: CAP_AUDIT_WRITE, CAP_KILL, CAP_NET_BIND_SERVICE.
        assert_eq!(got, "CapEff:\t0000000020000420\nSeccomp:\t2\n", "nnp={nnp}");
    }
}

//! Defects of issue 7 (section 4), each shown by a test that failed before its fix: exec's
//! `--user UID` gid, sysctls for a namespace the container does not own, hook timeouts with a
//! large state, a seccomp listener during create, the pid given to poststop hooks, and the
//! stray cleanup warning of a failed run.

mod common;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{assert_exit, assert_fails, Env, Holder};
use serde_json::{json, Value};

use common::cli_within as corral_within;

fn corral(env: &Env, args: &[&str]) -> Output {
    corral_within(env, args, Duration::from_secs(120))
}

fn ok(env: &Env, args: &[&str]) -> String {
    let out = corral(env, args);
    assert_exit(&out, 0);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Reaps a container's init process that was reparented to this test process.
fn reap(pid: i64) {
    let mut st = 0;
    // SAFETY: waiting for one specific pid.
    unsafe { libc::waitpid(pid as i32, &mut st, 0) };
}

// 1. `exec --user UID` keeps the process's configured gid (runc: only `UID:GID` sets it).
#[test]
fn exec_user_without_gid_keeps_the_configured_gid() {
    let env = Env::new("exec-uid");
    let mut spec = env.spec(&["/probe", "sleep", "inf"]);
    spec["process"]["user"] = json!({"uid": 0, "gid": 1234});
    env.rootfs.write_config(&spec);
    let bundle = env.bundle().to_string_lossy().into_owned();
    ok(&env, &["run", "-d", "-b", &bundle, &env.id]);
    let st: Value = serde_json::from_str(&ok(&env, &["state", &env.id])).unwrap();
    let pid = st["pid"].as_i64().unwrap();

    let r: Value = serde_json::from_str(&ok(
        &env,
        &["exec", "-u", "1000", &env.id, "/probe", "report"],
    ))
    .unwrap();
    assert_eq!(r["uid"], 1000);
    assert_eq!(r["gid"], 1234, "{r}");
    // UID:GID still sets both.
    let r: Value = serde_json::from_str(&ok(
        &env,
        &["exec", "-u", "1000:77", &env.id, "/probe", "report"],
    ))
    .unwrap();
    assert_eq!(
        (r["uid"].clone(), r["gid"].clone()),
        (json!(1000), json!(77))
    );

    ok(&env, &["delete", "--force", &env.id]);
    reap(pid);
}

/// Restores a host sysctl on drop (should a buggy corral change it).
struct SysctlGuard(&'static str, String);

impl SysctlGuard {
    fn new(path: &'static str) -> SysctlGuard {
        SysctlGuard(path, std::fs::read_to_string(path).unwrap())
    }
}

impl Drop for SysctlGuard {
    fn drop(&mut self) {
        if std::fs::read_to_string(self.0).unwrap_or_default() != self.1 {
            let _ = std::fs::write(self.0, &self.1);
        }
    }
}

// 2. Sysctls of a namespace the container shares with the host are refused at create.
#[test]
fn sysctls_of_the_hosts_namespaces_are_refused() {
    const FWD: &str = "/proc/sys/net/ipv4/ip_forward";
    let guard = SysctlGuard::new(FWD);
    let other = if guard.1.trim() == "1" { "0" } else { "1" };
    let env = Env::new("sysctl-host");
    let namespaces = |net: Option<&str>| {
        let mut v = vec![json!({"type": "pid"}), json!({"type": "mount"})];
        if let Some(p) = net {
            v.push(json!({"type": "network", "path": p}));
        }
        v
    };
    // The host's network namespace joined by path (the test's, and corral's own: this
    // sandbox may not open /proc/1/ns), and not listed at all.
    let mine = format!("/proc/{}/ns/net", std::process::id());
    for net in [Some(mine.as_str()), Some("/proc/self/ns/net"), None] {
        let mut spec = env.spec(&["/bin/true"]);
        spec.as_object_mut().unwrap().remove("hostname");
        spec["linux"]["namespaces"] = json!(namespaces(net));
        spec["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": other});
        let out = env.run(&spec);
        assert_fails(
            &out,
            1,
            &["linux.sysctl.net.ipv4.ip_forward", "network namespace"],
        );
        assert_eq!(
            std::fs::read_to_string(FWD).unwrap(),
            guard.1,
            "the host's {FWD} changed ({net:?})"
        );
    }
    // The same for the ipc and uts sysctls.
    let _shm = SysctlGuard::new("/proc/sys/kernel/shmmni");
    let _dom = SysctlGuard::new("/proc/sys/kernel/domainname");
    for (kind, key, value) in [
        ("ipc", "kernel.shmmni", "1000"),
        ("uts", "kernel.domainname", "x"),
    ] {
        let mut spec = env.spec(&["/bin/true"]);
        spec.as_object_mut().unwrap().remove("hostname");
        let mut ns = namespaces(None);
        ns.push(json!({"type": kind, "path": format!("/proc/{}/ns/{kind}", std::process::id())}));
        spec["linux"]["namespaces"] = json!(ns);
        spec["linux"]["sysctl"] = json!({ key: value });
        let out = env.run(&spec);
        assert_fails(
            &out,
            1,
            &[&format!("linux.sysctl.{key}"), &format!("{kind} namespace")],
        );
    }
}

// 2b. A joined namespace that is not the host's (a pod's, as podman's pods share one) takes the
// sysctls, as runc allows.
#[test]
fn sysctls_apply_in_a_joined_namespace_that_is_not_the_hosts() {
    const FWD: &str = "/proc/sys/net/ipv4/ip_forward";
    let guard = SysctlGuard::new(FWD);
    let env = Env::new("sysctl-pod");
    let holder = Holder::spawn(Command::new("unshare").args(["--net", "sleep", "600"]));
    let ns = format!("/proc/{}/ns/net", holder.pid());
    // Wait until the holder is in its own network namespace.
    let start = Instant::now();
    while std::fs::read_link(&ns).ok() == std::fs::read_link("/proc/self/ns/net").ok() {
        assert!(start.elapsed() < Duration::from_secs(10), "unshare --net");
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut spec = env.spec(&[]);
    spec.as_object_mut().unwrap().remove("hostname");
    spec["linux"]["namespaces"] = json!([
        {"type": "pid"}, {"type": "mount"}, {"type": "network", "path": ns}
    ]);
    spec["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    let r = env.report(spec, &[FWD]);
    assert_eq!(r["files"][FWD]["content"], "1\n", "{r}");
    assert_eq!(std::fs::read_to_string(FWD).unwrap(), guard.1);
}

/// An annotation making the state JSON far larger than a pipe buffer (64 KiB).
fn big_annotations() -> Value {
    json!({"big": "x".repeat(200 * 1024)})
}

// 3. A hook's timeout holds when the state does not fit in a pipe and the hook never reads it.
#[test]
fn hook_timeouts_hold_with_a_large_state() {
    let env = Env::new("hook-timeout");
    let busybox = env.rootfs.rootfs().join("bin/busybox");
    let sleeper = |path: &str| json!({"path": path, "args": ["sleep", "600"], "timeout": 1});
    let host_bb = busybox.to_string_lossy().into_owned();
    for (kind, path) in [
        ("createRuntime", host_bb.as_str()),
        ("createContainer", host_bb.as_str()),
        ("startContainer", "/bin/busybox"),
        ("poststart", host_bb.as_str()),
    ] {
        let mut spec = env.spec(&["/bin/true"]);
        spec["annotations"] = big_annotations();
        spec["hooks"] = json!({ kind: [sleeper(path)] });
        env.rootfs.write_config(&spec);
        let bundle = env.bundle().to_string_lossy().into_owned();
        let t = Instant::now();
        let out = corral_within(
            &env,
            &["run", "-b", &bundle, &env.id],
            Duration::from_secs(20),
        );
        // A startContainer hook's failure is a warning and the container's status 127 (its
        // program never ran), as in runc; the others fail the run.
        let code = if kind == "startContainer" { 127 } else { 1 };
        assert_fails(
            &out,
            code,
            &[&format!("hooks.{kind}[0]"), "timed out after 1 s"],
        );
        eprintln!("{kind}: failed after {:?}", t.elapsed());
    }
}

// 4. A notify filter on a syscall the process makes before its start gate: the listener gets
// its fd during create, and a listener that cannot be reached fails the create at once.
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

const SECCOMP_IOCTL_NOTIF_RECV: u64 = 0xc0502100;
const SECCOMP_IOCTL_NOTIF_SEND: u64 = 0xc0182101;
const SECCOMP_USER_NOTIF_FLAG_CONTINUE: u32 = 1;

/// Receives the listener message: the JSON and the fd.
fn recv_listener(s: &std::os::unix::net::UnixStream) -> (Value, OwnedFd) {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut buf = vec![0u8; 1 << 20];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(s.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::empty()).unwrap();
    let mut fd = None;
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: received fd, owned here.
            fd = Some(unsafe { OwnedFd::from_raw_fd(fds[0]) });
        }
    }
    let n = msg.bytes;
    (
        serde_json::from_slice(&buf[..n]).unwrap(),
        fd.expect("listener fd"),
    )
}

fn notify_spec(env: &Env, sock: &std::path::Path, args: &[&str]) -> Value {
    let mut spec = env.spec(args);
    // mkdir: the container's programs' (nothing of corral's own runs under the filter: a
    // notify filter goes in before the gate only so that its listener reaches create).
    spec["root"]["readonly"] = json!(false);
    spec["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock,
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    });
    spec
}

/// Lets every notified syscall go on as if unfiltered, until no process uses the filter;
/// returns how many it answered.
fn continue_all(fd: OwnedFd) -> usize {
    let mut answered = 0;
    loop {
        let mut p = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: polling one fd.
        if unsafe { libc::poll(&mut p, 1, 60_000) } <= 0 || p.revents & libc::POLLIN == 0 {
            return answered;
        }
        let mut req = Notif::default();
        // SAFETY: SECCOMP_IOCTL_NOTIF_RECV fills a zeroed seccomp_notif.
        if unsafe { libc::ioctl(fd.as_raw_fd(), SECCOMP_IOCTL_NOTIF_RECV as _, &mut req) } != 0 {
            continue;
        }
        let mut resp = NotifResp {
            id: req.id,
            flags: SECCOMP_USER_NOTIF_FLAG_CONTINUE,
            ..NotifResp::default()
        };
        // SAFETY: SECCOMP_IOCTL_NOTIF_SEND reads a seccomp_notif_resp.
        unsafe { libc::ioctl(fd.as_raw_fd(), SECCOMP_IOCTL_NOTIF_SEND as _, &mut resp) };
        answered += 1;
    }
}

#[test]
fn a_listener_answers_notifications_during_create() {
    let env = Env::new("sc-early");
    let sock = env.state_root().join("listener.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let t = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        let (state, fd) = recv_listener(&s);
        (state, continue_all(fd))
    });
    let spec = notify_spec(
        &env,
        &sock,
        &["/bin/sh", "-c", "mkdir /tmp/n-early && echo started"],
    );
    env.rootfs.write_config(&spec);
    let bundle = env.bundle().to_string_lossy().into_owned();
    let out = corral_within(
        &env,
        &["run", "-b", &bundle, &env.id],
        Duration::from_secs(30),
    );
    assert_exit(&out, 0);
    assert_eq!(common::stdout(&out), "started\n");
    let (state, answered) = t.join().unwrap();
    assert!(answered >= 1, "no notification answered");
    assert_eq!(state["fds"], json!(["seccompFd"]));
    assert_eq!(state["state"]["status"], "creating");
    assert_eq!(state["state"]["id"], json!(env.id));
    assert!(state["pid"].as_i64().unwrap() > 0, "{state}");
    assert_eq!(state["pid"], state["state"]["pid"]);
}

#[test]
fn an_exec_sends_its_listener_too() {
    let env = Env::new("sc-exec");
    let sock = env.state_root().join("listener.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    // Two listeners come: the init's (create) and the exec'd process's.
    let t = std::thread::spawn(move || {
        let mut got = Vec::new();
        for _ in 0..2 {
            let (s, _) = listener.accept().unwrap();
            let (state, fd) = recv_listener(&s);
            got.push((state, std::thread::spawn(move || continue_all(fd))));
        }
        got
    });
    let spec = notify_spec(
        &env,
        &sock,
        &["/bin/sh", "-c", "mkdir /tmp/n-init; exec sleep 1000"],
    );
    env.rootfs.write_config(&spec);
    let bundle = env.bundle().to_string_lossy().into_owned();
    ok(&env, &["run", "-d", "-b", &bundle, &env.id]);
    let st: Value = serde_json::from_str(&ok(&env, &["state", &env.id])).unwrap();
    let pid = st["pid"].as_i64().unwrap();
    let out = corral_within(
        &env,
        &[
            "exec",
            &env.id,
            "/bin/sh",
            "-c",
            "mkdir /tmp/n-exec && echo in-exec",
        ],
        Duration::from_secs(30),
    );
    assert_exit(&out, 0);
    assert_eq!(common::stdout(&out), "in-exec\n");
    ok(&env, &["delete", "--force", &env.id]);
    reap(pid);
    let got = t.join().unwrap();
    let mut answered = 0;
    let states: Vec<Value> = got
        .into_iter()
        .map(|(s, h)| {
            answered += h.join().unwrap();
            s
        })
        .collect();
    assert!(answered >= 2, "{answered} notifications answered");
    assert_eq!(states[0]["state"]["status"], "creating");
    assert_eq!(states[1]["state"]["status"], "running");
    assert_eq!(states[1]["state"]["pid"], pid);
    assert_ne!(states[1]["pid"], pid);
}

#[test]
fn a_listener_that_closes_the_fd_fails_the_notified_syscall() {
    let env = Env::new("sc-close");
    let sock = env.state_root().join("listener.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let t = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        let (state, fd) = recv_listener(&s);
        drop(fd);
        state
    });
    let spec = notify_spec(
        &env,
        &sock,
        &["/bin/sh", "-c", "mkdir /tmp/n-closed 2>&1 || exit 9"],
    );
    env.rootfs.write_config(&spec);
    let bundle = env.bundle().to_string_lossy().into_owned();
    let out = corral_within(
        &env,
        &["run", "-b", &bundle, &env.id],
        Duration::from_secs(30),
    );
    // Without the listener, mkdir fails with ENOSYS.
    assert_exit(&out, 9);
    assert!(
        common::stdout(&out).contains("Function not implemented"),
        "{out:?}"
    );
    assert_eq!(t.join().unwrap()["state"]["status"], "creating");
}

#[test]
fn an_unreachable_listener_fails_the_create_at_once() {
    let env = Env::new("sc-nolisten");
    let sock = env.state_root().join("nobody-listens.sock");
    let spec = notify_spec(&env, &sock, &["/bin/true"]);
    env.rootfs.write_config(&spec);
    let bundle = env.bundle().to_string_lossy().into_owned();
    let out = corral_within(
        &env,
        &["create", "-b", &bundle, &env.id],
        Duration::from_secs(30),
    );
    assert_fails(&out, 1, &["seccomp listener", &sock.to_string_lossy()]);
    // Nothing is left: the Env's drop checks state dir, cgroups, mounts and processes.
    let out = corral(&env, &["state", &env.id]);
    assert_ne!(out.status.code(), Some(0));
}

// 5. Poststop hooks get no pid (the init was reaped: its pid may be reused); `state` of a
// stopped container says pid 0, as runc's does.
#[test]
fn poststop_hooks_get_no_pid() {
    let env = Env::new("poststop-pid");
    let out_dir = env.state_root().join("hook-out");
    std::fs::create_dir(&out_dir).unwrap();
    let mut spec = env.spec(&["/bin/true"]);
    spec["hooks"] = json!({
        "poststop": [{"path": "/bin/sh", "args": ["sh", "-c",
            format!("cat > {}/poststop.json", out_dir.display())]}]
    });
    env.rootfs.write_config(&spec);
    let bundle = env.bundle().to_string_lossy().into_owned();
    ok(&env, &["run", "--keep", "-b", &bundle, &env.id]);
    let st: Value = serde_json::from_str(&ok(&env, &["state", &env.id])).unwrap();
    assert_eq!(st["status"], "stopped");
    assert_eq!(st["pid"], 0, "{st}");
    ok(&env, &["delete", &env.id]);
    let text = std::fs::read_to_string(out_dir.join("poststop.json")).unwrap();
    let hook_st: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(hook_st["status"], "stopped");
    assert_eq!(hook_st["id"], json!(env.id));
    assert!(hook_st.get("pid").is_none(), "{hook_st}");
}

// 6. A run whose exec fails after the start gate says so in one line, with no cleanup warning.
#[test]
fn a_failed_run_prints_one_line() {
    let env = Env::new("run-fail");
    // Executable by mode, not by format: found before the gate, refused by execve after it,
    // in the exec shim, which says so in one line and exits 126 as a shell does.
    let bad = env.rootfs.rootfs().join("bad");
    std::fs::write(&bad, "not a program\n").unwrap();
    std::fs::set_permissions(&bad, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = env.run(&env.spec(&["/bad"]));
    assert_fails(&out, 126, &["exec /bad: exec format error"]);
    // A failed startContainer hook is one warning line (runc's "error running hook #0"),
    // and the container's status 127: its program never ran.
    let mut spec = env.spec(&["/bin/true"]);
    spec["hooks"] = json!({"startContainer": [{"path": "/bin/false"}]});
    let out = env.run(&spec);
    assert_fails(
        &out,
        127,
        &[
            "error running hook #0",
            "hooks.startContainer[0] /bin/false",
            "exit status: 1",
        ],
    );
}

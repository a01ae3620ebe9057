//! Defects of issue 7 (section 4), each shown by a test that failed before its fix: exec's
//! `--user UID` gid, sysctls for a namespace the container does not own, hook timeouts with a
//! large state, a seccomp listener during create, the pid given to poststop hooks, and the
//! stray cleanup warning of a failed run.

mod common;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{assert_exit, assert_fails, Env, Holder};
use serde_json::{json, Value};

/// Runs corral with stdout and stderr in files (a container made by `create` or `run -d`
/// inherits them and would hold a pipe open), killing it if it has not finished within
/// `limit`: a hang fails the test instead of stalling the suite.
fn corral_within(env: &Env, args: &[&str], limit: Duration) -> Output {
    // Containers outlive the create command; make this test process their reaper.
    // SAFETY: plain prctl.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let out = tempfile::tempfile().unwrap();
    let err = tempfile::tempfile().unwrap();
    let mut child = env
        .command()
        .args(args)
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let _ = env
                .command()
                .args(["delete", "--force", &env.id])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            panic!("corral {args:?} still running after {limit:?}: it hangs");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |mut f: std::fs::File| {
        use std::io::{Read, Seek};
        let mut v = Vec::new();
        f.rewind().unwrap();
        f.read_to_end(&mut v).unwrap();
        v
    };
    Output {
        status,
        stdout: read(out),
        stderr: read(err),
    }
}

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
            125,
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
            125,
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
        assert_fails(
            &out,
            125,
            &[&format!("hooks.{kind}[0]"), "timed out after 1 s"],
        );
        eprintln!("{kind}: failed after {:?}", t.elapsed());
    }
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
    // Executable by mode, not by format: found before the gate, refused by execve after it.
    let bad = env.rootfs.rootfs().join("bad");
    std::fs::write(&bad, "not a program\n").unwrap();
    std::fs::set_permissions(&bad, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = env.run(&env.spec(&["/bad"]));
    assert_fails(&out, 126, &["\"/bad\"", "errno 8"]);
    // The same for a start that fails before the gate opens (its child killed and reaped).
    let mut spec = env.spec(&["/bin/true"]);
    spec["hooks"] = json!({"startContainer": [{"path": "/bin/false"}]});
    let out = env.run(&spec);
    assert_fails(&out, 125, &["hooks.startContainer[0] /bin/false", "exit status: 1"]);
}

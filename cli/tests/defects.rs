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

    let r: Value =
        serde_json::from_str(&ok(&env, &["exec", "-u", "1000", &env.id, "/probe", "report"]))
            .unwrap();
    assert_eq!(r["uid"], 1000);
    assert_eq!(r["gid"], 1234, "{r}");
    // UID:GID still sets both.
    let r: Value = serde_json::from_str(&ok(
        &env,
        &["exec", "-u", "1000:77", &env.id, "/probe", "report"],
    ))
    .unwrap();
    assert_eq!((r["uid"].clone(), r["gid"].clone()), (json!(1000), json!(77)));

    ok(&env, &["delete", "--force", &env.id]);
    reap(pid);
}


//! CVE-2019-5736 in every shape: an image whose program, script interpreter, ELF interpreter,
//! exec'd program or startContainer hook resolves to `/proc/self/exe` must never run the host's
//! executable inside the container (the process becomes corral's sealed exec shim first), and
//! so can never overwrite it. The image preloads a payload into any dynamically linked
//! program (its own are static): it marks `/tmp/pwned` when it runs, and in the full attack
//! waits to overwrite the binary (see `testkit::make_exe_hostile`).
//!
//! `CORRAL_TEST_BIN=/path/to/old/corral cargo test -p corral-cli --test exe_escape` shows them
//! failing against a build without the shim.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{cli, reap, Env};
use serde_json::{json, Value};

fn hostile(prefix: &str, host_exe: &Path) -> Env {
    let env = Env::new(prefix);
    testkit::make_exe_hostile(env.rootfs.rootfs(), host_exe, None);
    env
}

fn pwned(env: &Env) -> Option<String> {
    std::fs::read_to_string(env.rootfs.rootfs().join("tmp/pwned")).ok()
}

fn spec(env: &Env, args: &[&str]) -> Value {
    let mut s = env.spec(args);
    s["root"]["readonly"] = json!(false);
    s
}

/// The original attack: `run -d` of an image whose entrypoint is a symlink to
/// `/proc/self/exe`, with a preloaded payload that waits for corral to exit and overwrites
/// it. Run with a copy of corral, so that a successful attack hurts nothing.
#[test]
fn the_host_binary_is_not_overwritten_by_a_detached_container() {
    let copy_dir = tempfile::tempdir().unwrap();
    let copy = copy_dir.path().join("corral");
    std::fs::copy(common::corral(), &copy).unwrap();
    let before = std::fs::read(&copy).unwrap();
    let env = hostile("exe-write", &copy);
    let mut s = spec(&env, &["/evil", "--version"]);
    s["process"]["env"] = json!(["PATH=/bin", "PWN_WRITE=1"]);
    env.rootfs.write_config(&s);
    let pid_file = copy_dir.path().join("pid");
    let out = std::process::Command::new(&copy)
        .arg("--root")
        .arg(env.state_root())
        .args(["run", "-d", "--pid-file"])
        .arg(&pid_file)
        .arg("-b")
        .arg(env.bundle())
        .arg(&env.id)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid: i64 = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    // The payload's writer gives up after 10 s; the container (its init sleeping) before 20.
    let deadline = Instant::now() + Duration::from_secs(12);
    let mut changed = false;
    while Instant::now() < deadline {
        changed = std::fs::read(&copy).map(|b| b != before).unwrap_or(true);
        let st: Value =
            serde_json::from_slice(&cli(&env, &["state", &env.id]).stdout).unwrap_or(Value::Null);
        if changed || st["status"] == "stopped" {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = cli(&env, &["delete", "--force", &env.id]);
    if pid > 0 {
        reap(pid);
    }
    assert!(!changed, "the container overwrote the host's corral binary");
    assert_eq!(
        pwned(&env),
        None,
        "the host's corral ran inside the container"
    );
}

/// Every other shape, each through a fresh container: the host's corral never runs inside.
#[test]
fn no_shape_of_proc_self_exe_runs_the_host_binary() {
    let env = hostile("exe-shapes", Path::new(&common::corral()));
    for args in [["/evil"], ["/script"], ["/interp"]] {
        let out = env.run(&spec(&env, &args));
        assert_eq!(pwned(&env), None, "{args:?}: the host's corral ran inside");
        // What ran is the shim, which refuses to be used that way.
        assert_eq!(out.status.code(), Some(127), "{args:?}: {out:?}");
    }
    // A startContainer hook.
    let mut s = spec(&env, &["/bin/true"]);
    s["hooks"] = json!({"startContainer": [{"path": "/evil"}]});
    let _ = env.run(&s);
    assert_eq!(
        pwned(&env),
        None,
        "a startContainer hook ran the host's corral inside"
    );
    // exec, into a running container.
    let s = spec(&env, &["/bin/sleep", "60"]);
    env.rootfs.write_config(&s);
    let bundle = env.bundle().to_string_lossy().into_owned();
    common::cli_ok(&env, &["run", "-d", "-b", &bundle, &env.id]);
    let st: Value = serde_json::from_str(&common::cli_ok(&env, &["state", &env.id])).unwrap();
    for prog in ["/evil", "/script", "/interp"] {
        let out = cli(&env, &["exec", &env.id, prog]);
        assert_eq!(
            pwned(&env),
            None,
            "exec {prog}: the host's corral ran inside"
        );
        assert_eq!(out.status.code(), Some(127), "exec {prog}: {out:?}");
    }
    common::cli_ok(&env, &["delete", "--force", &env.id]);
    reap(st["pid"].as_i64().unwrap());
}

/// The shim a container can reach through `/proc/self/exe` cannot be written: it is a sealed
/// memfd.
#[test]
fn the_shim_behind_proc_self_exe_cannot_be_written() {
    let env = Env::new("exe-seal");
    let out = env.run(&env.spec(&[
        "/bin/sh",
        "-c",
        "exec 3</proc/self/exe; exec /bin/sh -c 'echo x > /proc/self/fd/3 && echo written; \
         readlink /proc/self/fd/3'",
    ]));
    // (The inner sh reopens fd 3, the /proc/self/exe the outer sh had: busybox, the program.)
    common::assert_exit(&out, 0);
    let s = common::stdout(&out);
    assert!(!s.contains("written"), "{s}");
    // And what a process that *is* the shim shows as its exe: the sealed memfd.
    let env2 = Env::new("exe-seal2");
    std::os::unix::fs::symlink("/proc/self/exe", env2.rootfs.rootfs().join("evil")).unwrap();
    let out = env2.run(&env2.spec(&["/evil"]));
    assert_eq!(out.status.code(), Some(127));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("exec shim"),
        "{out:?}"
    );
}

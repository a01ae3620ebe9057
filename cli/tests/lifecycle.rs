//! The OCI lifecycle through the CLI, as engines drive it: create, start, state, list, ps,
//! pause, resume, update, kill, delete; and commands in the wrong state.

mod common;

use common::{assert_fails, Env};
use serde_json::{json, Value};

/// Runs corral. Its stdout and stderr are files, not pipes: a container made by `create`
/// inherits them and would keep a pipe open long after corral exited.
fn corral(env: &Env, args: &[&str]) -> std::process::Output {
    // Containers outlive the create command; make this test process their reaper (this host's
    // pid 1 does not reap orphans), and reap them by pid once stopped.
    // SAFETY: plain prctl.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let out = tempfile::tempfile().unwrap();
    let err = tempfile::tempfile().unwrap();
    let status = env
        .command()
        .args(args)
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap())
        .status()
        .unwrap();
    let read = |mut f: std::fs::File| {
        use std::io::{Read, Seek};
        let mut v = Vec::new();
        f.rewind().unwrap();
        f.read_to_end(&mut v).unwrap();
        v
    };
    std::process::Output {
        status,
        stdout: read(out),
        stderr: read(err),
    }
}

/// Reaps a container's init process that was reparented to this test process.
fn reap(pid: i64) {
    let mut st = 0;
    // SAFETY: waiting for one specific pid.
    unsafe { libc::waitpid(pid as i32, &mut st, 0) };
}

fn ok(env: &Env, args: &[&str]) -> String {
    let out = corral(env, args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "corral {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn state(env: &Env) -> Value {
    serde_json::from_str(&ok(env, &["state", &env.id])).unwrap()
}

#[test]
fn create_start_pause_update_kill_delete() {
    let env = Env::new("life");
    env.rootfs
        .write_config(&env.spec(&["/probe", "sleep", "inf"]));
    let bundle = env.bundle().to_string_lossy().into_owned();
    let pid_file = env.state_root().join("pid");
    ok(
        &env,
        &[
            "create",
            "--bundle",
            &bundle,
            "--pid-file",
            &pid_file.to_string_lossy(),
            &env.id,
        ],
    );

    // Created: set up, waiting at the gate (not yet the probe).
    let st = state(&env);
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], json!(env.id));
    assert_eq!(st["bundle"], json!(bundle));
    let pid = st["pid"].as_i64().unwrap();
    assert_eq!(std::fs::read_to_string(&pid_file).unwrap(), pid.to_string());
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(!exe.ends_with("probe"), "{exe:?}");
    let list: Value = serde_json::from_str(&ok(&env, &["list", "--format", "json"])).unwrap();
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["id"] == json!(env.id) && c["status"] == "created"));
    assert_eq!(ok(&env, &["list", "-q"]).trim(), env.id);

    ok(&env, &["start", &env.id]);
    assert_eq!(state(&env)["status"], "running");
    // Now it is the probe.
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(exe.ends_with("probe"), "{exe:?}");
    let ps: Value = serde_json::from_str(&ok(&env, &["ps", "--format", "json", &env.id])).unwrap();
    assert_eq!(ps, json!([pid]));
    let table = ok(&env, &["ps", &env.id]);
    assert!(table.lines().next().unwrap().contains("PID"), "{table}");
    assert!(table.contains("/probe sleep inf"), "{table}");

    // Start twice: wrong state.
    assert_fails(
        &corral(&env, &["start", &env.id]),
        125,
        &["is running, not created"],
    );

    ok(&env, &["pause", &env.id]);
    assert_eq!(state(&env)["status"], "paused");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    assert!(stat.contains(") D ") || stat.contains(") S "), "{stat}");
    assert_fails(
        &corral(&env, &["pause", &env.id]),
        125,
        &["is paused, not running"],
    );
    ok(&env, &["resume", &env.id]);
    assert_eq!(state(&env)["status"], "running");

    ok(
        &env,
        &[
            "update",
            "--pids-limit",
            "42",
            "--memory",
            "104857600",
            &env.id,
        ],
    );
    let stats: Value = serde_json::from_str(&ok(&env, &["events", "--stats", &env.id])).unwrap();
    assert_eq!(stats["data"]["pids"]["limit"], 42);
    assert_eq!(stats["data"]["memory"]["usage"]["limit"], 104857600);

    // A running container is not deleted without --force.
    assert_fails(&corral(&env, &["delete", &env.id]), 125, &["is running"]);
    ok(&env, &["kill", &env.id, "KILL"]);
    for _ in 0..100 {
        if state(&env)["status"] == "stopped" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(state(&env)["status"], "stopped");
    assert_fails(
        &corral(&env, &["pause", &env.id]),
        125,
        &["is stopped, not running"],
    );
    assert_fails(&corral(&env, &["kill", &env.id]), 125, &["is stopped"]);
    ok(&env, &["delete", &env.id]);
    reap(pid);
    assert_fails(&corral(&env, &["state", &env.id]), 125, &["does not exist"]);
    assert_eq!(ok(&env, &["list", "-q"]), "");
}

#[test]
fn run_detached_then_force_delete() {
    let env = Env::new("detach");
    env.rootfs
        .write_config(&env.spec(&["/probe", "sleep", "inf"]));
    let bundle = env.bundle().to_string_lossy().into_owned();
    ok(&env, &["run", "-d", "-b", &bundle, &env.id]);
    assert_eq!(state(&env)["status"], "running");
    let pid = state(&env)["pid"].as_i64().unwrap();
    ok(&env, &["kill", "--all", &env.id, "9"]);
    ok(&env, &["delete", "--force", &env.id]);
    reap(pid);
    // delete --force of what is gone is not an error.
    ok(&env, &["delete", "--force", &env.id]);
}

#[test]
fn created_container_can_be_deleted_without_start() {
    let env = Env::new("created-del");
    env.rootfs.write_config(&env.spec(&["/bin/true"]));
    let bundle = env.bundle().to_string_lossy().into_owned();
    ok(&env, &["create", "-b", &bundle, &env.id]);
    let pid = state(&env)["pid"].as_i64().unwrap();
    ok(&env, &["delete", &env.id]);
    reap(pid);
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
}

#[test]
fn run_keep_leaves_a_stopped_container() {
    let env = Env::new("keep");
    env.rootfs.write_config(&env.spec(&["/bin/true"]));
    let bundle = env.bundle().to_string_lossy().into_owned();
    ok(&env, &["run", "--keep", "-b", &bundle, &env.id]);
    assert_eq!(state(&env)["status"], "stopped");
    ok(&env, &["delete", &env.id]);
}

#[test]
fn wrong_ids_signals_and_unsupported_commands() {
    let env = Env::new("wrong");
    assert_fails(
        &corral(&env, &["start", "nosuch"]),
        125,
        &["container \"nosuch\" does not exist"],
    );
    assert_fails(
        &corral(&env, &["state", "nosuch"]),
        125,
        &["does not exist"],
    );
    assert_fails(&corral(&env, &["kill", "nosuch"]), 125, &["does not exist"]);
    assert_fails(
        &corral(&env, &["delete", "nosuch"]),
        125,
        &["does not exist"],
    );
    assert_fails(
        &corral(&env, &["kill", "nosuch", "SIGNOPE"]),
        125,
        &["unknown signal \"SIGNOPE\""],
    );
    assert_fails(&corral(&env, &["checkpoint", "x"]), 125, &["not supported"]);
    assert_fails(
        &corral(&env, &["--systemd-cgroup", "list"]),
        125,
        &["systemd"],
    );
    let f: Value = serde_json::from_str(&ok(&env, &["features"])).unwrap();
    assert_eq!(f["linux"]["cgroup"]["v1"], true);
    assert!(f["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .contains(&json!("time")));
}

#[test]
fn exec_joins_the_running_container() {
    let env = Env::new("exec");
    let mut spec = env.spec(&["/probe", "sleep", "inf"]);
    spec["hostname"] = json!("exec-host");
    spec["linux"]["resources"]["pids"] = json!({"limit": 20});
    env.rootfs.write_config(&spec);
    let bundle = env.bundle().to_string_lossy().into_owned();
    ok(&env, &["run", "-d", "-b", &bundle, &env.id]);
    let pid = state(&env)["pid"].as_i64().unwrap();

    let r: Value = serde_json::from_str(&ok(
        &env,
        &[
            "exec",
            "-e",
            "FOO=bar",
            "--cwd",
            "/tmp",
            "-u",
            "1000:1000",
            &env.id,
            "/probe",
            "report",
            "/sys/fs/cgroup/pids/pids.max",
        ],
    ))
    .unwrap();
    assert_eq!(r["hostname"], "exec-host");
    assert_ne!(r["pid"], 1);
    assert!(r["pids"].as_array().unwrap().contains(&json!(1)), "{r}");
    assert_eq!(r["uid"], 1000);
    assert_eq!(r["gid"], 1000);
    assert_eq!(r["cwd"], "/tmp");
    assert!(r["env"].as_array().unwrap().contains(&json!("FOO=bar")));
    assert_eq!(
        r["files"]["/sys/fs/cgroup/pids/pids.max"]["content"],
        "20\n"
    );
    assert_eq!(r["fds"], json!([0, 1, 2]));

    // Its exit status comes back; a missing executable is 127.
    let out = corral(&env, &["exec", &env.id, "/bin/sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7));
    assert_fails(
        &corral(&env, &["exec", &env.id, "nosuch"]),
        127,
        &["\"nosuch\"", "not found"],
    );

    // A process.json.
    let pj = env.state_root().join("process.json");
    std::fs::write(&pj, r#"{"args": ["/bin/sh", "-c", "echo from-json"], "cwd": "/", "user": {"uid": 0, "gid": 0}}"#).unwrap();
    assert_eq!(
        ok(&env, &["exec", "-p", &pj.to_string_lossy(), &env.id]),
        "from-json\n"
    );
    std::fs::write(&pj, "{\"args\": [\"/bin/true\"],\n \"cwd\": 5}").unwrap();
    assert_fails(
        &corral(&env, &["exec", "-p", &pj.to_string_lossy(), &env.id]),
        125,
        &["process.json:2:", "invalid type"],
    );

    // Detached, with a pid file.
    let pf = env.state_root().join("exec.pid");
    ok(
        &env,
        &[
            "exec",
            "-d",
            "--pid-file",
            &pf.to_string_lossy(),
            &env.id,
            "/probe",
            "sleep",
            "inf",
        ],
    );
    let epid: i64 = std::fs::read_to_string(&pf).unwrap().parse().unwrap();
    let ps: Value = serde_json::from_str(&ok(&env, &["ps", "--format", "json", &env.id])).unwrap();
    assert!(ps.as_array().unwrap().contains(&json!(epid)), "{ps}");

    // The exec'd process was this test's child (through corral exec, which exited): reap it
    // once killed, or the container's init waits for that in its pid namespace teardown.
    // SAFETY: signalling a process this test made.
    unsafe { libc::kill(epid as i32, libc::SIGKILL) };
    reap(epid);
    ok(&env, &["delete", "--force", &env.id]);
    reap(pid);
    assert_fails(
        &corral(&env, &["exec", &env.id, "/bin/true"]),
        125,
        &["does not exist"],
    );
}

#[test]
fn exec_into_a_stopped_container_is_refused() {
    let env = Env::new("exec-stopped");
    env.rootfs.write_config(&env.spec(&["/bin/true"]));
    let bundle = env.bundle().to_string_lossy().into_owned();
    ok(&env, &["run", "--keep", "-b", &bundle, &env.id]);
    assert_fails(
        &corral(&env, &["exec", &env.id, "/bin/true"]),
        125,
        &["is stopped, not running"],
    );
    ok(&env, &["delete", &env.id]);
}

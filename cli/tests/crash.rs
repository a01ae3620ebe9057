//! kill -9 at any moment: after corral dies by SIGKILL at each crash point of create, start,
//! exec and delete (`runtime::fault::POINTS`, set with `CORRAL_FAULT`), or at a random moment
//! of a create, `delete --force` exits 0 and leaves nothing of the container: no state dir,
//! cgroup, mount or process (not even one waiting at its start gate).

mod common;

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::Env;
use serde_json::Value;

/// Runs corral with `fault` set; stdout goes nowhere (a created container inherits it and
/// would hold a pipe open), stderr to a file.
fn corral(env: &Env, fault: Option<&str>, args: &[&str]) -> (ExitStatus, String) {
    let mut c = env.command();
    c.env_remove(runtime::fault::ENV);
    if let Some(f) = fault {
        c.env(runtime::fault::ENV, f);
    }
    let (status, err) = with_stderr(c.args(args).stdout(Stdio::null()));
    (status, err)
}

fn with_stderr(c: &mut Command) -> (ExitStatus, String) {
    use std::io::{Read, Seek};
    let mut err = tempfile::tempfile().unwrap();
    let status = c.stderr(err.try_clone().unwrap()).status().unwrap();
    let mut s = String::new();
    err.rewind().unwrap();
    err.read_to_string(&mut s).unwrap();
    (status, s)
}

fn ok(env: &Env, args: &[&str]) {
    let (st, err) = corral(env, None, args);
    assert_eq!(st.code(), Some(0), "corral {args:?}: {err}");
}

/// `corral list --format json`, as id -> status.
fn listed(env: &Env) -> std::collections::HashMap<String, String> {
    let out = env
        .command()
        .args(["list", "--format", "json"])
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// `delete --force` exits 0 and nothing of the container is left.
fn force_delete_leaves_nothing(env: &Env, what: &str) {
    let (st, err) = corral(env, None, &["delete", "--force", &env.id]);
    assert_eq!(st.code(), Some(0), "{what}: delete --force: {err}");
    testkit::assert_no_leaks(&env.id, Some(env.state_root()));
    assert!(
        !listed(env).contains_key(&env.id),
        "{what}: still listed after delete --force"
    );
}

#[test]
fn every_fault_point_then_delete_force_leaves_nothing() {
    assert!(
        runtime::fault::enabled(),
        "this build ignores CORRAL_FAULT: test a debug build or enable corral-runtime's fault-injection feature"
    );
    for &point in runtime::fault::POINTS {
        let started = Instant::now();
        let env = Env::new(&format!("crash-{}", point.replace(':', "-")));
        env.rootfs
            .write_config(&env.spec(&["/probe", "sleep", "inf"]));
        let bundle = env.bundle().to_string_lossy().into_owned();
        let layer = env.rootfs.rootfs().to_string_lossy().into_owned();
        // An overlay root, so that the overlay mount is made (and must be undone) too.
        let create = ["create", "--bundle", &bundle, "--layer", &layer, &env.id];
        let phase = point.split(':').next().unwrap();
        let st = match phase {
            "create" => corral(&env, Some(point), &create).0,
            "start" => {
                ok(&env, &create);
                corral(&env, Some(point), &["start", &env.id]).0
            }
            "exec" => {
                ok(&env, &create);
                ok(&env, &["start", &env.id]);
                corral(
                    &env,
                    Some(point),
                    &["exec", &env.id, "/probe", "sleep", "inf"],
                )
                .0
            }
            "pause" => {
                ok(&env, &create);
                ok(&env, &["start", &env.id]);
                corral(&env, Some(point), &["pause", &env.id]).0
            }
            "resume" => {
                ok(&env, &create);
                ok(&env, &["start", &env.id]);
                ok(&env, &["pause", &env.id]);
                corral(&env, Some(point), &["resume", &env.id]).0
            }
            "delete" => {
                ok(&env, &create);
                ok(&env, &["start", &env.id]);
                corral(&env, Some(point), &["delete", "--force", &env.id]).0
            }
            other => panic!("fault point {point}: unknown phase {other}"),
        };
        assert_eq!(
            st.signal(),
            Some(libc::SIGKILL),
            "{point}: corral was not killed at its fault point ({st})"
        );
        if phase == "create" {
            // A create that died never completed: its process, if it had one, is killed by the
            // kernel (its parent-death signal holds until create is complete), and the
            // half-made container is listed as stopped.
            let state = env.state_root().join(&env.id).join("state.json");
            let pid = std::fs::read_to_string(&state)
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .and_then(|v| v["pid"].as_i64())
                .unwrap_or(0);
            if pid > 0 {
                let deadline = Instant::now() + Duration::from_secs(5);
                while alive(pid) {
                    assert!(
                        Instant::now() < deadline,
                        "{point}: the process of a create that died still runs"
                    );
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            assert_eq!(
                listed(&env).get(&env.id).map(String::as_str),
                Some("stopped"),
                "{point}: list"
            );
            let (st, err) = corral(&env, None, &["start", &env.id]);
            assert_ne!(
                st.code(),
                Some(0),
                "{point}: start of a half-made container"
            );
            assert!(err.contains("stopped"), "{point}: start: {err}");
        }
        force_delete_leaves_nothing(&env, point);
        eprintln!("{point}: ok in {:?}", started.elapsed());
    }
}

/// Whether `pid` is a live process (a zombie is not).
fn alive(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rfind(')')
                .and_then(|i| s.get(i + 2..i + 3))
                .map(|c| c != "Z" && c != "X")
        })
        .unwrap_or(false)
}

use testkit::soak::Rng;

#[test]
fn creates_killed_at_random_moments_then_delete_force_leaves_nothing() {
    let seed = std::env::var("CORRAL_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("seed {seed} (repeat with CORRAL_CRASH_SEED={seed})");
    let mut rng = Rng::new(seed);
    let (mut killed, mut finished) = (0, 0);
    for i in 0..20 {
        let env = Env::new("crash-random");
        env.rootfs
            .write_config(&env.spec(&["/probe", "sleep", "inf"]));
        let delay = Duration::from_micros(rng.next_u64() % 50_001);
        let mut child = env
            .command()
            .env_remove(runtime::fault::ENV)
            .args(["create", "--bundle"])
            .arg(env.bundle())
            .arg(&env.id)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let st = child.wait().unwrap();
        match st.signal() {
            Some(libc::SIGKILL) => killed += 1,
            _ => {
                assert_eq!(st.code(), Some(0), "run {i}: create failed");
                finished += 1;
            }
        }
        force_delete_leaves_nothing(&env, &format!("run {i}, killed after {delay:?}"));
    }
    eprintln!("seed {seed}: {killed} creates killed, {finished} finished first");
}

/// A create killed at a fault point; asserts that it died by SIGKILL.
fn create_killed_at(env: &Env, point: &str) {
    let bundle = env.bundle().to_string_lossy().into_owned();
    let (st, err) = corral(env, Some(point), &["create", "--bundle", &bundle, &env.id]);
    assert_eq!(
        st.signal(),
        Some(libc::SIGKILL),
        "{point}: not killed ({st}): {err}"
    );
}

#[test]
fn slow_path_creates_killed_then_delete_force_leaves_nothing() {
    // Joining a namespace takes the slow path: a second fork for the new pid namespace, whose
    // child (the container's process) is recorded once its pid is known.
    for point in [
        "create:after-clone",
        "create:after-ready",
        "create:before-state",
    ] {
        let env = Env::new("crash-slow");
        let mut spec = env.spec(&["/probe", "sleep", "inf"]);
        for ns in spec["linux"]["namespaces"].as_array_mut().unwrap() {
            if ns["type"] == "network" {
                ns["path"] = serde_json::json!("/proc/self/ns/net");
            }
        }
        env.rootfs.write_config(&spec);
        create_killed_at(&env, point);
        assert_eq!(
            listed(&env).get(&env.id).map(String::as_str),
            Some("stopped"),
            "{point}"
        );
        force_delete_leaves_nothing(&env, point);
    }
}

#[test]
fn half_made_container_is_stopped_for_state_and_plain_delete() {
    let env = Env::new("crash-plain");
    env.rootfs
        .write_config(&env.spec(&["/probe", "sleep", "inf"]));
    // Past the point where its process stops dying with its creator.
    create_killed_at(&env, "create:before-state");
    let out = env.command().args(["state", &env.id]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let st: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st["status"], "stopped", "{st}");
    assert_eq!(st["pid"], 0, "{st}");
    let (st, err) = corral(&env, None, &["kill", &env.id, "KILL"]);
    assert_ne!(st.code(), Some(0), "kill of a half-made container");
    assert!(err.contains("stopped"), "{err}");
    // A stopped container is deleted without --force, and all of it goes.
    ok(&env, &["delete", &env.id]);
    testkit::assert_no_leaks(&env.id, Some(env.state_root()));
}

#[test]
fn state_dir_with_unreadable_state_is_removed_by_delete_force() {
    let env = Env::new("crash-garbage");
    let dir = env.state_root().join(&env.id);
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("state.json"), "{\"ociVersion\": \"1.2").unwrap();
    let (st, err) = corral(&env, None, &["state", &env.id]);
    assert_ne!(st.code(), Some(0), "state of an unreadable state");
    assert!(err.contains("state.json"), "{err}");
    force_delete_leaves_nothing(&env, "unreadable state");
    // And an id that was never there: exit 0.
    ok(&env, &["delete", "--force", &env.id]);
}

/// The first state and the kept config are written in place (no temp file and rename): a
/// create killed between making the files and writing them leaves them empty. An empty
/// state is no state yet: the half-made container is listed and shown stopped, and a plain
/// `delete` removes it.
#[test]
fn empty_state_and_config_left_by_a_killed_create_are_a_half_made_container() {
    let env = Env::new("crash-empty");
    let dir = env.state_root().join(&env.id);
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("config.json"), "").unwrap();
    std::fs::write(dir.join("state.json"), "").unwrap();
    let out = env.command().args(["state", &env.id]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "state: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let st: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&st["status"], &st["pid"]),
        (&"stopped".into(), &0.into()),
        "{st}"
    );
    assert_eq!(
        listed(&env).get(&env.id).map(String::as_str),
        Some("stopped")
    );
    ok(&env, &["delete", &env.id]);
    testkit::assert_no_leaks(&env.id, Some(env.state_root()));
}

#[test]
fn list_shows_a_container_being_created_without_waiting() {
    let env = Env::new("crash-creating");
    let marks = tempfile::tempdir().unwrap();
    let started = marks.path().join("started");
    let hook_pid = marks.path().join("hook.pid");
    let mut spec = env.spec(&["/probe", "sleep", "inf"]);
    // A prestart hook that holds the create up (the hook is the runtime's, not the
    // container's: it is killed here at the end).
    spec["hooks"] = serde_json::json!({"prestart": [{"path": "/bin/sh", "args": ["sh", "-c",
        format!("echo $$ > {}; touch {}; exec sleep 10", hook_pid.display(), started.display())]}]});
    env.rootfs.write_config(&spec);
    let mut create = env
        .command()
        .env_remove(runtime::fault::ENV)
        .args(["create", "--bundle"])
        .arg(env.bundle())
        .arg(&env.id)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while !started.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the hook did not run"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let t = Instant::now();
    assert_eq!(
        listed(&env).get(&env.id).map(String::as_str),
        Some("creating")
    );
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "list waited for the creator"
    );
    // The creator dies: the container is stopped.
    create.kill().unwrap();
    create.wait().unwrap();
    assert_eq!(
        listed(&env).get(&env.id).map(String::as_str),
        Some("stopped")
    );
    force_delete_leaves_nothing(&env, "killed during its prestart hook");
    let pid: i32 = std::fs::read_to_string(&hook_pid)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: plain kill of the hook's sleep (an orphan now; pid 1 reaps it).
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

#[test]
fn process_at_its_gate_is_found_without_a_recorded_pid() {
    // As after a second fork whose pid was not recorded yet, in a container without cgroups:
    // the process holding the state dir open as its start gate is found all the same.
    let env = Env::new("crash-unrecorded");
    env.rootfs
        .write_config(&env.spec(&["/probe", "sleep", "inf"]));
    // A complete create (a half-made one's process dies with its creator now), whose record
    // is then made to look like that of a create that died before it recorded the pid.
    let bundle = env.bundle().to_string_lossy().into_owned();
    ok(&env, &["create", "--bundle", &bundle, &env.id]);
    let file = env.state_root().join(&env.id).join("state.json");
    let mut st: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let pid = st["pid"].as_i64().unwrap() as i32;
    assert!(pid > 0, "{st}");
    let leaves: Vec<String> = serde_json::from_value(st["cgroup_leaves"].clone()).unwrap();
    // Whatever happens, the process and the cgroups taken out of the record go at the end.
    // Through a pidfd: never a recycled pid.
    // SAFETY: plain syscall; the fd is owned below.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
    assert!(pidfd >= 0, "pidfd_open {pid}");
    // SAFETY: fresh fd owned here.
    let pidfd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(pidfd) };
    struct Cleanup(std::os::fd::OwnedFd, Vec<String>);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            use std::os::fd::AsRawFd;
            // SAFETY: plain syscall on an owned pidfd.
            unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    self.0.as_raw_fd(),
                    libc::SIGKILL,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                )
            };
            std::thread::sleep(Duration::from_millis(100));
            for l in &self.1 {
                let _ = std::fs::remove_dir(l);
            }
        }
    }
    let cleanup = Cleanup(pidfd, leaves);
    st["status"] = "creating".into();
    st["creator_pid"] = 0.into();
    st["pid"] = 0.into();
    st["cgroup_leaves"] = serde_json::json!([]);
    st["cgroup_dirs"] = serde_json::json!([]);
    std::fs::write(&file, st.to_string()).unwrap();
    let (status, err) = corral(&env, None, &["delete", "--force", &env.id]);
    assert_eq!(status.code(), Some(0), "{err}");
    let gone = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s[s.rfind(')').unwrap() + 2..].starts_with('Z'))
            .unwrap_or(true)
    };
    let t = Instant::now();
    while !gone(pid) && t.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(gone(pid), "process {pid} at its gate was left running");
    drop(cleanup);
    testkit::assert_no_leaks(&env.id, Some(env.state_root()));
}

/// kill -9 of a create at each of its crash points, with `cgroupsPath` naming a pids cgroup
/// made beforehand: `delete --force` removes what the create made (the leaves of the other
/// hierarchies) and leaves the one it joined, with the other process in it.
#[test]
fn a_killed_create_leaves_a_joined_cgroup_alone() {
    assert!(runtime::fault::enabled(), "this build ignores CORRAL_FAULT");
    let pids = std::path::Path::new("/sys/fs/cgroup/pids");
    for &point in runtime::fault::POINTS
        .iter()
        .filter(|p| p.starts_with("create:"))
    {
        let env = Env::new(&format!("crashcg-{}", point.replace(':', "-")));
        let name = testkit::unique_id("crashcg-own");
        let dir = pids.join(&name);
        std::fs::create_dir(&dir).unwrap();
        struct Gone(std::path::PathBuf, common::Holder);
        impl Drop for Gone {
            fn drop(&mut self) {
                let _ = self.1 .0.kill();
                let _ = self.1 .0.wait();
                for _ in 0..200 {
                    if std::fs::remove_dir(&self.0).is_ok() || !self.0.exists() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
        let holder = common::Holder::spawn(Command::new("sleep").arg("1000"));
        let other = holder.pid();
        let _gone = Gone(dir.clone(), holder);
        std::fs::write(dir.join("cgroup.procs"), other.to_string()).unwrap();
        let mut spec = env.spec(&["/probe", "sleep", "inf"]);
        spec["linux"]["cgroupsPath"] = serde_json::json!(format!("/{name}"));
        env.rootfs.write_config(&spec);
        let bundle = env.bundle().to_string_lossy().into_owned();
        let layer = env.rootfs.rootfs().to_string_lossy().into_owned();
        let create = ["create", "--bundle", &bundle, "--layer", &layer, &env.id];
        let (st, _) = corral(&env, Some(point), &create);
        assert_eq!(
            st.signal(),
            Some(libc::SIGKILL),
            "{point}: not killed ({st})"
        );
        let (st, err) = corral(&env, None, &["delete", "--force", &env.id]);
        assert_eq!(st.code(), Some(0), "{point}: delete --force: {err}");
        testkit::assert_no_leaks(&env.id, Some(env.state_root()));
        assert!(dir.is_dir(), "{point}: the joined cgroup was removed");
        assert_eq!(
            std::fs::read_to_string(dir.join("cgroup.procs"))
                .unwrap()
                .trim(),
            other.to_string(),
            "{point}: the other process left its cgroup"
        );
        for h in ["memory", "cpu", "devices", "freezer"] {
            assert!(
                !std::path::Path::new("/sys/fs/cgroup")
                    .join(h)
                    .join(&name)
                    .exists(),
                "{point}: the create's {h}/{name} is left"
            );
        }
    }
}

/// corral with a bound: a verb still running after 2 minutes hangs, and fails the test (it
/// is killed, and the container force-deleted, first).
fn bounded(env: &Env, args: &[&str]) -> (ExitStatus, String) {
    use std::io::{Read, Seek};
    let mut err = tempfile::tempfile().unwrap();
    let mut child = env
        .command()
        .env_remove(runtime::fault::ENV)
        .args(args)
        .stdout(Stdio::null())
        .stderr(err.try_clone().unwrap())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            let _ = corral(env, None, &["delete", "--force", &env.id]);
            panic!("corral {args:?} hangs");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut s = String::new();
    err.rewind().unwrap();
    err.read_to_string(&mut s).unwrap();
    (status, s)
}

/// The status `corral state` reports, with a bound.
fn status_of(env: &Env) -> String {
    let out = env
        .command()
        .args(["state", &env.id])
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["status"].as_str().unwrap().to_string()
}

/// kill -9 of `start`, `pause` or `resume` at each of their fault points: `state` tells what
/// the kernel holds (the freezer, whether the process passed its start gate), not what the
/// dead command left in the state file; no verb hangs (a second start, resume, exec); and
/// `delete --force` leaves nothing (a frozen container is thawed before it is killed).
#[test]
fn start_pause_and_resume_killed_then_verbs_tell_the_truth_and_nothing_hangs() {
    assert!(runtime::fault::enabled(), "this build ignores CORRAL_FAULT");
    for (point, want) in [
        ("start:before-gate", "created"),
        ("start:gate-opened", "running"),
        ("start:after-gate", "running"),
        ("start:after-state", "running"),
        ("pause:after-freeze", "paused"),
        ("resume:after-thaw", "running"),
    ] {
        let env = Env::new(&format!("crash-truth-{}", point.replace(':', "-")));
        env.rootfs
            .write_config(&env.spec(&["/probe", "sleep", "inf"]));
        let bundle = env.bundle().to_string_lossy().into_owned();
        ok(&env, &["create", "--bundle", &bundle, &env.id]);
        let verb = point.split(':').next().unwrap();
        if verb != "start" {
            ok(&env, &["start", &env.id]);
        }
        if verb == "resume" {
            ok(&env, &["pause", &env.id]);
        }
        let st = corral(&env, Some(point), &[verb, &env.id]).0;
        assert_eq!(st.signal(), Some(libc::SIGKILL), "{point}: not killed");
        assert_eq!(status_of(&env), want, "{point}: state");
        match want {
            "created" => {
                let (st, err) = bounded(&env, &["start", &env.id]);
                assert_eq!(st.code(), Some(0), "{point}: start: {err}");
            }
            "paused" => {
                let (st, err) = bounded(&env, &["pause", &env.id]);
                assert_ne!(st.code(), Some(0), "{point}: pause of a frozen container");
                assert!(err.contains("paused"), "{point}: pause: {err}");
                let (st, err) = bounded(&env, &["resume", &env.id]);
                assert_eq!(st.code(), Some(0), "{point}: resume: {err}");
            }
            _ => {}
        }
        assert_eq!(status_of(&env), "running", "{point}: state once started");
        let (st, err) = bounded(&env, &["start", &env.id]);
        assert_ne!(st.code(), Some(0), "{point}: a second start");
        assert!(err.contains("running"), "{point}: second start: {err}");
        let (st, err) = bounded(&env, &["exec", &env.id, "/bin/true"]);
        assert_eq!(st.code(), Some(0), "{point}: exec: {err}");
        // And once more frozen behind the state file's back: delete --force still removes
        // all of it.
        if verb == "pause" {
            let st = corral(&env, Some(point), &["pause", &env.id]).0;
            assert_eq!(st.signal(), Some(libc::SIGKILL), "{point}: not killed");
        }
        let (st, err) = bounded(&env, &["delete", "--force", &env.id]);
        assert_eq!(st.code(), Some(0), "{point}: delete --force: {err}");
        testkit::assert_no_leaks(&env.id, Some(env.state_root()));
    }
}

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
        runtime::fault::ENABLED,
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
            // A half-made container is listed, and counts as stopped: its creator is gone
            // (except once its state says created: then it is complete, waiting at its gate).
            let want = if point == "create:after-state-created" {
                "created"
            } else {
                "stopped"
            };
            assert_eq!(
                listed(&env).get(&env.id).map(String::as_str),
                Some(want),
                "{point}: list"
            );
            if want == "stopped" {
                let (st, err) = corral(&env, None, &["start", &env.id]);
                assert_ne!(
                    st.code(),
                    Some(0),
                    "{point}: start of a half-made container"
                );
                assert!(err.contains("stopped"), "{point}: start: {err}");
            }
        }
        force_delete_leaves_nothing(&env, point);
        eprintln!("{point}: ok in {:?}", started.elapsed());
    }
}

/// xorshift64*: a small seeded generator, so that a failing run can be repeated.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

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
    let mut rng = Rng(seed);
    let (mut killed, mut finished) = (0, 0);
    for i in 0..20 {
        let env = Env::new("crash-random");
        env.rootfs
            .write_config(&env.spec(&["/probe", "sleep", "inf"]));
        let delay = Duration::from_micros(rng.next() % 50_001);
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

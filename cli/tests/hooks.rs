//! OCI hooks: run in order with the state on stdin; failures fail the step (poststop only
//! warns); bad hooks are refused before anything is made.

mod common;

use common::{assert_fails, Env};
use serde_json::{json, Value};

fn hook(out: &std::path::Path, name: &str) -> Value {
    json!({"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {}/{name}.json; echo $HOOK_ENV >> {}/{name}.env", out.display(), out.display())], "env": ["HOOK_ENV=yes"]})
}

#[test]
fn hooks_run_with_the_state_on_stdin() {
    let env = Env::new("hooks");
    let dir = env.state_root().join("hook-out");
    std::fs::create_dir(&dir).unwrap();
    let mut spec = env.spec(&["/bin/true"]);
    spec["hooks"] = json!({
        "prestart": [hook(&dir, "prestart")],
        "createRuntime": [hook(&dir, "createRuntime")],
        "poststart": [hook(&dir, "poststart")],
        "poststop": [hook(&dir, "poststop")]
    });
    let out = env.run(&spec);
    common::assert_exit(&out, 0);
    for (name, status) in [
        ("prestart", "created"),
        ("createRuntime", "created"),
        ("poststart", "running"),
        ("poststop", "stopped"),
    ] {
        let st: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(st["id"], json!(env.id), "{name}");
        assert_eq!(st["status"], status, "{name}");
        if status == "stopped" {
            // The init is reaped: no pid that may have been recycled (as runc).
            assert!(st.get("pid").is_none(), "{name}: {st}");
        } else {
            assert!(st["pid"].as_i64().unwrap() > 0, "{name}: {st}");
        }
        assert_eq!(
            std::fs::read_to_string(dir.join(format!("{name}.env"))).unwrap(),
            "yes\n"
        );
    }
}

#[test]
fn failing_hooks_fail_the_step_with_their_output() {
    let env = Env::new("hookfail");
    let mut spec = env.spec(&["/bin/true"]);
    spec["hooks"] = json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "echo boom >&2; exit 3"]}]});
    assert_fails(
        &env.run(&spec),
        1,
        &["hooks.createRuntime[0] /bin/sh", "exit status: 3", "boom"],
    );
    spec["hooks"] =
        json!({"prestart": [{"path": "/bin/sleep", "args": ["sleep", "10"], "timeout": 1}]});
    assert_fails(
        &env.run(&spec),
        1,
        &["hooks.prestart[0]", "timed out after 1 s"],
    );
    // A failing poststart hook fails the start and stops the container (runtime-spec 1.3,
    // runc).
    spec["hooks"] = json!({"poststart": [{"path": "/bin/false"}]});
    let mut sleeping = spec.clone();
    sleeping["process"]["args"] = json!(["/probe", "sleep", "inf"]);
    assert_fails(&env.run(&sleeping), 1, &["hooks.poststart[0] /bin/false"]);
    // poststop only warns, and the hooks after a failed one still run (the spec: "the
    // remaining hooks and lifecycle continue as if the hook had succeeded").
    let dir = env.state_root().join("after-fail");
    std::fs::create_dir(&dir).unwrap();
    spec["hooks"] = json!({ "poststop": [{"path": "/bin/false"}, hook(&dir, "poststop")] });
    let out = env.run(&spec);
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("hooks.poststop[0]"), "{err}");
    assert!(
        dir.join("poststop.json").exists(),
        "poststop[1] did not run"
    );
}

#[test]
fn bad_hooks_are_refused() {
    let env = Env::new("hookbad");
    let mut spec = env.spec(&["/bin/true"]);
    spec["hooks"] = json!({"prestart": [{"path": "/no/such/hook"}]});
    assert_fails(
        &env.run(&spec),
        1,
        &["hooks.prestart[0].path", "/no/such/hook", "does not exist"],
    );
    spec["hooks"] = json!({"createContainer": [{"path": "relative/hook"}]});
    assert_fails(
        &env.run(&spec),
        1,
        &["hooks.createContainer[0].path", "not an absolute path"],
    );
}

#[test]
fn container_hooks_run_in_the_containers_namespaces() {
    let env = Env::new("hookns");
    let dir = env.state_root().join("hook-out");
    std::fs::create_dir(&dir).unwrap();
    let mut spec = env.spec(&["/bin/true"]);
    spec["hostname"] = json!("hooked");
    spec["root"]["readonly"] = json!(false);
    spec["hooks"] = json!({
        // Before the root changes: the path and the output file are the host's.
        "createContainer": [{"path": "/bin/sh", "args": ["sh", "-c",
            format!("hostname > {0}/cc.host; cat > {0}/cc.json", dir.display())]}],
        // After: the path is the container's busybox, the output lands in its /tmp.
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c",
            "hostname > /tmp/sc.host; cat > /tmp/sc.json"]}]
    });
    let out = env.run(&spec);
    common::assert_exit(&out, 0);
    assert_eq!(
        std::fs::read_to_string(dir.join("cc.host")).unwrap(),
        "hooked\n"
    );
    let st: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("cc.json")).unwrap()).unwrap();
    assert_eq!(st["status"], "created");
    let tmp = env.rootfs.rootfs().join("tmp");
    assert_eq!(
        std::fs::read_to_string(tmp.join("sc.host")).unwrap(),
        "hooked\n"
    );
    let st: Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.join("sc.json")).unwrap()).unwrap();
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], json!(env.id));
}

/// startContainer hooks run in the container's process, past its start gate. A failure
/// (exit status, timeout, a path missing in the container) does as runc 1.1 and youki do and
/// as engines and conformance suites expect: `start` succeeds with a warning `error running
/// hook #N` and the hook's output, the poststart hooks run, and the container's program never
/// runs (its process exits 127, so the container is stopped).
#[test]
fn a_failing_start_container_hook_warns_and_the_program_does_not_run() {
    let env = Env::new("hookstart");
    let mut spec = env.spec(&["/bin/sh", "-c", "echo ran > /tmp/program-ran"]);
    spec["root"]["readonly"] = json!(false);
    let ran = env.rootfs.rootfs().join("tmp/program-ran");
    let dir = env.state_root().join("hook-out");
    std::fs::create_dir(&dir).unwrap();
    let bundle = env.bundle().to_string_lossy().into_owned();
    for (i, (hook, needles)) in [
        (
            json!({"path": "/bin/sh", "args": ["sh", "-c", "cat >/dev/null; echo boom >&2; exit 3"]}),
            vec!["error running hook #0", "hooks.startContainer[0] /bin/sh", "exit status: 3", "boom"],
        ),
        (
            json!({"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}),
            vec!["error running hook #0", "hooks.startContainer[0] /bin/sleep", "timed out after 1 s"],
        ),
        (
            // A host path the container does not have (the case engines and suites send).
            json!({"path": "/no/such/hook"}),
            vec!["error running hook #0", "hooks.startContainer[0] /no/such/hook", "cannot run"],
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let mark = dir.join(format!("poststart-{i}"));
        spec["hooks"] = json!({
            "startContainer": [hook],
            "poststart": [{"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {}", mark.display())]}]
        });
        env.rootfs.write_config(&spec);
        common::cli_ok(&env, &["create", "-b", &bundle, &env.id]);
        let st: Value =
            serde_json::from_str(&common::cli_ok(&env, &["state", &env.id])).unwrap();
        let pid = st["pid"].as_i64().unwrap();
        let out = common::cli(&env, &["start", &env.id]);
        common::reap(pid);
        common::assert_exit(&out, 0);
        let err = String::from_utf8_lossy(&out.stderr);
        for n in &needles {
            assert!(err.contains(n), "start's stderr {err:?} lacks {n:?}");
        }
        let post: Value = serde_json::from_str(
            &std::fs::read_to_string(&mark).expect("the poststart hook did not run"),
        )
        .unwrap();
        assert_eq!(post["id"], json!(env.id));
        let st: Value =
            serde_json::from_str(&common::cli_ok(&env, &["state", &env.id])).unwrap();
        assert_eq!(st["status"], "stopped", "{st}");
        common::cli_ok(&env, &["delete", &env.id]);
        assert!(
            !ran.exists(),
            "the program ran after a failed startContainer hook"
        );
    }
    // `run` alike: the warning, and the container's status 127 (its program never ran).
    spec["hooks"] = json!({"startContainer": [{"path": "/bin/false"}]});
    let out = env.run(&spec);
    common::assert_exit(&out, 127);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("error running hook #0"), "{err}");
    assert!(!ran.exists());
    // A hook that writes more than it keeps, and reads its state: fine.
    spec["hooks"] = json!({"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c",
        "cat >/dev/null; i=0; while [ $i -lt 2000 ]; do echo lots of output; i=$((i+1)); done"]}]});
    common::assert_exit(&env.run(&spec), 0);
    assert!(ran.exists());
}

/// A startContainer hook without an `env` of its own gets the container process's
/// environment (runc and youki: the hook is started from the container's process, which
/// passes on its own environment); one with an `env` gets exactly that.
#[test]
fn a_start_container_hook_without_env_inherits_the_process_env() {
    let env = Env::new("hookenv");
    let mut spec = env.spec(&["/bin/true"]);
    spec["root"]["readonly"] = json!(false);
    spec["process"]["env"] = json!(["PATH=/bin", "FROM_PROCESS=1"]);
    spec["hooks"] = json!({"startContainer": [
        {"path": "/bin/sh", "args": ["sh", "-c", "env > /tmp/inherited.env"]},
        {"path": "/bin/sh", "args": ["sh", "-c", "env > /tmp/own.env"], "env": ["HOOK_VAR=42"]}
    ]});
    common::assert_exit(&env.run(&spec), 0);
    let tmp = env.rootfs.rootfs().join("tmp");
    let inherited = std::fs::read_to_string(tmp.join("inherited.env")).unwrap();
    assert!(inherited.contains("FROM_PROCESS=1"), "{inherited}");
    assert!(inherited.contains("PATH=/bin"), "{inherited}");
    let own = std::fs::read_to_string(tmp.join("own.env")).unwrap();
    assert!(own.contains("HOOK_VAR=42"), "{own}");
    assert!(!own.contains("FROM_PROCESS"), "{own}");
}

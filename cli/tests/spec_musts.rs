//! The runtime spec's MUSTs (runtime.md, runtime-linux.md, config.md, config-linux.md of
//! runtime-spec v1.3) that no other test file checks, each checked by what the container or
//! the caller sees. docs/oci-conformance.md lists every MUST and the test that covers it.
//!
//! Failures are checked for a non-zero exit and their words, not for the exit code.

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{cli as corral, cli_ok as ok, reap, stdout, Env};
use serde_json::{json, Value};

/// Asserts that corral failed (any non-zero exit) with one line on stderr holding every needle.
fn fails(out: &Output, needles: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "succeeded, want an error with {needles:?}; stderr: {err}"
    );
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "want one line on stderr, got: {err}");
    for n in needles {
        assert!(lines[0].contains(n), "stderr {:?} lacks {n:?}", lines[0]);
    }
}

fn state(env: &Env) -> Value {
    serde_json::from_str(&ok(env, &["state", &env.id])).unwrap()
}

fn bundle(env: &Env) -> String {
    env.bundle().to_string_lossy().into_owned()
}

/// Waits (at most 5 s) until the container's status is `want`.
fn wait_status(env: &Env, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let st = state(env);
        if st["status"] == want || Instant::now() > deadline {
            assert_eq!(st["status"], want, "{st}");
            return st;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `env.spec` running `sh -c script`.
fn sh(env: &Env, script: &str) -> Value {
    env.spec(&["/bin/sh", "-c", script])
}

/// `corral run` of `spec`; stdout when it succeeded, else a panic with its stderr.
fn run_ok(env: &Env, spec: &Value) -> String {
    let out = env.run(spec);
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(&out)
}

/// The fields of the container's /proc/self/mountinfo line for `mount_point`: (per-mount
/// options, optional fields, super options).
fn mountinfo_of(info: &str, mount_point: &str) -> Option<(String, String, String)> {
    info.lines().rev().find_map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        let sep = f.iter().position(|x| *x == "-")?;
        (f.get(4) == Some(&mount_point)).then(|| {
            (
                f[5].to_string(),
                f[6..sep].join(" "),
                f.get(sep + 3).copied().unwrap_or("").to_string(),
            )
        })
    })
}

/// runtime.md "State": ociVersion, id, status, pid (created/running), bundle (absolute) and
/// annotations; status `stopped` once the process has exited.
#[test]
fn state_reports_the_required_properties() {
    let env = Env::new("mstate");
    let mut spec = env.spec(&["/probe", "sleep", "inf"]);
    spec["annotations"] = json!({"com.example.key": "value", "org.example.empty": ""});
    env.rootfs.write_config(&spec);
    ok(&env, &["create", "-b", &bundle(&env), &env.id]);
    let st = state(&env);
    let v = st["ociVersion"].as_str().unwrap();
    assert!(
        v.starts_with("1.") && v.split('.').count() == 3,
        "ociVersion {v}"
    );
    assert_eq!(st["id"], json!(env.id));
    assert_eq!(st["status"], "created");
    let pid = st["pid"].as_i64().unwrap();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    let b = st["bundle"].as_str().unwrap();
    assert!(b.starts_with('/'), "bundle {b} is not absolute");
    assert_eq!(
        std::fs::canonicalize(b).unwrap(),
        std::fs::canonicalize(env.bundle()).unwrap()
    );
    assert_eq!(st["annotations"], spec["annotations"]);
    ok(&env, &["start", &env.id]);
    assert_eq!(state(&env)["status"], "running");
    ok(&env, &["kill", &env.id, "KILL"]);
    let st = wait_status(&env, "stopped");
    assert_eq!(st["id"], json!(env.id));
    assert_eq!(st["annotations"], spec["annotations"]);
    ok(&env, &["delete", &env.id]);
    reap(pid);
}

/// runtime.md "Create": every property but `process` is applied by create (namespaces,
/// hostname, mounts, cgroups), while `process.args` runs only at start.
#[test]
fn create_applies_the_config_but_runs_the_program_only_at_start() {
    let env = Env::new("mcreate");
    let mut spec = sh(&env, "touch /ran");
    spec["root"]["readonly"] = json!(false);
    spec["hostname"] = json!("made-by-create");
    spec["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/made", "type": "tmpfs", "source": "tmpfs"}));
    spec["linux"]["resources"]["pids"] = json!({"limit": 37});
    env.rootfs.write_config(&spec);
    ok(&env, &["create", "-b", &bundle(&env), &env.id]);
    let pid = state(&env)["pid"].as_i64().unwrap();
    let host = |args: &[&str]| {
        let o = Command::new("nsenter")
            .args(["-t", &pid.to_string()])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    let hostname = host(&["-u", "hostname"]);
    let mountinfo = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let ran_early = env.rootfs.rootfs().join("ran").exists();
    ok(&env, &["start", &env.id]);
    wait_status(&env, "stopped");
    let ran = env.rootfs.rootfs().join("ran").exists();
    ok(&env, &["delete", &env.id]);
    reap(pid);
    assert_eq!(hostname, "made-by-create");
    assert!(
        mountinfo
            .lines()
            .any(|l| l.split(' ').nth(4) == Some("/made")),
        "{mountinfo}"
    );
    let pids_line = cgroup.lines().find(|l| l.contains(":pids:")).unwrap();
    assert!(pids_line.contains(&env.id), "{cgroup}");
    assert!(!ran_early, "the program ran at create");
    assert!(ran, "the program did not run at start");
}

/// runtime.md "Start": starting a container that is not `created` errors and has no effect.
#[test]
fn start_of_a_stopped_container_fails_and_changes_nothing() {
    let env = Env::new("mstart");
    let mut spec = sh(&env, "echo x >> /count");
    spec["root"]["readonly"] = json!(false);
    env.rootfs.write_config(&spec);
    ok(&env, &["create", "-b", &bundle(&env), &env.id]);
    let pid = state(&env)["pid"].as_i64().unwrap();
    ok(&env, &["start", &env.id]);
    wait_status(&env, "stopped");
    fails(
        &corral(&env, &["start", &env.id]),
        &["is stopped, not created"],
    );
    assert_eq!(state(&env)["status"], "stopped");
    let count = std::fs::read_to_string(env.rootfs.rootfs().join("count")).unwrap();
    ok(&env, &["delete", &env.id]);
    reap(pid);
    assert_eq!(count, "x\n", "the program ran again");
}

/// runtime.md "Kill": the signal reaches the container process, created or running.
#[test]
fn kill_sends_the_signal_to_created_and_running_containers() {
    let env = Env::new("mkill");
    let mut spec = sh(
        &env,
        "trap 'echo usr1 > /got; exit 0' USR1; touch /ready; while :; do sleep 0.05; done",
    );
    spec["root"]["readonly"] = json!(false);
    env.rootfs.write_config(&spec);
    // Running: the handler sees SIGUSR1.
    ok(&env, &["run", "-d", "-b", &bundle(&env), &env.id]);
    let pid = state(&env)["pid"].as_i64().unwrap();
    let ready = env.rootfs.rootfs().join("ready");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !ready.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    ok(&env, &["kill", &env.id, "USR1"]);
    wait_status(&env, "stopped");
    let got = std::fs::read_to_string(env.rootfs.rootfs().join("got")).unwrap_or_default();
    ok(&env, &["delete", &env.id]);
    reap(pid);
    assert_eq!(got, "usr1\n");
    // Created: SIGKILL stops it before it ever runs the program.
    std::fs::remove_file(&ready).unwrap();
    ok(&env, &["create", "-b", &bundle(&env), &env.id]);
    let pid = state(&env)["pid"].as_i64().unwrap();
    ok(&env, &["kill", &env.id, "KILL"]);
    wait_status(&env, "stopped");
    ok(&env, &["delete", &env.id]);
    reap(pid);
    assert!(
        !ready.exists(),
        "a killed created container ran its program"
    );
}

/// runtime.md "Delete": deleting a running container errors and has no effect on it.
#[test]
fn delete_of_a_running_container_fails_and_changes_nothing() {
    let env = Env::new("mdelrun");
    env.rootfs
        .write_config(&env.spec(&["/probe", "sleep", "inf"]));
    ok(&env, &["run", "-d", "-b", &bundle(&env), &env.id]);
    let pid = state(&env)["pid"].as_i64().unwrap();
    fails(&corral(&env, &["delete", &env.id]), &["is running"]);
    let alive = std::path::Path::new(&format!("/proc/{pid}")).exists();
    let st = state(&env);
    ok(&env, &["delete", "--force", &env.id]);
    reap(pid);
    assert!(alive, "the process is gone after a refused delete");
    assert_eq!(st["status"], "running");
}

/// runtime.md "Delete": "Attempting to delete a container that is not stopped MUST have no
/// effect on the container and MUST generate an error" — a `created` container included
/// (runtime-tools' delete test checks exactly this). Not met: corral deletes a created
/// container as runc does (containerd's shim relies on that to clean up a task that never
/// started). Run with `--ignored` to see it.
#[test]
#[ignore = "not met on purpose: corral deletes a created container as runc does"]
fn delete_of_a_created_container_fails() {
    let env = Env::new("mdelcreated");
    env.rootfs.write_config(&env.spec(&["/bin/true"]));
    ok(&env, &["create", "-b", &bundle(&env), &env.id]);
    let pid = state(&env)["pid"].as_i64().unwrap();
    let out = corral(&env, &["delete", &env.id]);
    let _ = corral(&env, &["delete", "--force", &env.id]);
    reap(pid);
    fails(&out, &["created"]);
}

/// runtime.md "Lifecycle" 7: "If any startContainer hook fails, the runtime MUST generate an
/// error, stop the container, and continue the lifecycle at step 12" (no poststart hook).
#[test]
#[ignore = "not met on purpose: a failing startContainer hook warns and start succeeds, as in runc 1.1 and youki"]
fn a_failing_start_container_hook_fails_start() {
    let env = Env::new("mstarthook");
    let mut spec = env.spec(&["/bin/true"]);
    spec["hooks"] = json!({"startContainer": [{"path": "/bin/false"}]});
    env.rootfs.write_config(&spec);
    ok(&env, &["create", "-b", &bundle(&env), &env.id]);
    let pid = state(&env)["pid"].as_i64().unwrap();
    let out = corral(&env, &["start", &env.id]);
    let _ = corral(&env, &["delete", "--force", &env.id]);
    reap(pid);
    fails(&out, &["hooks.startContainer[0]"]);
}

/// runtime.md "Delete": resources associated with the container but not created by it are
/// not deleted: a cgroup that existed before (the parent of an absolute cgroupsPath) and a
/// joined network namespace survive.
#[test]
fn delete_keeps_what_create_did_not_make() {
    let env = Env::new("mkeep");
    let name = format!("{}-pre", env.id);
    let pre = std::path::PathBuf::from("/sys/fs/cgroup/pids").join(&name);
    std::fs::create_dir(&pre).unwrap();
    struct Rm(std::path::PathBuf);
    impl Drop for Rm {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir(&self.0);
        }
    }
    let _rm = Rm(pre.clone());
    let holder = common::Holder::spawn(Command::new("unshare").args(["--net", "sleep", "60"]));
    let netns = format!("/proc/{}/ns/net", holder.pid());
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::read_link(&netns).ok() == std::fs::read_link("/proc/self/ns/net").ok()
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    let before = std::fs::read_link(&netns).unwrap();
    let mut spec = env.spec(&["/bin/true"]);
    spec["linux"]["cgroupsPath"] = json!(format!("/{name}/leaf"));
    for n in spec["linux"]["namespaces"].as_array_mut().unwrap() {
        if n["type"] == "network" {
            n["path"] = json!(netns);
        }
    }
    run_ok(&env, &spec);
    assert!(pre.is_dir(), "the pre-existing cgroup {pre:?} was removed");
    assert_eq!(std::fs::read_link(&netns).unwrap(), before);
}

/// runtime.md "Operations": state, create, start, kill and delete without a container id
/// error.
#[test]
fn operations_without_an_id_fail() {
    let env = Env::new("mnoid");
    for op in ["state", "create", "start", "kill", "delete"] {
        let out = corral(&env, &[op]);
        assert!(!out.status.success(), "{op} without an id succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("<ID>"), "{op}: {err}");
    }
}

/// config.md "Root": a path relative to the bundle; `readonly: false` leaves the root
/// writable; a missing directory is an error naming root.path.
#[test]
fn root_path_and_readonly() {
    let env = Env::new("mroot");
    let mut spec = sh(&env, "touch /written && echo ok");
    spec["root"] = json!({"path": "rootfs", "readonly": false});
    assert_eq!(run_ok(&env, &spec), "ok\n");
    assert!(env.rootfs.rootfs().join("written").exists());
    spec["root"] = json!({"path": "rootfs", "readonly": true});
    spec["process"]["args"] = json!(["/bin/sh", "-c", "touch /written2 2>/dev/null || echo ro"]);
    assert_eq!(run_ok(&env, &spec), "ro\n");
    spec["root"]["path"] = json!("no-such-rootfs");
    fails(&env.run(&spec), &["root.path", "no-such-rootfs"]);
}

/// config.md "Mounts": entries are mounted in the listed order (a later mount on the same
/// destination covers the earlier; a mount inside another needs the outer one first); a
/// relative destination is taken relative to "/".
#[test]
fn mounts_in_the_listed_order() {
    let env = Env::new("morder");
    let mut spec = env.spec(&["/bin/cat", "/proc/self/mountinfo"]);
    let m = spec["mounts"].as_array_mut().unwrap();
    m.push(json!({"destination": "/tmp/stack", "type": "tmpfs", "source": "first", "options": ["size=1m"]}));
    m.push(json!({"destination": "/tmp/stack", "type": "tmpfs", "source": "second", "options": ["size=2m"]}));
    m.push(json!({"destination": "/tmp/outer", "type": "tmpfs", "source": "outer"}));
    m.push(json!({"destination": "/tmp/outer/inner", "type": "tmpfs", "source": "inner"}));
    m.push(json!({"destination": "tmp/relative", "type": "tmpfs", "source": "rel"}));
    let info = run_ok(&env, &spec);
    let sources: Vec<(&str, &str)> = info
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let sep = f.iter().position(|x| *x == "-")?;
            Some((f[4], f[sep + 2]))
        })
        .filter(|(mp, _)| mp.starts_with("/tmp/"))
        .collect();
    assert_eq!(
        sources,
        [
            ("/tmp/stack", "first"),
            ("/tmp/stack", "second"),
            ("/tmp/outer", "outer"),
            ("/tmp/outer/inner", "inner"),
            ("/tmp/relative", "rel"),
        ],
        "{info}"
    );
}

/// config.md "Linux mount options": the options the spec says runtimes MUST implement are
/// accepted and the ones the mount table shows hold.
#[test]
fn linux_mount_options_are_honoured() {
    let env = Env::new("mopts");
    let data = tempfile::Builder::new()
        .prefix(&format!("{}-src-", env.id))
        .tempdir()
        .unwrap();
    let mut spec = env.spec(&["/bin/cat", "/proc/self/mountinfo"]);
    let cases: &[(&str, &[&str], &str, &str)] = &[
        // (destination, options, want in mount options, want in super options)
        ("/o/ro", &["ro"], "ro", ""),
        ("/o/rw", &["rw"], "rw", ""),
        (
            "/o/nosuid",
            &["nosuid", "nodev", "noexec"],
            "nosuid,nodev,noexec",
            "",
        ),
        ("/o/suid", &["suid", "dev", "exec"], "rw,relatime", ""),
        (
            "/o/noatime",
            &["noatime", "nodiratime"],
            "noatime,nodiratime",
            "",
        ),
        ("/o/strictatime", &["strictatime"], "rw", ""),
        (
            "/o/relatime",
            &["relatime", "diratime", "atime"],
            "relatime",
            "",
        ),
        ("/o/sync", &["sync", "dirsync"], "", "sync,dirsync"),
        ("/o/async", &["async", "defaults", "loud"], "rw", ""),
        ("/o/silent", &["silent"], "rw", ""),
        ("/o/lazytime", &["lazytime"], "", "lazytime"),
        (
            "/o/nolazytime",
            &["nolazytime", "noiversion", "iversion"],
            "rw",
            "",
        ),
        ("/o/norelatime", &["norelatime", "nostrictatime"], "rw", ""),
    ];
    let m = spec["mounts"].as_array_mut().unwrap();
    for (dest, opts, _, _) in cases {
        m.push(json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": opts}));
    }
    for (dest, opts) in [
        ("/b/bind", &["bind"][..]),
        ("/b/rbind", &["rbind", "rprivate"]),
        ("/b/private", &["bind", "private"]),
        ("/b/slave", &["bind", "slave"]),
        ("/b/rslave", &["rbind", "rslave"]),
        ("/b/unbindable", &["bind", "unbindable"]),
        ("/b/runbindable", &["rbind", "runbindable"]),
    ] {
        m.push(
            json!({"destination": dest, "type": "none", "source": data.path(), "options": opts}),
        );
    }
    let info = run_ok(&env, &spec);
    for (dest, opts, mnt, sup) in cases {
        let (o, _, s) = mountinfo_of(&info, dest).unwrap_or_else(|| panic!("no {dest}: {info}"));
        for w in mnt.split(',').filter(|w| !w.is_empty()) {
            assert!(
                o.split(',').any(|x| x == w),
                "{dest} {opts:?}: mount options {o} lack {w}"
            );
        }
        for w in sup.split(',').filter(|w| !w.is_empty()) {
            assert!(
                s.split(',').any(|x| x == w) || o.split(',').any(|x| x == w),
                "{dest} {opts:?}: options {o} / {s} lack {w}"
            );
        }
    }
    let ro = mountinfo_of(&info, "/o/rw").unwrap().0;
    assert!(!ro.split(',').any(|x| x == "ro"), "{ro}");
    let strict = mountinfo_of(&info, "/o/strictatime").unwrap().0;
    assert!(
        !strict.contains("relatime") && !strict.contains("noatime"),
        "{strict}"
    );
    for dest in ["/b/bind", "/b/rbind", "/b/private"] {
        let (_, tags, _) = mountinfo_of(&info, dest).unwrap();
        assert!(!tags.contains("shared:"), "{dest}: {tags}");
    }
    for dest in ["/b/unbindable", "/b/runbindable"] {
        let (_, tags, _) = mountinfo_of(&info, dest).unwrap();
        assert!(tags.contains("unbindable"), "{dest}: {tags}");
    }
    for dest in ["/b/slave", "/b/rslave"] {
        let (_, tags, _) = mountinfo_of(&info, dest).unwrap();
        assert!(!tags.contains("shared:"), "{dest}: {tags}");
    }
}

/// config.md "Linux Process": noNewPrivileges false leaves no_new_privs unset; config.md
/// "POSIX process": duplicated or unknown rlimits are errors; a relative cwd, a missing
/// `process` are errors; consoleSize is ignored without a terminal.
#[test]
fn process_fields() {
    let env = Env::new("mproc");
    let mut spec = env.spec(&[]);
    spec["process"]["noNewPrivileges"] = json!(false);
    spec["process"]["consoleSize"] = json!({"height": 10, "width": 20});
    let r = env.report(spec, &[]);
    assert_eq!(r["no_new_privs"], 0, "{r}");
    assert_eq!(r["stdin_tty"], false);

    let mut spec = env.spec(&["/bin/true"]);
    spec["process"]["rlimits"] = json!([
        {"type": "RLIMIT_NOFILE", "soft": 100, "hard": 100},
        {"type": "RLIMIT_NOFILE", "soft": 200, "hard": 200}
    ]);
    fails(&env.run(&spec), &["process.rlimits[1]", "RLIMIT_NOFILE"]);
    spec["process"]["rlimits"] = json!([{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]);
    fails(&env.run(&spec), &["config.json", "RLIMIT_BOGUS"]);
    let mut spec = env.spec(&["/bin/true"]);
    spec["process"]["cwd"] = json!("tmp");
    fails(&env.run(&spec), &["process.cwd", "not an absolute path"]);
    let mut spec = env.spec(&["/bin/true"]);
    spec.as_object_mut().unwrap().remove("process");
    fails(&env.run(&spec), &["process"]);
}

/// config.md "Linux Process": "If oomScoreAdj is not set, the runtime MUST NOT change the
/// value of oom_score_adj" — the container keeps its caller's.
#[test]
fn oom_score_adj_unset_is_left_alone() {
    let env = Env::new("moom");
    let mut spec = env.spec(&["/bin/cat", "/proc/self/oom_score_adj"]);
    spec["process"]
        .as_object_mut()
        .unwrap()
        .remove("oomScoreAdj");
    env.rootfs.write_config(&spec);
    let out = Command::new("sh")
        .arg("-c")
        .arg("echo 77 > /proc/self/oom_score_adj && exec \"$@\"")
        .arg("sh")
        .arg(common::corral())
        .arg("--root")
        .arg(env.state_root())
        .args(["run", "-b"])
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
    assert_eq!(stdout(&out), "77\n");
}

/// config-linux.md "Namespaces": a namespace path MUST be absolute (a relative one is an
/// error, never resolved against corral's cwd); a type listed twice is an error; a type not
/// listed is the runtime's own.
#[test]
fn namespace_rules() {
    let env = Env::new("mns");
    let mut spec = env.spec(&["/bin/readlink", "/proc/self/ns/net"]);
    spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "network");
    let host = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert_eq!(run_ok(&env, &spec).trim(), host.to_string_lossy());

    // A relative path that would name the caller's own namespace from "/".
    let mut spec = env.spec(&["/bin/true"]);
    for n in spec["linux"]["namespaces"].as_array_mut().unwrap() {
        if n["type"] == "network" {
            n["path"] = json!(format!("proc/{}/ns/net", std::process::id()));
        }
    }
    env.rootfs.write_config(&spec);
    let out = env
        .command()
        .current_dir("/")
        .args(["run", "-b"])
        .arg(env.bundle())
        .arg(&env.id)
        .output()
        .unwrap();
    fails(&out, &["linux.namespaces[1].path", "not an absolute path"]);

    let mut spec = env.spec(&["/bin/true"]);
    spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "uts"}));
    fails(&env.run(&spec), &["linux.namespaces[", "uts", "twice"]);
}

/// config-linux.md "Default Devices" and runtime-linux.md "Dev symbolic links": null, zero,
/// full, random, urandom, tty as devices, ptmx (a symlink to pts/ptmx or a device), and the
/// fd, stdin, stdout, stderr links; "Devices": a listed device with its type, numbers,
/// mode and owner, a fifo and a block device too.
#[test]
fn default_devices_links_and_listed_devices() {
    let env = Env::new("mdev");
    let mut spec = sh(
        &env,
        "for d in null zero full random urandom tty ptmx d-blk d-fifo d-chr; do \
         stat -L -c \"$d %F %t:%T %a %u:%g\" /dev/$d; done; \
         for l in fd stdin stdout stderr ptmx; do echo \"$l $(readlink /dev/$l)\"; done",
    );
    spec["linux"]["devices"] = json!([
        {"path": "/dev/d-chr", "type": "c", "major": 1, "minor": 11, "fileMode": 416, "uid": 12, "gid": 34},
        {"path": "/dev/d-blk", "type": "b", "major": 7, "minor": 0, "fileMode": 384},
        {"path": "/dev/d-fifo", "type": "p", "fileMode": 420}
    ]);
    let text = run_ok(&env, &spec);
    let lines: Vec<&str> = text.lines().collect();
    for (i, want) in [
        "null character special file 1:3",
        "zero character special file 1:5",
        "full character special file 1:7",
        "random character special file 1:8",
        "urandom character special file 1:9",
        "tty character special file 5:0",
        "ptmx character special file 5:2",
        "d-blk block special file 7:0 600 ",
        "d-fifo fifo 0:0 644 ",
        "d-chr character special file 1:b 640 12:34",
    ]
    .iter()
    .enumerate()
    {
        assert!(
            lines[i].starts_with(want),
            "want {want:?}, got {:?}",
            lines[i]
        );
    }
    assert_eq!(
        &lines[10..14],
        [
            "fd /proc/self/fd",
            "stdin /proc/self/fd/0",
            "stdout /proc/self/fd/1",
            "stderr /proc/self/fd/2"
        ]
    );
}

/// config-linux.md "Devices": "If a file already exists at path that does not match the
/// requested device, the runtime MUST generate an error."
#[test]
fn a_device_over_a_file_that_does_not_match_fails() {
    let env = Env::new("mdevclash");
    let f = env.state_root().join("plain-file");
    std::fs::write(&f, "not a device").unwrap();
    let mut spec = env.spec(&["/bin/true"]);
    spec["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/dev/clash", "type": "none", "source": f, "options": ["bind"]}),
    );
    spec["linux"]["devices"] = json!([{"path": "/dev/clash", "type": "c", "major": 1, "minor": 3}]);
    fails(&env.run(&spec), &["/dev/clash"]);
}

/// config-linux.md "Default Devices": with a terminal, /dev/console is the bind-mounted
/// pseudoterminal.
#[test]
fn console_is_the_terminal() {
    let env = Env::new("mconsole");
    let mut spec = sh(
        &env,
        "stat -c '%F %t' /dev/console; stat -L -c '%t:%T' /proc/self/fd/0 /dev/console",
    );
    spec["process"]["terminal"] = json!(true);
    env.rootfs.write_config(&spec);
    let out = env
        .command()
        .args(["run", "-b"])
        .arg(env.bundle())
        .arg(&env.id)
        .stdin(std::process::Stdio::piped())
        .output()
        .unwrap();
    let text = stdout(&out).replace('\r', "");
    assert!(out.status.success(), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    // devpts majors are 136..143.
    assert!(lines[0].starts_with("character special file 88"), "{text}");
    assert_eq!(
        lines[1], lines[2],
        "/dev/console is not the process's terminal: {text}"
    );
}

/// config-linux.md "Allowed Device list": "The runtime MUST apply entries in the listed
/// order": an allow then a deny of the same device denies it; the reverse allows it.
#[test]
fn device_cgroup_rules_apply_in_order() {
    let env = Env::new("mdevorder");
    let caps = json!(["CAP_MKNOD"]);
    // (mknod itself is allowed by runc's default rules, "c *:* m".)
    let mut spec = sh(
        &env,
        "mknod /dev/k c 1 11 && (exec 3>/dev/k) 2>/dev/null && echo opened || echo denied",
    );
    spec["process"]["capabilities"] =
        json!({"bounding": caps, "effective": caps, "permitted": caps});
    let allow = json!({"allow": true, "type": "c", "major": 1, "minor": 11, "access": "w"});
    let deny = json!({"allow": false, "type": "c", "major": 1, "minor": 11, "access": "w"});
    let all = json!({"allow": false, "access": "rwm"});
    spec["linux"]["resources"]["devices"] = json!([all, deny, allow]);
    assert_eq!(run_ok(&env, &spec), "opened\n");
    spec["linux"]["resources"]["devices"] = json!([all, allow, deny]);
    assert_eq!(run_ok(&env, &spec), "denied\n");
}

/// config-linux.md "Readonly Paths" and "Rootfs Mount Propagation": a read-only path cannot
/// be written; `private` and `shared` roots are what they say. (`unbindable` fails create
/// here: see docs/oci-conformance.md.)
#[test]
fn readonly_paths_and_root_propagation() {
    let env = Env::new("mprop");
    let mut spec = sh(
        &env,
        "touch /etc/x 2>/dev/null && echo etc-writable; touch /tmp/x && echo tmp-writable; \
         cat /proc/self/mountinfo",
    );
    spec["root"]["readonly"] = json!(false);
    spec["linux"]["readonlyPaths"] = json!(["/etc"]);
    for (prop, want, not) in [
        ("private", "", "shared:"),
        ("shared", "shared:", "unbindable"),
    ] {
        spec["linux"]["rootfsPropagation"] = json!(prop);
        let text = run_ok(&env, &spec);
        assert!(text.starts_with("tmp-writable\n"), "{prop}: {text}");
        let (_, tags, _) = mountinfo_of(&text, "/").unwrap();
        assert!(tags.contains(want), "{prop}: root has {tags:?}");
        assert!(!tags.contains(not), "{prop}: root has {tags:?}");
    }
}

/// config.md "Valid values" ("Runtimes MUST generate an error when invalid or unsupported
/// values are encountered") for values the spec itself rules out: an empty annotation key,
/// a non-string annotation value, a hook timeout of 0, seccomp listenerMetadata without
/// listenerPath, an errnoRet on an action without errno, a rule with no names, a weightDevice
/// entry with neither weight nor leafWeight; and corral's refused fields: unified, a
/// cgroupsPath with "..".
#[test]
fn invalid_values_are_refused() {
    let env = Env::new("minvalid");
    let base = env.spec(&["/bin/true"]);
    let with = |f: &dyn Fn(&mut Value)| {
        let mut s = base.clone();
        f(&mut s);
        s
    };
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (
            with(&|s| s["annotations"] = json!({"": "v"})),
            vec!["annotations", "empty"],
        ),
        (
            with(&|s| s["annotations"] = json!({"k": 1})),
            vec!["config.json", "string"],
        ),
        (
            with(&|s| s["hooks"] = json!({"poststart": [{"path": "/bin/true", "timeout": 0}]})),
            vec!["hooks.poststart[0].timeout", "greater than zero"],
        ),
        (
            with(&|s| {
                s["linux"]["seccomp"] =
                    json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "x"})
            }),
            vec!["linux.seccomp.listenerMetadata", "listenerPath"],
        ),
        (
            with(&|s| {
                s["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
                    "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ALLOW", "errnoRet": 5}]})
            }),
            vec!["linux.seccomp.syscalls[0]", "SCMP_ACT_ALLOW"],
        ),
        (
            with(&|s| {
                s["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
                    "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]})
            }),
            vec!["linux.seccomp", "names no syscall"],
        ),
        (
            with(&|s| {
                s["linux"]["resources"]["blockIO"] =
                    json!({"weightDevice": [{"major": 8, "minor": 0}]})
            }),
            vec!["linux.resources.blockIO.weightDevice[0]", "weight"],
        ),
        (
            with(&|s| s["linux"]["resources"]["unified"] = json!({"pids.max": "10"})),
            vec!["linux.resources.unified"],
        ),
        (
            with(&|s| s["linux"]["cgroupsPath"] = json!("../../escape")),
            vec!["cgroup", "escape"],
        ),
    ];
    for (spec, needles) in cases {
        fails(&env.run(&spec), &needles);
    }
}

/// config.md "POSIX-platform Hooks": prestart before createRuntime before createContainer
/// (at create), startContainer before the program, poststart after the program started but
/// before start returns, poststop at delete.
#[test]
fn hooks_run_in_the_lifecycle_order() {
    let env = Env::new("mhooks");
    let dir = tempfile::Builder::new()
        .prefix(&format!("{}-hooks-", env.id))
        .tempdir()
        .unwrap();
    let log = dir.path().join("log");
    let d = dir.path().display().to_string();
    let hook = |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("echo {name} >> {}", log.display())]});
    let mut spec = env.spec(&[
        "/bin/sh",
        "-c",
        &format!("echo program >> {d}/log; sleep 0.2"),
    ]);
    // The log dir is bound at the same path inside, for startContainer and the program.
    spec["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": d, "type": "none", "source": d, "options": ["rbind"]}));
    // poststart: the container process is already the program (not corral).
    let poststart = json!({"path": "/bin/sh", "args": ["sh", "-c", format!(
        "pid=$(sed 's/.*\"pid\":\\([0-9]*\\).*/\\1/'); \
         echo poststart $(basename $(readlink /proc/$pid/exe)) >> {}", log.display())]});
    spec["hooks"] = json!({
        "prestart": [hook("prestart")],
        "createRuntime": [hook("createRuntime")],
        "createContainer": [hook("createContainer")],
        "startContainer": [hook("startContainer")],
        "poststart": [poststart],
        "poststop": [hook("poststop")]
    });
    env.rootfs.write_config(&spec);
    ok(&env, &["create", "-b", &bundle(&env), &env.id]);
    let pid = state(&env)["pid"].as_i64().unwrap();
    let after_create = std::fs::read_to_string(&log).unwrap();
    ok(&env, &["start", &env.id]);
    let after_start = std::fs::read_to_string(&log).unwrap();
    wait_status(&env, "stopped");
    ok(&env, &["delete", &env.id]);
    reap(pid);
    let all = std::fs::read_to_string(&log).unwrap();
    assert_eq!(after_create, "prestart\ncreateRuntime\ncreateContainer\n");
    assert!(
        after_start.starts_with(&after_create) && after_start.contains("poststart busybox\n"),
        "{after_start}"
    );
    let lines: Vec<&str> = all.lines().collect();
    assert_eq!(lines[3], "startContainer", "{all}");
    assert_eq!(lines.last(), Some(&"poststop"), "{all}");
    assert!(lines.contains(&"program"), "{all}");
}

/// config-linux.md "Network Devices": the moved device is up in the container, and keeps its
/// permanent addresses of global scope (documentation ranges on a veth the test made; no
/// traffic is sent).
#[test]
fn net_devices_come_up() {
    let env = Env::new("mnetdev");
    let dev = format!("crm{}", std::process::id() % 1_000_000);
    let peer = format!("{dev}p");
    let ip = |args: &[&str]| {
        let o = Command::new("ip").args(args).output().unwrap();
        assert!(
            o.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    ip(&["link", "add", &dev, "type", "veth", "peer", "name", &peer]);
    struct DelLink(String);
    impl Drop for DelLink {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["link", "del", &self.0]).output();
        }
    }
    let _guard = DelLink(dev.clone());
    ip(&["addr", "add", "192.0.2.77/24", "dev", &dev]);
    ip(&["addr", "add", "2001:db8::77/64", "dev", &dev, "nodad"]);
    let mut spec = env.spec(&[
        "/bin/sh",
        "-c",
        "cat /sys/class/net/eth5/flags; ip -o addr show dev eth5",
    ]);
    spec["linux"]["netDevices"] = json!({ dev.clone(): {"name": "eth5"} });
    let text = run_ok(&env, &spec);
    let first = text.lines().next().unwrap_or("");
    let flags = u32::from_str_radix(first.trim().trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "eth5 is not up: {text}");
    assert!(text.contains("192.0.2.77/24"), "IPv4 address lost: {text}");
    assert!(
        text.contains("2001:db8::77/64"),
        "IPv6 address lost: {text}"
    );
}

/// config-linux.md "Network Devices": "The runtime MUST check if moving the network interface
/// to the container namespace is possible" and a name that exists there is an error; runtime.md
/// "Errors": the error leaves the host as it was (the device is not moved).
#[test]
fn net_device_name_clash_is_refused_before_the_move() {
    let env = Env::new("mnetclash");
    let dev = format!("crn{}", std::process::id() % 1_000_000);
    let ip = |args: &[&str]| {
        let o = Command::new("ip").args(args).output().unwrap();
        assert!(o.status.success(), "ip {args:?}");
    };
    // "lo" always exists in a new network namespace.
    let (d2, p2) = (dev.clone(), format!("{dev}c"));
    ip(&["link", "add", &d2, "type", "veth", "peer", "name", &p2]);
    struct DelLink(String);
    impl Drop for DelLink {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["link", "del", &self.0]).output();
        }
    }
    let _guard2 = DelLink(d2.clone());
    let mut spec = env.spec(&["/bin/true"]);
    spec["linux"]["netDevices"] = json!({ d2.clone(): {"name": "lo"} });
    fails(&env.run(&spec), &["\"lo\"", "File exists"]);
    let on_host = std::fs::metadata(format!("/sys/class/net/{d2}")).is_ok();
    assert!(on_host, "a refused move left {d2} off the host");
}

/// config.md "Linux mount options": `shared` and `rshared` bind mounts are shared (a peer
/// group of their own).
#[test]
fn shared_bind_mounts_are_shared() {
    let env = Env::new("mshared");
    let data = tempfile::Builder::new()
        .prefix(&format!("{}-src-", env.id))
        .tempdir()
        .unwrap();
    let mut spec = env.spec(&["/bin/cat", "/proc/self/mountinfo"]);
    let m = spec["mounts"].as_array_mut().unwrap();
    m.push(json!({"destination": "/b/shared", "type": "none", "source": data.path(), "options": ["bind", "shared"]}));
    m.push(json!({"destination": "/b/rshared", "type": "none", "source": data.path(), "options": ["rbind", "rshared"]}));
    let info = run_ok(&env, &spec);
    for dest in ["/b/shared", "/b/rshared"] {
        let (_, tags, _) = mountinfo_of(&info, dest).unwrap();
        assert!(tags.contains("shared:"), "{dest}: {tags:?}");
    }
}

/// config-linux.md "Rootfs Mount Propagation": an `unbindable` root.
#[test]
fn unbindable_root() {
    let env = Env::new("munbind");
    let mut spec = env.spec(&["/bin/cat", "/proc/self/mountinfo"]);
    spec["linux"]["rootfsPropagation"] = json!("unbindable");
    let info = run_ok(&env, &spec);
    let (_, tags, _) = mountinfo_of(&info, "/").unwrap();
    assert!(tags.contains("unbindable"), "{tags:?}");
}

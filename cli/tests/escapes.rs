//! Attacks on the runtime, performed against real containers: each test does what an attacker
//! inside (or a hostile bundle) would, and fails if it works. One test per escape class of
//! issue 7: the cwd through a leaked fd (CVE-2024-21626), /proc/PID/fd and /proc/PID/exe of the
//! process being set up (CVE-2019-5736), the runtime's fds passed by --preserve-fds, a
//! startContainer hook from the image run with the runtime's privileges, the config re-read
//! after create, and `exec -p` without capabilities.
//!
//! `CORRAL_TEST_BIN=/path/to/old/corral cargo test --test escapes` runs them against another
//! build (each fails against the build before the fixes).

mod common;

use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use common::{cli, cli_ok, reap, Cleanup, Env};
use serde_json::{json, Value};

/// The default capabilities of `corral spec` (runc's): AUDIT_WRITE, KILL, NET_BIND_SERVICE.
const DEFAULT_CAPS: u64 = (1 << 29) | (1 << 5) | (1 << 10);
const CAP_SYS_ADMIN: u64 = 1 << 21;

fn state(env: &Env, id: &str) -> Value {
    serde_json::from_str(&cli_ok(env, &["state", id])).unwrap()
}

/// Starts `spec` detached as `id` in `env`'s state root.
fn run_detached<'a>(env: &'a Env, id: &str, spec: &Value) -> Cleanup<'a> {
    env.rootfs.write_config(spec);
    let bundle = env.bundle().to_string_lossy().into_owned();
    cli_ok(env, &["run", "-d", "-b", &bundle, id]);
    let pid = state(env, id)["pid"].as_i64().unwrap();
    Cleanup {
        env,
        id: id.to_string(),
        pid,
    }
}

fn hex_caps(v: &Value) -> u64 {
    u64::from_str_radix(v.as_str().unwrap_or("0"), 16).unwrap()
}

fn status_field(status: &str, key: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("no {key} in {status}"))
}

/// `process.cwd` naming a magic link to a host directory the caller holds open: the
/// container must not start there (CVE-2024-21626).
#[test]
fn cwd_through_a_leaked_fd_stays_inside_the_root() {
    let env = Env::new("esc-cwd");
    let host = tempfile::tempdir().unwrap();
    let secret = format!("host-secret-{}", env.id);
    std::fs::write(host.path().join("marker"), &secret).unwrap();
    let mut spec = env.spec(&["/bin/sh", "-c", "cat marker; cat ../marker; pwd"]);
    spec["process"]["cwd"] = json!("/proc/self/fd/7");
    env.rootfs.write_config(&spec);
    let dir = std::fs::File::open(host.path()).unwrap();
    let raw = dir.as_raw_fd();
    let mut cmd = env.command();
    cmd.args(["run", "-b"]).arg(env.bundle()).arg(&env.id);
    // SAFETY: dup2 is async-signal-safe; it leaves fd 7 open across exec.
    unsafe {
        cmd.pre_exec(move || {
            // Through a high copy: `raw` may be 7 itself (and close-on-exec).
            let tmp = libc::fcntl(raw, libc::F_DUPFD_CLOEXEC, 100);
            if tmp < 0 || libc::dup2(tmp, 7) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!(
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !stdout.contains(&secret),
        "the container read a host file through its cwd: {stdout}"
    );
    common::assert_fails(&out, 1, &["chdir", "/proc/self/fd/7"]);
}

/// `exec --cwd /proc/self/fd/N`: whatever fd N the runtime held (its state-dir lock, the
/// caller's), the exec'd process's cwd stays inside the container.
#[test]
fn exec_cwd_through_runtime_fds_stays_inside_the_root() {
    let env = Env::new("esc-xcwd");
    let c = run_detached(&env, &env.id, &env.spec(&["/probe", "sleep", "inf"]));
    // A marker in the container's state dir (a host directory the runtime holds open) and in
    // the state root: reading either from inside is an escape.
    let secret = format!("host-secret-{}", env.id);
    std::fs::write(env.state_root().join(&env.id).join("marker"), &secret).unwrap();
    std::fs::write(env.state_root().join("marker"), &secret).unwrap();
    for n in 3..12 {
        let cwd = format!("/proc/self/fd/{n}");
        let out = cli(
            &env,
            &[
                "exec",
                "--cwd",
                &cwd,
                &env.id,
                "/bin/sh",
                "-c",
                "cat marker ../marker 2>/dev/null; ls ../../.. 2>/dev/null",
            ],
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            !stdout.contains(&secret),
            "exec --cwd {cwd} read a host file: {stdout}"
        );
        assert_ne!(out.status.code(), Some(0), "exec --cwd {cwd} ran: {stdout}");
    }
    drop(c);
}

/// A second container joins the first one's pid namespace and waits at its start gate: from
/// the first, its /proc/PID/fd (host directories) and /proc/PID/exe (the runtime binary) must
/// be out of reach (CVE-2019-5736 without a race).
#[test]
fn a_process_being_set_up_is_out_of_reach_from_the_container() {
    let env = Env::new("esc-proc");
    let a = run_detached(&env, &env.id, &env.spec(&["/probe", "sleep", "inf"]));
    let b_id = format!("{}-b", env.id);
    let mut spec = env.spec(&["/probe", "sleep", "inf"]);
    for ns in spec["linux"]["namespaces"].as_array_mut().unwrap() {
        if ns["type"] == "pid" {
            ns["path"] = json!(format!("/proc/{}/ns/pid", a.pid));
        }
    }
    let b_bundle = tempfile::tempdir().unwrap();
    std::fs::write(
        b_bundle.path().join("config.json"),
        serde_json::to_vec(&spec).unwrap(),
    )
    .unwrap();
    cli_ok(
        &env,
        &["create", "-b", &b_bundle.path().to_string_lossy(), &b_id],
    );
    let b_pid = state(&env, &b_id)["pid"].as_i64().unwrap();
    let b = Cleanup {
        env: &env,
        id: b_id.clone(),
        pid: b_pid,
    };
    // B's pid as A sees it: the last NSpid.
    let status = std::fs::read_to_string(format!("/proc/{b_pid}/status")).unwrap();
    let inner = status_field(&status, "NSpid")
        .split_whitespace()
        .last()
        .unwrap()
        .to_string();
    let mark = format!("escaped-{}", env.id);
    // Listing the fd numbers is allowed to root (it owns the directory); following them is
    // not.
    let script = format!(
        "readlink /proc/1/fd/0 >/dev/null && echo CONTROL; \
         cat /proc/{inner}/exe >/dev/null 2>&1 && echo EXE; \
         for f in /proc/{inner}/fd/*; do \
           readlink $f 2>/dev/null && echo LINK; \
           echo x > $f/../{mark} 2>/dev/null && echo WROTE; \
         done; true"
    );
    let out = cli_ok(&env, &["exec", &env.id, "/bin/sh", "-c", &script]);
    assert!(
        out.contains("CONTROL"),
        "the check itself did not run: {out}"
    );
    assert!(
        !out.contains("LINK") && !out.contains("EXE") && !out.contains("WROTE"),
        "a container process reached the process being set up: {out}"
    );
    assert!(
        !env.state_root().join(&mark).exists(),
        "a container process wrote into the host's state root"
    );
    drop(b);
    drop(a);
}

/// A racer inside the container watches /proc for the runtime's copy entering it (`exec`)
/// and tries its fds and exe, as the CVE-2019-5736 exploits do. Bounded: 40 execs.
#[test]
fn a_racer_in_the_container_never_reaches_exec_processes() {
    let env = Env::new("esc-race");
    let mut spec = env.spec(&[
        "/bin/sh",
        "-c",
        "/probe race 120 /tmp/stop > /tmp/race.json.tmp; mv /tmp/race.json.tmp /tmp/race.json",
    ]);
    spec["root"]["readonly"] = json!(false);
    let tmp = env.rootfs.rootfs().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let c = run_detached(&env, &env.id, &spec);
    let mut rounds = 0;
    while rounds < 40 {
        cli_ok(&env, &["exec", &env.id, "/bin/true"]);
        rounds += 1;
    }
    std::fs::write(tmp.join("stop"), "").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !tmp.join("race.json").exists() {
        assert!(Instant::now() < deadline, "the racer did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    let r: Value = serde_json::from_slice(&std::fs::read(tmp.join("race.json")).unwrap()).unwrap();
    eprintln!("racer: {r}");
    // It may catch a process in the instant after its execve, when it is the container's
    // program with only its stdio: those fds and that executable are fine. Anything of the
    // runtime's is not: its sockets, pidfds, signalfds, namespaces, state dir, or its binary.
    let root = env.state_root().to_string_lossy().into_owned();
    for t in r["targets"].as_array().unwrap() {
        let t = t.as_str().unwrap();
        let fine = t == "/dev/null" || t.starts_with("/tmp/#") || t.starts_with("pipe:");
        assert!(
            fine && !t.contains(&root),
            "the racer reached a runtime fd ({t}): {r}"
        );
    }
    let bin = std::fs::metadata(common::corral()).unwrap();
    let bin_id = format!(
        "{}:{}",
        std::os::unix::fs::MetadataExt::dev(&bin),
        std::os::unix::fs::MetadataExt::ino(&bin)
    );
    assert!(
        !r["exes"].as_array().unwrap().contains(&json!(bin_id)),
        "the racer opened the runtime binary through /proc/PID/exe: {r}"
    );
    assert!(
        r["seen"].as_i64().unwrap_or(0) > 0,
        "the racer never saw an exec'd process being set up in 40 execs, so the test proved nothing: {r}"
    );
    drop(c);
}

/// `run --preserve-fds 10` with the caller holding only fds 3 and 4: the container gets those
/// two and nothing of the runtime's (no signalfd, no state-dir fd).
#[test]
fn preserve_fds_passes_only_the_callers_fds() {
    let env = Env::new("esc-pfd");
    let files = tempfile::tempdir().unwrap();
    let f3 = std::fs::File::create(files.path().join("three")).unwrap();
    let f4 = std::fs::File::create(files.path().join("four")).unwrap();
    let (r3, r4) = (f3.as_raw_fd(), f4.as_raw_fd());
    let mut spec = env.spec(&["/probe", "report"]);
    spec["process"]["args"] = json!(["/probe", "report"]);
    env.rootfs.write_config(&spec);
    let mut cmd = env.command();
    cmd.args(["run", "--preserve-fds", "10", "-b"])
        .arg(env.bundle())
        .arg(&env.id);
    // SAFETY: dup2/close are async-signal-safe; fds 3 and 4 stay open across exec, 5..13
    // are closed.
    unsafe {
        cmd.pre_exec(move || {
            let t3 = libc::fcntl(r3, libc::F_DUPFD_CLOEXEC, 100);
            let t4 = libc::fcntl(r4, libc::F_DUPFD_CLOEXEC, 100);
            libc::dup2(t3, 3);
            libc::dup2(t4, 4);
            let mut fd = 5;
            while fd < 20 {
                libc::close(fd);
                fd += 1;
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    common::assert_exit(&out, 0);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let links = r["fd_links"].as_object().expect("fd_links").clone();
    let three = files.path().join("three").to_string_lossy().into_owned();
    let four = files.path().join("four").to_string_lossy().into_owned();
    for (fd, target) in &links {
        let n: i32 = fd.parse().unwrap();
        let t = target.as_str().unwrap_or("");
        match n {
            0..=2 => {}
            3 => assert!(t.ends_with("/three"), "fd 3 -> {t}, want {three}"),
            4 => assert!(t.ends_with("/four"), "fd 4 -> {t}, want {four}"),
            // The probe's own look at /proc/self/fd.
            _ => assert!(
                t.starts_with("/proc/"),
                "fd {n} -> {t} reached the container: {links:?}"
            ),
        }
    }
    assert!(
        links.contains_key("3") && links.contains_key("4"),
        "{links:?}"
    );
}

/// A startContainer hook is a binary of the image: it runs with the container process's
/// credentials, capabilities, no_new_privs, seccomp filter and cgroup, never the runtime's.
#[test]
fn start_container_hook_gets_the_containers_privileges_only() {
    let env = Env::new("esc-hook");
    let mut spec = env.spec(&[
        "/bin/sh",
        "-c",
        "cat /proc/self/status > /tmp/init.status; cat /proc/self/cgroup > /tmp/init.cgroup",
    ]);
    spec["root"]["readonly"] = json!(false);
    spec["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["keyctl"], "action": "SCMP_ACT_ERRNO"}]
    });
    spec["hooks"] = json!({
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c",
            "cat /proc/self/status > /tmp/hook.status; cat /proc/self/cgroup > /tmp/hook.cgroup; \
             mknod /tmp/hook-disk b 8 0 && echo made > /tmp/hook.mknod; true"]}]
    });
    let out = env.run(&spec);
    common::assert_exit(&out, 0);
    let tmp = env.rootfs.rootfs().join("tmp");
    let read = |n: &str| std::fs::read_to_string(tmp.join(n)).unwrap();
    let (hook, init) = (read("hook.status"), read("init.status"));
    let caps = |s: &str| u64::from_str_radix(&status_field(s, "CapEff"), 16).unwrap();
    assert_eq!(
        caps(&hook),
        DEFAULT_CAPS,
        "the hook's effective capabilities"
    );
    assert_eq!(caps(&hook), caps(&init));
    assert_eq!(status_field(&hook, "CapBnd"), status_field(&init, "CapBnd"));
    assert_eq!(status_field(&hook, "NoNewPrivs"), "1");
    assert_eq!(
        status_field(&hook, "Seccomp"),
        "2",
        "the hook runs under the filter"
    );
    assert_eq!(
        read("hook.cgroup"),
        read("init.cgroup"),
        "the hook's cgroup"
    );
    assert!(
        !tmp.join("hook-disk").exists(),
        "the hook made a device node"
    );
    assert!(!tmp.join("hook.mknod").exists());
}

/// Whatever happens to the bundle's config.json after create, start, exec and delete use
/// what create accepted: no capability added, no hook added.
#[test]
fn config_edited_after_create_changes_nothing() {
    let env = Env::new("esc-cfg");
    let spec = env.spec(&["/probe", "sleep", "inf"]);
    env.rootfs.write_config(&spec);
    let bundle = env.bundle().to_string_lossy().into_owned();
    cli_ok(&env, &["create", "-b", &bundle, &env.id]);
    let pid = state(&env, &env.id)["pid"].as_i64().unwrap();
    let c = Cleanup {
        env: &env,
        id: env.id.clone(),
        pid,
    };
    // The attacker's edit: every capability, and hooks that leave marks on the host.
    let marks = tempfile::tempdir().unwrap();
    let mut evil = spec.clone();
    let all: Vec<String> = [
        "CAP_SYS_ADMIN",
        "CAP_KILL",
        "CAP_AUDIT_WRITE",
        "CAP_NET_BIND_SERVICE",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for set in ["bounding", "effective", "permitted"] {
        evil["process"]["capabilities"][set] = json!(all);
    }
    evil["process"]["noNewPrivileges"] = json!(false);
    let touch = |name: &str| {
        json!([{"path": "/bin/sh", "args": ["sh", "-c",
            format!("touch {}", marks.path().join(name).display())]}])
    };
    evil["hooks"] = json!({
        "poststart": touch("poststart"),
        "poststop": touch("poststop"),
    });
    env.rootfs.write_config(&evil);
    cli_ok(&env, &["start", &env.id]);
    let out = cli_ok(&env, &["exec", &env.id, "/probe", "report"]);
    let r: Value = serde_json::from_str(&out).unwrap();
    let eff = hex_caps(&r["caps"]["eff"]);
    assert_eq!(
        eff & CAP_SYS_ADMIN,
        0,
        "exec got CAP_SYS_ADMIN from the edited config"
    );
    assert_eq!(eff, DEFAULT_CAPS);
    assert_eq!(r["no_new_privs"], 1);
    cli_ok(&env, &["delete", "--force", &env.id]);
    reap(pid);
    for m in ["poststart", "poststop"] {
        assert!(
            !marks.path().join(m).exists(),
            "a {m} hook added after create ran on the host"
        );
    }
    drop(c);
}

/// `exec -p process.json` that names no capabilities and no noNewPrivileges gets the
/// container's, not the runtime's full set.
#[test]
fn exec_process_json_without_capabilities_gets_the_containers() {
    let env = Env::new("esc-xp");
    let c = run_detached(&env, &env.id, &env.spec(&["/probe", "sleep", "inf"]));
    let p = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        p.path(),
        serde_json::to_vec(&json!({
            "args": ["/probe", "report"],
            "cwd": "/",
            "user": {"uid": 0, "gid": 0},
            "env": ["PATH=/bin"]
        }))
        .unwrap(),
    )
    .unwrap();
    let out = cli_ok(&env, &["exec", "-p", &p.path().to_string_lossy(), &env.id]);
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(hex_caps(&r["caps"]["eff"]), DEFAULT_CAPS, "{}", r["caps"]);
    assert_eq!(hex_caps(&r["caps"]["bnd"]), DEFAULT_CAPS, "{}", r["caps"]);
    assert_eq!(r["no_new_privs"], 1);
    drop(c);
}

/// A root whose `/proc` or `/sys` is a symlink (`/proc -> /tmp/fake`) is refused on purpose,
/// before anything is made, with an error naming the mount and the path (runc's
/// CVE-2019-19921: procfs mounted where the symlink pointed, so its masks missed). The child
/// holds to the same rule where it opens the mount point (`O_NOFOLLOW|O_DIRECTORY` inside the
/// root), so a root the parent could not check (an overlay of layers, made later) or one
/// changed after the check is refused too, and nothing is mounted at the link's target.
#[test]
fn symlinked_proc_or_sys_is_refused() {
    for (dir, typ) in [("proc", "proc"), ("sys", "sysfs")] {
        let env = Env::new("esc-procln");
        let root = env.rootfs.rootfs();
        std::fs::create_dir_all(root.join("tmp/fake")).unwrap();
        std::fs::remove_dir(root.join(dir)).unwrap();
        std::os::unix::fs::symlink("/tmp/fake", root.join(dir)).unwrap();
        let spec = env.spec(&["/bin/true"]);
        let i = spec["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .position(|m| m["type"] == typ)
            .unwrap();
        let out = env.run(&spec);
        let field = format!("mounts[{i}].destination");
        let dest = format!("/{dir} in the root is a symlink (to /tmp/fake)");
        common::assert_fails(&out, 1, &[&field, &dest, "must be an ordinary directory"]);
        // Nothing of it was made: no state dir under the root (the Env's leak check covers
        // cgroups and mounts).
        assert_eq!(
            std::fs::read_dir(env.state_root()).unwrap().count(),
            0,
            "{typ}: something left in the state root"
        );
        // The child's own check: an overlay root (not there when create checks the bundle).
        let out = env
            .command()
            .arg("run")
            .arg("--layer")
            .arg(root)
            .arg("-b")
            .arg(env.bundle())
            .arg(&env.id)
            .output()
            .unwrap();
        common::assert_fails(&out, 1, &[&format!("/{dir}"), "errno 20"]);
        assert_eq!(
            std::fs::read_dir(root.join("tmp/fake")).unwrap().count(),
            0,
            "{typ} was mounted at the symlink's target"
        );
    }
}

/// Issue 16: a bundle whose config has no deny-all device rule (no `linux.resources`, an
/// empty device list, or allows only) must not open the host's devices: with `CAP_MKNOD`
/// a container made a node for the host's disk and read it. Devices start from deny-all
/// whatever the config says; the standard devices still work.
#[test]
fn a_config_without_a_deny_all_device_rule_cannot_read_host_devices() {
    let env = Env::new("esc-devs");
    let caps = json!(["CAP_MKNOD", "CAP_DAC_OVERRIDE"]);
    let script = common::read_host_disk_script();
    let mut base = env.spec(&["/bin/sh", "-c", &script]);
    base["process"]["capabilities"] =
        json!({"bounding": caps, "effective": caps, "permitted": caps});
    let allow_null = json!({"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"});
    for (what, devices) in [
        ("no linux.resources", None),
        ("an empty device list", Some(json!([]))),
        ("allows only", Some(json!([allow_null]))),
    ] {
        let mut spec = base.clone();
        match devices {
            None => {
                spec["linux"].as_object_mut().unwrap().remove("resources");
            }
            Some(d) => spec["linux"]["resources"]["devices"] = d,
        }
        let out = env.run(&spec);
        let text = format!(
            "{}{}",
            common::stdout(&out),
            String::from_utf8_lossy(&out.stderr)
        );
        common::assert_exit(&out, 0);
        assert!(
            !text.contains("READ"),
            "{what}: the host's disk was read: {text}"
        );
        assert!(
            text.contains("Operation not permitted"),
            "{what}: not EPERM: {text}"
        );
        assert!(
            text.contains("NULL"),
            "{what}: /dev/null is unusable: {text}"
        );
    }
}

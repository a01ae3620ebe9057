//! Host-side checks of the probe binary and the testkit helpers.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use testkit::{assert_no_leaks, find_leaks, probe_path, unique_id, TestRootfs};

fn probe(args: &[&str]) -> Output {
    Command::new(probe_path())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run probe")
}

fn json_out(out: &Output) -> serde_json::Value {
    let s = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(s.trim()).unwrap_or_else(|e| panic!("invalid JSON ({e}): {s}"))
}

#[test]
fn probe_is_static() {
    let p = probe_path();
    assert!(p.is_file(), "{} missing", p.display());
    assert!(testkit::is_static_elf(p).unwrap(), "probe has PT_INTERP");
    if let Ok(out) = Command::new("file").arg("-L").arg(p).output() {
        let s = String::from_utf8_lossy(&out.stdout);
        if out.status.success() && !s.is_empty() {
            assert!(
                s.contains("statically linked") || s.contains("static-pie"),
                "{s}"
            );
        }
    }
}

#[test]
fn report_is_valid_json() {
    let out = probe(&["report", "/proc/self/status", "/nonexistent/x", "/"]);
    assert!(out.status.success(), "{out:?}");
    let v = json_out(&out);
    for key in [
        "pid",
        "ppid",
        "hostname",
        "domainname",
        "uid",
        "euid",
        "gid",
        "egid",
        "groups",
        "uid_map",
        "gid_map",
        "cgroup",
        "mounts",
        "pids",
        "caps",
        "no_new_privs",
        "seccomp",
        "rlimits",
        "fds",
        "cwd",
        "umask",
        "env",
        "args",
        "oom_score_adj",
        "netdevs",
        "lo_up",
        "time",
        "files",
    ] {
        assert!(v.get(key).is_some(), "missing key {key}: {v}");
    }
    assert!(v["pid"].as_i64().unwrap() > 1);
    assert!(v["pids"].as_array().unwrap().contains(&v["pid"]));
    assert!(v["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["mount_point"] == "/"));
    assert!(v["caps"]["bnd"].is_string());
    assert!(v["rlimits"]["RLIMIT_NOFILE"].as_array().unwrap().len() == 2);
    let fds: Vec<i64> = v["fds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect();
    assert!(fds.starts_with(&[0, 1, 2]), "{fds:?}");
    assert!(v["time"]["monotonic_s"].as_f64().unwrap() > 0.0);
    let f = &v["files"];
    assert_eq!(f["/proc/self/status"]["readable"], true);
    assert!(f["/proc/self/status"]["content"]
        .as_str()
        .unwrap()
        .contains("Uid:"));
    assert_eq!(f["/nonexistent/x"]["exists"], false);
    assert_eq!(f["/nonexistent/x"]["errno"], 2);
    assert_eq!(f["/"]["is_dir"], true);
    assert_eq!(v["args"][1], "report");
}

#[test]
fn report_escapes_strings() {
    let out = Command::new(probe_path())
        .arg("report")
        .env("CORRAL_WEIRD", "a\"b\\c\nd\te\u{1}f\u{e9}")
        .output()
        .unwrap();
    let v = json_out(&out);
    let env: Vec<&str> = v["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert!(
        env.contains(&"CORRAL_WEIRD=a\"b\\c\nd\te\u{1}f\u{e9}"),
        "{env:?}"
    );
}

#[test]
fn default_mode_is_report() {
    let out = probe(&[]);
    assert!(out.status.success());
    assert!(json_out(&out)["pid"].is_i64());
}

#[test]
fn exit_code() {
    assert_eq!(probe(&["exit", "3"]).status.code(), Some(3));
    assert_eq!(probe(&["exit", "0"]).status.code(), Some(0));
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(probe(&["bogus"]).status.code(), Some(2));
    assert_eq!(probe(&["exit"]).status.code(), Some(2));
    assert_eq!(probe(&["exit", "x"]).status.code(), Some(2));
}

#[test]
fn kill_self() {
    let st = probe(&["kill", "10"]).status;
    assert_eq!(st.signal(), Some(10), "{st:?}");
    let st = probe(&["kill", "TERM"]).status;
    assert_eq!(st.signal(), Some(15), "{st:?}");
}

#[test]
fn sleep_short() {
    let t = Instant::now();
    assert!(probe(&["sleep", "0.2"]).status.success());
    assert!(t.elapsed() >= Duration::from_millis(200));
}

#[test]
fn forkbomb_small() {
    let out = probe(&["forkbomb", "5"]);
    assert!(out.status.success(), "{out:?}");
    let v = json_out(&out);
    assert_eq!(v["started"], 5, "{v}");
    assert!(v["error"].is_null(), "{v}");
}

#[test]
fn spin_one_second() {
    let out = probe(&["spin", "1"]);
    assert!(out.status.success());
    let v = json_out(&out);
    let cpu = v["cpu_s"].as_f64().unwrap();
    let wall = v["wall_s"].as_f64().unwrap();
    assert!((1.0..1.5).contains(&wall), "{v}");
    // Loose lower bound: the host may be busy running other tests.
    assert!((0.3..1.5).contains(&cpu), "{v}");
}

#[test]
fn hog_20_mib() {
    let out = probe(&["hog", "20"]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("20 MiB"));
}

#[test]
fn write_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f");
    let out = probe(&["write", p.to_str().unwrap(), "hello"]);
    assert!(out.status.success());
    assert_eq!(json_out(&out)["ok"], true);
    assert_eq!(std::fs::read_to_string(&p).unwrap(), "hello");
    let out = probe(&["write", "/nonexistent/dir/f", "x"]);
    assert_eq!(out.status.code(), Some(1));
    let v = json_out(&out);
    assert_eq!(v["ok"], false);
    assert!(v["error"].is_string());
}

#[test]
fn echo_signals() {
    let mut child = Command::new(probe_path())
        .arg("echo-signals")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGUSR1,
    )
    .unwrap();
    assert_eq!(lines.next().unwrap().unwrap(), "10");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGWINCH,
    )
    .unwrap();
    assert_eq!(lines.next().unwrap().unwrap(), "28");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(lines.next().unwrap().unwrap(), "15");
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(0), "{st:?}");
}

#[test]
fn rootfs_layout_and_cleanup() {
    let bundle;
    {
        let r = TestRootfs::new();
        bundle = r.bundle().to_path_buf();
        assert_eq!(r.rootfs(), bundle.join("rootfs"));
        for d in ["proc", "dev", "sys", "tmp", "etc", "root"] {
            assert!(r.rootfs().join(d).is_dir(), "{d}");
        }
        let probe = r.rootfs().join("probe");
        assert_eq!(
            std::fs::metadata(&probe).unwrap().permissions().mode() & 0o777,
            0o755
        );
        assert!(testkit::is_static_elf(&r.rootfs().join("bin/busybox")).unwrap());
        for a in ["sh", "true", "readlink", "kill"] {
            assert_eq!(
                std::fs::read_link(r.rootfs().join("bin").join(a)).unwrap(),
                std::path::Path::new("busybox")
            );
        }
        r.write_config(&serde_json::json!({"ociVersion": "1.0.2"}));
        let cfg: serde_json::Value =
            serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
        assert_eq!(cfg["ociVersion"], "1.0.2");
    }
    assert!(!bundle.exists(), "bundle not removed");
}

#[test]
fn rootfs_runs_in_chroot() {
    testkit::require_root();
    let r = TestRootfs::new();
    let out = Command::new("chroot")
        .arg(r.rootfs())
        .args(["/bin/sh", "-c", "echo hi; /probe report /etc"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let s = String::from_utf8_lossy(&out.stdout);
    let (first, rest) = s.split_once('\n').unwrap();
    assert_eq!(first, "hi");
    let v: serde_json::Value = serde_json::from_str(rest.trim()).unwrap();
    assert_eq!(v["files"]["/etc"]["entries"], serde_json::json!([]));
}

#[test]
fn drop_detaches_leftover_mount() {
    testkit::require_root();
    let id = unique_id("dropmnt");
    let r = TestRootfs::with_id(&id);
    assert!(r.bundle().to_string_lossy().contains(&id));
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "tmpfs"])
        .arg(r.rootfs().join("tmp"))
        .status()
        .unwrap();
    assert!(st.success());
    assert!(find_leaks(&id, None)
        .iter()
        .any(|l| l.starts_with("mount:")));
    let bundle = r.bundle().to_path_buf();
    drop(r);
    assert!(!bundle.exists());
    assert_no_leaks(&id, None);
}

#[test]
fn leaks_detected() {
    let id = unique_id("leak");
    assert_no_leaks(&id, None);

    let state = tempfile::tempdir().unwrap();
    assert_no_leaks(&id, Some(state.path()));
    std::fs::create_dir(state.path().join(&id)).unwrap();
    let leaks = find_leaks(&id, Some(state.path()));
    assert_eq!(leaks.len(), 1, "{leaks:?}");
    assert!(leaks[0].starts_with("state dir:"));
    let r = std::panic::catch_unwind(|| assert_no_leaks(&id, Some(state.path())));
    assert!(r.is_err());
    std::fs::remove_dir(state.path().join(&id)).unwrap();

    // A process with the id on its command line is a leak.
    let mut child = Command::new(probe_path())
        .args(["sleep", "30", &id])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while find_leaks(&id, None).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let leaks = find_leaks(&id, None);
    assert!(
        leaks
            .iter()
            .any(|l| l.starts_with(&format!("process {}", child.id()))),
        "{leaks:?}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert_no_leaks(&id, Some(state.path()));
}

#[test]
fn report_in_fresh_namespaces() {
    testkit::require_root();
    let out = Command::new("unshare")
        .args(["--fork", "--pid", "--mount-proc", "--net", "--uts"])
        .arg(probe_path())
        .arg("report")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let v = json_out(&out);
    assert_eq!(v["pid"], 1);
    assert_eq!(v["pids"], serde_json::json!([1]));
    assert_eq!(v["netdevs"], serde_json::json!(["lo"]));
    assert_eq!(v["lo_up"], false);
}

#[test]
fn kill_as_pid1_exits_128_plus_sig() {
    testkit::require_root();
    let st = Command::new("unshare")
        .args(["--fork", "--pid", "--mount-proc"])
        .arg(probe_path())
        .args(["kill", "15"])
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(143), "{st:?}");
}

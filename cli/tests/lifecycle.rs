//! The OCI lifecycle through the CLI, as engines drive it: create, start, state, list, ps,
//! pause, resume, update, kill, delete; and commands in the wrong state.

mod common;

use common::{assert_fails, Env};
use serde_json::{json, Value};

use common::{cli as corral, cli_ok as ok, reap};

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
        1,
        &["is running, not created"],
    );

    ok(&env, &["pause", &env.id]);
    assert_eq!(state(&env)["status"], "paused");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    assert!(stat.contains(") D ") || stat.contains(") S "), "{stat}");
    assert_fails(
        &corral(&env, &["pause", &env.id]),
        1,
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
    assert_fails(&corral(&env, &["delete", &env.id]), 1, &["is running"]);
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
        1,
        &["is stopped, not running"],
    );
    assert_fails(&corral(&env, &["kill", &env.id]), 1, &["is stopped"]);
    ok(&env, &["delete", &env.id]);
    reap(pid);
    assert_fails(&corral(&env, &["state", &env.id]), 1, &["does not exist"]);
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
        1,
        &["container \"nosuch\" does not exist"],
    );
    assert_fails(&corral(&env, &["state", "nosuch"]), 1, &["does not exist"]);
    assert_fails(&corral(&env, &["kill", "nosuch"]), 1, &["does not exist"]);
    assert_fails(&corral(&env, &["delete", "nosuch"]), 1, &["does not exist"]);
    assert_fails(
        &corral(&env, &["kill", "nosuch", "SIGNOPE"]),
        1,
        &["unknown signal \"SIGNOPE\""],
    );
    assert_fails(&corral(&env, &["checkpoint", "x"]), 1, &["not supported"]);
    assert_fails(
        &corral(&env, &["--systemd-cgroup", "list"]),
        1,
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
    // It joins the container's session keyring.
    let ring = r["session_keyring"].as_str().unwrap_or_default();
    assert!(ring.ends_with(&format!(";{}", env.id)), "{r}");

    // Its exit status comes back; a missing executable is corral's failure (1, as runc).
    let out = corral(&env, &["exec", &env.id, "/bin/sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7));
    assert_fails(
        &corral(&env, &["exec", &env.id, "nosuch"]),
        1,
        &["\"nosuch\"", "not found"],
    );
    // Labels on a host without the module (this one runs neither) name the flag's field.
    assert_fails(
        &corral(&env, &["exec", "--apparmor", "p", &env.id, "/bin/true"]),
        1,
        &["exec.apparmorProfile", "no AppArmor"],
    );
    // An SELinux label where SELinux is off is ignored, as runc does.
    ok(
        &env,
        &["exec", "--process-label", "l", &env.id, "/bin/true"],
    );

    // execCPUAffinity: the final CPUs hold once it runs; an initial list of CPUs this host
    // lacks fails the exec, naming the field.
    let pj = env.state_root().join("affinity.json");
    let affinity = |a: Value| {
        let p = json!({"args": ["/probe", "report"], "cwd": "/", "user": {"uid": 0, "gid": 0},
                       "execCPUAffinity": a});
        std::fs::write(&pj, p.to_string()).unwrap();
        corral(&env, &["exec", "-p", &pj.to_string_lossy(), &env.id])
    };
    let out = affinity(json!({"initial": "0", "final": "1"}));
    let r: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(r["cpus_allowed"], "1");
    assert_fails(
        &affinity(json!({"initial": "4000"})),
        1,
        &["execCPUAffinity.initial", "Invalid argument"],
    );
    assert_fails(
        &affinity(json!({"final": "3-1"})),
        1,
        &["exec.execCPUAffinity.final", "bad range 3-1"],
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
        1,
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
        1,
        &["does not exist"],
    );
}

#[test]
fn containers_get_a_session_keyring_of_their_own() {
    let env = Env::new("keyring");
    env.rootfs.write_config(&env.spec(&["/probe", "report"]));
    let bundle = env.bundle().to_string_lossy().into_owned();
    let ring = |args: &[&str]| -> String {
        let r: Value = serde_json::from_str(&ok(&env, args)).unwrap();
        r["session_keyring"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    // type;uid;gid;perm;name: possessor all, owner view/read/search/link, named after the id.
    let own = ring(&["run", "-b", &bundle, &env.id]);
    assert_eq!(own, format!("keyring;0;0;3f1b0000;{}", env.id));
    // --no-new-keyring keeps the caller's (whatever it is: not the container's).
    let callers = ring(&["run", "--no-new-keyring", "-b", &bundle, &env.id]);
    assert!(!callers.ends_with(&env.id), "{callers}");
}

#[test]
fn exec_into_a_stopped_container_is_refused() {
    let env = Env::new("exec-stopped");
    env.rootfs.write_config(&env.spec(&["/bin/true"]));
    let bundle = env.bundle().to_string_lossy().into_owned();
    ok(&env, &["run", "--keep", "-b", &bundle, &env.id]);
    assert_fails(
        &corral(&env, &["exec", &env.id, "/bin/true"]),
        1,
        &["is stopped, not running"],
    );
    ok(&env, &["delete", &env.id]);
}

/// Receives one fd sent with SCM_RIGHTS on a unix stream.
fn recv_fd(s: &std::os::unix::net::UnixStream) -> std::os::fd::OwnedFd {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::{AsRawFd, FromRawFd};
    let mut buf = [0u8; 64];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(s.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::empty()).unwrap();
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: the fd was just received and is owned here.
            return unsafe { std::os::fd::OwnedFd::from_raw_fd(fds[0]) };
        }
    }
    panic!("no fd received");
}

fn read_until(master: &std::os::fd::OwnedFd, want: &str) -> String {
    use std::io::Read;
    let mut f = std::fs::File::from(master.try_clone().unwrap());
    let mut out = String::new();
    let mut buf = [0u8; 256];
    while !out.contains(want) {
        let n = f.read(&mut buf).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    out
}

#[test]
fn console_socket_gets_the_pty_master() {
    let env = Env::new("console");
    let mut spec = env.spec(&["/bin/sh", "-c", "tty; read line; echo got:$line; sleep 100"]);
    spec["process"]["terminal"] = json!(true);
    env.rootfs.write_config(&spec);
    let bundle = env.bundle().to_string_lossy().into_owned();
    // Without a console socket a detached terminal container is refused.
    assert_fails(
        &corral(&env, &["create", "-b", &bundle, &env.id]),
        1,
        &["--console-socket"],
    );

    let sock_path = env.state_root().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
    let t = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        recv_fd(&s)
    });
    ok(
        &env,
        &[
            "create",
            "--console-socket",
            &sock_path.to_string_lossy(),
            "-b",
            &bundle,
            &env.id,
        ],
    );
    let master = t.join().unwrap();
    ok(&env, &["start", &env.id]);
    assert!(read_until(&master, "/dev/pts/0").contains("/dev/pts/0"));
    nix::unistd::write(&master, b"hello\n").unwrap();
    assert!(read_until(&master, "got:hello").contains("got:hello"));

    // exec -t through a console socket too.
    let sock2 = env.state_root().join("console2.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock2).unwrap();
    let t = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        recv_fd(&s)
    });
    ok(
        &env,
        &[
            "exec",
            "-t",
            "-d",
            "--console-socket",
            &sock2.to_string_lossy(),
            &env.id,
            "/bin/sh",
            "-c",
            "tty; sleep 100",
        ],
    );
    let m2 = t.join().unwrap();
    assert!(read_until(&m2, "/dev/pts/").contains("/dev/pts/1"));

    let pid = state(&env)["pid"].as_i64().unwrap();
    let pids: Value =
        serde_json::from_str(&ok(&env, &["ps", "--format", "json", &env.id])).unwrap();
    ok(&env, &["kill", "--all", &env.id, "KILL"]);
    for p in pids.as_array().unwrap() {
        if p.as_i64() != Some(pid) {
            reap(p.as_i64().unwrap());
        }
    }
    ok(&env, &["delete", "--force", &env.id]);
    reap(pid);
}

#[test]
fn bad_console_socket_leaves_nothing() {
    let env = Env::new("badsock");
    let mut spec = env.spec(&["/bin/true"]);
    spec["process"]["terminal"] = json!(true);
    env.rootfs.write_config(&spec);
    let bundle = env.bundle().to_string_lossy().into_owned();
    assert_fails(
        &corral(
            &env,
            &[
                "create",
                "--console-socket",
                "/nonexistent/sock",
                "-b",
                &bundle,
                &env.id,
            ],
        ),
        1,
        &["console socket", "/nonexistent/sock", "No such file"],
    );
    assert_fails(&corral(&env, &["state", &env.id]), 1, &["does not exist"]);
}

#[test]
fn events_report_oom_kills_as_they_happen() {
    let env = Env::new("oomev");
    let mut spec = env.spec(&["/probe", "hog", "256"]);
    spec["linux"]["resources"]["memory"] = json!({"limit": 33554432, "swap": 33554432});
    env.rootfs.write_config(&spec);
    let bundle = env.bundle().to_string_lossy().into_owned();
    ok(&env, &["create", "-b", &bundle, &env.id]);
    let pid = state(&env)["pid"].as_i64().unwrap();
    // A long interval: the OOM line must come from the kernel's notification, not a poll.
    let out = tempfile::NamedTempFile::new().unwrap();
    let mut ev = env
        .command()
        .args(["events", "--interval", "1h", &env.id])
        .stdout(out.reopen().unwrap())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    ok(&env, &["start", &env.id]);
    let st = ev.wait().unwrap();
    assert!(st.success());
    let text = std::fs::read_to_string(out.path()).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["type"], "stats", "{text}");
    assert!(
        lines
            .iter()
            .any(|l| l["type"] == "oom" && l["id"] == json!(env.id)),
        "{text}"
    );
    reap(pid);
    ok(&env, &["delete", &env.id]);
}

/// Cgroup directories made by the test, with a host process in the pids one; on drop the
/// process is killed and the directories removed, whatever happened.
struct PreMade {
    dirs: Vec<std::path::PathBuf>,
    holder: Option<common::Holder>,
}

impl Drop for PreMade {
    fn drop(&mut self) {
        drop(self.holder.take());
        for d in self.dirs.iter().rev() {
            for _ in 0..200 {
                match std::fs::remove_dir(d) {
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                        std::thread::sleep(std::time::Duration::from_millis(5))
                    }
                    _ => break,
                }
            }
        }
    }
}

/// `delete` removes only the cgroups corral made (as runc leaves a cgroup it did not make):
/// a cgroup made beforehand and named in `cgroupsPath` (in `pids` only, or in every v1
/// hierarchy the container uses), with another process in it, is joined, and after `delete`
/// and `delete --force` it is still there with that process alive in it; the dirs corral
/// made in the other hierarchies are gone.
#[test]
fn delete_leaves_a_cgroup_it_did_not_make() {
    let hier = |name: &str| std::path::Path::new("/sys/fs/cgroup").join(name);
    let v1: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(" - cgroup cgroup "))
        .filter_map(|l| l.split(' ').nth(4))
        .filter_map(|p| p.strip_prefix("/sys/fs/cgroup/"))
        .filter(|n| *n != "systemd")
        .map(str::to_string)
        .collect();
    assert!(
        v1.iter().any(|n| n == "pids"),
        "no v1 pids hierarchy: {v1:?}"
    );
    for (case, which) in [("pids", vec!["pids".to_string()]), ("all", v1.clone())] {
        for force in [false, true] {
            let env = Env::new("precg");
            let name = testkit::unique_id("precg-own");
            let mut pre = PreMade {
                dirs: Vec::new(),
                holder: None,
            };
            for h in &which {
                let d = hier(h).join(&name);
                std::fs::create_dir(&d).unwrap();
                pre.dirs.push(d.clone());
                if h == "cpuset" {
                    for f in ["cpuset.cpus", "cpuset.mems"] {
                        let v = std::fs::read_to_string(hier(h).join(f)).unwrap();
                        std::fs::write(d.join(f), v.trim()).unwrap();
                    }
                }
            }
            // Another process in the pre-made pids cgroup.
            let holder = common::Holder::spawn(std::process::Command::new("sleep").arg("1000"));
            let other = holder.pid();
            std::fs::write(
                hier("pids").join(&name).join("cgroup.procs"),
                other.to_string(),
            )
            .unwrap();
            pre.holder = Some(holder);
            let mut spec = env.spec(&["/probe", "sleep", "inf"]);
            spec["linux"]["cgroupsPath"] = json!(format!("/{name}"));
            env.rootfs.write_config(&spec);
            let bundle = env.bundle().to_string_lossy().into_owned();
            ok(&env, &["run", "-d", "-b", &bundle, &env.id]);
            let pid = state(&env)["pid"].as_i64().unwrap();
            let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
            assert!(
                cg.contains(&format!("pids:/{name}\n")),
                "{case}: the container is not in the named cgroup: {cg}"
            );
            if force {
                ok(&env, &["delete", "--force", &env.id]);
            } else {
                ok(&env, &["kill", &env.id, "KILL"]);
                for _ in 0..500 {
                    if state(&env)["status"] == "stopped" {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                ok(&env, &["delete", &env.id]);
            }
            reap(pid);
            for d in &pre.dirs {
                assert!(
                    d.is_dir(),
                    "{case} force={force}: {} was removed",
                    d.display()
                );
            }
            let procs =
                std::fs::read_to_string(hier("pids").join(&name).join("cgroup.procs")).unwrap();
            assert_eq!(
                procs.trim(),
                other.to_string(),
                "{case} force={force}: the other process is no longer in its cgroup"
            );
            // Those corral made are gone (the Env's leak check covers the container's own).
            for h in v1.iter().filter(|h| !which.contains(h)) {
                assert!(
                    !hier(h).join(&name).exists(),
                    "{case} force={force}: corral's {h}/{name} is left"
                );
            }
        }
    }
}

/// The container's cgroup dirs on the host, one per hierarchy, from its init's
/// /proc/PID/cgroup (this host's cgroup namespace): (hierarchy dir name, host dir).
fn host_cgroups(pid: i64) -> Vec<(String, std::path::PathBuf)> {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrl, path) = (f.next()?, f.next()?, f.next()?);
            let name = match ctrl {
                "" => "unified".to_string(),
                c => c.strip_prefix("name=").unwrap_or(c).to_string(),
            };
            let dir = std::path::Path::new("/sys/fs/cgroup")
                .join(&name)
                .join(path.trim_start_matches('/'));
            dir.is_dir().then_some((name, dir))
        })
        .collect()
}

/// runc's `exec --cgroup`: `--cgroup PATH` runs the process in the sub-cgroup PATH of the
/// container's cgroup in every hierarchy, `--cgroup CONTROLLER:PATH` in that controller's
/// hierarchy only (the others keep the container's); the sub-cgroup must exist and stay
/// inside the container's cgroup.
#[test]
fn exec_cgroup_runs_the_process_in_a_sub_cgroup() {
    let env = Env::new("execcg");
    env.rootfs
        .write_config(&env.spec(&["/probe", "sleep", "inf"]));
    let bundle = env.bundle().to_string_lossy().into_owned();
    ok(&env, &["run", "-d", "-b", &bundle, &env.id]);
    let pid = state(&env)["pid"].as_i64().unwrap();
    let cgs = host_cgroups(pid);
    assert!(cgs.iter().any(|(n, _)| n == "pids"), "{cgs:?}");
    for (n, d) in &cgs {
        std::fs::create_dir(d.join("sub")).unwrap();
        if n == "cpuset" {
            // A v1 cpuset cgroup takes tasks only once it has cpus and mems.
            for f in ["cpuset.cpus", "cpuset.mems"] {
                let v = std::fs::read_to_string(d.join(f)).unwrap();
                std::fs::write(d.join("sub").join(f), v.trim()).unwrap();
            }
        }
    }
    let pids = &cgs.iter().find(|(n, _)| n == "pids").unwrap().1;
    std::fs::create_dir(pids.join("only")).unwrap();
    // The exec'd process reports the cgroups of its own pid as the host sees them.
    let cgroup_of_exec = |flags: &[&str]| -> String {
        let pf = env.state_root().join("exec.pid");
        let _ = std::fs::remove_file(&pf);
        let mut args = vec!["exec", "-d", "--pid-file"];
        let pfs = pf.to_string_lossy().into_owned();
        args.push(&pfs);
        args.extend_from_slice(flags);
        args.extend([env.id.as_str(), "/probe", "sleep", "inf"]);
        ok(&env, &args);
        let p: i64 = std::fs::read_to_string(&pf)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let cg = std::fs::read_to_string(format!("/proc/{p}/cgroup")).unwrap();
        // SAFETY: killing the exec'd process this test started.
        unsafe { libc::kill(p as i32, libc::SIGKILL) };
        reap(p);
        cg
    };
    let all = cgroup_of_exec(&["--cgroup", "sub"]);
    let mut seen = 0;
    for l in all.lines() {
        let ctrl = l.split(':').nth(1).unwrap_or("");
        let name = match ctrl {
            "" => "unified",
            c => c.strip_prefix("name=").unwrap_or(c),
        };
        if cgs.iter().any(|(n, _)| n == name) {
            assert!(l.ends_with("/sub"), "--cgroup sub: {l} (all: {all})");
            seen += 1;
        }
    }
    assert_eq!(seen, cgs.len(), "{all}");
    let only = cgroup_of_exec(&["--cgroup", "pids:only"]);
    for l in only.lines() {
        if l.contains(":pids:") {
            assert!(l.ends_with("/only"), "{only}");
        } else {
            assert!(
                !l.ends_with("/only") && !l.ends_with("/sub"),
                "{l} ({only})"
            );
        }
    }
    // Refused: a missing sub-cgroup, one leaving the container's, an unknown controller.
    for (flag, words) in [
        ("nosuch", vec!["nosuch", "no such sub-cgroup"]),
        ("../escape", vec!["--cgroup", "\"..\""]),
        ("nosuchctl:sub", vec!["--cgroup", "nosuchctl"]),
    ] {
        assert_fails(
            &corral(&env, &["exec", "--cgroup", flag, &env.id, "/bin/true"]),
            1,
            &words,
        );
    }
    ok(&env, &["delete", "--force", &env.id]);
    reap(pid);
}

/// runc's `exec --ignore-paused`: without it, exec into a paused container is refused and
/// names the flag; with it, the process is made (frozen with the container) and runs once the
/// container resumes.
#[test]
fn exec_ignore_paused() {
    let env = Env::new("execpause");
    let mut spec = env.spec(&["/probe", "sleep", "inf"]);
    spec["root"]["readonly"] = json!(false);
    env.rootfs.write_config(&spec);
    let bundle = env.bundle().to_string_lossy().into_owned();
    ok(&env, &["run", "-d", "-b", &bundle, &env.id]);
    let pid = state(&env)["pid"].as_i64().unwrap();
    ok(&env, &["pause", &env.id]);
    assert_fails(
        &corral(&env, &["exec", &env.id, "/bin/true"]),
        1,
        &["paused", "--ignore-paused"],
    );
    let mark = env.rootfs.rootfs().join("tmp/exec-ran");
    std::thread::scope(|s| {
        let exec = s.spawn(|| {
            corral(
                &env,
                &[
                    "exec",
                    "--ignore-paused",
                    &env.id,
                    "/bin/sh",
                    "-c",
                    "echo ran > /tmp/exec-ran",
                ],
            )
        });
        // Frozen with the container: nothing ran while it is paused.
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(!mark.exists(), "the exec ran in a paused container");
        ok(&env, &["resume", &env.id]);
        common::assert_exit(&exec.join().unwrap(), 0);
    });
    assert_eq!(std::fs::read_to_string(&mark).unwrap(), "ran\n");
    ok(&env, &["delete", "--force", &env.id]);
    reap(pid);
}

/// `exec -t` runs the process on a pty of its own, bridged to corral's terminal: it owns
/// the pty (its `tty` names it), its output comes back and its exit status is corral's. The
/// pty master was closed before the process ran, so its TIOCSCTTY'd session was hung up
/// (SIGHUP: exit 129, nothing printed). Driven through a real pty, as a user's terminal.
#[test]
fn exec_with_a_terminal_runs_on_its_own_pty() {
    use std::io::Read;
    use std::os::fd::OwnedFd;
    let env = Env::new("exectty");
    let spec = env.spec(&["/probe", "sleep", "inf"]);
    env.rootfs.write_config(&spec);
    let bundle = env.bundle().to_string_lossy().into_owned();
    ok(&env, &["run", "-d", "-b", &bundle, &env.id]);
    let pid = state(&env)["pid"].as_i64().unwrap();

    let pty = nix::pty::openpty(None, None).expect("openpty");
    let slave = |fd: &OwnedFd| std::process::Stdio::from(fd.try_clone().unwrap());
    let mut child = env
        .command()
        .args(["exec", "-t", &env.id, "/bin/sh", "-c"])
        .arg("tty; echo hi-from-the-tty; exit 3")
        .stdin(slave(&pty.slave))
        .stdout(slave(&pty.slave))
        .stderr(slave(&pty.slave))
        .spawn()
        .expect("spawn corral exec -t");
    drop(pty.slave);
    // The master reads until every slave is closed (EIO), corral's copies among them.
    let reader = std::thread::spawn(move || {
        let mut f = std::fs::File::from(pty.master);
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match f.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("corral exec -t did not end");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let text = reader.join().unwrap();
    ok(&env, &["delete", "--force", &env.id]);
    reap(pid);
    assert_eq!(status.code(), Some(3), "{status:?}: {text:?}");
    assert!(text.contains("hi-from-the-tty"), "{text:?}");
    assert!(text.contains("/dev/pts/"), "{text:?}");
}

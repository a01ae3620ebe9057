//! `corral run` on the real kernel: what the container sees, limits enforced, exit codes and
//! signals. Every test checks that the container left nothing behind.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{stdout, Env, Holder};
use serde_json::{json, Value};

fn file<'a>(r: &'a Value, path: &str) -> &'a Value {
    &r["files"][path]
}

#[test]
fn runc_spec_bundle_runs_true() {
    let env = Env::new("true");
    let out = env.run(&env.spec(&["/bin/true"]));
    common::assert_exit(&out, 0);
    // `true` found through PATH as well.
    let out = env.run(&env.spec(&["true"]));
    common::assert_exit(&out, 0);
}

#[test]
fn timings_print_every_phase_in_order() {
    let env = Env::new("tmg");
    env.rootfs.write_config(&env.spec(&["/bin/true"]));
    let out = env
        .command()
        .args(["run", "--timings", "-b"])
        .arg(env.bundle())
        .arg(&env.id)
        .output()
        .expect("spawn corral");
    common::assert_exit(&out, 0);
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.starts_with("corral: timings: "))
        .unwrap_or_else(|| panic!("no timings line in {err:?}"));
    let mut at = 0;
    for phase in runtime::timings::CREATE_PHASES
        .iter()
        .chain(["start"].iter())
    {
        let i = line[at..]
            .find(&format!("{phase} "))
            .unwrap_or_else(|| panic!("{phase} missing or out of order in {line}"));
        at += i + phase.len();
    }
    assert!(line.contains("(total "), "{line}");
}

#[test]
fn container_sees_its_own_world() {
    let env = Env::new("iso");
    let mut spec = env.spec(&[]);
    spec["process"]["env"] = json!(["PATH=/bin", "FOO=bar"]);
    spec["process"]["cwd"] = json!("/tmp");
    spec["process"]["rlimits"] = json!([
        {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}
    ]);
    spec["process"]["oomScoreAdj"] = json!(123);
    spec["hostname"] = json!("probe-host");
    spec["domainname"] = json!("probe.dom");
    let r = env.report(
        spec,
        &[
            "/proc/keys",
            "/proc/timer_list",
            "/sys/firmware",
            "/proc/sys/kernel/hostname",
        ],
    );

    assert_eq!(r["pid"], 1);
    assert_eq!(r["hostname"], "probe-host");
    assert_eq!(r["domainname"], "probe.dom");
    assert_eq!(r["uid"], 0);
    assert_eq!(r["gid"], 0);
    // Only the container's own processes are visible.
    assert_eq!(r["pids"], json!([1]));
    // Only stdio is open.
    assert_eq!(r["fds"], json!([0, 1, 2]));
    assert_eq!(r["cwd"], "/tmp");
    assert_eq!(r["env"], json!(["PATH=/bin", "FOO=bar"]));
    assert_eq!(r["umask"], "0022");
    assert_eq!(r["oom_score_adj"], 123);
    assert_eq!(r["rlimits"]["RLIMIT_NOFILE"], json!([512, 1024]));
    assert_eq!(r["rlimits"]["RLIMIT_CORE"], json!([0, 0]));

    // The default capabilities: CAP_AUDIT_WRITE, CAP_KILL, CAP_NET_BIND_SERVICE.
    let caps = (1u64 << 29) | (1 << 5) | (1 << 10);
    for set in ["bnd", "eff", "prm"] {
        let v = u64::from_str_radix(r["caps"][set].as_str().unwrap(), 16).unwrap();
        assert_eq!(v, caps, "{set}");
    }
    assert_eq!(r["no_new_privs"], 1);

    // Host mounts are invisible: nothing of /work, /run or /home, and / is our rootfs.
    let mounts = r["mounts"].as_array().unwrap();
    for m in mounts {
        let mp = m["mount_point"].as_str().unwrap();
        for host in ["/work", "/run", "/home", "/boot"] {
            assert!(!mp.starts_with(host), "host mount visible: {m}");
        }
    }
    let root = mounts.iter().find(|m| m["mount_point"] == "/").unwrap();
    assert!(
        root["options"].as_array().unwrap().contains(&json!("ro")),
        "{root}"
    );
    for want in [
        "/proc",
        "/dev",
        "/dev/pts",
        "/dev/shm",
        "/dev/mqueue",
        "/sys",
        "/sys/fs/cgroup/memory",
    ] {
        assert!(
            mounts.iter().any(|m| m["mount_point"] == want),
            "no {want} mount"
        );
    }

    // Masked paths: files read empty (they are /dev/null), directories read as empty (a
    // read-only empty tmpfs, as runc's).
    assert_eq!(file(&r, "/proc/keys")["content"], "");
    assert_eq!(file(&r, "/proc/timer_list")["content"], "");
    assert_eq!(file(&r, "/sys/firmware")["readable"], true);
    assert_eq!(file(&r, "/sys/firmware")["entries"], json!([]));
    // /proc/sys is read-only.
    let sys = mounts
        .iter()
        .find(|m| m["mount_point"] == "/proc/sys")
        .unwrap();
    assert!(
        sys["options"].as_array().unwrap().contains(&json!("ro")),
        "{sys}"
    );

    // Its own cgroup namespace: every hierarchy's root is the container's cgroup.
    for line in r["cgroup"].as_array().unwrap() {
        assert!(line.as_str().unwrap().ends_with(":/"), "{line}");
    }
    // Its own network namespace with only loopback, and loopback up.
    assert_eq!(r["netdevs"], json!(["lo"]));
    assert_eq!(r["lo_up"], true);
}

#[test]
fn limits_are_applied_and_seen_inside() {
    let env = Env::new("limits");
    let mut spec = env.spec(&[]);
    spec["linux"]["resources"]["memory"] = json!({"limit": 67108864, "reservation": 33554432});
    spec["linux"]["resources"]["pids"] = json!({"limit": 64});
    spec["linux"]["resources"]["cpu"] =
        json!({"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"});
    let files = [
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
        "/sys/fs/cgroup/memory/memory.soft_limit_in_bytes",
        "/sys/fs/cgroup/pids/pids.max",
        "/sys/fs/cgroup/cpu/cpu.shares",
        "/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
        "/sys/fs/cgroup/cpu/cpu.cfs_period_us",
        "/sys/fs/cgroup/cpuset/cpuset.cpus",
        "/sys/fs/cgroup/devices/devices.list",
    ];
    let r = env.report(spec, &files);
    let content = |p: &str| {
        file(&r, p)["content"]
            .as_str()
            .unwrap_or("")
            .trim()
            .to_string()
    };
    assert_eq!(content(files[0]), "67108864");
    assert_eq!(content(files[1]), "33554432");
    assert_eq!(content(files[2]), "64");
    assert_eq!(content(files[3]), "512");
    assert_eq!(content(files[4]), "50000");
    assert_eq!(content(files[5]), "100000");
    assert_eq!(content(files[6]), "0");
    // Deny all, then the default devices.
    let devs = content(files[7]);
    assert!(
        devs.contains("c 1:3 rwm") && !devs.contains("a *:* rwm"),
        "{devs}"
    );
    // The container's process is in its cgroup, named after its id.
    let cg: Vec<String> = std::fs::read_to_string("/proc/self/cgroup")
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert!(!cg.is_empty());
}

#[test]
fn memory_hog_is_oom_killed_and_run_exits_137() {
    let env = Env::new("oom");
    let mut spec = env.spec(&["/probe", "hog", "256"]);
    spec["linux"]["resources"]["memory"] = json!({"limit": 33554432, "swap": 33554432});
    let out = env.run(&spec);
    common::assert_exit(&out, 137);
}

#[test]
fn fork_loop_stops_at_pids_max() {
    let env = Env::new("pids");
    let mut spec = env.spec(&["/probe", "forkbomb", "200"]);
    spec["linux"]["resources"]["pids"] = json!({"limit": 16});
    let out = env.run(&spec);
    common::assert_exit(&out, 0);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let started = r["started"].as_u64().unwrap();
    // pids.max counts the probe itself.
    assert!(started < 16, "{r}");
    assert!(started >= 10, "{r}");
    assert!(!r["error"].is_null(), "{r}");
}

#[test]
fn cpu_quota_holds_a_busy_loop_to_half_a_core() {
    let env = Env::new("cpu");
    let mut spec = env.spec(&["/probe", "spin", "2"]);
    spec["linux"]["resources"]["cpu"] = json!({"quota": 50000, "period": 100000});
    let out = env.run(&spec);
    common::assert_exit(&out, 0);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let share = r["cpu_s"].as_f64().unwrap() / r["wall_s"].as_f64().unwrap();
    assert!((0.3..=0.65).contains(&share), "cpu share {share}: {r}");
}

#[test]
fn exit_codes_and_signals_propagate() {
    let env = Env::new("exit");
    let out = env.run(&env.spec(&["/probe", "exit", "42"]));
    assert_eq!(out.status.code(), Some(42));
    let out = env.run(&env.spec(&["/bin/sh", "-c", "exit 3"]));
    assert_eq!(out.status.code(), Some(3));
    // Killed by SIGUSR1 (10): 128 + 10. (Without a pid namespace: as pid 1 of its own
    // namespace the kernel would drop a signal it sends itself.)
    let mut spec = env.spec(&["/probe", "kill", "10"]);
    spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "pid");
    let out = env.run(&spec);
    common::assert_exit(&out, 138);
    // stdout and stderr pass through.
    let out = env.run(&env.spec(&["/bin/sh", "-c", "echo out; echo err >&2"]));
    assert_eq!(stdout(&out), "out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
}

#[test]
fn signals_sent_to_run_reach_the_container() {
    let env = Env::new("sig");
    env.rootfs
        .write_config(&env.spec(&["/probe", "echo-signals"]));
    let mut child = env
        .command()
        .args(["run", "-b"])
        .arg(env.bundle())
        .arg(&env.id)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    let mut got = Vec::new();
    for sig in [
        libc::SIGUSR1,
        libc::SIGHUP,
        libc::SIGWINCH,
        libc::SIGINT,
        libc::SIGTERM,
    ] {
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(pid, sig) };
        got.push(lines.next().unwrap().unwrap());
    }
    let status = child.wait().unwrap();
    assert_eq!(got, ["10", "1", "28", "2", "15"]);
    assert_eq!(status.code(), Some(0));
}

#[test]
fn user_namespace_maps_ids() {
    let env = Env::new("userns");
    let mut spec = env.spec(&[]);
    spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    spec["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    spec["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    spec["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [10]});
    spec["process"]["capabilities"] = Value::Null;
    let r = env.report(spec, &[]);
    assert_eq!(r["uid_map"], json!([[0, 200000, 65536]]));
    assert_eq!(r["gid_map"], json!([[0, 200000, 65536]]));
    assert_eq!(r["uid"], 1000);
    assert_eq!(r["gid"], 1000);
    assert_eq!(r["groups"], json!([10]));
    assert_eq!(r["pid"], 1);
}

#[test]
fn joined_namespaces_are_really_joined() {
    let env = Env::new("join");
    // A uts namespace with its own hostname and a pid namespace with a process in it.
    let holder = Holder::spawn(
        Command::new("unshare")
            .args(["--uts", "--pid", "--fork", "--kill-child", "sh", "-c"])
            .arg("hostname joined-uts && exec sleep 60"),
    );
    // The namespaces belong to unshare's child (the sh/sleep): find it.
    let mut inner = None;
    for _ in 0..200 {
        let kids = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", holder.pid()))
            .unwrap_or_default();
        if let Some(k) = kids.split_whitespace().next() {
            let comm = std::fs::read_to_string(format!("/proc/{k}/comm")).unwrap_or_default();
            if comm.trim() == "sleep" {
                inner = Some(k.to_string());
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let inner = inner.expect("holder's sleep process");
    let mut spec = env.spec(&[]);
    spec["hostname"] = Value::Null;
    for ns in spec["linux"]["namespaces"].as_array_mut().unwrap() {
        if ns["type"] == "uts" {
            ns["path"] = json!(format!("/proc/{inner}/ns/uts"));
        }
        if ns["type"] == "pid" {
            ns["path"] = json!(format!("/proc/{inner}/ns/pid"));
        }
    }
    let r = env.report(spec, &[]);
    assert_eq!(r["hostname"], "joined-uts");
    // In the joined pid namespace: the holder's sleep is pid 1 there, we are not.
    assert_ne!(r["pid"], 1);
    let pids = r["pids"].as_array().unwrap();
    assert!(pids.contains(&json!(1)), "{r}");
    drop(holder);
}

#[test]
fn time_namespace_offsets_apply() {
    let env = Env::new("time");
    let mut spec = env.spec(&[]);
    spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "time"}));
    spec["linux"]["timeOffsets"] = json!({"boottime": {"secs": 86400000, "nanosecs": 0}});
    let r = env.report(spec, &[]);
    assert!(
        r["time"]["boottime_s"].as_f64().unwrap() > 86400000.0,
        "{r}"
    );
}

#[test]
fn overlay_root_from_layers_keeps_lower_untouched() {
    let env = Env::new("layers");
    // Lower layer 1: the test rootfs; layer 2 on top adds /etc/motd and hides /bin/ls.
    let top = tempfile::Builder::new()
        .prefix(&format!("{}-l2-", env.id))
        .tempdir()
        .unwrap();
    std::fs::create_dir_all(top.path().join("etc")).unwrap();
    std::fs::write(top.path().join("etc/motd"), "from layer 2\n").unwrap();
    let mut spec = env.spec(&[
        "/bin/sh",
        "-c",
        "cat /etc/motd; echo hi > /root/new; ls /root",
    ]);
    spec["root"]["readonly"] = json!(false);
    env.rootfs.write_config(&spec);
    let out = env
        .command()
        .args(["run", "--layer"])
        .arg(env.rootfs.rootfs())
        .arg("--layer")
        .arg(top.path())
        .arg("-b")
        .arg(env.bundle())
        .arg(&env.id)
        .output()
        .unwrap();
    common::assert_exit(&out, 0);
    assert_eq!(stdout(&out), "from layer 2\nnew\n");
    // The write went to the container's own layer, which is gone with it.
    assert!(!env.rootfs.rootfs().join("root/new").exists());
    assert!(!top.path().join("root").exists());
}

#[test]
fn devices_in_a_fresh_dev_get_the_owner_and_mode_asked() {
    // The child makes /dev's nodes by an fd of the tmpfs it just mounted, and chowns one only
    // where mknod did not give it the owner asked: another uid/gid, or a /dev tmpfs that gives
    // its nodes its own group (gid= with a set-group-ID mode).
    let env = Env::new("devowner");
    let mut spec = env.spec(&[]);
    spec["linux"]["devices"] = json!([
        {"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11, "fileMode": 384, "uid": 1000, "gid": 2000},
        {"path": "/dev/sub/null2", "type": "c", "major": 1, "minor": 3, "fileMode": 438}
    ]);
    spec["process"]["args"] = json!([
        "/bin/stat",
        "-c",
        "%n %F %t:%T %a %u:%g",
        "/dev/null",
        "/dev/kmsg",
        "/dev/sub/null2",
        "/dev/fd",
        "/dev/pts",
        "/dev/shm"
    ]);
    let expect = "/dev/null character special file 1:3 666 0:0\n\
/dev/kmsg character special file 1:b 600 1000:2000\n\
/dev/sub/null2 character special file 1:3 666 0:0\n\
/dev/fd symbolic link 0:0 777 0:0\n\
/dev/pts directory 0:0 755 0:0\n\
/dev/shm directory 0:0 1777 0:0\n";
    let out = env.run(&spec);
    assert_eq!(
        common::stdout(&out),
        expect,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A /dev whose nodes would take its group 5: chowned back to what was asked.
    let dev = spec["mounts"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|m| m["destination"] == "/dev")
        .unwrap();
    dev["options"] = json!(["nosuid", "strictatime", "mode=2755", "gid=5", "size=65536k"]);
    spec["process"]["args"] = json!(["/bin/stat", "-c", "%n %u:%g", "/dev/null", "/dev/kmsg"]);
    let out = env.run(&spec);
    assert_eq!(
        common::stdout(&out),
        "/dev/null 0:0\n/dev/kmsg 1000:2000\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn spec_mounts_devices_sysctls_and_no_pivot() {
    let env = Env::new("mounts");
    let data = tempfile::Builder::new()
        .prefix(&format!("{}-data-", env.id))
        .tempdir()
        .unwrap();
    std::fs::write(data.path().join("hello"), "hi\n").unwrap();
    let mut spec = env.spec(&[]);
    let mounts = spec["mounts"].as_array_mut().unwrap();
    mounts.push(json!({"destination": "/data", "type": "bind", "source": data.path(), "options": ["rbind", "ro", "nosuid"]}));
    mounts.push(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m", "mode=700", "noexec"]}));
    spec["linux"]["devices"] =
        json!([{"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11, "fileMode": 384}]);
    spec["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.shmmni": "1234"});
    spec["process"]["user"]["umask"] = json!(0o077);
    let mut files = vec![
        "/data/hello",
        "/proc/sys/net/ipv4/ip_forward",
        "/proc/sys/kernel/shmmni",
    ];
    let r = env.report(spec.clone(), &files);
    assert_eq!(r["files"]["/data/hello"]["content"], "hi\n");
    assert_eq!(
        r["files"]["/proc/sys/net/ipv4/ip_forward"]["content"],
        "1\n"
    );
    assert_eq!(r["files"]["/proc/sys/kernel/shmmni"]["content"], "1234\n");
    assert_eq!(r["umask"], "0077");
    let mounts = r["mounts"].as_array().unwrap();
    let data_m = mounts.iter().find(|m| m["mount_point"] == "/data").unwrap();
    let opts = data_m["options"].as_array().unwrap();
    assert!(
        opts.contains(&json!("ro")) && opts.contains(&json!("nosuid")),
        "{data_m}"
    );
    let scratch = mounts
        .iter()
        .find(|m| m["mount_point"] == "/scratch")
        .unwrap();
    let opts = scratch["options"].as_array().unwrap();
    assert!(
        opts.contains(&json!("size=1024k")) && opts.contains(&json!("noexec")),
        "{scratch}"
    );
    // The host's sysctls did not change.
    assert_ne!(
        std::fs::read_to_string("/proc/sys/kernel/shmmni")
            .unwrap()
            .trim(),
        "1234"
    );

    // The spec's device exists with its mode; the file mode is 0600.
    let out = env.run(&{
        let mut s = spec.clone();
        s["process"]["args"] = json!(["/bin/stat", "-c", "%F %t:%T %a", "/dev/kmsg"]);
        s
    });
    assert_eq!(
        common::stdout(&out),
        "character special file 1:b 600\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // --no-pivot: the same container without pivot_root.
    files.truncate(1);
    spec["process"]["args"] = json!(["/probe", "report", "/data/hello"]);
    env.rootfs.write_config(&spec);
    let out = env
        .command()
        .args(["run", "--no-pivot", "-b"])
        .arg(env.bundle())
        .arg(&env.id)
        .output()
        .unwrap();
    common::assert_exit(&out, 0);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["files"]["/data/hello"]["content"], "hi\n");
    assert_eq!(r["pid"], 1);
}

#[test]
fn non_root_user_gets_exactly_its_capabilities() {
    let env = Env::new("caps");
    let mut spec = env.spec(&[]);
    let caps = json!(["CAP_NET_BIND_SERVICE", "CAP_CHOWN"]);
    spec["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [20, 30]});
    spec["process"]["capabilities"] = json!({
        "bounding": caps, "effective": caps, "permitted": caps, "inheritable": caps, "ambient": ["CAP_NET_BIND_SERVICE"]
    });
    spec["process"]["noNewPrivileges"] = json!(false);
    let r = env.report(spec, &[]);
    assert_eq!(r["uid"], 1000);
    assert_eq!(r["euid"], 1000);
    assert_eq!(r["gid"], 1000);
    assert_eq!(r["groups"], json!([20, 30]));
    let hex = |k: &str| u64::from_str_radix(r["caps"][k].as_str().unwrap(), 16).unwrap();
    let both = (1u64 << 10) | 1;
    assert_eq!(hex("bnd"), both);
    assert_eq!(hex("inh"), both);
    // A non-root user keeps across execve only its ambient capabilities (in permitted and
    // effective): the kernel's rules, as with every runtime.
    assert_eq!(hex("amb"), 1 << 10);
    assert_eq!(hex("prm"), 1 << 10);
    assert_eq!(hex("eff"), 1 << 10);
    assert_eq!(r["no_new_privs"], 0);
}

#[test]
fn absolute_cgroups_path_is_used() {
    let env = Env::new("cgpath");
    let mut spec = env.spec(&["/bin/true"]);
    let path = format!("/{}-parent/{}", env.id, env.id);
    spec["linux"]["cgroupsPath"] = json!(path);
    spec["linux"]["resources"]["pids"] = json!({"limit": 10});
    // Run a shell that reports the host path of its cgroup without a cgroup namespace.
    spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "cgroup");
    spec["process"]["args"] = json!(["/bin/cat", "/proc/self/cgroup"]);
    let out = env.run(&spec);
    common::assert_exit(&out, 0);
    let text = common::stdout(&out);
    assert!(
        text.lines().any(|l| l == format!("8:pids:{path}")),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l == format!("4:memory:{path}")),
        "{text}"
    );
    // Both levels are gone afterwards (Env checks for the id).
    assert!(!std::path::Path::new(&format!("/sys/fs/cgroup/pids/{}-parent", env.id)).exists());
}

#[test]
fn foreground_run_with_a_terminal_bridges_stdio() {
    let env = Env::new("tty");
    let mut spec = env.spec(&[
        "/bin/sh",
        "-c",
        "tty; stty size; read l; echo got:$l; exit 3",
    ]);
    spec["process"]["terminal"] = json!(true);
    spec["process"]["consoleSize"] = json!({"height": 33, "width": 99});
    env.rootfs.write_config(&spec);
    let mut child = env
        .command()
        .args(["run", "-b"])
        .arg(env.bundle())
        .arg(&env.id)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"line\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let text = stdout(&out).replace('\r', "");
    assert_eq!(out.status.code(), Some(3), "{text}");
    // (The terminal echoes the input line somewhere in between.)
    assert!(
        text.contains("/dev/pts/0\n") && text.contains("33 99\n"),
        "{text}"
    );
    assert!(text.contains("got:line"), "{text}");
}

#[test]
fn personality_scheduler_io_priority_and_memory_policy() {
    let env = Env::new("attrs");
    let mut spec = env.spec(&[
        "/bin/sh",
        "-c",
        "cat /proc/self/personality; /bin/busybox ionice -p $$; \
         /bin/busybox cut -d' ' -f19,41 /proc/self/stat; \
         grep -c 'bind:0' /proc/self/numa_maps",
    ]);
    spec["linux"]["personality"] = json!({"domain": "LINUX32"});
    spec["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "0"});
    spec["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 5});
    spec["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0});
    let out = env.run(&spec);
    common::assert_exit(&out, 0);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "00000008", "{text}");
    assert_eq!(lines[1], "idle", "{text}");
    // nice 5, policy 3 (SCHED_BATCH).
    assert_eq!(lines[2], "5 3", "{text}");
    assert_ne!(lines[3], "0", "{text}");

    // Bad values name their field.
    let mut bad = env.spec(&["/bin/true"]);
    bad["process"]["scheduler"] = json!({"policy": "SCHED_FIFO", "priority": 200});
    common::assert_fails(&env.run(&bad), 1, &["process.scheduler.priority", "1..99"]);
    let mut bad = env.spec(&["/bin/true"]);
    bad["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "x-y"});
    common::assert_fails(&env.run(&bad), 1, &["linux.memoryPolicy.nodes"]);
}

#[test]
fn net_devices_are_moved_in_and_renamed() {
    let env = Env::new("netdev");
    let dev = format!("crl{}", std::process::id() % 1_000_000);
    let peer = format!("{dev}p");
    // A veth pair (this kernel has no dummy driver): one end goes into the container.
    let out = Command::new("ip")
        .args(["link", "add", &dev, "type", "veth", "peer", "name", &peer])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ip link add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    struct DelLink(String);
    impl Drop for DelLink {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["link", "del", &self.0]).output();
        }
    }
    let _guard = DelLink(dev.clone());
    let mut spec = env.spec(&["/bin/ls", "/sys/class/net"]);
    spec["linux"]["netDevices"] = json!({ dev.clone(): {"name": "eth7"} });
    let out = env.run(&spec);
    common::assert_exit(&out, 0);
    assert_eq!(stdout(&out), "eth7\nlo\n");
    // A veth pair goes away with the container's network namespace; the kernel dismantles a
    // dead namespace in a work queue, so give it a moment.
    let on_host = || {
        std::fs::read_dir("/sys/class/net")
            .unwrap()
            .flatten()
            .any(|e| e.file_name() == dev.as_str() || e.file_name() == peer.as_str())
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while on_host() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(!on_host(), "{dev} or {peer} is still on the host after 5 s");

    spec["linux"]["netDevices"] = json!({"nosuchdev0": {"name": "eth0"}});
    common::assert_fails(
        &env.run(&spec),
        1,
        &["linux.netDevices.nosuchdev0", "no network device"],
    );
}

/// A rootless spec for `uid` running `args` on the test root, with the state root made the
/// user's.
fn rootless_spec(env: &Env, uid: u32, args: &[&str]) -> Value {
    std::os::unix::fs::chown(env.state_root(), Some(uid), Some(uid)).unwrap();
    let mut spec = runtime::spec::rootless_spec(uid, uid);
    spec["process"]["terminal"] = json!(false);
    spec["process"]["args"] = json!(args);
    spec["root"]["path"] = json!(env.rootfs.rootfs());
    spec
}

/// `corral run` of the env's bundle as `uid` (no groups), first moving into the cgroup2
/// directory `cgroup` if given.
fn run_as(env: &Env, uid: u32, cgroup: Option<&std::path::Path>) -> std::process::Output {
    let script = match cgroup {
        Some(d) => format!("echo $$ > {}/cgroup.procs && exec \"$@\"", d.display()),
        None => "exec \"$@\"".to_string(),
    };
    let id = uid.to_string();
    Command::new("sh")
        .args([
            "-c", &script, "sh", "setpriv", "--reuid", &id, "--regid", &id,
        ])
        .arg("--clear-groups")
        .arg(common::corral())
        .arg("--root")
        .arg(env.state_root())
        .args(["run", "-b"])
        .arg(env.bundle())
        .arg(&env.id)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn rootless_run_by_a_non_root_user() {
    let env = Env::new("rootless");
    let uid: u32 = 54321;
    let spec = rootless_spec(&env, uid, &["/probe", "report"]);
    env.rootfs.write_config(&spec);
    let out = run_as(&env, uid, None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    // One warning: no cgroups for this user.
    assert!(
        err.contains("cgroups are not delegated to this user"),
        "{err}"
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["uid"], 0);
    assert_eq!(r["uid_map"], json!([[0, uid, 1]]));
    assert_eq!(r["gid_map"], json!([[0, uid, 1]]));
    assert_eq!(r["pid"], 1);
    assert_eq!(r["hostname"], "corral");
}

/// A cgroup subtree handed to a user, as systemd's `Delegate=yes` does: the directory and its
/// interface files chowned. Removed again on drop (after the container is gone).
struct Delegated(Vec<std::path::PathBuf>);

impl Delegated {
    fn new(uid: u32, dirs: &[std::path::PathBuf]) -> Delegated {
        let mut d = Delegated(Vec::new());
        for dir in dirs {
            std::fs::create_dir(dir).unwrap();
            d.0.push(dir.clone());
            std::os::unix::fs::chown(dir, Some(uid), Some(uid)).unwrap();
            for f in [
                "cgroup.procs",
                "cgroup.subtree_control",
                "cgroup.threads",
                "tasks",
            ] {
                let p = dir.join(f);
                if p.exists() {
                    std::os::unix::fs::chown(&p, Some(uid), Some(uid)).unwrap();
                }
            }
        }
        d
    }
}

impl Drop for Delegated {
    fn drop(&mut self) {
        for d in self.0.iter().rev() {
            if let Err(e) = std::fs::remove_dir(d) {
                eprintln!("removing {}: {e}", d.display());
            }
        }
    }
}

#[test]
fn rootless_uses_the_cgroups_delegated_to_it() {
    // Declared first, dropped last: after Env has deleted any container left in it.
    let name = testkit::unique_id("deleg");
    let uid: u32 = 54321;
    let pids = std::path::PathBuf::from("/sys/fs/cgroup/pids").join(&name);
    let unified = std::path::PathBuf::from("/sys/fs/cgroup/unified").join(&name);
    let runner = unified.join("runner");
    let _delegated = Delegated::new(uid, &[pids.clone(), unified.clone(), runner.clone()]);
    let env = Env::new("rootless-cg");
    let mut spec = rootless_spec(
        &env,
        uid,
        &[
            "/probe",
            "report",
            "/sys/fs/cgroup/pids/pids.max",
            "/sys/fs/cgroup/pids/cgroup.procs",
            "/sys/fs/cgroup/unified/cgroup.procs",
        ],
    );
    let cg = format!("/{name}/{}", env.id);
    spec["linux"]["cgroupsPath"] = json!(cg);
    spec["linux"]["resources"] = json!({"pids": {"limit": 32}, "memory": {"limit": 67108864}});
    env.rootfs.write_config(&spec);
    // corral starts in the delegated cgroup2 subtree (moving a process needs write access to
    // the common ancestor's cgroup.procs), then becomes the user.
    let out = run_as(&env, uid, Some(&runner));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    // One warning: the hierarchies not delegated, and the limit that is not enforced.
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("cgroups are not delegated to this user in ")
            && err.contains("/sys/fs/cgroup/memory")
            && !err.contains("/sys/fs/cgroup/pids")
            && !err.contains("/sys/fs/cgroup/unified")
            && err.contains("not enforced: memory_limit"),
        "{err}"
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let lines: Vec<&str> = r["cgroup"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l.as_str())
        .collect();
    assert!(
        lines.iter().any(|l| l.ends_with(&format!(":pids:{cg}"))),
        "{lines:?}"
    );
    assert!(lines.contains(&format!("0::{cg}").as_str()), "{lines:?}");
    assert_eq!(file(&r, "/sys/fs/cgroup/pids/pids.max")["content"], "32\n");
    assert_eq!(
        file(&r, "/sys/fs/cgroup/pids/cgroup.procs")["content"],
        "1\n"
    );
    assert_eq!(
        file(&r, "/sys/fs/cgroup/unified/cgroup.procs")["content"],
        "1\n"
    );
    // corral removed the container's cgroups; the delegated subtree is the test's to remove.
    assert!(!pids.join(&env.id).exists() && !unified.join(&env.id).exists());
}

#[test]
fn idmapped_bind_mounts_show_mapped_owners() {
    let env = Env::new("idmap");
    let data = tempfile::Builder::new()
        .prefix(&format!("{}-data-", env.id))
        .tempdir()
        .unwrap();
    let f = data.path().join("f");
    // Owned by 0:0 on disk; through the mapping containerID 0 -> hostID 1000 it shows as
    // 1000:1000 (the kernel's and runc's direction).
    std::fs::write(&f, "x").unwrap();
    let mut spec = env.spec(&["/bin/sh", "-c", "/bin/busybox stat -c %u:%g /plain/f /mapped/f; touch /mapped/ro 2>/dev/null || echo read-only"]);
    let mounts = spec["mounts"].as_array_mut().unwrap();
    mounts.push(json!({"destination": "/plain", "type": "bind", "source": data.path(), "options": ["bind"]}));
    mounts.push(json!({"destination": "/mapped", "type": "bind", "source": data.path(), "options": ["bind", "idmap", "ro"],
        "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
        "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}));
    let out = env.run(&spec);
    common::assert_exit(&out, 0);
    assert_eq!(stdout(&out), "0:0\n1000:1000\nread-only\n");

    // idmap without mappings is refused by name.
    let mut spec = env.spec(&["/bin/true"]);
    spec["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/m", "type": "bind", "source": data.path(), "options": ["bind", "idmap"]}));
    common::assert_fails(&env.run(&spec), 1, &["mounts[7].options", "uidMappings"]);
}

/// rootfsPropagation "rshared" (and "shared"): the container's root is shared, pivot_root
/// works, and nothing propagates to the host (the leak check of `Env` looks at the host's
/// mounts).
#[test]
fn shared_root_propagation() {
    for prop in ["rshared", "shared"] {
        let env = Env::new("rshared");
        let mut spec = env.spec(&["/bin/cat", "/proc/self/mountinfo"]);
        spec["linux"]["rootfsPropagation"] = json!(prop);
        let out = env.run(&spec);
        common::assert_exit(&out, 0);
        let info = common::stdout(&out);
        let root = info
            .lines()
            .find(|l| l.split(' ').nth(4) == Some("/"))
            .unwrap_or_else(|| panic!("no / in {info}"));
        assert!(root.contains(" shared:"), "{prop}: / is not shared: {root}");
    }
}

/// A directory as the program: refused at create (execve would say EACCES), as runc does,
/// instead of a container that starts and silently exits 126.
#[test]
fn a_directory_as_the_program_fails_create() {
    let env = Env::new("argsdir");
    env.rootfs.write_config(&env.spec(&["/etc"]));
    let out = env
        .command()
        .args(["create", "-b"])
        .arg(env.bundle())
        .arg(&env.id)
        .output()
        .unwrap();
    common::assert_fails(&out, 1, &["\"/etc\"", "Permission denied"]);
}

/// `--preserve-fds` beyond what any process can hold is refused where it enters.
#[test]
fn preserve_fds_out_of_range_is_refused() {
    let env = Env::new("pfdbig");
    env.rootfs.write_config(&env.spec(&["/bin/true"]));
    for n in ["4294967295", "2147483645", "1048577"] {
        let out = env
            .command()
            .args(["run", "--preserve-fds", n, "-b"])
            .arg(env.bundle())
            .arg(&env.id)
            .output()
            .unwrap();
        common::assert_fails(&out, 1, &["--preserve-fds", n]);
    }
}

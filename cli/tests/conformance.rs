//! The runtime spec's requirements and runc's choices that engines rely on, each checked by
//! what the container or the caller sees (issue 12).

mod common;

use common::Env;
use serde_json::json;

/// config.md: "Runtimes MUST NOT generate an error if they encounter an unknown property";
/// they ignore it.
#[test]
fn unknown_properties_are_ignored() {
    let env = Env::new("unknownprop");
    let mut spec = env.spec(&["/bin/sh", "-c", "echo ran"]);
    spec["someFutureField"] = json!({"enabled": true});
    spec["process"]["someFutureProcessField"] = json!([1, 2, 3]);
    spec["linux"]["someFutureLinuxField"] = json!("x");
    spec["linux"]["resources"]["someFutureController"] = json!({"limit": 1});
    let out = env.run(&spec);
    common::assert_exit(&out, 0);
    assert_eq!(common::stdout(&out), "ran\n");
}

/// runc accepts the kernel memory limits that current kernels no longer have, with a
/// warning; so does corral (the rest of the memory section still holds).
#[test]
fn kernel_memory_limits_are_accepted_with_a_warning() {
    let env = Env::new("kmem");
    let mut spec = env.spec(&["/bin/cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]);
    spec["linux"]["resources"]["memory"] = json!({
        "limit": 67108864,
        "kernel": 33554432,
        "kernelTCP": 16777216
    });
    let out = env.run(&spec);
    common::assert_exit(&out, 0);
    assert_eq!(common::stdout(&out).trim(), "67108864");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("linux.resources.memory.kernel") && err.contains("ignored"),
        "want a warning naming the field: {err}"
    );
}

/// runc ignores SELinux labels where SELinux is off (this host runs no SELinux); AppArmor
/// profiles stay an error there, as in runc.
#[test]
fn selinux_labels_are_ignored_without_selinux() {
    let env = Env::new("nolabel");
    let mut spec = env.spec(&["/bin/sh", "-c", "echo ran"]);
    spec["linux"]["mountLabel"] = json!("system_u:object_r:container_file_t:s0");
    spec["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0");
    let out = env.run(&spec);
    common::assert_exit(&out, 0);
    assert_eq!(common::stdout(&out), "ran\n");
}

/// Time namespace offsets hold with a user namespace too (written before any process is in
/// the namespace, through a file opened while the process could still open it).
#[test]
fn time_offsets_with_a_user_namespace() {
    let env = Env::new("timeuser");
    let mut spec = env.spec(&["/probe", "report"]);
    let ns = spec["linux"]["namespaces"].as_array_mut().unwrap();
    ns.push(json!({"type": "time"}));
    ns.push(json!({"type": "user"}));
    spec["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    spec["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    spec["linux"]["timeOffsets"] = json!({
        "boottime": {"secs": 86400000, "nanosecs": 0},
        "monotonic": {"secs": 3600000, "nanosecs": 0}
    });
    let r = env.report(spec, &[]);
    assert!(
        r["time"]["boottime_s"].as_f64().unwrap() > 86400000.0,
        "{r}"
    );
    assert!(
        r["time"]["monotonic_s"].as_f64().unwrap() > 3600000.0,
        "{r}"
    );
    assert_eq!(r["uid_map"], json!([[0, 200000, 65536]]));
}

/// maskedPaths: a masked directory reads as empty (not EACCES), a masked file reads as
/// /dev/null, and a masked symlink masks its target inside the root, as runc does.
#[test]
fn masked_paths_read_as_empty() {
    let env = Env::new("masked");
    let root = env.rootfs.rootfs();
    std::fs::create_dir_all(root.join("etc/secret-dir")).unwrap();
    std::fs::write(root.join("etc/secret-dir/key"), "secret").unwrap();
    std::fs::write(root.join("etc/secret-file"), "secret").unwrap();
    let _ = std::fs::remove_file(root.join("masklink"));
    std::os::unix::fs::symlink("/etc/secret-file", root.join("masklink")).unwrap();
    let mut spec = env.spec(&[
        "/bin/sh",
        "-c",
        "ls -A /etc/secret-dir; echo dir=$?; cat /etc/secret-file; echo file=$?; cat /masklink; echo link=$?",
    ]);
    spec["linux"]["maskedPaths"] = json!(["/etc/secret-dir", "/etc/secret-file", "/masklink"]);
    let out = env.run(&spec);
    common::assert_exit(&out, 0);
    assert_eq!(
        common::stdout(&out),
        "dir=0\nfile=0\nlink=0\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// linux.personality holds for processes started by `exec` too, not only for the init.
#[test]
fn personality_holds_for_exec() {
    let env = Env::new("pers");
    let mut spec = env.spec(&["/probe", "sleep", "inf"]);
    spec["linux"]["personality"] = json!({"domain": "LINUX32"});
    env.rootfs.write_config(&spec);
    let bundle = env.bundle().to_string_lossy().into_owned();
    common::cli_ok(&env, &["run", "-d", "-b", &bundle, &env.id]);
    let st: serde_json::Value =
        serde_json::from_str(&common::cli_ok(&env, &["state", &env.id])).unwrap();
    let pid = st["pid"].as_i64().unwrap();
    let out = common::cli(&env, &["exec", &env.id, "/bin/uname", "-m"]);
    let init = std::fs::read_to_string(format!("/proc/{pid}/personality")).unwrap_or_default();
    common::cli_ok(&env, &["delete", "--force", &env.id]);
    common::reap(pid);
    common::assert_exit(&out, 0);
    assert_eq!(common::stdout(&out).trim(), "i686", "exec'd uname -m");
    assert_eq!(init.trim(), "00000008", "init's personality (PER_LINUX32)");
}

/// Hooks of one kind run in the listed order, and a startContainer hook gets the env its
/// entry gives (and nothing of the container process's env).
#[test]
fn hooks_run_in_order_with_their_own_env() {
    let env = Env::new("hookorder");
    let out_dir = env.state_root().join("order");
    std::fs::create_dir(&out_dir).unwrap();
    let log = out_dir.join("log");
    let append = |n: usize| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("echo {n} >> {}", log.display())]});
    let mut spec = env.spec(&["/bin/true"]);
    spec["root"]["readonly"] = json!(false);
    spec["process"]["env"] = json!(["PATH=/bin", "FROM_PROCESS=1"]);
    spec["hooks"] = json!({
        "prestart": [append(1), append(2), append(3)],
        "poststop": [append(4), append(5)],
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "env > /tmp/hook.env"],
                            "env": ["HOOK_VAR=42", "PATH=/bin"]}]
    });
    let out = env.run(&spec);
    common::assert_exit(&out, 0);
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "1\n2\n3\n4\n5\n");
    let henv = std::fs::read_to_string(env.rootfs.rootfs().join("tmp/hook.env")).unwrap();
    assert!(henv.contains("HOOK_VAR=42"), "{henv}");
    assert!(!henv.contains("FROM_PROCESS"), "{henv}");
}

/// Errors as engines read them: with `--log FILE --log-format json` an `error` entry with the
/// message in `msg` (containerd's go-runc decodes these), with text logrus's `level=error`
/// line; runc's words (podman matches "executable file not found in", "no such file or
/// directory", "permission denied"); and the word "error" on stderr.
#[test]
fn errors_are_logged_as_runc_logs_them() {
    let env = Env::new("errlog");
    let root = env.rootfs.rootfs();
    std::fs::write(root.join("not-exec"), "#!/bin/sh\n").unwrap();
    for (format, args, words) in [
        (
            "json",
            vec!["nosuchcommand"],
            "executable file not found in $PATH",
        ),
        ("text", vec!["/no/such/file"], "no such file or directory"),
        ("json", vec!["/not-exec"], "permission denied"),
    ] {
        let log = env
            .state_root()
            .join(format!("log-{format}-{}", args[0].len()));
        env.rootfs.write_config(&env.spec(&args));
        let out = env
            .command()
            .arg("--log")
            .arg(&log)
            .args(["--log-format", format, "run", "-b"])
            .arg(env.bundle())
            .arg(&env.id)
            .output()
            .unwrap();
        assert_ne!(out.status.code(), Some(0));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("error"), "stderr: {err}");
        let text = std::fs::read_to_string(&log).unwrap();
        let last = text.lines().last().unwrap_or_default();
        let msg = if format == "json" {
            let v: serde_json::Value = serde_json::from_str(last).unwrap();
            assert_eq!(v["level"], "error", "{last}");
            assert!(v["time"].is_string(), "{last}");
            v["msg"].as_str().unwrap().to_string()
        } else {
            assert!(
                last.starts_with("time=\"") && last.contains(" level=error msg="),
                "{last}"
            );
            last.to_string()
        };
        assert!(
            msg.to_lowercase().contains(&words.to_lowercase()),
            "{format} log of {args:?} lacks {words:?}: {msg}"
        );
        assert!(
            msg.contains(&env.id),
            "the message names the container: {msg}"
        );
    }
}

/// linux.maskedPaths and linux.readonlyPaths with a relative entry: the spec says the values
/// MUST be absolute, a rule for whoever writes the config; runc and youki accept a relative
/// one, resolved inside the root as if it started with "/", and conformance suites send it.
/// corral does the same (it is still confined to the root: no "..", resolved in the root).
#[test]
fn relative_masked_and_readonly_paths_resolve_inside_the_root() {
    let env = Env::new("relpaths");
    let root = env.rootfs.rootfs();
    std::fs::create_dir_all(root.join("etc/rel-secret")).unwrap();
    std::fs::write(root.join("etc/rel-secret/key"), "secret").unwrap();
    std::fs::create_dir_all(root.join("var/rel-ro")).unwrap();
    let mut spec = env.spec(&[
        "/bin/sh",
        "-c",
        "ls -A /etc/rel-secret; echo masked=$?; touch /var/rel-ro/x 2>/dev/null; echo ro=$?",
    ]);
    spec["root"]["readonly"] = json!(false);
    spec["linux"]["maskedPaths"] = json!(["etc/rel-secret"]);
    spec["linux"]["readonlyPaths"] = json!(["var/rel-ro"]);
    let out = env.run(&spec);
    common::assert_exit(&out, 0);
    assert_eq!(common::stdout(&out), "masked=0\nro=1\n");
    assert!(!root.join("var/rel-ro/x").exists());
}

/// A bind mount ignores the options that only mean something to a filesystem (`mode=755`,
/// `size=1k`, `uid=0`, or any other option that is not a mount flag), as runc and youki do:
/// they pass them as mount data, which the kernel ignores for MS_BIND; engines send them. The
/// flags among them still apply.
#[test]
fn bind_mounts_ignore_filesystem_options() {
    let env = Env::new("bindopts");
    let src = tempfile::Builder::new()
        .prefix(&format!("{}-src-", env.id))
        .tempdir()
        .unwrap();
    std::fs::write(src.path().join("f"), "bound\n").unwrap();
    let mut spec = env.spec(&[
        "/bin/sh",
        "-c",
        "cat /mnt/bound/f; touch /mnt/bound/new 2>/dev/null; echo write=$?",
    ]);
    spec["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/mnt/bound", "type": "bind", "source": src.path(),
        "options": ["rbind", "ro", "mode=755", "size=1k", "uid=0", "nr_inodes=5", "x-engine-only"]
    }));
    let out = env.run(&spec);
    common::assert_exit(&out, 0);
    assert_eq!(common::stdout(&out), "bound\nwrite=1\n");
    assert!(!src.path().join("new").exists());
}

/// dockerd always sends `linux.resources.blockIO.weight`, 0 when the user set none; runc
/// takes 0 as unset (and `leafWeight` 0 alike), so corral does.
#[test]
fn blkio_weight_zero_is_unset() {
    let env = Env::new("blkio0");
    let mut spec = env.spec(&["/bin/true"]);
    spec["linux"]["resources"]["blockIO"] = json!({"weight": 0, "leafWeight": 0});
    common::assert_exit(&env.run(&spec), 0);
}

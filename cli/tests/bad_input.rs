//! Bad input: one clear line on stderr naming what was wrong, exit status 1 (as runc), and
//! nothing left behind (checked when `Env` drops).

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use common::{assert_fails, Env};
use serde_json::json;

#[test]
fn missing_bundle() {
    let env = Env::new("nobundle");
    let out = env
        .command()
        .args(["run", "-b", "/nonexistent/bundle", &env.id])
        .output()
        .unwrap();
    assert_fails(&out, 1, &["bundle /nonexistent/bundle", "No such file"]);
}

#[test]
fn config_that_does_not_parse_names_line_and_column() {
    let env = Env::new("badjson");
    std::fs::write(
        env.bundle().join("config.json"),
        "{\n  \"ociVersion\": \"1.0.2\",\n  \"process\": {\"args\": [\"/bin/true\"],,}\n}\n",
    )
    .unwrap();
    let out = env
        .command()
        .args(["run", "-b"])
        .arg(env.bundle())
        .arg(&env.id)
        .output()
        .unwrap();
    assert_fails(&out, 1, &["config.json:3:37: key must be a string"]);
}

#[test]
fn unsupported_oci_version() {
    let env = Env::new("ociver");
    let mut spec = env.spec(&["/bin/true"]);
    spec["ociVersion"] = json!("2.0.0");
    assert_fails(&env.run(&spec), 1, &["ociVersion", "unsupported", "2.0.0"]);
    spec["ociVersion"] = json!("latest");
    assert_fails(&env.run(&spec), 1, &["ociVersion", "not a version"]);
}

#[test]
fn empty_args() {
    let env = Env::new("noargs");
    let spec = env.spec(&[]);
    assert_fails(&env.run(&spec), 1, &["process.args", "must not be empty"]);
}

#[test]
fn executable_not_in_rootfs() {
    let env = Env::new("noexec");
    assert_fails(
        &env.run(&env.spec(&["/no/such/binary"])),
        1,
        &["\"/no/such/binary\"", "No such file or directory"],
    );
    // Looked up through PATH as well.
    assert_fails(
        &env.run(&env.spec(&["nosuchcommand"])),
        1,
        &["\"nosuchcommand\"", "not found"],
    );
}

#[test]
fn executable_that_cannot_be_run() {
    let env = Env::new("noperm");
    std::fs::write(env.rootfs.rootfs().join("notexec"), "#!/bin/sh\n").unwrap();
    assert_fails(
        &env.run(&env.spec(&["/notexec"])),
        1,
        &["\"/notexec\"", "Permission denied"],
    );
}

#[test]
fn namespace_path_that_is_no_namespace() {
    let env = Env::new("nsnotns");
    let mut spec = env.spec(&["/bin/true"]);
    for ns in spec["linux"]["namespaces"].as_array_mut().unwrap() {
        if ns["type"] == "network" {
            ns["path"] = json!("/etc/hostname");
        }
    }
    assert_fails(
        &env.run(&spec),
        1,
        &[
            "linux.namespaces[1].path",
            "/etc/hostname",
            "not a namespace",
        ],
    );
    // A namespace of another kind.
    for ns in spec["linux"]["namespaces"].as_array_mut().unwrap() {
        if ns["type"] == "network" {
            ns["path"] = json!("/proc/self/ns/uts");
        }
    }
    assert_fails(
        &env.run(&spec),
        1,
        &["is a uts namespace, not a net namespace"],
    );
    // One that does not exist.
    for ns in spec["linux"]["namespaces"].as_array_mut().unwrap() {
        if ns["type"] == "network" {
            ns["path"] = json!("/proc/999999999/ns/net");
        }
    }
    assert_fails(
        &env.run(&spec),
        1,
        &["/proc/999999999/ns/net", "cannot open"],
    );
}

#[test]
fn invalid_limit_names_field_and_file() {
    let env = Env::new("badlimit");
    let mut spec = env.spec(&["/bin/true"]);
    spec["linux"]["resources"]["cpu"] = json!({"cpus": "999"});
    assert_fails(
        &env.run(&spec),
        1,
        &[
            "linux.resources.cpu.cpus",
            "cpuset.cpus",
            "\"999\"",
            "os error",
        ],
    );
    let mut spec = env.spec(&["/bin/true"]);
    spec["linux"]["resources"]["memory"] = json!({"limit": -5});
    assert_fails(&env.run(&spec), 1, &["linux.resources.memory.limit", "-5"]);
}

#[test]
fn limit_the_kernel_does_not_know() {
    let env = Env::new("unknownlimit");
    let mut spec = env.spec(&["/bin/true"]);
    // No CFQ in current kernels: blkio.leaf_weight does not exist.
    spec["linux"]["resources"]["blockIO"] = json!({"leafWeight": 500});
    assert_fails(
        &env.run(&spec),
        1,
        &[
            "linux.resources.blockIO.leafWeight",
            "not supported",
            "blkio.leaf_weight",
        ],
    );
    let mut spec = env.spec(&["/bin/true"]);
    spec["linux"]["resources"]["hugepageLimits"] = json!([{"pageSize": "3MB", "limit": 4194304}]);
    assert_fails(
        &env.run(&spec),
        1,
        &["linux.resources.hugepageLimits", "3MB"],
    );
}

#[test]
fn container_id_that_already_exists() {
    let env = Env::new("dup");
    env.rootfs
        .write_config(&env.spec(&["/probe", "echo-signals"]));
    let mut first = env
        .command()
        .args(["run", "-b"])
        .arg(env.bundle())
        .arg(&env.id)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(first.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    let second = env
        .command()
        .args(["run", "-b"])
        .arg(env.bundle())
        .arg(&env.id)
        .output()
        .unwrap();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(first.id() as i32, libc::SIGTERM) };
    let st = first.wait().unwrap();
    assert_fails(
        &second,
        1,
        &[&format!("container {:?} already exists", env.id)],
    );
    assert_eq!(st.code(), Some(0));
}

#[test]
fn invalid_container_id() {
    let env = Env::new("badid");
    env.rootfs.write_config(&env.spec(&["/bin/true"]));
    let out = env
        .command()
        .args(["run", "-b"])
        .arg(env.bundle())
        .arg("../escape")
        .output()
        .unwrap();
    assert_fails(&out, 1, &["container id \"../escape\""]);
}

#[test]
fn unknown_capability_and_bad_sysctl() {
    let env = Env::new("badcap");
    let mut spec = env.spec(&["/bin/true"]);
    spec["process"]["capabilities"]["bounding"] = json!(["CAP_NOT_A_CAP"]);
    assert_fails(&env.run(&spec), 1, &["config.json", "CAP_NOT_A_CAP"]);
    let mut spec = env.spec(&["/bin/true"]);
    spec["linux"]["sysctl"] = json!({"kernel.panic": "1"});
    assert_fails(
        &env.run(&spec),
        1,
        &["linux.sysctl.kernel.panic", "not a namespaced sysctl"],
    );
    let mut spec = env.spec(&["/bin/true"]);
    spec["linux"]["sysctl"] = json!({"net.ipv4.no_such_thing": "1"});
    assert_fails(
        &env.run(&spec),
        1,
        &["linux.sysctl.net.ipv4.no_such_thing", "unknown sysctl"],
    );
}

#[test]
fn failing_mount_names_the_mount_and_leaves_nothing() {
    let env = Env::new("badmount");
    let mut spec = env.spec(&["/bin/true"]);
    spec["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/data", "type": "nosuchfs", "source": "none"
    }));
    assert_fails(&env.run(&spec), 1, &["mount /data", "No such device"]);
}

#[test]
fn fields_corral_does_not_honour_are_refused_by_name() {
    let env = Env::new("refused");
    for (path, value, needle) in [
        (
            &["process", "apparmorProfile"][..],
            json!("docker-default"),
            "process.apparmorProfile",
        ),
        (
            &["process", "execCPUAffinity"][..],
            json!({"initial": "3-1"}),
            "process.execCPUAffinity.initial",
        ),
        (
            &["linux", "netDevices"][..],
            json!({"eth9": {"name": "eth0"}}),
            "linux.netDevices",
        ),
        (
            &["linux", "intelRdt"][..],
            json!({"closID": "x"}),
            "linux.intelRdt",
        ),
    ] {
        let mut spec = env.spec(&["/bin/true"]);
        spec[path[0]][path[1]] = value;
        let out = env.run(&spec);
        assert_eq!(out.status.code(), Some(1), "{needle} was not refused");
        assert_fails(&out, 1, &[needle]);
    }
    // An unknown namespace type is a parse error naming it.
    let mut spec = env.spec(&["/bin/true"]);
    spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "nosuchns"}));
    assert_fails(&env.run(&spec), 1, &["config.json", "nosuchns"]);
}

/// A namespace path that names a FIFO is refused at once (opening it must not block until a
/// writer comes).
#[test]
fn a_fifo_as_a_namespace_path_is_refused_at_once() {
    let env = Env::new("nsfifo");
    let fifo = env.state_root().join("not-a-namespace");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let mut spec = env.spec(&["/bin/true"]);
    for ns in spec["linux"]["namespaces"].as_array_mut().unwrap() {
        if ns["type"] == "network" {
            ns["path"] = json!(fifo);
        }
    }
    env.rootfs.write_config(&spec);
    let bundle = env.bundle().to_string_lossy().into_owned();
    let out = common::cli_within(
        &env,
        &["run", "-b", &bundle, &env.id],
        std::time::Duration::from_secs(30),
    );
    assert_fails(&out, 1, &["not-a-namespace", "not a namespace"]);
}

/// `update` goes through the validator that create uses: a limit refused in `config.json`
/// is refused by `update` (its flags and `-r FILE`) with the same message, and the
/// container's limits are left as they were.
#[test]
fn update_refuses_what_config_json_refuses() {
    let env = Env::new("badupdate");
    let cases: [(&[&str], serde_json::Value); 4] = [
        (&["--pids-limit=-2"], json!({"pids": {"limit": -2}})),
        (&["--cpu-shares", "1"], json!({"cpu": {"shares": 1}})),
        (&["--blkio-weight", "5"], json!({"blockIO": {"weight": 5}})),
        (
            &["--memory", "104857600", "--memory-swap", "52428800"],
            json!({"memory": {"limit": 104857600, "swap": 52428800}}),
        ),
    ];
    let mut refusals = Vec::new();
    for (_, res) in &cases {
        let mut spec = env.spec(&["/bin/true"]);
        spec["linux"]["resources"] = res.clone();
        let out = env.run(&spec);
        assert_fails(&out, 1, &["linux.resources."]);
        refusals.push(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }

    env.rootfs
        .write_config(&env.spec(&["/probe", "sleep", "inf"]));
    let bundle = env.bundle().to_string_lossy().into_owned();
    common::cli_ok(&env, &["run", "-d", "-b", &bundle, &env.id]);
    let st: serde_json::Value =
        serde_json::from_str(&common::cli_ok(&env, &["state", &env.id])).unwrap();
    let pid = st["pid"].as_i64().unwrap();
    let stats = || -> serde_json::Value {
        serde_json::from_str(&common::cli_ok(&env, &["events", "--stats", &env.id])).unwrap()
    };
    let before = stats();
    let file = env.state_root().join("resources.json");
    for ((flags, res), refused) in cases.iter().zip(&refusals) {
        let mut args = vec!["update"];
        args.extend_from_slice(flags);
        args.push(&env.id);
        let out = common::cli(&env, &args);
        assert_fails(&out, 1, &[]);
        assert_eq!(
            String::from_utf8_lossy(&out.stderr).trim(),
            refused,
            "corral {args:?}"
        );
        std::fs::write(&file, res.to_string()).unwrap();
        let out = common::cli(&env, &["update", "-r", &common::path_str(&file), &env.id]);
        assert_fails(&out, 1, &[]);
        assert_eq!(
            String::from_utf8_lossy(&out.stderr).trim(),
            refused,
            "corral update -r {res}"
        );
    }
    let after = stats();
    assert_eq!(
        before["data"]["memory"]["usage"]["limit"], after["data"]["memory"]["usage"]["limit"],
        "a refused update changed the memory limit"
    );
    common::cli_ok(&env, &["delete", "--force", &env.id]);
    common::reap(pid);
}

//! `linux.resources.network` on a cgroup v1 (or hybrid) host, for real containers: the
//! class id and the interface priorities reach the container's `net_cls.classid` and
//! `net_prio.ifpriomap`, at create and on update, are checked like every other limit, and the
//! cgroup goes with delete; where the kernel has them unmounted the error says how to mount
//! them. (The refusal on a pure v2 host is tested against a fixture in cgroup/tests.)

use std::path::PathBuf;

use oci_spec::runtime::LinuxResources;
use runtime::{Bundle, Container, Options};
use serde_json::{json, Value};
use testkit::TestRootfs;

/// Fails the test unless this host mounts net_cls and net_prio (scripts/setup-deps.sh does
/// where the kernel has them unmounted).
fn require_net_cgroups() {
    testkit::require_root();
    let h = cgroup::Hierarchy::detect().expect("detecting the host's cgroups");
    assert!(
        h.v1_mount("net_cls").is_some() && h.v1_mount("net_prio").is_some(),
        "this test needs v1 net_cls and net_prio hierarchies (scripts/setup-deps.sh mounts them)"
    );
}

/// A bundle running `sleep 30` with `linux.resources.network` set to `network`.
fn setup(prefix: &str, network: Value) -> (String, TestRootfs, tempfile::TempDir) {
    let id = testkit::unique_id(prefix);
    let rootfs = TestRootfs::with_id(&id);
    let mut spec = runtime::default_spec();
    spec["process"]["terminal"] = json!(false);
    spec["process"]["args"] = json!(["/bin/sleep", "30"]);
    spec["root"]["path"] = json!(rootfs.rootfs());
    spec["linux"]["resources"]["network"] = network;
    rootfs.write_config(&spec);
    (id, rootfs, testkit::state_root())
}

/// The host directory of `pid`'s cgroup in the hierarchy holding `controller`, from
/// `/proc/<pid>/cgroup` (not from corral's own record), through the `/sys/fs/cgroup/<name>`
/// link systemd's layout has for each of a combined mount's controllers.
fn cgroup_dir(pid: i32, controller: &str) -> Result<PathBuf, String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).map_err(|e| e.to_string())?;
    text.lines()
        .find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
            ctrls.split(',').any(|c| c == controller).then(|| {
                PathBuf::from("/sys/fs/cgroup")
                    .join(controller)
                    .join(path.trim_start_matches('/'))
            })
        })
        .ok_or_else(|| format!("no {controller} cgroup in {text:?}"))
}

/// `net_cls.classid` and the priority of `lo` in `net_prio.ifpriomap` of `pid`'s cgroup (an
/// error as text: the test cleans up before it asserts).
fn read_net(pid: i32) -> (String, String) {
    let read = |controller: &str, file: &str| -> Result<String, String> {
        let p = cgroup_dir(pid, controller)?.join(file);
        std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))
    };
    let classid = read("net_cls", "net_cls.classid").map(|s| s.trim().to_string());
    let lo = read("net_prio", "net_prio.ifpriomap").and_then(|map| {
        map.lines()
            .find_map(|l| l.strip_prefix("lo ").map(str::to_string))
            .ok_or_else(|| format!("no lo in {map:?}"))
    });
    (classid.unwrap_or_else(|e| e), lo.unwrap_or_else(|e| e))
}

fn network(v: Value) -> LinuxResources {
    serde_json::from_value(json!({ "network": v })).unwrap()
}

/// The promise: `linux.resources.network` honoured on cgroup v1 (it was refused with
/// "net_cls/net_prio limits are not supported"). At create the container's cgroup has the
/// class id and lo's priority; an update changes both; a bad interface name in an update is
/// refused by field and changes nothing; delete removes the cgroup.
#[test]
fn network_resources_reach_net_cls_and_net_prio() {
    require_net_cgroups();
    let (id, rootfs, state) = setup(
        "netcg",
        json!({"classID": 0x0010_0001, "priorities": [{"name": "lo", "priority": 5}]}),
    );
    let opts = Options {
        root: state.path().to_path_buf(),
        ..Options::default()
    };
    let mut c = Container::create(&id, rootfs.bundle(), &opts).unwrap();
    let pid = c.pid();
    let leaf = cgroup_dir(pid, "net_cls");
    let at_create = read_net(pid);
    let updated = c
        .update_resources(&network(
            json!({"classID": 0x0010_0002, "priorities": [{"name": "lo", "priority": 7}]}),
        ))
        .map_err(|e| e.to_string());
    let after_update = read_net(pid);
    let refused = c
        .update_resources(&network(
            json!({"classID": 9, "priorities": [{"name": "a/b", "priority": 1}]}),
        ))
        .map_err(|e| e.to_string());
    let after_refusal = read_net(pid);
    let _ = c.signal(libc::SIGKILL);
    let _ = c.wait();
    c.delete().unwrap();
    testkit::assert_no_leaks(&id, Some(state.path()));

    assert_eq!(at_create, ("1048577".to_string(), "5".to_string()));
    assert_eq!(updated, Ok(()));
    assert_eq!(after_update, ("1048578".to_string(), "7".to_string()));
    let refused = refused.unwrap_err();
    assert!(
        refused.contains("linux.resources.network.priorities[0].name")
            && refused.contains("not a valid interface name"),
        "{refused}"
    );
    assert_eq!(after_refusal, after_update);
    let leaf = leaf.unwrap();
    assert!(leaf.ends_with(&id), "{}", leaf.display());
    assert!(!leaf.exists(), "{} left after delete", leaf.display());
}

/// A priority for an interface the host does not have: the kernel's ENODEV, naming the OCI
/// field, the file and the value; the create fails whole (no cgroup, no state, no process).
#[test]
fn a_priority_for_a_missing_interface_fails_the_create_and_leaves_nothing() {
    require_net_cgroups();
    let (id, rootfs, state) = setup(
        "netcg-nodev",
        json!({"priorities": [{"name": "lo", "priority": 1}, {"name": "nosuchif0", "priority": 2}]}),
    );
    let opts = Options {
        root: state.path().to_path_buf(),
        ..Options::default()
    };
    let err = Container::create(&id, rootfs.bundle(), &opts)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    testkit::assert_no_leaks(&id, Some(state.path()));
    assert!(
        err.contains("linux.resources.network.priorities")
            && err.contains("net_prio.ifpriomap")
            && err.contains("nosuchif0 2")
            && err.contains("No such device"),
        "{err}"
    );
}

/// Interface names follow the kernel's rules and are given once; refused by field when the
/// bundle is loaded (nothing made).
#[test]
fn network_priority_names_are_checked() {
    testkit::require_root();
    for (prios, field, why) in [
        (
            json!([{"name": "", "priority": 1}]),
            "linux.resources.network.priorities[0].name",
            "not a valid interface name",
        ),
        (
            json!([{"name": "lo", "priority": 1}, {"name": "0123456789abcdef", "priority": 1}]),
            "linux.resources.network.priorities[1].name",
            "not a valid interface name",
        ),
        (
            json!([{"name": "eth0:1", "priority": 1}]),
            "linux.resources.network.priorities[0].name",
            "not a valid interface name",
        ),
        (
            json!([{"name": "lo", "priority": 1}, {"name": "lo", "priority": 2}]),
            "linux.resources.network.priorities[1].name",
            "given twice",
        ),
    ] {
        let (_id, rootfs, _state) = setup("netcg-bad", json!({ "priorities": prios }));
        let err = Bundle::load(rootfs.bundle())
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(err.contains(field) && err.contains(why), "{prios}: {err}");
    }
}

const UNMOUNTED: &str = "CORRAL_T_NET_CGROUPS_UNMOUNTED";

/// The kernel has net_cls and net_prio but this mount namespace mounts no hierarchy for them
/// (this machine before scripts/setup-deps.sh): the create fails naming the field, saying
/// they are not mounted and how to mount them, and makes nothing. Run by the test binary
/// itself again under `unshare --mount`, which unmounts the hierarchy in its own private
/// mount namespace only (the host keeps it).
#[test]
fn unmounted_net_cgroups_are_named_with_how_to_mount_them() {
    require_net_cgroups();
    let name = "unmounted_net_cgroups_are_named_with_how_to_mount_them";
    if std::env::var_os(UNMOUNTED).is_none() {
        let out = std::process::Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--"])
            .arg(std::env::current_exe().unwrap())
            .args(["--exact", name, "--nocapture", "--test-threads=1"])
            .env(UNMOUNTED, "1")
            .output()
            .expect("running unshare (util-linux)");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && text.contains(&format!("test {name} ... ok")),
            "{text}"
        );
        return;
    }
    // In the private mount namespace: unmount every net_cls or net_prio hierarchy here.
    let h = cgroup::Hierarchy::detect().unwrap();
    for m in h
        .mounts()
        .iter()
        .filter(|m| m.has("net_cls") || m.has("net_prio"))
    {
        nix::mount::umount2(&m.mount_point, nix::mount::MntFlags::MNT_DETACH)
            .unwrap_or_else(|e| panic!("umount {}: {e}", m.mount_point.display()));
    }
    let (id, rootfs, state) = setup("netcg-unmounted", json!({"classID": 0x0010_0001}));
    let opts = Options {
        root: state.path().to_path_buf(),
        ..Options::default()
    };
    let err = Container::create(&id, rootfs.bundle(), &opts)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    testkit::assert_no_leaks(&id, Some(state.path()));
    assert!(
        err.contains("linux.resources.network.classID")
            && err.contains("the kernel has the net_cls controller but no cgroup v1 hierarchy mounts it")
            && err.contains("mount -t cgroup -o net_cls,net_prio net_cls,net_prio /sys/fs/cgroup/net_cls,net_prio"),
        "{err}"
    );
}

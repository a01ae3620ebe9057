//! A container described with [`runtime::Description`] and checked by the one validator:
//! the limits it asks for are the ones its cgroup gets, and an update is refused the same
//! way as the same value in a `config.json`.

use std::path::PathBuf;

use oci_spec::runtime::{LinuxMemoryBuilder, LinuxResources, LinuxResourcesBuilder};
use runtime::{Bundle, Container, Description, Limits, Options, Root};
use serde_json::json;
use testkit::TestRootfs;

/// The container's v1 cgroup file `file` of `controller`, read from the host (an error
/// as text: the test cleans up before it asserts).
fn read_cg(pid: i32, controller: &str, file: &str) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let Some(path) = text.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
        ctrls
            .split(',')
            .any(|c| c == controller)
            .then(|| path.to_string())
    }) else {
        return format!("no {controller} cgroup in {text:?}");
    };
    let p = PathBuf::from("/sys/fs/cgroup")
        .join(controller)
        .join(path.trim_start_matches('/'))
        .join(file);
    match std::fs::read_to_string(&p) {
        Ok(v) => v.trim().to_string(),
        Err(e) => format!("{}: {e}", p.display()),
    }
}

fn memory(limit: i64) -> LinuxResources {
    LinuxResourcesBuilder::default()
        .memory(LinuxMemoryBuilder::default().limit(limit).build().unwrap())
        .build()
        .unwrap()
}

/// A described container with memory, memory+swap and CPU shares gets them in its cgroup
/// (the image path dropped swap and shares; it is a Description now too).
#[test]
fn described_limits_reach_the_cgroup() {
    testkit::require_root();
    let id = testkit::unique_id("describe-limits");
    let rootfs = TestRootfs::with_id(&id);
    let state = testkit::state_root();
    let mut d = Description::new(Root::Dir(rootfs.rootfs().to_path_buf()));
    d.args = vec!["/bin/sleep".into(), "30".into()];
    d.limits = Limits {
        memory: Some(64 << 20),
        memory_swap: Some(96 << 20),
        cpu_shares: Some(512),
        ..Limits::default()
    };
    let bundle = Bundle::from_spec(rootfs.bundle().to_path_buf(), d.to_spec().unwrap()).unwrap();
    let opts = Options {
        root: state.path().to_path_buf(),
        ..Options::default()
    };
    let mut c = Container::create_from(&id, &bundle, &opts).unwrap();
    let pid = c.pid();
    let got = (
        read_cg(pid, "memory", "memory.limit_in_bytes"),
        read_cg(pid, "memory", "memory.memsw.limit_in_bytes"),
        read_cg(pid, "cpu", "cpu.shares"),
    );
    let _ = c.signal(libc::SIGKILL);
    let _ = c.wait();
    c.delete().unwrap();
    testkit::assert_no_leaks(&id, Some(state.path()));
    assert_eq!(
        got,
        (
            (64u64 << 20).to_string(),
            (96u64 << 20).to_string(),
            "512".to_string()
        )
    );
}

/// A memory limit of 0 means "unset", as runc reads it (dockerd and containerd's CRI send
/// it): a config.json with it is accepted, and an update with it leaves the limit in force;
/// config.json and update read it alike.
#[test]
fn memory_0_is_unset_in_config_json_and_update_alike() {
    testkit::require_root();
    let id = testkit::unique_id("describe-update");
    let rootfs = TestRootfs::with_id(&id);
    let state = testkit::state_root();
    let mut spec = runtime::default_spec();
    spec["process"]["terminal"] = json!(false);
    spec["process"]["args"] = json!(["/bin/sleep", "30"]);
    spec["root"]["path"] = json!(rootfs.rootfs());
    spec["linux"]["resources"]["memory"] = json!({"limit": 0});
    rootfs.write_config(&spec);
    let from_config = Bundle::load(rootfs.bundle())
        .map(|_| ())
        .map_err(|e| e.to_string());

    spec["linux"]["resources"]["memory"] = json!({"limit": 64 << 20});
    rootfs.write_config(&spec);
    let opts = Options {
        root: state.path().to_path_buf(),
        ..Options::default()
    };
    let mut c = Container::create(&id, rootfs.bundle(), &opts).unwrap();
    let pid = c.pid();
    let zero = c.update_resources(&memory(0)).map_err(|e| e.to_string());
    let after_zero = read_cg(pid, "memory", "memory.limit_in_bytes");
    let accepted = c
        .update_resources(&memory(32 << 20))
        .map_err(|e| e.to_string());
    let after_update = read_cg(pid, "memory", "memory.limit_in_bytes");
    let _ = c.signal(libc::SIGKILL);
    let _ = c.wait();
    c.delete().unwrap();
    testkit::assert_no_leaks(&id, Some(state.path()));

    assert_eq!(from_config, Ok(()));
    assert_eq!(zero, Ok(()));
    assert_eq!(after_zero, (64u64 << 20).to_string());
    assert_eq!(accepted, Ok(()));
    assert_eq!(after_update, (32u64 << 20).to_string());
}

//! cgroup v2 logic against a fake tree in a temporary directory.

use std::fs;
use std::path::{Path, PathBuf};

use cgroup::{
    Cgroup, CgroupPath, DeviceRule, Error, Hierarchy, HugeTlbLimit, InterfacePriority, Resources,
    ThrottleDevice, Version, WeightDevice,
};

const MOUNTINFO: &str =
    "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";
const CONTROLLERS: &str = "cpuset cpu io memory hugetlb pids\n";

struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    h: Hierarchy,
}

/// A fake pure-v2 tree: the caller sits in /user.slice/session-1.scope;
/// user.slice already has memory enabled.
fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("sys/fs/cgroup");
    fs::create_dir_all(root.join("user.slice/session-1.scope")).unwrap();
    fs::write(root.join("cgroup.controllers"), CONTROLLERS).unwrap();
    fs::write(root.join("cgroup.subtree_control"), "").unwrap();
    fs::write(root.join("user.slice/cgroup.subtree_control"), "memory\n").unwrap();
    let h = Hierarchy::from_parts(MOUNTINFO, "0::/user.slice/session-1.scope\n")
        .unwrap()
        .with_root_prefix(tmp.path());
    Fixture { _tmp: tmp, root, h }
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn touch(dir: &Path, files: &[&str]) {
    for f in files {
        fs::write(dir.join(f), "").unwrap();
    }
}

#[test]
fn v2_hierarchy_from_fixture() {
    let f = fixture();
    assert_eq!(f.h.version(), Version::V2);
    let m = &f.h.mounts()[0];
    assert!(m.v2);
    assert_eq!(m.mount_point, f.root);
    assert_eq!(
        m.controllers,
        ["cpuset", "cpu", "io", "memory", "hugetlb", "pids"]
    );
    assert_eq!(m.own, "/user.slice/session-1.scope");
    assert_eq!(m.name, "");
}

#[test]
fn v2_relative_uses_parent_of_own_cgroup() {
    let f = fixture();
    let cg = Cgroup::new(&f.h, &CgroupPath::Relative("ctr".into())).unwrap();
    assert_eq!(cg.v2_dir().unwrap(), f.root.join("user.slice/ctr"));
    let dirs = cg.dirs();
    assert_eq!(dirs.len(), 1);
    assert_eq!(dirs[0].name, "");
    assert!(dirs[0].v2);

    let cg = Cgroup::new(&f.h, &CgroupPath::Absolute("/a/b".into())).unwrap();
    assert_eq!(cg.v2_dir().unwrap(), f.root.join("a/b"));

    // At the root, relative paths go under the root.
    let h = Hierarchy::from_parts(MOUNTINFO, "0::/\n").unwrap();
    let cg = Cgroup::new(&h, &CgroupPath::Relative("x/y".into())).unwrap();
    assert_eq!(cg.v2_dir().unwrap(), Path::new("/sys/fs/cgroup/x/y"));
    // One level deep: the parent is the root.
    let h = Hierarchy::from_parts(MOUNTINFO, "0::/init.scope\n").unwrap();
    let cg = Cgroup::new(&h, &CgroupPath::Relative("x".into())).unwrap();
    assert_eq!(cg.v2_dir().unwrap(), Path::new("/sys/fs/cgroup/x"));
}

#[test]
fn invalid_paths() {
    let f = fixture();
    for p in ["", "/", "a/../b", "..", "a\0b"] {
        for path in [
            CgroupPath::Relative(p.into()),
            CgroupPath::Absolute(p.into()),
        ] {
            let err = Cgroup::new(&f.h, &path).unwrap_err();
            assert!(matches!(err, Error::InvalidPath { .. }), "{p:?}: {err}");
        }
    }
}

#[test]
fn v2_create_enables_controllers_and_apply_converts() {
    let f = fixture();
    let mut cg = Cgroup::new(&f.h, &CgroupPath::Relative("ctr".into())).unwrap();
    let r = Resources {
        cpu_shares: Some(1024),
        cpu_quota: Some(50_000),
        cpuset_cpus: Some("0-1".into()),
        cpuset_mems: Some("0".into()),
        memory_limit: Some(1 << 30),
        memory_reservation: Some(512 << 20),
        memory_swap: Some(2 << 30),
        pids_limit: Some(0),
        blkio_weight: Some(500),
        blkio_weight_device: vec![WeightDevice {
            major: 8,
            minor: 16,
            weight: Some(1000),
            leaf_weight: None,
        }],
        blkio_throttle_read_bps: vec![ThrottleDevice {
            major: 8,
            minor: 0,
            rate: 1 << 20,
        }],
        hugetlb: vec![HugeTlbLimit {
            page_size: "2MB".into(),
            limit: 4 << 20,
        }],
        ..Default::default()
    };
    cg.create(&r).unwrap();
    let leaf = f.root.join("user.slice/ctr");
    assert!(leaf.is_dir());
    assert_eq!(cg.created_dirs(), std::slice::from_ref(&leaf));
    // Every needed controller is enabled on the root and on user.slice,
    // skipping the already-enabled memory there.
    assert_eq!(
        read(&f.root.join("cgroup.subtree_control")),
        "+cpuset +cpu +memory +pids +io +hugetlb"
    );
    assert_eq!(
        read(&f.root.join("user.slice/cgroup.subtree_control")),
        "+cpuset +cpu +pids +io +hugetlb"
    );
    // The leaf's own subtree_control is not touched.
    assert!(!leaf.join("cgroup.subtree_control").exists());

    touch(
        &leaf,
        &[
            "cpu.weight",
            "cpu.max",
            "cpuset.cpus",
            "cpuset.mems",
            "memory.max",
            "memory.low",
            "memory.swap.max",
            "pids.max",
            "io.weight",
            "io.max",
            "hugetlb.2MB.max",
        ],
    );
    // Make apply's re-check of subtree_control a no-op.
    fs::write(f.root.join("cgroup.subtree_control"), CONTROLLERS).unwrap();
    fs::write(
        f.root.join("user.slice/cgroup.subtree_control"),
        CONTROLLERS,
    )
    .unwrap();
    let r_no_wd = Resources {
        blkio_weight_device: vec![],
        ..r.clone()
    };
    cg.apply(&r_no_wd).unwrap();
    let expect = [
        ("cpu.weight", "39"),
        ("cpu.max", "50000 100000"),
        ("cpuset.cpus", "0-1"),
        ("cpuset.mems", "0"),
        ("memory.max", "1073741824"),
        ("memory.low", "536870912"),
        ("memory.swap.max", "1073741824"),
        ("pids.max", "max"),
        ("io.weight", "4950"),
        ("io.max", "8:0 rbps=1048576"),
        ("hugetlb.2MB.max", "4194304"),
    ];
    for (file, v) in expect {
        assert_eq!(read(&leaf.join(file)), v, "{file}");
    }
    assert_eq!(read(&f.root.join("cgroup.subtree_control")), CONTROLLERS);
    assert!(cg.warnings().is_empty());

    // Per-device weight, converted; bfq takes the raw value when present.
    cg.apply(&Resources {
        blkio_weight_device: r.blkio_weight_device.clone(),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(read(&leaf.join("io.weight")), "8:16 10000");
    touch(&leaf, &["io.bfq.weight"]);
    cg.apply(&Resources {
        blkio_weight: Some(500),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(read(&leaf.join("io.bfq.weight")), "500");

    // Quota <= 0 is "max"; the period defaults to 100000; shares edges.
    cg.apply(&Resources {
        cpu_quota: Some(-1),
        cpu_shares: Some(2),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(read(&leaf.join("cpu.max")), "max 100000");
    assert_eq!(read(&leaf.join("cpu.weight")), "1");
    cg.apply(&Resources {
        cpu_shares: Some(262_144),
        memory_limit: Some(-1),
        memory_swap: Some(-1),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(read(&leaf.join("cpu.weight")), "10000");
    assert_eq!(read(&leaf.join("memory.max")), "max");
    assert_eq!(read(&leaf.join("memory.swap.max")), "max");
    // Only the period: the current quota is kept.
    fs::write(leaf.join("cpu.max"), "20000 100000").unwrap();
    cg.apply(&Resources {
        cpu_period: Some(50_000),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(read(&leaf.join("cpu.max")), "20000 50000");
}

#[test]
fn v2_missing_swap_file_is_a_warning() {
    let f = fixture();
    let mut cg = Cgroup::new(&f.h, &CgroupPath::Relative("w".into())).unwrap();
    let r = Resources {
        memory_limit: Some(1 << 20),
        memory_swap: Some(2 << 20),
        ..Default::default()
    };
    cg.create(&r).unwrap();
    let leaf = cg.v2_dir().unwrap().to_path_buf();
    touch(&leaf, &["memory.max"]);
    cg.apply(&r).unwrap();
    assert_eq!(read(&leaf.join("memory.max")), "1048576");
    let w = cg.warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("memory.swap.max"), "{w:?}");
}

#[test]
fn v2_unsupported_settings() {
    let f = fixture();
    let mut cg = Cgroup::new(&f.h, &CgroupPath::Relative("u".into())).unwrap();
    let devices = Resources {
        devices: vec![DeviceRule {
            allow: false,
            kind: 'a',
            major: None,
            minor: None,
            access: "rwm".into(),
        }],
        ..Default::default()
    };
    // Device rules become an eBPF program attached to the cgroup2 directory; a fixture
    // directory is no cgroup, and the error says so (the real kernel path is tested in
    // tests/devices_bpf.rs).
    cg.create(&devices).unwrap();
    let err = cg.apply(&devices).unwrap_err();
    assert!(
        err.to_string().contains("is it a cgroup2 directory?")
            && err.to_string().contains("user.slice/u"),
        "{err}"
    );

    let err = cg
        .apply(&Resources {
            memory_disable_oom_killer: Some(true),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(err.setting(), Some("memory_disable_oom_killer"), "{err}");

    let err = cg
        .apply(&Resources {
            cpu_realtime_runtime: Some(1000),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(err.setting(), Some("cpu_realtime_runtime"), "{err}");

    // The kernel lacks the file: unsupported, naming the files looked for.
    let err = cg
        .apply(&Resources {
            blkio_weight: Some(100),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(err.setting(), Some("blkio_weight"), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("io.bfq.weight") && msg.contains("io.weight"),
        "{msg}"
    );
    let err = cg
        .apply(&Resources {
            pids_limit: Some(10),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(err.setting(), Some("pids_limit"), "{err}");
    assert!(err.to_string().contains("pids.max"), "{err}");
}

#[test]
fn v2_missing_controller_is_unsupported() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("sys/fs/cgroup");
    fs::create_dir_all(&root).unwrap();
    fs::write(root.join("cgroup.controllers"), "memory pids\n").unwrap();
    let h = Hierarchy::from_parts(MOUNTINFO, "0::/\n")
        .unwrap()
        .with_root_prefix(tmp.path());
    let mut cg = Cgroup::new(&h, &CgroupPath::Absolute("c".into())).unwrap();
    let err = cg
        .create(&Resources {
            hugetlb: vec![HugeTlbLimit {
                page_size: "2MB".into(),
                limit: 0,
            }],
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(err.setting(), Some("hugetlb"));
    assert!(
        err.to_string()
            .contains("no cgroup hierarchy has the hugetlb controller"),
        "{err}"
    );
}

#[test]
fn v2_remove_only_what_create_made() {
    let f = fixture();
    // /user.slice exists already; "new/leaf" under it are made by create.
    let mut cg = Cgroup::new(&f.h, &CgroupPath::Relative("new/leaf".into())).unwrap();
    cg.create(&Resources::default()).unwrap();
    assert_eq!(
        cg.created_dirs(),
        [
            f.root.join("user.slice/new"),
            f.root.join("user.slice/new/leaf")
        ]
    );
    // Creating it again: AlreadyExists, and nothing of the first is undone.
    let mut again = Cgroup::new(&f.h, &CgroupPath::Relative("new/leaf".into())).unwrap();
    let err = again.create(&Resources::default()).unwrap_err();
    assert!(
        matches!(err, Error::AlreadyExists { ref path } if *path == f.root.join("user.slice/new/leaf")),
        "{err}"
    );
    assert!(f.root.join("user.slice/new/leaf").is_dir());

    // A sibling appears under the shared intermediate dir: it stays.
    fs::create_dir(f.root.join("user.slice/new/other")).unwrap();
    cg.remove().unwrap();
    assert!(!f.root.join("user.slice/new/leaf").exists());
    assert!(f.root.join("user.slice/new/other").exists());
    fs::remove_dir(f.root.join("user.slice/new/other")).unwrap();
    cg.remove().unwrap();
    assert!(!f.root.join("user.slice/new").exists());
    assert!(f.root.join("user.slice").exists());
}

#[test]
fn unplaceable_settings_are_taken_out_and_named() {
    // What a rootless caller's cgroup cannot hold is dropped with a warning rather than
    // failing the container: here a cpu share, on a host whose cgroup2 lacks the cpu
    // controller. Device rules stay: cgroup2 takes them as an eBPF program.
    let f = fixture();
    fs::write(f.root.join("cgroup.controllers"), "memory pids\n").unwrap();
    let h = Hierarchy::from_parts(MOUNTINFO, "0::/user.slice/session-1.scope\n")
        .unwrap()
        .with_root_prefix(f._tmp.path());
    let cg = Cgroup::new(&h, &CgroupPath::Relative("ctr".into())).unwrap();
    let mut r = Resources {
        pids_limit: Some(5),
        cpu_shares: Some(512),
        devices: vec![DeviceRule {
            allow: false,
            kind: 'a',
            major: None,
            minor: None,
            access: "rwm".into(),
        }],
        ..Default::default()
    };
    assert_eq!(cg.drop_unplaceable(&mut r), ["cpu_shares"]);
    assert_eq!(r.cpu_shares, None);
    assert_eq!((r.pids_limit, r.devices.len()), (Some(5), 1));
    assert!(cg.drop_unplaceable(&mut r).is_empty());
    assert!(!cg.is_empty());
}

/// `is_frozen` reads what the kernel holds (`cgroup.freeze`), so a caller can tell a frozen
/// cgroup whatever it last wrote down; no freeze file, no freezer.
#[test]
fn v2_is_frozen_reads_cgroup_freeze() {
    let f = fixture();
    let mut cg = Cgroup::new(&f.h, &CgroupPath::Relative("frz".into())).unwrap();
    cg.create(&Resources::default()).unwrap();
    let dir = f.root.join("user.slice/frz");
    assert_eq!(cg.is_frozen().unwrap(), None);
    fs::write(dir.join("cgroup.freeze"), "1\n").unwrap();
    assert_eq!(cg.is_frozen().unwrap(), Some(true));
    fs::write(dir.join("cgroup.freeze"), "0\n").unwrap();
    assert_eq!(cg.is_frozen().unwrap(), Some(false));
    fs::remove_file(dir.join("cgroup.freeze")).unwrap();
    cg.remove().unwrap();
}

/// cgroup v2 has no net_cls or net_prio: a pure v2 host refuses both settings, naming the
/// setting and saying why (whatever /proc/cgroups lists: v1-only controllers cannot be used
/// on a v2 host), at create (before anything is made) and at apply.
#[test]
fn v2_refuses_net_cls_and_net_prio() {
    let f = fixture();
    let h =
        f.h.clone()
            .with_proc_cgroups("net_cls\t0\t1\t1\nnet_prio\t0\t1\t1\n");
    for r in [
        Resources {
            net_cls_classid: Some(0x0010_0001),
            ..Default::default()
        },
        Resources {
            net_prio_ifpriomap: vec![InterfacePriority {
                name: "lo".into(),
                priority: 3,
            }],
            ..Default::default()
        },
    ] {
        let setting = if r.net_cls_classid.is_some() {
            "net_cls_classid"
        } else {
            "net_prio_ifpriomap"
        };
        let mut cg = Cgroup::new(&h, &CgroupPath::Relative("n".into())).unwrap();
        let err = cg.create(&r).unwrap_err();
        assert_eq!(err.setting(), Some(setting), "{err}");
        assert!(
            err.to_string()
                .contains("cgroup v2 has no net_cls or net_prio controller"),
            "{err}"
        );
        assert!(!f.root.join("user.slice/n").exists());
        cg.create(&Resources::default()).unwrap();
        let err = cg.apply(&r).unwrap_err();
        assert_eq!(err.setting(), Some(setting), "{err}");
        cg.remove().unwrap();
    }
}

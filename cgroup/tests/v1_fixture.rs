//! Exact v1 file contents against a fake v1 tree (no kernel validation).

use std::fs;
use std::path::Path;

use cgroup::{
    Cgroup, CgroupPath, DeviceRule, Hierarchy, HugeTlbLimit, InterfacePriority, Resources,
    ThrottleDevice, Version,
};

const MOUNTINFO: &str = "\
32 31 0:28 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
33 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
34 31 0:30 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
35 31 0:31 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
36 31 0:32 / /sys/fs/cgroup/hugetlb rw,relatime - cgroup cgroup rw,hugetlb
";
const PROC: &str = "5:hugetlb:/\n4:blkio:/\n3:devices:/\n2:cpu,cpuacct:/a\n1:memory:/\n";

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn v1_exact_values() {
    let tmp = tempfile::tempdir().unwrap();
    let h = Hierarchy::from_parts(MOUNTINFO, PROC)
        .unwrap()
        .with_root_prefix(tmp.path());
    assert_eq!(h.version(), Version::V1);
    let cgr = |c: &str| tmp.path().join("sys/fs/cgroup").join(c);
    fs::create_dir_all(cgr("cpu,cpuacct/a")).unwrap();
    for m in ["memory", "devices", "blkio", "hugetlb"] {
        fs::create_dir_all(cgr(m)).unwrap();
    }
    let mut cg = Cgroup::new(&h, &CgroupPath::Relative("c".into())).unwrap();
    let names: Vec<String> = cg.dirs().into_iter().map(|d| d.name).collect();
    assert_eq!(
        names,
        ["memory", "cpu,cpuacct", "devices", "blkio", "hugetlb"]
    );
    cg.create(&Resources::default()).unwrap();
    let cpu = cgr("cpu,cpuacct/a/c");
    assert!(cpu.is_dir());
    let files = [
        (
            cgr("memory/c"),
            &[
                "memory.limit_in_bytes",
                "memory.oom_control",
                "memory.swappiness",
            ][..],
        ),
        (
            cpu.clone(),
            &["cpu.cfs_quota_us", "cpu.rt_period_us", "cpu.rt_runtime_us"][..],
        ),
        (cgr("devices/c"), &["devices.allow", "devices.deny"][..]),
        (
            cgr("blkio/c"),
            &[
                "blkio.throttle.write_iops_device",
                "blkio.bfq.weight_device",
            ][..],
        ),
        (cgr("hugetlb/c"), &["hugetlb.1GB.limit_in_bytes"][..]),
    ];
    for (dir, fs_) in files {
        for f in fs_ {
            fs::write(dir.join(f), "").unwrap();
        }
    }
    let r = Resources {
        memory_limit: Some(1 << 20),
        memory_swap: Some(2 << 20),
        memory_swappiness: Some(0),
        memory_disable_oom_killer: Some(true),
        cpu_quota: Some(0),
        cpu_realtime_period: Some(1_000_000),
        cpu_realtime_runtime: Some(950_000),
        devices: vec![
            DeviceRule {
                allow: false,
                kind: 'a',
                major: None,
                minor: None,
                access: "rwm".into(),
            },
            DeviceRule {
                allow: true,
                kind: 'c',
                major: Some(1),
                minor: None,
                access: "m".into(),
            },
        ],
        blkio_weight_device: vec![cgroup::WeightDevice {
            major: 8,
            minor: 0,
            weight: Some(300),
            leaf_weight: None,
        }],
        blkio_throttle_write_iops: vec![ThrottleDevice {
            major: 8,
            minor: 0,
            rate: 100,
        }],
        hugetlb: vec![HugeTlbLimit {
            page_size: "1GB".into(),
            limit: 1 << 30,
        }],
        ..Default::default()
    };
    cg.apply(&r).unwrap();
    let expect = [
        (cgr("memory/c/memory.limit_in_bytes"), "1048576"),
        (cgr("memory/c/memory.oom_control"), "1"),
        (cgr("memory/c/memory.swappiness"), "0"),
        (cpu.join("cpu.cfs_quota_us"), "-1"),
        (cpu.join("cpu.rt_period_us"), "1000000"),
        (cpu.join("cpu.rt_runtime_us"), "950000"),
        // Deny-all first, whatever the rules say, then the rules in order, one write each.
        (cgr("devices/c/devices.deny"), "a\na *:* rwm\n"),
        (cgr("devices/c/devices.allow"), "c 1:* m\n"),
        (cgr("blkio/c/blkio.bfq.weight_device"), "8:0 300"),
        (cgr("blkio/c/blkio.throttle.write_iops_device"), "8:0 100"),
        (cgr("hugetlb/c/hugetlb.1GB.limit_in_bytes"), "1073741824"),
    ];
    for (p, v) in expect {
        assert_eq!(read(&p), v, "{}", p.display());
    }
    // No memory.memsw.limit_in_bytes: the swap limit is a warning, not an error.
    let w = cg.warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("memory.memsw.limit_in_bytes"), "{w:?}");

    // A controller no hierarchy has.
    let err = cg
        .apply(&Resources {
            pids_limit: Some(5),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(err.setting(), Some("pids_limit"));
    assert!(
        err.to_string()
            .contains("no cgroup hierarchy has the pids controller"),
        "{err}"
    );
}

/// net_cls and net_prio mounted together, as systemd does (`net_cls,net_prio`, like
/// `cpu,cpuacct`): one hierarchy serves both settings, under one directory.
#[test]
fn v1_net_cls_net_prio_combined_mount() {
    let tmp = tempfile::tempdir().unwrap();
    let mi = "\
32 31 0:28 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
38 31 0:34 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:19 - cgroup cgroup rw,net_cls,net_prio
";
    let h = Hierarchy::from_parts(mi, "2:net_cls,net_prio:/a\n1:memory:/\n")
        .unwrap()
        .with_root_prefix(tmp.path());
    let m = h.v1_mount("net_prio").unwrap();
    assert_eq!(m.controllers, ["net_cls", "net_prio"]);
    assert_eq!(m.name, "net_cls,net_prio");
    assert_eq!(h.v1_mount("net_cls"), Some(m));
    let cgr = |c: &str| tmp.path().join("sys/fs/cgroup").join(c);
    fs::create_dir_all(cgr("memory")).unwrap();
    fs::create_dir_all(cgr("net_cls,net_prio/a")).unwrap();
    let mut cg = Cgroup::new(&h, &CgroupPath::Relative("c".into())).unwrap();
    let r = Resources {
        net_cls_classid: Some(0x0010_0001),
        net_prio_ifpriomap: vec![InterfacePriority {
            name: "eth0".into(),
            priority: 5,
        }],
        ..Default::default()
    };
    cg.create(&r).unwrap();
    let leaf = cgr("net_cls,net_prio/a/c");
    fs::write(leaf.join("net_cls.classid"), "").unwrap();
    fs::write(leaf.join("net_prio.ifpriomap"), "").unwrap();
    cg.apply(&r).unwrap();
    assert_eq!(read(&leaf.join("net_cls.classid")), "1048577");
    assert_eq!(read(&leaf.join("net_prio.ifpriomap")), "eth0 5");
}

/// A fake hybrid host (v1 memory and a cgroup2 mount, no net_cls or net_prio hierarchy).
fn hybrid_without_net(tmp: &Path) -> Hierarchy {
    let mi = "\
32 31 0:28 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    for d in ["memory", "unified"] {
        fs::create_dir_all(tmp.join("sys/fs/cgroup").join(d)).unwrap();
    }
    Hierarchy::from_parts(mi, "1:memory:/\n0::/\n")
        .unwrap()
        .with_root_prefix(tmp)
}

/// The kernel has net_cls and net_prio but no hierarchy mounts them (this machine before
/// scripts/setup-deps.sh): the error names the setting, says they are not mounted and how
/// to mount them as systemd does; nothing is made.
#[test]
fn v1_net_cls_not_mounted_says_how_to_mount_it() {
    let tmp = tempfile::tempdir().unwrap();
    let proc_cgroups = "#subsys_name\thierarchy\tnum_cgroups\tenabled\n\
                        memory\t4\t99\t1\nnet_cls\t0\t1\t1\nnet_prio\t0\t1\t1\n";
    let h = hybrid_without_net(tmp.path()).with_proc_cgroups(proc_cgroups);
    assert_eq!(h.version(), Version::Hybrid);
    let base = tmp.path().join("sys/fs/cgroup");
    let mount = format!(
        "mkdir -p {b}/net_cls,net_prio && mount -t cgroup -o net_cls,net_prio net_cls,net_prio {b}/net_cls,net_prio",
        b = base.display()
    );
    for (r, setting, ctrl) in [
        (
            Resources {
                net_cls_classid: Some(1),
                ..Default::default()
            },
            "net_cls_classid",
            "net_cls",
        ),
        (
            Resources {
                net_prio_ifpriomap: vec![InterfacePriority {
                    name: "lo".into(),
                    priority: 1,
                }],
                ..Default::default()
            },
            "net_prio_ifpriomap",
            "net_prio",
        ),
    ] {
        let mut cg = Cgroup::new(&h, &CgroupPath::Absolute("c".into())).unwrap();
        let err = cg.create(&r).unwrap_err();
        assert_eq!(err.setting(), Some(setting), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!(
                "the kernel has the {ctrl} controller but no cgroup v1 hierarchy mounts it"
            )) && msg.contains(&mount)
                && msg.contains(&format!(
                    "ln -sfn net_cls,net_prio {}/net_cls",
                    base.display()
                )),
            "{msg}"
        );
        assert!(!base.join("memory/c").exists(), "create made a directory");
        // apply (update) says the same.
        let err = cg.apply(&r).unwrap_err();
        assert_eq!(err.to_string(), msg);
    }

    // A kernel without them: that is what the error says.
    let h =
        hybrid_without_net(tmp.path()).with_proc_cgroups("memory\t4\t99\t1\nnet_cls\t0\t1\t0\n");
    let cg = Cgroup::new(&h, &CgroupPath::Absolute("c".into())).unwrap();
    let err = cg
        .apply(&Resources {
            net_cls_classid: Some(1),
            ..Default::default()
        })
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("the kernel has no net_cls controller"),
        "{err}"
    );
    // Without /proc/cgroups read: still the hint.
    let h = hybrid_without_net(tmp.path());
    let cg = Cgroup::new(&h, &CgroupPath::Absolute("c".into())).unwrap();
    let err = cg
        .apply(&Resources {
            net_cls_classid: Some(1),
            ..Default::default()
        })
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("no cgroup v1 hierarchy mounts the net_cls controller")
            && err.to_string().contains(&mount),
        "{err}"
    );
}

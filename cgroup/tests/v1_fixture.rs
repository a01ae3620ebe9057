//! Exact v1 file contents against a fake v1 tree (no kernel validation).

use std::fs;
use std::path::Path;

use cgroup::{
    Cgroup, CgroupPath, DeviceRule, Hierarchy, HugeTlbLimit, Resources, ThrottleDevice, Version,
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
        (cgr("devices/c/devices.deny"), "a *:* rwm"),
        (cgr("devices/c/devices.allow"), "c 1:* m"),
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

//! Real cgroup tests against this host's v1 (hybrid) hierarchies. They need
//! root and the v1 controllers these machines have (memory, cpuset, blkio; hugetlb only
//! in cgroup2, with 2 MB huge pages); where one is missing they fail and say so, never
//! pass without running.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU32, Ordering};

use cgroup::{
    Cgroup, CgroupPath, DeviceRule, Error, Hierarchy, HugeTlbLimit, InterfacePriority, Resources,
    Version,
};
use nix::sys::signal::Signal;

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique(tag: &str) -> String {
    format!(
        "corral-test-{}-{}-{tag}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// The host's hierarchy; fails the test unless it has the v1 controllers it needs.
fn host() -> Hierarchy {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root (real cgroups)"
    );
    let h = Hierarchy::detect()
        .unwrap_or_else(|e| panic!("this test needs real cgroups: detection failed: {e}"));
    if h.version() == Version::V2 || h.v1_mount("memory").is_none() {
        panic!("this test needs cgroup v1 controllers (a v1 memory hierarchy)");
    }
    h
}

/// Kills the child and removes the cgroup even when a test fails.
struct Guard {
    cg: Cgroup,
    child: Option<Child>,
}

impl Guard {
    fn new(cg: Cgroup) -> Self {
        Guard { cg, child: None }
    }
    fn spawn(&mut self) -> i32 {
        let child = Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let pid = child.id() as i32;
        self.child = Some(child);
        pid
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.cg.thaw();
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = self.cg.remove();
    }
}

fn dir_of(cg: &Cgroup, name: &str) -> PathBuf {
    cg.dirs()
        .into_iter()
        .find(|d| d.name == name)
        .unwrap_or_else(|| panic!("no {name} dir"))
        .dir
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

fn own_v1(controller: &str) -> String {
    let s = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    s.lines()
        .find_map(|l| {
            let mut it = l.splitn(3, ':');
            let _ = it.next();
            let c = it.next()?;
            let p = it.next()?;
            c.split(',').any(|x| x == controller).then(|| p.to_string())
        })
        .unwrap()
}

type Rule<'a> = (bool, char, Option<i64>, Option<i64>, &'a str);

fn devices(rules: &[Rule<'_>]) -> Vec<DeviceRule> {
    rules
        .iter()
        .map(|&(allow, kind, major, minor, access)| DeviceRule {
            allow,
            kind,
            major,
            minor,
            access: access.to_string(),
        })
        .collect()
}

/// The swap limit is written before the memory limit when both rise, after it when both
/// fall (either order would fail one way: the limit may not exceed memsw); -1 is unlimited.
fn memsw_order(cg: &Cgroup, mem: &std::path::Path, memsw: &std::path::Path) {
    // Raising both: memsw must be written first (else limit > memsw).
    cg.apply(&Resources {
        memory_limit: Some(256 << 20),
        memory_swap: Some(512 << 20),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        read(&mem.join("memory.limit_in_bytes")),
        (256u64 << 20).to_string()
    );
    assert_eq!(read(memsw), (512u64 << 20).to_string());
    // Lowering both: the limit must be written first.
    cg.apply(&Resources {
        memory_limit: Some(32 << 20),
        memory_swap: Some(48 << 20),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        read(&mem.join("memory.limit_in_bytes")),
        (32u64 << 20).to_string()
    );
    assert_eq!(read(memsw), (48u64 << 20).to_string());
    // Unlimited again.
    cg.apply(&Resources {
        memory_limit: Some(-1),
        memory_swap: Some(-1),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(cg.stats().unwrap().memory_limit, Some(9223372036854771712));
}

#[test]
fn v1_lifecycle_relative() {
    let h = host();
    let name = unique("rel");
    let cg = Cgroup::new(&h, &CgroupPath::Relative(name.clone())).unwrap();
    let mut g = Guard::new(cg);

    // Relative: joined to our own position (the memory cgroup is non-root here).
    let mem = dir_of(&g.cg, "memory");
    let expect = h
        .v1_mount("memory")
        .unwrap()
        .mount_point
        .join(own_v1("memory").trim_start_matches('/'))
        .join(&name);
    assert_eq!(mem, expect);

    let r = Resources {
        memory_limit: Some(64 << 20),
        memory_swap: Some(128 << 20),
        memory_reservation: Some(32 << 20),
        pids_limit: Some(50),
        cpu_shares: Some(512),
        cpu_quota: Some(50_000),
        cpu_period: Some(100_000),
        cpuset_cpus: Some("0".into()),
        cpuset_mems: Some("0".into()),
        devices: devices(&[
            (false, 'a', None, None, "rwm"),
            (true, 'c', Some(1), Some(3), "rwm"),
            (true, 'c', Some(1), Some(5), "rw"),
        ]),
        ..Default::default()
    };
    g.cg.create(&r).unwrap();
    g.cg.apply(&r).unwrap();
    let pid = g.spawn();
    g.cg.add_pid(pid).unwrap();

    assert_eq!(
        read(&mem.join("memory.limit_in_bytes")),
        (64u64 << 20).to_string()
    );
    assert_eq!(
        read(&mem.join("memory.soft_limit_in_bytes")),
        (32u64 << 20).to_string()
    );
    let memsw = mem.join("memory.memsw.limit_in_bytes");
    if memsw.exists() {
        assert_eq!(read(&memsw), (128u64 << 20).to_string());
        assert!(g.cg.warnings().is_empty(), "{:?}", g.cg.warnings());
    } else {
        assert_eq!(g.cg.warnings().len(), 1);
    }
    let pids = dir_of(&g.cg, "pids");
    assert_eq!(read(&pids.join("pids.max")), "50");
    let cpu = h.v1_mount("cpu").unwrap().name.clone();
    let cpu = dir_of(&g.cg, &cpu);
    assert_eq!(read(&cpu.join("cpu.shares")), "512");
    assert_eq!(read(&cpu.join("cpu.cfs_quota_us")), "50000");
    assert_eq!(read(&cpu.join("cpu.cfs_period_us")), "100000");
    let cpuset = dir_of(&g.cg, "cpuset");
    assert_eq!(read(&cpuset.join("cpuset.cpus")), "0");
    assert_eq!(read(&cpuset.join("cpuset.mems")), "0");
    let list = read(&dir_of(&g.cg, "devices").join("devices.list"));
    assert_eq!(list, "c 1:3 rwm\nc 1:5 rw");

    // The child is in every hierarchy, including name=systemd and unified.
    assert_eq!(g.cg.pids().unwrap(), vec![pid]);
    for d in g.cg.dirs() {
        assert_eq!(
            read(&d.dir.join("cgroup.procs")),
            pid.to_string(),
            "{}",
            d.name
        );
    }
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(
        own.contains(&format!(":memory:{}/{name}", own_v1("memory"))),
        "{own}"
    );

    let st = g.cg.stats().unwrap();
    assert_eq!(st.memory_limit, Some(64 << 20));
    assert_eq!(st.pids_current, Some(1));
    assert_eq!(st.pids_limit, Some(50));
    assert!(st.memory_usage.is_some());
    assert!(st.memory_max_usage.is_some());
    assert!(st.cpu_usage_ns.is_some());
    assert_eq!(st.oom_kill_count, Some(0));

    // Freeze and thaw.
    g.cg.freeze().unwrap();
    let fz = dir_of(&g.cg, "freezer");
    assert_eq!(read(&fz.join("freezer.state")), "FROZEN");
    g.cg.thaw().unwrap();
    assert_eq!(read(&fz.join("freezer.state")), "THAWED");

    // Update through apply.
    g.cg.apply(&Resources {
        pids_limit: Some(0),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(read(&pids.join("pids.max")), "max");
    if memsw.exists() {
        memsw_order(&g.cg, &mem, &memsw);
    }

    // Kill, reap, remove.
    g.cg.kill_all(Signal::SIGKILL).unwrap();
    let status = g.child.take().unwrap().wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    g.cg.remove().unwrap();
    for d in g.cg.dirs() {
        assert!(!d.dir.exists(), "{} left behind", d.dir.display());
    }
}

#[test]
fn v1_absolute_nested_cpuset_and_remove() {
    let h = host();
    let top = unique("abs");
    let path = format!("/{top}/inner");
    let cg = Cgroup::new(&h, &CgroupPath::Absolute(path)).unwrap();
    let mut g = Guard::new(cg);
    let cpuset_mp = h.v1_mount("cpuset").unwrap().mount_point.clone();
    assert_eq!(dir_of(&g.cg, "cpuset"), cpuset_mp.join(&top).join("inner"));

    // No cpuset settings: the levels must still get the parent's cpus/mems.
    g.cg.create(&Resources::default()).unwrap();
    for d in [cpuset_mp.join(&top), cpuset_mp.join(&top).join("inner")] {
        assert_eq!(
            read(&d.join("cpuset.cpus")),
            read(&cpuset_mp.join("cpuset.cpus"))
        );
        assert_eq!(
            read(&d.join("cpuset.mems")),
            read(&cpuset_mp.join("cpuset.mems"))
        );
    }
    let pid = g.spawn();
    g.cg.add_pid(pid).unwrap();
    assert_eq!(g.cg.pids().unwrap(), vec![pid]);

    // Signals other than SIGKILL go to every pid.
    g.cg.kill_all(Signal::SIGTERM).unwrap();
    g.child.take().unwrap().wait().unwrap();
    g.cg.remove().unwrap();
    for m in h.mounts() {
        assert!(
            !m.mount_point.join(&top).exists(),
            "{} left",
            m.mount_point.display()
        );
    }
}

#[test]
fn v1_already_exists() {
    let h = host();
    let path = CgroupPath::Relative(unique("dup"));
    let mut g = Guard::new(Cgroup::new(&h, &path).unwrap());
    g.cg.create(&Resources::default()).unwrap();
    let mut second = Cgroup::new(&h, &path).unwrap();
    let err = second.create(&Resources::default()).unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");
    assert!(err.to_string().contains("already exists"), "{err}");
    // The failed create must not have removed anything of the first.
    for d in g.cg.dirs() {
        assert!(d.dir.exists());
    }
    assert!(second.created_dirs().is_empty());
    second.remove().unwrap();
    for d in g.cg.dirs() {
        assert!(d.dir.exists());
    }
}

/// `create_or_join` joins a leaf that exists (all of it, or in one hierarchy only): what was
/// there is not recorded as made, so `remove` leaves it and `made_part` covers only the
/// hierarchies whose leaf it made.
#[test]
fn v1_create_or_join_keeps_what_was_there() {
    let h = host();
    let path = CgroupPath::Relative(unique("join"));
    let mut g = Guard::new(Cgroup::new(&h, &path).unwrap());
    g.cg.create(&Resources::default()).unwrap();
    let mut joined = Cgroup::new(&h, &path).unwrap();
    joined.create_or_join(&Resources::default()).unwrap();
    assert!(joined.created_dirs().is_empty());
    assert!(joined.made_part().is_none());
    assert!(!joined.made_every_leaf());
    joined.remove().unwrap();
    for d in g.cg.dirs() {
        assert!(d.dir.exists(), "{} was removed", d.dir.display());
    }
    // Only the pids leaf there before: the others are made, and only they are removed.
    let pids_leaf =
        g.cg.dirs()
            .into_iter()
            .find(|d| d.controllers.iter().any(|c| c == "pids"))
            .unwrap()
            .dir;
    g.cg.remove().unwrap();
    std::fs::create_dir_all(&pids_leaf).unwrap();
    let mut part = Cgroup::new(&h, &path).unwrap();
    part.create_or_join(&Resources::default()).unwrap();
    let made = part.made_part().unwrap();
    assert!(made.dirs().iter().all(|d| d.dir != pids_leaf));
    assert_eq!(made.dirs().len() + 1, part.dirs().len());
    part.remove().unwrap();
    assert!(pids_leaf.exists());
    for d in part.dirs().iter().filter(|d| d.dir != pids_leaf) {
        assert!(!d.dir.exists(), "{} left", d.dir.display());
    }
    std::fs::remove_dir(&pids_leaf).unwrap();
}

#[test]
fn v1_bad_cpuset_names_file() {
    let h = host();
    let mut g = Guard::new(Cgroup::new(&h, &CgroupPath::Relative(unique("bad"))).unwrap());
    let r = Resources {
        cpuset_cpus: Some("999".into()),
        ..Default::default()
    };
    g.cg.create(&r).unwrap();
    let err = g.cg.apply(&r).unwrap_err();
    assert_eq!(err.file_name(), Some("cpuset.cpus"));
    let msg = err.to_string();
    let file = dir_of(&g.cg, "cpuset").join("cpuset.cpus");
    assert!(
        msg.starts_with(&format!("writing \"999\" to {}: ", file.display())),
        "{msg}"
    );
    assert!(msg.contains("os error"), "{msg}");
    assert!(err.errno().is_some());
}

/// Note: this host has no blkio.weight anywhere and no blkio.bfq.weight in
/// the root, but child cgroups do get blkio.bfq.weight (bfq is available).
#[test]
fn v1_blkio_weight_or_unsupported() {
    let h = host();
    assert!(
        h.v1_mount("blkio").is_some(),
        "this test needs a v1 blkio hierarchy (these machines have one)"
    );
    let mut g = Guard::new(Cgroup::new(&h, &CgroupPath::Relative(unique("blk"))).unwrap());
    let r = Resources {
        blkio_weight: Some(500),
        ..Default::default()
    };
    g.cg.create(&r).unwrap();
    let dir = dir_of(&g.cg, "blkio");
    let files = ["blkio.weight", "blkio.bfq.weight"];
    match files.iter().find(|f| dir.join(f).exists()) {
        Some(f) => {
            g.cg.apply(&r).unwrap();
            assert_eq!(read(&dir.join(f)), "500");
        }
        None => {
            let err = g.cg.apply(&r).unwrap_err();
            assert_eq!(err.setting(), Some("blkio_weight"), "{err}");
            let msg = err.to_string();
            assert!(
                msg.contains("blkio.weight") && msg.contains("blkio.bfq.weight"),
                "{msg}"
            );
        }
    }
    // blkio.leaf_weight only exists with CFQ (gone from current kernels).
    if !dir.join("blkio.leaf_weight").exists() {
        let err =
            g.cg.apply(&Resources {
                blkio_leaf_weight: Some(100),
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(err.setting(), Some("blkio_leaf_weight"), "{err}");
        assert!(matches!(err, Error::Unsupported { .. }));
        let msg = err.to_string();
        assert!(
            msg.contains(&dir.join("blkio.leaf_weight").display().to_string()),
            "{msg}"
        );
    }
}

#[test]
fn hybrid_hugetlb_goes_to_unified() {
    let h = host();
    assert!(
        h.version() == Version::Hybrid
            && h.v1_mount("hugetlb").is_none()
            && h.v2_mount().is_some_and(|m| m.has("hugetlb")),
        "this test needs a hybrid host whose hugetlb controller is only in cgroup2 (as on these machines)"
    );
    assert!(
        Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists(),
        "this test needs 2 MB huge pages (/sys/kernel/mm/hugepages/hugepages-2048kB)"
    );
    let size = "2MB";
    let mut g = Guard::new(Cgroup::new(&h, &CgroupPath::Relative(unique("huge"))).unwrap());
    let r = Resources {
        hugetlb: vec![HugeTlbLimit {
            page_size: size.into(),
            limit: 4 << 20,
        }],
        ..Default::default()
    };
    // create() enables +hugetlb in the unified root's subtree_control
    // (left enabled afterwards).
    g.cg.create(&r).unwrap();
    let root = &h.v2_mount().unwrap().mount_point;
    let sc = read(&root.join("cgroup.subtree_control"));
    assert!(sc.split_whitespace().any(|c| c == "hugetlb"), "{sc}");
    g.cg.apply(&r).unwrap();
    let uni = g.cg.v2_dir().unwrap().to_path_buf();
    assert_eq!(uni, dir_of(&g.cg, "unified"));
    assert_eq!(
        read(&uni.join(format!("hugetlb.{size}.max"))),
        (4u64 << 20).to_string()
    );
    let pid = g.spawn();
    g.cg.add_pid(pid).unwrap();
    assert_eq!(read(&uni.join("cgroup.procs")), pid.to_string());
    // SIGKILL via the unified hierarchy's cgroup.kill.
    g.cg.kill_all(Signal::SIGKILL).unwrap();
    g.child.take().unwrap().wait().unwrap();
    g.cg.remove().unwrap();
    assert!(!uni.exists());
}

#[test]
fn host_mount_names() {
    let h = host();
    let cg = Cgroup::new(&h, &CgroupPath::Relative("x".into())).unwrap();
    let names: Vec<String> = cg.dirs().into_iter().map(|d| d.name).collect();
    assert!(names.contains(&"memory".to_string()), "{names:?}");
    if h.v1_mount("name=systemd").is_some() {
        assert!(names.contains(&"systemd".to_string()), "{names:?}");
    }
    if h.version() == Version::Hybrid {
        assert!(names.contains(&"unified".to_string()), "{names:?}");
    }
}

/// net_cls and net_prio for real (mounted as systemd does, `net_cls,net_prio`; the tests'
/// set-up, scripts/setup-deps.sh, mounts them where the kernel has them unmounted): the class
/// id and the priority on `lo` read back from the kernel, updated in place, and the leaf goes
/// with `remove`. An interface the host lacks is the kernel's ENODEV, naming the file.
#[test]
fn v1_net_cls_and_net_prio() {
    let h = host();
    let (Some(cls), Some(prio)) = (h.v1_mount("net_cls"), h.v1_mount("net_prio")) else {
        panic!(
            "this test needs v1 net_cls and net_prio hierarchies (scripts/setup-deps.sh mounts them)"
        );
    };
    let mut g = Guard::new(Cgroup::new(&h, &CgroupPath::Relative(unique("net"))).unwrap());
    let r = |classid: u32, lo: u32| Resources {
        net_cls_classid: Some(classid),
        net_prio_ifpriomap: vec![InterfacePriority {
            name: "lo".into(),
            priority: lo,
        }],
        ..Default::default()
    };
    g.cg.create(&r(0x0010_0001, 5)).unwrap();
    g.cg.apply(&r(0x0010_0001, 5)).unwrap();
    let cls_dir = dir_of(&g.cg, &cls.name);
    let prio_dir = dir_of(&g.cg, &prio.name);
    let lo_prio = |d: &Path| -> Option<String> {
        read(&d.join("net_prio.ifpriomap"))
            .lines()
            .find_map(|l| l.strip_prefix("lo ").map(str::to_string))
    };
    assert_eq!(read(&cls_dir.join("net_cls.classid")), "1048577");
    assert_eq!(lo_prio(&prio_dir).as_deref(), Some("5"));
    let pid = g.spawn();
    g.cg.add_pid(pid).unwrap();
    // An update changes both in place.
    g.cg.apply(&r(0x0010_0002, 7)).unwrap();
    assert_eq!(read(&cls_dir.join("net_cls.classid")), "1048578");
    assert_eq!(lo_prio(&prio_dir).as_deref(), Some("7"));

    let err =
        g.cg.apply(&Resources {
            net_prio_ifpriomap: vec![InterfacePriority {
                name: "nosuchif0".into(),
                priority: 1,
            }],
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(err.errno(), Some(libc::ENODEV), "{err}");
    assert_eq!(err.file_name(), Some("net_prio.ifpriomap"), "{err}");
    assert!(err.to_string().contains("nosuchif0 1"), "{err}");

    g.cg.kill_all(Signal::SIGKILL).unwrap();
    g.child.take().unwrap().wait().unwrap();
    g.cg.remove().unwrap();
    assert!(!cls_dir.exists() && !prio_dir.exists());
}

//! Every limit flag of `run --image`, seen from inside the container (its cgroup files,
//! `ulimit`, `/proc/self/oom_score_adj`, `/dev/shm`, a read-only root, a tmpfs), and the
//! values docker refuses refused with docker's words before anything is made. Each test
//! has its own store and state root and removes what it made.

mod common;

use common::{bounded, host_disk, names};

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use testkit::TestRootfs;

/// A private store and state root with the busybox image `bb:1`.
struct T {
    dir: tempfile::TempDir,
    _rootfs: TestRootfs,
    ids: std::cell::RefCell<Vec<String>>,
}

impl T {
    fn new() -> T {
        testkit::require_root();
        let dir = tempfile::Builder::new()
            .prefix("corral-limits-")
            .tempdir()
            .unwrap();
        let rootfs = TestRootfs::new();
        let t = T {
            dir,
            _rootfs: rootfs,
            ids: Default::default(),
        };
        let r = t._rootfs.rootfs().to_str().unwrap().to_string();
        t.ok(&["image", "import", &r, "bb:1"]);
        t
    }

    fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut c = Command::new(common::corral());
        c.arg("--store")
            .arg(self.store())
            .arg("--root")
            .arg(self.state())
            .args(args)
            .stdin(Stdio::null());
        bounded(c, Duration::from_secs(120))
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "corral {args:?}: stdout {} stderr {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `run --rm --network none --image bb:1 FLAGS -- sh -c SCRIPT` under a fresh name.
    fn sh(&self, flags: &[&str], script: &str) -> Output {
        let id = testkit::unique_id("lim");
        self.ids.borrow_mut().push(id.clone());
        let mut a = vec!["run", "--rm", "--network", "none", "--name", &id];
        a.extend_from_slice(flags);
        a.extend_from_slice(&["--image", "bb:1", "--", "sh", "-c", script]);
        self.run(&a)
    }
}

impl Drop for T {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter() {
            let _ = self.run(&["delete", "--force", id]);
        }
        let leaks: Vec<String> = self
            .ids
            .borrow()
            .iter()
            .flat_map(|id| testkit::find_leaks(id, Some(&self.state())))
            .collect();
        if !std::thread::panicking() {
            assert!(leaks.is_empty(), "leaked: {leaks:#?}");
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The caller's hard limit of open files: the most corral may give a container without
/// CAP_SYS_RESOURCE (this machine's root lacks it).
fn own_nofile_hard() -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) }, 0);
    r.rlim_max
}

fn cap_sys_resource() -> bool {
    fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap() & (1 << 24) != 0)
        .unwrap()
}

/// One value of the container's cgroup, v1 file or else v2 file (the script prints
/// `name=value` lines).
fn cg(name: &str, v1: &str, v2: &str) -> String {
    format!(
        "echo {name}=$( (cat /sys/fs/cgroup/{v1} || cat /sys/fs/cgroup/{v2}) 2>/dev/null | tr '\\n' ' ');"
    )
}

fn value<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} in {out}"))
        .trim()
}

#[test]
fn every_limit_flag_is_seen_inside_the_container() {
    let t = T::new();
    let (ma, mi, dev) = host_disk();
    let dev = format!("/dev/{dev}");
    let mm = format!("{ma}:{mi}");
    let script = [
        cg("quota", "cpu/cpu.cfs_quota_us", "cpu.max"),
        cg("shares", "cpu/cpu.shares", "cpu.weight"),
        cg("cpuset", "cpuset/cpuset.cpus", "cpuset.cpus"),
        cg("mem", "memory/memory.limit_in_bytes", "memory.max"),
        cg("soft", "memory/memory.soft_limit_in_bytes", "memory.low"),
        cg(
            "swappiness",
            "memory/memory.swappiness",
            "memory.swappiness",
        ),
        cg("oomctl", "memory/memory.oom_control", "memory.oom.group"),
        cg("pids", "pids/pids.max", "pids.max"),
        cg("rbps", "blkio/blkio.throttle.read_bps_device", "io.max"),
        cg("wbps", "blkio/blkio.throttle.write_bps_device", "io.max"),
        cg("riops", "blkio/blkio.throttle.read_iops_device", "io.max"),
        cg("wiops", "blkio/blkio.throttle.write_iops_device", "io.max"),
        "echo nofile=$(ulimit -n):$(ulimit -Hn);".into(),
        "echo nproc=$(ulimit -u):$(ulimit -Hu);".into(),
        "echo oom=$(cat /proc/self/oom_score_adj);".into(),
        "echo shm=$(grep ' /dev/shm ' /proc/mounts);".into(),
        "echo run=$(grep ' /run ' /proc/mounts);".into(),
        "touch /x 2>/dev/null && echo root=rw || echo root=ro;".into(),
        "touch /run/x && echo tmpfs=rw;".into(),
    ]
    .concat();
    let dr = format!("{dev}:1mb");
    let dw = format!("{dev}:2mb");
    let ir = format!("{dev}:100");
    let iw = format!("{dev}:200");
    let out = t.sh(
        &[
            "--cpus",
            "0.5",
            "-c",
            "512",
            "--cpuset-cpus",
            "0",
            "-m",
            "64m",
            "--memory-swap",
            "128m",
            "--memory-reservation",
            "32m",
            "--memory-swappiness",
            "10",
            "--oom-kill-disable",
            "--pids-limit",
            "50",
            "--device-read-bps",
            &dr,
            "--device-write-bps",
            &dw,
            "--device-read-iops",
            &ir,
            "--device-write-iops",
            &iw,
            "--ulimit",
            "nproc=100:200",
            "--oom-score-adj",
            "500",
            "--shm-size",
            "16m",
            "--tmpfs",
            "/run:size=8m",
            "--read-only",
        ],
        &script,
    );
    let o = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{o} {}", text(&out.stderr));
    let v1 = value(&o, "quota") == "50000";
    assert!(v1 || value(&o, "quota").starts_with("50000 "), "{o}");
    if v1 {
        assert_eq!(value(&o, "shares"), "512", "{o}");
        assert_eq!(value(&o, "soft"), (32 << 20).to_string(), "{o}");
        assert_eq!(value(&o, "swappiness"), "10", "{o}");
        assert!(value(&o, "oomctl").contains("oom_kill_disable 1"), "{o}");
        assert!(
            value(&o, "rbps").contains(&format!("{mm} {}", 1 << 20)),
            "{o}"
        );
        assert!(
            value(&o, "wbps").contains(&format!("{mm} {}", 2 << 20)),
            "{o}"
        );
        assert!(value(&o, "riops").contains(&format!("{mm} 100")), "{o}");
        assert!(value(&o, "wiops").contains(&format!("{mm} 200")), "{o}");
    } else {
        let io = value(&o, "rbps");
        assert!(
            io.contains(&format!(
                "{mm} rbps={} wbps={} riops=100 wiops=200",
                1 << 20,
                2 << 20
            )),
            "{o}"
        );
    }
    assert_eq!(value(&o, "cpuset"), "0", "{o}");
    assert_eq!(value(&o, "mem"), (64 << 20).to_string(), "{o}");
    assert_eq!(value(&o, "pids"), "50", "{o}");
    // docker's default nofile (1048576), capped at what corral itself may give.
    let want = if cap_sys_resource() {
        1 << 20
    } else {
        own_nofile_hard().min(1 << 20)
    };
    assert_eq!(value(&o, "nofile"), format!("{want}:{want}"), "{o}");
    assert_eq!(value(&o, "nproc"), "100:200", "{o}");
    assert_eq!(value(&o, "oom"), "500", "{o}");
    assert!(value(&o, "shm").contains("size=16384k"), "{o}");
    let run = value(&o, "run");
    assert!(
        run.contains("tmpfs") && run.contains("size=8192k") && run.contains("noexec"),
        "{o}"
    );
    assert_eq!(value(&o, "root"), "ro", "{o}");
    assert_eq!(value(&o, "tmpfs"), "rw", "{o}");
    // The block IO weight where the kernel has one (CFQ, BFQ, cgroup v2's io), else
    // refused in docker's words.
    let out = t.sh(
        &["--blkio-weight", "300"],
        &cg("w", "blkio/blkio.weight", "io.weight"),
    );
    if out.status.success() {
        assert!(value(&text(&out.stdout), "w").contains("300"));
    } else {
        assert!(
            text(&out.stderr).contains(
                "Your kernel does not support Block I/O weight or the cgroup is not mounted"
            ),
            "{}",
            text(&out.stderr)
        );
    }
}

#[test]
fn out_of_range_values_are_refused_in_dockers_words_and_nothing_is_made() {
    let t = T::new();
    let cpus = std::thread::available_parallelism().unwrap().get();
    let too_many = format!("{}", cpus * 32);
    let range =
        format!("Range of CPUs is from 0.01 to {cpus}.00, as there are only {cpus} CPUs available");
    let nope_rate = format!("/dev/{}:100", testkit::unique_id("no-such-disk"));
    let over = format!("nofile=1:{}", own_nofile_hard() + 1);
    let mut cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--cpus", &too_many], &range),
        (vec!["--cpus=0.001"], &range),
        (
            vec!["--memory", "-5m"],
            "invalid argument \"-5m\" for \"-m, --memory\" flag: invalid size: '-5m'",
        ),
        (vec!["-m", "1m"], "Minimum memory limit allowed is 6MB"),
        (
            vec!["-m", "64m", "--memory-swap", "32m"],
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ),
        (
            vec!["--memory-reservation", "1k"],
            "Minimum memory reservation allowed is 6MB",
        ),
        (
            vec!["--cpuset-cpus", "0-4095"],
            "Requested CPUs are not available - requested 0-4095, available: ",
        ),
        (
            vec!["--blkio-weight", "5"],
            "Range of blkio weight is from 10 to 1000",
        ),
        (
            vec!["--oom-score-adj", "1001"],
            "Invalid value 1001, range for oom score adj is [-1000, 1000]",
        ),
        (
            vec!["--memory-swappiness", "101"],
            "Invalid value: 101, valid memory swappiness range is 0-100",
        ),
        (
            vec!["--device-read-bps", "/dev/null:1mb"],
            "/dev/null: not a block device",
        ),
        (vec!["--device-write-iops", &nope_rate], "No such file"),
        (
            vec!["--ulimit", "nofile=10:5"],
            "ulimit soft limit must be less than or equal to hard limit: 10 > 5",
        ),
        (vec!["--ulimit", "bogus=1"], "invalid ulimit type: bogus"),
        (
            vec!["--cpus", "1", "--cpu-quota", "50000"],
            "Conflicting options: Nano CPUs and CPU Period/Quota cannot both be set",
        ),
        (
            vec!["--cpu-period", "100"],
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
        ),
        (
            vec!["--mount", "type=volume,target=/x,bogus=1"],
            "unexpected key 'bogus'",
        ),
        (
            vec!["-v", "bad/name:/x"],
            "includes invalid characters for a local volume name",
        ),
    ];
    if !cap_sys_resource() {
        cases.push((vec!["--ulimit", &over], "needs CAP_SYS_RESOURCE"));
    }
    for (flags, words) in &cases {
        let out = t.sh(flags, "echo RAN");
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{flags:?} was accepted");
        assert!(!text(&out.stdout).contains("RAN"), "{flags:?}");
        assert!(err.contains(words), "{flags:?}: want {words:?} in {err}");
    }
    // Nothing made: no state, no container record, no volume, no cgroup.
    assert!(names(&t.state()).is_empty(), "{:?}", names(&t.state()));
    assert!(names(&t.store().join("containers")).is_empty());
    assert!(names(&t.store().join("volumes")).is_empty());
}

//! Soak through the binary: many cycles of `corral run`, `create`/`delete`,
//! `create`/`start`/`exec`/`delete --force`, each a fresh `corral` process. Nothing of any cycle
//! may be left: no mount, cgroup, state dir or process on the machine, no unreaped child of this
//! process, and this process's fds and threads where they started.
//!
//! `CORRAL_SOAK_CYCLES` sets the number of cycles (default 100, which CI runs). The full run:
//! `CORRAL_SOAK_CYCLES=10000 cargo test -p corral-cli --test soak -- --nocapture`.
//!
//! One test only in this file: it reaps the containers' processes orphaned to it, and a
//! second test's children would be mistaken for leftovers.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{cli, reap, Env};
use serde_json::{json, Value};
use testkit::TestRootfs;

use testkit::soak::{children, cycles, mount_count, usage, ParentCgroup};

/// What this process holds, and (for the report only: other tests run on the machine too)
/// the machine's open files, tasks and mount count.
#[derive(Debug, Clone, Copy)]
struct Snapshot {
    fds: usize,
    threads: u64,
    rss_kib: u64,
    files: u64,
    tasks: u64,
    mounts: usize,
}

fn snapshot() -> Snapshot {
    let nr = |path: &str, i: usize, sep: char| -> u64 {
        fs::read_to_string(path)
            .unwrap()
            .split(sep)
            .nth(i)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    let u = usage();
    Snapshot {
        fds: u.fds,
        threads: u.threads,
        rss_kib: u.rss_kib,
        files: nr("/proc/sys/fs/file-nr", 0, '\t'),
        tasks: fs::read_to_string("/proc/loadavg")
            .unwrap()
            .split_whitespace()
            .nth(3)
            .and_then(|v| v.split('/').nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        mounts: mount_count(),
    }
}

fn spec(rootfs: &Path, args: &[&str], cgroups_path: &str) -> Value {
    let mut s = runtime::default_spec();
    s["process"]["terminal"] = json!(false);
    s["process"]["args"] = json!(args);
    s["root"]["path"] = json!(rootfs);
    s["linux"]["cgroupsPath"] = json!(cgroups_path);
    s
}

#[test]
fn cli_cycles_leave_nothing() {
    let n = cycles(100).max(8);
    // The env's id is the base of every cycle's id; its drop checks that nothing mentioning
    // it is left (mounts, cgroups, processes).
    let env = Env::new("soak-cli");
    let base = env.id.clone();
    let parent = ParentCgroup::new(&base.replacen("corral-t-", "corral-p-", 1));
    let exits = &env.rootfs;
    let sleeps = TestRootfs::with_id(&base);
    let pid_file = env.state_root().join("pid");
    let pid_arg = pid_file.to_string_lossy().into_owned();
    let rootfs_arg = exits.rootfs().to_string_lossy().into_owned();
    let ok = |args: &[&str], i: usize| {
        let out = cli(&env, args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "cycle {i}: corral {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let cycle = |i: usize| {
        let id = format!("{base}-{i}");
        let cg = format!("{}/{id}", parent.name());
        match i % 4 {
            k @ (0 | 1) => {
                exits.write_config(&spec(exits.rootfs(), &["/bin/true"], &cg));
                let b = exits.bundle().to_string_lossy().into_owned();
                if k == 0 {
                    ok(&["run", "-b", &b, &id], i);
                } else {
                    ok(&["run", "--layer", &rootfs_arg, "-b", &b, &id], i);
                }
            }
            k => {
                sleeps.write_config(&spec(sleeps.rootfs(), &["/probe", "sleep", "inf"], &cg));
                let b = sleeps.bundle().to_string_lossy().into_owned();
                ok(&["create", "-b", &b, "--pid-file", &pid_arg, &id], i);
                let pid: i64 = fs::read_to_string(&pid_file).unwrap().parse().unwrap();
                if k == 2 {
                    ok(&["delete", &id], i);
                } else {
                    ok(&["start", &id], i);
                    ok(&["exec", &id, "/bin/true"], i);
                    ok(&["delete", "--force", &id], i);
                }
                // The init was orphaned to this process (a subreaper) when create exited.
                reap(pid);
                fs::remove_file(&pid_file).unwrap();
            }
        }
    };

    let t0 = Instant::now();
    let warm = (n / 20).clamp(4, 100);
    for i in 0..warm {
        cycle(i);
    }
    let before = snapshot();
    let mut slowest = Duration::ZERO;
    for i in warm..n {
        let t = Instant::now();
        cycle(i);
        slowest = slowest.max(t.elapsed());
    }
    let wall = t0.elapsed();
    let after = snapshot();
    eprintln!(
        "soak (cli): {n} cycles in {:.1} s ({:.1} ms/cycle, slowest {:.0} ms); this process: \
         fds {} -> {}, threads {} -> {}, RSS {} -> {} KiB; machine (other tests included): \
         open files {} -> {}, tasks {} -> {}, host mounts {} -> {}",
        wall.as_secs_f64(),
        wall.as_secs_f64() * 1000.0 / n as f64,
        slowest.as_secs_f64() * 1000.0,
        before.fds,
        after.fds,
        before.threads,
        after.threads,
        before.rss_kib,
        after.rss_kib,
        before.files,
        after.files,
        before.tasks,
        after.tasks,
        before.mounts,
        after.mounts,
    );
    assert_eq!(after.fds, before.fds, "fds of this process");
    assert_eq!(after.threads, before.threads, "threads of this process");
    assert_eq!(parent.children(), Vec::<PathBuf>::new(), "cgroups left");
    assert_eq!(children(), Vec::<String>::new(), "children left");
    let left: Vec<_> = fs::read_dir(env.state_root())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(left, Vec::<PathBuf>::new(), "state dirs left");
    assert_eq!(cli(&env, &["list", "-q"]).stdout, b"");
    testkit::assert_no_leaks(&base, None);
}

//! Soak: many create/start/wait/delete cycles in one long-lived process. Whatever a cycle
//! makes must be gone after it: this process's fds and threads end where they started and its
//! RSS stops growing once the allocator has warmed up; no mount, cgroup, state dir or process of
//! any cycle is left on the machine; no child is left unreaped.
//!
//! `CORRAL_SOAK_CYCLES` sets the number of cycles (default 200, which CI runs). The full run:
//! `CORRAL_SOAK_CYCLES=10000 cargo test -p corral-runtime --test soak -- --nocapture`.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use runtime::{Container, ExitStatus, Options};
use serde_json::{json, Value};
use testkit::TestRootfs;

use testkit::soak::{children, cycles, mount_count, usage as host, ParentCgroup};

fn spec(rootfs: &Path, args: &[&str], cgroups_path: &str) -> Value {
    let mut s = runtime::default_spec();
    s["process"]["terminal"] = json!(false);
    s["process"]["args"] = json!(args);
    s["root"]["path"] = json!(rootfs);
    s["linux"]["cgroupsPath"] = json!(cgroups_path);
    s
}

#[test]
fn library_create_delete_cycles_leave_nothing() {
    testkit::require_root();
    let n = cycles(200).max(8);
    let base = testkit::unique_id("soak-lib");
    // The containers' cgroups go under a parent of the soak's own, so that what is left there
    // is counted exactly, whatever other tests on the machine do meanwhile.
    let parent = ParentCgroup::new(&base.replacen("corral-t-", "corral-p-", 1));
    let exits = TestRootfs::with_id(&base);
    let sleeps = TestRootfs::with_id(&base);
    let state = tempfile::Builder::new()
        .prefix("corral-state-")
        .tempdir()
        .unwrap();
    let plain = Options {
        root: state.path().to_path_buf(),
        ..Options::default()
    };
    let layered = Options {
        layers: vec![exits.rootfs().to_path_buf()],
        ..plain.clone()
    };
    let mut exec_p: oci_spec::runtime::Process =
        serde_json::from_value(spec(exits.rootfs(), &["/bin/true"], "")["process"].clone())
            .unwrap();
    exec_p.set_args(Some(vec!["/bin/true".into()]));

    // One cycle, by kind: a process that exits, waited for; the same on an overlay root; a
    // container deleted before it starts; a running one with an exec'd process, deleted.
    let cycle = |i: usize| {
        let id = format!("{base}-{i}");
        let cg = format!("{}/{id}", parent.name());
        match i % 4 {
            0 | 1 => {
                exits.write_config(&spec(exits.rootfs(), &["/bin/true"], &cg));
                let opts = [&plain, &layered][i % 4];
                let mut c = Container::create_and_start(&id, exits.bundle(), opts)
                    .unwrap_or_else(|e| panic!("cycle {i}: create: {e}"));
                assert_eq!(c.wait().unwrap(), ExitStatus::Exited(0), "cycle {i}");
                c.delete()
                    .unwrap_or_else(|e| panic!("cycle {i}: delete: {e}"));
            }
            2 => {
                sleeps.write_config(&spec(sleeps.rootfs(), &["/probe", "sleep", "inf"], &cg));
                let c = Container::create(&id, sleeps.bundle(), &plain)
                    .unwrap_or_else(|e| panic!("cycle {i}: create: {e}"));
                c.delete()
                    .unwrap_or_else(|e| panic!("cycle {i}: delete: {e}"));
            }
            _ => {
                sleeps.write_config(&spec(sleeps.rootfs(), &["/probe", "sleep", "inf"], &cg));
                let c = Container::create_and_start(&id, sleeps.bundle(), &plain)
                    .unwrap_or_else(|e| panic!("cycle {i}: create: {e}"));
                let mut e = c
                    .exec(&exec_p, &plain)
                    .unwrap_or_else(|e| panic!("cycle {i}: exec: {e}"));
                assert_eq!(e.wait().unwrap(), ExitStatus::Exited(0), "cycle {i}");
                c.delete()
                    .unwrap_or_else(|e| panic!("cycle {i}: delete: {e}"));
            }
        }
    };

    let mounts0 = mount_count();
    let t0 = Instant::now();
    // Warm-up: lazily made process-wide things (the allocator's arenas, cached fds of libc or
    // of the crates) are made once; from here nothing may grow.
    let warm = (n / 20).clamp(4, 100);
    for i in 0..warm {
        cycle(i);
    }
    let before = host();
    let quarter = n / 4;
    let mut at_quarter = before;
    let mut slowest = Duration::ZERO;
    for i in warm..n {
        let t = Instant::now();
        cycle(i);
        slowest = slowest.max(t.elapsed());
        if i + 1 == quarter.max(warm + 1) {
            at_quarter = host();
        }
    }
    let wall = t0.elapsed();
    let after = host();
    let mounts1 = mount_count();
    eprintln!(
        "soak (library): {n} cycles in {:.1} s ({:.1} ms/cycle, slowest {:.0} ms); \
         fds {} -> {}, threads {} -> {}, RSS {} KiB -> {} KiB at 25% -> {} KiB at 100%; \
         host mounts {mounts0} -> {mounts1} (other tests' included)",
        wall.as_secs_f64(),
        wall.as_secs_f64() * 1000.0 / n as f64,
        slowest.as_secs_f64() * 1000.0,
        before.fds,
        after.fds,
        before.threads,
        after.threads,
        before.rss_kib,
        at_quarter.rss_kib,
        after.rss_kib,
    );

    assert_eq!(after.fds, before.fds, "fds of this process");
    assert_eq!(after.threads, before.threads, "threads of this process");
    // A steady rise between a quarter of the run and its end is a leak; a few pages of
    // allocator noise are not.
    let slack = 2048 + at_quarter.rss_kib / 50;
    assert!(
        after.rss_kib <= at_quarter.rss_kib + slack,
        "RSS grew from {} KiB at 25% to {} KiB at 100% of {n} cycles",
        at_quarter.rss_kib,
        after.rss_kib
    );
    assert_eq!(parent.children(), Vec::<PathBuf>::new(), "cgroups left");
    assert_eq!(children(), Vec::<String>::new(), "children left");
    let left: Vec<_> = fs::read_dir(state.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(left, Vec::<PathBuf>::new(), "state dirs left");
    // Mounts, cgroups anywhere and processes that mention any cycle's id.
    testkit::assert_no_leaks(&base, None);
}

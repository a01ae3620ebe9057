//! Each phase of a spawn, through the leaf crates directly: the clone with each namespace set
//! to the exit of `/bin/true` (`ns/<set>`), exec to exit (`exec/*`), the cgroup steps
//! (`cgroup/*`: one container cgroup spans every hierarchy of the host), overlay mounts of 1
//! and 10 layers (`overlay/*`), the default config's mounts and `pivot_root` (`rootfs/*`).
//! Only the phase itself is timed (criterion's `iter_custom`); set-up and clean-up of each
//! iteration are not. `cargo test` runs each once.

use std::time::{Duration, Instant};

use benches::{CgroupFixture, OverlayFixture, RootFixture, Sleeper};
use criterion::{criterion_group, criterion_main, Criterion};

fn timed(iters: u64, mut f: impl FnMut() -> Duration) -> Duration {
    (0..iters).map(|_| f()).sum()
}

fn ns(c: &mut Criterion) {
    let mut g = c.benchmark_group("ns");
    for (name, kinds) in benches::ns_sets() {
        g.bench_function(name, |b| {
            b.iter_custom(|n| timed(n, || benches::ns_spawn(&kinds).expect("ns spawn")))
        });
    }
    g.finish();
    let mut g = c.benchmark_group("exec");
    let root = RootFixture::new("exec").expect("root");
    let host_true = std::path::Path::new("/bin/true");
    g.bench_function("host-true", |b| {
        b.iter_custom(|n| timed(n, || benches::exec_once(host_true).expect("exec")))
    });
    let bb_true = root.root().join("bin/true");
    g.bench_function("busybox-true", |b| {
        b.iter_custom(|n| timed(n, || benches::exec_once(&bb_true).expect("exec")))
    });
    g.finish();
    benches::check_clean(&root.id, None).expect("nothing left");
}

/// Makes a cgroup and a process (untimed), idles `gap`, and times moving the process in.
fn attach(f: &CgroupFixture, gap: Option<Duration>) -> Duration {
    let a = benches::Attached {
        cg: f.made().expect("made"),
        proc: Some(Sleeper::new().expect("sleeper")),
    };
    let pid = a.proc.as_ref().map(|p| p.pid).unwrap_or(0);
    if let Some(gap) = gap {
        std::thread::sleep(gap);
    }
    let t0 = Instant::now();
    a.cg.add_pid(pid).expect("add_pid");
    t0.elapsed()
}

fn cgroups(c: &mut Criterion) {
    let mut g = c.benchmark_group("cgroup");
    let f = CgroupFixture::new("phase").expect("cgroup fixture");
    let limits = benches::limits();
    g.bench_function("create", |b| {
        b.iter_custom(|n| {
            timed(n, || {
                let mut cg = f.plan().expect("plan");
                let t0 = Instant::now();
                cg.create(&cgroup::Resources::default()).expect("create");
                let d = t0.elapsed();
                cg.remove().expect("remove");
                d
            })
        })
    });
    g.bench_function("limits", |b| {
        b.iter_custom(|n| {
            timed(n, || {
                let cg = f.made().expect("made");
                let t0 = Instant::now();
                cg.apply(&limits).expect("apply");
                let d = t0.elapsed();
                cg.remove().expect("remove");
                d
            })
        })
    });
    g.bench_function("attach", |b| {
        b.iter_custom(|n| timed(n, || attach(&f, None)))
    });
    g.bench_function("remove", |b| {
        b.iter_custom(|n| {
            timed(n, || {
                let cg = f.made().expect("made");
                let t0 = Instant::now();
                cg.remove().expect("remove");
                t0.elapsed()
            })
        })
    });
    g.finish();
    // After 0.1 s idle, the first write to cgroup.procs on cgroup v1 waits for an RCU grace
    // period (cgroup_threadgroup_rwsem's writer side).
    let mut g = c.benchmark_group("cgroup-cold");
    g.sample_size(10).measurement_time(Duration::from_secs(1));
    g.bench_function("attach", |b| {
        b.iter_custom(|n| timed(n, || attach(&f, Some(Duration::from_millis(100)))))
    });
    g.finish();
    eprintln!(
        "(cgroup: one container cgroup spans {} hierarchies)",
        f.hierarchies()
    );
    benches::check_clean(&f.id, None).expect("nothing left");
}

fn overlay(c: &mut Criterion) {
    let mut g = c.benchmark_group("overlay");
    for layers in [1, 10] {
        let f = OverlayFixture::new(layers).expect("overlay fixture");
        g.bench_function(format!("mount-{layers}"), |b| {
            b.iter_custom(|n| {
                timed(n, || {
                    let (ov, target) = f.prepare().expect("prepare");
                    let t0 = Instant::now();
                    let m = ov.mount(&target).expect("mount");
                    let d = t0.elapsed();
                    m.unmount().expect("unmount");
                    f.discard(&target).expect("discard");
                    d
                })
            })
        });
        benches::check_clean(&f.id, None).expect("nothing left");
    }
    g.finish();
}

fn rootfs(c: &mut Criterion) {
    let mut g = c.benchmark_group("rootfs");
    let r = RootFixture::new("rootfs").expect("root");
    g.bench_function("mounts", |b| {
        b.iter_custom(|n| timed(n, || r.mounts_once().expect("mounts")))
    });
    g.bench_function("pivot_root", |b| {
        b.iter_custom(|n| timed(n, || r.pivot_root_once().expect("pivot_root")))
    });
    g.finish();
    benches::check_clean(&r.id, None).expect("nothing left");
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = ns, cgroups, overlay, rootfs
}
criterion_main!(benches);

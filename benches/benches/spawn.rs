//! The whole spawn of `/bin/true` through the Rust API (create, start, wait for exit,
//! delete), one benchmark per configuration (`spawn/<variant>`), the steps of the default
//! spawn apart (`spawn-steps/<step>`), and two threads spawning at once
//! (`spawn-2-threads/cgroup-limits`: the time reported is wall time per spawn, so
//! 1 / time = spawns per second). `cargo test` runs each once.

use std::time::Duration;

use benches::{PoolFixture, SpawnFixture, Steps, Variant};
use criterion::{criterion_group, criterion_main, Criterion};

fn spawn(c: &mut Criterion) {
    let mut g = c.benchmark_group("spawn");
    for v in Variant::ALL {
        let f = SpawnFixture::new(v).expect("spawn fixture");
        g.bench_function(v.name(), |b| {
            b.iter(|| {
                f.spawn()
                    .unwrap_or_else(|e| panic!("spawn {}: {e}", v.name()))
            })
        });
        f.check_clean().expect("nothing left");
    }
    g.finish();

    let mut g = c.benchmark_group("spawn-steps");
    let f = SpawnFixture::new(Variant::Default).expect("spawn fixture");
    type Pick = fn(&Steps) -> Duration;
    let steps: [(&str, Pick); 4] = [
        ("create", |s| s.create),
        ("start", |s| s.start),
        ("wait", |s| s.wait),
        ("delete", |s| s.delete),
    ];
    for (name, pick) in steps {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| pick(&f.spawn().expect("spawn")))
                    .sum::<Duration>()
            })
        });
    }
    f.check_clean().expect("nothing left");
    g.finish();

    let mut g = c.benchmark_group("spawn-2-threads");
    let fs = [
        SpawnFixture::new(Variant::CgroupLimits).expect("spawn fixture"),
        SpawnFixture::new(Variant::CgroupLimits).expect("spawn fixture"),
    ];
    g.bench_function("cgroup-limits", |b| {
        b.iter_custom(|iters| {
            let per = iters.div_ceil(2);
            let t0 = std::time::Instant::now();
            std::thread::scope(|s| {
                for f in &fs {
                    s.spawn(move || {
                        for _ in 0..per {
                            f.spawn().expect("spawn");
                        }
                    });
                }
            });
            // Wall time per spawn (2 * per spawns were made).
            t0.elapsed().mul_f64(iters as f64 / (2 * per) as f64)
        })
    });
    for f in &fs {
        f.check_clean().expect("nothing left");
    }
    g.finish();

    // The warm pool, with cgroup limits: containers set up ahead, each waiting for its
    // program. Each take waits for a ready one (the refill runs between takes, as in a
    // service that takes at a steady rate).
    let mut g = c.benchmark_group("pool");
    let f = PoolFixture::new(Variant::CgroupLimits, 4).expect("pool fixture");
    g.bench_function("start-to-exec", |b| {
        b.iter_custom(|iters| takes(&f, iters, |t| t.start_to_exec))
    });
    g.bench_function("take-to-exit", |b| {
        b.iter_custom(|iters| takes(&f, iters, |t| t.whole))
    });
    f.finish().expect("nothing left");
    // An experiment: the same pool with its state root on a tmpfs (the one above has it in
    // the temporary directory, on these machines an ext4 disk): what the state write at
    // start (`running`, while the program execs) costs.
    let f = PoolFixture::with_state_in(Variant::CgroupLimits, 4, std::path::Path::new("/dev/shm"))
        .expect("pool fixture, state on a tmpfs");
    g.bench_function("start-to-exec-tmpfs-root", |b| {
        b.iter_custom(|iters| takes(&f, iters, |t| t.start_to_exec))
    });
    f.finish().expect("nothing left");
    g.finish();
}

/// `iters` takes from the pool `f`, each once 4 containers are ready again: the sum of
/// `what` of each.
fn takes(f: &PoolFixture, iters: u64, what: impl Fn(benches::Take) -> Duration) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        f.wait_ready(4).expect("refill");
        total += what(f.take().expect("take"));
    }
    total
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = spawn
}
criterion_main!(benches);

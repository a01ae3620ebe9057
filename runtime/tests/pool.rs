//! The warm pool on the real kernel: taken containers run the caller's program with its
//! environment and stdio; the pool refills; nothing is left when it is dropped, when a take
//! fails, or when its host process is killed.

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use runtime::{
    Container, Description, ExitStatus, Limits, Namespace, NsMode, Options, Pool, PoolOptions, Root,
};
use testkit::{pipe, read_all, state_root, TestRootfs};

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn wait_ready(p: &Pool, n: usize) {
    let t = Instant::now();
    while p.ready() < n {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "pool never reached {n} ready: {:?}",
            p.last_error()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn taken_containers_run_the_callers_program_with_its_env_and_stdio() {
    testkit::require_root();
    let id = testkit::unique_id("pool-run");
    let rootfs = TestRootfs::with_id(&id);
    let state = state_root();
    let mut d = Description::new(Root::Dir(rootfs.rootfs().into()));
    d.hostname = Some("pooled".into());
    d.env.push(("FROM_TEMPLATE".into(), "t".into()));
    d.limits = Limits {
        pids: Some(16),
        ..Default::default()
    };
    let opts = Options {
        root: state.path().to_path_buf(),
        ..Options::default()
    };
    let pool = Pool::new(
        d.bundle().unwrap(),
        opts,
        PoolOptions {
            size: 3,
            id_prefix: id.clone(),
        },
    )
    .unwrap();
    wait_ready(&pool, 3);
    // Waiting containers are real: created, each in its own pid namespace.
    assert_eq!(Container::list(state.path()).unwrap().len(), 3);
    for round in 0..5 {
        let (r, w) = pipe();
        let mut c = pool
            .take(
                &strings(&[
                    "sh",
                    "-c",
                    "echo $$ $(hostname) $FROM_TEMPLATE $ROUND $(cat /sys/fs/cgroup/pids/pids.max); exit 3",
                ]),
                &[("ROUND".into(), round.to_string())],
                [-1, w.as_raw_fd(), -1],
            )
            .unwrap();
        drop(w);
        assert_eq!(c.wait().unwrap(), ExitStatus::Exited(3));
        assert_eq!(read_all(r), format!("1 pooled t {round} 16\n"));
        let t = c.timings();
        assert_eq!(t.phases().last().unwrap().0, "start");
        c.delete().unwrap();
    }
    // It refills.
    wait_ready(&pool, 3);
    drop(pool);
    testkit::assert_no_leaks(&id, Some(state.path()));
    assert!(Container::list(state.path()).unwrap().is_empty());
}

#[test]
fn a_failed_take_names_the_program_and_leaves_nothing() {
    testkit::require_root();
    let id = testkit::unique_id("pool-bad");
    let rootfs = TestRootfs::with_id(&id);
    let state = state_root();
    let opts = Options {
        root: state.path().to_path_buf(),
        ..Options::default()
    };
    let pool = Pool::new(
        Description::new(Root::Dir(rootfs.rootfs().into()))
            .bundle()
            .unwrap(),
        opts.clone(),
        PoolOptions {
            size: 1,
            id_prefix: id.clone(),
        },
    )
    .unwrap();
    wait_ready(&pool, 1);
    let e = pool
        .take(&strings(&["/no/such/prog"]), &[], [-1; 3])
        .unwrap_err();
    assert!(
        e.to_string().contains("exec") && e.errno() == libc::ENOENT,
        "{e}"
    );
    let e = pool.take(&[], &[], [-1; 3]).unwrap_err();
    assert!(e.to_string().contains("process.args"), "{e}");
    // take_ready waits for the refill.
    let mut c = pool.take_ready(&strings(&["true"]), &[], [-1; 3]).unwrap();
    assert_eq!(c.wait().unwrap(), ExitStatus::Exited(0));
    c.delete().unwrap();
    drop(pool);
    testkit::assert_no_leaks(&id, Some(state.path()));

    // A template that cannot run fails the pool at once, naming what is wrong: a hostname
    // without a UTS namespace is refused when the bundle is made, and again at create when
    // it was set on the bundle's (public) spec afterwards.
    let mut d = Description::new(Root::Dir(rootfs.rootfs().into()));
    d.namespaces.insert(Namespace::Uts, NsMode::Host);
    let mut bundle = d.bundle().unwrap();
    d.hostname = Some("x".into());
    let e = d.bundle().unwrap_err();
    assert!(e.to_string().contains("hostname"), "{e}");
    bundle.spec.set_hostname(Some("x".into()));
    let e = Pool::new(
        bundle,
        opts,
        PoolOptions {
            size: 2,
            id_prefix: id.clone(),
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("hostname"), "{e}");
    testkit::assert_no_leaks(&id, Some(state.path()));
}

#[test]
fn a_killed_host_leaves_only_what_the_next_pool_removes() {
    testkit::require_root();
    let id = testkit::unique_id("pool-kill");
    let rootfs = TestRootfs::with_id(&id);
    let state = state_root();
    // This test binary again, running only the helper below: a host process with a pool.
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "host_process_holding_a_pool",
            "--nocapture",
            "-q",
        ])
        .env(
            "CORRAL_POOL_HOLD",
            format!(
                "{}\n{}\n{}",
                rootfs.rootfs().display(),
                state.path().display(),
                id
            ),
        )
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Killed, and what its pool left removed, however this test ends.
    let mut helper = Helper {
        child,
        root: state.path(),
    };
    let out = helper.child.stdout.take().unwrap();
    // The harness prints its own lines too: wait for ours.
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(out));
    loop {
        let l = lines
            .next()
            .expect("the helper ended before its pool was ready")
            .unwrap();
        if l == "pool: ready" {
            break;
        }
    }
    let pids: Vec<i32> = Container::list(state.path())
        .unwrap_or_default()
        .iter()
        .map(|s| s.pid)
        .collect();
    helper.child.kill().unwrap();
    helper.child.wait().unwrap();
    // The pooled processes die with it (parent-death signal).
    let t = Instant::now();
    for pid in pids.iter().filter(|&&p| p > 0) {
        while std::path::Path::new(&format!("/proc/{pid}")).exists() {
            assert!(t.elapsed() < Duration::from_secs(10), "pid {pid} lives on");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    // What is left (state dirs, cgroups) goes with the next pool of the same prefix.
    assert!(!testkit::find_leaks(&id, Some(state.path())).is_empty());
    let pool = Pool::new(
        Description::new(Root::Dir(rootfs.rootfs().into()))
            .bundle()
            .unwrap(),
        Options {
            root: state.path().to_path_buf(),
            ..Options::default()
        },
        PoolOptions {
            size: 1,
            id_prefix: id.clone(),
        },
    )
    .unwrap();
    drop(pool);
    testkit::assert_no_leaks(&id, Some(state.path()));
}

/// The helper process of the killed-host test.
struct Helper<'a> {
    child: std::process::Child,
    root: &'a std::path::Path,
}

impl Drop for Helper<'_> {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for id in runtime::state::list_ids(self.root).unwrap_or_default() {
            let _ = Container::force_delete(self.root, &id);
        }
    }
}

/// Not a test of its own: the host process that `a_killed_host_leaves_only_what_the_next_pool_removes`
/// starts (with `--ignored --exact`) and kills. It makes a pool of 3, says so, and waits.
#[test]
#[ignore = "run by a_killed_host_leaves_only_what_the_next_pool_removes"]
fn host_process_holding_a_pool() {
    let spec = std::env::var("CORRAL_POOL_HOLD").expect("CORRAL_POOL_HOLD");
    let [rootfs, root, prefix]: [&str; 3] = spec
        .split('\n')
        .collect::<Vec<_>>()
        .try_into()
        .expect("ROOTFS\\nROOT\\nPREFIX");
    let pool = Pool::new(
        Description::new(Root::Dir(rootfs.into())).bundle().unwrap(),
        Options {
            root: root.into(),
            ..Options::default()
        },
        PoolOptions {
            size: 3,
            id_prefix: prefix.to_string(),
        },
    )
    .unwrap();
    wait_ready(&pool, 3);
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    o.write_all(b"pool: ready\n").unwrap();
    o.flush().unwrap();
    drop(o);
    std::thread::sleep(Duration::from_secs(600));
}

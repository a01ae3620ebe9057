//! Containers built field by field ([`runtime::SpecBuilder`]), their per-phase timings, and
//! waiting with a timeout, on the real kernel.

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use runtime::timings::CREATE_PHASES;
use runtime::{Container, ExitStatus, Limits, Mount, Namespace, NsMode, Options, SpecBuilder};
use testkit::{pipe, read_all, state_root, TestRootfs};

#[test]
fn a_built_container_sees_what_was_asked_and_reports_its_phases() {
    testkit::require_root();
    let id = testkit::unique_id("bld-see");
    let rootfs = TestRootfs::with_id(&id);
    let state = state_root();
    let host_dir = tempfile::tempdir().unwrap();
    std::fs::write(host_dir.path().join("f"), "from-host").unwrap();
    let mut b = SpecBuilder::new(rootfs.rootfs());
    b.args([
        "/bin/sh",
        "-c",
        "echo $(hostname) $(id -u):$(id -g) $(pwd) $GREETING $(cat /mnt/f); \
         cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; exit 3",
    ])
    .env("GREETING", "hello")
    .cwd("/tmp")
    .hostname("built")
    .user(1000, 1000)
    .mount(Mount::bind(host_dir.path().to_str().unwrap(), "/mnt", true))
    .limits(Limits {
        memory: Some(64 << 20),
        pids: Some(32),
        ..Default::default()
    });
    let bundle = b.build().unwrap();
    let (r, w) = pipe();
    let opts = Options {
        root: state.path().to_path_buf(),
        stdio: [-1, w.as_raw_fd(), -1],
        ..Options::default()
    };
    let mut c = Container::create_from(&id, &bundle, &opts).unwrap();
    let created: Vec<&str> = c.timings().phases().iter().map(|p| p.0).collect();
    assert_eq!(created, CREATE_PHASES);
    c.start().unwrap();
    drop(w);
    assert_eq!(c.wait().unwrap(), ExitStatus::Exited(3));
    let out = read_all(r);
    assert_eq!(
        out,
        format!("built 1000:1000 /tmp hello from-host\n{}\n32\n", 64 << 20)
    );
    let t = c.timings();
    assert_eq!(t.phases().len(), CREATE_PHASES.len() + 1);
    assert_eq!(t.phases().last().unwrap().0, "start");
    assert!(t.get("clone").unwrap() > Duration::ZERO);
    c.delete().unwrap();
    testkit::assert_no_leaks(&id, Some(state.path()));
}

#[test]
fn seccomp_on_refuses_what_the_default_filter_denies() {
    testkit::require_root();
    let id = testkit::unique_id("bld-sec");
    let rootfs = TestRootfs::with_id(&id);
    let state = state_root();
    // A user namespace needs no capability: unshare(2) fails only under the default filter.
    let run = |seccomp: bool| -> (ExitStatus, String) {
        let mut b = SpecBuilder::new(rootfs.rootfs());
        b.args(["/bin/sh", "-c", "unshare -U true 2>&1; echo rc=$?"])
            .seccomp(seccomp);
        let (r, w) = pipe();
        let opts = Options {
            root: state.path().to_path_buf(),
            stdio: [-1, w.as_raw_fd(), w.as_raw_fd()],
            ..Options::default()
        };
        let cid = format!("{id}-{seccomp}");
        let mut c = Container::create_from(&cid, &b.build().unwrap(), &opts).unwrap();
        c.start().unwrap();
        drop(w);
        let st = c.wait().unwrap();
        c.delete().unwrap();
        (st, read_all(r))
    };
    let (_, on) = run(true);
    assert!(
        on.contains("rc=1") && on.contains("Operation not permitted"),
        "{on}"
    );
    let (_, off) = run(false);
    assert!(off.contains("rc=0"), "{off}");
    testkit::assert_no_leaks(&id, Some(state.path()));
}

#[test]
fn wait_timeout_times_out_then_gets_the_exit_status_or_the_signal() {
    testkit::require_root();
    let id = testkit::unique_id("bld-wait");
    let rootfs = TestRootfs::with_id(&id);
    let state = state_root();
    let opts = Options {
        root: state.path().to_path_buf(),
        ..Options::default()
    };
    let mut b = SpecBuilder::new(rootfs.rootfs());
    b.args(["/bin/sleep", "30"])
        .namespace(Namespace::Network, NsMode::Host);
    let mut c = Container::create_from(&id, &b.build().unwrap(), &opts).unwrap();
    // Created, not started: the wait times out too.
    assert_eq!(
        c.wait_timeout(Some(Duration::from_millis(20))).unwrap(),
        None
    );
    c.start().unwrap();
    let t = Instant::now();
    assert_eq!(
        c.wait_timeout(Some(Duration::from_millis(150))).unwrap(),
        None
    );
    assert!(t.elapsed() >= Duration::from_millis(150));
    assert_eq!(c.wait_timeout(Some(Duration::ZERO)).unwrap(), None);
    // (SIGKILL: the init of a pid namespace ignores signals it has no handler for.)
    c.signal(libc::SIGKILL).unwrap();
    assert_eq!(
        c.wait_timeout(Some(Duration::from_secs(20))).unwrap(),
        Some(ExitStatus::Signaled(libc::SIGKILL))
    );
    // Once known, it stays known.
    assert_eq!(
        c.wait_timeout(None).unwrap(),
        Some(ExitStatus::Signaled(libc::SIGKILL))
    );
    c.delete().unwrap();

    let mut b = SpecBuilder::new(rootfs.rootfs());
    b.args(["/bin/sh", "-c", "exit 42"]);
    let cid = format!("{id}-b");
    let mut c = Container::create_from(&cid, &b.build().unwrap(), &opts).unwrap();
    c.start().unwrap();
    assert_eq!(c.wait_timeout(None).unwrap(), Some(ExitStatus::Exited(42)));
    c.delete().unwrap();
    testkit::assert_no_leaks(&id, Some(state.path()));
}

#[test]
fn a_failed_built_container_names_the_field_and_leaves_nothing() {
    testkit::require_root();
    let id = testkit::unique_id("bld-bad");
    let rootfs = TestRootfs::with_id(&id);
    let state = state_root();
    let opts = Options {
        root: state.path().to_path_buf(),
        ..Options::default()
    };
    // A hostname without a UTS namespace of its own is refused before anything is made: by
    // the validator, when the bundle is made.
    let mut b = SpecBuilder::new(rootfs.rootfs());
    b.hostname("x").namespace(Namespace::Uts, NsMode::Host);
    let e = b
        .build()
        .and_then(|bundle| Container::create_from(&id, &bundle, &opts).map(drop))
        .unwrap_err();
    assert!(e.to_string().contains("hostname"), "{e}");
    assert_eq!((e.errno(), e.step().as_str()), (libc::EINVAL, "config"));
    // A program that does not exist fails create, naming it.
    let mut b = SpecBuilder::new(rootfs.rootfs());
    b.args(["/no/such/program"]);
    let e = Container::create_from(&id, &b.build().unwrap(), &opts).unwrap_err();
    assert!(e.to_string().contains("/no/such/program"), "{e}");
    assert_eq!(e.errno(), libc::ENOENT, "{e}");
    assert_eq!(e.path().as_deref(), Some("/no/such/program"));
    testkit::assert_no_leaks(&id, Some(state.path()));
}

#[test]
fn exec_processes_nobody_waited_for_do_not_hang_wait_or_delete() {
    testkit::require_root();
    let id = testkit::unique_id("bld-execreap");
    let rootfs = TestRootfs::with_id(&id);
    let state = state_root();
    let opts = Options {
        root: state.path().to_path_buf(),
        ..Options::default()
    };
    // The init exits on its own while an exec'd process of its pid namespace is still ours to
    // reap: its exit completes only once that one is reaped, which wait does.
    let mut b = SpecBuilder::new(rootfs.rootfs());
    b.args(["/bin/sh", "-c", "sleep 0.3; exit 6"]);
    let mut c = Container::create_from(&id, &b.build().unwrap(), &opts).unwrap();
    c.start().unwrap();
    let e = runtime::ExecSpec {
        args: vec!["/bin/sleep".into(), "60".into()],
        ..Default::default()
    };
    let p = c.exec_with(&e, &opts).unwrap();
    let t = Instant::now();
    assert_eq!(
        c.wait_timeout(Some(Duration::from_secs(20))).unwrap(),
        Some(ExitStatus::Exited(6))
    );
    assert!(t.elapsed() < Duration::from_secs(10));
    // The exec'd process's own handle still tells how it ended (killed with its namespace).
    let mut p = p;
    assert_eq!(p.wait().unwrap(), ExitStatus::Signaled(libc::SIGKILL));
    c.delete().unwrap();

    // Delete of a running container with exec'd processes nobody waited for.
    let cid = format!("{id}-b");
    let mut b = SpecBuilder::new(rootfs.rootfs());
    b.args(["/bin/sleep", "60"]);
    let mut c = Container::create_from(&cid, &b.build().unwrap(), &opts).unwrap();
    c.start().unwrap();
    let p1 = c.exec_with(&e, &opts).unwrap();
    let p2 = c.exec_with(&e, &opts).unwrap();
    drop(p2);
    let t = Instant::now();
    c.delete().unwrap();
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let mut p1 = p1;
    assert!(matches!(
        p1.wait().unwrap(),
        ExitStatus::Signaled(libc::SIGKILL) | ExitStatus::Unknown
    ));
    testkit::assert_no_leaks(&id, Some(state.path()));
}

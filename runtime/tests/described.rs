//! Containers on a root filesystem directory, described field by field with
//! [`runtime::Description`] and made from [`runtime::Description::bundle`]: what the process
//! sees, the per-phase timings, waiting with a timeout, failed creates, exec'd processes nobody
//! waited for, on the real kernel; and the description's own parts (sizes, limits, namespace
//! names, the spec it makes, the fields it refuses), without a container.

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use runtime::describe::Seccomp;
use runtime::timings::CREATE_PHASES;
use runtime::{
    parse_size, Bundle, Container, Description, ExitStatus, Limits, Mount, Namespace, NetworkMode,
    NsMode, Options, Root, UserSpec,
};
use testkit::{pipe, read_all, state_root, TestRootfs};

/// A description of a container on the directory `rootfs` running `args`.
fn on_dir(rootfs: impl Into<std::path::PathBuf>, args: &[&str]) -> Description {
    let mut d = Description::new(Root::Dir(rootfs.into()));
    d.args = args.iter().map(|a| a.to_string()).collect();
    d
}

#[test]
fn a_built_container_sees_what_was_asked_and_reports_its_phases() {
    testkit::require_root();
    let id = testkit::unique_id("bld-see");
    let rootfs = TestRootfs::with_id(&id);
    let state = state_root();
    let host_dir = tempfile::tempdir().unwrap();
    std::fs::write(host_dir.path().join("f"), "from-host").unwrap();
    let mut d = on_dir(
        rootfs.rootfs(),
        &[
            "/bin/sh",
            "-c",
            "echo $(hostname) $(id -u):$(id -g) $(pwd) $GREETING $(cat /mnt/f); \
             cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; exit 3",
        ],
    );
    d.env.push(("GREETING".into(), "hello".into()));
    d.cwd = Some("/tmp".into());
    d.hostname = Some("built".into());
    d.user = Some(UserSpec::Ids {
        uid: 1000,
        gid: 1000,
    });
    d.mounts
        .push(Mount::bind(host_dir.path().to_str().unwrap(), "/mnt", true));
    d.limits = Limits {
        memory: Some(64 << 20),
        pids: Some(32),
        ..Default::default()
    };
    let bundle = d.bundle().unwrap();
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
        let mut d = on_dir(
            rootfs.rootfs(),
            &["/bin/sh", "-c", "unshare -U true 2>&1; echo rc=$?"],
        );
        // On: corral's short deny list (runtime::describe::default_seccomp); off: none.
        d.security.seccomp = if seccomp {
            Seccomp::Minimal
        } else {
            Seccomp::Default
        };
        let (r, w) = pipe();
        let opts = Options {
            root: state.path().to_path_buf(),
            stdio: [-1, w.as_raw_fd(), w.as_raw_fd()],
            ..Options::default()
        };
        let cid = format!("{id}-{seccomp}");
        let mut c = Container::create_from(&cid, &d.bundle().unwrap(), &opts).unwrap();
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
    let mut d = on_dir(rootfs.rootfs(), &["/bin/sleep", "30"]);
    d.network.mode = NetworkMode::Host;
    let mut c = Container::create_from(&id, &d.bundle().unwrap(), &opts).unwrap();
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

    let d = on_dir(rootfs.rootfs(), &["/bin/sh", "-c", "exit 42"]);
    let cid = format!("{id}-b");
    let mut c = Container::create_from(&cid, &d.bundle().unwrap(), &opts).unwrap();
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
    let mut d = on_dir(rootfs.rootfs(), &["/bin/sh"]);
    d.hostname = Some("x".into());
    d.namespaces.insert(Namespace::Uts, NsMode::Host);
    let e = d
        .bundle()
        .and_then(|bundle| Container::create_from(&id, &bundle, &opts).map(drop))
        .unwrap_err();
    assert!(e.to_string().contains("hostname"), "{e}");
    assert_eq!((e.errno(), e.step().as_str()), (libc::EINVAL, "config"));
    // A program that does not exist fails create, naming it.
    let d = on_dir(rootfs.rootfs(), &["/no/such/program"]);
    let e = Container::create_from(&id, &d.bundle().unwrap(), &opts).unwrap_err();
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
    let d = on_dir(rootfs.rootfs(), &["/bin/sh", "-c", "sleep 0.3; exit 6"]);
    let mut c = Container::create_from(&id, &d.bundle().unwrap(), &opts).unwrap();
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
    let d = on_dir(rootfs.rootfs(), &["/bin/sleep", "60"]);
    let mut c = Container::create_from(&cid, &d.bundle().unwrap(), &opts).unwrap();
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

#[test]
fn sizes_parse_with_suffixes_and_bad_ones_name_the_value() {
    assert_eq!(parse_size("memory", "4096").unwrap(), 4096);
    assert_eq!(parse_size("memory", "64M").unwrap(), 64 << 20);
    assert_eq!(parse_size("memory", "64mb").unwrap(), 64 << 20);
    assert_eq!(parse_size("memory", "1.5g").unwrap(), 3 << 29);
    assert_eq!(parse_size("memory", "2KiB").unwrap(), 2048);
    for bad in ["", "M", "-1M", "0", "12q", "1e400"] {
        let e = parse_size("memory", bad).unwrap_err().to_string();
        assert!(
            e.contains("memory") && e.contains(&format!("{bad:?}")),
            "{bad}: {e}"
        );
    }
}

#[test]
fn limits_are_checked_and_converted() {
    let l = Limits {
        memory: Some(64 << 20),
        pids: Some(64),
        cpus: Some(0.5),
        ..Default::default()
    };
    let r = l.to_resources().unwrap();
    assert_eq!(r.memory_limit, Some(64 << 20));
    assert_eq!(r.pids_limit, Some(64));
    assert_eq!((r.cpu_quota, r.cpu_period), (Some(50_000), Some(100_000)));
    for (l, field) in [
        (
            Limits {
                memory: Some(-5),
                ..Default::default()
            },
            "memory.limit",
        ),
        (
            Limits {
                pids: Some(0),
                ..Default::default()
            },
            "pids.limit",
        ),
        (
            Limits {
                cpus: Some(f64::NAN),
                ..Default::default()
            },
            "cpu.quota",
        ),
        (
            Limits {
                cpu_shares: Some(1),
                ..Default::default()
            },
            "cpu.shares",
        ),
    ] {
        let e = l.check().unwrap_err().to_string();
        assert!(e.contains(field), "{e}");
    }
}

#[test]
fn namespaces_parse_by_oci_and_short_names() {
    assert_eq!("net".parse::<Namespace>().unwrap(), Namespace::Network);
    assert_eq!("mnt".parse::<Namespace>().unwrap(), Namespace::Mount);
    for n in Namespace::ALL {
        assert_eq!(n.oci_name().parse::<Namespace>().unwrap(), n);
    }
    assert!("nett"
        .parse::<Namespace>()
        .unwrap_err()
        .to_string()
        .contains("\"nett\""));
}

#[test]
fn built_spec_carries_every_field() {
    let t = tempfile::tempdir().unwrap();
    let mut d = on_dir(t.path(), &["/bin/echo", "hi"]);
    d.env.push(("A".into(), "1".into()));
    d.env.push(("PATH".into(), "/bin".into()));
    d.cwd = Some("/tmp".into());
    d.hostname = Some("h1".into());
    d.user = Some(UserSpec::Ids {
        uid: 1000,
        gid: 1001,
    });
    d.network.mode = NetworkMode::Host;
    d.limits = Limits {
        memory: Some(1 << 26),
        ..Default::default()
    };
    d.mounts.push(Mount::bind("/etc", "/mnt", true));
    d.security.seccomp = Seccomp::Minimal;
    d.readonly_root = Some(false);
    d.annotations.insert("k".into(), "v".into());
    let bundle = d.bundle().unwrap();
    let s = &bundle.spec;
    let p = s.process().as_ref().unwrap();
    assert_eq!(p.args().as_ref().unwrap(), &["/bin/echo", "hi"]);
    let env = p.env().as_ref().unwrap();
    assert!(env.contains(&"A=1".to_string()) && env.contains(&"PATH=/bin".to_string()));
    assert_eq!(env.iter().filter(|e| e.starts_with("PATH=")).count(), 1);
    assert_eq!(p.cwd().to_str(), Some("/tmp"));
    assert_eq!((p.user().uid(), p.user().gid()), (1000, 1001));
    assert_eq!(s.hostname().as_deref(), Some("h1"));
    let l = s.linux().as_ref().unwrap();
    let kinds: Vec<Namespace> = l
        .namespaces()
        .as_ref()
        .unwrap()
        .iter()
        .map(|n| Namespace::of(n.typ()))
        .collect();
    assert!(!kinds.contains(&Namespace::Network), "{kinds:?}");
    assert!(kinds.contains(&Namespace::Pid));
    assert_eq!(
        l.resources()
            .as_ref()
            .unwrap()
            .memory()
            .as_ref()
            .unwrap()
            .limit(),
        Some(1 << 26)
    );
    assert!(l.seccomp().is_some());
    assert_eq!(s.root().as_ref().unwrap().readonly(), Some(false));
    assert!(s
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .any(|m| m.destination().to_str() == Some("/mnt")));
    assert_eq!(
        bundle.dir,
        t.path().canonicalize().unwrap().parent().unwrap()
    );
}

#[test]
fn a_joined_uts_namespace_keeps_its_hostname() {
    let t = tempfile::tempdir().unwrap();
    let mut d = on_dir(t.path(), &["/bin/sh"]);
    assert!(d.to_spec().unwrap().hostname().is_some());
    d.namespaces
        .insert(Namespace::Uts, NsMode::Join("/proc/1/ns/uts".into()));
    assert!(d.to_spec().unwrap().hostname().is_none());
    d.hostname = Some("h".into());
    assert_eq!(d.to_spec().unwrap().hostname().as_deref(), Some("h"));
}

#[test]
fn bad_fields_are_refused_by_name() {
    let e = on_dir("/no/such/rootfs", &["/bin/sh"])
        .bundle()
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("root.path") && e.contains("/no/such/rootfs"),
        "{e}"
    );
    let t = tempfile::tempdir().unwrap();
    // A description's empty program is /bin/sh; an empty `process.args` in the spec it made
    // is refused by the validator when the bundle is made.
    let d = on_dir(t.path(), &[]);
    let mut spec = d.to_spec().unwrap();
    spec.process_mut()
        .as_mut()
        .unwrap()
        .set_args(Some(Vec::new()));
    let e = Bundle::from_spec(t.path().to_path_buf(), spec).unwrap_err();
    assert!(e.to_string().contains("process.args"), "{e}");
    let mut d = on_dir(t.path(), &["/bin/sh"]);
    d.env.push(("A=B".into(), "x".into()));
    let e = d.bundle().unwrap_err();
    assert!(e.to_string().contains("process.env"), "{e}");
    let mut d = on_dir(t.path(), &["/bin/sh"]);
    d.limits = Limits {
        pids: Some(-3),
        ..Default::default()
    };
    let e = d.bundle().unwrap_err();
    assert!(e.to_string().contains("pids.limit"), "{e}");
}

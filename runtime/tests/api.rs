//! The Rust API on the real kernel: stdio handed over as fds, spawning from a busy
//! multi-threaded host, and nothing left after delete or a failed create.

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use runtime::{Container, ExitStatus, Options};
use serde_json::json;
use testkit::TestRootfs;

fn setup(prefix: &str, args: &[&str]) -> (String, TestRootfs, tempfile::TempDir) {
    testkit::require_root();
    let id = testkit::unique_id(prefix);
    let rootfs = TestRootfs::with_id(&id);
    let mut spec = runtime::default_spec();
    spec["process"]["terminal"] = json!(false);
    spec["process"]["args"] = json!(args);
    spec["root"]["path"] = json!(rootfs.rootfs());
    rootfs.write_config(&spec);
    let state = tempfile::Builder::new()
        .prefix("corral-state-")
        .tempdir()
        .unwrap();
    (id, rootfs, state)
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    (r, w)
}

#[test]
fn stdio_fds_and_exit_status() {
    let (id, rootfs, state) = setup(
        "api-stdio",
        // It waits for its stdin to close, so that it is surely running when looked at.
        &["/bin/sh", "-c", "echo out; echo err >&2; read x; exit 7"],
    );
    let (in_r, in_w) = pipe();
    let (out_r, out_w) = pipe();
    let (err_r, err_w) = pipe();
    let opts = Options {
        root: state.path().to_path_buf(),
        stdio: [in_r.as_raw_fd(), out_w.as_raw_fd(), err_w.as_raw_fd()],
        ..Options::default()
    };
    let mut c = Container::create_and_start(&id, rootfs.bundle(), &opts).unwrap();
    drop((in_r, out_w, err_w));
    assert!(c.pid() > 1);
    assert_eq!(c.status(), runtime::Status::Running);
    assert_eq!(c.oci_state().status, runtime::Status::Running);
    drop(in_w);
    assert_eq!(c.wait().unwrap(), ExitStatus::Exited(7));
    let mut out = String::new();
    std::fs::File::from(out_r).read_to_string(&mut out).unwrap();
    let mut err = String::new();
    std::fs::File::from(err_r).read_to_string(&mut err).unwrap();
    assert_eq!((out.as_str(), err.as_str()), ("out\n", "err\n"));
    c.delete().unwrap();
    testkit::assert_no_leaks(&id, Some(state.path()));
}

#[test]
fn spawning_from_a_busy_multithreaded_host_does_not_hang() {
    // Threads that allocate and free all the time hold the allocator's locks at random
    // moments; a child that allocated after the clone would deadlock sooner or later.
    let stop = Arc::new(AtomicBool::new(false));
    // Threads being created and ending all the time hold glibc's thread-list locks at
    // random moments too (the setxid deadlock the child avoids with raw syscalls).
    let mut workers: Vec<_> = (0..3)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut v: Vec<Vec<u8>> = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    v.push(vec![1u8; 4096]);
                    if v.len() > 64 {
                        v.clear();
                    }
                }
            })
        })
        .collect();
    for _ in 0..2 {
        let stop = stop.clone();
        workers.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = std::thread::spawn(|| {}).join();
            }
        }));
    }
    let (id, rootfs, state) = setup("api-threads", &["/bin/true"]);
    let opts = Options {
        root: state.path().to_path_buf(),
        ..Options::default()
    };
    // A deadlock must fail the test, not hang the suite.
    let (tx, rx) = std::sync::mpsc::channel();
    let bundle = rootfs.bundle().to_path_buf();
    let id2 = id.clone();
    std::thread::spawn(move || {
        for _ in 0..50 {
            let mut c = Container::create_and_start(&id2, &bundle, &opts).unwrap();
            assert_eq!(c.wait().unwrap(), ExitStatus::Exited(0));
            c.delete().unwrap();
        }
        let _ = tx.send(());
    });
    rx.recv_timeout(std::time::Duration::from_secs(120))
        .expect("50 spawns from a busy threaded host did not finish in 120 s (deadlock?)");
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    testkit::assert_no_leaks(&id, Some(state.path()));
}

#[test]
fn dropping_a_running_container_cleans_up() {
    let (id, rootfs, state) = setup("api-drop", &["/probe", "sleep", "inf"]);
    let opts = Options {
        root: state.path().to_path_buf(),
        ..Options::default()
    };
    let c = Container::create_and_start(&id, rootfs.bundle(), &opts).unwrap();
    let pid = c.pid();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    drop(c);
    testkit::assert_no_leaks(&id, Some(state.path()));
}

#[test]
fn failed_create_leaves_nothing() {
    let (id, rootfs, state) = setup("api-fail", &["/bin/true"]);
    let mut spec: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(rootfs.bundle().join("config.json")).unwrap(),
    )
    .unwrap();
    spec["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/x", "type": "bind", "source": "/nonexistent-source"}));
    rootfs.write_config(&spec);
    let opts = Options {
        root: state.path().to_path_buf(),
        layers: vec![rootfs.rootfs().to_path_buf()],
        ..Options::default()
    };
    let e = Container::create_and_start(&id, rootfs.bundle(), &opts).unwrap_err();
    assert!(e.to_string().contains("mounts[7].source"), "{e}");
    assert_eq!(e.exit_code(), 125);
    testkit::assert_no_leaks(&id, Some(state.path()));
    // A failure in the child after the clone (a mount the kernel refuses).
    spec["mounts"].as_array_mut().unwrap().pop();
    spec["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/x", "type": "tmpfs", "source": "t", "options": ["size=notanumber"]}));
    rootfs.write_config(&spec);
    let e = Container::create_and_start(&id, rootfs.bundle(), &opts).unwrap_err();
    assert!(e.to_string().contains("mount /x"), "{e}");
    testkit::assert_no_leaks(&id, Some(state.path()));
}

#[test]
fn security_labels_go_where_the_module_reads_them() {
    // This kernel runs neither AppArmor nor SELinux, so the module is a fixture: attribute
    // files that the container's process writes its labels to, as it would to its own
    // /proc/thread-self/attr files.
    let (id, rootfs, state) = setup("api-lsm", &["/probe", "sleep", "inf"]);
    let attr = tempfile::Builder::new()
        .prefix(&format!("{id}-attr-"))
        .tempdir()
        .unwrap();
    let dir = attr.path().join("thread-self/attr");
    std::fs::create_dir_all(dir.join("apparmor")).unwrap();
    let files = ["apparmor/exec", "exec", "keycreate"];
    let clear = || {
        for f in files {
            std::fs::write(dir.join(f), "").unwrap();
        }
    };
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    clear();
    let label = "system_u:system_r:container_t:s0:c1,c2";
    let mut spec: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(rootfs.bundle().join("config.json")).unwrap(),
    )
    .unwrap();
    spec["process"]["apparmorProfile"] = json!("corral-test");
    spec["process"]["selinuxLabel"] = json!(label);
    rootfs.write_config(&spec);
    let opts = Options {
        root: state.path().to_path_buf(),
        security: runtime::Security {
            apparmor: true,
            selinux: true,
            proc_dir: attr.path().to_path_buf(),
        },
        ..Options::default()
    };
    let c = Container::create_and_start(&id, rootfs.bundle(), &opts).unwrap();
    assert_eq!(read("apparmor/exec"), "exec corral-test");
    assert_eq!(read("exec"), label);
    assert_eq!(read("keycreate"), label);

    // An exec'd process is confined as the container is, unless it names its own profile.
    clear();
    let mut p: oci_spec::runtime::Process =
        serde_json::from_value(spec["process"].clone()).unwrap();
    p.set_args(Some(vec!["/bin/true".into()]));
    p.set_apparmor_profile(Some("corral-other".into()));
    p.set_selinux_label(None);
    let mut e = c.exec(&p, &opts).unwrap();
    assert_eq!(e.wait().unwrap(), ExitStatus::Exited(0));
    assert_eq!(read("apparmor/exec"), "exec corral-other");
    assert_eq!(read("exec"), label);
    c.delete().unwrap();
    testkit::assert_no_leaks(&id, Some(state.path()));

    // A label the process cannot write fails the create, naming the label and the file.
    std::fs::remove_file(dir.join("apparmor/exec")).unwrap();
    let err = Container::create_and_start(&id, rootfs.bundle(), &opts)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("set security label \"exec corral-test\"") && err.contains("apparmor/exec"),
        "{err}"
    );
    testkit::assert_no_leaks(&id, Some(state.path()));

    // The real /proc of this kernel, which has no module to take the label: the write reaches
    // the process's own attribute file (EINVAL from the kernel with no module to take it, not
    // the EPERM a file of another task gives), for the container and for an exec'd process
    // (which forks into the container's pid namespace after it opened the host's /proc).
    let real = runtime::Security {
        apparmor: true,
        selinux: false,
        proc_dir: "/proc".into(),
    };
    let einval = |err: String| {
        assert!(
            err.contains("set security label \"exec corral-test\" (/proc/thread-self/attr/")
                && err.contains("(errno 22)"),
            "{err}"
        );
    };
    let opts_real = Options {
        security: real.clone(),
        ..opts.clone()
    };
    let mut apparmor_only = spec.clone();
    apparmor_only["process"]["selinuxLabel"] = json!("");
    rootfs.write_config(&apparmor_only);
    einval(
        Container::create_and_start(&id, rootfs.bundle(), &opts_real)
            .unwrap_err()
            .to_string(),
    );
    testkit::assert_no_leaks(&id, Some(state.path()));
    let mut plain = spec.clone();
    plain["process"]["apparmorProfile"] = json!("");
    plain["process"]["selinuxLabel"] = json!("");
    rootfs.write_config(&plain);
    let opts_none = Options {
        security: runtime::Security::none(),
        ..opts.clone()
    };
    let c = Container::create_and_start(&id, rootfs.bundle(), &opts_none).unwrap();
    p.set_apparmor_profile(Some("corral-test".into()));
    einval(c.exec(&p, &opts_real).unwrap_err().to_string());
    drop(c);
    testkit::assert_no_leaks(&id, Some(state.path()));
    rootfs.write_config(&spec);

    // A failure before the child even waits for its go-ahead (the procfs it opens first)
    // still comes back as the child's own error.
    let opts_gone = Options {
        security: runtime::Security {
            proc_dir: "/nonexistent-proc".into(),
            ..real.clone()
        },
        ..opts.clone()
    };
    rootfs.write_config(&apparmor_only);
    let err = Container::create_and_start(&id, rootfs.bundle(), &opts_gone)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("set security label (opening /nonexistent-proc)") && err.contains("errno 2"),
        "{err}"
    );
    testkit::assert_no_leaks(&id, Some(state.path()));
    rootfs.write_config(&spec);

    // On a host without the module, the spec's field is named.
    let opts = Options {
        security: runtime::Security::none(),
        ..opts
    };
    let err = Container::create_and_start(&id, rootfs.bundle(), &opts)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("process.apparmorProfile") && err.contains("no AppArmor"),
        "{err}"
    );
    testkit::assert_no_leaks(&id, Some(state.path()));
}

#[test]
fn the_process_is_in_its_cgroup_in_every_hierarchy_before_it_execs() {
    // The child moves itself into each v1 hierarchy (`tasks`) and the clone places it in the
    // cgroup2 one: /proc/self/cgroup of the process lists the container's cgroup everywhere.
    let (id, rootfs, state) = setup("api-cgjoin", &["/bin/cat", "/proc/self/cgroup"]);
    let mut spec: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(rootfs.bundle().join("config.json")).unwrap(),
    )
    .unwrap();
    // Without a cgroup namespace, so the host paths show.
    spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "cgroup");
    spec["linux"]["resources"]["pids"] = json!({"limit": 10});
    rootfs.write_config(&spec);
    let (out_r, out_w) = pipe();
    let opts = Options {
        root: state.path().to_path_buf(),
        stdio: [-1, out_w.as_raw_fd(), -1],
        ..Options::default()
    };
    let mut c = Container::create_and_start(&id, rootfs.bundle(), &opts).unwrap();
    drop(out_w);
    assert_eq!(c.wait().unwrap(), ExitStatus::Exited(0));
    let mut out = String::new();
    std::fs::File::from(out_r).read_to_string(&mut out).unwrap();
    let hierarchies = std::fs::read_to_string("/proc/self/cgroup")
        .unwrap()
        .lines()
        .count();
    assert_eq!(out.lines().count(), hierarchies, "{out}");
    for l in out.lines() {
        assert!(
            l.ends_with(&format!("/{id}")),
            "not in its cgroup: {l}\n{out}"
        );
    }
    c.delete().unwrap();
    testkit::assert_no_leaks(&id, Some(state.path()));
}

extern "C" fn ignore_it(_: libc::c_int) {}

#[test]
fn the_program_gets_default_signals_whatever_its_host_ignores_catches_or_blocks() {
    // A library host changes dispositions: Rust's std ignores SIGPIPE, Python ignores
    // SIGXFSZ and catches SIGINT. An ignored signal would stay ignored across execve and a
    // blocked one blocked: the container's program must see neither, nor any handler.
    // (Before: signal 32 stayed ignored, glibc's signal() refusing to reset it.)
    use nix::sys::signal::{self, SigHandler, SigSet, SigmaskHow, Signal};
    let (id, rootfs, state) = setup("api-signals", &["/bin/cat", "/proc/self/status"]);
    let changed = [
        (Signal::SIGUSR1, SigHandler::SigIgn),
        (Signal::SIGXFSZ, SigHandler::SigIgn),
        (Signal::SIGUSR2, SigHandler::Handler(ignore_it)),
    ];
    let before: Vec<SigHandler> = changed
        .iter()
        // SAFETY: an ignored signal or a handler that does nothing, in a test process none of
        // whose tests sends these signals.
        .map(|(sig, h)| unsafe { signal::signal(*sig, *h) }.unwrap())
        .collect();
    // Signal 32 too, glibc's own (its signal() and sigaction() refuse it; cargo leaves it
    // ignored for the processes it starts): the raw syscall, with the kernel's all-zero
    // struct sigaction but for the handler (SIG_IGN, 1).
    let rt_sigaction = |sig: libc::c_int, new: &[u64; 4], old: &mut [u64; 4]| {
        // SAFETY: `new` and `old` are live kernel sigactions (the larger layout), the set
        // size is the kernel's.
        let r = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                new.as_ptr(),
                old.as_mut_ptr(),
                8usize,
            )
        };
        assert_eq!(
            r,
            0,
            "rt_sigaction({sig}): {}",
            std::io::Error::last_os_error()
        );
    };
    let mut before_32 = [0u64; 4];
    rt_sigaction(32, &[1, 0, 0, 0], &mut before_32);
    let mut winch = SigSet::empty();
    winch.add(Signal::SIGWINCH);
    let mut mask = SigSet::empty();
    signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&winch), Some(&mut mask)).unwrap();
    let (out_r, out_w) = pipe();
    let opts = Options {
        root: state.path().to_path_buf(),
        stdio: [-1, out_w.as_raw_fd(), -1],
        ..Options::default()
    };
    let made = Container::create_and_start(&id, rootfs.bundle(), &opts);
    signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&mask), None).unwrap();
    for ((sig, _), h) in changed.iter().zip(before) {
        // SAFETY: the dispositions these signals had before the test.
        unsafe { signal::signal(*sig, h) }.unwrap();
    }
    rt_sigaction(32, &before_32, &mut [0; 4]);
    let mut c = made.unwrap();
    drop(out_w);
    assert_eq!(c.wait().unwrap(), ExitStatus::Exited(0));
    let mut out = String::new();
    std::fs::File::from(out_r).read_to_string(&mut out).unwrap();
    for field in ["SigBlk", "SigIgn", "SigCgt"] {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("{field}:")))
            .unwrap_or_else(|| panic!("no {field} in\n{out}"));
        assert_eq!(line, format!("{field}:\t0000000000000000"), "{out}");
    }
    c.delete().unwrap();
    testkit::assert_no_leaks(&id, Some(state.path()));
}

/// A failed startContainer hook: `start` succeeds (as runc's), the program never runs (the
/// process exits 127), and the failure is in `warnings()` for a library caller.
#[test]
fn a_failed_start_container_hook_is_a_warning_of_start() {
    let (id, rootfs, state) = setup("api-starthook", &["/bin/sh", "-c", "exit 0"]);
    let mut spec: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(rootfs.bundle().join("config.json")).unwrap(),
    )
    .unwrap();
    spec["hooks"] =
        json!({"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "echo nope; exit 4"]}]});
    rootfs.write_config(&spec);
    let opts = Options {
        root: state.path().to_path_buf(),
        ..Options::default()
    };
    let mut c = Container::create_and_start(&id, rootfs.bundle(), &opts).unwrap();
    assert_eq!(c.wait().unwrap(), ExitStatus::Exited(127));
    let w = c.warnings().join("\n");
    assert!(
        w.contains("error running hook #0") && w.contains("exit status: 4") && w.contains("nope"),
        "{w}"
    );
    c.delete().unwrap();
    testkit::assert_no_leaks(&id, Some(state.path()));
}

/// A container only its creator starts (`Options::start_in_process`, as `corral run` and
/// `create_and_start` make theirs) waits at the socket: no FIFO is made in its state dir. One
/// that another process may start has its FIFO until started. Both start, run and go alike.
#[test]
fn a_container_only_its_creator_starts_waits_at_the_socket_not_a_fifo() {
    let (id, rootfs, state) = setup("api-sockgate", &["/bin/sh", "-c", "exit 3"]);
    let fifo = state.path().join(&id).join("exec.fifo");
    for in_process in [false, true] {
        let opts = Options {
            root: state.path().to_path_buf(),
            start_in_process: in_process,
            ..Options::default()
        };
        let mut c = Container::create(&id, rootfs.bundle(), &opts).unwrap();
        assert_eq!(fifo.exists(), !in_process, "start_in_process {in_process}");
        assert_eq!(c.status(), runtime::Status::Created);
        c.start().unwrap();
        assert!(!fifo.exists());
        assert_eq!(c.wait().unwrap(), ExitStatus::Exited(3));
        c.delete().unwrap();
    }
    testkit::assert_no_leaks(&id, Some(state.path()));
}

/// A start writes nothing: the state file keeps `created`, and the status `running` is
/// derived from the process past its gate, for this handle, for one that loads the
/// container, and for a listing that finds it locked (and so reads the file without the
/// lock). Once the process is gone, every one of them says `stopped`.
#[test]
fn a_started_container_is_running_for_every_reader_though_start_wrote_nothing() {
    let (id, rootfs, state) = setup("api-derived", &["/bin/sleep", "1000"]);
    let opts = Options {
        root: state.path().to_path_buf(),
        ..Options::default()
    };
    let mut c = Container::create_and_start(&id, rootfs.bundle(), &opts).unwrap();
    let file = || -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(state.path().join(&id).join("state.json")).unwrap())
            .unwrap()
    };
    assert_eq!(file()["status"], "created");
    assert_eq!(c.status(), runtime::Status::Running);
    // Loaded (and so locked) by another handle: the listing reads the file unlocked.
    let loaded = Container::load(state.path(), &id).unwrap();
    assert_eq!(loaded.status(), runtime::Status::Running);
    let listed = Container::listed_state(state.path(), &id).unwrap();
    assert_eq!(
        (listed.status, listed.pid),
        (runtime::Status::Running, c.pid())
    );
    assert_eq!(
        Container::peeked_state(state.path(), &id).unwrap().status,
        runtime::Status::Running
    );
    drop(loaded);
    c.signal(libc::SIGKILL).unwrap();
    assert_eq!(c.wait().unwrap(), ExitStatus::Signaled(libc::SIGKILL));
    assert_eq!(
        Container::listed_state(state.path(), &id).unwrap().status,
        runtime::Status::Stopped
    );
    c.delete().unwrap();
    testkit::assert_no_leaks(&id, Some(state.path()));
}

/// Reaped by its creator and kept (detached), the container is recorded `stopped`; one
/// deleted right after the wait is not written to first (its state dir just goes).
#[test]
fn a_reaped_container_is_recorded_stopped_only_when_kept() {
    let (id, rootfs, state) = setup("api-kept", &["/bin/true"]);
    let opts = Options {
        root: state.path().to_path_buf(),
        ..Options::default()
    };
    let mut c = Container::create_and_start(&id, rootfs.bundle(), &opts).unwrap();
    assert_eq!(c.wait().unwrap(), ExitStatus::Exited(0));
    let file = state.path().join(&id).join("state.json");
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(written["status"], "created");
    c.detach().unwrap();
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(written["status"], "stopped");
    let c = Container::load(state.path(), &id).unwrap();
    assert_eq!(c.status(), runtime::Status::Stopped);
    c.delete().unwrap();
    testkit::assert_no_leaks(&id, Some(state.path()));
}

/// Without a pid namespace of its own, a container's init can leave processes behind in its
/// cgroup when it exits: delete, which first only tries to remove the (usually empty)
/// cgroups, finds them, kills them and then removes everything.
#[test]
fn processes_left_in_the_cgroup_by_an_exited_init_are_killed_by_delete() {
    let args = [
        "/bin/sh",
        "-c",
        "sleep 1000 </dev/null >/dev/null 2>&1 & exit 3",
    ];
    let (id, rootfs, state) = setup("api-leftover", &args);
    let mut spec = runtime::default_spec();
    spec["process"]["terminal"] = json!(false);
    spec["process"]["args"] = json!(args);
    spec["root"]["path"] = json!(rootfs.rootfs());
    let ns = spec["linux"]["namespaces"].as_array_mut().unwrap();
    ns.retain(|n| n["type"] != "pid");
    rootfs.write_config(&spec);
    let opts = Options {
        root: state.path().to_path_buf(),
        ..Options::default()
    };
    let mut c = Container::create_and_start(&id, rootfs.bundle(), &opts).unwrap();
    assert_eq!(c.wait().unwrap(), ExitStatus::Exited(3));
    let left = c.pids().unwrap();
    assert_eq!(left.len(), 1, "the background sleep: {left:?}");
    c.delete().unwrap();
    assert!(
        !std::path::Path::new(&format!("/proc/{}", left[0])).exists()
            || std::fs::read_to_string(format!("/proc/{}/stat", left[0])).is_ok_and(|s| s
                .rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')),
        "the process left in the cgroup survived delete"
    );
    testkit::assert_no_leaks(&id, Some(state.path()));
}

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
        &["/bin/sh", "-c", "echo out; echo err >&2; exit 7"],
    );
    let (out_r, out_w) = pipe();
    let (err_r, err_w) = pipe();
    let opts = Options {
        root: state.path().to_path_buf(),
        stdio: [-1, out_w.as_raw_fd(), err_w.as_raw_fd()],
        ..Options::default()
    };
    let mut c = Container::create_and_start(&id, rootfs.bundle(), &opts).unwrap();
    drop((out_w, err_w));
    assert!(c.pid() > 1);
    assert_eq!(c.state().status, runtime::Status::Running);
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

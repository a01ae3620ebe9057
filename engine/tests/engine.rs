//! Engine containers against real containers of a busybox image: logs, exit codes, stop,
//! the writable layer across starts, restart policies, `--rm`, rotation, a killed monitor,
//! names. Every test has its own store and state root, `--network none`, and a guard that
//! removes its containers and their monitors even when it fails.

use std::cell::RefCell;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use corral_engine::{CreateOptions, Engine, Error, LogOptions, RestartPolicy, Status};
use runtime::describe::{Description, NetworkMode, Root};
use testkit::TestRootfs;

const IMAGE: &str = "bb:1";

/// A private store and state root with the busybox image, and the containers made.
struct T {
    dir: tempfile::TempDir,
    _rootfs: TestRootfs,
    engine: Engine,
    ids: RefCell<Vec<String>>,
}

impl T {
    fn new() -> T {
        testkit::require_root();
        let dir = tempfile::Builder::new()
            .prefix("corral-engine-")
            .tempdir()
            .unwrap();
        let rootfs = TestRootfs::new();
        let store_dir = dir.path().join("store");
        let store = corral_image::ImageStore::open(&store_dir).unwrap();
        {
            let _l = store.lock_shared().unwrap();
            let r = corral_image::Reference::parse(IMAGE).unwrap();
            store.import(rootfs.rootfs(), Some(&r)).unwrap();
        }
        // The monitor alone; `CORRAL_ENGINE_MONITOR=/path/to/corral` runs these tests with
        // the CLI's `_monitor` verb instead.
        let exe = std::env::var_os("CORRAL_ENGINE_MONITOR")
            .map(PathBuf::from)
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_corral-engine-monitor").into());
        let engine = Engine::new(&store_dir, dir.path().join("state"), exe);
        T {
            dir,
            _rootfs: rootfs,
            engine,
            ids: RefCell::new(Vec::new()),
        }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    fn describe(args: &[&str]) -> Description {
        let mut d = Description::new(Root::Image(IMAGE.into()));
        d.args = args.iter().map(|s| s.to_string()).collect();
        d.network.mode = NetworkMode::None;
        d
    }

    /// A container of `args` (guarded).
    fn create(&self, args: &[&str], o: CreateOptions) -> String {
        let id = self.engine.create(&T::describe(args), &o).unwrap();
        self.ids.borrow_mut().push(id.clone());
        id
    }

    fn logs(&self, id: &str, o: &LogOptions) -> (String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        self.engine.logs(id, o, &mut out, &mut err).unwrap();
        (
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    /// Waits (bounded: a hang fails the test) for `f`.
    fn until(&self, what: &str, mut f: impl FnMut() -> bool) {
        let end = Instant::now() + Duration::from_secs(60);
        while !f() {
            assert!(Instant::now() < end, "gave up waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `wait`, bounded.
    fn wait(&self, id: &str) -> i32 {
        let (tx, rx) = std::sync::mpsc::channel();
        let e = self.engine.clone();
        let id2 = id.to_string();
        std::thread::spawn(move || {
            let _ = tx.send(e.wait(&id2));
        });
        rx.recv_timeout(Duration::from_secs(60))
            .expect("wait did not return")
            .unwrap()
    }

    fn no_leaks(&self, id: &str) {
        testkit::assert_no_leaks(id, Some(&self.state()));
    }
}

impl Drop for T {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter() {
            let _ = self.engine.remove(id, true, true);
            // A monitor left behind (the test failed halfway): killed.
            for leak in testkit::find_leaks(id, Some(&self.state())) {
                if let Some(pid) = leak
                    .strip_prefix("process ")
                    .and_then(|r| r.split_whitespace().next())
                    .and_then(|p| p.parse::<i32>().ok())
                {
                    // SAFETY: kill(2) of a process that names this test's container.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
            let _ = corral_image::remove(&self.store(), &self.state(), id, true);
        }
    }
}

#[test]
fn a_detached_container_logs_both_streams_and_keeps_its_exit_code() {
    let t = T::new();
    let id = t.create(
        &["sh", "-c", "echo out; echo err >&2; echo more; exit 3"],
        CreateOptions::default(),
    );
    assert_eq!(t.engine.status(&id).unwrap().status, Status::Created);
    assert_eq!(t.engine.list(false).unwrap().len(), 0);
    assert_eq!(t.engine.list(true).unwrap()[0].status_text, "Created");
    assert_eq!(t.wait(&id), 0);
    let pid = t.engine.start(&id).unwrap();
    assert!(pid > 0);
    assert_eq!(t.wait(&id), 3);
    let (out, err) = t.logs(&id, &LogOptions::default());
    assert_eq!(out, "out\nmore\n");
    assert_eq!(err, "err\n");
    let tail = LogOptions {
        tail: Some(1),
        timestamps: true,
        ..LogOptions::default()
    };
    // The last line of either stream (which one the monitor read last is not fixed).
    let (out, err) = t.logs(&id, &tail);
    let last = out + &err;
    assert_eq!(last.lines().count(), 1, "{last:?}");
    assert!(last.starts_with("20") && last.contains("Z "), "{last:?}");
    // The log is docker's json-file.
    let first = fs::read_to_string(t.engine.log_path(&id)).unwrap();
    let v: serde_json::Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
    assert_eq!(v["stream"], "stdout");
    assert_eq!(v["log"], "out\n");
    let ps = t.engine.list(true).unwrap();
    assert!(ps[0].status_text.starts_with("Exited (3) "), "{ps:?}");
    assert_eq!(
        ps[0].command,
        "sh -c 'echo out; echo err >&2; echo more; exit 3'"
    );
    let i = t.engine.inspect(&id).unwrap();
    assert_eq!(i["State"]["Status"], "exited");
    assert_eq!(i["State"]["ExitCode"], 3);
    assert_eq!(i["State"]["Running"], false);
    assert_ne!(i["State"]["FinishedAt"], "0001-01-01T00:00:00Z");
    assert_eq!(i["Path"], "sh");
    assert_eq!(i["Id"], id.as_str());
    // The runtime container is gone, the record stays.
    assert!(!t.state().join(&id).exists());
    t.no_leaks(&id);
    t.engine.remove(&id, false, false).unwrap();
    assert!(!t.store().join("containers").join(&id).exists());
    assert!(matches!(
        t.engine.inspect(&id),
        Err(Error::NoSuchContainer(_))
    ));
}

#[test]
fn logs_follow_a_live_container_to_its_end() {
    let t = T::new();
    let id = t.create(
        &[
            "sh",
            "-c",
            "for i in 1 2 3 4 5; do echo line$i; sleep 0.2; done; echo done >&2",
        ],
        CreateOptions::default(),
    );
    t.engine.start(&id).unwrap();
    let follow = LogOptions {
        follow: true,
        ..LogOptions::default()
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let e = t.engine.clone();
    let id2 = id.clone();
    std::thread::spawn(move || {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let r = e.logs(&id2, &follow, &mut out, &mut err);
        let _ = tx.send((r.is_ok(), out, err));
    });
    let (ok, out, err) = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("logs -f did not end with the container");
    assert!(ok);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "line1\nline2\nline3\nline4\nline5\n"
    );
    assert_eq!(String::from_utf8(err).unwrap(), "done\n");
    assert_eq!(t.engine.status(&id).unwrap().status, Status::Exited);
    t.no_leaks(&id);
}

#[test]
fn a_container_killed_by_a_signal_exits_128_plus_n() {
    let t = T::new();
    let id = t.create(&["sleep", "1000"], CreateOptions::default());
    t.engine.start(&id).unwrap();
    let st = t.engine.status(&id).unwrap();
    assert_eq!(st.status, Status::Running);
    assert!(!st.unsupervised);
    assert!(t.engine.list(false).unwrap()[0]
        .status_text
        .starts_with("Up "));
    // Its monitor holds no lock of the store: prune and image rm can run meanwhile.
    let (tx, rx) = std::sync::mpsc::channel();
    let store = t.store();
    std::thread::spawn(move || {
        let s = corral_image::ImageStore::open(&store).unwrap();
        let _l = s.lock_exclusive().unwrap();
        let _ = tx.send(());
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the store stays locked while a container runs");
    t.engine.kill(&id, libc::SIGKILL).unwrap();
    assert_eq!(t.wait(&id), 137);
    let st = t.engine.status(&id).unwrap();
    assert_eq!((st.status, st.exit_code), (Status::Exited, Some(137)));
    t.no_leaks(&id);
}

#[test]
fn stop_kills_a_process_that_ignores_the_stop_signal_after_the_timeout() {
    let t = T::new();
    // Init in its pid namespace ignores SIGTERM (no handler): only SIGKILL ends it.
    let id = t.create(
        &[
            "sh",
            "-c",
            "trap '' TERM; echo up; while :; do sleep 1; done",
        ],
        CreateOptions {
            stop_timeout: Some(1),
            ..CreateOptions::default()
        },
    );
    t.engine.start(&id).unwrap();
    t.until("its output", || {
        t.logs(&id, &LogOptions::default()).0 == "up\n"
    });
    t.engine.stop(&id, None).unwrap();
    let st = t.engine.status(&id).unwrap();
    assert_eq!(st.status, Status::Exited);
    assert_eq!(st.exit_code, Some(137), "{st:?}");
    assert!(st.stopped_by_user);
    t.no_leaks(&id);
    // Stopping a stopped container is fine.
    t.engine.stop(&id, Some(1)).unwrap();
}

#[test]
fn a_container_started_again_keeps_its_writable_layer() {
    let t = T::new();
    let id = t.create(
        &[
            "sh",
            "-c",
            "if [ -f /kept ]; then echo again $(cat /kept); else echo first; echo 42 > /kept; fi",
        ],
        CreateOptions::default(),
    );
    t.engine.start(&id).unwrap();
    assert_eq!(t.wait(&id), 0);
    t.no_leaks(&id);
    t.engine.start(&id).unwrap();
    assert_eq!(t.wait(&id), 0);
    assert_eq!(t.logs(&id, &LogOptions::default()).0, "first\nagain 42\n");
    // The layer is in the record, not the (gone) state dir.
    assert_eq!(
        fs::read_to_string(t.store().join("containers").join(&id).join("upper/kept")).unwrap(),
        "42\n"
    );
    t.no_leaks(&id);
}

#[test]
fn on_failure_2_restarts_twice_then_stays_exited() {
    let t = T::new();
    let id = t.create(
        &["sh", "-c", "echo run; exit 1"],
        CreateOptions {
            restart: RestartPolicy::parse("on-failure:2").unwrap(),
            ..CreateOptions::default()
        },
    );
    t.engine.start(&id).unwrap();
    assert_eq!(t.wait(&id), 1);
    let st = t.engine.status(&id).unwrap();
    assert_eq!(st.status, Status::Exited);
    assert_eq!(st.restart_count, 2);
    assert_eq!(t.logs(&id, &LogOptions::default()).0, "run\nrun\nrun\n");
    assert_eq!(t.engine.inspect(&id).unwrap()["RestartCount"], 2);
    t.no_leaks(&id);
}

#[test]
fn a_user_stop_is_not_restarted() {
    let t = T::new();
    let id = t.create(
        &["sleep", "1000"],
        CreateOptions {
            restart: RestartPolicy::Always,
            stop_timeout: Some(1),
            ..CreateOptions::default()
        },
    );
    t.engine.start(&id).unwrap();
    t.engine.stop(&id, None).unwrap();
    let st = t.engine.status(&id).unwrap();
    assert_eq!((st.status, st.restart_count), (Status::Exited, 0));
    t.no_leaks(&id);
}

#[test]
fn rm_detached_removes_itself() {
    let t = T::new();
    let id = t.create(
        &["sh", "-c", "sleep 1; exit 4"],
        CreateOptions {
            auto_remove: true,
            name: Some("gone".into()),
            ..CreateOptions::default()
        },
    );
    t.engine.start(&id).unwrap();
    // wait gets its exit code though its record is gone.
    assert_eq!(t.wait(&id), 4);
    t.until("the container to remove itself", || {
        matches!(t.engine.status(&id), Err(Error::NoSuchContainer(_)))
    });
    assert!(!t.store().join("containers").join(&id).exists());
    assert!(fs::symlink_metadata(t.store().join("names/gone")).is_err());
    t.no_leaks(&id);
}

#[test]
fn the_log_is_rotated_by_size() {
    let t = T::new();
    let mut log = corral_engine::LogConfig::default();
    log.set("max-size=1k").unwrap();
    log.set("max-file=2").unwrap();
    assert!(log.set("max-file=0").is_err());
    assert!(log.set("colour=red").is_err());
    let id = t.create(
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 300 ]; do echo line $i; i=$((i+1)); done",
        ],
        CreateOptions {
            log,
            ..CreateOptions::default()
        },
    );
    t.engine.start(&id).unwrap();
    assert_eq!(t.wait(&id), 0);
    let p = t.engine.log_path(&id);
    let one = PathBuf::from(format!("{}.1", p.display()));
    let two = PathBuf::from(format!("{}.2", p.display()));
    assert!(one.exists() && !two.exists());
    for f in [&p, &one] {
        assert!(fs::metadata(f).unwrap().len() <= 1024, "{}", f.display());
    }
    let out = t.logs(&id, &LogOptions::default()).0;
    assert!(out.ends_with("line 299\n"), "{out}");
    assert!(!out.contains("line 0\n"));
    t.no_leaks(&id);
}

fn monitor_of(t: &T, id: &str) -> i32 {
    let st: serde_json::Value = serde_json::from_slice(
        &fs::read(t.store().join("containers").join(id).join("state.json")).unwrap(),
    )
    .unwrap();
    st["monitor_pid"].as_i64().unwrap() as i32
}

fn kill9_and_reap_nothing(pid: i32) {
    // SAFETY: kill(2) of the monitor this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
}

fn gone(pid: i32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
        || fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.contains(") Z "))
            .unwrap_or(true)
}

#[test]
fn a_killed_monitor_leaves_the_truth_and_rm_f_cleans_up() {
    let t = T::new();
    let id = t.create(&["sleep", "1000"], CreateOptions::default());
    let pid = t.engine.start(&id).unwrap();
    let mon = monitor_of(&t, &id);
    assert!(mon > 0 && mon != pid);
    kill9_and_reap_nothing(mon);
    t.until("the monitor to die", || gone(mon));
    let st = t.engine.status(&id).unwrap();
    assert_eq!(st.status, Status::Running);
    assert!(st.unsupervised);
    let ps = t.engine.list(false).unwrap();
    assert!(ps[0].status_text.ends_with("(no monitor)"), "{ps:?}");
    let e = t.engine.remove(&id, false, false).unwrap_err().to_string();
    assert!(e.contains("You cannot remove a running container"), "{e}");
    t.engine.remove(&id, true, false).unwrap();
    assert!(!t.store().join("containers").join(&id).exists());
    assert!(gone(pid));
    t.no_leaks(&id);
}

#[test]
fn a_killed_monitor_and_a_gone_process_are_exited_with_the_code_lost() {
    let t = T::new();
    let id = t.create(&["sleep", "1000"], CreateOptions::default());
    let pid = t.engine.start(&id).unwrap();
    let mon = monitor_of(&t, &id);
    kill9_and_reap_nothing(mon);
    t.until("the monitor to die", || gone(mon));
    // SAFETY: kill(2) of the container's init, this test's.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    t.until("the process to go", || {
        t.engine.status(&id).unwrap().status == Status::Exited
    });
    let i = t.engine.inspect(&id).unwrap();
    assert_eq!(i["State"]["ExitCode"], -1);
    assert_eq!(
        i["State"]["Error"],
        "its monitor was killed; the exit code is lost"
    );
    assert!(t.engine.list(true).unwrap()[0]
        .status_text
        .starts_with("Exited (unknown)"));
    // Started again: what the dead monitor left is cleaned first.
    t.engine.start(&id).unwrap();
    assert_eq!(t.engine.status(&id).unwrap().status, Status::Running);
    t.engine.remove(&id, true, false).unwrap();
    t.no_leaks(&id);
}

#[test]
fn volumes_named_by_containers_are_in_use_and_rm_v_removes_anonymous_ones() {
    let t = T::new();
    let vols = t.store().join("volumes");
    for v in [
        "data",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    ] {
        fs::create_dir_all(vols.join(v).join("_data")).unwrap();
    }
    let anon = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let mut d = T::describe(&["true"]);
    d.mounts.push(runtime::describe::Mount::bind(
        vols.join("data/_data").to_str().unwrap(),
        "/data",
        false,
    ));
    let o = CreateOptions {
        volumes: vec![corral_engine::VolumeUse {
            name: anon.into(),
            destination: "/anon".into(),
            anonymous: true,
        }],
        ..CreateOptions::default()
    };
    let id = t.engine.create(&d, &o).unwrap();
    t.ids.borrow_mut().push(id.clone());
    let used = t.engine.volumes_in_use().unwrap();
    assert_eq!(used["data"], vec![id.clone()]);
    assert_eq!(used[anon], vec![id.clone()]);
    let i = t.engine.inspect(&id).unwrap();
    assert_eq!(i["Mounts"][0]["Type"], "volume");
    assert_eq!(i["Mounts"][0]["Name"], "data");
    t.engine.remove(&id, false, true).unwrap();
    assert!(vols.join("data").exists());
    assert!(!vols.join(anon).exists());
    assert!(t.engine.volumes_in_use().unwrap().is_empty());
}

#[test]
fn names_are_unique_and_resolve() {
    let t = T::new();
    let a = t.create(
        &["true"],
        CreateOptions {
            name: Some("web".into()),
            ..CreateOptions::default()
        },
    );
    let d = T::describe(&["true"]);
    let e = t
        .engine
        .create(
            &d,
            &CreateOptions {
                name: Some("web".into()),
                ..CreateOptions::default()
            },
        )
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!("Conflict. The container name \"/web\" is already in use by container \"{a}\". You have to remove (or rename) that container to be able to reuse that name.")
    );
    // Nothing of the refused one is left.
    assert_eq!(
        fs::read_dir(t.store().join("containers")).unwrap().count(),
        1
    );
    assert!(t
        .engine
        .create(
            &d,
            &CreateOptions {
                name: Some("-bad".into()),
                ..CreateOptions::default()
            }
        )
        .unwrap_err()
        .to_string()
        .contains("Invalid container name"));
    // A generated name, docker's style.
    let b = t.create(&["true"], CreateOptions::default());
    let nb = t.engine.config(&b).unwrap().name;
    assert!(nb.contains('_'), "{nb}");
    assert_eq!(t.engine.resolve("web").unwrap(), a);
    assert_eq!(t.engine.resolve("/web").unwrap(), a);
    assert_eq!(t.engine.resolve(&nb).unwrap(), b);
    assert_eq!(t.engine.resolve(&a).unwrap(), a);
    assert_eq!(t.engine.resolve(&a[..12]).unwrap(), a);
    assert!(matches!(
        t.engine.resolve("nosuch"),
        Err(Error::NoSuchContainer(_))
    ));
    t.engine.rename(&a, "api").unwrap();
    assert_eq!(t.engine.inspect(&a).unwrap()["Name"], "/api");
    assert_eq!(t.engine.resolve("api").unwrap(), a);
    assert!(t.engine.resolve("web").is_err());
    let c = t.create(
        &["true"],
        CreateOptions {
            name: Some("web".into()),
            ..CreateOptions::default()
        },
    );
    assert_eq!(t.engine.resolve("web").unwrap(), c);
    assert!(t.engine.rename(&c, "api").is_err());
}

#[test]
fn a_foreground_run_records_its_exit_and_rm_removes_it() {
    let t = T::new();
    let id = t.create(&["sh", "-c", "echo fg; exit 5"], CreateOptions::default());
    assert_eq!(t.engine.run_attached(&id, false).unwrap(), 5);
    let st = t.engine.status(&id).unwrap();
    assert_eq!((st.status, st.exit_code), (Status::Exited, Some(5)));
    assert_eq!(t.logs(&id, &LogOptions::default()).0, "fg\n");
    t.no_leaks(&id);
    let rm = t.create(
        &["sh", "-c", "exit 7"],
        CreateOptions {
            auto_remove: true,
            ..CreateOptions::default()
        },
    );
    assert_eq!(t.engine.run_attached(&rm, false).unwrap(), 7);
    assert!(matches!(
        t.engine.status(&rm),
        Err(Error::NoSuchContainer(_))
    ));
    t.no_leaks(&rm);
}

#[test]
fn a_command_that_is_not_there_is_127() {
    let t = T::new();
    let id = t.create(&["/nonexistent"], CreateOptions::default());
    let e = t.engine.start(&id).unwrap_err();
    assert_eq!(e.exit_code(), 127, "{e}");
    let st = t.engine.status(&id).unwrap();
    assert_eq!(st.status, Status::Exited);
    assert!(!st.error.is_empty());
    t.no_leaks(&id);
}

#[test]
fn a_kept_record_is_live_for_the_store_and_commits_from_its_own_layer() {
    let t = T::new();
    let id = t.create(&["sh", "-c", "echo made > /made"], CreateOptions::default());
    t.engine.start(&id).unwrap();
    assert_eq!(t.wait(&id), 0);
    // The runtime container is gone; the record is not forgotten, nor pruned, and its
    // image cannot be removed from under it.
    corral_image::forget_container(&t.store(), &t.state(), &id);
    let store = corral_image::ImageStore::open(&t.store()).unwrap();
    {
        let _l = store.lock_exclusive().unwrap();
        store.prune().unwrap();
        let e = store.remove_image(IMAGE).unwrap_err().to_string();
        assert!(e.contains(&id), "{e}");
    }
    let rec = store.container(&id).unwrap().unwrap();
    assert!(rec.keep && rec.live());
    assert_eq!(
        rec.upper_dir(),
        t.store().join("containers").join(&id).join("upper")
    );
    // commit of the exited container: its layer is in the record.
    let r = corral_image::Reference::parse("committed:1").unwrap();
    let img = store.commit(&id, &r, None).unwrap();
    store
        .tag(
            &img,
            &corral_image::Reference::parse("committed:2").unwrap(),
        )
        .unwrap();
    let c = t.create(&["cat", "/made"], CreateOptions::default());
    let mut d = T::describe(&["cat", "/made"]);
    d.root = Root::Image("committed:2".into());
    let c2 = t.engine.create(&d, &CreateOptions::default()).unwrap();
    t.ids.borrow_mut().push(c2.clone());
    t.engine.start(&c).unwrap();
    t.engine.start(&c2).unwrap();
    assert_eq!(t.wait(&c), 1);
    assert_eq!(t.wait(&c2), 0);
    assert_eq!(t.logs(&c2, &LogOptions::default()).0, "made\n");
    // The image is pinned at create: its name moved to another image, it runs the same.
    {
        let _l = store.lock_shared().unwrap();
        let base = store.resolve(IMAGE).unwrap();
        store
            .tag(
                &base,
                &corral_image::Reference::parse("committed:2").unwrap(),
            )
            .unwrap();
    }
    t.engine.start(&c2).unwrap();
    assert_eq!(t.wait(&c2), 0);
    assert_eq!(t.logs(&c2, &LogOptions::default()).0, "made\nmade\n");
    for i in [&id, &c, &c2] {
        t.no_leaks(i);
    }
}

#[test]
fn a_detached_terminal_is_held_by_the_monitor_and_logged() {
    let t = T::new();
    let id = t.create(
        &["sh", "-c", "tty; echo hi"],
        CreateOptions {
            tty: true,
            ..CreateOptions::default()
        },
    );
    t.engine.start(&id).unwrap();
    assert_eq!(t.wait(&id), 0);
    let (out, err) = t.logs(&id, &LogOptions::default());
    // One stream through the terminal, its line ends the terminal's.
    assert_eq!(out, "/dev/pts/0\r\nhi\r\n");
    assert_eq!(err, "");
    assert_eq!(t.engine.inspect(&id).unwrap()["Config"]["Tty"], true);
    t.no_leaks(&id);
}

#[test]
fn an_oom_kill_is_recorded() {
    let t = T::new();
    let mut d = T::describe(&["sh", "-c", "a=xxxxxxxx; while :; do a=$a$a; done"]);
    d.limits.memory = Some(16 << 20);
    d.limits.memory_swap = Some(16 << 20);
    let id = t.engine.create(&d, &CreateOptions::default()).unwrap();
    t.ids.borrow_mut().push(id.clone());
    t.engine.start(&id).unwrap();
    assert_eq!(t.wait(&id), 137);
    let i = t.engine.inspect(&id).unwrap();
    assert_eq!(i["State"]["OOMKilled"], true, "{i}");
    assert_eq!(i["HostConfig"]["Memory"], 16 << 20);
    t.no_leaks(&id);
}

#[test]
fn a_foreground_run_hands_its_restarts_to_a_monitor() {
    let t = T::new();
    let id = t.create(
        &["sh", "-c", "echo run; exit 1"],
        CreateOptions {
            restart: RestartPolicy::parse("on-failure:1").unwrap(),
            ..CreateOptions::default()
        },
    );
    assert_eq!(t.engine.run_attached(&id, false).unwrap(), 1);
    assert_eq!(t.wait(&id), 1);
    let st = t.engine.status(&id).unwrap();
    assert_eq!((st.status, st.restart_count), (Status::Exited, 1));
    assert_eq!(t.logs(&id, &LogOptions::default()).0, "run\nrun\n");
    t.no_leaks(&id);
}

#[test]
fn rm_f_of_a_container_between_restarts_leaves_nothing() {
    let t = T::new();
    let id = t.create(
        &["false"],
        CreateOptions {
            restart: RestartPolicy::Always,
            name: Some("flappy".into()),
            ..CreateOptions::default()
        },
    );
    t.engine.start(&id).unwrap();
    t.until("a few restarts", || {
        t.engine.status(&id).unwrap().restart_count >= 3
    });
    t.engine.remove(&id, true, false).unwrap();
    assert!(!t.store().join("containers").join(&id).exists());
    assert!(t.engine.resolve("flappy").is_err());
    t.no_leaks(&id);
}

#[test]
fn stop_of_a_container_whose_monitor_was_killed_cleans_up_after_it() {
    let t = T::new();
    let id = t.create(
        &["sleep", "1000"],
        CreateOptions {
            stop_timeout: Some(1),
            ..CreateOptions::default()
        },
    );
    let pid = t.engine.start(&id).unwrap();
    let mon = monitor_of(&t, &id);
    kill9_and_reap_nothing(mon);
    t.until("the monitor to die", || gone(mon));
    t.engine.stop(&id, None).unwrap();
    assert!(gone(pid));
    let st = t.engine.status(&id).unwrap();
    assert_eq!((st.status, st.exit_code), (Status::Exited, None));
    // The runtime container is gone with it; the record stays.
    assert!(!t.state().join(&id).exists());
    t.no_leaks(&id);
    assert!(t.store().join("containers").join(&id).is_dir());
}

#[test]
fn two_starts_at_once_make_one_container() {
    let t = T::new();
    let id = t.create(&["sleep", "1000"], CreateOptions::default());
    let starts: Vec<_> = (0..3)
        .map(|_| {
            let e = t.engine.clone();
            let id = id.clone();
            std::thread::spawn(move || e.start(&id))
        })
        .collect();
    let pids: Vec<i32> = starts
        .into_iter()
        .map(|h| h.join().unwrap().unwrap())
        .collect();
    assert!(pids.iter().all(|p| *p == pids[0]), "{pids:?}");
    let st = t.engine.status(&id).unwrap();
    assert_eq!((st.status, st.pid), (Status::Running, pids[0]));
    assert!(st.error.is_empty(), "{}", st.error);
    t.engine.remove(&id, true, false).unwrap();
    t.no_leaks(&id);
}

/// The child half of `a_foreground_terminal_is_bridged`: run in a process of its own whose
/// stdio is a pty (ignored otherwise).
#[test]
#[ignore = "run by a_foreground_terminal_is_bridged in a process on a pty"]
fn foreground_terminal_child() {
    let (Some(store), Some(state), Some(id)) = (
        std::env::var_os("ENGINE_TEST_STORE"),
        std::env::var_os("ENGINE_TEST_STATE"),
        std::env::var("ENGINE_TEST_ID").ok(),
    ) else {
        return;
    };
    let e = Engine::new(store, state, env!("CARGO_BIN_EXE_corral-engine-monitor"));
    let code = e.run_attached(&id, true).unwrap();
    std::process::exit(code);
}

#[test]
fn a_foreground_terminal_is_bridged() {
    use std::io::{Read, Write};
    use std::os::fd::OwnedFd;
    let t = T::new();
    let id = t.create(
        &["sh"],
        CreateOptions {
            tty: true,
            interactive: true,
            ..CreateOptions::default()
        },
    );
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let slave = |fd: &OwnedFd| std::process::Stdio::from(fd.try_clone().unwrap());
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "foreground_terminal_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("ENGINE_TEST_STORE", t.store())
        .env("ENGINE_TEST_STATE", t.state())
        .env("ENGINE_TEST_ID", &id)
        .stdin(slave(&pty.slave))
        .stdout(slave(&pty.slave))
        .stderr(slave(&pty.slave))
        .spawn()
        .unwrap();
    drop(pty.slave);
    let mut master = std::fs::File::from(pty.master);
    let mut writer = master.try_clone().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match master.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    });
    // Typed before the container runs: the terminal keeps it until it is read.
    writer
        .write_all(b"tty; echo hi-$((40+2)); exit 7\r")
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the foreground run did not end");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(writer);
    let text = reader.join().unwrap();
    assert_eq!(status.code(), Some(7), "{status:?}: {text:?}");
    assert!(text.contains("hi-42"), "{text:?}");
    assert!(text.contains("/dev/pts/0"), "{text:?}");
    let st = t.engine.status(&id).unwrap();
    assert_eq!((st.status, st.exit_code), (Status::Exited, Some(7)));
    assert!(t.logs(&id, &LogOptions::default()).0.contains("hi-42"));
    t.no_leaks(&id);
}

/// An HTTP GET of `/` at `addr`: the whole response.
fn http_get(addr: std::net::SocketAddr) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    if out.is_empty() {
        return Err(std::io::Error::other("empty response"));
    }
    Ok(out)
}

#[test]
fn a_published_port_answers_and_is_shown_while_the_container_runs() {
    let t = T::new();
    let ns = testkit::Netns::new("engine");
    let mut d = T::describe(&[
        "sh",
        "-c",
        "mkdir -p /www; echo hello-engine > /www/index.html; exec httpd -f -p 80 -h /www",
    ]);
    d.network.mode = NetworkMode::Private;
    d.network.networks = vec!["bridge".into()];
    d.network.ports = vec![runtime::net::PortMapping {
        host_ip: None,
        host_port: 18080,
        container_port: 80,
        protocol: runtime::net::Protocol::Tcp,
    }];
    let id = t.engine.create(&d, &CreateOptions::default()).unwrap();
    t.ids.borrow_mut().push(id.clone());
    // The monitor (and the CNI plugins it runs) in the test's namespace.
    let page = ns.run(|| {
        t.engine.start(&id).unwrap();
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            match http_get("127.0.0.1:18080".parse().unwrap()) {
                Ok(p) => break p,
                Err(e) if Instant::now() > end => panic!("no answer: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    });
    assert!(page.contains("hello-engine"), "{page}");
    let ps = t.engine.list(false).unwrap();
    assert_eq!(ps[0].ports, "0.0.0.0:18080->80/tcp");
    let i = t.engine.inspect(&id).unwrap();
    assert_eq!(
        i["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"],
        "18080"
    );
    let ip = i["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(ip.parse::<std::net::Ipv4Addr>().is_ok(), "{i}");
    ns.run(|| t.engine.remove(&id, true, false).unwrap());
    let gone = ns.run(|| http_get("127.0.0.1:18080".parse().unwrap()).is_err());
    assert!(gone, "the port still answers after rm -f");
    t.no_leaks(&id);
}

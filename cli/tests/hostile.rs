//! Hostile conditions: commands racing on one id, a full state root, a cgroup that cannot be
//! made, a root filesystem that goes away while the container is made, a memory limit too
//! small to live in. Each must end, in bounded time, with a clean result or a clear one-line
//! error, and leave nothing half-made.

mod common;

use std::ffi::CString;
use std::fs;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{assert_fails, cli, cli_ok, reap, Env};
use serde_json::{json, Value};

/// Runs `cmd` with stdout and stderr in files; fails the test if it runs longer than `limit`
/// (killing it first).
fn bounded(cmd: &mut Command, limit: Duration, what: &str) -> Output {
    // Containers made by `create` are orphaned to this process: it reaps them.
    // SAFETY: plain prctl.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let mut out = tempfile::tempfile().unwrap();
    let mut err = tempfile::tempfile().unwrap();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap())
        .spawn()
        .expect("spawn corral");
    let t0 = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {limit:?} (hang?)");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let read = |f: &mut fs::File| {
        let mut v = Vec::new();
        f.rewind().unwrap();
        f.read_to_end(&mut v).unwrap();
        v
    };
    Output {
        status,
        stdout: read(&mut out),
        stderr: read(&mut err),
    }
}

fn corral_bounded(env: &Env, args: &[&str], limit: Duration) -> Output {
    bounded(
        env.command().args(args),
        limit,
        &format!("corral {}", args.join(" ")),
    )
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

use testkit::soak::Rng;

#[test]
fn eight_processes_racing_on_one_id_all_end_cleanly() {
    let env = Env::new("race8");
    env.rootfs
        .write_config(&env.spec(&["/probe", "sleep", "inf"]));
    let bundle = env.bundle().to_string_lossy().into_owned();
    for round in 0..3u64 {
        let first = env.state_root().join("first.pid");
        let first = first.to_string_lossy().into_owned();
        let out = corral_bounded(
            &env,
            &["run", "-d", "-b", &bundle, "--pid-file", &first, &env.id],
            Duration::from_secs(30),
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "round {round}: {}",
            stderr(&out)
        );
        let mut pids = vec![fs::read_to_string(&first).unwrap()];

        // Each of 8 workers runs the commands one after another, in a shuffled order, 4 times;
        // one in three rounds also makes the container again (`run -d`, which fails while it
        // exists) so that deletes and creates race too.
        let results = std::sync::Mutex::new(Vec::<(String, Option<i32>, String)>::new());
        let made = std::sync::Mutex::new(Vec::<String>::new());
        std::thread::scope(|s| {
            for w in 0..8u64 {
                let (env, results, made, bundle) = (&env, &results, &made, &bundle);
                s.spawn(move || {
                    let mut rng = Rng::new(Rng::clock_seed(w + 1 + round * 8));
                    let pid_file = env.state_root().join(format!("w{w}.pid"));
                    let pid_arg = pid_file.to_string_lossy().into_owned();
                    for _ in 0..4 {
                        let mut cmds: Vec<Vec<&str>> = vec![
                            vec!["kill", &env.id, "CONT"],
                            vec!["state", &env.id],
                            vec!["exec", &env.id, "/bin/true"],
                            vec!["exec", &env.id, "/probe", "exit", "3"],
                            vec!["delete", "--force", &env.id],
                        ];
                        if rng.next_u64() % 3 < 1 {
                            cmds.push(vec![
                                "run",
                                "-d",
                                "-b",
                                bundle,
                                "--pid-file",
                                &pid_arg,
                                &env.id,
                            ]);
                        }
                        rng.shuffle(&mut cmds);
                        for c in cmds {
                            let out = corral_bounded(env, &c, Duration::from_secs(60));
                            if c[0] == "run" && out.status.code() == Some(0) {
                                made.lock()
                                    .unwrap()
                                    .push(fs::read_to_string(&pid_file).unwrap());
                            }
                            let what = if c[0] == "exec" && c.len() > 3 {
                                "exec3".to_string()
                            } else {
                                c[0].to_string()
                            };
                            results
                                .lock()
                                .unwrap()
                                .push((what, out.status.code(), stderr(&out)));
                        }
                    }
                });
            }
        });
        pids.extend(made.into_inner().unwrap());
        // Whatever the last command was, the container goes now.
        let out = corral_bounded(
            &env,
            &["delete", "--force", &env.id],
            Duration::from_secs(30),
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        for p in &pids {
            reap(p.trim().parse().unwrap());
        }

        // Every command succeeded, or failed with one clear line naming the container.
        let results = results.into_inner().unwrap();
        let mut seen = std::collections::BTreeSet::new();
        let mut codes = std::collections::BTreeMap::<String, usize>::new();
        for (cmd, code, err) in &results {
            *codes.entry(format!("{cmd} {code:?}")).or_default() += 1;
            let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
            match (cmd.as_str(), code) {
                ("exec3", Some(3)) => assert!(lines.is_empty(), "{cmd}: stderr {err:?}"),
                (_, Some(0)) if cmd != "exec3" => {
                    assert!(lines.is_empty(), "{cmd}: exit 0 but stderr {err:?}")
                }
                (_, Some(1)) => {
                    assert_eq!(lines.len(), 1, "{cmd}: want one line, got {err:?}");
                    assert!(lines[0].contains(&env.id), "{cmd}: {err:?}");
                    seen.insert(format!("{cmd}: {}", lines[0].replace(&env.id, "ID")));
                }
                // An exec'd process killed by a concurrent `delete --force` (128 + SIGKILL).
                ("exec" | "exec3", Some(137)) => {}
                _ => panic!("{cmd}: exit {code:?}, stderr {err:?}"),
            }
        }
        eprintln!("round {round}: exits {codes:?}; errors seen: {seen:#?}");
        // A delete --force always succeeds: the container, or nothing, was deleted.
        assert!(
            results
                .iter()
                .all(|(c, code, _)| c != "delete" || *code == Some(0)),
            "{codes:?}"
        );
        assert_fails(&cli(&env, &["state", &env.id]), 1, &["does not exist"]);
        testkit::assert_no_leaks(&env.id, Some(env.state_root()));
    }
}

/// A tmpfs mounted for a test, unmounted (lazily) on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(options: &str) -> Tmpfs {
        // Not named after the container: it is the test's, not the container's.
        let dir = tempfile::Builder::new()
            .prefix("corral-tmpfs-")
            .tempdir()
            .unwrap();
        nix::mount::mount(
            Some("tmpfs"),
            dir.path(),
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some(options),
        )
        .unwrap_or_else(|e| panic!("mount tmpfs at {}: {e}", dir.path().display()));
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let p = CString::new(self.dir.path().as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid path.
        unsafe { libc::umount2(p.as_ptr(), libc::MNT_DETACH) };
    }
}

/// Fills the file system at `dir` with one file, then frees `free` bytes of it again.
fn fill(dir: &Path, free: u64) {
    let path = dir.join("filler");
    let mut f = fs::File::create(&path).unwrap();
    let chunk = vec![0xa5u8; 4096];
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
    let len = f.metadata().unwrap().len();
    f.set_len(len.saturating_sub(free)).unwrap();
}

/// Files and directories under `dir`, but the filler.
fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap().flatten() {
        if e.file_name() != "filler" {
            out.push(e.path());
        }
    }
    out
}

#[test]
fn a_full_state_root_fails_with_enospc_and_leaves_nothing() {
    let env = Env::new("fullroot");
    env.rootfs.write_config(&env.spec(&["/bin/true"]));
    let bundle = env.bundle().to_string_lossy().into_owned();
    let fs_ = Tmpfs::mount("size=64k,mode=0700");
    let root = fs_.path().to_string_lossy().into_owned();
    let run = |args: &[&str]| {
        let mut all = vec!["--root", &root];
        all.extend_from_slice(args);
        bounded(
            Command::new(common::corral()).args(&all),
            Duration::from_secs(30),
            &format!("corral {all:?}"),
        )
    };

    // Full to the last page: the first write fails, naming the path and the errno.
    fill(fs_.path(), 0);
    for cmd in [
        vec!["run", "-b", &bundle, &env.id],
        vec!["create", "-b", &bundle, &env.id],
    ] {
        let out = run(&cmd);
        assert_fails(&out, 1, &[&root, "No space left on device"]);
        eprintln!("full, {}: {}", cmd[0], stderr(&out).trim());
        assert_eq!(entries(fs_.path()), Vec::<PathBuf>::new(), "{cmd:?}");
        testkit::assert_no_leaks(&env.id, Some(fs_.path()));
    }

    // A few pages free: create gets further each time (config, fifo, state), and fails or
    // succeeds; either way `delete` or the failure leaves nothing.
    let mut outcomes = Vec::new();
    for pages in 1..=6u64 {
        fill(fs_.path(), pages * 4096);
        let out = run(&["run", "-b", &bundle, &env.id]);
        match out.status.code() {
            Some(0) => outcomes.push(format!("{pages} pages free: ran")),
            _ => {
                assert_fails(&out, 1, &[&root, "No space left on device"]);
                outcomes.push(format!(
                    "{pages} pages free: {}",
                    stderr(&out).trim().replace(&root, "ROOT")
                ));
            }
        }
        assert_eq!(entries(fs_.path()), Vec::<PathBuf>::new(), "{pages} pages");
        testkit::assert_no_leaks(&env.id, Some(fs_.path()));
    }
    eprintln!("{outcomes:#?}");
    assert!(outcomes.last().unwrap().ends_with("ran"), "{outcomes:#?}");

    // No inode left: even the state dir cannot be made.
    drop(fs_);
    let fs_ = Tmpfs::mount("size=1m,nr_inodes=4,mode=0700");
    let root = fs_.path().to_string_lossy().into_owned();
    for i in 0.. {
        if fs::create_dir(fs_.path().join(format!("d{i}"))).is_err() {
            break;
        }
    }
    let out = bounded(
        Command::new(common::corral()).args(["--root", &root, "run", "-b", &bundle, &env.id]),
        Duration::from_secs(30),
        "corral run",
    );
    assert_fails(&out, 1, &[&root, "No space left on device"]);
    eprintln!("no inodes: {}", stderr(&out).trim());
    testkit::assert_no_leaks(&env.id, Some(fs_.path()));
}

/// Directories with `name` anywhere in the cgroup hierarchies (at depth 1: where an absolute
/// cgroupsPath starts).
fn cgroup_dirs_named(name: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for h in fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let p = h.path().join(name);
        if fs::symlink_metadata(&p)
            .map(|m| m.is_dir())
            .unwrap_or(false)
        {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_cgroup_that_cannot_be_made_fails_by_path_and_leaves_nothing() {
    let env = Env::new("cgfail");
    let bundle = env.bundle().to_string_lossy().into_owned();
    let create = |spec: &Value| {
        env.rootfs.write_config(spec);
        corral_bounded(
            &env,
            &["create", "-b", &bundle, &env.id],
            Duration::from_secs(30),
        )
    };

    // A cgroup2 parent that allows no descendants: the cgroup2 hierarchy (made last) refuses
    // the container's directory (EAGAIN) after the v1 hierarchies made theirs, parent and
    // leaf, which must go again; the parent made here stays.
    let parent = env.id.replacen("corral-t-", "corral-p-", 1);
    let v2_parent = Path::new("/sys/fs/cgroup/unified").join(&parent);
    fs::create_dir(&v2_parent).unwrap();
    struct Rmdir(PathBuf);
    impl Drop for Rmdir {
        fn drop(&mut self) {
            let _ = fs::remove_dir(&self.0);
        }
    }
    let _rm = Rmdir(v2_parent.clone());
    fs::write(v2_parent.join("cgroup.max.descendants"), "0").unwrap();
    let mut spec = env.spec(&["/bin/true"]);
    spec["linux"]["cgroupsPath"] = json!(format!("/{parent}/{}", env.id));
    let out = create(&spec);
    assert_fails(
        &out,
        1,
        &[
            &format!("{}/{}", v2_parent.display(), env.id),
            "Resource temporarily unavailable",
        ],
    );
    eprintln!("{}", stderr(&out).trim());
    assert_eq!(cgroup_dirs_named(&parent), vec![v2_parent.clone()]);
    testkit::assert_no_leaks(&env.id, Some(env.state_root()));

    // A path through a file that exists in the cgroup2 hierarchy only (the last one made):
    // the v1 hierarchies before it got their directories, which must go again.
    let file = "cgroup.max.depth";
    assert!(Path::new("/sys/fs/cgroup/unified").join(file).is_file());
    let before = cgroup_dirs_named(file);
    spec["linux"]["cgroupsPath"] = json!(format!("/{file}/{}", env.id));
    let out = create(&spec);
    assert_fails(
        &out,
        1,
        &[
            &format!("/sys/fs/cgroup/unified/{file}/{}", env.id),
            "Not a directory",
        ],
    );
    eprintln!("{}", stderr(&out).trim());
    assert_eq!(cgroup_dirs_named(file), before);
    testkit::assert_no_leaks(&env.id, Some(env.state_root()));
}

#[test]
fn a_rootfs_renamed_away_by_a_create_hook_fails_or_runs_cleanly() {
    let env = Env::new("rootgone");
    let rootfs = env.rootfs.rootfs().to_path_buf();
    let gone = env.bundle().join("rootfs.gone");
    let bundle = env.bundle().to_string_lossy().into_owned();
    let mut outcomes = Vec::new();
    for hook in ["prestart", "createRuntime"] {
        for layer in [false, true] {
            let mut spec = env.spec(&["/probe", "exit", "7"]);
            spec["hooks"] = json!({hook: [{
                "path": "/bin/mv",
                "args": ["mv", rootfs, gone],
            }]});
            env.rootfs.write_config(&spec);
            let layer_arg = rootfs.to_string_lossy().into_owned();
            let mut args = vec!["run", "-b", &bundle];
            if layer {
                args.extend(["--layer", &layer_arg]);
            }
            args.push(&env.id);
            let out = corral_bounded(&env, &args, Duration::from_secs(30));
            match out.status.code() {
                // The child holds its root already: it runs from the renamed directory.
                Some(7) => outcomes.push(format!("{hook} layer={layer}: ran")),
                _ => {
                    assert_fails(&out, 1, &[&env.id]);
                    outcomes.push(format!("{hook} layer={layer}: {}", stderr(&out).trim()));
                }
            }
            testkit::assert_no_leaks(&env.id, Some(env.state_root()));
            if gone.exists() {
                fs::rename(&gone, &rootfs).unwrap();
            }
        }
    }
    eprintln!("{outcomes:#?}");
}

#[test]
fn a_rootfs_removed_while_create_runs_fails_or_runs_cleanly() {
    let env = Env::new("rootrace");
    env.rootfs.write_config(&env.spec(&["/probe", "exit", "7"]));
    let rootfs = env.rootfs.rootfs().to_path_buf();
    let gone = env.bundle().join("rootfs.gone");
    let bundle = env.bundle().to_string_lossy().into_owned();
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for i in 0..40u64 {
        let mut child = env
            .command()
            .args(["run", "-b", &bundle, &env.id])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Somewhere in create (which takes some tens of ms): between 0 and 60 ms in.
        std::thread::sleep(Duration::from_micros((i * 7919) % 60_000));
        let moved = fs::rename(&rootfs, &gone).is_ok();
        let t0 = Instant::now();
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "corral run hangs with its rootfs gone"
            );
            std::thread::sleep(Duration::from_millis(5));
        };
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        let key = match status.code() {
            Some(7) => "ran".to_string(),
            Some(c @ 1) => {
                let lines: Vec<&str> = err.lines().collect();
                assert_eq!(lines.len(), 1, "{err}");
                assert!(lines[0].contains(&env.id), "{err}");
                format!("{c}: {}", lines[0].replace(&env.id, "ID"))
            }
            other => panic!("exit {other:?}: {err}"),
        };
        *outcomes.entry(key).or_default() += 1;
        testkit::assert_no_leaks(&env.id, Some(env.state_root()));
        if moved {
            fs::rename(&gone, &rootfs).unwrap();
        }
    }
    eprintln!("{outcomes:#?}");
}

#[test]
fn a_container_under_one_mib_is_oom_killed_cleanly() {
    let env = Env::new("oom1m");
    let mut spec = env.spec(&["/probe", "hog", "64"]);
    spec["linux"]["resources"]["memory"] = json!({"limit": 1048576, "swap": 1048576});
    env.rootfs.write_config(&spec);
    let bundle = env.bundle().to_string_lossy().into_owned();
    let out = corral_bounded(
        &env,
        &["create", "-b", &bundle, &env.id],
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let st: Value = serde_json::from_str(&cli_ok(&env, &["state", &env.id])).unwrap();
    let pid = st["pid"].as_i64().unwrap();
    let events_out = tempfile::NamedTempFile::new().unwrap();
    let mut ev = env
        .command()
        .args(["events", "--interval", "1h", &env.id])
        .stdout(events_out.reopen().unwrap())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let out = corral_bounded(&env, &["start", &env.id], Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let t0 = Instant::now();
    let st = loop {
        if let Some(st) = ev.try_wait().unwrap() {
            break st;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "corral events did not end after the OOM kill"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(st.success());
    let text = fs::read_to_string(events_out.path()).unwrap();
    assert!(
        text.lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .any(|l| l["type"] == "oom" && l["id"] == json!(env.id)),
        "{text}"
    );
    let mut status = 0;
    // SAFETY: reaping the init orphaned to this process.
    unsafe { libc::waitpid(pid as i32, &mut status, 0) };
    assert!(
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL,
        "status {status:#x}"
    );
    cli_ok(&env, &["delete", &env.id]);

    // The same through `run`: 137, in bounded time.
    let out = corral_bounded(
        &env,
        &["run", "-b", &bundle, &env.id],
        Duration::from_secs(30),
    );
    common::assert_exit(&out, 137);
}

#[test]
fn a_limit_too_small_to_start_under_fails_create_clearly() {
    // The process is in its cgroup from its first instruction, so its own set-up (page
    // tables, mounts, the new namespaces' structures) is charged: under a few pages the OOM
    // killer ends it before it reaches its start gate. `create` must say so, not hang and not
    // only report a SIGKILL out of nowhere.
    let env = Env::new("oomtiny");
    let bundle = env.bundle().to_string_lossy().into_owned();
    for limit in [4096u64, 65536] {
        let mut spec = env.spec(&["/probe", "exit", "0"]);
        spec["linux"]["resources"]["memory"] = json!({"limit": limit, "swap": limit});
        env.rootfs.write_config(&spec);
        for cmd in ["run", "create"] {
            let out = corral_bounded(
                &env,
                &[cmd, "-b", &bundle, &env.id],
                Duration::from_secs(30),
            );
            assert_fails(
                &out,
                1,
                &[&env.id, "out of memory", "linux.resources.memory.limit"],
            );
            eprintln!("{limit} {cmd}: {}", stderr(&out).trim());
            testkit::assert_no_leaks(&env.id, Some(env.state_root()));
        }
    }
}

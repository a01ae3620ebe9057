//! docker's command line against real containers (a busybox image, `--network none`):
//! `run IMAGE CMD` and its exit codes (the container's, 125, 126, 127), detached containers
//! and their exit codes in `ps -a`, `inspect` and `wait`, `exec -it` through a real pty,
//! `rm -f`, `--rm -d`, `cp` both ways (and a hostile image's symlinks), rename, top, stats,
//! names on runc's verbs, and a docker user's session end to end. Every test has its own
//! store and state root and removes every container it made (a Drop guard), leaving no
//! monitor.

mod common;

use common::bounded;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::TestRootfs;

/// A private store and state root with the busybox root imported as `bb`.
struct Dk {
    dir: tempfile::TempDir,
    rootfs: TestRootfs,
    /// A network namespace of the test's own that every corral runs in (for networks).
    ns: Option<testkit::Netns>,
}

impl Dk {
    fn new() -> Dk {
        Dk::with_ns(None)
    }

    /// In a network namespace of its own: containers may then use the default network.
    fn in_netns() -> Dk {
        testkit::require_root();
        Dk::with_ns(Some(testkit::Netns::new("dk")))
    }

    fn with_ns(ns: Option<testkit::Netns>) -> Dk {
        testkit::require_root();
        let dir = tempfile::Builder::new()
            .prefix("corral-docker-")
            .tempdir()
            .unwrap();
        let rootfs = TestRootfs::new();
        fs::write(
            rootfs.rootfs().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nweb:x:1000:1001::/:/bin/sh\n",
        )
        .unwrap();
        let d = Dk { dir, rootfs, ns };
        let r = d.rootfs.rootfs().to_str().unwrap().to_string();
        d.ok(&["image", "import", &r, "bb"]);
        d
    }

    fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn command(&self) -> Command {
        let mut c = match &self.ns {
            Some(ns) => ns.command(common::corral()),
            None => Command::new(common::corral()),
        };
        c.arg("--store")
            .arg(self.store())
            .arg("--root")
            .arg(self.state())
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut c = self.command();
        c.args(args);
        bounded(c, Duration::from_secs(120))
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "corral {args:?}: stdout {} stderr {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The exit code, stdout and stderr.
    fn code(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.run(args);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn inspect(&self, name: &str) -> Value {
        let v: Value = serde_json::from_str(&self.ok(&["inspect", name])).unwrap();
        v[0].clone()
    }

    /// Waits (bounded) until `f` holds.
    fn until(&self, what: &str, f: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !f() {
            assert!(Instant::now() < deadline, "{what}: not within 60s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The monitor processes of this store still alive.
    fn monitors(&self) -> Vec<String> {
        let store = self.store().to_string_lossy().into_owned();
        let mut v = Vec::new();
        for e in fs::read_dir("/proc").unwrap().flatten() {
            let Ok(cmd) = fs::read(e.path().join("cmdline")) else {
                continue;
            };
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            let zombie = fs::read_to_string(e.path().join("stat"))
                .map(|s| {
                    s.rsplit(')')
                        .next()
                        .unwrap_or("")
                        .trim_start()
                        .starts_with('Z')
                })
                .unwrap_or(true);
            if cmd.contains("_monitor") && cmd.contains(&store) && !zombie {
                v.push(cmd);
            }
        }
        v
    }
}

impl Drop for Dk {
    fn drop(&mut self) {
        // Every container this store has, removed.
        let ids = self.run(&["ps", "-aq", "--no-trunc"]);
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            let _ = self.run(&["rm", "-f", id]);
        }
        let left = String::from_utf8_lossy(&self.run(&["ps", "-aq"]).stdout).into_owned();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.monitors().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let monitors = self.monitors();
        let states: Vec<String> = common::names(&self.state())
            .into_iter()
            .filter(|n| !n.starts_with('.'))
            .collect();
        let dir = self.dir.path().to_string_lossy().into_owned();
        let mounts: Vec<String> = fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(&dir))
            .map(String::from)
            .collect();
        for m in &mounts {
            if let Some(mp) = m.split(' ').nth(4) {
                let c = std::ffi::CString::new(mp).unwrap();
                // SAFETY: a valid C string.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
        if !std::thread::panicking() {
            assert!(left.trim().is_empty(), "containers left: {left}");
            assert!(monitors.is_empty(), "monitors left: {monitors:?}");
            assert!(states.is_empty(), "state dirs left: {states:?}");
            assert!(mounts.is_empty(), "mounts left: {mounts:#?}");
        }
    }
}

fn name(prefix: &str) -> String {
    testkit::unique_id(prefix)
}

#[test]
fn run_image_command_runs_the_command_with_dockers_exit_codes() {
    let d = Dk::new();
    // The command after the image is the command, never a name.
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "bb",
            "echo",
            "hello",
            "-n"
        ]),
        "hello -n\n"
    );
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "bb",
            "--",
            "echo",
            "after --"
        ]),
        "after --\n"
    );
    // The container's own status.
    let (c, _, _) = d.code(&[
        "run",
        "--rm",
        "--network",
        "none",
        "bb",
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(c, 3);
    // 127: not found; 126: cannot be invoked (not executable, a directory).
    let (c, _, e) = d.code(&["run", "--rm", "--network", "none", "bb", "no-such-program"]);
    assert_eq!(c, 127, "{e}");
    assert!(e.contains("not found"), "{e}");
    let (c, _, e) = d.code(&["run", "--rm", "--network", "none", "bb", "/etc/passwd"]);
    assert_eq!(c, 126, "{e}");
    let (c, _, e) = d.code(&["run", "--rm", "--network", "none", "bb", "/tmp"]);
    assert_eq!(c, 126, "{e}");
    // 125: corral's own failures (an image not in the store, a bad flag).
    let (c, _, e) = d.code(&[
        "run",
        "--rm",
        "--pull",
        "never",
        "--network",
        "none",
        "no-such-image",
        "true",
    ]);
    assert_eq!(c, 125, "{e}");
    assert!(
        e.contains("Unable to find image 'no-such-image' locally"),
        "{e}"
    );
    assert!(!e.contains("--bundle"), "{e}");
    let (c, _, e) = d.code(&["run", "--no-such-flag", "bb", "true"]);
    assert_eq!(c, 125, "{e}");
    // In a bundle's directory, the hint of runc's form.
    let bundle = d.dir.path().join("bundle");
    fs::create_dir(&bundle).unwrap();
    fs::write(bundle.join("config.json"), "{}").unwrap();
    let out = d
        .command()
        .current_dir(&bundle)
        .args(["run", "--pull", "never", "mybox"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("Unable to find image 'mybox' locally")
            && e.contains("corral run --bundle . ID"),
        "{e}"
    );
    // runc's verbs keep exiting 1 on corral's errors.
    let (c, _, _) = d.code(&["state", "no-such-container"]);
    assert_eq!(c, 1);
    // The legacy --image form: every positional is the command.
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--image",
            "bb",
            "echo",
            "legacy"
        ]),
        "legacy\n"
    );
}

#[test]
fn a_detached_containers_exit_code_in_ps_inspect_and_wait() {
    let d = Dk::new();
    let n = name("exit3");
    let id = d
        .ok(&[
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            &n,
            "bb",
            "sh",
            "-c",
            "echo out; exit 3",
        ])
        .trim()
        .to_string();
    assert_eq!(id.len(), 64, "{id}");
    assert_eq!(d.ok(&["wait", &n]).trim(), "3");
    let status = d.ok(&[
        "ps",
        "-a",
        "--filter",
        &format!("name={n}"),
        "--format",
        "{{.Status}}",
    ]);
    assert!(status.starts_with("Exited (3) "), "{status}");
    // Not running: not in `ps` without -a.
    assert!(!d.ok(&["ps"]).contains(&n));
    let i = d.inspect(&n);
    assert_eq!(i["Id"], id.as_str());
    assert_eq!(i["Name"], format!("/{n}"));
    assert_eq!(i["State"]["Status"], "exited");
    assert_eq!(i["State"]["ExitCode"], 3);
    assert_eq!(
        d.ok(&["inspect", "--format", "{{.State.ExitCode}}", &id[..12]]),
        "3\n"
    );
    assert_eq!(d.ok(&["logs", &n]), "out\n");
    // ps's columns, quiet and untruncated ids, json.
    let table = d.ok(&["ps", "-a"]);
    let head = table.lines().next().unwrap();
    for col in [
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ] {
        assert!(head.contains(col), "{head}");
    }
    assert!(table.contains(&id[..12]) && !table.contains(&id), "{table}");
    assert_eq!(d.ok(&["ps", "-aq"]).trim(), &id[..12]);
    assert_eq!(d.ok(&["ps", "-aq", "--no-trunc"]).trim(), id);
    let j: Value = serde_json::from_str(d.ok(&["ps", "-a", "--format", "json"]).trim()).unwrap();
    assert_eq!(j["Names"], n.as_str());
    assert_eq!(j["State"], "exited");
    assert_eq!(
        d.ok(&[
            "ps",
            "-a",
            "--filter",
            "status=exited",
            "--format",
            "{{.Names}}"
        ])
        .trim(),
        n
    );
    assert_eq!(d.ok(&["ps", "-a", "--filter", "status=running", "-q"]), "");
    // Images too, in docker's shape.
    let img: Value = serde_json::from_str(&d.ok(&["inspect", "--type", "image", "bb"])).unwrap();
    assert_eq!(img[0]["RepoTags"][0], "bb:latest");
    assert_eq!(img[0]["RootFS"]["Type"], "layers");
    assert!(d
        .ok(&["inspect", "--format", "{{.Id}}", "bb"])
        .starts_with("sha256:"));
    assert_eq!(d.code(&["inspect", "--type", "container", "bb"]).0, 125);
    d.ok(&["rm", &n]);
    assert_eq!(d.ok(&["ps", "-aq"]), "");
}

/// Runs `corral args` on the slave of a new pty; returns its status and what the master read.
fn on_a_pty(d: &Dk, args: &[&str]) -> (std::process::ExitStatus, String) {
    use std::io::Read;
    use std::os::fd::OwnedFd;
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let slave = |fd: &OwnedFd| Stdio::from(fd.try_clone().unwrap());
    let mut child = d
        .command()
        .args(args)
        .stdin(slave(&pty.slave))
        .stdout(slave(&pty.slave))
        .stderr(slave(&pty.slave))
        .spawn()
        .unwrap();
    drop(pty.slave);
    let reader = std::thread::spawn(move || {
        let mut f = std::fs::File::from(pty.master);
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match f.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("corral {args:?} on a pty did not end");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status, reader.join().unwrap())
}

#[test]
fn exec_it_runs_on_a_pty_of_its_own_and_gives_the_exit_status() {
    let d = Dk::new();
    let n = name("execit");
    d.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        &n,
        "bb",
        "sleep",
        "1000",
    ]);
    let (status, text) = on_a_pty(
        &d,
        &[
            "exec",
            "-it",
            &n,
            "sh",
            "-c",
            "tty; echo hi-from-the-tty; exit 3",
        ],
    );
    assert_eq!(status.code(), Some(3), "{text:?}");
    assert!(text.contains("/dev/pts/"), "{text:?}");
    assert!(text.contains("hi-from-the-tty"), "{text:?}");
    // run -it: the container's own terminal, bridged to this one.
    let (status, text) = on_a_pty(
        &d,
        &[
            "run",
            "--rm",
            "-it",
            "--network",
            "none",
            "bb",
            "sh",
            "-c",
            "tty; echo run-on-a-tty; exit 5",
        ],
    );
    assert_eq!(status.code(), Some(5), "{text:?}");
    assert!(
        text.contains("/dev/pts/") && text.contains("run-on-a-tty"),
        "{text:?}"
    );
    // Without -t: no terminal.
    let (c, out, _) = d.code(&["exec", &n, "sh", "-c", "tty; exit 4"]);
    assert_eq!(c, 4);
    assert!(out.contains("not a tty"), "{out}");
    // exec's own failures in a docker container: 127 and 126.
    assert_eq!(d.code(&["exec", &n, "no-such-program"]).0, 127);
    assert_eq!(d.code(&["exec", &n, "/etc/passwd"]).0, 126);
    // -u by name (the container's /etc/passwd), and docker's stdin: none without -i.
    assert_eq!(d.ok(&["exec", "-u", "web", &n, "id", "-u"]), "1000\n");
    assert_eq!(d.ok(&["exec", "-u", "web", &n, "id", "-g"]), "1001\n");
    assert_eq!(d.code(&["exec", "-u", "nosuchuser", &n, "true"]).0, 125);
    let mut c = d.command();
    c.args(["exec", &n, "cat"]).stdin(Stdio::piped());
    let out = bounded(c, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0));
    // A hostile image's /etc/passwd leading to a host file: read inside the container.
    let host = PathBuf::from(format!("/tmp/{}", name("corral-users-attack")));
    fs::create_dir(&host).unwrap();
    let _cleanup = Remove(host.clone());
    fs::write(host.join("passwd"), "evil:x:4242:4242::/:/bin/sh\n").unwrap();
    d.ok(&[
        "exec",
        &n,
        "sh",
        "-c",
        &format!("ln -sf {}/passwd /etc/passwd", host.display()),
    ]);
    let (c, out, e) = d.code(&["exec", "-u", "evil", &n, "id", "-u"]);
    assert_eq!(c, 125, "{out} {e}");
    assert!(!out.contains("4242"), "{out}");
    // -w and -e.
    assert_eq!(
        d.ok(&[
            "exec",
            "-w",
            "/etc",
            "-e",
            "X=1",
            &n,
            "sh",
            "-c",
            "echo $PWD $X"
        ]),
        "/etc 1\n"
    );
    d.ok(&["rm", "-f", &n]);
}

#[test]
fn rm_refuses_a_running_container_and_rm_f_kills_and_removes_it() {
    let d = Dk::new();
    let n = name("rmf");
    d.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        &n,
        "bb",
        "sleep",
        "1000",
    ]);
    let pid = d.inspect(&n)["State"]["Pid"].as_i64().unwrap();
    assert!(pid > 0);
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    let (c, _, e) = d.code(&["rm", &n]);
    assert_eq!(c, 125, "{e}");
    assert!(e.to_lowercase().contains("running"), "{e}");
    assert_eq!(d.ok(&["rm", "-f", &n]).trim(), n);
    assert_eq!(d.ok(&["ps", "-aq"]), "");
    d.until("the container's process gone", || {
        fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.contains(") Z "))
            .unwrap_or(true)
    });
    let (c, _, e) = d.code(&["inspect", &n]);
    assert_eq!(c, 125);
    assert!(e.contains("No such object"), "{e}");
}

#[test]
fn rm_d_removes_the_container_when_it_exits() {
    let d = Dk::new();
    let n = name("rmd");
    d.ok(&[
        "run",
        "--rm",
        "-d",
        "--network",
        "none",
        "--name",
        &n,
        "bb",
        "sh",
        "-c",
        "sleep 0.5; exit 4",
    ]);
    // wait gets its exit code though it removes itself.
    assert_eq!(d.ok(&["wait", &n]).trim(), "4");
    d.until("the --rm -d container removed", || {
        !d.ok(&["ps", "-a", "--format", "{{.Names}}"]).contains(&n)
    });
    // The name is free again.
    d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--name",
        &n,
        "bb",
        "true",
    ]);
}

#[test]
fn cp_copies_in_and_out_and_a_hostile_images_symlinks_stay_inside() {
    let d = Dk::new();
    let n = name("cp");
    d.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        &n,
        "bb",
        "sleep",
        "1000",
    ]);
    // In and out, a file and a directory.
    let src = d.dir.path().join("in.txt");
    fs::write(&src, "from the host\n").unwrap();
    d.ok(&["cp", src.to_str().unwrap(), &format!("{n}:/tmp/in.txt")]);
    assert_eq!(d.ok(&["exec", &n, "cat", "/tmp/in.txt"]), "from the host\n");
    d.ok(&[
        "exec",
        &n,
        "sh",
        "-c",
        "mkdir -p /data/sub && echo deep > /data/sub/f && ln -s f /data/sub/l",
    ]);
    let out = d.dir.path().join("out");
    fs::create_dir(&out).unwrap();
    d.ok(&["cp", &format!("{n}:/data"), out.to_str().unwrap()]);
    assert_eq!(
        fs::read_to_string(out.join("data/sub/f")).unwrap(),
        "deep\n"
    );
    assert_eq!(
        fs::read_link(out.join("data/sub/l")).unwrap(),
        Path::new("f")
    );
    let dir_in = d.dir.path().join("tree");
    fs::create_dir_all(dir_in.join("a")).unwrap();
    fs::write(dir_in.join("a/b"), "bee\n").unwrap();
    d.ok(&["cp", dir_in.to_str().unwrap(), &format!("{n}:/tmp/")]);
    assert_eq!(d.ok(&["exec", &n, "cat", "/tmp/tree/a/b"]), "bee\n");

    // The attack: the container's symlinks lead to `/` and above; a host dir with a secret
    // and a target dir of the same path in the container.
    let host = PathBuf::from(format!("/tmp/{}", name("corral-cp-attack")));
    fs::create_dir(&host).unwrap();
    let _cleanup = Remove(host.clone());
    fs::write(host.join("secret"), "host secret\n").unwrap();
    let h = host.to_str().unwrap();
    d.ok(&[
        "exec",
        &n,
        "sh",
        "-c",
        &format!(
            "ln -s / /evil && ln -s ../../../../../../.. /up && mkdir -p {h} && \
             echo container secret > {h}/secret && ln -s {h} /hostdir && ln -s {h}/secret /leak"
        ),
    ]);
    // Reading through them gives the container's files, never the host's.
    for path in ["/evil", "/up", "/hostdir/..", "/up/up/evil"] {
        let from = format!("{n}:{path}{h}/secret");
        let got = d.dir.path().join(name("got"));
        let (c, _, e) = d.code(&["cp", &from, got.to_str().unwrap()]);
        if c == 0 {
            assert_eq!(
                fs::read_to_string(&got).unwrap(),
                "container secret\n",
                "{from}"
            );
        } else {
            assert!(!e.contains("host secret"), "{e}");
        }
    }
    let got = d.dir.path().join("leak-followed");
    let (c, _, _) = d.code(&["cp", "-L", &format!("{n}:/leak"), got.to_str().unwrap()]);
    assert_eq!(c, 0);
    assert_eq!(fs::read_to_string(&got).unwrap(), "container secret\n");
    // Writing through them writes the container's files, never the host's.
    let payload = d.dir.path().join("payload");
    fs::write(&payload, "payload\n").unwrap();
    for dst in [
        format!("/evil{h}/secret"),
        format!("/up{h}/written"),
        "/hostdir/written2".to_string(),
        "/leak".to_string(),
    ] {
        let _ = d.code(&["cp", payload.to_str().unwrap(), &format!("{n}:{dst}")]);
    }
    assert_eq!(
        fs::read_to_string(host.join("secret")).unwrap(),
        "host secret\n"
    );
    assert!(!host.join("written").exists());
    assert!(!host.join("written2").exists());
    assert_eq!(
        d.ok(&[
            "exec",
            &n,
            "cat",
            &format!("{h}/secret"),
            &format!("{h}/written")
        ]),
        "payload\npayload\n"
    );
    // A symlink in the way of a file being written into a copied directory is refused,
    // not followed.
    d.ok(&[
        "exec",
        &n,
        "sh",
        "-c",
        &format!("mkdir -p /tmp/tree2 && ln -s {h}/secret /tmp/tree2/x"),
    ]);
    let tree2 = d.dir.path().join("tree2");
    fs::create_dir(&tree2).unwrap();
    fs::write(tree2.join("x"), "overwrite\n").unwrap();
    let (c, _, _) = d.code(&["cp", tree2.to_str().unwrap(), &format!("{n}:/tmp/")]);
    assert_ne!(c, 0);
    assert_eq!(
        fs::read_to_string(host.join("secret")).unwrap(),
        "host secret\n"
    );
    d.ok(&["rm", "-f", &n]);
}

struct Remove(PathBuf);

impl Drop for Remove {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn rename_top_stats_pause_and_names_on_runcs_verbs() {
    let d = Dk::new();
    let (a, b) = (name("before"), name("after"));
    let id = d
        .ok(&[
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            &a,
            "bb",
            "sleep",
            "1000",
        ])
        .trim()
        .to_string();
    d.ok(&["rename", &a, &b]);
    assert_eq!(d.ok(&["ps", "--format", "{{.Names}}"]).trim(), b);
    assert_eq!(d.code(&["inspect", &a]).0, 125);
    let top = d.ok(&["top", &b]);
    assert!(top.lines().next().unwrap().contains("PID"), "{top}");
    assert!(top.contains("sleep 1000"), "{top}");
    let stats = d.ok(&["stats", "--no-stream", &b]);
    let head = stats.lines().next().unwrap();
    for col in [
        "CONTAINER ID",
        "NAME",
        "CPU %",
        "MEM USAGE / LIMIT",
        "MEM %",
        "NET I/O",
        "BLOCK I/O",
        "PIDS",
    ] {
        assert!(head.contains(col), "{stats}");
    }
    assert!(
        stats.lines().nth(1).unwrap().starts_with(&id[..12]),
        "{stats}"
    );
    assert_eq!(
        d.ok(&[
            "stats",
            "--no-stream",
            "--format",
            "{{.Name}} {{.PIDs}}",
            &b
        ]),
        format!("{b} 1\n")
    );
    // update takes docker's units.
    d.ok(&["update", "--memory", "64m", &b]);
    let mem = d.ok(&["stats", "--no-stream", "--format", "{{.MemUsage}}", &b]);
    assert!(mem.trim().ends_with("/ 64MiB"), "{mem}");
    // runc's verbs take the name (and the id prefix) too.
    let st: Value = serde_json::from_str(&d.ok(&["state", &b])).unwrap();
    assert_eq!(st["id"], id.as_str());
    assert_eq!(st["status"], "running");
    d.ok(&["pause", &id[..10]]);
    assert_eq!(d.ok(&["ps", "--format", "{{.State}}"]).trim(), "paused");
    d.ok(&["unpause", &b]);
    assert_eq!(d.ok(&["ps", "--format", "{{.State}}"]).trim(), "running");
    assert!(d.ok(&["ps", &b]).contains("sleep"));
    // docker's kill: SIGKILL by default; the exit code recorded. By its whole id, which is
    // also its runtime container's (a directory of the state root): still the engine's
    // container, so docker's kill, not runc's SIGTERM (which a pid 1 without a handler
    // ignores), whichever binary reads the command line (`cli/src/front.rs`).
    assert_eq!(d.ok(&["kill", &id]), format!("{id}\n"));
    assert_eq!(d.ok(&["wait", &b]).trim(), "137");
    // runc's delete of an engine container is its rm, by its whole id too.
    d.ok(&["delete", &id]);
    assert_eq!(d.ok(&["ps", "-aq"]), "");
}

#[test]
fn a_docker_users_session() {
    let d = Dk::new();
    let ctx = d.dir.path().join("ctx");
    fs::create_dir(&ctx).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        "FROM bb\nRUN echo built > /built\n\
         CMD [\"sh\", \"-c\", \"cat /built; echo serving; trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done\"]\n",
    )
    .unwrap();
    d.ok(&[
        "image",
        "build",
        "--network",
        "none",
        "-t",
        "app:1",
        ctx.to_str().unwrap(),
    ]);
    let web = name("web");
    d.ok(&["run", "-d", "--network", "none", "--name", &web, "app:1"]);
    d.until("the log", || d.ok(&["logs", &web]).contains("serving"));
    assert_eq!(d.ok(&["logs", &web]), "built\nserving\n");
    assert_eq!(d.ok(&["logs", "--tail", "1", &web]), "serving\n");
    assert!(d.ok(&["logs", "-t", &web]).starts_with("20"));
    let (status, text) = on_a_pty(&d, &["exec", "-it", &web, "sh", "-c", "cat /built; tty"]);
    assert_eq!(status.code(), Some(0), "{text:?}");
    assert!(
        text.contains("built") && text.contains("/dev/pts/"),
        "{text:?}"
    );
    let ps = d.ok(&["ps"]);
    assert!(
        ps.contains(&web) && ps.contains("app:1") && ps.contains("Up "),
        "{ps}"
    );
    // stop: the image's process takes SIGTERM and exits 0.
    assert_eq!(d.ok(&["stop", &web]).trim(), web);
    let ps = d.ok(&["ps", "-a", "--format", "{{.Names}}: {{.Status}}"]);
    assert!(ps.contains(&format!("{web}: Exited (0)")), "{ps}");
    assert!(d.ok(&["logs", &web]).ends_with("bye\n"));
    // cp works on a stopped container too (its layer mounted for the copy only).
    let note = d.dir.path().join("note");
    fs::write(&note, "left while stopped\n").unwrap();
    d.ok(&["cp", note.to_str().unwrap(), &format!("{web}:/tmp/note")]);
    let built = d.dir.path().join("built");
    d.ok(&["cp", &format!("{web}:/built"), built.to_str().unwrap()]);
    assert_eq!(fs::read_to_string(&built).unwrap(), "built\n");
    // Started again, on the same writable layer.
    assert_ne!(d.code(&["exec", &web, "true"]).0, 0);
    d.ok(&["start", &web]);
    d.until("running again", || d.ok(&["ps", "-q"]).trim().len() == 12);
    d.until("served twice", || {
        d.ok(&["logs", &web]).matches("serving").count() == 2
    });
    assert_eq!(
        d.ok(&["exec", &web, "cat", "/tmp/note"]),
        "left while stopped\n"
    );
    d.ok(&["restart", "-t", "5", &web]);
    d.until("served three times", || {
        d.ok(&["logs", &web]).matches("serving").count() == 3
    });
    d.ok(&["rm", "-f", &web]);
    assert_eq!(d.ok(&["ps", "-aq"]), "");
}

#[test]
fn stop_kills_what_ignores_the_stop_signal_and_logs_f_follows() {
    let d = Dk::new();
    let n = name("stubborn");
    d.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        &n,
        "bb",
        "sh",
        "-c",
        "trap '' TERM; echo up; while true; do sleep 0.1; done",
    ]);
    d.until("up", || d.ok(&["logs", &n]).contains("up"));
    // SIGTERM ignored: SIGKILL after the timeout, 137 recorded.
    assert_eq!(d.ok(&["stop", "-t", "1", &n]).trim(), n);
    assert_eq!(d.inspect(&n)["State"]["ExitCode"], 137);
    // logs -f of a live container follows it until it ends.
    let f = name("follow");
    d.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        &f,
        "bb",
        "sh",
        "-c",
        "echo first; sleep 1; echo second >&2; sleep 1; echo third",
    ]);
    let out = d.run(&["logs", "-f", &f]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "first\nthird\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "second\n");
    d.ok(&["rm", &n, &f]);
}

#[test]
fn a_killed_monitor_leaves_ps_telling_the_truth_and_rm_f_cleaning_up() {
    let d = Dk::new();
    let n = name("orphan");
    let id = d
        .ok(&[
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            &n,
            "bb",
            "sleep",
            "1000",
        ])
        .trim()
        .to_string();
    let pid = d.inspect(&n)["State"]["Pid"].as_i64().unwrap();
    // The monitor: the process whose command line is `... _monitor ID`.
    let monitor: i32 = fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .find_map(|e| {
            let cmd = fs::read(e.path().join("cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            (cmd.contains("_monitor") && cmd.contains(&id))
                .then(|| e.file_name().to_str()?.parse().ok())
                .flatten()
        })
        .expect("the container's monitor");
    // SAFETY: plain kill of the monitor found above.
    unsafe { libc::kill(monitor, libc::SIGKILL) };
    d.until("the monitor gone", || d.monitors().is_empty());
    let st = d.ok(&["ps", "-a", "--format", "{{.Status}}"]);
    assert!(st.starts_with("Up ") && st.contains("no monitor"), "{st}");
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    d.ok(&["rm", "-f", &n]);
    assert_eq!(d.ok(&["ps", "-aq"]), "");
}

#[test]
fn create_then_start_attached_and_kill_with_a_signal() {
    let d = Dk::new();
    let c = name("created");
    let id = d
        .ok(&[
            "create",
            "--network",
            "none",
            "--name",
            &c,
            "-l",
            "tier=test",
            "bb",
            "sh",
            "-c",
            "echo ran; exit 5",
        ])
        .trim()
        .to_string();
    assert_eq!(id.len(), 64);
    assert_eq!(
        d.ok(&[
            "ps",
            "-a",
            "--filter",
            "label=tier=test",
            "--format",
            "{{.Names}} {{.State}} {{.Labels}}"
        ])
        .trim(),
        format!("{c} created tier=test")
    );
    let (code, out, _) = d.code(&["start", "-a", &c]);
    assert_eq!((code, out.as_str()), (5, "ran\n"));
    assert_eq!(d.ok(&["inspect", "-f", "{{.State.ExitCode}}", &c]), "5\n");
    // kill -s: the signal given, its code recorded.
    let k = name("killed");
    d.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        &k,
        "bb",
        "sh",
        "-c",
        "trap 'exit 42' HUP; while true; do sleep 0.1; done",
    ]);
    d.until("its trap set", || d.ok(&["top", &k]).contains("sleep"));
    assert_eq!(d.ok(&["kill", "-s", "HUP", &k]).trim(), k);
    assert_eq!(d.ok(&["wait", &k]).trim(), "42");
    assert_eq!(
        d.ok(&["ps", "-a", "--filter", "ancestor=bb", "-q"])
            .lines()
            .count(),
        2
    );
    d.ok(&["rm", &c, &k]);
}

#[test]
fn port_lists_what_is_published() {
    let d = Dk::in_netns();
    let n = name("ports");
    d.ok(&[
        "run",
        "-d",
        "--name",
        &n,
        "-p",
        "8080:80",
        "-p",
        "127.0.0.1:5353:53/udp",
        "bb",
        "sleep",
        "1000",
    ]);
    let all = d.ok(&["port", &n]);
    assert!(all.contains("80/tcp -> 0.0.0.0:8080"), "{all}");
    assert!(all.contains("53/udp -> 127.0.0.1:5353"), "{all}");
    assert_eq!(d.ok(&["port", &n, "80"]), "0.0.0.0:8080\n");
    assert_eq!(d.ok(&["port", &n, "53/udp"]), "127.0.0.1:5353\n");
    let (c, _, e) = d.code(&["port", &n, "81"]);
    assert_eq!(c, 125, "{e}");
    assert!(e.contains("No public port '81' published"), "{e}");
    let ports = d.ok(&["ps", "--format", "{{.Ports}}"]);
    assert!(ports.contains("0.0.0.0:8080->80/tcp"), "{ports}");
    d.ok(&["rm", "-f", &n]);
}

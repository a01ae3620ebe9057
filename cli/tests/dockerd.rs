//! Docker's engine drives corral (issue 23): a dockerd of the test's own (Debian's
//! `docker.io`, 20.10) with `--add-runtime corral=<this build's corral>`, its own data root,
//! exec root, pidfile, socket and cgroup parent, no bridge and no iptables rules, inside a
//! network namespace the test made. The image is the test root filesystem (busybox),
//! imported with `docker import` (nothing is pulled).
//!
//! One dockerd per test binary run: every case runs with `--runtime runc` and then with
//! `--runtime corral` on it, so a case that fails with both is told apart (this engine or
//! this host) from one that fails with corral only. The table of both is printed.
//!
//! At the end dockerd is stopped (and the containerd it started, with its shims), and
//! nothing of it may be left: processes, mounts, cgroups, its directory.

mod common;

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{bounded, corral};

/// docker.io's own client (a newer one elsewhere on PATH would do too; this one matches).
const DOCKER: &str = "/usr/bin/docker";
const DOCKERD: &str = "/usr/sbin/dockerd";
const RUNTIMES: [&str; 2] = ["runc", "corral"];

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

struct Dockerd {
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// The cgroup parent of every container (`/<id>` in each hierarchy).
    cgroup_parent: String,
    /// dockerd runs in it (its containers have `--network none` or their own).
    _netns: testkit::Netns,
    image: String,
    names: std::cell::Cell<u32>,
    /// `/run/containerd` (the shims' sockets go there whatever the exec root) unless it was
    /// there before: removed at the end.
    run_dir: Option<&'static str>,
}

impl Dockerd {
    fn start() -> Dockerd {
        testkit::require_root();
        for tool in [DOCKER, DOCKERD] {
            assert!(
                Path::new(tool).exists(),
                "this test needs {tool} (scripts/setup-deps.sh installs docker.io)"
            );
        }
        let id = testkit::unique_id("dockerd");
        // Short: the socket paths under the exec root must fit in sun_path.
        let dir = tempfile::Builder::new().prefix("cd-").tempdir().unwrap();
        let run_dir = Some("/run/containerd").filter(|d| !Path::new(d).exists());
        let netns = testkit::Netns::new("dockerd-net");
        let log = std::fs::File::create(dir.path().join("dockerd.log")).unwrap();
        let p = |n: &str| dir.path().join(n).to_string_lossy().into_owned();
        let cgroup_parent = format!("/{id}");
        let child = netns
            .command(DOCKERD)
            .args(["--data-root", &p("data")])
            .args(["--exec-root", &p("exec")])
            .args(["--pidfile", &p("dockerd.pid")])
            .args(["-H", &format!("unix://{}", p("docker.sock"))])
            .args(["--bridge=none", "--iptables=false", "--ip-masq=false"])
            // This host has no systemd as pid 1: cgroupfs, as dockerd would pick itself.
            .args(["--exec-opt", "native.cgroupdriver=cgroupfs"])
            .args(["--cgroup-parent", &cgroup_parent])
            .args(["--add-runtime", &format!("corral={}", corral())])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("spawn dockerd");
        let mut d = Dockerd {
            dir,
            child: Some(child),
            cgroup_parent,
            _netns: netns,
            image: format!("{id}:latest"),
            names: std::cell::Cell::new(0),
            run_dir,
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let out = d.docker(&["version", "--format", "{{.Server.Version}}"]);
            if out.status.success() {
                break;
            }
            if let Some(st) = d.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("dockerd exited ({st}): {}", d.log());
            }
            assert!(
                Instant::now() < deadline,
                "dockerd did not answer in 120 s: {}{}",
                text(&out),
                d.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        d
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }

    fn sock(&self) -> String {
        format!("unix://{}", self.dir.path().join("docker.sock").display())
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(DOCKER);
        c.args(["--host", &self.sock()]);
        c.stdin(Stdio::null());
        c
    }

    /// `docker ARGS`, killed after 2 minutes.
    fn docker(&self, args: &[&str]) -> Output {
        let mut c = self.cmd();
        c.args(args);
        bounded(c, Duration::from_secs(120))
    }

    fn name(&self, rt: &str, what: &str) -> String {
        let n = self.names.get() + 1;
        self.names.set(n);
        format!("{what}-{rt}-{n}")
    }

    /// Imports the test root filesystem (busybox and the probe) as `self.image`.
    fn import(&self, rootfs: &Path) {
        let mut tar = Command::new("tar")
            .arg("-C")
            .arg(rootfs)
            .args(["-c", "."])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = self
            .cmd()
            .args(["import", "-", &self.image])
            .stdin(tar.stdout.take().unwrap())
            .output()
            .unwrap();
        assert!(tar.wait().unwrap().success(), "tar of the test rootfs");
        assert!(out.status.success(), "docker import: {}", text(&out));
    }

    /// Processes started by this dockerd: itself, its containerd, shims and containers'
    /// runtimes hold the directory's path in their command lines.
    fn processes(&self) -> Vec<(i32, String)> {
        let mark = self.dir.path().to_string_lossy().into_owned();
        let mut v = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if let Ok(c) = std::fs::read(e.path().join("cmdline")) {
                let c = String::from_utf8_lossy(&c).replace('\0', " ");
                if c.contains(&mark) {
                    v.push((pid, c));
                }
            }
        }
        v
    }

    fn mounts(&self) -> Vec<String> {
        let mark = self.dir.path().to_string_lossy().into_owned();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&mark))
            .map(str::to_string)
            .collect()
    }

    fn cgroups(&self) -> Vec<PathBuf> {
        let mut v = Vec::new();
        for c in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
            let p = c.path().join(self.cgroup_parent.trim_start_matches('/'));
            if p.exists() && !c.path().is_symlink() {
                v.push(p);
            }
        }
        v
    }

    /// Stops dockerd (its containers first), then removes what is left of it and returns
    /// what was left: none of it may be.
    fn stop(&mut self) -> Vec<String> {
        let mut left = Vec::new();
        let Some(mut child) = self.child.take() else {
            return left;
        };
        let ids = self.docker(&["ps", "-aq"]);
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            let _ = self.docker(&["rm", "-f", id]);
        }
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(60);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                left.push("dockerd did not stop on SIGTERM in 60 s".to_string());
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // Its containerd stops with it; wait for that (and its shims) a little.
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.processes().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        for (pid, cmd) in self.processes() {
            left.push(format!("process {pid}: {cmd}"));
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        if let Some(d) = self.run_dir {
            let _ = std::fs::remove_dir_all(d);
        }
        let mut mounts = self.mounts();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            left.push(format!("mount {m}"));
            let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
        for cg in self.cgroups() {
            // Containers' cgroups are dockerd's to remove; an empty parent is ours.
            let children: Vec<_> = std::fs::read_dir(&cg)
                .map(|r| r.flatten().filter(|e| e.path().is_dir()).collect())
                .unwrap_or_default();
            for c in children {
                left.push(format!("cgroup {}", c.path().display()));
                let _ = std::fs::remove_dir(c.path());
            }
            let _ = std::fs::remove_dir(&cg);
        }
        left.extend(
            self.cgroups()
                .iter()
                .map(|c| format!("cgroup {}", c.display())),
        );
        left
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let left = self.stop();
        if !left.is_empty() {
            eprintln!("left by dockerd: {left:#?}");
        }
    }
}

/// Runs `args` in a pty (stdin, stdout and stderr), as a terminal user would; the exit code
/// and what the terminal showed.
fn in_pty(mut c: Command) -> (Option<i32>, String) {
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let slave = |fd: &OwnedFd| Stdio::from(fd.try_clone().unwrap());
    c.stdin(slave(&pty.slave))
        .stdout(slave(&pty.slave))
        .stderr(slave(&pty.slave));
    // SAFETY: setsid and ioctl only, between fork and exec.
    unsafe {
        c.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            if libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = c.spawn().expect("spawn in a pty");
    // Every copy of the slave closed (the command holds some), so the master reads EIO
    // once the child's are gone.
    drop(c);
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
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return (None, "did not end in 120 s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status.code(), reader.join().unwrap())
}

type Case = fn(&Dockerd, &str) -> Result<(), String>;

fn expect(what: &str, out: &Output, code: i32, stdout: &str) -> Result<(), String> {
    if out.status.code() != Some(code) || String::from_utf8_lossy(&out.stdout) != stdout {
        return Err(format!(
            "{what}: want exit {code} and {stdout:?}, got {:?}: {}",
            out.status.code(),
            text(out)
        ));
    }
    Ok(())
}

/// A container left running (`sleep` under a shell that answers SIGTERM), for exec, stop,
/// logs and rm.
fn start_sleeper(d: &Dockerd, rt: &str, extra: &[&str]) -> Result<String, String> {
    let name = d.name(rt, "sleeper");
    let mut args = vec!["run", "-d", "--name", &name, "--runtime", rt];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[
        &d.image,
        "/bin/sh",
        "-c",
        "echo started; trap 'echo got-term; exit 0' TERM; while :; do sleep 0.1; done",
    ]);
    let out = d.docker(&args);
    if !out.status.success() {
        return Err(format!("docker run -d: {}", text(&out)));
    }
    Ok(name)
}

fn rm(d: &Dockerd, name: &str) {
    let _ = d.docker(&["rm", "-f", name]);
}

const CASES: &[(&str, Case)] = &[
    ("run (exit code, stdout)", |d, rt| {
        let out = d.docker(&[
            "run",
            "--rm",
            "--runtime",
            rt,
            &d.image,
            "/bin/sh",
            "-c",
            "echo hi; exit 7",
        ]);
        expect("docker run --rm", &out, 7, "hi\n")
    }),
    ("run -i (stdin)", |d, rt| {
        let mut c = d.cmd();
        c.args(["run", "--rm", "-i", "--runtime", rt, &d.image, "/bin/cat"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"through stdin\n")
            .unwrap();
        let out = child.wait_with_output().unwrap();
        expect("docker run -i cat", &out, 0, "through stdin\n")
    }),
    ("run -it (pty)", |d, rt| {
        let mut c = d.cmd();
        c.args([
            "run",
            "--rm",
            "-it",
            "--runtime",
            rt,
            &d.image,
            "/bin/sh",
            "-c",
        ])
        .arg("tty; echo in-a-tty; exit 3");
        let (code, shown) = in_pty(c);
        if code != Some(3) || !shown.contains("/dev/pts/") || !shown.contains("in-a-tty") {
            return Err(format!("docker run -it: exit {code:?}: {shown:?}"));
        }
        Ok(())
    }),
    ("exec", |d, rt| {
        let name = start_sleeper(d, rt, &[])?;
        let out = d.docker(&["exec", &name, "/bin/sh", "-c", "echo $((40 + 2)); exit 5"]);
        rm(d, &name);
        expect("docker exec", &out, 5, "42\n")
    }),
    ("exec -it (pty)", |d, rt| {
        let name = start_sleeper(d, rt, &[])?;
        let mut c = d.cmd();
        c.args(["exec", "-it", &name, "/bin/sh", "-c", "tty; echo exec-tty"]);
        let (code, shown) = in_pty(c);
        rm(d, &name);
        if code != Some(0) || !shown.contains("/dev/pts/") || !shown.contains("exec-tty") {
            return Err(format!("docker exec -it: exit {code:?}: {shown:?}"));
        }
        Ok(())
    }),
    ("--memory 64m (seen inside)", |d, rt| {
        let out = d.docker(&[
            "run", "--rm", "--memory", "64m", "--runtime", rt, &d.image, "/bin/sh", "-c",
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max",
        ]);
        expect("docker run --memory 64m", &out, 0, "67108864\n")
    }),
    ("--memory 16m, a hog is OOM-killed", |d, rt| {
        let name = d.name(rt, "oom");
        // `tail` of an endless line keeps all of it in memory.
        let out = d.docker(&[
            "run",
            "--name",
            &name,
            "--memory",
            "16m",
            "--memory-swap",
            "16m",
            "--runtime",
            rt,
            &d.image,
            "/bin/tail",
            "/dev/zero",
        ]);
        let st = d.docker(&[
            "inspect",
            "-f",
            "{{.State.OOMKilled}} {{.State.ExitCode}}",
            &name,
        ]);
        rm(d, &name);
        expect("docker inspect after the hog", &st, 0, "true 137\n")
            .map_err(|e| format!("{e}; the run: {}", text(&out)))
    }),
    ("--pids-limit 20 (seen inside, enforced)", |d, rt| {
        let out = d.docker(&[
            "run",
            "--rm",
            "--pids-limit",
            "20",
            "--runtime",
            rt,
            &d.image,
            "/bin/sh",
            "-c",
            "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max; \
             for i in $(seq 40); do sleep 1 & done; wait",
        ]);
        if String::from_utf8_lossy(&out.stdout) != "20\n"
            || !String::from_utf8_lossy(&out.stderr).contains("fork")
        {
            return Err(format!("docker run --pids-limit 20: {}", text(&out)));
        }
        Ok(())
    }),
    ("stop (SIGTERM answered)", |d, rt| {
        let name = start_sleeper(d, rt, &[])?;
        let out = d.docker(&["stop", "-t", "30", &name]);
        let st = d.docker(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            &name,
        ]);
        let logs = d.docker(&["logs", &name]);
        rm(d, &name);
        expect("docker stop", &out, 0, &format!("{name}\n"))?;
        expect("docker inspect", &st, 0, "exited 0\n")?;
        expect("docker logs", &logs, 0, "started\ngot-term\n")
    }),
    ("stop (SIGTERM ignored: killed after -t)", |d, rt| {
        let name = d.name(rt, "stubborn");
        let out = d.docker(&[
            "run",
            "-d",
            "--name",
            &name,
            "--runtime",
            rt,
            &d.image,
            "/bin/sh",
            "-c",
            "trap '' TERM; echo up; while :; do sleep 0.1; done",
        ]);
        if !out.status.success() {
            return Err(format!("docker run -d: {}", text(&out)));
        }
        let stop = d.docker(&["stop", "-t", "1", &name]);
        let st = d.docker(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            &name,
        ]);
        rm(d, &name);
        expect("docker stop -t 1", &stop, 0, &format!("{name}\n"))?;
        expect("docker inspect", &st, 0, "exited 137\n")
    }),
    ("logs (stdout and stderr)", |d, rt| {
        let name = d.name(rt, "logs");
        let out = d.docker(&[
            "run",
            "--name",
            &name,
            "--runtime",
            rt,
            &d.image,
            "/bin/sh",
            "-c",
            "echo to-out; echo to-err >&2",
        ]);
        let logs = d.docker(&["logs", &name]);
        rm(d, &name);
        expect("docker run", &out, 0, "to-out\n")?;
        if String::from_utf8_lossy(&logs.stderr) != "to-err\n" {
            return Err(format!("docker logs: stderr {:?}", text(&logs)));
        }
        expect("docker logs", &logs, 0, "to-out\n")
    }),
    ("rm (and rm -f of a running one)", |d, rt| {
        let name = start_sleeper(d, rt, &[])?;
        let cg = d.docker(&["inspect", "-f", "{{.Id}}", &name]);
        let id = String::from_utf8_lossy(&cg.stdout).trim().to_string();
        let refused = d.docker(&["rm", &name]);
        let forced = d.docker(&["rm", "-f", &name]);
        let gone = d.docker(&["ps", "-aq", "--filter", &format!("name=^{name}$")]);
        if refused.status.success() {
            return Err("docker rm of a running container succeeded".into());
        }
        expect("docker rm -f", &forced, 0, &format!("{name}\n"))?;
        expect("docker ps -a after rm", &gone, 0, "")?;
        let dir = Path::new("/sys/fs/cgroup/memory")
            .join(d.cgroup_parent.trim_start_matches('/'))
            .join(&id);
        if dir.exists() {
            return Err(format!("{} is left after rm -f", dir.display()));
        }
        Ok(())
    }),
];

#[test]
fn dockerd_runs_containers_with_corral() {
    let rootfs = testkit::TestRootfs::with_id(&testkit::unique_id("dockerd-img"));
    let mut d = Dockerd::start();
    d.import(rootfs.rootfs());
    let info = d.docker(&["info", "--format", "{{json .Runtimes}} {{.CgroupDriver}}"]);
    assert!(
        String::from_utf8_lossy(&info.stdout).contains("corral"),
        "{}",
        text(&info)
    );
    let mut table = Vec::new();
    for (case, f) in CASES {
        let r: Vec<Result<(), String>> = RUNTIMES
            .iter()
            .map(|rt| {
                let r = f(&d, rt);
                eprintln!("{case} with {rt}: {r:?}");
                r
            })
            .collect();
        table.push((*case, r));
    }
    let log = d.log();
    let left = d.stop();
    eprintln!("{:<45} {:<6} {:<6}", "case", "runc", "corral");
    for (case, r) in &table {
        let mark = |r: &Result<(), String>| if r.is_ok() { "ok" } else { "FAIL" };
        eprintln!("{case:<45} {:<6} {:<6}", mark(&r[0]), mark(&r[1]));
    }
    let mut failed = Vec::new();
    for (case, r) in &table {
        match (&r[0], &r[1]) {
            (_, Ok(())) => {}
            (Ok(()), Err(e)) => failed.push(format!("{case}: corral only: {e}")),
            (Err(r), Err(e)) => failed.push(format!(
                "{case}: fails with runc too (this engine or host): runc: {r}; corral: {e}"
            )),
        }
    }
    assert!(
        failed.is_empty(),
        "{failed:#?}\ndockerd's log ends:\n{}",
        log.lines().rev().take(30).collect::<Vec<_>>().join("\n")
    );
    assert!(left.is_empty(), "left by dockerd: {left:#?}");
}

//! Real engines drive corral: podman (`--runtime`) and containerd (`ctr --runc-binary`), on an
//! image made from the test root filesystem. Each test cleans up its containers, image, daemon
//! and the cgroups the engine made.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::corral;

fn require(tool: &str) {
    testkit::require_root();
    let ok = Command::new(tool)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "this test needs {tool} (scripts/setup-deps.sh installs it)"
    );
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Cgroup dirs an engine makes for itself (podman's libpod_parent/conmon), removed again if
/// they were not there before.
struct EngineCgroups(Vec<PathBuf>);

impl EngineCgroups {
    fn snapshot(names: &[&str]) -> EngineCgroups {
        let mut new = Vec::new();
        for ctrl in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
            for n in names {
                let p = ctrl.path().join(n);
                if !p.exists() {
                    new.push(p);
                }
            }
        }
        EngineCgroups(new)
    }
}

impl Drop for EngineCgroups {
    fn drop(&mut self) {
        // Only podman's own conmon cgroup, then the parent if it is empty: never a
        // container's cgroup that may be in use.
        for p in &self.0 {
            let _ = std::fs::remove_dir(p.join("conmon"));
            let _ = std::fs::remove_dir(p);
        }
    }
}

/// The engine tests share podman's storage and cgroups: one at a time.
static ENGINES: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ENGINES.lock().unwrap_or_else(|e| e.into_inner())
}

struct Podman {
    conf: tempfile::TempDir,
    image: String,
    names: Vec<String>,
    /// The network namespace podman runs in (its default network makes a bridge and NAT
    /// rules: never in the host's own namespace).
    netns: testkit::Netns,
    _cg: EngineCgroups,
}

impl Podman {
    fn new(rootfs: &Path, tag: &str) -> Podman {
        require("podman");
        let cg = EngineCgroups::snapshot(&["libpod_parent"]);
        let conf = tempfile::tempdir().unwrap();
        // This machine's bounding set lacks CAP_SYS_RESOURCE: podman's default ulimits
        // would raise hard limits, which fails for every runtime.
        std::fs::write(
            conf.path().join("containers.conf"),
            "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=4096:4096\"]\n",
        )
        .unwrap();
        let image = format!("localhost/{tag}:latest");
        let p = Podman {
            conf,
            image,
            names: Vec::new(),
            netns: testkit::Netns::new("podman-net"),
            _cg: cg,
        };
        let mut tar = Command::new("tar")
            .arg("-C")
            .arg(rootfs)
            .args(["-c", "."])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = p
            .cmd()
            .args(["import", "-", &p.image])
            .stdin(tar.stdout.take().unwrap())
            .output()
            .unwrap();
        assert!(
            tar.wait().unwrap().success(),
            "tar of the test rootfs failed"
        );
        assert!(out.status.success(), "podman import: {}", text(&out));
        p
    }

    /// podman in the test's network namespace (setns before exec: `ip netns exec` would
    /// hide the cgroup mounts behind a new /sys).
    fn cmd(&self) -> Command {
        let mut c = self.netns.command("podman");
        c.env("CONTAINERS_CONF", self.conf.path().join("containers.conf"));
        c.args(["--runtime", &corral()]);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).stdin(Stdio::null()).output().unwrap()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = self.run(&["rm", "-f", "-t", "0", n]);
        }
        let _ = self.run(&["rmi", "-f", &self.image]);
        // The namespace (a field) is deleted after this.
    }
}

#[test]
fn podman_runs_containers_with_corral() {
    let _serial = serial();
    let id = testkit::unique_id("podman");
    let rootfs = testkit::TestRootfs::with_id(&id);
    let mut pm = Podman::new(rootfs.rootfs(), &id);
    let img = pm.image.clone();

    // run --rm keeps the exit code.
    let out = pm.run(&["run", "--rm", &img, "/bin/sh", "-c", "echo hi; exit 7"]);
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");

    // Limits, seen inside.
    let out = pm.run(&[
        "run",
        "--rm",
        "--memory",
        "64m",
        "--pids-limit",
        "20",
        &img,
        "/bin/cat",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
        "/sys/fs/cgroup/pids/pids.max",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "67108864\n20\n",
        "{}",
        text(&out)
    );

    // Networks: none has only lo; the default bridge gives eth0.
    let out = pm.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        &img,
        "/bin/ls",
        "/sys/class/net",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "lo\n",
        "{}",
        text(&out)
    );
    let out = pm.run(&["run", "--rm", &img, "/bin/ls", "/sys/class/net"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "eth0\nlo\n",
        "{}",
        text(&out)
    );

    // run -d, exec, ps, logs, stop, rm.
    let name = format!("{id}-d");
    pm.names.push(name.clone());
    let out = pm.run(&[
        "run",
        "-d",
        "--name",
        &name,
        &img,
        "/bin/sh",
        "-c",
        "echo started; exec /probe sleep inf",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let out = pm.run(&["exec", &name, "/bin/sh", "-c", "echo in-exec; exit 4"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "in-exec\n");
    let out = pm.run(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("{name} Up")),
        "{}",
        text(&out)
    );
    let out = pm.run(&["top", &name]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("/probe sleep inf"),
        "{}",
        text(&out)
    );
    let out = pm.run(&["logs", &name]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "started\n",
        "{}",
        text(&out)
    );
    let out = pm.run(&["stop", "-t", "5", &name]);
    assert!(out.status.success(), "{}", text(&out));
    let out = pm.run(&["rm", &name]);
    assert!(out.status.success(), "{}", text(&out));
    pm.names.clear();

    // -it with a terminal (script gives podman one). The sleep lets conmon read the pty
    // before the slave side closes (a pty can drop output at hangup, with any runtime).
    let out = Command::new("script")
        .env("CONTAINERS_CONF", pm.conf.path().join("containers.conf"))
        .args([
            "-qec",
            &format!(
                "nsenter --net={} podman --runtime {} run --rm -it {img} /bin/sh -c 'tty; sleep 1; exit 5'",
                pm.netns.path().display(),
                corral()
            ),
            "/dev/null",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("/dev/pts/0"),
        "{}",
        text(&out)
    );
    drop(pm);
    testkit::assert_no_leaks(&id, None);
}

/// A containerd of our own: private socket, root and state dirs; stopped on drop. (Its shim
/// and ctr also use /run/containerd for fifos, shim sockets and the runtime's root; removed
/// on drop when it was not there before.)
struct Containerd {
    dir: tempfile::TempDir,
    daemon: std::process::Child,
    run_dir_was_there: bool,
}

impl Containerd {
    fn start() -> Containerd {
        require("containerd");
        let run_dir_was_there = Path::new("/run/containerd").exists();
        let dir = tempfile::Builder::new()
            .prefix("corral-ctrd-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        std::fs::write(
            d.join("config.toml"),
            format!(
                "version = 2\nroot = \"{0}/root\"\nstate = \"{0}/state\"\n[grpc]\n  address = \"{0}/containerd.sock\"\n[ttrpc]\n  address = \"{0}/containerd.sock.ttrpc\"\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  disable_cgroup = true\n",
                d.display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(d.join("log")).unwrap();
        let daemon = Command::new("containerd")
            .arg("--config")
            .arg(d.join("config.toml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let c = Containerd {
            dir,
            daemon,
            run_dir_was_there,
        };
        for _ in 0..500 {
            if c.ctr(&["version"]).status.success() {
                return c;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!(
            "containerd did not start: {}",
            std::fs::read_to_string(c.dir.path().join("log")).unwrap_or_default()
        );
    }

    fn ctr(&self, args: &[&str]) -> Output {
        Command::new("ctr")
            .arg("-a")
            .arg(self.dir.path().join("containerd.sock"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        // Snapshots are mounted only while a task runs; detach anything left before removal.
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let d = self.dir.path().display().to_string();
        for l in info.lines().filter(|l| l.contains(&d)) {
            if let Some(mp) = l.split(' ').nth(4) {
                let _ = nix::mount::umount2(mp, nix::mount::MntFlags::MNT_DETACH);
            }
        }
        if !self.run_dir_was_there {
            let _ = std::fs::remove_dir_all("/run/containerd");
        }
    }
}

#[test]
fn containerd_runs_containers_with_corral() {
    let _serial = serial();
    let id = testkit::unique_id("ctrd");
    let rootfs = testkit::TestRootfs::with_id(&id);
    // The image: podman imports the root filesystem and saves it as a docker archive.
    let pm = Podman::new(rootfs.rootfs(), &id);
    let archive = pm.conf.path().join("image.tar");
    let out = pm.run(&[
        "save",
        "--format",
        "docker-archive",
        "-o",
        &archive.to_string_lossy(),
        &pm.image,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let cd = Containerd::start();
    let out = cd.ctr(&["images", "import", &archive.to_string_lossy()]);
    assert!(out.status.success(), "{}", text(&out));

    let out = cd.ctr(&[
        "run",
        "--rm",
        "--runc-binary",
        &corral(),
        &pm.image,
        &format!("{id}-a"),
        "/bin/sh",
        "-c",
        "echo hi; exit 6",
    ]);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");

    let task = format!("{id}-b");
    let out = cd.ctr(&[
        "run",
        "-d",
        "--runc-binary",
        &corral(),
        &pm.image,
        &task,
        "/probe",
        "sleep",
        "inf",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let out = cd.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        &task,
        "/bin/sh",
        "-c",
        "echo in-exec; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "in-exec\n");
    let out = cd.ctr(&["task", "kill", "-s", "KILL", &task]);
    assert!(out.status.success(), "{}", text(&out));
    for _ in 0..200 {
        if cd.ctr(&["task", "rm", &task]).status.success() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let out = cd.ctr(&["container", "rm", &task]);
    assert!(out.status.success(), "{}", text(&out));
    drop(cd);
    drop(pm);
    testkit::assert_no_leaks(&id, None);
}

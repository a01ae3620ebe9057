//! Shared helpers of the CLI tests: a bundle with the probe, a private state root, and a
//! leak check that runs whatever happens.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};
use testkit::TestRootfs;

/// The corral binary under test: this build's, or `CORRAL_TEST_BIN` (to show that a test
/// fails against another build, e.g. one from before a fix).
pub fn corral() -> String {
    std::env::var("CORRAL_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_corral").to_string())
}

/// One test container: its id, bundle and state root. Dropping it checks that nothing of it
/// is left (mounts, cgroups, processes, state).
pub struct Env {
    pub id: String,
    pub rootfs: TestRootfs,
    pub state: tempfile::TempDir,
}

impl Env {
    pub fn new(prefix: &str) -> Env {
        testkit::require_root();
        let id = testkit::unique_id(prefix);
        Env {
            rootfs: TestRootfs::with_id(&id),
            state: tempfile::Builder::new()
                .prefix("corral-state-")
                .tempdir()
                .expect("state dir"),
            id,
        }
    }

    pub fn state_root(&self) -> &Path {
        self.state.path()
    }

    pub fn bundle(&self) -> &Path {
        self.rootfs.bundle()
    }

    /// The default spec (as `corral spec` writes it) with `args`, no terminal, and the test
    /// rootfs.
    pub fn spec(&self, args: &[&str]) -> Value {
        let mut s = runtime::default_spec();
        s["process"]["terminal"] = json!(false);
        s["process"]["args"] = json!(args);
        s["root"]["path"] = json!(self.rootfs.rootfs());
        s
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(corral());
        c.arg("--root").arg(self.state_root());
        c.stdin(Stdio::null());
        c
    }

    /// `corral run` of `spec`, waited for.
    pub fn run(&self, spec: &Value) -> Output {
        self.rootfs.write_config(spec);
        self.command()
            .args(["run", "-b"])
            .arg(self.bundle())
            .arg(&self.id)
            .output()
            .expect("spawn corral")
    }

    /// Runs `/probe report PATHS...` and parses its JSON.
    pub fn report(&self, spec: Value, paths: &[&str]) -> Value {
        let mut s = spec;
        let mut args = vec!["/probe", "report"];
        args.extend_from_slice(paths);
        s["process"]["args"] = json!(args);
        let out = self.run(&s);
        assert_eq!(
            out.status.code(),
            Some(0),
            "stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "probe output is not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let leaks = testkit::find_leaks(&self.id, Some(self.state_root()));
        if !leaks.is_empty() {
            // Clean up what we can, then fail (unless the test already failed).
            let _ = Command::new(corral())
                .arg("--root")
                .arg(self.state_root())
                .args(["delete", "--force", &self.id])
                .output();
            if !std::thread::panicking() {
                panic!("leaked by container {}: {leaks:#?}", self.id);
            } else {
                eprintln!("leaked by container {}: {leaks:#?}", self.id);
            }
        }
    }
}

/// Runs corral with `args`. Its stdout and stderr are files, not pipes: a container made by
/// `create` inherits them and would keep a pipe open long after corral exited. This test
/// process becomes the reaper of orphaned containers (this host's pid 1 does not reap them):
/// [`reap`] them once stopped. A corral still running after 5 minutes fails the test (see
/// [`cli_within`]).
pub fn cli(env: &Env, args: &[&str]) -> Output {
    cli_within(env, args, std::time::Duration::from_secs(300))
}

/// [`cli`], killing corral if it has not finished within `limit` (and force-deleting the
/// container): a hang fails the test instead of stalling the suite.
pub fn cli_within(env: &Env, args: &[&str], limit: std::time::Duration) -> Output {
    // SAFETY: plain prctl.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let out = tempfile::tempfile().unwrap();
    let err = tempfile::tempfile().unwrap();
    let mut child = env
        .command()
        .args(args)
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let _ = env
                .command()
                .args(["delete", "--force", &env.id])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            panic!("corral {args:?} still running after {limit:?}: it hangs");
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    };
    let read = |mut f: std::fs::File| {
        use std::io::{Read, Seek};
        let mut v = Vec::new();
        f.rewind().unwrap();
        f.read_to_end(&mut v).unwrap();
        v
    };
    Output {
        status,
        stdout: read(out),
        stderr: read(err),
    }
}

/// [`cli`], asserting success; its stdout.
pub fn cli_ok(env: &Env, args: &[&str]) -> String {
    let out = cli(env, args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "corral {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Reaps a container's init process that was reparented to this test process.
pub fn reap(pid: i64) {
    let mut st = 0;
    // SAFETY: waiting for one specific pid.
    unsafe { libc::waitpid(pid as i32, &mut st, 0) };
}

/// Asserts an exit code, showing corral's stderr when it differs.
pub fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Asserts a failed run: exit code, one line on stderr containing every needle.
pub fn assert_fails(out: &Output, code: i32, needles: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "want one line on stderr, got: {err}");
    for n in needles {
        assert!(lines[0].contains(n), "stderr {:?} lacks {n:?}", lines[0]);
    }
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A host process kept alive for the test (killed and reaped on drop).
pub struct Holder(pub std::process::Child);

impl Holder {
    pub fn spawn(cmd: &mut Command) -> Holder {
        Holder(cmd.spawn().expect("spawn helper process"))
    }
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

pub fn pathbuf(p: &str) -> PathBuf {
    PathBuf::from(p)
}

/// A host block device that root on the host may open (the largest; on these machines the
/// root disk itself is closed to the host's root too, a zram or loop device is not), as
/// (major, minor, name under /dev).
pub fn host_disk() -> (u32, u32, String) {
    let mut best: Option<(u64, u32, u32, String)> = None;
    for e in std::fs::read_dir("/sys/dev/block").unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        let Some((ma, mi)) = name.split_once(':') else {
            continue;
        };
        let size: u64 = std::fs::read_to_string(e.path().join("size"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        let Some(dev) = std::fs::read_to_string(e.path().join("uevent"))
            .ok()
            .and_then(|u| {
                u.lines()
                    .find_map(|l| l.strip_prefix("DEVNAME="))
                    .map(String::from)
            })
        else {
            continue;
        };
        if std::fs::File::open(Path::new("/dev").join(&dev)).is_err() {
            continue;
        }
        if best.as_ref().is_none_or(|b| size > b.0) {
            best = Some((size, ma.parse().unwrap(), mi.parse().unwrap(), dev));
        }
    }
    let (_, ma, mi, dev) = best.expect("no block device on the host that root can open");
    (ma, mi, dev)
}

/// A script that makes a node for a host block device and opens it for reading, then uses
/// /dev/null and /dev/zero: prints `READ` if the device could be read, `NULL` if the
/// standard devices work.
pub fn read_host_disk_script() -> String {
    let (ma, mi, _) = host_disk();
    format!(
        "busybox mknod /dev/hostdisk b {ma} {mi} || echo MKNOD-FAILED; \
         head -c 512 /dev/hostdisk > /dev/null && echo READ; \
         echo x > /dev/null && head -c 1 /dev/zero > /dev/null && echo NULL"
    )
}

/// Force-deletes `id` (and reaps its init, reparented to this test) whatever happens.
pub struct Cleanup<'a> {
    pub env: &'a Env,
    pub id: String,
    pub pid: i64,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = cli(self.env, &["delete", "--force", &self.id]);
        if self.pid > 0 {
            reap(self.pid);
        }
    }
}

/// Runs `c` with its stdout and stderr in files, failing the test if it has not ended
/// within `limit`.
pub fn bounded(mut c: Command, limit: std::time::Duration) -> Output {
    // Files, not pipes: a detached container inherits them and would hold a pipe open.
    let out = tempfile::tempfile().unwrap();
    let err = tempfile::tempfile().unwrap();
    let mut child = c
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{c:?} still running after {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    };
    let read = |mut f: std::fs::File| {
        use std::io::{Read, Seek};
        let mut v = Vec::new();
        f.rewind().unwrap();
        f.read_to_end(&mut v).unwrap();
        v
    };
    Output {
        status,
        stdout: read(out),
        stderr: read(err),
    }
}

/// The names in directory `p`, sorted (none if it is missing).
pub fn names(p: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(p)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

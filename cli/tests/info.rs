//! `corral info` and `corral version`: what docker shows, as text and as one JSON object with
//! docker's keys; `info` writes nothing (a store or state root that does not exist is not
//! made) and works for a user who is not root.

mod common;

use common::bounded;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use testkit::TestRootfs;

struct T {
    dir: tempfile::TempDir,
    ids: std::cell::RefCell<Vec<String>>,
}

impl T {
    fn new() -> T {
        testkit::require_root();
        let dir = tempfile::Builder::new()
            .prefix("corral-info-")
            .tempdir()
            .unwrap();
        T {
            dir,
            ids: Default::default(),
        }
    }

    fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(common::corral());
        c.arg("--store")
            .arg(self.store())
            .arg("--root")
            .arg(self.state())
            .args(args)
            .stdin(Stdio::null());
        c
    }

    fn ok(&self, args: &[&str]) -> String {
        ok(self.cmd(args))
    }
}

impl Drop for T {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter() {
            let _ = bounded(
                self.cmd(&["delete", "--force", id]),
                Duration::from_secs(60),
            );
        }
        let leaks: Vec<String> = self
            .ids
            .borrow()
            .iter()
            .flat_map(|id| testkit::find_leaks(id, Some(&self.state())))
            .collect();
        if !std::thread::panicking() {
            assert!(leaks.is_empty(), "leaked: {leaks:#?}");
        }
    }
}

fn ok(c: Command) -> String {
    let out: Output = bounded(c, Duration::from_secs(120));
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout {} stderr {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The value after `key: ` on the line that starts with it (after indentation).
fn field<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.trim_start().strip_prefix(&format!("{key}: ")))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {key:?} in {text}"))
}

fn uname_r() -> String {
    let out = Command::new("uname").arg("-r").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn info_counts_containers_and_images_and_shows_the_host() {
    let t = T::new();
    let rootfs = TestRootfs::new();
    t.ok(&["image", "import", rootfs.rootfs().to_str().unwrap(), "bb"]);
    let id = testkit::unique_id("info-run");
    t.ids.borrow_mut().push(id.clone());
    t.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--image",
        "bb",
        "--name",
        &id,
        "--",
        "sleep",
        "100",
    ]);
    let stopped = testkit::unique_id("info-stop");
    t.ids.borrow_mut().push(stopped.clone());
    t.ok(&[
        "run",
        "--network",
        "none",
        "--image",
        "bb",
        "--name",
        &stopped,
        "--",
        "true",
    ]);
    let text = t.ok(&["info"]);
    assert_eq!(field(&text, "Containers"), "2", "{text}");
    assert_eq!(field(&text, "Running"), "1", "{text}");
    assert_eq!(field(&text, "Paused"), "0", "{text}");
    assert_eq!(field(&text, "Stopped"), "1", "{text}");
    assert_eq!(field(&text, "Images"), "1", "{text}");
    assert_eq!(field(&text, "Storage Driver"), "overlay");
    assert!(!field(&text, "Backing Filesystem").is_empty());
    assert_eq!(field(&text, "Supports d_type"), "true");
    assert_eq!(field(&text, "Logging Driver"), "json-file");
    assert_eq!(field(&text, "Cgroup Driver"), "cgroupfs");
    assert!(["1", "2"].contains(&field(&text, "Cgroup Version")));
    assert_eq!(field(&text, "Kernel Version"), uname_r());
    assert_eq!(field(&text, "OSType"), "linux");
    assert_eq!(field(&text, "Default Runtime"), "corral");
    assert_eq!(field(&text, "Docker Root Dir"), t.store().to_str().unwrap());
    assert!(
        text.contains(" Security Options:\n  seccomp\n   Profile: builtin\n"),
        "{text}"
    );
    assert!(
        field(&text, "Network").contains("bridge"),
        "the CNI plugins: {text}"
    );
    let os = fs::read_to_string("/etc/os-release").unwrap();
    let pretty = os
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .unwrap()
        .trim_matches('"');
    assert_eq!(field(&text, "Operating System"), pretty);

    // The same as one JSON object with docker's keys.
    let v: serde_json::Value = serde_json::from_str(&t.ok(&["info", "--format", "json"])).unwrap();
    assert_eq!(v["Containers"], 2);
    assert_eq!(v["ContainersRunning"], 1);
    assert_eq!(v["ContainersPaused"], 0);
    assert_eq!(v["ContainersStopped"], 1);
    assert_eq!(v["Images"], 1);
    assert_eq!(v["Driver"], "overlay");
    assert_eq!(v["DriverStatus"][0][0], "Backing Filesystem");
    assert_eq!(v["CgroupDriver"], "cgroupfs");
    assert_eq!(v["KernelVersion"], uname_r());
    assert!(v["NCPU"].as_u64().unwrap() >= 1);
    assert!(v["MemTotal"].as_u64().unwrap() > 1 << 20);
    assert_eq!(v["DockerRootDir"], t.store().to_str().unwrap());
    assert!(v["SecurityOptions"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("name=seccomp,profile=builtin")));
    assert!(v["Warnings"].is_array());
    let w: serde_json::Value =
        serde_json::from_str(&t.ok(&["info", "--format", "{{json .}}"])).unwrap();
    assert_eq!(w["Containers"], v["Containers"]);
    assert_eq!(
        t.ok(&["info", "--format", "{{.Driver}} {{.Images}}"]),
        "overlay 1\n"
    );
    assert_eq!(t.ok(&["system", "info", "-f", "{{.Driver}}"]), "overlay\n");
}

/// A world-readable dir (so that another user may look at what is not in it).
fn open_dir(t: &T) -> PathBuf {
    let d = t.dir.path().join("open");
    fs::create_dir(&d).unwrap();
    fs::set_permissions(t.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
    d
}

/// corral as user nobody (65534), with a clean environment.
fn as_nobody(args: &[&str]) -> Output {
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(common::corral())
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::null());
    bounded(c, Duration::from_secs(60))
}

fn entries(p: &Path) -> Vec<String> {
    common::names(p)
}

#[test]
fn info_as_a_user_who_is_not_root_writes_nothing() {
    let t = T::new();
    let d = open_dir(&t);
    let store = d.join("store");
    let state = d.join("state");
    let own_root = PathBuf::from("/tmp/corral-65534");
    let had_own_root = own_root.exists();
    let out = as_nobody(&[
        "--store",
        store.to_str().unwrap(),
        "--root",
        state.to_str().unwrap(),
        "info",
        "--format",
        "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["Containers"], 0);
    assert_eq!(v["Images"], 0);
    assert_eq!(v["DockerRootDir"], store.to_str().unwrap());
    assert!(v["SecurityOptions"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("name=rootless")));
    assert!(v["NCPU"].as_u64().unwrap() >= 1);
    assert!(entries(&d).is_empty(), "info made {:?}", entries(&d));

    // The text, and the defaults (the store's default and the user's own state root).
    let out = as_nobody(&["--store", store.to_str().unwrap(), "info"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(field(&text, "Images"), "0", "{text}");
    assert!(text.contains("  rootless\n"), "{text}");
    assert!(entries(&d).is_empty(), "info made {:?}", entries(&d));
    assert_eq!(
        own_root.exists(),
        had_own_root,
        "info made {}",
        own_root.display()
    );

    // A store the user may not read (root's, 0700): the host's figures all the same, and a
    // warning naming the store.
    let t2 = T::new();
    let rootfs = TestRootfs::new();
    t2.ok(&["image", "import", rootfs.rootfs().to_str().unwrap(), "bb"]);
    fs::set_permissions(t2.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(t2.store(), fs::Permissions::from_mode(0o700)).unwrap();
    let before = entries(&t2.store());
    let out = as_nobody(&[
        "--store",
        t2.store().to_str().unwrap(),
        "info",
        "--format",
        "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["Images"], 0);
    let warnings = v["Warnings"].to_string();
    assert!(
        warnings.contains(t2.store().to_str().unwrap()),
        "{warnings}"
    );
    assert!(warnings.contains("ermission denied"), "{warnings}");
    assert_eq!(entries(&t2.store()), before);
    // Root's own info of that store: the image, and nothing new in the store either.
    assert_eq!(t2.ok(&["info", "-f", "{{.Images}}"]), "1\n");
    assert_eq!(entries(&t2.store()), before);
}

#[test]
fn info_of_a_store_that_does_not_exist_makes_none() {
    let t = T::new();
    let text = t.ok(&["info"]);
    assert_eq!(field(&text, "Images"), "0");
    assert!(!t.store().exists(), "info made the store");
    assert!(!t.state().exists(), "info made the state root");
}

#[test]
fn version_as_text_and_json() {
    let t = T::new();
    let text = t.ok(&["version"]);
    assert_eq!(field(&text, "Version"), env!("CARGO_PKG_VERSION"), "{text}");
    assert!(!field(&text, "Git commit").is_empty());
    assert!(field(&text, "Rust version").starts_with("rustc "), "{text}");
    assert!(!field(&text, "Built").is_empty());
    assert_eq!(
        field(&text, "OS/Arch"),
        format!(
            "linux/{}",
            if cfg!(target_arch = "x86_64") {
                "amd64"
            } else {
                std::env::consts::ARCH
            }
        )
    );
    assert!(
        text.contains(" OCI runtime spec:\n  Version:          1."),
        "{text}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&t.ok(&["version", "--format", "json"])).unwrap();
    assert_eq!(v["Client"]["Version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["Client"]["Os"], "linux");
    let comps = v["Server"]["Components"].as_array().unwrap();
    assert!(comps.iter().any(
        |c| c["Name"] == "OCI runtime spec" && c["Version"].as_str().unwrap().starts_with("1.")
    ));
    assert_eq!(
        t.ok(&["version", "--format", "{{.Client.Version}}"]),
        format!("{}\n", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(
        t.ok(&["--version"]),
        format!("corral {}\n", env!("CARGO_PKG_VERSION"))
    );
    assert!(!t.store().exists() && !t.state().exists());
}

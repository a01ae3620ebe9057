//! Volumes through the `corral` binary: a named volume outlives its container and is
//! shared by two, an empty one is filled from the image (never through the image's
//! symlinks: a hostile image's links to the host are copied as links, its VOLUME paths
//! through links get nothing), one in use cannot be removed, `volume
//! create|ls|inspect|rm|prune`. Each test has its own store and state root and removes what
//! it made.

mod common;

use common::{bounded, names};

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use testkit::TestRootfs;

struct T {
    dir: tempfile::TempDir,
    rootfs: TestRootfs,
    ids: std::cell::RefCell<Vec<String>>,
}

impl T {
    fn new() -> T {
        testkit::require_root();
        T {
            dir: tempfile::Builder::new()
                .prefix("corral-volumes-")
                .tempdir()
                .unwrap(),
            rootfs: TestRootfs::new(),
            ids: Default::default(),
        }
    }

    fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut c = Command::new(common::corral());
        c.arg("--store")
            .arg(self.store())
            .arg("--root")
            .arg(self.state())
            .args(args)
            .stdin(Stdio::null());
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

    fn id(&self) -> String {
        let id = testkit::unique_id("vol");
        self.ids.borrow_mut().push(id.clone());
        id
    }

    fn data(&self, volume: &str) -> PathBuf {
        self.store().join("volumes").join(volume).join("_data")
    }
}

impl Drop for T {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter() {
            let _ = self.run(&["delete", "--force", id]);
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

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A tar built header by header (links written as they are, to anywhere).
struct RawTar(tar::Builder<Vec<u8>>);

impl RawTar {
    fn new() -> Self {
        RawTar(tar::Builder::new(Vec::new()))
    }
    fn entry(&mut self, name: &str, kind: tar::EntryType, link: Option<&str>, data: &[u8]) {
        let mut h = tar::Header::new_gnu();
        {
            let g = h.as_gnu_mut().unwrap();
            g.name[..name.len()].copy_from_slice(name.as_bytes());
            if let Some(l) = link {
                g.linkname[..l.len()].copy_from_slice(l.as_bytes());
            }
        }
        h.set_entry_type(kind);
        h.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
        h.set_size(data.len() as u64);
        h.set_mtime(1_600_000_000);
        h.set_cksum();
        self.0.append(&h, data).unwrap();
    }
    fn dir(&mut self, name: &str) {
        self.entry(name, tar::EntryType::Directory, None, b"");
    }
    fn file(&mut self, name: &str, data: &str) {
        self.entry(name, tar::EntryType::Regular, None, data.as_bytes());
    }
    fn link(&mut self, name: &str, to: &str) {
        self.entry(name, tar::EntryType::Symlink, Some(to), b"");
    }
    fn finish(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// A `docker save` archive of `layers` whose config has `Volumes` `volumes`.
fn docker_save(volumes: &[&str], layers: &[&[u8]], tag: &str) -> Vec<u8> {
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| format!("sha256:{}", sha256_hex(l)))
        .collect();
    let vols: serde_json::Map<String, Value> =
        volumes.iter().map(|v| (v.to_string(), json!({}))).collect();
    let config = json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"], "Volumes": vols},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let cbytes = serde_json::to_vec(&config).unwrap();
    let cname = format!("{}.json", sha256_hex(&cbytes));
    let lnames: Vec<String> = (0..layers.len())
        .map(|i| format!("l{i}/layer.tar"))
        .collect();
    let mb = serde_json::to_vec(&json!([{"Config": cname, "RepoTags": [tag], "Layers": lnames}]))
        .unwrap();
    let mut files: Vec<(&str, &[u8])> = vec![("manifest.json", &mb), (&cname, &cbytes)];
    for (n, l) in lnames.iter().zip(layers) {
        files.push((n, l));
    }
    tar_of(&files)
}

/// The image `vol:1`: busybox, `/data` with a file and links out to the host (`up` -> `/`,
/// `passwd` -> `/etc/passwd`), `/evil` a link to `/etc`, `/evil2` a link to the host's dir
/// `canary`, and VOLUMEs `/data` and `/evil`.
fn image(t: &T, canary: &Path) {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    b.append_dir_all(".", t.rootfs.rootfs()).unwrap();
    let base = b.into_inner().unwrap();
    let mut top = RawTar::new();
    top.dir("data/");
    top.file("data/seed", "from the image\n");
    top.dir("data/sub/");
    top.file("data/sub/deep", "deep\n");
    top.link("data/up", "/");
    top.link("data/passwd", "/etc/passwd");
    top.link("evil", "/etc");
    top.link("evil2", canary.to_str().unwrap());
    let top = top.finish();
    let tar = docker_save(&["/data", "/evil"], &[&base, &top], "vol:1");
    let p = t.dir.path().join("vol.tar");
    fs::write(&p, tar).unwrap();
    t.ok(&["image", "import", p.to_str().unwrap()]);
}

fn anonymous_name(id: &str, path: &str) -> String {
    sha256_hex(format!("corral-anonymous-volume\0{id}\0{path}").as_bytes())
}

#[test]
fn volumes_outlive_containers_are_shared_filled_from_the_image_and_never_through_links() {
    let t = T::new();
    // A host dir the hostile image points at: nothing is read from it or written to it.
    let canary = t.dir.path().join("canary");
    fs::create_dir(&canary).unwrap();
    fs::write(canary.join("secret"), "host\n").unwrap();
    image(&t, &canary);

    // First use: `named` is made and filled from the image's /data; /evil gets an
    // anonymous volume, filled with nothing (its path in the image is a link out).
    let a = t.id();
    let out = t.ok(&[
        "run", "--rm", "--network", "none", "--name", &a, "-v", "named:/data", "--image",
        "vol:1", "--", "sh", "-c",
        "cat /data/seed /data/sub/deep; readlink /data/up; echo one > /data/new; ls -A /evil | wc -l",
    ]);
    assert_eq!(out, "from the image\ndeep\n/\n0\n");
    // It outlives the container (removed with --rm).
    let d = t.data("named");
    assert_eq!(fs::read_to_string(d.join("new")).unwrap(), "one\n");
    assert_eq!(names(&d), ["new", "passwd", "seed", "sub", "up"]);
    assert!(fs::symlink_metadata(d.join("up")).unwrap().is_symlink());
    assert!(fs::symlink_metadata(d.join("passwd")).unwrap().is_symlink());
    assert_eq!(
        fs::read_link(d.join("passwd")).unwrap(),
        Path::new("/etc/passwd")
    );
    // Its anonymous volume went with it (--rm), as docker's.
    let evil = anonymous_name(&a, "/evil");
    assert!(!t.data(&evil).exists());
    assert_eq!(names(&canary), ["secret"]);
    // A volume at a path that is a link to a host dir: nothing read from it (the
    // container itself may or may not start: its mount point resolves inside its root).
    let z = t.id();
    let _ = t.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--name",
        &z,
        "-v",
        "canaryvol:/evil2",
        "--image",
        "vol:1",
        "--",
        "true",
    ]);
    assert!(names(&t.data("canaryvol")).is_empty());
    assert_eq!(names(&canary), ["secret"]);
    let ls = t.ok(&["volume", "ls", "-q"]);
    assert!(ls.lines().any(|l| l == "named"), "{ls}");

    // Shared by two containers: one running writes, the other (read-only) reads; not
    // filled again (it has content).
    let b = t.id();
    t.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        &b,
        "--mount",
        "type=volume,source=named,target=/data",
        "--image",
        "vol:1",
        "--",
        "sleep",
        "60",
    ]);
    t.ok(&[
        "exec",
        &b,
        "sh",
        "-c",
        "echo two > /data/from-b; rm /data/seed",
    ]);
    let c = t.id();
    let out = t.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--name",
        &c,
        "-v",
        "named:/data:ro",
        "--image",
        "vol:1",
        "--",
        "sh",
        "-c",
        "cat /data/from-b; ls /data/seed 2>/dev/null; touch /data/x 2>/dev/null || echo ro",
    ]);
    assert_eq!(out, "two\nro\n");

    // In use by b's record: rm is refused in docker's words; prune keeps it.
    let out = t.run(&["volume", "rm", "named"]);
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("remove named: volume is in use - [{b}]")),
        "{err}"
    );
    let out = t.ok(&["volume", "prune", "-f", "--all"]);
    assert!(out.contains("canaryvol") && !out.contains("named"), "{out}");
    assert!(t.data("named").is_dir());
    let b_evil = anonymous_name(&b, "/evil");
    assert!(t.data(&b_evil).is_dir());
    t.ok(&["delete", "--force", &b]);

    // create, inspect, ls, rm, prune.
    assert_eq!(
        t.ok(&["volume", "create", "--label", "k=v", "made"]),
        "made\n"
    );
    let v: Value = serde_json::from_str(&t.ok(&["volume", "inspect", "made"])).unwrap();
    assert_eq!(v[0]["Name"], "made");
    assert_eq!(v[0]["Driver"], "local");
    assert_eq!(v[0]["Labels"]["k"], "v");
    assert_eq!(v[0]["Mountpoint"], t.data("made").to_str().unwrap());
    let ls = t.ok(&["volume", "ls"]);
    assert!(
        ls.starts_with("DRIVER") && ls.contains("local           made"),
        "{ls}"
    );
    // prune: anonymous ones only, then (--all) every unused one.
    let out = t.ok(&["volume", "prune", "-f"]);
    assert!(out.contains(&b_evil), "{out}");
    assert!(t.data("named").is_dir() && t.data("made").is_dir());
    t.ok(&["volume", "rm", "made"]);
    t.ok(&["volume", "prune", "-f", "--all"]);
    assert!(names(&t.store().join("volumes")).is_empty());
    let out = t.run(&["volume", "rm", "made"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such volume"));
    assert_eq!(names(&canary), ["secret"]);
}

/// docker's form: `run -d -v NAME:/path IMAGE CMD` makes and fills the volume at create,
/// `rm` leaves named and anonymous volumes, `rm -v` takes the container's anonymous ones.
#[test]
fn dockers_run_mounts_volumes_and_rm_v_takes_only_the_anonymous_ones() {
    let t = T::new();
    let canary = t.dir.path().join("canary");
    fs::create_dir(&canary).unwrap();
    image(&t, &canary);
    let (a, b) = (t.id(), t.id());
    let id_a = t
        .ok(&[
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            &a,
            "-v",
            "dvol:/data",
            "vol:1",
            "sleep",
            "100",
        ])
        .trim()
        .to_string();
    let out = t.ok(&[
        "exec",
        &a,
        "sh",
        "-c",
        "cat /data/seed; echo two > /data/new",
    ]);
    assert_eq!(out, "from the image\n");
    let id_b = t
        .ok(&[
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            &b,
            "-v",
            "/anon",
            "-v",
            "dvol:/shared",
            "vol:1",
            "sleep",
            "100",
        ])
        .trim()
        .to_string();
    assert_eq!(t.ok(&["exec", &b, "cat", "/shared/new"]), "two\n");
    let (evil_a, anon_b, evil_b) = (
        anonymous_name(&id_a, "/evil"),
        anonymous_name(&id_b, "/anon"),
        anonymous_name(&id_b, "/evil"),
    );
    for v in [&evil_a, &anon_b, &evil_b] {
        assert!(t.data(v).is_dir(), "{v} not made");
    }
    // In use: refused.
    let busy = t.run(&["volume", "rm", "dvol"]);
    assert_ne!(busy.status.code(), Some(0));
    t.ok(&["rm", "-f", &a]);
    t.ok(&["rm", "-f", "-v", &b]);
    assert_eq!(
        fs::read_to_string(t.data("dvol").join("new")).unwrap(),
        "two\n"
    );
    assert!(
        t.data(&evil_a).is_dir(),
        "rm without -v took an anonymous volume"
    );
    assert!(!t.data(&anon_b).exists() && !t.data(&evil_b).exists());
    t.ok(&["volume", "rm", "dvol", &evil_a]);
    assert!(!t.data("dvol").exists());
}

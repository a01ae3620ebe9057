//! Docker's image verbs through the `corral` binary: `build` (with `.`, several `-t`,
//! `--target`, `--build-arg`, none), `images`, `rmi`, `tag`, `history`, `save`/`load` (a tar
//! that corral and podman's docker-archive reader both load), `commit`'s flags, `image
//! prune`, `system df` and `system prune`. Every test has its own store and state root and
//! removes every container it made.

mod common;

use common::{bounded, names};

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use testkit::TestRootfs;

/// A private store and state root, a busybox root filesystem, and the containers made.
struct T {
    dir: tempfile::TempDir,
    rootfs: TestRootfs,
    ids: std::cell::RefCell<Vec<String>>,
}

impl T {
    fn new() -> T {
        testkit::require_root();
        let dir = tempfile::Builder::new()
            .prefix("corral-docker-images-")
            .tempdir()
            .unwrap();
        T {
            dir,
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

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// A container name this test uses (force-deleted at the end).
    fn id(&self, prefix: &str) -> String {
        let id = testkit::unique_id(prefix);
        self.ids.borrow_mut().push(id.clone());
        id
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(common::corral());
        c.arg("--store")
            .arg(self.store())
            .arg("--root")
            .arg(self.state())
            .args(args)
            .stdin(Stdio::null());
        c
    }

    /// corral with this store and root (in `cwd`, if given), bounded in time.
    fn run_in(&self, cwd: Option<&Path>, args: &[&str]) -> Output {
        let mut c = self.command(args);
        if let Some(d) = cwd {
            c.current_dir(d);
        }
        bounded(c, Duration::from_secs(240))
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_in(None, args)
    }

    fn ok_in(&self, cwd: Option<&Path>, args: &[&str]) -> String {
        let out = self.run_in(cwd, args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "corral {args:?}: stdout {} stderr {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn ok(&self, args: &[&str]) -> String {
        self.ok_in(None, args)
    }

    /// A failing command's stderr.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_ne!(
            out.status.code(),
            Some(0),
            "corral {args:?} should fail: stdout {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Import the busybox root as `name`.
    fn busybox(&self, name: &str) {
        let r = self.rootfs.rootfs().to_str().unwrap().to_string();
        self.ok(&["image", "import", &r, name]);
    }

    /// A build context with `dockerfile` and a file `message`.
    fn context(&self, name: &str, dockerfile: &str) -> PathBuf {
        let d = self.path(name);
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("Dockerfile"), dockerfile).unwrap();
        fs::write(d.join("message"), "hello from a layer\n").unwrap();
        d
    }

    /// The full image ID of `name` (`images --no-trunc -q REPO[:TAG]`).
    fn image_id(&self, name: &str) -> String {
        let out = self.ok(&["images", "--no-trunc", "-q", name]);
        let ids: Vec<&str> = out.lines().collect();
        assert_eq!(ids.len(), 1, "images -q {name}: {out}");
        ids[0].to_string()
    }

    /// `run --rm` of `image` with `cmd` (no network), its stdout.
    fn run_image(&self, image: &str, cmd: &[&str]) -> Output {
        let mut args = vec!["run", "--rm", "--network", "none", "--image", image, "--"];
        args.extend_from_slice(cmd);
        self.run(&args)
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
        let mounts: Vec<String> = fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(self.dir.path().to_str().unwrap()))
            .map(String::from)
            .collect();
        if !std::thread::panicking() {
            assert!(leaks.is_empty(), "leaked: {leaks:#?}");
            assert!(mounts.is_empty(), "mounts left: {mounts:#?}");
        }
    }
}

/// Column starts of a header line (each name's offset).
fn columns(header: &str, names: &[&str]) -> Vec<usize> {
    names
        .iter()
        .map(|n| {
            header
                .find(n)
                .unwrap_or_else(|| panic!("header {header:?} lacks {n:?}"))
        })
        .collect()
}

const TWO_STAGES: &str = "FROM bb AS base\n\
ARG GREETING=hi\n\
RUN echo \"$GREETING\" > /greeting\n\
COPY message /srv/message\n\
CMD [\"cat\", \"/greeting\"]\n\
FROM bb AS second\n\
RUN echo two > /two\n";

#[test]
fn build_with_dot_several_tags_target_and_build_args() {
    let t = T::new();
    t.busybox("bb");
    let ctx = t.context("ctx", TWO_STAGES);
    // `.` as the context, two names, the first stage only, a build argument.
    let out = t.ok_in(
        Some(&ctx),
        &[
            "build",
            "-t",
            "app:1",
            "-t",
            "app:2",
            "--target",
            "base",
            "--build-arg",
            "GREETING=hello",
            "--network",
            "none",
            ".",
        ],
    );
    assert!(out.contains("Successfully tagged app:1"), "{out}");
    assert!(out.contains("Successfully tagged app:2"), "{out}");
    assert!(
        !out.contains("echo two"),
        "--target stops before the next stage: {out}"
    );
    assert_eq!(t.image_id("app:1"), t.image_id("app:2"));
    let o = t.run_image("app:1", &[]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "hello\n");
    let o = t.run_image("app:2", &["cat", "/srv/message", "/two"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "hello from a layer\n");
    assert_ne!(o.status.code(), Some(0), "/two is the second stage's");

    // No -t: the image is kept untagged and its ID printed; it runs by that ID.
    let out = t.ok_in(Some(&ctx), &["build", "--network", "none", "."]);
    let short = out
        .lines()
        .find_map(|l| l.strip_prefix("Successfully built "))
        .unwrap_or_else(|| panic!("no image ID: {out}"))
        .to_string();
    assert!(!out.contains("Successfully tagged"), "{out}");
    let images = t.ok(&["images"]);
    assert!(
        images
            .lines()
            .any(|l| l.starts_with("<none>") && l.contains(&short)),
        "{images}"
    );
    assert_eq!(
        t.ok(&["images", "-q", "--filter", "dangling=true"]),
        format!("{short}\n")
    );
    let named = t.ok(&[
        "images",
        "-q",
        "-f",
        "dangling=false",
        "-f",
        "reference=app:*",
    ]);
    assert_eq!(
        named,
        format!("{}\n", &t.image_id("app:1")["sha256:".len()..][..12])
    );
    let o = t.run_image(&short, &["cat", "/two"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "two\n");
    // -q: the full ID alone, the same image again (from the cache).
    let q = t.ok_in(Some(&ctx), &["build", "-q", "--network", "none", "."]);
    assert_eq!(q.lines().count(), 1, "{q}");
    assert!(q.starts_with(&format!("sha256:{short}")), "{q} vs {short}");
    // A name moved to a new build, or by `tag`, leaves the image that had it untagged, as
    // docker lists it; `image prune` takes it.
    let old = t.image_id("app:1");
    assert_eq!(t.ok(&["rmi", "app:2"]), "Untagged: app:2\n");
    fs::write(ctx.join("message"), "changed\n").unwrap();
    t.ok_in(
        Some(&ctx),
        &[
            "build",
            "-t",
            "app:1",
            "--target",
            "base",
            "--network",
            "none",
            ".",
        ],
    );
    let new = t.image_id("app:1");
    assert_ne!(new, old);
    t.ok(&["tag", "bb", "app:1"]);
    let dangling = t.ok(&["images", "-q", "--no-trunc", "-f", "dangling=true"]);
    for id in [&old, &new] {
        assert!(dangling.lines().any(|l| l == id), "{id} in {dangling}");
    }
    let out = t.ok(&["image", "prune", "-f"]);
    for id in [&old, &new] {
        assert!(out.contains(&format!("deleted: {id}")), "{out}");
    }
    // `image build` takes the same flags.
    let out = t.ok(&[
        "image",
        "build",
        "-t",
        "app:3",
        "--target",
        "base",
        "--network",
        "none",
        ctx.to_str().unwrap(),
    ]);
    assert!(out.contains("Successfully tagged app:3"), "{out}");
    let err = t.fails(&[
        "build",
        "--network",
        "none",
        "--target",
        "nope",
        ctx.to_str().unwrap(),
    ]);
    assert!(err.contains("no stage named \"nope\""), "{err}");
}

#[test]
fn images_columns_quiet_and_filter() {
    let t = T::new();
    t.busybox("bb");
    t.ok(&["tag", "bb", "other/bb:v2"]);
    let out = t.ok(&["images"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    let names = ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"];
    let cols = columns(lines[0], &names);
    assert!(cols.windows(2).all(|w| w[0] < w[1]), "{}", lines[0]);
    let id = t.image_id("bb");
    let short = &id["sha256:".len()..][..12];
    for l in &lines[1..] {
        // Each field starts at its column (docker's tabwriter layout).
        assert_eq!(&l[cols[2]..cols[2] + 12], short, "{l}");
        assert!(
            l[cols[3]..].contains(" ago"),
            "CREATED as docker says it: {l}"
        );
        assert!(l[cols[4]..].trim_end().ends_with("MB"), "{l}");
    }
    assert!(lines[1..]
        .iter()
        .any(|l| l.starts_with("bb ") && l[cols[1]..].starts_with("latest")));
    assert!(lines[1..]
        .iter()
        .any(|l| l.starts_with("other/bb") && l[cols[1]..].starts_with("v2")));
    // -q: each image once, short IDs; --no-trunc: sha256:...
    assert_eq!(t.ok(&["images", "-q"]), format!("{short}\n"));
    assert_eq!(t.ok(&["images", "-q", "--no-trunc"]), format!("{id}\n"));
    // A repository filter, and a template.
    let f = t.ok(&["images", "other/bb"]);
    assert_eq!(f.lines().count(), 2, "{f}");
    assert!(!f.contains("latest"), "{f}");
    let f = t.ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    assert!(f.contains(&format!("bb:latest {short}")), "{f}");
    let j = t.ok(&["images", "--format", "json"]);
    for l in j.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["ID"], short);
    }
}

#[test]
fn rmi_says_what_docker_says_and_refuses_an_image_in_use() {
    let t = T::new();
    t.busybox("bb");
    t.ok(&["tag", "bb", "bb:two"]);
    let id = t.image_id("bb");
    let short = id["sha256:".len()..][..12].to_string();
    // By ID with two names: docker's refusal.
    let err = t.fails(&["rmi", &short]);
    assert!(
        err.contains(&format!(
            "conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories"
        )),
        "{err}"
    );
    // One name of two: only untagged.
    assert_eq!(t.ok(&["rmi", "bb:two"]), "Untagged: bb:two\n");
    // A container uses it: refused by name and by ID, the names kept.
    let c = t.id("rmi-user");
    t.ok(&[
        "run",
        "--network",
        "none",
        "--image",
        "bb",
        "--name",
        &c,
        "--",
        "true",
    ]);
    let err = t.fails(&["rmi", "bb"]);
    assert!(
        err.contains(&format!(
            "conflict: unable to remove repository reference \"bb:latest\" (must force) - container {c} is using its referenced image {short}"
        )),
        "{err}"
    );
    let err = t.fails(&["rmi", &short]);
    assert!(
        err.contains(&format!(
            "conflict: unable to delete {short} (must be forced) - image is being used by stopped container {c}"
        )),
        "{err}"
    );
    assert!(t.ok(&["images"]).contains("bb "));
    // -f: the name goes, the image stays (untagged) for its container.
    assert_eq!(t.ok(&["rmi", "-f", "bb"]), "Untagged: bb:latest\n");
    let images = t.ok(&["images"]);
    assert!(
        images.contains(&format!("<none>       <none>    {short}")),
        "{images}"
    );
    // The container gone, the image goes by its ID: its ID, then its layer.
    t.ok(&["delete", &c]);
    let out = t.ok(&["rmi", &short]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], format!("Deleted: {id}"), "{out}");
    assert!(lines[1].starts_with("Deleted: sha256:"), "{out}");
    assert!(names(&t.store().join("layers/sha256")).is_empty());
    // An unknown image: named, exit 1, the others still removed.
    t.busybox("bb");
    let out = t.run(&["rmi", "nope", "bb"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("No such image: nope"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Untagged: bb:latest"));
    assert_eq!(t.ok(&["images", "-q"]), "");
}

/// The names of the entries of a tar.
fn tar_names(p: &Path) -> Vec<String> {
    let mut a = tar::Archive::new(fs::File::open(p).unwrap());
    a.entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect()
}

fn tar_file(p: &Path, name: &str) -> Vec<u8> {
    use std::io::Read;
    let mut a = tar::Archive::new(fs::File::open(p).unwrap());
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_string_lossy() == name {
            let mut v = Vec::new();
            e.read_to_end(&mut v).unwrap();
            return v;
        }
    }
    panic!("{name} not in {}", p.display());
}

#[test]
fn save_then_load_gives_the_same_image_and_the_tar_is_docker_and_oci() {
    let t = T::new();
    t.busybox("bb");
    let ctx = t.context("ctx", TWO_STAGES);
    t.ok(&[
        "build",
        "-t",
        "app:1",
        "--target",
        "base",
        "--network",
        "none",
        ctx.to_str().unwrap(),
    ]);
    let (bb, app) = (t.image_id("bb"), t.image_id("app:1"));
    let tar = t.path("saved.tar");
    t.ok(&["save", "-o", tar.to_str().unwrap(), "app:1", "bb"]);
    let entries = tar_names(&tar);
    for n in ["oci-layout", "index.json", "manifest.json", "repositories"] {
        assert!(entries.contains(&n.to_string()), "{n} not in {entries:?}");
    }
    // docker's manifest.json: each image's config, names and layers, paths in the tar.
    let m: serde_json::Value = serde_json::from_slice(&tar_file(&tar, "manifest.json")).unwrap();
    let m = m.as_array().unwrap();
    assert_eq!(m.len(), 2);
    let app_entry = m.iter().find(|e| e["RepoTags"][0] == "app:1").unwrap();
    assert_eq!(
        app_entry["Config"],
        format!("blobs/sha256/{}", &app["sha256:".len()..])
    );
    for l in app_entry["Layers"].as_array().unwrap() {
        assert!(entries.contains(&l.as_str().unwrap().to_string()), "{l}");
    }
    // The OCI index names both.
    let idx: serde_json::Value = serde_json::from_slice(&tar_file(&tar, "index.json")).unwrap();
    let names: Vec<&str> = idx["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            d["annotations"]["io.containerd.image.name"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(names, ["app:1", "bb:latest"]);

    // Into a fresh store, from the file and from stdin: the same image IDs.
    let other = t.path("other-store");
    let load = |stdin: Option<&Path>| {
        let mut c = Command::new(common::corral());
        c.arg("--store")
            .arg(&other)
            .arg("--root")
            .arg(t.state())
            .arg("load");
        match stdin {
            Some(p) => c.stdin(fs::File::open(p).unwrap()),
            None => c.arg("-i").arg(&tar).stdin(Stdio::null()),
        };
        let out = bounded(c, Duration::from_secs(120));
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(load(None), "Loaded image: app:1\nLoaded image: bb:latest\n");
    let ids = |store: &Path| {
        let mut c = Command::new(common::corral());
        c.arg("--store")
            .arg(store)
            .args(["images", "-q", "--no-trunc"]);
        let mut v: Vec<String> =
            String::from_utf8_lossy(&bounded(c, Duration::from_secs(60)).stdout)
                .lines()
                .map(String::from)
                .collect();
        v.sort();
        v
    };
    let mut want = vec![app.clone(), bb.clone()];
    want.sort();
    assert_eq!(ids(&other), want);
    fs::remove_dir_all(&other).unwrap();
    assert_eq!(
        load(Some(&tar)),
        "Loaded image: app:1\nLoaded image: bb:latest\n"
    );
    assert_eq!(ids(&other), want);
    let o = {
        let mut c = Command::new(common::corral());
        c.arg("--store")
            .arg(&other)
            .arg("--root")
            .arg(t.state())
            .args(["run", "--rm", "--network", "none", "--image", "app:1"])
            .stdin(Stdio::null());
        bounded(c, Duration::from_secs(120))
    };
    assert_eq!(String::from_utf8_lossy(&o.stdout), "hi\n");

    // To stdout when it is not a terminal; an image saved by ID has no name, and loads
    // untagged.
    let by_id = t.path("by-id.tar");
    let mut c = t.command(&["save", &bb]);
    c.stdout(fs::File::create(&by_id).unwrap());
    assert!(c.status().unwrap().success());
    let m: serde_json::Value = serde_json::from_slice(&tar_file(&by_id, "manifest.json")).unwrap();
    assert!(m[0]["RepoTags"].is_null(), "{m}");
    let third = t.path("third-store");
    let mut c = Command::new(common::corral());
    c.arg("--store")
        .arg(&third)
        .arg("load")
        .arg("-q")
        .arg("-i")
        .arg(&by_id);
    let out = bounded(c, Duration::from_secs(60));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("Loaded image ID: {bb}\n")
    );
    assert_eq!(ids(&third), std::slice::from_ref(&bb));

    // podman's docker-archive reader takes it too, with the same IDs.
    let proot = t.path("podman-root");
    let prun = t.path("podman-run");
    let podman = |args: &[&str]| {
        let mut c = Command::new("podman");
        c.arg("--root")
            .arg(&proot)
            .arg("--runroot")
            .arg(&prun)
            .arg("--storage-driver")
            .arg("vfs")
            .args(args)
            .stdin(Stdio::null());
        let out = bounded(c, Duration::from_secs(120));
        assert_eq!(
            out.status.code(),
            Some(0),
            "podman {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let loaded = podman(&["load", "-i", tar.to_str().unwrap()]);
    assert!(loaded.contains("app:1"), "{loaded}");
    let pids = podman(&["images", "-q", "--no-trunc"]);
    for id in [&app, &bb] {
        assert!(pids.contains(id.as_str()), "{id} not in podman's {pids}");
    }
    // And what podman writes as a docker archive loads back with the same ID.
    let back = t.path("from-podman.tar");
    podman(&[
        "save",
        "--format",
        "docker-archive",
        "-o",
        back.to_str().unwrap(),
        "localhost/app:1",
    ]);
    let fourth = t.path("fourth-store");
    let mut c = Command::new(common::corral());
    c.arg("--store")
        .arg(&fourth)
        .arg("load")
        .arg("-i")
        .arg(&back);
    let out = bounded(c, Duration::from_secs(120));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Loaded image: localhost/app:1\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(ids(&fourth), std::slice::from_ref(&app));
    podman(&["rmi", "-a", "-f"]);

    // To a terminal: refused, as docker refuses.
    let mut c = Command::new("script");
    c.arg("-qec")
        .arg(format!(
            "{} --store {} save bb",
            common::corral(),
            t.store().display()
        ))
        .arg("/dev/null")
        .stdin(Stdio::null());
    let out = bounded(c, Duration::from_secs(60));
    assert_ne!(out.status.code(), Some(0));
    let all = String::from_utf8_lossy(&out.stdout);
    assert!(
        all.contains("cowardly refusing to save to a terminal. Use the -o flag or redirect"),
        "{all}"
    );
}

#[test]
fn history_and_commit_flags() {
    let t = T::new();
    t.busybox("bb");
    let c = t.id("commit");
    t.ok(&[
        "run",
        "--network",
        "none",
        "--image",
        "bb",
        "--name",
        &c,
        "--",
        "sh",
        "-c",
        "echo changed > /note",
    ]);
    let out = t.ok(&[
        "commit",
        "-m",
        "a note",
        "-a",
        "Jo <jo@example.org>",
        "-c",
        "CMD [\"cat\", \"/note\"]",
        "-c",
        "ENV FROM_COMMIT=yes",
        &c,
        "snap:1",
    ]);
    assert!(out.starts_with("sha256:"), "{out}");
    let o = t.run_image("snap:1", &[]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "changed\n");
    let o = t.run_image("snap:1", &["sh", "-c", "echo $FROM_COMMIT"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "yes\n");
    let inspect: serde_json::Value =
        serde_json::from_str(&t.ok(&["image", "inspect", "snap:1"])).unwrap();
    assert_eq!(inspect["Config"]["author"], "Jo <jo@example.org>");
    // No name: kept untagged, found by its ID.
    let id = t.ok(&["commit", &c]).trim().to_string();
    assert!(t.ok(&["images", "-q", "--no-trunc"]).contains(&id));
    // An unsupported change is refused before anything is made.
    let err = t.fails(&["commit", "-c", "RUN rm -rf /", &c, "snap:2"]);
    assert!(err.contains("RUN is not supported"), "{err}");

    // history: docker's columns, newest first, the image's own ID on top.
    let out = t.ok(&["history", "snap:1"]);
    let lines: Vec<&str> = out.lines().collect();
    let cols = columns(
        lines[0],
        &["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
    );
    let snap = t.image_id("snap:1");
    assert!(
        lines[1].starts_with(&snap["sha256:".len()..][..12]),
        "{out}"
    );
    assert!(lines[1][cols[1]..].contains(" ago"), "{out}");
    assert!(
        lines[1][cols[2]..].starts_with(&format!("corral commit {c}")),
        "{out}"
    );
    assert!(lines[1][cols[4]..].starts_with("a note"), "{out}");
    assert!(lines[2].starts_with("<missing>"), "{out}");
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(t.ok(&["history", "-q", "snap:1"]).lines().count(), 2);
    let full = t.ok(&["history", "--no-trunc", "snap:1"]);
    assert!(full.lines().nth(1).unwrap().starts_with(&snap), "{full}");
    t.ok(&["delete", &c]);
}

#[test]
fn image_prune_system_df_and_system_prune() {
    let t = T::new();
    t.busybox("bb");
    let ctx = t.context("ctx", TWO_STAGES);
    t.ok(&["build", "--network", "none", ctx.to_str().unwrap()]); // untagged
    t.ok(&[
        "build",
        "-t",
        "app:1",
        "--target",
        "base",
        "--network",
        "none",
        ctx.to_str().unwrap(),
    ]);
    let c = t.id("df");
    t.ok(&[
        "run",
        "--network",
        "none",
        "--image",
        "app:1",
        "--name",
        &c,
        "--",
        "sh",
        "-c",
        "head -c 100000 /dev/zero > /big",
    ]);
    let df = t.ok(&["system", "df"]);
    let lines: Vec<&str> = df.lines().collect();
    let cols = columns(
        lines[0],
        &["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
    );
    let row = |ty: &str| -> Vec<String> {
        let l = lines
            .iter()
            .find(|l| l.starts_with(ty))
            .unwrap_or_else(|| panic!("{ty} in {df}"));
        cols.iter()
            .skip(1)
            .map(|c| l[*c..].split_whitespace().next().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(row("Images")[..2], ["3", "1"], "{df}");
    assert_eq!(row("Containers")[..2], ["1", "0"], "{df}");
    assert!(row("Containers")[2].ends_with("kB"), "its 100 kB: {df}");
    assert_eq!(row("Local Volumes")[0], "0", "{df}");
    assert_ne!(row("Build Cache")[0], "0", "{df}");
    let j = t.ok(&["system", "df", "--format", "json"]);
    assert_eq!(j.lines().count(), 4, "{j}");

    // image prune: the untagged image only; the tagged ones stay.
    let out = t.ok(&["image", "prune", "-f"]);
    assert!(out.contains("Deleted Images:\ndeleted: sha256:"), "{out}");
    assert!(out.contains("Total reclaimed space: "), "{out}");
    assert!(!t.ok(&["images"]).contains("<none>"));

    // A network no container is attached to (its list only: no device is made before a
    // container attaches).
    t.ok(&["network", "create", "prune-me"]);
    // system prune: the stopped container, the network, the build cache; -a: every unused
    // image.
    let out = t.ok(&["system", "prune", "-f", "-a"]);
    assert!(out.contains("Deleted Networks:\nprune-me\n"), "{out}");
    assert!(!t.ok(&["network", "ls"]).contains("prune-me"));
    assert!(
        out.contains(&format!("Deleted Containers:\n{c}\n")),
        "{out}"
    );
    assert!(out.contains("Deleted Images:\nuntagged: "), "{out}");
    assert!(out.contains("untagged: app:1"), "{out}");
    assert!(out.contains("untagged: bb:latest"), "{out}");
    assert!(out.contains("Deleted build cache objects:"), "{out}");
    let total = out
        .lines()
        .find_map(|l| l.strip_prefix("Total reclaimed space: "))
        .unwrap();
    assert!(total.ends_with("MB"), "{out}");
    assert_eq!(t.ok(&["images", "-q"]), "");
    assert!(names(&t.store().join("layers/sha256")).is_empty());
    assert!(names(&t.store().join("containers")).is_empty());
    assert!(names(&t.store().join("cache")).is_empty());
    assert!(!t.state().join(&c).exists());
    let df = t.ok(&["system", "df"]);
    assert!(
        df.lines()
            .nth(1)
            .unwrap()
            .starts_with("Images          0         0         0B"),
        "{df}"
    );
}

/// The engine's containers (kept records) and the store's volumes: counted by `info` and
/// `system df`, the stopped ones removed by `system prune`, a running one left alone, a
/// named volume kept by `--volumes` (only anonymous ones go).
#[test]
fn engine_containers_and_volumes_in_info_df_and_prune() {
    use corral_engine::{CreateOptions, Engine};
    use runtime::describe::{Description, NetworkMode, Root};

    let t = T::new();
    t.busybox("bb");
    let engine = Engine::new(t.store(), t.state(), common::corral());
    struct Guard<'a>(&'a Engine, Vec<String>);
    impl Drop for Guard<'_> {
        fn drop(&mut self) {
            for id in &self.1 {
                let _ = self.0.remove(id, true, true);
            }
        }
    }
    let mut g = Guard(&engine, Vec::new());
    let describe = |args: &[&str]| {
        let mut d = Description::new(Root::Image("bb".into()));
        d.args = args.iter().map(|s| s.to_string()).collect();
        d.network.mode = NetworkMode::None;
        d
    };
    let mut create = |args: &[&str]| {
        let id = engine
            .create(&describe(args), &CreateOptions::default())
            .unwrap();
        g.1.push(id.clone());
        id
    };
    let running = create(&["sleep", "1000"]);
    let created = create(&["true"]);
    let exited = create(&["sh", "-c", "echo x > /f; exit 3"]);
    engine.start(&running).unwrap();
    engine.start(&exited).unwrap();
    assert_eq!(engine.wait(&exited).unwrap(), 3);
    t.ok(&["volume", "create", "keepme"]);

    let before = (tree(&t.store()), tree(&t.state()));
    let v: serde_json::Value = serde_json::from_str(&t.ok(&["info", "--format", "json"])).unwrap();
    assert_eq!(v["Containers"], 3, "{v}");
    assert_eq!(v["ContainersRunning"], 1, "{v}");
    assert_eq!(v["ContainersStopped"], 2, "{v}");
    let df = t.ok(&["system", "df"]);
    let row = |ty: &str| -> String {
        df.lines()
            .find(|l| l.starts_with(ty))
            .unwrap_or_else(|| panic!("{ty} in {df}"))
            .to_string()
    };
    assert!(
        row("Containers").starts_with("Containers      3         1 "),
        "{df}"
    );
    assert!(
        row("Local Volumes").starts_with("Local Volumes   1         0 "),
        "{df}"
    );
    assert_eq!(
        (tree(&t.store()), tree(&t.state())),
        before,
        "info and system df change nothing"
    );
    // The image is in use: not reclaimable while its containers are there.
    let err = t.fails(&["rmi", "bb"]);
    assert!(err.contains("must force"), "{err}");

    let out = t.ok(&["system", "prune", "-f", "--volumes"]);
    assert!(out.contains("Deleted Containers:\n"), "{out}");
    assert!(out.contains(&created) && out.contains(&exited), "{out}");
    assert!(!out.contains(&running), "{out}");
    assert!(!out.contains("keepme"), "a named volume stays: {out}");
    let left: Vec<String> = engine
        .list(true)
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(left, std::slice::from_ref(&running));
    assert!(t.ok(&["volume", "ls"]).contains("keepme"));
    let v: serde_json::Value = serde_json::from_str(&t.ok(&["info", "--format", "json"])).unwrap();
    assert_eq!(v["Containers"], 1, "{v}");
    engine.remove(&running, true, false).unwrap();
    t.ok(&["volume", "rm", "keepme"]);
}

/// Every path under `p` with its size and modification time (not following symlinks).
fn tree(p: &Path) -> Vec<(PathBuf, u64, i64, i64)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut todo = vec![p.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(md) = fs::symlink_metadata(&d) else {
            continue;
        };
        out.push((d.clone(), md.len(), md.mtime(), md.mtime_nsec()));
        if md.is_dir() {
            for e in fs::read_dir(&d).unwrap().flatten() {
                todo.push(e.path());
            }
        }
    }
    out.sort();
    out
}

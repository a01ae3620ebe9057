//! Images through the `corral` binary: import (rootfs, docker save, OCI layout), sharing
//! of layers between containers, copy-on-write, whiteouts, hostile layer tars, build and
//! its cache, commit, export, rm and prune. Every test has its own store and state root
//! (never /var/lib/corral) and removes everything it made.

mod common;

use common::{bounded, names};

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use testkit::TestRootfs;

/// A private store and state root, a busybox root filesystem, and the containers made.
struct Img {
    dir: tempfile::TempDir,
    rootfs: TestRootfs,
    ids: std::cell::RefCell<Vec<String>>,
}

impl Img {
    fn new() -> Img {
        testkit::require_root();
        let dir = tempfile::Builder::new()
            .prefix("corral-images-")
            .tempdir()
            .unwrap();
        let rootfs = TestRootfs::new();
        fs::write(
            rootfs.rootfs().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n",
        )
        .unwrap();
        fs::write(
            rootfs.rootfs().join("etc/group"),
            "root:x:0:\nnogroup:x:65534:\n",
        )
        .unwrap();
        Img {
            dir,
            rootfs,
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

    /// A container id this test uses (checked for leaks at the end).
    fn id(&self, prefix: &str) -> String {
        let id = testkit::unique_id(prefix);
        self.ids.borrow_mut().push(id.clone());
        id
    }

    /// corral with this store and root, bounded in time.
    fn run(&self, args: &[&str]) -> Output {
        names_its_network(args);
        let mut c = Command::new(common::corral());
        c.arg("--store")
            .arg(self.store())
            .arg("--root")
            .arg(self.state())
            .args(args)
            .stdin(Stdio::null());
        bounded(c, Duration::from_secs(240))
    }

    /// corral with this store and root, killed (and the test failed) after `limit`.
    fn run_for(&self, args: &[&str], limit: Duration) -> Output {
        names_its_network(args);
        let mut c = Command::new(common::corral());
        c.arg("--store")
            .arg(self.store())
            .arg("--root")
            .arg(self.state())
            .args(args)
            .stdin(Stdio::null());
        bounded(c, limit)
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

    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "corral {args:?} should fail: stdout {} stderr {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Import the busybox root as `name`.
    fn busybox(&self, name: &str) {
        let r = self.rootfs.rootfs().to_str().unwrap().to_string();
        self.ok(&["image", "import", &r, name]);
    }

    fn layers(&self) -> Vec<String> {
        names(&self.store().join("layers/sha256"))
    }

    fn inspect(&self, name: &str) -> Value {
        serde_json::from_str(&self.ok(&["image", "inspect", name])).unwrap()
    }
}

impl Drop for Img {
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
        for m in &mounts {
            if let Some(mp) = m.split(' ').nth(4) {
                let c = std::ffi::CString::new(mp).unwrap();
                // SAFETY: valid C string.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
        if !std::thread::panicking() {
            assert!(leaks.is_empty(), "leaked: {leaks:#?}");
            assert!(mounts.is_empty(), "mounts left: {mounts:#?}");
        }
    }
}

/// A container of an image, and a build's RUN steps, join the default bridge network unless
/// told otherwise; these tests run in the host's network namespace, where no test may make a
/// bridge (the network tests make theirs in a namespace of their own): every such command
/// here names its network.
fn names_its_network(args: &[&str]) {
    let makes = args.contains(&"--image") || args.windows(2).any(|w| w == ["image", "build"]);
    assert!(
        !makes || args.contains(&"--network"),
        "corral {args:?}: pass --network none (or host) in the host's namespace"
    );
}

/// Bytes on disk under `p` (blocks), not following symlinks.
fn du(p: &Path) -> u64 {
    let Ok(md) = fs::symlink_metadata(p) else {
        return 0;
    };
    let mut n = md.blocks() * 512;
    if md.is_dir() {
        for e in fs::read_dir(p).unwrap().flatten() {
            n += du(&e.path());
        }
    }
    n
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A tar built header by header (so that hostile names can be written as they are).
struct RawTar(tar::Builder<Vec<u8>>);

impl RawTar {
    fn new() -> Self {
        RawTar(tar::Builder::new(Vec::new()))
    }
    fn entry(
        &mut self,
        name: &str,
        kind: tar::EntryType,
        link: Option<&str>,
        data: &[u8],
    ) -> &mut Self {
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
        self
    }
    fn file(&mut self, name: &str, data: &str) -> &mut Self {
        self.entry(name, tar::EntryType::Regular, None, data.as_bytes())
    }
    fn finish(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

/// The busybox root as a layer tar.
fn rootfs_tar(root: &Path) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    b.append_dir_all(".", root).unwrap();
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
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

fn mountinfo() -> String {
    fs::read_to_string("/proc/self/mountinfo").unwrap()
}

#[test]
fn hundred_containers_share_one_copy_of_the_image() {
    let t = Img::new();
    t.busybox("base");
    let layers = t.layers();
    assert_eq!(layers.len(), 1);
    let layer_dir = t.store().join("layers/sha256").join(&layers[0]);
    let busybox_ino = fs::metadata(layer_dir.join("bin/busybox")).unwrap().ino();
    let layers_before = du(&t.store().join("layers"));
    let blobs_before = du(&t.store().join("blobs"));
    let store_before = du(&t.store());

    let ids: Vec<String> = (0..100).map(|_| t.id("share")).collect();
    for id in &ids {
        // Kept (no --rm), stopped: each holds its own thin upper dir.
        t.ok(&[
            "run",
            "--network",
            "none",
            "--image",
            "base",
            "--name",
            id,
            "--",
            "/bin/true",
        ]);
    }
    // The store grew only by the containers' small records; no layer was copied.
    assert_eq!(t.layers(), layers);
    assert_eq!(du(&t.store().join("layers")), layers_before);
    assert_eq!(du(&t.store().join("blobs")), blobs_before);
    let grown = du(&t.store()) - store_before;
    assert!(grown < 100 * 64 * 1024, "store grew by {grown} bytes");
    assert_eq!(
        fs::metadata(layer_dir.join("bin/busybox")).unwrap().ino(),
        busybox_ino
    );
    // Every container's root is an overlay on the very same layer dir.
    let info = mountinfo();
    let on_layer = info
        .lines()
        .filter(|l| l.contains(" overlay ") && l.contains(&layers[0]))
        .count();
    assert!(on_layer >= 100, "{on_layer} overlays use the layer");
    for id in &ids {
        let upper = runtime::state::overlay_paths(&t.state().join(id)).1;
        assert!(du(&upper) < 64 * 1024, "{id}'s upper is not thin");
    }

    // Copy-on-write: a write in one container is seen by no other, nor by the image.
    let (a, b) = (t.id("cow-a"), t.id("cow-b"));
    t.ok(&[
        "run",
        "--network",
        "none",
        "--image",
        "base",
        "--name",
        &a,
        "--",
        "sh",
        "-c",
        "echo mine > /etc/hostname2 && echo x >> /etc/passwd",
    ]);
    t.ok(&[
        "run",
        "--network",
        "none",
        "--image",
        "base",
        "--name",
        &b,
        "--",
        "sh",
        "-c",
        "test ! -e /etc/hostname2 && ! grep -q '^x$' /etc/passwd",
    ]);
    assert!(!layer_dir.join("etc/hostname2").exists());
    assert_eq!(
        fs::read_to_string(layer_dir.join("etc/passwd"))
            .unwrap()
            .lines()
            .count(),
        2
    );
    assert_eq!(
        fs::read_to_string(
            runtime::state::overlay_paths(&t.state().join(&a))
                .1
                .join("etc/hostname2")
        )
        .unwrap(),
        "mine\n"
    );
    let info = t.ok(&["info"]);
    assert!(info.contains("Storage Driver: overlay"), "{info}");
    assert!(info.contains(" Containers: 102"), "{info}");

    // Deleting every container leaves the image whole.
    for id in ids.iter().chain([&a, &b]) {
        t.ok(&["delete", id]);
    }
    assert!(names(&t.store().join("containers")).is_empty());
    assert_eq!(t.layers(), layers);
    assert_eq!(du(&t.store().join("layers")), layers_before);
    t.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--image",
        "base",
        "--",
        "/bin/true",
    ]);
}

#[test]
fn whiteouts_and_opaque_dirs_in_built_layers() {
    let t = Img::new();
    t.busybox("base");
    let ctx = t.path("ctx");
    fs::create_dir(&ctx).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        "FROM base\n\
         RUN mkdir -p /d/sub && echo 1 > /d/a && echo 2 > /d/sub/b && echo gone > /gone\n\
         RUN rm /gone /etc/group && rm -rf /d && mkdir /d && echo 3 > /d/c\n",
    )
    .unwrap();
    t.ok(&[
        "image",
        "build",
        "--network",
        "none",
        "-t",
        "wh",
        ctx.to_str().unwrap(),
    ]);
    let id = t.id("wh");
    let out = t.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--image",
        "wh",
        "--name",
        &id,
        "--",
        "sh",
        "-c",
        "ls /d; test -e /gone && echo gone-visible; test -e /etc/group && echo group-visible; true",
    ]);
    assert_eq!(
        out, "c\n",
        "the opaque dir hides a and sub; the whiteouts hide /gone"
    );
    // The last layer, as an OCI tar, holds the whiteout and opaque markers.
    let exp = t.path("wh.tar");
    t.ok(&["image", "export", "wh", exp.to_str().unwrap()]);
    let img = t.inspect("wh");
    let last = img["Manifest"]["layers"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let mut ar = tar::Archive::new(fs::File::open(&exp).unwrap());
    let mut layer = None;
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().ends_with(&last) {
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut v).unwrap();
            layer = Some(v);
        }
    }
    let layer = layer.expect("last layer in the export");
    let (_, plain) = unionfs::decompress(std::io::BufReader::new(&layer[..])).unwrap();
    let mut names: Vec<String> = tar::Archive::new(plain)
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.iter().any(|n| n == ".wh.gone"), "{names:?}");
    assert!(names.iter().any(|n| n == "etc/.wh.group"), "{names:?}");
    assert!(names.iter().any(|n| n == "d/.wh..wh..opq"), "{names:?}");
}

/// Import `tar` as a root filesystem tarball: refused, naming `needle`, with nothing
/// written outside and no layer or temp dir left.
fn refused(t: &Img, tar: &[u8], needle: &str, outside: &[&Path]) {
    let p = t.path("evil.tar");
    fs::write(&p, tar).unwrap();
    let before = names(t.dir.path());
    let err = t.fails(&["image", "import", p.to_str().unwrap(), "evil"]);
    assert!(err.contains(needle), "{needle:?} not in {err}");
    assert!(t.layers().is_empty(), "a layer was kept");
    assert!(
        names(&t.store().join("layers/tmp")).is_empty(),
        "half-written layer left"
    );
    assert!(names(&t.store().join("blobs/tmp")).is_empty());
    assert_eq!(names(t.dir.path()), before, "written beside the store");
    for o in outside {
        assert!(!o.exists(), "{} written outside", o.display());
    }
    assert!(!t.ok(&["image", "ls"]).contains("evil"));
}

#[test]
fn hostile_layer_tars_are_refused_and_leave_nothing() {
    let t = Img::new();
    t.ok(&["image", "ls"]);
    let mark = format!("corral-evil-{}", std::process::id());
    let tmp_evil = Path::new("/tmp").join(&mark);

    let mut tb = RawTar::new();
    tb.file("ok", "fine")
        .file(&format!("../../../../../../tmp/{mark}"), "pwned");
    refused(&t, &tb.finish(), "\"..\"", &[&tmp_evil]);

    let mut tb = RawTar::new();
    tb.file(&format!("/tmp/{mark}"), "pwned");
    refused(&t, &tb.finish(), "absolute path", &[&tmp_evil]);

    let mut tb = RawTar::new();
    tb.entry("link", tar::EntryType::Symlink, Some("/tmp"), b"")
        .file(&format!("link/{mark}"), "pwned");
    refused(&t, &tb.finish(), "parent link is a symlink", &[&tmp_evil]);

    let mut tb = RawTar::new();
    tb.entry("hl", tar::EntryType::Link, Some("/etc/passwd"), b"");
    refused(&t, &tb.finish(), "hardlink target /etc/passwd", &[]);

    let mut tb = RawTar::new();
    tb.entry(
        "hl",
        tar::EntryType::Link,
        Some("../../../../etc/passwd"),
        b"",
    );
    refused(
        &t,
        &tb.finish(),
        "hardlink target ../../../../etc/passwd",
        &[],
    );

    // Whiteouts that walk out: their targets on the host stay.
    fs::write(&tmp_evil, "keep").unwrap();
    let mut tb = RawTar::new();
    tb.entry("up", tar::EntryType::Symlink, Some("/tmp"), b"")
        .file(&format!("up/.wh.{mark}"), "");
    refused(&t, &tb.finish(), "symlink", &[]);
    let mut tb = RawTar::new();
    tb.file(".wh..", "");
    refused(&t, &tb.finish(), "invalid whiteout name", &[]);
    assert_eq!(fs::read_to_string(&tmp_evil).unwrap(), "keep");
    fs::remove_file(&tmp_evil).unwrap();

    // Gzip-compressed, the same.
    let mut tb = RawTar::new();
    tb.file("a", "1").file("../escape", "x");
    refused(&t, &gzip(&tb.finish()), "../escape", &[]);
    // A truncated tar names the entry it broke in.
    let mut tb = RawTar::new();
    tb.file("first", "1").file("second", &"z".repeat(5000));
    let full = tb.finish();
    refused(&t, &full[..2000], "second", &[]);
}

#[test]
fn build_cache_and_instructions() {
    let t = Img::new();
    t.busybox("base");
    let ctx = t.path("ctx");
    fs::create_dir_all(ctx.join("app/logs")).unwrap();
    fs::write(ctx.join("app/main.txt"), "v1\n").unwrap();
    fs::write(ctx.join("app/logs/x.log"), "noise").unwrap();
    fs::write(ctx.join("app/secret.key"), "s").unwrap();
    fs::write(ctx.join(".dockerignore"), "**/*.log\napp/secret.key\n").unwrap();
    // A tar for ADD, unpacked into place.
    fs::write(
        ctx.join("extra.tar.gz"),
        gzip(&tar_of(&[("inside.txt", b"from tar\n")])),
    )
    .unwrap();
    let dockerfile = "\
# a comment
ARG BASE=base
FROM ${BASE}
ARG FLAVOUR=plain
ENV GREETING=hello \\
    TARGET=world
LABEL org.example.flavour=$FLAVOUR
WORKDIR /srv
COPY --chown=nobody:nogroup app/ ./app/
ADD extra.tar.gz /opt/
RUN echo \"$GREETING $TARGET $FLAVOUR\" > /srv/greeting && ls /srv/app > /srv/listing
SHELL [\"/bin/sh\", \"-c\"]
RUN [\"/bin/sh\", \"-c\", \"id -u > /srv/uid-at-build\"]
USER nobody
EXPOSE 8080 53/udp
ENTRYPOINT [\"/bin/sh\", \"-c\"]
CMD [\"cat /srv/greeting; id -u; pwd\"]
";
    fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    let c = ctx.to_str().unwrap();
    let out = t.ok(&[
        "image",
        "build",
        "--network",
        "none",
        "-t",
        "app:1",
        "--build-arg",
        "FLAVOUR=spicy",
        c,
    ]);
    assert!(out.contains("Step 1/15 : ARG BASE=base"), "{out}");
    assert!(out.contains("Successfully tagged app:1"), "{out}");
    assert!(!out.contains("Using cache"), "{out}");
    let layers1 = t.layers();
    assert_eq!(layers1.len(), 5, "base + COPY + ADD + 2 RUN");
    let img = t.inspect("app:1");
    let cfg = &img["Config"]["config"];
    assert_eq!(cfg["User"], "nobody");
    assert_eq!(cfg["WorkingDir"], "/srv");
    assert_eq!(cfg["Labels"]["org.example.flavour"], "spicy");
    assert!(cfg["Env"]
        .as_array()
        .unwrap()
        .contains(&json!("TARGET=world")));
    assert!(cfg["ExposedPorts"].get("8080/tcp").is_some(), "{cfg}");
    assert!(cfg["ExposedPorts"].get("53/udp").is_some(), "{cfg}");
    // Run it: the image's Entrypoint, Cmd, User and WorkingDir.
    let out = t.ok(&["run", "--rm", "--network", "none", "--image", "app:1"]);
    assert_eq!(out, "hello world spicy\n65534\n/srv\n");
    let out = t.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--image",
        "app:1",
        "-u",
        "0",
        "-w",
        "/srv/app",
        "-e",
        "GREETING=hey",
        "--",
        "echo $GREETING; ls -n; cat /opt/inside.txt /srv/listing /srv/uid-at-build; ls logs 2>&1",
    ]);
    assert!(out.starts_with("hey\n"), "{out}");
    assert!(
        out.contains("65534    65534") && out.contains("main.txt"),
        "--chown: {out}"
    );
    assert!(out.contains("from tar\n"), "{out}");
    assert!(
        !out.contains("secret.key") && !out.contains("x.log"),
        ".dockerignore: {out}"
    );
    assert!(out.contains("\n0\n"), "RUN ran as root before USER: {out}");

    // An unchanged rebuild: every step from the cache, no new layer, the same image.
    let out = t.ok(&[
        "image",
        "build",
        "--network",
        "none",
        "-t",
        "app:2",
        "--build-arg",
        "FLAVOUR=spicy",
        c,
    ]);
    assert_eq!(out.matches("Using cache").count(), 12, "{out}");
    assert_eq!(t.layers(), layers1);
    assert_eq!(t.inspect("app:2")["Id"], img["Id"]);
    // A changed COPY'd file: the steps before it come from the cache, it and the ones after
    // are rebuilt.
    fs::write(ctx.join("app/main.txt"), "v2\n").unwrap();
    let out = t.ok(&[
        "image",
        "build",
        "--network",
        "none",
        "-t",
        "app:3",
        "--build-arg",
        "FLAVOUR=spicy",
        c,
    ]);
    let steps: Vec<&str> = out.split("Step ").collect();
    let cached = |n: usize| steps[n].contains("Using cache");
    assert!(cached(5) && cached(6), "LABEL, WORKDIR cached: {out}");
    assert!(
        !cached(7) && !cached(8) && !cached(9),
        "COPY and after rebuilt: {out}"
    );
    // The COPY layer is new (a step rebuilt with the same outcome, within the same second,
    // may give a layer that is already there).
    assert!(t.layers().len() > layers1.len(), "a new COPY layer");
    assert_eq!(
        t.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--image",
            "app:3",
            "--",
            "cat /srv/app/main.txt"
        ]),
        "v2\n"
    );
    // A changed ignored file changes nothing.
    fs::write(ctx.join("app/logs/x.log"), "more noise").unwrap();
    let out = t.ok(&[
        "image",
        "build",
        "--network",
        "none",
        "-t",
        "app:3",
        "--build-arg",
        "FLAVOUR=spicy",
        c,
    ]);
    assert_eq!(out.matches("Using cache").count(), 12, "{out}");
}

#[test]
fn build_errors_name_the_dockerfile_line_and_leave_nothing() {
    let t = Img::new();
    t.busybox("base");
    // Errors name the Dockerfile line.
    let bad = t.path("bad");
    fs::create_dir(&bad).unwrap();
    let b = bad.to_str().unwrap();
    fs::write(bad.join("Dockerfile"), "FROM base\n\nFROBNICATE x\n").unwrap();
    let err = t.fails(&["image", "build", "--network", "none", "-t", "bad", b]);
    assert!(err.contains("Dockerfile:3: FROBNICATE"), "{err}");
    fs::write(
        bad.join("Dockerfile"),
        "FROM base\nRUN echo visible-output; exit 7\n",
    )
    .unwrap();
    let out = t.run(&["image", "build", "--network", "none", "-t", "bad", b]);
    assert_eq!(out.status.code(), Some(1));
    let (so, se) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        so.contains("visible-output"),
        "the RUN's output is shown: {so}"
    );
    assert!(
        se.contains("Dockerfile:2: RUN") && se.contains("non-zero code: 7"),
        "{se}"
    );
    fs::write(bad.join("Dockerfile"), "FROM nosuchimage\n").unwrap();
    let err = t.fails(&["image", "build", "--network", "none", "-t", "bad", b]);
    assert!(
        err.contains("Dockerfile:1: FROM") && err.contains("nosuchimage"),
        "{err}"
    );
    fs::write(bad.join("Dockerfile"), "FROM base\nCOPY missing.txt /\n").unwrap();
    let err = t.fails(&["image", "build", "--network", "none", "-t", "bad", b]);
    assert!(
        err.contains("Dockerfile:2: COPY") && err.contains("missing.txt"),
        "{err}"
    );
    fs::write(
        bad.join("Dockerfile"),
        "FROM base\nCOPY ../../etc/passwd /\n",
    )
    .unwrap();
    let err = t.fails(&["image", "build", "--network", "none", "-t", "bad", b]);
    assert!(err.contains("leaves the build context"), "{err}");
    assert!(!t.ok(&["image", "ls"]).contains("bad "));
    // Nothing is left mounted or half-made by the failed builds.
    assert!(names(&t.store().join("blobs/tmp")).is_empty());
    assert!(!mountinfo().contains(t.dir.path().to_str().unwrap()));
}

#[test]
fn build_from_scratch() {
    let t = Img::new();
    // FROM scratch.
    let s = t.path("scratch");
    fs::create_dir(&s).unwrap();
    fs::copy(t.rootfs.rootfs().join("bin/busybox"), s.join("busybox")).unwrap();
    fs::write(s.join("Dockerfile"), "FROM scratch\nCOPY busybox /bin/busybox\nCMD [\"/bin/busybox\", \"echo\", \"from scratch\"]\n").unwrap();
    t.ok(&[
        "image",
        "build",
        "--network",
        "none",
        "-t",
        "tiny",
        s.to_str().unwrap(),
    ]);
    assert_eq!(
        t.ok(&["run", "--rm", "--network", "none", "--image", "tiny"]),
        "from scratch\n"
    );
}

#[test]
fn commit_and_history() {
    let t = Img::new();
    t.busybox("base");
    let id = t.id("commit");
    t.ok(&[
        "run",
        "--network",
        "none",
        "--image",
        "base",
        "--name",
        &id,
        "--",
        "sh",
        "-c",
        "echo committed > /data && rm /bin/cat",
    ]);
    let out = t.ok(&["commit", &id, "snap:v1", "-m", "my change"]);
    assert!(out.starts_with("sha256:"), "{out}");
    let out = t.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--image",
        "snap:v1",
        "--",
        "sh",
        "-c",
        "head -1 /data; test -e /bin/cat || echo no-cat",
    ]);
    assert_eq!(out, "committed\nno-cat\n");
    let hist = t.ok(&["image", "history", "snap:v1"]);
    assert!(
        hist.lines()
            .nth(1)
            .unwrap()
            .contains(&format!("corral commit {id}")),
        "{hist}"
    );
    // The image cannot be removed while its container exists; then it can.
    let err = t.fails(&["image", "rm", "base"]);
    assert!(err.contains(&id), "{err}");
    t.ok(&["delete", &id]);
    let err = t.fails(&["commit", &id, "snap:v2"]);
    assert!(err.contains("not made from an image"), "{err}");
    t.ok(&["image", "tag", "snap:v1", "other/name:tag"]);
    let out = t.ok(&["image", "rm", "snap:v1"]);
    assert_eq!(out.trim(), "Untagged: snap:v1", "another tag keeps it");
    t.ok(&["image", "rm", "other/name:tag"]);
    // base's layer stays (base uses it); the commit's layer is gone.
    assert_eq!(t.layers().len(), 1);
    t.ok(&["image", "rm", "base"]);
    assert!(t.layers().is_empty());
    assert!(names(&t.store().join("blobs/sha256")).is_empty());
}

#[test]
fn import_docker_save_and_oci_layouts() {
    let t = Img::new();
    // Two layers: the busybox root, then one that deletes /bin/cat and adds /hello.
    let l1 = rootfs_tar(t.rootfs.rootfs());
    let mut tb = RawTar::new();
    tb.file("bin/.wh.cat", "")
        .file("hello", "hi from layer 2\n");
    let l2 = tb.finish();
    let diff_ids = [
        format!("sha256:{}", sha256_hex(&l1)),
        format!("sha256:{}", sha256_hex(&l2)),
    ];
    let config = json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["head", "/hello"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "layer 1"}, {"created_by": "layer 2"}]
    });
    let cbytes = serde_json::to_vec(&config).unwrap();
    let chex = sha256_hex(&cbytes);

    // docker save: manifest.json, <config>.json, <id>/layer.tar.
    let manifest = json!([{
        "Config": format!("{chex}.json"),
        "RepoTags": ["saved/app:1.0"],
        "Layers": ["aaa/layer.tar", "bbb/layer.tar"]
    }]);
    let mb = serde_json::to_vec(&manifest).unwrap();
    let save = tar_of(&[
        ("manifest.json", &mb),
        (&format!("{chex}.json"), &cbytes),
        ("aaa/layer.tar", &l1),
        ("bbb/layer.tar", &l2),
    ]);
    let p = t.path("save.tar");
    fs::write(&p, &save).unwrap();
    let out = t.ok(&["image", "import", p.to_str().unwrap()]);
    assert!(
        out.contains("saved/app:1.0") && out.contains(&chex),
        "{out}"
    );
    assert_eq!(
        t.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--image",
            "saved/app:1.0"
        ]),
        "hi from layer 2\n"
    );
    let out = t.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--image",
        "saved/app:1.0",
        "--",
        "cat",
        "/etc/passwd",
    ]);
    assert_ne!(out.status.code(), Some(0), "the whiteout hides /bin/cat");
    assert_eq!(t.inspect("saved/app:1.0")["Id"], format!("sha256:{chex}"));

    // An OCI layout tarball with gzip layers.
    let (g1, g2) = (gzip(&l1), gzip(&l2));
    let layer_desc = |b: &[u8]| {
        json!({
        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
        "digest": format!("sha256:{}", sha256_hex(b)), "size": b.len()})
    };
    let man = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": format!("sha256:{chex}"), "size": cbytes.len()},
        "layers": [layer_desc(&g1), layer_desc(&g2)]
    });
    let manb = serde_json::to_vec(&man).unwrap();
    let index = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": format!("sha256:{}", sha256_hex(&manb)), "size": manb.len(),
        "annotations": {"org.opencontainers.image.ref.name": "v2"}}]});
    let ib = serde_json::to_vec(&index).unwrap();
    let blob = |b: &[u8]| format!("blobs/sha256/{}", sha256_hex(b));
    let oci = tar_of(&[
        ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#),
        ("index.json", &ib),
        (&blob(&manb), &manb),
        (&blob(&cbytes), &cbytes),
        (&blob(&g1), &g1),
        (&blob(&g2), &g2),
    ]);
    let p = t.path("oci.tar");
    fs::write(&p, &oci).unwrap();
    // Only a tag in the index: a name must be given.
    let err = t.fails(&["image", "import", p.to_str().unwrap()]);
    assert!(err.contains("no image name"), "{err}");
    t.ok(&["image", "import", p.to_str().unwrap(), "oci/app:v2"]);
    assert_eq!(
        t.ok(&["run", "--rm", "--network", "none", "--image", "oci/app:v2"]),
        "hi from layer 2\n"
    );
    // Same layers (by diff ID) as the docker-save import: no new layer dirs.
    assert_eq!(t.layers().len(), 2);
    // A layout whose blob does not match its digest is refused.
    let mut bad_g2 = g2.clone();
    let n = bad_g2.len();
    bad_g2[n - 9] ^= 0xff;
    let oci_bad = tar_of(&[
        ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#),
        ("index.json", &ib),
        (&blob(&manb), &manb),
        (&blob(&cbytes), &cbytes),
        (&blob(&g1), &g1),
        (&blob(&g2), &bad_g2),
    ]);
    let p = t.path("oci-bad.tar");
    fs::write(&p, &oci_bad).unwrap();
    let err = t.fails(&["image", "import", p.to_str().unwrap(), "oci/bad"]);
    assert!(err.contains("layer") || err.contains("digest"), "{err}");

    // Export (dir and tar) and import back: the same image ID.
    let d = t.path("exported");
    t.ok(&["image", "export", "oci/app:v2", d.to_str().unwrap()]);
    assert!(d.join("oci-layout").is_file() && d.join("index.json").is_file());
    t.ok(&["image", "import", d.to_str().unwrap(), "back/dir"]);
    let x = t.path("exported.tar");
    t.ok(&["image", "export", "oci/app:v2", x.to_str().unwrap()]);
    t.ok(&["image", "import", x.to_str().unwrap()]);
    assert_eq!(t.inspect("back/dir")["Id"], t.inspect("oci/app:v2")["Id"]);
    let ls = t.ok(&["image", "ls"]);
    for name in ["saved/app", "oci/app", "back/dir"] {
        assert!(ls.contains(name), "{ls}");
    }
}

#[test]
fn podman_reads_an_export_and_corral_reads_podmans() {
    let t = Img::new();
    t.busybox("rt");
    let x = t.path("rt.tar");
    t.ok(&["image", "export", "rt", x.to_str().unwrap()]);
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
    let loaded = podman(&["load", "-i", x.to_str().unwrap()]);
    assert!(loaded.contains("rt"), "{loaded}");
    let back = t.path("back.tar");
    podman(&[
        "save",
        "--format",
        "oci-archive",
        "-o",
        back.to_str().unwrap(),
        "localhost/rt:latest",
    ]);
    t.ok(&["image", "import", back.to_str().unwrap(), "rt-back"]);
    let out = t.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--image",
        "rt-back",
        "--",
        "echo",
        "round trip",
    ]);
    assert_eq!(out, "round trip\n");
    assert_eq!(
        t.inspect("rt-back")["Config"]["rootfs"],
        t.inspect("rt")["Config"]["rootfs"]
    );
    podman(&["rmi", "-a", "-f"]);
}

#[test]
fn detached_run_prune_and_concurrent_imports() {
    let t = Img::new();
    let tarp = t.path("rootfs.tar");
    fs::write(&tarp, gzip(&rootfs_tar(t.rootfs.rootfs()))).unwrap();
    // Four imports of the same tarball at once: all succeed, one layer.
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let mut c = Command::new(common::corral());
            c.arg("--store")
                .arg(t.store())
                .args(["image", "import"])
                .arg(&tarp)
                .arg(format!("con:{i}"))
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    for h in handles {
        let out = h.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(t.layers().len(), 1);

    // -d: the lifecycle commands handle it with the same --root.
    let id = t.id("detached");
    let out = t.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--image",
        "con:0",
        "--name",
        &id,
        "--memory",
        "64m",
        "--pids-limit",
        "20",
        "--hostname",
        "imgbox",
        "--",
        "sleep",
        "60",
    ]);
    assert_eq!(out.trim(), id);
    let state: Value = serde_json::from_str(&t.ok(&["state", &id])).unwrap();
    assert_eq!(state["status"], "running");
    let out = t.ok(&[
        "exec",
        &id,
        "sh",
        "-c",
        "hostname; cat /sys/fs/cgroup/pids/pids.max",
    ]);
    assert_eq!(out, "imgbox\n20\n");
    // A running container is committed (frozen meanwhile) and keeps running.
    t.ok(&["exec", &id, "sh", "-c", "echo live > /live"]);
    t.ok(&["commit", &id, "live:1"]);
    let state: Value = serde_json::from_str(&t.ok(&["state", &id])).unwrap();
    assert_eq!(state["status"], "running");
    assert_eq!(
        t.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--image",
            "live:1",
            "--",
            "cat",
            "/live"
        ]),
        "live\n"
    );
    t.ok(&["image", "rm", "live:1"]);
    // A build killed with a step's overlay mounted: prune detaches and removes it.
    let left = t.store().join("blobs/tmp/build-killed");
    for d in ["lower", "upper", "work", "merged"] {
        fs::create_dir_all(left.join(d)).unwrap();
    }
    let m = unionfs::Overlay::new(
        vec![left.join("lower")],
        left.join("upper"),
        left.join("work"),
    )
    .mount(&left.join("merged"))
    .unwrap()
    .leak();
    // prune keeps what a live container uses.
    t.ok(&["image", "rm", "con:1"]);
    t.ok(&["image", "rm", "con:2"]);
    t.ok(&["image", "rm", "con:3"]);
    fs::create_dir(t.store().join("layers/tmp/import-killed-halfway")).unwrap();
    let out = t.ok(&["image", "prune"]);
    assert!(out.contains("2 temp leftovers"), "{out}");
    assert!(
        !mountinfo().contains(m.to_str().unwrap()),
        "leftover mount detached"
    );
    assert!(!left.exists());
    assert_eq!(t.layers().len(), 1);
    t.ok(&["kill", &id, "KILL"]);
    t.ok(&["delete", "--force", &id]);
    t.ok(&["image", "rm", "con:0"]);
    t.ok(&["image", "prune"]);
    assert!(t.layers().is_empty());
    assert!(names(&t.store().join("containers")).is_empty());

    // Bad input is named.
    let err = t.fails(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--image",
        "nosuch",
        "--",
        "true",
    ]);
    assert!(err.contains("\"nosuch\" not found"), "{err}");
    let err = t.fails(&[
        "image",
        "import",
        t.rootfs.rootfs().to_str().unwrap(),
        "Bad:Name",
    ]);
    assert!(err.contains("Bad:Name"), "{err}");
}

// ---- issue 16, sections 3 and 4: the store, the build, import and export ----

/// A docker-save archive of one image: `layers` (plain tars) under `RepoTags` `tags`.
fn docker_save(config_extra: Value, layers: &[&[u8]], tags: &[&str]) -> (Vec<u8>, String) {
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| format!("sha256:{}", sha256_hex(l)))
        .collect();
    let mut config = json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    if let (Some(c), Some(e)) = (config.as_object_mut(), config_extra.as_object()) {
        for (k, v) in e {
            c.insert(k.clone(), v.clone());
        }
    }
    let cbytes = serde_json::to_vec(&config).unwrap();
    let chex = sha256_hex(&cbytes);
    let names: Vec<String> = (0..layers.len())
        .map(|i| format!("l{i}/layer.tar"))
        .collect();
    let manifest = json!([{"Config": format!("{chex}.json"), "RepoTags": tags, "Layers": names}]);
    let mb = serde_json::to_vec(&manifest).unwrap();
    let cname = format!("{chex}.json");
    let mut files: Vec<(&str, &[u8])> = vec![("manifest.json", &mb), (&cname, &cbytes)];
    for (n, l) in names.iter().zip(layers) {
        files.push((n, l));
    }
    (tar_of(&files), chex)
}

fn blobs(t: &Img) -> Vec<String> {
    names(&t.store().join("blobs/sha256"))
}

#[test]
fn a_store_another_user_can_write_is_refused() {
    let t = Img::new();
    // Pre-created world-writable, with a layer planted under a diff id an image will use.
    let store = t.store();
    let planted = store
        .join("layers/sha256")
        .join("ab".repeat(32))
        .join("bin");
    fs::create_dir_all(&planted).unwrap();
    fs::write(planted.join("sh"), "#!/bin/sh\necho planted\n").unwrap();
    fs::set_permissions(&store, fs::Permissions::from_mode(0o777)).unwrap();
    let err = t.fails(&["image", "ls"]);
    assert!(
        err.contains(store.to_str().unwrap()) && err.contains("mode 777"),
        "{err}"
    );
    let r = t.rootfs.rootfs().to_str().unwrap().to_string();
    let err = t.fails(&["image", "import", &r, "victim"]);
    assert!(err.contains("refusing the image store"), "{err}");
    // Owned by another user (even 0700): refused too, naming the owner.
    fs::set_permissions(&store, fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&store, Some(65534), Some(65534)).unwrap();
    let err = t.fails(&["image", "ls"]);
    assert!(err.contains("owner uid 65534"), "{err}");
    // A parent others can write (not sticky): refused.
    std::os::unix::fs::chown(&store, Some(0), Some(0)).unwrap();
    let open = t.path("open");
    fs::create_dir(&open).unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
    let out = Command::new(common::corral())
        .arg("--store")
        .arg(open.join("store"))
        .args(["image", "ls"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("can be changed by another user"), "{err}");
    // Its own store, private: fine.
    fs::remove_dir_all(store.join("layers")).unwrap();
    t.ok(&["image", "ls"]);
}

#[test]
fn build_sources_and_dockerfile_resolve_inside_the_context() {
    let t = Img::new();
    t.busybox("base");
    let ctx = t.path("ctx");
    fs::create_dir_all(ctx.join("data")).unwrap();
    fs::write(ctx.join("data/f"), "in the context\n").unwrap();
    std::os::unix::fs::symlink("/etc", ctx.join("hostetc")).unwrap();
    // An absolute link resolves with the context as `/`, as docker build resolves it.
    std::os::unix::fs::symlink("/data", ctx.join("abs")).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        "FROM base\nCOPY hostetc/shadow /x\n",
    )
    .unwrap();
    let c = ctx.to_str().unwrap();
    let err = t.fails(&["image", "build", "--network", "none", "-t", "evil", c]);
    assert!(
        err.contains("hostetc/shadow: no such file or directory in the build context"),
        "{err}"
    );
    assert!(!t.ok(&["image", "ls"]).contains("evil"));
    // A directory of the context with a link out: the link is copied as a link.
    fs::create_dir(ctx.join("dir")).unwrap();
    std::os::unix::fs::symlink("/etc/shadow", ctx.join("dir/sh")).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        "FROM base\nCOPY abs/f /y\nCOPY dir /d/\nCOPY hostetc /e/\n",
    )
    .unwrap();
    let err = t.fails(&["image", "build", "--network", "none", "-t", "evil", c]);
    assert!(err.contains("hostetc: no such file"), "{err}");
    fs::write(
        ctx.join("Dockerfile"),
        "FROM base\nCOPY abs/f /y\nCOPY dir /d/\n",
    )
    .unwrap();
    t.ok(&["image", "build", "--network", "none", "-t", "fine", c]);
    assert_eq!(
        t.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--image",
            "fine",
            "--",
            "cat",
            "/y"
        ]),
        "in the context\n"
    );
    assert_eq!(
        t.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--image",
            "fine",
            "--",
            "readlink",
            "/d/sh"
        ]),
        "/etc/shadow\n"
    );
    // A Dockerfile that is a link to a host file is not read from the host.
    let host_df = t.path("host-Dockerfile");
    fs::write(&host_df, "FROM base\nLABEL from=host\n").unwrap();
    fs::remove_file(ctx.join("Dockerfile")).unwrap();
    std::os::unix::fs::symlink(&host_df, ctx.join("Dockerfile")).unwrap();
    let err = t.fails(&["image", "build", "--network", "none", "-t", "evil", c]);
    assert!(err.contains("Dockerfile"), "{err}");
    assert!(!t.ok(&["image", "ls"]).contains("evil"));
}

#[test]
fn run_steps_get_a_network_of_their_own() {
    let t = Img::new();
    t.busybox("base");
    // A service on the host's loopback: it records each line it gets, then hangs up.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { break };
            let mut line = String::new();
            let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(&s), &mut line);
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let ctx = t.path("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        format!("FROM base\nRUN echo reached | /bin/busybox nc -w 5 127.0.0.1 {port}\n"),
    )
    .unwrap();
    let c = ctx.to_str().unwrap();
    let err = t.fails(&["image", "build", "--network", "none", "-t", "net", c]);
    assert!(err.contains("non-zero code"), "{err}");
    assert!(
        rx.try_recv().is_err(),
        "a RUN step reached the host's 127.0.0.1:{port}"
    );
    // With --network host, it does.
    t.ok(&["image", "build", "--network", "host", "-t", "net", c]);
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(30)).unwrap(),
        "reached\n"
    );
}

#[test]
fn a_run_step_cannot_make_the_build_delete_host_files() {
    let t = Img::new();
    // An image without /etc: /etc/resolv.conf and /etc/hosts are mount placeholders (and
    // /etc, made for them when they are mounted, is the step's own, so it can be moved).
    let noetc = t.path("noetc");
    let st = Command::new("cp")
        .arg("-a")
        .arg(t.rootfs.rootfs())
        .arg(&noetc)
        .status()
        .unwrap();
    assert!(st.success());
    fs::remove_dir_all(noetc.join("etc")).unwrap();
    t.ok(&["image", "import", noetc.to_str().unwrap(), "base"]);
    let host = t.path("hostdir");
    fs::create_dir_all(&host).unwrap();
    for f in ["resolv.conf", "hosts"] {
        fs::write(host.join(f), "").unwrap();
    }
    let ctx = t.path("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM base\nRUN mkdir -p /etc && mv /etc /etc.moved && ln -s {} /etc\n",
            host.display()
        ),
    )
    .unwrap();
    t.ok(&[
        "image",
        "build",
        "--network",
        "none",
        "-t",
        "swap",
        ctx.to_str().unwrap(),
    ]);
    for f in ["resolv.conf", "hosts"] {
        assert!(host.join(f).exists(), "the build removed host file {f}");
    }
}

#[test]
fn dockerignored_files_named_in_copy_are_not_copied() {
    let t = Img::new();
    t.busybox("base");
    let ctx = t.path("ctx");
    fs::create_dir_all(&ctx).unwrap();
    let c = ctx.to_str().unwrap();
    // Named in COPY but ignored: not in the context, as docker.
    fs::write(ctx.join("secret"), "s3cret").unwrap();
    fs::write(ctx.join(".dockerignore"), "secret\n").unwrap();
    fs::write(ctx.join("Dockerfile"), "FROM base\nCOPY secret /s\n").unwrap();
    let err = t.fails(&["image", "build", "--network", "none", "-t", "ign", c]);
    assert!(err.contains("excluded by .dockerignore"), "{err}");
    // Nor through a link to it.
    std::os::unix::fs::symlink("secret", ctx.join("alias")).unwrap();
    fs::write(ctx.join("Dockerfile"), "FROM base\nCOPY alias /s\n").unwrap();
    let err = t.fails(&["image", "build", "--network", "none", "-t", "ign", c]);
    assert!(err.contains("excluded by .dockerignore"), "{err}");
}

#[test]
fn the_copy_cache_key_is_that_of_the_bytes_copied() {
    let t = Img::new();
    t.busybox("base");
    let ctx = t.path("ctx");
    fs::create_dir_all(&ctx).unwrap();
    let c = ctx.to_str().unwrap();
    // The file is swapped for another content right after its first reader closes it (an
    // inotify watch on the context): whatever was copied is what the key says.
    let (a, b) = ("content A\n", "content B\n");
    fs::write(ctx.join("f"), a).unwrap();
    fs::write(ctx.join("Dockerfile"), "FROM base\nCOPY f /f\n").unwrap();
    // SAFETY: plain syscalls; the fd is closed below.
    let ino = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
    assert!(ino >= 0);
    let cdir = std::ffi::CString::new(c).unwrap();
    // SAFETY: a valid C string.
    assert!(unsafe { libc::inotify_add_watch(ino, cdir.as_ptr(), libc::IN_CLOSE_NOWRITE) } >= 0);
    let swap_dir = ctx.clone();
    let swapper = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: read into a local buffer.
            let n = unsafe { libc::read(ino, buf.as_mut_ptr().cast(), buf.len()) };
            assert!(n > 0);
            // Event names follow each 16-byte header.
            let mut off = 0usize;
            let mut hit = false;
            while off + 16 <= n as usize {
                let len = u32::from_ne_bytes(buf[off + 12..off + 16].try_into().unwrap()) as usize;
                let name = &buf[off + 16..off + 16 + len];
                if name.split(|&x| x == 0).next() == Some(b"f") {
                    hit = true;
                }
                off += 16 + len;
            }
            if hit {
                fs::write(swap_dir.join("f.new"), "content B\n").unwrap();
                fs::rename(swap_dir.join("f.new"), swap_dir.join("f")).unwrap();
                // SAFETY: our fd.
                unsafe { libc::close(ino) };
                return;
            }
        }
    });
    t.ok(&["image", "build", "--network", "none", "-t", "race", c]);
    swapper.join().unwrap();
    let got = t.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--image",
        "race",
        "--",
        "cat",
        "/f",
    ]);
    assert!(got == a || got == b, "{got}");
    // Now each content alone: a build gets its own content, from the cache or not.
    for want in [a, b] {
        fs::write(ctx.join("f"), want).unwrap();
        t.ok(&["image", "build", "--network", "none", "-t", "race", c]);
        assert_eq!(
            t.ok(&[
                "run",
                "--rm",
                "--network",
                "none",
                "--image",
                "race",
                "--",
                "cat",
                "/f"
            ]),
            want,
            "the cache gave another content for this one"
        );
    }
}

/// The pid of a container in `t`'s state root whose id starts with `prefix`, once
/// `corral state` says it is running (what engines read; the state file itself says
/// `created`, as a start writes nothing).
fn running_container(t: &Img, prefix: &str, limit: Duration) -> (String, i32) {
    let state = t.state();
    let start = Instant::now();
    loop {
        for id in names(&state) {
            if !id.starts_with(prefix) {
                continue;
            }
            let out = t.run(&["state", &id]);
            let st: Value = match serde_json::from_slice(&out.stdout) {
                Ok(v) if out.status.success() => v,
                _ => continue,
            };
            if st["status"] == "running" {
                if let Some(pid) = st["pid"].as_i64().filter(|p| *p > 0) {
                    return (id, pid as i32);
                }
            }
        }
        assert!(
            start.elapsed() < limit,
            "no running {prefix}* in {}",
            state.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn gone(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
    }
}

/// Poll until `f` holds (at most `limit`).
fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

#[test]
fn a_killed_build_takes_its_run_container_with_it() {
    let t = Img::new();
    t.busybox("base");
    let ctx = t.path("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(ctx.join("Dockerfile"), "FROM base\nRUN sleep 30\n").unwrap();
    let build = |t: &Img| {
        Command::new(common::corral())
            .arg("--store")
            .arg(t.store())
            .arg("--root")
            .arg(t.state())
            .args([
                "image",
                "build",
                "--network",
                "none",
                "--no-cache",
                "-t",
                "k",
                ctx.to_str().unwrap(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    // 1. kill -9 of the build alone: its RUN container dies, its root is unmounted.
    let mut child = build(&t);
    let (id, pid) = running_container(&t, "corral-build-", Duration::from_secs(60));
    t.ids.borrow_mut().push(id.clone());
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        eventually(Duration::from_secs(10), || gone(pid)
            && !t.state().join(&id).exists()),
        "the RUN container {id} (pid {pid}) outlived its build"
    );
    let tmp = t.store().join("blobs/tmp");
    assert!(
        eventually(Duration::from_secs(10), || !mountinfo()
            .contains(tmp.to_str().unwrap())),
        "a step root is still mounted"
    );
    t.ok(&["image", "prune"]);
    assert!(names(&tmp).is_empty(), "{:?}", names(&tmp));

    // 2. The build and its guard both killed: the container lives on, and prune takes it
    //    down before it removes what it uses.
    let mut child = build(&t);
    let (id, pid) = running_container(&t, "corral-build-", Duration::from_secs(60));
    t.ids.borrow_mut().push(id.clone());
    let kids = fs::read_to_string(format!("/proc/{0}/task/{0}/children", child.id())).unwrap();
    for k in kids.split_whitespace() {
        let k: i32 = k.parse().unwrap();
        if k != pid {
            // SAFETY: plain syscall on our grandchild.
            unsafe { libc::kill(k, libc::SIGKILL) };
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !gone(pid),
        "with no guard, nothing took the RUN container down"
    );
    let layers = t.layers();
    t.ok(&["image", "prune"]);
    assert!(gone(pid), "prune left the RUN container running");
    assert!(!t.state().join(&id).exists());
    // The base image's layer is still there (it is tagged).
    assert_eq!(t.layers(), layers);
    t.ok(&["image", "prune"]);
    assert!(names(&tmp).is_empty(), "{:?}", names(&tmp));
    assert!(!mountinfo().contains(tmp.to_str().unwrap()));
}

#[test]
fn import_reads_only_regular_files() {
    let t = Img::new();
    let l1 = rootfs_tar(t.rootfs.rootfs());
    // The config is a FIFO: refused at once (not read for ever, the store lock held).
    let (save, chex) = docker_save(json!({}), &[&l1], &["fifo/app:1"]);
    let mut ar = tar::Archive::new(&save[..]);
    let mut tb = RawTar::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        if name == format!("{chex}.json") {
            tb.entry(&name, tar::EntryType::Fifo, None, b"");
        } else {
            tb.entry(&name, tar::EntryType::Regular, None, &data);
        }
    }
    let p = t.path("fifo.tar");
    fs::write(&p, tb.finish()).unwrap();
    let out = t.run_for(
        &["image", "import", p.to_str().unwrap()],
        Duration::from_secs(60),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("not a regular file"), "{err}");
    assert!(t.layers().is_empty() && blobs(&t).is_empty(), "left behind");
    t.ok(&["image", "ls"]);
}

#[test]
fn import_bounds_what_an_archive_unpacks_to() {
    let t = Img::new();
    t.ok(&["image", "ls"]);
    // A GNU sparse entry of a few KiB that expands to 1 GiB: refused.
    let mut h = tar::Header::new_gnu();
    h.set_path("big").unwrap();
    h.set_entry_type(tar::EntryType::GNUSparse);
    h.set_mode(0o644);
    h.set_size(512);
    {
        let g = h.as_gnu_mut().unwrap();
        let oct = |v: u64, f: &mut [u8; 12]| {
            let s = format!("{v:011o}\0");
            f.copy_from_slice(s.as_bytes());
        };
        oct((1 << 30) - 512, &mut g.sparse[0].offset);
        oct(512, &mut g.sparse[0].numbytes);
        oct(1 << 30, &mut g.realsize);
    }
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, &[7u8; 512][..]).unwrap();
    let sparse = b.into_inner().unwrap();
    assert!(sparse.len() < 10 * 1024);
    refused(&t, &sparse, "sparse", &[]);

    // A per-layer cap, set by CORRAL_MAX_LAYER_SIZE.
    let big = tar_of(&[("f", &[1u8; 100 * 1024][..])]);
    let p = t.path("big.tar");
    fs::write(&p, &big).unwrap();
    let out = Command::new(common::corral())
        .env("CORRAL_MAX_LAYER_SIZE", "64k")
        .arg("--store")
        .arg(t.store())
        .args(["image", "import", p.to_str().unwrap(), "big"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("more than 65536 bytes"), "{err}");
    assert!(t.layers().is_empty());
}

#[test]
fn import_reads_metadata_with_a_cap() {
    let t = Img::new();
    // manifest.json is read with a cap.
    let mut huge = vec![b' '; 9 << 20];
    huge.extend_from_slice(b"[]");
    let p = t.path("huge.tar");
    fs::write(&p, tar_of(&[("manifest.json", &huge)])).unwrap();
    let err = t.fails(&["image", "import", p.to_str().unwrap()]);
    assert!(err.contains("larger than"), "{err}");
}

#[test]
fn import_follows_no_link_out_of_the_archive() {
    let t = Img::new();
    // Another user's OCI layout on the host.
    t.busybox("theirs");
    let other = t.path("other-layout");
    t.ok(&["image", "export", "theirs", other.to_str().unwrap()]);
    t.ok(&["image", "rm", "theirs"]);
    t.ok(&["image", "prune"]);
    assert!(t.layers().is_empty());
    let o = other.to_str().unwrap();
    let mut tb = RawTar::new();
    tb.file("oci-layout", r#"{"imageLayoutVersion":"1.0.0"}"#)
        .entry(
            "index.json",
            tar::EntryType::Symlink,
            Some(&format!("{o}/index.json")),
            b"",
        )
        .entry(
            "blobs",
            tar::EntryType::Symlink,
            Some(&format!("{o}/blobs")),
            b"",
        );
    let p = t.path("links.tar");
    fs::write(&p, tb.finish()).unwrap();
    let err = t.fails(&["image", "import", p.to_str().unwrap(), "stolen"]);
    assert!(
        err.contains("index.json") || err.contains("leads out"),
        "{err}"
    );
    assert!(
        t.layers().is_empty(),
        "a layer of the host's layout was imported"
    );
    // The same as a directory.
    let d = t.path("links-dir");
    fs::create_dir(&d).unwrap();
    fs::write(d.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    fs::write(
        d.join("index.json"),
        fs::read(other.join("index.json")).unwrap(),
    )
    .unwrap();
    std::os::unix::fs::symlink(other.join("blobs"), d.join("blobs")).unwrap();
    let err = t.fails(&["image", "import", d.to_str().unwrap(), "stolen"]);
    assert!(err.contains("leads out"), "{err}");
    assert!(t.layers().is_empty() && !t.ok(&["image", "ls"]).contains("stolen"));
}

#[test]
fn import_changes_only_what_was_named() {
    let t = Img::new();
    t.busybox("victim");
    let victim_id = t.inspect("victim")["Id"].clone();
    let mut tb = RawTar::new();
    tb.file("bin/sh", "trojan");
    let trojan = tb.finish();
    // One image carrying the victim's name, imported under another: only that one changes.
    let (save, _) = docker_save(json!({}), &[&trojan], &["victim:latest"]);
    let p = t.path("one.tar");
    fs::write(&p, &save).unwrap();
    t.ok(&["image", "import", p.to_str().unwrap(), "mine:1"]);
    assert_eq!(t.inspect("victim")["Id"], victim_id, "victim retagged");
    assert_ne!(t.inspect("mine:1")["Id"], victim_id);
    // Two images under one NAME: refused, nothing changes.
    let mut tb = RawTar::new();
    tb.file("x", "1");
    let other = tb.finish();
    let (s1, c1) = docker_save(json!({}), &[&other], &["first:1"]);
    let (s2, c2) = docker_save(json!({"author": "2"}), &[&trojan], &["victim:latest"]);
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for s in [&s1, &s2] {
        let mut ar = tar::Archive::new(&s[..]);
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let n = e.path().unwrap().to_string_lossy().into_owned();
            let mut d = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut d).unwrap();
            if n != "manifest.json" {
                let n = n.replace("l0/", &format!("{}/", &sha256_hex(&d)[..8]));
                files.push((n, d));
            }
        }
    }
    let layer_name = |l: &[u8]| format!("{}/layer.tar", &sha256_hex(l)[..8]);
    let manifest = json!([
        {"Config": format!("{c1}.json"), "RepoTags": ["first:1"], "Layers": [layer_name(&other)]},
        {"Config": format!("{c2}.json"), "RepoTags": ["victim:latest"], "Layers": [layer_name(&trojan)]}
    ]);
    files.push((
        "manifest.json".into(),
        serde_json::to_vec(&manifest).unwrap(),
    ));
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, d)| (n.as_str(), &d[..])).collect();
    let p = t.path("two.tar");
    fs::write(&p, tar_of(&refs)).unwrap();
    let (l_before, b_before) = (t.layers(), blobs(&t));
    let err = t.fails(&["image", "import", p.to_str().unwrap(), "mine:2"]);
    assert!(err.contains("holds 2 images"), "{err}");
    assert_eq!(t.inspect("victim")["Id"], victim_id, "victim retagged");
    assert_eq!((t.layers(), blobs(&t)), (l_before, b_before), "left behind");
}

#[test]
fn a_rejected_archive_leaves_no_layer_or_blob() {
    let t = Img::new();
    t.busybox("base");
    let mut tb = RawTar::new();
    tb.file("x", "1");
    let other = tb.finish();
    let mut tb = RawTar::new();
    tb.file("y", "2");
    let second = tb.finish();
    // Its second layer is not what the config says: not its first layer, not a blob stays.
    let wrong = json!({"rootfs": {"type": "layers", "diff_ids": [
        format!("sha256:{}", sha256_hex(&other)),
        format!("sha256:{}", "0".repeat(64)),
    ]}});
    let (save, _) = docker_save(wrong, &[&other, &second], &["bad:1"]);
    let p = t.path("bad.tar");
    fs::write(&p, &save).unwrap();
    let (l_before, b_before) = (t.layers(), blobs(&t));
    let err = t.fails(&["image", "import", p.to_str().unwrap()]);
    assert!(err.contains("diff ID"), "{err}");
    assert_eq!((t.layers(), blobs(&t)), (l_before, b_before), "left behind");
    assert!(!t.ok(&["image", "ls"]).contains("bad"));
}

/// An image `base`, a root-only file `root-only` holding "keep", and a dir `dest` in which
/// `name` is a symlink to that file (as another user who owns the destination dir plants it).
fn planted_link(t: &Img, name: &str) -> (PathBuf, PathBuf) {
    t.busybox("base");
    let victim = t.path("root-only");
    fs::write(&victim, "keep").unwrap();
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o600)).unwrap();
    let dir = t.path("dest");
    fs::create_dir(&dir).unwrap();
    std::os::unix::fs::symlink(&victim, dir.join(name)).unwrap();
    (victim, dir)
}

#[test]
fn export_never_writes_through_a_planted_link() {
    let t = Img::new();
    // The temp name corral used to write through.
    let (victim, dir) = planted_link(&t, "out.tar.corral-tmp");
    let out = dir.join("out.tar");
    t.ok(&["image", "export", "base", out.to_str().unwrap()]);
    assert_eq!(
        fs::read(&victim).unwrap(),
        b"keep",
        "written through the link"
    );
    assert!(fs::symlink_metadata(&out).unwrap().is_file());
    t.ok(&["image", "import", out.to_str().unwrap(), "back"]);
}

#[test]
fn pid_file_is_never_written_through_a_planted_link() {
    let t = Img::new();
    // The temp name corral used to write through.
    let (victim, dir) = planted_link(&t, "c.corral-tmp");
    let id = t.id("pidf");
    let pf = dir.join("c.pid");
    t.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--image",
        "base",
        "--name",
        &id,
        "--pid-file",
        pf.to_str().unwrap(),
        "--",
        "sleep",
        "30",
    ]);
    assert_eq!(
        fs::read(&victim).unwrap(),
        b"keep",
        "written through the link"
    );
    let pid: i32 = fs::read_to_string(&pf).unwrap().trim().parse().unwrap();
    assert!(pid > 0);
    t.ok(&["delete", "--force", &id]);
    // No temp file left beside them.
    let left: Vec<String> = names(&dir)
        .into_iter()
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// Docker's default capabilities (CHOWN, DAC_OVERRIDE, FSETID, FOWNER, MKNOD, NET_RAW,
/// SETGID, SETUID, SETFCAP, SETPCAP, NET_BIND_SERVICE, SYS_CHROOT, KILL, AUDIT_WRITE).
const DOCKER_CAPS: u64 = 0xa80425fb;

fn caps_of(r: &Value, set: &str) -> u64 {
    u64::from_str_radix(r["caps"][set].as_str().unwrap_or("x"), 16)
        .unwrap_or_else(|_| panic!("caps.{set} in {}", r["caps"]))
}

/// Every capability this (root) test process holds, as corral run from it does.
fn all_caps() -> u64 {
    let st = fs::read_to_string("/proc/self/status").unwrap();
    let prm = st.lines().find_map(|l| l.strip_prefix("CapPrm:")).unwrap();
    u64::from_str_radix(prm.trim(), 16).unwrap()
}

impl Img {
    /// `/probe report` in a container of `image` run with `flags`.
    fn report(&self, image: &str, flags: &[&str], files: &[&str]) -> Value {
        let mut args = vec!["run", "--rm", "--network", "none", "--image", image];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["--", "/probe", "report"]);
        args.extend_from_slice(files);
        let out = self.ok(&args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    /// `sh -c script` in a container of `image` run with `flags`: exit code and output.
    fn sh(&self, image: &str, flags: &[&str], script: &str) -> (Option<i32>, String) {
        let mut args = vec!["run", "--rm", "--network", "none", "--image", image];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["--", "/bin/sh", "-c", script]);
        let out = self.run(&args);
        (
            out.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }
}

const DEVICES_LIST: &str = "/sys/fs/cgroup/devices/devices.list";

fn content(r: &Value, path: &str) -> String {
    r["files"][path]["content"]
        .as_str()
        .unwrap_or_else(|| panic!("{path} not in {}", r["files"]))
        .to_string()
}

/// Issue 16: an image container gets what `docker run` gives by default. Before, it had no
/// seccomp filter, so `unshare -U -r` gave it a full capability set in which it could
/// mount, and its device rules read `a *:* rwm`.
#[test]
fn image_containers_get_dockers_defaults() {
    let t = Img::new();
    t.busybox("sec");
    let r = t.report("sec", &[], &[DEVICES_LIST, "/proc/interrupts"]);
    assert_eq!(r["seccomp"], 2, "no seccomp filter");
    assert_eq!(caps_of(&r, "eff"), DOCKER_CAPS, "{}", r["caps"]);
    assert_eq!(caps_of(&r, "bnd"), DOCKER_CAPS, "{}", r["caps"]);
    assert_eq!(caps_of(&r, "amb"), 0, "{}", r["caps"]);
    assert_eq!(r["no_new_privs"], 0, "docker's default noNewPrivileges");
    let devs = content(&r, DEVICES_LIST);
    assert!(!devs.contains("a *:* rwm"), "every device allowed: {devs}");
    assert!(devs.contains("c 1:3 rwm"), "/dev/null not allowed: {devs}");
    assert_eq!(
        content(&r, "/proc/interrupts"),
        "",
        "/proc/interrupts is not masked"
    );

    // The issue's reproduction: a new user namespace with every capability, then a mount.
    let (code, text) = t.sh(
        "sec",
        &[],
        "busybox unshare -U -r -m sh -c 'mount -t tmpfs none /tmp && echo MOUNTED'; \
         busybox mount -t tmpfs none /tmp && echo MOUNTED2; echo done",
    );
    assert_eq!(code, Some(0), "{text}");
    assert!(
        !text.contains("MOUNTED"),
        "the image container mounted: {text}"
    );
    assert!(text.contains("Operation not permitted"), "{text}");
}

/// Issue 16: an image container may not open host devices: with CAP_MKNOD it used to make
/// a node for the host's disk and read it. The standard devices still work.
#[test]
fn image_containers_cannot_read_host_devices() {
    let t = Img::new();
    t.busybox("devs");
    let (code, text) = t.sh("devs", &[], &common::read_host_disk_script());
    assert_eq!(code, Some(0), "{text}");
    assert!(!text.contains("MKNOD-FAILED"), "{text}");
    assert!(!text.contains("READ"), "the host's disk was read: {text}");
    assert!(
        text.contains("Operation not permitted"),
        "not EPERM: {text}"
    );
    assert!(text.contains("NULL"), "/dev/null is unusable: {text}");

    // --device gives that one device, with the permissions named.
    let (_, _, name) = common::host_disk();
    let dev = format!("/dev/{name}:/dev/hostdisk:r");
    let (code, text) = t.sh(
        "devs",
        &["--device", &dev],
        "head -c 512 /dev/hostdisk > /dev/null && echo READ; \
         (echo x > /dev/hostdisk) 2>&1 || echo NOWRITE",
    );
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("READ"), "--device {dev}: {text}");
    assert!(
        text.contains("NOWRITE"),
        "--device {dev} gave write: {text}"
    );
}

/// The opt-outs, named as docker's: --privileged, --cap-drop/--cap-add, --security-opt
/// seccomp=unconfined|PROFILE and no-new-privileges; bad ones are refused by name.
#[test]
fn image_security_opt_outs() {
    let t = Img::new();
    t.busybox("opt");
    let r = t.report("opt", &["--privileged"], &[DEVICES_LIST]);
    assert_eq!(r["seccomp"], 0);
    assert_eq!(caps_of(&r, "eff"), all_caps(), "{}", r["caps"]);
    assert!(content(&r, DEVICES_LIST).contains("a *:* rwm"));

    let r = t.report(
        "opt",
        &["--cap-drop", "ALL", "--cap-add", "NET_BIND_SERVICE"],
        &[],
    );
    assert_eq!(caps_of(&r, "eff"), 1 << 10, "{}", r["caps"]);
    assert_eq!(caps_of(&r, "bnd"), 1 << 10, "{}", r["caps"]);
    assert_eq!(r["seccomp"], 2);

    let r = t.report(
        "opt",
        &["--cap-drop", "chown", "--cap-add", "cap_sys_ptrace"],
        &[],
    );
    assert_eq!(
        caps_of(&r, "eff"),
        (DOCKER_CAPS & !1) | (1 << 19),
        "{}",
        r["caps"]
    );

    let r = t.report("opt", &["--security-opt", "seccomp=unconfined"], &[]);
    assert_eq!(r["seccomp"], 0);
    assert_eq!(caps_of(&r, "eff"), DOCKER_CAPS);

    let r = t.report("opt", &["--security-opt", "no-new-privileges"], &[]);
    assert_eq!(r["no_new_privs"], 1);
    assert_eq!(r["seccomp"], 2);

    // A profile of one's own: everything but mkdir.
    let profile = t.path("profile.json");
    fs::write(
        &profile,
        serde_json::to_vec(&json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                          "errnoRet": 1}]
        }))
        .unwrap(),
    )
    .unwrap();
    let opt = format!("seccomp={}", profile.display());
    let (code, text) = t.sh(
        "opt",
        &["--security-opt", &opt],
        "mkdir /tmp/d || echo REFUSED; grep Seccomp: /proc/self/status",
    );
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("REFUSED") && text.contains("Seccomp:\t2"),
        "{text}"
    );

    for (flags, needle) in [
        (
            &["--cap-add", "NOPE"][..],
            "--cap-add \"NOPE\": unknown capability",
        ),
        (
            &["--security-opt", "apparmor=x"][..],
            "--security-opt \"apparmor=x\"",
        ),
        (
            &["--security-opt", "seccomp=/nonexistent.json"][..],
            "/nonexistent.json",
        ),
        (&["--device", "/etc/passwd"][..], "is not a device node"),
        (
            &["--device", "/dev/null:/dev/n:rwx"][..],
            "not a combination of r, w and m",
        ),
    ] {
        let mut args = vec!["run", "--rm", "--network", "none", "--image", "opt"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["--", "/bin/true"]);
        let err = t.fails(&args);
        assert!(err.contains(needle), "{flags:?}: {err}");
    }
}

/// A build's RUN step is an image container too: docker's seccomp profile and capabilities.
#[test]
fn build_run_steps_get_dockers_defaults() {
    let t = Img::new();
    t.busybox("base");
    let ctx = t.path("ctx-sec");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        "FROM base\nRUN grep -E '^(Seccomp|CapEff):' /proc/self/status > /status; \
         busybox unshare -U -r true 2> /unshare || true\n",
    )
    .unwrap();
    t.ok(&[
        "image",
        "build",
        "--network",
        "none",
        "-t",
        "sec:1",
        ctx.to_str().unwrap(),
    ]);
    let out = t.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--image",
        "sec:1",
        "--",
        "cat",
        "/status",
        "/unshare",
    ]);
    assert!(out.contains("Seccomp:\t2"), "{out}");
    assert!(
        out.contains(&format!("CapEff:\t{DOCKER_CAPS:016x}")),
        "{out}"
    );
    assert!(out.contains("Operation not permitted"), "{out}");
}

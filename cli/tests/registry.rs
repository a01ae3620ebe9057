//! `pull`, `push`, `login`, `logout` against a real registry on 127.0.0.1: Debian's
//! `docker-registry` (the CNCF distribution registry), started by each test on a free
//! loopback port with its own storage dir and config (plain HTTP, or htpasswd auth over TLS
//! with a certificate made here by openssl), filled by `skopeo copy` from an OCI layout the
//! test builds and by `corral push`. Nothing here reaches another address.

mod common;

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::{bounded, names};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use testkit::TestRootfs;

fn sha256_hex(b: &[u8]) -> String {
    format!("{:x}", Sha256::digest(b))
}

fn need(prog: &str) {
    let ok = Command::new("sh")
        .args(["-c", &format!("command -v {prog}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "{prog} is not installed: run scripts/setup-deps.sh");
}

fn run_ok(c: &mut Command) -> String {
    let out = bounded(
        std::mem::replace(c, Command::new("true")),
        Duration::from_secs(240),
    );
    assert!(
        out.status.success(),
        "failed ({:?}): {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A registry of this test: its process, dir (storage, config, certificates, log) and port.
struct Registry {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
    auth: bool,
}

impl Registry {
    /// Plain HTTP, no auth.
    fn plain() -> Registry {
        Registry::start(false)
    }

    /// TLS (a CA and a server certificate for 127.0.0.1) and htpasswd auth: user `tester`,
    /// password `s3cret`.
    fn secure() -> Registry {
        Registry::start(true)
    }

    fn start(auth: bool) -> Registry {
        testkit::require_root();
        need("docker-registry");
        need("skopeo");
        let dir = tempfile::Builder::new()
            .prefix("corral-registry-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        fs::create_dir(d.join("data")).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cfg = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  \
             delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            d.join("data").display()
        );
        if auth {
            need("openssl");
            need("htpasswd");
            let sh = format!(
                "set -e; cd {}; \
                 openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 \
                   -subj /CN=corral-test-ca 2>/dev/null; \
                 openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr \
                   -subj /CN=127.0.0.1 2>/dev/null; \
                 printf 'subjectAltName=IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\n' > ext; \
                 openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
                   -out server.crt -days 2 -extfile ext 2>/dev/null; \
                 htpasswd -Bbn tester s3cret > htpasswd",
                d.display()
            );
            run_ok(Command::new("sh").args(["-c", &sh]));
            cfg.push_str(&format!(
                "  tls:\n    certificate: {0}/server.crt\n    key: {0}/server.key\n\
                 auth:\n  htpasswd:\n    realm: corral-test\n    path: {0}/htpasswd\n",
                d.display()
            ));
        }
        fs::write(d.join("config.yml"), cfg).unwrap();
        let log = fs::File::create(d.join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(d.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let r = Registry {
            child: Some(child),
            dir,
            port,
            auth,
        };
        // Until it listens (not a timed assertion: a registry that never comes up fails
        // here, naming its log).
        for _ in 0..300 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return r;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "docker-registry did not listen on 127.0.0.1:{port}: {}",
            fs::read_to_string(r.dir.path().join("registry.log")).unwrap_or_default()
        );
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// The file the registry keeps a blob in.
    fn blob_file(&self, hex: &str) -> PathBuf {
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// `skopeo copy` of an OCI layout (all its images) to `repo:tag` here.
    fn skopeo_put(&self, layout: &Path, repo: &str) {
        self.skopeo_put_with(layout, repo, &["--all"]);
    }

    /// [`Registry::skopeo_put`] with other skopeo flags.
    fn skopeo_put_with(&self, layout: &Path, repo: &str, flags: &[&str]) {
        let mut c = Command::new("skopeo");
        c.args(["copy", "--dest-tls-verify=false"]).args(flags);
        if self.auth {
            c.args(["--dest-creds", "tester:s3cret"]);
        }
        c.arg(format!("oci:{}", layout.display()))
            .arg(format!("docker://{}/{repo}", self.host()));
        run_ok(&mut c);
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A store, a state root and a docker config dir of this test.
struct Client {
    dir: tempfile::TempDir,
}

impl Client {
    fn new() -> Client {
        Client {
            dir: tempfile::Builder::new()
                .prefix("corral-regclient-")
                .tempdir()
                .unwrap(),
        }
    }

    fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(common::corral());
        c.arg("--store")
            .arg(self.store())
            .arg("--root")
            .arg(self.dir.path().join("state"))
            .args(args)
            .env("DOCKER_CONFIG", self.dir.path().join("docker"))
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        bounded(self.cmd(args), Duration::from_secs(240))
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "corral {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "corral {args:?} succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    fn inspect(&self, name: &str) -> Value {
        serde_json::from_str(&self.ok(&["image", "inspect", name])).unwrap()
    }

    /// Trust `reg`'s CA for this store.
    fn trust(&self, reg: &Registry) {
        let d = self.store().join("certs.d").join(reg.host());
        fs::create_dir_all(&d).unwrap();
        fs::copy(reg.dir.path().join("ca.crt"), d.join("ca.crt")).unwrap();
    }

    /// The busybox test root imported as `name` and exported as an OCI layout; returns the
    /// layout's path and the image's manifest digest.
    fn busybox_layout(&self, name: &str) -> (PathBuf, String) {
        let rootfs = TestRootfs::new();
        self.ok(&["image", "import", rootfs.rootfs().to_str().unwrap(), name]);
        let layout = self
            .dir
            .path()
            .join(format!("layout-{}", sha256_hex(name.as_bytes())));
        self.ok(&["image", "export", name, layout.to_str().unwrap()]);
        let md = self.inspect(name)["ManifestDigest"]
            .as_str()
            .unwrap()
            .to_string();
        (layout, md)
    }
}

/// A gzip'd tar holding one file.
fn layer_of(file: &str, data: &[u8]) -> (Vec<u8>, String) {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, file, data).unwrap();
    let tar = b.into_inner().unwrap();
    let diff = format!("sha256:{}", sha256_hex(&tar));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    (gz.finish().unwrap(), diff)
}

/// An OCI layout with an index of two images, linux/amd64 and linux/arm64, each with a file
/// `/platform` naming it; returns the manifest digest of each.
fn two_platform_layout(dir: &Path) -> Vec<(String, String)> {
    fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    let put = |b: &[u8]| {
        let h = sha256_hex(b);
        fs::write(dir.join("blobs/sha256").join(&h), b).unwrap();
        (format!("sha256:{h}"), b.len())
    };
    let mut entries = Vec::new();
    let mut out = Vec::new();
    for arch in ["amd64", "arm64"] {
        let (layer, diff) = layer_of("platform", arch.as_bytes());
        let (ld, ls) = put(&layer);
        let config = json!({"architecture": arch, "os": "linux",
            "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": [diff]}});
        let (cd, cs) = put(&serde_json::to_vec(&config).unwrap());
        let manifest = json!({"schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld, "size": ls}]});
        let (md, ms) = put(&serde_json::to_vec(&manifest).unwrap());
        entries.push(
            json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": md, "size": ms, "platform": {"architecture": arch, "os": "linux"}}),
        );
        out.push((arch.to_string(), md));
    }
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries});
    let (id, is) = put(&serde_json::to_vec(&index).unwrap());
    let top = json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json",
        "digest": id, "size": is}]});
    fs::write(dir.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    out
}

/// An OCI layout of one image whose manifest lists the same layer twice (as images with a
/// repeated empty layer do); returns its manifest digest.
fn repeated_layer_layout(dir: &Path) -> String {
    fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    let put = |b: &[u8]| {
        let h = sha256_hex(b);
        fs::write(dir.join("blobs/sha256").join(&h), b).unwrap();
        (format!("sha256:{h}"), b.len())
    };
    let (layer, diff) = layer_of("same", b"twice");
    let (ld, ls) = put(&layer);
    let config = json!({"architecture": host_arch(), "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff, diff]}});
    let (cd, cs) = put(&serde_json::to_vec(&config).unwrap());
    let l = json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld, "size": ls});
    let manifest = json!({"schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
        "layers": [l, l]});
    let (md, ms) = put(&serde_json::to_vec(&manifest).unwrap());
    let top = json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": md, "size": ms}]});
    fs::write(dir.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    md
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => panic!("no test image for {a}"),
    }
}

#[test]
fn pull_by_tag_and_by_digest() {
    let reg = Registry::plain();
    let src = Client::new();
    let (layout, md) = src.busybox_layout("busybox:1");
    reg.skopeo_put(&layout, "busybox:1");
    let c = Client::new();
    let r = format!("{}/busybox:1", reg.host());
    // Named plain HTTP only by --tls-verify=false: without it, refused.
    let e = c.fails(&["pull", &r]);
    assert!(e.contains(&reg.host()) && e.contains("https://"), "{e}");
    let out = c.ok(&["pull", "--tls-verify=false", &r]);
    assert_eq!(out.trim(), r);
    let img = c.inspect(&r);
    assert_eq!(img["ManifestDigest"], md);
    assert_eq!(img["Id"], src.inspect("busybox:1")["Id"]);
    // Again: every layer is there already, nothing is fetched.
    let before = reg.log().matches("/blobs/sha256:").count();
    let out = c.run(&["pull", "--tls-verify=false", &r]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Already exists"));
    let blob_gets = reg.log().matches("/blobs/sha256:").count() - before;
    // The config only (once for the request, once for the response line of the log).
    assert!(blob_gets <= 2, "{}", reg.log());
    // A single-platform image is not taken for another platform.
    let e = c.fails(&[
        "pull",
        "--tls-verify=false",
        "--platform",
        "linux/s390x",
        &r,
    ]);
    assert!(e.contains("not linux/s390x"), "{e}");
    // By digest, into another store: tagged NAME:sha256-<hex>.
    let c2 = Client::new();
    let by_digest = format!("{}/busybox@{md}", reg.host());
    c2.ok(&["pull", "--tls-verify=false", &by_digest]);
    let tag = format!("{}/busybox:{}", reg.host(), md.replace(':', "-"));
    assert_eq!(c2.inspect(&tag)["ManifestDigest"], md);
    // A digest the registry does not have: an error naming it, nothing tagged.
    let missing = format!("{}/busybox@sha256:{}", reg.host(), "0".repeat(64));
    let e = c2.fails(&["pull", "--tls-verify=false", &missing]);
    assert!(
        e.contains(&"0".repeat(64)) || e.contains("unknown") || e.contains("not found"),
        "{e}"
    );
}

#[test]
fn docker_v2_schema2_and_zstd_images() {
    let reg = Registry::plain();
    let src = Client::new();
    let (layout, _) = src.busybox_layout("fmt:1");
    let id = src.inspect("fmt:1")["Id"].clone();
    reg.skopeo_put_with(&layout, "v2:1", &["--format", "v2s2"]);
    let c = Client::new();
    let r = format!("{}/v2:1", reg.host());
    c.ok(&["pull", "--tls-verify=false", &r]);
    let img = c.inspect(&r);
    assert_eq!(
        img["Manifest"]["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(
        img["Manifest"]["layers"][0]["mediaType"],
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    );
    // The same image: its config (and so its ID and diff IDs) unchanged.
    assert_eq!(img["Id"], id);
    // skopeo compresses an uncompressed layer with zstd.
    let t = tempfile::tempdir().unwrap();
    let (_, diff) = plain_layer_layout(&t.path().join("layout"));
    reg.skopeo_put_with(
        &t.path().join("layout"),
        "zstd:1",
        &["--dest-compress", "--dest-compress-format", "zstd"],
    );
    let r = format!("{}/zstd:1", reg.host());
    c.ok(&["pull", "--tls-verify=false", &r]);
    let img = c.inspect(&r);
    assert_eq!(
        img["Manifest"]["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    assert_eq!(img["Config"]["rootfs"]["diff_ids"][0], diff);
    let dir = img["LayerDirs"][0].as_str().unwrap();
    assert_eq!(
        fs::read(Path::new(dir).join("zfile")).unwrap(),
        b"zstd layer"
    );
}

/// An OCI layout of one image with one uncompressed layer holding `zfile`; returns its
/// manifest digest and the layer's diff ID.
fn plain_layer_layout(dir: &Path) -> (String, String) {
    layout_with_file(dir, b"zstd layer")
}

/// An OCI layout of one image with one uncompressed layer holding `zfile` = `data`; returns
/// its manifest digest and the layer's diff ID (its digest).
fn layout_with_file(dir: &Path, data: &[u8]) -> (String, String) {
    fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    let put = |b: &[u8]| {
        let h = sha256_hex(b);
        fs::write(dir.join("blobs/sha256").join(&h), b).unwrap();
        (format!("sha256:{h}"), b.len())
    };
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "zfile", data).unwrap();
    let tar = b.into_inner().unwrap();
    let (ld, ls) = put(&tar);
    let config = json!({"architecture": host_arch(), "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [ld]}});
    let (cd, cs) = put(&serde_json::to_vec(&config).unwrap());
    let manifest = json!({"schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": ls}]});
    let (md, ms) = put(&serde_json::to_vec(&manifest).unwrap());
    let top = json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": md, "size": ms}]});
    fs::write(dir.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    (md, ld)
}

#[test]
fn multi_platform_index_gives_the_platform_asked_for() {
    let reg = Registry::plain();
    let t = tempfile::tempdir().unwrap();
    let made = two_platform_layout(&t.path().join("layout"));
    reg.skopeo_put(&t.path().join("layout"), "multi:1");
    let r = format!("{}/multi:1", reg.host());
    let c = Client::new();
    c.ok(&["pull", "--tls-verify=false", &r]);
    let want = &made.iter().find(|(a, _)| a == host_arch()).unwrap().1;
    assert_eq!(c.inspect(&r)["ManifestDigest"], *want);
    let c2 = Client::new();
    c2.ok(&[
        "pull",
        "--tls-verify=false",
        "--platform",
        "linux/arm64",
        &r,
    ]);
    assert_eq!(c2.inspect(&r)["ManifestDigest"], made[1].1);
    let e = c2.fails(&[
        "pull",
        "--tls-verify=false",
        "--platform",
        "linux/s390x",
        &r,
    ]);
    assert!(
        e.contains("linux/s390x") && e.contains("linux/amd64, linux/arm64"),
        "{e}"
    );
}

#[test]
fn a_layer_listed_twice_is_fetched_once() {
    let reg = Registry::plain();
    let t = tempfile::tempdir().unwrap();
    let md = repeated_layer_layout(&t.path().join("layout"));
    reg.skopeo_put(&t.path().join("layout"), "twice:1");
    let c = Client::new();
    let r = format!("{}/twice:1", reg.host());
    c.ok(&["pull", "--tls-verify=false", &r]);
    assert_eq!(c.inspect(&r)["ManifestDigest"], md);
    assert_eq!(names(&c.store().join("layers/sha256")).len(), 1);
}

#[test]
fn push_then_pull_gives_identical_digests() {
    let reg = Registry::plain();
    let src = Client::new();
    let rootfs = TestRootfs::new();
    src.ok(&["image", "import", rootfs.rootfs().to_str().unwrap(), "rt:1"]);
    let md = src.inspect("rt:1")["ManifestDigest"]
        .as_str()
        .unwrap()
        .to_string();
    let r = format!("{}/team/rt:1", reg.host());
    let out = src.ok(&["push", "--tls-verify=false", "rt:1", &r]);
    assert!(out.contains(&md), "{out}");
    // Pushed again: every blob is there, only the manifest is sent.
    let out = src.run(&["push", "--tls-verify=false", "rt:1", &r]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Already exists"));
    let c = Client::new();
    c.ok(&["pull", "--tls-verify=false", &r]);
    let a = src.inspect("rt:1");
    let b = c.inspect(&r);
    assert_eq!(b["ManifestDigest"], md);
    assert_eq!(a["Id"], b["Id"]);
    assert_eq!(a["Manifest"], b["Manifest"]);
    // Pushed from the pulled copy to another repository of the same registry: each blob is
    // mounted from the repository the image came from, not uploaded.
    let other = format!("{}/else/rt:1", reg.host());
    let out = c.ok(&["push", "--tls-verify=false", &r, &other]);
    assert!(out.contains(&md), "{out}");
    let log = reg.log();
    assert!(
        log.lines()
            .any(|l| l.contains("\"POST /v2/else/rt/blobs/uploads/")
                && l.contains("mount=")
                && l.contains("\" 201 ")),
        "no mount request: {log}"
    );
    assert!(
        !log.contains("PUT /v2/else/rt/blobs/uploads"),
        "a blob was uploaded: {log}"
    );
    // skopeo sees the same digest.
    let out = run_ok(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        &format!("docker://{r}"),
    ]));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["Digest"], md);
}

#[test]
fn corrupt_blob_is_refused_naming_its_digest_and_nothing_is_kept() {
    let reg = Registry::plain();
    let src = Client::new();
    let (layout, md) = src.busybox_layout("bad:1");
    reg.skopeo_put(&layout, "bad:1");
    let layer = src.inspect("bad:1")["Manifest"]["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let hex = layer.strip_prefix("sha256:").unwrap().to_string();
    let f = reg.blob_file(&hex);
    let mut data = fs::read(&f).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0xff;
    fs::write(&f, &data).unwrap();
    let c = Client::new();
    let r = format!("{}/bad:1", reg.host());
    let e = c.fails(&["pull", "--tls-verify=false", &r]);
    assert!(e.contains(&layer) && e.contains("refused"), "{e}");
    assert!(!c.store().join("blobs/sha256").join(&hex).exists());
    let tmp: Vec<String> = names(&c.store().join("blobs/tmp"))
        .into_iter()
        .filter(|n| !n.ends_with(".lock"))
        .collect();
    assert!(tmp.is_empty(), "{tmp:?}");
    assert!(names(&c.store().join("layers/sha256")).is_empty());
    assert!(!c.ok(&["image", "ls"]).contains("bad"));
    let _ = md;
}

#[test]
fn auth_over_tls_required_and_given() {
    need("htpasswd");
    let reg = Registry::secure();
    let src = Client::new();
    let (layout, md) = src.busybox_layout("sec:1");
    reg.skopeo_put(&layout, "sec:1");
    let c = Client::new();
    c.trust(&reg);
    let r = format!("{}/sec:1", reg.host());
    // Verified TLS (the CA in <store>/certs.d), no credentials: refused.
    let e = c.fails(&["pull", &r]);
    assert!(e.contains("Not authorized"), "{e}");
    // Wrong password: login refused, nothing stored.
    let mut cmd = c.cmd(&["login", "-u", "tester", "--password-stdin", &reg.host()]);
    cmd.stdin(Stdio::piped());
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"wrong\n").unwrap();
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(!c.dir.path().join("docker/config.json").exists());
    let mut cmd = c.cmd(&["login", "-u", "tester", "--password-stdin", &reg.host()]);
    cmd.stdin(Stdio::piped());
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"s3cret\n").unwrap();
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Login Succeeded"));
    let cfg: Value =
        serde_json::from_slice(&fs::read(c.dir.path().join("docker/config.json")).unwrap())
            .unwrap();
    // docker's format: base64 of user:secret.
    assert_eq!(cfg["auths"][reg.host()]["auth"], "dGVzdGVyOnMzY3JldA==");
    c.ok(&["pull", &r]);
    assert_eq!(c.inspect(&r)["ManifestDigest"], md);
    // Pushed under another name with the same credentials.
    let out = c.ok(&["push", &r, &format!("{}/copy:2", reg.host())]);
    assert!(out.contains(&md), "{out}");
    c.ok(&["logout", &reg.host()]);
    let c2 = Client::new();
    c2.trust(&reg);
    fs::create_dir_all(c2.dir.path().join("docker")).unwrap();
    fs::copy(
        c.dir.path().join("docker/config.json"),
        c2.dir.path().join("docker/config.json"),
    )
    .unwrap();
    c2.fails(&["pull", &r]);
}

#[test]
fn credential_helper_is_asked() {
    let reg = Registry::secure();
    let src = Client::new();
    let (layout, _) = src.busybox_layout("helped:1");
    reg.skopeo_put(&layout, "helped:1");
    let c = Client::new();
    c.trust(&reg);
    // A helper on PATH that knows one registry.
    let bin = c.dir.path().join("bin");
    fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-corraltest");
    fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread server\n[ \"$1\" = get ] && [ \"$server\" = {} ] && \
             echo '{{\"ServerURL\":\"x\",\"Username\":\"tester\",\"Secret\":\"s3cret\"}}' && exit 0\n\
             echo 'credentials not found in native keychain'; exit 1\n",
            reg.host()
        ),
    )
    .unwrap();
    fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    fs::create_dir_all(c.dir.path().join("docker")).unwrap();
    fs::write(
        c.dir.path().join("docker/config.json"),
        json!({"credHelpers": {reg.host(): "corraltest"}}).to_string(),
    )
    .unwrap();
    let r = format!("{}/helped:1", reg.host());
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let mut cmd = c.cmd(&["pull", &r]);
    cmd.env("PATH", path);
    let out = bounded(cmd, Duration::from_secs(240));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn two_pulls_of_one_image_at_once() {
    let reg = Registry::plain();
    let src = Client::new();
    let (layout, md) = src.busybox_layout("twice:1");
    reg.skopeo_put(&layout, "twice:1");
    let c = Client::new();
    let r = format!("{}/twice:1", reg.host());
    let spawn = || {
        c.cmd(&["pull", "-q", "--tls-verify=false", &r])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    for ch in [a, b] {
        let out = ch.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(c.inspect(&r)["ManifestDigest"], md);
    assert_eq!(names(&c.store().join("layers/sha256")).len(), 1);
    let tmp: Vec<String> = names(&c.store().join("blobs/tmp"))
        .into_iter()
        .filter(|n| !n.ends_with(".lock"))
        .collect();
    assert!(tmp.is_empty(), "{tmp:?}");
}

#[test]
fn an_interrupted_download_is_resumed() {
    let reg = Registry::plain();
    let src = Client::new();
    let (layout, md) = src.busybox_layout("resume:1");
    reg.skopeo_put(&layout, "resume:1");
    let layer = src.inspect("resume:1")["Manifest"]["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let hex = layer.strip_prefix("sha256:").unwrap();
    let whole = fs::read(reg.blob_file(hex)).unwrap();
    let half = whole.len() / 2;
    // What a pull killed halfway leaves: the first half of the blob in blobs/tmp.
    let c = Client::new();
    fs::create_dir_all(c.store().join("blobs/tmp")).unwrap();
    fs::set_permissions(
        c.store(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    fs::write(
        c.store().join("blobs/tmp").join(format!("pull-{hex}")),
        &whole[..half],
    )
    .unwrap();
    let r = format!("{}/resume:1", reg.host());
    c.ok(&["pull", "--tls-verify=false", &r]);
    assert_eq!(c.inspect(&r)["ManifestDigest"], md);
    // The registry sent the rest only.
    let rest = whole.len() - half;
    let log = reg.log();
    assert!(
        log.lines().any(|l| l.contains(&format!("/blobs/{layer}"))
            && l.contains(&format!("http.response.written={rest}"))),
        "no GET of {layer} answered with {rest} bytes: {log}"
    );
}

#[test]
fn build_from_an_image_only_on_the_registry() {
    let reg = Registry::plain();
    let src = Client::new();
    let (layout, md) = src.busybox_layout("base:1");
    reg.skopeo_put(&layout, "base:1");
    let c = Client::new();
    // The registry is named plain HTTP in the store's registries file.
    fs::create_dir_all(c.store()).unwrap();
    fs::set_permissions(
        c.store(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    fs::write(
        c.store().join("registries.json"),
        json!({"registries": [{"location": reg.host(), "insecure": true}]}).to_string(),
    )
    .unwrap();
    let ctx = c.dir.path().join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {}/base:1\nENV MADE=here\n", reg.host()),
    )
    .unwrap();
    c.ok(&[
        "image",
        "build",
        "--network",
        "none",
        "-t",
        "made:1",
        ctx.to_str().unwrap(),
    ]);
    assert_eq!(
        c.inspect(&format!("{}/base:1", reg.host()))["ManifestDigest"],
        md
    );
    let made = c.inspect("made:1");
    assert_eq!(
        made["Manifest"]["layers"],
        src.inspect("base:1")["Manifest"]["layers"]
    );
    // docker's `run` pulls what the store lacks (--pull missing), and not with --pull never.
    let r = Client::new();
    fs::create_dir_all(r.store()).unwrap();
    fs::set_permissions(
        r.store(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    fs::copy(
        c.store().join("registries.json"),
        r.store().join("registries.json"),
    )
    .unwrap();
    let image = format!("{}/base:1", reg.host());
    let refused = r.fails(&[
        "run",
        "--rm",
        "--pull",
        "never",
        "--network",
        "none",
        &image,
    ]);
    assert!(refused.contains("Unable to find image"), "{refused}");
    let out = r.ok(&["run", "--rm", "--network", "none", &image, "echo", "pulled"]);
    assert!(out.contains("pulled"), "{out}");
    assert_eq!(r.inspect(&image)["ManifestDigest"], md);
}

/// A loopback proxy to `to` that forwards at most `limit` bytes from the registry while
/// `stall` is set, then holds the rest back until it is cleared.
fn stalling_proxy(
    to: u16,
    limit: usize,
    stall: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> u16 {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let sent = Arc::new(AtomicUsize::new(0));
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(client) = c else { return };
            let Ok(server) = TcpStream::connect(("127.0.0.1", to)) else {
                return;
            };
            let (mut c1, mut s1) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c1, &mut s1);
                let _ = s1.shutdown(std::net::Shutdown::Write);
            });
            let (mut c2, mut s2) = (client, server);
            let (sent, stall) = (sent.clone(), stall.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                loop {
                    let n = match s2.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    let mut off = 0;
                    while off < n {
                        if stall.load(Ordering::SeqCst) {
                            let room = limit.saturating_sub(sent.load(Ordering::SeqCst));
                            if room == 0 {
                                std::thread::sleep(Duration::from_millis(20));
                                continue;
                            }
                            let k = room.min(n - off);
                            if c2.write_all(&buf[off..off + k]).is_err() {
                                return;
                            }
                            sent.fetch_add(k, Ordering::SeqCst);
                            off += k;
                        } else {
                            if c2.write_all(&buf[off..n]).is_err() {
                                return;
                            }
                            off = n;
                        }
                    }
                }
                let _ = c2.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    port
}

#[test]
fn a_pull_killed_halfway_resumes_where_it_stopped() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let reg = Registry::plain();
    let t = tempfile::tempdir().unwrap();
    // 4 MiB that gzip cannot shrink (xorshift).
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let data: Vec<u8> = (0..(4 << 20))
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    layout_with_file(&t.path().join("layout"), &data);
    reg.skopeo_put(&t.path().join("layout"), "big:1");
    // As the registry has it (skopeo compressed the layer).
    let raw = run_ok(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}/big:1", reg.host()),
    ]));
    let md = format!("sha256:{}", sha256_hex(raw.as_bytes()));
    let m: Value = serde_json::from_str(&raw).unwrap();
    let layer = m["layers"][0]["digest"].as_str().unwrap().to_string();
    let hex = layer.strip_prefix("sha256:").unwrap().to_string();
    let total = fs::metadata(reg.blob_file(&hex)).unwrap().len();
    let stall = std::sync::Arc::new(AtomicBool::new(true));
    let port = stalling_proxy(reg.port, total as usize / 2, stall.clone());
    let c = Client::new();
    let r = format!("127.0.0.1:{port}/big:1");
    let mut child = c
        .cmd(&["pull", "-q", "--tls-verify=false", &r])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Until the download holds some of the layer and no more comes (the proxy holds it).
    let part = c.store().join("blobs/tmp").join(format!("pull-{hex}"));
    let mut last = 0;
    let mut same = 0;
    for _ in 0..3000 {
        let n = fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
        if n > 0 && n == last {
            same += 1;
            if same == 20 {
                break;
            }
        } else {
            same = 0;
        }
        last = n;
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let have = fs::metadata(&part).unwrap().len();
    assert!(have > 0 && have < total, "{have} of {total}");
    stall.store(false, Ordering::SeqCst);
    c.ok(&["pull", "--tls-verify=false", &r]);
    assert_eq!(c.inspect(&r)["ManifestDigest"], md);
    let rest = total - have;
    let log = reg.log();
    assert!(
        log.lines().any(|l| l.contains(&format!("/blobs/{layer}"))
            && l.contains(&format!("http.response.written={rest}"))),
        "no GET of {layer} answered with the last {rest} bytes: {log}"
    );
    assert!(!part.exists());
}

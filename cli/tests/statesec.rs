//! The state root against other local users (issue 16, section 3): a container's files are
//! out of their reach whatever the mode of the state root, and a state root (or container
//! dir) that another user made or may write is refused by every verb before anything in it
//! (a planted `config.json` with hooks) is trusted.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{cli_ok, Env};
use serde_json::{json, Value};

/// The unprivileged user the attacks run as.
const NOBODY: &str = "65534";

/// `args` run as uid/gid 65534 without supplementary groups.
fn as_nobody(args: &[&str]) -> Output {
    Command::new("setpriv")
        .args(["--reuid", NOBODY, "--regid", NOBODY, "--clear-groups", "--"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("spawn setpriv")
}

/// The mount options (field 6) and mount point of every line of a mountinfo file.
fn mountinfo(path: &str) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {path}: {e}"))
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            Some((f.get(4)?.to_string(), f.get(5)?.to_string()))
        })
        .collect()
}

/// A container on an overlay root (as every image container is) makes a set-user-ID-root
/// copy of the probe in its root. Its state root is 0755. Another local user then looks for
/// set-user-ID files under the state root and runs what it finds (and the file at the
/// overlay's mount point): nothing is found, nothing runs with euid 0. The host's mount of
/// the overlay is nosuid,nodev; the container's own root mount is not (a set-user-ID binary
/// in an image still works inside).
#[test]
fn other_users_cannot_reach_an_overlay_root_through_a_searchable_state_root() {
    let env = Env::new("statesec-suid");
    let mut spec = env.spec(&["/bin/sh", "-c", MAKE_SUID]);
    spec["root"]["readonly"] = json!(false);
    env.rootfs.write_config(&spec);
    let bundle = common::path_str(env.bundle());
    let layer = common::path_str(env.rootfs.rootfs());
    suid_attack(
        &env,
        &["run", "-d", "--bundle", &bundle, "--layer", &layer, &env.id],
    );
}

/// The same with a container made from an image (`run --image`).
#[test]
fn other_users_cannot_reach_an_image_containers_root_through_a_searchable_state_root() {
    let env = Env::new("statesec-img");
    let store = tempfile::Builder::new()
        .prefix("corral-store-")
        .tempdir()
        .unwrap();
    let store_s = common::path_str(store.path());
    let rootfs = common::path_str(env.rootfs.rootfs());
    cli_ok(
        &env,
        &["--store", &store_s, "image", "import", &rootfs, "base"],
    );
    suid_attack(
        &env,
        &[
            "--store",
            &store_s,
            "run",
            "-d",
            "--network",
            "none",
            "--image",
            "base",
            "--name",
            &env.id,
            "--",
            "sh",
            "-c",
            MAKE_SUID,
        ],
    );
    cli_ok(&env, &["--store", &store_s, "image", "rm", "base"]);
}

/// What the container runs: a set-user-ID-root copy of the probe in its root.
const MAKE_SUID: &str =
    "cat /probe > /suid && chmod 4755 /suid && touch /ready && exec /probe sleep inf";

/// Runs the container (`run_args`) with its state root 0755, and attacks it as another user.
fn suid_attack(env: &Env, run_args: &[&str]) {
    std::fs::set_permissions(env.state_root(), std::fs::Permissions::from_mode(0o755)).unwrap();
    cli_ok(env, run_args);
    let st: Value = serde_json::from_str(&cli_ok(env, &["state", &env.id])).unwrap();
    let rootfs = PathBuf::from(st["rootfs"].as_str().expect("rootfs in state"));
    let pid = st["pid"].as_i64().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !rootfs.join("ready").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the container never made its file"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }

    // The attack: find set-user-ID files under the state root, run each.
    let root = common::path_str(env.state_root());
    let found = as_nobody(&["find", &root, "-perm", "-4000", "-type", "f"]);
    let found: Vec<String> = String::from_utf8_lossy(&found.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    let mut escalated = Vec::new();
    let mut tried: Vec<String> = found.clone();
    tried.push(common::path_str(&rootfs.join("suid")));
    for p in &tried {
        let out = as_nobody(&[p, "report"]);
        if let Ok(v) = serde_json::from_slice::<Value>(&out.stdout) {
            if v["euid"] == json!(0) {
                escalated.push(p.clone());
            }
        }
    }
    let stat = as_nobody(&["stat", &common::path_str(&rootfs.join("suid"))]);

    // The mounts: the host's overlay mount is nosuid,nodev; the container's root is not.
    let rootfs_s = common::path_str(&rootfs);
    let host: Vec<String> = mountinfo("/proc/self/mountinfo")
        .into_iter()
        .filter(|(mp, _)| *mp == rootfs_s)
        .map(|(_, o)| o)
        .collect();
    let inside: Vec<String> = mountinfo(&format!("/proc/{pid}/mountinfo"))
        .into_iter()
        .filter(|(mp, _)| mp == "/")
        .map(|(_, o)| o)
        .collect();
    cli_ok(env, &["delete", "--force", &env.id]);
    common::reap(pid);

    assert!(
        escalated.is_empty(),
        "another user ran the container's set-user-ID file as root: {escalated:?}"
    );
    assert!(
        found.is_empty(),
        "another user found the container's set-user-ID file: {found:?}"
    );
    assert!(
        !stat.status.success(),
        "another user stats {}",
        rootfs.join("suid").display()
    );
    assert_eq!(host.len(), 1, "the overlay mount in the host: {host:?}");
    let opts: Vec<&str> = host[0].split(',').collect();
    assert!(
        opts.contains(&"nosuid") && opts.contains(&"nodev"),
        "host mount of the overlay: {}",
        host[0]
    );
    assert_eq!(inside.len(), 1, "the container's root: {inside:?}");
    assert!(
        !inside[0].split(',').any(|o| o == "nosuid"),
        "the container's own root mount: {}",
        inside[0]
    );
}

/// A state root that another user (uid 12345) made first, before its victim, with a
/// container dir whose kept config names a poststop hook.
struct Planted {
    dir: tempfile::TempDir,
    id: String,
}

impl Planted {
    fn new() -> Planted {
        testkit::require_root();
        let dir = tempfile::Builder::new()
            .prefix("corral-planted-")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let p = Planted {
            dir,
            id: testkit::unique_id("planted"),
        };
        let (root, cdir) = (p.root(), p.root().join(&p.id));
        std::fs::create_dir(&root).unwrap();
        std::fs::create_dir(&cdir).unwrap();
        std::fs::create_dir(p.out()).unwrap();
        for (d, mode) in [(&root, 0o755), (&cdir, 0o777), (&p.out(), 0o777)] {
            std::os::unix::fs::chown(d, Some(12345), Some(12345)).unwrap();
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        let mut spec = runtime::default_spec();
        spec["hooks"] = json!({"poststop": [{"path": "/bin/sh", "args": ["sh", "-c",
            format!("id -u >> {}", p.marker().display())]}]});
        std::fs::write(cdir.join("config.json"), spec.to_string()).unwrap();
        let state = json!({"ociVersion": "1.2.0", "id": p.id, "status": "stopped", "pid": 0,
            "bundle": "/"});
        std::fs::write(cdir.join("state.json"), state.to_string()).unwrap();
        p
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    fn marker(&self) -> PathBuf {
        self.out().join("hook-ran")
    }

    fn hook_ran(&self) -> Option<String> {
        std::fs::read_to_string(self.marker()).ok()
    }
}

fn corral_as(user: Option<&str>, root: &Path, args: &[&str]) -> Output {
    let corral = common::corral();
    let root = common::path_str(root);
    let mut all = vec![corral.as_str(), "--root", root.as_str()];
    all.extend_from_slice(args);
    match user {
        Some(_) => as_nobody(&all),
        None => Command::new(&corral)
            .args(&all[1..])
            .stdin(Stdio::null())
            .output()
            .unwrap(),
    }
}

/// Every verb that opens a container refuses a state root another user owns, naming it and
/// its owner, and the planted poststop hook never runs: for a rootless victim (uid 65534)
/// and for root.
#[test]
fn every_verb_refuses_a_state_root_another_user_made() {
    let p = Planted::new();
    let id = p.id.as_str();
    let verbs: &[&[&str]] = &[
        &["delete", id],
        &["delete", "--force", id],
        &["state", id],
        &["kill", id, "KILL"],
        &["start", id],
        &["pause", id],
        &["resume", id],
        &["ps", id],
        &["exec", id, "/bin/true"],
        &["update", id, "--memory", "100000000"],
        &["events", "--stats", id],
        &["list"],
    ];
    for user in [Some(NOBODY), None] {
        for args in verbs {
            let out = corral_as(user, &p.root(), args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                p.hook_ran(),
                None,
                "{user:?} corral {args:?} ran the planted hook"
            );
            assert_eq!(
                out.status.code(),
                Some(1),
                "{user:?} corral {args:?} accepted a foreign state root: {err}"
            );
            assert!(
                err.contains("refusing state root")
                    && err.contains(&common::path_str(&p.root()))
                    && err.contains("owner uid 12345"),
                "{user:?} corral {args:?}: {err}"
            );
        }
    }
    assert!(p.root().join(id).join("config.json").exists());
}

/// A container dir that another user planted in the caller's own state root (one it could
/// write to once) is refused too.
#[test]
fn a_container_dir_another_user_made_is_refused() {
    let p = Planted::new();
    // The root is the caller's (root's) own, the container dir the other user's.
    std::os::unix::fs::chown(p.root(), Some(0), Some(0)).unwrap();
    let out = corral_as(None, &p.root(), &["delete", &p.id]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("refusing state dir") && err.contains("owner uid 12345"),
        "{err}"
    );
    assert_eq!(p.hook_ran(), None, "delete ran the planted hook");
    // Sanity: with the dir made by the caller, the same delete does run the hook (the test
    // can fail).
    std::os::unix::fs::chown(p.root().join(&p.id), Some(0), Some(0)).unwrap();
    std::fs::set_permissions(p.root().join(&p.id), std::fs::Permissions::from_mode(0o711)).unwrap();
    let out = corral_as(None, &p.root(), &["delete", &p.id]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(p.hook_ran().as_deref(), Some("0\n"));
}

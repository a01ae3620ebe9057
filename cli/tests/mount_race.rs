//! A read-only bind mount whose mount point sits in a volume that another container shares
//! (CVE-2021-30465's shape): container A swaps the nested mount point `ro` with a symlink to
//! `/` (`renameat2(RENAME_EXCHANGE)`, in a loop) while container B is made again and again
//! with the volume at `/vol` and a read-only bind of a host directory at `/vol/ro`. Each step
//! that looks the path up again after the bind (the read-only remount, the recursive
//! attributes, the propagation) can reach another mount than the one made, and leave the
//! bind of the host directory writable. Every step must act on the mount made. The same race
//! against `linux.readonlyPaths` under the volume, and against a filesystem (tmpfs) mounted
//! in the volume with a recursive attribute.
//!
//! `CORRAL_TEST_BIN=/path/to/old/corral cargo test --test mount_race` runs it against another
//! build (it fails against the build before the fix).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{cli, cli_ok, Cleanup, Env};
use serde_json::{json, Value};

/// Containers B made, each with [`BINDS`] read-only binds at the raced mount point (before
/// the fix, about half of them had a writable one)...
const BIND_ROUNDS: usize = 150;
const BINDS: usize = 4;
/// ... or with [`RO_PATHS`] `linux.readonlyPaths` under the raced directory (before the fix,
/// about one path in 700 stayed writable).
const RO_ROUNDS: usize = 400;
const RO_PATHS: usize = 16;

fn bind(src: &Path, dest: &str, options: &[&str]) -> Value {
    json!({"destination": dest, "type": "bind", "source": src, "options": options})
}

/// The mountinfo lines (as printed by the container) of mounts whose root is a directory
/// whose name starts with `name`, with their per-mount options.
fn mounts_of<'a>(mountinfo: &'a str, name: &str) -> Vec<(&'a str, &'a str)> {
    mountinfo
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let root = *f.get(3)?;
            let opts = *f.get(5)?;
            root.contains(&format!("/{name}")).then_some((l, opts))
        })
        .collect()
}

/// What a raced container B should see read-only.
#[derive(Clone, Copy)]
enum Victim {
    /// [`BINDS`] read-only binds of a host directory at `/vol/ro`.
    Binds,
    /// [`RO_PATHS`] `linux.readonlyPaths`, each naming a directory of the volume under
    /// `/vol/ro`; B's root has a tmpfs at each path the symlink leads to, so that a remount
    /// that follows it succeeds.
    ReadonlyPath,
    /// [`BINDS`] tmpfs mounts at `/vol/ro` with the recursive attribute `rnoexec` (a step
    /// after the mount that looked the path up again); the symlink leads to another tmpfs.
    FsMount,
}

/// B's mounts over the volume: the victim's binds, tmpfs mounts or read-only paths.
fn victim_mounts(spec_b: &mut Value, victim: Victim, dirs: &[std::path::PathBuf], name: &str) {
    let mounts = spec_b["mounts"].as_array_mut().unwrap();
    match victim {
        Victim::Binds => {
            for _ in 0..BINDS {
                mounts.push(bind(&dirs[0], "/vol/ro", &["bind", "ro"]));
            }
        }
        Victim::FsMount => {
            mounts.push(
                json!({"destination": format!("/{name}-other"), "type": "tmpfs",
                "source": "tmpfs", "options": ["nosuid"]}),
            );
            for _ in 0..BINDS {
                mounts.push(json!({"destination": "/vol/ro", "type": "tmpfs",
                    "source": "tmpfs", "options": ["rnoexec"]}));
            }
        }
        Victim::ReadonlyPath => {
            for k in 0..RO_PATHS {
                mounts.push(
                    json!({"destination": format!("/{name}-{k}"), "type": "tmpfs",
                    "source": "tmpfs", "options": ["nosuid"]}),
                );
            }
            let paths = spec_b["linux"]["readonlyPaths"].as_array_mut().unwrap();
            for k in 0..RO_PATHS {
                paths.push(json!(format!("/vol/ro/{name}-{k}")));
            }
        }
    }
}

/// Runs the race: A swaps `vol/ro` and `vol/link -> /` while B is run `rounds` times.
/// Returns (containers with a writable mount of the victim directory, containers that ran).
fn race(victim: Victim, rounds: usize, prefix: &str) -> (usize, usize) {
    let a = Env::new(&format!("{prefix}a"));
    let b = Env::new(&format!("{prefix}b"));
    let host = tempfile::Builder::new()
        .prefix(&format!("{}-host-", b.id))
        .tempdir()
        .unwrap();
    let vol = host.path().join("vol");
    std::fs::create_dir_all(vol.join("ro")).unwrap();
    let name = format!("{}-victim", b.id);
    let link = match victim {
        Victim::FsMount => format!("/{name}-other"),
        _ => "/".to_string(),
    };
    std::os::unix::fs::symlink(link, vol.join("link")).unwrap();
    // The directories that B must only ever see read-only: a host directory bound at
    // /vol/ro, or directories of the volume itself named by readonlyPaths.
    let dirs: Vec<_> = match victim {
        Victim::Binds => vec![host.path().join(&name)],
        Victim::FsMount => Vec::new(),
        Victim::ReadonlyPath => (0..RO_PATHS)
            .map(|k| vol.join("ro").join(format!("{name}-{k}")))
            .collect(),
    };
    for dir in &dirs {
        std::fs::create_dir(dir).unwrap();
        std::fs::write(dir.join("keep"), "host data").unwrap();
    }
    for env in [&a, &b] {
        std::fs::create_dir(env.rootfs.rootfs().join("vol")).unwrap();
    }

    // A: the racer, the volume at /vol.
    let mut spec_a = a.spec(&["/probe", "swap", "/vol/ro", "/vol/link", "600", "/vol/stop"]);
    spec_a["mounts"]
        .as_array_mut()
        .unwrap()
        .push(bind(&vol, "/vol", &["rbind", "rw"]));
    a.rootfs.write_config(&spec_a);
    let bundle_a = a.bundle().to_string_lossy().into_owned();
    cli_ok(&a, &["run", "-d", "-b", &bundle_a, &a.id]);
    let state: Value = serde_json::from_str(&cli_ok(&a, &["state", &a.id])).unwrap();
    let racer = Cleanup {
        env: &a,
        id: a.id.clone(),
        pid: state["pid"].as_i64().unwrap(),
    };

    // B: the volume at /vol, then the victim.
    let mut spec_b = b.spec(&["/bin/cat", "/proc/self/mountinfo"]);
    spec_b["mounts"]
        .as_array_mut()
        .unwrap()
        .push(bind(&vol, "/vol", &["rbind", "rw"]));
    victim_mounts(&mut spec_b, victim, &dirs, &name);
    b.rootfs.write_config(&spec_b);
    let bundle_b = b.bundle().to_string_lossy().into_owned();

    let (mut hits, mut ran, mut failed) = (0usize, 0usize, 0usize);
    let mut first_hit = String::new();
    let mut errors = std::collections::BTreeMap::<String, usize>::new();
    for _ in 0..rounds {
        let out = cli(&b, &["run", "-b", &bundle_b, &b.id]);
        let _ = cli(&b, &["delete", "--force", &b.id]);
        if out.status.code() != Some(0) {
            // The race may move the mount point under the bind (onto B's own root, through
            // the symlink): B may fail. What matters is that the bind is never writable.
            failed += 1;
            let err = String::from_utf8_lossy(&out.stderr);
            let last = err.lines().last().unwrap_or_default();
            // The error without the container's names.
            let kind = last.replace(&b.id, "B");
            *errors.entry(kind).or_default() += 1;
            continue;
        }
        ran += 1;
        let info = String::from_utf8_lossy(&out.stdout).into_owned();
        let found = match victim {
            Victim::FsMount => tmpfs_in_vol(&info),
            _ => mounts_of(&info, &name),
        };
        let flag = match victim {
            Victim::FsMount => "noexec",
            _ => "ro",
        };
        if found
            .iter()
            .any(|(_, opts)| !opts.split(',').any(|o| o == flag))
        {
            hits += 1;
            if first_hit.is_empty() {
                first_hit = found.iter().map(|(l, _)| *l).collect::<Vec<_>>().join("\n");
            }
        }
    }

    std::fs::write(vol.join("stop"), "").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let st: Value = serde_json::from_str(&cli_ok(&a, &["state", &a.id])).unwrap();
        if st["status"] == "stopped" || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(racer);
    eprintln!(
        "{rounds} containers B: {ran} ran, {failed} failed {errors:?}, {hits} with a writable \
         mount of the read-only directory{}{first_hit}",
        if hits > 0 { "; the first:\n" } else { "" }
    );
    // Nothing was written into the directories.
    for dir in &dirs {
        let entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            entries,
            ["keep"],
            "something was written into {}",
            dir.display()
        );
    }
    assert!(
        ran > rounds / 2,
        "only {ran} of {rounds} containers ran ({failed} failed), so the test proved little"
    );
    (hits, ran)
}

/// The mountinfo lines of tmpfs mounts under `/vol`, with their per-mount options.
fn tmpfs_in_vol(mountinfo: &str) -> Vec<(&str, &str)> {
    mountinfo
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let point = *f.get(4)?;
            let opts = *f.get(5)?;
            let fstype = l.split(" - ").nth(1)?.split(' ').next()?;
            (point.starts_with("/vol/") && fstype == "tmpfs").then_some((l, opts))
        })
        .collect()
}

#[test]
fn a_racer_in_a_shared_volume_never_leaves_a_read_only_bind_writable() {
    let (hits, ran) = race(Victim::Binds, BIND_ROUNDS, "mrace-bind-");
    assert_eq!(
        hits, 0,
        "{hits} of {ran} containers had a writable bind of the read-only host directory"
    );
}

#[test]
fn a_racer_in_a_shared_volume_never_leaves_a_read_only_path_writable() {
    let (hits, ran) = race(Victim::ReadonlyPath, RO_ROUNDS, "mrace-ropath-");
    assert_eq!(
        hits, 0,
        "{hits} of {ran} containers had a writable mount of a readonlyPaths directory"
    );
}

#[test]
fn a_racer_in_a_shared_volume_never_redirects_a_filesystem_mounts_attributes() {
    let (hits, ran) = race(Victim::FsMount, BIND_ROUNDS, "mrace-fs-");
    assert_eq!(
        hits, 0,
        "{hits} of {ran} containers had a tmpfs at /vol/ro without its rnoexec"
    );
}

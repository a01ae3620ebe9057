//! Mount conformance (issue 12): a container without a mount namespace, recursive mount
//! attributes (`rro`, `rnoexec`, ...), and `linux.rootfsPropagation` as the container's root
//! shows it. Each is checked by what the container or the host sees.

mod common;

use std::ffi::CString;
use std::path::{Path, PathBuf};

use common::Env;
use serde_json::{json, Value};

/// A mount the test makes on the host, unmounted (detached) on drop, even when the test fails.
/// Its path holds the container id, so the leak check would name it if it stayed.
struct HostMount(PathBuf);

impl HostMount {
    fn mount(src: &Path, target: &Path, fstype: Option<&str>, flags: libc::c_ulong) -> HostMount {
        let c = |p: &Path| CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
        let (s, t) = (c(src), c(target));
        let ty = fstype.map(|f| CString::new(f).unwrap());
        // SAFETY: mount(2) with C strings that outlive the call.
        let r = unsafe {
            libc::mount(
                s.as_ptr(),
                t.as_ptr(),
                ty.as_ref().map_or(std::ptr::null(), |t| t.as_ptr()),
                flags,
                std::ptr::null(),
            )
        };
        assert_eq!(
            r,
            0,
            "mount {} on {}: {}",
            src.display(),
            target.display(),
            std::io::Error::last_os_error()
        );
        HostMount(target.to_path_buf())
    }

    /// Changes the propagation of the mount (`MS_SHARED`, ...).
    fn propagation(&self, flag: libc::c_ulong) {
        let t = CString::new(self.0.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mount(2) changing the propagation of our own mount.
        let r = unsafe {
            libc::mount(
                std::ptr::null(),
                t.as_ptr(),
                std::ptr::null(),
                flag,
                std::ptr::null(),
            )
        };
        assert_eq!(r, 0, "propagation: {}", std::io::Error::last_os_error());
    }
}

impl Drop for HostMount {
    fn drop(&mut self) {
        let t = CString::new(self.0.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: unmounting the mount this value made.
        unsafe { libc::umount2(t.as_ptr(), libc::MNT_DETACH) };
    }
}

/// The host's mounts at or below `dir`.
fn host_mounts_under(dir: &Path) -> Vec<String> {
    let dir = dir.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| {
            l.split(' ')
                .nth(4)
                .is_some_and(|mp| mp == dir || mp.starts_with(&format!("{dir}/")))
        })
        .map(str::to_string)
        .collect()
}

/// The spec without a mount namespace (and a writable root: a read-only one needs one).
fn without_mount_ns(spec: &mut Value) {
    spec["root"]["readonly"] = json!(false);
    spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "mount");
}

/// The mountinfo line of mount point `mp` (the last, topmost, one).
fn mountinfo_line<'a>(info: &'a str, mp: &str) -> &'a str {
    info.lines()
        .rfind(|l| l.split(' ').nth(4) == Some(mp))
        .unwrap_or_else(|| panic!("no {mp} in {info}"))
}

/// The optional fields of a mountinfo line (`shared:N`, `master:N`, `unbindable`...).
fn optional_fields(line: &str) -> Vec<&str> {
    line.split(' ').skip(6).take_while(|f| *f != "-").collect()
}

// --- 1. No mount namespace -------------------------------------------------------------------

/// The spec allows a container that shares the host's mount namespace (runc and youki run
/// it): its mounts are made inside root.path in the host's namespace, it is chrooted there,
/// and /proc works inside. Nothing of it stays mounted after it is gone.
#[test]
fn no_mount_namespace_runs_chrooted_and_leaves_no_mount() {
    let env = Env::new("nomntns");
    let root = env.rootfs.rootfs();
    std::fs::write(root.join("marker"), "in the rootfs\n").unwrap();
    let mut spec = env.spec(&[
        "/bin/sh",
        "-c",
        "grep '^Pid:' /proc/self/status >/dev/null && echo status-ok; cat /proc/1/comm; cat /marker; test -e /work && echo host-root-visible; true",
    ]);
    without_mount_ns(&mut spec);
    let out = env.run(&spec);
    common::assert_exit(&out, 0);
    assert_eq!(
        common::stdout(&out),
        "status-ok\nsh\nin the rootfs\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(host_mounts_under(root), Vec::<String>::new());
}

/// A created container without a mount namespace: its mounts are in the host's mount table
/// while it exists (that is what sharing the namespace means), `exec` runs inside its root
/// too, and `delete` removes every one of them.
#[test]
fn no_mount_namespace_exec_and_delete() {
    let env = Env::new("nomntdel");
    let root = env.rootfs.rootfs().to_path_buf();
    std::fs::write(root.join("marker"), "in the rootfs\n").unwrap();
    let mut spec = env.spec(&["/probe", "sleep", "inf"]);
    without_mount_ns(&mut spec);
    env.rootfs.write_config(&spec);
    let bundle = env.bundle().to_string_lossy().into_owned();
    common::cli_ok(&env, &["run", "-d", "-b", &bundle, &env.id]);
    let st: Value = serde_json::from_str(&common::cli_ok(&env, &["state", &env.id])).unwrap();
    let pid = st["pid"].as_i64().unwrap();
    let during = host_mounts_under(&root);
    let exec = common::cli(&env, &["exec", &env.id, "/bin/cat", "/marker"]);
    let ls = common::cli(&env, &["exec", &env.id, "/bin/ls", "/proc/1/"]);
    common::cli_ok(&env, &["delete", "--force", &env.id]);
    common::reap(pid);
    assert!(
        during
            .iter()
            .any(|l| l.contains(&format!("{}/proc ", root.display()))),
        "the container's /proc is in the host's mount table while it runs: {during:#?}"
    );
    common::assert_exit(&exec, 0);
    assert_eq!(common::stdout(&exec), "in the rootfs\n");
    common::assert_exit(&ls, 0);
    assert!(
        common::stdout(&ls).contains("status"),
        "{}",
        common::stdout(&ls)
    );
    assert_eq!(host_mounts_under(&root), Vec::<String>::new());
}

/// A container without a mount namespace whose set-up fails half-way leaves none of the
/// mounts it made in the host's namespace.
#[test]
fn no_mount_namespace_failed_create_leaves_no_mount() {
    let env = Env::new("nomntfail");
    let root = env.rootfs.rootfs().to_path_buf();
    let mut spec = env.spec(&["/bin/true"]);
    without_mount_ns(&mut spec);
    // The last mount fails in the kernel, after /proc, /dev and the others are mounted.
    spec["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/bad", "type": "nosuchfs", "source": "none"}));
    let out = env.run(&spec);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/bad"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(host_mounts_under(&root), Vec::<String>::new());
}

/// What cannot be done safely without a mount namespace is refused by name: a read-only
/// root (the read-only bind would be the host's view of root.path too) and a root
/// propagation (it would change the host's mounts).
#[test]
fn no_mount_namespace_refuses_readonly_root_and_propagation() {
    let env = Env::new("nomntro");
    let mut spec = env.spec(&["/bin/true"]);
    without_mount_ns(&mut spec);
    spec["root"]["readonly"] = json!(true);
    common::assert_fails(&env.run(&spec), 1, &["root.readonly", "mount namespace"]);
    let mut spec = env.spec(&["/bin/true"]);
    without_mount_ns(&mut spec);
    spec["linux"]["rootfsPropagation"] = json!("rslave");
    common::assert_fails(
        &env.run(&spec),
        1,
        &["linux.rootfsPropagation", "mount namespace"],
    );
}

// --- 2. Recursive mount attributes -----------------------------------------------------------

/// A host directory with a tmpfs submount `sub` (unmounted on drop).
struct SourceWithSubmount {
    // Fields drop in order: the submount goes before its directory is removed.
    _sub: HostMount,
    dir: tempfile::TempDir,
}

impl SourceWithSubmount {
    fn new(id: &str) -> SourceWithSubmount {
        let dir = tempfile::Builder::new()
            .prefix(&format!("{id}-src-"))
            .tempdir()
            .unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let m = HostMount::mount(Path::new("tmpfs"), &sub, Some("tmpfs"), 0);
        SourceWithSubmount { _sub: m, dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

fn with_bind(env: &Env, src: &Path, options: &[&str], script: &str) -> (Value, usize) {
    let mut spec = env.spec(&["/bin/sh", "-c", script]);
    let mounts = spec["mounts"].as_array_mut().unwrap();
    mounts.push(json!({
        "destination": "/data",
        "type": "bind",
        "source": src,
        "options": options,
    }));
    let i = mounts.len() - 1;
    (spec, i)
}

/// `rro`: the submount of the bind is read-only too (plain `ro` leaves it writable, as the
/// kernel's bind remount affects one mount only).
#[test]
fn rro_makes_submounts_read_only() {
    let env = Env::new("rro");
    let src = SourceWithSubmount::new(&env.id);
    let script = "touch /data/sub/x 2>&1; echo sub=$?; touch /data/y 2>&1; echo top=$?";
    let (spec, _) = with_bind(&env, src.path(), &["rbind", "rro"], script);
    let out = env.run(&spec);
    common::assert_exit(&out, 0);
    let o = common::stdout(&out);
    assert!(o.contains("sub=1"), "the submount is writable: {o}");
    assert!(o.contains("top=1"), "the bind is writable: {o}");
    assert!(o.contains("Read-only file system"), "{o}");

    let (spec, _) = with_bind(&env, src.path(), &["rbind", "ro"], script);
    let out = env.run(&spec);
    common::assert_exit(&out, 0);
    let o = common::stdout(&out);
    assert!(o.contains("sub=0") && o.contains("top=1"), "{o}");
}

/// `rnoexec`: a program in the submount cannot be executed; `rnosuid`, `rnodev`, `rnoatime`
/// and `rnosymfollow` hold for the submount too (its mountinfo line and a symlink).
#[test]
fn recursive_flags_reach_the_submount() {
    let env = Env::new("rnoexec");
    let src = SourceWithSubmount::new(&env.id);
    std::fs::copy(
        env.rootfs.rootfs().join("bin/busybox"),
        src.path().join("sub/true"),
    )
    .unwrap();
    std::os::unix::fs::symlink("true", src.path().join("sub/link")).unwrap();
    let script = "/data/sub/true 2>&1; echo exec=$?; cat /data/sub/link >/dev/null 2>&1; echo follow=$?; grep ' /data/sub ' /proc/self/mountinfo";
    let (spec, _) = with_bind(
        &env,
        src.path(),
        &[
            "rbind",
            "rnoexec",
            "rnosuid",
            "rnodev",
            "rnoatime",
            "rnosymfollow",
        ],
        script,
    );
    let out = env.run(&spec);
    common::assert_exit(&out, 0);
    let o = common::stdout(&out);
    assert!(o.contains("exec=126"), "the submount allows exec: {o}");
    assert!(o.contains("follow=1"), "the submount follows symlinks: {o}");
    let line = o.lines().find(|l| l.contains(" /data/sub ")).unwrap_or("");
    let opts = line.split(' ').nth(5).unwrap_or("");
    for f in ["noexec", "nosuid", "nodev", "noatime", "nosymfollow"] {
        assert!(opts.split(',').any(|o| o == f), "{f} missing: {line}");
    }
    // Without them, the same program runs there.
    let (spec, _) = with_bind(&env, src.path(), &["rbind"], script);
    let out = env.run(&spec);
    common::assert_exit(&out, 0);
    assert!(
        common::stdout(&out).contains("exec=0"),
        "{}",
        common::stdout(&out)
    );
}

/// The recursive atime options clear what the source had: `rstrictatime` after `rnoatime`
/// wins, and `rrw` undoes `rro`.
#[test]
fn recursive_options_last_one_wins() {
    let env = Env::new("rlast");
    let src = SourceWithSubmount::new(&env.id);
    let script = "touch /data/sub/x 2>&1; echo sub=$?; grep ' /data/sub ' /proc/self/mountinfo";
    let (spec, _) = with_bind(
        &env,
        src.path(),
        &["rbind", "rro", "rnoatime", "rrw", "rstrictatime"],
        script,
    );
    let out = env.run(&spec);
    common::assert_exit(&out, 0);
    let o = common::stdout(&out);
    assert!(o.contains("sub=0"), "{o}");
    let line = o.lines().find(|l| l.contains(" /data/sub ")).unwrap_or("");
    let opts: Vec<&str> = line.split(' ').nth(5).unwrap_or("").split(',').collect();
    assert!(
        !opts.contains(&"noatime") && !opts.contains(&"relatime") && opts.contains(&"rw"),
        "{line}"
    );
}

/// A mistyped option of a bind mount (`rrro`) is ignored as runc ignores it (runc passes every
/// option it does not know to the kernel as data, which a bind mount ignores), with a warning
/// naming the mount's options and the word, so the mistake is seen.
#[test]
fn mistyped_bind_option_is_warned_about() {
    let env = Env::new("rtypo");
    let src = SourceWithSubmount::new(&env.id);
    let (spec, i) = with_bind(&env, src.path(), &["rbind", "rrro"], "true");
    let out = env.run(&spec);
    common::assert_exit(&out, 0);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("mounts[{i}].options"))
            && err.contains("rrro")
            && err.contains("ignored"),
        "{err}"
    );
}

// --- 3. Root propagation ---------------------------------------------------------------------

/// `linux.rootfsPropagation` as the container's root mount shows it in its mountinfo, with
/// the root filesystem on a shared mount of the host: `unbindable` and `runbindable` make it
/// unbindable; `private` and `rprivate` leave it in no peer group; `slave` and `rslave` make
/// it a slave of the host's mount (`master:N`); `shared` and `rshared` put it in a peer
/// group. No value lets a mount of the container's set-up reach the host.
#[test]
fn root_propagation_as_the_container_sees_it() {
    for prop in [
        "unbindable",
        "runbindable",
        "private",
        "rprivate",
        "slave",
        "rslave",
        "shared",
        "rshared",
    ] {
        let env = Env::new("rootprop");
        let root = env.rootfs.rootfs().to_path_buf();
        let shared = HostMount::mount(&root, &root, None, libc::MS_BIND);
        shared.propagation(libc::MS_SHARED);
        let mut spec = env.spec(&["/bin/cat", "/proc/self/mountinfo"]);
        spec["linux"]["rootfsPropagation"] = json!(prop);
        let out = env.run(&spec);
        let left = host_mounts_under(&root);
        common::assert_exit(&out, 0);
        let info = common::stdout(&out);
        let line = mountinfo_line(&info, "/");
        let opt = optional_fields(line);
        let base = prop.strip_prefix('r').unwrap_or(prop);
        let ok = match base {
            "unbindable" => opt.contains(&"unbindable"),
            "private" => opt.is_empty(),
            "slave" => {
                opt.iter().any(|f| f.starts_with("master:"))
                    && !opt.iter().any(|f| f.starts_with("shared:"))
            }
            "shared" => opt.iter().any(|f| f.starts_with("shared:")),
            other => panic!("{other}"),
        };
        assert!(ok, "{prop}: the root line is {line:?}");
        assert_eq!(left.len(), 1, "{prop}: mounts reached the host: {left:#?}");
    }
}

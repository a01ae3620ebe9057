//! Rootless corral with multi-range id maps, as podman writes them: a real non-root user
//! (created for the test, with its own /etc/subuid and /etc/subgid ranges) runs corral, which
//! has the setuid helpers newuidmap/newgidmap write the maps. Real kernel, real helpers.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::Env;
use serde_json::{json, Value};

/// Size of the subordinate ranges given to a test user (podman's default).
const SUB_COUNT: u32 = 65536;
/// GECOS of the users made here, so that a stale one (its test was killed) is recognized.
const GECOS: &str = "corral rootless test";
/// In the stderr line corral prints when it may not create cgroups (always, for these users).
const CGROUP_WARNING: &str = "cgroups are not delegated to this user";

fn sh(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"))
}

/// The fields of `name`'s passwd entry.
fn passwd_entry(name: &str) -> Option<Vec<String>> {
    let out = sh(Command::new("getent").args(["passwd", name]));
    if !out.status.success() {
        return None;
    }
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Some(line.split(':').map(str::to_string).collect())
}

/// The lines of /etc/subuid and /etc/subgid for `name`, as `file: line`.
fn sub_ids_of(name: &str) -> Vec<String> {
    let prefix = format!("{name}:");
    let mut found = Vec::new();
    for f in ["/etc/subuid", "/etc/subgid"] {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        found.extend(
            text.lines()
                .filter(|l| l.starts_with(&prefix))
                .map(|l| format!("{f}: {l}")),
        );
    }
    found
}

/// Removes `name`'s subordinate `range` (if given; userdel drops them too) and the user with
/// its user group. Returns what failed or is left.
fn remove_user(name: &str, range: Option<&str>) -> Vec<String> {
    let mut errors = Vec::new();
    if let Some(range) = range {
        let out = sh(Command::new("usermod").args([
            "--del-subuids",
            range,
            "--del-subgids",
            range,
            name,
        ]));
        if !out.status.success() {
            errors.push(format!(
                "usermod --del-subuids {range} --del-subgids {range} {name}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    // userdel refuses while a process of the user lives (exit 8) or the files are locked
    // (exit 10): the container's processes are gone by now, but allow for a slow reap.
    let mut failed = None;
    for _ in 0..40 {
        let out = sh(Command::new("userdel").arg(name));
        if out.status.success() {
            failed = None;
            break;
        }
        failed = Some(out);
        std::thread::sleep(Duration::from_millis(50));
    }
    if let Some(out) = failed {
        errors.push(format!(
            "userdel {name}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    if passwd_entry(name).is_some() {
        errors.push(format!("user {name} still exists"));
    }
    errors.extend(sub_ids_of(name).into_iter().map(|l| format!("left: {l}")));
    errors
}

/// Removes the users of earlier runs whose test process is gone (killed before its guards
/// ran): GECOS [`GECOS`], named `crl-<pid base 36>-...`.
fn reap_stale_users() {
    let Ok(passwd) = std::fs::read_to_string("/etc/passwd") else {
        return;
    };
    for line in passwd.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 5 || f[4] != GECOS {
            continue;
        }
        let Some(pid) = f[0]
            .strip_prefix("crl-")
            .and_then(|r| r.split('-').next())
            .and_then(|p| u32::from_str_radix(p, 36).ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            eprintln!("removing stale test user {}", f[0]);
            // A parallel test may be at it too: errors are fine.
            let _ = remove_user(f[0], None);
        }
    }
}

/// The backup files the shadow tools rewrite on every change, put back as they were found
/// once the test user is gone. Test users are made one at a time (the lock), so that one
/// test's restore cannot undo another's.
struct EtcBackups {
    saved: Vec<(&'static str, Option<Vec<u8>>)>,
    _lock: std::sync::MutexGuard<'static, ()>,
}

static USERS: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl EtcBackups {
    fn save() -> EtcBackups {
        let lock = USERS.lock().unwrap_or_else(|e| e.into_inner());
        let saved = [
            "/etc/passwd-",
            "/etc/group-",
            "/etc/shadow-",
            "/etc/gshadow-",
            "/etc/subuid-",
            "/etc/subgid-",
        ]
        .into_iter()
        .map(|f| (f, std::fs::read(f).ok()))
        .collect();
        EtcBackups { saved, _lock: lock }
    }
}

impl Drop for EtcBackups {
    fn drop(&mut self) {
        for (f, content) in &self.saved {
            let res = match content {
                Some(c) => std::fs::write(f, c),
                None => match std::fs::remove_file(f) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    r => r,
                },
            };
            if let Err(e) = res {
                eprintln!("restoring {f}: {e}");
            }
        }
    }
}

/// A temporary real user (uid above UID_MAX, no home, nologin) with its user group and the
/// subordinate uid and gid range `start .. start + SUB_COUNT`. Dropping it removes all that.
struct TempUser {
    name: String,
    uid: u32,
    gid: u32,
    start: u32,
    /// Dropped after the user is removed (fields drop after `Drop::drop`).
    _etc: EtcBackups,
}

impl TempUser {
    fn new() -> TempUser {
        testkit::require_root();
        let etc = EtcBackups::save();
        reap_stale_users();
        // unique_id("") is corral-t-x-<pid>-<counter><time>: keep its unique tail.
        let id = testkit::unique_id("");
        let name = format!("crl{}", id.trim_start_matches("corral-t-x"));
        assert!(name.len() <= 32, "{name}");
        let seed = id
            .bytes()
            .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b.into()));
        for i in 0..200 {
            let k = seed.wrapping_add(i) % 5000;
            // Above UID_MAX (60000): useradd gives no subordinate ranges of its own.
            let uid = 60001 + k;
            let out = sh(Command::new("useradd").args([
                "--no-create-home",
                "--no-log-init",
                "--shell",
                "/usr/sbin/nologin",
                "--comment",
                GECOS,
                "--uid",
                &uid.to_string(),
                &name,
            ]));
            match out.status.code() {
                Some(0) => {}
                // 4: uid in use; 10: the files are locked right now.
                Some(4) | Some(10) => continue,
                _ => panic!("useradd {name}: {}", String::from_utf8_lossy(&out.stderr)),
            }
            // From here on the guard cleans up, whatever happens.
            let mut user = TempUser {
                name,
                uid,
                gid: 0,
                start: 1_000_000 + k * SUB_COUNT,
                _etc: etc,
            };
            let pw = passwd_entry(&user.name).expect("the new user in getent passwd");
            user.gid = pw[3].parse().expect("gid in passwd");
            let range = user.range();
            let out = sh(Command::new("usermod").args([
                "--add-subuids",
                &range,
                "--add-subgids",
                &range,
                &user.name,
            ]));
            assert!(
                out.status.success(),
                "usermod --add-subuids {range} {}: {}",
                user.name,
                String::from_utf8_lossy(&out.stderr)
            );
            let line = format!("{}:{}:{SUB_COUNT}", user.name, user.start);
            assert_eq!(
                sub_ids_of(&user.name),
                [
                    format!("/etc/subuid: {line}"),
                    format!("/etc/subgid: {line}")
                ]
            );
            return user;
        }
        panic!("no free uid in 60001..65000 for the test user");
    }

    /// The subordinate range as usermod takes it (`first-last`).
    fn range(&self) -> String {
        format!("{}-{}", self.start, self.start + SUB_COUNT - 1)
    }

    /// A rootless spec mapping container id 0 to the user and 1.. to its subordinate range.
    fn spec(&self, env: &Env, args: &[&str]) -> Value {
        let mut s = runtime::spec::rootless_spec(self.uid, self.gid);
        s["process"]["terminal"] = json!(false);
        s["process"]["args"] = json!(args);
        s["root"]["path"] = json!(env.rootfs.rootfs());
        s["linux"]["uidMappings"] = json!([
            {"containerID": 0, "hostID": self.uid, "size": 1},
            {"containerID": 1, "hostID": self.start, "size": SUB_COUNT},
        ]);
        s["linux"]["gidMappings"] = json!([
            {"containerID": 0, "hostID": self.gid, "size": 1},
            {"containerID": 1, "hostID": self.start, "size": SUB_COUNT},
        ]);
        s
    }

    /// The uid_map the kernel shows for [`TempUser::spec`].
    fn uid_map(&self) -> Value {
        json!([[0, self.uid, 1], [1, self.start, SUB_COUNT]])
    }

    /// The gid_map the kernel shows for [`TempUser::spec`].
    fn gid_map(&self) -> Value {
        json!([[0, self.gid, 1], [1, self.start, SUB_COUNT]])
    }

    /// `corral run` of `spec` in `env`, as this user without supplementary groups.
    fn run(&self, env: &Env, spec: &Value) -> Output {
        self.run_with_groups(env, spec, "")
    }

    /// `corral run` of `spec` in `env`, as this user with the supplementary host `groups`
    /// (comma-separated; empty for none).
    fn run_with_groups(&self, env: &Env, spec: &Value, groups: &str) -> Output {
        std::os::unix::fs::chown(env.state_root(), Some(self.uid), Some(self.gid)).unwrap();
        env.rootfs.write_config(spec);
        let mut cmd = Command::new("setpriv");
        cmd.args([
            "--reuid",
            &self.uid.to_string(),
            "--regid",
            &self.gid.to_string(),
        ]);
        if groups.is_empty() {
            cmd.arg("--clear-groups");
        } else {
            cmd.args(["--groups", groups]);
        }
        sh(cmd
            .arg(common::corral())
            .arg("--root")
            .arg(env.state_root())
            .args(["run", "-b"])
            .arg(env.bundle())
            .arg(&env.id))
    }
}

impl Drop for TempUser {
    fn drop(&mut self) {
        let errors = remove_user(&self.name, Some(&self.range()));
        if !errors.is_empty() {
            if std::thread::panicking() {
                eprintln!("cleaning up test user {}: {errors:#?}", self.name);
            } else {
                panic!("cleaning up test user {}: {errors:#?}", self.name);
            }
        }
    }
}

/// corral's stderr lines but the cgroup warning every run of these users prints.
fn errors(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.contains(CGROUP_WARNING))
        .map(str::to_string)
        .collect()
}

/// Asserts that the run succeeded with nothing on stderr but the cgroup warning.
fn assert_ok(out: &Output) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {err}");
    assert_eq!(errors(out), Vec::<String>::new(), "stderr: {err}");
}

/// A host directory anyone may write in, for [`mount_shared`]; its name has the container id
/// (a mount left on it is a leak the [`Env`] check finds).
fn shared_dir(env: &Env) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(&format!("{}-shared-", env.id))
        .tempdir()
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    // The rootfs belongs to host root: the container could not make the mount point.
    std::fs::create_dir_all(env.rootfs.rootfs().join("shared")).unwrap();
    dir
}

/// Bind-mounts `dir` read-write at /shared.
fn mount_shared(spec: &mut Value, dir: &Path) {
    spec["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/shared", "type": "bind", "source": dir, "options": ["rbind", "rw"]
    }));
}

/// The host's owner of `p`.
fn owner(p: &Path) -> (u32, u32) {
    let m = std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (m.uid(), m.gid())
}

/// Splits `<line>\n<probe JSON>` stdout.
fn line_and_report(out: &Output) -> (String, Value) {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (first, rest) = text
        .split_once('\n')
        .unwrap_or_else(|| panic!("stdout: {text:?}"));
    let r = serde_json::from_str(rest)
        .unwrap_or_else(|e| panic!("probe output is not JSON ({e}): {text}"));
    (first.to_string(), r)
}

#[test]
fn multi_range_maps_through_newuidmap() {
    let user = TempUser::new();
    let env = Env::new("rl-maps");
    // Container root (the user itself) makes a file, and gives another to ids of the range.
    let mut spec = user.spec(
        &env,
        &[
            "/bin/sh",
            "-c",
            "touch /shared/by-root /shared/given && /bin/busybox chown 2000:3000 /shared/given \
             && stat -c %u:%g /shared/given && exec /probe report",
        ],
    );
    for set in ["bounding", "effective", "permitted"] {
        spec["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_CHOWN"));
    }
    let shared = shared_dir(&env);
    mount_shared(&mut spec, shared.path());
    let out = user.run(&env, &spec);
    assert_ok(&out);
    let (seen, r) = line_and_report(&out);
    assert_eq!(r["uid_map"], user.uid_map());
    assert_eq!(r["gid_map"], user.gid_map());
    assert_eq!((&r["uid"], &r["gid"]), (&json!(0), &json!(0)));
    assert_eq!(r["pid"], 1);
    // 2000:3000 inside; the kernel stored start+1999:start+2999 on the host's disk.
    assert_eq!(seen, "2000:3000");
    assert_eq!(
        owner(&shared.path().join("given")),
        (user.start + 1999, user.start + 2999)
    );
    assert_eq!(owner(&shared.path().join("by-root")), (user.uid, user.gid));
}

#[test]
fn a_process_runs_as_a_subordinate_id() {
    let user = TempUser::new();
    let env = Env::new("rl-subid");
    // uid/gid 1000 inside are start+999 outside: the kernel stamps that on a new file.
    let mut spec = user.spec(
        &env,
        &[
            "/bin/sh",
            "-c",
            "touch /shared/by-1000 && stat -c %u:%g /shared/by-1000 && exec /probe report",
        ],
    );
    spec["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    let shared = shared_dir(&env);
    mount_shared(&mut spec, shared.path());
    let out = user.run(&env, &spec);
    assert_ok(&out);
    let (seen, r) = line_and_report(&out);
    assert_eq!(r["uid_map"], user.uid_map());
    assert_eq!(r["gid_map"], user.gid_map());
    assert_eq!((&r["uid"], &r["euid"]), (&json!(1000), &json!(1000)));
    assert_eq!((&r["gid"], &r["egid"]), (&json!(1000), &json!(1000)));
    assert_eq!(seen, "1000:1000");
    assert_eq!(
        owner(&shared.path().join("by-1000")),
        (user.start + 999, user.start + 999)
    );
}

#[test]
fn supplementary_groups_are_the_specs_not_the_callers() {
    let user = TempUser::new();
    let env = Env::new("rl-groups");
    let mut spec = user.spec(&env, &["/probe", "report"]);
    spec["process"]["user"] = json!({"uid": 0, "gid": 0, "additionalGids": [5, 7]});
    // The caller holds host group 100. The container must not keep it: unmapped, it shows as
    // the overflow gid 65534 inside, and still opens the host's files of group 100.
    let out = user.run_with_groups(&env, &spec, "100");
    assert_ok(&out);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["gid_map"], user.gid_map());
    assert_eq!(r["groups"], json!([5, 7]));
}

#[test]
fn a_range_the_user_does_not_own_is_refused_by_the_helper() {
    let user = TempUser::new();
    let env = Env::new("rl-unowned");
    // Host id 100 is in no range of this user in /etc/subuid or /etc/subgid.
    for (field, tool, file, kind, own) in [
        ("uidMappings", "newuidmap", "/etc/subuid", "uid", user.uid),
        ("gidMappings", "newgidmap", "/etc/subgid", "gid", user.gid),
    ] {
        let mut spec = user.spec(&env, &["/probe", "report"]);
        spec["linux"][field] = json!([
            {"containerID": 0, "hostID": own, "size": 1},
            {"containerID": 1, "hostID": 100, "size": 1},
        ]);
        let out = user.run(&env, &spec);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "stderr: {err}");
        assert!(out.stdout.is_empty(), "{}", common::stdout(&out));
        let lines = errors(&out);
        assert_eq!(lines.len(), 1, "want one error line, got {lines:#?}");
        let line = &lines[0];
        // Which container and helper, the file, what the helper said, the command, and
        // where allowed ranges come from.
        assert!(line.starts_with("corral: "), "{line}");
        assert!(line.contains(&env.id), "{line}");
        assert!(
            line.contains(&format!("{tool} could not write /proc/")),
            "{line}"
        );
        assert!(
            line.contains(&format!(
                "/{kind}_map: {tool}: {kind} range [1-2) -> [100-101) not allowed"
            )),
            "{line}"
        );
        assert!(line.contains(&format!(" 0 {own} 1 1 100 1`")), "{line}");
        assert!(line.contains(file), "{line}");
        testkit::assert_no_leaks(&env.id, Some(env.state_root()));
    }
}

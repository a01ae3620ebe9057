//! What engines really send in `linux.cgroupsPath` and `linux.resources` (issue 23), through
//! the corral binary: runc accepts each, so corral must.
//!
//! * containerd's CRI (1.6 and later) sends `cgroupsPath: "<slice>:cri-containerd:<id>"` (the
//!   systemd `slice:prefix:name` form) when the pod's cgroup parent ends in `.slice`, even
//!   with `SystemdCgroup = false`; runc's cgroupfs driver takes it as one relative
//!   directory of that literal name.
//! * dockerd 20.10 sends `blockIO.weight: 0` for every container (0: no weight asked).
//! * Zeros mean "unset" wherever runc's cgroupfs drivers write nothing for 0: cpu shares,
//!   quota, period and realtime budget, memory limit, reservation and swap, blkio weight
//!   and leafWeight. containerd's CRI leaves them at 0 in an update's resources, podman
//!   and `runc update` flags not given are 0.
//!
//! Each case runs a container and reads what its cgroup holds; the update cases check that a
//! zero leaves the current limit as it was.

mod common;

use common::{assert_exit, cli_ok, reap, stdout, Env};
use serde_json::{json, Value};

/// The container's cgroup (the memory hierarchy's line of `/proc/PID/cgroup`) and the
/// memory limit and cfs quota it holds, read from the host while it runs; the container is
/// deleted after, and its cgroup directory must be gone.
fn run_and_read(env: &Env, spec: &Value) -> (String, String, String) {
    env.rootfs.write_config(spec);
    let bundle = env.bundle().to_string_lossy().into_owned();
    cli_ok(env, &["run", "-d", "-b", &bundle, &env.id]);
    let st: Value = serde_json::from_str(&cli_ok(env, &["state", &env.id])).unwrap();
    let pid = st["pid"].as_i64().unwrap();
    let mem = cgroup_of(pid, "memory");
    let dir = format!("/sys/fs/cgroup/memory{mem}");
    let limit = std::fs::read_to_string(format!("{dir}/memory.limit_in_bytes"));
    let quota = std::fs::read_to_string(format!(
        "/sys/fs/cgroup/cpu{}/cpu.cfs_quota_us",
        cgroup_of(pid, "cpu")
    ));
    cli_ok(env, &["delete", "--force", &env.id]);
    reap(pid);
    assert!(
        !std::path::Path::new(&dir).exists(),
        "{dir} is left after delete"
    );
    (
        mem,
        limit.unwrap().trim().to_string(),
        quota.unwrap().trim().to_string(),
    )
}

/// The cgroup of `pid` (`self` for this process) in the v1 hierarchy holding `controller`.
fn cgroup_of(pid: impl std::fmt::Display, controller: &str) -> String {
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    cg.lines()
        .find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
            ctrls
                .split(',')
                .any(|c| c == controller)
                .then(|| path.to_string())
        })
        .unwrap_or_else(|| panic!("no {controller} hierarchy (this host is cgroup v1): {cg}"))
}

/// What an unlimited memory cgroup reads (the page-rounded i64::MAX).
fn unlimited_memory() -> String {
    std::fs::read_to_string("/sys/fs/cgroup/memory/memory.limit_in_bytes")
        .unwrap()
        .trim()
        .to_string()
}

/// `test.slice:cri-containerd:<id>` is a directory of that literal name beside the caller's
/// cgroup, as runc's cgroupfs driver makes it; removed at delete.
#[test]
fn a_systemd_form_cgroups_path_is_a_cgroupfs_directory_as_in_runc() {
    let env = Env::new("es-slice");
    let name = format!("test.slice:cri-containerd:{}", env.id);
    let mut spec = env.spec(&["/bin/sleep", "inf"]);
    spec["linux"]["cgroupsPath"] = json!(name);
    spec["linux"]["resources"]["memory"] = json!({"limit": 67108864});
    let (mem, limit, _) = run_and_read(&env, &spec);
    let own = cgroup_of("self", "memory");
    assert_eq!(
        mem,
        format!("{}/{name}", own.trim_end_matches('/')),
        "the cgroup is one directory named as sent, under the caller's"
    );
    assert_eq!(limit, "67108864");
}

/// A slice name with dashes is not expanded either (`a-b.slice` is not `a.slice/a-b.slice`
/// with the cgroupfs driver).
#[test]
fn a_dashed_slice_in_a_cgroups_path_is_not_expanded() {
    let env = Env::new("es-dash");
    let name = format!("kubepods-burstable-pod1.slice:cri-containerd:{}", env.id);
    let mut spec = env.spec(&["/bin/sleep", "inf"]);
    spec["linux"]["cgroupsPath"] = json!(name);
    let (mem, _, _) = run_and_read(&env, &spec);
    assert!(mem.ends_with(&format!("/{name}")), "{mem}");
    assert!(!mem.contains("kubepods.slice"), "{mem}");
}

/// One test per resources block as an engine sends it: the container runs, its memory limit
/// and cfs quota read `limit` and `quota` (None: unlimited).
macro_rules! sent_tests {
    ($($name:ident: $resources:expr => $limit:expr, $quota:expr;)*) => {$(
        #[test]
        fn $name() {
            let env = Env::new("es-sent");
            let mut spec = env.spec(&["/bin/sleep", "inf"]);
            let mut res: Value = $resources;
            if let Some(d) = spec["linux"]["resources"].get("devices") {
                res["devices"] = d.clone();
            }
            spec["linux"]["resources"] = res;
            let (_, limit, quota) = run_and_read(&env, &spec);
            let want: Option<&str> = $limit;
            assert_eq!(limit, want.map(str::to_string).unwrap_or_else(unlimited_memory));
            let want: Option<&str> = $quota;
            assert_eq!(quota, want.unwrap_or("-1"));
        }
    )*};
}

sent_tests! {
    // dockerd 20.10, `docker run busybox`: a weight of 0, empty memory and cpu sections.
    docker_20_10_blkio_weight_0:
        json!({"memory": {"disableOOMKiller": false}, "cpu": {}, "blockIO": {"weight": 0}})
        => None, None;
    // dockerd 20.10, `docker run --memory 64m --pids-limit 20 --cpus 0.5`.
    docker_20_10_with_limits:
        json!({"memory": {"limit": 67108864, "swap": 134217728, "disableOOMKiller": false},
               "cpu": {"quota": 50000, "period": 100000}, "pids": {"limit": 20},
               "blockIO": {"weight": 0}})
        => Some("67108864"), Some("50000");
    blkio_leaf_weight_0:
        json!({"blockIO": {"weight": 0, "leafWeight": 0}}) => None, None;
    cpu_shares_0: json!({"cpu": {"shares": 0}}) => None, None;
    cpu_quota_and_period_0: json!({"cpu": {"quota": 0, "period": 0}}) => None, None;
    cpu_period_0_with_a_quota:
        json!({"cpu": {"quota": 20000, "period": 0}}) => None, Some("20000");
    cpu_realtime_0: json!({"cpu": {"realtimeRuntime": 0, "realtimePeriod": 0}}) => None, None;
    memory_limit_0: json!({"memory": {"limit": 0}}) => None, None;
    memory_swap_0: json!({"memory": {"limit": 0, "swap": 0}}) => None, None;
    memory_swap_0_with_a_limit:
        json!({"memory": {"limit": 33554432, "swap": 0}}) => Some("33554432"), None;
    memory_reservation_0: json!({"memory": {"reservation": 0}}) => None, None;
    pids_limit_0: json!({"pids": {"limit": 0}}) => None, None;
    // containerd 1.6's CRI for a BestEffort pod's container: shares 2, the default period,
    // nothing else.
    containerd_cri_best_effort:
        json!({"cpu": {"shares": 2, "period": 100000}, "memory": {}}) => None, None;
}

/// An update whose fields are 0 (`runc update` flags not given, containerd's CRI fields not
/// set) leaves the limits as they were: through `-r FILE` and through the flags.
#[test]
fn an_update_with_zeros_keeps_the_limits() {
    let env = Env::new("es-update");
    let mut spec = env.spec(&["/bin/sleep", "inf"]);
    spec["linux"]["resources"]["memory"] = json!({"limit": 67108864});
    spec["linux"]["resources"]["cpu"] = json!({"quota": 50000, "period": 100000, "shares": 512});
    env.rootfs.write_config(&spec);
    let bundle = env.bundle().to_string_lossy().into_owned();
    cli_ok(&env, &["run", "-d", "-b", &bundle, &env.id]);
    let st: Value = serde_json::from_str(&cli_ok(&env, &["state", &env.id])).unwrap();
    let pid = st["pid"].as_i64().unwrap();
    let read = |f: &str| -> String {
        let ctrl = f.split('.').next().unwrap();
        let path = cgroup_of(pid, ctrl);
        std::fs::read_to_string(format!("/sys/fs/cgroup/{ctrl}{path}/{f}"))
            .unwrap()
            .trim()
            .to_string()
    };
    let files = [
        "memory.limit_in_bytes",
        "cpu.cfs_quota_us",
        "cpu.cfs_period_us",
        "cpu.shares",
    ];
    let before: Vec<String> = files.iter().map(|f| read(f)).collect();
    assert_eq!(before, ["67108864", "50000", "100000", "512"]);
    let file = env.state_root().join("zeros.json");
    std::fs::write(
        &file,
        json!({"memory": {"limit": 0, "reservation": 0, "swap": 0},
               "cpu": {"shares": 0, "quota": 0, "period": 0},
               "blockIO": {"weight": 0}})
        .to_string(),
    )
    .unwrap();
    let updates: [&[&str]; 2] = [
        &["update", "-r", &common::path_str(&file), &env.id],
        &[
            "update",
            "--memory",
            "0",
            "--cpu-quota",
            "0",
            "--cpu-period",
            "0",
            "--cpu-shares",
            "0",
            &env.id,
        ],
    ];
    let mut outs = Vec::new();
    for args in updates {
        let out = common::cli(&env, args);
        outs.push((args, out, files.iter().map(|f| read(f)).collect::<Vec<_>>()));
    }
    let probe = common::cli(&env, &["exec", &env.id, "/bin/echo", "still here"]);
    cli_ok(&env, &["delete", "--force", &env.id]);
    reap(pid);
    for (args, out, after) in outs {
        assert_exit(&out, 0);
        assert_eq!(after, before, "corral {args:?} changed a limit");
    }
    assert_eq!(stdout(&probe), "still here\n");
}

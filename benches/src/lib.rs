//! corral's benchmarks: the fixtures the criterion benches in `benches/` time, and the
//! generator of BENCHMARKS.md (`src/bin/bench-report.rs`).
//!
//! Two kinds of measurement:
//!
//! * the whole spawn of `/bin/true` through the Rust API ([`SpawnFixture`]: create, start,
//!   wait for exit, delete, each step timed apart), in the configurations of [`Variant`];
//! * each phase through the leaf crates directly ([`ns_spawn`], [`CgroupFixture`],
//!   [`OverlayFixture`], [`pivot_root_once`], [`mounts_once`], [`exec_once`]).
//!
//! Every fixture removes what it made (its bundle, state root, cgroups, mounts, processes);
//! [`check_clean`] says what is left of an id, and the benches call it after each group.
//! Nothing here asserts a time: the benches measure, tests only run them once.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use runtime::{Container, ExitStatus, Options};
use serde_json::{json, Value};
use testkit::TestRootfs;

/// Errors of the fixtures: a sentence naming the step.
pub type Res<T> = Result<T, String>;

fn err<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// A configuration of the whole spawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// `corral spec`'s config: pid, network, ipc, uts, mount and cgroup namespaces, the
    /// default mounts, read-only root, a device rule, no seccomp, no limits.
    Default,
    /// The default without a network namespace.
    NoNetns,
    /// The default plus a seccomp filter shaped like Docker's: an allow-list of every syscall
    /// of the architecture but 50 (default action ERRNO).
    Seccomp,
    /// The default plus a user namespace (0 -> 100000, 65536 ids).
    Userns,
    /// The default with the root an overlay of the busybox root as one layer
    /// (`Options::layers`) under a writable layer in the state dir.
    Overlay,
    /// The default plus memory 64 MiB, pids 64, cpu 50000/100000.
    CgroupLimits,
}

impl Variant {
    /// Every variant, in report order.
    pub const ALL: [Variant; 6] = [
        Variant::Default,
        Variant::NoNetns,
        Variant::Seccomp,
        Variant::Userns,
        Variant::Overlay,
        Variant::CgroupLimits,
    ];

    /// The short name used in benchmark ids.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Default => "default",
            Variant::NoNetns => "no-netns",
            Variant::Seccomp => "seccomp",
            Variant::Userns => "userns",
            Variant::Overlay => "overlay",
            Variant::CgroupLimits => "cgroup-limits",
        }
    }
}

/// Syscalls Docker's default profile does not allow (the rest of the table is allowed).
const SECCOMP_DENIED: &[&str] = &[
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "create_module",
    "delete_module",
    "finit_module",
    "get_kernel_syms",
    "get_mempolicy",
    "init_module",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mbind",
    "mount",
    "move_pages",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "perf_event_open",
    "pivot_root",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "query_module",
    "quotactl",
    "reboot",
    "request_key",
    "set_mempolicy",
    "setns",
    "settimeofday",
    "stime",
    "swapon",
    "swapoff",
    "sysfs",
    "_sysctl",
    "umount",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "ustat",
    "vm86",
    "vm86old",
    "open_tree",
];

/// The seccomp section of [`Variant::Seccomp`].
pub fn seccomp_profile() -> Res<Value> {
    let arch = seccomp::Arch::native().ok_or("no seccomp table for this architecture")?;
    let allowed: Vec<&str> = arch
        .syscall_names()
        .filter(|n| !SECCOMP_DENIED.contains(n))
        .collect();
    Ok(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": [arch.oci_name()],
        "syscalls": [{"names": allowed, "action": "SCMP_ACT_ALLOW"}]
    }))
}

/// The config of a variant, for a root at `rootfs`, running `args`.
pub fn variant_config(v: Variant, rootfs: &Path, args: &[&str]) -> Res<Value> {
    let mut spec = runtime::default_spec();
    spec["process"]["terminal"] = json!(false);
    spec["process"]["args"] = json!(args);
    spec["root"]["path"] = json!(rootfs);
    let linux = &mut spec["linux"];
    match v {
        Variant::Default | Variant::Overlay => {}
        Variant::NoNetns => {
            let ns = linux["namespaces"]
                .as_array_mut()
                .ok_or("default spec has no linux.namespaces")?;
            ns.retain(|n| n["type"] != "network");
        }
        Variant::Seccomp => linux["seccomp"] = seccomp_profile()?,
        Variant::Userns => {
            let ns = linux["namespaces"]
                .as_array_mut()
                .ok_or("default spec has no linux.namespaces")?;
            ns.push(json!({"type": "user"}));
            let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            linux["uidMappings"] = map.clone();
            linux["gidMappings"] = map;
        }
        Variant::CgroupLimits => {
            let r = &mut linux["resources"];
            r["memory"] = json!({"limit": 67108864});
            r["pids"] = json!({"limit": 64});
            r["cpu"] = json!({"quota": 50000, "period": 100000});
        }
    }
    Ok(spec)
}

/// The time each step of one whole spawn took.
#[derive(Debug, Clone, Copy, Default)]
pub struct Steps {
    pub create: Duration,
    pub start: Duration,
    pub wait: Duration,
    pub delete: Duration,
}

impl Steps {
    /// create + start + wait + delete.
    pub fn total(&self) -> Duration {
        self.create + self.start + self.wait + self.delete
    }
}

/// A state root of its own for fixture `id`: in `dir`, or in the temporary directory.
fn temp_state_root(id: &str, dir: Option<&Path>) -> Res<tempfile::TempDir> {
    let prefix = format!("{id}-state-");
    let mut b = tempfile::Builder::new();
    b.prefix(&prefix);
    match dir {
        Some(d) => b.tempdir_in(d),
        None => b.tempdir(),
    }
    .map_err(err("state root"))
}

/// A busybox bundle, a state root and options for one [`Variant`]; all removed on drop.
pub struct SpawnFixture {
    pub variant: Variant,
    /// The container id every spawn of this fixture uses (deleted before the next).
    pub id: String,
    opts: Options,
    // Dropped after the state root: the overlay's layer is this bundle's root.
    state: tempfile::TempDir,
    rootfs: TestRootfs,
}

impl SpawnFixture {
    /// A fixture running `/bin/true`.
    pub fn new(variant: Variant) -> Res<SpawnFixture> {
        SpawnFixture::with_args(variant, &["/bin/true"])
    }

    /// A fixture running `args`.
    pub fn with_args(variant: Variant, args: &[&str]) -> Res<SpawnFixture> {
        SpawnFixture::make(variant, args, None)
    }

    /// A fixture running `/bin/true` whose state root is made in `dir` (e.g. a tmpfs)
    /// rather than the temporary directory.
    pub fn with_state_in(variant: Variant, dir: &Path) -> Res<SpawnFixture> {
        SpawnFixture::make(variant, &["/bin/true"], Some(dir))
    }

    fn make(variant: Variant, args: &[&str], state_in: Option<&Path>) -> Res<SpawnFixture> {
        let id = testkit::unique_id(&format!("bench-{}", variant.name()));
        let rootfs = TestRootfs::with_id(&id);
        rootfs.write_config(&variant_config(variant, rootfs.rootfs(), args)?);
        let state = temp_state_root(&id, state_in)?;
        let mut opts = Options {
            root: state.path().to_path_buf(),
            // Created and started by this process alone, as `create_and_start` and `corral
            // run` do: the socket gate, no FIFO.
            start_in_process: true,
            ..Options::default()
        };
        if variant == Variant::Overlay {
            opts.layers = vec![rootfs.rootfs().to_path_buf()];
        }
        Ok(SpawnFixture {
            variant,
            id,
            opts,
            state,
            rootfs,
        })
    }

    /// The bundle directory.
    pub fn bundle(&self) -> &Path {
        self.rootfs.bundle()
    }

    /// The state root.
    pub fn state_root(&self) -> &Path {
        self.state.path()
    }

    /// One whole spawn: create, start, wait (the exit status must be 0), delete.
    pub fn spawn(&self) -> Res<Steps> {
        let t0 = Instant::now();
        let mut c =
            Container::create(&self.id, self.rootfs.bundle(), &self.opts).map_err(err("create"))?;
        let t1 = Instant::now();
        c.start().map_err(err("start"))?;
        let t2 = Instant::now();
        let st = c.wait().map_err(err("wait"))?;
        let t3 = Instant::now();
        c.delete().map_err(err("delete"))?;
        let t4 = Instant::now();
        if st != ExitStatus::Exited(0) {
            return Err(format!("{}: the container ended with {st:?}", self.id));
        }
        Ok(Steps {
            create: t1 - t0,
            start: t2 - t1,
            wait: t3 - t2,
            delete: t4 - t3,
        })
    }

    /// What is left of this fixture's container (see [`check_clean`]).
    pub fn check_clean(&self) -> Res<()> {
        check_clean(&self.id, Some(self.state.path()))
    }
}

/// A warm pool of `/bin/true` containers made from a variant's config (`runtime::Pool`).
pub struct PoolFixture {
    pub id: String,
    pool: Option<runtime::Pool>,
    state: tempfile::TempDir,
    _rootfs: TestRootfs,
}

/// One take from a pool: the take itself (from the call until `execve` succeeded, the
/// container's `start` phase) and the whole take + wait + delete.
#[derive(Debug, Clone, Copy)]
pub struct Take {
    pub start_to_exec: Duration,
    pub whole: Duration,
}

impl PoolFixture {
    /// A pool of `size` containers of `variant`, ready when this returns.
    pub fn new(variant: Variant, size: usize) -> Res<PoolFixture> {
        PoolFixture::make(variant, size, None)
    }

    /// [`PoolFixture::new`] with the state root made in `dir` (e.g. a tmpfs) rather than
    /// the temporary directory.
    pub fn with_state_in(variant: Variant, size: usize, dir: &Path) -> Res<PoolFixture> {
        PoolFixture::make(variant, size, Some(dir))
    }

    fn make(variant: Variant, size: usize, state_in: Option<&Path>) -> Res<PoolFixture> {
        let id = testkit::unique_id(&format!("bench-pool-{}", variant.name()));
        let rootfs = TestRootfs::with_id(&id);
        rootfs.write_config(&variant_config(variant, rootfs.rootfs(), &["/bin/true"])?);
        let state = temp_state_root(&id, state_in)?;
        let bundle = runtime::Bundle::load(rootfs.bundle()).map_err(err("bundle"))?;
        let pool = runtime::Pool::new(
            bundle,
            Options {
                root: state.path().to_path_buf(),
                ..Options::default()
            },
            runtime::PoolOptions {
                size,
                id_prefix: id.clone(),
            },
        )
        .map_err(err("pool"))?;
        let f = PoolFixture {
            id,
            pool: Some(pool),
            state,
            _rootfs: rootfs,
        };
        f.wait_ready(size)?;
        Ok(f)
    }

    /// Waits until `n` containers are ready (the refill runs between takes).
    pub fn wait_ready(&self, n: usize) -> Res<()> {
        let p = self.pool.as_ref().ok_or("pool dropped")?;
        let t = Instant::now();
        while p.ready() < n {
            if t.elapsed() > Duration::from_secs(30) {
                return Err(format!("pool never had {n} ready: {:?}", p.last_error()));
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        Ok(())
    }

    /// Takes a ready container for `/bin/true`, waits for it and deletes it.
    pub fn take(&self) -> Res<Take> {
        let p = self.pool.as_ref().ok_or("pool dropped")?;
        let t0 = Instant::now();
        let mut c = p
            .take_ready(&["/bin/true".to_string()], &[], [-1; 3])
            .map_err(err("take"))?;
        let st = c.wait().map_err(err("wait"))?;
        let start = c.timings().get("start").unwrap_or_default();
        c.delete().map_err(err("delete"))?;
        if st != ExitStatus::Exited(0) {
            return Err(format!("{}: the container ended with {st:?}", self.id));
        }
        Ok(Take {
            start_to_exec: start,
            whole: t0.elapsed(),
        })
    }

    /// Drops the pool (removing what waits in it) and reports anything left.
    pub fn finish(mut self) -> Res<()> {
        drop(self.pool.take());
        check_clean(&self.id, Some(self.state.path()))
    }
}

/// An error listing anything (mount, cgroup, process, state dir) still named after `id`.
pub fn check_clean(id: &str, state_root: Option<&Path>) -> Res<()> {
    let leaks = testkit::find_leaks(id, state_root);
    if leaks.is_empty() {
        Ok(())
    } else {
        Err(format!("left behind by {id}:\n  {}", leaks.join("\n  ")))
    }
}

// ---------------------------------------------------------------------------------------
// Phases through `ns`: the clone with a set of namespaces, the child's path, exec to exit.

/// A plan that runs `/bin/true` of the host with no root change, creating `kinds`.
pub fn ns_plan(kinds: &[ns::Kind]) -> Res<ns::Plan> {
    let user = kinds.contains(&ns::Kind::User);
    let map = vec![ns::IdMap {
        inside: 0,
        outside: 0,
        count: 65536,
    }];
    let c = |s: &str| CString::new(s).map_err(err("CString"));
    Ok(ns::Plan {
        new_ns: kinds.to_vec(),
        join_ns: Vec::new(),
        uid_map: if user { map.clone() } else { Vec::new() },
        gid_map: if user { map } else { Vec::new() },
        deny_setgroups: false,
        cgroup_fd: None,
        cgroup_tasks: Vec::new(),
        rootfs: None,
        hostname: None,
        domainname: None,
        sysctls: Vec::new(),
        time_offsets: None,
        oom_score_adj: None,
        process: ns::Process {
            argv: ns::CStringArray::new("args", ["/bin/true"]).map_err(err("args"))?,
            envp: ns::CStringArray::new("env", ["PATH=/usr/bin:/bin"]).map_err(err("env"))?,
            exec_candidates: vec![c("/bin/true")?],
            cwd: c("/")?,
            uid: 0,
            gid: 0,
            additional_gids: Vec::new(),
            umask: 0o022,
            rlimits: Vec::new(),
            no_new_privs: false,
            caps: None,
            preserve_fds: 0,
            setsid: false,
            terminal: false,
            personality: None,
            sched: None,
            ioprio: None,
            mempolicy: None,
            stdio: [-1, -1, -1],
            exec_labels: Vec::new(),
            affinity_initial: None,
            affinity_final: None,
        },
        gate: None,
        close_fds: Vec::new(),
        seccomp: None,
        hook_pause: false,
        keyring: None,
        attr_root: None,
        start_hooks: Vec::new(),
        late_exec: false,
    })
}

/// The namespace sets the `ns` phase is timed with: (name, kinds).
pub fn ns_sets() -> Vec<(&'static str, Vec<ns::Kind>)> {
    use ns::Kind::*;
    vec![
        ("none", vec![]),
        ("user", vec![User]),
        ("mount", vec![Mount]),
        ("pid", vec![Pid]),
        ("net", vec![Net]),
        ("ipc", vec![Ipc]),
        ("uts", vec![Uts]),
        ("cgroup", vec![Cgroup]),
        ("all-but-user", vec![Mount, Pid, Net, Ipc, Uts, Cgroup]),
        ("all", vec![User, Mount, Pid, Net, Ipc, Uts, Cgroup]),
    ]
}

/// `ns::spawn` of `/bin/true` with `kinds`, released at once, until it exited and was reaped.
/// Only the spawn to the exit is timed (the plan is made before).
pub fn ns_spawn(kinds: &[ns::Kind]) -> Res<Duration> {
    let plan = ns_plan(kinds)?;
    let t0 = Instant::now();
    let mut s = ns::spawn(plan).map_err(err("ns::spawn"))?;
    s.go().map_err(err("go"))?;
    let done = s.start().map_err(err("start"))?;
    let mut st = 0;
    // SAFETY: reaping our own child.
    let r = unsafe { libc::waitpid(done.pid, &mut st, 0) };
    let d = t0.elapsed();
    if r != done.pid || !libc::WIFEXITED(st) || libc::WEXITSTATUS(st) != 0 {
        return Err(format!(
            "/bin/true in namespaces {kinds:?}: wait status {st:#x}"
        ));
    }
    Ok(d)
}

/// fork, exec `path` (no arguments) and wait for its exit, as `std::process::Command` does.
pub fn exec_once(path: &Path) -> Res<Duration> {
    let t0 = Instant::now();
    let st = std::process::Command::new(path)
        .status()
        .map_err(err("exec"))?;
    let d = t0.elapsed();
    if !st.success() {
        return Err(format!("{}: {st}", path.display()));
    }
    Ok(d)
}

// ---------------------------------------------------------------------------------------
// Phases through `cgroup`.

/// The limits of [`Variant::CgroupLimits`].
pub fn limits() -> cgroup::Resources {
    cgroup::Resources {
        memory_limit: Some(64 << 20),
        pids_limit: Some(64),
        cpu_quota: Some(50000),
        cpu_period: Some(100000),
        ..cgroup::Resources::default()
    }
}

/// The host's hierarchies and a unique name for the cgroups of one bench.
pub struct CgroupFixture {
    pub id: String,
    hier: cgroup::Hierarchy,
    n: std::cell::Cell<u64>,
}

impl CgroupFixture {
    pub fn new(what: &str) -> Res<CgroupFixture> {
        Ok(CgroupFixture {
            id: testkit::unique_id(&format!("bench-cg-{what}")),
            hier: cgroup::Hierarchy::detect().map_err(err("detect cgroups"))?,
            n: std::cell::Cell::new(0),
        })
    }

    /// The number of hierarchies a container's cgroup spans here.
    pub fn hierarchies(&self) -> usize {
        self.hier.mounts().len()
    }

    /// A new cgroup (planned: nothing made), under this fixture's id.
    pub fn plan(&self) -> Res<cgroup::Cgroup> {
        let n = self.n.get();
        self.n.set(n + 1);
        let path = cgroup::CgroupPath::Relative(format!("{}-{n}", self.id));
        cgroup::Cgroup::new(&self.hier, &path).map_err(err("plan cgroup"))
    }

    /// Made in every hierarchy (no limits).
    pub fn made(&self) -> Res<cgroup::Cgroup> {
        let mut cg = self.plan()?;
        cg.create(&cgroup::Resources::default())
            .map_err(err("create cgroup"))?;
        Ok(cg)
    }
}

/// A child process that waits (in `pause`) until it is killed; killed and reaped on drop.
pub struct Sleeper {
    pub pid: i32,
}

impl Sleeper {
    pub fn new() -> Res<Sleeper> {
        // SAFETY: the child only calls async-signal-safe functions.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(format!("fork: {}", std::io::Error::last_os_error()));
        }
        if pid == 0 {
            // SAFETY: async-signal-safe calls only.
            unsafe {
                loop {
                    libc::pause();
                }
            }
        }
        Ok(Sleeper { pid })
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let mut st = 0;
        // SAFETY: killing and reaping our own child.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
            libc::waitpid(self.pid, &mut st, 0);
        }
    }
}

/// A cgroup made, and a process in it, removed in order on drop.
pub struct Attached {
    pub cg: cgroup::Cgroup,
    pub proc: Option<Sleeper>,
}

impl Drop for Attached {
    fn drop(&mut self) {
        drop(self.proc.take());
        let _ = self.cg.remove();
    }
}

// ---------------------------------------------------------------------------------------
// Phases through `unionfs`.

/// `n` read-only layers (each a directory with one file) and an upper/work pair, in a temp
/// dir named after the fixture's id.
pub struct OverlayFixture {
    pub id: String,
    pub layers: usize,
    dir: tempfile::TempDir,
    n: std::cell::Cell<u64>,
}

impl OverlayFixture {
    pub fn new(layers: usize) -> Res<OverlayFixture> {
        let id = testkit::unique_id(&format!("bench-ovl-{layers}"));
        let dir = tempfile::Builder::new()
            .prefix(&format!("{id}-"))
            .tempdir()
            .map_err(err("overlay temp dir"))?;
        for i in 0..layers {
            let l = dir.path().join(format!("layer{i}"));
            std::fs::create_dir(&l).map_err(err("mkdir layer"))?;
            std::fs::write(l.join(format!("file{i}")), b"x").map_err(err("write layer file"))?;
        }
        Ok(OverlayFixture {
            id,
            layers,
            dir,
            n: std::cell::Cell::new(0),
        })
    }

    /// An overlay ready to mount on a fresh target (upper, work and target made).
    pub fn prepare(&self) -> Res<(unionfs::Overlay, PathBuf)> {
        let n = self.n.get();
        self.n.set(n + 1);
        let base = self.dir.path().join(format!("c{n}"));
        for d in ["upper", "work", "target"] {
            std::fs::create_dir_all(base.join(d)).map_err(err("mkdir overlay dir"))?;
        }
        let lowers = (0..self.layers)
            .map(|i| self.dir.path().join(format!("layer{i}")))
            .collect();
        Ok((
            unionfs::Overlay::new(lowers, base.join("upper"), base.join("work")),
            base.join("target"),
        ))
    }

    /// Removes what [`OverlayFixture::prepare`] made for `target`.
    pub fn discard(&self, target: &Path) -> Res<()> {
        let base = target.parent().ok_or("overlay target has no parent")?;
        std::fs::remove_dir_all(base).map_err(err("remove overlay dirs"))
    }
}

// ---------------------------------------------------------------------------------------
// Phases timed inside a child of their own: pivot_root and the rootfs mounts need a new
// mount namespace, so each iteration forks a child that makes one, times the phase with the
// monotonic clock and writes the nanoseconds to a pipe. The child calls only raw syscalls on
// data prepared before the fork.

/// What a forked child times.
enum InChild {
    /// Bind the root onto itself (untimed), then `pivot_root(".", ".")` and the detach of the
    /// old root (timed).
    PivotRoot,
    /// The mounts of the default config (proc, /dev tmpfs, devpts, shm, mqueue, sysfs) under
    /// the root (timed).
    Mounts,
}

struct MountStep {
    source: CString,
    target: CString,
    fstype: CString,
    flags: libc::c_ulong,
    data: CString,
}

fn mount_steps(root: &Path) -> Res<Vec<MountStep>> {
    let c = |s: &str| CString::new(s).map_err(err("CString"));
    let t = |p: &str| {
        CString::new(root.join(p).into_os_string().into_encoded_bytes()).map_err(err("CString"))
    };
    let (nosuid, noexec, nodev) = (libc::MS_NOSUID, libc::MS_NOEXEC, libc::MS_NODEV);
    Ok(vec![
        MountStep {
            source: c("proc")?,
            target: t("proc")?,
            fstype: c("proc")?,
            flags: 0,
            data: c("")?,
        },
        MountStep {
            source: c("tmpfs")?,
            target: t("dev")?,
            fstype: c("tmpfs")?,
            flags: nosuid | libc::MS_STRICTATIME,
            data: c("mode=755,size=65536k")?,
        },
        MountStep {
            source: c("devpts")?,
            target: t("dev/pts")?,
            fstype: c("devpts")?,
            flags: nosuid | noexec,
            data: c("newinstance,ptmxmode=0666,mode=0620,gid=5")?,
        },
        MountStep {
            source: c("shm")?,
            target: t("dev/shm")?,
            fstype: c("tmpfs")?,
            flags: nosuid | noexec | nodev,
            data: c("mode=1777,size=65536k")?,
        },
        MountStep {
            source: c("mqueue")?,
            target: t("dev/mqueue")?,
            fstype: c("mqueue")?,
            flags: nosuid | noexec | nodev,
            data: c("")?,
        },
        MountStep {
            source: c("sysfs")?,
            target: t("sys")?,
            fstype: c("sysfs")?,
            flags: nosuid | noexec | nodev | libc::MS_RDONLY,
            data: c("")?,
        },
    ])
}

/// A bundle root for the phases timed in a child.
pub struct RootFixture {
    pub id: String,
    rootfs: TestRootfs,
    root_c: CString,
    steps: Vec<MountStep>,
    dirs: [CString; 3],
}

impl RootFixture {
    pub fn new(what: &str) -> Res<RootFixture> {
        let id = testkit::unique_id(&format!("bench-{what}"));
        let rootfs = TestRootfs::with_id(&id);
        let root = rootfs.rootfs().to_path_buf();
        let root_c = CString::new(root.clone().into_os_string().into_encoded_bytes())
            .map_err(err("CString"))?;
        let steps = mount_steps(&root)?;
        let d = |p: &str| {
            CString::new(root.join(p).into_os_string().into_encoded_bytes()).map_err(err("CString"))
        };
        let dirs = [d("dev/pts")?, d("dev/shm")?, d("dev/mqueue")?];
        Ok(RootFixture {
            id,
            rootfs,
            root_c,
            steps,
            dirs,
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        self.rootfs.rootfs()
    }

    fn in_child(&self, what: InChild) -> Res<Duration> {
        let mut p = [0; 2];
        // SAFETY: pipe2 fills the array.
        if unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
            return Err(format!("pipe: {}", std::io::Error::last_os_error()));
        }
        // SAFETY: the child runs `child_body`, raw syscalls over prepared data, and _exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: in the child.
            unsafe {
                let code = self.child_body(&what, p[1]);
                libc::_exit(code)
            }
        }
        // SAFETY: closing our copy of the write end.
        unsafe { libc::close(p[1]) };
        let rd = p[0];
        let mut ns: u64 = 0;
        // SAFETY: reading 8 bytes into a u64.
        let n = unsafe { libc::read(rd, (&mut ns as *mut u64).cast(), 8) };
        // SAFETY: our fd.
        unsafe { libc::close(rd) };
        let mut st = 0;
        if pid > 0 {
            // SAFETY: reaping our own child.
            unsafe { libc::waitpid(pid, &mut st, 0) };
        } else {
            return Err(format!("fork: {}", std::io::Error::last_os_error()));
        }
        if n != 8 || !libc::WIFEXITED(st) || libc::WEXITSTATUS(st) != 0 {
            return Err(format!(
                "timed child failed at step {} (errno {})",
                libc::WEXITSTATUS(st),
                ns
            ));
        }
        Ok(Duration::from_nanos(ns))
    }

    /// Exit codes: 0 ok, else the failing step (and the errno written to the pipe).
    unsafe fn child_body(&self, what: &InChild, out: i32) -> i32 {
        // SAFETY: runs only in the child `in_child` forks (one thread, its own copy of the
        // memory); every pointer given to the kernel is a live CString of `self` or a local of
        // this frame, and `out` is the pipe's write end the child owns.
        unsafe {
            let fail = |step: i32| -> i32 {
                let e = *libc::__errno_location() as u64;
                libc::write(out, (&e as *const u64).cast(), 8);
                step
            };
            let now = || {
                let mut ts: libc::timespec = std::mem::zeroed();
                libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
                ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
            };
            let none = std::ptr::null::<libc::c_char>();
            if libc::unshare(libc::CLONE_NEWNS) < 0 {
                return fail(10);
            }
            if libc::mount(
                none,
                c"/".as_ptr(),
                none,
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) < 0
            {
                return fail(11);
            }
            if libc::mount(
                self.root_c.as_ptr(),
                self.root_c.as_ptr(),
                none,
                libc::MS_BIND | libc::MS_REC,
                std::ptr::null(),
            ) < 0
            {
                return fail(12);
            }
            let t0;
            match what {
                InChild::PivotRoot => {
                    if libc::chdir(self.root_c.as_ptr()) < 0 {
                        return fail(13);
                    }
                    t0 = now();
                    if libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) < 0 {
                        return fail(14);
                    }
                    if libc::umount2(c".".as_ptr(), libc::MNT_DETACH) < 0 {
                        return fail(15);
                    }
                }
                InChild::Mounts => {
                    t0 = now();
                    for (i, m) in self.steps.iter().enumerate() {
                        if i == 2 {
                            for d in &self.dirs {
                                if libc::mkdir(d.as_ptr(), 0o755) < 0 {
                                    return fail(16);
                                }
                            }
                        }
                        let data = if m.data.is_empty() {
                            std::ptr::null()
                        } else {
                            m.data.as_ptr().cast()
                        };
                        if libc::mount(
                            m.source.as_ptr(),
                            m.target.as_ptr(),
                            m.fstype.as_ptr(),
                            m.flags,
                            data,
                        ) < 0
                        {
                            return fail(20 + i as i32);
                        }
                    }
                }
            }
            let d = now() - t0;
            if libc::write(out, (&d as *const u64).cast(), 8) != 8 {
                return 30;
            }
            0
        }
    }

    /// Times one `pivot_root(".", ".")` + detach of the old root in a new mount namespace.
    pub fn pivot_root_once(&self) -> Res<Duration> {
        self.in_child(InChild::PivotRoot)
    }

    /// Times the default config's mounts (proc, /dev, devpts, shm, mqueue, sysfs) in a new
    /// mount namespace, onto the root bound onto itself. The mount namespace dies with the
    /// child, so nothing stays mounted; the /dev subdirectories made on the bundle's root
    /// (under the tmpfs) vanish with it.
    pub fn mounts_once(&self) -> Res<Duration> {
        self.in_child(InChild::Mounts)
    }
}

/// [`RootFixture::pivot_root_once`] on a fresh fixture (for the one-shot test).
pub fn pivot_root_once() -> Res<Duration> {
    RootFixture::new("pivot")?.pivot_root_once()
}

/// [`RootFixture::mounts_once`] on a fresh fixture (for the one-shot test).
pub fn mounts_once() -> Res<Duration> {
    RootFixture::new("mounts")?.mounts_once()
}

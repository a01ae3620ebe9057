//! A container described field by field, without a bundle directory.
//!
//! [`SpecBuilder`] starts from the spec `corral spec` writes (the namespaces, mounts, masked
//! paths and capabilities of `runc spec`) and sets what a caller usually wants to choose. It
//! yields a [`Bundle`] that has gone through the same parsing and checks as a `config.json`, so
//! a container built here and one from a bundle follow one path from there on. The CLI, the C
//! library and the Python module all build their containers with it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::config::Bundle;
use crate::{Error, Result};

/// A namespace kind, by its OCI name (`pid`, `network`, `ipc`, `uts`, `mount`, `user`,
/// `cgroup`, `time`; `net` and `mnt` are accepted too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Namespace {
    Pid,
    Network,
    Ipc,
    Uts,
    Mount,
    User,
    Cgroup,
    Time,
}

impl Namespace {
    /// Every kind, in the order a spec lists them.
    pub const ALL: [Namespace; 8] = [
        Namespace::Pid,
        Namespace::Network,
        Namespace::Ipc,
        Namespace::Uts,
        Namespace::Mount,
        Namespace::User,
        Namespace::Cgroup,
        Namespace::Time,
    ];

    /// The OCI name (`linux.namespaces[].type`).
    pub fn oci_name(self) -> &'static str {
        match self {
            Namespace::Pid => "pid",
            Namespace::Network => "network",
            Namespace::Ipc => "ipc",
            Namespace::Uts => "uts",
            Namespace::Mount => "mount",
            Namespace::User => "user",
            Namespace::Cgroup => "cgroup",
            Namespace::Time => "time",
        }
    }
}

impl std::str::FromStr for Namespace {
    type Err = Error;
    fn from_str(s: &str) -> Result<Namespace> {
        Ok(match s {
            "pid" => Namespace::Pid,
            "network" | "net" => Namespace::Network,
            "ipc" => Namespace::Ipc,
            "uts" => Namespace::Uts,
            "mount" | "mnt" => Namespace::Mount,
            "user" => Namespace::User,
            "cgroup" => Namespace::Cgroup,
            "time" => Namespace::Time,
            _ => {
                return Err(Error::Config {
                    field: "namespaces".into(),
                    reason: format!(
                        "unknown namespace {s:?} (want pid, network, ipc, uts, mount, user, cgroup or time)"
                    ),
                })
            }
        })
    }
}

/// What the container gets of one namespace kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NsMode {
    /// A new namespace of its own.
    New,
    /// The caller's (the host's) namespace: none of its own.
    Host,
    /// The namespace at this path (`/proc/PID/ns/net`, a bind-mounted namespace file).
    Join(PathBuf),
}

/// Resource limits, for [`SpecBuilder::limits`] and [`crate::Container::update`]. `None`
/// leaves a limit as it is (unlimited for a new container).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    /// Memory limit in bytes (`linux.resources.memory.limit`).
    pub memory: Option<i64>,
    /// Memory plus swap limit in bytes (`linux.resources.memory.swap`).
    pub memory_swap: Option<i64>,
    /// Maximum number of processes (`linux.resources.pids.limit`).
    pub pids: Option<i64>,
    /// CPU time as a number of CPUs (0.5: half of one), over a 100 ms period
    /// (`linux.resources.cpu.quota` / `period`).
    pub cpus: Option<f64>,
    /// Relative CPU weight (`linux.resources.cpu.shares`).
    pub cpu_shares: Option<u64>,
}

/// The CFS period [`Limits::cpus`] is expressed over, in microseconds.
pub const CPU_PERIOD_US: u64 = 100_000;

impl Limits {
    /// Checks every value: errors name the limit.
    pub fn check(&self) -> Result<()> {
        let bad = |field: &str, reason: String| Error::Config {
            field: format!("linux.resources.{field}"),
            reason,
        };
        if let Some(m) = self.memory {
            if m <= 0 {
                return Err(bad("memory.limit", format!("{m}: must be positive")));
            }
        }
        if let Some(m) = self.memory_swap {
            if m <= 0 && m != -1 {
                return Err(bad("memory.swap", format!("{m}: must be positive (or -1)")));
            }
        }
        if let Some(p) = self.pids {
            if p <= 0 && p != -1 {
                return Err(bad("pids.limit", format!("{p}: must be positive (or -1)")));
            }
        }
        if let Some(c) = self.cpus {
            if !(c.is_finite() && c > 0.0 && c <= 1_000_000.0) {
                return Err(bad(
                    "cpu.quota",
                    format!("cpus {c}: must be a positive number"),
                ));
            }
        }
        if let Some(s) = self.cpu_shares {
            if !(2..=262_144).contains(&s) {
                return Err(bad("cpu.shares", format!("{s}: must be in 2..=262144")));
            }
        }
        Ok(())
    }

    /// The CFS quota (µs per [`CPU_PERIOD_US`]) of [`Limits::cpus`].
    pub fn cpu_quota(&self) -> Option<i64> {
        self.cpus
            .map(|c| ((c * CPU_PERIOD_US as f64).round() as i64).max(1000))
    }

    /// As the cgroup crate's resources, for an update (only the limits set here).
    pub fn to_resources(&self) -> Result<cgroup::Resources> {
        self.check()?;
        Ok(cgroup::Resources {
            memory_limit: self.memory,
            memory_swap: self.memory_swap,
            pids_limit: self.pids,
            cpu_quota: self.cpu_quota(),
            cpu_period: self.cpus.map(|_| CPU_PERIOD_US),
            cpu_shares: self.cpu_shares,
            ..Default::default()
        })
    }

    fn to_json(&self) -> Value {
        let mut r = json!({});
        if self.memory.is_some() || self.memory_swap.is_some() {
            let mut m = json!({});
            if let Some(v) = self.memory {
                m["limit"] = json!(v);
            }
            if let Some(v) = self.memory_swap {
                m["swap"] = json!(v);
            }
            r["memory"] = m;
        }
        if let Some(p) = self.pids {
            r["pids"] = json!({ "limit": p });
        }
        if self.cpus.is_some() || self.cpu_shares.is_some() {
            let mut c = json!({});
            if let Some(q) = self.cpu_quota() {
                c["quota"] = json!(q);
                c["period"] = json!(CPU_PERIOD_US);
            }
            if let Some(s) = self.cpu_shares {
                c["shares"] = json!(s);
            }
            r["cpu"] = c;
        }
        r
    }
}

/// Parses a size: bytes, or a number with a suffix `k`, `m`, `g`, `t` (powers of 1024, either
/// case, an optional `b`/`ib`): `"64M"`, `"1.5g"`, `"4096"`. `what` names the value in errors.
pub fn parse_size(what: &str, s: &str) -> Result<i64> {
    let bad = || Error::Config {
        field: what.to_string(),
        reason: format!("{s:?} is not a size (want bytes, or a number with k, M, G or T)"),
    };
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let body = lower
        .strip_suffix("ib")
        .or_else(|| lower.strip_suffix('b'))
        .unwrap_or(&lower);
    let (num, mult) = match body.chars().last() {
        Some('k') => (&body[..body.len() - 1], 1u64 << 10),
        Some('m') => (&body[..body.len() - 1], 1 << 20),
        Some('g') => (&body[..body.len() - 1], 1 << 30),
        Some('t') => (&body[..body.len() - 1], 1 << 40),
        _ => (body, 1),
    };
    let n: f64 = num.trim().parse().map_err(|_| bad())?;
    if !(n.is_finite() && n > 0.0) {
        return Err(Error::Config {
            field: what.to_string(),
            reason: format!("{s:?}: must be positive"),
        });
    }
    let v = n * mult as f64;
    if v >= i64::MAX as f64 {
        return Err(bad());
    }
    Ok(v as i64)
}

/// One mount of the container (`mounts[]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Where it goes inside the container (absolute).
    pub destination: String,
    /// The filesystem type (`bind` for a bind mount, `tmpfs`, `proc`...).
    pub kind: String,
    /// The source: a host path for a bind mount, else a name.
    pub source: String,
    /// Mount options, as in `mounts[].options` (`ro`, `nosuid`, `rbind`, `size=64m`...).
    pub options: Vec<String>,
}

impl Mount {
    /// A bind mount of the host path `source` at `destination`, read-only if `readonly`.
    pub fn bind(
        source: impl Into<String>,
        destination: impl Into<String>,
        readonly: bool,
    ) -> Mount {
        let mut options = vec!["rbind".to_string(), "nosuid".into(), "nodev".into()];
        options.push(if readonly { "ro" } else { "rw" }.into());
        Mount {
            destination: destination.into(),
            kind: "bind".into(),
            source: source.into(),
            options,
        }
    }

    /// An empty tmpfs at `destination`.
    pub fn tmpfs(destination: impl Into<String>) -> Mount {
        Mount {
            destination: destination.into(),
            kind: "tmpfs".into(),
            source: "tmpfs".into(),
            options: vec!["nosuid".into(), "nodev".into(), "mode=1777".into()],
        }
    }
}

/// One range of a user namespace's id map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    /// First id inside the container.
    pub container: u32,
    /// First id on the host.
    pub host: u32,
    /// How many ids.
    pub size: u32,
}

/// A container described field by field. Every setter has a default: the spec of
/// `corral spec` (pid, network, ipc, uts, mount and cgroup namespaces; `/proc`, `/dev`,
/// `/sys`...; masked and read-only paths; a read-only root; the default capabilities;
/// `noNewPrivileges`), no terminal, `PATH` set, and `/bin/sh` as the process unless
/// [`SpecBuilder::args`] says otherwise. A caller that is not root gets the rootless
/// default (a user namespace mapping it to root, no network namespace).
#[derive(Debug, Clone)]
pub struct SpecBuilder {
    rootfs: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    cwd: String,
    hostname: Option<String>,
    uid: u32,
    gid: u32,
    additional_gids: Vec<u32>,
    namespaces: BTreeMap<Namespace, NsMode>,
    uid_map: Vec<IdRange>,
    gid_map: Vec<IdRange>,
    limits: Limits,
    mounts: Vec<Mount>,
    terminal: bool,
    seccomp: bool,
    readonly_root: bool,
    annotations: BTreeMap<String, String>,
}

impl SpecBuilder {
    /// A container whose root filesystem is the directory `rootfs`.
    pub fn new(rootfs: impl Into<PathBuf>) -> SpecBuilder {
        // SAFETY: plain getter.
        let rootless = unsafe { libc::geteuid() } != 0;
        let mut namespaces = BTreeMap::new();
        for n in [
            Namespace::Pid,
            Namespace::Network,
            Namespace::Ipc,
            Namespace::Uts,
            Namespace::Mount,
            Namespace::Cgroup,
        ] {
            namespaces.insert(n, NsMode::New);
        }
        if rootless {
            namespaces.remove(&Namespace::Network);
            namespaces.remove(&Namespace::Cgroup);
            namespaces.insert(Namespace::User, NsMode::New);
        }
        SpecBuilder {
            rootfs: rootfs.into(),
            args: vec!["/bin/sh".into()],
            env: Vec::new(),
            cwd: "/".into(),
            hostname: None,
            uid: 0,
            gid: 0,
            additional_gids: Vec::new(),
            namespaces,
            uid_map: Vec::new(),
            gid_map: Vec::new(),
            limits: Limits::default(),
            mounts: Vec::new(),
            terminal: false,
            seccomp: false,
            readonly_root: true,
            annotations: BTreeMap::new(),
        }
    }

    /// The process: its executable (looked up in `PATH` when it has no `/`) and arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the environment variable `key` (replacing an earlier value).
    pub fn env(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        let key = key.into();
        self.env.retain(|(k, _)| *k != key);
        self.env.push((key, value.into()));
        self
    }

    /// The working directory, inside the container.
    pub fn cwd(&mut self, cwd: impl Into<String>) -> &mut Self {
        self.cwd = cwd.into();
        self
    }

    /// The hostname (needs a UTS namespace of its own).
    pub fn hostname(&mut self, h: impl Into<String>) -> &mut Self {
        self.hostname = Some(h.into());
        self
    }

    /// The user and group the process runs as, inside the container.
    pub fn user(&mut self, uid: u32, gid: u32) -> &mut Self {
        self.uid = uid;
        self.gid = gid;
        self
    }

    /// Supplementary groups of the process.
    pub fn additional_gids(&mut self, gids: &[u32]) -> &mut Self {
        self.additional_gids = gids.to_vec();
        self
    }

    /// What the container gets of the namespace `kind`.
    pub fn namespace(&mut self, kind: Namespace, mode: NsMode) -> &mut Self {
        match mode {
            NsMode::Host => {
                self.namespaces.remove(&kind);
            }
            m => {
                self.namespaces.insert(kind, m);
            }
        }
        self
    }

    /// The id maps of a user namespace. Without them, a new user namespace maps the caller's
    /// own uid and gid to root (the only ids in it).
    pub fn id_maps(&mut self, uid_map: &[IdRange], gid_map: &[IdRange]) -> &mut Self {
        self.uid_map = uid_map.to_vec();
        self.gid_map = gid_map.to_vec();
        self
    }

    /// Resource limits (checked when built).
    pub fn limits(&mut self, l: Limits) -> &mut Self {
        self.limits = l;
        self
    }

    /// Adds a mount, after the default ones (a later mount over the same destination hides
    /// the earlier one).
    pub fn mount(&mut self, m: Mount) -> &mut Self {
        self.mounts.push(m);
        self
    }

    /// Gives the process a terminal (a pty; its master is [`crate::Container::take_console`]).
    pub fn terminal(&mut self, on: bool) -> &mut Self {
        self.terminal = on;
        self
    }

    /// Turns the default seccomp filter on or off (off by default): [`default_seccomp`].
    pub fn seccomp(&mut self, on: bool) -> &mut Self {
        self.seccomp = on;
        self
    }

    /// A read-only root filesystem (the default) or a writable one.
    pub fn readonly_root(&mut self, on: bool) -> &mut Self {
        self.readonly_root = on;
        self
    }

    /// Adds an annotation (`annotations`).
    pub fn annotation(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.annotations.insert(key.into(), value.into());
        self
    }

    /// The spec as `config.json` would hold it, with the root filesystem's path as given.
    pub fn to_json(&self) -> Value {
        // SAFETY: plain getters.
        let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let mut s = if euid != 0 {
            crate::spec::rootless_spec(euid, egid)
        } else {
            crate::default_spec()
        };
        s["root"] = json!({ "path": self.rootfs, "readonly": self.readonly_root });
        let p = &mut s["process"];
        p["terminal"] = json!(self.terminal);
        p["args"] = json!(self.args);
        let mut env =
            vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string()];
        if self.terminal {
            env.push("TERM=xterm".into());
        }
        for (k, v) in &self.env {
            env.retain(|e| e.split('=').next() != Some(k.as_str()));
            env.push(format!("{k}={v}"));
        }
        p["env"] = json!(env);
        p["cwd"] = json!(self.cwd);
        p["user"] = json!({ "uid": self.uid, "gid": self.gid });
        if !self.additional_gids.is_empty() {
            p["user"]["additionalGids"] = json!(self.additional_gids);
        }
        match &self.hostname {
            Some(h) => s["hostname"] = json!(h),
            // The default hostname is only for a UTS namespace of its own: a joined one keeps
            // its hostname (setting it would rename every container in that namespace).
            None if self.namespaces.get(&Namespace::Uts) != Some(&NsMode::New) => {
                if let Some(o) = s.as_object_mut() {
                    o.remove("hostname");
                }
            }
            None => {}
        }
        let nss: Vec<Value> = self
            .namespaces
            .iter()
            .map(|(k, m)| match m {
                NsMode::Join(p) => json!({ "type": k.oci_name(), "path": p }),
                _ => json!({ "type": k.oci_name() }),
            })
            .collect();
        s["linux"]["namespaces"] = json!(nss);
        let range =
            |r: &IdRange| json!({"containerID": r.container, "hostID": r.host, "size": r.size});
        if self.namespaces.get(&Namespace::User) == Some(&NsMode::New) {
            if !self.uid_map.is_empty() || !self.gid_map.is_empty() {
                s["linux"]["uidMappings"] =
                    json!(self.uid_map.iter().map(range).collect::<Vec<_>>());
                s["linux"]["gidMappings"] =
                    json!(self.gid_map.iter().map(range).collect::<Vec<_>>());
            } else {
                s["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": euid, "size": 1}]);
                s["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": egid, "size": 1}]);
                if let Some(m) = s["mounts"].as_array_mut() {
                    for mount in m.iter_mut() {
                        if mount["destination"] == "/dev/pts" {
                            if let Some(o) = mount["options"].as_array_mut() {
                                o.retain(|x| x != "gid=5");
                            }
                        }
                    }
                }
            }
        } else if let Some(o) = s["linux"].as_object_mut() {
            o.remove("uidMappings");
            o.remove("gidMappings");
        }
        if !self.namespaces.contains_key(&Namespace::Cgroup) {
            // Without a cgroup namespace, the host's cgroup tree is not the container's.
            if let Some(m) = s["mounts"].as_array_mut() {
                m.retain(|m| m["destination"] != "/sys/fs/cgroup");
            }
        }
        if !self.namespaces.contains_key(&Namespace::Network) {
            // sysfs cannot be mounted fresh without a network namespace of its own: bind it.
            if let Some(m) = s["mounts"].as_array_mut() {
                for mount in m.iter_mut() {
                    if mount["destination"] == "/sys" {
                        *mount = json!({"destination": "/sys", "type": "none", "source": "/sys",
                                        "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
                    }
                }
            }
        }
        if let Some(m) = s["mounts"].as_array_mut() {
            for mount in &self.mounts {
                let mut v = json!({
                    "destination": mount.destination,
                    "type": mount.kind,
                    "source": mount.source,
                });
                if !mount.options.is_empty() {
                    v["options"] = json!(mount.options);
                }
                m.push(v);
            }
        }
        let res = self.limits.to_json();
        if res.as_object().is_some_and(|o| !o.is_empty()) {
            if !s["linux"]["resources"].is_object() {
                s["linux"]["resources"] = json!({});
            }
            if let (Some(dst), Some(src)) =
                (s["linux"]["resources"].as_object_mut(), res.as_object())
            {
                for (k, v) in src {
                    dst.insert(k.clone(), v.clone());
                }
            }
        }
        if self.seccomp {
            s["linux"]["seccomp"] = default_seccomp();
        }
        if !self.annotations.is_empty() {
            s["annotations"] = json!(self.annotations);
        }
        s
    }

    /// The checked bundle: the root filesystem must be a directory; the spec is parsed and
    /// checked as a `config.json` is. Its bundle directory (the state's `bundle`) is the root
    /// filesystem's parent.
    pub fn build(&self) -> Result<Bundle> {
        self.limits.check()?;
        if self.args.is_empty() {
            return Err(Error::Config {
                field: "process.args".into(),
                reason: "empty: give the program to run".into(),
            });
        }
        for (k, _) in &self.env {
            if k.is_empty() || k.contains('=') || k.contains('\0') {
                return Err(Error::Config {
                    field: "process.env".into(),
                    reason: format!("{k:?} is not a variable name"),
                });
            }
        }
        let root = std::fs::canonicalize(&self.rootfs).map_err(|e| Error::Config {
            field: "root.path".into(),
            reason: format!("{}: {e}", self.rootfs.display()),
        })?;
        if !root.is_dir() {
            return Err(Error::Config {
                field: "root.path".into(),
                reason: format!("{}: not a directory", root.display()),
            });
        }
        let dir = root
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| root.clone());
        let mut spec = self.to_json();
        spec["root"]["path"] = json!(root);
        let text = serde_json::to_string(&spec).map_err(|e| Error::Config {
            field: "spec".into(),
            reason: e.to_string(),
        })?;
        Bundle::from_text(dir, &text)
    }
}

/// A process to run in a running container ([`crate::Container::exec_with`]): the
/// container's own process settings (user, capabilities, `noNewPrivileges`, rlimits, env) with
/// these arguments, and what is set here on top.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecSpec {
    /// The program and its arguments (not empty).
    pub args: Vec<String>,
    /// Variables set on top of the container's environment.
    pub env: Vec<(String, String)>,
    /// The working directory (default: the container's).
    pub cwd: Option<String>,
    /// User and group (default: the container's).
    pub user: Option<(u32, u32)>,
    /// A terminal of its own (the pty master is [`crate::ExecProcess::take_console`]).
    pub terminal: bool,
}

impl ExecSpec {
    /// The process: `base` (the container's `process`) with this spec's fields.
    pub fn process(&self, base: &oci_spec::runtime::Process) -> Result<oci_spec::runtime::Process> {
        if self.args.is_empty() {
            return Err(Error::Config {
                field: "process.args".into(),
                reason: "empty: give the program to run".into(),
            });
        }
        let mut p = base.clone();
        p.set_args(Some(self.args.clone()));
        p.set_terminal(Some(self.terminal));
        let mut env = p.env().clone().unwrap_or_default();
        for (k, v) in &self.env {
            if k.is_empty() || k.contains('=') || k.contains('\0') {
                return Err(Error::Config {
                    field: "process.env".into(),
                    reason: format!("{k:?} is not a variable name"),
                });
            }
            env.retain(|e| e.split('=').next() != Some(k.as_str()));
            env.push(format!("{k}={v}"));
        }
        p.set_env(Some(env));
        if let Some(d) = &self.cwd {
            p.set_cwd(d.into());
        }
        if let Some((uid, gid)) = self.user {
            let mut u = p.user().clone();
            u.set_uid(uid);
            u.set_gid(gid);
            p.set_user(u);
        }
        Ok(p)
    }
}

/// The default seccomp filter of [`SpecBuilder::seccomp`]: everything is allowed except the
/// calls a container has no business making, which fail with `EPERM` (Docker's default
/// profile refuses the same ones): loading kernels and modules, rebooting, clocks, swap,
/// accounting and quotas, keyrings, `ptrace` and cross-process memory access, `bpf`,
/// `perf_event_open`, `userfaultfd`, handles by file id, the mount and namespace calls.
pub fn default_seccomp() -> Value {
    const DENIED: &[&str] = &[
        "acct",
        "add_key",
        "bpf",
        "clock_adjtime",
        "clock_settime",
        "clock_settime64",
        "create_module",
        "delete_module",
        "finit_module",
        "fsconfig",
        "fsmount",
        "fsopen",
        "fspick",
        "get_kernel_syms",
        "init_module",
        "ioperm",
        "iopl",
        "kcmp",
        "kexec_file_load",
        "kexec_load",
        "keyctl",
        "lookup_dcookie",
        "mount",
        "mount_setattr",
        "move_mount",
        "name_to_handle_at",
        "nfsservctl",
        "open_by_handle_at",
        "open_tree",
        "perf_event_open",
        "pivot_root",
        "process_vm_readv",
        "process_vm_writev",
        "ptrace",
        "query_module",
        "quotactl",
        "quotactl_fd",
        "reboot",
        "request_key",
        "setns",
        "settimeofday",
        "stime",
        "swapoff",
        "swapon",
        "syslog",
        "_sysctl",
        "umount",
        "umount2",
        "unshare",
        "uselib",
        "userfaultfd",
        "ustat",
        "vm86",
        "vm86old",
    ];
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
        "syscalls": [{"names": DENIED, "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EPERM}]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_suffixes_and_bad_ones_name_the_value() {
        assert_eq!(parse_size("memory", "4096").unwrap(), 4096);
        assert_eq!(parse_size("memory", "64M").unwrap(), 64 << 20);
        assert_eq!(parse_size("memory", "64mb").unwrap(), 64 << 20);
        assert_eq!(parse_size("memory", "1.5g").unwrap(), 3 << 29);
        assert_eq!(parse_size("memory", "2KiB").unwrap(), 2048);
        for bad in ["", "M", "-1M", "0", "12q", "1e400"] {
            let e = parse_size("memory", bad).unwrap_err().to_string();
            assert!(
                e.contains("memory") && e.contains(&format!("{bad:?}")),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn limits_are_checked_and_converted() {
        let l = Limits {
            memory: Some(64 << 20),
            pids: Some(64),
            cpus: Some(0.5),
            ..Default::default()
        };
        let r = l.to_resources().unwrap();
        assert_eq!(r.memory_limit, Some(64 << 20));
        assert_eq!(r.pids_limit, Some(64));
        assert_eq!((r.cpu_quota, r.cpu_period), (Some(50_000), Some(100_000)));
        for (l, field) in [
            (
                Limits {
                    memory: Some(-5),
                    ..Default::default()
                },
                "memory.limit",
            ),
            (
                Limits {
                    pids: Some(0),
                    ..Default::default()
                },
                "pids.limit",
            ),
            (
                Limits {
                    cpus: Some(f64::NAN),
                    ..Default::default()
                },
                "cpu.quota",
            ),
            (
                Limits {
                    cpu_shares: Some(1),
                    ..Default::default()
                },
                "cpu.shares",
            ),
        ] {
            let e = l.check().unwrap_err().to_string();
            assert!(e.contains(field), "{e}");
        }
    }

    #[test]
    fn namespaces_parse_by_oci_and_short_names() {
        assert_eq!("net".parse::<Namespace>().unwrap(), Namespace::Network);
        assert_eq!("mnt".parse::<Namespace>().unwrap(), Namespace::Mount);
        for n in Namespace::ALL {
            assert_eq!(n.oci_name().parse::<Namespace>().unwrap(), n);
        }
        assert!("nett"
            .parse::<Namespace>()
            .unwrap_err()
            .to_string()
            .contains("\"nett\""));
    }

    #[test]
    fn built_spec_carries_every_field() {
        let t = tempfile::tempdir().unwrap();
        let mut b = SpecBuilder::new(t.path());
        b.args(["/bin/echo", "hi"])
            .env("A", "1")
            .env("PATH", "/bin")
            .cwd("/tmp")
            .hostname("h1")
            .user(1000, 1001)
            .namespace(Namespace::Network, NsMode::Host)
            .limits(Limits {
                memory: Some(1 << 26),
                ..Default::default()
            })
            .mount(Mount::bind("/etc", "/mnt", true))
            .seccomp(true)
            .readonly_root(false)
            .annotation("k", "v");
        let bundle = b.build().unwrap();
        let s = &bundle.spec;
        let p = s.process().as_ref().unwrap();
        assert_eq!(p.args().as_ref().unwrap(), &["/bin/echo", "hi"]);
        let env = p.env().as_ref().unwrap();
        assert!(env.contains(&"A=1".to_string()) && env.contains(&"PATH=/bin".to_string()));
        assert_eq!(env.iter().filter(|e| e.starts_with("PATH=")).count(), 1);
        assert_eq!(p.cwd().to_str(), Some("/tmp"));
        assert_eq!((p.user().uid(), p.user().gid()), (1000, 1001));
        assert_eq!(s.hostname().as_deref(), Some("h1"));
        let l = s.linux().as_ref().unwrap();
        let kinds: Vec<String> = l
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .map(|n| crate::names::serde_name(&n.typ()))
            .collect();
        assert!(!kinds.contains(&"network".to_string()), "{kinds:?}");
        assert!(kinds.contains(&"pid".to_string()));
        assert_eq!(
            l.resources()
                .as_ref()
                .unwrap()
                .memory()
                .as_ref()
                .unwrap()
                .limit(),
            Some(1 << 26)
        );
        assert!(l.seccomp().is_some());
        assert_eq!(s.root().as_ref().unwrap().readonly(), Some(false));
        assert!(s
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .any(|m| m.destination().to_str() == Some("/mnt")));
        assert_eq!(
            bundle.dir,
            t.path().canonicalize().unwrap().parent().unwrap()
        );
    }

    #[test]
    fn a_joined_uts_namespace_keeps_its_hostname() {
        let t = tempfile::tempdir().unwrap();
        let mut b = SpecBuilder::new(t.path());
        assert!(b.to_json()["hostname"].is_string());
        b.namespace(Namespace::Uts, NsMode::Join("/proc/1/ns/uts".into()));
        assert!(b.to_json().get("hostname").is_none());
        b.hostname("h");
        assert_eq!(b.to_json()["hostname"], "h");
    }

    #[test]
    fn bad_fields_are_refused_by_name() {
        let e = SpecBuilder::new("/no/such/rootfs")
            .build()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("root.path") && e.contains("/no/such/rootfs"),
            "{e}"
        );
        let t = tempfile::tempdir().unwrap();
        let e = SpecBuilder::new(t.path())
            .args(Vec::<String>::new())
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("process.args"), "{e}");
        let e = SpecBuilder::new(t.path())
            .env("A=B", "x")
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("process.env"), "{e}");
        let e = SpecBuilder::new(t.path())
            .limits(Limits {
                pids: Some(-3),
                ..Default::default()
            })
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("pids.limit"), "{e}");
    }
}

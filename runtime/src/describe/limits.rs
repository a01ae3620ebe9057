//! Resource limits of a [`super::Description`], and sizes as people write them.

use std::path::PathBuf;

use oci_spec::runtime::{
    LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResources,
    LinuxResourcesBuilder, LinuxThrottleDevice, LinuxThrottleDeviceBuilder,
};

use super::built;
use crate::{Error, Result};

/// Resource limits, for [`super::Description::limits`] and [`crate::Container::update`].
/// `None` (or an empty list) leaves a limit as it is (unlimited for a new container).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Memory limit in bytes (`linux.resources.memory.limit`; positive).
    pub memory: Option<i64>,
    /// Memory plus swap limit in bytes (`linux.resources.memory.swap`; -1: unlimited).
    pub memory_swap: Option<i64>,
    /// Maximum number of processes (`linux.resources.pids.limit`; -1: unlimited).
    pub pids: Option<i64>,
    /// CPU time as a number of CPUs (0.5: half of one), over a 100 ms period
    /// (`linux.resources.cpu.quota` / `period`).
    pub cpus: Option<f64>,
    /// Relative CPU weight (`linux.resources.cpu.shares`, 2 to 262144).
    pub cpu_shares: Option<u64>,
    /// Relative block IO weight (`linux.resources.blockIO.weight`, 10 to 1000).
    pub blkio_weight: Option<u16>,
    /// Read bytes per second, per device (`blockIO.throttleReadBpsDevice`).
    pub device_read_bps: Vec<DeviceRate>,
    /// Write bytes per second, per device (`blockIO.throttleWriteBpsDevice`).
    pub device_write_bps: Vec<DeviceRate>,
    /// Read operations per second, per device (`blockIO.throttleReadIOPSDevice`).
    pub device_read_iops: Vec<DeviceRate>,
    /// Write operations per second, per device (`blockIO.throttleWriteIOPSDevice`).
    pub device_write_iops: Vec<DeviceRate>,
    /// Relative block IO weight per device, 10..=1000 (`blockIO.weightDevice`; `rate`
    /// is the weight).
    pub blkio_weight_device: Vec<DeviceRate>,
    /// The CFS period in microseconds (`linux.resources.cpu.period`, 1000..=1000000; not
    /// with [`Limits::cpus`], which sets its own).
    pub cpu_period: Option<u64>,
    /// The CFS quota in microseconds per period (`linux.resources.cpu.quota`, >= 1000, or
    /// -1; not with [`Limits::cpus`]).
    pub cpu_quota: Option<i64>,
    /// The CPUs the container may run on (`linux.resources.cpu.cpus`, e.g. `0-1,3`).
    pub cpuset_cpus: Option<String>,
    /// The memory nodes the container may use (`linux.resources.cpu.mems`).
    pub cpuset_mems: Option<String>,
    /// A soft memory limit in bytes (`linux.resources.memory.reservation`).
    pub memory_reservation: Option<i64>,
    /// The swappiness of the container's memory, 0..=100 (`memory.swappiness`).
    pub memory_swappiness: Option<u64>,
    /// Do not OOM-kill the container's processes (`memory.disableOOMKiller`; cgroup v1 only).
    pub oom_kill_disable: Option<bool>,
    /// Resource limits of the process (`process.rlimits`), set by name over the baseline's
    /// (the Docker baseline's: [`default_ulimits`]).
    pub ulimits: Vec<Ulimit>,
    /// The process's OOM score adjustment, -1000..=1000 (`process.oomScoreAdj`).
    pub oom_score_adj: Option<i32>,
    /// The size of `/dev/shm` in bytes (default 64 MiB).
    pub shm_size: Option<i64>,
}

/// One resource limit of the process (docker's `--ulimit nofile=1024:2048`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Ulimit {
    /// The name as docker writes it (`nofile`, `nproc`, `core`, `memlock`...), without
    /// `RLIMIT_`, lower case.
    pub name: String,
    /// The soft limit (`u64::MAX`: unlimited).
    pub soft: u64,
    /// The hard limit (`u64::MAX`: unlimited).
    pub hard: u64,
}

/// The names `--ulimit` takes, with their `RLIMIT_` resources.
pub const ULIMIT_NAMES: [(&str, libc::__rlimit_resource_t); 16] = [
    ("core", libc::RLIMIT_CORE),
    ("cpu", libc::RLIMIT_CPU),
    ("data", libc::RLIMIT_DATA),
    ("fsize", libc::RLIMIT_FSIZE),
    ("locks", libc::RLIMIT_LOCKS),
    ("memlock", libc::RLIMIT_MEMLOCK),
    ("msgqueue", libc::RLIMIT_MSGQUEUE),
    ("nice", libc::RLIMIT_NICE),
    ("nofile", libc::RLIMIT_NOFILE),
    ("nproc", libc::RLIMIT_NPROC),
    ("rss", libc::RLIMIT_RSS),
    ("rtprio", libc::RLIMIT_RTPRIO),
    ("rttime", libc::RLIMIT_RTTIME),
    ("sigpending", libc::RLIMIT_SIGPENDING),
    ("stack", libc::RLIMIT_STACK),
    ("as", libc::RLIMIT_AS),
];

/// docker's default open files limit (soft and hard) of a container.
pub const DOCKER_NOFILE: u64 = 1 << 20;

impl Ulimit {
    /// Parses docker's `NAME=SOFT[:HARD]` (`-1`: unlimited; HARD defaults to SOFT).
    pub fn parse(s: &str) -> Result<Ulimit> {
        let bad = |reason: String| Error::Config {
            field: "ulimit".into(),
            reason,
        };
        let Some((name, v)) = s.split_once('=') else {
            return Err(bad(format!("invalid ulimit argument: {s}")));
        };
        if !ULIMIT_NAMES.iter().any(|(n, _)| *n == name) {
            return Err(bad(format!("invalid ulimit type: {name}")));
        }
        let num = |x: &str| -> Result<u64> {
            match x.parse::<i64>() {
                Ok(-1) => Ok(u64::MAX),
                Ok(n) if n >= 0 => Ok(n as u64),
                _ => Err(bad(format!("invalid ulimit argument: {s}"))),
            }
        };
        let (soft, hard) = match v.split_once(':') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => (num(v)?, num(v)?),
        };
        if soft > hard {
            return Err(bad(format!(
                "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
            )));
        }
        Ok(Ulimit {
            name: name.into(),
            soft,
            hard,
        })
    }

    /// The `RLIMIT_` resource of [`Ulimit::name`].
    pub fn resource(&self) -> Option<libc::__rlimit_resource_t> {
        ULIMIT_NAMES
            .iter()
            .find(|(n, _)| *n == self.name)
            .map(|(_, r)| *r)
    }

    /// The OCI type (`RLIMIT_NOFILE`).
    pub fn oci_type(&self) -> String {
        format!("RLIMIT_{}", self.name.to_ascii_uppercase())
    }
}

/// The Docker baseline's ulimits: open files 1048576 (soft and hard) as docker gives,
/// capped at the caller's own hard limit when it may not raise it (no `CAP_SYS_RESOURCE`):
/// a process cannot give its child a hard limit above its own without that capability.
pub fn default_ulimits() -> Vec<Ulimit> {
    let n = DOCKER_NOFILE.min(raisable_to(libc::RLIMIT_NOFILE));
    vec![Ulimit {
        name: "nofile".into(),
        soft: n,
        hard: n,
    }]
}

/// The highest hard limit of `res` this process may give a child: its own hard limit, or
/// without bound (`nr_open` for open files) with `CAP_SYS_RESOURCE`.
pub fn raisable_to(res: libc::__rlimit_resource_t) -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given.
    let own = if unsafe { libc::getrlimit(res, &mut r) } == 0 {
        r.rlim_max
    } else {
        0
    };
    if has_cap_sys_resource() {
        if res == libc::RLIMIT_NOFILE {
            return std::fs::read_to_string("/proc/sys/fs/nr_open")
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(own);
        }
        return u64::MAX;
    }
    own
}

/// The calling thread has `CAP_SYS_RESOURCE` in its effective set.
fn has_cap_sys_resource() -> bool {
    const CAP_SYS_RESOURCE: u32 = 24;
    std::fs::read_to_string("/proc/thread-self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .is_some_and(|c| c & (1 << CAP_SYS_RESOURCE) != 0)
}

/// A rate limit on one block device (docker's `--device-read-bps /dev/sda:1mb`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeviceRate {
    /// The block device node on the host.
    pub path: PathBuf,
    /// Bytes or operations per second.
    pub rate: u64,
}

/// The CFS period [`Limits::cpus`] is expressed over, in microseconds.
pub const CPU_PERIOD_US: u64 = 100_000;

impl Limits {
    /// Checks every value: errors name the limit. The values are checked as
    /// `linux.resources` is ([`crate::validate::resources`]), after what only this form can
    /// get wrong: a number of CPUs that is not a positive number, a memory limit that is
    /// not positive, a swap or process limit or CPU weight of 0 (which a `config.json` reads as
    /// "unset").
    pub fn check(&self) -> Result<()> {
        self.to_linux_resources().map(|_| ())
    }

    /// The CFS quota (µs per [`CPU_PERIOD_US`]) of [`Limits::cpus`].
    pub fn cpu_quota(&self) -> Option<i64> {
        self.cpus
            .map(|c| ((c * CPU_PERIOD_US as f64).round() as i64).max(1000))
    }

    /// No limit is set.
    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }

    /// A cgroup limit (`linux.resources`) is set.
    pub fn has_resources(&self) -> bool {
        let process = Limits {
            ulimits: self.ulimits.clone(),
            oom_score_adj: self.oom_score_adj,
            shm_size: self.shm_size,
            ..Limits::default()
        };
        *self != process
    }

    /// `self` with the ulimits of `base` it does not name (a description's defaults, such
    /// as the Docker baseline's open files limit, kept under limits set as a whole).
    pub fn keeping_ulimits_of(mut self, base: &Limits) -> Limits {
        for u in &base.ulimits {
            if !self.ulimits.iter().any(|x| x.name == u.name) {
                self.ulimits.push(u.clone());
            }
        }
        self
    }

    /// Sets `u` over the ulimit of the same name.
    pub fn set_ulimit(&mut self, u: Ulimit) {
        self.ulimits.retain(|x| x.name != u.name);
        self.ulimits.push(u);
    }

    /// As `linux.resources` (only the limits set here), checked.
    pub fn to_linux_resources(&self) -> Result<LinuxResources> {
        let bad = |field: &str, reason: String| Error::Config {
            field: format!("linux.resources.{field}"),
            reason,
        };
        if let Some(c) = self.cpus {
            if !(c.is_finite() && c > 0.0 && c <= 1_000_000.0) {
                return Err(bad(
                    "cpu.quota",
                    format!("cpus {c}: must be a positive number"),
                ));
            }
        }
        if let Some(m) = self.memory.filter(|m| *m <= 0) {
            return Err(bad("memory.limit", format!("{m}: must be positive")));
        }
        if self.memory_swap == Some(0) {
            return Err(bad("memory.swap", "0: must be positive (or -1)".into()));
        }
        if self.cpu_shares == Some(0) {
            return Err(bad("cpu.shares", "0: must be in 2..=262144".into()));
        }
        if self.pids == Some(0) {
            return Err(bad("pids.limit", "0: must be positive (or -1)".into()));
        }
        if self.cpus.is_some() && (self.cpu_period.is_some() || self.cpu_quota.is_some()) {
            return Err(bad(
                "cpu.quota",
                "Conflicting options: Nano CPUs and CPU Period/Quota cannot both be set".into(),
            ));
        }
        let mut r = LinuxResourcesBuilder::default();
        if self.memory.is_some()
            || self.memory_swap.is_some()
            || self.memory_reservation.is_some()
            || self.memory_swappiness.is_some()
            || self.oom_kill_disable.is_some()
        {
            let mut m = LinuxMemoryBuilder::default();
            if let Some(v) = self.memory {
                m = m.limit(v);
            }
            if let Some(v) = self.memory_swap {
                m = m.swap(v);
            }
            if let Some(v) = self.memory_reservation {
                m = m.reservation(v);
            }
            if let Some(v) = self.memory_swappiness {
                m = m.swappiness(v);
            }
            if let Some(v) = self.oom_kill_disable {
                m = m.disable_oom_killer(v);
            }
            r = r.memory(m.build().map_err(built("linux.resources.memory"))?);
        }
        if let Some(p) = self.pids {
            r = r.pids(
                LinuxPidsBuilder::default()
                    .limit(p)
                    .build()
                    .map_err(built("linux.resources.pids"))?,
            );
        }
        if self.cpus.is_some()
            || self.cpu_shares.is_some()
            || self.cpu_period.is_some()
            || self.cpu_quota.is_some()
            || self.cpuset_cpus.is_some()
            || self.cpuset_mems.is_some()
        {
            let mut c = LinuxCpuBuilder::default();
            if let Some(q) = self.cpu_quota() {
                c = c.quota(q).period(CPU_PERIOD_US);
            }
            if let Some(p) = self.cpu_period {
                c = c.period(p);
            }
            if let Some(q) = self.cpu_quota {
                c = c.quota(q);
            }
            if let Some(s) = self.cpu_shares {
                c = c.shares(s);
            }
            if let Some(s) = &self.cpuset_cpus {
                c = c.cpus(s.clone());
            }
            if let Some(s) = &self.cpuset_mems {
                c = c.mems(s.clone());
            }
            r = r.cpu(c.build().map_err(built("linux.resources.cpu"))?);
        }
        let rates = [
            &self.device_read_bps,
            &self.device_write_bps,
            &self.device_read_iops,
            &self.device_write_iops,
        ];
        if self.blkio_weight.is_some()
            || rates.iter().any(|v| !v.is_empty())
            || !self.blkio_weight_device.is_empty()
        {
            let mut b = LinuxBlockIoBuilder::default();
            if let Some(w) = self.blkio_weight {
                b = b.weight(w);
            }
            if !self.blkio_weight_device.is_empty() {
                let mut v = Vec::new();
                for (i, t) in throttle(&self.blkio_weight_device, "weightDevice")?
                    .into_iter()
                    .enumerate()
                {
                    let w = u16::try_from(t.rate())
                        .ok()
                        .filter(|w| (10..=1000).contains(w))
                        .ok_or_else(|| {
                            bad(
                                &format!("blockIO.weightDevice[{i}]"),
                                format!("{}: Range of blkio weight is from 10 to 1000", t.rate()),
                            )
                        })?;
                    v.push(
                        oci_spec::runtime::LinuxWeightDeviceBuilder::default()
                            .major(t.major())
                            .minor(t.minor())
                            .weight(w)
                            .build()
                            .map_err(built("linux.resources.blockIO.weightDevice"))?,
                    );
                }
                b = b.weight_device(v);
            }
            let rb = throttle(&self.device_read_bps, "throttleReadBpsDevice")?;
            if !rb.is_empty() {
                b = b.throttle_read_bps_device(rb);
            }
            let wb = throttle(&self.device_write_bps, "throttleWriteBpsDevice")?;
            if !wb.is_empty() {
                b = b.throttle_write_bps_device(wb);
            }
            let ri = throttle(&self.device_read_iops, "throttleReadIOPSDevice")?;
            if !ri.is_empty() {
                b = b.throttle_read_iops_device(ri);
            }
            let wi = throttle(&self.device_write_iops, "throttleWriteIOPSDevice")?;
            if !wi.is_empty() {
                b = b.throttle_write_iops_device(wi);
            }
            r = r.block_io(b.build().map_err(built("linux.resources.blockIO"))?);
        }
        let res = r.build().map_err(built("linux.resources"))?;
        crate::validate::resources(&res)?;
        Ok(res)
    }

    /// As the cgroup crate's resources, for an update (only the limits set here).
    pub fn to_resources(&self) -> Result<cgroup::Resources> {
        crate::resources::limits(&self.to_linux_resources()?)
    }
}

/// The throttle entries of `rates` (`name`: the blockIO field, for errors): each path must
/// be a block device.
fn throttle(rates: &[DeviceRate], name: &str) -> Result<Vec<LinuxThrottleDevice>> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut out = Vec::new();
    for (i, d) in rates.iter().enumerate() {
        let field = format!("linux.resources.blockIO.{name}[{i}]");
        let m = std::fs::metadata(&d.path).map_err(|e| Error::Config {
            field: field.clone(),
            reason: format!("{}: {e}", d.path.display()),
        })?;
        if !m.file_type().is_block_device() {
            return Err(Error::Config {
                field,
                reason: format!("{}: not a block device", d.path.display()),
            });
        }
        let rdev = m.rdev();
        out.push(
            LinuxThrottleDeviceBuilder::default()
                .major(libc::major(rdev) as i64)
                .minor(libc::minor(rdev) as i64)
                .rate(d.rate)
                .build()
                .map_err(|e| Error::Config {
                    field: field.clone(),
                    reason: e.to_string(),
                })?,
        );
    }
    Ok(out)
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

/// The smallest memory limit (and reservation) docker allows: 6 MiB.
pub const MIN_MEMORY: i64 = 6 << 20;

/// What the host has, for [`Limits::check_host`]: the CPUs this process may run on, the
/// CPUs and memory nodes a container's cpuset may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFacts {
    /// The CPUs this process may run on (docker's `NumCPU`).
    pub cpus: usize,
    /// The CPUs a cpuset may name (`cpuset.cpus` of the cgroup root, else the online ones).
    pub cpuset_cpus: String,
    /// The memory nodes a cpuset may name.
    pub cpuset_mems: String,
    /// The kernel has a block IO weight (CFQ's or BFQ's `blkio.weight`, cgroup v2's `io`
    /// controller).
    pub blkio_weight: bool,
}

impl HostFacts {
    /// This host's.
    pub fn detect() -> HostFacts {
        // SAFETY: an all-zero cpu_set_t is valid; sched_getaffinity fills it.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a valid cpu_set_t of the size given.
        let n = if unsafe {
            libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set)
        } == 0
        {
            // SAFETY: `set` was filled by sched_getaffinity.
            unsafe { libc::CPU_COUNT(&set) as usize }
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        };
        let first = |paths: &[&str]| {
            paths
                .iter()
                .filter_map(|p| std::fs::read_to_string(p).ok())
                .map(|s| s.trim().to_string())
                .find(|s| !s.is_empty())
                .unwrap_or_default()
        };
        HostFacts {
            cpus: n.max(1),
            cpuset_cpus: first(&[
                "/sys/fs/cgroup/cpuset/cpuset.cpus",
                "/sys/fs/cgroup/cpuset.cpus.effective",
                "/sys/devices/system/cpu/online",
            ]),
            cpuset_mems: first(&[
                "/sys/fs/cgroup/cpuset/cpuset.mems",
                "/sys/fs/cgroup/cpuset.mems.effective",
                "/sys/devices/system/node/online",
            ]),
            blkio_weight: ["blkio.weight", "blkio.bfq.weight"].iter().any(|f| {
                std::path::Path::new("/sys/fs/cgroup/blkio")
                    .join(f)
                    .exists()
            }) || std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
                .is_ok_and(|c| c.split_whitespace().any(|x| x == "io")),
        }
    }
}

/// The numbers of a cpuset list (`0-3,7`), or `None` when it is not one.
pub fn parse_cpuset(s: &str) -> Option<std::collections::BTreeSet<u32>> {
    let mut out = std::collections::BTreeSet::new();
    if s.trim().is_empty() {
        return Some(out);
    }
    for part in s.trim().split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
                if a > b || b - a > 65536 {
                    return None;
                }
                out.extend(a..=b);
            }
            None => {
                out.insert(part.parse().ok()?);
            }
        }
    }
    Some(out)
}

impl Limits {
    /// Checks the limits against this host before anything is made, with docker's
    /// wording: the number of CPUs, the cpuset, the smallest memory limit, swap above
    /// memory, the ranges of weights, swappiness and the OOM score, the ulimits this
    /// process may give, the block devices of the rate limits. Then [`Limits::check`].
    pub fn check_host(&self) -> Result<()> {
        self.check_against(&HostFacts::detect())
    }

    /// The kernel has what the limits need, else docker's words for what it lacks (a
    /// block IO weight without CFQ or BFQ). Apart from [`Limits::check_host`]: a spec may
    /// be made on one kernel and run on another, and the cgroup write names what is
    /// missing too.
    pub fn check_support(&self, h: &HostFacts) -> Result<()> {
        let bad = |field: &str, reason: String| Error::Config {
            field: field.into(),
            reason,
        };
        if self.blkio_weight.is_some() && !h.blkio_weight {
            return Err(bad(
                "blkio_weight",
                "Your kernel does not support Block I/O weight or the cgroup is not mounted".into(),
            ));
        }
        if !self.blkio_weight_device.is_empty() && !h.blkio_weight {
            return Err(bad(
                "blkio_weight_device",
                "Your kernel does not support Block I/O weight_device or the cgroup is not mounted"
                    .into(),
            ));
        }
        Ok(())
    }

    /// [`Limits::check_host`] against the facts `h`.
    pub fn check_against(&self, h: &HostFacts) -> Result<()> {
        let bad = |field: &str, reason: String| Error::Config {
            field: field.into(),
            reason,
        };
        if let Some(c) = self.cpus {
            let max = h.cpus as f64;
            if !(c.is_finite() && (0.01..=max).contains(&c)) {
                return Err(bad(
                    "cpus",
                    format!(
                        "Range of CPUs is from 0.01 to {}.00, as there are only {} CPUs available",
                        h.cpus, h.cpus
                    ),
                ));
            }
        }
        if let Some(p) = self.cpu_period {
            if !(1000..=1_000_000).contains(&p) {
                return Err(bad(
                    "cpu_period",
                    "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)".into(),
                ));
            }
        }
        if let Some(q) = self.cpu_quota {
            if q != -1 && q < 1000 {
                return Err(bad(
                    "cpu_quota",
                    "CPU cfs quota can not be less than 1ms (i.e. 1000)".into(),
                ));
            }
        }
        if let Some(s) = self.cpu_shares {
            if !(2..=262_144).contains(&s) {
                return Err(bad(
                    "cpu_shares",
                    format!("Invalid value: {s}, valid cpu shares range is 2-262144"),
                ));
            }
        }
        for (field, what, want, have) in [
            ("cpuset_cpus", "CPUs", &self.cpuset_cpus, &h.cpuset_cpus),
            (
                "cpuset_mems",
                "memory nodes",
                &self.cpuset_mems,
                &h.cpuset_mems,
            ),
        ] {
            let Some(want) = want else { continue };
            let kind = if what == "CPUs" { "cpus" } else { "mems" };
            let Some(w) = parse_cpuset(want).filter(|w| !w.is_empty()) else {
                return Err(bad(
                    field,
                    format!("Invalid value {want} for cpuset {kind}"),
                ));
            };
            if let Some(avail) = parse_cpuset(have).filter(|a| !a.is_empty()) {
                if !w.is_subset(&avail) {
                    return Err(bad(
                        field,
                        format!(
                            "Requested {what} are not available - requested {want}, available: {have}"
                        ),
                    ));
                }
            }
        }
        if let Some(m) = self.memory {
            if m < MIN_MEMORY {
                return Err(bad("memory", "Minimum memory limit allowed is 6MB".into()));
            }
        }
        if let Some(s) = self.memory_swap {
            if s != -1 {
                match self.memory {
                    None => {
                        return Err(bad(
                            "memory_swap",
                            "You should always set the Memory limit when using Memoryswap limit, see usage".into(),
                        ))
                    }
                    Some(m) if s < m => {
                        return Err(bad(
                            "memory_swap",
                            "Minimum memoryswap limit should be larger than memory limit, see usage"
                                .into(),
                        ))
                    }
                    _ => {}
                }
            }
        }
        if let Some(r) = self.memory_reservation {
            if r < MIN_MEMORY {
                return Err(bad(
                    "memory_reservation",
                    "Minimum memory reservation allowed is 6MB".into(),
                ));
            }
            if self.memory.is_some_and(|m| m < r) {
                return Err(bad(
                    "memory_reservation",
                    "Minimum memory limit can not be less than memory reservation limit, see usage"
                        .into(),
                ));
            }
        }
        if let Some(s) = self.memory_swappiness {
            if s > 100 {
                return Err(bad(
                    "memory_swappiness",
                    format!("Invalid value: {s}, valid memory swappiness range is 0-100"),
                ));
            }
        }
        if let Some(w) = self.blkio_weight {
            if !(10..=1000).contains(&w) {
                return Err(bad(
                    "blkio_weight",
                    "Range of blkio weight is from 10 to 1000".into(),
                ));
            }
        }
        if let Some(o) = self.oom_score_adj {
            if !(-1000..=1000).contains(&o) {
                return Err(bad(
                    "oom_score_adj",
                    format!("Invalid value {o}, range for oom score adj is [-1000, 1000]"),
                ));
            }
            let own: i32 = std::fs::read_to_string("/proc/self/oom_score_adj")
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0);
            if o < own && !has_cap_sys_resource() {
                return Err(bad(
                    "oom_score_adj",
                    format!("Invalid value {o}: below this process's OOM score adjustment ({own}), which only a process with CAP_SYS_RESOURCE may lower"),
                ));
            }
        }
        if let Some(s) = self.shm_size {
            if s <= 0 {
                return Err(bad(
                    "shm_size",
                    format!("invalid size {s}: SHM size must be greater than 0"),
                ));
            }
        }
        for u in &self.ulimits {
            let Some(res) = u.resource() else {
                return Err(bad("ulimit", format!("invalid ulimit type: {}", u.name)));
            };
            if u.soft > u.hard {
                return Err(bad(
                    "ulimit",
                    format!(
                        "ulimit soft limit must be less than or equal to hard limit: {} > {}",
                        u.soft, u.hard
                    ),
                ));
            }
            let max = raisable_to(res);
            if u.hard > max {
                return Err(bad(
                    "ulimit",
                    format!(
                        "{}: hard limit {} is above {max}, the most this process may give (raising it needs CAP_SYS_RESOURCE)",
                        u.name,
                        show_rlim(u.hard)
                    ),
                ));
            }
        }
        self.check()
    }
}

fn show_rlim(v: u64) -> String {
    if v == u64::MAX {
        "unlimited".into()
    } else {
        v.to_string()
    }
}

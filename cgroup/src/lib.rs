//! Linux control groups for corral.
//!
//! This crate owns everything about cgroups: finding the host's hierarchies
//! (v1, pure v2 or hybrid) and the caller's place in them, creating and
//! removing one container's cgroup across all of them, translating a plain
//! [`Resources`] description into control-file writes (with the v1 → v2
//! conversions documented on [`Resources`]), moving processes in, and
//! freezing, signalling and reading statistics.
//!
//! Promises: a requested limit is either written or reported as an
//! [`Error::Unsupported`] naming the setting — it is never silently
//! dropped (the one exception, swap limits without swap accounting, is
//! recorded in [`Cgroup::warnings`]). Errors name the file, the value
//! written and the errno. [`Cgroup::remove`] only deletes directories that
//! [`Cgroup::create`] made.
//!
//! Never: it knows nothing of OCI, never panics on bad input, never
//! mounts anything, and never writes to cgroups other than the container's
//! own, with two exceptions along the path to it: v2 controllers are
//! enabled in ancestors' `cgroup.subtree_control` (not undone), and empty
//! v1 `cpuset.cpus`/`cpuset.mems` of ancestors are filled from their parent.
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod cgroup;
mod controller;
mod error;
mod fs;
mod hierarchy;
mod stats;

mod blkio;
mod cpu;
mod cpuset;
mod devices;
pub mod devices_bpf;
mod freezer;
mod hugetlb;
mod memory;
mod net;
mod pids;

pub use cgroup::{Cgroup, CgroupDir};
pub use error::{Error, Result};
pub use hierarchy::{Hierarchy, Mount, Version};
pub use stats::Stats;

/// Where a container's cgroup goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupPath {
    /// Joined to each hierarchy's mount root.
    Absolute(String),
    /// Joined to the caller's own cgroup (v1) or its parent (v2); see
    /// [`Cgroup::new`].
    Relative(String),
}

/// Resource limits to apply, all optional. Plain data; the runtime fills it
/// from the OCI spec.
///
/// On cgroup v2 these are converted (the formulas runc uses):
///
/// * `cpu_shares` → `cpu.weight = 1 + ((shares - 2) * 9999) / 262142`
///   (shares clamped to 2..=262144).
/// * `cpu_quota`/`cpu_period` → `cpu.max = "<quota> <period>"`, quota `max`
///   when `<= 0`, period 100000 when unset (an unset quota keeps the
///   current one). Realtime settings have no v2 equivalent: unsupported.
/// * `memory_limit` → `memory.max`, `memory_reservation` → `memory.low`
///   (`-1` → `max`); `memory_swap` (v1 semantics, memory+swap) →
///   `memory.swap.max = swap - limit` (`-1` → `max`; needs a limit).
///   `memory_swappiness` and `memory_disable_oom_killer = true`: unsupported.
/// * `pids_limit` → `pids.max` (`<= 0` → `max`; same on v1).
/// * `blkio_weight` → `io.bfq.weight` unconverted when that file exists
///   (its range is 1..=1000 like v1), else
///   `io.weight = 1 + (w - 10) * 9999 / 990`; per-device weights likewise
///   (`"maj:min w"`); leaf weights: unsupported.
/// * throttles → `io.max` lines `"maj:min rbps=N"`, `wbps`, `riops`, `wiops`.
/// * `hugetlb` → `hugetlb.<size>.max`.
/// * `net_cls_classid` and `net_prio_ifpriomap` (v1 `net_cls.classid`, `net_prio.ifpriomap`):
///   cgroup v2 has no such controllers, so they are [`Error::Unsupported`] on a pure v2 host,
///   and on a v1 or hybrid host whose kernel has them but mounts no hierarchy with them the
///   error says so and how to mount them.
/// * `devices` → an eBPF device filter attached to the cgroup (`devices_bpf`); rules are
///   decided last to first, as v1 applies them in order; what no rule matches is denied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub cpu_shares: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    pub cpu_realtime_runtime: Option<i64>,
    pub cpu_realtime_period: Option<u64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub memory_limit: Option<i64>,
    pub memory_reservation: Option<i64>,
    /// v1 semantics: memory + swap total, `-1` unlimited.
    pub memory_swap: Option<i64>,
    pub memory_swappiness: Option<u64>,
    pub memory_disable_oom_killer: Option<bool>,
    /// `<= 0` means unlimited (`max`).
    pub pids_limit: Option<i64>,
    pub blkio_weight: Option<u16>,
    pub blkio_leaf_weight: Option<u16>,
    pub blkio_weight_device: Vec<WeightDevice>,
    pub blkio_throttle_read_bps: Vec<ThrottleDevice>,
    pub blkio_throttle_write_bps: Vec<ThrottleDevice>,
    pub blkio_throttle_read_iops: Vec<ThrottleDevice>,
    pub blkio_throttle_write_iops: Vec<ThrottleDevice>,
    pub hugetlb: Vec<HugeTlbLimit>,
    /// Applied in order on top of deny-all (v1: `devices.deny a`, then each rule to
    /// `devices.allow`/`devices.deny`; cgroup2: what no rule matches is denied). Empty: no
    /// device rules at all (the cgroup keeps what it has).
    pub devices: Vec<DeviceRule>,
    /// v1 `net_cls.classid`: the class id given to the packets of the cgroup's sockets
    /// (`0xAAAABBBB` is tc class `AAAA:BBBB`), for tc filters and netfilter's `cgroup` match.
    pub net_cls_classid: Option<u32>,
    /// v1 `net_prio.ifpriomap`: the priority (`SO_PRIORITY`) of the cgroup's packets per
    /// interface, one write each. Interfaces are the host's (the initial network namespace's).
    pub net_prio_ifpriomap: Vec<InterfacePriority>,
}

/// The priority of a cgroup's packets on one network interface (`net_prio.ifpriomap`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfacePriority {
    /// The interface name in the host's (initial) network namespace.
    pub name: String,
    pub priority: u32,
}

/// A per-device block I/O weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightDevice {
    pub major: i64,
    pub minor: i64,
    pub weight: Option<u16>,
    pub leaf_weight: Option<u16>,
}

/// A per-device block I/O throttle (bytes or operations per second).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleDevice {
    pub major: i64,
    pub minor: i64,
    pub rate: u64,
}

/// A huge page limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HugeTlbLimit {
    /// As in the file names: `"2MB"`, `"1GB"`, `"64KB"`.
    pub page_size: String,
    /// Bytes.
    pub limit: u64,
}

/// One device cgroup rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRule {
    pub allow: bool,
    /// `'a'` (all), `'b'` (block) or `'c'` (char).
    pub kind: char,
    /// `None` = any (`*`).
    pub major: Option<i64>,
    /// `None` = any (`*`).
    pub minor: Option<i64>,
    /// Some of `"rwm"`.
    pub access: String,
}

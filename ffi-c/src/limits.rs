//! `corral_limits`: resource limits, for a spec and for an update. The struct grows at its
//! end only, and is read as the kernel's copy_struct_from_user reads a struct
//! ([`crate::args::sized`]): a program built against an older header passes a shorter one.

use std::ffi::c_char;
use std::path::PathBuf;

use runtime::describe::{DeviceRate, Ulimit};
use runtime::Limits;

use crate::args::*;
use crate::error::*;

/// A rate limit on one block device, for corral_limits (docker's `--device-read-bps
/// /dev/sda:1mb` and friends).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct corral_device_rate {
    /// The block device node on the host ("/dev/sda"; a whole disk, not a partition).
    pub path: *const c_char,
    /// Bytes or operations per second.
    pub rate: u64,
}

/// A resource limit of the process, for corral_limits (docker's `--ulimit nofile=1024:2048`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct corral_ulimit {
    /// The name as docker writes it: "nofile", "nproc", "core", "memlock", "stack"...
    pub name: *const c_char,
    /// The soft limit (UINT64_MAX: unlimited).
    pub soft: u64,
    /// The hard limit (UINT64_MAX: unlimited).
    pub hard: u64,
}

/// Resource limits. Initialise with corral_limits_init() (which sets `size`), then set the
/// fields you want; 0 leaves a limit unset.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct corral_limits {
    /// sizeof(struct corral_limits), set by corral_limits_init().
    pub size: u32,
    /// Zero.
    pub _reserved: u32,
    /// Memory limit in bytes (0: none).
    pub memory: i64,
    /// Memory + swap limit in bytes (0: none, -1: unlimited).
    pub memory_swap: i64,
    /// Most processes (0: none, -1: unlimited).
    pub pids: i64,
    /// CPU time as a number of CPUs, e.g. 0.5 (0: none).
    pub cpus: f64,
    /// Relative CPU weight, 2..262144 (0: none).
    pub cpu_shares: u64,
    /// Relative block IO weight, 10..1000 (0: none). This field and those after it came
    /// later: a program built before them passes a shorter struct, which leaves them unset.
    pub blkio_weight: u32,
    /// Zero.
    pub _reserved2: u32,
    /// Read bytes per second, per device (`device_read_bps_len` entries; copied).
    pub device_read_bps: *const corral_device_rate,
    /// The number of entries in `device_read_bps`.
    pub device_read_bps_len: usize,
    /// Write bytes per second, per device.
    pub device_write_bps: *const corral_device_rate,
    /// The number of entries in `device_write_bps`.
    pub device_write_bps_len: usize,
    /// Read operations per second, per device.
    pub device_read_iops: *const corral_device_rate,
    /// The number of entries in `device_read_iops`.
    pub device_read_iops_len: usize,
    /// Write operations per second, per device.
    pub device_write_iops: *const corral_device_rate,
    /// The number of entries in `device_write_iops`.
    pub device_write_iops_len: usize,
    /// The CFS period in microseconds, 1000..1000000 (0: none). This field and those
    /// after it came later: a shorter struct leaves them unset.
    pub cpu_period: u64,
    /// The CFS quota in microseconds per period, >= 1000 or -1 (0: none; not with `cpus`).
    pub cpu_quota: i64,
    /// The CPUs the container may run on, "0-1,3" (NULL: any).
    pub cpuset_cpus: *const c_char,
    /// The memory nodes the container may use (NULL: any).
    pub cpuset_mems: *const c_char,
    /// A soft memory limit in bytes, at least 6 MiB (0: none).
    pub memory_reservation: i64,
    /// Memory swappiness, 0..100 (-1, as corral_limits_init() sets: none).
    pub memory_swappiness: i64,
    /// Non-zero: the OOM killer does not kill the container's processes (cgroup v1).
    pub oom_kill_disable: u32,
    /// The process's OOM score adjustment, -1000..1000 (0: none).
    pub oom_score_adj: i32,
    /// The size of /dev/shm in bytes (0: 64 MiB).
    pub shm_size: i64,
    /// Resource limits of the process, by name over the defaults (`ulimits_len` entries;
    /// copied). An image container's default open files limit is 1048576, capped at the
    /// caller's own hard limit when it lacks CAP_SYS_RESOURCE.
    pub ulimits: *const corral_ulimit,
    /// The number of entries in `ulimits`.
    pub ulimits_len: usize,
    /// Relative block IO weight per device (`rate` is the weight, 10..1000).
    pub blkio_weight_device: *const corral_device_rate,
    /// The number of entries in `blkio_weight_device`.
    pub blkio_weight_device_len: usize,
}

pub(crate) const LIMITS_DEFAULT: corral_limits = corral_limits {
    size: std::mem::size_of::<corral_limits>() as u32,
    _reserved: 0,
    memory: 0,
    memory_swap: 0,
    pids: 0,
    cpus: 0.0,
    cpu_shares: 0,
    blkio_weight: 0,
    _reserved2: 0,
    device_read_bps: std::ptr::null(),
    device_read_bps_len: 0,
    device_write_bps: std::ptr::null(),
    device_write_bps_len: 0,
    device_read_iops: std::ptr::null(),
    device_read_iops_len: 0,
    device_write_iops: std::ptr::null(),
    device_write_iops_len: 0,
    cpu_period: 0,
    cpu_quota: 0,
    cpuset_cpus: std::ptr::null(),
    cpuset_mems: std::ptr::null(),
    memory_reservation: 0,
    memory_swappiness: -1,
    oom_kill_disable: 0,
    oom_score_adj: 0,
    shm_size: 0,
    ulimits: std::ptr::null(),
    ulimits_len: 0,
    blkio_weight_device: std::ptr::null(),
    blkio_weight_device_len: 0,
};

/// Initialises `limits`: sets `size` and leaves every limit unset.
#[no_mangle]
pub extern "C" fn corral_limits_init(limits: *mut corral_limits) {
    call_void("corral_limits_init", || {
        // SAFETY: a non-NULL `limits` points to a writable struct of this type (the
        // header says so).
        if let Some(l) = unsafe { limits.as_mut() } {
            *l = LIMITS_DEFAULT;
        }
    });
}

/// `n` device rates at `p` (`what` names them in errors).
fn rates(what: &str, p: *const corral_device_rate, n: usize) -> Result<Vec<DeviceRate>, Fail> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if p.is_null() {
        return Err(invalid(what, "NULL with a non-zero count"));
    }
    if n > 4096 {
        return Err(invalid(what, "too many entries"));
    }
    // SAFETY: the caller passes `n` valid entries (the header says so).
    let items = unsafe { std::slice::from_raw_parts(p, n) };
    items
        .iter()
        .enumerate()
        .map(|(i, d)| {
            Ok(DeviceRate {
                path: PathBuf::from(str_arg(&format!("{what}[{i}].path"), d.path)?),
                rate: d.rate,
            })
        })
        .collect()
}

/// A C string that may be NULL.
fn opt_str(what: &str, p: *const c_char) -> Result<Option<String>, Fail> {
    if p.is_null() {
        return Ok(None);
    }
    Ok(Some(str_arg(what, p)?.to_string()))
}

/// `n` ulimits at `p`.
fn ulimits(p: *const corral_ulimit, n: usize) -> Result<Vec<Ulimit>, Fail> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if p.is_null() {
        return Err(invalid("limits.ulimits", "NULL with a non-zero count"));
    }
    if n > 64 {
        return Err(invalid("limits.ulimits", "too many entries"));
    }
    // SAFETY: the caller passes `n` valid entries (the header says so).
    let items = unsafe { std::slice::from_raw_parts(p, n) };
    let mut out: Vec<Ulimit> = Vec::new();
    for (i, u) in items.iter().enumerate() {
        let what = format!("limits.ulimits[{i}]");
        let name = str_arg(&format!("{what}.name"), u.name)?.to_string();
        let soft = if u.soft == u64::MAX {
            -1
        } else {
            u.soft as i64
        };
        let hard = if u.hard == u64::MAX {
            -1
        } else {
            u.hard as i64
        };
        let parsed = Ulimit::parse(&format!("{name}={soft}:{hard}")).map_err(|e| match e {
            runtime::Error::Config { reason, .. } => invalid(&what, &reason),
            e => invalid(&what, &e.to_string()),
        })?;
        out.retain(|x| x.name != parsed.name);
        out.push(parsed);
    }
    Ok(out)
}

/// The limits `p` sets, checked (as `linux.resources` of a `config.json` is).
pub(crate) fn to_limits(p: *const corral_limits) -> Result<Limits, Fail> {
    if p.is_null() {
        return Err(invalid("limits", "NULL"));
    }
    let l = sized("limits", p, LIMITS_DEFAULT)?;
    let set_i = |v: i64| (v != 0).then_some(v);
    let blkio_weight = match l.blkio_weight {
        0 => None,
        w => Some(u16::try_from(w).map_err(|_| invalid("limits.blkio_weight", "want 10..1000"))?),
    };
    let lim = Limits {
        memory: set_i(l.memory),
        memory_swap: set_i(l.memory_swap),
        pids: set_i(l.pids),
        cpus: (l.cpus != 0.0).then_some(l.cpus),
        cpu_shares: (l.cpu_shares != 0).then_some(l.cpu_shares),
        blkio_weight,
        device_read_bps: rates(
            "limits.device_read_bps",
            l.device_read_bps,
            l.device_read_bps_len,
        )?,
        device_write_bps: rates(
            "limits.device_write_bps",
            l.device_write_bps,
            l.device_write_bps_len,
        )?,
        device_read_iops: rates(
            "limits.device_read_iops",
            l.device_read_iops,
            l.device_read_iops_len,
        )?,
        device_write_iops: rates(
            "limits.device_write_iops",
            l.device_write_iops,
            l.device_write_iops_len,
        )?,
        blkio_weight_device: rates(
            "limits.blkio_weight_device",
            l.blkio_weight_device,
            l.blkio_weight_device_len,
        )?,
        cpu_period: (l.cpu_period != 0).then_some(l.cpu_period),
        cpu_quota: set_i(l.cpu_quota),
        cpuset_cpus: opt_str("limits.cpuset_cpus", l.cpuset_cpus)?,
        cpuset_mems: opt_str("limits.cpuset_mems", l.cpuset_mems)?,
        memory_reservation: set_i(l.memory_reservation),
        memory_swappiness: match l.memory_swappiness {
            -1 => None,
            v => Some(u64::try_from(v).map_err(|_| {
                invalid(
                    "limits.memory_swappiness",
                    &format!("Invalid value: {v}, valid memory swappiness range is 0-100"),
                )
            })?),
        },
        oom_kill_disable: (l.oom_kill_disable != 0).then_some(true),
        oom_score_adj: (l.oom_score_adj != 0).then_some(l.oom_score_adj),
        shm_size: set_i(l.shm_size),
        ulimits: ulimits(l.ulimits, l.ulimits_len)?,
    };
    // The checks of a config.json first (their errors name the spec's field), then the
    // host's (docker's wording).
    lim.check()?;
    lim.check_host()?;
    Ok(lim)
}

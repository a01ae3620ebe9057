//! `corral_limits`: resource limits, for a spec and for an update. The struct grows at its
//! end only, and is read as the kernel's copy_struct_from_user reads a struct
//! ([`crate::args::sized`]): a program built against an older header passes a shorter one.

use std::ffi::c_char;
use std::path::PathBuf;

use runtime::describe::DeviceRate;
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
    };
    lim.check()?;
    Ok(lim)
}

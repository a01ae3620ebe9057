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
        let mut r = LinuxResourcesBuilder::default();
        if self.memory.is_some() || self.memory_swap.is_some() {
            let mut m = LinuxMemoryBuilder::default();
            if let Some(v) = self.memory {
                m = m.limit(v);
            }
            if let Some(v) = self.memory_swap {
                m = m.swap(v);
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
        if self.cpus.is_some() || self.cpu_shares.is_some() {
            let mut c = LinuxCpuBuilder::default();
            if let Some(q) = self.cpu_quota() {
                c = c.quota(q).period(CPU_PERIOD_US);
            }
            if let Some(s) = self.cpu_shares {
                c = c.shares(s);
            }
            r = r.cpu(c.build().map_err(built("linux.resources.cpu"))?);
        }
        let rates = [
            &self.device_read_bps,
            &self.device_write_bps,
            &self.device_read_iops,
            &self.device_write_iops,
        ];
        if self.blkio_weight.is_some() || rates.iter().any(|v| !v.is_empty()) {
            let mut b = LinuxBlockIoBuilder::default();
            if let Some(w) = self.blkio_weight {
                b = b.weight(w);
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

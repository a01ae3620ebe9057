//! `run`/`create` of an image: the limit, mount and volume flags ([`ResourceArgs`]) into the
//! [`Description`], checked against the host ([`runtime::describe::Limits::check_host`])
//! before anything is made. Errors use docker's wording.

use std::path::PathBuf;

use runtime::describe::{parse_size, Description, DeviceRate, HostFacts, Mount, Ulimit};

use crate::args_limits::ResourceArgs;
use crate::error::{msg, CliError, R};

/// docker's error for a flag's value that does not parse.
fn invalid(v: &str, flag: &str, why: impl std::fmt::Display) -> CliError {
    msg(format!(
        "invalid argument \"{v}\" for \"{flag}\" flag: {why}"
    ))
}

/// A size as docker's `RAMInBytes` reads it (`64m`, `1g`, bytes); `-1` when `minus_one`.
fn size(v: &str, flag: &str, minus_one: bool) -> R<i64> {
    if minus_one && v.trim() == "-1" {
        return Ok(-1);
    }
    parse_size(flag, v).map_err(|_| invalid(v, flag, format!("invalid size: '{v}'")))
}

/// An integer flag.
fn int<T: std::str::FromStr>(v: &str, flag: &str) -> R<T> {
    v.trim().parse().map_err(|_| {
        invalid(
            v,
            flag,
            format!("strconv.ParseInt: parsing \"{v}\": invalid syntax"),
        )
    })
}

/// `DEVICE:RATE` of the block IO flags; `bytes`: the rate is a size (`1mb`).
fn device_rates(list: &[String], flag: &str, bytes: bool) -> R<Vec<DeviceRate>> {
    list.iter()
        .map(|v| {
            let Some((dev, rate)) = v.rsplit_once(':') else {
                return Err(invalid(v, flag, format!("bad format: {v}")));
            };
            if !dev.starts_with("/dev/") {
                return Err(invalid(
                    v,
                    flag,
                    format!("bad format for device path: {v}"),
                ));
            }
            let rate: u64 = if bytes {
                parse_size(flag, rate).ok().map(|r| r as u64)
            } else {
                rate.parse().ok()
            }
            .filter(|r| *r > 0)
            .ok_or_else(|| {
                invalid(
                    v,
                    flag,
                    format!(
                        "invalid rate for device: {v}. The correct format is <device-path>:<number>[<unit>]. Number must be a positive integer. Unit is optional and can be kb, mb, or gb"
                    ),
                )
            })?;
            Ok(DeviceRate {
                path: PathBuf::from(dev),
                rate,
            })
        })
        .collect()
}

/// Sets the limits, mounts and volumes of `a` in `d`, then checks the limits against this
/// host (docker's wording: `Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs
/// available`). Nothing is made here: a refused value leaves nothing behind.
pub fn apply(a: &ResourceArgs, d: &mut Description) -> R<()> {
    let l = &mut d.limits;
    if let Some(v) = &a.cpus {
        let c: f64 = v.trim().parse().map_err(|_| {
            invalid(
                v,
                "--cpus",
                format!("failed to parse {v} as a rational number"),
            )
        })?;
        // docker: 0 means unset.
        l.cpus = (c != 0.0).then_some(c);
    }
    if let Some(v) = &a.cpu_shares {
        let s: i64 = int(v, "-c, --cpu-shares")?;
        // docker: 0 is the default; below 2 it is raised to 2 by the kernel, as docker lets it.
        l.cpu_shares = match s {
            0 => None,
            s if s < 0 => {
                return Err(invalid(
                    v,
                    "-c, --cpu-shares",
                    "shares must be a positive number",
                ))
            }
            s => Some(s as u64),
        };
    }
    if let Some(v) = &a.cpu_period {
        let p: i64 = int(v, "--cpu-period")?;
        if p != 0 {
            l.cpu_period = Some(u64::try_from(p).map_err(|_| {
                msg("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
            })?);
        }
    }
    if let Some(v) = &a.cpu_quota {
        let q: i64 = int(v, "--cpu-quota")?;
        if q != 0 {
            l.cpu_quota = Some(q);
        }
    }
    l.cpuset_cpus = a.cpuset_cpus.clone();
    l.cpuset_mems = a.cpuset_mems.clone();
    if let Some(v) = &a.memory {
        let m = size(v, "-m, --memory", false)?;
        l.memory = Some(m);
    }
    if let Some(v) = &a.memory_swap {
        l.memory_swap = Some(size(v, "--memory-swap", true)?);
    }
    if let Some(v) = &a.memory_reservation {
        l.memory_reservation = Some(size(v, "--memory-reservation", false)?);
    }
    if let Some(v) = &a.memory_swappiness {
        let s: i64 = int(v, "--memory-swappiness")?;
        match s {
            -1 => {}
            0..=100 => l.memory_swappiness = Some(s as u64),
            _ => {
                return Err(msg(format!(
                    "Invalid value: {s}, valid memory swappiness range is 0-100"
                )))
            }
        }
    }
    if a.oom_kill_disable {
        l.oom_kill_disable = Some(true);
    }
    if let Some(v) = &a.oom_score_adj {
        l.oom_score_adj = Some(int(v, "--oom-score-adj")?);
    }
    if let Some(v) = &a.pids_limit {
        let p: i64 = int(v, "--pids-limit")?;
        // docker: 0 or a negative number is unlimited.
        l.pids = Some(if p <= 0 { -1 } else { p });
    }
    if let Some(v) = &a.blkio_weight {
        let w: u16 = int(v, "--blkio-weight")?;
        l.blkio_weight = (w != 0).then_some(w);
    }
    l.blkio_weight_device = device_rates(&a.blkio_weight_device, "--blkio-weight-device", false)?;
    l.device_read_bps = device_rates(&a.device_read_bps, "--device-read-bps", true)?;
    l.device_write_bps = device_rates(&a.device_write_bps, "--device-write-bps", true)?;
    l.device_read_iops = device_rates(&a.device_read_iops, "--device-read-iops", false)?;
    l.device_write_iops = device_rates(&a.device_write_iops, "--device-write-iops", false)?;
    for u in &a.ulimit {
        let u = Ulimit::parse(u).map_err(|e| invalid(u, "--ulimit", reason(e)))?;
        l.set_ulimit(u);
    }
    if let Some(v) = &a.shm_size {
        l.shm_size = Some(size(v, "--shm-size", false)?);
    }
    let host = HostFacts::detect();
    l.check_against(&host)
        .and_then(|_| l.check_support(&host))
        .map_err(|e| msg(reason(e)))?;
    if a.read_only {
        d.readonly_root = Some(true);
    }
    for t in &a.tmpfs {
        d.mounts
            .push(Mount::tmpfs_spec(t).map_err(|e| msg(reason(e)))?);
    }
    for m in &a.mount {
        d.mounts
            .push(Mount::parse_mount(m).map_err(|e| msg(reason(e)))?);
    }
    for v in &a.volume {
        d.mounts.push(Mount::volume(v).map_err(|e| msg(reason(e)))?);
    }
    let mut seen = std::collections::BTreeSet::new();
    for m in &d.mounts {
        if !seen.insert(m.destination.trim_end_matches('/').to_string()) {
            return Err(msg(format!("Duplicate mount point: {}", m.destination)));
        }
    }
    Ok(())
}

/// The reason of a runtime configuration error, without its field (docker's messages are
/// whole sentences).
fn reason(e: runtime::Error) -> String {
    match e {
        runtime::Error::Config { reason, .. } => reason,
        e => e.to_string(),
    }
}

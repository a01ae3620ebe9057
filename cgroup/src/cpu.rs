//! The `cpu` controller: shares/weight, CFS quota and realtime budget.

use std::path::Path;

use crate::controller::Controller;
use crate::error::{Error, Result};
use crate::fs::write_setting;
use crate::Resources;

pub(crate) struct Cpu;

/// Default CFS period (µs) used on v2 when only a quota is given.
pub const DEFAULT_PERIOD: u64 = 100_000;

/// v1 `cpu.shares` → v2 `cpu.weight`: `1 + ((shares - 2) * 9999) / 262142`,
/// shares clamped to the v1 range 2..=262144 (so the weight is 1..=10000).
pub fn shares_to_weight(shares: u64) -> u64 {
    let s = shares.clamp(2, 262_144);
    1 + ((s - 2) * 9999) / 262_142
}

impl Controller for Cpu {
    fn v1_name(&self) -> &'static str {
        "cpu"
    }
    fn v2_name(&self) -> Option<&'static str> {
        Some("cpu")
    }
    fn requested(&self, r: &Resources) -> Option<&'static str> {
        if r.cpu_shares.is_some() {
            Some("cpu_shares")
        } else if r.cpu_quota.is_some() {
            Some("cpu_quota")
        } else if r.cpu_period.is_some() {
            Some("cpu_period")
        } else if r.cpu_realtime_runtime.is_some() {
            Some("cpu_realtime_runtime")
        } else if r.cpu_realtime_period.is_some() {
            Some("cpu_realtime_period")
        } else {
            None
        }
    }

    fn clear(&self, r: &mut Resources) {
        r.cpu_shares = None;
        r.cpu_quota = None;
        r.cpu_period = None;
        r.cpu_realtime_runtime = None;
        r.cpu_realtime_period = None;
    }
    fn apply_v1(&self, dir: &Path, r: &Resources, _w: &mut Vec<String>) -> Result<()> {
        if let Some(s) = r.cpu_shares {
            write_setting(dir, "cpu.shares", &s.to_string(), "cpu_shares")?;
        }
        // The period first: the kernel validates the quota against it.
        if let Some(p) = r.cpu_period {
            write_setting(dir, "cpu.cfs_period_us", &p.to_string(), "cpu_period")?;
        }
        if let Some(q) = r.cpu_quota {
            let v = if q > 0 { q } else { -1 };
            write_setting(dir, "cpu.cfs_quota_us", &v.to_string(), "cpu_quota")?;
        }
        if let Some(p) = r.cpu_realtime_period {
            write_setting(
                dir,
                "cpu.rt_period_us",
                &p.to_string(),
                "cpu_realtime_period",
            )?;
        }
        if let Some(rt) = r.cpu_realtime_runtime {
            write_setting(
                dir,
                "cpu.rt_runtime_us",
                &rt.to_string(),
                "cpu_realtime_runtime",
            )?;
        }
        Ok(())
    }

    fn apply_v2(&self, dir: &Path, r: &Resources, _w: &mut Vec<String>) -> Result<()> {
        for (set, name) in [
            (r.cpu_realtime_runtime.is_some(), "cpu_realtime_runtime"),
            (r.cpu_realtime_period.is_some(), "cpu_realtime_period"),
        ] {
            if set {
                return Err(Error::unsupported(
                    name,
                    vec![],
                    "cgroup v2 has no realtime cpu budget",
                ));
            }
        }
        if let Some(s) = r.cpu_shares {
            write_setting(
                dir,
                "cpu.weight",
                &shares_to_weight(s).to_string(),
                "cpu_shares",
            )?;
        }
        if r.cpu_quota.is_some() || r.cpu_period.is_some() {
            let quota = match r.cpu_quota {
                Some(q) if q > 0 => q.to_string(),
                Some(_) => "max".to_string(),
                // Only the period changes: keep the current quota.
                None => crate::fs::read_opt(&dir.join("cpu.max"))?
                    .and_then(|s| s.split_whitespace().next().map(str::to_string))
                    .unwrap_or_else(|| "max".to_string()),
            };
            let period = r.cpu_period.unwrap_or(DEFAULT_PERIOD);
            let setting = if r.cpu_quota.is_some() {
                "cpu_quota"
            } else {
                "cpu_period"
            };
            write_setting(dir, "cpu.max", &format!("{quota} {period}"), setting)?;
        }
        Ok(())
    }
}

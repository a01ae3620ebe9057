//! The `memory` controller.

use std::path::Path;

use crate::controller::Controller;
use crate::error::{Error, Result};
use crate::fs::{read_opt, write_setting};
use crate::Resources;

pub(crate) struct Memory;

fn v2_value(v: i64) -> String {
    if v < 0 {
        "max".to_string()
    } else {
        v.to_string()
    }
}

/// v1 `memory_swap` (memory+swap) → v2 `memory.swap.max` (swap only).
/// `None` means "max".
pub fn swap_to_v2(swap: i64, limit: Option<i64>) -> Result<Option<i64>> {
    if swap == -1 {
        return Ok(None);
    }
    if swap == 0 {
        return Ok(Some(0));
    }
    match limit {
        Some(l) if l > 0 => {
            if swap < l {
                Err(Error::unsupported(
                    "memory_swap",
                    vec![],
                    format!("memory+swap limit {swap} is below the memory limit {l}"),
                ))
            } else {
                Ok(Some(swap - l))
            }
        }
        _ => Err(Error::unsupported(
            "memory_swap",
            vec![],
            "a swap limit on cgroup v2 needs a memory limit",
        )),
    }
}

impl Controller for Memory {
    fn v1_name(&self) -> &'static str {
        "memory"
    }
    fn v2_name(&self) -> Option<&'static str> {
        Some("memory")
    }
    fn requested(&self, r: &Resources) -> Option<&'static str> {
        if r.memory_limit.is_some() {
            Some("memory_limit")
        } else if r.memory_reservation.is_some() {
            Some("memory_reservation")
        } else if r.memory_swap.is_some() {
            Some("memory_swap")
        } else if r.memory_swappiness.is_some() {
            Some("memory_swappiness")
        } else if r.memory_disable_oom_killer.is_some() {
            Some("memory_disable_oom_killer")
        } else {
            None
        }
    }

    fn clear(&self, r: &mut Resources) {
        r.memory_limit = None;
        r.memory_reservation = None;
        r.memory_swap = None;
        r.memory_swappiness = None;
        r.memory_disable_oom_killer = None;
    }
    fn apply_v1(&self, dir: &Path, r: &Resources, warnings: &mut Vec<String>) -> Result<()> {
        let memsw = dir.join("memory.memsw.limit_in_bytes");
        let swap = match r.memory_swap {
            Some(s) if !memsw.exists() => {
                warnings.push(format!(
                    "memory_swap {s} ignored: {} does not exist (no swap accounting)",
                    memsw.display()
                ));
                None
            }
            s => s,
        };
        let set_limit =
            |l: i64| write_setting(dir, "memory.limit_in_bytes", &l.to_string(), "memory_limit");
        let set_swap = |s: i64| {
            write_setting(
                dir,
                "memory.memsw.limit_in_bytes",
                &s.to_string(),
                "memory_swap",
            )
        };
        match (r.memory_limit, swap) {
            (Some(l), Some(s)) => {
                // Keep memsw >= limit at every step: raise memsw first when
                // the new memsw is at least the current limit, else lower
                // the limit first.
                let cur = read_opt(&dir.join("memory.limit_in_bytes"))?
                    .and_then(|c| c.trim().parse::<i64>().ok())
                    .unwrap_or(i64::MAX);
                if s == -1 || s >= cur {
                    set_swap(s)?;
                    set_limit(l)?;
                } else {
                    set_limit(l)?;
                    set_swap(s)?;
                }
            }
            (Some(l), None) => set_limit(l)?,
            (None, Some(s)) => set_swap(s)?,
            (None, None) => {}
        }
        if let Some(v) = r.memory_reservation {
            write_setting(
                dir,
                "memory.soft_limit_in_bytes",
                &v.to_string(),
                "memory_reservation",
            )?;
        }
        if let Some(v) = r.memory_swappiness {
            write_setting(
                dir,
                "memory.swappiness",
                &v.to_string(),
                "memory_swappiness",
            )?;
        }
        if let Some(d) = r.memory_disable_oom_killer {
            let v = if d { "1" } else { "0" };
            write_setting(dir, "memory.oom_control", v, "memory_disable_oom_killer")?;
        }
        Ok(())
    }

    fn apply_v2(&self, dir: &Path, r: &Resources, warnings: &mut Vec<String>) -> Result<()> {
        if r.memory_swappiness.is_some() {
            return Err(Error::unsupported(
                "memory_swappiness",
                vec![],
                "cgroup v2 has no per-cgroup swappiness",
            ));
        }
        if r.memory_disable_oom_killer == Some(true) {
            return Err(Error::unsupported(
                "memory_disable_oom_killer",
                vec![],
                "cgroup v2 cannot disable the oom killer",
            ));
        }
        let swap = match r.memory_swap {
            Some(s) => Some(swap_to_v2(s, r.memory_limit)?),
            None => None,
        };
        if let Some(l) = r.memory_limit {
            write_setting(dir, "memory.max", &v2_value(l), "memory_limit")?;
        }
        if let Some(s) = swap {
            let f = dir.join("memory.swap.max");
            if f.exists() {
                let v = s.map_or_else(|| "max".to_string(), |v| v.to_string());
                write_setting(dir, "memory.swap.max", &v, "memory_swap")?;
            } else {
                warnings.push(format!(
                    "memory_swap ignored: {} does not exist (no swap accounting)",
                    f.display()
                ));
            }
        }
        if let Some(v) = r.memory_reservation {
            write_setting(dir, "memory.low", &v2_value(v), "memory_reservation")?;
        }
        Ok(())
    }
}

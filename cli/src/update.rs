//! `corral update`: the flags (over `-r FILE`) made into `linux.resources`, and the
//! container's limits changed through [`Container::update_resources`], which checks them as
//! create checks a `config.json`.

use std::path::Path;

use oci_spec::runtime::LinuxResources;
use runtime::Container;

use crate::args::UpdateArgs;
use crate::error::{msg, R};

pub fn update(root: &Path, id: &str, a: &UpdateArgs) -> R {
    let r = resources(a)?;
    Container::load(root, id)?.update_resources(&r)?;
    Ok(0)
}

/// `-r FILE` (or stdin for `-`), each flag over it.
fn resources(a: &UpdateArgs) -> R<LinuxResources> {
    let mut r = match &a.resources {
        Some(p) => {
            let text = if p.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())
            } else {
                std::fs::read_to_string(p)
            }
            .map_err(|e| msg(format!("--resources {}: {e}", p.display())))?;
            serde_json::from_str(&text)
                .map_err(|e| msg(format!("--resources {}: {e}", p.display())))?
        }
        None => LinuxResources::default(),
    };
    if a.memory.is_some() || a.memory_swap.is_some() || a.memory_reservation.is_some() {
        let mut m = r.memory().unwrap_or_default();
        let size = |flag: &str, v: &Option<String>| -> R<Option<i64>> {
            v.as_deref()
                .map(|s| match s.trim().parse::<i64>() {
                    // A number of bytes (-1: unlimited) as it is: the validator judges it,
                    // as it judges config.json's.
                    Ok(n) => Ok(n),
                    // docker's units (512m, 1g).
                    Err(_) => Ok(runtime::describe::parse_size(flag, s)?),
                })
                .transpose()
        };
        m.set_limit(size("--memory", &a.memory)?.or(m.limit()));
        m.set_swap(size("--memory-swap", &a.memory_swap)?.or(m.swap()));
        m.set_reservation(size("--memory-reservation", &a.memory_reservation)?.or(m.reservation()));
        r.set_memory(Some(m));
    }
    let cpuset = [&a.cpuset_cpus, &a.cpuset_mems];
    if a.cpu_shares.is_some()
        || a.cpu_quota.is_some()
        || a.cpu_period.is_some()
        || cpuset.iter().any(|c| c.is_some())
    {
        let mut c = r.cpu().clone().unwrap_or_default();
        c.set_shares(a.cpu_shares.or(c.shares()));
        c.set_quota(a.cpu_quota.or(c.quota()));
        c.set_period(a.cpu_period.or(c.period()));
        c.set_cpus(a.cpuset_cpus.clone().or(c.cpus().clone()));
        c.set_mems(a.cpuset_mems.clone().or(c.mems().clone()));
        r.set_cpu(Some(c));
    }
    if let Some(n) = a.pids_limit {
        let mut p = r.pids().unwrap_or_default();
        p.set_limit(n);
        r.set_pids(Some(p));
    }
    if a.blkio_weight.is_some() {
        let mut b = r.block_io().clone().unwrap_or_default();
        b.set_weight(a.blkio_weight);
        r.set_block_io(Some(b));
    }
    Ok(r)
}

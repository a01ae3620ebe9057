//! The `cpuset` controller.

use std::path::Path;

use crate::controller::Controller;
use crate::error::Result;
use crate::fs::{read, write, write_setting};
use crate::Resources;

pub(crate) struct Cpuset;

impl Controller for Cpuset {
    fn v1_name(&self) -> &'static str {
        "cpuset"
    }
    fn v2_name(&self) -> Option<&'static str> {
        Some("cpuset")
    }
    fn requested(&self, r: &Resources) -> Option<&'static str> {
        if r.cpuset_cpus.is_some() {
            Some("cpuset_cpus")
        } else if r.cpuset_mems.is_some() {
            Some("cpuset_mems")
        } else {
            None
        }
    }
    fn clear(&self, r: &mut Resources) {
        r.cpuset_cpus = None;
        r.cpuset_mems = None;
    }
    fn apply_v1(&self, dir: &Path, r: &Resources, _w: &mut Vec<String>) -> Result<()> {
        apply(dir, r)
    }
    fn apply_v2(&self, dir: &Path, r: &Resources, _w: &mut Vec<String>) -> Result<()> {
        apply(dir, r)
    }
}

fn apply(dir: &Path, r: &Resources) -> Result<()> {
    if let Some(c) = &r.cpuset_cpus {
        write_setting(dir, "cpuset.cpus", c, "cpuset_cpus")?;
    }
    if let Some(m) = &r.cpuset_mems {
        write_setting(dir, "cpuset.mems", m, "cpuset_mems")?;
    }
    Ok(())
}

/// A freshly made v1 cpuset has empty `cpuset.cpus`/`cpuset.mems`, and no
/// task can join it. Copy the parent's values into `dir` when empty.
pub(crate) fn init_v1_dir(dir: &Path) -> Result<()> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    for f in ["cpuset.cpus", "cpuset.mems"] {
        let cur = read(&dir.join(f))?;
        if cur.trim().is_empty() {
            let p = read(&parent.join(f))?;
            write(&dir.join(f), p.trim())?;
        }
    }
    Ok(())
}

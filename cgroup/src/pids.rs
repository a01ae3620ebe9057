//! The `pids` controller.

use std::path::Path;

use crate::controller::Controller;
use crate::error::Result;
use crate::fs::write_setting;
use crate::Resources;

pub(crate) struct Pids;

fn value(limit: i64) -> String {
    if limit > 0 {
        limit.to_string()
    } else {
        "max".to_string()
    }
}

impl Controller for Pids {
    fn v1_name(&self) -> &'static str {
        "pids"
    }
    fn v2_name(&self) -> Option<&'static str> {
        Some("pids")
    }
    fn requested(&self, r: &Resources) -> Option<&'static str> {
        r.pids_limit.map(|_| "pids_limit")
    }
    fn clear(&self, r: &mut Resources) {
        r.pids_limit = None;
    }
    fn apply_v1(&self, dir: &Path, r: &Resources, _w: &mut Vec<String>) -> Result<()> {
        self.apply_v2(dir, r, _w)
    }
    fn apply_v2(&self, dir: &Path, r: &Resources, _w: &mut Vec<String>) -> Result<()> {
        if let Some(l) = r.pids_limit {
            write_setting(dir, "pids.max", &value(l), "pids_limit")?;
        }
        Ok(())
    }
}

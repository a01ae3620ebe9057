//! The `hugetlb` controller.

use std::path::Path;

use crate::controller::Controller;
use crate::error::Result;
use crate::fs::write_setting;
use crate::Resources;

pub(crate) struct HugeTlb;

impl Controller for HugeTlb {
    fn v1_name(&self) -> &'static str {
        "hugetlb"
    }
    fn v2_name(&self) -> Option<&'static str> {
        Some("hugetlb")
    }
    fn requested(&self, r: &Resources) -> Option<&'static str> {
        (!r.hugetlb.is_empty()).then_some("hugetlb")
    }
    fn clear(&self, r: &mut Resources) {
        r.hugetlb.clear();
    }
    fn apply_v1(&self, dir: &Path, r: &Resources, _w: &mut Vec<String>) -> Result<()> {
        for h in &r.hugetlb {
            let f = format!("hugetlb.{}.limit_in_bytes", h.page_size);
            write_setting(dir, &f, &h.limit.to_string(), "hugetlb")?;
        }
        Ok(())
    }
    fn apply_v2(&self, dir: &Path, r: &Resources, _w: &mut Vec<String>) -> Result<()> {
        for h in &r.hugetlb {
            let f = format!("hugetlb.{}.max", h.page_size);
            write_setting(dir, &f, &h.limit.to_string(), "hugetlb")?;
        }
        Ok(())
    }
}

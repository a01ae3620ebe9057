//! The `blkio` (v1) / `io` (v2) controller.

use std::path::Path;

use crate::controller::Controller;
use crate::error::{Error, Result};
use crate::fs::{first_existing, write, write_setting};
use crate::{Resources, ThrottleDevice};

pub(crate) struct Blkio;

/// v1 blkio weight (10..=1000) → v2 `io.weight` (1..=10000):
/// `1 + (w - 10) * 9999 / 990`.
pub fn weight_to_io_weight(w: u16) -> u64 {
    let w = u64::from(w.clamp(10, 1000));
    1 + (w - 10) * 9999 / 990
}

fn throttles(r: &Resources) -> [(&[ThrottleDevice], &'static str, &'static str, &'static str); 4] {
    [
        (
            &r.blkio_throttle_read_bps,
            "blkio_throttle_read_bps",
            "blkio.throttle.read_bps_device",
            "rbps",
        ),
        (
            &r.blkio_throttle_write_bps,
            "blkio_throttle_write_bps",
            "blkio.throttle.write_bps_device",
            "wbps",
        ),
        (
            &r.blkio_throttle_read_iops,
            "blkio_throttle_read_iops",
            "blkio.throttle.read_iops_device",
            "riops",
        ),
        (
            &r.blkio_throttle_write_iops,
            "blkio_throttle_write_iops",
            "blkio.throttle.write_iops_device",
            "wiops",
        ),
    ]
}

impl Controller for Blkio {
    fn v1_name(&self) -> &'static str {
        "blkio"
    }
    fn v2_name(&self) -> Option<&'static str> {
        Some("io")
    }
    fn requested(&self, r: &Resources) -> Option<&'static str> {
        if r.blkio_weight.is_some() {
            return Some("blkio_weight");
        }
        if r.blkio_leaf_weight.is_some() {
            return Some("blkio_leaf_weight");
        }
        if !r.blkio_weight_device.is_empty() {
            return Some("blkio_weight_device");
        }
        throttles(r)
            .into_iter()
            .find(|(v, ..)| !v.is_empty())
            .map(|(_, name, ..)| name)
    }

    fn clear(&self, r: &mut Resources) {
        r.blkio_weight = None;
        r.blkio_leaf_weight = None;
        r.blkio_weight_device.clear();
        r.blkio_throttle_read_bps.clear();
        r.blkio_throttle_write_bps.clear();
        r.blkio_throttle_read_iops.clear();
        r.blkio_throttle_write_iops.clear();
    }
    fn apply_v1(&self, dir: &Path, r: &Resources, _w: &mut Vec<String>) -> Result<()> {
        if let Some(w) = r.blkio_weight {
            let f = first_existing(dir, &["blkio.weight", "blkio.bfq.weight"], "blkio_weight")?;
            write(&f, &w.to_string())?;
        }
        if let Some(w) = r.blkio_leaf_weight {
            write_setting(
                dir,
                "blkio.leaf_weight",
                &w.to_string(),
                "blkio_leaf_weight",
            )?;
        }
        for d in &r.blkio_weight_device {
            if let Some(w) = d.weight {
                let f = first_existing(
                    dir,
                    &["blkio.weight_device", "blkio.bfq.weight_device"],
                    "blkio_weight_device",
                )?;
                write(&f, &format!("{}:{} {w}", d.major, d.minor))?;
            }
            if let Some(w) = d.leaf_weight {
                let v = format!("{}:{} {w}", d.major, d.minor);
                write_setting(dir, "blkio.leaf_weight_device", &v, "blkio_weight_device")?;
            }
        }
        for (devs, setting, file, _) in throttles(r) {
            for d in devs {
                let v = format!("{}:{} {}", d.major, d.minor, d.rate);
                write_setting(dir, file, &v, setting)?;
            }
        }
        Ok(())
    }

    fn apply_v2(&self, dir: &Path, r: &Resources, _w: &mut Vec<String>) -> Result<()> {
        let leaf = r.blkio_leaf_weight.is_some()
            || r.blkio_weight_device
                .iter()
                .any(|d| d.leaf_weight.is_some());
        if leaf {
            return Err(Error::unsupported(
                "blkio_leaf_weight",
                vec![],
                "cgroup v2 has no leaf weights",
            ));
        }
        let weight_file = || -> Result<(std::path::PathBuf, bool)> {
            let f = first_existing(dir, &["io.bfq.weight", "io.weight"], "blkio_weight")?;
            let bfq = f.ends_with("io.bfq.weight");
            Ok((f, bfq))
        };
        // io.bfq.weight takes the v1 range (1..=1000) unconverted.
        let conv = |w: u16, bfq: bool| {
            if bfq {
                u64::from(w)
            } else {
                weight_to_io_weight(w)
            }
        };
        if let Some(w) = r.blkio_weight {
            let (f, bfq) = weight_file()?;
            write(&f, &conv(w, bfq).to_string())?;
        }
        for d in &r.blkio_weight_device {
            if let Some(w) = d.weight {
                let (f, bfq) = weight_file()?;
                write(&f, &format!("{}:{} {}", d.major, d.minor, conv(w, bfq)))?;
            }
        }
        for (devs, setting, _, key) in throttles(r) {
            for d in devs {
                let v = format!("{}:{} {key}={}", d.major, d.minor, d.rate);
                write_setting(dir, "io.max", &v, setting)?;
            }
        }
        Ok(())
    }
}

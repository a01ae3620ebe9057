//! The v1 `devices` controller (v2 would need eBPF: not supported).

use std::path::Path;

use crate::controller::Controller;
use crate::error::{Error, Result};
use crate::fs::write_setting;
use crate::{DeviceRule, Resources};

pub(crate) struct Devices;

const V2_REASON: &str =
    "device rules on cgroup v2 need an eBPF program, which this runtime does not implement";

/// `"c 1:3 rwm"`; `None` major/minor become `*`.
pub fn rule_string(d: &DeviceRule) -> String {
    let n = |v: Option<i64>| v.map_or_else(|| "*".to_string(), |v| v.to_string());
    format!("{} {}:{} {}", d.kind, n(d.major), n(d.minor), d.access)
}

impl Controller for Devices {
    fn v1_name(&self) -> &'static str {
        "devices"
    }
    fn v2_name(&self) -> Option<&'static str> {
        None
    }
    fn v2_missing_reason(&self) -> &'static str {
        V2_REASON
    }
    fn requested(&self, r: &Resources) -> Option<&'static str> {
        (!r.devices.is_empty()).then_some("devices")
    }
    fn clear(&self, r: &mut Resources) {
        r.devices.clear();
    }
    fn apply_v1(&self, dir: &Path, r: &Resources, _w: &mut Vec<String>) -> Result<()> {
        for d in &r.devices {
            let file = if d.allow {
                "devices.allow"
            } else {
                "devices.deny"
            };
            write_setting(dir, file, &rule_string(d), "devices")?;
        }
        Ok(())
    }
    fn apply_v2(&self, _dir: &Path, _r: &Resources, _w: &mut Vec<String>) -> Result<()> {
        Err(Error::unsupported("devices", vec![], V2_REASON))
    }
}

//! Device rules: the v1 `devices` controller, or on cgroup2 an eBPF device filter attached
//! to the cgroup (`crate::devices_bpf`). Either way the rules apply in order on top of
//! deny-all.

use std::path::Path;

use crate::controller::Controller;
use crate::error::Result;
use crate::fs::write_setting;
use crate::{DeviceRule, Resources};

pub(crate) struct Devices;

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
    fn v2_builtin(&self) -> bool {
        true
    }
    fn requested(&self, r: &Resources) -> Option<&'static str> {
        (!r.devices.is_empty()).then_some("devices")
    }
    fn clear(&self, r: &mut Resources) {
        r.devices.clear();
    }
    fn apply_v1(&self, dir: &Path, r: &Resources, _w: &mut Vec<String>) -> Result<()> {
        // The rules apply on top of deny-all, as on cgroup2 (a new v1 cgroup starts as its
        // parent, allow-all under the root): a list that forgets its deny-all rule must not
        // open every host device.
        write_setting(dir, "devices.deny", "a", "devices")?;
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
    fn apply_v2(&self, dir: &Path, r: &Resources, _w: &mut Vec<String>) -> Result<()> {
        crate::devices_bpf::apply(dir, &r.devices)
    }
}

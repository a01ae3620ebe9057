//! Device rules: the v1 `devices` controller, or on cgroup2 an eBPF device filter attached
//! to the cgroup (`crate::devices_bpf`). Either way the rules apply in order on top of
//! deny-all.

use std::path::Path;

use crate::controller::Controller;
use crate::error::Result;
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
        // Each file is opened once and takes one rule per write (a rule list of a dozen
        // rules was two dozen more syscalls per container, opened and closed per rule). Each
        // rule ends with a newline, as `echo RULE >devices.allow` writes it: the kernel strips
        // it, and the file a fixture stands in with reads as the rules written, one a line.
        let mut deny = crate::fs::open_setting(dir, "devices.deny", "devices")?;
        crate::fs::write_to(&mut deny, dir, "devices.deny", "a\n")?;
        let mut allow = None;
        for d in &r.devices {
            let rule = format!("{}\n", rule_string(d));
            if d.allow {
                let f = match &mut allow {
                    Some(f) => f,
                    none => none.insert(crate::fs::open_setting(dir, "devices.allow", "devices")?),
                };
                crate::fs::write_to(f, dir, "devices.allow", &rule)?;
            } else {
                crate::fs::write_to(&mut deny, dir, "devices.deny", &rule)?;
            }
        }
        Ok(())
    }
    fn apply_v2(&self, dir: &Path, r: &Resources, _w: &mut Vec<String>) -> Result<()> {
        crate::devices_bpf::apply(dir, &r.devices)
    }
}

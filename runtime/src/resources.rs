//! OCI `linux.resources` to the `cgroup` crate's plain [`cgroup::Resources`].

use cgroup::{
    DeviceRule, HugeTlbLimit, InterfacePriority, Resources, ThrottleDevice, WeightDevice,
};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources, Spec};

use crate::Result;

/// Devices every container may use (runc's list): all mknod, the standard char devices,
/// ptys and tun.
fn default_rules() -> Vec<DeviceRule> {
    let r = |kind, major, minor, access: &str| DeviceRule {
        allow: true,
        kind,
        major,
        minor,
        access: access.into(),
    };
    vec![
        r('c', None, None, "m"),
        r('b', None, None, "m"),
        r('c', Some(1), Some(3), "rwm"),
        r('c', Some(1), Some(5), "rwm"),
        r('c', Some(1), Some(7), "rwm"),
        r('c', Some(1), Some(8), "rwm"),
        r('c', Some(1), Some(9), "rwm"),
        r('c', Some(5), Some(0), "rwm"),
        r('c', Some(5), Some(1), "rwm"),
        r('c', Some(5), Some(2), "rwm"),
        r('c', Some(136), None, "rwm"),
        r('c', Some(10), Some(200), "rwm"),
    ]
}

/// A device rule of the spec (checked by [`crate::validate::resources`]).
fn device_rule(d: &LinuxDeviceCgroup) -> DeviceRule {
    let kind = match d.typ() {
        None | Some(LinuxDeviceType::A) => 'a',
        Some(LinuxDeviceType::B) => 'b',
        // `u` is an unbuffered char device; `p` (a FIFO) is refused by the validator.
        Some(LinuxDeviceType::C | LinuxDeviceType::U | LinuxDeviceType::P) => 'c',
    };
    DeviceRule {
        allow: d.allow(),
        kind,
        major: d.major(),
        minor: d.minor(),
        access: d.access().clone().unwrap_or_else(|| "rwm".into()),
    }
}

/// Deny every device (`a *:* rwm`): the first device rule of every container.
fn deny_all() -> DeviceRule {
    DeviceRule {
        allow: false,
        kind: 'a',
        major: None,
        minor: None,
        access: "rwm".into(),
    }
}

/// Converts the spec's resources. `device_rules` (where the host can enforce them: a v1
/// devices controller, or cgroup2 through an eBPF filter) makes the device rules: deny-all
/// first whatever the config says (a config without a deny-all rule, or with no
/// `linux.resources` at all, must not leave every host device open), then the spec's rules
/// in order, then runc's default allow list (last, as runc appends it: a config's own
/// deny-all rule must not take the standard devices away) and an allow for each
/// `linux.devices` entry.
pub fn from_spec(spec: &Spec, device_rules: bool) -> Result<Resources> {
    let linux = spec.linux().clone().unwrap_or_default();
    let res: LinuxResources = linux.resources().clone().unwrap_or_default();
    let mut r = limits(&res)?;
    if device_rules {
        r.devices.push(deny_all());
        for d in res.devices().iter().flatten() {
            r.devices.push(device_rule(d));
        }
        r.devices.extend(default_rules());
        for d in linux.devices().clone().unwrap_or_default() {
            let kind = match d.typ() {
                LinuxDeviceType::B => 'b',
                _ => 'c',
            };
            r.devices.push(DeviceRule {
                allow: true,
                kind,
                major: Some(d.major()),
                minor: Some(d.minor()),
                access: "rwm".into(),
            });
        }
    }
    Ok(r)
}

/// Converts resource limits (everything but device rules), as `update -r` gives them,
/// after [`crate::validate::resources`].
pub fn limits(res: &LinuxResources) -> Result<Resources> {
    crate::validate::resources(res)?;
    let mut r = Resources::default();
    // 0 is "unset" wherever runc's cgroup drivers write nothing for it (`!= 0` before each
    // write in runc 1.1's fs and fs2 drivers): cpu shares, quota, period and realtime
    // budget, memory limit, reservation and swap, blkio weights. Engines send such zeros:
    // containerd's CRI an update's unset fields, podman and `runc update` flags not given.
    // (A swappiness of 0 and a pids limit of 0 are values; pids 0 means no limit, as -1.)
    let set = |v: Option<i64>| v.filter(|v| *v != 0);
    let set_u = |v: Option<u64>| v.filter(|v| *v != 0);
    if let Some(c) = res.cpu() {
        r.cpu_shares = set_u(c.shares());
        r.cpu_quota = set(c.quota());
        r.cpu_period = set_u(c.period());
        r.cpu_realtime_runtime = set(c.realtime_runtime());
        r.cpu_realtime_period = set_u(c.realtime_period());
        r.cpuset_cpus = c.cpus().clone().filter(|s| !s.is_empty());
        r.cpuset_mems = c.mems().clone().filter(|s| !s.is_empty());
    }
    if let Some(m) = res.memory() {
        // runc's choice: kernel memory limits are gone from current kernels; accepted and
        // ignored with a warning.
        for (name, v) in [("kernel", m.kernel()), ("kernelTCP", m.kernel_tcp())] {
            if v.is_some() {
                tracing::warn!(
                    "linux.resources.memory.{name}: kernel memory limits are deprecated by the kernel and ignored"
                );
            }
        }
        r.memory_limit = set(m.limit());
        r.memory_reservation = set(m.reservation());
        r.memory_swap = set(m.swap());
        r.memory_swappiness = m.swappiness();
        r.memory_disable_oom_killer = m.disable_oom_killer();
    }
    if let Some(p) = res.pids() {
        r.pids_limit = Some(p.limit());
    }
    if let Some(b) = res.block_io() {
        // 0 is "unset" (dockerd always sends a weight, 0 when none was asked; runc writes
        // neither weight nor leafWeight when it is 0).
        let weight = b.weight().filter(|w| *w != 0);
        let leaf_weight = b.leaf_weight().filter(|w| *w != 0);
        r.blkio_weight = weight;
        r.blkio_leaf_weight = leaf_weight;
        r.blkio_weight_device = b
            .weight_device()
            .clone()
            .unwrap_or_default()
            .iter()
            .map(|d| WeightDevice {
                major: d.major(),
                minor: d.minor(),
                weight: d.weight(),
                leaf_weight: d.leaf_weight(),
            })
            .collect();
        let thr = |v: &Option<Vec<oci_spec::runtime::LinuxThrottleDevice>>| -> Vec<ThrottleDevice> {
            v.clone()
                .unwrap_or_default()
                .iter()
                .map(|d| ThrottleDevice {
                    major: d.major(),
                    minor: d.minor(),
                    rate: d.rate(),
                })
                .collect()
        };
        r.blkio_throttle_read_bps = thr(b.throttle_read_bps_device());
        r.blkio_throttle_write_bps = thr(b.throttle_write_bps_device());
        r.blkio_throttle_read_iops = thr(b.throttle_read_iops_device());
        r.blkio_throttle_write_iops = thr(b.throttle_write_iops_device());
    }
    if let Some(n) = res.network() {
        r.net_cls_classid = n.class_id();
        r.net_prio_ifpriomap = n
            .priorities()
            .iter()
            .flatten()
            .map(|p| InterfacePriority {
                name: p.name().clone(),
                priority: p.priority(),
            })
            .collect();
    }
    for h in res.hugepage_limits().iter().flatten() {
        r.hugetlb.push(HugeTlbLimit {
            page_size: h.page_size().clone(),
            limit: h.limit() as u64,
        });
    }
    Ok(r)
}

/// The OCI field a cgroup control file comes from, for error messages.
pub fn field_of(file: &str) -> Option<&'static str> {
    Some(match file {
        "cpu.shares" | "cpu.weight" => "linux.resources.cpu.shares",
        "cpu.cfs_quota_us" | "cpu.max" => "linux.resources.cpu.quota",
        "cpu.cfs_period_us" => "linux.resources.cpu.period",
        "cpu.rt_runtime_us" => "linux.resources.cpu.realtimeRuntime",
        "cpu.rt_period_us" => "linux.resources.cpu.realtimePeriod",
        "cpuset.cpus" => "linux.resources.cpu.cpus",
        "cpuset.mems" => "linux.resources.cpu.mems",
        "memory.limit_in_bytes" | "memory.max" => "linux.resources.memory.limit",
        "memory.soft_limit_in_bytes" | "memory.low" => "linux.resources.memory.reservation",
        "memory.memsw.limit_in_bytes" | "memory.swap.max" => "linux.resources.memory.swap",
        "memory.swappiness" => "linux.resources.memory.swappiness",
        "memory.oom_control" => "linux.resources.memory.disableOOMKiller",
        "pids.max" => "linux.resources.pids.limit",
        "blkio.weight" | "blkio.bfq.weight" | "io.weight" | "io.bfq.weight" => {
            "linux.resources.blockIO.weight"
        }
        "blkio.leaf_weight" => "linux.resources.blockIO.leafWeight",
        "blkio.weight_device" | "blkio.bfq.weight_device" => "linux.resources.blockIO.weightDevice",
        "blkio.throttle.read_bps_device" => "linux.resources.blockIO.throttleReadBpsDevice",
        "blkio.throttle.write_bps_device" => "linux.resources.blockIO.throttleWriteBpsDevice",
        "blkio.throttle.read_iops_device" => "linux.resources.blockIO.throttleReadIOPSDevice",
        "blkio.throttle.write_iops_device" => "linux.resources.blockIO.throttleWriteIOPSDevice",
        "io.max" => "linux.resources.blockIO.throttle*",
        "devices.allow" | "devices.deny" => "linux.resources.devices",
        "net_cls.classid" => "linux.resources.network.classID",
        "net_prio.ifpriomap" => "linux.resources.network.priorities",
        f if f.starts_with("hugetlb.") => "linux.resources.hugepageLimits",
        _ => return None,
    })
}

/// The OCI field of a cgroup `Resources` field name (as reported by `Error::setting`).
pub fn field_of_setting(setting: &str) -> Option<String> {
    if setting.starts_with("hugetlb") {
        return Some("linux.resources.hugepageLimits".into());
    }
    if setting.starts_with("devices") {
        return Some("linux.resources.devices".into());
    }
    match setting {
        "net_cls_classid" => return Some("linux.resources.network.classID".into()),
        "net_prio_ifpriomap" => return Some("linux.resources.network.priorities".into()),
        _ => {}
    }
    let (group, rest) = setting.split_once('_')?;
    let group = match group {
        "cpu" | "cpuset" => "cpu",
        "memory" => "memory",
        "pids" => "pids",
        "blkio" => "blockIO",
        "hugetlb" => return Some("linux.resources.hugepageLimits".into()),
        "devices" => return Some("linux.resources.devices".into()),
        _ => return None,
    };
    let mut camel = String::new();
    let mut up = false;
    for c in rest.chars() {
        if c == '_' {
            up = true;
        } else if up {
            camel.push(c.to_ascii_uppercase());
            up = false;
        } else {
            camel.push(c);
        }
    }
    let camel = match camel.as_str() {
        "disableOomKiller" => "disableOOMKiller".to_string(),
        "cpus" | "mems" => camel,
        _ => camel,
    };
    Some(format!("linux.resources.{group}.{camel}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `linux.resources.network` becomes the cgroup crate's net_cls/net_prio settings, and
    /// their errors (a pure v2 host's refusal names the setting; a write names the file) map
    /// back to the OCI fields.
    #[test]
    fn network_resources_and_their_fields() {
        let res: LinuxResources = serde_json::from_value(serde_json::json!({"network": {
            "classID": 0x0010_0001u32,
            "priorities": [{"name": "lo", "priority": 5}, {"name": "eth0", "priority": 0}],
        }}))
        .unwrap();
        let r = limits(&res).unwrap();
        assert_eq!(r.net_cls_classid, Some(0x0010_0001));
        assert_eq!(
            r.net_prio_ifpriomap,
            [
                InterfacePriority {
                    name: "lo".into(),
                    priority: 5
                },
                InterfacePriority {
                    name: "eth0".into(),
                    priority: 0
                }
            ]
        );
        assert_eq!(
            field_of_setting("net_cls_classid").as_deref(),
            Some("linux.resources.network.classID")
        );
        assert_eq!(
            field_of_setting("net_prio_ifpriomap").as_deref(),
            Some("linux.resources.network.priorities")
        );
        assert_eq!(
            field_of("net_cls.classid"),
            Some("linux.resources.network.classID")
        );
        assert_eq!(
            field_of("net_prio.ifpriomap"),
            Some("linux.resources.network.priorities")
        );
    }

    /// Zeros runc's cgroupfs drivers write nothing for become "unset" (nothing written, so
    /// an update keeps the current value); what is not zero is kept.
    #[test]
    fn zeros_that_mean_unset_write_nothing() {
        let res: LinuxResources = serde_json::from_value(serde_json::json!({
            "cpu": {"shares": 0, "quota": 0, "period": 0, "realtimeRuntime": 0, "realtimePeriod": 0},
            "memory": {"limit": 0, "reservation": 0, "swap": 0, "swappiness": 0},
            "blockIO": {"weight": 0, "leafWeight": 0},
        }))
        .unwrap();
        let r = limits(&res).unwrap();
        assert_eq!(
            (r.cpu_shares, r.cpu_quota, r.cpu_period),
            (None, None, None)
        );
        assert_eq!(
            (r.cpu_realtime_runtime, r.cpu_realtime_period),
            (None, None)
        );
        assert_eq!(
            (r.memory_limit, r.memory_reservation, r.memory_swap),
            (None, None, None)
        );
        assert_eq!((r.blkio_weight, r.blkio_leaf_weight), (None, None));
        assert_eq!(r.memory_swappiness, Some(0), "swappiness 0 is a value");

        let res: LinuxResources = serde_json::from_value(serde_json::json!({
            "cpu": {"shares": 512, "quota": -1, "period": 50000},
            "memory": {"limit": 1048576, "swap": -1},
        }))
        .unwrap();
        let r = limits(&res).unwrap();
        assert_eq!(
            (r.cpu_shares, r.cpu_quota, r.cpu_period),
            (Some(512), Some(-1), Some(50000))
        );
        assert_eq!((r.memory_limit, r.memory_swap), (Some(1048576), Some(-1)));
    }
}

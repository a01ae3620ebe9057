//! OCI `linux.resources` to the `cgroup` crate's plain [`cgroup::Resources`].

use cgroup::{DeviceRule, HugeTlbLimit, Resources, ThrottleDevice, WeightDevice};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxResources, Spec};

use crate::names::serde_name;
use crate::{Error, Result};

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

fn device_rule(i: usize, d: &LinuxDeviceCgroup) -> Result<DeviceRule> {
    let kind = match d.typ() {
        None => 'a',
        Some(t) => match serde_name(&t).as_str() {
            "a" => 'a',
            "c" | "u" => 'c',
            "b" => 'b',
            other => {
                return Err(Error::Config {
                    field: format!("linux.resources.devices[{i}].type"),
                    reason: format!("{other:?} is not a, b or c"),
                })
            }
        },
    };
    let access = d.access().clone().unwrap_or_else(|| "rwm".into());
    if access.is_empty() || !access.chars().all(|c| "rwm".contains(c)) {
        return Err(Error::Config {
            field: format!("linux.resources.devices[{i}].access"),
            reason: format!("{access:?} is not a combination of r, w and m"),
        });
    }
    Ok(DeviceRule {
        allow: d.allow(),
        kind,
        major: d.major(),
        minor: d.minor(),
        access,
    })
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
        for (i, d) in res.devices().clone().unwrap_or_default().iter().enumerate() {
            r.devices.push(device_rule(i, d)?);
        }
        r.devices.extend(default_rules());
        for d in linux.devices().clone().unwrap_or_default() {
            let kind = match serde_name(&d.typ()).as_str() {
                "b" => 'b',
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

/// Converts resource limits (everything but device rules), as `update -r` gives them.
pub fn limits(res: &LinuxResources) -> Result<Resources> {
    let mut r = Resources::default();
    if let Some(c) = res.cpu() {
        r.cpu_shares = c.shares();
        r.cpu_quota = c.quota();
        r.cpu_period = c.period();
        r.cpu_realtime_runtime = c.realtime_runtime();
        r.cpu_realtime_period = c.realtime_period();
        r.cpuset_cpus = c.cpus().clone().filter(|s| !s.is_empty());
        r.cpuset_mems = c.mems().clone().filter(|s| !s.is_empty());
        if c.idle().is_some() || c.burst().is_some() {
            return Err(Error::Config {
                field: "linux.resources.cpu".into(),
                reason: "idle and burst are not supported".into(),
            });
        }
    }
    if let Some(m) = res.memory() {
        for (name, v) in [
            ("limit", m.limit()),
            ("reservation", m.reservation()),
            ("swap", m.swap()),
        ] {
            if let Some(v) = v {
                if v < -1 || v == 0 && name == "limit" {
                    return Err(Error::Config {
                        field: format!("linux.resources.memory.{name}"),
                        reason: format!("{v} is not a valid byte count (-1 means unlimited)"),
                    });
                }
            }
        }
        if let (Some(l), Some(s)) = (m.limit(), m.swap()) {
            if l > 0 && s > 0 && s < l {
                return Err(Error::Config {
                    field: "linux.resources.memory.swap".into(),
                    reason: format!("{s} is below memory.limit {l} (swap is memory plus swap)"),
                });
            }
        }
        // runc's choice: kernel memory limits are gone from current kernels; accepted and
        // ignored with a warning.
        for (name, v) in [("kernel", m.kernel()), ("kernelTCP", m.kernel_tcp())] {
            if v.is_some() {
                tracing::warn!(
                    "linux.resources.memory.{name}: kernel memory limits are deprecated by the kernel and ignored"
                );
            }
        }
        r.memory_limit = m.limit();
        r.memory_reservation = m.reservation();
        r.memory_swap = m.swap();
        if let Some(s) = m.swappiness() {
            if s > 100 {
                return Err(Error::Config {
                    field: "linux.resources.memory.swappiness".into(),
                    reason: format!("{s} is above 100"),
                });
            }
        }
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
        if let Some(w) = weight {
            if !(10..=1000).contains(&w) {
                return Err(Error::Config {
                    field: "linux.resources.blockIO.weight".into(),
                    reason: format!("{w} is outside 10..1000"),
                });
            }
        }
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
    for (i, h) in res
        .hugepage_limits()
        .clone()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        if h.limit() < 0 {
            return Err(Error::Config {
                field: format!("linux.resources.hugepageLimits[{i}].limit"),
                reason: format!("{} is negative", h.limit()),
            });
        }
        r.hugetlb.push(HugeTlbLimit {
            page_size: h.page_size().clone(),
            limit: h.limit() as u64,
        });
    }
    if res.network().is_some() {
        return Err(Error::Config {
            field: "linux.resources.network".into(),
            reason: "net_cls/net_prio limits are not supported".into(),
        });
    }
    if res.rdma().as_ref().is_some_and(|m| !m.is_empty()) {
        return Err(Error::Config {
            field: "linux.resources.rdma".into(),
            reason: "rdma limits are not supported".into(),
        });
    }
    if res.unified().as_ref().is_some_and(|m| !m.is_empty()) {
        return Err(Error::Config {
            field: "linux.resources.unified".into(),
            reason: "unified (raw cgroup v2) settings are not supported".into(),
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

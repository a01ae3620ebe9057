//! The per-controller interface.

use std::path::Path;

use crate::{Resources, Result};

/// One cgroup controller: which settings it serves and how to write them
/// under each cgroup version.
pub(crate) trait Controller: Sync {
    /// Controller name in v1 mount options (`"blkio"`).
    fn v1_name(&self) -> &'static str;
    /// Controller name in cgroup2 (`"io"`), `None` when v2 cannot serve it.
    fn v2_name(&self) -> Option<&'static str>;
    /// cgroup2 serves it without a controller to enable (device rules: an eBPF program on the
    /// cgroup), so any cgroup2 directory will do.
    fn v2_builtin(&self) -> bool {
        false
    }
    /// Why v2 cannot serve it, when `v2_name` is `None`.
    fn v2_missing_reason(&self) -> &'static str {
        "no cgroup hierarchy has this controller"
    }
    /// The mount options (and directory name) a v1 hierarchy of this controller is usually
    /// mounted with, for the hint of the "not mounted" error (`"net_cls,net_prio"`).
    fn v1_mount_options(&self) -> &'static str {
        self.v1_name()
    }
    /// The first [`Resources`] field set for this controller, if any.
    fn requested(&self, r: &Resources) -> Option<&'static str>;
    /// Takes every setting of this controller out of `r`.
    fn clear(&self, r: &mut Resources);
    /// Writes the settings into a v1 cgroup directory.
    fn apply_v1(&self, dir: &Path, r: &Resources, warnings: &mut Vec<String>) -> Result<()>;
    /// Writes the settings into a cgroup2 directory.
    fn apply_v2(&self, dir: &Path, r: &Resources, warnings: &mut Vec<String>) -> Result<()>;
}

/// All limit-bearing controllers, in the order they are applied.
pub(crate) static ALL: &[&dyn Controller] = &[
    &crate::cpuset::Cpuset,
    &crate::cpu::Cpu,
    &crate::memory::Memory,
    &crate::pids::Pids,
    &crate::blkio::Blkio,
    &crate::hugetlb::HugeTlb,
    &crate::devices::Devices,
    &crate::net::NetCls,
    &crate::net::NetPrio,
];

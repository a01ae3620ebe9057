//! The v1-only `net_cls` and `net_prio` controllers: a class id and per-interface priorities
//! the kernel gives to the packets of the cgroup's sockets. cgroup v2 has neither (there, tc
//! and netfilter match the socket's cgroup path instead), so both refuse v2.
//!
//! systemd mounts the two as one hierarchy (`/sys/fs/cgroup/net_cls,net_prio`, with
//! `net_cls` and `net_prio` symlinks to it), as it does `cpu,cpuacct`; separate mounts work
//! as well.

use std::path::Path;

use crate::controller::Controller;
use crate::error::{Error, Result};
use crate::fs::write_setting;
use crate::Resources;

pub(crate) struct NetCls;
pub(crate) struct NetPrio;

/// The mount options (and directory name) systemd gives the pair, used in the hint of the
/// "not mounted" error.
pub(crate) const V1_MOUNT: &str = "net_cls,net_prio";

const V2_REASON: &str = "cgroup v2 has no net_cls or net_prio controller (they exist only in \
     cgroup v1; on cgroup v2, tc and netfilter match a socket's cgroup path instead)";

impl Controller for NetCls {
    fn v1_name(&self) -> &'static str {
        "net_cls"
    }
    fn v2_name(&self) -> Option<&'static str> {
        None
    }
    fn v2_missing_reason(&self) -> &'static str {
        V2_REASON
    }
    fn v1_mount_options(&self) -> &'static str {
        V1_MOUNT
    }
    fn requested(&self, r: &Resources) -> Option<&'static str> {
        r.net_cls_classid.map(|_| "net_cls_classid")
    }
    fn clear(&self, r: &mut Resources) {
        r.net_cls_classid = None;
    }
    fn apply_v1(&self, dir: &Path, r: &Resources, _w: &mut Vec<String>) -> Result<()> {
        if let Some(id) = r.net_cls_classid {
            write_setting(dir, "net_cls.classid", &id.to_string(), "net_cls_classid")?;
        }
        Ok(())
    }
    fn apply_v2(&self, _dir: &Path, _r: &Resources, _w: &mut Vec<String>) -> Result<()> {
        Err(Error::unsupported("net_cls_classid", vec![], V2_REASON))
    }
}

impl Controller for NetPrio {
    fn v1_name(&self) -> &'static str {
        "net_prio"
    }
    fn v2_name(&self) -> Option<&'static str> {
        None
    }
    fn v2_missing_reason(&self) -> &'static str {
        V2_REASON
    }
    fn v1_mount_options(&self) -> &'static str {
        V1_MOUNT
    }
    fn requested(&self, r: &Resources) -> Option<&'static str> {
        (!r.net_prio_ifpriomap.is_empty()).then_some("net_prio_ifpriomap")
    }
    fn clear(&self, r: &mut Resources) {
        r.net_prio_ifpriomap.clear();
    }
    /// One write per interface: the kernel takes one `"<ifname> <prio>"` pair a write. The
    /// name is looked up in the host's (initial) network namespace, whatever namespace the
    /// caller is in: an interface it does not have is `ENODEV`.
    fn apply_v1(&self, dir: &Path, r: &Resources, _w: &mut Vec<String>) -> Result<()> {
        for p in &r.net_prio_ifpriomap {
            let v = format!("{} {}", p.name, p.priority);
            write_setting(dir, "net_prio.ifpriomap", &v, "net_prio_ifpriomap")?;
        }
        Ok(())
    }
    fn apply_v2(&self, _dir: &Path, _r: &Resources, _w: &mut Vec<String>) -> Result<()> {
        Err(Error::unsupported("net_prio_ifpriomap", vec![], V2_REASON))
    }
}

//! The namespaces of a plan: those made and those joined, id maps, and what needs a namespace
//! of the container's own (hostname, domainname, sysctls, time offsets).

#![deny(clippy::undocumented_unsafe_blocks)]

use std::collections::HashSet;
use std::ffi::CString;
use std::path::{Path, PathBuf};

use ns::{IdMap, JoinNs, Kind};
use oci_spec::runtime::{Linux, LinuxIdMapping, LinuxNamespaceType};

use super::mounts::chroot_only;
use super::{cfg, cstr};
use crate::Result;

/// The namespaces the container makes and those it joins, as `linux.namespaces` lists them.
pub(super) struct Namespaces {
    pub(super) new_ns: Vec<Kind>,
    pub(super) join_ns: Vec<JoinNs>,
    listed: HashSet<Kind>,
}

impl Namespaces {
    /// Listed: made or joined (not the host's, shared).
    pub(super) fn has(&self, k: Kind) -> bool {
        self.listed.contains(&k)
    }

    /// Made by the container.
    pub(super) fn creates(&self, k: Kind) -> bool {
        self.new_ns.contains(&k)
    }
}

/// `linux.namespaces`: each kind once; a path is absolute and opened (and checked) now.
pub(super) fn of(linux: &Linux) -> Result<Namespaces> {
    let mut new_ns = Vec::new();
    let mut join_ns: Vec<JoinNs> = Vec::new();
    let mut listed = HashSet::new();
    for (i, n) in linux
        .namespaces()
        .clone()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let kind = ns_kind(n.typ());
        let field = format!("linux.namespaces[{i}]");
        if !listed.insert(kind) {
            return Err(cfg(field, format!("{kind} namespace listed twice")));
        }
        match n.path() {
            // The spec: "This value MUST be an absolute path in the runtime mount namespace";
            // a relative one would resolve against corral's cwd.
            Some(p) if !p.is_absolute() => {
                return Err(cfg(
                    format!("{field}.path"),
                    format!("{} is not an absolute path", p.display()),
                ));
            }
            Some(p) => join_ns.push(
                JoinNs::open(kind, p).map_err(|e| cfg(format!("{field}.path"), e.to_string()))?,
            ),
            None => new_ns.push(kind),
        }
    }
    Ok(Namespaces {
        new_ns,
        join_ns,
        listed,
    })
}

/// The uid and gid maps: given with a new user namespace, and only then.
pub(super) fn id_maps(linux: &Linux, nss: &Namespaces) -> Result<(Vec<IdMap>, Vec<IdMap>)> {
    let maps = |v: &Option<Vec<LinuxIdMapping>>| -> Vec<IdMap> {
        v.clone()
            .unwrap_or_default()
            .iter()
            .map(|m| IdMap {
                inside: m.container_id(),
                outside: m.host_id(),
                count: m.size(),
            })
            .collect()
    };
    let uid_map = maps(linux.uid_mappings());
    let gid_map = maps(linux.gid_mappings());
    if nss.creates(Kind::User) && (uid_map.is_empty() || gid_map.is_empty()) {
        return Err(cfg(
            "linux.uidMappings",
            "a new user namespace needs linux.uidMappings and linux.gidMappings",
        ));
    }
    if !nss.creates(Kind::User) && (!uid_map.is_empty() || !gid_map.is_empty()) {
        return Err(cfg(
            "linux.uidMappings",
            "id mappings given without a new user namespace",
        ));
    }
    Ok((uid_map, gid_map))
}

/// `hostname` or `domainname` (`field`), which needs a uts namespace when it is set.
pub(super) fn uts_name(
    field: &str,
    v: &Option<String>,
    nss: &Namespaces,
) -> Result<Option<CString>> {
    match v {
        Some(h) if !h.is_empty() => {
            if !nss.has(Kind::Uts) {
                return Err(cfg(
                    field,
                    format!("setting the {field} needs a uts namespace"),
                ));
            }
            Ok(Some(cstr(field, h.as_str())?))
        }
        _ => Ok(None),
    }
}

/// `linux.sysctl` as (path under /proc/sys, value), sorted by key; each one namespaced and
/// known to this kernel.
pub(super) fn sysctls(linux: &Linux, nss: &Namespaces) -> Result<Vec<(CString, CString)>> {
    let mut sysctls = Vec::new();
    let mut keys: Vec<_> = linux
        .sysctl()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    keys.sort();
    for (k, v) in keys {
        let field = format!("linux.sysctl.{k}");
        check_sysctl(&k, &nss.new_ns, &nss.join_ns).map_err(|r| cfg(&field, r))?;
        let path = format!("/proc/sys/{}", k.replace('.', "/"));
        if !Path::new(&path).exists() {
            return Err(cfg(
                field,
                format!("unknown sysctl ({path} does not exist)"),
            ));
        }
        sysctls.push((cstr(&field, path)?, cstr(&field, v)?));
    }
    Ok(sysctls)
}

/// `linux.timeOffsets` as the kernel's `timens_offsets` text; needs a new time namespace.
pub(super) fn time_offsets(linux: &Linux, nss: &Namespaces) -> Result<Option<CString>> {
    match linux.time_offsets() {
        Some(map) if !map.is_empty() => {
            if !nss.creates(Kind::Time) {
                return Err(cfg("linux.timeOffsets", "needs a new time namespace"));
            }
            let mut s = String::new();
            for (clock, off) in map {
                if clock != "monotonic" && clock != "boottime" {
                    return Err(cfg(
                        format!("linux.timeOffsets.{clock}"),
                        "unknown clock (monotonic or boottime)",
                    ));
                }
                s.push_str(&format!(
                    "{clock} {} {}\n",
                    off.secs().unwrap_or(0),
                    off.nanosecs().unwrap_or(0)
                ));
            }
            Ok(Some(cstr("linux.timeOffsets", s)?))
        }
        _ => Ok(None),
    }
}

/// The namespaces an exec'd process joins: those of the container's init `pid` that differ
/// from the caller's; and whether a user namespace is among them.
pub(super) fn exec_joins(pid: i32) -> Result<(Vec<JoinNs>, bool)> {
    use std::os::unix::fs::MetadataExt;
    let mut join_ns = Vec::new();
    let mut userns = false;
    for kind in Kind::ALL {
        let theirs = PathBuf::from(format!("/proc/{pid}/ns/{}", kind.proc_name()));
        let mine = PathBuf::from(format!("/proc/self/ns/{}", kind.proc_name()));
        let (Ok(a), Ok(b)) = (std::fs::metadata(&theirs), std::fs::metadata(&mine)) else {
            continue;
        };
        if a.ino() == b.ino() && a.dev() == b.dev() {
            continue;
        }
        if kind == Kind::User {
            userns = true;
        }
        join_ns.push(JoinNs::open(kind, &theirs).map_err(|e| cfg("exec", e.to_string()))?);
    }
    Ok((join_ns, userns))
}

/// The root of an exec'd process that joins no mount namespace (a container without one of
/// its own): joining its namespaces does not give the process its root, so it is chrooted
/// into the init's root (none when that is the caller's own).
pub(super) fn exec_root(pid: i32, join_ns: &[JoinNs]) -> Result<Option<ns::Rootfs>> {
    use std::os::unix::fs::MetadataExt;
    if join_ns.iter().any(|j| j.kind == Kind::Mount) {
        return Ok(None);
    }
    let theirs = format!("/proc/{pid}/root");
    let id = |p: &str| std::fs::metadata(p).map(|m| (m.dev(), m.ino()));
    match (id(&theirs), id("/")) {
        (Ok(a), Ok(b)) if a == b => Ok(None),
        (Ok(_), Ok(_)) => Ok(Some(chroot_only(cstr("exec", theirs)?))),
        (Err(e), _) | (_, Err(e)) => {
            Err(cfg("exec", format!("the container's root {theirs}: {e}")))
        }
    }
}

fn ns_kind(t: LinuxNamespaceType) -> Kind {
    match t {
        LinuxNamespaceType::Mount => Kind::Mount,
        LinuxNamespaceType::Cgroup => Kind::Cgroup,
        LinuxNamespaceType::Uts => Kind::Uts,
        LinuxNamespaceType::Ipc => Kind::Ipc,
        LinuxNamespaceType::User => Kind::User,
        LinuxNamespaceType::Pid => Kind::Pid,
        LinuxNamespaceType::Network => Kind::Net,
        LinuxNamespaceType::Time => Kind::Time,
    }
}

/// Only namespaced sysctls may be set, and only in a namespace that is not the host's: one
/// the container creates, or one it joins that is not the runtime's own (a pod's, as runc
/// allows). A namespace that is not listed is the host's, shared.
pub(super) fn check_sysctl(
    k: &str,
    new_ns: &[Kind],
    join_ns: &[JoinNs],
) -> std::result::Result<(), String> {
    const IPC: [&str; 8] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let (kind, name) = if IPC.contains(&k) || k.starts_with("fs.mqueue.") {
        (Kind::Ipc, "ipc")
    } else if k.starts_with("net.") {
        (Kind::Net, "network")
    } else if k == "kernel.hostname" || k == "kernel.domainname" {
        (Kind::Uts, "uts")
    } else {
        return Err("not a namespaced sysctl: it would change the host".into());
    };
    if new_ns.contains(&kind) {
        return Ok(());
    }
    let Some(j) = join_ns.iter().find(|j| j.kind == kind) else {
        return Err(format!(
            "needs a {name} namespace of the container's own: none is listed, so the host's is shared and the sysctl would change it"
        ));
    };
    if is_hosts(kind, j) {
        return Err(format!(
            "the {name} namespace joined from {} is the host's (the runtime's own): the sysctl would change the host",
            j.path.display()
        ));
    }
    Ok(())
}

/// Whether a joined namespace is the runtime's own, or the initial one (when it can be read).
fn is_hosts(kind: Kind, j: &JoinNs) -> bool {
    use std::os::unix::fs::MetadataExt;
    let id = |p: String| std::fs::metadata(p).map(|m| (m.dev(), m.ino())).ok();
    let Some(joined) = id(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&j.fd)
    )) else {
        return false;
    };
    ["self", "1"]
        .iter()
        .any(|p| id(format!("/proc/{p}/ns/{}", kind.proc_name())) == Some(joined))
}

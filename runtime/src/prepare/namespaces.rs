//! The namespaces of a plan: those made and those joined, id maps, and what needs a namespace
//! of the container's own (hostname, domainname, sysctls, time offsets). Their rules (each
//! kind once, maps with a new user namespace only...) are [`crate::validate`]'s; this file
//! converts a checked spec, opening what it joins.

#![deny(clippy::undocumented_unsafe_blocks)]

use std::collections::HashSet;
use std::ffi::CString;
use std::path::{Path, PathBuf};

use ns::{IdMap, JoinNs, Kind};
use oci_spec::runtime::{Linux, LinuxIdMapping};

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

/// `linux.namespaces`: a path is opened (and checked to be a namespace of its kind) now.
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
        let kind = crate::validate::ns_kind(n.typ());
        let field = format!("linux.namespaces[{i}]");
        listed.insert(kind);
        match n.path() {
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

/// The uid and gid maps.
pub(super) fn id_maps(linux: &Linux) -> (Vec<IdMap>, Vec<IdMap>) {
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
    (maps(linux.uid_mappings()), maps(linux.gid_mappings()))
}

/// `hostname` or `domainname` (`field`), when it is set.
pub(super) fn uts_name(field: &str, v: &Option<String>) -> Result<Option<CString>> {
    match v {
        Some(h) if !h.is_empty() => Ok(Some(cstr(field, h.as_str())?)),
        _ => Ok(None),
    }
}

/// `linux.sysctl` as (path under /proc/sys, value), sorted by key; each one known to this
/// kernel (that it is namespaced, in a namespace not the host's, is
/// [`crate::validate::spec`]'s).
pub(super) fn sysctls(linux: &Linux) -> Result<Vec<(CString, CString)>> {
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

/// `linux.timeOffsets` as the kernel's `timens_offsets` text.
pub(super) fn time_offsets(linux: &Linux) -> Result<Option<CString>> {
    match linux.time_offsets() {
        Some(map) if !map.is_empty() => {
            let mut s = String::new();
            for (clock, off) in map {
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

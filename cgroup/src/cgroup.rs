//! One container's cgroup across all hierarchies.

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::controller::{Controller, ALL};
use crate::error::{Error, Result};
use crate::fs::{read, read_keyed, read_opt, read_u64_opt, write};
use crate::hierarchy::{Hierarchy, KernelControllers, Mount, Version};
use crate::{CgroupPath, Resources, Stats};

/// One hierarchy's leaf directory of a [`Cgroup`], as returned by
/// [`Cgroup::dirs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupDir {
    /// Bind target name under the container's `/sys/fs/cgroup`: the v1
    /// mount point's basename (`memory`, `cpu,cpuacct`, `systemd`),
    /// `unified` for a hybrid host's cgroup2 mount, `""` for pure v2.
    pub name: String,
    /// The hierarchy's controllers (see [`Mount::controllers`]).
    pub controllers: Vec<String>,
    /// Whether this is the cgroup2 hierarchy.
    pub v2: bool,
    /// The leaf directory on the host.
    pub dir: PathBuf,
    /// Where its hierarchy is mounted on the host (an ancestor of `dir`, or `dir` itself).
    pub mount_point: PathBuf,
}

#[derive(Debug, Clone)]
struct Entry {
    mount: Mount,
    dir: PathBuf,
}

/// One container's cgroup: a leaf directory in every mounted hierarchy.
#[derive(Debug)]
pub struct Cgroup {
    entries: Vec<Entry>,
    created: Vec<PathBuf>,
    warnings: Mutex<Vec<String>>,
    /// The host's layout and the controllers its kernel has (to explain a missing one).
    version: Version,
    kernel: KernelControllers,
}

/// Which directory serves a controller.
struct Target<'a> {
    controller: &'static dyn Controller,
    dir: &'a Path,
    v2: bool,
}

const RMDIR_TRIES: u32 = 10;

fn validate(path: &CgroupPath) -> Result<Vec<String>> {
    let s = match path {
        CgroupPath::Absolute(s) | CgroupPath::Relative(s) => s,
    };
    let bad = |reason: &str| Error::InvalidPath {
        path: s.clone(),
        reason: reason.to_string(),
    };
    if s.contains('\0') {
        return Err(bad("contains a NUL byte"));
    }
    let mut out = Vec::new();
    for c in Path::new(s).components() {
        match c {
            Component::Normal(n) => out.push(n.to_string_lossy().into_owned()),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => return Err(bad("contains \"..\"")),
            Component::Prefix(_) => return Err(bad("unexpected prefix")),
        }
    }
    if out.is_empty() {
        return Err(bad("empty"));
    }
    Ok(out)
}

fn parent_of(p: &str) -> &str {
    match p.trim_end_matches('/').rsplit_once('/') {
        Some(("", _)) | None => "/",
        Some((parent, _)) => parent,
    }
}

fn depth(p: &Path) -> usize {
    p.components().count()
}

impl Cgroup {
    /// Plans the directories (touches nothing).
    ///
    /// v1: `<mount_point>/<own>/<path>` for a relative path, where `<own>`
    /// is the caller's cgroup in that hierarchy; `<mount_point>/<path>` for
    /// an absolute one. cgroup2: a relative path is joined to the *parent*
    /// of the caller's cgroup when the caller is not at `/` (runc's rule:
    /// v2 forbids processes in inner nodes, so the caller's own cgroup
    /// cannot get children with controllers).
    pub fn new(h: &Hierarchy, path: &CgroupPath) -> Result<Cgroup> {
        let comps = validate(path)?;
        let entries = h
            .mounts()
            .iter()
            .map(|m| {
                let mut dir = m.mount_point.clone();
                if let CgroupPath::Relative(_) = path {
                    let own = if m.v2 {
                        parent_of(&m.own)
                    } else {
                        m.own.as_str()
                    };
                    let own = own.trim_start_matches('/');
                    if !own.is_empty() {
                        dir.push(own);
                    }
                }
                for c in &comps {
                    dir.push(c);
                }
                Entry {
                    mount: m.clone(),
                    dir,
                }
            })
            .collect();
        Ok(Cgroup {
            entries,
            created: Vec::new(),
            warnings: Mutex::new(Vec::new()),
            version: h.version(),
            kernel: h.kernel().clone(),
        })
    }

    /// Re-opens a cgroup made earlier (by another process) from its leaf directories, one per
    /// hierarchy, as [`Cgroup::dirs`] listed them. Directories outside every mount are an error.
    pub fn from_dirs(h: &Hierarchy, dirs: &[PathBuf]) -> Result<Cgroup> {
        let entries = dirs
            .iter()
            .map(|d| {
                h.mounts()
                    .iter()
                    .filter(|m| d.starts_with(&m.mount_point))
                    .max_by_key(|m| m.mount_point.as_os_str().len())
                    .map(|m| Entry {
                        mount: m.clone(),
                        dir: d.clone(),
                    })
                    .ok_or_else(|| Error::InvalidPath {
                        path: d.display().to_string(),
                        reason: "not under any cgroup mount".into(),
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Cgroup {
            entries,
            created: Vec::new(),
            warnings: Mutex::new(Vec::new()),
            version: h.version(),
            kernel: h.kernel().clone(),
        })
    }

    /// For a caller without privilege (rootless): keeps only the hierarchies delegated to it,
    /// where the deepest directory that exists on the way to the leaf is writable by the caller
    /// (a subtree chowned to it, as systemd's `Delegate=yes` does), and returns the mount
    /// points of the others, which the container goes without.
    pub fn retain_delegated(&mut self) -> Vec<PathBuf> {
        let mut dropped = Vec::new();
        self.entries.retain(|e| {
            let mut d = e.dir.as_path();
            while !d.exists() && d != e.mount.mount_point {
                match d.parent() {
                    Some(p) => d = p,
                    None => break,
                }
            }
            let ok = nix::unistd::access(
                d,
                nix::unistd::AccessFlags::W_OK | nix::unistd::AccessFlags::X_OK,
            )
            .is_ok();
            if !ok {
                dropped.push(e.mount.mount_point.clone());
            }
            ok
        });
        dropped
    }

    /// Whether one of this cgroup's hierarchies can hold controller `c`'s settings.
    fn places(&self, c: &dyn Controller) -> bool {
        self.v1_entry(c.v1_name()).is_some()
            || (c.v2_builtin() && self.v2_entry().is_some())
            || matches!((c.v2_name(), self.v2_entry()), (Some(n), Some(e)) if e.mount.has(n))
    }

    /// Takes out of `r` the settings that none of this cgroup's hierarchies can hold (after
    /// [`Cgroup::retain_delegated`]), and returns the first setting of each such controller.
    pub fn drop_unplaceable(&self, r: &mut Resources) -> Vec<&'static str> {
        let mut out = Vec::new();
        for &c in ALL {
            if let Some(s) = c.requested(r) {
                if !self.places(c) {
                    c.clear(r);
                    out.push(s);
                }
            }
        }
        out
    }

    /// Whether this cgroup has any hierarchy left.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Creates every directory (`mkdir -p`), remembering the ones this call
    /// made so [`Cgroup::remove`] deletes exactly those. Does not write
    /// limits: call [`Cgroup::apply`] afterwards.
    ///
    /// * A leaf that already exists is [`Error::AlreadyExists`].
    /// * A requested setting whose controller no hierarchy has is
    ///   [`Error::Unsupported`] (checked before anything is made).
    /// * v1 cpuset: empty `cpuset.cpus`/`cpuset.mems` along the path are
    ///   copied from the parent so tasks can join.
    /// * cgroup2: each controller `apply` will need is enabled (`+ctrl`) in
    ///   `cgroup.subtree_control` of every ancestor from the mount root down
    ///   to the leaf's parent, where not already enabled. This is not undone.
    ///
    /// On error, the directories made so far are removed again.
    pub fn create(&mut self, r: &Resources) -> Result<()> {
        self.create_with(r, false)
    }

    /// [`Cgroup::create`], except that a leaf that already exists is joined, not an error
    /// (runc's rule for a `cgroupsPath` made beforehand). Such a leaf and its ancestors are
    /// not among [`Cgroup::created_dirs`], so [`Cgroup::remove`] leaves them, and
    /// [`Cgroup::made_part`] leaves its processes alone.
    pub fn create_or_join(&mut self, r: &Resources) -> Result<()> {
        self.create_with(r, true)
    }

    fn create_with(&mut self, r: &Resources, join: bool) -> Result<()> {
        self.plan(r)?;
        let mut made = Vec::new();
        let res = self.create_inner(r, join, &mut made);
        if res.is_err() {
            made.sort_by_key(|d| std::cmp::Reverse(depth(d)));
            for d in &made {
                let _ = std::fs::remove_dir(d);
            }
            return res;
        }
        self.created.extend(made);
        Ok(())
    }

    fn create_inner(&self, r: &Resources, join: bool, made: &mut Vec<PathBuf>) -> Result<()> {
        for e in &self.entries {
            let cpuset = !e.mount.v2 && e.mount.has("cpuset");
            let rel = e
                .dir
                .strip_prefix(&e.mount.mount_point)
                .unwrap_or(Path::new(""));
            let mut p = e.mount.mount_point.clone();
            for c in rel.components() {
                p.push(c);
                match std::fs::create_dir(&p) {
                    Ok(()) => made.push(p.clone()),
                    Err(err) if err.kind() == ErrorKind::AlreadyExists => {
                        if p == e.dir && !join {
                            return Err(Error::AlreadyExists { path: p });
                        }
                    }
                    Err(source) => return Err(Error::Mkdir { path: p, source }),
                }
                if cpuset {
                    crate::cpuset::init_v1_dir(&p)?;
                }
            }
        }
        let names = self.v2_needed(&self.plan(r)?);
        self.enable_v2(&names)
    }

    /// Writes the limits in `r` (also used to update a running container).
    /// A setting whose controller or control file this host lacks is
    /// [`Error::Unsupported`]; nothing is silently skipped except a swap
    /// limit without swap accounting, which adds a [`Cgroup::warnings`]
    /// entry. On cgroup2, missing controllers are enabled first as in
    /// [`Cgroup::create`].
    pub fn apply(&self, r: &Resources) -> Result<()> {
        let plan = self.plan(r)?;
        self.enable_v2(&self.v2_needed(&plan))?;
        let mut w = Vec::new();
        let mut res = Ok(());
        for t in &plan {
            res = if t.v2 {
                t.controller.apply_v2(t.dir, r, &mut w)
            } else {
                t.controller.apply_v1(t.dir, r, &mut w)
            };
            if res.is_err() {
                break;
            }
        }
        self.warnings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(w);
        res
    }

    /// Warnings collected by [`Cgroup::apply`] (e.g. an ignored swap limit).
    pub fn warnings(&self) -> Vec<String> {
        self.warnings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Picks a directory for every controller `r` needs.
    fn plan(&self, r: &Resources) -> Result<Vec<Target<'_>>> {
        let mut out = Vec::new();
        for &c in ALL {
            let Some(setting) = c.requested(r) else {
                continue;
            };
            let v1 = self
                .entries
                .iter()
                .find(|e| !e.mount.v2 && e.mount.has(c.v1_name()));
            if let Some(e) = v1 {
                out.push(Target {
                    controller: c,
                    dir: &e.dir,
                    v2: false,
                });
                continue;
            }
            let v2 = self.v2_entry();
            if let (true, Some(e)) = (c.v2_builtin(), v2) {
                out.push(Target {
                    controller: c,
                    dir: &e.dir,
                    v2: true,
                });
                continue;
            }
            match (c.v2_name(), v2) {
                (Some(n), Some(e)) if e.mount.has(n) => out.push(Target {
                    controller: c,
                    dir: &e.dir,
                    v2: true,
                }),
                (None, _) if !c.v2_builtin() => return Err(self.v1_only_missing(c, setting)),
                (n, _) => {
                    let name = match n {
                        Some(n) if n != c.v1_name() => format!("{} (v2: {n})", c.v1_name()),
                        _ => c.v1_name().to_string(),
                    };
                    return Err(Error::unsupported(
                        setting,
                        vec![],
                        format!("no cgroup hierarchy has the {name} controller"),
                    ));
                }
            }
        }
        Ok(out)
    }

    /// Why a controller that only cgroup v1 has (`net_cls`, `net_prio`) cannot be used: a
    /// pure v2 host has no such controller; on a v1 or hybrid host, either the kernel lacks
    /// it or no hierarchy mounts it (then the error says how to mount it, as systemd does).
    fn v1_only_missing(&self, c: &dyn Controller, setting: &str) -> Error {
        let name = c.v1_name();
        if self.version == Version::V2 {
            return Error::unsupported(setting, vec![], c.v2_missing_reason());
        }
        let has = self.kernel.get().map(|k| k.iter().any(|x| x == name));
        if has == Some(false) {
            return Error::unsupported(
                setting,
                vec![],
                format!("the kernel has no {name} controller (not enabled in /proc/cgroups)"),
            );
        }
        // Where the other v1 hierarchies are mounted (/sys/fs/cgroup on every distribution).
        let base = self
            .entries
            .iter()
            .find(|e| !e.mount.v2)
            .and_then(|e| e.mount.mount_point.parent())
            .unwrap_or(Path::new("/sys/fs/cgroup"))
            .to_path_buf();
        let o = c.v1_mount_options();
        let dir = base.join(o);
        let mut how = format!(
            "mkdir -p {d} && mount -t cgroup -o {o} {o} {d}",
            d = dir.display()
        );
        if o.contains(',') {
            // systemd's links, as for cpu,cpuacct.
            for part in o.split(',') {
                how.push_str(&format!(" && ln -sfn {o} {}", base.join(part).display()));
            }
        }
        let what = match has {
            Some(_) => {
                format!("the kernel has the {name} controller but no cgroup v1 hierarchy mounts it")
            }
            None => format!("no cgroup v1 hierarchy mounts the {name} controller"),
        };
        Error::unsupported(setting, vec![], format!("{what}; mount it as root: {how}"))
    }

    fn v2_needed(&self, plan: &[Target<'_>]) -> Vec<&'static str> {
        plan.iter()
            .filter(|t| t.v2)
            .filter_map(|t| t.controller.v2_name())
            .collect()
    }

    fn v2_entry(&self) -> Option<&Entry> {
        self.entries.iter().find(|e| e.mount.v2)
    }

    fn v1_entry(&self, controller: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| !e.mount.v2 && e.mount.has(controller))
    }

    /// Enables `names` in `cgroup.subtree_control` from the cgroup2 mount
    /// root down to the leaf's parent.
    fn enable_v2(&self, names: &[&str]) -> Result<()> {
        let Some(e) = self.v2_entry() else {
            return Ok(());
        };
        if names.is_empty() {
            return Ok(());
        }
        let rel = e
            .dir
            .strip_prefix(&e.mount.mount_point)
            .unwrap_or(Path::new(""));
        let mut ancestors = vec![e.mount.mount_point.clone()];
        let mut p = e.mount.mount_point.clone();
        for c in rel.components() {
            p.push(c);
            ancestors.push(p.clone());
        }
        ancestors.pop(); // the leaf itself
        for a in ancestors {
            let f = a.join("cgroup.subtree_control");
            let cur = read(&f)?;
            let missing: Vec<String> = names
                .iter()
                .filter(|n| {
                    !cur.split_whitespace()
                        .any(|c| c.trim_start_matches('+') == **n)
                })
                .map(|n| format!("+{n}"))
                .collect();
            if !missing.is_empty() {
                write(&f, &missing.join(" "))?;
            }
        }
        Ok(())
    }

    /// Moves `pid` into the cgroup in every hierarchy (each v1 mount,
    /// including named ones like `name=systemd`, and the cgroup2 mount).
    pub fn add_pid(&self, pid: i32) -> Result<()> {
        let v = pid.to_string();
        for e in &self.entries {
            write(&e.dir.join("cgroup.procs"), &v)?;
        }
        Ok(())
    }

    /// The leaf directory in the cgroup2 mount (for `clone3`'s
    /// `CLONE_INTO_CGROUP`, which only places the child in *that*
    /// hierarchy: only sufficient on pure v2).
    pub fn v2_dir(&self) -> Option<&Path> {
        self.v2_entry().map(|e| e.dir.as_path())
    }

    /// Every hierarchy's leaf directory, for binding into the container.
    pub fn dirs(&self) -> Vec<CgroupDir> {
        self.entries
            .iter()
            .map(|e| CgroupDir {
                name: e.mount.name.clone(),
                controllers: e.mount.controllers.clone(),
                v2: e.mount.v2,
                dir: e.dir.clone(),
                mount_point: e.mount.mount_point.clone(),
            })
            .collect()
    }

    /// The directories [`Cgroup::create`] made (shallowest first per
    /// hierarchy), e.g. to persist them for a later `delete`.
    pub fn created_dirs(&self) -> &[PathBuf] {
        &self.created
    }

    /// Restores the list of made directories (see [`Cgroup::created_dirs`])
    /// in another process. Paths that are not this cgroup's leaf
    /// directories or their ancestors inside a mount are dropped.
    pub fn set_created_dirs(&mut self, dirs: Vec<PathBuf>) {
        self.created = dirs
            .into_iter()
            .filter(|d| {
                self.entries.iter().any(|e| {
                    e.dir.starts_with(d)
                        && d.starts_with(&e.mount.mount_point)
                        && *d != e.mount.mount_point
                })
            })
            .collect();
    }

    /// The part of this cgroup that [`Cgroup::create`] made: the hierarchies whose leaf it
    /// made (so every process in them is the container's), or `None` when it made no leaf
    /// (every leaf existed before, and may hold processes that are not the container's).
    pub fn made_part(&self) -> Option<Cgroup> {
        let entries: Vec<Entry> = self
            .entries
            .iter()
            .filter(|e| self.created.contains(&e.dir))
            .cloned()
            .collect();
        if entries.is_empty() {
            return None;
        }
        Some(Cgroup {
            entries,
            created: self.created.clone(),
            warnings: Mutex::new(Vec::new()),
            version: self.version,
            kernel: self.kernel.clone(),
        })
    }

    /// Whether every leaf was made by [`Cgroup::create`] (or restored as such).
    pub fn made_every_leaf(&self) -> bool {
        self.entries.iter().all(|e| self.created.contains(&e.dir))
    }

    /// Member processes in all hierarchies, including nested cgroups,
    /// sorted and without duplicates.
    pub fn pids(&self) -> Result<Vec<i32>> {
        let mut set = BTreeSet::new();
        for e in &self.entries {
            collect_pids(&e.dir, &mut set)?;
        }
        Ok(set.into_iter().collect())
    }

    fn set_frozen(&self, frozen: bool) -> Result<()> {
        if let Some(e) = self.v1_entry("freezer") {
            return crate::freezer::set_v1(&e.dir, frozen);
        }
        if let Some(e) = self.v2_entry() {
            if e.dir.join("cgroup.freeze").exists() {
                return crate::freezer::set_v2(&e.dir, frozen);
            }
        }
        Err(Error::unsupported(
            if frozen { "freeze" } else { "thaw" },
            self.v2_entry()
                .map(|e| e.dir.join("cgroup.freeze"))
                .into_iter()
                .collect(),
            "no freezer hierarchy and no cgroup.freeze",
        ))
    }

    /// Freezes every member (v1 `freezer.state` = FROZEN, waiting until the
    /// kernel reports it; v2 `cgroup.freeze` = 1).
    pub fn freeze(&self) -> Result<()> {
        self.set_frozen(true)
    }

    /// Thaws every member.
    pub fn thaw(&self) -> Result<()> {
        self.set_frozen(false)
    }

    /// Whether the kernel holds the cgroup frozen, or on its way there (v1 `FROZEN` or
    /// `FREEZING`; v2 `cgroup.freeze` set): `None` without a freezer.
    pub fn is_frozen(&self) -> Result<Option<bool>> {
        if let Some(e) = self.v1_entry("freezer") {
            let st = crate::fs::read(&e.dir.join("freezer.state"))?;
            return Ok(Some(st.trim() != "THAWED"));
        }
        if let Some(e) = self.v2_entry() {
            if let Some(v) = crate::fs::read_opt(&e.dir.join("cgroup.freeze"))? {
                return Ok(Some(v.trim() == "1"));
            }
        }
        Ok(None)
    }

    /// Sends `sig` to every member. With SIGKILL and a cgroup2 `cgroup.kill`
    /// file, that file is used; otherwise every pid is signalled (with a v1
    /// freezer, SIGKILL is sent while frozen so nothing forks away).
    /// Processes that exit meanwhile are not an error.
    pub fn kill_all(&self, sig: Signal) -> Result<()> {
        if sig == Signal::SIGKILL {
            if let Some(e) = self.v2_entry() {
                let f = e.dir.join("cgroup.kill");
                if f.exists() {
                    return write(&f, "1");
                }
            }
        }
        let freezer = if sig == Signal::SIGKILL {
            self.v1_entry("freezer")
        } else {
            None
        };
        if let Some(e) = freezer {
            // Best effort: a failed freeze must not stop the kill.
            let _ = crate::freezer::set_v1(&e.dir, true);
        }
        let res = self.signal_all(sig);
        let thawed = match freezer {
            Some(e) => crate::freezer::set_v1(&e.dir, false),
            None => Ok(()),
        };
        res.and(thawed)
    }

    fn signal_all(&self, sig: Signal) -> Result<()> {
        let dir = self
            .entries
            .first()
            .map(|e| e.dir.clone())
            .unwrap_or_default();
        for pid in self.pids()? {
            match nix::sys::signal::kill(Pid::from_raw(pid), sig) {
                Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                Err(source) => {
                    return Err(Error::Signal {
                        pid,
                        signal: sig.as_str().to_string(),
                        path: dir,
                        source,
                    })
                }
            }
        }
        Ok(())
    }

    /// An fd that becomes readable when the kernel's OOM killer acts in this cgroup: on v1 an
    /// eventfd registered on `memory.oom_control` (read 8 bytes to consume), on v2 an inotify
    /// watch on `memory.events` (read to consume, then compare `oom_kill`).
    pub fn oom_notifier(&self) -> Result<std::os::fd::OwnedFd> {
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        let v1 = self
            .entries
            .iter()
            .find(|e| !e.mount.v2 && e.mount.has("memory"));
        if let Some(e) = v1 {
            let ctl = e.dir.join("memory.oom_control");
            let f = std::fs::File::open(&ctl).map_err(|source| Error::Read {
                path: ctl.clone(),
                source,
            })?;
            use nix::sys::eventfd::{EfdFlags, EventFd};
            let efd: OwnedFd = EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC)
                .map_err(|e| Error::Read {
                    path: ctl.clone(),
                    source: e.into(),
                })?
                .into();
            let reg = e.dir.join("cgroup.event_control");
            let value = format!("{} {}", efd.as_raw_fd(), f.as_raw_fd());
            std::fs::write(&reg, &value).map_err(|source| Error::Write {
                path: reg,
                value,
                source,
            })?;
            return Ok(efd);
        }
        let v2 = self
            .entries
            .iter()
            .find(|e| e.mount.v2 && e.dir.join("memory.events").exists());
        match v2 {
            Some(e) => {
                let ev = e.dir.join("memory.events");
                // SAFETY: inotify_init1 takes flags only, and its result is checked before
                // `OwnedFd` takes it (a new fd nothing else owns); inotify_add_watch reads
                // `c`, a NUL-terminated path alive through the call.
                unsafe {
                    let fd = libc::inotify_init1(libc::IN_CLOEXEC);
                    if fd < 0 {
                        return Err(Error::Read {
                            path: ev,
                            source: std::io::Error::last_os_error(),
                        });
                    }
                    let fd = OwnedFd::from_raw_fd(fd);
                    let c = std::ffi::CString::new(ev.as_os_str().as_encoded_bytes()).map_err(
                        |_| Error::Parse {
                            path: ev.clone(),
                            reason: "NUL in path".into(),
                        },
                    )?;
                    if libc::inotify_add_watch(fd.as_raw_fd(), c.as_ptr(), libc::IN_MODIFY) < 0 {
                        return Err(Error::Read {
                            path: ev,
                            source: std::io::Error::last_os_error(),
                        });
                    }
                    Ok(fd)
                }
            }
            None => Err(Error::Unsupported {
                setting: "oom events".into(),
                files: vec![],
                reason: "no memory controller".into(),
            }),
        }
    }

    /// Reads usage statistics; values the host lacks are `None`.
    pub fn stats(&self) -> Result<Stats> {
        let mut s = Stats::default();
        if let Some(e) = self.v1_entry("memory") {
            let d = &e.dir;
            s.memory_usage = read_u64_opt(&d.join("memory.usage_in_bytes"))?;
            s.memory_limit = read_u64_opt(&d.join("memory.limit_in_bytes"))?;
            s.memory_max_usage = read_u64_opt(&d.join("memory.max_usage_in_bytes"))?;
            s.swap_usage = read_u64_opt(&d.join("memory.memsw.usage_in_bytes"))?;
            s.oom_kill_count = read_keyed(&d.join("memory.oom_control"), "oom_kill")?;
        } else if let Some(e) = self.v2_entry() {
            let d = &e.dir;
            s.memory_usage = read_u64_opt(&d.join("memory.current"))?;
            s.memory_limit = read_u64_opt(&d.join("memory.max"))?;
            s.memory_max_usage = read_u64_opt(&d.join("memory.peak"))?;
            s.swap_usage = read_u64_opt(&d.join("memory.swap.current"))?;
            s.oom_kill_count = read_keyed(&d.join("memory.events"), "oom_kill")?;
        }
        let pids = self.v1_entry("pids").or_else(|| self.v2_entry());
        if let Some(e) = pids {
            s.pids_current = read_u64_opt(&e.dir.join("pids.current"))?;
            s.pids_limit = read_u64_opt(&e.dir.join("pids.max"))?;
        }
        if let Some(e) = self.v1_entry("cpuacct") {
            s.cpu_usage_ns = read_u64_opt(&e.dir.join("cpuacct.usage"))?;
        } else if let Some(e) = self.v2_entry() {
            s.cpu_usage_ns =
                read_keyed(&e.dir.join("cpu.stat"), "usage_usec")?.map(|u| u.saturating_mul(1000));
        }
        Ok(s)
    }

    /// Removes the directories [`Cgroup::create`] made, deepest first.
    /// Cgroups nested inside a leaf (made by the container) go too. An
    /// intermediate directory that meanwhile holds other cgroups is left
    /// alone. `EBUSY` is retried briefly (a just-reaped task can linger);
    /// a missing directory is fine. Every directory is attempted; the first
    /// error is returned.
    pub fn remove(&self) -> Result<()> {
        let mut dirs = self.created.clone();
        dirs.sort_by_key(|d| std::cmp::Reverse(depth(d)));
        let mut first_err = Ok(());
        for d in &dirs {
            let leaf = self.entries.iter().any(|e| e.dir == *d);
            let res = if leaf {
                remove_tree(d)
            } else if has_subdirs(d) {
                Ok(())
            } else {
                rmdir_retry(d)
            };
            if first_err.is_ok() {
                first_err = res;
            }
        }
        first_err
    }

    /// Removes the directories [`Cgroup::create`] made, as [`Cgroup::remove`] does, when
    /// they are empty: one `rmdir` each, deepest first, nothing read (an empty cgroup, as
    /// after its last process was reaped, needs no look at `cgroup.procs`). `false` at the
    /// first leaf that does not go (processes or nested cgroups left in it, or an errno
    /// [`Cgroup::remove`] would report): what is left is for the caller's slower path
    /// (kill, then [`Cgroup::remove`]), and what went is gone (a missing dir is fine there).
    pub fn remove_if_empty(&self) -> bool {
        let mut dirs = self.created.clone();
        dirs.sort_by_key(|d| std::cmp::Reverse(depth(d)));
        for d in &dirs {
            match std::fs::remove_dir(d) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                // An intermediate dir that holds other cgroups is left alone, as `remove`
                // leaves it.
                Err(_) if !self.entries.iter().any(|e| e.dir == *d) && has_subdirs(d) => {}
                Err(_) => return false,
            }
        }
        true
    }

    /// Removes only the leaf directories (and cgroups nested in them), for
    /// a process that did not run [`Cgroup::create`] itself and has no
    /// record of what it made.
    pub fn remove_leaves(&self) -> Result<()> {
        let mut first_err = Ok(());
        for e in &self.entries {
            let res = remove_tree(&e.dir);
            if first_err.is_ok() {
                first_err = res;
            }
        }
        first_err
    }
}

fn collect_pids(dir: &Path, set: &mut BTreeSet<i32>) -> Result<()> {
    let f = dir.join("cgroup.procs");
    let Some(s) = read_opt(&f)? else {
        return Ok(());
    };
    for l in s.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let pid = l
            .parse::<i32>()
            .map_err(|e| Error::parse(&f, format!("{l:?}: {e}")))?;
        set.insert(pid);
    }
    for sub in subdirs(dir) {
        collect_pids(&sub, set)?;
    }
    Ok(())
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .map(|e| e.path())
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn has_subdirs(dir: &Path) -> bool {
    !subdirs(dir).is_empty()
}

fn remove_tree(dir: &Path) -> Result<()> {
    // A leaf seldom holds nested cgroups: one rmdir, and the listing only when it fails.
    match std::fs::remove_dir(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(_) => {}
    }
    for sub in subdirs(dir) {
        remove_tree(&sub)?;
    }
    rmdir_retry(dir)
}

fn rmdir_retry(dir: &Path) -> Result<()> {
    let mut attempt = 0;
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < RMDIR_TRIES => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(10 * u64::from(attempt)));
            }
            Err(source) => {
                return Err(Error::Remove {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
}

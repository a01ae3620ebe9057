//! Discovery of the host's cgroup mounts and of the caller's position in each.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Which cgroup layout the host uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// Only v1 hierarchies.
    V1,
    /// Only the unified (cgroup2) hierarchy.
    V2,
    /// v1 controller hierarchies plus a cgroup2 mount (usually
    /// `/sys/fs/cgroup/unified`).
    Hybrid,
}

/// One mounted cgroup hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Where the hierarchy is mounted.
    pub mount_point: PathBuf,
    /// `true` for the cgroup2 mount.
    pub v2: bool,
    /// v1: the controllers from the mount options, including `name=systemd`
    /// style named hierarchies. v2: the contents of the mount root's
    /// `cgroup.controllers`.
    pub controllers: Vec<String>,
    /// The mountinfo "root" field (`/` unless a sub-tree is mounted).
    pub root: String,
    /// The caller's own cgroup in this hierarchy (from `/proc/self/cgroup`),
    /// made relative to `root`; always starts with `/`.
    pub own: String,
    /// Name under which the runtime binds this hierarchy into a container's
    /// `/sys/fs/cgroup`: the mount point's basename for v1 (`memory`,
    /// `cpu,cpuacct`, `systemd`) and for the hybrid cgroup2 mount
    /// (`unified`); empty for pure v2.
    pub name: String,
}

impl Mount {
    /// Whether this hierarchy has `controller` (e.g. `"memory"` or `"name=systemd"`).
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

/// The host's cgroup mounts plus the caller's position in each.
#[derive(Debug, Clone)]
pub struct Hierarchy {
    mounts: Vec<Mount>,
    version: Version,
    /// Where to learn which controllers the kernel has, mounted or not.
    kernel: KernelControllers,
}

/// Where the controllers the kernel has (mounted or not) come from: only needed to explain a
/// missing one, so the host's `/proc/cgroups` is read then, not at detection (reading it
/// costs the kernel a walk of every cgroup: some 300 µs on a busy host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KernelControllers {
    /// Not known (a layout from [`Hierarchy::from_parts`]).
    Unknown,
    /// The host's `/proc/cgroups`, read when asked.
    Host,
    /// Given by [`Hierarchy::with_proc_cgroups`].
    Listed(Vec<String>),
}

impl KernelControllers {
    /// The controllers with `enabled` 1; `None` when not known.
    pub(crate) fn get(&self) -> Option<Vec<String>> {
        match self {
            KernelControllers::Unknown => None,
            KernelControllers::Host => std::fs::read_to_string("/proc/cgroups")
                .ok()
                .map(|t| parse_proc_cgroups(&t)),
            KernelControllers::Listed(v) => Some(v.clone()),
        }
    }
}

/// The controllers of a `/proc/cgroups` text whose `enabled` column is 1.
fn parse_proc_cgroups(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f.as_slice() {
                [name, _, _, "1"] => Some(name.to_string()),
                _ => None,
            }
        })
        .collect()
}

/// Mount options of v1 cgroup mounts that are not controllers.
const NON_CONTROLLER_OPTS: &[&str] = &[
    "rw",
    "ro",
    "noprefix",
    "clone_children",
    "xattr",
    "cpuset_v2_mode",
    "favordynmods",
    "nofavordynmods",
];

impl Hierarchy {
    /// Reads `/proc/self/mountinfo` and `/proc/self/cgroup`. (`/proc/cgroups`, the
    /// controllers the kernel has whether mounted or not, is read only to explain a missing
    /// one: see [`Hierarchy::kernel_controllers`].)
    pub fn detect() -> Result<Hierarchy> {
        let mi = crate::fs::read(Path::new("/proc/self/mountinfo"))?;
        let cg = crate::fs::read(Path::new("/proc/self/cgroup"))?;
        let mut h = Self::from_parts(&mi, &cg)?;
        h.kernel = KernelControllers::Host;
        Ok(h)
    }

    /// Takes the controllers the kernel has from the text of a `/proc/cgroups` file (those
    /// with `enabled` 1), so that a setting whose controller no hierarchy mounts can be told
    /// apart from one the kernel lacks. A [`Hierarchy::detect`]ed one reads the real file
    /// when needed; this is for tests against a fake layout.
    pub fn with_proc_cgroups(mut self, proc_cgroups: &str) -> Self {
        self.kernel = KernelControllers::Listed(parse_proc_cgroups(proc_cgroups));
        self
    }

    /// The controllers the kernel has and enables, whether a hierarchy mounts them or not:
    /// the host's `/proc/cgroups` (read now) for a detected hierarchy, what
    /// [`Hierarchy::with_proc_cgroups`] gave, or `None` when not known.
    pub fn kernel_controllers(&self) -> Option<Vec<String>> {
        self.kernel.get()
    }

    pub(crate) fn kernel(&self) -> &KernelControllers {
        &self.kernel
    }

    /// Builds a hierarchy from the text of a mountinfo file and a
    /// `/proc/<pid>/cgroup` file. The cgroup2 mount's controllers are read
    /// from `<mount_point>/cgroup.controllers` when that file exists
    /// (otherwise they are empty); see [`Hierarchy::with_root_prefix`].
    pub fn from_parts(mountinfo: &str, proc_self_cgroup: &str) -> Result<Hierarchy> {
        let own = parse_proc_cgroup(proc_self_cgroup)?;
        let mut mounts: Vec<Mount> = Vec::new();
        for line in mountinfo.lines().filter(|l| !l.trim().is_empty()) {
            let Some(m) = parse_mountinfo_line(line)? else {
                continue;
            };
            // The same hierarchy may be mounted more than once; keep the
            // first mount of each (and a single cgroup2 mount).
            let dup = mounts
                .iter()
                .any(|o| o.v2 == m.v2 && (m.v2 || same_set(&o.controllers, &m.controllers)));
            if !dup {
                mounts.push(m);
            }
        }
        if mounts.is_empty() {
            return Err(Error::Hierarchy(
                "no cgroup or cgroup2 mount found in mountinfo".into(),
            ));
        }
        let has_v1 = mounts.iter().any(|m| !m.v2);
        let has_v2 = mounts.iter().any(|m| m.v2);
        let version = match (has_v1, has_v2) {
            (true, true) => Version::Hybrid,
            (true, false) => Version::V1,
            _ => Version::V2,
        };
        for m in &mut mounts {
            let path = if m.v2 {
                own.iter()
                    .find(|(id, _, _)| *id == 0)
                    .map(|(_, _, p)| p.clone())
            } else {
                own.iter()
                    .find(|(id, ctrls, _)| *id != 0 && same_set(ctrls, &m.controllers))
                    .map(|(_, _, p)| p.clone())
            };
            // A hierarchy we are not listed in (should not happen): treat
            // the caller as sitting at the root.
            let path = path.unwrap_or_else(|| "/".to_string());
            m.own = strip_root(&path, &m.root);
            m.name = if m.v2 && version == Version::V2 {
                String::new()
            } else {
                m.mount_point
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            };
        }
        let mut h = Hierarchy {
            mounts,
            version,
            kernel: KernelControllers::Unknown,
        };
        h.read_v2_controllers();
        Ok(h)
    }

    /// Re-roots every mount point under `prefix` (so `/sys/fs/cgroup`
    /// becomes `<prefix>/sys/fs/cgroup`) and re-reads the cgroup2
    /// controllers from there. Meant for tests against a fake tree.
    pub fn with_root_prefix(mut self, prefix: &Path) -> Self {
        for m in &mut self.mounts {
            let rel = m.mount_point.strip_prefix("/").unwrap_or(&m.mount_point);
            m.mount_point = prefix.join(rel);
        }
        self.read_v2_controllers();
        self
    }

    fn read_v2_controllers(&mut self) {
        for m in self.mounts.iter_mut().filter(|m| m.v2) {
            if let Ok(s) = std::fs::read_to_string(m.mount_point.join("cgroup.controllers")) {
                m.controllers = s.split_whitespace().map(str::to_string).collect();
            }
        }
    }

    /// The host's layout.
    pub fn version(&self) -> Version {
        self.version
    }

    /// All cgroup mounts: v1 ones in mountinfo order, and the cgroup2 one.
    pub fn mounts(&self) -> &[Mount] {
        &self.mounts
    }

    /// The cgroup2 mount, if any.
    pub fn v2_mount(&self) -> Option<&Mount> {
        self.mounts.iter().find(|m| m.v2)
    }

    /// The v1 mount holding `controller`, if any.
    pub fn v1_mount(&self, controller: &str) -> Option<&Mount> {
        self.mounts.iter().find(|m| !m.v2 && m.has(controller))
    }
}

fn same_set(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.contains(x))
}

/// Makes `path` (from /proc/self/cgroup) relative to the mount's root.
fn strip_root(path: &str, root: &str) -> String {
    let root = root.trim_end_matches('/');
    if root.is_empty() {
        return path.to_string();
    }
    match path.strip_prefix(root) {
        Some("") => "/".to_string(),
        Some(rest) if rest.starts_with('/') => rest.to_string(),
        _ => path.to_string(),
    }
}

/// Parses `/proc/self/cgroup` into (hierarchy id, controllers, path).
fn parse_proc_cgroup(s: &str) -> Result<Vec<(u32, Vec<String>, String)>> {
    let mut out = Vec::new();
    for line in s.lines().filter(|l| !l.trim().is_empty()) {
        let mut it = line.splitn(3, ':');
        let (Some(id), Some(ctrls), Some(path)) = (it.next(), it.next(), it.next()) else {
            return Err(Error::Hierarchy(format!(
                "malformed /proc/self/cgroup line {line:?}"
            )));
        };
        let id = id.parse::<u32>().map_err(|e| {
            Error::Hierarchy(format!("malformed /proc/self/cgroup line {line:?}: {e}"))
        })?;
        let ctrls = ctrls
            .split(',')
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect();
        out.push((id, ctrls, path.to_string()));
    }
    Ok(out)
}

/// Parses one mountinfo line; `None` when it is not a cgroup mount.
fn parse_mountinfo_line(line: &str) -> Result<Option<Mount>> {
    let bad = || Error::Hierarchy(format!("malformed mountinfo line {line:?}"));
    let (pre, post) = line.split_once(" - ").ok_or_else(bad)?;
    let pre: Vec<&str> = pre.split(' ').collect();
    let post: Vec<&str> = post.split(' ').collect();
    if pre.len() < 5 || post.len() < 2 {
        return Err(bad());
    }
    let fstype = post[0];
    let v2 = match fstype {
        "cgroup2" => true,
        "cgroup" => false,
        _ => return Ok(None),
    };
    let controllers = if v2 {
        Vec::new()
    } else {
        post.get(2)
            .copied()
            .unwrap_or("")
            .split(',')
            .filter(|o| !o.is_empty() && !NON_CONTROLLER_OPTS.contains(o))
            .filter(|o| !o.contains('=') || o.starts_with("name="))
            .map(str::to_string)
            .collect()
    };
    Ok(Some(Mount {
        mount_point: PathBuf::from(unescape(pre[4])),
        v2,
        controllers,
        root: unescape(pre[3]),
        own: "/".to_string(),
        name: String::new(),
    }))
}

/// Undoes mountinfo's octal escapes (`\040` for a space, etc.).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = u32::from(b[i + 1] - b'0') * 64
                + u32::from(b[i + 2] - b'0') * 8
                + u32::from(b[i + 3] - b'0');
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1_MOUNTINFO: &str = "\
25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 25 0:27 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
32 31 0:28 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,xattr,release_agent=/lib/systemd/systemd-cgroups-agent,name=systemd
35 31 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,cpu,cpuacct
36 31 0:32 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,memory
37 31 0:33 /docker/abc /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:18 - cgroup cgroup rw,pids
38 31 0:34 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:19 - cgroup cgroup rw,net_cls,net_prio
39 31 0:32 / /mnt/memory\\040again rw,relatime - cgroup cgroup rw,memory
";
    const V1_CGROUP: &str = "\
12:pids:/docker/abc/sub
11:net_cls,net_prio:/
4:memory:/user.slice/user-0.slice
3:cpu,cpuacct:/user.slice
1:name=systemd:/user.slice/user-0.slice/session-1.scope
";

    #[test]
    fn pure_v1_sample() {
        let h = Hierarchy::from_parts(V1_MOUNTINFO, V1_CGROUP).unwrap();
        assert_eq!(h.version(), Version::V1);
        // The second memory mount is a duplicate and dropped.
        assert_eq!(h.mounts().len(), 5);
        assert!(h.v2_mount().is_none());
        let sd = h.v1_mount("name=systemd").unwrap();
        assert_eq!(sd.controllers, ["name=systemd"]);
        assert_eq!(sd.own, "/user.slice/user-0.slice/session-1.scope");
        assert_eq!(sd.name, "systemd");
        let cpu = h.v1_mount("cpuacct").unwrap();
        assert_eq!(cpu.controllers, ["cpu", "cpuacct"]);
        assert_eq!(cpu.name, "cpu,cpuacct");
        assert_eq!(cpu.own, "/user.slice");
        let pids = h.v1_mount("pids").unwrap();
        assert_eq!(pids.root, "/docker/abc");
        assert_eq!(pids.own, "/sub");
        assert_eq!(h.v1_mount("net_prio").unwrap().own, "/");
        assert_eq!(
            h.v1_mount("memory").unwrap().mount_point,
            Path::new("/sys/fs/cgroup/memory")
        );
    }

    #[test]
    fn pure_v2_sample() {
        let mi = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";
        let h =
            Hierarchy::from_parts(mi, "0::/user.slice/user-1000.slice/session-2.scope\n").unwrap();
        assert_eq!(h.version(), Version::V2);
        assert_eq!(h.mounts().len(), 1);
        let m = h.v2_mount().unwrap();
        assert_eq!(m.mount_point, Path::new("/sys/fs/cgroup"));
        assert_eq!(m.own, "/user.slice/user-1000.slice/session-2.scope");
        assert_eq!(m.name, "");
        assert_eq!(m.root, "/");
    }

    #[test]
    fn hybrid_sample_names_unified() {
        let mi = "\
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
        let h = Hierarchy::from_parts(mi, "1:name=systemd:/a\n0::/a\n").unwrap();
        assert_eq!(h.version(), Version::Hybrid);
        assert_eq!(h.v2_mount().unwrap().name, "unified");
        assert_eq!(h.v2_mount().unwrap().own, "/a");
    }

    #[test]
    fn this_host() {
        let h = Hierarchy::detect().unwrap();
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        for m in h.mounts() {
            assert!(m.mount_point.is_dir(), "{}", m.mount_point.display());
            if m.v2 {
                assert!(own.lines().any(|l| l == format!("0::{}", m.own)), "{own}");
                let c = std::fs::read_to_string(m.mount_point.join("cgroup.controllers")).unwrap();
                assert_eq!(m.controllers.join(" "), c.trim());
            } else {
                let line = format!(":{}:{}", m.controllers.join(","), m.own);
                assert!(own.lines().any(|l| l.ends_with(&line)), "{line} in {own}");
            }
        }
        let has_v1 = h.mounts().iter().any(|m| !m.v2);
        let has_v2 = h.v2_mount().is_some();
        let want = match (has_v1, has_v2) {
            (true, true) => Version::Hybrid,
            (true, false) => Version::V1,
            _ => Version::V2,
        };
        assert_eq!(h.version(), want);
    }

    #[test]
    fn proc_cgroups_lists_enabled_controllers() {
        let pc = "#subsys_name\thierarchy\tnum_cgroups\tenabled\n\
                  cpu\t1\t1\t1\nnet_cls\t0\t1\t1\nnet_prio\t0\t1\t1\nrdma\t0\t1\t0\n";
        let h = Hierarchy::from_parts(V1_MOUNTINFO, V1_CGROUP).unwrap();
        assert_eq!(h.kernel_controllers(), None);
        let h = h.with_proc_cgroups(pc);
        assert_eq!(
            h.kernel_controllers().unwrap(),
            ["cpu", "net_cls", "net_prio"]
        );
        // The host's, read when asked: every controller mounted here is among them.
        let host = Hierarchy::detect().unwrap();
        let k = host.kernel_controllers().unwrap();
        for m in host.mounts().iter().filter(|m| !m.v2) {
            for c in m.controllers.iter().filter(|c| !c.starts_with("name=")) {
                assert!(k.contains(c), "{c} not in {k:?}");
            }
        }
    }

    #[test]
    fn malformed_input() {
        assert!(Hierarchy::from_parts("garbage", "0::/").is_err());
        assert!(Hierarchy::from_parts("", "0::/").is_err());
        let mi = "41 31 0:38 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        assert!(Hierarchy::from_parts(mi, "x:y").is_err());
    }

    #[test]
    fn unescape_octal() {
        assert_eq!(unescape("/a\\040b\\134c"), "/a b\\c");
        assert_eq!(unescape("/trailing\\04"), "/trailing\\04");
    }
}

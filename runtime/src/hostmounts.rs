//! The mounts a container without a mount namespace of its own makes in the host's mount
//! namespace (its /proc, /dev, binds... inside its root): found by comparing the host's
//! mount table under the root before and after its set-up, kept in its state, and removed
//! when it is deleted (or when its create fails), so that the host's mount table is left as
//! it was.
//!
//! It also holds the runtime's one reader of `/proc/self/mountinfo` ([`mountinfo`]). The
//! leaf crates (`cgroup`, `unionfs`) read it on their own: they depend on nothing of ours.
#![deny(clippy::undocumented_unsafe_blocks)]

use std::collections::HashSet;
use std::ffi::OsString;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use crate::state::HostMount;

/// One line of `/proc/PID/mountinfo` (proc(5)), its paths unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    /// The mount's id (as `statx`'s `STATX_MNT_ID` gives it).
    pub id: u64,
    pub parent: u64,
    /// The directory of the filesystem that forms the mount's root.
    pub root: PathBuf,
    pub mount_point: PathBuf,
    /// The per-mount options (`rw,nosuid,relatime`).
    pub options: String,
    /// The optional fields (`shared:N`, `master:N`, `unbindable`...).
    pub optional: Vec<String>,
    pub fstype: String,
    pub source: PathBuf,
    /// The per-superblock options.
    pub super_options: String,
}

/// Parses mountinfo text; a line that does not have the shape of one is skipped.
pub fn parse_mountinfo(text: &str) -> Vec<MountInfo> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<MountInfo> {
    let mut f = line.split(' ');
    let id = f.next()?.parse().ok()?;
    let parent = f.next()?.parse().ok()?;
    let _dev = f.next()?;
    let root = unescape(f.next()?);
    let mount_point = unescape(f.next()?);
    let options = f.next()?.to_string();
    let mut optional = Vec::new();
    loop {
        match f.next()? {
            "-" => break,
            o => optional.push(o.to_string()),
        }
    }
    Some(MountInfo {
        id,
        parent,
        root,
        mount_point,
        options,
        optional,
        fstype: f.next()?.to_string(),
        source: unescape(f.next()?),
        super_options: f.next().unwrap_or_default().to_string(),
    })
}

/// This process's mount table, in its order (empty when it cannot be read).
pub fn mountinfo() -> Vec<MountInfo> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|t| parse_mountinfo(&t))
        .unwrap_or_default()
}

/// Undoes the kernel's octal escapes of a mountinfo field: `\NNN` for each byte it escapes
/// (a space, a tab, a newline, a backslash; `#` in some fields). Bytes are kept as they are,
/// not read as UTF-8.
pub fn unescape(s: &str) -> PathBuf {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)))
            .map(|d| d.iter().fold(0u32, |n, c| n * 8 + u32::from(c - b'0')))
            .and_then(|n| u8::try_from(n).ok());
        match octal {
            Some(c) => {
                out.push(c);
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    PathBuf::from(OsString::from_vec(out))
}

/// The mount point of the mount that holds `path` (the last, topmost, of the longest match
/// in this process's mount table).
pub fn mount_point_of(path: &Path) -> Option<PathBuf> {
    let mut best: Option<PathBuf> = None;
    for m in mountinfo() {
        if path.starts_with(&m.mount_point)
            && best
                .as_ref()
                .is_none_or(|b| m.mount_point.components().count() >= b.components().count())
        {
            best = Some(m.mount_point);
        }
    }
    best
}

/// (mount id, mount point) of each mount at or below `root`, in mount table order.
fn under(root: &Path) -> Vec<(u64, PathBuf)> {
    mountinfo()
        .into_iter()
        .filter(|m| m.mount_point.starts_with(root))
        .map(|m| (m.id, m.mount_point))
        .collect()
}

/// The host's mounts under a root before a container's set-up; what was mounted there
/// since is unmounted on drop unless [`HostMounts::keep`] is called.
pub struct HostMounts {
    root: PathBuf,
    before: HashSet<u64>,
    armed: bool,
}

impl HostMounts {
    /// Notes the mounts at or below `root` now.
    pub fn snapshot(root: &Path) -> HostMounts {
        let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
        let before = under(&root).into_iter().map(|(id, _)| id).collect();
        HostMounts {
            root,
            before,
            armed: true,
        }
    }

    /// The mounts made under the root since the snapshot, in the order they were made.
    pub fn made(&self) -> Vec<HostMount> {
        under(&self.root)
            .into_iter()
            .filter(|(id, _)| !self.before.contains(id))
            .map(|(id, path)| HostMount { path, id })
            .collect()
    }

    /// Keeps the mounts (the container lives on, its state holds them).
    pub fn keep(mut self) {
        self.armed = false;
    }
}

impl Drop for HostMounts {
    fn drop(&mut self) {
        if self.armed {
            if let Err((p, e)) = unmount(&self.made()) {
                tracing::warn!("cleanup: unmounting {}: {e}", p.display());
            }
        }
    }
}

/// Unmounts (detaches) `mounts`, deepest and latest first. A mount point is reached without
/// following any symlink (a container sharing the host's mount namespace must not turn a
/// mount point's parent into a link to a host mount), and only the mount found there with
/// the recorded id is unmounted; a mount already gone is skipped. Every one is tried; the
/// first failure is returned.
pub fn unmount(mounts: &[HostMount]) -> Result<(), (PathBuf, Errno)> {
    let mut order: Vec<(usize, &HostMount)> = mounts.iter().enumerate().collect();
    // Deepest first; of mounts stacked at one point, the latest first.
    order.sort_by(|a, b| {
        b.1.path
            .components()
            .count()
            .cmp(&a.1.path.components().count())
            .then(b.0.cmp(&a.0))
    });
    let mut first = None;
    for (_, m) in order {
        if let Err(e) = unmount_one(m) {
            first.get_or_insert((m.path.clone(), e));
        }
    }
    match first {
        Some(f) => Err(f),
        None => Ok(()),
    }
}

fn unmount_one(m: &HostMount) -> Result<(), Errno> {
    let fd = match crate::in_root::openat2(
        libc::AT_FDCWD,
        &m.path,
        libc::O_PATH | libc::O_NOFOLLOW,
        libc::RESOLVE_NO_SYMLINKS,
    ) {
        Ok(fd) => fd,
        Err(e) => {
            return match Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)) {
                Errno::ENOENT | Errno::ENOTDIR => Ok(()),
                e => Err(e),
            }
        }
    };
    // SAFETY: `statx` is a C struct of integers, for which all zeroes is a valid value.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is an open fd owned here, the path is a NUL-terminated empty string (with
    // AT_EMPTY_PATH: `fd` itself), and `st` is a writable statx the kernel fills.
    let r = unsafe {
        libc::statx(
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            libc::STATX_MNT_ID,
            &mut st,
        )
    };
    if r < 0 {
        return Err(Errno::last());
    }
    // The mount at the path now: ours, or gone (another one, or none, is left alone).
    if st.stx_mask & libc::STATX_MNT_ID == 0 || st.stx_mnt_id != m.id {
        return Ok(());
    }
    let proc = format!("/proc/self/fd/{}", fd.as_raw_fd());
    match nix::mount::umount2(proc.as_str(), nix::mount::MntFlags::MNT_DETACH) {
        Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every octal escape the kernel writes is undone (a space, a tab, a newline and a
    /// backslash in one path), in each path field; other bytes are kept as they are.
    #[test]
    fn mountinfo_lines_are_parsed_and_unescaped() {
        let text = "36 35 98:0 /mnt\\134x /a\\040b\\011c\\012d\\134e rw,noatime master:1 shared:2 - ext3 /dev/ro\\040ot rw,errors=continue\n\
                    bad line\n\
                    40 36 0:5 / /plain\\ rw - tmpfs none rw\n";
        let m = parse_mountinfo(text);
        assert_eq!(m.len(), 2, "{m:?}");
        assert_eq!(
            m[0],
            MountInfo {
                id: 36,
                parent: 35,
                root: PathBuf::from("/mnt\\x"),
                mount_point: PathBuf::from("/a b\tc\nd\\e"),
                options: "rw,noatime".into(),
                optional: vec!["master:1".into(), "shared:2".into()],
                fstype: "ext3".into(),
                source: PathBuf::from("/dev/ro ot"),
                super_options: "rw,errors=continue".into(),
            }
        );
        // A backslash not followed by three octal digits stays.
        assert_eq!(m[1].mount_point, PathBuf::from("/plain\\"));
        assert_eq!(unescape("\\400\\08\\1"), PathBuf::from("\\400\\08\\1"));
        assert_eq!(
            unescape("/\\377"),
            PathBuf::from(OsString::from_vec(vec![b'/', 0xff]))
        );
    }

    /// A mount whose path holds every byte the kernel escapes is found under its root and
    /// removed.
    #[test]
    fn mounts_at_paths_the_kernel_escapes_are_found() {
        if !nix::unistd::geteuid().is_root() {
            panic!("this test needs root (it mounts tmpfs)");
        }
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let odd = root.join("a b\tc\nd\\e");
        std::fs::create_dir(&odd).unwrap();
        let snap = HostMounts::snapshot(&root);
        nix::mount::mount(
            Some("tmpfs"),
            &odd,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .unwrap();
        let made = snap.made();
        let paths: Vec<&Path> = made.iter().map(|m| m.path.as_path()).collect();
        assert_eq!(paths, vec![odd.as_path()]);
        assert_eq!(mount_point_of(&odd.join("f")), Some(odd.clone()));
        // Dropping the snapshot unmounts what was made since.
        drop(snap);
        assert!(under(&root).is_empty(), "{:?}", under(&root));
    }

    /// Mounts made under a directory after the snapshot are found and removed; those made
    /// before, and the directory's own, are kept; a symlink on the way is not followed.
    #[test]
    fn made_mounts_are_found_and_removed() {
        if !nix::unistd::geteuid().is_root() {
            panic!("this test needs root (it mounts tmpfs)");
        }
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let tmpfs = |p: &Path| {
            std::fs::create_dir_all(p).unwrap();
            nix::mount::mount(
                Some("tmpfs"),
                p,
                Some("tmpfs"),
                nix::mount::MsFlags::empty(),
                None::<&str>,
            )
            .unwrap();
        };
        tmpfs(&root.join("old"));
        let snap = HostMounts::snapshot(&root);
        tmpfs(&root.join("a"));
        tmpfs(&root.join("a/b"));
        tmpfs(&root.join("a/b"));
        let made = snap.made();
        snap.keep();
        let paths: Vec<&Path> = made.iter().map(|m| m.path.as_path()).collect();
        assert_eq!(
            paths,
            vec![root.join("a"), root.join("a/b"), root.join("a/b")]
        );
        // A path through a symlink is refused, not followed.
        std::os::unix::fs::symlink(root.join("a"), root.join("link")).unwrap();
        let via_link = HostMount {
            path: root.join("link/b"),
            id: made[2].id,
        };
        assert_eq!(
            unmount(&[via_link]),
            Err((root.join("link/b"), Errno::ELOOP))
        );
        // A mount of another id at a recorded point is left alone.
        let other = HostMount {
            path: root.join("old"),
            id: made[0].id,
        };
        unmount(&[other]).unwrap();
        unmount(&made).unwrap();
        let left: Vec<PathBuf> = under(&root).into_iter().map(|(_, p)| p).collect();
        assert_eq!(left, vec![root.join("old")]);
        // Already gone: nothing to do.
        unmount(&made).unwrap();
        nix::mount::umount2(&root.join("old"), nix::mount::MntFlags::MNT_DETACH).unwrap();
    }
}

//! The mounts a container without a mount namespace of its own makes in the host's mount
//! namespace (its /proc, /dev, binds... inside its root): found by comparing the host's
//! mount table under the root before and after its set-up, kept in its state, and removed
//! when it is deleted (or when its create fails), so that the host's mount table is left as
//! it was.

use std::collections::HashSet;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use crate::state::HostMount;

/// (mount id, mount point) of each mount at or below `root`, in mount table order.
fn under(root: &Path) -> Vec<(u64, PathBuf)> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    info.lines()
        .filter_map(|l| {
            let mut f = l.split(' ');
            let id = f.next()?.parse().ok()?;
            let mp = PathBuf::from(crate::prepare::unescape_mountinfo(f.nth(3)?));
            mp.starts_with(root).then_some((id, mp))
        })
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
    let c = CString::new(m.path.as_os_str().as_encoded_bytes()).map_err(|_| Errno::EINVAL)?;
    // SAFETY: open_how is plain data; all zeroes is its default.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_PATH | libc::O_CLOEXEC | libc::O_NOFOLLOW) as u64;
    how.resolve = libc::RESOLVE_NO_SYMLINKS;
    // SAFETY: openat2 with a C string and a properly sized open_how.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            libc::AT_FDCWD,
            c.as_ptr(),
            &mut how as *mut libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    } as i32;
    if fd < 0 {
        return match Errno::last() {
            Errno::ENOENT | Errno::ENOTDIR => Ok(()),
            e => Err(e),
        };
    }
    // SAFETY: a fresh fd owned here.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: statx is plain data.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: statx on an owned fd into that struct.
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

    /// Mounts made under a directory after the snapshot are found and removed; those made
    /// before, and the directory's own, are kept; a symlink on the way is not followed.
    #[test]
    fn made_mounts_are_found_and_removed() {
        // SAFETY: plain getter.
        if unsafe { libc::geteuid() } != 0 {
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

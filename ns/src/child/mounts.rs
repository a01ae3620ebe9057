//! Paths inside the root and the mounts made on them: every lookup stays inside the root
//! (`RESOLVE_IN_ROOT`), or is one component, never through a symlink, right in a tmpfs the
//! child has just mounted (`crate::plan::Fresh`); every step on a bind mount acts on the mount
//! made (CVE-2021-30465); and the read-only paths.
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unreachable,
    clippy::todo,
    clippy::unimplemented,
    clippy::string_slice
)]

use std::ffi::CStr;

use libc::{c_int, c_ulong};

use super::{check, fail, fd_of, raw, Fd, R};
use crate::plan::{Mount, Target};
use crate::sys::{self, errno, set_errno, FdPath};
use crate::Step;

/// No source (or no filesystem type) for [`raw::mount`].
pub(super) const NONE: Option<&CStr> = None;

pub(super) const IN_ROOT: u64 = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;

/// Opens `path` (relative to the root) without leaving the root.
pub(super) fn resolve(root: c_int, path: &CStr, extra: c_int) -> c_int {
    if path.to_bytes().is_empty() {
        return raw::fcntl(root, libc::F_DUPFD_CLOEXEC, 3);
    }
    sys::openat2(
        root,
        path,
        (libc::O_PATH | libc::O_CLOEXEC | extra) as u64,
        IN_ROOT,
    )
}

/// Creates the parent directories of `t` (all but its last component) inside the root and
/// returns an fd of the parent directory.
pub(super) fn ensure_parent(root: c_int, t: &Target, step: Step, idx: usize) -> R<Dir> {
    // In the root itself: the root's fd, not a copy of it.
    if t.parent().to_bytes().is_empty() {
        return Ok(Dir {
            fd: root,
            owned: false,
        });
    }
    // The parent is most often there (`/dev` of every device, symlink and mask): one lookup,
    // and the walk that makes each missing component only when it is not.
    let fd = resolve(root, t.parent(), libc::O_DIRECTORY);
    if fd >= 0 {
        return Ok(Dir { fd, owned: true });
    }
    if errno() != libc::ENOENT {
        return fail(step, idx);
    }
    let n = t.components.len();
    for (parent, name) in t.components.iter().take(n.saturating_sub(1)) {
        mkdir_in(root, parent, name, step, idx)?;
    }
    let fd = resolve(root, t.parent(), libc::O_DIRECTORY);
    if fd < 0 {
        return fail(step, idx);
    }
    Ok(Dir { fd, owned: true })
}

/// A directory's fd: one opened here (closed when dropped), or the root's (borrowed).
pub(super) struct Dir {
    pub fd: c_int,
    owned: bool,
}

impl Dir {
    /// `fd`, which someone else closes.
    pub(super) fn borrowed(fd: c_int) -> Dir {
        Dir { fd, owned: false }
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        if self.owned && self.fd >= 0 {
            raw::close(self.fd);
        }
    }
}

/// Where a mount goes besides its path in the root: into a tmpfs the child has just mounted
/// (`parent`: an fd of that tmpfs's root, its target's directory), or onto it (`same`: a
/// remount of that tmpfs); -1 each when not (see `crate::plan::Fresh`).
#[derive(Clone, Copy)]
pub(super) struct At {
    pub parent: c_int,
    pub same: c_int,
}

/// The last component of `t` in the directory `dir` (a fresh tmpfs): made if missing, opened
/// without following a symlink.
fn fresh_dir(dir: c_int, t: &Target, step: Step, idx: usize) -> R<Fd> {
    let Some((_, name)) = t.components.last() else {
        set_errno(libc::EINVAL);
        return fail(step, idx);
    };
    if raw::mkdirat(dir, name, 0o755) < 0 && errno() != libc::EEXIST {
        return fail(step, idx);
    }
    let fd = raw::openat(
        dir,
        name,
        libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        0,
    );
    if fd < 0 {
        return fail(step, idx);
    }
    Ok(Fd(fd))
}

/// An fd of the root of mount `m`, just made (`at.parent`: as [`At`]); -1 if it cannot be
/// opened (its items are then made as any other).
pub(super) fn reopen(root: c_int, m: &Mount, at: At) -> c_int {
    match (at.parent >= 0, m.target.components.last()) {
        (true, Some((_, name))) => raw::openat(
            at.parent,
            name,
            libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            0,
        ),
        _ => resolve(root, &m.target.path, libc::O_DIRECTORY | plain_dir(m)),
    }
}

fn mkdir_in(root: c_int, parent: &CStr, name: &CStr, step: Step, idx: usize) -> R {
    let p = Fd(resolve(root, parent, libc::O_DIRECTORY));
    if p.0 < 0 {
        return fail(step, idx);
    }
    if raw::mkdirat(p.0, name, 0o755) < 0 && errno() != libc::EEXIST {
        return fail(step, idx);
    }
    Ok(())
}

/// Resolves `t` inside the root, creating it (a directory, or an empty file) if missing.
/// `extra` flags apply to the opening of `t` itself (`O_NOFOLLOW|O_DIRECTORY`: a symlink or
/// non-directory as the last component fails, ENOTDIR).
fn ensure(root: c_int, t: &Target, is_file: bool, extra: c_int, step: Step, idx: usize) -> R<Fd> {
    let fd = resolve(root, &t.path, extra);
    if fd >= 0 {
        return Ok(Fd(fd));
    }
    if errno() != libc::ENOENT {
        return fail(step, idx);
    }
    let p = ensure_parent(root, t, step, idx)?;
    if let Some((_, name)) = t.components.last() {
        if is_file {
            let f = raw::openat(
                p.fd,
                name,
                libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
                0o644,
            );
            if f < 0 && errno() != libc::EEXIST {
                return fail(step, idx);
            }
            drop(Fd(f));
        } else if raw::mkdirat(p.fd, name, 0o755) < 0 && errno() != libc::EEXIST {
            return fail(step, idx);
        }
    }
    let fd = resolve(root, &t.path, extra);
    if fd < 0 {
        return fail(step, idx);
    }
    Ok(Fd(fd))
}

/// Mount flags the kernel may have locked on the mount at `fd` (they must be kept on remount).
pub(super) fn locked_flags(fd: c_int) -> c_ulong {
    // The raw syscall: glibc's fstatvfs may read /proc/mounts and allocate.
    let mut st = sys::KStatfs::default();
    if sys::fstatfs(fd, &mut st) < 0 {
        return 0;
    }
    flags_of(&st)
}

/// [`locked_flags`] of the mount at `path` (one `statfs`, no fd).
pub(super) fn locked_flags_of(path: &CStr) -> c_ulong {
    let mut st = sys::KStatfs::default();
    if sys::statfs(path, &mut st) < 0 {
        return 0;
    }
    flags_of(&st)
}

fn flags_of(st: &sys::KStatfs) -> c_ulong {
    let f = st.f_flags as c_ulong;
    let mut out = 0;
    for (st_flag, ms_flag) in [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
        (libc::ST_RDONLY, libc::MS_RDONLY),
    ] {
        if f & st_flag as c_ulong != 0 {
            out |= ms_flag;
        }
    }
    out
}

/// Makes mount `i`. A bind mount (and an idmapped one, made detached by the parent) is made
/// as a detached mount, given its flags and recursive attributes before it is attached, moved
/// onto the mount point resolved once inside the root, and given its propagation through the
/// same fd: every step acts on the mount made, never on its path looked up again, which a
/// racer sharing a volume could swap for a symlink in between (CVE-2021-30465). Without the
/// new mount API (ENOSYS) a bind takes the `mount(2)` steps of [`legacy_mount`].
///
/// `at` says where it goes when that is a tmpfs the child has just mounted: a mount point in
/// it is made and opened there, one component, never through a symlink; a remount of it acts
/// on its root's fd.
pub(super) fn do_mount(root: c_int, i: usize, m: &Mount, at: At) -> R {
    if at.same >= 0 {
        return remount_fresh(i, m, at.same);
    }
    if let Some(d) = &m.detached {
        return attach(root, i, m, fd_of(d), at);
    }
    if let (true, Some(src)) = (is_new_bind(m), &m.source) {
        let rec = if m.flags & libc::MS_REC != 0 {
            sys::AT_RECURSIVE
        } else {
            0
        };
        let tree = sys::open_tree(libc::AT_FDCWD, src, sys::OPEN_TREE_CLONE | rec);
        if tree >= 0 {
            let tree = Fd(tree);
            if let Some(flags) = m.remount_flags {
                let (set, clr) = sys::bind_attr(flags);
                if sys::mount_setattr_fd(tree.0, 0, set, clr, 0) < 0 {
                    return fail(Step::MountRemount, i);
                }
            }
            return attach(root, i, m, tree.0, at);
        }
        if errno() != libc::ENOSYS {
            return fail(Step::Mount, i);
        }
    }
    legacy_mount(root, i, m, at)
}

/// A remount of the tmpfs whose root is `fd` (the child mounted it): its flags, then its
/// recursive attributes and propagation, through that fd.
fn remount_fresh(i: usize, m: &Mount, fd: c_int) -> R {
    let p = FdPath::new(fd);
    check(
        raw::mount(m.source.as_deref(), &p, None, m.flags, m.data.as_deref()),
        Step::Mount,
        i,
    )?;
    if let Some((set, clr)) = m.recursive_attr {
        if sys::mount_setattr_fd(fd, sys::AT_RECURSIVE, set, clr, 0) < 0 {
            return fail(Step::MountAttr, i);
        }
    }
    if m.propagation != 0 {
        check(
            raw::mount(NONE, &p, None, m.propagation, None),
            Step::MountPropagation,
            i,
        )?;
    }
    Ok(())
}

/// A new bind mount (not a remount).
fn is_new_bind(m: &Mount) -> bool {
    m.flags & libc::MS_BIND != 0 && m.flags & libc::MS_REMOUNT == 0 && m.fstype.is_none()
}

/// Gives the detached mount `tree` its recursive attributes, moves it onto its mount point
/// and gives it its propagation, all through `tree`.
fn attach(root: c_int, i: usize, m: &Mount, tree: c_int, at: At) -> R {
    if let Some((set, clr)) = m.recursive_attr {
        if sys::mount_setattr_fd(tree, sys::AT_RECURSIVE, set, clr, 0) < 0 {
            return fail(Step::MountAttr, i);
        }
    }
    match (at.parent >= 0 && !m.is_file, m.target.components.last()) {
        // Into a fresh tmpfs: the directory made there, the mount moved onto its name (one
        // component, its symlink not followed).
        (true, Some((_, name))) => {
            if raw::mkdirat(at.parent, name, 0o755) < 0 && errno() != libc::EEXIST {
                return fail(Step::MountPoint, i);
            }
            if sys::move_mount_at(tree, at.parent, name) < 0 {
                return fail(Step::Mount, i);
            }
        }
        _ => {
            let fd = ensure(
                root,
                &m.target,
                m.is_file,
                plain_dir(m),
                Step::MountPoint,
                i,
            )?;
            if sys::move_mount_fd(tree, fd.0) < 0 {
                return fail(Step::Mount, i);
            }
        }
    }
    if m.propagation != 0 {
        // Now attached: `tree` is the mount's root in this namespace.
        let rec = if m.propagation & libc::MS_REC != 0 {
            sys::AT_RECURSIVE
        } else {
            0
        };
        let prop = m.propagation & !libc::MS_REC;
        if sys::mount_setattr_fd(tree, rec, 0, 0, prop) < 0 {
            return fail(Step::MountPropagation, i);
        }
    }
    Ok(())
}

/// proc and sysfs go onto a real directory only, never through a symlink (CVE-2019-19921):
/// the lookup of their mount point does not follow one.
fn plain_dir(m: &Mount) -> c_int {
    if m.plain_dir {
        libc::O_NOFOLLOW | libc::O_DIRECTORY
    } else {
        0
    }
}

/// A mount with `mount(2)`: a filesystem (its flags in the one call), or a bind where the new
/// mount API is missing. The steps that follow (a bind's flags, the recursive attributes, the
/// propagation) find the mount by its path again, and take what they find only if it is the
/// mount made: the youngest mount on the mount the target was on ([`made_mount`]); a racer
/// who swapped the path in between fails the create instead of redirecting the step.
fn legacy_mount(root: c_int, i: usize, m: &Mount, at: At) -> R {
    let below = {
        let fd = if at.parent >= 0 && !m.is_file {
            fresh_dir(at.parent, &m.target, Step::MountPoint, i)?
        } else {
            ensure(
                root,
                &m.target,
                m.is_file,
                plain_dir(m),
                Step::MountPoint,
                i,
            )?
        };
        let steps_after =
            m.remount_flags.is_some() || m.recursive_attr.is_some() || m.propagation != 0;
        let below = if steps_after { sys::mount_id(fd.0) } else { 0 };
        let p = FdPath::new(fd.0);
        check(
            raw::mount(
                m.source.as_deref(),
                &p,
                m.fstype.as_deref(),
                m.flags,
                m.data.as_deref(),
            ),
            Step::Mount,
            i,
        )?;
        below
    };
    // A remount changes the mount that was there; anything else made a new one on it.
    let remount = m.flags & libc::MS_REMOUNT != 0;
    if let Some(flags) = m.remount_flags {
        let fd = made_mount(root, i, m, below, remount, Step::MountRemount)?;
        let p = FdPath::new(fd.0);
        let keep = locked_flags(fd.0) & !libc::MS_RDONLY;
        check(
            raw::mount(
                NONE,
                &p,
                None,
                libc::MS_BIND | libc::MS_REMOUNT | flags | keep,
                None,
            ),
            Step::MountRemount,
            i,
        )?;
    }
    if let Some((set, clr)) = m.recursive_attr {
        // The mount now at the target and every mount under it.
        let fd = made_mount(root, i, m, below, remount, Step::MountAttr)?;
        if sys::mount_setattr_fd(fd.0, sys::AT_RECURSIVE, set, clr, 0) < 0 {
            return fail(Step::MountAttr, i);
        }
    }
    if m.propagation != 0 {
        let fd = made_mount(root, i, m, below, remount, Step::MountPropagation)?;
        let p = FdPath::new(fd.0);
        check(
            raw::mount(NONE, &p, None, m.propagation, None),
            Step::MountPropagation,
            i,
        )?;
    }
    Ok(())
}

/// The mount made by [`legacy_mount`], its target resolved again (a fresh fd: the one the
/// mount was made on points below it). `below` is the unique id of the mount the target was
/// on before (0: unknown). The mount found must be the youngest mount on `below` (for a
/// remount: `below` itself): this process is the only one that mounts in its namespace while
/// it is set up, so the youngest child of `below` is the one it just made (listmount, Linux
/// 6.8; without it the mount found is taken as before). Otherwise: EBUSY.
fn made_mount(root: c_int, i: usize, m: &Mount, below: u64, remount: bool, step: Step) -> R<Fd> {
    let fd = Fd(resolve(root, &m.target.path, 0));
    if fd.0 < 0 {
        return fail(step, i);
    }
    if below == 0 {
        return Ok(fd);
    }
    let found = sys::mount_id(fd.0);
    let ok = if remount {
        found == below
    } else {
        match (
            sys::first_child_after(below, found.saturating_sub(1)),
            sys::first_child_after(below, found),
        ) {
            // listmount is missing: nothing to check with.
            (None, _) | (_, None) => true,
            (Some(next), Some(after)) => next == found && after == 0,
        }
    };
    if !ok || found == 0 {
        set_errno(libc::EBUSY);
        return fail(step, i);
    }
    Ok(fd)
}

/// Makes the path `t` read-only: a recursive bind of the path onto itself, made read-only
/// while detached and moved onto the fd it was copied from (one lookup, no path looked up
/// again). Without the new mount API, `mount(2)` through `/proc/self/fd/N`.
pub(super) fn readonly_path(root: c_int, i: usize, t: &Target) -> R {
    let fd = Fd(resolve(root, &t.path, libc::O_NOFOLLOW));
    if fd.0 < 0 {
        if errno() == libc::ENOENT {
            return Ok(());
        }
        return fail(Step::ReadonlyPath, i);
    }
    let tree = Fd(sys::open_tree(
        fd.0,
        c"",
        sys::OPEN_TREE_CLONE | sys::AT_RECURSIVE | libc::AT_EMPTY_PATH as libc::c_uint,
    ));
    if tree.0 >= 0 {
        // The top mount only, as the remount below (the mounts under it keep their flags).
        if sys::mount_setattr_fd(tree.0, 0, libc::MOUNT_ATTR_RDONLY, 0, 0) < 0
            || sys::move_mount_fd(tree.0, fd.0) < 0
        {
            return fail(Step::ReadonlyPath, i);
        }
        return Ok(());
    }
    if errno() != libc::ENOSYS {
        return fail(Step::ReadonlyPath, i);
    }
    {
        let p = FdPath::new(fd.0);
        check(
            raw::mount(Some(&p), &p, None, libc::MS_BIND | libc::MS_REC, None),
            Step::ReadonlyPath,
            i,
        )?;
    }
    let fd = Fd(resolve(root, &t.path, libc::O_NOFOLLOW));
    if fd.0 < 0 {
        return fail(Step::ReadonlyPath, i);
    }
    let p = FdPath::new(fd.0);
    let keep = locked_flags(fd.0);
    check(
        raw::mount(
            NONE,
            &p,
            None,
            libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_REC | keep,
            None,
        ),
        Step::ReadonlyPath,
        i,
    )?;
    Ok(())
}

//! The root filesystem: its propagation and bind in the container's mount namespace, what
//! goes inside it (mounts, devices, symlinks, masks, read-only paths), the runtime's hooks,
//! then `pivot_root` (or `MS_MOVE`, or `chroot`) and the root made read-only.
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

use libc::c_int;

use super::mounts::{self, resolve, At, NONE};
use super::{check, fail, indexed, raw, sync, Fd, R};
use crate::plan::{Device, Fresh, Rootfs, FRESH_SLOTS};
use crate::proto::msg;
use crate::sys::{self, errno, FdPath};
use crate::Step;

pub(super) fn rootfs(r: &Rootfs, fresh: &Fresh, hook_pause: bool, sock: c_int) -> R {
    // Without a mount namespace of its own, every mount of the host stays as it is: the
    // mounts below are made inside the root (the runtime records and removes them), and
    // the process is chrooted there.
    if r.mount_ns {
        prepare_root(r)?;
    }
    let root = Fd(check(
        raw::open(
            &r.path,
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            0,
        ),
        Step::RootOpen,
        0,
    )?);
    populate(r, fresh, &root)?;
    // The runtime's hooks (prestart, createRuntime) run now: namespaces made, mounts done,
    // root not yet changed.
    if hook_pause {
        sync::tell(sock, msg::HOOKS);
        sync::expect(sock, msg::HOOKS_DONE)?;
    }
    check(raw::fchdir(root.0), Step::PivotRoot, 0)?;
    change_root(r)?;
    check(raw::chdir(c"/"), Step::PivotRoot, 0)?;
    // A shared or unbindable root propagation is the root's own now (see
    // `Rootfs::root_propagation`).
    if r.mount_ns && r.root_propagation != 0 {
        check(
            raw::mount(NONE, c"/", None, r.root_propagation, None),
            Step::RootPropagation,
            2,
        )?;
    }
    if r.mount_ns && r.readonly {
        let keep = mounts::locked_flags_of(c"/");
        check(
            raw::mount(
                NONE,
                c"/",
                None,
                libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | keep,
                None,
            ),
            Step::ReadonlyRoot,
            0,
        )?;
    }
    Ok(())
}

/// From the root's directory (the cwd): makes it the process's root.
fn change_root(r: &Rootfs) -> R {
    if !r.mount_ns {
        check(raw::chroot(c"."), Step::PivotRoot, 0)?;
    } else if r.no_pivot {
        check(
            raw::mount(Some(c"."), c"/", None, libc::MS_MOVE, None),
            Step::PivotRoot,
            0,
        )?;
        check(raw::chroot(c"."), Step::PivotRoot, 0)?;
    } else {
        check(sys::pivot_root(c".", c"."), Step::PivotRoot, 0)?;
        // The old root now sits on top of the new one: detach it without propagating the
        // unmount to the host. Only a shared root propagation needs the rslave first (any
        // other made every mount of this namespace slave or private before anything was
        // mounted); done always, it would reach the container's own mounts too and turn a
        // shared bind mount, alone in its peer group, private.
        if r.propagation & libc::MS_SHARED != 0 {
            check(
                raw::mount(NONE, c".", None, libc::MS_SLAVE | libc::MS_REC, None),
                Step::PivotRoot,
                0,
            )?;
        }
        check(raw::umount2(c".", libc::MNT_DETACH), Step::PivotRoot, 0)?;
    }
    Ok(())
}

/// In the container's own mount namespace: the propagation of `/`, and the root bound onto
/// itself (a mount of its own, which pivot_root needs).
fn prepare_root(r: &Rootfs) -> R {
    check(
        raw::mount(NONE, c"/", None, r.propagation, None),
        Step::RootPropagation,
        0,
    )?;
    // With a shared root propagation ("shared", "rshared"), the mount the root filesystem
    // sits on becomes private first (in this namespace only), as runc does: the bind below
    // must not propagate to the host, and pivot_root refuses a shared parent. The propagation
    // is given to the new root after pivot_root.
    if let Some(parent) = &r.private_parent {
        check(
            raw::mount(NONE, parent.as_c_str(), None, libc::MS_PRIVATE, None),
            Step::RootPropagation,
            1,
        )?;
    }
    check(
        raw::mount(
            Some(r.path.as_c_str()),
            r.path.as_c_str(),
            None,
            libc::MS_BIND | libc::MS_REC,
            None,
        ),
        Step::RootBind,
        0,
    )?;
    Ok(())
}

/// The roots of the tmpfs mounts the child keeps open for the items it makes in them
/// ([`Fresh`]'s slots; -1: none).
struct Kept([c_int; FRESH_SLOTS]);

impl Kept {
    /// The fd in `slot` (as [`Fresh`] lists it for an item), or -1.
    fn get(&self, slot: Option<&Option<u8>>) -> c_int {
        match slot {
            Some(Some(s)) => self.0.get(*s as usize).copied().unwrap_or(-1),
            _ => -1,
        }
    }

    fn set(&mut self, slot: u8, fd: c_int) {
        match self.0.get_mut(slot as usize) {
            Some(x) => {
                if *x >= 0 {
                    raw::close(*x);
                }
                *x = fd;
            }
            None if fd >= 0 => raw::close(fd),
            None => {}
        }
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        for fd in self.0 {
            if fd >= 0 {
                raw::close(fd);
            }
        }
    }
}

/// The mounts, devices, symlinks, masks and read-only paths inside the root (`root`: its fd).
fn populate(r: &Rootfs, fresh: &Fresh, root: &Fd) -> R {
    let mut kept = Kept([-1; FRESH_SLOTS]);
    for (i, m) in indexed(&r.mounts) {
        let at = At {
            parent: kept.get(fresh.mount_parent.get(i)),
            same: kept.get(fresh.mount_same.get(i)),
        };
        mounts::do_mount(root.0, i, m, at)?;
        if let Some(Some(slot)) = fresh.keep.get(i) {
            kept.set(*slot, mounts::reopen(root.0, m, at));
        }
    }
    for (i, d) in indexed(&r.devices) {
        let parent = kept.get(fresh.device_parent.get(i));
        let chown = fresh.device_chown.get(i).copied().unwrap_or(true);
        device(root.0, r.bind_devices, i, d, parent, chown)?;
    }
    for (i, s) in indexed(&r.symlinks) {
        let parent = kept.get(fresh.symlink_parent.get(i));
        let dir = if parent >= 0 {
            mounts::Dir::borrowed(parent)
        } else {
            mounts::ensure_parent(root.0, &s.link, Step::Symlink, i)?
        };
        if let Some((_, name)) = s.link.components.last() {
            if raw::symlinkat(&s.target, dir.fd, name) < 0 && errno() != libc::EEXIST {
                return fail(Step::Symlink, i);
            }
        }
    }
    drop(kept);
    for (i, t) in indexed(&r.masked) {
        mask(root.0, i, &t.path)?;
    }
    for (i, t) in indexed(&r.readonly_paths) {
        mounts::readonly_path(root.0, i, t)?;
    }
    Ok(())
}

/// Device `i`: a node made with `mknod` (owned as asked: `chown` when `mknod` does not give
/// it that owner already), or, where the process may not make nodes, the host's device bound
/// onto an empty file. `fresh`: an fd of the tmpfs just mounted that it goes into (nothing
/// to unlink there), or -1.
fn device(root: c_int, bind: bool, i: usize, d: &Device, fresh: c_int, chown: bool) -> R {
    let dir = if fresh >= 0 && !bind {
        mounts::Dir::borrowed(fresh)
    } else {
        mounts::ensure_parent(root, &d.target, Step::Device, i)?
    };
    let dir = &dir;
    let Some((_, name)) = d.target.components.last() else {
        return Ok(());
    };
    if bind {
        let f = raw::openat(
            dir.fd,
            name,
            libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
            0o644,
        );
        if f < 0 {
            return fail(Step::Device, i);
        }
        drop(Fd(f));
        let t = Fd(resolve(root, &d.target.path, libc::O_NOFOLLOW));
        if t.0 < 0 {
            return fail(Step::Device, i);
        }
        let p = FdPath::new(t.0);
        check(
            raw::mount(Some(d.host_path.as_c_str()), &p, None, libc::MS_BIND, None),
            Step::Device,
            i,
        )?;
    } else {
        if fresh < 0 && raw::unlinkat(dir.fd, name, 0) < 0 && errno() != libc::ENOENT {
            return fail(Step::Device, i);
        }
        check(
            raw::mknodat(
                dir.fd,
                name,
                d.mode as libc::mode_t,
                libc::makedev(d.major as u32, d.minor as u32),
            ),
            Step::Device,
            i,
        )?;
        if chown {
            check(
                raw::fchownat(dir.fd, name, d.uid, d.gid, libc::AT_SYMLINK_NOFOLLOW),
                Step::Device,
                i,
            )?;
        }
    }
    Ok(())
}

/// Masks path `i`: an empty read-only tmpfs over a directory, `/dev/null` over anything else.
/// A symlink is followed, inside the root (RESOLVE_IN_ROOT), as runc follows it; one whose
/// target is missing masks nothing, as a missing path.
fn mask(root: c_int, i: usize, path: &std::ffi::CStr) -> R {
    let fd = Fd(resolve(root, path, 0));
    if fd.0 < 0 {
        if errno() == libc::ENOENT {
            return Ok(());
        }
        return fail(Step::Mask, i);
    }
    let mut st = raw::zeroed_stat();
    check(raw::fstat(fd.0, &mut st), Step::Mask, i)?;
    let p = FdPath::new(fd.0);
    let ret = if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        raw::mount(
            Some(c"tmpfs"),
            &p,
            Some(c"tmpfs"),
            libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            // Reads as an empty directory (runc's read-only tmpfs), not EACCES.
            Some(c"size=0k,mode=755"),
        )
    } else {
        raw::mount(Some(c"/dev/null"), &p, None, libc::MS_BIND, None)
    };
    check(ret, Step::Mask, i)?;
    Ok(())
}

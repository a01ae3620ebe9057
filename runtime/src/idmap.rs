//! Idmapped bind mounts (runtime-spec 1.1 `mounts[].uidMappings`): a detached copy of the
//! source made in the parent (`open_tree`), given the mount's id mapping through a user
//! namespace that exists only for that (`mount_setattr(MOUNT_ATTR_IDMAP)`), and moved into
//! place by the container's process (`move_mount`).
#![deny(clippy::undocumented_unsafe_blocks)]

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;

use crate::config::{IdMapping, MountIdmap};

const OPEN_TREE_CLONE: libc::c_uint = 1;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const MOUNT_ATTR_NOEXEC: u64 = 0x8;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn render(m: &[IdMapping]) -> String {
    m.iter()
        .map(|l| format!("{} {} {}\n", l.container_id, l.host_id, l.size))
        .collect()
}

/// A user namespace with the given maps, as an fd (made by a short-lived child).
fn userns(map: &MountIdmap) -> Result<OwnedFd, String> {
    // SAFETY: a fork-like clone (no CLONE_VM: the child has its own copy of memory, with no
    // stack pointer given it keeps ours). The child calls nothing but pause(2) in a loop,
    // which is async-signal-safe, so the locks of other threads it copied are never taken;
    // it is killed below.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (libc::CLONE_NEWUSER | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if pid == 0 {
        loop {
            // SAFETY: pause(2) takes nothing and is async-signal-safe (see the clone above).
            unsafe { libc::pause() };
        }
    }
    if pid < 0 {
        return Err(format!("clone of a user namespace: {}", Errno::last()));
    }
    let pid = pid as i32;
    let res = (|| {
        let write = |f: &str, d: String| {
            std::fs::write(format!("/proc/{pid}/{f}"), d).map_err(|e| format!("writing {f}: {e}"))
        };
        write("uid_map", render(&map.uid))?;
        write("gid_map", render(&map.gid))?;
        std::fs::File::open(format!("/proc/{pid}/ns/user"))
            .map(OwnedFd::from)
            .map_err(|e| format!("opening its user namespace: {e}"))
    })();
    // Our own child, not reaped until here: its pid cannot have been reused.
    let pid = nix::unistd::Pid::from_raw(pid);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    let _ = nix::sys::wait::waitpid(pid, None);
    res
}

/// A detached, idmapped copy of the mount at `src` with the mount flags `flags`
/// (MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC), recursive if `rec`.
pub fn detached(
    src: &Path,
    rec: bool,
    flags: libc::c_ulong,
    map: &MountIdmap,
) -> Result<OwnedFd, String> {
    if map.uid.is_empty() || map.gid.is_empty() {
        return Err("an idmapped mount needs both uidMappings and gidMappings".into());
    }
    let ns = userns(map)?;
    let c = std::ffi::CString::new(src.as_os_str().as_encoded_bytes())
        .map_err(|_| "NUL in path".to_string())?;
    let rec_flag = if rec { AT_RECURSIVE } else { 0 };
    // SAFETY: `c` is a NUL-terminated path alive for the call; open_tree only reads it.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | rec_flag,
        )
    } as i32;
    if fd < 0 {
        return Err(format!("open_tree {}: {}", src.display(), Errno::last()));
    }
    // SAFETY: the fd was just returned by the kernel and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut set = MOUNT_ATTR_IDMAP;
    for (ms, attr) in [
        (libc::MS_RDONLY, MOUNT_ATTR_RDONLY),
        (libc::MS_NOSUID, MOUNT_ATTR_NOSUID),
        (libc::MS_NODEV, MOUNT_ATTR_NODEV),
        (libc::MS_NOEXEC, MOUNT_ATTR_NOEXEC),
    ] {
        if flags & ms != 0 {
            set |= attr;
        }
    }
    let attr = MountAttr {
        attr_set: set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: ns.as_raw_fd() as u64,
    };
    // SAFETY: the path is a NUL-terminated empty string (AT_EMPTY_PATH: `fd` itself, open
    // here) and `attr` a mount_attr alive for the call with its size passed; the kernel only
    // reads them.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH as libc::c_uint | rec_flag,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r < 0 {
        return Err(format!("idmapping {}: {}", src.display(), Errno::last()));
    }
    Ok(fd)
}

//! docker's `cp`: files between a container and the host, both ways. The container's root:
//! a running one's `/proc/PID/root` (its mounts seen as the container sees them); a stopped
//! docker container's writable layer over its image's layers, an overlay made detached with
//! the new mount API (in no mount table, gone with its fd), its start lock held meanwhile.
//! Every path in the container is resolved by the kernel inside that root (`openat2` with
//! `RESOLVE_IN_ROOT`), and below a directory once found with `RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS`:
//! a symlink the image holds (to `/`, to `../../..`) resolves inside the container or is
//! refused, and can never make `cp` read or write a file of the host.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use runtime::in_root::{openat2, IN_ROOT};

use crate::args::Cli;
use crate::error::{msg, CliError, R};

/// Below a directory of the container already opened: no symlink followed, nothing above it.
const BELOW: u64 = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;

/// `CONTAINER:PATH`, or `None` for a path of the host (one that starts with `/` or `.`, or
/// has no colon).
fn split(s: &str) -> Option<(&str, &str)> {
    if s.starts_with('/') || s.starts_with('.') {
        return None;
    }
    s.split_once(':')
}

fn err(what: &str, p: &Path, e: io::Error) -> CliError {
    msg(format!("cp: {what} {}: {e}", p.display()))
}

pub fn cp(cli: &Cli, root: &Path, src: &str, dst: &str, follow: bool, archive: bool) -> R {
    if src == "-" || dst == "-" {
        return Err(msg("cp: `-` (a tar stream) is not supported; give a path"));
    }
    match (split(src), split(dst)) {
        (Some((c, p)), None) => {
            let (rootfd, _lock) = container_root(cli, root, c)?;
            copy_out(&rootfd, Path::new(p), Path::new(dst), follow, archive)?;
        }
        (None, Some((c, p))) => {
            let (rootfd, _lock) = container_root(cli, root, c)?;
            copy_in(Path::new(src), &rootfd, Path::new(p), follow, archive)?;
        }
        (Some(_), Some(_)) => return Err(msg("cp: copying between containers is not supported")),
        (None, None) => {
            return Err(msg(
                "cp: must specify at least one container source (CONTAINER:PATH)",
            ))
        }
    }
    Ok(0)
}

/// The root of a container as its processes see it: a running (or created) one's through
/// `/proc/PID/root`; a docker container that is not running has its writable layer over its
/// image's layers mounted in a mount namespace of this process's own (gone when it exits).
/// The lock a stopped container's copy holds (its start waits meanwhile).
fn container_root(cli: &Cli, root: &Path, name: &str) -> R<(OwnedFd, Option<File>)> {
    let (id, engine) = match super::resolve(cli, root, name)? {
        super::Target::Engine(id) => (id, true),
        super::Target::Runtime(id) => (id, false),
    };
    // Not loadable (none, or going away): not running.
    let live = runtime::Container::try_load(root, &id)
        .ok()
        .flatten()
        .filter(|c| {
            matches!(
                c.status(),
                runtime::Status::Running | runtime::Status::Created | runtime::Status::Paused
            ) && c.pid() > 0
        });
    let Some(c) = live else {
        if engine {
            return stopped_root(cli, root, &id);
        }
        return Err(msg(format!("cp: container {name} is not running")));
    };
    let p = PathBuf::from(format!("/proc/{}/root", c.pid()));
    drop(c);
    Ok((open_dir_path(&p)?, None))
}

fn open_dir_path(p: &Path) -> R<OwnedFd> {
    let f = nix::fcntl::open(
        p,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| err("opening the root of", p, e.into()))?;
    // SAFETY: open returned a new fd that nothing else owns.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(f) })
}

/// A stopped docker container's root: its record's writable layer (`upper/`, `work/`) over
/// its image's layers, mounted in a private mount namespace of this process.
fn stopped_root(cli: &Cli, root: &Path, id: &str) -> R<(OwnedFd, Option<File>)> {
    let store = crate::image::open_store(cli)?;
    let rec = store
        .container(id)?
        .ok_or_else(|| msg(format!("cp: container {id} has no record in the store")))?;
    let Some(dir) = rec.upper.clone() else {
        return Err(msg(format!(
            "cp: container {id} keeps no writable layer of its own"
        )));
    };
    let digests = rec
        .layers
        .iter()
        .map(|d| unionfs::Digest::parse(d).map_err(|e| msg(format!("cp: layer {d}: {e}"))))
        .collect::<R<Vec<_>>>()?;
    let lowers = store.layer_dirs(&digests)?;
    // The engine's start lock, held while the layer is mounted here: a start waits (two
    // overlays on one upper dir at once are undefined). Then it must still not run.
    let lock_path = dir.join("start.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| err("opening", &lock_path, e))?;
    // SAFETY: flock on an fd we own.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } < 0 {
        return Err(err("locking", &lock_path, io::Error::last_os_error()));
    }
    if root.join(id).exists() {
        return Err(msg(format!(
            "cp: container {id} started meanwhile: copy again"
        )));
    }
    let fd = detached_overlay(&lowers, &dir.join("upper"), &dir.join("work"))
        .map_err(|e| msg(format!("cp: mounting container {id}'s layers: {e}")))?;
    Ok((fd, Some(lock)))
}

const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;

/// An overlay (`lowers` bottom first) made with the new mount API and left detached: no
/// mount point, nothing in any mount table; it goes when the fd is closed.
fn detached_overlay(lowers: &[PathBuf], upper: &Path, work: &Path) -> io::Result<OwnedFd> {
    fn sys(r: libc::c_long) -> io::Result<libc::c_long> {
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r)
        }
    }
    fn own(fd: libc::c_long) -> OwnedFd {
        // SAFETY: the kernel just returned this fd and nothing else owns it.
        unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as RawFd) }
    }
    let set = |fd: &OwnedFd, key: &std::ffi::CStr, val: &std::ffi::CStr| {
        // SAFETY: both strings are NUL-terminated and alive for the call; fd is ours.
        sys(unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fd.as_raw_fd(),
                FSCONFIG_SET_STRING,
                key.as_ptr(),
                val.as_ptr(),
                0,
            )
        })
        .map(|_| ())
    };
    let fsopen = || {
        // SAFETY: a NUL-terminated name; the fd returned is owned at once.
        sys(unsafe { libc::syscall(libc::SYS_fsopen, c"overlay".as_ptr(), FSOPEN_CLOEXEC) })
            .map(own)
    };
    let fs = fsopen()?;
    let colon: Vec<String> = lowers
        .iter()
        .rev()
        .map(|l| l.to_string_lossy().into_owned())
        .collect();
    let mut plus = Ok(());
    for l in lowers.iter().rev() {
        plus = set(&fs, c"lowerdir+", &cstr(l)?);
        if plus.is_err() {
            break;
        }
    }
    if plus.is_err() {
        // Kernels before 6.8: the whole list at once, top first.
        let fs2 = fsopen()?;
        set(
            &fs2,
            c"lowerdir",
            &CString::new(colon.join(":"))
                .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?,
        )?;
        return finish(fs2, upper, work, set);
    }
    finish(fs, upper, work, set)
}

fn finish(
    fs: OwnedFd,
    upper: &Path,
    work: &Path,
    set: impl Fn(&OwnedFd, &std::ffi::CStr, &std::ffi::CStr) -> io::Result<()>,
) -> io::Result<OwnedFd> {
    set(&fs, c"upperdir", &cstr(upper)?)?;
    set(&fs, c"workdir", &cstr(work)?)?;
    // SAFETY: a command with no key or value on our fs context fd.
    if unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_char>(),
            0,
        )
    } < 0
    {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fsmount of our configured context; the fd returned is owned below.
    let m = unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, 0) };
    if m < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd and nothing else owns it.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(m as RawFd) })
}

/// A path in the container made relative to its root (`/a/b` -> `a/b`).
fn rel(p: &Path) -> PathBuf {
    p.components()
        .filter(|c| !matches!(c, std::path::Component::RootDir))
        .collect()
}

fn cstr(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn lstat_at(dir: RawFd, name: &Path) -> io::Result<libc::stat> {
    let c = cstr(name)?;
    // SAFETY: a zeroed stat is valid; fstatat only writes to it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is NUL-terminated and `st` is ours, both alive for the call.
    let r = unsafe { libc::fstatat(dir, c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}

fn readlink_at(dir: RawFd, name: &Path) -> io::Result<PathBuf> {
    let c = cstr(name)?;
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: `c` is NUL-terminated and `buf` is ours with its length given.
    let n = unsafe { libc::readlinkat(dir, c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(PathBuf::from(
        <std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(buf),
    ))
}

fn kind(st: &libc::stat) -> u32 {
    st.st_mode & libc::S_IFMT
}

/// The entries of an open directory (without `.` and `..`).
fn entries(dir: &OwnedFd) -> io::Result<Vec<PathBuf>> {
    let d = nix::dir::Dir::openat(
        Some(dir.as_raw_fd()),
        ".",
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY,
        nix::sys::stat::Mode::empty(),
    )?;
    let mut out = Vec::new();
    for e in d.into_iter() {
        let e = e?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            out.push(PathBuf::from(std::ffi::OsStr::from_bytes(n)));
        }
    }
    Ok(out)
}

/// `cp CONTAINER:SRC DST`.
fn copy_out(rootfd: &OwnedFd, src: &Path, dst: &Path, follow: bool, archive: bool) -> R<()> {
    let r = rel(src);
    let name = r.file_name().map(PathBuf::from);
    // The directory holding SRC, resolved inside the root.
    let (parent, name) = match name {
        Some(n) => {
            let pdir = r.parent().unwrap_or(Path::new(""));
            let p = openat2(
                rootfd.as_raw_fd(),
                pdir,
                libc::O_PATH | libc::O_DIRECTORY,
                IN_ROOT,
            )
            .map_err(|e| err("in the container,", src, e))?;
            (p, n)
        }
        None => (
            openat2(
                rootfd.as_raw_fd(),
                Path::new(""),
                libc::O_PATH | libc::O_DIRECTORY,
                IN_ROOT,
            )
            .map_err(|e| err("in the container,", src, e))?,
            PathBuf::from("."),
        ),
    };
    let mut st =
        lstat_at(parent.as_raw_fd(), &name).map_err(|e| err("in the container,", src, e))?;
    // -L: a symlink SRC is followed, inside the container's root.
    let followed = if follow && kind(&st) == libc::S_IFLNK {
        let fd = openat2(
            rootfd.as_raw_fd(),
            &r,
            libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY,
            IN_ROOT,
        )
        .map_err(|e| err("in the container,", src, e))?;
        // SAFETY: fstat of an fd we own into a stat of ours.
        if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } < 0 {
            return Err(err("in the container,", src, io::Error::last_os_error()));
        }
        Some(fd)
    } else {
        None
    };
    // docker's rule: into DST when it is a directory, else as DST.
    let base = src
        .file_name()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("root"));
    let out = if dst.is_dir() {
        dst.join(base)
    } else {
        dst.to_path_buf()
    };
    match followed {
        Some(fd) if kind(&st) == libc::S_IFREG => copy_file_out(File::from(fd), &st, &out),
        Some(fd) if kind(&st) == libc::S_IFDIR => copy_dir_out(&fd, &st, &out, archive),
        Some(_) => Err(msg(format!(
            "cp: {}: not a regular file or directory",
            src.display()
        ))),
        None => out_entry(&parent, &name, &st, &out, archive),
    }
}

fn copy_file_out(mut from: File, st: &libc::stat, out: &Path) -> R<()> {
    if !from.metadata().map(|m| m.is_file()).unwrap_or(false) {
        return Err(msg(format!("cp: {}: not a regular file", out.display())));
    }
    let mut to = File::create(out).map_err(|e| err("writing", out, e))?;
    io::copy(&mut from, &mut to).map_err(|e| err("writing", out, e))?;
    to.set_permissions(std::fs::Permissions::from_mode(st.st_mode & 0o7777))
        .map_err(|e| err("writing", out, e))
}

fn copy_dir_out(sub: &OwnedFd, st: &libc::stat, out: &Path, archive: bool) -> R<()> {
    match std::fs::create_dir(out) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && out.is_dir() => {}
        Err(e) => return Err(err("making", out, e)),
    }
    for e in entries(sub).map_err(|e| err("reading", out, e))? {
        let est = lstat_at(sub.as_raw_fd(), &e).map_err(|x| err("reading", &e, x))?;
        out_entry(sub, &e, &est, &out.join(&e), archive)?;
    }
    std::fs::set_permissions(out, std::fs::Permissions::from_mode(st.st_mode & 0o7777))
        .map_err(|e| err("writing", out, e))
}

/// Copies `name` under the container's dir `dir` to `out` on the host.
fn out_entry(dir: &OwnedFd, name: &Path, st: &libc::stat, out: &Path, archive: bool) -> R<()> {
    match kind(st) {
        libc::S_IFREG => {
            let fd = openat2(
                dir.as_raw_fd(),
                name,
                libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK,
                BELOW,
            )
            .map_err(|e| err("reading", name, e))?;
            copy_file_out(File::from(fd), st, out)?;
        }
        libc::S_IFDIR => {
            let sub = openat2(
                dir.as_raw_fd(),
                name,
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                BELOW,
            )
            .map_err(|e| err("reading", name, e))?;
            copy_dir_out(&sub, st, out, archive)?;
        }
        libc::S_IFLNK => {
            // The link itself, as docker copies it (its text is only data on the host).
            let t = readlink_at(dir.as_raw_fd(), name).map_err(|e| err("reading", name, e))?;
            let _ = std::fs::remove_file(out);
            std::os::unix::fs::symlink(&t, out).map_err(|e| err("writing", out, e))?;
        }
        _ => {
            eprintln!(
                "corral: warning: cp: {}: a device, fifo or socket, not copied",
                name.display()
            );
            return Ok(());
        }
    }
    if archive {
        let _ = std::os::unix::fs::lchown(out, Some(st.st_uid), Some(st.st_gid));
    }
    Ok(())
}

/// `cp SRC CONTAINER:DST`.
fn copy_in(src: &Path, rootfd: &OwnedFd, dst: &Path, follow: bool, archive: bool) -> R<()> {
    let md = if follow {
        std::fs::metadata(src)
    } else {
        std::fs::symlink_metadata(src)
    }
    .map_err(|e| err("reading", src, e))?;
    let r = rel(dst);
    // DST an existing directory (inside the root): into it, under SRC's name.
    let into_dir = openat2(
        rootfd.as_raw_fd(),
        &r,
        libc::O_PATH | libc::O_DIRECTORY,
        IN_ROOT,
    );
    let (parent, name) = match into_dir {
        Ok(d) => {
            let n = src
                .file_name()
                .map(PathBuf::from)
                .ok_or_else(|| msg(format!("cp: {}: no file name", src.display())))?;
            (d, n)
        }
        Err(_) => {
            let n = r
                .file_name()
                .map(PathBuf::from)
                .ok_or_else(|| msg(format!("cp: {}: no file name", dst.display())))?;
            let p = openat2(
                rootfd.as_raw_fd(),
                r.parent().unwrap_or(Path::new("")),
                libc::O_PATH | libc::O_DIRECTORY,
                IN_ROOT,
            )
            .map_err(|e| err("in the container,", dst, e))?;
            (p, n)
        }
    };
    in_entry(src, &md, &parent, &name, archive)
}

/// Writes host `src` as `name` under the container's dir `dir` (no symlink of the
/// container followed: one in the way is an error).
fn in_entry(
    src: &Path,
    md: &std::fs::Metadata,
    dir: &OwnedFd,
    name: &Path,
    archive: bool,
) -> R<()> {
    let c = cstr(name).map_err(|e| err("writing", name, e))?;
    let mode = md.permissions().mode() & 0o7777;
    if md.is_dir() {
        // SAFETY: `c` is NUL-terminated; mkdirat makes one entry under an fd we hold.
        let r = unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), 0o700) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EEXIST) {
                return Err(err("making", name, e));
            }
        }
        let sub = openat2(
            dir.as_raw_fd(),
            name,
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
            BELOW,
        )
        .map_err(|e| err("in the container, opening", name, e))?;
        for e in std::fs::read_dir(src).map_err(|e| err("reading", src, e))? {
            let e = e.map_err(|e| err("reading", src, e))?;
            let emd =
                std::fs::symlink_metadata(e.path()).map_err(|x| err("reading", &e.path(), x))?;
            in_entry(&e.path(), &emd, &sub, Path::new(&e.file_name()), archive)?;
        }
        // SAFETY: fchmod of an fd we own.
        unsafe { libc::fchmod(sub.as_raw_fd(), mode) };
        owner(&sub, md, archive);
    } else if md.file_type().is_symlink() {
        let t = std::fs::read_link(src).map_err(|e| err("reading", src, e))?;
        let tc = cstr(&t).map_err(|e| err("reading", src, e))?;
        // SAFETY: unlinking a name (not a dir) under an fd we hold; failure is fine.
        unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), 0) };
        // SAFETY: both strings are NUL-terminated; symlinkat makes one entry under `dir`.
        if unsafe { libc::symlinkat(tc.as_ptr(), dir.as_raw_fd(), c.as_ptr()) } < 0 {
            return Err(err("writing", name, io::Error::last_os_error()));
        }
    } else if md.is_file() {
        let mut from = File::open(src).map_err(|e| err("reading", src, e))?;
        let fd = openat2(
            dir.as_raw_fd(),
            name,
            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_NOFOLLOW,
            BELOW,
        )
        .map_err(|e| err("in the container, writing", name, e))?;
        let mut to = File::from(fd);
        if !to.metadata().map(|m| m.is_file()).unwrap_or(false) {
            return Err(msg(format!(
                "cp: {}: not a regular file in the container",
                name.display()
            )));
        }
        io::copy(&mut from, &mut to).map_err(|e| err("writing", name, e))?;
        let _ = to.set_permissions(std::fs::Permissions::from_mode(mode));
        let fd: OwnedFd = to.into();
        owner(&fd, md, archive);
    } else {
        eprintln!(
            "corral: warning: cp: {}: a device, fifo or socket, not copied",
            src.display()
        );
    }
    Ok(())
}

/// docker's owners: root in the container, the source's with `-a`.
fn owner(fd: &OwnedFd, md: &std::fs::Metadata, archive: bool) {
    let (u, g) = if archive {
        (md.uid(), md.gid())
    } else {
        (0, 0)
    };
    // SAFETY: fchown of an fd we own; a failure leaves the owner as made.
    unsafe { libc::fchown(fd.as_raw_fd(), u, g) };
}

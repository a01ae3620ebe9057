//! Volumes: data that outlives a container, outside its copy-on-write layer (docker's
//! `local` driver).
//!
//! `<store>/volumes/<name>/_data` is what a container sees; `<store>/volumes/<name>/
//! volume.json` says what the volume is ([`Volume`]). A named volume (`-v NAME:/path`,
//! `--mount type=volume,source=NAME,...`) is made on first use; an image's `VOLUME`s and a
//! `-v /path` get anonymous volumes (64 hex characters, one per container and path). An
//! empty volume is filled on first use from the image's content at its mount point, as
//! docker does, by a copy that opens everything relative to directory descriptors with
//! `O_NOFOLLOW`: no symlink of the image is followed, and nothing outside the layer dirs
//! and the volume's `_data` is read or written.
//!
//! A volume is in use while a container record of the store names it (its `config.json`
//! binds the volume's `_data`); `rm` refuses it then.

use std::collections::BTreeMap;
use std::ffi::{CStr, CString, OsStr};
use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use oci_spec::image::ImageConfiguration;
use runtime::describe::{Description, Mount};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{invalid, io_err, Result};
use crate::store::{mkdir, now_rfc3339, write_atomic};

/// What `volume.json` holds (and `volume inspect` shows, with the mount point).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    /// The name (docker's `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, or 64 hex for an anonymous one).
    pub name: String,
    /// When it was made (RFC 3339).
    pub created: String,
    /// Always `local`.
    pub driver: String,
    /// `--label KEY=VALUE`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Made for an image's `VOLUME` or a `-v /path` (removed by `volume prune` without
    /// `--all`, and by `rm -v` with its container).
    #[serde(default)]
    pub anonymous: bool,
    /// The container an anonymous volume was made for (removed with it by `run --rm`,
    /// `rm -v`: [`remove_anonymous_of`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
}

/// The directory of the store's volumes.
pub fn volumes_dir(store_dir: &Path) -> PathBuf {
    store_dir.join("volumes")
}

/// The directory a container sees of volume `name`.
pub fn data_dir(store_dir: &Path, name: &str) -> PathBuf {
    volumes_dir(store_dir).join(name).join("_data")
}

fn check_name(name: &str) -> Result<()> {
    runtime::describe::check_volume_name(name).map_err(|e| match e {
        runtime::Error::Config { reason, .. } => invalid(reason),
        e => invalid(e.to_string()),
    })
}

/// Volume `name`, if there is one.
pub fn get(store_dir: &Path, name: &str) -> Result<Option<Volume>> {
    check_name(name)?;
    let p = volumes_dir(store_dir).join(name).join("volume.json");
    match fs::read(&p) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| invalid(format!("{}: {e}", p.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("read", &p)(e)),
    }
}

/// A random anonymous volume name (64 hex).
pub fn random_name() -> String {
    let mut b = [0u8; 32];
    // SAFETY: getrandom writes at most `b.len()` bytes into `b`.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != b.len() as isize {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        b = Sha256::digest(format!("{t}-{}", std::process::id())).into();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The anonymous volume of container `id` at `destination`: the same for every start of
/// that container (its volume outlives a restart, as docker's).
pub fn anonymous_name(id: &str, destination: &str) -> String {
    let h = Sha256::digest(format!("corral-anonymous-volume\0{id}\0{destination}"));
    h.iter().map(|x| format!("{x:02x}")).collect()
}

/// Makes volume `name` (a random anonymous one when `None`), or returns the one there is
/// (as `docker volume create NAME` does for a name in use; its labels are kept).
pub fn create(
    store_dir: &Path,
    name: Option<&str>,
    labels: &BTreeMap<String, String>,
    anonymous: bool,
) -> Result<Volume> {
    make(store_dir, name, labels, anonymous, None)
}

/// [`create`], an anonymous volume recording the container it is for.
fn make(
    store_dir: &Path,
    name: Option<&str>,
    labels: &BTreeMap<String, String>,
    anonymous: bool,
    container: Option<&str>,
) -> Result<Volume> {
    let name = match name {
        Some(n) => n.to_string(),
        None => random_name(),
    };
    check_name(&name)?;
    if let Some(v) = get(store_dir, &name)? {
        return Ok(v);
    }
    let dir = volumes_dir(store_dir).join(&name);
    mkdir(&volumes_dir(store_dir))?;
    // The volume dir appears whole, by rename: a half-made one is never seen.
    let tmp = volumes_dir(store_dir).join(format!(".tmp-{}-{}", std::process::id(), name));
    let _ = fs::remove_dir_all(&tmp);
    mkdir(&tmp)?;
    let v = Volume {
        name: name.clone(),
        created: now_rfc3339(),
        driver: "local".into(),
        labels: labels.clone(),
        anonymous,
        container: container.map(String::from),
    };
    let made = (|| {
        fs::DirBuilder::new()
            .create(tmp.join("_data"))
            .map_err(io_err("mkdir", &tmp.join("_data")))?;
        // docker's _data is 0755 root (the image's copy sets its own mode over it).
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(tmp.join("_data"), fs::Permissions::from_mode(0o755))
            .map_err(io_err("chmod", &tmp.join("_data")))?;
        let json = serde_json::to_vec_pretty(&v).map_err(|e| invalid(e.to_string()))?;
        write_atomic(&tmp.join("volume.json"), &json)?;
        fs::rename(&tmp, &dir).map_err(io_err("rename", &dir))
    })();
    if let Err(e) = made {
        let _ = fs::remove_dir_all(&tmp);
        // Made meanwhile by another command: that one.
        if let Some(v) = get(store_dir, &name)? {
            return Ok(v);
        }
        return Err(e);
    }
    Ok(v)
}

/// Every volume of the store, by name.
pub fn list(store_dir: &Path) -> Result<Vec<Volume>> {
    let dir = volumes_dir(store_dir);
    let rd = match fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("read", &dir)(e)),
    };
    let mut out = Vec::new();
    for e in rd.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if n.starts_with('.') {
            continue;
        }
        if let Ok(Some(v)) = get(store_dir, &n) {
            out.push(v);
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The ids of the containers of the store whose record names volume `name` (their
/// `config.json` binds its `_data`, or their `container.json` lists it).
pub fn users(store_dir: &Path, name: &str) -> Vec<String> {
    let data = data_dir(store_dir, name);
    let data = data.to_string_lossy();
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(store_dir.join("containers")) else {
        return out;
    };
    for e in rd.flatten() {
        let id = e.file_name().to_string_lossy().into_owned();
        let names_it = |file: &str, f: &dyn Fn(&serde_json::Value) -> bool| {
            fs::read(e.path().join(file))
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .is_some_and(|v| f(&v))
        };
        let binds = names_it("config.json", &|v| {
            v["mounts"].as_array().is_some_and(|ms| {
                ms.iter()
                    .any(|m| m["source"].as_str() == Some(data.as_ref()))
            })
        });
        let listed = names_it("container.json", &|v| {
            ["volumes", "Volumes"].iter().any(|k| {
                v[k].as_array()
                    .is_some_and(|l| l.iter().any(|x| x.as_str() == Some(name)))
            })
        });
        if binds || listed {
            out.push(id);
        }
    }
    out.sort();
    out
}

/// Removes volume `name` and its data. One a container uses is refused (docker's
/// wording) unless `force`; a missing one is an error unless `force`.
pub fn remove(store_dir: &Path, name: &str, force: bool) -> Result<()> {
    if get(store_dir, name)?.is_none() {
        if force {
            return Ok(());
        }
        return Err(invalid(format!("get {name}: no such volume")));
    }
    let users = users(store_dir, name);
    if !users.is_empty() && !force {
        return Err(invalid(format!(
            "remove {name}: volume is in use - [{}]",
            users.join(", ")
        )));
    }
    let dir = volumes_dir(store_dir).join(name);
    // Out of sight first (a rename), then deleted: a half-deleted volume is never seen.
    let gone = volumes_dir(store_dir).join(format!(".rm-{}-{name}", std::process::id()));
    fs::rename(&dir, &gone).map_err(io_err("rename", &dir))?;
    fs::remove_dir_all(&gone).map_err(io_err("remove", &gone))
}

/// Removes the volumes no container uses: anonymous ones, or every one with `all`
/// (docker's `volume prune [--all]`). Returns their names and the bytes freed.
pub fn prune(store_dir: &Path, all: bool) -> Result<(Vec<String>, u64)> {
    let mut names = Vec::new();
    let mut bytes = 0;
    for v in list(store_dir)? {
        if !(all || v.anonymous) || !users(store_dir, &v.name).is_empty() {
            continue;
        }
        let size = crate::store::dir_size(&volumes_dir(store_dir).join(&v.name));
        remove(store_dir, &v.name, false)?;
        bytes += size;
        names.push(v.name);
    }
    Ok((names, bytes))
}

/// Removes the anonymous volumes made for container `id` that no container uses any more
/// (docker's `run --rm` and `rm -v`). Returns their names.
pub fn remove_anonymous_of(store_dir: &Path, id: &str) -> Vec<String> {
    let mut out = Vec::new();
    for v in list(store_dir).unwrap_or_default() {
        if v.anonymous
            && v.container.as_deref() == Some(id)
            && remove(store_dir, &v.name, false).is_ok()
        {
            out.push(v.name);
        }
    }
    out
}

/// The named volumes a description mounts (anonymous ones are named when the container
/// is made: [`volumes_for`]).
pub fn volumes_of(d: &Description) -> Vec<String> {
    d.mounts
        .iter()
        .filter(|m| m.kind == "volume" && !m.source.is_empty())
        .map(|m| m.source.clone())
        .collect()
}

/// The volumes container `id` of description `d` uses, its image's `VOLUME`s
/// (`config`) included: what [`mount_volumes`] makes and binds.
pub fn volumes_for(id: &str, config: &ImageConfiguration, d: &Description) -> Vec<String> {
    planned(id, config, d)
        .into_iter()
        .map(|(n, _, _)| n)
        .collect()
}

/// (name, destination, anonymous) of every volume of container `id` of description `d`,
/// its image's `VOLUME`s (`config`) included: what [`mount_volumes`] makes and binds.
pub fn planned(
    id: &str,
    config: &ImageConfiguration,
    d: &Description,
) -> Vec<(String, String, bool)> {
    let norm = |p: &str| {
        let t = p.trim_end_matches('/');
        if t.is_empty() {
            "/".to_string()
        } else {
            t.to_string()
        }
    };
    let mut out = Vec::new();
    for m in d.mounts.iter().filter(|m| m.kind == "volume") {
        if m.source.is_empty() {
            out.push((
                anonymous_name(id, &norm(&m.destination)),
                m.destination.clone(),
                true,
            ));
        } else {
            out.push((m.source.clone(), m.destination.clone(), false));
        }
    }
    let taken: Vec<String> = d.mounts.iter().map(|m| norm(&m.destination)).collect();
    let image_vols = config
        .config()
        .as_ref()
        .and_then(|c| c.volumes().clone())
        .unwrap_or_default();
    for p in image_vols {
        let p = norm(&p);
        if p.starts_with('/') && !taken.contains(&p) {
            out.push((anonymous_name(id, &p), p, true));
        }
    }
    out
}

/// Makes and binds the volumes of container `id`: each `volume` mount of `d` and each of
/// the image's `VOLUME`s not mounted otherwise becomes a bind of the volume's `_data`
/// (made on first use; filled from the image's layers `layers` (bottom first) at its
/// mount point while empty, unless `nocopy`).
pub fn mount_volumes(
    store_dir: &Path,
    id: &str,
    config: &ImageConfiguration,
    layers: &[PathBuf],
    d: &mut Description,
) -> Result<()> {
    let plan = planned(id, config, d);
    let mut binds = Vec::new();
    for (name, dst, anonymous) in &plan {
        let from = d
            .mounts
            .iter()
            .find(|m| m.kind == "volume" && &m.destination == dst);
        let ro = from.is_some_and(|m| m.options.iter().any(|o| o == "ro"));
        let nocopy = from.is_some_and(|m| m.options.iter().any(|o| o == "nocopy"));
        let owner = anonymous.then_some(id);
        make(store_dir, Some(name), &BTreeMap::new(), *anonymous, owner)?;
        let data = data_dir(store_dir, name);
        if !nocopy {
            populate(&data, layers, dst)?;
        }
        let mut m = Mount::bind(data.to_string_lossy().into_owned(), dst.clone(), ro);
        m.options.retain(|o| o != "nodev");
        binds.push(m);
    }
    d.mounts.retain(|m| m.kind != "volume");
    d.mounts.extend(binds);
    Ok(())
}

/// An fd from a libc call's result, or the errno as an io error.
fn fd(r: RawFd) -> std::io::Result<OwnedFd> {
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        // SAFETY: `r` is a new descriptor this process owns.
        Ok(unsafe { OwnedFd::from_raw_fd(r) })
    }
}

fn cstr(s: &OsStr) -> std::io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))
}

/// Opens directory `name` under `dir` without following a symlink.
fn open_dir_at(dir: RawFd, name: &CStr) -> std::io::Result<OwnedFd> {
    // SAFETY: a valid C string and descriptor.
    fd(unsafe {
        libc::openat(
            dir,
            name.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    })
}

fn fstatat(dir: RawFd, name: &CStr) -> std::io::Result<libc::stat> {
    // SAFETY: an all-zero stat is valid; fstatat fills it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a valid C string, descriptor and stat buffer.
    let r = unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(st)
    }
}

fn is_whiteout(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == 0
}

/// The directory is opaque (`trusted.overlay.opaque` = `y`): lower layers' content of it
/// is hidden.
fn is_opaque(dir: &OwnedFd) -> bool {
    let mut v = [0u8; 2];
    let name = c"trusted.overlay.opaque";
    // SAFETY: a valid descriptor, C string and buffer of the length given.
    let n = unsafe {
        libc::fgetxattr(
            dir.as_raw_fd(),
            name.as_ptr(),
            v.as_mut_ptr().cast(),
            v.len(),
        )
    };
    n == 1 && v[0] == b'y'
}

/// Fills `data` (a volume's `_data`) from the image's content at `dst` while `data` is
/// empty, under a lock on the volume (two containers starting at once copy once).
fn populate(data: &Path, layers: &[PathBuf], dst: &str) -> Result<()> {
    let lock = fs::File::open(data.parent().unwrap_or(data)).map_err(io_err("open", data))?;
    // SAFETY: a valid descriptor.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(io_err("flock", data)(std::io::Error::last_os_error()));
    }
    let out = {
        let c = cstr(data.as_os_str()).map_err(io_err("open", data))?;
        open_dir_at(libc::AT_FDCWD, &c).map_err(io_err("open", data))?
    };
    if fs::read_dir(data)
        .map_err(io_err("read", data))?
        .next()
        .is_some()
    {
        return Ok(());
    }
    // The dirs at `dst` of each layer, top first, as overlay shows them.
    let comps: Vec<&str> = dst
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if comps.contains(&"..") {
        return Err(invalid(format!("volume path {dst:?}: no .. allowed")));
    }
    let mut dirs: Vec<OwnedFd> = Vec::new();
    for l in layers.iter().rev() {
        let Ok(c) = cstr(l.as_os_str()) else { continue };
        let Ok(mut cur) = open_dir_at(libc::AT_FDCWD, &c) else {
            continue;
        };
        let mut stop = false;
        let mut found = true;
        for (i, comp) in comps.iter().enumerate() {
            let Ok(name) = cstr(OsStr::new(comp)) else {
                return Ok(());
            };
            match fstatat(cur.as_raw_fd(), &name) {
                Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {
                    cur = open_dir_at(cur.as_raw_fd(), &name).map_err(io_err("open", l))?;
                    // An opaque dir on the way hides what lower layers have there.
                    if is_opaque(&cur) && i + 1 < comps.len() {
                        stop = true;
                    }
                }
                // A file, symlink or whiteout on the way hides lower layers too.
                Ok(_) => {
                    found = false;
                    stop = true;
                    break;
                }
                Err(_) => {
                    found = false;
                    break;
                }
            }
        }
        if found {
            let opaque = is_opaque(&cur);
            dirs.push(cur);
            if opaque {
                stop = true;
            }
        }
        if stop {
            break;
        }
    }
    if dirs.is_empty() {
        return Ok(());
    }
    // The volume gets the mode and owner of the image's directory (as docker's copy does).
    // SAFETY: an all-zero stat is valid; fstat fills it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid descriptor and buffer.
    if unsafe { libc::fstat(dirs[0].as_raw_fd(), &mut st) } == 0 {
        // SAFETY: valid descriptor.
        unsafe {
            libc::fchown(out.as_raw_fd(), st.st_uid, st.st_gid);
            libc::fchmod(out.as_raw_fd(), st.st_mode & 0o7777);
        }
    }
    copy_merged(&dirs, &out, 0).map_err(io_err("copying the image's content into", data))
}

/// Copies the merged content of `dirs` (one directory of each layer, top first) into
/// `out`: the topmost entry of each name wins, whiteouts hide, an opaque dir hides lower
/// ones. Regular files, dirs and symlinks (as links, never followed) are copied with their
/// mode and owner; other kinds are skipped.
fn copy_merged(dirs: &[OwnedFd], out: &OwnedFd, depth: usize) -> std::io::Result<()> {
    if depth > 256 {
        return Err(std::io::Error::from_raw_os_error(libc::ELOOP));
    }
    let mut names: Vec<std::ffi::OsString> = Vec::new();
    for d in dirs {
        for e in fs::read_dir(format!("/proc/self/fd/{}", d.as_raw_fd()))?.flatten() {
            let n = e.file_name();
            if !names.contains(&n) {
                names.push(n);
            }
        }
    }
    names.sort();
    for n in names {
        let name = cstr(&n)?;
        // The topmost layer that has it.
        let mut top = None;
        for (i, d) in dirs.iter().enumerate() {
            if let Ok(st) = fstatat(d.as_raw_fd(), &name) {
                top = Some((i, st));
                break;
            }
        }
        let Some((i, st)) = top else { continue };
        if is_whiteout(&st) {
            continue;
        }
        let src = dirs[i].as_raw_fd();
        let o = out.as_raw_fd();
        match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => {
                // This dir in its layer and below, until a layer hides it.
                let mut sub = Vec::new();
                for d in &dirs[i..] {
                    match fstatat(d.as_raw_fd(), &name) {
                        Ok(s) if s.st_mode & libc::S_IFMT == libc::S_IFDIR => {
                            let f = open_dir_at(d.as_raw_fd(), &name)?;
                            let opaque = is_opaque(&f);
                            sub.push(f);
                            if opaque {
                                break;
                            }
                        }
                        Ok(_) => break,
                        Err(_) => {}
                    }
                }
                // SAFETY: valid descriptor and C string.
                if unsafe { libc::mkdirat(o, name.as_ptr(), 0o700) } != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let new = open_dir_at(o, &name)?;
                copy_merged(&sub, &new, depth + 1)?;
                // SAFETY: valid descriptor.
                unsafe {
                    libc::fchown(new.as_raw_fd(), st.st_uid, st.st_gid);
                    libc::fchmod(new.as_raw_fd(), st.st_mode & 0o7777);
                }
            }
            libc::S_IFREG => {
                // SAFETY: valid descriptor and C string.
                let from = fd(unsafe {
                    libc::openat(
                        src,
                        name.as_ptr(),
                        libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                    )
                })?;
                // SAFETY: valid descriptor and C string; O_EXCL never opens what exists.
                let to = fd(unsafe {
                    libc::openat(
                        o,
                        name.as_ptr(),
                        libc::O_WRONLY
                            | libc::O_CREAT
                            | libc::O_EXCL
                            | libc::O_NOFOLLOW
                            | libc::O_CLOEXEC,
                        0o600,
                    )
                })?;
                let mut from = fs::File::from(from);
                let mut to = fs::File::from(to);
                std::io::copy(&mut from, &mut to)?;
                // SAFETY: valid descriptor.
                unsafe {
                    libc::fchown(to.as_raw_fd(), st.st_uid, st.st_gid);
                    libc::fchmod(to.as_raw_fd(), st.st_mode & 0o7777);
                }
            }
            libc::S_IFLNK => {
                let mut buf = vec![0u8; libc::PATH_MAX as usize];
                // SAFETY: valid descriptor, C string and buffer of the length given.
                let len = unsafe {
                    libc::readlinkat(src, name.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
                };
                if len < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                buf.truncate(len as usize);
                let target = CString::new(buf)
                    .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
                // SAFETY: valid C strings and descriptor.
                if unsafe { libc::symlinkat(target.as_ptr(), o, name.as_ptr()) } != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // SAFETY: valid descriptor and C string; the link itself, not its target.
                unsafe {
                    libc::fchownat(
                        o,
                        name.as_ptr(),
                        st.st_uid,
                        st.st_gid,
                        libc::AT_SYMLINK_NOFOLLOW,
                    )
                };
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_volume_is_copied_without_following_its_links() {
        let t = tempfile::tempdir().unwrap();
        let (l1, l2) = (t.path().join("l1"), t.path().join("l2"));
        fs::create_dir_all(l1.join("data/sub")).unwrap();
        fs::write(l1.join("data/low"), "low").unwrap();
        fs::write(l1.join("data/sub/hidden"), "x").unwrap();
        fs::write(l1.join("data/gone"), "gone").unwrap();
        fs::create_dir_all(l2.join("data")).unwrap();
        fs::write(l2.join("data/top"), "top").unwrap();
        std::os::unix::fs::symlink("/", l2.join("data/root")).unwrap();
        std::os::unix::fs::symlink("/etc", l2.join("data/etc")).unwrap();
        // A whiteout of `gone` in the top layer.
        nix::sys::stat::mknod(
            &l2.join("data/gone"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .unwrap();
        let store = t.path().join("store");
        let mut d = Description::new(runtime::describe::Root::Image("x".into()));
        d.mounts
            .push(Mount::named_volume("v1", "/data", false).unwrap());
        let layers = vec![l1.clone(), l2.clone()];
        mount_volumes(
            &store,
            "c1",
            &ImageConfiguration::default(),
            &layers,
            &mut d,
        )
        .unwrap();
        let data = data_dir(&store, "v1");
        assert_eq!(d.mounts[0].source, data.to_str().unwrap());
        assert_eq!(fs::read_to_string(data.join("low")).unwrap(), "low");
        assert_eq!(fs::read_to_string(data.join("top")).unwrap(), "top");
        assert!(data.join("sub/hidden").is_file());
        assert!(!data.join("gone").exists());
        assert_eq!(fs::read_link(data.join("root")).unwrap(), Path::new("/"));
        assert!(fs::symlink_metadata(data.join("etc")).unwrap().is_symlink());
        // A volume path that is a link in the image: nothing is copied through it.
        std::os::unix::fs::symlink("/etc", l2.join("evil")).unwrap();
        let mut d = Description::new(runtime::describe::Root::Image("x".into()));
        d.mounts
            .push(Mount::named_volume("v2", "/evil", false).unwrap());
        mount_volumes(
            &store,
            "c1",
            &ImageConfiguration::default(),
            &layers,
            &mut d,
        )
        .unwrap();
        assert_eq!(fs::read_dir(data_dir(&store, "v2")).unwrap().count(), 0);
        // Not copied again once it has content.
        fs::write(data.join("mine"), "1").unwrap();
        fs::remove_file(data.join("top")).unwrap();
        let mut d = Description::new(runtime::describe::Root::Image("x".into()));
        d.mounts
            .push(Mount::named_volume("v1", "/data", true).unwrap());
        mount_volumes(
            &store,
            "c2",
            &ImageConfiguration::default(),
            &layers,
            &mut d,
        )
        .unwrap();
        assert!(!data.join("top").exists());
        assert!(d.mounts[0].options.contains(&"ro".to_string()));
        let names: Vec<String> = list(&store).unwrap().into_iter().map(|v| v.name).collect();
        assert_eq!(names, ["v1", "v2"]);
        remove(&store, "v1", false).unwrap();
        assert!(get(&store, "v1").unwrap().is_none());
    }
}

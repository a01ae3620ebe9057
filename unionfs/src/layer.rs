//! OCI layer tars <-> overlay-format directories.

use std::collections::HashMap;
use std::ffi::{CStr, CString, OsStr, OsString};
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use tar::EntryType;

use crate::error::{Error, Result};
use crate::sys::{self, SysResult};

/// Prefix of an OCI whiteout entry name (`.wh.NAME` deletes `NAME`).
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// OCI opaque-directory marker entry name.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// Extended attribute overlayfs uses to mark a directory opaque (value `y`).
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

const OPAQUE_XATTR_C: &CStr = c"trusted.overlay.opaque";

/// Is this (lstat) metadata an overlay whiteout, i.e. a 0:0 character device?
pub fn is_whiteout(meta: &fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// Is `dir` marked opaque (`trusted.overlay.opaque=y`)?
pub fn is_opaque(dir: &Path) -> Result<bool> {
    let v = sys::lgetxattr(dir, OPAQUE_XATTR_C).map_err(|e| Error::sys("getxattr", dir, e))?;
    Ok(v.as_deref() == Some(b"y"))
}

/// Mark `dir` opaque for overlayfs.
pub fn set_opaque(dir: &Path) -> Result<()> {
    let fd = open_plain_dir(dir)?;
    sys::fsetxattr(&fd, OPAQUE_XATTR_C, b"y").map_err(|e| Error::sys("setxattr", dir, e))
}

/// Create an overlay whiteout (0:0 character device) at `path`.
pub fn make_whiteout(path: &Path) -> Result<()> {
    let c = sys::cpath(path).map_err(|e| Error::sys("mknod", path, e))?;
    sys::mknodat(libc::AT_FDCWD, &c, libc::S_IFCHR, 0).map_err(|e| Error::sys("mknod", path, e))
}

fn open_plain_dir(dir: &Path) -> Result<OwnedFd> {
    let c = sys::cpath(dir).map_err(|e| Error::sys("open", dir, e))?;
    sys::openat(libc::AT_FDCWD, &c, libc::O_RDONLY | libc::O_DIRECTORY, 0)
        .map_err(|e| Error::sys("open", dir, e))
}

fn tar_err(op: &'static str) -> impl Fn(io::Error) -> Error {
    move |source| Error::Tar { op, source }
}

fn unsafe_entry(entry: &Path, reason: impl Into<String>) -> Error {
    Error::UnsafeEntry {
        entry: entry.to_path_buf(),
        reason: reason.into(),
    }
}

/// Split a tar entry path into plain components, refusing anything that could
/// climb out of the destination.
fn split_entry(p: &Path) -> std::result::Result<Vec<OsString>, &'static str> {
    let mut out = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n.to_owned()),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return Err("absolute path"),
            Component::ParentDir => return Err("path contains \"..\""),
        }
    }
    Ok(out)
}

/// How a layer stream is compressed (detected from its first bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip (`1f 8b`).
    Gzip,
    /// zstd (`28 b5 2f fd`).
    Zstd,
}

impl Compression {
    /// Detect from the first bytes of a stream.
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// The OCI layer media type for this compression.
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }
}

/// Wrap `r` in the decompressor its first bytes call for (none for a plain tar).
pub fn decompress<'a, R: BufRead + 'a>(mut r: R) -> Result<(Compression, Box<dyn Read + 'a>)> {
    let head = r.fill_buf().map_err(tar_err("reading"))?;
    let c = Compression::detect(head);
    let out: Box<dyn Read + 'a> = match c {
        Compression::None => Box::new(r),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(r)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(r).map_err(tar_err("decompressing zstd"))?,
        ),
    };
    Ok((c, out))
}

/// What an unpack may create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnpackOptions {
    /// Create character and block device nodes (whiteouts excepted). Only a privileged
    /// caller (root in the initial user namespace) may; without it such entries are refused.
    pub devices: bool,
    /// The most bytes of file content the layer may unpack to (the sum of its regular
    /// files' sizes); a layer over it is refused, naming the entry that crossed it.
    pub max_bytes: u64,
}

/// [`UnpackOptions::max_bytes`] by default: no layer of an image a runtime should run
/// comes near it, and a small archive that claims more (a "zip bomb") is refused.
pub const DEFAULT_MAX_LAYER_BYTES: u64 = 64 << 30;

impl Default for UnpackOptions {
    /// Devices allowed exactly when this process is privileged ([`privileged`]); at most
    /// [`DEFAULT_MAX_LAYER_BYTES`].
    fn default() -> Self {
        UnpackOptions {
            devices: privileged(),
            max_bytes: DEFAULT_MAX_LAYER_BYTES,
        }
    }
}

/// Is this process root in the initial user namespace (may it make device nodes)?
pub fn privileged() -> bool {
    if !nix::unistd::geteuid().is_root() {
        return false;
    }
    match fs::read_to_string("/proc/self/uid_map") {
        Ok(m) => {
            let f: Vec<&str> = m.split_whitespace().collect();
            f.len() == 3 && f[0] == "0" && f[1] == "0" && f[2] == "4294967295"
        }
        Err(_) => false,
    }
}

/// Unpack one OCI layer tar (plain, gzip or zstd) into `dest` in overlay format, with
/// [`UnpackOptions::default`].
///
/// * `.wh.NAME` becomes a whiteout (0:0 character device) named `NAME`;
///   `.wh..wh..opq` sets `trusted.overlay.opaque=y` on its directory; other
///   `.wh..wh.*` (aufs metadata) entries are skipped.
/// * Entries never reach outside `dest`: absolute paths and `..` are refused,
///   every parent component is opened with `O_NOFOLLOW` relative to its parent
///   (a symlink as a parent component is refused), hardlink targets must lie
///   inside the layer, and nothing is ever opened through a symlink. Symlinks
///   themselves may point anywhere (they are resolved inside the container's root).
/// * Modes (incl. setuid), uid/gid, mtimes, symlinks, hardlinks, device
///   nodes (privileged callers only), fifos and `SCHILY.xattr.*` extended
///   attributes are kept (`trusted.overlay.*` xattrs from the tar are ignored).
///   This needs root (or CAP_CHOWN, CAP_MKNOD, CAP_SYS_ADMIN for trusted xattrs).
/// * An error names the entry it happened at; what was unpacked before it stays in
///   `dest` (the [`LayerStore`](crate::LayerStore) unpacks into a temporary directory
///   and removes it).
///
/// `dest` must exist. Entries already in `dest` are replaced (directories are
/// merged).
pub fn unpack_layer<R: Read>(tar: R, dest: &Path) -> Result<()> {
    unpack_layer_with(tar, dest, UnpackOptions::default())
}

/// [`unpack_layer`] with explicit options.
pub fn unpack_layer_with<R: Read>(tar: R, dest: &Path, opts: UnpackOptions) -> Result<()> {
    let (_, plain) = decompress(BufReader::new(tar))?;
    unpack_plain(plain, dest, opts)
}

/// Unpack an uncompressed tar stream.
pub(crate) fn unpack_plain<R: Read>(tar: R, dest: &Path, opts: UnpackOptions) -> Result<()> {
    let root = open_plain_dir(dest)?;
    let mut u = Unpacker {
        root,
        dest: dest.to_path_buf(),
        dirs: Vec::new(),
        opts,
        bytes: 0,
    };
    let mut ar = tar::Archive::new(tar);
    let mut last: Option<PathBuf> = None;
    let after = |last: &Option<PathBuf>| match last {
        Some(p) => format!("reading (after entry {})", p.display()),
        None => "reading".to_string(),
    };
    for entry in ar.entries().map_err(tar_err("reading"))? {
        let mut entry = entry.map_err(|source| Error::TarAt {
            op: after(&last),
            source,
        })?;
        let path = entry.path().map(|p| p.into_owned()).unwrap_or_else(|_| {
            PathBuf::from(String::from_utf8_lossy(&entry.path_bytes()).into_owned())
        });
        u.unpack_entry(&mut entry).map_err(|e| match e {
            e @ Error::UnsafeEntry { .. } => e,
            e => Error::Entry {
                entry: path.clone(),
                source: Box::new(e),
            },
        })?;
        last = Some(path);
    }
    // Directory mtimes last, deepest first, since creating children changes them.
    for (comps, mtime) in u.dirs.iter().rev() {
        let Ok(fd) = u.open_dir(comps, false, Path::new("")) else {
            continue; // replaced by a later entry
        };
        sys::futimens(&fd, *mtime).map_err(|e| Error::sys("utimens", u.full(comps), e))?;
    }
    Ok(())
}

#[derive(Default)]
struct Attrs {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    xattrs: Vec<(CString, Vec<u8>)>,
}

struct Unpacker {
    root: OwnedFd,
    dest: PathBuf,
    dirs: Vec<(Vec<OsString>, i64)>,
    opts: UnpackOptions,
    /// File content unpacked so far.
    bytes: u64,
}

impl Unpacker {
    fn full(&self, comps: &[OsString]) -> PathBuf {
        let mut p = self.dest.clone();
        p.extend(comps);
        p
    }

    fn cname(&self, comps: &[OsString], name: &OsStr) -> Result<CString> {
        sys::cstring(name).map_err(|e| Error::sys("open", self.full(comps), e))
    }

    /// Open the directory `comps` below the root without following any symlink,
    /// creating missing directories (0755) if `create`.
    fn open_dir(&self, comps: &[OsString], create: bool, entry: &Path) -> Result<OwnedFd> {
        let mut cur: Option<OwnedFd> = None;
        for (i, c) in comps.iter().enumerate() {
            let dirfd = cur
                .as_ref()
                .map_or(self.root.as_raw_fd(), |f| f.as_raw_fd());
            let cn = self.cname(&comps[..=i], c)?;
            let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;
            let fd = match sys::openat(dirfd, &cn, flags, 0) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) if create => {
                    match sys::mkdirat(dirfd, &cn, 0o755) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(Error::sys("mkdir", self.full(&comps[..=i]), e)),
                    }
                    sys::openat(dirfd, &cn, flags, 0)
                        .map_err(|e| Error::sys("open", self.full(&comps[..=i]), e))?
                }
                Err(Errno::ELOOP | Errno::ENOTDIR) => {
                    let what = match sys::lstatat(dirfd, &cn) {
                        Ok(Some(st)) if st.st_mode & libc::S_IFMT == libc::S_IFLNK => "a symlink",
                        _ => "not a directory",
                    };
                    let shown = comps[..=i].iter().collect::<PathBuf>();
                    return Err(unsafe_entry(
                        entry,
                        format!("parent {} is {what}", shown.display()),
                    ));
                }
                Err(e) => return Err(Error::sys("open", self.full(&comps[..=i]), e)),
            };
            cur = Some(fd);
        }
        match cur {
            Some(fd) => Ok(fd),
            None => sys::openat(
                self.root.as_raw_fd(),
                c".",
                libc::O_RDONLY | libc::O_DIRECTORY,
                0,
            )
            .map_err(|e| Error::sys("open", &self.dest, e)),
        }
    }

    fn unpack_entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<()> {
        let etype = entry.header().entry_type();
        if matches!(
            etype,
            EntryType::XGlobalHeader
                | EntryType::XHeader
                | EntryType::GNULongName
                | EntryType::GNULongLink
        ) {
            return Ok(());
        }
        let path = entry.path().map_err(tar_err("reading"))?.into_owned();
        if etype == EntryType::GNUSparse {
            // Its holes expand to any size from a few bytes of tar: refused, as no image
            // builder writes one.
            return Err(unsafe_entry(&path, "GNU sparse files are not supported"));
        }
        if matches!(etype, EntryType::Regular | EntryType::Continuous) {
            self.bytes = self.bytes.saturating_add(entry.size());
            if self.bytes > self.opts.max_bytes {
                return Err(unsafe_entry(
                    &path,
                    format!(
                        "the layer unpacks to more than {} bytes (the limit)",
                        self.opts.max_bytes
                    ),
                ));
            }
        }
        let comps = split_entry(&path).map_err(|r| unsafe_entry(&path, r))?;
        let attrs = read_attrs(entry).map_err(tar_err("reading"))?;

        let Some((name, parents)) = comps.split_last() else {
            // The layer root itself ("./"): apply its metadata to dest.
            if etype.is_dir() {
                let fd = self.open_dir(&[], false, &path)?;
                self.set_fd_attrs(&fd, &attrs, &comps)?;
                self.dirs.push((Vec::new(), attrs.mtime));
            }
            return Ok(());
        };
        let parent = self.open_dir(parents, true, &path)?;
        let pfd = parent.as_raw_fd();
        let nb = name.as_bytes();

        // Whiteouts.
        if nb == OPAQUE_MARKER.as_bytes() {
            return sys::fsetxattr(&parent, OPAQUE_XATTR_C, b"y")
                .map_err(|e| Error::sys("setxattr opaque", self.full(parents), e));
        }
        if nb.starts_with(b".wh..wh.") {
            return Ok(()); // aufs metadata (.wh..wh.plnk, .wh..wh.aufs, ...)
        }
        if let Some(target) = nb.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            if target.is_empty() || target == b"." || target == b".." || target.contains(&b'/') {
                return Err(unsafe_entry(&path, "invalid whiteout name"));
            }
            let tname = OsStr::from_bytes(target);
            let full = self.full(&comps[..comps.len() - 1]).join(tname);
            let ct = self.cname(parents, tname)?;
            remove_all_at(pfd, &ct).map_err(|e| Error::sys("remove", &full, e))?;
            return sys::mknodat(pfd, &ct, libc::S_IFCHR, 0)
                .map_err(|e| Error::sys("mknod whiteout", &full, e));
        }

        let full = self.full(&comps);
        let cn = self.cname(&comps, name)?;
        // Replace whatever is there, except that directories merge.
        if let Some(st) = sys::lstatat(pfd, &cn).map_err(|e| Error::sys("stat", &full, e))? {
            let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
            if !(is_dir && etype.is_dir()) {
                remove_all_at(pfd, &cn).map_err(|e| Error::sys("remove", &full, e))?;
            }
        }
        let sys_err = |op: &'static str| {
            let full = full.clone();
            move |e: Errno| Error::sys(op, full.clone(), e)
        };

        match etype {
            EntryType::Regular | EntryType::Continuous => {
                let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
                let fd = sys::openat(pfd, &cn, flags, 0o600).map_err(sys_err("create"))?;
                let mut f = File::from(fd);
                io::copy(entry, &mut f).map_err(|e| Error::io("write", &full, e))?;
                let fd = OwnedFd::from(f);
                self.set_fd_attrs(&fd, &attrs, &comps)?;
                sys::futimens(&fd, attrs.mtime).map_err(sys_err("utimens"))?;
            }
            EntryType::Directory => {
                match sys::mkdirat(pfd, &cn, 0o700) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(Error::sys("mkdir", &full, e)),
                }
                let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;
                let fd = sys::openat(pfd, &cn, flags, 0).map_err(sys_err("open"))?;
                self.set_fd_attrs(&fd, &attrs, &comps)?;
                self.dirs.push((comps.clone(), attrs.mtime));
            }
            EntryType::Symlink => {
                let target = link_name(entry, &path)?;
                let ct = sys::cstring(target.as_os_str()).map_err(sys_err("symlink"))?;
                sys::symlinkat(&ct, pfd, &cn).map_err(sys_err("symlink"))?;
                sys::lchownat(pfd, &cn, attrs.uid, attrs.gid).map_err(sys_err("chown"))?;
                sys::lutimensat(pfd, &cn, attrs.mtime).map_err(sys_err("utimens"))?;
            }
            EntryType::Link => {
                let (tparent, ctn) = self.link_target(entry, &path)?;
                sys::linkat(tparent.as_raw_fd(), &ctn, pfd, &cn).map_err(sys_err("link"))?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let h = entry.header();
                let major = h.device_major().ok().flatten().unwrap_or(0);
                let minor = h.device_minor().ok().flatten().unwrap_or(0);
                let whiteout = etype == EntryType::Char && major == 0 && minor == 0;
                if etype != EntryType::Fifo && !whiteout && !self.opts.devices {
                    return Err(unsafe_entry(
                        &path,
                        "device node (only a privileged caller may create one)",
                    ));
                }
                let kind = match etype {
                    EntryType::Char => libc::S_IFCHR,
                    EntryType::Block => libc::S_IFBLK,
                    _ => libc::S_IFIFO,
                };
                let dev = libc::makedev(major, minor);
                sys::mknodat(pfd, &cn, kind | 0o600, dev).map_err(sys_err("mknod"))?;
                sys::lchownat(pfd, &cn, attrs.uid, attrs.gid).map_err(sys_err("chown"))?;
                sys::fchmodat(pfd, &cn, attrs.mode).map_err(sys_err("chmod"))?;
                sys::lutimensat(pfd, &cn, attrs.mtime).map_err(sys_err("utimens"))?;
            }
            _ => {} // sockets, volume labels, ...: nothing to create
        }
        Ok(())
    }

    /// The file a hard link entry at `path` names: its parent directory's fd and its name,
    /// refused unless it is a file the layer already holds.
    fn link_target<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
        path: &Path,
    ) -> Result<(OwnedFd, CString)> {
        let target = link_name(entry, path)?;
        let tcomps = split_entry(&target).map_err(|r| {
            unsafe_entry(path, format!("hardlink target {}: {r}", target.display()))
        })?;
        let Some((tname, tparents)) = tcomps.split_last() else {
            return Err(unsafe_entry(path, "hardlink to the layer root"));
        };
        let tparent = self.open_dir(tparents, false, path).map_err(|e| match e {
            Error::UnsafeEntry { reason, .. } => unsafe_entry(
                path,
                format!("hardlink target {}: {reason}", target.display()),
            ),
            _ => unsafe_entry(
                path,
                format!(
                    "hardlink target {} does not exist in the layer",
                    target.display()
                ),
            ),
        })?;
        let ctn = self.cname(tparents, tname)?;
        match sys::lstatat(tparent.as_raw_fd(), &ctn) {
            Ok(Some(st)) if st.st_mode & libc::S_IFMT != libc::S_IFDIR => {}
            _ => {
                return Err(unsafe_entry(
                    path,
                    format!(
                        "hardlink target {} is not a file in the layer",
                        target.display()
                    ),
                ))
            }
        }
        Ok((tparent, ctn))
    }

    /// chown, chmod (after chown, which clears setuid) and xattrs on an open file/dir.
    fn set_fd_attrs(&self, fd: &OwnedFd, a: &Attrs, comps: &[OsString]) -> Result<()> {
        let full = || self.full(comps);
        sys::fchown(fd, a.uid, a.gid).map_err(|e| Error::sys("chown", full(), e))?;
        sys::fchmod(fd, a.mode).map_err(|e| Error::sys("chmod", full(), e))?;
        for (k, v) in &a.xattrs {
            sys::fsetxattr(fd, k, v).map_err(|e| Error::sys("setxattr", full(), e))?;
        }
        Ok(())
    }
}

fn link_name<R: Read>(entry: &tar::Entry<'_, R>, path: &Path) -> Result<PathBuf> {
    entry
        .link_name()
        .map_err(tar_err("reading"))?
        .map(|c| c.into_owned())
        .ok_or_else(|| unsafe_entry(path, "link without a target"))
}

fn read_attrs<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Attrs> {
    let h = entry.header();
    let old = h.as_old();
    let mut a = Attrs {
        mode: or_zero(&old.mode, h.mode().map(u64::from))? as u32 & 0o7777,
        uid: or_zero(&old.uid, h.uid())? as u32,
        gid: or_zero(&old.gid, h.gid())? as u32,
        mtime: or_zero(&old.mtime, h.mtime())? as i64,
        xattrs: Vec::new(),
    };
    if let Some(exts) = entry.pax_extensions()? {
        for ext in exts {
            let ext = ext?;
            let Ok(key) = ext.key() else { continue };
            let val = ext.value_bytes();
            let num = || std::str::from_utf8(val).ok().map(str::trim);
            match key {
                "uid" => a.uid = num().and_then(|s| s.parse().ok()).unwrap_or(a.uid),
                "gid" => a.gid = num().and_then(|s| s.parse().ok()).unwrap_or(a.gid),
                "mtime" => {
                    let whole = num().and_then(|s| s.split('.').next()?.parse().ok());
                    a.mtime = whole.unwrap_or(a.mtime);
                }
                _ => {
                    if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                        if name.starts_with("trusted.overlay.") {
                            continue;
                        }
                        if let Ok(c) = CString::new(name) {
                            a.xattrs.push((c, val.to_vec()));
                        }
                    }
                }
            }
        }
    }
    Ok(a)
}

/// An all-blank numeric header field counts as zero (some writers leave them empty).
fn or_zero(field: &[u8], parsed: io::Result<u64>) -> io::Result<u64> {
    if field.iter().all(|b| *b == 0 || *b == b' ') {
        Ok(0)
    } else {
        parsed
    }
}

/// Remove `name` in `dir` whatever it is (recursively for directories), never
/// following symlinks. Missing is fine.
fn remove_all_at(dir: RawFd, name: &CStr) -> SysResult<()> {
    match sys::unlinkat(dir, name, 0) {
        Ok(()) | Err(Errno::ENOENT) => return Ok(()),
        Err(Errno::EISDIR) => {}
        Err(e) => return Err(e),
    }
    let fd = sys::openat(
        dir,
        name,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        0,
    )?;
    let dfd = fd.as_raw_fd();
    let children: Vec<CString> = {
        // SAFETY: dup gives nix::Dir its own fd to own and close.
        let dup = unsafe { libc::fcntl(dfd, libc::F_DUPFD_CLOEXEC, 0) };
        if dup < 0 {
            return Err(Errno::last());
        }
        // SAFETY: dup is a fresh fd owned by nothing else.
        let owned = unsafe { OwnedFd::from_raw_fd(dup) };
        let mut d = nix::dir::Dir::from_fd(std::os::fd::IntoRawFd::into_raw_fd(owned))?;
        d.iter()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_owned())
            .filter(|n| n.as_bytes() != b"." && n.as_bytes() != b"..")
            .collect()
    };
    for c in &children {
        remove_all_at(dfd, c)?;
    }
    sys::unlinkat(dir, name, libc::AT_REMOVEDIR)
}

/// Write the upper directory `upper` as an OCI layer tar to `out`.
///
/// Overlay whiteouts (0:0 character devices) become empty `.wh.NAME` files and
/// opaque directories (`trusted.overlay.opaque=y`) get a `.wh..wh..opq` entry
/// right after the directory entry. Entries are sorted by name; hardlinked
/// files become tar hardlinks; sockets are skipped. Extended attributes other
/// than overlay's own (`trusted.overlay.*`) are kept as `SCHILY.xattr.*` PAX records. Upper dirs that use `redirect_dir` or `metacopy` are refused
/// with [`Error::Unsupported`] (such layers cannot be expressed as plain tars).
pub fn diff_layer<W: Write>(upper: &Path, out: W) -> Result<()> {
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    let mut links = HashMap::new();
    walk_upper(&mut b, upper, Path::new(""), &mut links)?;
    b.into_inner().map_err(tar_err("writing"))?;
    Ok(())
}

/// A PAX header holding `path`'s extended attributes (but overlay's), if it has any.
fn append_xattrs<W: Write>(b: &mut tar::Builder<W>, path: &Path) -> Result<()> {
    let names = sys::llistxattr(path).map_err(|e| Error::sys("listxattr", path, e))?;
    let mut recs: Vec<(String, Vec<u8>)> = Vec::new();
    for n in names {
        let Ok(name) = n.to_str() else { continue };
        if name.starts_with("trusted.overlay.") {
            continue;
        }
        if let Some(v) = sys::lgetxattr(path, &n).map_err(|e| Error::sys("getxattr", path, e))? {
            recs.push((format!("SCHILY.xattr.{name}"), v));
        }
    }
    if recs.is_empty() {
        return Ok(());
    }
    b.append_pax_extensions(recs.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
        .map_err(tar_err("writing"))
}

fn base_header(md: &fs::Metadata) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_mode(md.mode() & 0o7777);
    h.set_uid(md.uid().into());
    h.set_gid(md.gid().into());
    h.set_mtime(md.mtime().max(0) as u64);
    h.set_size(0);
    h
}

fn walk_upper<W: Write>(
    b: &mut tar::Builder<W>,
    upper: &Path,
    rel: &Path,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> Result<()> {
    let dir = upper.join(rel);
    let mut names: Vec<OsString> = fs::read_dir(&dir)
        .map_err(|e| Error::io("readdir", &dir, e))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()
        .map_err(|e| Error::io("readdir", &dir, e))?;
    names.sort();
    let werr = |e: io::Error| Error::Tar {
        op: "writing",
        source: e,
    };
    for name in names {
        let full = dir.join(&name);
        let relp = rel.join(&name);
        let md = fs::symlink_metadata(&full).map_err(|e| Error::io("stat", &full, e))?;
        let ft = md.file_type();
        let mut h = base_header(&md);
        if !is_whiteout(&md) && (ft.is_dir() || ft.is_file() || ft.is_symlink()) {
            append_xattrs(b, &full)?;
        }
        if is_whiteout(&md) {
            let mut wname = OsString::from(WHITEOUT_PREFIX);
            wname.push(&name);
            h.set_entry_type(EntryType::Regular);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            b.append_data(&mut h, rel.join(wname), io::empty())
                .map_err(werr)?;
        } else if ft.is_dir() {
            if sys::lgetxattr(&full, c"trusted.overlay.redirect")
                .map_err(|e| Error::sys("getxattr", &full, e))?
                .is_some()
            {
                return Err(Error::Unsupported {
                    path: full,
                    what: "redirect_dir (renamed lower directory)",
                });
            }
            h.set_entry_type(EntryType::Directory);
            b.append_data(&mut h, &relp, io::empty()).map_err(werr)?;
            if is_opaque(&full)? {
                let mut oh = base_header(&md);
                oh.set_entry_type(EntryType::Regular);
                oh.set_mode(0o644);
                b.append_data(&mut oh, relp.join(OPAQUE_MARKER), io::empty())
                    .map_err(werr)?;
            }
            walk_upper(b, upper, &relp, links)?;
        } else if ft.is_file() {
            if sys::lgetxattr(&full, c"trusted.overlay.metacopy")
                .map_err(|e| Error::sys("getxattr", &full, e))?
                .is_some()
            {
                return Err(Error::Unsupported {
                    path: full,
                    what: "metacopy (metadata-only copy-up)",
                });
            }
            if md.nlink() > 1 {
                let key = (md.dev(), md.ino());
                if let Some(first) = links.get(&key) {
                    h.set_entry_type(EntryType::Link);
                    b.append_link(&mut h, &relp, first).map_err(werr)?;
                    continue;
                }
                links.insert(key, relp.clone());
            }
            h.set_entry_type(EntryType::Regular);
            h.set_size(md.len());
            let f = File::open(&full).map_err(|e| Error::io("open", &full, e))?;
            b.append_data(&mut h, &relp, f).map_err(werr)?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&full).map_err(|e| Error::io("readlink", &full, e))?;
            h.set_entry_type(EntryType::Symlink);
            b.append_link(&mut h, &relp, target).map_err(werr)?;
        } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() {
            let t = if ft.is_char_device() {
                EntryType::Char
            } else if ft.is_block_device() {
                EntryType::Block
            } else {
                EntryType::Fifo
            };
            h.set_entry_type(t);
            if !ft.is_fifo() {
                let rdev = md.rdev();
                h.set_device_major(libc::major(rdev)).map_err(werr)?;
                h.set_device_minor(libc::minor(rdev)).map_err(werr)?;
            }
            b.append_data(&mut h, &relp, io::empty()).map_err(werr)?;
        }
        // sockets: skipped
    }
    Ok(())
}

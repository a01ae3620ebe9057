//! COPY and ADD: sources opened in the build context (symlinks resolved inside it,
//! `.dockerignore` applied) and written inside the step's mounted root (symlinks resolved
//! inside that), hashed for the step's cache key.

use std::ffi::CString;
use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::cache::hex;
use super::ignore::Ignore;
use super::{Stage, StepRoot};
use crate::store::ImageStore;

/// A source path of COPY/ADD, relative to the context and never leaving it.
pub(super) fn context_path(src: &str) -> Result<PathBuf, String> {
    let mut p = PathBuf::new();
    for c in Path::new(src).components() {
        match c {
            std::path::Component::Normal(n) => p.push(n),
            std::path::Component::CurDir | std::path::Component::RootDir => {}
            _ => return Err(format!("{src:?} leaves the build context")),
        }
    }
    Ok(p)
}

// ---- writing inside a mounted root, symlinks resolved inside it ----

pub(super) fn openat2_in_root(root: RawFd, rel: &str) -> std::io::Result<OwnedFd> {
    runtime::in_root::openat2(
        root,
        Path::new(rel),
        libc::O_RDONLY | libc::O_DIRECTORY,
        runtime::in_root::IN_ROOT,
    )
}

/// Open (making missing dirs, owned `owner`, 0755) the directory `rel` inside `root`.
pub(super) fn mkdir_in_root(
    root: RawFd,
    rel: &str,
    owner: Option<(u32, u32)>,
) -> std::io::Result<OwnedFd> {
    let comps: Vec<&str> = rel
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    let mut cur = openat2_in_root(root, "")?;
    for i in 0..comps.len() {
        let prefix = comps[..=i].join("/");
        cur = match openat2_in_root(root, &prefix) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                let name = CString::new(comps[i])
                    .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
                // SAFETY: valid C string, dir fd we own.
                if unsafe { libc::mkdirat(cur.as_raw_fd(), name.as_ptr(), 0o755) } != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let fd = openat2_in_root(root, &prefix)?;
                if let Some((u, g)) = owner {
                    // SAFETY: plain syscall on an owned fd.
                    unsafe { libc::fchown(fd.as_raw_fd(), u, g) };
                }
                fd
            }
            Err(e) => return Err(e),
        };
    }
    Ok(cur)
}

/// The parent of `dst` inside `root` (made as needed) and the entry's name, with what was
/// there removed (but a directory).
pub(super) fn dest_slot(
    root: RawFd,
    dst: &str,
    owner: Option<(u32, u32)>,
) -> Result<(OwnedFd, CString), String> {
    let (parent, name) = match dst.trim_end_matches('/').rsplit_once('/') {
        Some((p, n)) => (p, n),
        None => ("", dst),
    };
    let pfd = mkdir_in_root(root, parent, owner).map_err(|e| format!("mkdir {dst}: {e}"))?;
    let cn = CString::new(name).map_err(|_| format!("bad name {name:?}"))?;
    // SAFETY: valid C string, dir fd we own.
    unsafe { libc::unlinkat(pfd.as_raw_fd(), cn.as_ptr(), 0) };
    Ok((pfd, cn))
}

/// Write the symlink `dst` -> `target` inside `root`.
pub(super) fn write_symlink(
    root: RawFd,
    dst: &str,
    target: &[u8],
    owner: (u32, u32),
) -> Result<(), String> {
    let (pfd, cn) = dest_slot(root, dst, None)?;
    let ct = CString::new(target).map_err(|_| format!("{dst}: bad link"))?;
    // SAFETY: valid C strings, dir fd we own.
    if unsafe { libc::symlinkat(ct.as_ptr(), pfd.as_raw_fd(), cn.as_ptr()) } != 0 {
        return Err(format!(
            "symlink {dst}: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: as above.
    unsafe {
        libc::fchownat(
            pfd.as_raw_fd(),
            cn.as_ptr(),
            owner.0,
            owner.1,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    Ok(())
}

/// Write the regular file `dst` inside `root` from `src`; with `h`, every byte written is
/// hashed as it is written (the source is read once).
pub(super) fn write_file(
    root: RawFd,
    dst: &str,
    src: &mut impl Read,
    mode: u32,
    owner: (u32, u32),
    mut h: Option<&mut Sha256>,
) -> Result<(), String> {
    let (pfd, cn) = dest_slot(root, dst, None)?;
    // SAFETY: valid C string, dir fd we own; O_NOFOLLOW|O_EXCL: never through a link.
    let fd = unsafe {
        libc::openat(
            pfd.as_raw_fd(),
            cn.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            0o600,
        )
    };
    if fd < 0 {
        return Err(format!("create {dst}: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: fresh fd.
    let mut out = unsafe { fs::File::from_raw_fd(fd) };
    let mut buf = vec![0u8; 65536];
    loop {
        let k = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("read for {dst}: {e}")),
        };
        if let Some(h) = h.as_deref_mut() {
            h.update(&buf[..k]);
        }
        out.write_all(&buf[..k])
            .map_err(|e| format!("write {dst}: {e}"))?;
    }
    // SAFETY: plain syscalls on an owned fd.
    unsafe {
        libc::fchown(out.as_raw_fd(), owner.0, owner.1);
        libc::fchmod(out.as_raw_fd(), mode & 0o7777);
    }
    Ok(())
}

/// Copy `src` (a path of our own: an unpacked ADD archive) to `dst` inside `root`.
pub(super) fn copy_in(
    root: RawFd,
    src: &Path,
    dst: &str,
    owner: Option<(u32, u32)>,
) -> Result<(), String> {
    let md = fs::symlink_metadata(src).map_err(|e| format!("{}: {e}", src.display()))?;
    let own = owner.unwrap_or((md.uid(), md.gid()));
    if md.is_dir() {
        mkdir_in_root(root, dst, owner).map_err(|e| format!("mkdir {dst}: {e}"))?;
        let mut names: Vec<_> = fs::read_dir(src)
            .map_err(|e| format!("{}: {e}", src.display()))?
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        names.sort();
        for n in names {
            let d = format!("{}/{}", dst.trim_end_matches('/'), n.to_string_lossy());
            copy_in(root, &src.join(&n), &d, owner)?;
        }
        return Ok(());
    }
    if md.file_type().is_symlink() {
        let t = fs::read_link(src).map_err(|e| format!("{}: {e}", src.display()))?;
        return write_symlink(root, dst, t.as_os_str().as_bytes(), own);
    }
    if !md.is_file() {
        return Err(format!(
            "{}: not a regular file, dir or symlink",
            src.display()
        ));
    }
    let mut inp = fs::File::open(src).map_err(|e| format!("{}: {e}", src.display()))?;
    write_file(root, dst, &mut inp, md.mode(), own, None)
}

/// Copies from the build context into a step's root, every source opened beneath the
/// context (never through a symlink leading out), `.dockerignore`d entries left out, and
/// hashes exactly what it writes: each entry's path, kind and mode, and the bytes of each
/// file as they are copied (one read), so the cache key is the key of the content copied.
struct Copier<'a> {
    root: RawFd,
    owner: Option<(u32, u32)>,
    ign: &'a Ignore,
    h: Sha256,
}

impl Copier<'_> {
    fn note(&mut self, rel: &Path, what: String) {
        self.h.update(rel.as_os_str().as_bytes());
        self.h.update(b"\0");
        self.h.update(what.as_bytes());
        self.h.update(b"\0");
    }

    fn own(&self, md: &fs::Metadata) -> (u32, u32) {
        self.owner.unwrap_or((md.uid(), md.gid()))
    }

    /// The entry `name` of the context directory `dir` (context path `rel`) to `dst`.
    fn entry(
        &mut self,
        dir: &fs::File,
        name: &std::ffi::OsStr,
        rel: &Path,
        dst: &str,
    ) -> Result<(), String> {
        if self.ign.ignored(rel) {
            return Ok(());
        }
        let cn = CString::new(name.as_bytes()).map_err(|_| format!("bad name {name:?}"))?;
        let err = |e: std::io::Error| format!("{}: {e}", rel.display());
        let st = nix::sys::stat::fstatat(
            Some(dir.as_raw_fd()),
            cn.as_c_str(),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| err(e.into()))?;
        match st.st_mode & libc::S_IFMT {
            libc::S_IFLNK => {
                let t = nix::fcntl::readlinkat(Some(dir.as_raw_fd()), name)
                    .map_err(|e| err(e.into()))?;
                self.note(rel, format!("symlink {}", t.to_string_lossy()));
                let own = self.owner.unwrap_or((st.st_uid, st.st_gid));
                write_symlink(self.root, dst, t.as_bytes(), own)
            }
            libc::S_IFDIR | libc::S_IFREG => {
                let dir_flag = if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
                    libc::O_DIRECTORY
                } else {
                    0
                };
                // SAFETY: valid C string, a dir fd we own.
                let fd = unsafe {
                    libc::openat(
                        dir.as_raw_fd(),
                        cn.as_ptr(),
                        libc::O_RDONLY
                            | libc::O_NOFOLLOW
                            | libc::O_NONBLOCK
                            | libc::O_NOCTTY
                            | libc::O_CLOEXEC
                            | dir_flag,
                    )
                };
                if fd < 0 {
                    return Err(err(std::io::Error::last_os_error()));
                }
                // SAFETY: a fresh fd.
                let f = unsafe { fs::File::from_raw_fd(fd) };
                self.node(f, rel, dst)
            }
            _ => Err(format!(
                "{}: not a regular file, directory or symlink",
                rel.display()
            )),
        }
    }

    /// An opened context file or directory (a directory: its content) to `dst`.
    fn node(&mut self, mut f: fs::File, rel: &Path, dst: &str) -> Result<(), String> {
        let md = f
            .metadata()
            .map_err(|e| format!("{}: {e}", rel.display()))?;
        if md.is_dir() {
            self.note(rel, format!("dir {:o}", md.mode() & 0o7777));
            mkdir_in_root(self.root, dst, self.owner).map_err(|e| format!("mkdir {dst}: {e}"))?;
            let mut names: Vec<_> = fs::read_dir(format!("/proc/self/fd/{}", f.as_raw_fd()))
                .map_err(|e| format!("{}: {e}", rel.display()))?
                .filter_map(|e| e.ok().map(|e| e.file_name()))
                .collect();
            names.sort();
            for n in names {
                let d = format!("{}/{}", dst.trim_end_matches('/'), n.to_string_lossy());
                self.entry(&f, &n, &rel.join(&n), &d)?;
            }
            return Ok(());
        }
        if !md.is_file() {
            return Err(format!(
                "{}: not a regular file, directory or symlink",
                rel.display()
            ));
        }
        self.note(rel, format!("file {:o}", md.mode() & 0o7777));
        let own = self.own(&md);
        write_file(self.root, dst, &mut f, md.mode(), own, Some(&mut self.h))
    }
}

/// Open the source `rel` of COPY/ADD in the context, as `docker build` resolves it: every
/// symlink on the way (the last one too) is followed with the context as `/`, so none
/// leads to the host. Refused when what it resolves to is excluded by `.dockerignore` (the
/// context docker sends does not hold it). Returns the opened file or directory and its
/// path in the context.
pub(super) fn open_source(
    ctx: &Context,
    src: &str,
    rel: &Path,
) -> Result<(fs::File, PathBuf), String> {
    let fd = runtime::in_root::openat2(
        ctx.fd.as_raw_fd(),
        rel,
        libc::O_PATH,
        runtime::in_root::IN_ROOT,
    )
    .map_err(|e| match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENOTDIR) => {
            format!("{src}: no such file or directory in the build context")
        }
        _ => format!("{src}: {e}"),
    })?;
    let real = fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map_err(|e| format!("{src}: {e}"))?;
    let real_rel = real
        .strip_prefix(&ctx.dir)
        .map(Path::to_path_buf)
        .map_err(|_| format!("{src}: resolves outside the build context"))?;
    if (!real_rel.as_os_str().is_empty() && ctx.ign.ignored(&real_rel))
        || (!rel.as_os_str().is_empty() && ctx.ign.ignored(rel))
    {
        return Err(format!(
            "{src}: excluded by .dockerignore (not in the build context)"
        ));
    }
    let md = fs::File::from(fd);
    let kind = md.metadata().map_err(|e| format!("{src}: {e}"))?;
    if !kind.is_dir() && !kind.is_file() {
        return Err(format!("{src}: not a regular file or directory"));
    }
    // Reopened for reading through the fd itself: the same file, whatever the path is now.
    let f = fs::File::open(format!("/proc/self/fd/{}", md.as_raw_fd()))
        .map_err(|e| format!("{src}: {e}"))?;
    Ok((f, real_rel))
}

/// The build context: its directory (canonical), an fd every source is opened under, and
/// its `.dockerignore`.
pub(super) struct Context {
    pub(super) dir: PathBuf,
    pub(super) fd: fs::File,
    pub(super) ign: Ignore,
}

impl Context {
    pub(super) fn open(dir: &Path) -> Result<Context, String> {
        let dir = dir
            .canonicalize()
            .map_err(|e| format!("build context {}: {e}", dir.display()))?;
        let fd =
            fs::File::open(&dir).map_err(|e| format!("build context {}: {e}", dir.display()))?;
        let mut c = Context {
            dir,
            fd,
            ign: Ignore(Vec::new()),
        };
        c.ign = match c.read(".dockerignore") {
            Ok(t) => Ignore::parse(&t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ignore(Vec::new()),
            Err(e) => return Err(format!("{}: {e}", c.dir.join(".dockerignore").display())),
        };
        Ok(c)
    }

    /// Read the regular file `rel` of the context (symlinks resolved inside it), at most
    /// 16 MiB.
    pub(super) fn read(&self, rel: &str) -> std::io::Result<String> {
        let f =
            runtime::in_root::open_regular(&self.fd, Path::new(rel), runtime::in_root::IN_ROOT)?;
        let b = runtime::in_root::read_capped(f, 16 << 20, &self.dir.join(rel))?;
        String::from_utf8(b).map_err(|_| std::io::Error::other("not UTF-8 text"))
    }
}

/// Do a COPY or ADD into a fresh step root: `rest` is SRC... DEST. Returns the mounted
/// root and the hash of what was copied (for the step's cache key).
pub(super) fn copy_step(
    store: &ImageStore,
    ctx: &Context,
    kw: &str,
    rest: &[String],
    chown: Option<&str>,
    st: &Stage,
    cfg: &oci_spec::image::Config,
) -> Result<(StepRoot, String), String> {
    let (dest_raw, srcs) = rest.split_last().ok_or("want SRC... DEST")?;
    let workdir = cfg.working_dir().clone().unwrap_or_else(|| "/".into());
    let dest = if dest_raw.starts_with('/') {
        dest_raw.clone()
    } else {
        format!("{}/{}", workdir.trim_end_matches('/'), dest_raw)
    };
    let dest_is_dir = dest_raw.ends_with('/') || dest_raw == "." || srcs.len() > 1;
    let layer_dirs = store
        .layer_dirs(
            &st.layers
                .iter()
                .map(|l| l.diff_id.clone())
                .collect::<Vec<_>>(),
        )
        .map_err(|e| e.to_string())?;
    let owner = match chown {
        Some(c) => Some(crate::describe::resolve_user(&layer_dirs, c).map_err(|e| e.to_string())?),
        None => Some((0, 0)),
    };
    let sr = StepRoot::new(store, &st.layers)?;
    let rootf = fs::File::open(sr.merged()).map_err(|e| e.to_string())?;
    let mut cp = Copier {
        root: rootf.as_raw_fd(),
        owner,
        ign: &ctx.ign,
        h: Sha256::new(),
    };
    for src in srcs {
        if kw == "ADD" && (src.starts_with("http://") || src.starts_with("https://")) {
            return Err(format!("{src}: ADD from a URL is not supported"));
        }
        cp.h.update(b"\0src\0");
        cp.h.update(src.as_bytes());
        let rel = context_path(src)?;
        let (mut f, real) = open_source(ctx, src, &rel)?;
        let md = f.metadata().map_err(|e| format!("{src}: {e}"))?;
        if md.is_dir() {
            // The directory's content (filtered by .dockerignore) goes into DEST.
            cp.node(f, &real, &dest)?;
            continue;
        }
        let d = if dest_is_dir {
            format!(
                "{}/{}",
                dest.trim_end_matches('/'),
                real.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            )
        } else {
            dest.clone()
        };
        if kw != "ADD" {
            cp.node(f, &real, &d)?;
            continue;
        }
        // ADD: read the source once into a file of our own (hashed as it is read); a tar
        // (plain, gzip or zstd) is unpacked into DEST, anything else copied as COPY does.
        let tmp = store.temp_dir("add").map_err(|e| e.to_string())?;
        let res = (|| {
            let tf = fs::File::open(&tmp).map_err(|e| e.to_string())?;
            cp.note(&real, format!("add {:o}", md.mode() & 0o7777));
            write_file(
                tf.as_raw_fd(),
                "src",
                &mut f,
                0o600,
                (0, 0),
                Some(&mut cp.h),
            )?;
            let copy = tmp.join("src");
            if is_archive(&copy) {
                let out = tmp.join("out");
                fs::create_dir(&out).map_err(|e| e.to_string())?;
                let a = fs::File::open(&copy).map_err(|e| e.to_string())?;
                unionfs::unpack_layer_with(
                    std::io::BufReader::new(a),
                    &out,
                    unionfs::UnpackOptions {
                        devices: false,
                        ..store.unpack_options()
                    },
                )
                .map_err(|e| format!("{src}: {e}"))?;
                copy_in(cp.root, &out, &dest, chown.and(owner))
            } else {
                let mut a = fs::File::open(&copy).map_err(|e| e.to_string())?;
                let own = owner.unwrap_or((md.uid(), md.gid()));
                write_file(cp.root, &d, &mut a, md.mode(), own, None)
            }
        })();
        let _ = fs::remove_dir_all(&tmp);
        res?;
    }
    let content = hex(&cp.h.finalize());
    drop(rootf);
    Ok((sr, content))
}

pub(super) fn is_archive(p: &Path) -> bool {
    let Ok(f) = fs::File::open(p) else {
        return false;
    };
    let Ok((_, r)) = unionfs::decompress(std::io::BufReader::new(f)) else {
        return false;
    };
    let mut ar = tar::Archive::new(r);
    ar.entries()
        .ok()
        .and_then(|mut e| e.next())
        .map(|e| e.is_ok())
        .unwrap_or(false)
}

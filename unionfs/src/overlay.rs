//! Mounting overlay filesystems.

use std::ffi::CString;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use crate::error::{Error, Result};
use crate::sys;

/// Longest option string legacy `mount(2)` accepts (one page, including the NUL).
const LEGACY_OPTIONS_MAX: usize = 4095;

/// An overlay to mount: read-only `lowers` plus an optional writable `upper`.
///
/// `lowers` is ordered **bottom layer first** (the order in which image layers
/// are applied). `upper` and `work` must be both `Some` (writable overlay) or
/// both `None` (read-only overlay of the lowers; the kernel then needs at least
/// two lowers). Missing `upper`/`work` directories are created; they must be on
/// the same filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlay {
    /// Lower layers, bottom first.
    pub lowers: Vec<PathBuf>,
    /// Writable upper layer, or `None` for a read-only overlay.
    pub upper: Option<PathBuf>,
    /// Overlay work directory, required exactly when `upper` is set.
    pub work: Option<PathBuf>,
}

/// Which kernel interface [`Overlay::mount_with`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountApi {
    /// `fsopen`/`fsconfig("lowerdir+")`, falling back to `mount(2)` if the kernel lacks it.
    Auto,
    /// Only the new mount API (no fallback).
    New,
    /// Only legacy `mount(2)` with a `lowerdir=top:...:bottom` option string.
    Legacy,
}

impl Overlay {
    /// A writable overlay: `lowers` bottom first, with `upper` and `work`.
    pub fn new(lowers: Vec<PathBuf>, upper: impl Into<PathBuf>, work: impl Into<PathBuf>) -> Self {
        Overlay {
            lowers,
            upper: Some(upper.into()),
            work: Some(work.into()),
        }
    }

    /// A read-only overlay of `lowers` (bottom first).
    pub fn read_only(lowers: Vec<PathBuf>) -> Self {
        Overlay {
            lowers,
            upper: None,
            work: None,
        }
    }

    /// Mount on `target` (an existing directory), preferring the new mount API.
    pub fn mount(&self, target: &Path) -> Result<OverlayMount> {
        self.mount_with(target, MountApi::Auto)
    }

    /// Mount on `target` using the given kernel interface.
    pub fn mount_with(&self, target: &Path, api: MountApi) -> Result<OverlayMount> {
        self.validate(target)?;
        let ctarget = sys::cpath(target).map_err(|e| Error::sys("mount", target, e))?;
        match api {
            MountApi::Legacy => self.mount_legacy(target)?,
            MountApi::New => match self.mount_new(target, &ctarget)? {
                NewApi::Mounted => {}
                NewApi::Unsupported(errno) => {
                    return Err(Error::Mount {
                        op: "fsopen",
                        target: target.to_path_buf(),
                        errno,
                        detail: "new mount API or lowerdir+ unsupported".into(),
                    })
                }
            },
            MountApi::Auto => match self.mount_new(target, &ctarget)? {
                NewApi::Mounted => {}
                NewApi::Unsupported(_) => self.mount_legacy(target)?,
            },
        }
        Ok(OverlayMount {
            target: target.to_path_buf(),
            mounted: true,
        })
    }

    fn validate(&self, target: &Path) -> Result<()> {
        if self.lowers.is_empty() {
            return Err(Error::InvalidOverlay("no lower layers".into()));
        }
        for l in &self.lowers {
            require_dir(l, "lower")?;
        }
        require_dir(target, "target")?;
        match (&self.upper, &self.work) {
            (None, None) => {
                if self.lowers.len() < 2 {
                    return Err(Error::InvalidOverlay(
                        "a read-only overlay needs at least two lower layers".into(),
                    ));
                }
            }
            (Some(upper), Some(work)) => {
                for d in [upper, work] {
                    fs::create_dir_all(d).map_err(|e| Error::io("mkdir", d, e))?;
                    require_dir(d, "upper/work")?;
                }
                let du = fs::metadata(upper)
                    .map_err(|e| Error::io("stat", upper, e))?
                    .dev();
                let dw = fs::metadata(work)
                    .map_err(|e| Error::io("stat", work, e))?
                    .dev();
                if du != dw {
                    return Err(Error::InvalidOverlay(format!(
                        "upper {} and work {} are on different filesystems",
                        upper.display(),
                        work.display()
                    )));
                }
            }
            _ => {
                return Err(Error::InvalidOverlay(
                    "upper and work must be given together".into(),
                ))
            }
        }
        Ok(())
    }

    fn mount_new(&self, target: &Path, ctarget: &CString) -> Result<NewApi> {
        let fd = match sys::fsopen(c"overlay") {
            Ok(fd) => fd,
            Err(Errno::ENOSYS) => return Ok(NewApi::Unsupported(Errno::ENOSYS)),
            Err(e) => return Err(mount_err("fsopen", target, e, String::new())),
        };
        let fail = |op: &'static str, e: Errno| mount_err(op, target, e, sys::fs_context_log(&fd));
        // Not fatal: only cosmetic (the "source" column of mountinfo).
        let _ = sys::fsconfig(
            &fd,
            sys::FSCONFIG_SET_STRING,
            Some(c"source"),
            Some(c"overlay"),
        );
        for (i, l) in self.lowers.iter().rev().enumerate() {
            let c = sys::cpath(l).map_err(|e| Error::sys("mount", l, e))?;
            match sys::fsconfig(&fd, sys::FSCONFIG_SET_STRING, Some(c"lowerdir+"), Some(&c)) {
                Ok(()) => {}
                // Kernels before 6.8 do not know "lowerdir+".
                Err(Errno::EINVAL) if i == 0 => return Ok(NewApi::Unsupported(Errno::EINVAL)),
                Err(e) => {
                    let log = sys::fs_context_log(&fd);
                    return Err(mount_err("fsconfig lowerdir+", l, e, log));
                }
            }
        }
        if let (Some(upper), Some(work)) = (&self.upper, &self.work) {
            for (key, p) in [(c"upperdir", upper), (c"workdir", work)] {
                let c = sys::cpath(p).map_err(|e| Error::sys("mount", p, e))?;
                sys::fsconfig(&fd, sys::FSCONFIG_SET_STRING, Some(key), Some(&c)).map_err(|e| {
                    let log = sys::fs_context_log(&fd);
                    mount_err("fsconfig", p, e, log)
                })?;
            }
        }
        sys::fsconfig(&fd, sys::FSCONFIG_CMD_CREATE, None, None)
            .map_err(|e| fail("fsconfig create", e))?;
        let mfd = sys::fsmount(&fd).map_err(|e| fail("fsmount", e))?;
        sys::move_mount_to(&mfd, ctarget)
            .map_err(|e| mount_err("move_mount", target, e, String::new()))?;
        Ok(NewApi::Mounted)
    }

    /// The legacy `mount(2)` option string (`lowerdir=top:...:bottom[,upperdir=..,workdir=..]`).
    pub fn legacy_options(&self) -> Result<String> {
        let mut all: Vec<&PathBuf> = self.lowers.iter().collect();
        all.extend(self.upper.iter());
        all.extend(self.work.iter());
        for p in all {
            let s = p.to_str().ok_or_else(|| {
                Error::InvalidOverlay(format!("path {} is not valid UTF-8", p.display()))
            })?;
            if let Some(ch) = s.chars().find(|c| matches!(c, ':' | ',' | '\\')) {
                return Err(Error::UnrepresentablePath {
                    path: p.clone(),
                    ch,
                });
            }
        }
        let lowers: Vec<String> = self
            .lowers
            .iter()
            .rev()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        let mut opts = format!("lowerdir={}", lowers.join(":"));
        if let (Some(u), Some(w)) = (&self.upper, &self.work) {
            opts.push_str(&format!(
                ",upperdir={},workdir={}",
                u.display(),
                w.display()
            ));
        }
        if opts.len() > LEGACY_OPTIONS_MAX {
            return Err(Error::OptionsTooLong {
                len: opts.len(),
                max: LEGACY_OPTIONS_MAX,
            });
        }
        Ok(opts)
    }

    fn mount_legacy(&self, target: &Path) -> Result<()> {
        let opts = self.legacy_options()?;
        nix::mount::mount(
            Some("overlay"),
            target,
            Some("overlay"),
            nix::mount::MsFlags::empty(),
            Some(opts.as_str()),
        )
        .map_err(|e| mount_err("mount", target, e, String::new()))
    }
}

enum NewApi {
    Mounted,
    Unsupported(Errno),
}

fn mount_err(op: &'static str, target: &Path, errno: Errno, detail: String) -> Error {
    Error::Mount {
        op,
        target: target.to_path_buf(),
        errno,
        detail,
    }
}

fn require_dir(p: &Path, what: &str) -> Result<()> {
    let md = fs::metadata(p).map_err(|e| Error::io("stat", p, e))?;
    if !md.is_dir() {
        return Err(Error::InvalidOverlay(format!(
            "{what} {} is not a directory",
            p.display()
        )));
    }
    Ok(())
}

/// A mounted overlay. Dropping it detaches the mount (`MNT_DETACH`) unless
/// [`unmount`](Self::unmount) or [`leak`](Self::leak) was called.
#[derive(Debug)]
#[must_use = "dropping an OverlayMount unmounts it"]
pub struct OverlayMount {
    target: PathBuf,
    mounted: bool,
}

impl OverlayMount {
    /// Where the overlay is mounted.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Unmount now: a plain `umount2`, retried with `MNT_DETACH` if the mount is busy.
    pub fn unmount(mut self) -> Result<()> {
        self.mounted = false;
        let c = sys::cpath(&self.target).map_err(|e| Error::sys("umount", &self.target, e))?;
        match sys::umount2(&c, 0) {
            Ok(()) => Ok(()),
            Err(Errno::EBUSY) => sys::umount2(&c, libc::MNT_DETACH)
                .map_err(|e| Error::sys("umount (detach)", &self.target, e)),
            Err(e) => Err(Error::sys("umount", &self.target, e)),
        }
    }

    /// Marks this mount (the one at the target, in the caller's mount namespace) `nosuid` and
    /// `nodev`, keeping its other flags: a set-user-ID file or a device node in the overlay
    /// then gives nothing to whoever reaches it through the host's mount. Copies of the mount
    /// made before (a container's own mount namespace) keep their flags.
    pub fn set_nosuid_nodev(&self) -> Result<()> {
        use nix::mount::MsFlags;
        let keep = nix::sys::statvfs::statvfs(&self.target)
            .map_err(|e| Error::sys("statvfs", &self.target, e))?
            .flags();
        let mut flags =
            MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
        use nix::sys::statvfs::FsFlags;
        for (f, m) in [
            (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
            (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
            (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
            (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
            (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
        ] {
            if keep.contains(f) {
                flags |= m;
            }
        }
        nix::mount::mount(
            None::<&str>,
            &self.target,
            None::<&str>,
            flags,
            None::<&str>,
        )
        .map_err(|e| mount_err("remount nosuid,nodev", &self.target, e, String::new()))
    }

    /// Keep the overlay mounted past this guard; returns the target.
    pub fn leak(mut self) -> PathBuf {
        self.mounted = false;
        std::mem::take(&mut self.target)
    }
}

impl Drop for OverlayMount {
    fn drop(&mut self) {
        if self.mounted {
            if let Ok(c) = sys::cpath(&self.target) {
                let _ = sys::umount2(&c, libc::MNT_DETACH);
            }
        }
    }
}

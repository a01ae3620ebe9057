//! Files that appear whole: written to a temp file made exclusively beside the
//! destination (`O_CREAT|O_EXCL` under a random name, so never through a file or symlink
//! someone planted), then renamed over it. Every file corral writes through a temp name
//! goes through here.
#![deny(clippy::undocumented_unsafe_blocks)]

use std::io::{self, Write};
use std::path::Path;

/// A fresh temp file in `dest`'s directory, mode `mode` (before the umask), for
/// [`persist`]. Dropped without being persisted, it is removed.
pub fn temp_beside(dest: &Path, mode: u32) -> io::Result<tempfile::NamedTempFile> {
    use std::os::unix::fs::PermissionsExt;
    let dir = match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".corral-tmp")
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(dir)
}

/// Rename `tmp` to `dest` (replacing what is there, a symlink included, never writing
/// through it); with `sync`, its data reaches the disk first.
pub fn persist(tmp: tempfile::NamedTempFile, dest: &Path, sync: bool) -> io::Result<()> {
    if sync {
        tmp.as_file().sync_all()?;
    }
    tmp.persist(dest).map_err(|e| e.error)?;
    Ok(())
}

/// Write `data` to `dest` atomically, through an exclusive temp file (see the module).
pub fn write(dest: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    let mut tmp = temp_beside(dest, mode)?;
    tmp.write_all(data)?;
    persist(tmp, dest, false)
}

/// [`write()`], synced to the disk before the rename (store content).
pub fn write_durable(dest: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    let mut tmp = temp_beside(dest, mode)?;
    tmp.write_all(data)?;
    persist(tmp, dest, true)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn planted_symlinks_are_replaced_not_followed() {
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let dest = d.path().join("out.pid");
        // Whatever name the old code used, a link there is not written through.
        std::os::unix::fs::symlink(&victim, d.path().join("out.corral-tmp")).unwrap();
        super::write(&dest, b"42", 0o600).unwrap();
        assert_eq!(std::fs::read_to_string(&dest).unwrap(), "42");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert_eq!(std::fs::metadata(&dest).unwrap().mode() & 0o077, 0);
        // A symlink at the destination itself is replaced.
        std::os::unix::fs::symlink(&victim, d.path().join("l")).unwrap();
        super::write(&d.path().join("l"), b"x", 0o644).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        let left: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".corral-tmp") && n.starts_with('.'))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}

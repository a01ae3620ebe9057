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

/// [`write()`] for a file rewritten in place of an existing one (a container's state): the
/// new file and the old one swap names in one `renameat2(RENAME_EXCHANGE)`, and the old one,
/// now at the temp name, is removed. Readers see the old file or the new one, as with a
/// rename; but ext4 (`auto_da_alloc`) starts the writeback of a file renamed over another,
/// and not of one exchanged with it (the old file is unlinked unwritten). A kill -9 between
/// the two leaves the old content under a temp name (`.NAME.*.corral-tmp`) beside the new
/// file. Where there is nothing to swap with, or the filesystem cannot swap, a rename.
pub fn write_replacing(dest: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    let mut tmp = temp_beside(dest, mode)?;
    tmp.write_all(data)?;
    match nix::fcntl::renameat2(
        None,
        tmp.path(),
        None,
        dest,
        nix::fcntl::RenameFlags::RENAME_EXCHANGE,
    ) {
        // The old file is at the temp's name now: dropping the temp removes it.
        Ok(()) => tmp.close(),
        Err(_) => persist(tmp, dest, false),
    }
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
        // Replacing by exchange: the old file goes, a planted symlink is swapped out, not
        // followed; a missing destination is simply made.
        super::write_replacing(&dest, b"43", 0o600).unwrap();
        assert_eq!(std::fs::read_to_string(&dest).unwrap(), "43");
        std::os::unix::fs::symlink(&victim, d.path().join("m")).unwrap();
        super::write_replacing(&d.path().join("m"), b"y", 0o644).unwrap();
        assert_eq!(std::fs::read_to_string(d.path().join("m")).unwrap(), "y");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        super::write_replacing(&d.path().join("new"), b"z", 0o600).unwrap();
        assert_eq!(std::fs::read_to_string(d.path().join("new")).unwrap(), "z");
        let left: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".corral-tmp") && n.starts_with('.'))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}

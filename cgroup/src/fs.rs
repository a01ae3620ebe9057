//! Small helpers for reading and writing cgroup control files.

use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Writes `value` to `path` in one `write(2)`, mapping failure to [`Error::Write`].
pub(crate) fn write(path: &Path, value: &str) -> Result<()> {
    let res = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()));
    res.map_err(|source| Error::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        source,
    })
}

/// Writes `value` to `dir/file` for `setting`. When the directory exists but
/// the file does not, the kernel lacks the knob: [`Error::Unsupported`].
pub(crate) fn write_setting(dir: &Path, file: &str, value: &str, setting: &str) -> Result<()> {
    let path = dir.join(file);
    match write(&path, value) {
        Err(Error::Write { source, .. })
            if source.kind() == ErrorKind::NotFound && dir.is_dir() =>
        {
            Err(Error::unsupported(
                setting,
                vec![path],
                "the kernel does not provide this control file",
            ))
        }
        other => other,
    }
}

/// Opens `dir/file` for writing `setting` several times over (one rule per `write(2)`, as
/// `devices.allow` takes them); the errors are [`write_setting`]'s.
pub(crate) fn open_setting(dir: &Path, file: &str, setting: &str) -> Result<std::fs::File> {
    let path = dir.join(file);
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .map_err(|source| {
            if source.kind() == ErrorKind::NotFound && dir.is_dir() {
                Error::unsupported(
                    setting,
                    vec![path.clone()],
                    "the kernel does not provide this control file",
                )
            } else {
                Error::Write {
                    path: path.clone(),
                    value: String::new(),
                    source,
                }
            }
        })
}

/// Writes `value` in one `write(2)` to `f`, opened from `dir/file` by [`open_setting`].
pub(crate) fn write_to(f: &mut std::fs::File, dir: &Path, file: &str, value: &str) -> Result<()> {
    f.write_all(value.as_bytes())
        .map_err(|source| Error::Write {
            path: dir.join(file),
            value: value.to_string(),
            source,
        })
}

/// Returns the first of `files` that exists in `dir`, or an
/// [`Error::Unsupported`] for `setting` naming all of them.
pub(crate) fn first_existing(dir: &Path, files: &[&str], setting: &str) -> Result<PathBuf> {
    for f in files {
        let p = dir.join(f);
        if p.exists() {
            return Ok(p);
        }
    }
    Err(Error::unsupported(
        setting,
        files.iter().map(|f| dir.join(f)).collect(),
        "the kernel does not provide any of these control files",
    ))
}

/// Reads a whole control file.
pub(crate) fn read(path: &Path) -> Result<String> {
    read_whole(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// open + read in 4 KiB steps, without the statx and lseek `read_to_string` makes for a size
/// hint and its reads that start at 32 bytes: control files and `/proc` files report size 0.
fn read_whole(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut v = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => v.extend_from_slice(buf.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    String::from_utf8(v).map_err(|e| std::io::Error::new(ErrorKind::InvalidData, e))
}

/// Reads a control file; a missing file is `None`.
pub(crate) fn read_opt(path: &Path) -> Result<Option<String>> {
    // A delete reads one per hierarchy: see `read_whole`.
    match read_whole(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Reads a single unsigned number; `max` (v2) yields `None`. Missing file: `None`.
pub(crate) fn read_u64_opt(path: &Path) -> Result<Option<u64>> {
    let Some(s) = read_opt(path)? else {
        return Ok(None);
    };
    let s = s.trim();
    if s == "max" {
        return Ok(None);
    }
    s.parse::<u64>()
        .map(Some)
        .map_err(|e| Error::parse(path, format!("{s:?}: {e}")))
}

/// Looks up `key` in a flat-keyed file such as `memory.stat`, `cpu.stat`,
/// `memory.events` or `memory.oom_control`. Missing file or key: `None`.
pub(crate) fn read_keyed(path: &Path, key: &str) -> Result<Option<u64>> {
    let Some(s) = read_opt(path)? else {
        return Ok(None);
    };
    for line in s.lines() {
        let mut it = line.split_whitespace();
        if it.next() == Some(key) {
            if let Some(v) = it.next() {
                return v
                    .parse::<u64>()
                    .map(Some)
                    .map_err(|e| Error::parse(path, format!("{key} {v:?}: {e}")));
            }
        }
    }
    Ok(None)
}

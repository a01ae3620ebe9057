#![allow(dead_code)]

use std::fs;
use std::path::Path;

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Fail loudly when not root: the tests need mounts, mknod and chown.
#[macro_export]
macro_rules! require_root {
    () => {
        assert!(
            common::is_root(),
            "this test needs root (mounts, mknod, chown)"
        );
    };
}

/// Assert no mount point under `dir` remains in /proc/self/mountinfo.
pub fn assert_no_mounts_under(dir: &Path) {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let d = dir.to_str().unwrap();
    let left: Vec<&str> = info.lines().filter(|l| l.contains(d)).collect();
    assert!(left.is_empty(), "mounts left under {d}: {left:#?}");
}

pub fn is_mounted(dir: &Path) -> bool {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let d = dir.to_str().unwrap();
    info.lines().any(|l| l.split_whitespace().nth(4) == Some(d))
}

pub fn write(p: &Path, s: &str) {
    if let Some(parent) = p.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(p, s).unwrap();
}

pub fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap()
}

/// Sorted names in a directory.
pub fn names(p: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(p)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

/// Tar builder for crafting (possibly malicious) entries byte by byte.
pub struct RawTar(pub tar::Builder<Vec<u8>>);

impl RawTar {
    pub fn new() -> Self {
        RawTar(tar::Builder::new(Vec::new()))
    }

    pub fn entry(
        &mut self,
        name: &str,
        kind: tar::EntryType,
        link: Option<&str>,
        data: &[u8],
    ) -> &mut Self {
        let mut h = tar::Header::new_gnu();
        {
            let g = h.as_gnu_mut().unwrap();
            g.name[..name.len()].copy_from_slice(name.as_bytes());
            if let Some(l) = link {
                g.linkname[..l.len()].copy_from_slice(l.as_bytes());
            }
        }
        h.set_entry_type(kind);
        h.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
        h.set_size(data.len() as u64);
        h.set_mtime(1_600_000_000);
        h.set_cksum();
        self.0.append(&h, data).unwrap();
        self
    }

    pub fn file(&mut self, name: &str, data: &str) -> &mut Self {
        self.entry(name, tar::EntryType::Regular, None, data.as_bytes())
    }

    pub fn dir(&mut self, name: &str) -> &mut Self {
        self.entry(name, tar::EntryType::Directory, None, b"")
    }

    pub fn finish(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

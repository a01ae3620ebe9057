//! Layer tar bytes → `unionfs::unpack_layer` into `<tmp>/layer`. Whatever the archive holds
//! (`..`, absolute paths, symlinks and hard links pointing out, entries under a symlink,
//! whiteouts, devices), nothing may appear or change outside `layer/`: the sibling
//! `outside/` (a canary file, an empty dir) and the parent stay as they were.
#![no_main]

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use libfuzzer_sys::fuzz_target;

/// (relative path, size, mode, mtime, content) of everything under `dir`, sorted; symlinks
/// not followed.
fn snapshot(dir: &Path) -> Vec<(String, u64, u32, i64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(m) = fs::symlink_metadata(&p) else {
                continue;
            };
            let content = if m.is_file() {
                fs::read(&p).unwrap_or_default()
            } else {
                Vec::new()
            };
            let rel = p.strip_prefix(dir).unwrap_or(&p).display().to_string();
            out.push((rel, m.len(), m.mode(), m.mtime(), content));
            if m.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

fuzz_target!(|data: &[u8]| {
    let tmp = tempfile::Builder::new()
        .prefix("corral-fuzz-tar")
        .tempdir()
        .expect("temp dir");
    let top = tmp.path();
    let layer = top.join("layer");
    let outside = top.join("outside");
    fs::create_dir(&layer).expect("layer dir");
    fs::create_dir_all(outside.join("empty")).expect("outside dir");
    fs::write(outside.join("canary"), b"canary").expect("canary");
    let before = snapshot(&outside);
    let top_before: Vec<String> = {
        let mut v: Vec<String> = fs::read_dir(top)
            .expect("read top")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let _ = unionfs::unpack_layer(data, &layer);
    let after = snapshot(&outside);
    assert_eq!(
        before, after,
        "the unpack changed something outside its layer dir"
    );
    let mut top_after: Vec<String> = fs::read_dir(top)
        .expect("read top")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    top_after.sort();
    assert_eq!(
        top_before, top_after,
        "the unpack made an entry next to its layer dir"
    );
    // `layer` itself must still be a directory (not replaced by a symlink).
    let m = fs::symlink_metadata(&layer).expect("layer still exists");
    assert!(m.is_dir(), "layer dir replaced");
    // The seeds aim absolute paths and absolute symlinks at these two names.
    for p in ["/tmp/corral-fuzz-escape", "/etc/corral-fuzz-escape"] {
        assert!(
            fs::symlink_metadata(p).is_err(),
            "the unpack wrote {p}, outside its layer dir"
        );
    }
    // TempDir's drop uses remove_dir_all, which does not follow symlinks.
});

mod common;

use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use common::*;
use tar::EntryType;
use unionfs::{
    diff_layer, is_opaque, is_whiteout, unpack_layer, unpack_layer_with, Error, Overlay,
    UnpackOptions,
};

fn lmeta(p: &Path) -> fs::Metadata {
    fs::symlink_metadata(p).unwrap()
}

#[test]
fn whiteouts_and_opaque_dirs_hide_lower_content() {
    require_root!();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let (lower, layer, mnt) = (t.join("lower"), t.join("layer"), t.join("mnt"));
    write(&lower.join("foo"), "foo");
    write(&lower.join("keep"), "keep");
    write(&lower.join("dir/x"), "x");
    write(&lower.join("dir/sub/y"), "y");
    fs::create_dir(&layer).unwrap();
    fs::create_dir(&mnt).unwrap();

    let mut tb = RawTar::new();
    tb.file(".wh.foo", "")
        .dir("dir/")
        .file("dir/.wh..wh..opq", "")
        .file("dir/new", "new")
        .file(".wh..wh.plnk", "");
    unpack_layer(&tb.finish()[..], &layer).unwrap();

    assert!(is_whiteout(&lmeta(&layer.join("foo"))));
    assert!(is_opaque(&layer.join("dir")).unwrap());
    assert!(!is_opaque(&layer).unwrap());
    assert_eq!(names(&layer), ["dir", "foo"]);
    assert_eq!(names(&layer.join("dir")), ["new"]);

    let m = Overlay::read_only(vec![lower.clone(), layer.clone()])
        .mount(&mnt)
        .unwrap();
    assert_eq!(names(&mnt), ["dir", "keep"]);
    assert_eq!(names(&mnt.join("dir")), ["new"]);
    assert_eq!(read(&mnt.join("dir/new")), "new");
    m.unmount().unwrap();
    assert_no_mounts_under(t);
}

/// Unpack `tar` into `<tmp>/outer/dest`; return the error and check nothing
/// appeared next to dest.
fn unpack_expect_refusal(tar: Vec<u8>, check_outside: &[&Path]) -> Error {
    let tmp = tempfile::tempdir().unwrap();
    let outer = tmp.path().join("outer");
    let dest = outer.join("dest");
    fs::create_dir_all(&dest).unwrap();
    let err = unpack_layer(&tar[..], &dest).unwrap_err();
    eprintln!("refused: {err}");
    assert_eq!(names(&outer), ["dest"], "nothing written beside dest");
    assert!(!tmp.path().join("evil").exists());
    for p in check_outside {
        assert!(!p.exists(), "{} written outside dest", p.display());
    }
    err
}

#[test]
fn traversal_is_refused() {
    require_root!();
    let mut tb = RawTar::new();
    tb.file("../evil", "pwned");
    let err = unpack_expect_refusal(tb.finish(), &[]);
    assert!(matches!(err, Error::UnsafeEntry { .. }), "{err}");
    assert!(
        err.to_string().contains("../evil") && err.to_string().contains(".."),
        "{err}"
    );

    let mut tb = RawTar::new();
    tb.file("a/../../evil", "pwned");
    let err = unpack_expect_refusal(tb.finish(), &[]);
    assert!(matches!(err, Error::UnsafeEntry { .. }), "{err}");

    let abs = format!("/tmp/corral-unionfs-abs-{}", std::process::id());
    let mut tb = RawTar::new();
    tb.file(&abs, "pwned");
    let err = unpack_expect_refusal(tb.finish(), &[Path::new(&abs)]);
    assert!(err.to_string().contains("absolute path"), "{err}");

    // A symlink to /tmp, then an entry through it.
    let evil = format!("corral-unionfs-evil-{}", std::process::id());
    let mut tb = RawTar::new();
    tb.entry("link", EntryType::Symlink, Some("/tmp"), b"")
        .file(&format!("link/{evil}"), "pwned");
    let outside = Path::new("/tmp").join(&evil);
    let err = unpack_expect_refusal(tb.finish(), &[&outside]);
    assert!(
        err.to_string().contains("parent link is a symlink"),
        "{err}"
    );

    // Relative symlink climbing out, then a directory entry and file through it.
    let mut tb = RawTar::new();
    tb.entry("up", EntryType::Symlink, Some(".."), b"")
        .dir("up/sub/")
        .file("up/evil", "pwned");
    let err = unpack_expect_refusal(tb.finish(), &[]);
    assert!(err.to_string().contains("symlink"), "{err}");

    // Hardlink escaping the layer.
    let mut tb = RawTar::new();
    tb.entry("hl", EntryType::Link, Some("../../etc/passwd"), b"");
    let err = unpack_expect_refusal(tb.finish(), &[]);
    assert!(
        err.to_string().contains("hardlink target ../../etc/passwd"),
        "{err}"
    );

    // Hardlink through a symlink that points outside.
    let mut tb = RawTar::new();
    tb.entry("etc", EntryType::Symlink, Some("/etc"), b"")
        .entry("hl", EntryType::Link, Some("etc/passwd"), b"");
    let err = unpack_expect_refusal(tb.finish(), &[]);
    assert!(
        err.to_string()
            .contains("hardlink target etc/passwd: parent etc is a symlink"),
        "{err}"
    );

    // Hardlink to something not (yet) in the layer.
    let mut tb = RawTar::new();
    tb.entry("hl", EntryType::Link, Some("nowhere/x"), b"");
    let err = unpack_expect_refusal(tb.finish(), &[]);
    assert!(
        err.to_string().contains("does not exist in the layer"),
        "{err}"
    );

    // Hardlink to an absolute path.
    let mut tb = RawTar::new();
    tb.entry("hl", EntryType::Link, Some("/etc/passwd"), b"");
    let err = unpack_expect_refusal(tb.finish(), &[]);
    assert!(err.to_string().contains("absolute"), "{err}");

    // A file entry replacing an existing symlink must replace the link, not write through it.
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("dest");
    fs::create_dir(&dest).unwrap();
    write(&tmp.path().join("target"), "original");
    let mut tb = RawTar::new();
    tb.entry("l", EntryType::Symlink, Some("../target"), b"")
        .file("l", "new");
    unpack_layer(&tb.finish()[..], &dest).unwrap();
    assert_eq!(read(&tmp.path().join("target")), "original");
    assert!(lmeta(&dest.join("l")).is_file());
}

#[test]
fn unpack_keeps_metadata() {
    require_root!();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("dest");
    fs::create_dir(&dest).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(0);
    h.set_entry_type(EntryType::Directory);
    h.set_mode(0o750);
    h.set_uid(1001);
    h.set_gid(1002);
    h.set_mtime(1_000_000);
    h.set_size(0);
    b.append_data(&mut h, "d", &[][..]).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_size(0);
    h.set_entry_type(EntryType::Regular);
    h.set_mode(0o4755);
    h.set_uid(1234);
    h.set_gid(5678);
    h.set_mtime(2_000_000);
    h.set_size(5);
    b.append_data(&mut h, "d/suid", &b"hello"[..]).unwrap();
    let long = format!("d/{}", "n".repeat(150));
    let mut h = tar::Header::new_gnu();
    h.set_size(0);
    h.set_entry_type(EntryType::Regular);
    h.set_mode(0o600);
    h.set_size(4);
    b.append_data(&mut h, &long, &b"long"[..]).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_size(0);
    h.set_entry_type(EntryType::Symlink);
    h.set_uid(7);
    h.set_gid(8);
    h.set_mtime(3_000_000);
    b.append_link(&mut h, "sym", "/does/not/matter").unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_size(0);
    h.set_entry_type(EntryType::Link);
    b.append_link(&mut h, "hard", "d/suid").unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_size(0);
    h.set_entry_type(EntryType::Char);
    h.set_mode(0o666);
    h.set_device_major(1).unwrap();
    h.set_device_minor(3).unwrap();
    b.append_data(&mut h, "null", &[][..]).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_size(0);
    h.set_entry_type(EntryType::Fifo);
    h.set_mode(0o640);
    b.append_data(&mut h, "fifo", &[][..]).unwrap();
    let data = b.into_inner().unwrap();

    unpack_layer(&data[..], &dest).unwrap();

    let d = lmeta(&dest.join("d"));
    assert!(d.is_dir());
    assert_eq!(
        (d.mode() & 0o7777, d.uid(), d.gid(), d.mtime()),
        (0o750, 1001, 1002, 1_000_000)
    );
    let f = lmeta(&dest.join("d/suid"));
    assert_eq!(
        (f.mode() & 0o7777, f.uid(), f.gid(), f.mtime()),
        (0o4755, 1234, 5678, 2_000_000)
    );
    assert_eq!(read(&dest.join("d/suid")), "hello");
    assert_eq!(f.nlink(), 2);
    assert_eq!(lmeta(&dest.join("hard")).ino(), f.ino());
    assert_eq!(read(&dest.join(&long)), "long");
    let s = lmeta(&dest.join("sym"));
    assert!(s.file_type().is_symlink());
    assert_eq!((s.uid(), s.gid(), s.mtime()), (7, 8, 3_000_000));
    assert_eq!(
        fs::read_link(dest.join("sym")).unwrap(),
        Path::new("/does/not/matter")
    );
    let n = lmeta(&dest.join("null"));
    assert!(n.file_type().is_char_device());
    assert_eq!((n.rdev(), n.mode() & 0o7777), (libc::makedev(1, 3), 0o666));
    let p = lmeta(&dest.join("fifo"));
    assert!(p.file_type().is_fifo());
    assert_eq!(p.mode() & 0o7777, 0o640);
}

#[test]
fn gzip_and_zstd_layers_are_unpacked() {
    require_root!();
    let mut tb = RawTar::new();
    tb.dir("etc/").file("etc/os-release", "ID=corral\n");
    let plain = tb.finish();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &plain).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zstd::encode_all(&plain[..], 3).unwrap();
    for data in [&plain, &gz, &zst] {
        let tmp = tempfile::tempdir().unwrap();
        unpack_layer(&data[..], tmp.path()).unwrap();
        assert_eq!(read(&tmp.path().join("etc/os-release")), "ID=corral\n");
    }
    // A broken compressed stream is an error, not a partial success.
    let tmp = tempfile::tempdir().unwrap();
    let err = unpack_layer(&gz[..gz.len() / 2], tmp.path()).unwrap_err();
    eprintln!("truncated gzip: {err}");
}

#[test]
fn device_nodes_only_when_privileged() {
    require_root!();
    let mut tb = RawTar::new();
    tb.entry("null", EntryType::Char, None, b"");
    let mut tar = tb.finish();
    // major 1, minor 3 (/dev/null): patch the header's device fields.
    let h = &mut tar[..512];
    h[329..337].copy_from_slice(b"0000001\0");
    h[337..345].copy_from_slice(b"0000003\0");
    let mut hdr = tar::Header::new_old();
    hdr.as_mut_bytes().copy_from_slice(h);
    hdr.set_cksum();
    h.copy_from_slice(hdr.as_bytes());

    let tmp = tempfile::tempdir().unwrap();
    let err = unpack_layer_with(
        &tar[..],
        tmp.path(),
        UnpackOptions {
            devices: false,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(
        matches!(err, Error::UnsafeEntry { .. }) && err.to_string().contains("null"),
        "{err}"
    );
    assert!(names(tmp.path()).is_empty());
    // A whiteout (0:0) is not a device: always allowed.
    let mut tb = RawTar::new();
    tb.entry("gone", EntryType::Char, None, b"");
    unpack_layer_with(
        &tb.finish()[..],
        tmp.path(),
        UnpackOptions {
            devices: false,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(is_whiteout(&lmeta(&tmp.path().join("gone"))));
    // Privileged: made.
    let tmp = tempfile::tempdir().unwrap();
    unpack_layer_with(
        &tar[..],
        tmp.path(),
        UnpackOptions {
            devices: true,
            ..Default::default()
        },
    )
    .unwrap();
    let md = lmeta(&tmp.path().join("null"));
    assert!(md.file_type().is_char_device());
    assert_eq!(md.rdev(), libc::makedev(1, 3));
}

#[test]
fn whiteouts_that_walk_out_are_refused() {
    require_root!();
    let victim = format!("corral-wh-victim-{}", std::process::id());
    let outside = Path::new("/tmp").join(&victim);
    write(&outside, "keep me");
    for (name, link) in [
        (".wh..".to_string(), None),
        ("a/../.wh.x".to_string(), None),
        (format!("link/.wh.{victim}"), Some("/tmp")),
        (format!("up/.wh.{victim}"), Some("..")),
    ] {
        let mut tb = RawTar::new();
        if let Some(l) = link {
            let lname = name.split('/').next().unwrap();
            tb.entry(lname, EntryType::Symlink, Some(l), b"");
        }
        tb.file(&name, "");
        let err = unpack_expect_refusal(tb.finish(), &[]);
        assert!(matches!(err, Error::UnsafeEntry { .. }), "{name}: {err}");
        assert_eq!(read(&outside), "keep me", "{name} removed a host file");
    }
    fs::remove_file(&outside).unwrap();
}

#[test]
fn errors_name_the_entry() {
    require_root!();
    // A truncated archive: the error says after which entry.
    let mut tb = RawTar::new();
    tb.file("first", "1").file("second", &"x".repeat(2000));
    let tar = tb.finish();
    let tmp = tempfile::tempdir().unwrap();
    let err = unpack_layer(&tar[..1024 + 700], tmp.path()).unwrap_err();
    assert!(err.to_string().contains("second"), "{err}");
    // An entry whose parent is a file.
    let mut tb = RawTar::new();
    tb.file("f", "1").file("f/g", "2");
    let tmp = tempfile::tempdir().unwrap();
    let err = unpack_layer(&tb.finish()[..], tmp.path()).unwrap_err();
    assert!(err.to_string().contains("f/g"), "{err}");
}

#[test]
fn diff_round_trip() {
    require_root!();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let (lower, up, work, mnt) = (t.join("lower"), t.join("up"), t.join("work"), t.join("mnt"));
    write(&lower.join("keep"), "keep");
    write(&lower.join("modify"), "old");
    write(&lower.join("delete"), "bye");
    write(&lower.join("deldir/a"), "a");
    write(&lower.join("deldir/sub/b"), "b");
    write(&lower.join("opq/old"), "old");
    write(&lower.join("nested/inner/gone"), "gone");
    write(&lower.join("nested/inner/stay"), "stay");
    fs::create_dir(&mnt).unwrap();

    let m = Overlay::new(vec![lower.clone()], &up, &work)
        .mount(&mnt)
        .unwrap();
    write(&mnt.join("added"), "added");
    write(&mnt.join("modify"), "new");
    fs::remove_file(mnt.join("delete")).unwrap();
    fs::remove_dir_all(mnt.join("deldir")).unwrap();
    fs::remove_dir_all(mnt.join("opq")).unwrap();
    write(&mnt.join("opq/fresh"), "fresh");
    fs::remove_file(mnt.join("nested/inner/gone")).unwrap();
    std::os::unix::fs::symlink("added", mnt.join("sym")).unwrap();
    fs::hard_link(mnt.join("added"), mnt.join("added-hl")).unwrap();
    m.unmount().unwrap();
    assert_no_mounts_under(t);

    let mut tarbytes = Vec::new();
    diff_layer(&up, &mut tarbytes).unwrap();

    let mut ar = tar::Archive::new(&tarbytes[..]);
    let mut entries = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let p = e.path().unwrap().to_string_lossy().into_owned();
        let mut s = String::new();
        e.read_to_string(&mut s).unwrap();
        entries.push((p, e.header().entry_type(), s));
    }
    let names: Vec<&str> = entries
        .iter()
        .map(|(p, _, _)| p.trim_end_matches('/'))
        .collect();
    for want in [
        ".wh.delete",
        ".wh.deldir",
        "added",
        "added-hl",
        "modify",
        "nested",
        "nested/inner",
        "nested/inner/.wh.gone",
        "opq",
        "opq/.wh..wh..opq",
        "opq/fresh",
        "sym",
    ] {
        assert!(names.contains(&want), "missing {want} in {names:?}");
    }
    assert!(!names.contains(&"keep"));
    let hl = entries.iter().find(|e| e.0 == "added-hl").unwrap();
    assert!(
        hl.1 == EntryType::Link
            || entries
                .iter()
                .any(|e| e.0 == "added" && e.1 == EntryType::Link)
    );
    assert_eq!(entries.iter().find(|e| e.0 == "modify").unwrap().2, "new");
    assert!(
        entries.iter().all(|e| e.1 != EntryType::Char),
        "no raw whiteout devices in the tar"
    );

    let layer = t.join("layer");
    fs::create_dir(&layer).unwrap();
    unpack_layer(&tarbytes[..], &layer).unwrap();
    assert!(is_whiteout(&lmeta(&layer.join("delete"))));
    assert!(is_whiteout(&lmeta(&layer.join("deldir"))));
    assert!(is_whiteout(&lmeta(&layer.join("nested/inner/gone"))));
    assert!(is_opaque(&layer.join("opq")).unwrap());
    assert!(!is_opaque(&layer.join("nested")).unwrap());
    assert_eq!(read(&layer.join("modify")), "new");
    assert_eq!(
        lmeta(&layer.join("added")).ino(),
        lmeta(&layer.join("added-hl")).ino()
    );

    // Same view as the original merged tree.
    let m = Overlay::read_only(vec![lower.clone(), layer.clone()])
        .mount(&mnt)
        .unwrap();
    assert_eq!(
        common::names(&mnt),
        ["added", "added-hl", "keep", "modify", "nested", "opq", "sym"]
    );
    assert_eq!(common::names(&mnt.join("opq")), ["fresh"]);
    assert_eq!(common::names(&mnt.join("nested/inner")), ["stay"]);
    assert_eq!(read(&mnt.join("modify")), "new");
    assert_eq!(read(&mnt.join("sym")), "added");
    m.unmount().unwrap();
    assert_no_mounts_under(t);
}

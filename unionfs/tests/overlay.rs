mod common;

use std::fs;
use std::path::PathBuf;

use common::*;
use unionfs::{is_whiteout, Error, MountApi, Overlay};

fn two_lower_overlay(api: MountApi) {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let (l1, l2, up, work, mnt) = (
        t.join("l1"),
        t.join("l2"),
        t.join("up"),
        t.join("work"),
        t.join("mnt"),
    );
    write(&l1.join("a"), "a-bottom");
    write(&l1.join("mid"), "mid-bottom");
    write(&l1.join("shared"), "shared-bottom");
    write(&l2.join("mid"), "mid-l2");
    write(&l2.join("shared"), "shared-l2");
    write(&up.join("shared"), "shared-upper");
    fs::create_dir(&mnt).unwrap();
    // work is created by mount.
    let ov = Overlay::new(vec![l1.clone(), l2.clone()], &up, &work);
    let m = ov.mount_with(&mnt, api).unwrap();
    assert!(is_mounted(&mnt));
    assert!(work.is_dir());

    assert_eq!(read(&mnt.join("a")), "a-bottom");
    assert_eq!(read(&mnt.join("mid")), "mid-l2", "upper lower hides bottom");
    assert_eq!(
        read(&mnt.join("shared")),
        "shared-upper",
        "upper hides lowers"
    );

    write(&mnt.join("new"), "fresh");
    assert_eq!(read(&up.join("new")), "fresh");
    assert!(!l1.join("new").exists() && !l2.join("new").exists());

    fs::remove_file(mnt.join("a")).unwrap();
    assert!(!mnt.join("a").exists());
    assert!(is_whiteout(&fs::symlink_metadata(up.join("a")).unwrap()));
    assert_eq!(read(&l1.join("a")), "a-bottom", "lower untouched");
    assert_eq!(names(&l1), ["a", "mid", "shared"]);
    assert_eq!(names(&l2), ["mid", "shared"]);

    m.unmount().unwrap();
    assert_no_mounts_under(t);
}

#[test]
fn two_lowers_and_upper_new_api() {
    require_root!();
    two_lower_overlay(MountApi::New);
}

#[test]
fn two_lowers_and_upper_legacy_api() {
    require_root!();
    two_lower_overlay(MountApi::Legacy);
}

#[test]
fn two_lowers_and_upper_auto() {
    require_root!();
    two_lower_overlay(MountApi::Auto);
}

#[test]
fn many_lowers_with_long_paths() {
    require_root!();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let n = 70;
    let lowers: Vec<PathBuf> = (0..n)
        .map(|i| t.join(format!("layer-{i:03}-{}", "x".repeat(80))))
        .collect();
    for (i, l) in lowers.iter().enumerate() {
        write(&l.join(format!("f{i}")), &i.to_string());
        write(&l.join("top"), &i.to_string());
    }
    let mnt = t.join("mnt");
    fs::create_dir(&mnt).unwrap();
    let ov = Overlay::new(lowers.clone(), t.join("up"), t.join("work"));
    // Too long for one page of legacy mount data.
    assert!(matches!(
        ov.legacy_options(),
        Err(Error::OptionsTooLong { .. })
    ));
    let err = ov.mount_with(&mnt, MountApi::Legacy).unwrap_err();
    assert!(
        err.to_string().contains("over the 4095-byte limit"),
        "{err}"
    );

    let m = ov.mount(&mnt).unwrap();
    for i in 0..n {
        assert_eq!(read(&mnt.join(format!("f{i}"))), i.to_string());
    }
    assert_eq!(
        read(&mnt.join("top")),
        (n - 1).to_string(),
        "last lower is on top"
    );
    drop(m); // the guard detaches
    assert_no_mounts_under(t);

    // Read-only with all of them works too.
    let m = Overlay::read_only(lowers).mount(&mnt).unwrap();
    assert_eq!(read(&mnt.join("f0")), "0");
    m.unmount().unwrap();
    assert_no_mounts_under(t);
}

#[test]
fn read_only_overlay() {
    require_root!();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    write(&t.join("l1/a"), "1");
    write(&t.join("l2/b"), "2");
    fs::create_dir(t.join("mnt")).unwrap();
    for api in [MountApi::New, MountApi::Legacy] {
        let m = Overlay::read_only(vec![t.join("l1"), t.join("l2")])
            .mount_with(&t.join("mnt"), api)
            .unwrap();
        assert_eq!(names(m.target()), ["a", "b"]);
        let e = fs::write(t.join("mnt/c"), "x").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EROFS));
        m.unmount().unwrap();
    }
    // A single lower without upper is refused up front.
    let err = Overlay::read_only(vec![t.join("l1")])
        .mount(&t.join("mnt"))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidOverlay(_)), "{err}");
    assert_no_mounts_under(t);
}

#[test]
fn legacy_refuses_colon_and_comma_but_new_api_copes() {
    require_root!();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    write(&t.join("low:er/a"), "colon");
    write(&t.join("low,er2/b"), "comma");
    fs::create_dir(t.join("mnt")).unwrap();
    let ov = Overlay::new(
        vec![t.join("low:er"), t.join("low,er2")],
        t.join("up"),
        t.join("work"),
    );
    let err = ov.mount_with(&t.join("mnt"), MountApi::Legacy).unwrap_err();
    assert!(
        matches!(err, Error::UnrepresentablePath { ch: ':', .. }),
        "{err}"
    );
    assert!(err.to_string().contains("low:er"), "{err}");
    let ov2 = Overlay::new(vec![t.join("low,er2")], t.join("up"), t.join("work"));
    let err = ov2
        .mount_with(&t.join("mnt"), MountApi::Legacy)
        .unwrap_err();
    assert!(
        matches!(err, Error::UnrepresentablePath { ch: ',', .. }),
        "{err}"
    );

    let m = ov.mount(&t.join("mnt")).unwrap();
    assert_eq!(read(&t.join("mnt/a")), "colon");
    assert_eq!(read(&t.join("mnt/b")), "comma");
    m.unmount().unwrap();
    assert_no_mounts_under(t);
}

#[test]
fn guard_drop_leak_and_busy_unmount() {
    require_root!();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    write(&t.join("l/a"), "1");
    let mnt = t.join("mnt");
    fs::create_dir(&mnt).unwrap();
    let ov = Overlay::new(vec![t.join("l")], t.join("up"), t.join("work"));
    {
        let _m = ov.mount(&mnt).unwrap();
        assert!(is_mounted(&mnt));
    }
    assert!(!is_mounted(&mnt));

    // Busy: an open file keeps it busy; unmount falls back to MNT_DETACH.
    let m = ov.mount(&mnt).unwrap();
    let f = fs::File::open(mnt.join("a")).unwrap();
    m.unmount().unwrap();
    assert!(!is_mounted(&mnt));
    drop(f);

    let leaked = ov.mount(&mnt).unwrap().leak();
    assert!(is_mounted(&leaked));
    nix::mount::umount2(&leaked, nix::mount::MntFlags::MNT_DETACH).unwrap();
    assert_no_mounts_under(t);
}

#[test]
fn validation_errors_name_the_path() {
    require_root!();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    fs::create_dir(t.join("mnt")).unwrap();
    let missing = t.join("no-such-lower");
    let err = Overlay::new(vec![missing.clone()], t.join("up"), t.join("work"))
        .mount(&t.join("mnt"))
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(missing.to_str().unwrap()) && msg.contains("ENOENT"),
        "{msg}"
    );

    let err = Overlay {
        lowers: vec![t.to_path_buf()],
        upper: Some(t.join("up")),
        work: None,
    }
    .mount(&t.join("mnt"))
    .unwrap_err();
    assert!(matches!(err, Error::InvalidOverlay(_)), "{err}");
    let err = Overlay::read_only(vec![])
        .mount(&t.join("mnt"))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidOverlay(_)), "{err}");

    // Kernel rejection surfaces with errno and the kernel's message.
    write(&t.join("l/a"), "1");
    let err = Overlay::new(vec![t.join("l")], t.join("up"), t.join("up/work"))
        .mount_with(&t.join("mnt"), MountApi::New)
        .unwrap_err();
    assert!(matches!(err, Error::Mount { .. }), "{err}");
    eprintln!("kernel error: {err}");
    assert_no_mounts_under(t);
}

struct TmpfsGuard(PathBuf);
impl Drop for TmpfsGuard {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

#[test]
fn upper_and_work_must_share_a_filesystem() {
    require_root!();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    write(&t.join("l/a"), "1");
    fs::create_dir_all(t.join("other")).unwrap();
    fs::create_dir(t.join("mnt")).unwrap();
    nix::mount::mount(
        Some("tmpfs"),
        &t.join("other"),
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=1m"),
    )
    .unwrap();
    let _g = TmpfsGuard(t.join("other"));
    let err = Overlay::new(vec![t.join("l")], t.join("up"), t.join("other/work"))
        .mount(&t.join("mnt"))
        .unwrap_err();
    assert!(err.to_string().contains("different filesystems"), "{err}");
    drop(_g);
    assert_no_mounts_under(t);
}

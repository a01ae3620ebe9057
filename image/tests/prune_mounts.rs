//! `prune` detaches what a killed build left mounted in the store's temp dir, whatever the
//! store's path: mountinfo escapes space, tab, newline and backslash (`\040`, `\011`,
//! `\012`, `\134`), and the mount points are read through the runtime's one parser.

use corral_image::ImageStore;

#[test]
fn prune_detaches_leftover_mounts_under_a_path_the_kernel_escapes() {
    testkit::require_root();
    let base = tempfile::Builder::new()
        .prefix("corral-prune-")
        .tempdir()
        .expect("temp dir");
    // A store path with a tab and a backslash: mountinfo writes them as \011 and \134.
    let store_dir = base.path().join("store\tof\\x");
    let store = ImageStore::open(&store_dir).expect("store");
    let step = store_dir.join("blobs/tmp/step-left");
    std::fs::create_dir_all(&step).expect("step dir");
    nix::mount::mount(
        Some("tmpfs"),
        &step,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .expect("mount tmpfs");
    // Whatever happens below, the mount does not outlive the test.
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
        }
    }
    let _guard = Unmount(step.clone());
    let rep = store.prune().expect("prune");
    assert!(rep.temp >= 1, "{rep:?}");
    assert!(!step.exists(), "the step dir is still there");
    let still = runtime::hostmounts::mountinfo()
        .into_iter()
        .any(|m| m.mount_point.starts_with(&store_dir));
    assert!(!still, "a mount under the store is left");
}

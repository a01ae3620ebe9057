//! `corral_image::create` and `remove`: the one create and the one remove every face calls.
//! A container made from an image holds a record in the store while it lives; a failed
//! create leaves neither a container nor a record, and remove takes both.

use std::path::Path;

use corral_image::{ImageStore, Reference};
use runtime::describe::{Description, Root};

/// A store under a fresh temp dir holding the test rootfs as image `NAME:1`.
fn store_with_image(rootfs: &testkit::TestRootfs, name: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("corral-store-")
        .tempdir()
        .expect("store dir");
    let store = ImageStore::open(dir.path()).expect("store");
    let r = Reference::parse(&format!("{name}:1")).expect("reference");
    store.import(rootfs.rootfs(), Some(&r)).expect("import");
    dir
}

fn records(store: &Path) -> Vec<String> {
    std::fs::read_dir(store.join("containers"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn describe(image: &str, command: &[&str]) -> Description {
    let mut d = Description::new(Root::Image(image.into()));
    d.args = command.iter().map(|s| s.to_string()).collect();
    d
}

#[test]
fn create_then_remove_leaves_nothing() {
    testkit::require_root();
    let id = testkit::unique_id("img-create");
    let rootfs = testkit::TestRootfs::with_id(&id);
    let store = store_with_image(&rootfs, "create-base");
    let state = testkit::state_root();
    let d = describe("create-base:1", &["/bin/true"]);
    let opts = runtime::Options::default();
    let ct = corral_image::create(store.path(), state.path(), &id, &d, &opts).expect("create");
    assert_eq!(ct.status(), runtime::Status::Created);
    ct.detach().expect("detach");
    assert!(state.path().join(&id).is_dir());
    assert_eq!(records(store.path()), vec![id.clone()]);
    // The image's layer is in use by the tag and by the container while it lives.
    let s = ImageStore::open(store.path()).expect("store");
    let counts = s.layer_refcounts().expect("refcounts");
    assert!(counts.values().all(|n| *n == 2), "{counts:?}");
    corral_image::remove(store.path(), state.path(), &id, false).expect("remove");
    assert!(!state.path().join(&id).exists());
    assert!(
        records(store.path()).is_empty(),
        "{:?}",
        records(store.path())
    );
    testkit::assert_no_leaks(&id, Some(state.path()));
    s.resolve("create-base:1")
        .expect("the image is still there");
}

#[test]
fn a_create_that_fails_leaves_no_container_and_no_record() {
    testkit::require_root();
    let id = testkit::unique_id("img-create-fail");
    let rootfs = testkit::TestRootfs::with_id(&id);
    let store = store_with_image(&rootfs, "create-fail-base");
    let state = testkit::state_root();
    let missing = state.path().join("no-such-source");
    let mut d = describe("create-fail-base:1", &["/bin/true"]);
    // A bind mount whose source is not there: the runtime refuses it while creating.
    d.mounts.push(runtime::describe::Mount::bind(
        missing.to_string_lossy(),
        "/mnt",
        false,
    ));
    let opts = runtime::Options::default();
    let made = corral_image::create(store.path(), state.path(), &id, &d, &opts);
    let Err(err) = made else {
        panic!("the create succeeded with a bind mount of a missing source");
    };
    assert!(err.to_string().contains("no-such-source"), "{err}");
    assert!(!state.path().join(&id).exists());
    assert!(
        records(store.path()).is_empty(),
        "{:?}",
        records(store.path())
    );
    testkit::assert_no_leaks(&id, Some(state.path()));
}

#[test]
fn remove_refuses_a_running_container_unless_forced() {
    testkit::require_root();
    let id = testkit::unique_id("img-remove");
    let rootfs = testkit::TestRootfs::with_id(&id);
    let store = store_with_image(&rootfs, "remove-base");
    let state = testkit::state_root();
    let d = describe("remove-base:1", &["/bin/sleep", "1000"]);
    let opts = runtime::Options::default();
    let mut ct = corral_image::create(store.path(), state.path(), &id, &d, &opts).expect("create");
    ct.start().expect("start");
    ct.detach().expect("detach");
    let e = corral_image::remove(store.path(), state.path(), &id, false)
        .expect_err("a running container is refused");
    let refused = e.to_string();
    // Refused: the container and its record are both still there (checked before the
    // forced remove, which must run whatever these find).
    let kept = state.path().join(&id).is_dir() && records(store.path()) == vec![id.clone()];
    corral_image::remove(store.path(), state.path(), &id, true).expect("forced remove");
    assert!(refused.contains("--force"), "{refused}");
    assert!(kept, "the refused remove removed something");
    assert!(records(store.path()).is_empty());
    testkit::assert_no_leaks(&id, Some(state.path()));
    // A forced remove of what is not there is done already; an unforced one says so.
    corral_image::remove(store.path(), state.path(), &id, true).expect("nothing to remove");
    assert!(corral_image::remove(store.path(), state.path(), &id, false).is_err());
}

#[test]
fn a_directory_root_goes_through_the_same_create_and_remove() {
    testkit::require_root();
    let id = testkit::unique_id("dir-create");
    let rootfs = testkit::TestRootfs::with_id(&id);
    let state = testkit::state_root();
    // No store is opened for a directory root: a store dir that does not exist is fine.
    let no_store = state.path().join("no-store");
    let mut d = Description::new(Root::Dir(rootfs.rootfs().to_path_buf()));
    d.args = vec!["/bin/true".into()];
    let opts = runtime::Options::default();
    let mut ct = corral_image::create(&no_store, state.path(), &id, &d, &opts).expect("create");
    assert_eq!(ct.status(), runtime::Status::Created);
    ct.start().expect("start");
    assert_eq!(ct.wait().expect("wait").code(), 0);
    ct.detach().expect("detach");
    corral_image::remove(&no_store, state.path(), &id, false).expect("remove");
    assert!(!state.path().join(&id).exists());
    assert!(!no_store.exists());
    // An image root without the image: refused by name, nothing made.
    let id2 = testkit::unique_id("dir-create-img");
    let d = Description::new(Root::Image("no-such-image:1".into()));
    let store = tempfile::tempdir().expect("store");
    let Err(err) = corral_image::create(store.path(), state.path(), &id2, &d, &opts) else {
        panic!("an image that is not there was created");
    };
    assert!(err.to_string().contains("no-such-image"), "{err}");
    assert!(!state.path().join(&id2).exists());
    assert!(records(store.path()).is_empty());
}

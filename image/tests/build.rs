//! `corral_image::build::build` called as a library: the Dockerfile given as text, the
//! progress reported as events (nothing printed), a target stage, the cache.

use corral_image::build::{build, BuildEvent, BuildOptions, Dockerfile};
use corral_image::{ImageStore, Reference};

const DOCKERFILE: &str = "\
FROM scratch AS one
COPY a.txt /a.txt
LABEL stage=one
FROM scratch AS two
COPY a.txt /b.txt
";

fn options(context: &std::path::Path, state: &std::path::Path, target: &str) -> BuildOptions {
    BuildOptions {
        context: context.to_path_buf(),
        dockerfile: Dockerfile::Text {
            name: "test Dockerfile".into(),
            text: DOCKERFILE.into(),
        },
        tags: vec![Reference::parse("lib-build:1").expect("reference")],
        target: Some(target.into()),
        state_root: state.to_path_buf(),
        ..BuildOptions::default()
    }
}

#[test]
fn a_library_build_reports_its_steps_and_stops_at_its_target() {
    testkit::require_root();
    let store_dir = tempfile::Builder::new()
        .prefix("corral-store-")
        .tempdir()
        .expect("store dir");
    let context = tempfile::tempdir().expect("context");
    std::fs::write(context.path().join("a.txt"), "a\n").expect("write");
    let state = testkit::state_root();
    let store = ImageStore::open(store_dir.path()).expect("store");
    let opts = options(context.path(), state.path(), "one");
    let mut events = Vec::new();
    let img = build(&store, &opts, &mut |e| events.push(e)).expect("build");
    let lines: Vec<String> = events.iter().map(|e| e.to_string()).collect();
    // Stage one's three steps of five, then the image: stage two never starts.
    let steps: Vec<&String> = lines.iter().filter(|l| l.starts_with("Step ")).collect();
    assert_eq!(
        steps,
        [
            "Step 1/5 : FROM scratch AS one",
            "Step 2/5 : COPY a.txt /a.txt",
            "Step 3/5 : LABEL stage=one"
        ],
        "{lines:#?}"
    );
    assert_eq!(
        lines.last().map(String::as_str),
        Some("Successfully tagged lib-build:1"),
        "{lines:#?}"
    );
    assert_eq!(img.layers().expect("layers").len(), 1);
    let labels = img
        .config
        .config()
        .as_ref()
        .and_then(|c| c.labels().clone());
    assert_eq!(
        labels.and_then(|l| l.get("stage").cloned()).as_deref(),
        Some("one")
    );
    assert_eq!(store.resolve("lib-build:1").expect("tagged").id, img.id);
    // Unchanged: every step from the cache, the same image.
    let mut again = Vec::new();
    let img2 = build(&store, &opts, &mut |e| again.push(e)).expect("rebuild");
    let cached = again
        .iter()
        .filter(|e| matches!(e, BuildEvent::UsingCache))
        .count();
    assert_eq!(cached, 2, "{again:#?}");
    assert_eq!(img2.id, img.id);
    // A target no stage is named: refused, naming it.
    let e = build(
        &store,
        &options(context.path(), state.path(), "three"),
        &mut |_| {},
    )
    .expect_err("no such stage");
    assert!(e.to_string().contains("no stage named \"three\""), "{e}");
}

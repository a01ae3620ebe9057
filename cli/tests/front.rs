//! `corral` is two binaries (`cli/src/front.rs`): the front, which does the engines' spawn
//! verbs, and `corral-full`, to which it hands every other command line. These tests hold
//! what makes that split worth having and invisible: the front links none of the docker
//! face's code (read from the built binary's symbols), a command it hands over behaves as
//! `corral-full` run directly, and without `corral-full` beside it the front says what is
//! missing instead of failing obscurely.

mod common;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const FULL: &str = env!("CARGO_BIN_EXE_corral-full");

/// The defined symbols of the binary at `path`, as `nm` prints them (mangled: each crate's
/// name appears in its symbols' names).
fn symbols(path: &str) -> String {
    let out = Command::new("nm")
        .args(["--defined-only", path])
        .output()
        .expect("run nm (binutils) on the built binary");
    assert!(out.status.success(), "nm {path}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Crates only the docker face, the image store or the registry use: none may be linked
/// into the front.
const NOT_IN_THE_FRONT: &[&str] = &[
    "corral_registry",
    "oci_client",
    "tokio",
    "rustls",
    "hyper",
    "zstd",
    "flate2",
];

#[test]
fn the_front_links_no_docker_image_or_registry_code() {
    let front = symbols(&common::corral());
    let full = symbols(FULL);
    for krate in NOT_IN_THE_FRONT {
        // The check can fail: corral-full, built from the same library, has each of them.
        assert!(full.contains(krate), "corral-full has no {krate} symbol");
        let n = front.lines().filter(|l| l.contains(krate)).count();
        assert_eq!(n, 0, "the corral front links {n} symbols of {krate}");
    }
    // And the front does the spawn itself: the runtime's create is in it.
    assert!(
        front.contains("Container$GT$11create_from"),
        "no runtime create in the front"
    );
}

/// `bin` run as `argv0` with `args`.
fn run(bin: &str, argv0: &str, args: &[&str]) -> Output {
    Command::new(bin)
        .arg0(argv0)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {bin}: {e}"))
}

#[test]
fn a_command_handed_over_behaves_as_corral_full_itself() {
    let state = tempfile::tempdir().unwrap();
    let root = state.path().to_str().unwrap();
    for args in [
        vec!["--version"],
        vec!["--root", root, "list"],
        vec!["--root", root, "list", "--bogus"],
        vec!["no-such-verb"],
        vec!["--root", root, "state", "no-such-container"],
        vec!["--root", root, "kill", "no-such-container", "SIGNOPE"],
        vec!["spec", "--help"],
    ] {
        // corral-full as called by the front: the same argv[0] (so clap's messages name the
        // program as it was called).
        let front = run(&common::corral(), "corral", &args);
        let full = run(FULL, "corral", &args);
        assert_eq!(front.status.code(), full.status.code(), "corral {args:?}");
        assert_eq!(front.stdout, full.stdout, "corral {args:?}");
        assert_eq!(front.stderr, full.stderr, "corral {args:?}");
    }
}

#[test]
fn without_corral_full_beside_it_the_front_says_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let alone = dir.path().join("corral");
    std::fs::copy(common::corral(), &alone).unwrap();
    let out = run(alone.to_str().unwrap(), "corral", &["features"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    let want = dir.path().join("corral-full");
    assert!(
        err.contains(&format!("{}", want.display()))
            && err.contains("No such file or directory")
            && err.contains("install corral-full beside corral"),
        "{err}"
    );
    assert!(!Path::new(&want).exists());
}

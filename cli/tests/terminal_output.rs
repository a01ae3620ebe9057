//! What corral prints: a reader that closes stdout early (`corral image ls | head -1`) gets
//! a quiet exit 141 (128 + SIGPIPE, as a shell shows for `ls` there), not a panic; text an
//! image supplies (history, dates, names) reaches the terminal with its control characters
//! escaped.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use testkit::TestRootfs;

/// A private store and state root.
struct Store {
    dir: tempfile::TempDir,
}

impl Store {
    fn new() -> Store {
        testkit::require_root();
        Store {
            dir: tempfile::Builder::new()
                .prefix("corral-output-")
                .tempdir()
                .unwrap(),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(common::corral());
        c.arg("--store")
            .arg(self.dir.path().join("store"))
            .arg("--root")
            .arg(self.dir.path().join("state"))
            .args(args)
            .stdin(Stdio::null());
        c
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.command(args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "corral {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
}

/// `args` with a stdout whose reader is already gone.
fn with_closed_stdout(s: &Store, args: &[&str]) -> Output {
    let (r, w) = testkit::pipe();
    drop(r);
    s.command(args)
        .stdout(Stdio::from(w))
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

#[test]
fn a_closed_stdout_ends_a_command_quietly() {
    let s = Store::new();
    let rootfs = TestRootfs::new();
    s.ok(&["image", "import", rootfs.rootfs().to_str().unwrap(), "base"]);
    for args in [
        &["image", "ls"][..],
        &["image", "history", "base"],
        &["image", "inspect", "base"],
        &["list"],
        &["features"],
    ] {
        let out = with_closed_stdout(&s, args);
        assert_eq!(
            (out.status.code(), String::from_utf8_lossy(&out.stderr)),
            (Some(141), "".into()),
            "corral {args:?} with a closed stdout"
        );
    }
    s.ok(&["image", "rm", "base"]);
}

#[test]
fn image_history_escapes_the_images_control_characters() {
    let s = Store::new();
    let rootfs = TestRootfs::new();
    s.ok(&["image", "import", rootfs.rootfs().to_str().unwrap(), "base"]);
    let ctx = s.path("ctx");
    std::fs::create_dir(&ctx).unwrap();
    // An OSC title change, a bell, a screen clear, a carriage return and a right-to-left
    // override in the image's own text.
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM base\nLABEL evil=\"\x1b]0;owned\x07\x1b[2J\rx\u{202e}y\"\n",
    )
    .unwrap();
    s.ok(&[
        "image",
        "build",
        "--network",
        "none",
        "-t",
        "evil",
        ctx.to_str().unwrap(),
    ]);
    let hist = s.ok(&["image", "history", "evil"]);
    let ls = s.ok(&["image", "ls"]);
    s.ok(&["image", "rm", "evil"]);
    s.ok(&["image", "rm", "base"]);
    for (what, out) in [("history", &hist), ("ls", &ls)] {
        let bad: Vec<char> = out
            .chars()
            .filter(|&c| (c.is_control() && c != '\n') || c == '\u{202e}')
            .collect();
        assert!(bad.is_empty(), "image {what} printed {bad:?}: {out:?}");
    }
    assert!(
        hist.contains("\\x1b]0;owned\\x07\\x1b[2J\\x0dx\\u{202e}y"),
        "{hist}"
    );
}

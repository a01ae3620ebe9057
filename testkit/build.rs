//! Compiles `../probe/src/main.rs` into a static binary with plain rustc
//! (no nested cargo) and exposes its path as `CORRAL_PROBE`.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let src = manifest.join("../probe/src/main.rs");
    let src = src.canonicalize().unwrap_or(src);
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let out = out_dir.join("corral-probe");

    println!("cargo:rerun-if-changed=../probe/src/main.rs");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=RUSTC");

    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let mut cmd = Command::new(&rustc);
    cmd.args([
        "--edition",
        "2021",
        "-O",
        "-C",
        "target-feature=+crt-static",
    ])
    .args(["-C", "strip=symbols"])
    .args(["--crate-type", "bin", "--crate-name", "corral_probe"]);
    if let (Ok(target), Ok(host)) = (std::env::var("TARGET"), std::env::var("HOST")) {
        if target != host {
            cmd.args(["--target", &target]);
        }
    }
    cmd.arg(&src).arg("-o").arg(&out);
    // Keep rustc's scratch files inside OUT_DIR.
    cmd.current_dir(&out_dir);

    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("failed to run {rustc:?} to build the probe: {e}"));
    if !output.status.success() {
        panic!(
            "building corral-probe with {:?} failed ({}):\n{}\n{}",
            rustc,
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        println!("cargo:warning=probe: {line}");
    }
    println!("cargo:rustc-env=CORRAL_PROBE={}", out.display());
}

//! Builds the exec shim (`shim/exec_shim.rs`): a static, libc-free program of a few KiB that
//! the container's process becomes right before it runs the container's program (see
//! `src/shim.rs`). Plain rustc, no nested cargo. On an architecture the shim has no code for,
//! an empty file: the spawn then executes the program directly.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=shim/exec_shim.rs");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=RUSTC");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let out = out_dir.join("corral-exec-shim");
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if arch != "x86_64" && arch != "aarch64" {
        println!("cargo:warning=no exec shim for {arch}: programs are executed directly");
        std::fs::write(&out, b"").expect("write the empty shim");
        return;
    }
    let src = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"))
        .join("shim/exec_shim.rs");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let mut cmd = Command::new(&rustc);
    cmd.args(["--edition", "2021", "--crate-type", "bin"])
        .args(["--crate-name", "corral_exec_shim"])
        .args([
            "-C",
            "opt-level=s",
            "-C",
            "panic=abort",
            "-C",
            "strip=symbols",
        ])
        .args([
            "-C",
            "relocation-model=static",
            "-C",
            "target-feature=+crt-static",
        ])
        .args(["-C", "link-arg=-nostartfiles", "-C", "link-arg=-nostdlib"])
        .args([
            "-C",
            "link-arg=-static",
            "-C",
            "link-arg=-Wl,--build-id=none",
        ]);
    if let (Ok(target), Ok(host)) = (std::env::var("TARGET"), std::env::var("HOST")) {
        if target != host {
            cmd.args(["--target", &target]);
        }
    }
    cmd.arg(&src).arg("-o").arg(&out).current_dir(&out_dir);
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("failed to run {rustc:?} to build the exec shim: {e}"));
    if !output.status.success() {
        panic!(
            "building the exec shim with {rustc:?} failed ({}):\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

//! Links `corral` with packed relative relocations (`-z pack-relative-relocs`, DT_RELR) where
//! the toolchain supports them (binutils >= 2.38, glibc >= 2.36: Debian 12). The binary is a
//! position-independent executable whose ~17,000 relative relocations otherwise fill a 400 KB
//! `.rela.dyn` that the dynamic loader reads at every start: with DT_RELR it is 10 KB, and
//! `corral --version` went from 1.79 to 1.30 ms (BENCHMARKS.md). PIE, and so ASLR, stay.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    if !target.contains("linux-gnu") {
        return;
    }
    let Some(out) = std::env::var_os("OUT_DIR") else {
        return;
    };
    let out = std::path::PathBuf::from(out);
    let src = out.join("relr.c");
    let bin = out.join("relr");
    if std::fs::write(&src, "int main(void) { return 0; }\n").is_err() {
        return;
    }
    // The C compiler drives the same linker rustc uses (`cc`).
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let ok = Command::new(cc)
        .args([
            "-pie",
            "-fPIE",
            "-Wl,-z,pack-relative-relocs",
            "-Wl,--fatal-warnings",
            "-o",
        ])
        .arg(&bin)
        .arg(&src)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

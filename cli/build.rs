//! Links `corral` with packed relative relocations (`-z pack-relative-relocs`, DT_RELR) where
//! the toolchain supports them (binutils >= 2.38, glibc >= 2.36: Debian 12). The binary is a
//! position-independent executable whose ~17,000 relative relocations otherwise fill a 400 KB
//! `.rela.dyn` that the dynamic loader reads at every start: with DT_RELR it is 10 KB, and
//! `corral --version` went from 1.79 to 1.30 ms (BENCHMARKS.md). PIE, and so ASLR, stay.
//!
//! It also gives `corral version` the commit, the compiler and the time of the build
//! (`CORRAL_GIT_COMMIT`, `CORRAL_RUSTC_VERSION`, `CORRAL_BUILT`; `SOURCE_DATE_EPOCH` is
//! honoured for reproducible builds).

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    version_info();
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

/// The output of a command, trimmed; none if it failed.
fn output(cmd: &mut Command) -> Option<String> {
    let o = cmd.output().ok()?;
    if !o.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&o.stdout).trim().to_string()).filter(|s| !s.is_empty())
}

fn version_info() {
    let git = |args: &[&str]| output(Command::new("git").args(args));
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    // Built again when HEAD moves (a commit, a checkout): HEAD and the branch's ref (or the
    // packed refs holding it). Only files that exist are named: a missing one would make
    // cargo run this script, and so rebuild the binary, every time.
    let mut watch = vec![git(&["rev-parse", "--git-path", "HEAD"])];
    if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watch.push(git(&["rev-parse", "--git-path", &r]));
        watch.push(git(&["rev-parse", "--git-path", "packed-refs"]));
    }
    for p in watch.into_iter().flatten() {
        if std::path::Path::new(&p).exists() {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc_version = output(Command::new(rustc).arg("--version")).unwrap_or_default();
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        });
    let built = output(Command::new("date").args([
        "-u",
        "-d",
        &format!("@{secs}"),
        "+%a %b %e %H:%M:%S %Y",
    ]))
    .unwrap_or_else(|| secs.to_string());
    println!("cargo:rustc-env=CORRAL_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=CORRAL_RUSTC_VERSION={rustc_version}");
    println!("cargo:rustc-env=CORRAL_BUILT={built}");
}

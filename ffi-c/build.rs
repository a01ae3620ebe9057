//! Generates `container.h` with cbindgen (never edited by hand) into
//! `target/<profile>/include/`, and links `libcontainer.so` with its soname and a version
//! script that exports only the `corral_` prefix.

use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=container.map");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libcontainer.so.0");
    println!(
        "cargo:rustc-cdylib-link-arg=-Wl,--version-script={}",
        dir.join("container.map").display()
    );
    // OUT_DIR is target/<profile>/build/<pkg>-<hash>/out: the header goes to
    // target/<profile>/include, next to the libraries.
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    let profile_dir = out
        .ancestors()
        .nth(3)
        .expect("OUT_DIR is target/<profile>/build/<pkg>/out")
        .to_path_buf();
    let include = profile_dir.join("include");
    std::fs::create_dir_all(&include).expect("creating the include dir");
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    cbindgen::Builder::new()
        .with_crate(&dir)
        .with_config(config)
        .generate()
        .expect("generating container.h")
        .write_to_file(include.join("container.h"));
}

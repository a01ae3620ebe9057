//! The library's version, ABI version and feature names.

use std::ffi::{c_char, c_int, CStr};

use crate::args::str_arg;
use crate::error::call;

/// The ABI version: the `0` of the soname `libcontainer.so.0`. It changes only when a
/// program built against an older header could break.
pub const CORRAL_ABI_VERSION: c_int = 0;

pub(crate) const VERSION: &CStr =
    match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(v) => v,
        Err(_) => c"unknown",
    };

/// The library's version, as "MAJOR.MINOR.PATCH". A static string: do not free it.
#[no_mangle]
pub extern "C" fn corral_version() -> *const c_char {
    VERSION.as_ptr()
}

/// The ABI version of the library that is loaded (CORRAL_ABI_VERSION when the program was
/// built against the same one).
#[no_mangle]
pub extern "C" fn corral_abi_version() -> c_int {
    CORRAL_ABI_VERSION
}

/// The features this build has, by name, for corral_has_feature().
pub(crate) const FEATURES: &[&str] = &[
    "spec-builder",
    "bundle",
    "config-json",
    "create",
    "start",
    "run",
    "wait-timeout",
    "pidfd",
    "kill",
    "state-json",
    "exec",
    "pause",
    "resume",
    "update",
    "stats-json",
    "delete",
    "stdio-fds",
    "timings",
    "list",
    "terminal",
    "seccomp-default",
    "cgroup-v1",
    "cgroup-v2",
    "user-namespace",
    "overlay-layers",
    "pool",
    "image",
    "image-store",
    "blkio",
    "warnings",
    "network",
];

/// 1 if this library has the feature `name`, 0 if not, -EINVAL for NULL. Names: "spec-builder",
/// "bundle", "config-json", "create", "start", "run", "wait-timeout", "pidfd", "kill",
/// "state-json", "exec", "pause", "resume", "update", "stats-json", "delete", "stdio-fds",
/// "timings", "list", "terminal", "seccomp-default", "cgroup-v1", "cgroup-v2",
/// "user-namespace", "overlay-layers", "pool", "image", "image-store" (import, build,
/// tag, list, remove, prune), "blkio" (block IO limits), "warnings", "network" (CNI networks, published ports and rates
/// of a spec; a container's attachments; a store's networks). A name this version
/// does not know gets 0: probe before you use something newer than the library you run with.
#[no_mangle]
pub extern "C" fn corral_has_feature(name: *const c_char) -> c_int {
    let mut r = 0;
    let rc = call("corral_has_feature", || {
        let n = str_arg("name", name)?;
        r = c_int::from(FEATURES.contains(&n));
        Ok(())
    });
    if rc < 0 {
        rc
    } else {
        r
    }
}

//! Crash points for tests: a debug build (or one with the `fault-injection` feature) run with
//! `CORRAL_FAULT=<point>` kills itself with SIGKILL when it reaches that named point, so that
//! a test can check that `delete --force` removes whatever a runtime killed there left. A
//! release build without the feature compiles every point to nothing.
#![deny(clippy::undocumented_unsafe_blocks)]

/// Every point, in the order a container's life reaches them.
pub const POINTS: &[&str] = &[
    // create
    "create:after-state-dir",
    "create:after-state",
    "create:after-overlay",
    "create:after-cgroup",
    "create:after-clone",
    "create:after-ready",
    "create:before-state",
    "create:after-state-created",
    // start
    "start:before-gate",
    "start:gate-opened",
    "start:after-gate",
    "start:after-state",
    // pause and resume
    "pause:after-freeze",
    "resume:after-thaw",
    // exec
    "exec:after-clone",
    "exec:after-go",
    // delete
    "delete:after-kill",
    "delete:after-cgroup",
    "delete:before-state-dir",
];

/// The environment variable naming the point to die at.
pub const ENV: &str = "CORRAL_FAULT";

const ENABLED: bool = cfg!(any(debug_assertions, feature = "fault-injection"));

/// Whether this build honours [`ENV`].
pub fn enabled() -> bool {
    ENABLED
}

/// Dies by SIGKILL if [`ENV`] names `name` (and this build honours it).
#[inline]
pub fn point(name: &'static str) {
    debug_assert!(POINTS.contains(&name), "unknown fault point {name}");
    if !ENABLED {
        return;
    }
    if std::env::var_os(ENV).is_some_and(|v| v == name) {
        // SIGKILL cannot be caught: the process ends here.
        let _ = nix::sys::signal::kill(nix::unistd::getpid(), nix::sys::signal::Signal::SIGKILL);
    }
}

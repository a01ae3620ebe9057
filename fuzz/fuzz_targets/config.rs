//! config.json bytes → the runtime's whole checking path short of making anything: parse
//! (`Bundle::from_text`, as `Bundle::load` does, with the validator), hooks, cgroup resources,
//! the spawn plan (`prepare::plan`) and the seccomp program. Any input may be refused with an
//! error; none may panic.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use runtime::prepare::{self, Inputs};
use runtime::{filter, hooks, resources, Bundle, Security};

/// A bundle dir with an empty `rootfs/`, under fuzz/target (reused by every run).
fn bundle() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/config-bundle");
        std::fs::create_dir_all(d.join("rootfs")).expect("bundle dir");
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let dir = bundle();
    let Ok(b) = Bundle::from_text(dir.to_path_buf(), text) else {
        return;
    };
    let spec = &b.spec;
    if hooks::check(spec).is_err() {
        return;
    }
    let _ = resources::from_spec(spec, true);
    let rootfs = dir.join("rootfs");
    let security = Security::none();
    let _ = prepare::plan(Inputs {
        spec,
        bundle: dir,
        rootfs: &rootfs,
        cgroups: &[],
        cgroup_fd: None,
        no_pivot: false,
        preserve_fds: 0,
        stdio: [-1, -1, -1],
        mount_idmaps: &b.mount_idmaps,
        security: &security,
    });
    if let Some(sc) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        if let Ok(p) = filter::policy(sc) {
            let _ = seccomp::compile(&p);
        }
    }
});

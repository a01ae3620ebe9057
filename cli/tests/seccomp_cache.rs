//! The seccomp compile cache under the state root cannot be used to swap a container's
//! filter: a cached program is only taken when its header names this policy and its bytes
//! match their hash, and only from a dir and file of the caller's that nobody else can write.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{stdout, Env};
use serde_json::json;

fn cache_files(env: &Env) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(env.state_root().join(".seccomp-cache"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

#[test]
fn a_planted_allow_all_program_is_not_used() {
    let env = Env::new("sc-cache");
    // An allow-all policy: its compiled program lands in the cache.
    let mut spec = env.spec(&[
        "/bin/sh",
        "-c",
        "mkdir /tmp/sc-cache && rmdir /tmp/sc-cache; echo rc=$?",
    ]);
    spec["root"]["readonly"] = json!(false);
    spec["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}]});
    let out = env.run(&spec);
    common::assert_exit(&out, 0);
    assert_eq!(stdout(&out), "rc=0\n");
    let allow_all = cache_files(&env);
    assert_eq!(allow_all.len(), 1);
    // The real policy blocks mkdir.
    spec["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]});
    let out = env.run(&spec);
    assert_eq!(stdout(&out), "rc=1\n");
    let real: Vec<_> = cache_files(&env)
        .into_iter()
        .filter(|p| !allow_all.contains(p))
        .collect();
    assert_eq!(real.len(), 1);
    let cache_dir = env.state_root().join(".seccomp-cache");
    for open_dir in [false, true] {
        // Plant the allow-all program under the real policy's name.
        std::fs::copy(&allow_all[0], &real[0]).unwrap();
        if open_dir {
            std::fs::set_permissions(&cache_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        let out = env.run(&spec);
        assert_eq!(stdout(&out), "rc=1\n", "open_dir={open_dir}");
        if !open_dir {
            // Recompiled and rewritten: the file verifies again.
            assert_ne!(
                std::fs::read(&real[0]).unwrap(),
                std::fs::read(&allow_all[0]).unwrap()
            );
        } else {
            // A dir others can write is not written into.
            assert_eq!(
                std::fs::read(&real[0]).unwrap(),
                std::fs::read(&allow_all[0]).unwrap()
            );
        }
    }
    // A symlinked file is not followed.
    std::fs::set_permissions(&cache_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::remove_file(&real[0]).unwrap();
    std::os::unix::fs::symlink(&allow_all[0], &real[0]).unwrap();
    assert_eq!(stdout(&env.run(&spec)), "rc=1\n");
    // Cache files are private.
    let m = std::fs::metadata(&allow_all[0]).unwrap();
    assert_eq!(m.permissions().mode() & 0o777, 0o600);
}

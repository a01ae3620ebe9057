//! linux.seccomp honoured: filters installed in the container (and its exec'd processes),
//! big default-deny policies, the compile cache, and clear errors.

mod common;

use common::{assert_fails, stdout, Env};
use serde_json::{json, Value};

#[test]
fn errno_rule_denies_one_syscall() {
    let env = Env::new("sc-errno");
    let mut spec = env.spec(&["/bin/sh", "-c", "mkdir /tmp/x; echo rc=$?"]);
    spec["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    });
    for nnp in [true, false] {
        spec["process"]["noNewPrivileges"] = json!(nnp);
        let out = env.run(&spec);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(stdout(&out), "rc=1\n", "nnp={nnp}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("Operation not permitted"));
    }
    // The probe sees seccomp mode 2 (filter).
    let r = env.report(spec.clone(), &[]);
    assert_eq!(r["seccomp"], 2);
    // The compiled filter was cached under the state root.
    let cache = env.state_root().join(".seccomp-cache");
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 1);
}

#[test]
fn default_deny_with_a_large_allow_list() {
    let env = Env::new("sc-deny");
    let allowed: Vec<&str> = seccomp::Arch::X86_64
        .syscall_names()
        .filter(|n| *n != "mkdir" && *n != "mkdirat")
        .collect();
    assert!(allowed.len() > 300);
    let mut spec = env.spec(&["/bin/sh", "-c", "echo hi; mkdir /tmp/x || echo denied"]);
    spec["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 38,
        "syscalls": [{"names": allowed, "action": "SCMP_ACT_ALLOW"}]
    });
    let out = env.run(&spec);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout(&out), "hi\ndenied\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Function not implemented"));
}

#[test]
fn kill_action_kills_the_process() {
    let env = Env::new("sc-kill");
    let mut spec = env.spec(&["/bin/sh", "-c", "mkdir /tmp/x"]);
    spec["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL_PROCESS"}]
    });
    // Killed by SIGSYS (31): 128 + 31.
    assert_eq!(env.run(&spec).status.code(), Some(159));
}

#[test]
fn bad_seccomp_sections_are_refused() {
    let env = Env::new("sc-bad");
    let mut spec = env.spec(&["/bin/true"]);
    spec["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 9, "value": 1, "op": "SCMP_CMP_EQ"}]}]
    });
    assert_fails(&env.run(&spec), 125, &["linux.seccomp", "getpid", "9"]);
    spec["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_NOPE"});
    assert_fails(&env.run(&spec), 125, &["SCMP_ACT_NOPE"]);
    let _: Value = spec;
}

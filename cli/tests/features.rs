//! `corral features` against real containers: every mount option it lists is taken in a
//! `config.json` (as corral's own, not passed to the filesystem, which would refuse it on a
//! tmpfs), options it does not list are refused, and its seccomp names run.

mod common;

use common::{assert_exit, assert_fails, cli_ok, Env};
use serde_json::{json, Value};

fn features(env: &Env) -> Value {
    serde_json::from_str(&cli_ok(env, &["features"])).unwrap()
}

fn list(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

/// The mount of `opt` in a container: a bind mount for the options of binds, a tmpfs
/// (which refuses filesystem options it does not know) for the others.
fn mount_with(env: &Env, src: &std::path::Path, opt: &str) -> Value {
    match opt {
        "bind" | "rbind" => json!({"destination": "/m", "type": "bind", "source": src,
            "options": [opt]}),
        "remount" => json!({"destination": "/m", "type": "bind", "source": src,
            "options": ["bind", "remount", "ro"]}),
        "idmap" | "ridmap" => json!({"destination": "/m", "type": "bind", "source": src,
            "options": ["bind", opt],
            "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
            "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}),
        _ => {
            let _ = env;
            json!({"destination": "/m", "type": "tmpfs", "source": "tmpfs", "options": [opt]})
        }
    }
}

#[test]
fn every_listed_mount_option_is_taken() {
    let env = Env::new("featmnt");
    let src = tempfile::Builder::new()
        .prefix(&format!("{}-src-", env.id))
        .tempdir()
        .unwrap();
    let opts = list(&features(&env)["mountOptions"]);
    assert!(opts.len() > 30, "{opts:?}");
    for opt in &opts {
        let mut spec = env.spec(&["/bin/true"]);
        spec["mounts"]
            .as_array_mut()
            .unwrap()
            .push(mount_with(&env, src.path(), opt));
        let out = env.run(&spec);
        assert_eq!(
            out.status.code(),
            Some(0),
            "mount option {opt:?} is listed but refused: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // What is not listed is not corral's: a tmpfs is given it, and refuses it.
    for opt in ["nosuchoption", "tmpcopyup", "move", "rnosuchflag"] {
        assert!(!opts.iter().any(|o| o == opt), "{opt}");
        let mut spec = env.spec(&["/bin/true"]);
        spec["mounts"]
            .as_array_mut()
            .unwrap()
            .push(mount_with(&env, src.path(), opt));
        assert_fails(&env.run(&spec), 1, &["mount"]);
    }
}

/// One container with a rule for every listed action (but NOTIFY, which needs a listener),
/// a comparison with every listed operator and every listed flag, for every listed
/// architecture.
#[test]
fn every_listed_seccomp_name_runs() {
    let env = Env::new("featsec");
    let s = features(&env)["linux"]["seccomp"].clone();
    // Syscalls /bin/true never makes.
    let unused = [
        "acct",
        "swapon",
        "swapoff",
        "reboot",
        "kexec_load",
        "init_module",
        "delete_module",
        "pivot_root",
        "quotactl",
        "vhangup",
    ];
    let mut syscalls = Vec::new();
    let actions = list(&s["actions"]);
    assert!(actions.len() >= 8, "{actions:?}");
    for (i, a) in actions
        .iter()
        .filter(|a| *a != "SCMP_ACT_NOTIFY")
        .enumerate()
    {
        syscalls.push(json!({"names": [unused[i]], "action": a}));
    }
    for (i, op) in list(&s["operators"]).iter().enumerate() {
        syscalls.push(json!({"names": ["personality"], "action": "SCMP_ACT_ERRNO",
            "args": [{"index": i % 6, "value": 0xdead_0000u64 + i as u64, "valueTwo": 1, "op": op}]}));
    }
    let mut spec = env.spec(&["/bin/true"]);
    spec["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": s["archs"],
        "flags": s["knownFlags"],
        "syscalls": syscalls,
    });
    assert_exit(&env.run(&spec), 0);
}

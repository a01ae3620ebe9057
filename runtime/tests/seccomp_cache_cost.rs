//! Cost of the seccomp compile cache for docker's default profile: a compile (miss) against
//! a verified load (hit). Ignored: run with
//! `cargo test -p corral-runtime --test seccomp_cache_cost -- --ignored --nocapture`.

use oci_spec::runtime::LinuxSeccomp;

#[test]
#[ignore]
fn docker_default_compile_vs_cache_hit() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../seccomp/tests/fixtures/docker-default.json"
    );
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).expect("fixture parses");
    // OCI form: drop moby's profile-only fields.
    for sc in v["syscalls"].as_array_mut().unwrap() {
        let o = sc.as_object_mut().unwrap();
        o.remove("includes");
        o.remove("excludes");
        o.remove("comment");
    }
    let o = v.as_object_mut().unwrap();
    o.remove("archMap");
    o.remove("comment");
    o.insert(
        "architectures".into(),
        serde_json::json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]),
    );
    let sc: LinuxSeccomp = serde_json::from_value(v).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join(".seccomp-cache");
    let n = 200;
    let t = std::time::Instant::now();
    for _ in 0..n {
        let policy = runtime::filter::policy(&sc).unwrap();
        seccomp::compile(&policy).unwrap();
    }
    let compile = t.elapsed() / n;
    let first = runtime::filter::compile(&sc, &cache).unwrap();
    let t = std::time::Instant::now();
    for _ in 0..n {
        assert_eq!(runtime::filter::compile(&sc, &cache).unwrap(), first);
    }
    let hit = t.elapsed() / n;
    println!(
        "docker default ({} insns): compile {compile:?}, verified cache hit {hit:?}",
        first.len()
    );
}

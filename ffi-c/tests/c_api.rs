//! The C library from C: each program in `tests/c/` is compiled with `cc -Wall -Werror`
//! against the generated header through pkg-config (the library installed into a temporary
//! prefix by `scripts/install-lib.sh`, as a user would install it), with AddressSanitizer
//! (its leak check included), and run on a real container root; then nothing it made may be
//! left. The programs in `examples/` and the README's C example are compiled the same way and
//! run from the repository root with no arguments, as the README says.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// target/<profile>: where cargo put libcontainer.so and include/container.h.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>")
        .to_path_buf()
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The library installed into a prefix under the target dir (as a user would install it),
/// once per test run. Not a temporary dir: a static is never dropped, and the next run
/// installs over it.
fn prefix() -> &'static Path {
    static PREFIX: OnceLock<PathBuf> = OnceLock::new();
    PREFIX.get_or_init(|| {
        // `cargo test` does not build a cdylib-only crate for its integration tests:
        // build the library of this profile now (quick when it is up to date).
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .args(["build", "-q", "-p", "corral-ffi-c"])
            .current_dir(repo_root());
        if profile_dir().ends_with("release") {
            build.arg("--release");
        }
        let b = build.output().expect("running cargo build -p corral-ffi-c");
        assert!(
            b.status.success(),
            "cargo build -p corral-ffi-c: {}",
            String::from_utf8_lossy(&b.stderr)
        );
        let dir = profile_dir().join("c-test-prefix");
        let out = Command::new("bash")
            .arg(repo_root().join("scripts/install-lib.sh"))
            .arg("--from")
            .arg(profile_dir())
            .arg(&dir)
            .output()
            .expect("running scripts/install-lib.sh");
        assert!(
            out.status.success(),
            "install-lib.sh failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
}

fn pkg_config(args: &[&str]) -> Vec<String> {
    let out = Command::new("pkg-config")
        .args(args)
        .arg("container")
        .env("PKG_CONFIG_PATH", prefix().join("lib/pkgconfig"))
        .output()
        .expect("pkg-config (apt-get install pkg-config)");
    assert!(
        out.status.success(),
        "pkg-config {args:?} container: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Compiles `src` as a user would, with `-Wall -Werror` (and AddressSanitizer if `asan`).
fn compile(src: &Path, out: &Path, asan: bool) {
    let mut cc = Command::new("cc");
    cc.args([
        "-std=c11",
        "-D_GNU_SOURCE",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-g",
    ]);
    if asan {
        cc.args(["-fsanitize=address", "-fno-omit-frame-pointer"]);
    }
    cc.arg("-I").arg(src.parent().expect("dir"));
    cc.arg(src).arg("-o").arg(out);
    cc.args(pkg_config(&["--cflags", "--libs"]));
    cc.arg("-lpthread");
    let o = cc.output().expect("cc (apt-get install gcc)");
    assert!(
        o.status.success(),
        "compiling {}:\n{}",
        src.display(),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn run_checked(mut cmd: Command, what: &str) -> String {
    cmd.env("LD_LIBRARY_PATH", prefix().join("lib"))
        // Leaks are errors; the library's own registry (live handles only) is not a leak.
        .env(
            "ASAN_OPTIONS",
            "detect_leaks=1:abort_on_error=0:exitcode=99",
        );
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Compiles and runs `tests/c/NAME.c` on a fresh busybox root with its own state root and
/// id prefix; checks that it exits 0 and that nothing it made is left.
fn c_test(name: &str, env: &[(&str, &str)]) -> String {
    c_test_on(name, env, |_, _| {})
}

/// [`c_test`], with `prepare(rootfs, program)` run on the test's root before the program.
fn c_test_on(name: &str, env: &[(&str, &str)], prepare: impl FnOnce(&Path, &Path)) -> String {
    c_test_in(name, env, prepare, None)
}

/// [`c_test_on`], the program run in the network namespace `netns` if one is given
/// ([`testkit::Netns::command`], which changes nothing else: `ip netns exec` would also
/// mount a sysfs of that namespace over /sys, hiding the cgroup mounts).
fn c_test_in(
    name: &str,
    env: &[(&str, &str)],
    prepare: impl FnOnce(&Path, &Path),
    netns: Option<&testkit::Netns>,
) -> String {
    testkit::require_root();
    let id = testkit::unique_id(&format!("c-{name}"));
    let rootfs = testkit::TestRootfs::with_id(&id);
    let state = tempfile::Builder::new()
        .prefix("corral-state-")
        .tempdir()
        .expect("state dir");
    let bin = tempfile::Builder::new()
        .prefix("corral-cbin-")
        .tempdir()
        .expect("bin dir");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/c/{name}.c"));
    let exe = bin.path().join(name);
    compile(&src, &exe, true);
    prepare(rootfs.rootfs(), &exe);
    let mut cmd = match netns {
        Some(ns) => ns.command(&exe),
        None => Command::new(&exe),
    };
    cmd.arg(rootfs.rootfs()).arg(state.path()).arg(&id);
    // ASAN_OPTIONS in `env` are added to the usual ones.
    let mut asan = "detect_leaks=1:abort_on_error=0:exitcode=99".to_string();
    for (k, v) in env {
        if *k == "ASAN_OPTIONS" {
            asan = format!("{asan}:{v}");
        } else {
            cmd.env(k, v);
        }
    }
    cmd.env("LD_LIBRARY_PATH", prefix().join("lib"))
        .env("ASAN_OPTIONS", asan);
    let out = cmd.output().unwrap_or_else(|e| panic!("{name}: {e}"));
    if !out.status.success() {
        // A program that failed half-way left its containers: remove them before failing,
        // so that one failure does not leak into the machine or the next test.
        for cid in runtime::state::list_ids(state.path()).unwrap_or_default() {
            let _ = runtime::Container::force_delete(state.path(), &cid);
        }
        panic!(
            "{name} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    testkit::assert_no_leaks(&id, Some(state.path()));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn run_reads_exit_code_signal_timeout_and_timings() {
    assert!(c_test("run", &[]).contains("run: ok"));
}

#[test]
fn a_failed_spawn_says_what_and_where_and_leaves_nothing() {
    assert!(c_test("spawn_fail", &[]).contains("spawn_fail: ok"));
}

#[test]
fn create_start_pause_kill_delete() {
    assert!(c_test("lifecycle", &[]).contains("lifecycle: ok"));
}

/// A seccomp profile older than the runtime's own syscalls (everything from Linux 5.1 on
/// refused with EPERM): run and exec, each with a cwd other than `/`.
#[test]
fn an_old_seccomp_profile_runs_and_execs() {
    let arch = seccomp::Arch::X86_64;
    let old: Vec<&str> = arch
        .syscall_names()
        .filter(|n| arch.syscall_number(n).is_some_and(|nr| nr < 424))
        .collect();
    let profile = serde_json::json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": old, "action": "SCMP_ACT_ALLOW"}]
    });
    let out = c_test(
        "old_seccomp",
        &[("CORRAL_TEST_SECCOMP", &profile.to_string())],
    );
    assert!(out.contains("old_seccomp: ok"));
}

/// CVE-2019-5736 from a C program: an image whose program reaches `/proc/self/exe` never
/// runs the calling program inside the container.
#[test]
fn an_image_never_runs_the_calling_program_through_proc_self_exe() {
    let lib = prefix().join("lib").to_string_lossy().into_owned();
    let out = c_test_on("exe_escape", &[], |rootfs, exe| {
        testkit::make_exe_hostile(rootfs, exe, Some(&lib))
    });
    assert!(out.contains("exe_escape: ok"));
}

#[test]
fn exec_into_a_running_container() {
    assert!(c_test("exec", &[]).contains("exec: ok"));
}

/// A whole-disk block device of the host for the block IO limits (not a loop, ram or zram
/// device when there is another).
fn a_block_device() -> PathBuf {
    let mut names: Vec<String> = std::fs::read_dir("/sys/block")
        .expect("/sys/block")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            use std::os::unix::fs::FileTypeExt;
            std::fs::metadata(Path::new("/dev").join(n))
                .is_ok_and(|m| m.file_type().is_block_device())
        })
        .collect();
    names.sort_by_key(|n| {
        (
            ["loop", "ram", "zram"].iter().any(|p| n.starts_with(p)),
            n.clone(),
        )
    });
    let n = names
        .first()
        .expect("no block device in /sys/block with a node in /dev: the block IO test needs one");
    Path::new("/dev").join(n)
}

#[test]
fn limits_hold_inside_and_update() {
    let dev = a_block_device();
    let dev = dev.to_string_lossy();
    assert!(c_test("limits", &[("CORRAL_TEST_BLKDEV", &dev)]).contains("limits: ok"));
}

#[test]
fn dockers_limits_hold_inside_and_are_refused_in_dockers_words() {
    assert!(c_test("docker_limits", &[]).contains("docker_limits: ok"));
}

/// corral_warnings: none for a plain run; a failed startContainer hook's.
#[test]
fn warnings_reach_c() {
    assert!(c_test("warnings", &[]).contains("warnings: ok"));
}

/// A freed handle stays -EBADF through 40 create/free rounds (an address handle was reused
/// by the 19th; here at once, since AddressSanitizer's quarantine, which would hold freed
/// memory back, is off); after fork() the child's use of the parent's handles is -EXDEV and
/// changes nothing.
#[test]
fn handles_are_never_reused_and_do_not_cross_fork() {
    let out = c_test("handles", &[("ASAN_OPTIONS", "quarantine_size_mb=0")]);
    assert!(out.contains("handles: ok"));
}

/// A C program dies of SIGPIPE by default: a hook that exits without reading its stdin
/// (the state, bigger than a pipe holds) must be an EPIPE inside the library, not the
/// program's death.
#[test]
fn a_hook_that_does_not_read_its_stdin_does_not_kill_a_c_program() {
    assert!(c_test("sigpipe", &[]).contains("sigpipe: ok"));
}

#[test]
fn bad_handles_and_arguments_are_errors_not_crashes() {
    assert!(c_test("bad_args", &[]).contains("bad_args: ok"));
}

/// Images from C alone: import, build (with progress), tag, list, run, remove, prune. At
/// the end the program has removed every image and pruned: the store holds no layer and
/// no container record.
#[test]
fn images_from_c_import_build_run_remove_and_prune() {
    let store_dir = tempfile::Builder::new()
        .prefix("corral-store-")
        .tempdir()
        .expect("store dir");
    let ctx = tempfile::Builder::new()
        .prefix("corral-ctx-")
        .tempdir()
        .expect("context dir");
    let store_path = store_dir.path().to_string_lossy().into_owned();
    let ctx_path = ctx.path().to_string_lossy().into_owned();
    let out = c_test(
        "image",
        &[
            ("CORRAL_TEST_STORE", &store_path),
            ("CORRAL_TEST_CONTEXT", &ctx_path),
        ],
    );
    assert!(out.contains("image: ok"));
    let layers: Vec<_> = std::fs::read_dir(store_dir.path().join("layers/sha256"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(layers.is_empty(), "layers left: {layers:?}");
    let left: Vec<_> = std::fs::read_dir(store_dir.path().join("containers"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "records left: {left:?}");
}

/// What a store's networks keep for containers: address leases, cached results,
/// per-container files.
fn network_leftovers(store: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let leases = store.join("cni/leases");
    for d in std::fs::read_dir(&leases).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(d.path()).into_iter().flatten().flatten() {
            let n = f.file_name().to_string_lossy().into_owned();
            if n.parse::<std::net::IpAddr>().is_ok() {
                out.push(format!("lease {}", f.path().display()));
            }
        }
    }
    for sub in ["cni/results", "cni/containers"] {
        for f in std::fs::read_dir(store.join(sub))
            .into_iter()
            .flatten()
            .flatten()
        {
            out.push(format!("{sub}: {}", f.path().display()));
        }
    }
    out
}

/// Networking from C, in a network namespace of the test's own: a spec's networks,
/// published port and rates; the container's attachments against its interfaces; the
/// port reached; the rates as token buckets; bad ports, rates, modes and names refused
/// by name; named networks made, listed, refused while in use, removed. Afterwards no
/// lease, cache entry, veth or qdisc is left.
#[test]
fn networks_ports_and_rates_from_c() {
    // The networks the containers join live here, never in the host's namespace.
    let ns = testkit::Netns::new("c-net");
    let store = tempfile::Builder::new()
        .prefix("corral-store-")
        .tempdir()
        .expect("store dir");
    let store_path = store.path().to_string_lossy().into_owned();
    let out = c_test_in(
        "network",
        &[
            ("CORRAL_TEST_STORE", &store_path),
            ("CORRAL_STORE", &store_path),
        ],
        |_, _| {},
        Some(&ns),
    );
    assert!(out.contains("network: ok"), "{out}");
    let left = network_leftovers(store.path());
    assert!(left.is_empty(), "left behind: {left:?}");
    let veths = ns.ip(&["-o", "link", "show", "type", "veth"]);
    assert!(veths.trim().is_empty(), "veths left: {veths}");
}

#[test]
fn a_warm_pool_runs_the_callers_programs() {
    assert!(c_test("pool", &[]).contains("pool: ok"));
}

#[test]
fn eight_threads_spawn_a_thousand_containers() {
    let total = std::env::var("CORRAL_C_THREADS_TOTAL").unwrap_or_else(|_| "1000".into());
    let out = c_test("threads", &[("CORRAL_C_THREADS_TOTAL", &total)]);
    assert!(
        out.contains(&format!("threads: {total} containers")),
        "{out}"
    );
}

/// The demo root filesystem the README's set-up command makes (scripts/test.sh makes it too).
fn demo_rootfs() -> PathBuf {
    let r = repo_root().join("target/demo-bundle/rootfs");
    assert!(
        r.join("bin/busybox").is_file(),
        "{} is missing: run ./scripts/demo.sh (or scripts/make-demo-rootfs.sh) first",
        r.display()
    );
    r
}

/// Runs a program from the repository root with no arguments and no environment of ours.
fn run_from_repo_root(exe: &Path, what: &str) -> String {
    let mut cmd = Command::new(exe);
    cmd.current_dir(repo_root()).env_remove("CORRAL_ROOTFS");
    run_checked(cmd, what)
}

#[test]
fn every_example_compiles_and_runs_from_the_repository_root() {
    testkit::require_root();
    demo_rootfs();
    let bin = tempfile::tempdir().expect("bin dir");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).expect("examples dir") {
        let src = e.expect("entry").path();
        if src.extension().and_then(|x| x.to_str()) != Some("c") {
            continue;
        }
        let name = src
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("name")
            .to_string();
        let exe = bin.path().join(&name);
        compile(&src, &exe, false);
        let out = run_from_repo_root(&exe, &name);
        assert!(!out.is_empty(), "{name} printed nothing");
        n += 1;
    }
    assert!(n >= 2, "examples: {n}");
    testkit::assert_no_leaks("example-hello-", None);
    testkit::assert_no_leaks("example-lifecycle-", None);
}

#[test]
fn the_readme_c_example_compiles_and_runs_as_written() {
    testkit::require_root();
    demo_rootfs();
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README.md");
    let start = readme.find("```c\n").expect("README.md has a ```c example") + 5;
    let len = readme[start..].find("```").expect("end of the ```c block");
    let code = &readme[start..start + len];
    let lines = code.lines().count();
    assert!(
        (12..=30).contains(&lines),
        "the README's C example has {lines} lines"
    );
    let dir = tempfile::tempdir().expect("dir");
    let src = dir.path().join("example.c");
    std::fs::write(&src, code).expect("write example.c");
    let exe = dir.path().join("example");
    compile(&src, &exe, false);
    let out = run_from_repo_root(&exe, "README example");
    assert!(out.contains("hello from a container"), "{out}");
    assert!(out.contains("exit code 0"), "{out}");
}

#[test]
fn only_the_public_prefix_is_exported_under_the_soname() {
    let lib = prefix().join("lib/libcontainer.so");
    let nm = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(&lib)
        .output()
        .expect("nm (binutils)");
    assert!(nm.status.success());
    let syms: Vec<String> = String::from_utf8_lossy(&nm.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_string))
        .collect();
    assert!(syms.len() >= 40, "{syms:?}");
    let foreign: Vec<&String> = syms.iter().filter(|s| !s.starts_with("corral_")).collect();
    assert!(foreign.is_empty(), "exported beyond corral_*: {foreign:?}");
    let header = std::fs::read_to_string(prefix().join("include/container.h")).expect("header");
    for s in &syms {
        assert!(
            header.contains(&format!("{s}(")),
            "{s} is exported but not declared"
        );
    }
    let re = Command::new("readelf")
        .arg("-d")
        .arg(&lib)
        .output()
        .expect("readelf");
    let dynamic = String::from_utf8_lossy(&re.stdout);
    assert!(
        dynamic.contains("Library soname: [libcontainer.so.0]"),
        "{dynamic}"
    );
    // The links a user's linker and loader follow.
    let so0 = std::fs::read_link(prefix().join("lib/libcontainer.so.0")).expect("so.0 link");
    assert!(
        so0.to_string_lossy().starts_with("libcontainer.so.0."),
        "{so0:?}"
    );
    assert!(prefix().join("lib/libcontainer.a").is_file());
}

//! The seccomp profiles engines really send (issue 21), through the corral binary.
//!
//! Each profile of `seccomp/tests/fixtures/engines` (docker 20.10 and 28, containerd 1.6 and
//! 2.0 — Kubernetes' RuntimeDefault —, podman, `oci-runtime-tool generate` at v0.9.0 and at
//! master; see that directory's README), and a minimal allow list (what busybox `sh` and
//! the threaded program need, without openat2, close_range, clone3, faccessat2, statx,
//! rseq or pidfd_*), goes into a busybox bundle's `linux.seccomp` and runs:
//!
//! * `sh -c 'pwd; echo ok'` with `process.cwd` `/tmp`;
//! * a static threaded C program (`seccomp/tests/fixtures/threaded.c`, built here with
//!   `cc -static -pthread`): `pthread_create`, `faccessat(AT_EACCESS)`, `statx`,
//!   `closefrom`, whose glibc falls back from the newer syscalls on ENOSYS only;
//! * `corral exec` of both into a running container under the profile.
//!
//! Nothing of corral's own may run under the container's profile except the final execve
//! (runc's rule), and syscalls newer than the profile get ENOSYS.

mod common;

use std::path::Path;

use common::{assert_exit, cli, cli_ok, reap, stdout, Env};
use serde_json::{json, Value};

/// Builds the threaded program into the bundle's rootfs as `/threaded`.
fn build_threaded(env: &Env) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../seccomp/tests/fixtures/threaded.c");
    let out = std::process::Command::new("cc")
        .args(["-static", "-pthread", "-O1", "-o"])
        .arg(env.rootfs.rootfs().join("threaded"))
        .arg(&src)
        .output()
        .expect("running cc (gcc and libc6-dev are needed)");
    assert!(
        out.status.success(),
        "cc -static -pthread {}: {}",
        src.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../seccomp/tests/fixtures/engines")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What busybox `sh -c 'pwd; echo ok'`, `sleep` and the threaded program (with glibc's
/// fallbacks) need on x86_64, as a profile written before Linux 4.11 would list it.
const MINIMAL: &[&str] = &[
    "arch_prctl",
    "brk",
    "chdir",
    "clock_nanosleep",
    "clone",
    "close",
    "dup2",
    "execve",
    "exit",
    "exit_group",
    "faccessat",
    "fcntl",
    "fstat",
    "futex",
    "getcwd",
    "getdents64",
    "getegid",
    "geteuid",
    "getgid",
    "getpid",
    "getppid",
    "getrandom",
    "gettid",
    "getuid",
    "ioctl",
    "lseek",
    "madvise",
    "mmap",
    "mprotect",
    "munmap",
    "nanosleep",
    "newfstatat",
    "openat",
    "prctl",
    "prlimit64",
    "read",
    "readlink",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "set_robust_list",
    "set_tid_address",
    "tgkill",
    "uname",
    "wait4",
    "write",
];

fn minimal_profile() -> Value {
    for newer in [
        "openat2",
        "close_range",
        "clone3",
        "faccessat2",
        "statx",
        "rseq",
        "pidfd_open",
        "pidfd_send_signal",
        "pidfd_getfd",
    ] {
        assert!(!MINIMAL.contains(&newer), "{newer}");
    }
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": MINIMAL, "action": "SCMP_ACT_ALLOW"}]
    })
}

/// Runs the shell, the threaded program, and both through `exec`, under `profile`.
fn check(tag: &str, profile: Value, no_new_privileges: bool) {
    let env = Env::new(&format!("ep-{tag}"));
    build_threaded(&env);
    let mut spec = env.spec(&["/bin/sh", "-c", "pwd; echo ok"]);
    spec["process"]["cwd"] = json!("/tmp");
    spec["process"]["noNewPrivileges"] = json!(no_new_privileges);
    spec["linux"]["seccomp"] = profile;

    let out = env.run(&spec);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "/tmp\nok\n", "{tag}: sh");

    spec["process"]["args"] = json!(["/threaded"]);
    let out = env.run(&spec);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "threaded ok\n", "{tag}: threaded");

    spec["process"]["args"] = json!(["/bin/sleep", "inf"]);
    env.rootfs.write_config(&spec);
    let bundle = env.bundle().to_string_lossy().into_owned();
    cli_ok(&env, &["run", "-d", "-b", &bundle, &env.id]);
    let st: Value = serde_json::from_str(&cli_ok(&env, &["state", &env.id])).unwrap();
    let pid = st["pid"].as_i64().unwrap();
    let sh = cli(
        &env,
        &[
            "exec",
            "--cwd",
            "/tmp",
            &env.id,
            "/bin/sh",
            "-c",
            "pwd; echo ok",
        ],
    );
    let threaded = cli(&env, &["exec", "--cwd", "/tmp", &env.id, "/threaded"]);
    cli_ok(&env, &["delete", "--force", &env.id]);
    reap(pid);
    assert_exit(&sh, 0);
    assert_eq!(stdout(&sh), "/tmp\nok\n", "{tag}: exec sh");
    assert_exit(&threaded, 0);
    assert_eq!(stdout(&threaded), "threaded ok\n", "{tag}: exec threaded");
}

/// One module per profile: `as_sent` with `noNewPrivileges` false, as docker, containerd
/// (and Kubernetes without `allowPrivilegeEscalation: false`), podman and `oci-runtime-tool
/// generate` send it by default (then the filter is installed while corral still holds
/// CAP_SYS_ADMIN); `with_no_new_privileges` with it true.
macro_rules! profile_tests {
    ($($module:ident: $tag:literal => $profile:expr;)*) => {$(
        mod $module {
            #[test]
            fn as_sent() {
                super::check($tag, $profile, false);
            }

            #[test]
            fn with_no_new_privileges() {
                super::check(concat!($tag, "-nnp"), $profile, true);
            }
        }
    )*};
}

profile_tests! {
    docker_20_10: "d2010" => super::fixture("docker-20.10");
    docker_28: "d28" => super::fixture("docker-28");
    containerd_1_6: "cd16" => super::fixture("containerd-1.6");
    containerd_2_0: "cd20" => super::fixture("containerd-2.0");
    podman: "podman" => super::fixture("podman");
    oci_runtime_tool: "ort" => super::fixture("oci-runtime-tool");
    oci_runtime_tool_0_9_0: "ort090" => super::fixture("oci-runtime-tool-0.9.0");
    minimal_allow_list: "minimal" => super::minimal_profile();
}

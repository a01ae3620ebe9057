//! Real-kernel tests: every filter is installed in a forked child that only
//! makes raw system calls and then `_exit`s; never in the test process.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use libc::{c_int, c_long};
use seccomp::{compile, install, install_raw, Action, Arch, ArgCmp, Op, Policy, Program, Rule};

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Exited(c_int),
    Signaled(c_int),
}

/// Forks; the child sets no-new-privs and non-dumpable, installs `prog` with
/// [`install_raw`] and exits with `body(listener_fd)`.
fn run_child<F: FnOnce(c_int) -> c_int>(prog: &Program, body: F) -> Outcome {
    let fprog = prog.fprog();
    let flags = prog.flags();
    // SAFETY: the child only makes raw syscalls and exits.
    unsafe {
        let pid = libc::fork();
        assert!(pid >= 0);
        if pid == 0 {
            libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                libc::_exit(120);
            }
            let fd = install_raw(&fprog, flags);
            if fd < 0 {
                libc::_exit(121);
            }
            libc::_exit(body(fd));
        }
        let mut status = 0;
        assert_eq!(libc::waitpid(pid, &mut status, 0), pid);
        if libc::WIFEXITED(status) {
            Outcome::Exited(libc::WEXITSTATUS(status))
        } else {
            Outcome::Signaled(libc::WTERMSIG(status))
        }
    }
}

/// A raw syscall: Ok(return value) or Err(errno).
fn sys(nr: c_long, a0: u64, a1: u64) -> Result<c_long, c_int> {
    // SAFETY: callers pass harmless syscalls.
    unsafe {
        let r = libc::syscall(nr, a0 as c_long, a1 as c_long, 0 as c_long);
        if r == -1 {
            Err(*libc::__errno_location())
        } else {
            Ok(r)
        }
    }
}

fn rule(names: &[&str], action: Action, args: Vec<ArgCmp>) -> Rule {
    Rule {
        names: names.iter().map(|s| s.to_string()).collect(),
        action,
        args,
    }
}
fn cmp(index: u32, op: Op, value: u64, value_two: u64) -> ArgCmp {
    ArgCmp {
        index,
        value,
        value_two,
        op,
    }
}
fn prog(default_action: Action, rules: Vec<Rule>) -> Program {
    compile(&Policy {
        default_action,
        architectures: vec![],
        rules,
        flags: vec![],
    })
    .unwrap()
}

#[test]
fn errno_action() {
    let p = prog(
        Action::Allow,
        vec![rule(&["uname"], Action::Errno(38), vec![])],
    );
    let out = run_child(&p, |_| {
        // SAFETY: all-zero is a valid utsname.
        let mut u: libc::utsname = unsafe { std::mem::zeroed() };
        let r = sys(libc::SYS_uname, &mut u as *mut _ as u64, 0);
        if r != Err(38) {
            return 1;
        }
        if sys(libc::SYS_getpid, 0, 0).is_err() {
            return 2;
        }
        0
    });
    assert_eq!(out, Outcome::Exited(0));
}

#[test]
fn kill_process_kill_thread_and_trap_raise_sigsys() {
    for action in [Action::KillProcess, Action::KillThread, Action::Trap] {
        let p = prog(Action::Allow, vec![rule(&["getppid"], action, vec![])]);
        let out = run_child(&p, |_| {
            let _ = sys(libc::SYS_getppid, 0, 0);
            3
        });
        assert_eq!(out, Outcome::Signaled(libc::SIGSYS), "{action:?}");
    }
}

#[test]
fn log_allows_and_trace_without_tracer_is_enosys() {
    let p = prog(
        Action::Allow,
        vec![
            rule(&["getppid"], Action::Log, vec![]),
            rule(&["getpgid"], Action::Trace(5), vec![]),
        ],
    );
    let ppid = std::process::id() as c_long;
    let out = run_child(&p, |_| {
        if sys(libc::SYS_getppid, 0, 0) != Ok(ppid) {
            return 1;
        }
        if sys(libc::SYS_getpgid, 0, 0) != Err(libc::ENOSYS) {
            return 2;
        }
        0
    });
    assert_eq!(out, Outcome::Exited(0));
}

#[test]
fn default_deny_with_allow_list() {
    let p = prog(
        Action::Errno(1),
        vec![rule(
            &["exit", "exit_group", "getpid"],
            Action::Allow,
            vec![],
        )],
    );
    let out = run_child(&p, |_| {
        if sys(libc::SYS_getpid, 0, 0).is_err() {
            return 1;
        }
        if sys(libc::SYS_getppid, 0, 0) != Err(libc::EPERM) {
            return 2;
        }
        if sys(libc::SYS_getuid, 0, 0) != Err(libc::EPERM) {
            return 3;
        }
        0
    });
    assert_eq!(out, Outcome::Exited(0));
}

#[test]
fn personality_query_only() {
    let p = prog(
        Action::Allow,
        vec![
            rule(
                &["personality"],
                Action::Allow,
                vec![cmp(0, Op::Eq, 0xffff_ffff, 0)],
            ),
            rule(&["personality"], Action::Errno(13), vec![]),
        ],
    );
    let out = run_child(&p, |_| {
        if sys(libc::SYS_personality, 0xffff_ffff, 0).is_err() {
            return 1;
        }
        if sys(libc::SYS_personality, 0, 0) != Err(13) {
            return 2;
        }
        if sys(libc::SYS_personality, 8, 0) != Err(13) {
            return 3;
        }
        0
    });
    assert_eq!(out, Outcome::Exited(0));
}

/// getppid ignores its arguments, but the filter sees the full registers.
#[test]
fn sixty_four_bit_comparisons_in_kernel() {
    const HI: u64 = 0x1_0000_0005;
    let p = prog(
        Action::Allow,
        vec![
            rule(&["getppid"], Action::Errno(10), vec![cmp(0, Op::Eq, HI, 0)]),
            rule(
                &["getppid"],
                Action::Errno(13),
                vec![cmp(
                    0,
                    Op::MaskedEq,
                    0xff00_0000_0000_00f0,
                    0x1200_0000_0000_0030,
                )],
            ),
            rule(&["getppid"], Action::Errno(11), vec![cmp(0, Op::Gt, HI, 0)]),
            rule(
                &["getppid"],
                Action::Errno(12),
                vec![cmp(0, Op::Lt, 0x1_0000_0000, 0), cmp(1, Op::Ne, 7, 0)],
            ),
            rule(
                &["getppid"],
                Action::Errno(14),
                vec![
                    cmp(0, Op::Ge, 0x1_0000_0000, 0),
                    cmp(0, Op::Le, 0x1_0000_0004, 0),
                ],
            ),
        ],
    );
    let ppid = Ok(std::process::id() as c_long);
    let out = run_child(&p, |_| {
        let cases: [(u64, u64, Result<c_long, c_int>); 11] = [
            (HI, 0, Err(10)),
            (HI + 1, 0, Err(11)),
            (0x2_0000_0000, 0, Err(11)),
            (0x5, 0, Err(12)), // same low word as HI, high word 0: Lt
            (0xffff_ffff, 0, Err(12)),
            (0xffff_ffff, 7, Ok(-2)), // Lt holds, Ne fails -> next rules, none match
            (0x12ab_0000_0000_ff3f, 0, Err(13)),
            (0x1300_0000_0000_0030, 0, Err(11)),
            (0x1_0000_0000, 0, Err(14)),
            (0x1_0000_0004, 0, Err(14)),
            (0x1_0000_0003, 0, Err(14)),
        ];
        for (i, (a0, a1, want)) in cases.iter().enumerate() {
            let want = if *want == Ok(-2) { ppid } else { *want };
            if sys(libc::SYS_getppid, *a0, *a1) != want {
                return 10 + i as c_int;
            }
        }
        0
    });
    assert_eq!(out, Outcome::Exited(0));
}

#[test]
fn x32_and_i386_are_bad_arch_unless_listed() {
    let p = prog(Action::Allow, vec![]);
    let out = run_child(&p, |_| {
        let _ = sys(0x4000_0000 + 39, 0, 0);
        3
    });
    assert_eq!(out, Outcome::Signaled(libc::SIGSYS));

    let p = compile(&Policy {
        default_action: Action::Allow,
        architectures: vec![Arch::X86_64, Arch::X32],
        rules: vec![rule(&["getpid"], Action::Errno(7), vec![])],
        flags: vec![],
    })
    .unwrap();
    let out = run_child(&p, |_| {
        if sys(0x4000_0000 + 39, 0, 0) != Err(7) {
            return 1;
        }
        if sys(libc::SYS_getpid, 0, 0) != Err(7) {
            return 2;
        }
        0
    });
    assert_eq!(out, Outcome::Exited(0));
}

#[test]
fn notify_listener_answers_and_close_gives_enosys() {
    let p = prog(
        Action::Allow,
        vec![rule(&["getppid"], Action::Notify, vec![])],
    );
    assert!(p.needs_listener());
    // Closing the listener: the notified syscall fails with ENOSYS.
    let out = run_child(&p, |fd| {
        if fd <= 2 {
            return 1;
        }
        // SAFETY: the listener fd is this child's own and nothing else uses it.
        unsafe { libc::close(fd) };
        if sys(libc::SYS_getppid, 0, 0) != Err(libc::ENOSYS) {
            return 2;
        }
        0
    });
    assert_eq!(out, Outcome::Exited(0));
    // The child supervises a grandchild that inherited the filter.
    // SAFETY: the closure runs in the forked child, single-threaded; it only makes
    // syscalls on its own fds and memory.
    let out = run_child(&p, |fd| unsafe {
        if fd <= 2 {
            return 1;
        }
        let gc = libc::syscall(
            libc::SYS_clone,
            libc::SIGCHLD as c_long,
            0 as c_long,
            0 as c_long,
            0 as c_long,
            0 as c_long,
        );
        if gc == 0 {
            libc::close(fd);
            let r = libc::syscall(libc::SYS_getppid);
            libc::_exit(if r == 4242 { 0 } else { 1 });
        }
        if gc < 0 {
            return 2;
        }
        let mut req: libc::seccomp_notif = std::mem::zeroed();
        if libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req) != 0 {
            return 3;
        }
        if req.data.nr as c_long != libc::SYS_getppid || req.pid as c_long != gc {
            return 4;
        }
        let mut resp: libc::seccomp_notif_resp = std::mem::zeroed();
        resp.id = req.id;
        resp.val = 4242;
        if libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp) != 0 {
            return 5;
        }
        let mut st = 0;
        if libc::waitpid(gc as c_int, &mut st, 0) != gc as c_int {
            return 6;
        }
        if !libc::WIFEXITED(st) || libc::WEXITSTATUS(st) != 0 {
            return 7;
        }
        0
    });
    assert_eq!(out, Outcome::Exited(0));
}

#[test]
fn allow_every_x86_64_syscall() {
    let names: Vec<&str> = Arch::X86_64.syscall_names().collect();
    assert!(names.len() >= 370);
    let p = prog(Action::Errno(1), vec![rule(&names, Action::Allow, vec![])]);
    // Same list, each with an argument rule: large program with trampolines.
    let with_args: Vec<Rule> = names
        .iter()
        .map(|n| rule(&[n], Action::Allow, vec![cmp(5, Op::Ne, 0xdead, 0)]))
        .collect();
    let p2 = prog(Action::Errno(1), with_args);
    assert!(p2.len() > 2000);
    for p in [&p, &p2] {
        let out = run_child(p, |_| {
            if sys(libc::SYS_getpid, 0, 0).is_err() {
                return 1;
            }
            if sys(libc::SYS_read, u64::MAX, 0) != Err(libc::EBADF) {
                return 2;
            }
            if sys(libc::SYS_close, u64::MAX, 0) != Err(libc::EBADF) {
                return 3;
            }
            // set_mempolicy_home_node (450): EINVAL/ENOSYS from the kernel, not EPERM
            if sys(450, 0, 0) == Err(libc::EPERM) {
                return 4;
            }
            // An unused number inside the table (x86_64 has none from 335 to 423) hits
            // the default action; one above the newest named syscall gets ENOSYS.
            if sys(400, 0, 0) != Err(libc::EPERM) {
                return 5;
            }
            if sys(1000, 0, 0) != Err(libc::ENOSYS) {
                return 6;
            }
            0
        });
        assert_eq!(out, Outcome::Exited(0));
    }
}

#[test]
fn cached_program_installs() {
    let p = prog(
        Action::Allow,
        vec![rule(&["getppid"], Action::Errno(33), vec![])],
    );
    let back = Program::from_bytes(&p.to_bytes()).unwrap();
    let out = run_child(&back, |_| {
        if sys(libc::SYS_getppid, 0, 0) == Err(33) {
            0
        } else {
            1
        }
    });
    assert_eq!(out, Outcome::Exited(0));
}

/// `install` (the allocating-free safe wrapper) in a child, returning the listener.
#[test]
fn install_returns_listener() {
    let p = prog(
        Action::Allow,
        vec![rule(&["getppid"], Action::Notify, vec![])],
    );
    let plain = prog(Action::Allow, vec![]);
    // SAFETY: the child makes raw syscalls only (install does not allocate on success).
    unsafe {
        let pid = libc::fork();
        if pid == 0 {
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
            let code = match install(&p) {
                Ok(Some(fd)) if std::os::fd::AsRawFd::as_raw_fd(&fd) > 2 => match install(&plain) {
                    Ok(None) => 0,
                    _ => 2,
                },
                _ => 1,
            };
            libc::_exit(code);
        }
        let mut st = 0;
        libc::waitpid(pid, &mut st, 0);
        assert!(
            libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0,
            "status {st:#x}"
        );
    }
}

/// i386 `int 0x80` from a 64-bit process reports AUDIT_ARCH_I386.
#[cfg(target_arch = "x86_64")]
#[test]
fn i386_abi_via_int80() {
    fn int80_getpid() -> i64 {
        let mut rax: i64 = 20; // __NR_getpid on i386
                               // SAFETY: getpid has no arguments and no side effects.
        unsafe {
            std::arch::asm!("int 0x80", inout("rax") rax, lateout("r8") _, lateout("r9") _,
                lateout("r10") _, lateout("r11") _, options(nostack));
        }
        rax
    }
    // Without a filter: is the ia32 ABI available at all?
    let none = prog(Action::Allow, vec![]);
    let probe = compile(&Policy {
        default_action: Action::Allow,
        architectures: vec![Arch::X86_64, Arch::X86],
        rules: vec![],
        flags: vec![],
    })
    .unwrap();
    assert_eq!(
        run_child(&probe, |_| if int80_getpid() > 0 { 0 } else { 1 }),
        Outcome::Exited(0),
        "this test needs ia32 emulation (CONFIG_IA32_EMULATION, not disabled by ia32_emulation=0), \
         which these machines have"
    );
    let out = run_child(&none, |_| {
        int80_getpid();
        3
    });
    assert_eq!(out, Outcome::Signaled(libc::SIGSYS));
    let p = compile(&Policy {
        default_action: Action::Allow,
        architectures: vec![Arch::X86_64, Arch::X86],
        rules: vec![rule(&["getpid"], Action::Errno(9), vec![])],
        flags: vec![],
    })
    .unwrap();
    let out = run_child(&p, |_| if int80_getpid() == -9 { 0 } else { 1 });
    assert_eq!(out, Outcome::Exited(0));
}

// ---------------------------------------------------------------------------
// A threaded C program under a profile older than clone3

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Builds `fixtures/threaded.c` with `cc -static -pthread` into a fresh directory.
fn build_threaded(tag: &str) -> (TempDir, PathBuf) {
    let dir = std::env::temp_dir().join(format!("seccomp-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let dir = TempDir(dir);
    let exe = dir.0.join("threaded");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/threaded.c");
    let out = std::process::Command::new("cc")
        .args(["-static", "-pthread", "-O1", "-o"])
        .arg(&exe)
        .arg(&src)
        .output()
        .expect("running cc (gcc and libc6-dev are needed)");
    assert!(
        out.status.success(),
        "cc -static -pthread {}: {}",
        src.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    (dir, exe)
}

/// Syscalls of the static threaded program and its C library's fallbacks, written as a
/// profile from before Linux 4.11 would: no statx, rseq, clone3, close_range, openat2,
/// faccessat2, pidfd_*.
const OLD_ALLOW_LIST: &[&str] = &[
    "arch_prctl",
    "brk",
    "clone",
    "close",
    "execve",
    "exit",
    "exit_group",
    "faccessat",
    "fstat",
    "futex",
    "getdents64",
    "getpid",
    "getrandom",
    "gettid",
    "ioctl",
    "lseek",
    "madvise",
    "mmap",
    "mprotect",
    "munmap",
    "newfstatat",
    "openat",
    "prlimit64",
    "read",
    "readlink",
    "rt_sigaction",
    "rt_sigprocmask",
    "sched_yield",
    "set_robust_list",
    "set_tid_address",
    "tgkill",
    "uname",
    "write",
];

/// Runs `exe` (no arguments, empty environment) in a child under `prog`.
fn run_exe(prog: &Program, exe: &Path) -> Outcome {
    let path = CString::new(exe.as_os_str().as_bytes()).unwrap();
    let argv = [path.as_ptr(), std::ptr::null()];
    let envp: [*const libc::c_char; 1] = [std::ptr::null()];
    run_child(prog, |_| {
        // SAFETY: NUL-terminated argv/envp built before the fork.
        unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
        127
    })
}

/// pthread_create (clone3), faccessat(AT_EACCESS) (faccessat2), statx and closefrom
/// (close_range) work under an errno-by-default allow list that predates them: the filter
/// answers ENOSYS for syscalls newer than the profile and glibc falls back. The control
/// run names clone3 with EPERM, which is what every newer syscall got before: then
/// pthread_create fails (exit 10).
#[test]
fn threaded_program_under_a_profile_older_than_clone3() {
    let (_dir, exe) = build_threaded("threaded");
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
        assert!(!OLD_ALLOW_LIST.contains(&newer), "{newer}");
    }
    let allow = rule(OLD_ALLOW_LIST, Action::Allow, vec![]);
    let p = prog(Action::Errno(1), vec![allow.clone()]);
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    assert_eq!(run_exe(&p, &exe), Outcome::Exited(0));

    let p = prog(
        Action::Errno(1),
        vec![allow, rule(&["clone3"], Action::Errno(1), vec![])],
    );
    assert_eq!(run_exe(&p, &exe), Outcome::Exited(10));
}

// ---------------------------------------------------------------------------
// The profiles engines send (fixtures/engines, see its README)

/// The engine fixtures, by file stem.
fn engine_fixtures() -> Vec<(String, serde_json::Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/engines");
    let mut out: Vec<(String, serde_json::Value)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.file_stem().unwrap().to_string_lossy().into_owned(), v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// An OCI `linux.seccomp` object as a policy (the runtime's conversion, restated).
fn oci_policy(v: &serde_json::Value) -> Policy {
    let errno = |v: &serde_json::Value| v.as_u64().map(|e| e as u32);
    let strs = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    };
    Policy {
        default_action: Action::parse(
            v["defaultAction"].as_str().unwrap(),
            errno(&v["defaultErrnoRet"]),
        )
        .unwrap(),
        architectures: strs(&v["architectures"])
            .iter()
            .map(|a| a.parse().unwrap())
            .collect(),
        rules: v["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| Rule {
                names: strs(&s["names"]),
                action: Action::parse(s["action"].as_str().unwrap(), errno(&s["errnoRet"]))
                    .unwrap(),
                args: s["args"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|c| ArgCmp {
                                index: c["index"].as_u64().unwrap() as u32,
                                value: c["value"].as_u64().unwrap(),
                                value_two: c["valueTwo"].as_u64().unwrap_or(0),
                                op: c["op"].as_str().unwrap().parse().unwrap(),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect(),
        flags: vec![],
    }
}

/// Every engine profile compiles, answers the syscalls glibc probes with ENOSYS or allows
/// them, and runs the static threaded program and the host's shell in the kernel.
#[test]
fn engine_profiles_compile_and_run() {
    let (_dir, exe) = build_threaded("engines");
    let fixtures = engine_fixtures();
    let names: Vec<&str> = fixtures.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "containerd-1.6",
            "containerd-2.0",
            "docker-20.10",
            "docker-28",
            "oci-runtime-tool",
            "oci-runtime-tool-0.9.0",
            "podman"
        ]
    );
    let enosys = seccomp::RET_ERRNO | libc::ENOSYS as u32;
    for (name, v) in &fixtures {
        let policy = oci_policy(v);
        let p = compile(&policy).unwrap_or_else(|e| panic!("{name}: {e}"));
        for w in &p.warnings {
            println!("{name}: {w}");
        }
        // What glibc tries first is allowed or ENOSYS, never the default errno or a kill.
        for probe in ["clone3", "faccessat2", "close_range", "statx", "openat2"] {
            let nr = Arch::X86_64.syscall_number(probe).unwrap();
            let got = p.evaluate(seccomp::AUDIT_ARCH_X86_64, nr, &[0; 6]);
            assert!(
                got == seccomp::RET_ALLOW || got == enosys,
                "{name}: {probe} gets {got:#x}"
            );
        }
        assert_eq!(run_exe(&p, &exe), Outcome::Exited(0), "{name}: threaded");
        let sh = CString::new("/bin/sh").unwrap();
        let script = CString::new("cd /tmp && test -d . && echo ok >/dev/null").unwrap();
        let c = CString::new("-c").unwrap();
        let argv = [sh.as_ptr(), c.as_ptr(), script.as_ptr(), std::ptr::null()];
        let envp: [*const libc::c_char; 1] = [std::ptr::null()];
        let out = run_child(&p, |_| {
            // SAFETY: NUL-terminated argv/envp built before the fork.
            unsafe { libc::execve(sh.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
            127
        });
        assert_eq!(out, Outcome::Exited(0), "{name}: sh");
    }
}

//! A minimal binary that links the child code (`ns::spawn` → `child::run`), built in release
//! mode by `ns/tests/child_code.rs`, which disassembles it and checks that nothing reachable
//! from the child allocates or panics.
//!
//! It also holds deliberately bad "child" functions (`bad_child_*`: one allocates, one indexes
//! out of bounds, one overflows, one calls through a pointer): the test runs the same analysis
//! on them and asserts it flags each, so the check is known to be able to fail.
//!
//! Run it by hand: `cargo run --release -p corral-ns --example child_check -- /bin/true`
//! spawns the program with no namespaces (the child's whole path, no rootfs).

use std::ffi::CString;

use ns::{CStringArray, Plan, Process};

/// Allocates (a `Vec`): the analysis must find `__rust_alloc`/`alloc::` under it.
#[inline(never)]
pub fn bad_child_alloc(n: usize) -> usize {
    let v: Vec<u8> = vec![7; n];
    std::hint::black_box(&v).len()
}

/// Indexes a slice with an unchecked index: the analysis must find a bounds-check panic.
#[inline(never)]
pub fn bad_child_index(v: &[u8], i: usize) -> u8 {
    v[i]
}

/// Adds without a check: with overflow checks on (as the test builds it), this can panic.
#[inline(never)]
pub fn bad_child_overflow(a: u32, b: u32) -> u32 {
    a + b
}

/// Calls through a function pointer: the analysis cannot know where it goes.
#[inline(never)]
pub fn bad_child_indirect(f: fn(usize) -> usize, n: usize) -> usize {
    std::hint::black_box(f)(n)
}

fn plan(argv: &[String]) -> Plan {
    let cands = vec![CString::new(argv[0].as_str()).expect("no NUL in argv[0]")];
    Plan {
        new_ns: Vec::new(),
        join_ns: Vec::new(),
        uid_map: Vec::new(),
        gid_map: Vec::new(),
        deny_setgroups: true,
        cgroup_fd: None,
        cgroup_tasks: Vec::new(),
        rootfs: None,
        hostname: None,
        domainname: None,
        sysctls: Vec::new(),
        time_offsets: None,
        oom_score_adj: None,
        process: Process {
            argv: CStringArray::new("args", argv.iter().map(String::as_str)).expect("args"),
            envp: CStringArray::new("env", ["PATH=/usr/bin:/bin"]).expect("env"),
            exec_candidates: cands,
            cwd: CString::new("/").expect("cwd"),
            uid: nix::unistd::getuid().as_raw(),
            gid: nix::unistd::getgid().as_raw(),
            additional_gids: Vec::new(),
            umask: 0o022,
            rlimits: Vec::new(),
            no_new_privs: false,
            caps: None,
            preserve_fds: 0,
            setsid: false,
            terminal: false,
            personality: None,
            sched: None,
            ioprio: None,
            mempolicy: None,
            stdio: [-1, -1, -1],
            exec_labels: Vec::new(),
            affinity_initial: None,
            affinity_final: None,
        },
        gate: None,
        close_fds: Vec::new(),
        seccomp: None,
        hook_pause: false,
        keyring: None,
        attr_root: None,
        start_hooks: Vec::new(),
        late_exec: false,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Keep the bad functions in the binary (their results depend on the input).
    if args.first().map(String::as_str) == Some("--bad") {
        let n = args.len();
        println!("{}", bad_child_alloc(n));
        println!("{}", bad_child_index(b"abc", n));
        println!("{}", bad_child_overflow(u32::MAX - 3, n as u32));
        println!("{}", bad_child_indirect(|x| x * 2, n));
        return;
    }
    if args.is_empty() {
        eprintln!("usage: child_check PROGRAM [ARGS...] | --bad");
        std::process::exit(2);
    }
    let mut spawning = match ns::spawn(plan(&args)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("spawn: {e}");
            std::process::exit(1);
        }
    };
    let spawned = spawning.go().and_then(|()| spawning.start());
    let spawned = spawned.unwrap_or_else(|e| {
        eprintln!("spawn: {e}");
        std::process::exit(1);
    });
    let mut status = 0;
    // SAFETY: reaping our own child.
    unsafe { libc::waitpid(spawned.pid, &mut status, 0) };
    println!("exit status {}", libc::WEXITSTATUS(status));
}

//! The eBPF device filter against the real kernel: each test makes its own
//! cgroup2 directory, installs rules with `cgroup::devices_bpf::apply`, then
//! forks a child that moves itself into that cgroup, tries device opens and
//! mknods, and reports the errno of each through a pipe.
//!
//! Needs root and a cgroup2 mount (`/sys/fs/cgroup/unified` on a hybrid
//! host, `/sys/fs/cgroup` on a pure v2 one); fails loudly otherwise.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use cgroup::devices_bpf::{self, Insn};
use cgroup::{DeviceRule, Error};

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root (it loads eBPF programs and creates cgroups)"
    );
}

/// The cgroup2 mount point.
fn cgroup2_root() -> PathBuf {
    let mounts = std::fs::read_to_string("/proc/self/mounts").expect("read /proc/self/mounts");
    for line in mounts.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() > 2 && f[2] == "cgroup2" {
            return PathBuf::from(f[1]);
        }
    }
    panic!("this test needs a cgroup2 mount (none in /proc/self/mounts)");
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A fresh cgroup2 directory, removed on drop (its processes have all
/// exited by then: every probe child is reaped before `probe` returns).
struct TestCgroup {
    path: PathBuf,
}

impl TestCgroup {
    fn new(tag: &str) -> Self {
        require_root();
        let path = cgroup2_root().join(format!(
            "corral-t-bpfdev-{}-{}-{tag}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        TestCgroup { path }
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        // A just-reaped child may keep the cgroup busy for a moment.
        for _ in 0..50 {
            match std::fs::remove_dir(&self.path) {
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(e) => {
                    eprintln!("rmdir {}: {e}", self.path.display());
                    return;
                }
                Ok(()) => return,
            }
        }
        eprintln!("rmdir {}: still busy", self.path.display());
    }
}

fn rule(
    allow: bool,
    kind: char,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> DeviceRule {
    DeviceRule {
        allow,
        kind,
        major,
        minor,
        access: access.into(),
    }
}

/// What the child tries.
#[derive(Clone, Copy, Debug)]
enum Try {
    /// open(path, flags).
    Open(&'static str, i32),
    /// open(<tempdir>/<n>, flags) of a node (block when `.0`) made by the
    /// parent: devices the host may not have.
    OpenNode(bool, u32, u32, i32),
    /// mknod(<tempdir>/<n>, S_IFCHR | 0600, major:minor), then unlink.
    MknodChar(u32, u32),
    /// mknod(<tempdir>/<n>, S_IFBLK | 0600, major:minor), then unlink.
    MknodBlock(u32, u32),
}

const NULL_RW: Try = Try::Open("/dev/null", libc::O_RDWR);
const NULL_R: Try = Try::Open("/dev/null", libc::O_RDONLY);
const NULL_W: Try = Try::Open("/dev/null", libc::O_WRONLY);
const ZERO_R: Try = Try::Open("/dev/zero", libc::O_RDONLY);
const FULL_R: Try = Try::Open("/dev/full", libc::O_RDONLY);
const MKNOD_NULL: Try = Try::MknodChar(1, 3);
const MKNOD_ZERO: Try = Try::MknodChar(1, 5);
const MKNOD_SDA: Try = Try::MknodBlock(8, 0);
const OPEN_SDA: Try = Try::OpenNode(true, 8, 0, libc::O_RDONLY);
const OPEN_MEM: Try = Try::OpenNode(false, 1, 1, libc::O_RDONLY);
const ALL: [Try; 10] = [
    NULL_RW, NULL_R, NULL_W, ZERO_R, FULL_R, MKNOD_NULL, MKNOD_ZERO, MKNOD_SDA, OPEN_SDA, OPEN_MEM,
];

/// What a try must give.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Want {
    /// Succeeds.
    Ok,
    /// EPERM (the device cgroup said no).
    Denied,
    /// Anything but EPERM (opening a node of a device the host lacks fails
    /// with ENXIO or ENODEV, but the filter let it through).
    NotDenied,
}

/// Runs `tries` in a child moved into `cg`; the errno of each (0 = success).
fn probe(cg: &TestCgroup, tries: &[Try]) -> Vec<i32> {
    let tmp = tempfile::tempdir().expect("tempdir");
    let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).unwrap();

    // Everything the child needs is prepared here: after fork (in a
    // multi-threaded process) it only makes raw system calls.
    let procs = c(&cg.path.join("cgroup.procs"));
    let prepared: Vec<(Try, CString)> = tries
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let path = match t {
                Try::Open(p, _) => CString::new(*p).unwrap(),
                Try::OpenNode(block, ma, mi, _) => {
                    let p = tmp.path().join(format!("n{i}"));
                    let cp = c(&p);
                    let kind = if *block { libc::S_IFBLK } else { libc::S_IFCHR };
                    // SAFETY: a valid NUL-terminated path; we are root and
                    // not in `cg`.
                    let r =
                        unsafe { libc::mknod(cp.as_ptr(), kind | 0o600, libc::makedev(*ma, *mi)) };
                    let e = std::io::Error::last_os_error();
                    assert_eq!(r, 0, "parent mknod {}: {e}", p.display());
                    cp
                }
                Try::MknodChar(..) | Try::MknodBlock(..) => c(&tmp.path().join(format!("n{i}"))),
            };
            (*t, path)
        })
        .collect();
    let mut results = vec![-1i32; tries.len()];
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for two descriptors.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    let (rd, wr) = (fds[0], fds[1]);

    // SAFETY: the child only calls async-signal-safe functions (open,
    // write, close, mknod, unlink, _exit) on memory prepared before the
    // fork, and never returns.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: see above; every pointer is to memory owned by this
        // (copied) address space and outlives the calls.
        unsafe {
            libc::close(rd);
            let errno = || *libc::__errno_location();
            let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                libc::_exit(100);
            }
            libc::close(fd);
            for (slot, (t, path)) in results.iter_mut().zip(&prepared) {
                *slot = match *t {
                    Try::Open(_, flags) | Try::OpenNode(.., flags) => {
                        let fd = libc::open(path.as_ptr(), flags | libc::O_CLOEXEC);
                        if fd < 0 {
                            errno()
                        } else {
                            libc::close(fd);
                            0
                        }
                    }
                    Try::MknodChar(ma, mi) | Try::MknodBlock(ma, mi) => {
                        let kind = if matches!(*t, Try::MknodChar(..)) {
                            libc::S_IFCHR
                        } else {
                            libc::S_IFBLK
                        };
                        if libc::mknod(path.as_ptr(), kind | 0o600, libc::makedev(ma, mi)) < 0 {
                            errno()
                        } else {
                            libc::unlink(path.as_ptr());
                            0
                        }
                    }
                };
            }
            let bytes = results.len() * 4;
            let n = libc::write(wr, results.as_ptr().cast(), bytes);
            libc::_exit(if n == bytes as isize { 0 } else { 101 });
        }
    }

    // SAFETY: closing our copy of the write end, which we own.
    unsafe { libc::close(wr) };
    let mut buf = vec![0u8; tries.len() * 4];
    let mut got = 0;
    while got < buf.len() {
        // SAFETY: reading into the unfilled tail of `buf`.
        let n = unsafe { libc::read(rd, buf[got..].as_mut_ptr().cast(), buf.len() - got) };
        if n <= 0 {
            break;
        }
        got += n as usize;
    }
    // SAFETY: closing the read end, which we own.
    unsafe { libc::close(rd) };
    let mut status = 0;
    // SAFETY: reaping our own child.
    let w = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(w, pid, "waitpid: {}", std::io::Error::last_os_error());
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "probe child failed (status {status:#x}; exit 100 = could not join {})",
        cg.path.display()
    );
    assert_eq!(got, buf.len(), "short report from the probe child");
    buf.chunks(4)
        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// Probes and checks every `(try, want)`, reporting all of them on failure.
fn expect(cg: &TestCgroup, cases: &[(Try, Want)]) {
    let tries: Vec<Try> = cases.iter().map(|c| c.0).collect();
    let got = probe(cg, &tries);
    let bad: Vec<String> = cases
        .iter()
        .zip(&got)
        .filter(|((_, want), &errno)| match want {
            Want::Ok => errno != 0,
            Want::Denied => errno != libc::EPERM,
            Want::NotDenied => errno == libc::EPERM,
        })
        .map(|((t, want), &errno)| {
            format!(
                "{t:?}: wanted {want:?}, got {}",
                std::io::Error::from_raw_os_error(errno)
            )
        })
        .collect();
    assert!(
        bad.is_empty(),
        "in {}:\n{}",
        cg.path.display(),
        bad.join("\n")
    );
}

fn ours(cg: &TestCgroup) -> Vec<devices_bpf::AttachedProgram> {
    devices_bpf::attached(&cg.path).expect("query")
}

#[test]
fn deny_all_allow_null() {
    let cg = TestCgroup::new("null");
    let rules = [
        rule(false, 'a', None, None, "rwm"),
        rule(true, 'c', Some(1), Some(3), "rwm"),
    ];
    devices_bpf::apply(&cg.path, &rules).expect("apply");
    expect(
        &cg,
        &[
            (NULL_RW, Want::Ok),
            (NULL_R, Want::Ok),
            (NULL_W, Want::Ok),
            (MKNOD_NULL, Want::Ok),
            (ZERO_R, Want::Denied),
            (FULL_R, Want::Denied),
            (MKNOD_ZERO, Want::Denied),
            (MKNOD_SDA, Want::Denied),
            (OPEN_SDA, Want::Denied),
            (OPEN_MEM, Want::Denied),
        ],
    );
    let attached = ours(&cg);
    assert_eq!(attached.len(), 1, "{attached:?}");
    assert!(attached[0].is_ours(), "{attached:?}");
    assert_eq!(attached[0].name, devices_bpf::PROG_NAME);
}

#[test]
fn read_only_allow() {
    let cg = TestCgroup::new("ro");
    let rules = [
        rule(false, 'a', None, None, "rwm"),
        rule(true, 'c', Some(1), Some(3), "r"),
    ];
    devices_bpf::apply(&cg.path, &rules).expect("apply");
    expect(
        &cg,
        &[
            (NULL_RW, Want::Denied),
            (NULL_R, Want::Ok),
            (NULL_W, Want::Denied),
            (MKNOD_NULL, Want::Denied),
            (ZERO_R, Want::Denied),
        ],
    );
}

#[test]
fn allow_all_deny_null_write() {
    let cg = TestCgroup::new("denyw");
    let rules = [
        rule(true, 'a', None, None, "rwm"),
        rule(false, 'c', Some(1), Some(3), "w"),
    ];
    devices_bpf::apply(&cg.path, &rules).expect("apply");
    expect(
        &cg,
        &[
            (NULL_R, Want::Ok),
            (NULL_RW, Want::Denied),
            (NULL_W, Want::Denied),
            (MKNOD_NULL, Want::Ok),
            (ZERO_R, Want::Ok),
            (FULL_R, Want::Ok),
            (MKNOD_SDA, Want::Ok),
            (OPEN_SDA, Want::NotDenied),
            (OPEN_MEM, Want::NotDenied),
        ],
    );
}

#[test]
fn empty_rules_deny_everything() {
    let cg = TestCgroup::new("empty");
    devices_bpf::apply(&cg.path, &[]).expect("apply");
    let cases: Vec<(Try, Want)> = ALL.iter().map(|&t| (t, Want::Denied)).collect();
    expect(&cg, &cases);
    assert_eq!(ours(&cg).len(), 1);
}

/// A list without a deny-all rule allows only what it names (issue 16: such a list used to
/// leave every other device open).
#[test]
fn no_deny_all_rule_denies_the_rest() {
    let cg = TestCgroup::new("nodeny");
    devices_bpf::apply(&cg.path, &[rule(true, 'c', Some(1), Some(3), "rwm")]).expect("apply");
    expect(
        &cg,
        &[
            (NULL_RW, Want::Ok),
            (ZERO_R, Want::Denied),
            (MKNOD_SDA, Want::Denied),
            (OPEN_SDA, Want::Denied),
            (OPEN_MEM, Want::Denied),
        ],
    );
}

/// runc's default list (as corral's runtime builds it) after a deny-all.
#[test]
fn runtime_default_rules() {
    let cg = TestCgroup::new("defaults");
    let mut rules = vec![rule(false, 'a', None, None, "rwm")];
    rules.extend([
        rule(true, 'c', None, None, "m"),
        rule(true, 'b', None, None, "m"),
        rule(true, 'c', Some(1), Some(3), "rwm"),
        rule(true, 'c', Some(1), Some(5), "rwm"),
        rule(true, 'c', Some(1), Some(7), "rwm"),
        rule(true, 'c', Some(1), Some(8), "rwm"),
        rule(true, 'c', Some(1), Some(9), "rwm"),
        rule(true, 'c', Some(5), Some(0), "rwm"),
        rule(true, 'c', Some(5), Some(1), "rwm"),
        rule(true, 'c', Some(5), Some(2), "rwm"),
        rule(true, 'c', Some(136), None, "rwm"),
        rule(true, 'c', Some(10), Some(200), "rwm"),
    ]);
    devices_bpf::apply(&cg.path, &rules).expect("apply");
    expect(
        &cg,
        &[
            (NULL_RW, Want::Ok),
            (ZERO_R, Want::Ok),
            (FULL_R, Want::Ok),
            (MKNOD_NULL, Want::Ok),
            (MKNOD_SDA, Want::Ok),
            (Try::MknodChar(4, 1), Want::Ok),
            (OPEN_MEM, Want::Denied),
            (OPEN_SDA, Want::Denied),
            (Try::OpenNode(false, 136, 0, libc::O_RDWR), Want::NotDenied),
        ],
    );
}

/// A second `apply` replaces the first program: exactly one stays attached,
/// and it is the new one. With BPF_F_ALLOW_MULTI both would have to allow,
/// so `/dev/null` opening again proves the old program is gone.
#[test]
fn apply_replaces() {
    let cg = TestCgroup::new("replace");
    let deny_all = rule(false, 'a', None, None, "rwm");
    devices_bpf::apply(
        &cg.path,
        &[deny_all.clone(), rule(true, 'c', Some(1), Some(5), "rwm")],
    )
    .expect("first apply");
    expect(&cg, &[(NULL_RW, Want::Denied), (ZERO_R, Want::Ok)]);
    let first = ours(&cg);
    assert_eq!(first.len(), 1, "{first:?}");

    devices_bpf::apply(
        &cg.path,
        &[deny_all.clone(), rule(true, 'c', Some(1), Some(3), "rwm")],
    )
    .expect("second apply");
    expect(&cg, &[(NULL_RW, Want::Ok), (ZERO_R, Want::Denied)]);
    let second = ours(&cg);
    assert_eq!(second.len(), 1, "{second:?}");
    assert!(second[0].is_ours());
    assert_ne!(second[0].id, first[0].id, "the program was not replaced");

    devices_bpf::apply(&cg.path, &[]).expect("third apply");
    expect(
        &cg,
        &[
            (NULL_RW, Want::Denied),
            (ZERO_R, Want::Denied),
            (FULL_R, Want::Denied),
        ],
    );
    let third = ours(&cg);
    assert_eq!(third.len(), 1, "{third:?}");
    assert_ne!(third[0].id, second[0].id);
}

/// `n` rules of every shape (types, wildcards, allow and deny, all access
/// sets) that match nothing below major/minor 300, between a deny-all plus
/// `allow c 1:5 r` at the start and `allow c 1:3 r` at the end.
fn many_rules(n: usize) -> Vec<DeviceRule> {
    let mut rules = vec![
        rule(false, 'a', None, None, "rwm"),
        rule(true, 'c', Some(1), Some(5), "r"),
    ];
    for i in 0..n - 3 {
        let v = 300 + i as i64;
        // Never both wildcards (that would match 1:3 and 1:5).
        let (major, minor) = match i % 3 {
            0 => (Some(v), None),
            1 => (None, Some(v)),
            _ => (Some(v), Some(v)),
        };
        let kind = ['a', 'b', 'c'][i % 5 % 3];
        let access = ["r", "rw", "m", "rwm", "w", "wm", "rm"][i % 7];
        rules.push(rule(i % 2 == 0, kind, major, minor, access));
    }
    rules.push(rule(true, 'c', Some(1), Some(3), "r"));
    assert_eq!(rules.len(), n);
    rules
}

/// 500 rules (and then 5000) load, pass the verifier and evaluate last to
/// first.
#[test]
fn many_rules_load_and_hold() {
    let cg = TestCgroup::new("many");
    for n in [500, 5000] {
        devices_bpf::apply(&cg.path, &many_rules(n))
            .unwrap_or_else(|e| panic!("apply {n} rules: {e}"));
        expect(
            &cg,
            &[
                (NULL_R, Want::Ok),
                (NULL_RW, Want::Denied),
                (ZERO_R, Want::Ok),
                (Try::Open("/dev/zero", libc::O_RDWR), Want::Denied),
                (FULL_R, Want::Denied),
                (MKNOD_NULL, Want::Denied),
                // The first fillers: allow a 300:* r, deny b *:301 rw,
                // allow c 302:302 m, deny a 303:* rwm, allow b *:304 w.
                (Try::OpenNode(true, 300, 9, libc::O_RDONLY), Want::NotDenied),
                (Try::OpenNode(true, 300, 301, libc::O_RDONLY), Want::Denied),
                (
                    Try::OpenNode(false, 300, 301, libc::O_RDONLY),
                    Want::NotDenied,
                ),
                (Try::MknodChar(302, 302), Want::Ok),
                (Try::MknodChar(303, 0), Want::Denied),
                (
                    Try::OpenNode(true, 303, 304, libc::O_WRONLY),
                    Want::NotDenied,
                ),
                (Try::OpenNode(true, 303, 304, libc::O_RDONLY), Want::Denied),
            ],
        );
        assert_eq!(ours(&cg).len(), 1);
    }
}

/// A program the verifier rejects: the error names the directory, carries
/// the errno and the verifier's log, and the filter in place stays.
#[test]
fn verifier_rejection_keeps_the_old_filter() {
    let cg = TestCgroup::new("reject");
    let rules = [
        rule(false, 'a', None, None, "rwm"),
        rule(true, 'c', Some(1), Some(3), "rwm"),
    ];
    devices_bpf::apply(&cg.path, &rules).expect("apply");
    let before = ours(&cg);

    // `exit` with r0 never set.
    let bad = [Insn {
        code: 0x95,
        regs: 0,
        off: 0,
        imm: 0,
    }];
    let err = devices_bpf::apply_program(&cg.path, &bad).expect_err("a bad program loaded");
    let msg = err.to_string();
    assert!(matches!(err, Error::Bpf { .. }), "{err:?}");
    assert_eq!(err.errno(), Some(libc::EACCES), "{msg}");
    assert!(msg.contains(&cg.path.display().to_string()), "{msg}");
    assert!(msg.contains("verifier log"), "{msg}");
    assert!(msg.contains("R0 !read_ok"), "{msg}");

    assert_eq!(ours(&cg), before);
    expect(&cg, &[(NULL_RW, Want::Ok), (ZERO_R, Want::Denied)]);
}

#[test]
fn errors_name_the_directory() {
    require_root();
    let missing = cgroup2_root().join(format!("corral-t-bpfdev-missing-{}", std::process::id()));
    let err = devices_bpf::apply(&missing, &[]).expect_err("applied to a missing dir");
    assert_eq!(err.errno(), Some(libc::ENOENT), "{err}");
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );

    // A directory that is not a cgroup.
    let tmp = tempfile::tempdir().expect("tempdir");
    let err = devices_bpf::apply(tmp.path(), &[]).expect_err("applied to a plain dir");
    assert!(err.errno().is_some(), "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&tmp.path().display().to_string()), "{msg}");

    // A rule the filter cannot express.
    let err = devices_bpf::apply(tmp.path(), &[rule(true, 'c', Some(-1), None, "rwm")])
        .expect_err("applied a negative major");
    assert!(matches!(err, Error::InvalidDeviceRule { .. }), "{err}");
}

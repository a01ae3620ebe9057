//! corral-probe: a tiny, dependency-free binary copied into test root
//! filesystems as `/probe`. It reports what a container sees (as one JSON
//! object) and can misbehave on demand (exit codes, signals, memory hogging,
//! fork bombs, cpu spinning, signal echoing).
//!
//! It must build with plain `rustc` (no cargo, no crates): only `std` plus a
//! few `extern "C"` libc declarations (std links libc anyway).
//!
//! Usage:
//!   probe [report [PATH...]]   print one JSON object describing the environment
//!   probe exit N               exit with code N
//!   probe kill SIG             kill(getpid(), SIG), then sleep forever
//!   probe sleep SECS|inf       sleep, then exit 0
//!   probe hog MIB              allocate + touch MIB MiB, then exit 0
//!   probe forkbomb N           try to start N children, report, clean up
//!   probe spin SECS            busy loop, report {"cpu_s", "wall_s"}
//!   probe write PATH TEXT      write a file, report {"ok", "error"}
//!   probe echo-signals         print "ready", then each caught signal number
//!   probe race SECS STOPFILE   an attacker inside the container: until STOPFILE exists
//!                              (or SECS pass), watch /proc for processes whose cmdline
//!                              is still a runtime's (`.../corral ...`: a copy being set
//!                              up) and try their /proc/PID/fd entries and /proc/PID/exe;
//!                              report {"seen", "fd_dir", "fd_open", "targets", "exes"}
//!   probe swap A B SECS STOPFILE  an attacker sharing a volume with another container:
//!                              swap the names A and B with renameat2(RENAME_EXCHANGE) in
//!                              a loop until STOPFILE exists (or SECS pass); report
//!                              {"swaps", "errors"}
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read, Write};
use std::os::raw::{c_int, c_long, c_void};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// libc declarations (std already links libc).
// ---------------------------------------------------------------------------

#[repr(C)]
struct Timespec {
    tv_sec: c_long,
    tv_nsec: c_long,
}

extern "C" {
    fn getpid() -> c_int;
    fn getppid() -> c_int;
    fn getpgrp() -> c_int;
    fn getsid(pid: c_int) -> c_int;
    fn isatty(fd: c_int) -> c_int;
    fn kill(pid: c_int, sig: c_int) -> c_int;
    fn clock_gettime(clk: c_int, ts: *mut Timespec) -> c_int;
    fn signal(sig: c_int, handler: usize) -> usize;
    fn pipe(fds: *mut c_int) -> c_int;
    fn write(fd: c_int, buf: *const c_void, n: usize) -> isize;
    fn socket(domain: c_int, ty: c_int, proto: c_int) -> c_int;
    fn ioctl(fd: c_int, req: std::os::raw::c_ulong, ...) -> c_int;
    fn close(fd: c_int) -> c_int;
    fn syscall(n: c_long, ...) -> c_long;
}

#[cfg(target_arch = "x86_64")]
const SYS_KEYCTL: c_long = 250;
#[cfg(target_arch = "aarch64")]
const SYS_KEYCTL: c_long = 219;

const AF_INET: c_int = 2;
const SOCK_DGRAM: c_int = 2;
const SOCK_CLOEXEC: c_int = 0o2000000;
const SIOCGIFFLAGS: std::os::raw::c_ulong = 0x8913;

const CLOCK_MONOTONIC: c_int = 1;
const CLOCK_PROCESS_CPUTIME_ID: c_int = 2;
const CLOCK_BOOTTIME: c_int = 7;
const SIG_ERR: usize = usize::MAX;

// ---------------------------------------------------------------------------
// Minimal JSON value + serializer.
// ---------------------------------------------------------------------------

enum J {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl J {
    fn s(v: impl Into<String>) -> J {
        J::Str(v.into())
    }

    fn opt_s(v: Option<String>) -> J {
        v.map(J::Str).unwrap_or(J::Null)
    }

    fn opt_i(v: Option<i64>) -> J {
        v.map(J::Int).unwrap_or(J::Null)
    }

    fn obj(pairs: Vec<(&str, J)>) -> J {
        J::Obj(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }

    fn render(&self, out: &mut String) {
        match self {
            J::Null => out.push_str("null"),
            J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            J::Int(i) => {
                let _ = write!(out, "{i}");
            }
            J::Float(f) => {
                if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15 {
                    let _ = write!(out, "{f:.1}");
                } else if f.is_finite() {
                    let _ = write!(out, "{f}");
                } else {
                    out.push_str("null");
                }
            }
            J::Str(s) => escape_into(s, out),
            J::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.render(out);
                }
                out.push(']');
            }
            J::Obj(pairs) => {
                out.push('{');
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    escape_into(k, out);
                    out.push(':');
                    v.render(out);
                }
                out.push('}');
            }
        }
    }

    fn to_json(&self) -> String {
        let mut s = String::new();
        self.render(&mut s);
        s
    }
}

fn escape_into(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Print one line on stdout; never panics (EPIPE etc. are ignored).
fn emit(line: &str) {
    let mut out = io::stdout().lock();
    let _ = out.write_all(line.as_bytes());
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}

fn emit_json(v: &J) {
    emit(&v.to_json());
}

fn usage(msg: &str) -> ! {
    let _ = writeln!(
        io::stderr(),
        "corral-probe: {msg}\nusage: probe [report [PATH...] | exit N | kill SIG | sleep SECS|inf | \
         hog MIB | forkbomb N | spin SECS | write PATH TEXT | echo-signals | udp-echo PORT]"
    );
    std::process::exit(2);
}

/// Sends every datagram that reaches UDP `port` (any address) back to its sender, forever
/// (busybox's nc has no UDP): the far end of the network tests' published UDP port.
fn udp_echo(port: u16) -> ! {
    let sock = std::net::UdpSocket::bind(("0.0.0.0", port))
        .unwrap_or_else(|e| usage(&format!("udp-echo: bind port {port}: {e}")));
    let mut buf = [0u8; 2048];
    loop {
        if let Ok((n, from)) = sock.recv_from(&mut buf) {
            let _ = sock.send_to(&buf[..n], from);
        }
    }
}

fn lossy(s: OsString) -> String {
    s.to_string_lossy().into_owned()
}

// ---------------------------------------------------------------------------
// Small readers.
// ---------------------------------------------------------------------------

fn read_string(path: &str) -> Option<String> {
    fs::read(path)
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn read_trimmed(path: &str) -> Option<String> {
    read_string(path).map(|s| s.trim_end_matches('\n').to_string())
}

/// Fields of /proc/self/status as key -> value (value trimmed).
fn status_map() -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    if let Some(s) = read_string("/proc/self/status") {
        for line in s.lines() {
            if let Some((k, v)) = line.split_once(':') {
                m.insert(k.trim().to_string(), v.trim().to_string());
            }
        }
    }
    m
}

fn nth_num(status: &BTreeMap<String, String>, key: &str, n: usize) -> J {
    J::opt_i(
        status
            .get(key)
            .and_then(|v| v.split_whitespace().nth(n))
            .and_then(|x| x.parse().ok()),
    )
}

fn clock(clk: c_int) -> Option<f64> {
    let mut ts = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec.
    let rc = unsafe { clock_gettime(clk, &mut ts) };
    if rc == 0 {
        Some(ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9)
    } else {
        None
    }
}

/// Undo the octal escapes (\040 etc.) used in /proc/self/mountinfo.
fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------------------
// report
// ---------------------------------------------------------------------------

fn id_map(path: &str) -> J {
    match read_string(path) {
        None => J::Null,
        Some(s) => J::Arr(
            s.lines()
                .filter_map(|l| {
                    let v: Vec<i64> = l
                        .split_whitespace()
                        .filter_map(|x| x.parse().ok())
                        .collect();
                    if v.len() == 3 {
                        Some(J::Arr(v.into_iter().map(J::Int).collect()))
                    } else {
                        None
                    }
                })
                .collect(),
        ),
    }
}

fn cgroup_lines() -> J {
    match read_string("/proc/self/cgroup") {
        None => J::Null,
        Some(s) => J::Arr(s.lines().map(J::s).collect()),
    }
}

fn mounts() -> J {
    let Some(s) = read_string("/proc/self/mountinfo") else {
        return J::Null;
    };
    let mut out = Vec::new();
    for line in s.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(sep) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        if fields.len() < 6 || sep + 3 > fields.len() {
            continue;
        }
        let mut options: Vec<String> = Vec::new();
        let super_opts = fields.get(sep + 3).copied().unwrap_or("");
        for o in fields[5].split(',').chain(super_opts.split(',')) {
            if !o.is_empty() && !options.iter().any(|x| x == o) {
                options.push(o.to_string());
            }
        }
        out.push(J::obj(vec![
            ("mount_point", J::s(unescape_octal(fields[4]))),
            ("root", J::s(unescape_octal(fields[3]))),
            ("fstype", J::s(fields[sep + 1])),
            ("source", J::s(unescape_octal(fields[sep + 2]))),
            ("options", J::Arr(options.into_iter().map(J::Str).collect())),
            ("mount_options", J::s(fields[5])),
            ("super_options", J::s(super_opts)),
        ]));
    }
    J::Arr(out)
}

fn proc_pids() -> J {
    let Ok(rd) = fs::read_dir("/proc") else {
        return J::Null;
    };
    let mut pids: Vec<i64> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
        .collect();
    pids.sort_unstable();
    J::Arr(pids.into_iter().map(J::Int).collect())
}

fn rlimit_name(human: &str) -> String {
    let n = match human {
        "Max cpu time" => "RLIMIT_CPU",
        "Max file size" => "RLIMIT_FSIZE",
        "Max data size" => "RLIMIT_DATA",
        "Max stack size" => "RLIMIT_STACK",
        "Max core file size" => "RLIMIT_CORE",
        "Max resident set" => "RLIMIT_RSS",
        "Max processes" => "RLIMIT_NPROC",
        "Max open files" => "RLIMIT_NOFILE",
        "Max locked memory" => "RLIMIT_MEMLOCK",
        "Max address space" => "RLIMIT_AS",
        "Max file locks" => "RLIMIT_LOCKS",
        "Max pending signals" => "RLIMIT_SIGPENDING",
        "Max msgqueue size" => "RLIMIT_MSGQUEUE",
        "Max nice priority" => "RLIMIT_NICE",
        "Max realtime priority" => "RLIMIT_RTPRIO",
        "Max realtime timeout" => "RLIMIT_RTTIME",
        other => return other.to_string(),
    };
    n.to_string()
}

fn parse_limit(s: &str) -> J {
    if s == "unlimited" {
        J::Int(-1)
    } else {
        J::opt_i(s.parse().ok())
    }
}

fn rlimits() -> J {
    let Some(s) = read_string("/proc/self/limits") else {
        return J::Null;
    };
    let mut out = Vec::new();
    for line in s.lines().skip(1) {
        // Columns: name (26 chars), soft (21), hard (21), units.
        if line.len() < 27 || !line.is_char_boundary(26) {
            continue;
        }
        let (name, rest) = line.split_at(26);
        let mut it = rest.split_whitespace();
        let (Some(soft), Some(hard)) = (it.next(), it.next()) else {
            continue;
        };
        out.push((
            rlimit_name(name.trim()),
            J::Arr(vec![parse_limit(soft), parse_limit(hard)]),
        ));
    }
    J::Obj(out)
}

/// Open fds, excluding the one used to read /proc/self/fd itself.
fn fds() -> (J, J) {
    let Ok(rd) = fs::read_dir("/proc/self/fd") else {
        return (J::Null, J::Null);
    };
    let mut list: Vec<(i64, Option<String>)> = Vec::new();
    for e in rd.flatten() {
        let Some(n) = e.file_name().to_str().and_then(|n| n.parse::<i64>().ok()) else {
            continue;
        };
        let target = fs::read_link(e.path())
            .ok()
            .map(|p| p.to_string_lossy().into_owned());
        list.push((n, target));
    }
    // The directory fd of read_dir is gone now; drop any fd that no longer
    // exists (that one), which is exact even when the link target is odd.
    list.retain(|(n, _)| fs::symlink_metadata(format!("/proc/self/fd/{n}")).is_ok());
    list.sort_by_key(|(n, _)| *n);
    let nums = J::Arr(list.iter().map(|(n, _)| J::Int(*n)).collect());
    let links = J::Obj(
        list.into_iter()
            .map(|(n, t)| (n.to_string(), J::opt_s(t)))
            .collect(),
    );
    (nums, links)
}

fn netdevs() -> J {
    let Some(s) = read_string("/proc/net/dev") else {
        return J::Null;
    };
    J::Arr(
        s.lines()
            .skip(2)
            .filter_map(|l| l.split_once(':').map(|(n, _)| J::s(n.trim())))
            .collect(),
    )
}

/// `lo` IFF_UP via ioctl(SIOCGIFFLAGS) in the current network namespace,
/// falling back to /sys/class/net/lo/flags (which reflects the namespace
/// sysfs was mounted in), else null.
fn lo_up() -> J {
    // struct ifreq: 16-byte name + union (flags is a short at offset 16).
    let mut ifr = [0u8; 40];
    ifr[..2].copy_from_slice(b"lo");
    // SAFETY: socket/ioctl/close on a buffer large enough for struct ifreq.
    unsafe {
        let fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if fd >= 0 {
            let rc = ioctl(fd, SIOCGIFFLAGS, ifr.as_mut_ptr() as *mut c_void);
            close(fd);
            if rc == 0 {
                let flags = u16::from_ne_bytes([ifr[16], ifr[17]]);
                return J::Bool(flags & 1 == 1);
            }
        }
    }
    match read_trimmed("/sys/class/net/lo/flags") {
        None => J::Null,
        Some(f) => {
            let f = f.trim();
            let hex = f.strip_prefix("0x").unwrap_or(f);
            match u64::from_str_radix(hex, 16) {
                Ok(v) => J::Bool(v & 1 == 1),
                Err(_) => J::Null,
            }
        }
    }
}

fn file_info(path: &str) -> J {
    let p = Path::new(path);
    let meta = fs::metadata(p).or_else(|_| fs::symlink_metadata(p));
    let exists = meta.is_ok();
    let mut fields: Vec<(&str, J)> = vec![("exists", J::Bool(exists))];
    let is_dir = meta.as_ref().map(|m| m.is_dir()).unwrap_or(false);
    let mut err: Option<io::Error> = meta.err();
    let mut readable = false;
    let mut content = J::Null;
    let mut entries = J::Null;
    if is_dir {
        match fs::read_dir(p) {
            Ok(rd) => {
                readable = true;
                let mut names: Vec<String> = rd
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                entries = J::Arr(names.into_iter().map(J::Str).collect());
            }
            Err(e) => err = Some(e),
        }
    } else if exists {
        match fs::File::open(p) {
            Ok(f) => {
                let mut buf = Vec::new();
                match f.take(4096).read_to_end(&mut buf) {
                    Ok(_) => {
                        readable = true;
                        content = J::s(String::from_utf8_lossy(&buf).into_owned());
                    }
                    Err(e) => err = Some(e),
                }
            }
            Err(e) => err = Some(e),
        }
    }
    fields.push(("readable", J::Bool(readable)));
    fields.push(("is_dir", J::Bool(is_dir)));
    fields.push(("content", content));
    fields.push(("entries", entries));
    match err {
        Some(e) => {
            fields.push(("error", J::s(e.to_string())));
            fields.push(("errno", J::opt_i(e.raw_os_error().map(i64::from))));
        }
        None => {
            fields.push(("error", J::Null));
            fields.push(("errno", J::Null));
        }
    }
    J::obj(fields)
}

/// The session keyring as the kernel describes it: `type;uid;gid;perm;name` (not creating one).
fn session_keyring() -> J {
    const KEYCTL_DESCRIBE: c_long = 6;
    const KEY_SPEC_SESSION_KEYRING: c_long = -3;
    let mut buf = [0u8; 512];
    // SAFETY: keyctl writes at most buf.len() bytes into buf.
    let n = unsafe {
        syscall(
            SYS_KEYCTL,
            KEYCTL_DESCRIBE,
            KEY_SPEC_SESSION_KEYRING,
            buf.as_mut_ptr(),
            buf.len(),
        )
    };
    if n <= 0 {
        return J::Null;
    }
    let n = (n as usize).min(buf.len());
    let s = String::from_utf8_lossy(&buf[..n]);
    J::s(s.trim_end_matches('\0').to_string())
}

fn report(paths: &[String]) -> J {
    let st = status_map();
    let s_str = |k: &str| J::opt_s(st.get(k).cloned());
    let groups = match st.get("Groups") {
        Some(g) => J::Arr(
            g.split_whitespace()
                .filter_map(|x| x.parse().ok())
                .map(J::Int)
                .collect(),
        ),
        None => J::Null,
    };
    let (fd_nums, fd_links) = fds();
    let cwd = match std::env::current_dir() {
        Ok(p) => J::s(p.to_string_lossy().into_owned()),
        Err(_) => J::opt_s(
            fs::read_link("/proc/self/cwd")
                .ok()
                .map(|p| p.to_string_lossy().into_owned()),
        ),
    };
    // SAFETY: these calls take integers only and read or write no memory of ours.
    let (pid, ppid, pgid, sid, tty) =
        unsafe { (getpid(), getppid(), getpgrp(), getsid(0), isatty(0) == 1) };
    let files = J::Obj(paths.iter().map(|p| (p.clone(), file_info(p))).collect());
    J::obj(vec![
        ("pid", J::Int(pid.into())),
        ("ppid", J::Int(ppid.into())),
        ("pgid", J::Int(pgid.into())),
        ("sid", J::Int(sid.into())),
        ("stdin_tty", J::Bool(tty)),
        (
            "hostname",
            J::opt_s(read_trimmed("/proc/sys/kernel/hostname")),
        ),
        (
            "domainname",
            J::opt_s(read_trimmed("/proc/sys/kernel/domainname")),
        ),
        ("uid", nth_num(&st, "Uid", 0)),
        ("euid", nth_num(&st, "Uid", 1)),
        ("gid", nth_num(&st, "Gid", 0)),
        ("egid", nth_num(&st, "Gid", 1)),
        ("groups", groups),
        ("uid_map", id_map("/proc/self/uid_map")),
        ("gid_map", id_map("/proc/self/gid_map")),
        ("cgroup", cgroup_lines()),
        ("mounts", mounts()),
        ("pids", proc_pids()),
        (
            "caps",
            J::obj(vec![
                ("bnd", s_str("CapBnd")),
                ("eff", s_str("CapEff")),
                ("prm", s_str("CapPrm")),
                ("inh", s_str("CapInh")),
                ("amb", s_str("CapAmb")),
            ]),
        ),
        ("no_new_privs", nth_num(&st, "NoNewPrivs", 0)),
        ("cpus_allowed", s_str("Cpus_allowed_list")),
        ("seccomp", nth_num(&st, "Seccomp", 0)),
        ("rlimits", rlimits()),
        ("fds", fd_nums),
        ("fd_links", fd_links),
        ("cwd", cwd),
        ("umask", s_str("Umask")),
        (
            "env",
            J::Arr(
                std::env::vars_os()
                    .map(|(k, v)| J::s(format!("{}={}", lossy(k), lossy(v))))
                    .collect(),
            ),
        ),
        (
            "args",
            J::Arr(std::env::args_os().map(|a| J::s(lossy(a))).collect()),
        ),
        (
            "oom_score_adj",
            J::opt_i(read_trimmed("/proc/self/oom_score_adj").and_then(|s| s.trim().parse().ok())),
        ),
        ("netdevs", netdevs()),
        ("session_keyring", session_keyring()),
        ("lo_up", lo_up()),
        (
            "time",
            J::obj(vec![
                (
                    "boottime_s",
                    clock(CLOCK_BOOTTIME).map(J::Float).unwrap_or(J::Null),
                ),
                (
                    "monotonic_s",
                    clock(CLOCK_MONOTONIC).map(J::Float).unwrap_or(J::Null),
                ),
            ]),
        ),
        ("files", files),
    ])
}

// ---------------------------------------------------------------------------
// misbehaviour modes
// ---------------------------------------------------------------------------

fn sleep_forever() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn parse_signal(s: &str) -> Option<c_int> {
    if let Ok(n) = s.parse() {
        return Some(n);
    }
    let name = s.to_ascii_uppercase();
    let name = name.strip_prefix("SIG").unwrap_or(&name);
    Some(match name {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ABRT" => 6,
        "KILL" => 9,
        "USR1" => 10,
        "SEGV" => 11,
        "USR2" => 12,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        "WINCH" => 28,
        _ => return None,
    })
}

fn hog(mib: usize) {
    const MIB: usize = 1 << 20;
    let mut chunks: Vec<Vec<u8>> = Vec::with_capacity(mib);
    for i in 0..mib {
        let mut chunk: Vec<u8> = Vec::with_capacity(MIB);
        let p = chunk.as_mut_ptr();
        for off in (0..MIB).step_by(4096) {
            // SAFETY: off < capacity; volatile so the touch is not elided.
            unsafe { std::ptr::write_volatile(p.add(off), 1) };
        }
        chunks.push(chunk);
        let _ = writeln!(io::stderr(), "hog: {} MiB", i + 1);
    }
    std::hint::black_box(&chunks);
    let _ = writeln!(io::stderr(), "hog: done");
}

fn forkbomb(n: usize) -> J {
    let mut children = Vec::new();
    let mut error: Option<String> = None;
    for _ in 0..n {
        match Command::new("/proc/self/exe")
            .args(["sleep", "30"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
        {
            Ok(c) => children.push(c),
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
    }
    let started = children.len() as i64;
    for c in children.iter_mut() {
        let _ = c.kill();
    }
    for c in children.iter_mut() {
        let _ = c.wait();
    }
    J::obj(vec![
        ("started", J::Int(started)),
        ("error", J::opt_s(error)),
    ])
}

fn proc_cpu_s() -> Option<f64> {
    let stat = read_string("/proc/self/stat")?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime = field 14, stime = field 15.
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn spin(secs: f64) -> J {
    let start = Instant::now();
    let limit = Duration::from_secs_f64(secs);
    let mut x: u64 = 0;
    while start.elapsed() < limit {
        for _ in 0..10_000 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
    std::hint::black_box(x);
    let wall = start.elapsed().as_secs_f64();
    J::obj(vec![
        ("cpu_s", proc_cpu_s().map(J::Float).unwrap_or(J::Null)),
        ("wall_s", J::Float(wall)),
        (
            "cpu_clock_s",
            clock(CLOCK_PROCESS_CPUTIME_ID)
                .map(J::Float)
                .unwrap_or(J::Null),
        ),
    ])
}

static SIG_PIPE_W: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: c_int) {
    let b = sig as u8;
    let fd = SIG_PIPE_W.load(Ordering::Relaxed);
    // SAFETY: write(2) is async-signal-safe; b lives for the call.
    unsafe {
        write(fd, &b as *const u8 as *const c_void, 1);
    }
}

fn echo_signals() -> ! {
    let mut fds: [c_int; 2] = [-1, -1];
    // SAFETY: fds is a valid array of two ints.
    if unsafe { pipe(fds.as_mut_ptr()) } != 0 {
        let _ = writeln!(io::stderr(), "pipe: {}", io::Error::last_os_error());
        std::process::exit(1);
    }
    SIG_PIPE_W.store(fds[1], Ordering::SeqCst);
    for sig in [2, 15, 1, 3, 10, 12, 28] {
        let handler = on_signal as extern "C" fn(c_int) as usize;
        // SAFETY: on_signal only does async-signal-safe work (an atomic load and a write(2)).
        // glibc's signal() has BSD semantics (SA_RESTART, handler stays installed).
        if unsafe { signal(sig, handler) } == SIG_ERR {
            let _ = writeln!(
                io::stderr(),
                "signal({sig}): {}",
                io::Error::last_os_error()
            );
            std::process::exit(1);
        }
    }
    use std::os::unix::io::FromRawFd;
    // SAFETY: fds[0] is a freshly created pipe read end we own.
    let mut r = unsafe { fs::File::from_raw_fd(fds[0]) };
    emit("ready");
    let mut b = [0u8; 1];
    loop {
        match r.read(&mut b) {
            Ok(1) => {
                emit(&b[0].to_string());
                if b[0] == 15 {
                    std::process::exit(0);
                }
            }
            Ok(_) => std::process::exit(1),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => std::process::exit(1),
        }
    }
}

fn arg<'a>(args: &'a [String], i: usize, what: &str) -> &'a str {
    match args.get(i) {
        Some(a) => a,
        None => usage(&format!("missing argument: {what}")),
    }
}

fn num<T: std::str::FromStr>(s: &str, what: &str) -> T {
    s.parse()
        .unwrap_or_else(|_| usage(&format!("bad {what}: {s:?}")))
}

/// The attacker of the CVE-2019-5736 class: a process in the container that races every
/// process entering it, looking for a copy of the runtime (its cmdline is still the
/// runtime's until it execs) whose fds or executable it can open. It reports what it got:
/// the fd link targets and the (dev, inode) of every executable it opened.
#[cfg(target_arch = "x86_64")]
const SYS_RENAMEAT2: c_long = 316;
#[cfg(target_arch = "aarch64")]
const SYS_RENAMEAT2: c_long = 276;
const AT_FDCWD: c_int = -100;
const RENAME_EXCHANGE: c_int = 2;

/// Swaps the names `a` and `b` (each an existing file, directory or symlink) as fast as it
/// can, until `stop` exists or `secs` pass.
fn swap(a: &str, b: &str, secs: f64, stop: &Path) -> J {
    let end = Instant::now() + Duration::from_secs_f64(secs.max(0.0));
    let (ca, cb) = (format!("{a}\0"), format!("{b}\0"));
    let (mut swaps, mut errors) = (0i64, 0i64);
    while Instant::now() < end {
        for _ in 0..256 {
            // SAFETY: renameat2 with two NUL-terminated paths.
            let r = unsafe {
                syscall(
                    SYS_RENAMEAT2,
                    AT_FDCWD,
                    ca.as_ptr(),
                    AT_FDCWD,
                    cb.as_ptr(),
                    RENAME_EXCHANGE,
                )
            };
            if r == 0 {
                swaps += 1;
            } else {
                errors += 1;
            }
        }
        if stop.exists() {
            break;
        }
    }
    J::obj(vec![("swaps", J::Int(swaps)), ("errors", J::Int(errors))])
}

fn race(secs: f64, stop: &Path) -> J {
    use std::os::unix::fs::MetadataExt;
    let end = Instant::now() + Duration::from_secs_f64(secs.max(0.0));
    let me = std::process::id().to_string();
    let (mut seen, mut fd_dir, mut fd_open) = (0i64, 0i64, 0i64);
    let mut seen_pids: Vec<String> = Vec::new();
    let mut targets: Vec<String> = Vec::new();
    let mut exes: Vec<String> = Vec::new();
    let mut rounds = 0u64;
    while Instant::now() < end {
        rounds += 1;
        if rounds.is_multiple_of(64) && stop.exists() {
            break;
        }
        let Ok(rd) = fs::read_dir("/proc") else {
            break;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.bytes().all(|b| b.is_ascii_digit()) || name == me {
                continue;
            }
            let cmdline = fs::read(format!("/proc/{name}/cmdline")).unwrap_or_default();
            let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
            if !argv0.ends_with(b"corral") {
                continue;
            }
            if !seen_pids.contains(&name) {
                seen_pids.push(name.clone());
                seen += 1;
            }
            if let Ok(fds) = fs::read_dir(format!("/proc/{name}/fd")) {
                fd_dir += 1;
                for fd in fds.flatten() {
                    let p = fd.path();
                    if let Ok(t) = fs::read_link(&p) {
                        let t = t.to_string_lossy().into_owned();
                        if !targets.contains(&t) {
                            targets.push(t);
                        }
                    }
                    if fs::File::open(&p).is_ok() {
                        fd_open += 1;
                    }
                }
            }
            if let Ok(f) = fs::File::open(format!("/proc/{name}/exe")) {
                if let Ok(m) = f.metadata() {
                    let id = format!("{}:{}", m.dev(), m.ino());
                    if !exes.contains(&id) {
                        exes.push(id);
                    }
                }
            }
        }
    }
    J::obj(vec![
        ("seen", J::Int(seen)),
        ("fd_dir", J::Int(fd_dir)),
        ("fd_open", J::Int(fd_open)),
        ("targets", J::Arr(targets.into_iter().map(J::Str).collect())),
        ("exes", J::Arr(exes.into_iter().map(J::Str).collect())),
    ])
}

fn main() {
    let args: Vec<String> = std::env::args_os().map(lossy).collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("report");
    match mode {
        "report" => emit_json(&report(&args[2.min(args.len())..])),
        "exit" => std::process::exit(num(arg(&args, 2, "N"), "exit code")),
        "kill" => {
            let s = arg(&args, 2, "SIG");
            let sig = parse_signal(s).unwrap_or_else(|| usage(&format!("bad signal: {s:?}")));
            let _ = io::stdout().flush();
            // SAFETY: integer arguments only; the signal's default action is what the test wants.
            unsafe {
                kill(getpid(), sig);
            }
            // As PID 1 of a pid namespace the kernel drops signals we send
            // ourselves (no handler installed), so dying by the signal is
            // impossible: exit with the conventional 128+SIG instead.
            // SAFETY: getpid takes no argument and cannot fail.
            if unsafe { getpid() } == 1 {
                std::thread::sleep(Duration::from_millis(50));
                let _ = writeln!(
                    io::stderr(),
                    "corral-probe: pid 1 cannot kill itself; exiting {}",
                    128 + sig
                );
                std::process::exit(128 + sig);
            }
            sleep_forever();
        }
        "sleep" => {
            let s = arg(&args, 2, "SECS");
            if s == "inf" || s == "infinity" {
                sleep_forever();
            }
            let secs: f64 = num(s, "seconds");
            if !(secs >= 0.0 && secs.is_finite()) {
                usage(&format!("bad seconds: {s:?}"));
            }
            std::thread::sleep(Duration::from_secs_f64(secs));
        }
        "hog" => hog(num(arg(&args, 2, "MIB"), "MiB count")),
        "forkbomb" => emit_json(&forkbomb(num(arg(&args, 2, "N"), "count"))),
        "spin" => {
            let secs: f64 = num(arg(&args, 2, "SECS"), "seconds");
            if !(secs >= 0.0 && secs.is_finite()) {
                usage("bad seconds");
            }
            emit_json(&spin(secs));
        }
        "write" => {
            let path = arg(&args, 2, "PATH");
            let text = arg(&args, 3, "TEXT");
            match fs::write(path, text) {
                Ok(()) => emit_json(&J::obj(vec![
                    ("ok", J::Bool(true)),
                    ("error", J::Null),
                    ("errno", J::Null),
                ])),
                Err(e) => {
                    emit_json(&J::obj(vec![
                        ("ok", J::Bool(false)),
                        ("error", J::s(e.to_string())),
                        ("errno", J::opt_i(e.raw_os_error().map(i64::from))),
                    ]));
                    std::process::exit(1);
                }
            }
        }
        "echo-signals" => echo_signals(),
        "udp-echo" => udp_echo(num(arg(&args, 2, "PORT"), "port")),
        "race" => {
            let secs: f64 = num(arg(&args, 2, "SECS"), "seconds");
            emit_json(&race(secs, Path::new(arg(&args, 3, "STOPFILE"))));
        }
        "swap" => {
            let secs: f64 = num(arg(&args, 4, "SECS"), "seconds");
            emit_json(&swap(
                arg(&args, 2, "A"),
                arg(&args, 3, "B"),
                secs,
                Path::new(arg(&args, 5, "STOPFILE")),
            ));
        }
        "-h" | "--help" | "help" => usage("help"),
        other => usage(&format!("unknown mode {other:?}")),
    }
}

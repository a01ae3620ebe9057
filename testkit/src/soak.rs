//! Helpers of the soak, crash and load tests: the cycle count, what this process holds, its
//! children, a parent cgroup whose leftovers are counted exactly, and a seeded generator.

use std::fs;
use std::path::PathBuf;

/// `CORRAL_SOAK_CYCLES`, or `default`.
pub fn cycles(default: usize) -> usize {
    std::env::var("CORRAL_SOAK_CYCLES")
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("CORRAL_SOAK_CYCLES={v:?} is not a number"))
        })
        .unwrap_or(default)
}

/// What this process holds: open fds (the count includes the `read_dir`'s own, every time, so
/// counts compare), threads and resident memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub fds: usize,
    pub threads: u64,
    pub rss_kib: u64,
}

/// A number field of /proc/self/status (`Threads:`, `VmRSS:`).
pub fn status_field(name: &str) -> u64 {
    fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /proc/self/status"))
}

pub fn usage() -> Usage {
    Usage {
        fds: fs::read_dir("/proc/self/fd")
            .map(|d| d.count())
            .unwrap_or(0),
        threads: status_field("Threads:"),
        rss_kib: status_field("VmRSS:"),
    }
}

/// Mount points of this process's mount namespace.
pub fn mount_count() -> usize {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .count()
}

/// Processes whose parent is this process (live or zombie), as `pid (state) pid (comm)`.
pub fn children() -> Vec<String> {
    let me = std::process::id().to_string();
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(stat) = fs::read_to_string(format!("/proc/{name}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
        let Some(end) = stat.rfind(')') else { continue };
        let mut f = stat.get(end + 2..).unwrap_or("").split(' ');
        let state = f.next().unwrap_or("");
        if f.next() == Some(me.as_str()) {
            out.push(format!("{name} ({state}) {}", &stat[..=end]));
        }
    }
    out
}

/// A cgroup made for a soak, in every hierarchy, as the containers' parent: whatever a cycle
/// leaves in it is counted, whatever other tests do meanwhile. Removed on drop.
pub struct ParentCgroup {
    cg: cgroup::Cgroup,
    name: String,
}

impl ParentCgroup {
    pub fn new(name: &str) -> ParentCgroup {
        let h = cgroup::Hierarchy::detect().unwrap();
        let mut cg =
            cgroup::Cgroup::new(&h, &cgroup::CgroupPath::Relative(name.to_string())).unwrap();
        cg.create(&cgroup::Resources::default())
            .unwrap_or_else(|e| panic!("create cgroup {name}: {e}"));
        ParentCgroup {
            cg,
            name: name.to_string(),
        }
    }

    /// Its name (relative to the caller's cgroup), for `linux.cgroupsPath`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The directories in the parent's directories, in every hierarchy.
    pub fn children(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for d in self.cg.dirs() {
            for e in fs::read_dir(&d.dir).unwrap().flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    out.push(e.path());
                }
            }
        }
        out
    }
}

impl Drop for ParentCgroup {
    fn drop(&mut self) {
        if let Err(e) = self.cg.remove() {
            eprintln!("soak: removing cgroup {}: {e}", self.name);
        }
    }
}

/// xorshift64*: a small seeded generator, so that a failing run can be repeated from its seed.
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (0 is replaced: xorshift never leaves 0).
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    /// A seed from the clock, mixed with `salt` (e.g. a worker's number).
    pub fn clock_seed(salt: u64) -> u64 {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        t ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Shuffles `v` in place (Fisher-Yates).
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

//! Differential test: corral's seccomp compiler against libseccomp (the library runc and
//! crun build their filters with).
//!
//! Each policy is compiled twice: by `seccomp::compile`, and by libseccomp fed the way
//! runc's `libcontainer/seccomp` feeds it (see [`Libseccomp::build`]). libseccomp's program
//! is exported with `seccomp_export_bpf`; both programs are then run by the small classic-BPF
//! interpreter below (independent of `Program::evaluate`) on many `seccomp_data` inputs, and
//! every differing return value is a failure.
//!
//! Normalisation (the only one): libseccomp's bad-architecture action is set to
//! `SCMP_ACT_KILL_PROCESS` (its default is `SCMP_ACT_KILL_THREAD`); corral kills the process
//! on an unlisted architecture on purpose (a thread-kill leaves a half-dead container).
//! Return values are otherwise compared bit for bit (`SECCOMP_RET_*` action and data, e.g. the
//! errno), since both encode actions identically. runc prepends its `patchbpf` ENOSYS stub to
//! libseccomp's program; corral's compiler has its own (see `enosys_stub` here for the rule):
//! inputs the stub answers are checked against that rule, the others against libseccomp.
//!
//! Policies: docker's and podman's default profiles (fixtures/, resolved for a default
//! container on amd64 and for one with every capability), the profiles engines send
//! (fixtures/engines/), plus generated ones from a seeded
//! xorshift PRNG (`SECCOMP_DIFF_SEED` overrides the seed, `SECCOMP_DIFF_POLICIES` the count).
//!
//! Inputs: every architecture (and a bogus one), every syscall number a policy names plus
//! random and edge numbers, and arguments at the boundaries of every comparison of the syscall
//! (value-1, value, value+1, high or low half flipped, mask bits, ...).

use std::collections::BTreeSet;
use std::ffi::{c_char, c_int, c_uint, c_void, CString};
use std::io::{Read, Seek};
use std::os::fd::{AsRawFd, FromRawFd};

use seccomp::{Action, Arch, ArgCmp, Op, Policy, Rule};

// ---------------------------------------------------------------------------
// libseccomp (test-only link; the seccomp crate itself never links it)

#[repr(C)]
#[derive(Clone, Copy)]
struct ScmpArgCmp {
    arg: c_uint,
    op: c_int,
    datum_a: u64,
    datum_b: u64,
}

#[link(name = "seccomp")]
extern "C" {
    fn seccomp_init(def_action: u32) -> *mut c_void;
    fn seccomp_release(ctx: *mut c_void);
    fn seccomp_arch_add(ctx: *mut c_void, arch_token: u32) -> c_int;
    fn seccomp_attr_set(ctx: *mut c_void, attr: c_int, value: u32) -> c_int;
    fn seccomp_syscall_resolve_name(name: *const c_char) -> c_int;
    fn seccomp_syscall_resolve_name_arch(arch_token: u32, name: *const c_char) -> c_int;
    fn seccomp_rule_add_array(
        ctx: *mut c_void,
        action: u32,
        syscall: c_int,
        arg_cnt: c_uint,
        arg_array: *const ScmpArgCmp,
    ) -> c_int;
    fn seccomp_export_bpf(ctx: *const c_void, fd: c_int) -> c_int;
}

const SCMP_FLTATR_ACT_BADARCH: c_int = 2;
const SCMP_FLTATR_CTL_NNP: c_int = 3;
const SCMP_ARCH_X32: u32 = 62 | 0x4000_0000;
const NR_SCMP_ERROR: c_int = -1;

fn scmp_arch(a: Arch) -> u32 {
    match a {
        Arch::X32 => SCMP_ARCH_X32,
        a => a.audit_arch(),
    }
}

fn scmp_op(op: Op) -> c_int {
    match op {
        Op::Ne => 1,
        Op::Lt => 2,
        Op::Le => 3,
        Op::Eq => 4,
        Op::Ge => 5,
        Op::Gt => 6,
        Op::MaskedEq => 7,
    }
}

/// What libseccomp made of a policy.
struct Libseccomp {
    prog: Vec<Insn>,
    /// Rules runc would skip (action equal to the default) or that libseccomp refused.
    notes: Vec<String>,
}

impl Libseccomp {
    /// Builds the filter as runc does (libcontainer/seccomp/seccomp_linux.go):
    /// `seccomp_init(default)` (which always covers the native architecture), one
    /// `seccomp_arch_add` per listed architecture, then per rule and syscall name: skip the
    /// rule when its action equals the default action (libseccomp refuses it with `EACCES`),
    /// resolve the name on the native architecture (`seccomp_syscall_resolve_name`, which
    /// yields pseudo numbers for names of other architectures) and skip it when unknown,
    /// then `seccomp_rule_add_array` with all comparisons (runc splits a rule with two
    /// comparisons on one argument into one rule per comparison; generated policies here
    /// never have such rules, see `repeated_argument_index_is_and` for corral's semantics).
    fn build(p: &Policy) -> Result<Libseccomp, String> {
        // SAFETY: plain libseccomp calls on a context we own and release.
        unsafe {
            let ctx = seccomp_init(p.default_action.ret());
            if ctx.is_null() {
                return Err("seccomp_init failed".into());
            }
            let r = Self::fill(ctx, p);
            seccomp_release(ctx);
            r
        }
    }

    unsafe fn fill(ctx: *mut c_void, p: &Policy) -> Result<Libseccomp, String> {
        // SAFETY: `ctx` is the live context `compile` made and releases after this call;
        // every pointer given to libseccomp is a CString or slice alive for the call.
        unsafe {
            let mut notes = Vec::new();
            if seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, seccomp::RET_KILL_PROCESS) != 0 {
                return Err("setting the bad-arch action failed".into());
            }
            if seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0) != 0 {
                return Err("clearing NNP failed".into());
            }
            for a in &p.architectures {
                let r = seccomp_arch_add(ctx, scmp_arch(*a));
                if r != 0 && r != -libc::EEXIST {
                    return Err(format!("seccomp_arch_add({a}) = {r}"));
                }
            }
            for (i, rule) in p.rules.iter().enumerate() {
                if rule.action == p.default_action {
                    notes.push(format!("rule #{i}: action is the default action, skipped"));
                    continue;
                }
                let args: Vec<ScmpArgCmp> = rule
                    .args
                    .iter()
                    .map(|c| ScmpArgCmp {
                        arg: c.index,
                        op: scmp_op(c.op),
                        datum_a: c.value,
                        datum_b: c.value_two,
                    })
                    .collect();
                for name in &rule.names {
                    let cname = CString::new(name.as_str()).unwrap();
                    let nr = seccomp_syscall_resolve_name(cname.as_ptr());
                    if nr == NR_SCMP_ERROR {
                        notes.push(format!("rule #{i}: {name} unknown to libseccomp"));
                        continue;
                    }
                    let r = seccomp_rule_add_array(
                        ctx,
                        rule.action.ret(),
                        nr,
                        args.len() as c_uint,
                        args.as_ptr(),
                    );
                    if r != 0 {
                        return Err(format!(
                            "seccomp_rule_add_array(rule #{i}, {name}) = {r} ({})",
                            std::io::Error::from_raw_os_error(-r)
                        ));
                    }
                }
            }
            let mut f = memfd()?;
            let r = seccomp_export_bpf(ctx, f.as_raw_fd());
            if r != 0 {
                return Err(format!("seccomp_export_bpf = {r}"));
            }
            f.rewind().map_err(|e| e.to_string())?;
            let mut bytes = Vec::new();
            f.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
            let prog = bytes
                .chunks_exact(8)
                .map(|b| Insn {
                    code: u16::from_ne_bytes([b[0], b[1]]),
                    jt: b[2],
                    jf: b[3],
                    k: u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
                })
                .collect();
            Ok(Libseccomp { prog, notes })
        }
    }
}

fn memfd() -> Result<std::fs::File, String> {
    // SAFETY: memfd_create with a static name; the fd is owned by the File.
    unsafe {
        let fd = libc::memfd_create(c"corral-seccomp-diff".as_ptr(), libc::MFD_CLOEXEC);
        if fd < 0 {
            return Err(format!("memfd_create: {}", std::io::Error::last_os_error()));
        }
        Ok(std::fs::File::from_raw_fd(fd))
    }
}

// ---------------------------------------------------------------------------
// A classic-BPF interpreter (the seccomp subset of the kernel's checker: loads from
// seccomp_data, the scratch memory, ALU, jumps and returns on A or K).

#[derive(Debug, Clone, Copy)]
struct Insn {
    code: u16,
    jt: u8,
    jf: u8,
    k: u32,
}

/// `seccomp_data` as 16 native 32-bit words: nr, arch, ip (2), args (12).
fn seccomp_data(arch: u32, nr: u32, args: &[u64; 6]) -> [u32; 16] {
    let mut d = [0u32; 16];
    d[0] = nr;
    d[1] = arch;
    d[2] = 0x1234_5678; // instruction_pointer: never looked at by either compiler
    d[3] = 0x9abc_def0;
    for (i, a) in args.iter().enumerate() {
        d[4 + 2 * i] = *a as u32;
        d[5 + 2 * i] = (*a >> 32) as u32;
    }
    d
}

fn run(prog: &[Insn], data: &[u32; 16]) -> Result<u32, String> {
    let (mut a, mut x) = (0u32, 0u32);
    let mut mem = [0u32; 16];
    let mut pc = 0usize;
    let mut steps = 0;
    loop {
        let Some(&i) = prog.get(pc) else {
            return Err(format!("fell off the program at {pc}"));
        };
        steps += 1;
        if steps > 100_000 {
            return Err("too many steps".into());
        }
        pc += 1;
        let class = i.code & 0x07;
        let size = i.code & 0x18;
        let mode = i.code & 0xe0;
        let src_x = i.code & 0x08 != 0;
        let word = |k: u32| -> Result<u32, String> {
            if !k.is_multiple_of(4) || k >= 64 {
                return Err(format!("load at {k}"));
            }
            Ok(data[k as usize / 4])
        };
        match class {
            // BPF_LD / BPF_LDX
            0x00 | 0x01 => {
                let v = match mode {
                    0x20 if size == 0x00 => word(i.k)?, // ABS, W
                    0x00 => i.k,                        // IMM
                    0x60 => mem[(i.k & 15) as usize],   // MEM
                    0x80 if size == 0x00 => 64,         // LEN
                    _ => return Err(format!("load code {:#x}", i.code)),
                };
                if class == 0x00 {
                    a = v
                } else {
                    x = v
                }
            }
            0x02 => mem[(i.k & 15) as usize] = a, // ST
            0x03 => mem[(i.k & 15) as usize] = x, // STX
            0x04 => {
                // BPF_ALU
                let s = if src_x { x } else { i.k };
                a = match i.code & 0xf0 {
                    0x00 => a.wrapping_add(s),
                    0x10 => a.wrapping_sub(s),
                    0x20 => a.wrapping_mul(s),
                    0x30 if s != 0 => a / s,
                    0x40 => a | s,
                    0x50 => a & s,
                    0x60 => a.checked_shl(s).unwrap_or(0),
                    0x70 => a.checked_shr(s).unwrap_or(0),
                    0x80 => a.wrapping_neg(),
                    0x90 if s != 0 => a % s,
                    0xa0 => a ^ s,
                    _ => return Err(format!("alu code {:#x}", i.code)),
                };
            }
            0x05 => {
                // BPF_JMP
                let op = i.code & 0xf0;
                if op == 0x00 {
                    pc += i.k as usize;
                    continue;
                }
                let s = if src_x { x } else { i.k };
                let taken = match op {
                    0x10 => a == s,
                    0x20 => a > s,
                    0x30 => a >= s,
                    0x40 => a & s != 0,
                    _ => return Err(format!("jump code {:#x}", i.code)),
                };
                pc += usize::from(if taken { i.jt } else { i.jf });
            }
            0x06 => {
                // BPF_RET
                return match i.code & 0x18 {
                    0x00 => Ok(i.k),
                    0x10 => Ok(a),
                    _ => Err(format!("ret code {:#x}", i.code)),
                };
            }
            0x07 => match i.code {
                0x07 => x = a, // TAX
                0x87 => a = x, // TXA
                _ => return Err(format!("misc code {:#x}", i.code)),
            },
            _ => unreachable!(),
        }
    }
}

fn ours_prog(p: &seccomp::Program) -> Vec<Insn> {
    p.instructions()
        .iter()
        .map(|i| Insn {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect()
}

// ---------------------------------------------------------------------------
// PRNG

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, s: &'a [T]) -> &'a T {
        &s[self.below(s.len())]
    }
}

// ---------------------------------------------------------------------------
// Profiles (moby format: names/action/errnoRet/args plus includes/excludes on caps and
// arches, resolved like moby's and podman's profile loaders do for one container)

const DOCKER_DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];
const PODMAN_DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
];

fn profile(file: &str, caps: Option<&[&str]>) -> Policy {
    use serde_json::Value;
    let path = format!("{}/tests/fixtures/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    };
    // caps None: every capability.
    let has_cap = |c: &str| caps.is_none_or(|cs| cs.contains(&c));
    let arch = "amd64";
    let errno = |v: &Value| v.as_u64().map(|e| e as u32);
    let default_action = Action::parse(
        v["defaultAction"].as_str().unwrap(),
        errno(&v["defaultErrnoRet"]),
    )
    .unwrap();
    let architectures = {
        let m = v["archMap"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["architecture"] == "SCMP_ARCH_X86_64")
            .unwrap();
        let mut a = vec![Arch::X86_64];
        for s in strs(&m["subArchitectures"]) {
            a.push(s.parse().unwrap());
        }
        a
    };
    let mut rules = Vec::new();
    for sc in v["syscalls"].as_array().unwrap() {
        let inc = &sc["includes"];
        let exc = &sc["excludes"];
        let inc_caps = strs(&inc["caps"]);
        let inc_arches = strs(&inc["arches"]);
        if !inc_caps.iter().all(|c| has_cap(c)) {
            continue;
        }
        if !inc_arches.is_empty() && !inc_arches.iter().any(|a| a == arch) {
            continue;
        }
        if strs(&exc["caps"]).iter().any(|c| has_cap(c)) {
            continue;
        }
        if strs(&exc["arches"]).iter().any(|a| a == arch) {
            continue;
        }
        let action = Action::parse(sc["action"].as_str().unwrap(), errno(&sc["errnoRet"])).unwrap();
        let args = sc["args"]
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
            .unwrap_or_default();
        rules.push(Rule {
            names: strs(&sc["names"]),
            action,
            args,
        });
    }
    Policy {
        default_action,
        architectures,
        rules,
        flags: vec![],
    }
}

/// An engine's OCI `linux.seccomp` object from `fixtures/engines` (see its README) as a
/// policy.
fn engine_profile(name: &str) -> Policy {
    use serde_json::Value;
    let path = format!(
        "{}/tests/fixtures/engines/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    let errno = |v: &Value| v.as_u64().map(|e| e as u32);
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    };
    let rules = v["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|sc| Rule {
            names: strs(&sc["names"]),
            action: Action::parse(sc["action"].as_str().unwrap(), errno(&sc["errnoRet"])).unwrap(),
            args: sc["args"]
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
        .collect();
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
        rules,
        flags: vec![],
    }
}

/// The engine fixtures compared with libseccomp. Not `oci-runtime-tool-0.9.0`: its
/// `personality` rule has three `SCMP_CMP_EQ` on argument 0 (0, 8, 0xffffffff), which
/// libseccomp refuses in one rule; runc splits such a rule into one rule per comparison
/// (OR), corral takes the comparisons of a rule together (AND), so under that profile
/// corral refuses `personality(0)` where runc allows it.
const ENGINES: &[&str] = &[
    "docker-20.10",
    "docker-28",
    "containerd-1.6",
    "containerd-2.0",
    "podman",
    "oci-runtime-tool",
];

// ---------------------------------------------------------------------------
// Generated policies

/// Names with interesting spreads: present everywhere, on some arches only, multiplexed on
/// x86 (socketcall/ipc families), high-numbered, arm-private.
const NAMES: &[&str] = &[
    "read",
    "write",
    "openat",
    "close",
    "getpid",
    "getppid",
    "personality",
    "clone",
    "ioctl",
    "prctl",
    "mmap",
    "mprotect",
    "kill",
    "futex",
    "open",
    "stat",
    "fstat",
    "socket",
    "connect",
    "bind",
    "socketpair",
    "sendto",
    "shmget",
    "msgsnd",
    "semop",
    "socketcall",
    "ipc",
    "arch_prctl",
    "set_tls",
    "cacheflush",
    "arm_fadvise64_64",
    "mmap2",
    "fcntl64",
    "time",
    "clone3",
    "io_uring_setup",
    "futex_waitv",
    "set_mempolicy_home_node",
    "epoll_wait",
    "vm86",
];

const VALUES: &[u64] = &[
    0,
    1,
    2,
    7,
    8,
    0xff,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_fffe,
    0xffff_ffff,
    0x1_0000_0000,
    0x1_0000_0001,
    0xffff_ffff_0000_0000,
    0x8000_0000_0000_0000,
    u64::MAX - 1,
    u64::MAX,
];

fn random_value(rng: &mut Rng) -> u64 {
    match rng.below(4) {
        0 => rng.next(),
        1 => rng.next() & 0xffff_ffff,
        _ => *rng.pick(VALUES),
    }
}

fn random_action(rng: &mut Rng) -> Action {
    match rng.below(9) {
        0 => Action::KillThread,
        1 => Action::KillProcess,
        2 => Action::Trap,
        3 | 4 => Action::Errno(*rng.pick(&[1u16, 13, 22, 38, 4094])),
        5 => Action::Trace(*rng.pick(&[0u16, 1, 7])),
        6 => Action::Log,
        _ => Action::Allow,
    }
}

fn random_policy(rng: &mut Rng) -> Policy {
    let default_action = random_action(rng);
    let mut architectures = Vec::new();
    // The native architecture is always covered by libseccomp (and by corral).
    if rng.chance(70) {
        architectures.push(Arch::X86_64);
    }
    for a in [Arch::X86, Arch::X32, Arch::Aarch64, Arch::Arm] {
        if rng.chance(40) {
            architectures.push(a);
        }
    }
    let n_sys = 1 + rng.below(8);
    let mut rules = Vec::new();
    for _ in 0..n_sys {
        let name = *rng.pick(NAMES);
        // Several rules per syscall: conditional ones, at most one unconditional one at the end.
        let n_rules = 1 + rng.below(4);
        for r in 0..n_rules {
            let mut action = random_action(rng);
            if action == default_action {
                action = Action::Errno(77);
            }
            let mut args = Vec::new();
            let unconditional = r == n_rules - 1 && rng.chance(25);
            if !unconditional {
                let mut idx: Vec<u32> = (0..6).collect();
                let n = 1 + rng.below(3);
                for _ in 0..n {
                    let index = idx.remove(rng.below(idx.len()));
                    let op =
                        *rng.pick(&[Op::Eq, Op::Ne, Op::Lt, Op::Le, Op::Gt, Op::Ge, Op::MaskedEq]);
                    let value = random_value(rng);
                    let value_two = if op == Op::MaskedEq {
                        // Reachable more often than not.
                        if rng.chance(70) {
                            value & random_value(rng)
                        } else {
                            random_value(rng)
                        }
                    } else {
                        0
                    };
                    args.push(ArgCmp {
                        index,
                        value,
                        value_two,
                        op,
                    });
                }
            }
            let mut names = vec![name.to_string()];
            if rng.chance(20) {
                names.push(rng.pick(NAMES).to_string());
            }
            rules.push(Rule {
                names,
                action,
                args,
            });
        }
    }
    Policy {
        default_action,
        architectures,
        rules,
        flags: vec![],
    }
}

// ---------------------------------------------------------------------------
// Inputs

fn boundary_values(c: &ArgCmp) -> Vec<u64> {
    let v = c.value;
    let mut out = vec![
        v,
        v.wrapping_sub(1),
        v.wrapping_add(1),
        v ^ 0xffff_ffff_0000_0000,
        v ^ 0x0000_0000_ffff_ffff,
        v ^ 0x1_0000_0000,
        v ^ 1,
        v & 0xffff_ffff,
        v | 0xffff_ffff_0000_0000,
        0,
        u64::MAX,
    ];
    if c.op == Op::MaskedEq {
        let (m, w) = (c.value, c.value_two);
        out.extend([
            w,
            w | !m,
            w ^ (m & m.wrapping_neg()),
            w ^ (m & 0xffff_ffff_0000_0000),
        ]);
    }
    out
}

/// The distinct actions, in policy order, of the rules that match a syscall (reference
/// semantics: every comparison of a rule holds; only the low 32 bits of arguments and values
/// on the 32-bit ABIs); `None` when the input is decided by the architecture dispatch (an
/// ABI the filter does not cover, or the syscall number -1).
///
/// When more than one action matches, the result is policy-order dependent, and the two
/// libraries differ by design: corral takes the first matching rule in policy order (as the
/// policy is written); libseccomp has no rule order. It merges the rules of a syscall into a
/// tree keyed by argument index, operator and value, lets a later unconditional rule replace
/// earlier conditional ones and drops a conditional rule added after an unconditional one,
/// and refuses (runc then skips) rules whose action equals the default action. Such inputs
/// are counted, not compared; the test reports how often libseccomp picked the first or the
/// last matching rule.
fn matching_actions(p: &Policy, audit: u32, nr: u32, args: &[u64; 6]) -> Option<Vec<u32>> {
    let native = Arch::native().expect("a supported build architecture");
    let covered = |a: Arch| a == native || p.architectures.contains(&a);
    let abi = Arch::ALL.into_iter().find(|a| {
        a.audit_arch() == audit
            && (audit != seccomp::AUDIT_ARCH_X86_64
                || (*a == Arch::X32) == (nr & seccomp::X32_SYSCALL_BIT != 0))
    })?;
    if !covered(abi) || nr == u32::MAX {
        return None;
    }
    let mut out = Vec::new();
    for r in &p.rules {
        if !r.names.iter().any(|n| abi.syscall_number(n) == Some(nr)) {
            continue;
        }
        let holds = r.args.iter().all(|c| {
            let arg = args[c.index as usize];
            if abi.is_32bit() {
                let m = |v: u64| v & 0xffff_ffff;
                c.op.holds(m(arg), m(c.value), m(c.value_two))
            } else {
                c.op.holds(arg, c.value, c.value_two)
            }
        });
        if holds && !out.contains(&r.action.ret()) {
            out.push(r.action.ret());
        }
    }
    Some(out)
}

/// Whether corral's ENOSYS stub answers syscall `nr` of `audit` (reference for the
/// compiler's documented rule, modelled on runc's `patchbpf`, which runc prepends to
/// libseccomp's program): under a refusing default (errno other than ENOSYS, kill, trap), a
/// number above the greatest one the policy names for that ABI (per block: x32's legacy
/// block from 512 and arm's private calls from 0xf0000 count apart), or an unnamed syscall
/// the C library falls back from on ENOSYS (clone3, close_range, faccessat2, fchmodat2,
/// openat2, statx), gets ENOSYS; -1 and an ABI the policy names nothing on are left alone.
fn enosys_stub(p: &Policy, audit: u32, nr: u32) -> bool {
    let refusing = match p.default_action {
        Action::Errno(e) => i32::from(e) != libc::ENOSYS,
        Action::KillThread | Action::KillProcess | Action::Trap => true,
        _ => false,
    };
    let native = Arch::native().expect("a supported build architecture");
    let Some(abi) = Arch::ALL.into_iter().find(|a| {
        a.audit_arch() == audit
            && (audit != seccomp::AUDIT_ARCH_X86_64
                || (*a == Arch::X32) == (nr & seccomp::X32_SYSCALL_BIT != 0))
    }) else {
        return false;
    };
    if !refusing || nr == u32::MAX || !(abi == native || p.architectures.contains(&abi)) {
        return false;
    }
    let named: BTreeSet<u32> = p
        .rules
        .iter()
        .flat_map(|r| r.names.iter().filter_map(|n| abi.syscall_number(n)))
        .collect();
    if named.is_empty() || named.contains(&nr) {
        return false;
    }
    let probes = [
        "clone3",
        "close_range",
        "faccessat2",
        "fchmodat2",
        "openat2",
        "statx",
    ];
    if probes.iter().any(|p| abi.syscall_number(p) == Some(nr)) {
        return true;
    }
    let split = match abi {
        Arch::X32 => Some(seccomp::X32_SYSCALL_BIT + 512),
        Arch::Arm => Some(0xf0000),
        _ => None,
    };
    let block = |n: u32| split.is_some_and(|s| n >= s);
    named
        .iter()
        .filter(|&&n| block(n) == block(nr))
        .max()
        .is_none_or(|&max| nr > max)
}

/// Whether a name the policy gives syscall `nr` of `audit` is unknown to this host's
/// libseccomp on that ABI (newer than it, e.g. docker 28's `uretprobe`, or x32's
/// `map_shadow_stack`): runc skips such a name there, corral knows it from its tables.
fn unknown_to_libseccomp(p: &Policy, audit: u32, nr: u32) -> bool {
    Arch::ALL
        .into_iter()
        .filter(|a| {
            a.audit_arch() == audit
                && (audit != seccomp::AUDIT_ARCH_X86_64
                    || (*a == Arch::X32) == (nr & seccomp::X32_SYSCALL_BIT != 0))
        })
        .any(|a| {
            p.rules
                .iter()
                .flat_map(|r| r.names.iter())
                .filter(|n| a.syscall_number(n) == Some(nr))
                .any(|n| {
                    let c = CString::new(n.as_str()).unwrap();
                    // SAFETY: a NUL-terminated name.
                    unsafe { seccomp_syscall_resolve_name_arch(scmp_arch(a), c.as_ptr()) < 0 }
                })
        })
}

/// How many rules name syscall `nr` of the ABI `audit` (x32 by the number's bit).
fn rules_for(p: &Policy, audit: u32, nr: u32) -> usize {
    Arch::ALL
        .into_iter()
        .filter(|a| {
            a.audit_arch() == audit
                && (audit != seccomp::AUDIT_ARCH_X86_64
                    || (*a == Arch::X32) == (nr & seccomp::X32_SYSCALL_BIT != 0))
        })
        .map(|a| {
            p.rules
                .iter()
                .filter(|r| r.names.iter().any(|n| a.syscall_number(n) == Some(nr)))
                .count()
        })
        .sum()
}

/// A policy, one line per rule.
fn show(p: &Policy) -> String {
    let mut s = format!(
        "default {:#x}, arches {:?}\n",
        p.default_action.ret(),
        p.architectures
    );
    for (i, r) in p.rules.iter().enumerate() {
        s += &format!("  #{i} {:?} -> {:#x}:", r.names, r.action.ret());
        for c in &r.args {
            s += &format!(" a{} {:?} {:#x}", c.index, c.op, c.value);
            if c.op == Op::MaskedEq {
                s += &format!(" == {:#x}", c.value_two);
            }
            s += ";";
        }
        s += "\n";
    }
    s
}

struct Stats {
    policies: usize,
    inputs: usize,
    /// Inputs answered by the ENOSYS stub (see `enosys_stub`), not compared with libseccomp.
    enosys: usize,
    /// Inputs whose syscall name this libseccomp does not know on that ABI (see
    /// `unknown_to_libseccomp`), where corral followed the reference.
    libseccomp_unknown: usize,
    ambiguous: usize,
    ambiguous_first: usize,
    ambiguous_last: usize,
    libseccomp_wrong: usize,
    libseccomp_wrong_samples: Vec<String>,
    libseccomp_mux: usize,
    libseccomp_single: usize,
    libseccomp_single_samples: Vec<String>,
    libseccomp_conflict: usize,
    libseccomp_mux_samples: Vec<String>,
    disagreements: Vec<String>,
}

/// The syscall numbers tried on `arch`: every one the policy names (with the comparisons of
/// its rules), the multiplexers and two plain ones, edge values and random ones.
fn syscall_numbers<'p>(
    p: &'p Policy,
    arch: u32,
    rng: &mut Rng,
) -> (BTreeSet<u32>, Vec<(u32, Vec<&'p ArgCmp>)>) {
    // Syscall numbers: all named in the policy on every arch, plus edge and random ones.
    let mut nrs: BTreeSet<u32> = BTreeSet::new();
    let mut cmps: Vec<(u32, Vec<&ArgCmp>)> = Vec::new();
    for a in Arch::ALL.iter().filter(|a| a.audit_arch() == arch) {
        for r in &p.rules {
            for n in &r.names {
                if let Some(nr) = a.syscall_number(n) {
                    nrs.insert(nr);
                    cmps.push((nr, r.args.iter().collect()));
                }
            }
        }
        for n in ["socketcall", "ipc", "getpid", "read"] {
            if let Some(nr) = a.syscall_number(n) {
                nrs.insert(nr);
            }
        }
    }
    for nr in [
        0,
        1,
        u32::MAX,
        0x3fff_ffff,
        0x4000_0000,
        0x4000_0001,
        0x400f_0002,
        0xf_0002,
    ] {
        nrs.insert(nr);
    }
    for _ in 0..16 {
        nrs.insert(rng.below(460) as u32);
        nrs.insert(0x4000_0000 + rng.below(560) as u32);
    }
    (nrs, cmps)
}

/// The argument sets tried for a syscall whose rules compare `here`: all zeroes, all ones,
/// each boundary of each comparison, and random ones.
fn arg_sets(here: &[&ArgCmp], rng: &mut Rng) -> Vec<[u64; 6]> {
    let mut argsets: Vec<[u64; 6]> = vec![[0; 6], [u64::MAX; 6]];
    if !here.is_empty() {
        // Each boundary of each comparison, the other arguments random or at their
        // own comparison's value.
        for c in here {
            for b in boundary_values(c) {
                let mut a = [0u64; 6];
                for (i, slot) in a.iter_mut().enumerate() {
                    *slot = match here.iter().find(|o| o.index as usize == i) {
                        Some(o) if rng.chance(70) => *rng.pick(&boundary_values(o)[..3]),
                        _ => random_value(rng),
                    };
                }
                a[c.index as usize] = b;
                argsets.push(a);
            }
        }
        for _ in 0..8 {
            let mut a = [0u64; 6];
            for s in a.iter_mut() {
                *s = random_value(rng);
            }
            argsets.push(a);
        }
    }
    argsets
}

fn compare(label: &str, p: &Policy, rng: &mut Rng, stats: &mut Stats) {
    let ours = match seccomp::compile(p) {
        Ok(prog) => prog,
        Err(e) => {
            stats
                .disagreements
                .push(format!("{label}: corral refused: {e}\n{}", show(p)));
            return;
        }
    };
    let theirs = match Libseccomp::build(p) {
        Ok(l) => l,
        // libseccomp refuses some rules that overlap an earlier one of the same syscall with
        // another action (runc then fails the container); corral takes the first match.
        Err(e) if e.contains("= -17 ") => {
            stats.libseccomp_conflict += 1;
            return;
        }
        Err(e) => {
            stats
                .disagreements
                .push(format!("{label}: libseccomp refused: {e}\n{}", show(p)));
            return;
        }
    };
    let ours_p = ours_prog(&ours);
    stats.policies += 1;
    let mut arches: Vec<u32> = Arch::ALL.iter().map(|a| a.audit_arch()).collect();
    arches.dedup();
    arches.push(0x1234_5678);
    let mut failures = 0;
    for arch in arches {
        let (nrs, cmps) = syscall_numbers(p, arch, rng);
        for nr in nrs {
            let here: Vec<&ArgCmp> = cmps
                .iter()
                .filter(|(n, _)| *n == nr)
                .flat_map(|(_, c)| c.iter().copied())
                .collect();
            let argsets = arg_sets(&here, rng);
            for args in argsets {
                let d = seccomp_data(arch, nr, &args);
                let o = run(&ours_p, &d);
                if enosys_stub(p, arch, nr) {
                    // runc's stub answers before libseccomp's program runs.
                    stats.enosys += 1;
                    if o != Ok(seccomp::RET_ERRNO | libc::ENOSYS as u32) {
                        failures += 1;
                        if failures <= 3 {
                            stats.disagreements.push(format!(
                                "{label}: ENOSYS stub missing: arch {arch:#x} nr {nr:#x}: \
                                 corral {o:x?}\npolicy: {}",
                                show(p)
                            ));
                        }
                    }
                    continue;
                }
                let t = run(&theirs.prog, &d);
                let reference = matching_actions(p, arch, nr, &args);
                let why = match &reference {
                    // Several actions match: policy-order dependent, see `matching_actions`.
                    Some(m) if m.len() > 1 => {
                        stats.ambiguous += 1;
                        if t == Ok(m[0]) {
                            stats.ambiguous_first += 1;
                        } else if t == Ok(*m.last().unwrap()) {
                            stats.ambiguous_last += 1;
                        }
                        if o != Ok(m[0]) {
                            Some("corral did not take the first matching rule")
                        } else {
                            None
                        }
                    }
                    Some(m) => {
                        stats.inputs += 1;
                        let want = Ok(m.first().copied().unwrap_or(p.default_action.ret()));
                        if o != want {
                            Some("corral differs from the reference semantics")
                        } else if t != want && unknown_to_libseccomp(p, arch, nr) {
                            stats.libseccomp_unknown += 1;
                            None
                        } else if t != want {
                            // libseccomp applied an action no matching rule (or the default)
                            // has: its own defect, see `libseccomp_defects`.
                            stats.libseccomp_wrong += 1;
                            if rules_for(p, arch, nr) < 2 {
                                stats.libseccomp_single += 1;
                                if stats.libseccomp_single_samples.len() < 2 {
                                    stats.libseccomp_single_samples.push(format!(
                                        "{label}: arch {arch:#x} nr {nr:#x} args {args:x?}: \
                                         corral {o:x?}, libseccomp {t:x?}\n{}",
                                        show(p)
                                    ));
                                }
                            }
                            let x86 = Arch::X86;
                            if arch == x86.audit_arch()
                                && [x86.syscall_number("socketcall"), x86.syscall_number("ipc")]
                                    .contains(&Some(nr))
                            {
                                stats.libseccomp_mux += 1;
                                if stats.libseccomp_mux_samples.len() < 2 {
                                    stats.libseccomp_mux_samples.push(format!(
                                        "{label}: nr {nr} args {args:x?}: corral {o:x?}, \
                                         libseccomp {t:x?}\n{}",
                                        show(p)
                                    ));
                                }
                            } else if stats.libseccomp_wrong_samples.len() < 2 {
                                stats.libseccomp_wrong_samples.push(format!(
                                    "{label}: arch {arch:#x} nr {nr:#x} args {args:x?}: \
                                     reference and corral {o:x?}, libseccomp {t:x?}\n{}",
                                    show(p)
                                ));
                            }
                            None
                        } else {
                            None
                        }
                    }
                    None => {
                        stats.inputs += 1;
                        (o != t).then_some("architecture dispatch differs")
                    }
                };
                if let Some(why) = why {
                    failures += 1;
                    if failures <= 3 {
                        stats.disagreements.push(format!(
                            "{label}: {why}: arch {arch:#x} nr {nr:#x} args {args:x?}: corral \
                             {o:x?}, libseccomp {t:x?}, matching {reference:x?}\nnotes: {:?}\n\
                             policy: {}",
                            theirs.notes,
                            show(p)
                        ));
                    }
                }
            }
        }
    }
    if failures > 3 {
        stats
            .disagreements
            .push(format!("{label}: {} more disagreements", failures - 3));
    }
}

#[test]
fn corral_and_libseccomp_agree() {
    let seed: u64 = std::env::var("SECCOMP_DIFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_c0ff_ee15_600d);
    let count: usize = std::env::var("SECCOMP_DIFF_POLICIES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(400);
    let mut rng = Rng(seed);
    let mut stats = Stats {
        policies: 0,
        inputs: 0,
        enosys: 0,
        libseccomp_unknown: 0,
        ambiguous: 0,
        ambiguous_first: 0,
        ambiguous_last: 0,
        libseccomp_wrong: 0,
        libseccomp_wrong_samples: Vec::new(),
        libseccomp_mux: 0,
        libseccomp_single: 0,
        libseccomp_single_samples: Vec::new(),
        libseccomp_conflict: 0,
        libseccomp_mux_samples: Vec::new(),
        disagreements: Vec::new(),
    };
    let t0 = std::time::Instant::now();
    for (file, caps, label) in [
        (
            "docker-default.json",
            Some(DOCKER_DEFAULT_CAPS),
            "docker default",
        ),
        ("docker-default.json", None, "docker all caps"),
        (
            "podman-default.json",
            Some(PODMAN_DEFAULT_CAPS),
            "podman default",
        ),
        ("podman-default.json", None, "podman all caps"),
    ] {
        compare(label, &profile(file, caps), &mut rng, &mut stats);
    }
    // Their own PRNG, so that the generated policies below stay the ones of the seed.
    let mut engine_rng = Rng(seed ^ 0xe9_61_9e);
    for name in ENGINES {
        compare(
            &format!("engine {name}"),
            &engine_profile(name),
            &mut engine_rng,
            &mut stats,
        );
    }
    // The real profiles need no excuse: no libseccomp defect, no refusal, and where two
    // rules match (podman lists e.g. setns both as allowed and, unconditionally, as EPERM
    // without CAP_SYS_ADMIN) libseccomp keeps the first one too.
    assert_eq!(
        (stats.policies, stats.ambiguous, stats.libseccomp_wrong),
        (4 + ENGINES.len(), stats.ambiguous_first, 0),
        "{:#?}\n{:#?}",
        stats.disagreements,
        stats.libseccomp_wrong_samples,
    );
    for i in 0..count {
        let p = random_policy(&mut rng);
        compare(
            &format!("generated #{i} (seed {seed:#x})"),
            &p,
            &mut rng,
            &mut stats,
        );
    }
    println!(
        "differential: {} policies, {} inputs compared in {:?}; {} disagreement reports; \
         {} inputs with several matching actions not compared (libseccomp took the first \
         matching rule in {}, the last in {}); {} inputs where libseccomp's filter is wrong",
        stats.policies,
        stats.inputs,
        t0.elapsed(),
        stats.disagreements.len(),
        stats.ambiguous,
        stats.ambiguous_first,
        stats.ambiguous_last,
        stats.libseccomp_wrong,
    );
    println!(
        "{} inputs answered ENOSYS by the stub for syscalls newer than the policy; {} inputs \
         with a syscall name this libseccomp does not know on that ABI",
        stats.enosys, stats.libseccomp_unknown
    );
    println!(
        "of those, {} on x86 socketcall/ipc, {} on a syscall named by one rule only; \
         {} generated policies libseccomp refused with EEXIST (conflicting rules)",
        stats.libseccomp_mux, stats.libseccomp_single, stats.libseccomp_conflict
    );
    for w in &stats.libseccomp_single_samples {
        println!("libseccomp wrong on one rule (sample): {w}");
    }
    for w in &stats.libseccomp_mux_samples {
        println!("x86 multiplexer (sample): {w}");
    }
    for w in &stats.libseccomp_wrong_samples {
        println!("libseccomp wrong (sample): {w}");
    }
    if !stats.disagreements.is_empty() {
        for d in stats.disagreements.iter().take(10) {
            eprintln!("{d}\n");
        }
        panic!(
            "{} disagreements between corral and libseccomp",
            stats.disagreements.len()
        );
    }
}

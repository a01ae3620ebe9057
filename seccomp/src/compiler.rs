//! Policy → classic BPF.
//!
//! Layout:
//!
//! ```text
//!   ld arch
//!   jeq AUDIT_ARCH_a -> section a     (one per listed audit arch)
//!   ...
//!   ret KILL_PROCESS                  (arch not listed)
//! section:
//!   ld nr
//!   [x86_64 / x32 split on bit 30, nr == -1 kept on x86_64]
//!   [ENOSYS stub: nr above the newest syscall the policy names -> ret ERRNO(ENOSYS)]
//!   binary search tree on nr; leaves are jeq chains ending in `ret default`,
//!   followed by the leaf's shared `ret action`s
//!   bodies of syscalls with argument rules (rules in order, then default)
//! bad_arch:
//!   ret KILL_PROCESS
//! ```
//!
//! # Syscalls newer than the policy
//!
//! A policy that denies by default (errno other than `ENOSYS`, kill, trap) was written
//! against some kernel; a syscall added later is not named in it, and refusing it with
//! `EPERM` (or a kill) breaks the C library, which falls back to the older call only on
//! `ENOSYS` (`clone3` → `clone` in `pthread_create`, `faccessat2` → `faccessat`,
//! `close_range` → `close`, `statx` → `fstatat`). As runc's `patchbpf` stub does, every
//! syscall ABI section first returns `SECCOMP_RET_ERRNO | ENOSYS` for a number greater
//! than the greatest number the policy names for that ABI (any rule, any action), i.e.
//! for what the kernel the policy was written for did not have. Differences from runc:
//!
//! * The maximum is taken per *range* of an ABI's numbers that grows on its own: x32's
//!   legacy block at 512 and arm's private calls at `0xf0000` (`cacheflush`, `set_tls`)
//!   each have their own, so naming `set_tls` or x32's `execve` does not disable the stub
//!   for the common numbers, where new syscalls are added. An ABI whose policy names
//!   nothing gets no stub (as runc).
//! * The syscalls the C library tries first and replaces on `ENOSYS` only (`clone3`,
//!   `close_range`, `faccessat2`, `fchmodat2`, `openat2`, `statx`) get `ENOSYS` when the
//!   policy does not name them at all, even below the maximum. A profile can name a newer
//!   syscall and still predate these: the default config of `oci-runtime-tool generate`
//!   names `landlock_*` (444..446) but not `clone3` (435), `close_range` or `faccessat2`,
//!   so the maximum alone leaves them the default errno and `pthread_create` fails. runc
//!   has no such rule (docker's and containerd's profiles name `clone3` with `ENOSYS`
//!   themselves); refusing with `ENOSYS` instead of the default errno refuses no less.
//! * `nr == -1` (a syscall a tracer skipped) is left to the filter as before.
//!
//! No stub when the default action lets a syscall through or hands it to someone who
//! decides: allow, log, trace (a tracer may emulate new syscalls; without one the kernel
//! already answers `ENOSYS`; runc agrees), notify (the listener decides, and may emulate;
//! runc refuses notify as a default action altogether), and errno `ENOSYS` itself (the
//! stub would change nothing).
//!
//! Code is generated with symbolic labels (forward only); the assembler then
//! relaxes conditional jumps further than 255 instructions into `ja`
//! trampolines placed right after them.

use std::collections::{BTreeMap, BTreeSet};

use crate::program::{
    Insn, Program, ALU_AND_K, JA, JEQ_K, JGE_K, JGT_K, LD_W_ABS, MAX_INSNS, RET_K,
};
use crate::{
    Action, Arch, ArgCmp, Error, Op, Policy, Result, Rule, FLAG_NEW_LISTENER,
    FLAG_WAIT_KILLABLE_RECV, RET_ERRNO, RET_KILL_PROCESS, X32_SYSCALL_BIT,
};

/// Leaves of the dispatch tree hold at most this many syscalls.
const LEAF: usize = 8;

const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;

fn arg_lo(index: u32) -> u32 {
    16 + 8 * index
}
fn arg_hi(index: u32) -> u32 {
    16 + 8 * index + 4
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tgt {
    Next,
    L(usize),
}

#[derive(Debug)]
enum Item {
    Stmt(Insn),
    Jump {
        code: u16,
        k: u32,
        jt: Tgt,
        jf: Tgt,
        far_t: bool,
        far_f: bool,
    },
    Label(usize),
}

impl Item {
    fn size(&self) -> usize {
        match self {
            Item::Stmt(_) => 1,
            Item::Jump { far_t, far_f, .. } => 1 + usize::from(*far_t) + usize::from(*far_f),
            Item::Label(_) => 0,
        }
    }
}

#[derive(Default)]
struct Asm {
    items: Vec<Item>,
    labels: usize,
}

fn internal(what: &str) -> Error {
    Error::InvalidProgram(format!("internal compiler error: {what}"))
}

impl Asm {
    fn label(&mut self) -> usize {
        self.labels += 1;
        self.labels - 1
    }
    fn place(&mut self, l: usize) {
        self.items.push(Item::Label(l));
    }
    fn stmt(&mut self, code: u16, k: u32) {
        self.items.push(Item::Stmt(Insn {
            code,
            jt: 0,
            jf: 0,
            k,
        }));
    }
    fn ld(&mut self, off: u32) {
        self.stmt(LD_W_ABS, off);
    }
    fn ret(&mut self, k: u32) {
        self.stmt(RET_K, k);
    }
    fn jump(&mut self, code: u16, k: u32, jt: Tgt, jf: Tgt) {
        self.items.push(Item::Jump {
            code,
            k,
            jt,
            jf,
            far_t: false,
            far_f: false,
        });
    }

    /// Resolves labels, relaxing far conditional jumps.
    fn finish(mut self) -> Result<Vec<Insn>> {
        let mut addr = vec![0usize; self.items.len()];
        let mut label_at = vec![usize::MAX; self.labels];
        loop {
            let mut pc = 0usize;
            for (i, it) in self.items.iter().enumerate() {
                addr[i] = pc;
                if let Item::Label(l) = it {
                    label_at[*l] = pc;
                }
                pc += it.size();
            }
            if pc > 4 * MAX_INSNS {
                return Err(Error::TooLarge(pc));
            }
            let mut changed = false;
            for (i, it) in self.items.iter_mut().enumerate() {
                if let Item::Jump {
                    jt,
                    jf,
                    far_t,
                    far_f,
                    ..
                } = it
                {
                    for (t, far) in [(*jt, far_t), (*jf, far_f)] {
                        if let Tgt::L(l) = t {
                            let dest = label_at[l];
                            if dest == usize::MAX || dest <= addr[i] {
                                return Err(internal("backward or unplaced label"));
                            }
                            if !*far && dest - addr[i] - 1 > 255 {
                                *far = true;
                                changed = true;
                            }
                        }
                    }
                }
            }
            if !changed {
                break;
            }
        }
        let mut out = Vec::new();
        for (i, it) in self.items.iter().enumerate() {
            let pc = addr[i];
            let off = |t: Tgt| -> Result<usize> {
                match t {
                    Tgt::Next => Ok(pc + it.size()),
                    Tgt::L(l) => Ok(label_at[l]),
                }
                .and_then(|d| {
                    d.checked_sub(pc + 1)
                        .ok_or_else(|| internal("backward jump"))
                })
            };
            match *it {
                Item::Stmt(insn) => out.push(insn),
                Item::Label(_) => {}
                Item::Jump {
                    code,
                    k,
                    jt,
                    jf,
                    far_t,
                    far_f,
                } => {
                    let t_off = if far_t { 0 } else { off(jt)? };
                    let f_off = if far_f { usize::from(far_t) } else { off(jf)? };
                    let (t_off, f_off) = match (u8::try_from(t_off), u8::try_from(f_off)) {
                        (Ok(a), Ok(b)) => (a, b),
                        _ => return Err(internal("jump offset not relaxed")),
                    };
                    out.push(Insn {
                        code,
                        jt: t_off,
                        jf: f_off,
                        k,
                    });
                    for (far, t, n) in [(far_t, jt, 1usize), (far_f, jf, 1 + usize::from(far_t))] {
                        if far {
                            let dest = match t {
                                Tgt::L(l) => label_at[l],
                                Tgt::Next => pc + it.size(),
                            };
                            let d = dest
                                .checked_sub(pc + n + 1)
                                .ok_or_else(|| internal("backward trampoline"))?;
                            out.push(Insn {
                                code: JA,
                                jt: 0,
                                jf: 0,
                                k: d as u32,
                            });
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

/// What a syscall's leaf entry jumps to.
enum Kind {
    Direct(u32),
    Body(usize),
}

struct Entry<'a> {
    name: &'a str,
    nr: u32,
    rules: Vec<&'a Rule>,
}

struct Gen<'a> {
    asm: Asm,
    default: u32,
    warnings: &'a mut Vec<String>,
}

impl Gen<'_> {
    /// Emits the dispatch and bodies for one syscall ABI; A holds nr.
    fn subsection(&mut self, arch: Arch, entries: &[Entry<'_>]) {
        let mut kinds = Vec::with_capacity(entries.len());
        let mut bodies = Vec::new();
        for e in entries {
            if e.rules[0].args.is_empty() {
                kinds.push(Kind::Direct(e.rules[0].action.ret()));
            } else {
                let l = self.asm.label();
                kinds.push(Kind::Body(l));
                bodies.push((l, e));
            }
        }
        self.tree(entries, &kinds);
        for (l, e) in bodies {
            self.asm.place(l);
            self.body(arch, e);
        }
    }

    fn tree(&mut self, entries: &[Entry<'_>], kinds: &[Kind]) {
        if entries.len() <= LEAF {
            let mut rets: Vec<(u32, usize)> = Vec::new();
            for (e, kind) in entries.iter().zip(kinds) {
                let target = match *kind {
                    Kind::Body(l) => l,
                    Kind::Direct(r) => match rets.iter().find(|(rr, _)| *rr == r) {
                        Some((_, l)) => *l,
                        None => {
                            let l = self.asm.label();
                            rets.push((r, l));
                            l
                        }
                    },
                };
                self.asm.jump(JEQ_K, e.nr, Tgt::L(target), Tgt::Next);
            }
            self.asm.ret(self.default);
            for (r, l) in rets {
                self.asm.place(l);
                self.asm.ret(r);
            }
            return;
        }
        let mid = entries.len() / 2;
        let right = self.asm.label();
        self.asm
            .jump(JGE_K, entries[mid].nr, Tgt::L(right), Tgt::Next);
        self.tree(&entries[..mid], &kinds[..mid]);
        self.asm.place(right);
        self.tree(&entries[mid..], &kinds[mid..]);
    }

    fn body(&mut self, arch: Arch, e: &Entry<'_>) {
        let mut unconditional = false;
        for (i, rule) in e.rules.iter().enumerate() {
            if unconditional {
                self.warnings.push(format!(
                    "{} rule(s) for syscall '{}' on {arch} unreachable after an unconditional rule",
                    e.rules.len() - i,
                    e.name
                ));
                break;
            }
            if rule.args.is_empty() {
                self.asm.ret(rule.action.ret());
                unconditional = true;
                continue;
            }
            let next = self.asm.label();
            for c in &rule.args {
                self.cmp(arch, c, next, e.name);
            }
            self.asm.ret(rule.action.ret());
            self.asm.place(next);
        }
        if !unconditional {
            self.asm.ret(self.default);
        }
    }

    /// Falls through when `c` holds, jumps to `fail` otherwise.
    fn cmp(&mut self, arch: Arch, c: &ArgCmp, fail: usize, syscall: &str) {
        let f = Tgt::L(fail);
        let n = Tgt::Next;
        let (vh, vl) = ((c.value >> 32) as u32, c.value as u32);
        // MASKED_EQ compares with the masked datum (libseccomp's documented semantics).
        let w = match c.op {
            Op::MaskedEq => c.value_two & c.value,
            _ => c.value_two,
        };
        let (wh, wl) = ((w >> 32) as u32, w as u32);
        if arch.is_32bit() {
            let lost = match c.op {
                Op::MaskedEq => wh != 0,
                _ => vh != 0,
            };
            if lost {
                self.warnings.push(format!(
                    "argument {} value of a rule for syscall '{syscall}' truncated to 32 bits on {arch}",
                    c.index
                ));
            }
            let a = &mut self.asm;
            a.ld(arg_lo(c.index));
            match c.op {
                Op::Eq => a.jump(JEQ_K, vl, n, f),
                Op::Ne => a.jump(JEQ_K, vl, f, n),
                Op::Gt => a.jump(JGT_K, vl, n, f),
                Op::Ge => a.jump(JGE_K, vl, n, f),
                Op::Lt => a.jump(JGE_K, vl, f, n),
                Op::Le => a.jump(JGT_K, vl, f, n),
                Op::MaskedEq => {
                    a.stmt(ALU_AND_K, vl);
                    a.jump(JEQ_K, wl, n, f);
                }
            }
            return;
        }
        let a = &mut self.asm;
        let (hi, lo) = (arg_hi(c.index), arg_lo(c.index));
        match c.op {
            Op::Eq => {
                a.ld(hi);
                a.jump(JEQ_K, vh, n, f);
                a.ld(lo);
                a.jump(JEQ_K, vl, n, f);
            }
            Op::MaskedEq => {
                a.ld(hi);
                a.stmt(ALU_AND_K, vh);
                a.jump(JEQ_K, wh, n, f);
                a.ld(lo);
                a.stmt(ALU_AND_K, vl);
                a.jump(JEQ_K, wl, n, f);
            }
            Op::Ne => {
                let ok = a.label();
                a.ld(hi);
                a.jump(JEQ_K, vh, n, Tgt::L(ok));
                a.ld(lo);
                a.jump(JEQ_K, vl, f, n);
                a.place(ok);
            }
            Op::Gt | Op::Ge | Op::Lt | Op::Le => {
                let ok_l = a.label();
                let ok = Tgt::L(ok_l);
                a.ld(hi);
                match c.op {
                    // hi > vh: true; hi < vh: false; equal: decide on lo.
                    Op::Gt | Op::Ge => {
                        a.jump(JGT_K, vh, ok, n);
                        a.jump(JEQ_K, vh, n, f);
                    }
                    // hi < vh: true; hi > vh: false; equal: decide on lo.
                    _ => {
                        a.jump(JGE_K, vh, n, ok);
                        a.jump(JEQ_K, vh, n, f);
                    }
                }
                a.ld(lo);
                match c.op {
                    Op::Gt => a.jump(JGT_K, vl, n, f),
                    Op::Ge => a.jump(JGE_K, vl, n, f),
                    Op::Lt => a.jump(JGE_K, vl, f, n),
                    _ => a.jump(JGT_K, vl, f, n),
                }
                a.place(ok_l);
            }
        }
    }
}

fn validate(p: &Policy) -> Result<()> {
    for (i, r) in p.rules.iter().enumerate() {
        let Some(first) = r.names.first() else {
            return Err(Error::EmptyRule(i));
        };
        for c in &r.args {
            if c.index > 5 {
                return Err(Error::ArgIndex {
                    syscall: first.clone(),
                    index: c.index,
                });
            }
        }
    }
    Ok(())
}

/// The per-syscall rule lists of `arch`, sorted by number; unknown names
/// produce warnings.
fn entries<'a>(p: &'a Policy, arch: Arch, warnings: &mut Vec<String>) -> Vec<Entry<'a>> {
    let mut map: BTreeMap<u32, (&str, Vec<&Rule>)> = BTreeMap::new();
    let mut unknown = BTreeSet::new();
    for rule in &p.rules {
        let mut seen = BTreeSet::new();
        for name in &rule.names {
            match arch.syscall_number(name) {
                Some(nr) => {
                    if seen.insert(nr) {
                        map.entry(nr)
                            .or_insert((name.as_str(), Vec::new()))
                            .1
                            .push(rule);
                    }
                }
                None => {
                    if unknown.insert(name.as_str()) {
                        warnings.push(format!(
                            "syscall '{name}' is unknown on {arch}: skipped there"
                        ));
                    }
                }
            }
        }
    }
    map.into_iter()
        .map(|(nr, (name, rules))| Entry { name, nr, rules })
        .collect()
}

/// `SECCOMP_RET_ERRNO | ENOSYS`.
const RET_ENOSYS: u32 = RET_ERRNO | libc::ENOSYS as u32;

/// Whether syscalls newer than the policy get `ENOSYS` instead of `default` (see the
/// module documentation): only when the default refuses on its own behalf.
fn enosys_stub(default: Action) -> bool {
    match default {
        Action::Errno(e) => i32::from(e) != libc::ENOSYS,
        Action::KillThread | Action::KillProcess | Action::Trap => true,
        Action::Allow | Action::Log | Action::Trace(_) | Action::Notify => false,
    }
}

/// `__ARM_NR_BASE`: arm's private syscalls (`cacheflush`, `set_tls`, ...) start here.
const ARM_PRIVATE_BASE: u32 = 0xf0000;

/// The starts of the ranges of `arch`'s syscall numbers that grow separately (new
/// syscalls are appended to the first one; the others are fixed legacy or private blocks).
fn ranges(arch: Arch) -> &'static [u32] {
    match arch {
        Arch::X32 => &[X32_SYSCALL_BIT, X32_SYSCALL_BIT | 512],
        Arch::Arm => &[0, ARM_PRIVATE_BASE],
        Arch::X86_64 | Arch::X86 | Arch::Aarch64 => &[0],
    }
}

/// Syscalls the C libraries try first and replace by an older call on `ENOSYS` only
/// (glibc: `pthread_create`, `faccessat`, `closefrom`, `fchmodat`, `statx`; `openat2` by
/// programs such as systemd and runc). Under the stub, each one the policy does not name
/// gets `ENOSYS` even when it is numbered below the newest named syscall.
const FALLBACK_PROBES: [&str; 6] = [
    "clone3",
    "close_range",
    "faccessat2",
    "fchmodat2",
    "openat2",
    "statx",
];

/// The rule a [`FALLBACK_PROBES`] syscall gets under the stub when the policy does not
/// name it.
static FALLBACK_ENOSYS: Rule = Rule {
    names: Vec::new(),
    action: Action::Errno(libc::ENOSYS as u16),
    args: Vec::new(),
};

/// Emits one syscall ABI's part of a section (A holds nr): the ENOSYS stub when `stub`
/// (its checks jump to `past` when nr is not too new; nr == -1 also goes there), then
/// the dispatch. `past` is placed here.
fn abi(g: &mut Gen<'_>, p: &Policy, arch: Arch, stub: bool, past: usize) {
    let mut e = entries(p, arch, g.warnings);
    if stub && !e.is_empty() {
        // -1 never reaches the x86_64 ABI's part: bit 30 sends it to x32's, or the x32
        // check before the part jumps to `past` with it.
        if arch != Arch::X86_64 {
            g.asm.jump(JEQ_K, u32::MAX, Tgt::L(past), Tgt::Next);
        }
        let rs = ranges(arch);
        for (i, &start) in rs.iter().enumerate() {
            let end = rs.get(i + 1).copied();
            let next = g.asm.label();
            if let Some(end) = end {
                g.asm.jump(JGE_K, end, Tgt::L(next), Tgt::Next);
            }
            let max = e
                .iter()
                .map(|x| x.nr)
                .filter(|&n| n >= start && end.is_none_or(|end| n < end))
                .max();
            if let Some(max) = max {
                g.asm.jump(JGT_K, max, Tgt::Next, Tgt::L(past));
            }
            g.asm.ret(RET_ENOSYS);
            g.asm.place(next);
        }
        for name in FALLBACK_PROBES {
            if let Some(nr) = arch.syscall_number(name) {
                if let Err(at) = e.binary_search_by_key(&nr, |x| x.nr) {
                    let entry = Entry {
                        name,
                        nr,
                        rules: vec![&FALLBACK_ENOSYS],
                    };
                    e.insert(at, entry);
                }
            }
        }
    }
    g.asm.place(past);
    g.subsection(arch, &e);
}

/// Compiles `p` into a classic-BPF program.
pub fn compile(p: &Policy) -> Result<Program> {
    validate(p)?;
    // The native architecture is always covered, listed or not (libseccomp's `seccomp_init`
    // adds it, so runc and crun filters always cover it); the listed ones are added.
    let mut arches: Vec<Arch> = Vec::new();
    if let Some(n) = Arch::native() {
        arches.push(n);
    } else if p.architectures.is_empty() {
        return Err(Error::NoNativeArch);
    }
    for a in &p.architectures {
        if !arches.contains(a) {
            arches.push(*a);
        }
    }
    let mut warnings = Vec::new();
    let mut flags = 0u32;
    for f in &p.flags {
        flags |= f.bits();
    }
    let notify =
        p.default_action == Action::Notify || p.rules.iter().any(|r| r.action == Action::Notify);
    if notify {
        flags |= FLAG_NEW_LISTENER;
    } else if flags & FLAG_WAIT_KILLABLE_RECV != 0 {
        flags &= !FLAG_WAIT_KILLABLE_RECV;
        warnings.push(
            "flag SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV dropped: no SCMP_ACT_NOTIFY action".into(),
        );
    }

    // Sections by audit arch, in first-listed order; x86_64 and x32 share one.
    let has = |a: Arch| arches.contains(&a);
    let mut sections: Vec<u32> = Vec::new();
    for a in &arches {
        if !sections.contains(&a.audit_arch()) {
            sections.push(a.audit_arch());
        }
    }

    let stub = enosys_stub(p.default_action);
    let mut g = Gen {
        asm: Asm::default(),
        default: p.default_action.ret(),
        warnings: &mut warnings,
    };
    let bad_arch = g.asm.label();
    let section_labels: Vec<usize> = sections.iter().map(|_| g.asm.label()).collect();
    g.asm.ld(OFF_ARCH);
    for (audit, l) in sections.iter().zip(&section_labels) {
        g.asm.jump(JEQ_K, *audit, Tgt::L(*l), Tgt::Next);
    }
    g.asm.ret(RET_KILL_PROCESS);

    for (audit, l) in sections.iter().zip(&section_labels) {
        g.asm.place(*l);
        g.asm.ld(OFF_NR);
        if *audit == crate::AUDIT_ARCH_X86_64 {
            let (x64, x32) = (has(Arch::X86_64), has(Arch::X32));
            if x64 && x32 {
                let x32_l = g.asm.label();
                g.asm.jump(JGE_K, X32_SYSCALL_BIT, Tgt::L(x32_l), Tgt::Next);
                let past = g.asm.label();
                abi(&mut g, p, Arch::X86_64, stub, past);
                g.asm.place(x32_l);
                let past = g.asm.label();
                abi(&mut g, p, Arch::X32, stub, past);
            } else if x64 {
                // nr >= bit 30 is x32 (bad arch), except -1 (skipped syscall), which goes
                // past the ENOSYS stub.
                let start = g.asm.label();
                let past = g.asm.label();
                g.asm.jump(JGE_K, X32_SYSCALL_BIT, Tgt::Next, Tgt::L(start));
                g.asm.jump(JEQ_K, u32::MAX, Tgt::L(past), Tgt::L(bad_arch));
                g.asm.place(start);
                abi(&mut g, p, Arch::X86_64, stub, past);
            } else {
                let x32_l = g.asm.label();
                g.asm
                    .jump(JGE_K, X32_SYSCALL_BIT, Tgt::L(x32_l), Tgt::L(bad_arch));
                g.asm.place(x32_l);
                let past = g.asm.label();
                abi(&mut g, p, Arch::X32, stub, past);
            }
        } else {
            for a in arches.iter().copied().filter(|a| a.audit_arch() == *audit) {
                let past = g.asm.label();
                abi(&mut g, p, a, stub, past);
            }
        }
    }
    g.asm.place(bad_arch);
    g.asm.ret(RET_KILL_PROCESS);
    let insns = g.asm.finish()?;
    if insns.len() > MAX_INSNS {
        return Err(Error::TooLarge(insns.len()));
    }
    let prog = Program {
        insns,
        flags,
        warnings,
    };
    prog.verify()?;
    Ok(prog)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Flag, AUDIT_ARCH_AARCH64, AUDIT_ARCH_ARM, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64};
    use crate::{RET_ALLOW, RET_ERRNO, RET_LOG};

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
    fn policy(default_action: Action, architectures: Vec<Arch>, rules: Vec<Rule>) -> Policy {
        Policy {
            default_action,
            architectures,
            rules,
            flags: vec![],
        }
    }
    fn nr(a: Arch, n: &str) -> u32 {
        a.syscall_number(n).unwrap()
    }

    const ENOSYS: u32 = RET_ERRNO | libc::ENOSYS as u32;

    /// Reference for the ENOSYS stub (written apart from the compiler's tables): what the
    /// unnamed syscall `nr` of `arch` gets under a refusing default when the policy names
    /// `named` there. Numbers above the greatest named one of the same block (x32's legacy
    /// block from 512, arm's private calls from 0xf0000) and an unnamed fallback probe get
    /// ENOSYS.
    fn unnamed(arch: Arch, named: &BTreeSet<u32>, nr: u32, default: u32) -> u32 {
        if named.is_empty() || nr == u32::MAX {
            return default;
        }
        let probes = [
            "clone3",
            "close_range",
            "faccessat2",
            "fchmodat2",
            "openat2",
            "statx",
        ];
        if probes.iter().any(|p| arch.syscall_number(p) == Some(nr)) {
            return ENOSYS;
        }
        let split = match arch {
            Arch::X32 => Some(X32_SYSCALL_BIT + 512),
            Arch::Arm => Some(0xf0000),
            _ => None,
        };
        let block = |n: u32| split.is_some_and(|s| n >= s);
        match named.iter().filter(|&&n| block(n) == block(nr)).max() {
            Some(&max) if nr <= max => default,
            _ => ENOSYS,
        }
    }

    fn names_nrs(arch: Arch, names: &[&str]) -> BTreeSet<u32> {
        names
            .iter()
            .filter_map(|n| arch.syscall_number(n))
            .collect()
    }

    const INTERESTING: [u64; 14] = [
        0,
        1,
        2,
        0x7fff_ffff,
        0x8000_0000,
        0xffff_fffe,
        0xffff_ffff,
        0x1_0000_0000,
        0x1_0000_0001,
        0x1_ffff_ffff,
        0x2_0000_0000,
        0xffff_ffff_0000_0000,
        0xffff_ffff_ffff_fffe,
        u64::MAX,
    ];

    #[test]
    fn all_ops_64bit_exhaustive_on_interesting_values() {
        let ops = [Op::Ne, Op::Lt, Op::Le, Op::Eq, Op::Ge, Op::Gt, Op::MaskedEq];
        for op in ops {
            for &v in &INTERESTING {
                for &v2 in &[0u64, 1, 0x1_0000_0000, v] {
                    let p = policy(
                        Action::Allow,
                        vec![Arch::X86_64],
                        vec![rule(
                            &["getppid"],
                            Action::Errno(9),
                            vec![cmp(2, op, v, v2)],
                        )],
                    );
                    let prog = compile(&p).unwrap();
                    for &arg in &INTERESTING {
                        let mut args = [0u64; 6];
                        args[2] = arg;
                        let got =
                            prog.evaluate(AUDIT_ARCH_X86_64, nr(Arch::X86_64, "getppid"), &args);
                        let want = if op.holds(arg, v, v2) {
                            RET_ERRNO | 9
                        } else {
                            RET_ALLOW
                        };
                        assert_eq!(got, want, "{op:?} arg={arg:#x} v={v:#x} v2={v2:#x}");
                    }
                }
            }
        }
    }

    #[test]
    fn ops_32bit_arch_compare_low_word() {
        let ops = [Op::Ne, Op::Lt, Op::Le, Op::Eq, Op::Ge, Op::Gt, Op::MaskedEq];
        for op in ops {
            for &v in &INTERESTING[..7] {
                let p = policy(
                    Action::Allow,
                    vec![Arch::X86],
                    vec![rule(
                        &["getppid"],
                        Action::Errno(9),
                        vec![cmp(0, op, v, v & 3)],
                    )],
                );
                let prog = compile(&p).unwrap();
                assert!(prog.warnings.is_empty());
                for &arg in &INTERESTING[..7] {
                    let got = prog.evaluate(
                        AUDIT_ARCH_I386,
                        nr(Arch::X86, "getppid"),
                        &[arg, 0, 0, 0, 0, 0],
                    );
                    let want = if op.holds(arg, v, v & 3) {
                        RET_ERRNO | 9
                    } else {
                        RET_ALLOW
                    };
                    assert_eq!(got, want, "{op:?} arg={arg:#x} v={v:#x}");
                }
            }
        }
        let p = policy(
            Action::Allow,
            vec![Arch::Arm],
            vec![rule(
                &["getppid"],
                Action::Errno(9),
                vec![cmp(0, Op::Eq, u64::MAX, 0)],
            )],
        );
        let prog = compile(&p).unwrap();
        assert!(
            prog.warnings[0].contains("truncated"),
            "{:?}",
            prog.warnings
        );
    }

    #[test]
    fn rules_and_first_match_order() {
        let p = policy(
            Action::Errno(1),
            vec![Arch::X86_64],
            vec![
                rule(
                    &["getppid"],
                    Action::Errno(10),
                    vec![cmp(0, Op::Eq, 1, 0), cmp(1, Op::Eq, 2, 0)],
                ),
                rule(&["getppid"], Action::Errno(11), vec![cmp(0, Op::Eq, 1, 0)]),
                rule(&["getppid", "getpid"], Action::Log, vec![]),
                rule(&["getppid"], Action::Errno(12), vec![]),
            ],
        );
        let prog = compile(&p).unwrap();
        let n = nr(Arch::X86_64, "getppid");
        let ev = |a: [u64; 6]| prog.evaluate(AUDIT_ARCH_X86_64, n, &a);
        assert_eq!(ev([1, 2, 0, 0, 0, 0]), RET_ERRNO | 10);
        assert_eq!(ev([1, 3, 0, 0, 0, 0]), RET_ERRNO | 11);
        assert_eq!(ev([0, 2, 0, 0, 0, 0]), RET_LOG);
        assert_eq!(
            prog.evaluate(AUDIT_ARCH_X86_64, nr(Arch::X86_64, "getpid"), &[0; 6]),
            RET_LOG
        );
        assert_eq!(
            prog.evaluate(AUDIT_ARCH_X86_64, nr(Arch::X86_64, "read"), &[0; 6]),
            RET_ERRNO | 1
        );
        assert!(
            prog.warnings.iter().any(|w| w.contains("unreachable")),
            "{:?}",
            prog.warnings
        );
    }

    #[test]
    fn arch_dispatch_and_x32() {
        let rules = vec![rule(&["getpid"], Action::Errno(5), vec![])];
        // Native only: other arches and x32 numbers are bad arch.
        let prog = compile(&policy(Action::Allow, vec![], rules.clone())).unwrap();
        assert_eq!(prog.evaluate(AUDIT_ARCH_X86_64, 39, &[0; 6]), RET_ERRNO | 5);
        assert_eq!(prog.evaluate(AUDIT_ARCH_X86_64, 40, &[0; 6]), RET_ALLOW);
        assert_eq!(
            prog.evaluate(AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 39, &[0; 6]),
            RET_KILL_PROCESS
        );
        assert_eq!(
            prog.evaluate(AUDIT_ARCH_X86_64, u32::MAX, &[0; 6]),
            RET_ALLOW
        );
        assert_eq!(
            prog.evaluate(AUDIT_ARCH_I386, 20, &[0; 6]),
            RET_KILL_PROCESS
        );
        assert_eq!(
            prog.evaluate(AUDIT_ARCH_AARCH64, 172, &[0; 6]),
            RET_KILL_PROCESS
        );
        // All five.
        let prog = compile(&policy(Action::Allow, Arch::ALL.to_vec(), rules.clone())).unwrap();
        assert_eq!(prog.evaluate(AUDIT_ARCH_X86_64, 39, &[0; 6]), RET_ERRNO | 5);
        assert_eq!(
            prog.evaluate(AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 39, &[0; 6]),
            RET_ERRNO | 5
        );
        assert_eq!(
            prog.evaluate(AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 40, &[0; 6]),
            RET_ALLOW
        );
        assert_eq!(prog.evaluate(AUDIT_ARCH_I386, 20, &[0; 6]), RET_ERRNO | 5);
        assert_eq!(
            prog.evaluate(AUDIT_ARCH_AARCH64, 172, &[0; 6]),
            RET_ERRNO | 5
        );
        assert_eq!(prog.evaluate(AUDIT_ARCH_ARM, 20, &[0; 6]), RET_ERRNO | 5);
        assert_eq!(prog.evaluate(AUDIT_ARCH_ARM, 21, &[0; 6]), RET_ALLOW);
        assert_eq!(prog.evaluate(0x1234, 20, &[0; 6]), RET_KILL_PROCESS);
        // x32 listed: the native x86_64 is covered too.
        let prog = compile(&policy(Action::Allow, vec![Arch::X32], rules)).unwrap();
        assert_eq!(prog.evaluate(AUDIT_ARCH_X86_64, 39, &[0; 6]), RET_ERRNO | 5);
        assert_eq!(
            prog.evaluate(AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 39, &[0; 6]),
            RET_ERRNO | 5
        );
    }

    /// `SCMP_CMP_MASKED_EQ` compares the masked argument with the *masked* datum, as
    /// libseccomp documents and does (runc's filters): bits of `value_two` outside the mask
    /// do not make the rule unmatchable.
    #[test]
    fn masked_eq_masks_the_datum_too() {
        for arch in [Arch::X86_64, Arch::X86] {
            let p = policy(
                Action::Allow,
                vec![arch],
                vec![rule(
                    &["getpid"],
                    Action::Errno(9),
                    vec![cmp(0, Op::MaskedEq, 0xff, 0x1_0000_01ff)],
                )],
            );
            let prog = compile(&p).unwrap();
            let n = nr(arch, "getpid");
            let ev = |a: u64| prog.evaluate(arch.audit_arch(), n, &[a, 0, 0, 0, 0, 0]);
            assert_eq!(ev(0xff), RET_ERRNO | 9, "{arch}");
            assert_eq!(ev(0x1234_56ff), RET_ERRNO | 9, "{arch}");
            assert_eq!(ev(0xfe), RET_ALLOW, "{arch}");
            assert!(Op::MaskedEq.holds(0xff, 0xff, 0x1ff));
        }
    }

    /// The native architecture is covered even when the list leaves it out, as libseccomp's
    /// `seccomp_init` (hence runc and crun) always does: otherwise every syscall of the
    /// container itself would be killed as a foreign architecture.
    #[test]
    fn native_arch_always_covered() {
        let rules = vec![rule(&["getpid"], Action::Errno(5), vec![])];
        let prog = compile(&policy(Action::Allow, vec![Arch::Aarch64], rules)).unwrap();
        assert_eq!(prog.evaluate(AUDIT_ARCH_X86_64, 39, &[0; 6]), RET_ERRNO | 5);
        assert_eq!(prog.evaluate(AUDIT_ARCH_X86_64, 40, &[0; 6]), RET_ALLOW);
        assert_eq!(
            prog.evaluate(AUDIT_ARCH_AARCH64, 172, &[0; 6]),
            RET_ERRNO | 5
        );
        assert_eq!(
            prog.evaluate(AUDIT_ARCH_I386, 20, &[0; 6]),
            RET_KILL_PROCESS
        );
    }

    /// Every known syscall on every arch, each with an argument rule and a
    /// distinct errno: the program needs trampolines everywhere.
    #[test]
    fn large_policies_relax_jumps_correctly() {
        for arch in Arch::ALL {
            // The native section is always there too: on the other arches, every second
            // name keeps the sum under the kernel's limit.
            let native = Arch::native() == Some(arch);
            let names: Vec<&str> = arch
                .syscall_names()
                .enumerate()
                .filter(|(i, _)| native || i % 2 == 0)
                .map(|(_, n)| n)
                .collect();
            assert!(names.len() > 170, "{arch}: {}", names.len());
            let rules: Vec<Rule> = names
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    rule(
                        &[n],
                        Action::Errno(i as u16 + 1),
                        vec![cmp(1, Op::Eq, i as u64, 0)],
                    )
                })
                .collect();
            let prog = compile(&policy(Action::Allow, vec![arch], rules)).unwrap();
            assert!(prog.len() > 1500, "{}", prog.len());
            assert!(prog.instructions().iter().any(|i| i.code == JA));
            for (i, n) in names.iter().enumerate() {
                let nr = nr(arch, n);
                assert_eq!(
                    prog.evaluate(arch.audit_arch(), nr, &[0, i as u64, 0, 0, 0, 0]),
                    RET_ERRNO | (i as u32 + 1),
                    "{arch} {n}"
                );
                assert_eq!(
                    prog.evaluate(arch.audit_arch(), nr, &[0, i as u64 + 1, 0, 0, 0, 0]),
                    RET_ALLOW,
                    "{arch} {n}"
                );
            }
            // Plain allow-list: compact, exhaustive over the number space.
            let rules = vec![Rule {
                names: names.iter().map(|s| s.to_string()).collect(),
                action: Action::Allow,
                args: vec![],
            }];
            let prog = compile(&policy(Action::Errno(1), vec![arch], rules)).unwrap();
            assert!(prog.len() < 1000, "{}", prog.len());
            let known: BTreeSet<u32> = names.iter().map(|n| nr(arch, n)).collect();
            let base = if arch == Arch::X32 {
                X32_SYSCALL_BIT
            } else {
                0
            };
            for n in (base..base + 1100).chain(0xf0000..0xf0010) {
                let want = if known.contains(&n) {
                    crate::RET_ALLOW
                } else {
                    unnamed(arch, &known, n, RET_ERRNO | 1)
                };
                let got = prog.evaluate(arch.audit_arch(), n, &[0; 6]);
                if arch == Arch::X32 && n < X32_SYSCALL_BIT
                    || arch != Arch::X32
                        && arch.audit_arch() == AUDIT_ARCH_X86_64
                        && n >= X32_SYSCALL_BIT
                {
                    continue;
                }
                assert_eq!(got, want, "{arch} nr {n:#x}");
            }
        }
    }

    /// An allow list written before openat2, close_range, clone3 and faccessat2 under a
    /// refusing default: those (and everything newer than the newest named syscall) get
    /// ENOSYS so the C library falls back; older unnamed syscalls keep the default.
    #[test]
    fn newer_syscalls_get_enosys() {
        let names = [
            "read",
            "write",
            "close",
            "mmap",
            "exit_group",
            "openat",
            "newfstatat",
        ];
        let p = policy(
            Action::Errno(1),
            vec![Arch::X86_64, Arch::X86],
            vec![rule(&names, Action::Allow, vec![])],
        );
        let prog = compile(&p).unwrap();
        let ev = |audit: u32, n: u32| prog.evaluate(audit, n, &[0; 6]);
        let x = |n: &str| nr(Arch::X86_64, n);
        assert_eq!(x("newfstatat"), 262);
        for n in [
            "openat2",
            "close_range",
            "clone3",
            "faccessat2",
            "statx",
            "pidfd_open",
        ] {
            assert_eq!(ev(AUDIT_ARCH_X86_64, x(n)), ENOSYS, "{n}");
        }
        assert_eq!(ev(AUDIT_ARCH_X86_64, 263), ENOSYS);
        assert_eq!(ev(AUDIT_ARCH_X86_64, 0x3fff_ffff), ENOSYS);
        assert_eq!(ev(AUDIT_ARCH_X86_64, x("newfstatat")), RET_ALLOW);
        // Older than the newest named one: the default, as written.
        for n in ["getpid", "clone", "ptrace", "access", "mount"] {
            assert_eq!(ev(AUDIT_ARCH_X86_64, x(n)), RET_ERRNO | 1, "{n}");
        }
        // -1 (a skipped syscall) and x32 numbers are as before.
        assert_eq!(ev(AUDIT_ARCH_X86_64, u32::MAX), RET_ERRNO | 1);
        assert_eq!(ev(AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 1), RET_KILL_PROCESS);
        // i386 has its own maximum (openat is 295 there, newfstatat unknown).
        let i = |n: &str| nr(Arch::X86, n);
        assert_eq!(ev(AUDIT_ARCH_I386, i("openat")), RET_ALLOW);
        assert_eq!(ev(AUDIT_ARCH_I386, i("openat") + 1), ENOSYS);
        assert_eq!(ev(AUDIT_ARCH_I386, i("getpid")), RET_ERRNO | 1);
        assert_eq!(ev(AUDIT_ARCH_I386, i("clone3")), ENOSYS);
        // Exhaustively against the reference, both ABIs.
        for arch in [Arch::X86_64, Arch::X86] {
            let named = names_nrs(arch, &names);
            for n in (0..1200).chain([u32::MAX, 0x3fff_ffff]) {
                let want = if named.contains(&n) {
                    RET_ALLOW
                } else {
                    unnamed(arch, &named, n, RET_ERRNO | 1)
                };
                assert_eq!(ev(arch.audit_arch(), n), want, "{arch} {n:#x}");
            }
        }
    }

    /// The maximum counts every rule, whatever its action or arguments; clone3 named with
    /// any action is left alone; clone3 and the other fallback probes unnamed get ENOSYS
    /// even below the maximum.
    #[test]
    fn maximum_counts_every_rule_and_fallback_probes() {
        let rules = vec![
            rule(&["read", "exit_group"], Action::Allow, vec![]),
            rule(
                &["faccessat2"],
                Action::Errno(13),
                vec![cmp(0, Op::Eq, 1, 0)],
            ),
        ];
        let prog = compile(&policy(Action::Errno(1), vec![], rules.clone())).unwrap();
        let ev = |n: &str, a0: u64| {
            prog.evaluate(AUDIT_ARCH_X86_64, nr(Arch::X86_64, n), &[a0, 0, 0, 0, 0, 0])
        };
        assert_eq!(ev("faccessat2", 1), RET_ERRNO | 13);
        assert_eq!(ev("faccessat2", 0), RET_ERRNO | 1);
        assert_eq!(ev("pidfd_open", 0), RET_ERRNO | 1);
        for probe in ["clone3", "close_range", "openat2", "statx"] {
            assert_eq!(ev(probe, 0), ENOSYS, "{probe}");
        }
        assert_eq!(ev("futex_waitv", 0), ENOSYS);
        let mut named = rules;
        named.push(rule(&["clone3"], Action::Errno(1), vec![]));
        let prog = compile(&policy(Action::Errno(1), vec![], named)).unwrap();
        assert_eq!(
            prog.evaluate(AUDIT_ARCH_X86_64, nr(Arch::X86_64, "clone3"), &[0; 6]),
            RET_ERRNO | 1
        );
    }

    /// Kill and trap defaults get the stub too; allow, log, trace, notify and errno ENOSYS
    /// do not (the syscall goes through, or a tracer/listener decides).
    #[test]
    fn which_defaults_get_the_stub() {
        let rules = vec![rule(&["read", "write"], Action::Errno(7), vec![])];
        let newer = nr(Arch::X86_64, "write") + 1;
        for (default, stub) in [
            (Action::Errno(1), true),
            (Action::KillProcess, true),
            (Action::KillThread, true),
            (Action::Trap, true),
            (Action::Allow, false),
            (Action::Log, false),
            (Action::Trace(3), false),
            (Action::Notify, false),
            (Action::Errno(libc::ENOSYS as u16), false),
        ] {
            let prog = compile(&policy(default, vec![], rules.clone())).unwrap();
            let ev = |n: u32| prog.evaluate(AUDIT_ARCH_X86_64, n, &[0; 6]);
            let want = if stub { ENOSYS } else { default.ret() };
            assert_eq!(ev(newer), want, "{default:?}");
            assert_eq!(ev(nr(Arch::X86_64, "clone3")), want, "{default:?}");
            assert_eq!(ev(0), RET_ERRNO | 7, "{default:?}");
        }
        // A policy naming nothing on an ABI: no stub there (as runc).
        let p = policy(
            Action::Errno(1),
            vec![Arch::Arm],
            vec![rule(&["arm_fadvise64_64"], Action::Allow, vec![])],
        );
        let prog = compile(&p).unwrap();
        assert_eq!(
            prog.evaluate(AUDIT_ARCH_X86_64, nr(Arch::X86_64, "clone3"), &[0; 6]),
            RET_ERRNO | 1
        );
        assert_eq!(
            prog.evaluate(AUDIT_ARCH_ARM, nr(Arch::Arm, "clone3"), &[0; 6]),
            ENOSYS
        );
    }

    /// x86_64 and x32 share AUDIT_ARCH_X86_64 and each has its own maximum; x32's legacy
    /// block (512..) and arm's private calls (0xf0000..) have their own, so naming x32's
    /// execve or arm's set_tls does not turn the stub off for the common numbers.
    #[test]
    fn enosys_stub_per_abi_and_block() {
        let names = ["read", "execve", "openat"];
        let p = policy(
            Action::Errno(1),
            vec![Arch::X86_64, Arch::X32],
            vec![rule(&names, Action::Allow, vec![])],
        );
        let prog = compile(&p).unwrap();
        let ev = |n: u32| prog.evaluate(AUDIT_ARCH_X86_64, n, &[0; 6]);
        let x32 = |n: &str| nr(Arch::X32, n);
        assert_eq!(x32("execve"), X32_SYSCALL_BIT | 520);
        assert_eq!(ev(x32("openat")), RET_ALLOW);
        assert_eq!(ev(x32("openat") + 1), ENOSYS);
        assert_eq!(ev(x32("clone3")), ENOSYS);
        assert_eq!(ev(x32("getpid")), RET_ERRNO | 1);
        assert_eq!(ev(x32("execve")), RET_ALLOW);
        assert_eq!(ev(x32("execve") - 1), RET_ERRNO | 1);
        assert_eq!(ev(x32("execve") + 1), ENOSYS);
        assert_eq!(ev(u32::MAX), RET_ERRNO | 1);
        assert_eq!(ev(nr(Arch::X86_64, "openat") + 1), ENOSYS);
        assert_eq!(ev(nr(Arch::X86_64, "getpid")), RET_ERRNO | 1);
        for arch in [Arch::X86_64, Arch::X32] {
            let named = names_nrs(arch, &names);
            let base = if arch == Arch::X32 {
                X32_SYSCALL_BIT
            } else {
                0
            };
            for n in (base..base + 1100).chain([base + 0x3fff_fffe]) {
                let want = if named.contains(&n) {
                    RET_ALLOW
                } else {
                    unnamed(arch, &named, n, RET_ERRNO | 1)
                };
                assert_eq!(ev(n), want, "{arch} {n:#x}");
            }
        }
        // x32 alone: x86_64 numbers are a bad arch, -1 keeps the default.
        let p = policy(
            Action::Errno(1),
            vec![Arch::X32],
            vec![rule(&names, Action::Allow, vec![])],
        );
        let prog = compile(&p).unwrap();
        assert_eq!(
            prog.evaluate(AUDIT_ARCH_X86_64, x32("openat") + 1, &[0; 6]),
            ENOSYS
        );
        assert_eq!(
            prog.evaluate(AUDIT_ARCH_X86_64, u32::MAX, &[0; 6]),
            RET_ERRNO | 1
        );

        let names = ["read", "openat", "set_tls"];
        let p = policy(
            Action::KillProcess,
            vec![Arch::Arm],
            vec![rule(&names, Action::Allow, vec![])],
        );
        let prog = compile(&p).unwrap();
        let ev = |n: u32| prog.evaluate(AUDIT_ARCH_ARM, n, &[0; 6]);
        let arm = |n: &str| nr(Arch::Arm, n);
        assert_eq!(ev(arm("openat") + 1), ENOSYS);
        assert_eq!(ev(arm("getpid")), RET_KILL_PROCESS);
        assert_eq!(ev(arm("set_tls")), RET_ALLOW);
        assert_eq!(ev(arm("cacheflush")), RET_KILL_PROCESS);
        assert_eq!(ev(arm("get_tls")), ENOSYS);
        let named = names_nrs(Arch::Arm, &names);
        for n in (0..1100).chain(0xf0000..0xf0010) {
            let want = if named.contains(&n) {
                RET_ALLOW
            } else {
                unnamed(Arch::Arm, &named, n, RET_KILL_PROCESS)
            };
            assert_eq!(ev(n), want, "arm {n:#x}");
        }
    }

    #[test]
    fn too_large_is_an_error() {
        let names: Vec<String> = Arch::X86_64.syscall_names().map(String::from).collect();
        let rules: Vec<Rule> = (0..12)
            .map(|i| Rule {
                names: names.clone(),
                action: Action::Errno(i),
                args: vec![cmp(0, Op::Eq, u64::from(i), 0)],
            })
            .collect();
        let err = compile(&policy(Action::Allow, vec![Arch::X86_64], rules)).unwrap_err();
        assert!(matches!(err, Error::TooLarge(_)), "{err}");
    }

    #[test]
    fn warnings_and_errors() {
        let p = policy(
            Action::Allow,
            vec![Arch::X86_64, Arch::Aarch64],
            vec![rule(
                &["open", "no_such_call", "getpid"],
                Action::Errno(1),
                vec![],
            )],
        );
        let prog = compile(&p).unwrap();
        assert!(
            prog.warnings.contains(
                &"syscall 'no_such_call' is unknown on SCMP_ARCH_X86_64: skipped there".to_string()
            ),
            "{:?}",
            prog.warnings
        );
        assert!(
            prog.warnings.contains(
                &"syscall 'open' is unknown on SCMP_ARCH_AARCH64: skipped there".to_string()
            ),
            "{:?}",
            prog.warnings
        );
        assert_eq!(
            prog.evaluate(AUDIT_ARCH_AARCH64, nr(Arch::Aarch64, "getpid"), &[0; 6]),
            RET_ERRNO | 1
        );

        let p = policy(
            Action::Allow,
            vec![],
            vec![rule(&["read"], Action::Allow, vec![cmp(6, Op::Eq, 0, 0)])],
        );
        let e = compile(&p).unwrap_err().to_string();
        assert_eq!(
            e,
            "argument index 6 out of range 0..=5 in a rule for syscall 'read'"
        );
        let p = policy(
            Action::Allow,
            vec![],
            vec![rule(&[], Action::Allow, vec![])],
        );
        assert_eq!(
            compile(&p).unwrap_err().to_string(),
            "seccomp rule #0 names no syscall"
        );

        assert_eq!(
            "SCMP_ARCH_MIPS".parse::<Arch>().unwrap_err().to_string(),
            "unknown seccomp architecture 'SCMP_ARCH_MIPS'"
        );
        assert_eq!(
            "SCMP_CMP_FOO".parse::<Op>().unwrap_err().to_string(),
            "unknown seccomp comparison operator 'SCMP_CMP_FOO'"
        );
        assert_eq!(
            "SCMP_ACT_NOPE".parse::<Action>().unwrap_err().to_string(),
            "unknown seccomp action 'SCMP_ACT_NOPE'"
        );
        assert_eq!(
            "SECCOMP_FILTER_FLAG_X"
                .parse::<Flag>()
                .unwrap_err()
                .to_string(),
            "unknown seccomp filter flag 'SECCOMP_FILTER_FLAG_X'"
        );
        assert_eq!(
            Action::parse("SCMP_ACT_ALLOW", Some(3))
                .unwrap_err()
                .to_string(),
            "invalid return value 3 for seccomp action 'SCMP_ACT_ALLOW'"
        );
        assert!(Action::parse("SCMP_ACT_ERRNO", Some(70000)).is_err());
    }

    #[test]
    fn parsing() {
        for a in Arch::ALL {
            assert_eq!(a.oci_name().parse::<Arch>().unwrap(), a);
        }
        assert_eq!(
            "SCMP_ACT_KILL".parse::<Action>().unwrap(),
            Action::KillThread
        );
        assert_eq!(
            "SCMP_ACT_KILL_THREAD".parse::<Action>().unwrap(),
            Action::KillThread
        );
        assert_eq!(
            "SCMP_ACT_KILL_PROCESS".parse::<Action>().unwrap(),
            Action::KillProcess
        );
        assert_eq!("SCMP_ACT_TRAP".parse::<Action>().unwrap(), Action::Trap);
        assert_eq!(
            "SCMP_ACT_ERRNO".parse::<Action>().unwrap(),
            Action::Errno(1)
        );
        assert_eq!(
            Action::parse("SCMP_ACT_ERRNO", Some(38)).unwrap(),
            Action::Errno(38)
        );
        assert_eq!(
            Action::parse("SCMP_ACT_TRACE", Some(7)).unwrap(),
            Action::Trace(7)
        );
        assert_eq!("SCMP_ACT_ALLOW".parse::<Action>().unwrap(), Action::Allow);
        assert_eq!("SCMP_ACT_LOG".parse::<Action>().unwrap(), Action::Log);
        assert_eq!("SCMP_ACT_NOTIFY".parse::<Action>().unwrap(), Action::Notify);
        let ops = ["NE", "LT", "LE", "EQ", "GE", "GT", "MASKED_EQ"];
        let want = [Op::Ne, Op::Lt, Op::Le, Op::Eq, Op::Ge, Op::Gt, Op::MaskedEq];
        for (s, w) in ops.iter().zip(want) {
            assert_eq!(format!("SCMP_CMP_{s}").parse::<Op>().unwrap(), w);
        }
        assert_eq!(Action::Errno(38).ret(), 0x0005_0026);
        assert_eq!(Action::Trace(3).ret(), 0x7ff0_0003);
        assert_eq!(Action::KillProcess.ret(), 0x8000_0000);
        assert_eq!(Action::Notify.ret(), 0x7fc0_0000);
        assert_eq!(AUDIT_ARCH_X86_64, 0xc000_003e);
        assert_eq!(AUDIT_ARCH_I386, 0x4000_0003);
        assert_eq!(AUDIT_ARCH_AARCH64, 0xc000_00b7);
        assert_eq!(AUDIT_ARCH_ARM, 0x4000_0028);
        assert_eq!(Arch::X86_64.syscall_number("getpid"), Some(39));
        assert_eq!(Arch::X86.syscall_number("getpid"), Some(20));
        assert_eq!(
            Arch::X32.syscall_number("getpid"),
            Some(X32_SYSCALL_BIT | 39)
        );
        assert_eq!(Arch::Aarch64.syscall_number("getpid"), Some(172));
        assert_eq!(Arch::Arm.syscall_number("getpid"), Some(20));
        assert_eq!(Arch::Arm.syscall_number("cacheflush"), Some(0xf0002));
    }

    #[test]
    fn flags() {
        let mut p = policy(
            Action::Allow,
            vec![],
            vec![rule(&["getpid"], Action::Notify, vec![])],
        );
        p.flags = vec![Flag::Log, Flag::WaitKillableRecv];
        let prog = compile(&p).unwrap();
        assert_eq!(
            prog.flags(),
            crate::FLAG_LOG | FLAG_NEW_LISTENER | FLAG_WAIT_KILLABLE_RECV
        );
        assert!(prog.needs_listener());
        p.rules[0].action = Action::Allow;
        let prog = compile(&p).unwrap();
        assert_eq!(prog.flags(), crate::FLAG_LOG);
        assert!(!prog.needs_listener());
        assert_eq!(prog.warnings.len(), 1);
        p.flags = vec![Flag::Tsync, Flag::SpecAllow];
        assert_eq!(compile(&p).unwrap().flags(), 1 | 16 | 4);
    }

    #[test]
    fn bytes_round_trip_and_validation() {
        let p = policy(
            Action::Errno(1),
            Arch::ALL.to_vec(),
            vec![
                rule(&["getpid", "bogus"], Action::Allow, vec![]),
                rule(
                    &["personality"],
                    Action::Allow,
                    vec![cmp(0, Op::Eq, 0xffff_ffff, 0)],
                ),
                rule(&["ioctl"], Action::Notify, vec![]),
            ],
        );
        let prog = compile(&p).unwrap();
        let bytes = prog.to_bytes();
        let back = Program::from_bytes(&bytes).unwrap();
        assert_eq!(back, prog);
        assert!(back.needs_listener());
        assert!(!back.warnings.is_empty());
        assert!(Program::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(Program::from_bytes(&extra).is_err());
        let mut bad = bytes.clone();
        bad[0] = b'X';
        assert!(Program::from_bytes(&bad).is_err());
        // Corrupt a jump offset past the end: rejected.
        let mut bad = bytes.clone();
        let first_jump = 20 + 8 + 2; // insn 1 (jeq arch), byte jt
        bad[first_jump] = 0xff;
        let e = Program::from_bytes(&bad).unwrap_err().to_string();
        assert!(e.contains("jump out of range"), "{e}");
        assert!(!prog.disassemble().is_empty());
    }
}

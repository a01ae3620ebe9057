//! The code between the clone and `execve` (the modules under `ns/src/child/` and the
//! `ns/src/sys.rs` helpers they call) must not allocate, panic, lock, log or do Rust std I/O. This test checks the machine
//! code, not the source: it builds `ns/examples/child_check.rs` (which links `ns::spawn` and so
//! the child) in release mode, disassembles it with `objdump`, and follows every call and jump
//! from each `ns::child::*` / `ns::sys::*` function through the binary. A path that reaches the
//! allocator, a panic routine, `core::fmt`, `std::io`, a lock, `tracing`, or a libc function that
//! allocates or locks fails the test, printed as a call chain with source lines.
//!
//! The build uses overflow checks (`CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS=true`): an arithmetic
//! overflow in the child panics in debug builds (the ones the tests run), so it counts too.
//!
//! Calls through a register are resolved when the register holds a GOT entry (the compiler
//! hoists `mov GOT(%rip),%rbx` out of loops and then calls `*%rbx`): a small data-flow pass over
//! the function's basic blocks tracks which registers hold which GOT symbols. Any other
//! indirect call fails the test (the child has no reason to call through a pointer). Indirect
//! jumps are accepted only in the shape of a compiler jump table (`lea table(%rip),%rA;
//! movslq (%rA,%rI,4),%rX; add %rA,%rX; jmp *%rX`), whose targets are inside the function.
//!
//! The same analysis run on deliberately bad functions of the example (`bad_child_*`) must flag
//! them: the check can fail.
//!
//! Needs `objdump` (binutils) and, the first time, about half a minute to build.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

// ---------------------------------------------------------------------------------------------
// Building and disassembling

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("ns has a parent directory")
        .to_path_buf()
}

/// Builds the example in release mode in a target dir of its own (so that it never waits for
/// the lock of the cargo that runs this test) and returns the binary's path.
fn build_example() -> PathBuf {
    let root = workspace_root();
    let target_dir = root.join("target").join("child-check");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(&cargo)
        .current_dir(&root)
        .args([
            "build",
            "--release",
            "-p",
            "corral-ns",
            "--example",
            "child_check",
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        .env("CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS", "true")
        .output()
        .unwrap_or_else(|e| panic!("running {cargo}: {e}"));
    assert!(
        out.status.success(),
        "building the child_check example failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    target_dir.join("release/examples/child_check")
}

#[derive(Debug)]
struct Insn {
    addr: u64,
    /// Mnemonic and operands, prefixes (`notrack`, `bnd`) removed.
    mnemonic: String,
    operands: Vec<String>,
    /// objdump's `# addr <symbol>` comment: the address and symbol a rip-relative operand
    /// points at.
    comment: Option<(u64, String)>,
    /// Source line (from the debug line table; the innermost inlined location).
    loc: Option<String>,
}

#[derive(Debug)]
struct Func {
    name: String,
    start: u64,
    end: u64,
    insns: Vec<Insn>,
}

/// What a GOT slot holds once the dynamic loader filled it.
#[derive(Debug, Clone)]
enum Got {
    /// A function of the binary (an `R_X86_64_RELATIVE` slot: the compiler calls some Rust
    /// functions, the panic routines among them, through the GOT).
    Addr(u64),
    /// A dynamic symbol (`R_X86_64_GLOB_DAT`/`JUMP_SLOT`), e.g. `close@GLIBC_2.2.5`.
    Symbol(String),
}

struct Binary {
    funcs: Vec<Func>,
    got: HashMap<u64, Got>,
}

impl Binary {
    fn load(path: &std::path::Path) -> Binary {
        let out = Command::new("objdump")
            .args(["-d", "-l", "-w", "--demangle", "--no-show-raw-insn"])
            .arg(path)
            .output()
            .unwrap_or_else(|e| {
                panic!("running objdump (binutils; see scripts/setup-deps.sh): {e}")
            });
        assert!(
            out.status.success(),
            "objdump failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut bin = Binary::parse(&String::from_utf8_lossy(&out.stdout));
        let out = Command::new("objdump")
            .arg("-R")
            .arg(path)
            .output()
            .unwrap_or_else(|e| panic!("running objdump -R: {e}"));
        assert!(out.status.success(), "objdump -R failed");
        bin.got = parse_dynamic_relocs(&String::from_utf8_lossy(&out.stdout));
        bin
    }

    fn parse(text: &str) -> Binary {
        let root = format!("{}/", workspace_root().display());
        let mut funcs: Vec<Func> = Vec::new();
        let mut loc: Option<String> = None;
        for line in text.lines() {
            if line.is_empty() {
                continue;
            }
            let first = line.as_bytes()[0];
            if first.is_ascii_hexdigit() && line.ends_with(">:") {
                // `0000000000012340 <name>:`
                let Some((addr, rest)) = line.split_once(' ') else {
                    continue;
                };
                let Ok(start) = u64::from_str_radix(addr, 16) else {
                    continue;
                };
                let name = rest[1..rest.len() - 2].to_string();
                funcs.push(Func {
                    name,
                    start,
                    end: start,
                    insns: Vec::new(),
                });
                loc = None;
            } else if first == b'/' {
                // `/path/file.rs:123` or `/path/file.rs:123 (discriminator 2)`
                let l = line.split(" (").next().unwrap_or(line);
                loc = Some(l.strip_prefix(&root).unwrap_or(l).to_string());
            } else if first == b' ' {
                let Some(f) = funcs.last_mut() else { continue };
                let Some((addr, body)) = line.trim_start().split_once(":\t") else {
                    continue;
                };
                let Ok(addr) = u64::from_str_radix(addr, 16) else {
                    continue;
                };
                let (body, comment) = match body.split_once('#') {
                    Some((b, c)) => (b, parse_comment(c)),
                    None => (body, None),
                };
                let mut words = body.split_whitespace().peekable();
                while let Some(w) = words.peek() {
                    if matches!(*w, "notrack" | "bnd" | "cs" | "ds" | "data16" | "addr32") {
                        words.next();
                    } else {
                        break;
                    }
                }
                let mnemonic = words.next().unwrap_or("").to_string();
                let rest: Vec<&str> = words.collect();
                let operands = split_operands(&rest.join(" "));
                f.end = addr + 1;
                f.insns.push(Insn {
                    addr,
                    mnemonic,
                    operands,
                    comment,
                    loc: loc.clone(),
                });
            }
            // Other lines (`ns::child::run:`, the inlined function's name) are skipped.
        }
        funcs.sort_by_key(|f| f.start);
        Binary {
            funcs,
            got: HashMap::new(),
        }
    }

    /// The function whose code holds `addr`.
    fn func_at(&self, addr: u64) -> Option<usize> {
        let i = self.funcs.partition_point(|f| f.start <= addr);
        let i = i.checked_sub(1)?;
        // A function's `end` is its last instruction + 1; an instruction is at most 15 bytes.
        (addr < self.funcs[i].end + 15).then_some(i)
    }
}

/// `objdump -R` lines: `000000000007e0a8 R_X86_64_RELATIVE  *ABS*+0x0000000000076520` and
/// `000000000007e108 R_X86_64_GLOB_DAT  close@GLIBC_2.2.5`.
fn parse_dynamic_relocs(text: &str) -> HashMap<u64, Got> {
    let mut got = HashMap::new();
    for line in text.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        let [off, kind, value] = w[..] else { continue };
        let Ok(off) = u64::from_str_radix(off, 16) else {
            continue;
        };
        match kind {
            "R_X86_64_RELATIVE" => {
                if let Some(a) = value.strip_prefix("*ABS*+0x") {
                    if let Ok(a) = u64::from_str_radix(a, 16) {
                        got.insert(off, Got::Addr(a));
                    }
                }
            }
            "R_X86_64_GLOB_DAT" | "R_X86_64_JUMP_SLOT" => {
                got.insert(off, Got::Symbol(value.to_string()));
            }
            _ => {}
        }
    }
    got
}

fn parse_comment(c: &str) -> Option<(u64, String)> {
    let c = c.trim();
    let (addr, rest) = c.split_once(' ')?;
    let addr = u64::from_str_radix(addr, 16).ok()?;
    let sym = rest.trim().strip_prefix('<')?.strip_suffix('>')?;
    Some((addr, sym.to_string()))
}

/// Splits AT&T operands at the commas outside parentheses.
fn split_operands(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for ch in s.chars() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(cur.trim().to_string());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(ch);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// A direct branch target `2b850 <ns::child::setup>` → 0x2b850.
fn direct_target(op: &str) -> Option<u64> {
    let (addr, sym) = op.split_once(' ')?;
    if !sym.starts_with('<') {
        return None;
    }
    u64::from_str_radix(addr, 16).ok()
}

// ---------------------------------------------------------------------------------------------
// Registers holding GOT entries: a forward data-flow pass over a function's basic blocks

const REGS: [[&str; 5]; 16] = [
    ["rax", "eax", "ax", "al", "ah"],
    ["rbx", "ebx", "bx", "bl", "bh"],
    ["rcx", "ecx", "cx", "cl", "ch"],
    ["rdx", "edx", "dx", "dl", "dh"],
    ["rsi", "esi", "si", "sil", "-"],
    ["rdi", "edi", "di", "dil", "-"],
    ["rbp", "ebp", "bp", "bpl", "-"],
    ["rsp", "esp", "sp", "spl", "-"],
    ["r8", "r8d", "r8w", "r8b", "-"],
    ["r9", "r9d", "r9w", "r9b", "-"],
    ["r10", "r10d", "r10w", "r10b", "-"],
    ["r11", "r11d", "r11w", "r11b", "-"],
    ["r12", "r12d", "r12w", "r12b", "-"],
    ["r13", "r13d", "r13w", "r13b", "-"],
    ["r14", "r14d", "r14w", "r14b", "-"],
    ["r15", "r15d", "r15w", "r15b", "-"],
];
/// rax, rcx, rdx, rsi, rdi, r8-r11: clobbered by a call.
const CALLER_SAVED: [usize; 9] = [0, 2, 3, 4, 5, 8, 9, 10, 11];

fn reg_index(op: &str) -> Option<usize> {
    let name = op.strip_prefix('%')?;
    REGS.iter().position(|fam| fam.contains(&name))
}

/// What a register may hold: `None` = anything, `Some(set)` = the content of one of these GOT
/// slots.
type Val = Option<BTreeSet<u64>>;
type State = Vec<Val>;

fn join(a: &mut State, b: &State) -> bool {
    let mut changed = false;
    for (x, y) in a.iter_mut().zip(b) {
        let new = match (&*x, y) {
            (Some(p), Some(q)) => Some(p.union(q).cloned().collect::<BTreeSet<_>>()),
            _ => None,
        };
        if new != *x {
            *x = new;
            changed = true;
        }
    }
    changed
}

/// The GOT slot a rip-relative operand names (objdump's comment gives its address).
fn got_slot(bin: &Binary, insn: &Insn) -> Option<u64> {
    let (addr, _) = insn.comment.as_ref()?;
    bin.got.contains_key(addr).then_some(*addr)
}

fn is_branch(m: &str) -> bool {
    m.starts_with('j')
}

fn ends_block(m: &str) -> bool {
    is_branch(m) || m.starts_with("ret") || m == "ud2" || m == "hlt"
}

fn transfer(bin: &Binary, state: &mut State, insn: &Insn) {
    let m = insn.mnemonic.as_str();
    if m.starts_with("call") {
        for r in CALLER_SAVED {
            state[r] = None;
        }
        return;
    }
    if m == "xchg" && insn.operands.len() == 2 && insn.operands[0] == insn.operands[1] {
        return; // `xchg %ax,%ax`: a two-byte nop
    }
    // Instructions that write registers they do not name: exactly those registers.
    // rax 0, rbx 1, rcx 2, rdx 3, rsi 4, rdi 5, rbp 6, rsp 7, r11 11.
    let one_operand_mul = (m.starts_with("mul")
        || m.starts_with("imul")
        || m.starts_with("div")
        || m.starts_with("idiv"))
        && insn.operands.len() == 1;
    let implicit: Option<&[usize]> =
        if one_operand_mul || ["cqto", "cltd", "cqo", "cdq", "rdtsc"].contains(&m) {
            Some(&[0, 3])
        } else if ["cltq", "cwtl", "cdqe"].contains(&m) {
            Some(&[0])
        } else if m == "syscall" {
            Some(&[0, 2, 11])
        } else if m == "rdtscp" || m == "cpuid" {
            Some(&[0, 1, 2, 3])
        } else if m == "xgetbv" {
            Some(&[0, 3])
        } else if m == "leave" {
            Some(&[6, 7])
        } else {
            None
        };
    if let Some(regs) = implicit {
        for &r in regs {
            state[r] = None;
        }
        return;
    }
    // Anything else that may write registers it does not name (string ops, exchanges,
    // prefixed forms): assume it clobbers everything.
    let unknown = [
        "xchg", "xadd", "cmpxchg", "rep", "repz", "repnz", "repe", "repne", "lock",
    ];
    if unknown.iter().any(|p| m.starts_with(p)) {
        for v in state.iter_mut() {
            *v = None;
        }
        return;
    }
    let reads_only = m.starts_with("cmp")
        || m.starts_with("test")
        || m == "bt"
        || m.starts_with("bt") && m.len() == 3 && m.ends_with('q')
        || m.starts_with("push")
        || is_branch(m)
        || m.starts_with("nop")
        || m.starts_with("ucomi")
        || m.starts_with("comi")
        || m.starts_with("ptest")
        || m == "int3"
        || m == "endbr64";
    if reads_only {
        return;
    }
    let Some(dst) = insn.operands.last().and_then(|o| reg_index(o)) else {
        return;
    };
    state[dst] = if (m == "mov" || m == "movq")
        && insn.operands.len() == 2
        && insn.operands[0].ends_with("(%rip)")
        && insn.operands[1].starts_with("%r")
    {
        got_slot(bin, insn).map(|s| BTreeSet::from([s]))
    } else if m == "mov"
        && insn.operands.len() == 2
        && insn
            .operands
            .iter()
            .all(|o| reg_index(o).is_some_and(|r| o.strip_prefix('%') == Some(REGS[r][0])))
    {
        // A 64-bit register copy (`mov %r12,%r15`) carries what its source holds.
        reg_index(&insn.operands[0]).and_then(|src| state[src].clone())
    } else {
        None
    };
}

/// For each `call *%reg` / `jmp *%reg` in `f`: what the register may hold there.
fn register_targets(bin: &Binary, f: &Func) -> HashMap<u64, Val> {
    let n = f.insns.len();
    let index: HashMap<u64, usize> = f
        .insns
        .iter()
        .enumerate()
        .map(|(i, x)| (x.addr, i))
        .collect();
    // Block leaders.
    let mut leader = vec![false; n];
    if n > 0 {
        leader[0] = true;
    }
    for (i, insn) in f.insns.iter().enumerate() {
        if ends_block(&insn.mnemonic) && i + 1 < n {
            leader[i + 1] = true;
        }
        if is_branch(&insn.mnemonic) {
            if let Some(t) = insn.operands.first().and_then(|o| direct_target(o)) {
                if let Some(&j) = index.get(&t) {
                    leader[j] = true;
                }
            }
        }
    }
    let starts: Vec<usize> = (0..n).filter(|&i| leader[i]).collect();
    let block_of: HashMap<usize, usize> = starts.iter().enumerate().map(|(b, &i)| (i, b)).collect();
    let block_end = |b: usize| starts.get(b + 1).copied().unwrap_or(n);
    let succs = |b: usize| -> Vec<usize> {
        let last = &f.insns[block_end(b) - 1];
        let m = last.mnemonic.as_str();
        let mut out = Vec::new();
        if is_branch(m) {
            if let Some(t) = last.operands.first().and_then(|o| direct_target(o)) {
                if let Some(&j) = index.get(&t) {
                    out.push(block_of[&j]);
                }
            }
            if m != "jmp" && b + 1 < starts.len() {
                out.push(b + 1);
            }
        } else if !ends_block(m) && b + 1 < starts.len() {
            out.push(b + 1);
        }
        out
    };
    let mut entry: Vec<Option<State>> = vec![None; starts.len()];
    let top: State = vec![None; 16];
    let mut seeds = vec![0usize];
    loop {
        let mut work: VecDeque<usize> = VecDeque::new();
        for s in seeds.drain(..) {
            if s < entry.len() && entry[s].is_none() {
                entry[s] = Some(top.clone());
                work.push_back(s);
            }
        }
        while let Some(b) = work.pop_front() {
            let mut st = entry[b].clone().expect("queued blocks have a state");
            for insn in &f.insns[starts[b]..block_end(b)] {
                transfer(bin, &mut st, insn);
            }
            for s in succs(b) {
                let changed = match &mut entry[s] {
                    Some(e) => join(e, &st),
                    e @ None => {
                        *e = Some(st.clone());
                        true
                    }
                };
                if changed {
                    work.push_back(s);
                }
            }
        }
        // Blocks reached only through a jump table or not at all: start them knowing nothing
        // (but not the alignment padding after a jump, which no one reaches).
        let padding = |b: usize| {
            f.insns[starts[b]..block_end(b)].iter().all(|i| {
                let m = i.mnemonic.as_str();
                m.starts_with("nop") || m == "int3" || m == "xchg" && i.operands == ["%ax", "%ax"]
            })
        };
        match (0..starts.len()).find(|&b| entry[b].is_none() && !padding(b)) {
            Some(b) => seeds.push(b),
            None => break,
        }
    }
    let mut out = HashMap::new();
    for (b, &start) in starts.iter().enumerate() {
        let Some(mut st) = entry[b].clone() else {
            continue; // padding
        };
        for insn in &f.insns[start..block_end(b)] {
            let m = insn.mnemonic.as_str();
            if m.starts_with("call") || m == "jmp" {
                if let Some(r) = insn.operands.first().and_then(|o| o.strip_prefix('*')) {
                    if let Some(r) = reg_index(r) {
                        out.insert(insn.addr, st[r].clone());
                    }
                }
            }
            transfer(bin, &mut st, insn);
        }
    }
    out
}

/// `lea T(%rip),%rA; movslq (%rA,%rI,4),%rX; add %rA,%rX; jmp *%rX` — the compiler's
/// position-independent jump table, whose targets lie inside the function.
fn is_jump_table(f: &Func, i: usize) -> bool {
    let Some(r) = f.insns[i]
        .operands
        .first()
        .and_then(|o| o.strip_prefix('*'))
    else {
        return false;
    };
    if i < 2 {
        return false;
    }
    let add = &f.insns[i - 1];
    let load = &f.insns[i - 2];
    add.mnemonic == "add"
        && add.operands.len() == 2
        && add.operands[1] == r
        && load.mnemonic == "movslq"
        && load.operands.len() == 2
        && load.operands[1] == r
        && load.operands[0].starts_with(&format!("({},", add.operands[0]))
        && load.operands[0].ends_with(",4)")
}

// ---------------------------------------------------------------------------------------------
// The call graph and what is forbidden in it

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Callee {
    /// A function in the binary.
    Func(usize),
    /// A dynamic symbol (libc) called through the GOT or the PLT.
    Extern(String),
    /// An indirect call or jump the analysis cannot resolve.
    Unresolved(String),
}

#[derive(Debug, Clone)]
struct Edge {
    site: u64,
    loc: Option<String>,
    callee: Callee,
}

fn extern_name(name: &str) -> Option<&str> {
    name.strip_suffix("@plt")
        .or_else(|| name.split_once('@').map(|(n, _)| n))
}

fn edges(bin: &Binary, fi: usize) -> Vec<Edge> {
    let f = &bin.funcs[fi];
    let regs = register_targets(bin, f);
    let slot = |s: u64| match &bin.got[&s] {
        Got::Symbol(name) => Callee::Extern(extern_name(name).unwrap_or(name).to_string()),
        Got::Addr(a) => match bin.func_at(*a) {
            Some(g) => Callee::Func(g),
            None => Callee::Unresolved(format!("GOT slot {s:#x} holds {a:#x}, no function")),
        },
    };
    let mut out = Vec::new();
    for (i, insn) in f.insns.iter().enumerate() {
        let m = insn.mnemonic.as_str();
        let edge = |callee| Edge {
            site: insn.addr,
            loc: insn.loc.clone(),
            callee,
        };
        let is_call = m.starts_with("call");
        if is_call || is_branch(m) {
            let Some(op) = insn.operands.first() else {
                continue;
            };
            if let Some(t) = direct_target(op) {
                match bin.func_at(t) {
                    Some(g) if g == fi => {}
                    Some(g) => out.push(edge(Callee::Func(g))),
                    None => out.push(edge(Callee::Unresolved(format!(
                        "{m} {op}: target outside every function"
                    )))),
                }
            } else if let Some(ind) = op.strip_prefix('*') {
                if ind.ends_with("(%rip)") {
                    match got_slot(bin, insn) {
                        Some(s) => out.push(edge(slot(s))),
                        None => out.push(edge(Callee::Unresolved(format!("{m} {op}")))),
                    }
                } else if reg_index(ind).is_some() {
                    match regs.get(&insn.addr).cloned().flatten() {
                        Some(set) => {
                            for s in set {
                                out.push(edge(slot(s)));
                            }
                        }
                        None if !is_call && is_jump_table(f, i) => {}
                        None => out.push(edge(Callee::Unresolved(format!("{m} {op}")))),
                    }
                } else {
                    out.push(edge(Callee::Unresolved(format!("{m} {op}"))));
                }
            }
        } else if m == "lea" {
            // A function's address taken: it may be called through a pointer.
            if let Some((addr, _)) = &insn.comment {
                if let Some(g) = bin.func_at(*addr) {
                    if g != fi && bin.funcs[g].start == *addr {
                        out.push(edge(Callee::Func(g)));
                    }
                }
            }
        }
    }
    out
}

/// Why calling `name` (a function of the binary or a libc symbol) is forbidden in the child.
fn forbidden(name: &str) -> Option<&'static str> {
    if let Some(sym) = extern_name(name) {
        return forbidden_extern(sym);
    }
    if name.starts_with("__rust_alloc")
        || name.starts_with("__rust_dealloc")
        || name.starts_with("__rust_realloc")
        || name.starts_with("__rdl_")
        || name.starts_with("__rg_")
        || name.contains("alloc::")
    {
        return Some("allocator");
    }
    let panics = [
        "core::panicking",
        "std::panicking",
        "core::panic",
        "std::panic",
        "rust_begin_unwind",
        "rust_panic",
        "__rust_start_panic",
        "core::result::unwrap_failed",
        "core::option::unwrap_failed",
        "core::option::expect_failed",
        "core::str::slice_error_fail",
        "core::cell::panic_already",
    ];
    if panics.iter().any(|p| name.contains(p))
        || (name.starts_with("core::slice::index::") && name.ends_with("_fail"))
    {
        return Some("panic");
    }
    if name.contains("core::fmt") {
        return Some("formatting");
    }
    if name.contains("std::io") {
        return Some("std I/O");
    }
    if name.contains("tracing") {
        return Some("logging");
    }
    if name.contains("std::sync") || name.contains("std::sys::sync") || name.contains("std::env") {
        return Some("lock");
    }
    None
}

/// libc functions the child may not call: the allocator; `exit` (runs the host's atexit
/// handlers; the child uses `_exit`); glibc's credential wrappers (their all-threads broadcast
/// takes a lock another parent thread may hold: see ARCHITECTURE.md), `fstatvfs` (may read
/// /proc/mounts and allocate); and anything else that allocates, locks or buffers.
fn forbidden_extern(sym: &str) -> Option<&'static str> {
    const ALLOC: [&str; 10] = [
        "malloc",
        "calloc",
        "realloc",
        "reallocarray",
        "free",
        "posix_memalign",
        "aligned_alloc",
        "memalign",
        "valloc",
        "pvalloc",
    ];
    const LOCKS: [&str; 20] = [
        "setresuid",
        "setresgid",
        "setuid",
        "setgid",
        "setreuid",
        "setregid",
        "seteuid",
        "setegid",
        "setgroups",
        "fstatvfs",
        "statvfs",
        "exit",
        "pthread_mutex_lock",
        "pthread_rwlock_rdlock",
        "pthread_rwlock_wrlock",
        "pthread_create",
        "opendir",
        "fopen",
        "getpwnam",
        "getgrnam",
    ];
    if ALLOC.contains(&sym) || sym.starts_with("__rust_") && sym.contains("alloc") {
        return Some("allocator");
    }
    if LOCKS.contains(&sym)
        || sym.starts_with("printf")
        || sym.starts_with("fprintf")
        || sym.starts_with("syslog")
        || sym.starts_with("strdup")
        || sym == "getenv"
        || sym == "setenv"
    {
        return Some("libc call that allocates or locks");
    }
    None
}

/// Reached only while unwinding, i.e. when a callee panicked, which the analysis rules out.
fn unwind_only(name: &str) -> bool {
    extern_name(name) == Some("_Unwind_Resume")
}

#[derive(Debug)]
struct Report {
    /// Each offending path, rendered: `root -> ... -> forbidden (reason)`.
    findings: Vec<String>,
    /// The roots the analysis started from.
    roots: Vec<String>,
    /// libc functions reached (allowed ones).
    externs: BTreeSet<String>,
    /// How many functions of the binary were reached.
    reached: usize,
    /// The source files (relative to the workspace) of the code reached: the innermost
    /// location of each instruction, so code inlined into a caller counts for its own file.
    files: BTreeSet<String>,
}

fn analyse(bin: &Binary, is_root: impl Fn(&str) -> bool) -> Report {
    let roots: Vec<usize> = (0..bin.funcs.len())
        .filter(|&i| is_root(&bin.funcs[i].name) && forbidden(&bin.funcs[i].name).is_none())
        .collect();
    // Breadth first from every root: `pred` gives one shortest call chain to each function.
    // `ns::child::run` first, so that chains start at the entry point where they can.
    let mut order = roots.clone();
    order.sort_by_key(|&r| !bin.funcs[r].name.ends_with("::run"));
    let mut pred: BTreeMap<usize, Option<(usize, Edge)>> = BTreeMap::new();
    let mut work: VecDeque<usize> = VecDeque::new();
    let mut found: BTreeMap<(usize, Option<String>, String), String> = BTreeMap::new();
    let mut externs = BTreeSet::new();
    let mut next_root = order.into_iter();
    loop {
        let f = match work.pop_front() {
            Some(f) => f,
            None => match next_root.find(|r| !pred.contains_key(r)) {
                Some(r) => {
                    pred.insert(r, None);
                    r
                }
                None => break,
            },
        };
        for e in edges(bin, f) {
            let bad = match &e.callee {
                Callee::Func(g) => {
                    let name = &bin.funcs[*g].name;
                    if unwind_only(name) {
                        None
                    } else if let Some(why) = forbidden(name) {
                        Some(format!("{name} ({why})"))
                    } else {
                        if let Some(x) = extern_name(name) {
                            externs.insert(x.to_string());
                        } else if !pred.contains_key(g) {
                            pred.insert(*g, Some((f, e.clone())));
                            work.push_back(*g);
                        }
                        None
                    }
                }
                Callee::Extern(s) => match forbidden_extern(s) {
                    Some(why) => Some(format!("{s} ({why})")),
                    None => {
                        externs.insert(s.clone());
                        None
                    }
                },
                Callee::Unresolved(what) => Some(format!("unresolved indirect `{what}`")),
            };
            if let Some(target) = bad {
                let key = (f, e.loc.clone(), target.clone());
                found.entry(key).or_insert_with(|| {
                    let mut chain = vec![format!(
                        "{} [{}]",
                        bin.funcs[f].name,
                        e.loc.as_deref().unwrap_or("?")
                    )];
                    let mut cur = f;
                    while let Some(Some((p, pe))) = pred.get(&cur) {
                        chain.push(format!(
                            "{} [{}]",
                            bin.funcs[*p].name,
                            pe.loc.as_deref().unwrap_or("?")
                        ));
                        cur = *p;
                    }
                    chain.reverse();
                    format!("{} -> {target} at {:#x}", chain.join(" -> "), e.site)
                });
            }
        }
    }
    let files = pred
        .keys()
        .flat_map(|&f| bin.funcs[f].insns.iter())
        .filter_map(|i| i.loc.as_deref())
        .filter_map(|l| l.rsplit_once(':').map(|(file, _)| file.to_string()))
        .collect();
    Report {
        findings: found.into_values().collect(),
        roots: roots.iter().map(|&r| bin.funcs[r].name.clone()).collect(),
        externs,
        reached: pred.len(),
        files,
    }
}

fn binary() -> &'static Binary {
    static BIN: OnceLock<Binary> = OnceLock::new();
    BIN.get_or_init(|| Binary::load(&build_example()))
}

/// The child's functions: everything in `ns::child` (every module under `ns/src/child/`), and
/// the `ns::sys` helpers except `last_cap`, which only the parent calls (it reads /proc with
/// `std::fs`).
fn is_child_root(name: &str) -> bool {
    name.contains("ns::child::") || name.contains("ns::sys::") && !name.contains("last_cap")
}

/// The source files whose code the check must have seen: every file of the child's modules
/// (`ns/src/child/*.rs`, listed from the directory, so a new module is included by itself)
/// and `ns/src/sys.rs`.
fn child_sources() -> Vec<String> {
    let dir = workspace_root().join("ns/src/child");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".rs"))
        .map(|n| format!("ns/src/child/{n}"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "ns/src/child/ holds {} modules, fewer than the split made: {files:?}",
        files.len()
    );
    files.push("ns/src/sys.rs".into());
    files
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn child_code_neither_allocates_nor_panics() {
    let bin = binary();
    let r = analyse(bin, is_child_root);
    assert!(
        r.roots.iter().any(|n| n == "ns::child::run"),
        "ns::child::run is not a function of the binary (inlined? renamed?); roots: {:?}",
        r.roots
    );
    eprintln!(
        "child roots: {:?}\nfunctions reached: {}\nlibc functions called: {:?}\nsource files: {:?}",
        r.roots, r.reached, r.externs, r.files
    );
    // The check covers every module of the child: a file whose code was never reached (a
    // module renamed out of `ns::child`, a symbol filter that no longer matches) fails here
    // instead of going unchecked.
    let missing: Vec<String> = child_sources()
        .into_iter()
        .filter(|f| !r.files.contains(f))
        .collect();
    assert!(
        missing.is_empty(),
        "no code of these child sources was reached, so none was checked: {missing:?}\n\
         files seen: {:?}",
        r.files
    );
    assert!(
        r.findings.is_empty(),
        "the child code can reach forbidden code ({} paths):\n{}",
        r.findings.len(),
        r.findings.join("\n")
    );
}

#[test]
fn check_catches_a_child_that_allocates() {
    let r = analyse(binary(), |n| n == "child_check::bad_child_alloc");
    assert_eq!(r.roots.len(), 1, "bad_child_alloc not found in the binary");
    assert!(
        r.findings.iter().any(|f| f.contains("(allocator)")),
        "allocation not detected: {:#?}",
        r.findings
    );
}

#[test]
fn check_catches_a_child_that_can_panic() {
    let r = analyse(binary(), |n| n == "child_check::bad_child_index");
    assert_eq!(r.roots.len(), 1, "bad_child_index not found in the binary");
    assert!(
        r.findings
            .iter()
            .any(|f| f.contains("panic_bounds_check (panic)")),
        "bounds-check panic not detected: {:#?}",
        r.findings
    );
}

#[test]
fn check_catches_an_overflow_and_an_indirect_call() {
    let r = analyse(binary(), |n| n == "child_check::bad_child_overflow");
    assert_eq!(
        r.roots.len(),
        1,
        "bad_child_overflow not found in the binary"
    );
    assert!(
        r.findings.iter().any(|f| f.contains("(panic)")),
        "overflow panic not detected: {:#?}",
        r.findings
    );
    let r = analyse(binary(), |n| n == "child_check::bad_child_indirect");
    assert_eq!(
        r.roots.len(),
        1,
        "bad_child_indirect not found in the binary"
    );
    assert!(
        r.findings.iter().any(|f| f.contains("unresolved indirect")),
        "indirect call not detected: {:#?}",
        r.findings
    );
}

#[test]
fn got_register_calls_resolve() {
    // `call *%rbx` after `mov GOT(%rip),%rbx` across a loop resolves to the GOT symbol; a
    // register overwritten on one path does not.
    let text = "\
0000000000001000 <f>:
    1000:\tmov    0x100(%rip),%rbx        # 2000 <close@GLIBC_2.2.5>
    1007:\ttest   %eax,%eax
    1009:\tje     1010 <f+0x10>
    100b:\tcall   *%rbx
    100d:\tjmp    1007 <f+0x7>
    1010:\tjne    1018 <f+0x18>
    1012:\tmov    %rdi,%rbx
    1018:\tcall   *%rbx
    101a:\tret
";
    let mut bin = Binary::parse(text);
    bin.got
        .insert(0x2000, Got::Symbol("close@GLIBC_2.2.5".into()));
    let e = edges(&bin, 0);
    let callees: Vec<_> = e.iter().map(|e| (e.site, e.callee.clone())).collect();
    assert_eq!(
        callees,
        [
            (0x100b, Callee::Extern("close".into())),
            (0x1018, Callee::Unresolved("call *%rbx".into())),
        ]
    );
}

//! Device access rules on cgroup v2: an eBPF `BPF_PROG_TYPE_CGROUP_DEVICE`
//! filter.
//!
//! cgroup v2 has no `devices.allow`/`devices.deny` files; the kernel instead
//! runs the `BPF_CGROUP_DEVICE` programs attached to a process's cgroup2
//! directory (and its ancestors) on every device node open and `mknod`. This
//! module turns a list of [`DeviceRule`]s into such a program
//! ([`program`]), and loads and attaches it ([`apply`]).
//!
//! # Semantics (those of the v1 `devices` controller as runtimes use it)
//!
//! Rules are evaluated last to first; the latest rule that matches decides.
//! A rule matches when its type matches (`'a'` matches block and char) and
//! its major and minor match (`None` = any), and
//!
//! * for an allow rule: the requested access is a subset of the rule's;
//! * for a deny rule: the requested access intersects the rule's.
//!
//! When no rule matches the access is denied: a list applies on top of
//! deny-all, whether or not it begins with a deny-all `a *:* rwm` rule (the
//! v1 controller, [`crate::devices`], writes `devices.deny a` first for the
//! same reason). A list that forgets its deny-all rule must not open every
//! device of the host.
//!
//! One difference with v1: there, any `a` rule resets the whole list (its
//! major, minor and access are ignored); here `a` is just "block or char",
//! like runc's eBPF filter. The two agree for `a *:* rwm`, the only `a` rule
//! runtimes write.
//!
//! # Program layout
//!
//! The context is `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major;
//! u32 minor; }` (pointed to by `r1`) with `access_type = access << 16 |
//! type`. The program is one block per rule, the last rule first, then
//! `w0 = 0; exit` (nothing matched: deny). A block computes, without
//! branches, a value in `w2` that is zero exactly when the rule matches,
//! and has a single jump, over its own `exit`, to the next block:
//!
//! ```text
//! w2 = *(u32 *)(r1 + 0)            ; unless the rule's type is 'a':
//! w2 &= 0xffff                     ;   type (BPF_DEVCG_DEV_*)
//! w2 ^= TYPE                       ;   0 when equal
//! w3 = *(u32 *)(r1 + 4)            ; unless the major is None:
//! w3 ^= MAJOR                      ;   0 when equal
//! w2 |= w3
//! w3 = *(u32 *)(r1 + 8)            ; unless the minor is None: likewise
//! w3 ^= MINOR
//! w2 |= w3
//! w3 = *(u32 *)(r1 + 0)
//! w3 >>= 16                        ; requested access (BPF_DEVCG_ACC_*)
//! w3 &= ~ACCESS                    ; allow rule: 0 when a subset
//!   or
//! w3 &= ACCESS                     ; deny rule: 1..=7 when they intersect,
//! w3 += -1                         ;   then 0..=6 (or 0xffffffff for 0)
//! w3 >>= 31                        ;   then 0 (or 1)
//! w2 |= w3
//! if w2 != 0 goto +2               ; no match: next block
//! w0 = 1 (allow) or 0 (deny)
//! exit
//! ```
//!
//! (The first term of a block goes straight into `w2`, without the `|=`.)
//! A deny rule with an empty access never matches and emits nothing.
//!
//! Why this shape: the verifier walks every path, falling through first and
//! keeping jump targets pending. With one compare-and-jump per field, the
//! pending "no match" states pile up (up to three per rule) and it gives up
//! past 8192 of them ("The sequence of 8193 jumps is too complex", EFAULT)
//! somewhere between 2000 and 5000 rules. With the fields loaded into
//! registers once for the whole program, it tracks what earlier comparisons
//! proved about them and explores path combinations (500 mixed rules
//! exceeded its budget of one million processed instructions). Here each
//! block reloads what it needs, so no register is live where blocks meet,
//! every state there is equivalent, and one jump per block leaves one
//! pending state: verification is linear (on Linux 6.18 the verifier
//! reports one processed instruction per instruction: 500 mixed rules are
//! 7326 instructions, 60000 rules still load, in under a second).
//!
//! # Ownership
//!
//! The program is loaded with the name [`PROG_NAME`]. [`apply`] attaches
//! with `BPF_F_ALLOW_MULTI` (other programs on the cgroup, and those of its
//! ancestors, keep running: an access must pass all of them) and, when a
//! program of that name is already attached to the directory, atomically
//! replaces it (`BPF_F_REPLACE`): there is never a moment without a filter.

use std::ffi::c_int;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use crate::error::{Error, Result};
use crate::DeviceRule;

/// The name [`apply`] gives its programs, and by which it recognizes the
/// ones it attached earlier (at most 15 characters: `[A-Za-z0-9_.]`).
pub const PROG_NAME: &str = "corral_devices";

/// One eBPF instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    /// Opcode.
    pub code: u8,
    /// Destination and source registers, packed as the kernel's bitfields
    /// (see [`Insn::dst`] and [`Insn::src`]).
    pub regs: u8,
    /// Jump offset (in instructions) or memory offset.
    pub off: i16,
    /// Immediate.
    pub imm: i32,
}

impl Insn {
    const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Self {
        Insn {
            code,
            regs: pack_regs(dst, src),
            off,
            imm,
        }
    }

    /// Destination register.
    pub const fn dst(&self) -> u8 {
        if cfg!(target_endian = "little") {
            self.regs & 0x0f
        } else {
            self.regs >> 4
        }
    }

    /// Source register.
    pub const fn src(&self) -> u8 {
        if cfg!(target_endian = "little") {
            self.regs >> 4
        } else {
            self.regs & 0x0f
        }
    }
}

/// `struct bpf_insn { __u8 dst_reg:4; __u8 src_reg:4; }`: C bitfields are
/// allocated from the low bits on little-endian targets, the high bits on
/// big-endian ones.
const fn pack_regs(dst: u8, src: u8) -> u8 {
    if cfg!(target_endian = "little") {
        (dst & 0x0f) | (src << 4)
    } else {
        (dst << 4) | (src & 0x0f)
    }
}

// Opcode parts (linux/bpf_common.h, linux/bpf.h).
const BPF_LDX: u8 = 0x01;
const BPF_ALU: u8 = 0x04;
const BPF_JMP: u8 = 0x05;
const BPF_JMP32: u8 = 0x06;
const BPF_W: u8 = 0x00;
const BPF_MEM: u8 = 0x60;
const BPF_K: u8 = 0x00;
const BPF_X: u8 = 0x08;
const BPF_ADD: u8 = 0x00;
const BPF_OR: u8 = 0x40;
const BPF_AND: u8 = 0x50;
const BPF_RSH: u8 = 0x70;
const BPF_XOR: u8 = 0xa0;
const BPF_MOV: u8 = 0xb0;
const BPF_JNE: u8 = 0x50;
const BPF_EXIT: u8 = 0x90;

/// Opcodes [`program`] emits.
pub(crate) mod op {
    use super::*;
    pub const LDXW: u8 = BPF_LDX | BPF_W | BPF_MEM;
    pub const MOV32_K: u8 = BPF_ALU | BPF_MOV | BPF_K;
    pub const ADD32_K: u8 = BPF_ALU | BPF_ADD | BPF_K;
    pub const AND32_K: u8 = BPF_ALU | BPF_AND | BPF_K;
    pub const XOR32_K: u8 = BPF_ALU | BPF_XOR | BPF_K;
    pub const RSH32_K: u8 = BPF_ALU | BPF_RSH | BPF_K;
    pub const OR32_X: u8 = BPF_ALU | BPF_OR | BPF_X;
    pub const JNE32_K: u8 = BPF_JMP32 | BPF_JNE | BPF_K;
    pub const EXIT: u8 = BPF_JMP | BPF_EXIT;
}

// Context layout and values (linux/bpf.h).
const CTX_ACCESS_TYPE: i16 = 0;
const CTX_MAJOR: i16 = 4;
const CTX_MINOR: i16 = 8;
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
const ACC_MKNOD: u32 = 1;
const ACC_READ: u32 = 2;
const ACC_WRITE: u32 = 4;

// Registers.
const R0: u8 = 0;
const R_CTX: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;

fn invalid(rule: &DeviceRule, reason: impl Into<String>) -> Error {
    Error::InvalidDeviceRule {
        rule: crate::devices::rule_string(rule),
        reason: reason.into(),
    }
}

fn access_bits(rule: &DeviceRule) -> Result<u32> {
    rule.access.chars().try_fold(0, |acc, c| match c {
        'r' => Ok(acc | ACC_READ),
        'w' => Ok(acc | ACC_WRITE),
        'm' => Ok(acc | ACC_MKNOD),
        other => Err(invalid(
            rule,
            format!("access {other:?} is not one of r, w and m"),
        )),
    })
}

fn number(rule: &DeviceRule, what: &str, v: Option<i64>) -> Result<Option<i32>> {
    match v {
        None => Ok(None),
        // The kernel compares 32-bit values: reinterpret as the immediate.
        Some(n) => match u32::try_from(n) {
            Ok(n) => Ok(Some(n as i32)),
            Err(_) => Err(invalid(
                rule,
                format!("{what} {n} is outside 0..={}", u32::MAX),
            )),
        },
    }
}

/// One "zero when it matches" part of a rule's test.
#[derive(Clone, Copy)]
enum Term {
    Type(i32),
    Major(i32),
    Minor(i32),
    /// Requested access a subset of these bits.
    AllowAccess(u32),
    /// Requested access intersecting these (non-zero) bits.
    DenyAccess(u32),
}

/// Emits `term` computed into register `dst`.
fn emit_term(out: &mut Vec<Insn>, dst: u8, term: Term) {
    let ld = |off| Insn::new(op::LDXW, dst, R_CTX, off, 0);
    let alu = |code, imm| Insn::new(code, dst, 0, 0, imm);
    match term {
        Term::Type(t) => out.extend([
            ld(CTX_ACCESS_TYPE),
            alu(op::AND32_K, 0xffff),
            alu(op::XOR32_K, t),
        ]),
        Term::Major(m) => out.extend([ld(CTX_MAJOR), alu(op::XOR32_K, m)]),
        Term::Minor(m) => out.extend([ld(CTX_MINOR), alu(op::XOR32_K, m)]),
        Term::AllowAccess(a) => out.extend([
            ld(CTX_ACCESS_TYPE),
            alu(op::RSH32_K, 16),
            alu(op::AND32_K, !a as i32),
        ]),
        Term::DenyAccess(a) => out.extend([
            ld(CTX_ACCESS_TYPE),
            alu(op::RSH32_K, 16),
            alu(op::AND32_K, a as i32),
            alu(op::ADD32_K, -1),
            alu(op::RSH32_K, 31),
        ]),
    }
}

/// The block of one rule (see the module documentation).
fn rule_block(rule: &DeviceRule, out: &mut Vec<Insn>) -> Result<()> {
    let ty = match rule.kind {
        'a' => None,
        'b' => Some(DEV_BLOCK),
        'c' => Some(DEV_CHAR),
        other => return Err(invalid(rule, format!("type {other:?} is not a, b or c"))),
    };
    let major = number(rule, "major", rule.major)?;
    let minor = number(rule, "minor", rule.minor)?;
    let access = access_bits(rule)?;
    if !rule.allow && access == 0 {
        // Intersects nothing: never matches.
        return Ok(());
    }
    let access = if rule.allow {
        Term::AllowAccess(access)
    } else {
        Term::DenyAccess(access)
    };
    let terms = [
        ty.map(Term::Type),
        major.map(Term::Major),
        minor.map(Term::Minor),
        Some(access),
    ];
    for (i, term) in terms.into_iter().flatten().enumerate() {
        if i == 0 {
            emit_term(out, R2, term);
        } else {
            emit_term(out, R3, term);
            out.push(Insn::new(op::OR32_X, R2, R3, 0, 0));
        }
    }
    out.extend([
        Insn::new(op::JNE32_K, R2, 0, 2, 0),
        Insn::new(op::MOV32_K, R0, 0, 0, i32::from(rule.allow)),
        Insn::new(op::EXIT, 0, 0, 0, 0),
    ]);
    Ok(())
}

/// Builds the eBPF device filter for `rules` (see the module documentation
/// for the semantics and the layout). Fails with
/// [`Error::InvalidDeviceRule`] on a type other than `a`, `b`, `c`, an
/// access letter other than `r`, `w`, `m`, or a major/minor outside
/// `0..=u32::MAX`.
pub fn program(rules: &[DeviceRule]) -> Result<Vec<Insn>> {
    let mut out = Vec::with_capacity(rules.len() * 20 + 2);
    for rule in rules.iter().rev() {
        rule_block(rule, &mut out)?;
    }
    out.push(Insn::new(op::MOV32_K, R0, 0, 0, 0));
    out.push(Insn::new(op::EXIT, 0, 0, 0, 0));
    Ok(out)
}

/// Builds the filter for `rules` and installs it on the cgroup2 directory
/// `dir`: [`program`], then [`apply_program`].
pub fn apply(dir: &Path, rules: &[DeviceRule]) -> Result<()> {
    apply_program(dir, &program(rules)?)
}

/// Loads `insns` as a `BPF_PROG_TYPE_CGROUP_DEVICE` program named
/// [`PROG_NAME`] and attaches it to the cgroup2 directory `dir`
/// (`BPF_CGROUP_DEVICE`, `BPF_F_ALLOW_MULTI`). A program named
/// [`PROG_NAME`] already attached there is replaced atomically
/// (`BPF_F_REPLACE`); should there be several, the others are detached
/// afterwards. Programs of other names are left alone.
///
/// Errors ([`Error::Bpf`]) name `dir`, the step and the errno; when the
/// verifier rejects the program, they carry its log. On error the filter
/// attached before (if any) is still in place.
pub fn apply_program(dir: &Path, insns: &[Insn]) -> Result<()> {
    let cg = open_dir(dir)?;
    let old: Vec<OwnedFd> = programs(dir, &cg)?
        .into_iter()
        .filter(|(p, _)| p.is_ours())
        .map(|(_, fd)| fd)
        .collect();
    let new = load(dir, insns)?;
    match old.split_first() {
        None => attach(dir, &cg, &new, None)?,
        Some((first, rest)) => {
            match attach(dir, &cg, &new, Some(first)) {
                // Detached by someone else since we looked: plain attach.
                Err(e) if e.errno() == Some(libc::ENOENT) => attach(dir, &cg, &new, None)?,
                other => other?,
            }
            for fd in rest {
                match detach(dir, &cg, fd) {
                    Err(e) if e.errno() == Some(libc::ENOENT) => {}
                    other => other?,
                }
            }
        }
    }
    Ok(())
}

/// A program attached to a cgroup as `BPF_CGROUP_DEVICE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachedProgram {
    /// The kernel's program id.
    pub id: u32,
    /// The name it was loaded with (possibly empty).
    pub name: String,
}

impl AttachedProgram {
    /// Whether [`apply`] attached it (its name is [`PROG_NAME`]).
    pub fn is_ours(&self) -> bool {
        self.name == PROG_NAME
    }
}

/// The device programs attached directly to the cgroup2 directory `dir`
/// (not those inherited from its ancestors), as the kernel lists them.
pub fn attached(dir: &Path) -> Result<Vec<AttachedProgram>> {
    let cg = open_dir(dir)?;
    Ok(programs(dir, &cg)?.into_iter().map(|(p, _)| p).collect())
}

// ---------------------------------------------------------------------------
// bpf(2)

const BPF_PROG_LOAD: c_int = 5;
const BPF_PROG_ATTACH: c_int = 8;
const BPF_PROG_DETACH: c_int = 9;
const BPF_PROG_GET_FD_BY_ID: c_int = 13;
const BPF_OBJ_GET_INFO_BY_FD: c_int = 15;
const BPF_PROG_QUERY: c_int = 16;

const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 1 << 1;
const BPF_F_REPLACE: u32 = 1 << 2;

/// Not used by the kernel for this program type, but required.
static LICENSE: &[u8] = b"Apache-2.0\0";

/// Verifier log buffer for a rejected program.
const LOG_SIZE: usize = 1 << 20;
/// How much of the log an error keeps (its end).
const LOG_KEEP: usize = 64 << 10;

/// The `BPF_PROG_LOAD` part of `union bpf_attr`, up to
/// `expected_attach_type`.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// The `BPF_PROG_ATTACH`/`BPF_PROG_DETACH` part, up to `expected_revision`.
#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
    relative_fd: u32,
    expected_revision: u64,
}

/// The `BPF_PROG_QUERY` part, through `revision` (the kernel writes
/// `attach_flags`, `prog_cnt` and `revision` back).
#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
    prog_attach_flags: u64,
    link_ids: u64,
    link_attach_flags: u64,
    revision: u64,
}

/// The `BPF_*_GET_FD_BY_ID` part.
#[repr(C)]
#[derive(Default)]
struct GetFdByIdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
    _pad: u32,
}

/// The `BPF_OBJ_GET_INFO_BY_FD` part.
#[repr(C)]
#[derive(Default)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// `struct bpf_prog_info` up to `name`.
#[repr(C)]
#[derive(Default)]
struct ProgInfo {
    prog_type: u32,
    id: u32,
    tag: [u8; 8],
    jited_prog_len: u32,
    xlated_prog_len: u32,
    jited_prog_insns: u64,
    xlated_prog_insns: u64,
    load_time: u64,
    created_by_uid: u32,
    nr_map_ids: u32,
    map_ids: u64,
    name: [u8; 16],
}

/// Marker for the `#[repr(C)]` attribute structs above: plain integers
/// (and byte arrays), no implicit padding.
trait BpfAttr {}
impl BpfAttr for ProgLoadAttr {}
impl BpfAttr for AttachAttr {}
impl BpfAttr for QueryAttr {}
impl BpfAttr for GetFdByIdAttr {}
impl BpfAttr for InfoAttr {}

/// `bpf(cmd, attr, sizeof(*attr))`. The kernel zero-fills the rest of its
/// `union bpf_attr`.
fn sys_bpf<T: BpfAttr>(cmd: c_int, attr: &mut T) -> io::Result<i64> {
    let size = std::mem::size_of::<T>() as libc::c_uint;
    // SAFETY: `attr` is a live, writable #[repr(C)] struct laid out as the
    // kernel's `union bpf_attr` member for `cmd` (for `size` bytes); every
    // pointer stored in it refers to a buffer that outlives this call and is
    // as large as the length stored next to it.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, size) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as i64)
    }
}

/// Wraps a file descriptor the kernel just returned.
fn owned(fd: i64) -> io::Result<OwnedFd> {
    let fd = i32::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: `fd` is a new descriptor returned by bpf(2) that nothing else
    // owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn bpf_error(dir: &Path, op: impl Into<String>, source: io::Error) -> Error {
    let mut op = op.into();
    if source.raw_os_error() == Some(libc::EBADF) {
        op.push_str(" (is it a cgroup2 directory?)");
    }
    Error::Bpf {
        path: dir.to_path_buf(),
        op,
        source,
        log: String::new(),
    }
}

fn fd_u32(fd: &OwnedFd) -> u32 {
    // Descriptors are never negative.
    fd.as_raw_fd() as u32
}

fn open_dir(dir: &Path) -> Result<OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    // (std opens close-on-exec.)
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(dir)
        .map(OwnedFd::from)
        .map_err(|e| bpf_error(dir, "opening the cgroup directory", e))
}

fn load_attr(insns: &[Insn], log: Option<&mut [u8]>) -> ProgLoadAttr {
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: LICENSE.as_ptr() as u64,
        ..Default::default()
    };
    let name = PROG_NAME.as_bytes();
    let n = name.len().min(attr.prog_name.len() - 1);
    attr.prog_name[..n].copy_from_slice(&name[..n]);
    if let Some(log) = log {
        attr.log_level = 1;
        attr.log_size = log.len() as u32;
        attr.log_buf = log.as_mut_ptr() as u64;
    }
    attr
}

fn load(dir: &Path, insns: &[Insn]) -> Result<OwnedFd> {
    let what = || format!("loading the device filter ({} instructions)", insns.len());
    if u32::try_from(insns.len()).is_err() {
        return Err(bpf_error(
            dir,
            what(),
            io::Error::from_raw_os_error(libc::E2BIG),
        ));
    }
    // First without a log (a log that overflows fails the load); the
    // verifier may spuriously ask to retry (EAGAIN).
    let mut res = Err(io::Error::from_raw_os_error(libc::EAGAIN));
    for _ in 0..5 {
        res = sys_bpf(BPF_PROG_LOAD, &mut load_attr(insns, None));
        if !matches!(&res, Err(e) if e.raw_os_error() == Some(libc::EAGAIN)) {
            break;
        }
    }
    let first = match res {
        Ok(fd) => return owned(fd).map_err(|e| bpf_error(dir, what(), e)),
        Err(e) => e,
    };
    // Rejected: again with a log, to say why.
    let mut buf = vec![0u8; LOG_SIZE];
    if let Ok(fd) = sys_bpf(BPF_PROG_LOAD, &mut load_attr(insns, Some(&mut buf))) {
        return owned(fd).map_err(|e| bpf_error(dir, what(), e));
    }
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let text = String::from_utf8_lossy(&buf[..len]);
    let mut start = text.len().saturating_sub(LOG_KEEP);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    let mut err = bpf_error(dir, what(), first);
    if let Error::Bpf { log, .. } = &mut err {
        *log = text[start..].to_string();
    }
    Err(err)
}

fn attach(dir: &Path, cg: &OwnedFd, prog: &OwnedFd, replace: Option<&OwnedFd>) -> Result<()> {
    let mut attr = AttachAttr {
        target_fd: fd_u32(cg),
        attach_bpf_fd: fd_u32(prog),
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..Default::default()
    };
    let mut what = "attaching the device filter (BPF_F_ALLOW_MULTI)";
    if let Some(old) = replace {
        attr.attach_flags |= BPF_F_REPLACE;
        attr.replace_bpf_fd = fd_u32(old);
        what = "attaching the device filter (BPF_F_ALLOW_MULTI | BPF_F_REPLACE)";
    }
    sys_bpf(BPF_PROG_ATTACH, &mut attr).map_err(|e| bpf_error(dir, what, e))?;
    Ok(())
}

fn detach(dir: &Path, cg: &OwnedFd, prog: &OwnedFd) -> Result<()> {
    let mut attr = AttachAttr {
        target_fd: fd_u32(cg),
        attach_bpf_fd: fd_u32(prog),
        attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    sys_bpf(BPF_PROG_DETACH, &mut attr)
        .map_err(|e| bpf_error(dir, "detaching an old device filter", e))?;
    Ok(())
}

/// Ids of the programs attached directly to `cg`.
fn query(dir: &Path, cg: &OwnedFd) -> Result<Vec<u32>> {
    // The kernel allows 64 programs per cgroup and attach type; grow anyway
    // if it says the buffer is too small.
    let mut ids = vec![0u32; 64];
    for _ in 0..4 {
        let mut attr = QueryAttr {
            target_fd: fd_u32(cg),
            attach_type: BPF_CGROUP_DEVICE,
            prog_ids: ids.as_mut_ptr() as u64,
            prog_cnt: ids.len() as u32,
            ..Default::default()
        };
        match sys_bpf(BPF_PROG_QUERY, &mut attr) {
            Ok(_) => {
                ids.truncate(attr.prog_cnt as usize);
                return Ok(ids);
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => {
                let want = (attr.prog_cnt as usize).max(ids.len() * 2);
                ids = vec![0u32; want];
            }
            Err(e) => return Err(bpf_error(dir, "querying the attached device programs", e)),
        }
    }
    Err(bpf_error(
        dir,
        "querying the attached device programs",
        io::Error::from_raw_os_error(libc::ENOSPC),
    ))
}

/// The programs attached directly to `cg`, with a descriptor for each.
/// Programs that vanish while we look are skipped.
fn programs(dir: &Path, cg: &OwnedFd) -> Result<Vec<(AttachedProgram, OwnedFd)>> {
    let mut out = Vec::new();
    for id in query(dir, cg)? {
        let mut attr = GetFdByIdAttr {
            prog_id: id,
            ..Default::default()
        };
        let fd = match sys_bpf(BPF_PROG_GET_FD_BY_ID, &mut attr).and_then(owned) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => {
                return Err(bpf_error(
                    dir,
                    format!("opening attached device program {id}"),
                    e,
                ))
            }
        };
        let mut info = ProgInfo::default();
        let mut attr = InfoAttr {
            bpf_fd: fd_u32(&fd),
            info_len: std::mem::size_of::<ProgInfo>() as u32,
            info: &mut info as *mut ProgInfo as u64,
        };
        sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr).map_err(|e| {
            bpf_error(
                dir,
                format!("reading the name of attached device program {id}"),
                e,
            )
        })?;
        let len = info.name.iter().position(|&b| b == 0).unwrap_or(16);
        let name = String::from_utf8_lossy(&info.name[..len]).into_owned();
        out.push((AttachedProgram { id, name }, fd));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    const R: u32 = ACC_READ;
    const W: u32 = ACC_WRITE;
    const M: u32 = ACC_MKNOD;
    const B: u32 = DEV_BLOCK as u32;
    const C: u32 = DEV_CHAR as u32;

    /// The reference semantics, straight from the module documentation.
    fn decide(rules: &[DeviceRule], ty: u32, major: u32, minor: u32, access: u32) -> bool {
        for r in rules.iter().rev() {
            let ty_ok = match r.kind {
                'a' => true,
                'b' => ty == B,
                'c' => ty == C,
                _ => unreachable!(),
            };
            let num_ok = |v: Option<i64>, n: u32| match v {
                None => true,
                Some(v) => v == i64::from(n),
            };
            if !ty_ok || !num_ok(r.major, major) || !num_ok(r.minor, minor) {
                continue;
            }
            let bits = access_bits(r).unwrap();
            if r.allow && access & !bits == 0 {
                return true;
            }
            if !r.allow && access & bits != 0 {
                return false;
            }
        }
        false
    }

    #[derive(Clone, Copy, Debug)]
    enum Val {
        Uninit,
        Ctx,
        Scalar(u64),
    }

    /// Runs `prog` like the kernel would, for exactly the instructions
    /// [`program`] emits; panics on anything else, on a jump out of the
    /// program or backwards, on reading an unset register, or on falling
    /// off the end.
    fn run(prog: &[Insn], ty: u32, major: u32, minor: u32, access: u32) -> bool {
        let ctx = [(access << 16) | ty, major, minor];
        let mut regs = [Val::Uninit; 11];
        regs[1] = Val::Ctx;
        let scalar = |regs: &[Val; 11], r: u8| match regs[r as usize] {
            Val::Scalar(v) => v,
            other => panic!("r{r} is {other:?}, not a scalar"),
        };
        let mut pc = 0usize;
        loop {
            let i = *prog
                .get(pc)
                .unwrap_or_else(|| panic!("fell off the end at {pc}"));
            let (dst, src) = (i.dst(), i.src());
            assert!(dst <= 10 && src <= 10, "bad register in {i:?}");
            let mut next = pc + 1;
            let jump = |off: i16| {
                assert!(off >= 0, "backward jump at {pc}: {i:?}");
                let t = pc + 1 + off as usize;
                assert!(t < prog.len(), "jump out of the program at {pc}: {i:?}");
                t
            };
            match i.code {
                op::LDXW => {
                    assert!(matches!(regs[src as usize], Val::Ctx), "load from non-ctx");
                    assert_eq!(i.off % 4, 0);
                    let v = ctx[usize::try_from(i.off / 4).unwrap()];
                    regs[dst as usize] = Val::Scalar(u64::from(v));
                }
                op::MOV32_K => regs[dst as usize] = Val::Scalar(i.imm as u32 as u64),
                op::AND32_K | op::XOR32_K | op::ADD32_K | op::RSH32_K => {
                    let (a, k) = (scalar(&regs, dst) as u32, i.imm as u32);
                    let v = match i.code {
                        op::AND32_K => a & k,
                        op::XOR32_K => a ^ k,
                        op::ADD32_K => a.wrapping_add(k),
                        _ => a >> (k & 31),
                    };
                    regs[dst as usize] = Val::Scalar(u64::from(v));
                }
                op::OR32_X => {
                    let v = scalar(&regs, dst) as u32 | scalar(&regs, src) as u32;
                    regs[dst as usize] = Val::Scalar(u64::from(v));
                }
                op::JNE32_K => {
                    if scalar(&regs, dst) as u32 != i.imm as u32 {
                        next = jump(i.off);
                    }
                }
                op::EXIT => {
                    return match scalar(&regs, R0) {
                        0 => false,
                        1 => true,
                        v => panic!("returns {v}"),
                    }
                }
                other => panic!("unexpected opcode {other:#x} at {pc}"),
            }
            pc = next;
        }
    }

    /// Checks `rules` against `expected` cases through the interpreter and
    /// the reference.
    fn check(rules: &[DeviceRule], cases: &[(u32, u32, u32, u32, bool)]) {
        let prog = program(rules).unwrap();
        for &(ty, major, minor, access, want) in cases {
            assert_eq!(
                decide(rules, ty, major, minor, access),
                want,
                "reference: {ty} {major}:{minor} {access:#b} with {rules:?}"
            );
            assert_eq!(
                run(&prog, ty, major, minor, access),
                want,
                "program: {ty} {major}:{minor} {access:#b} with {rules:?}"
            );
        }
    }

    #[test]
    fn deny_all_then_allow_null() {
        let rules = [
            rule(false, 'a', None, None, "rwm"),
            rule(true, 'c', Some(1), Some(3), "rwm"),
        ];
        check(
            &rules,
            &[
                (C, 1, 3, R | W, true),
                (C, 1, 3, R, true),
                (C, 1, 3, M, true),
                (B, 8, 0, R, false),
                (B, 1, 3, R, false),
                (C, 1, 5, R, false),
                (C, 1, 5, M, false),
                (C, 2, 3, R, false),
            ],
        );
    }

    #[test]
    fn read_only_allow() {
        let rules = [
            rule(false, 'a', None, None, "rwm"),
            rule(true, 'c', Some(1), Some(3), "r"),
        ];
        check(
            &rules,
            &[
                (C, 1, 3, R | W, false),
                (C, 1, 3, R, true),
                (C, 1, 3, W, false),
                (C, 1, 3, M, false),
            ],
        );
    }

    #[test]
    fn allow_all_then_deny_write() {
        let rules = [
            rule(true, 'a', None, None, "rwm"),
            rule(false, 'c', Some(1), Some(3), "w"),
        ];
        check(
            &rules,
            &[
                (C, 1, 3, R, true),
                (C, 1, 3, R | W, false),
                (C, 1, 3, W, false),
                (C, 1, 3, M, true),
                (C, 1, 5, R | W, true),
                (B, 1, 3, W, true),
            ],
        );
    }

    #[test]
    fn empty_rules_deny_everything() {
        assert_eq!(program(&[]).unwrap().len(), 2);
        check(
            &[],
            &[
                (C, 1, 3, R | W | M, false),
                (B, 8, 0, R, false),
                (B, 0, 0, 0, false),
            ],
        );
    }

    /// A list without a deny-all rule opens only what it allows (issue 16: such a config
    /// used to leave every host device open).
    #[test]
    fn no_deny_all_rule_still_denies_the_rest() {
        check(
            &[rule(true, 'c', Some(1), Some(3), "rwm")],
            &[
                (C, 1, 3, R | W, true),
                (C, 1, 1, R, false),
                (B, 8, 0, R, false),
                (B, 8, 0, M, false),
            ],
        );
    }

    #[test]
    fn wildcards_and_last_rule_wins() {
        let rules = [
            rule(false, 'a', None, None, "rwm"),
            rule(true, 'c', None, None, "m"),
            rule(true, 'b', None, None, "m"),
            rule(true, 'c', Some(136), None, "rwm"),
            rule(true, 'c', None, Some(9), "r"),
            rule(false, 'c', Some(136), Some(4), "r"),
            rule(true, 'c', Some(136), Some(4), "w"),
        ];
        check(
            &rules,
            &[
                (C, 9, 9, M, true),
                (B, 9, 9, M, true),
                (B, 9, 9, R, false),
                (C, 136, 0, R | W, true),
                (C, 136, 4, W, true),
                (C, 136, 4, R, false),
                (C, 136, 4, R | W, false),
                (C, 7, 9, R, true),
                (C, 7, 9, R | W, false),
                (B, 7, 9, R, false),
            ],
        );
    }

    #[test]
    fn empty_access() {
        // An empty deny matches nothing; an empty allow only an empty request (which no
        // deny matches either, so only an allow lets it through).
        let rules = [
            rule(false, 'a', None, None, "rwm"),
            rule(false, 'c', Some(1), Some(3), ""),
        ];
        assert_eq!(program(&rules).unwrap(), program(&rules[..1]).unwrap());
        check(&rules, &[(C, 1, 3, R, false), (C, 1, 3, 0, false)]);
        let rules = [
            rule(false, 'a', None, None, "rwm"),
            rule(true, 'c', Some(1), Some(3), ""),
        ];
        check(&rules, &[(C, 1, 3, R, false), (C, 1, 3, 0, true)]);
    }

    #[test]
    fn full_range_numbers() {
        let big = i64::from(u32::MAX);
        let rules = [
            rule(false, 'a', None, None, "rwm"),
            rule(true, 'c', Some(big), Some(big - 1), "rw"),
        ];
        check(
            &rules,
            &[
                (C, u32::MAX, u32::MAX - 1, R, true),
                (C, u32::MAX, u32::MAX, R, false),
                (C, u32::MAX - 1, u32::MAX - 1, R, false),
            ],
        );
    }

    #[test]
    fn invalid_rules_are_errors() {
        let bad = [
            rule(true, 'x', None, None, "rwm"),
            rule(true, 'c', Some(-1), None, "rwm"),
            rule(true, 'c', None, Some(1 << 32), "rwm"),
            rule(true, 'c', None, None, "rx"),
        ];
        for r in bad {
            let e = program(std::slice::from_ref(&r)).unwrap_err();
            assert!(matches!(e, Error::InvalidDeviceRule { .. }), "{r:?}: {e}");
            assert!(e.to_string().contains("invalid device rule"), "{e}");
        }
    }

    /// A small deterministic PRNG (xorshift64*).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn random_rule(rng: &mut Rng) -> DeviceRule {
        let kind = ['a', 'b', 'c'][rng.below(3) as usize];
        let num = |rng: &mut Rng| (rng.below(3) != 0).then(|| rng.below(4) as i64);
        let major = num(rng);
        let minor = num(rng);
        let bits = rng.below(8);
        let access: String = [(1, 'r'), (2, 'w'), (4, 'm')]
            .iter()
            .filter(|(b, _)| bits & b != 0)
            .map(|&(_, c)| c)
            .collect();
        rule(rng.below(2) == 0, kind, major, minor, &access)
    }

    /// Every request (type, major, minor 0..4, every access) against random
    /// rule lists: the program and the reference agree.
    #[test]
    fn program_matches_reference_on_random_rules() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..300 {
            let n = rng.below(12) as usize;
            let rules: Vec<DeviceRule> = (0..n).map(|_| random_rule(&mut rng)).collect();
            let prog = program(&rules).unwrap();
            for ty in [B, C] {
                for major in 0..5 {
                    for minor in 0..5 {
                        for access in 0..8 {
                            assert_eq!(
                                run(&prog, ty, major, minor, access),
                                decide(&rules, ty, major, minor, access),
                                "{ty} {major}:{minor} {access:#b} with {rules:?}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// 500 rules: long programs, every jump still local and in range.
    #[test]
    fn five_hundred_rules() {
        let mut rules = vec![
            rule(false, 'a', None, None, "rwm"),
            rule(true, 'c', Some(1), Some(5), "r"),
        ];
        for i in 0..497 {
            if i % 2 == 0 {
                rules.push(rule(true, 'c', Some(300 + i), None, "rwm"));
            } else {
                rules.push(rule(false, 'b', Some(300 + i), Some(1), "w"));
            }
        }
        rules.push(rule(true, 'c', Some(1), Some(3), "r"));
        assert_eq!(rules.len(), 500);
        let prog = program(&rules).unwrap();
        assert!(prog.len() > 2000, "{}", prog.len());
        check(
            &rules,
            &[
                (C, 1, 3, R, true),
                (C, 1, 3, R | W, false),
                (C, 1, 5, R, true),
                (C, 1, 5, W, false),
                (C, 1, 7, R, false),
                (C, 300, 9, R | W | M, true),
                (C, 796, 0, R, true),
                (B, 301, 1, W, false),
                (B, 301, 1, R, false),
                (C, 301, 1, R, false),
            ],
        );
        let mut rng = Rng(42);
        for _ in 0..2000 {
            let (ty, major, minor, access) = (
                [B, C][rng.below(2) as usize],
                rng.below(900) as u32,
                rng.below(3) as u32,
                rng.below(8) as u32,
            );
            assert_eq!(
                run(&prog, ty, major, minor, access),
                decide(&rules, ty, major, minor, access)
            );
        }
    }

    #[test]
    fn layout_of_one_rule() {
        let prog = program(&[rule(false, 'c', Some(1), Some(3), "w")]).unwrap();
        let ld = |dst, off| Insn::new(op::LDXW, dst, R_CTX, off, 0);
        let alu = |code, dst, imm| Insn::new(code, dst, 0, 0, imm);
        let or = Insn::new(op::OR32_X, R2, R3, 0, 0);
        let exit = Insn::new(op::EXIT, 0, 0, 0, 0);
        assert_eq!(
            prog,
            [
                ld(R2, CTX_ACCESS_TYPE),
                alu(op::AND32_K, R2, 0xffff),
                alu(op::XOR32_K, R2, DEV_CHAR),
                ld(R3, CTX_MAJOR),
                alu(op::XOR32_K, R3, 1),
                or,
                ld(R3, CTX_MINOR),
                alu(op::XOR32_K, R3, 3),
                or,
                ld(R3, CTX_ACCESS_TYPE),
                alu(op::RSH32_K, R3, 16),
                alu(op::AND32_K, R3, ACC_WRITE as i32),
                alu(op::ADD32_K, R3, -1),
                alu(op::RSH32_K, R3, 31),
                or,
                Insn::new(op::JNE32_K, R2, 0, 2, 0),
                alu(op::MOV32_K, R0, 0),
                exit,
                // Nothing matched.
                alu(op::MOV32_K, R0, 0),
                exit,
            ]
        );
        let prog = program(&[rule(true, 'a', None, None, "rm")]).unwrap();
        assert_eq!(
            prog[..6],
            [
                ld(R2, CTX_ACCESS_TYPE),
                alu(op::RSH32_K, R2, 16),
                alu(op::AND32_K, R2, !(ACC_READ | ACC_MKNOD) as i32),
                Insn::new(op::JNE32_K, R2, 0, 2, 0),
                alu(op::MOV32_K, R0, 1),
                exit,
            ]
        );
        assert_eq!(std::mem::size_of::<Insn>(), 8);
    }

    #[test]
    fn attr_sizes_match_the_kernel() {
        use std::mem::size_of;
        assert_eq!(size_of::<ProgLoadAttr>(), 72);
        assert_eq!(size_of::<AttachAttr>(), 32);
        assert_eq!(size_of::<QueryAttr>(), 64);
        assert_eq!(size_of::<GetFdByIdAttr>(), 16);
        assert_eq!(size_of::<InfoAttr>(), 16);
        assert_eq!(size_of::<ProgInfo>(), 80);
        assert_eq!(PROG_NAME.len(), 14);
    }
}

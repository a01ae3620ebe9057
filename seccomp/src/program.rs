//! The compiled program: storage, validation, serialisation, interpretation.

use crate::{Error, Result, FLAG_NEW_LISTENER, RET_KILL_PROCESS};

/// `BPF_MAXINSNS`: the kernel's limit on the program length.
pub const MAX_INSNS: usize = 4096;

pub(crate) const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
pub(crate) const ALU_AND_K: u16 = 0x54; // BPF_ALU | BPF_AND | BPF_K
pub(crate) const JA: u16 = 0x05; // BPF_JMP | BPF_JA
pub(crate) const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
pub(crate) const JGT_K: u16 = 0x25; // BPF_JMP | BPF_JGT | BPF_K
pub(crate) const JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
pub(crate) const JSET_K: u16 = 0x45; // BPF_JMP | BPF_JSET | BPF_K
pub(crate) const RET_K: u16 = 0x06; // BPF_RET | BPF_K

/// `sizeof(struct seccomp_data)`.
const SECCOMP_DATA_LEN: u32 = 64;

/// One classic-BPF instruction, layout-identical to `struct sock_filter`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Insn {
    /// Opcode.
    pub code: u16,
    /// Jump offset if true.
    pub jt: u8,
    /// Jump offset if false.
    pub jf: u8,
    /// Constant.
    pub k: u32,
}

const _: () = {
    assert!(std::mem::size_of::<Insn>() == std::mem::size_of::<libc::sock_filter>());
    assert!(std::mem::align_of::<Insn>() == std::mem::align_of::<libc::sock_filter>());
    assert!(std::mem::size_of::<Insn>() == 8);
};

/// A compiled seccomp filter plus its `seccomp()` flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    pub(crate) insns: Vec<Insn>,
    pub(crate) flags: u32,
    /// Non-fatal findings of the compiler, e.g. syscall names unknown on an
    /// architecture (skipped there).
    pub warnings: Vec<String>,
}

const MAGIC: &[u8; 8] = b"CRLSCMP\0";
const FORMAT_VERSION: u32 = 1;

struct Reader<'a> {
    buf: &'a [u8],
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        if self.buf.len() < n {
            return Err(Error::InvalidProgram("truncated data".into()));
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }
    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

impl Program {
    /// Number of instructions.
    pub fn len(&self) -> usize {
        self.insns.len()
    }

    /// Whether the program has no instructions (never true for a compiled
    /// or deserialised program).
    pub fn is_empty(&self) -> bool {
        self.insns.is_empty()
    }

    /// The instructions.
    pub fn instructions(&self) -> &[Insn] {
        &self.insns
    }

    /// The `SECCOMP_FILTER_FLAG_*` bits to install with.
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// Whether installing returns a notify listener (some action is Notify).
    pub fn needs_listener(&self) -> bool {
        self.flags & FLAG_NEW_LISTENER != 0
    }

    /// A `sock_fprog` pointing into `self` (valid while `self` lives and is
    /// not mutated). The kernel only reads through the pointer.
    pub fn fprog(&self) -> libc::sock_fprog {
        libc::sock_fprog {
            // Validated: len <= MAX_INSNS < u16::MAX.
            len: self.insns.len() as u16,
            filter: self.insns.as_ptr() as *mut libc::sock_filter,
        }
    }

    /// Serialises the program (instructions, flags, warnings) for a cache.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(24 + 8 * self.insns.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&self.flags.to_le_bytes());
        out.extend_from_slice(&(self.insns.len() as u32).to_le_bytes());
        for i in &self.insns {
            out.extend_from_slice(&i.code.to_le_bytes());
            out.push(i.jt);
            out.push(i.jf);
            out.extend_from_slice(&i.k.to_le_bytes());
        }
        out.extend_from_slice(&(self.warnings.len() as u32).to_le_bytes());
        for w in &self.warnings {
            out.extend_from_slice(&(w.len() as u32).to_le_bytes());
            out.extend_from_slice(w.as_bytes());
        }
        out
    }

    /// Deserialises and validates what [`Program::to_bytes`] produced.
    pub fn from_bytes(bytes: &[u8]) -> Result<Program> {
        let mut r = Reader { buf: bytes };
        if r.take(MAGIC.len())? != MAGIC {
            return Err(Error::InvalidProgram("bad magic".into()));
        }
        let version = r.u32()?;
        if version != FORMAT_VERSION {
            return Err(Error::InvalidProgram(format!(
                "unsupported format version {version}"
            )));
        }
        let flags = r.u32()?;
        let n = r.u32()? as usize;
        if n > MAX_INSNS {
            return Err(Error::TooLarge(n));
        }
        let mut insns = Vec::with_capacity(n);
        for _ in 0..n {
            let b = r.take(8)?;
            insns.push(Insn {
                code: u16::from_le_bytes([b[0], b[1]]),
                jt: b[2],
                jf: b[3],
                k: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            });
        }
        let nw = r.u32()? as usize;
        let mut warnings = Vec::new();
        for _ in 0..nw {
            let len = r.u32()? as usize;
            let s = std::str::from_utf8(r.take(len)?)
                .map_err(|_| Error::InvalidProgram("warning is not utf-8".into()))?;
            warnings.push(s.to_string());
        }
        if !r.buf.is_empty() {
            return Err(Error::InvalidProgram("trailing data".into()));
        }
        let p = Program {
            insns,
            flags,
            warnings,
        };
        p.verify()?;
        Ok(p)
    }

    /// Checks what the kernel's classic-BPF checker checks for the subset of
    /// instructions this crate emits: length, known opcodes, in-range jumps
    /// and loads, and a final return.
    pub fn verify(&self) -> Result<()> {
        let len = self.insns.len();
        if len == 0 {
            return Err(Error::InvalidProgram("empty program".into()));
        }
        if len > MAX_INSNS {
            return Err(Error::TooLarge(len));
        }
        let bad = |pc: usize, what: &str| Err(Error::InvalidProgram(format!("{what} at {pc}")));
        for (pc, i) in self.insns.iter().enumerate() {
            match i.code {
                LD_W_ABS => {
                    if i.k % 4 != 0 || i.k >= SECCOMP_DATA_LEN {
                        return bad(pc, "load outside seccomp_data");
                    }
                }
                ALU_AND_K | RET_K => {}
                JA => {
                    if pc as u64 + 1 + u64::from(i.k) >= len as u64 {
                        return bad(pc, "jump out of range");
                    }
                }
                JEQ_K | JGT_K | JGE_K | JSET_K => {
                    if pc + 1 + usize::from(i.jt.max(i.jf)) >= len {
                        return bad(pc, "jump out of range");
                    }
                }
                _ => return bad(pc, &format!("unsupported opcode {:#06x}", i.code)),
            }
        }
        if self.insns[len - 1].code != RET_K {
            return bad(len - 1, "missing final return");
        }
        Ok(())
    }

    /// Runs the filter in user space on a syscall (`arch` is an
    /// `AUDIT_ARCH_*` value, `nr` the raw number) and returns the
    /// `SECCOMP_RET_*` value the kernel would act on. A malformed program
    /// yields `SECCOMP_RET_KILL_PROCESS`.
    pub fn evaluate(&self, arch: u32, nr: u32, args: &[u64; 6]) -> u32 {
        let mut data = [0u32; 16];
        data[0] = nr;
        data[1] = arch;
        // data[2..4]: instruction pointer, left 0.
        for (i, a) in args.iter().enumerate() {
            data[4 + 2 * i] = *a as u32;
            data[5 + 2 * i] = (*a >> 32) as u32;
        }
        let mut acc: u32 = 0;
        let mut pc = 0usize;
        while let Some(i) = self.insns.get(pc) {
            pc += 1;
            match i.code {
                LD_W_ABS => match data.get(i.k as usize / 4) {
                    Some(v) if i.k % 4 == 0 => acc = *v,
                    _ => return RET_KILL_PROCESS,
                },
                ALU_AND_K => acc &= i.k,
                RET_K => return i.k,
                JA => pc += i.k as usize,
                JEQ_K | JGT_K | JGE_K | JSET_K => {
                    let taken = match i.code {
                        JEQ_K => acc == i.k,
                        JGT_K => acc > i.k,
                        JGE_K => acc >= i.k,
                        _ => acc & i.k != 0,
                    };
                    pc += usize::from(if taken { i.jt } else { i.jf });
                }
                _ => return RET_KILL_PROCESS,
            }
        }
        RET_KILL_PROCESS
    }

    /// A human-readable listing, one instruction per line.
    pub fn disassemble(&self) -> String {
        let mut s = String::new();
        for (pc, i) in self.insns.iter().enumerate() {
            let line = match i.code {
                LD_W_ABS => format!("ld [{}]", i.k),
                ALU_AND_K => format!("and #{:#x}", i.k),
                RET_K => format!("ret #{:#x}", i.k),
                JA => format!("ja {}", pc + 1 + i.k as usize),
                JEQ_K | JGT_K | JGE_K | JSET_K => {
                    let op = match i.code {
                        JEQ_K => "jeq",
                        JGT_K => "jgt",
                        JGE_K => "jge",
                        _ => "jset",
                    };
                    format!(
                        "{op} #{:#x} jt {} jf {}",
                        i.k,
                        pc + 1 + usize::from(i.jt),
                        pc + 1 + usize::from(i.jf)
                    )
                }
                c => format!("?? code {c:#x}"),
            };
            s.push_str(&format!("{pc:04}: {line}\n"));
        }
        s
    }
}

//! Seccomp for corral: a pure-Rust compiler from a seccomp policy to a
//! classic-BPF filter program, and the installer for that program.
//!
//! # What this crate owns
//!
//! * The policy model ([`Policy`], [`Rule`], [`ArgCmp`], [`Action`], [`Op`],
//!   [`Arch`], [`Flag`]): plain data mirroring what the OCI runtime spec's
//!   `linux.seccomp` section can express, with parsers for the OCI strings
//!   (`"SCMP_ACT_ERRNO"`, `"SCMP_CMP_MASKED_EQ"`, `"SCMP_ARCH_X86_64"`, ...).
//!   It knows nothing about OCI types; the runtime converts.
//! * Per-architecture syscall tables (x86_64, x86, x32, aarch64, arm),
//!   generated from the kernel's tables by `tools/gen_tables.py`.
//! * [`compile`]: policy → [`Program`] (classic BPF, at most 4096
//!   instructions). The program checks `seccomp_data.arch` first (the native
//!   architecture is always covered, like libseccomp does; an architecture
//!   that is not listed gets `SECCOMP_RET_KILL_PROCESS`; on
//!   x86_64, x32 system calls are a separate architecture), dispatches on the
//!   syscall number with a binary search tree, evaluates argument comparisons
//!   as full 64-bit unsigned comparisons (low 32 bits only on the 32-bit ABIs
//!   x86, x32 and arm, like libseccomp), tries the rules of a syscall in
//!   policy order (first match wins) and falls back to the default action.
//!   Under a default that refuses (errno other than `ENOSYS`, kill, trap), a
//!   syscall newer than the policy (numbered above the newest one it names
//!   for that ABI), and `clone3`, `close_range`, `faccessat2`, `fchmodat2`,
//!   `openat2` and `statx` when the policy does not name them, get
//!   `ENOSYS` instead, as runc's filters do, so the C library falls back to
//!   the older call (`clone3` → `clone`, `faccessat2` → `faccessat`, ...);
//!   see the `compiler` module for the exact rule.
//!   Long jumps are relaxed into `ja` trampolines, so any policy size that
//!   fits the kernel's limit is correct.
//! * [`Program`] serialisation ([`Program::to_bytes`] / [`Program::from_bytes`],
//!   with validation) for an on-disk cache, and a user-space interpreter
//!   ([`Program::evaluate`]) for tests and debugging.
//! * The installer: [`install_raw`] and [`install`].
//!
//! # What it promises
//!
//! * [`install_raw`] is async-signal-safe: it allocates nothing, takes no
//!   locks and makes exactly one system call, so it can run in a freshly
//!   cloned child (between `clone` and `execve`). Compile first, in the
//!   parent; install in the child.
//! * No panics: every failure is an [`Error`] naming the syscall, architecture,
//!   argument or string at fault. Syscall names unknown on an architecture are
//!   skipped on that architecture with a warning (like libseccomp/runc do),
//!   see [`Program::warnings`].
//!
//! # What it never does
//!
//! * It never links or calls libseccomp, never reads files, never logs.
//! * It never sets `PR_SET_NO_NEW_PRIVS`: the caller decides (without it,
//!   installing a filter needs `CAP_SYS_ADMIN`).
//! * It never installs a filter as a side effect of compiling.
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use std::fmt;
use std::os::fd::{FromRawFd, OwnedFd};
use std::str::FromStr;

mod compiler;
mod program;
mod tables;

pub use compiler::compile;
pub use program::{Insn, Program, MAX_INSNS};

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An architecture string that is not one of the supported OCI names.
    #[error("unknown seccomp architecture '{0}'")]
    UnknownArch(String),
    /// An action string that is not one of the OCI `SCMP_ACT_*` names.
    #[error("unknown seccomp action '{0}'")]
    UnknownAction(String),
    /// An operator string that is not one of the OCI `SCMP_CMP_*` names.
    #[error("unknown seccomp comparison operator '{0}'")]
    UnknownOp(String),
    /// A filter flag string that is not supported.
    #[error("unknown seccomp filter flag '{0}'")]
    UnknownFlag(String),
    /// An errno/trace value given to an action that takes none, or too large.
    #[error("invalid return value {value} for seccomp action '{action}'")]
    ActionValue {
        /// The action name.
        action: String,
        /// The offending value.
        value: u32,
    },
    /// An argument index outside `0..=5`.
    #[error("argument index {index} out of range 0..=5 in a rule for syscall '{syscall}'")]
    ArgIndex {
        /// First syscall name of the rule.
        syscall: String,
        /// The offending index.
        index: u32,
    },
    /// A rule without syscall names.
    #[error("seccomp rule #{0} names no syscall")]
    EmptyRule(usize),
    /// The build target has no supported native architecture and the policy
    /// lists none.
    #[error("no architecture listed and the native architecture is not supported")]
    NoNativeArch,
    /// The compiled program exceeds the kernel's limit.
    #[error("compiled seccomp program has {0} instructions, more than the kernel limit of 4096")]
    TooLarge(usize),
    /// A serialized or compiled program failed validation.
    #[error("invalid seccomp program: {0}")]
    InvalidProgram(String),
    /// The kernel refused the filter.
    #[error("installing the seccomp filter failed: {0}")]
    Install(#[source] std::io::Error),
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

// ---------------------------------------------------------------------------
// Architectures

const EM_386: u32 = 3;
const EM_ARM: u32 = 40;
const EM_X86_64: u32 = 62;
const EM_AARCH64: u32 = 183;
const AUDIT_ARCH_64BIT: u32 = 0x8000_0000;
const AUDIT_ARCH_LE: u32 = 0x4000_0000;

/// `AUDIT_ARCH_X86_64`.
pub const AUDIT_ARCH_X86_64: u32 = EM_X86_64 | AUDIT_ARCH_64BIT | AUDIT_ARCH_LE;
/// `AUDIT_ARCH_I386`.
pub const AUDIT_ARCH_I386: u32 = EM_386 | AUDIT_ARCH_LE;
/// `AUDIT_ARCH_AARCH64`.
pub const AUDIT_ARCH_AARCH64: u32 = EM_AARCH64 | AUDIT_ARCH_64BIT | AUDIT_ARCH_LE;
/// `AUDIT_ARCH_ARM` (little-endian EABI).
pub const AUDIT_ARCH_ARM: u32 = EM_ARM | AUDIT_ARCH_LE;
/// `__X32_SYSCALL_BIT`: x32 syscalls are x86_64 syscalls with this bit set.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// A syscall ABI a filter can cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Arch {
    /// `SCMP_ARCH_X86_64`.
    X86_64,
    /// `SCMP_ARCH_X86` (i386, also the ia32 compat ABI on x86_64).
    X86,
    /// `SCMP_ARCH_X32` (shares `AUDIT_ARCH_X86_64`, numbers carry bit 30).
    X32,
    /// `SCMP_ARCH_AARCH64`.
    Aarch64,
    /// `SCMP_ARCH_ARM` (EABI, little-endian).
    Arm,
}

impl Arch {
    /// All supported architectures.
    pub const ALL: [Arch; 5] = [Arch::X86_64, Arch::X86, Arch::X32, Arch::Aarch64, Arch::Arm];

    /// The `AUDIT_ARCH_*` value the kernel reports in `seccomp_data.arch`.
    pub fn audit_arch(self) -> u32 {
        match self {
            Arch::X86_64 | Arch::X32 => AUDIT_ARCH_X86_64,
            Arch::X86 => AUDIT_ARCH_I386,
            Arch::Aarch64 => AUDIT_ARCH_AARCH64,
            Arch::Arm => AUDIT_ARCH_ARM,
        }
    }

    /// The OCI / libseccomp name, e.g. `"SCMP_ARCH_X86_64"`.
    pub fn oci_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "SCMP_ARCH_X86_64",
            Arch::X86 => "SCMP_ARCH_X86",
            Arch::X32 => "SCMP_ARCH_X32",
            Arch::Aarch64 => "SCMP_ARCH_AARCH64",
            Arch::Arm => "SCMP_ARCH_ARM",
        }
    }

    /// Whether syscall arguments are 32 bits wide in this ABI (only the low
    /// word of each argument is compared, like libseccomp does).
    pub fn is_32bit(self) -> bool {
        matches!(self, Arch::X86 | Arch::X32 | Arch::Arm)
    }

    /// The architecture of the running build, if supported.
    pub fn native() -> Option<Arch> {
        if cfg!(all(target_arch = "x86_64", target_pointer_width = "64")) {
            Some(Arch::X86_64)
        } else if cfg!(all(target_arch = "x86_64", target_pointer_width = "32")) {
            Some(Arch::X32)
        } else if cfg!(target_arch = "x86") {
            Some(Arch::X86)
        } else if cfg!(target_arch = "aarch64") {
            Some(Arch::Aarch64)
        } else if cfg!(all(target_arch = "arm", target_endian = "little")) {
            Some(Arch::Arm)
        } else {
            None
        }
    }

    fn table(self) -> &'static [(&'static str, u32)] {
        match self {
            Arch::X86_64 => tables::X86_64,
            Arch::X86 => tables::X86,
            Arch::X32 => tables::X32,
            Arch::Aarch64 => tables::AARCH64,
            Arch::Arm => tables::ARM,
        }
    }

    /// The syscall number of `name` on this architecture (x32 numbers include
    /// [`X32_SYSCALL_BIT`]).
    pub fn syscall_number(self, name: &str) -> Option<u32> {
        let t = self.table();
        t.binary_search_by(|(n, _)| (*n).cmp(name))
            .ok()
            .map(|i| t[i].1)
    }

    /// All syscall names known on this architecture, sorted.
    pub fn syscall_names(self) -> impl Iterator<Item = &'static str> {
        self.table().iter().map(|(n, _)| *n)
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.oci_name())
    }
}

impl FromStr for Arch {
    type Err = Error;
    fn from_str(s: &str) -> Result<Arch> {
        Arch::ALL
            .into_iter()
            .find(|a| a.oci_name() == s)
            .ok_or_else(|| Error::UnknownArch(s.to_string()))
    }
}

// ---------------------------------------------------------------------------
// Actions

/// `SECCOMP_RET_KILL_THREAD`.
pub const RET_KILL_THREAD: u32 = 0;
/// `SECCOMP_RET_KILL_PROCESS`.
pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
/// `SECCOMP_RET_TRAP`.
pub const RET_TRAP: u32 = 0x0003_0000;
/// `SECCOMP_RET_ERRNO`.
pub const RET_ERRNO: u32 = 0x0005_0000;
/// `SECCOMP_RET_USER_NOTIF`.
pub const RET_USER_NOTIF: u32 = 0x7fc0_0000;
/// `SECCOMP_RET_TRACE`.
pub const RET_TRACE: u32 = 0x7ff0_0000;
/// `SECCOMP_RET_LOG`.
pub const RET_LOG: u32 = 0x7ffc_0000;
/// `SECCOMP_RET_ALLOW`.
pub const RET_ALLOW: u32 = 0x7fff_0000;

/// What the filter does with a matching syscall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// `SCMP_ACT_KILL` / `SCMP_ACT_KILL_THREAD`.
    KillThread,
    /// `SCMP_ACT_KILL_PROCESS`.
    KillProcess,
    /// `SCMP_ACT_TRAP`: SIGSYS.
    Trap,
    /// `SCMP_ACT_ERRNO`: fail with this errno.
    Errno(u16),
    /// `SCMP_ACT_TRACE`: notify a ptrace tracer with this value (ENOSYS if
    /// there is none).
    Trace(u16),
    /// `SCMP_ACT_ALLOW`.
    Allow,
    /// `SCMP_ACT_LOG`: allow and log.
    Log,
    /// `SCMP_ACT_NOTIFY`: ask the user-space listener.
    Notify,
}

impl Action {
    /// The `SECCOMP_RET_*` value the filter returns.
    pub fn ret(self) -> u32 {
        match self {
            Action::KillThread => RET_KILL_THREAD,
            Action::KillProcess => RET_KILL_PROCESS,
            Action::Trap => RET_TRAP,
            Action::Errno(e) => RET_ERRNO | u32::from(e),
            Action::Trace(d) => RET_TRACE | u32::from(d),
            Action::Allow => RET_ALLOW,
            Action::Log => RET_LOG,
            Action::Notify => RET_USER_NOTIF,
        }
    }

    /// Parses an OCI action name; `value` is the spec's `errnoRet`, only
    /// allowed for `SCMP_ACT_ERRNO` and `SCMP_ACT_TRACE` (default `EPERM`,
    /// like runc).
    pub fn parse(name: &str, value: Option<u32>) -> Result<Action> {
        let with_value = |f: fn(u16) -> Action| -> Result<Action> {
            match value {
                None => Ok(f(libc::EPERM as u16)),
                Some(v) => u16::try_from(v).map(f).map_err(|_| Error::ActionValue {
                    action: name.to_string(),
                    value: v,
                }),
            }
        };
        let plain = |a: Action| -> Result<Action> {
            match value {
                None => Ok(a),
                Some(v) => Err(Error::ActionValue {
                    action: name.to_string(),
                    value: v,
                }),
            }
        };
        match name {
            "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => plain(Action::KillThread),
            "SCMP_ACT_KILL_PROCESS" => plain(Action::KillProcess),
            "SCMP_ACT_TRAP" => plain(Action::Trap),
            "SCMP_ACT_ERRNO" => with_value(Action::Errno),
            "SCMP_ACT_TRACE" => with_value(Action::Trace),
            "SCMP_ACT_ALLOW" => plain(Action::Allow),
            "SCMP_ACT_LOG" => plain(Action::Log),
            "SCMP_ACT_NOTIFY" => plain(Action::Notify),
            _ => Err(Error::UnknownAction(name.to_string())),
        }
    }
}

impl FromStr for Action {
    type Err = Error;
    /// Same as [`Action::parse`] without a value.
    fn from_str(s: &str) -> Result<Action> {
        Action::parse(s, None)
    }
}

// ---------------------------------------------------------------------------
// Comparisons, rules, flags, policy

/// A comparison operator on a syscall argument (unsigned 64-bit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `SCMP_CMP_NE`: `arg != value`.
    Ne,
    /// `SCMP_CMP_LT`: `arg < value`.
    Lt,
    /// `SCMP_CMP_LE`: `arg <= value`.
    Le,
    /// `SCMP_CMP_EQ`: `arg == value`.
    Eq,
    /// `SCMP_CMP_GE`: `arg >= value`.
    Ge,
    /// `SCMP_CMP_GT`: `arg > value`.
    Gt,
    /// `SCMP_CMP_MASKED_EQ`: `arg & value == value_two & value` (the masked
    /// argument equals the masked datum, as libseccomp defines it).
    MaskedEq,
}

impl FromStr for Op {
    type Err = Error;
    fn from_str(s: &str) -> Result<Op> {
        Ok(match s {
            "SCMP_CMP_NE" => Op::Ne,
            "SCMP_CMP_LT" => Op::Lt,
            "SCMP_CMP_LE" => Op::Le,
            "SCMP_CMP_EQ" => Op::Eq,
            "SCMP_CMP_GE" => Op::Ge,
            "SCMP_CMP_GT" => Op::Gt,
            "SCMP_CMP_MASKED_EQ" => Op::MaskedEq,
            _ => return Err(Error::UnknownOp(s.to_string())),
        })
    }
}

impl Op {
    /// Evaluates the comparison in user space (reference semantics).
    pub fn holds(self, arg: u64, value: u64, value_two: u64) -> bool {
        match self {
            Op::Ne => arg != value,
            Op::Lt => arg < value,
            Op::Le => arg <= value,
            Op::Eq => arg == value,
            Op::Ge => arg >= value,
            Op::Gt => arg > value,
            Op::MaskedEq => arg & value == value_two & value,
        }
    }
}

/// One comparison on argument `index` (0..=5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArgCmp {
    /// Argument index, 0..=5.
    pub index: u32,
    /// The value (the mask for [`Op::MaskedEq`]).
    pub value: u64,
    /// The expected masked value for [`Op::MaskedEq`]; ignored otherwise.
    pub value_two: u64,
    /// The operator.
    pub op: Op,
}

/// A rule: for each named syscall, when all `args` comparisons hold (AND),
/// take `action`. Rules for the same syscall are tried in policy order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Syscall names.
    pub names: Vec<String>,
    /// The action when the rule matches.
    pub action: Action,
    /// Comparisons, all of which must hold.
    pub args: Vec<ArgCmp>,
}

/// A `SECCOMP_FILTER_FLAG_*` flag. `NEW_LISTENER` is not a flag one asks
/// for: it is added when any action is [`Action::Notify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flag {
    /// `SECCOMP_FILTER_FLAG_TSYNC` (always combined with `TSYNC_ESRCH`, so
    /// a synchronisation failure is reported as `-ESRCH`).
    Tsync,
    /// `SECCOMP_FILTER_FLAG_LOG`.
    Log,
    /// `SECCOMP_FILTER_FLAG_SPEC_ALLOW`.
    SpecAllow,
    /// `SECCOMP_FILTER_FLAG_TSYNC_ESRCH`.
    TsyncEsrch,
    /// `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV` (only meaningful with a
    /// listener; dropped with a warning otherwise).
    WaitKillableRecv,
}

/// `SECCOMP_FILTER_FLAG_TSYNC`.
pub const FLAG_TSYNC: u32 = 1;
/// `SECCOMP_FILTER_FLAG_LOG`.
pub const FLAG_LOG: u32 = 2;
/// `SECCOMP_FILTER_FLAG_SPEC_ALLOW`.
pub const FLAG_SPEC_ALLOW: u32 = 4;
/// `SECCOMP_FILTER_FLAG_NEW_LISTENER`.
pub const FLAG_NEW_LISTENER: u32 = 8;
/// `SECCOMP_FILTER_FLAG_TSYNC_ESRCH`.
pub const FLAG_TSYNC_ESRCH: u32 = 16;
/// `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`.
pub const FLAG_WAIT_KILLABLE_RECV: u32 = 32;

impl Flag {
    /// The kernel bit(s).
    pub fn bits(self) -> u32 {
        match self {
            Flag::Tsync => FLAG_TSYNC | FLAG_TSYNC_ESRCH,
            Flag::Log => FLAG_LOG,
            Flag::SpecAllow => FLAG_SPEC_ALLOW,
            Flag::TsyncEsrch => FLAG_TSYNC_ESRCH,
            Flag::WaitKillableRecv => FLAG_WAIT_KILLABLE_RECV,
        }
    }
}

impl FromStr for Flag {
    type Err = Error;
    fn from_str(s: &str) -> Result<Flag> {
        Ok(match s {
            "SECCOMP_FILTER_FLAG_TSYNC" => Flag::Tsync,
            "SECCOMP_FILTER_FLAG_LOG" => Flag::Log,
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => Flag::SpecAllow,
            "SECCOMP_FILTER_FLAG_TSYNC_ESRCH" => Flag::TsyncEsrch,
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" => Flag::WaitKillableRecv,
            _ => return Err(Error::UnknownFlag(s.to_string())),
        })
    }
}

/// A complete seccomp policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Action for syscalls no rule matches.
    pub default_action: Action,
    /// Architectures covered besides the native one, which is always covered
    /// (as libseccomp, hence runc and crun, do). Any other architecture is
    /// killed (`SECCOMP_RET_KILL_PROCESS`).
    pub architectures: Vec<Arch>,
    /// Rules, in order.
    pub rules: Vec<Rule>,
    /// Filter flags.
    pub flags: Vec<Flag>,
}

// ---------------------------------------------------------------------------
// Installation

/// Installs a filter in the calling thread with
/// `seccomp(SECCOMP_SET_MODE_FILTER, flags, fprog)`.
///
/// `PR_SET_NO_NEW_PRIVS` is NOT set here: the caller decides (without it,
/// installing needs `CAP_SYS_ADMIN`).
///
/// Returns the kernel's result: the notify listener fd when `flags` contains
/// [`FLAG_NEW_LISTENER`], `0` otherwise, and `-errno` on failure (`-ESRCH`
/// when thread synchronisation failed). The caller knows from `flags` whether
/// a listener was asked for, so a successful result is never ambiguous.
///
/// Async-signal-safe: allocates nothing, takes no lock, makes one syscall.
///
/// # Safety
///
/// `fprog` must point to a valid `sock_fprog` whose filter array is valid
/// for `len` instructions during the call.
pub unsafe fn install_raw(fprog: *const libc::sock_fprog, flags: u32) -> libc::c_int {
    // SAFETY: the caller promises `fprog` and its filter array are valid for the call; the
    // kernel only reads them.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER as libc::c_ulong,
            flags as libc::c_ulong,
            fprog,
        )
    };
    if r < 0 {
        // SAFETY: __errno_location returns the calling thread's errno slot, always valid.
        -unsafe { *libc::__errno_location() }
    } else {
        r as libc::c_int
    }
}

/// Installs `prog` in the calling thread (see [`install_raw`]); returns the
/// notify listener when the program needs one ([`Program::needs_listener`]).
/// Does not allocate on success.
pub fn install(prog: &Program) -> Result<Option<OwnedFd>> {
    let fprog = prog.fprog();
    // SAFETY: `fprog` points into `prog`, which outlives the call.
    let r = unsafe { install_raw(&fprog, prog.flags()) };
    if r < 0 {
        return Err(Error::Install(std::io::Error::from_raw_os_error(-r)));
    }
    if prog.needs_listener() {
        // SAFETY: with NEW_LISTENER the kernel returned a fresh fd we own.
        Ok(Some(unsafe { OwnedFd::from_raw_fd(r) }))
    } else {
        Ok(None)
    }
}

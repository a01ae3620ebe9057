//! corral's exec shim: the program the container's process becomes right before it runs the
//! container's own program, so that at that moment `/proc/self/exe` is this shim (in a sealed,
//! read-only memfd) and never the host's executable (corral, or the C or Python program that
//! embeds the library). Whatever in the container resolves to `/proc/self/exe` when the
//! program is executed (a symlinked `argv[0]`, a `#!` interpreter, an ELF interpreter) runs this
//! shim instead, which can neither be written nor load anything (CVE-2019-5736).
//!
//! Static, no libc, no allocation, no start-up code: its only syscalls are `execve` and, when
//! every candidate fails, `write` (one line to stderr) and `exit_group`.
//!
//! Protocol: `argv` is the program's own. `envp` is the list of exec candidates (absolute
//! paths, tried in order, as `execvp` would), an empty string, then the program's environment.
//! A candidate that does not exist (`ENOENT`, `ENOTDIR`) is skipped; `EACCES` is remembered
//! and the search goes on; any other error ends it. Exit status 127 when no candidate exists,
//! 126 when one could not be run (as shells do).
//!
//! Built by `ns/build.rs` with plain rustc; see there for the flags.
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![no_std]
#![no_main]

use core::arch::global_asm;

#[cfg(target_arch = "x86_64")]
global_asm!(
    ".globl _start",
    "_start:",
    "mov rdi, rsp",
    "and rsp, -16",
    "call {main}",
    "ud2",
    main = sym shim_main,
);

#[cfg(target_arch = "aarch64")]
global_asm!(
    ".globl _start",
    "_start:",
    "mov x0, sp",
    "bl {main}",
    "brk #0",
    main = sym shim_main,
);

#[cfg(target_arch = "x86_64")]
mod nr {
    pub const WRITE: usize = 1;
    pub const EXECVE: usize = 59;
    pub const EXIT_GROUP: usize = 231;
}

#[cfg(target_arch = "aarch64")]
mod nr {
    pub const WRITE: usize = 64;
    pub const EXECVE: usize = 221;
    pub const EXIT_GROUP: usize = 94;
}

/// A raw syscall with three arguments.
///
/// # Safety
/// The arguments must be what syscall `n` expects (pointers valid for what it reads).
#[cfg(target_arch = "x86_64")]
unsafe fn syscall3(n: usize, a: usize, b: usize, c: usize) -> isize {
    let ret: isize;
    // SAFETY: the x86_64 syscall convention: number in rax, arguments in rdi, rsi, rdx; the
    // kernel clobbers rcx and r11 (declared) and touches no stack; the caller holds up the
    // arguments.
    unsafe {
        core::arch::asm!("syscall", inlateout("rax") n as isize => ret, in("rdi") a, in("rsi") b,
                     in("rdx") c, lateout("rcx") _, lateout("r11") _, options(nostack))
    };
    ret
}

/// A raw syscall with three arguments.
///
/// # Safety
/// As the x86_64 one.
#[cfg(target_arch = "aarch64")]
unsafe fn syscall3(n: usize, a: usize, b: usize, c: usize) -> isize {
    let ret: isize;
    // SAFETY: the aarch64 syscall convention: number in x8, arguments in x0..x2, result in
    // x0; no stack is touched; the caller holds up the arguments.
    unsafe {
        core::arch::asm!("svc 0", inlateout("x0") a as isize => ret, in("x1") b, in("x2") c,
                     in("x8") n, options(nostack))
    };
    ret
}

fn exit(code: usize) -> ! {
    loop {
        // SAFETY: exit_group takes a status and does not return.
        unsafe { syscall3(nr::EXIT_GROUP, code, 0, 0) };
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    exit(127)
}

const ENOENT: isize = 2;
const EACCES: isize = 13;
const ENOTDIR: isize = 20;

/// (Volatile reads: a plain loop is turned into a call to libc's `strlen`, which is not here.)
///
/// # Safety
/// `s` must point to a NUL-terminated string.
unsafe fn strlen(s: *const u8) -> usize {
    let mut n = 0;
    // SAFETY: every byte up to the NUL is inside the string (the caller's promise).
    while unsafe { core::ptr::read_volatile(s.add(n)) } != 0 {
        n += 1;
    }
    n
}

/// Writes `len` bytes at `s` to stderr.
///
/// # Safety
/// `s` must be readable for `len` bytes.
unsafe fn put(s: *const u8, len: usize) {
    // SAFETY: write(2) reads `len` bytes at `s` (the caller's promise).
    unsafe { syscall3(nr::WRITE, 2, s as usize, len) };
}

fn put_str(s: &str) {
    // SAFETY: a str is readable for its length.
    unsafe { put(s.as_ptr(), s.len()) };
}

/// `sp` points at `argc`, then `argv` (NULL-terminated), then `envp` (NULL-terminated).
///
/// # Safety
/// Called only by `_start` with the initial stack pointer, whose layout the kernel made
/// (the System V ABI's process stack).
unsafe extern "C" fn shim_main(sp: *const usize) -> ! {
    // SAFETY: the kernel's initial stack: argc, argc argument pointers and a NULL, then the
    // environment pointers and a NULL, each a NUL-terminated string. Every read below stays
    // in those arrays: the candidates' loop stops at the environment's NULL, `end` counts
    // slots before it, and `argv[0]` exists (argc > 0).
    unsafe { main_on_stack(sp) }
}

/// The body of [`shim_main`].
///
/// # Safety
/// As [`shim_main`].
unsafe fn main_on_stack(sp: *const usize) -> ! {
    // SAFETY: see `shim_main`: the reads and the execve arguments are the kernel-made arrays.
    unsafe {
        let argc = *sp;
        let argv = sp.add(1) as *const *const u8;
        let envp = argv.add(argc + 1);
        if argc == 0 {
            exit(127);
        }
        // The candidates end at the first empty string; the program's environment follows it.
        let mut end = 0usize;
        loop {
            let e = *envp.add(end);
            if e.is_null() {
                // Not run by corral: nothing to do.
                put_str("corral exec shim: not for direct use\n");
                exit(127);
            }
            if *e == 0 {
                break;
            }
            end += 1;
        }
        let env = envp.add(end + 1);
        let mut err = ENOENT;
        let mut i = 0;
        while i < end {
            let cand = *envp.add(i);
            let r = syscall3(nr::EXECVE, cand as usize, argv as usize, env as usize);
            match -r {
                ENOENT | ENOTDIR => {}
                EACCES => err = EACCES,
                e => {
                    err = e;
                    break;
                }
            }
            i += 1;
        }
        // Every candidate failed: say so once, as `sh` would, and exit as it does.
        let name = *argv;
        put_str("corral: exec ");
        put(name, strlen(name));
        put_str(match err {
            ENOENT => ": no such file or directory\n",
            EACCES => ": permission denied\n",
            8 => ": exec format error\n",
            7 => ": argument list too long\n",
            26 => ": text file busy\n",
            40 => ": too many levels of symbolic links\n",
            1 => ": operation not permitted\n",
            12 => ": out of memory\n",
            _ => ": cannot execute\n",
        });
        exit(if err == ENOENT { 127 } else { 126 })
    }
}

//! The program: finding its executable before the process reports ready, the late program
//! mapped from the memfd that came with `START`, and the `execve` (through the exec shim when
//! there is one).
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unreachable,
    clippy::todo,
    clippy::unimplemented,
    clippy::string_slice
)]

use std::ffi::CStr;

use libc::{c_char, c_int};

use super::{fail, raw, Fd, R};
use crate::plan::Plan;
use crate::proto::{msg, ChildArgs};
use crate::sys::errno;
use crate::Step;

/// Checks that one of `cands` (in order) is an executable regular file, as `execve` will
/// need, so that a missing program fails with its errno here rather than in the exec shim.
pub(super) fn find_executable<'a>(cands: impl Iterator<Item = &'a CStr>) -> R {
    let mut err = libc::ENOENT;
    for cand in cands {
        if raw::faccessat(cand, libc::X_OK) == 0 {
            let mut st = raw::zeroed_stat();
            if raw::stat(cand, &mut st) == 0 && st.st_mode & libc::S_IFMT == libc::S_IFREG {
                return Ok(());
            }
            // execve(2) refuses anything but a regular file with EACCES.
            err = libc::EACCES;
            continue;
        }
        match errno() {
            libc::ENOENT | libc::ENOTDIR => {}
            e => err = e,
        }
    }
    Err((Step::Exec, err, 0))
}

/// A late program ([`crate::late`]) as mapped in this process: `argv` and `envp` are
/// NULL-terminated; `cands` ends with an empty string, which `envp` follows (the exec shim's
/// layout). The mapping is never unmapped: the pointers stay valid until `execve`.
pub(crate) struct Late {
    pub argv: *const *const c_char,
    pub envp: *const *const c_char,
    pub cands: *const *const c_char,
}

impl Late {
    /// The candidates, up to the empty string that ends them.
    pub(super) fn candidates(&self) -> LateCands {
        LateCands(self.cands)
    }
}

/// The candidates of a late program, up to the empty string that ends them.
pub(super) struct LateCands(*const *const c_char);

impl Iterator for LateCands {
    type Item = &'static CStr;
    fn next(&mut self) -> Option<Self::Item> {
        // SAFETY: `map_late` checked the slots: each is a pointer to a NUL-terminated string
        // inside the mapping (never unmapped), and the list ends with "" (or NULL) before the
        // slots end.
        unsafe {
            let c = *self.0;
            if c.is_null() || *c == 0 {
                return None;
            }
            self.0 = self.0.add(1);
            Some(CStr::from_ptr(c))
        }
    }
}

/// Maps the memfd `fd` that came with `START` (and closes it), checks it, and fills its
/// pointer slots: every bound is checked before a byte is read, nothing is allocated.
pub(crate) fn map_late(fd: c_int) -> R<Late> {
    use crate::late::{HEADER_WORDS, MAX_SIZE};
    let fd = Fd(fd);
    let bad = || Err((Step::Sync, libc::EPROTO, msg::START));
    let mut st = raw::zeroed_stat();
    if raw::fstat(fd.0, &mut st) < 0 {
        return fail(Step::Sync, msg::START as usize);
    }
    let Ok(size) = usize::try_from(st.st_size) else {
        return bad();
    };
    let header = HEADER_WORDS.saturating_mul(8);
    if size < header || size > MAX_SIZE {
        return bad();
    }
    // SAFETY: a new private mapping of `size` bytes of the memfd, at an address the kernel
    // picks: it aliases nothing of this process.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE,
            fd.0,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return fail(Step::Sync, msg::START as usize);
    }
    drop(fd);
    // SAFETY: `base` is a fresh private mapping of `size` bytes (page-aligned, so 8-aligned),
    // `size` at least the header; `fill_slots` reads and writes only inside it.
    unsafe { fill_slots(base.cast(), size) }.ok_or((Step::Sync, libc::EPROTO, msg::START))
}

/// Checks the header of the late program at `base` (`size` bytes) and writes its pointer
/// slots; `None` if anything is out of bounds.
///
/// # Safety
/// `base` must be 8-aligned, readable and writable for `size` bytes, and not aliased, and
/// `size` must be at least the header (`HEADER_WORDS` words).
unsafe fn fill_slots(words: *mut u64, size: usize) -> Option<Late> {
    use crate::late::{HEADER_WORDS, MAGIC};
    // SAFETY: the header's words are inside the mapping (the caller's promise).
    let word = |i: usize| -> u64 { unsafe { std::ptr::read(words.add(i)) } };
    if word(0) != MAGIC || word(4) != size as u64 {
        return None;
    }
    let argc = usize::try_from(word(1)).ok()?;
    let envc = usize::try_from(word(2)).ok()?;
    let candc = usize::try_from(word(3)).ok()?;
    if argc == 0 || candc == 0 {
        return None;
    }
    // Slots: args, NULL, candidates, "", env, NULL.
    let slots = argc
        .checked_add(envc)
        .and_then(|n| n.checked_add(candc))
        .and_then(|n| n.checked_add(3))?;
    let strings = slots
        .checked_add(HEADER_WORDS)
        .and_then(|n| n.checked_mul(8))
        .filter(|&n| n <= size)?;
    let bytes = words.cast::<u8>();
    let mut off = strings;
    let mut slot = HEADER_WORDS;
    let mut starts = [0usize; 3];
    for (i, n) in [argc, candc, envc].into_iter().enumerate() {
        if let Some(s) = starts.get_mut(i) {
            *s = slot;
        }
        for _ in 0..n {
            let left = size.checked_sub(off).filter(|&l| l > 0)?;
            // SAFETY: `off < size`: inside the mapping; strnlen reads at most `left` bytes,
            // the rest of it.
            let p = unsafe { bytes.add(off) }.cast::<c_char>();
            // SAFETY: as above.
            let len = unsafe { libc::strnlen(p, left) };
            if len >= left {
                return None;
            }
            // SAFETY: `slot` is below `HEADER_WORDS + slots`, whose 8 bytes each are at most
            // `strings <= size` (checked above): inside the mapping, 8-aligned.
            unsafe { std::ptr::write(words.add(slot), p as u64) };
            slot = slot.saturating_add(1);
            off = off.saturating_add(len).saturating_add(1);
        }
        // The candidates end with an empty string (the shim's separator), the others with NULL.
        let end = if i == 1 { c"".as_ptr() as u64 } else { 0 };
        // SAFETY: as the slot writes above (the count of slots includes the three ends).
        unsafe { std::ptr::write(words.add(slot), end) };
        slot = slot.saturating_add(1);
    }
    let [a, c, e] = starts;
    // SAFETY: the three starts are slots written above, inside the mapping.
    unsafe {
        Some(Late {
            argv: words.add(a).cast(),
            envp: words.add(e).cast(),
            cands: words.add(c).cast(),
        })
    }
}

/// The `execve` of the program (or of the shim, which then executes it): returns only the
/// error of the last candidate tried.
pub(super) fn exec(plan: &Plan, args: &ChildArgs, late: Option<&Late>) -> R {
    let p = &plan.process;
    // Through the shim (see `crate::shim`): the process stops being a copy of the host's
    // executable before anything of the container's is executed.
    if args.shim >= 0 {
        match late {
            // SAFETY: `map_late` laid out `argv` (NULL-terminated) and `cands` followed by
            // the environment (the shim's envp layout) inside a mapping that stays.
            Some(l) => unsafe { raw::execveat_shim(args.shim, l.argv, l.cands) },
            // SAFETY: the plan's argv is a CStringArray (NULL-terminated), and the parent
            // built `shim_envp` from the plan's strings, NULL-terminated; the plan lives on.
            None => unsafe {
                raw::execveat_shim(args.shim, p.argv.as_ptr(), args.shim_envp.as_ptr())
            },
        }
        return fail(Step::Exec, 0);
    }
    let mut err = libc::ENOENT;
    if let Some(l) = late {
        for cand in l.candidates() {
            // SAFETY: `map_late` laid out `argv` and `envp` NULL-terminated inside a mapping
            // that stays.
            unsafe { raw::execve_raw(cand, l.argv, l.envp) };
            match errno() {
                libc::ENOENT | libc::ENOTDIR => {}
                libc::EACCES => err = libc::EACCES,
                e => return Err((Step::Exec, e, 0)),
            }
        }
        return Err((Step::Exec, err, 0));
    }
    for cand in &p.exec_candidates {
        raw::execve(cand, &p.argv, &p.envp);
        match errno() {
            libc::ENOENT | libc::ENOTDIR => {}
            libc::EACCES => err = libc::EACCES,
            e => return Err((Step::Exec, e, 0)),
        }
    }
    Err((Step::Exec, err, 0))
}

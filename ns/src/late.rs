//! The program of a process started late ([`crate::Plan::late_exec`]): what `START` carries.
//!
//! A memfd holding, in native-endian 64-bit words: [`MAGIC`], the number of arguments, of
//! environment strings and of exec candidates, and the total size; then one word per pointer
//! slot (the arguments, a NULL, the candidates, an empty string, the environment, a NULL: the
//! candidates and the environment together are what the exec shim takes as its environment),
//! which the child fills in; then the strings themselves, each NUL-terminated, in that order. The child
//! maps it privately (`mmap`, no allocation), checks every bound, and writes into the slots the
//! addresses of the strings in its mapping: the slots become `argv`, `envp` and the candidate
//! list that `execve` takes.

use std::ffi::CString;

/// "CORRLATE".
pub const MAGIC: u64 = u64::from_le_bytes(*b"CORRLATE");
/// Words before the pointer slots: magic, argc, envc, candc, size.
pub const HEADER_WORDS: usize = 5;
/// The largest program description accepted (arguments and environment together).
pub const MAX_SIZE: usize = 16 << 20;

/// The bytes of a program description, for [`crate::Spawning::start_late`].
pub fn encode(argv: &[CString], envp: &[CString], cands: &[CString]) -> Vec<u8> {
    let slots = argv.len() + envp.len() + cands.len() + 3;
    let strings: usize = argv
        .iter()
        .chain(envp)
        .chain(cands)
        .map(|s| s.as_bytes_with_nul().len())
        .sum();
    let size = (HEADER_WORDS + slots) * 8 + strings;
    let mut out = Vec::with_capacity(size);
    for w in [
        MAGIC,
        argv.len() as u64,
        envp.len() as u64,
        cands.len() as u64,
        size as u64,
    ] {
        out.extend_from_slice(&w.to_ne_bytes());
    }
    out.resize((HEADER_WORDS + slots) * 8, 0);
    for s in argv.iter().chain(cands).chain(envp) {
        out.extend_from_slice(s.as_bytes_with_nul());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;
    use std::io::Write;
    use std::os::fd::{FromRawFd, IntoRawFd};

    fn cs(v: &[&str]) -> Vec<CString> {
        v.iter().map(|s| CString::new(*s).unwrap()).collect()
    }

    fn memfd(bytes: &[u8]) -> i32 {
        // SAFETY: memfd_create reads only its name, a static C string.
        let fd = unsafe { libc::memfd_create(c"t".as_ptr(), libc::MFD_CLOEXEC) };
        assert!(fd >= 0);
        // SAFETY: fresh fd.
        let mut f = unsafe { std::fs::File::from_raw_fd(fd) };
        f.write_all(bytes).unwrap();
        f.into_raw_fd()
    }

    /// # Safety
    /// `p` must be a NULL-terminated array of C strings.
    unsafe fn strings(mut p: *const *const libc::c_char) -> Vec<String> {
        let mut v = Vec::new();
        // SAFETY: every slot up to the NULL is a C string (the caller's promise).
        unsafe {
            while !(*p).is_null() {
                v.push(CStr::from_ptr(*p).to_str().unwrap().to_string());
                p = p.add(1);
            }
        }
        v
    }

    #[test]
    fn the_child_reads_back_what_was_encoded() {
        let bytes = encode(
            &cs(&["sh", "-c", ""]),
            &cs(&["A=1", "PATH=/bin"]),
            &cs(&["/bin/sh"]),
        );
        // SAFETY: the decoder maps the memfd and closes it.
        let late = crate::child::map_late(memfd(&bytes)).unwrap();
        // SAFETY: the mapping stays (it is never unmapped in the child either).
        unsafe {
            assert_eq!(strings(late.argv), ["sh", "-c", ""]);
            assert_eq!(strings(late.envp), ["A=1", "PATH=/bin"]);
            // The candidates end with "", and the environment follows (the shim's layout).
            assert_eq!(strings(late.cands), ["/bin/sh", "", "A=1", "PATH=/bin"]);
        }
    }

    #[test]
    fn bad_descriptions_are_refused_not_read_past() {
        let good = encode(&cs(&["a"]), &[], &cs(&["/a"]));
        let mut cases: Vec<Vec<u8>> = Vec::new();
        // Cut short: the last string has no NUL.
        cases.push(good[..good.len() - 1].to_vec());
        // Counts past the end.
        let mut c = good.clone();
        c[8..16].copy_from_slice(&u64::MAX.to_ne_bytes());
        cases.push(c);
        let mut c = good.clone();
        c[16..24].copy_from_slice(&1000u64.to_ne_bytes());
        cases.push(c);
        // Wrong magic; no arguments; no candidates; too small.
        let mut c = good.clone();
        c[0] ^= 1;
        cases.push(c);
        cases.push(encode(&[], &[], &cs(&["/a"])));
        cases.push(encode(&cs(&["a"]), &[], &[]));
        cases.push(vec![0u8; 8]);
        for (i, bytes) in cases.iter().enumerate() {
            // SAFETY: as above.
            let r = crate::child::map_late(memfd(bytes));
            assert!(r.is_err(), "case {i} accepted");
        }
    }
}

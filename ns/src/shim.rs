//! The exec shim: what the container's process runs right before the container's program.
//!
//! Until its last `execve` the process that sets a container up is a copy of the host's
//! executable (corral, or the C or Python program that embeds this library). If the
//! container's program resolved to `/proc/self/exe` at that moment (a symlinked `argv[0]`, a
//! `#!` interpreter, an ELF interpreter), the container would run the host's executable inside
//! itself, and could then write it (CVE-2019-5736). So the process first becomes the shim
//! (`shim/exec_shim.rs`: static, libc-free, under 2 KiB), executed from a sealed memfd with
//! `execveat(fd, "", AT_EMPTY_PATH)`, and the shim executes the program. Whatever in the
//! container reaches `/proc/self/exe` then finds the shim: it cannot be written (the memfd is
//! sealed against writes, growth and shrinking) and loads nothing.
//!
//! A memfd is made for each spawn and closed by the parent once the child has it.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::Error;

static BYTES: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/corral-exec-shim"));

const F_SEAL_EXEC: libc::c_int = 0x20;
const MFD_EXEC: libc::c_uint = 0x10;

fn err(what: &'static str) -> Error {
    Error::Sys {
        what,
        errno: nix::errno::Errno::last(),
    }
}

const SEALS: libc::c_int =
    libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

fn make() -> Result<OwnedFd, Error> {
    use nix::fcntl::{fcntl, FcntlArg, SealFlag};
    use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
    let flags = MemFdCreateFlag::MFD_CLOEXEC | MemFdCreateFlag::MFD_ALLOW_SEALING;
    let fd = match memfd_create(
        c"corral-exec-shim",
        flags | MemFdCreateFlag::from_bits_retain(MFD_EXEC),
    ) {
        // Before Linux 6.3 there is no MFD_EXEC: memfds are executable.
        Err(nix::errno::Errno::EINVAL) => memfd_create(c"corral-exec-shim", flags),
        r => r,
    }
    .map_err(|_| err("exec shim: memfd_create"))?;
    let mut f = std::fs::File::from(fd);
    std::io::Write::write_all(&mut f, BYTES).map_err(|_| err("exec shim: write"))?;
    let fd = OwnedFd::from(f);
    let _ = nix::sys::stat::fchmod(
        fd.as_raw_fd(),
        nix::sys::stat::Mode::from_bits_truncate(0o555),
    );
    // F_SEAL_EXEC (Linux 6.3) keeps its mode as it is where the kernel has it.
    let seals = SealFlag::from_bits_retain(SEALS);
    if fcntl(
        fd.as_raw_fd(),
        FcntlArg::F_ADD_SEALS(seals | SealFlag::from_bits_retain(F_SEAL_EXEC)),
    )
    .is_err()
        && fcntl(fd.as_raw_fd(), FcntlArg::F_ADD_SEALS(seals)).is_err()
    {
        return Err(err("exec shim: sealing"));
    }
    Ok(fd)
}

/// A new sealed memfd holding the shim, close-on-exec, at or past fd `min` (the child keeps
/// it; fds below `min` are the caller's to pass); `None` where the shim has no code for this
/// architecture. One per spawn (about 15 µs): the library keeps no fd of its own between
/// calls, which a host that closes fds it does not know could otherwise swap for another file.
pub(crate) fn make_at_least(min: RawFd) -> Result<Option<OwnedFd>, Error> {
    if BYTES.is_empty() {
        return Ok(None);
    }
    let fd = make()?;
    if fd.as_raw_fd() >= min {
        return Ok(Some(fd));
    }
    // SAFETY: duplicating an owned fd.
    let d = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min) };
    if d < 0 {
        return Err(err("exec shim: dup"));
    }
    // SAFETY: just duplicated, owned here.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(d) }))
}

/// The shim's bytes (for tests).
pub fn bytes() -> &'static [u8] {
    BYTES
}

//! The child's end of the sync socket: fixed-size messages ([`Msg`]), and fds passed with
//! SCM_RIGHTS.
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

use libc::c_int;

use super::{fail, raw, R};
use crate::proto::Msg;
use crate::sys::errno;
use crate::Step;

/// Sends a message that carries nothing but its tag.
pub(super) fn tell(sock: c_int, tag: u32) {
    raw::send(
        sock,
        &Msg {
            tag,
            ..Msg::default()
        },
    );
}

/// Waits for the message `tag`; anything else (or the parent gone) fails the step `Sync`.
pub(super) fn expect(sock: c_int, tag: u32) -> R {
    let mut m = Msg::default();
    loop {
        let n = raw::recv(sock, &mut m);
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        if n != std::mem::size_of::<Msg>() as isize || m.tag != tag {
            return Err((Step::Sync, if n < 0 { errno() } else { libc::EPROTO }, tag));
        }
        return Ok(());
    }
}

/// Sends `fd` to the parent with SCM_RIGHTS in a message tagged `tag`.
pub(super) fn send_fd(sock: c_int, tag: u32, fd: c_int, step: Step) -> R {
    let mut m_msg = Msg {
        tag,
        ..Msg::default()
    };
    let mut iov = libc::iovec {
        iov_base: (&mut m_msg as *mut Msg).cast(),
        iov_len: std::mem::size_of::<Msg>(),
    };
    let mut cbuf = [0u64; 4];
    // SAFETY: msghdr is plain data (integers and pointers); all zeroes is a valid value.
    let mut mh: libc::msghdr = unsafe { std::mem::zeroed() };
    mh.msg_iov = &mut iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cbuf.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE is arithmetic on its argument.
    mh.msg_controllen = unsafe { libc::CMSG_SPACE(std::mem::size_of::<c_int>() as u32) } as _;
    // SAFETY: `mh` names `cbuf` (32 bytes, 8-aligned) as its control buffer, which holds one
    // header and one int (CMSG_SPACE(4) is 24): CMSG_FIRSTHDR returns its start or NULL, and
    // the writes below stay inside it. sendmsg reads `mh`, `iov`, `m_msg` and `cbuf`, all
    // live in this frame.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&mh);
        if c.is_null() {
            return Err((step, libc::EINVAL, 5));
        }
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<c_int>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut c_int, fd);
        if libc::sendmsg(sock, &mh, libc::MSG_NOSIGNAL) < 0 {
            return fail(step, 5);
        }
    }
    Ok(())
}

/// Receives message `tag` with exactly one fd (SCM_RIGHTS), close-on-exec.
pub(super) fn recv_fd(sock: c_int, tag: u32) -> R<c_int> {
    let mut fds = [-1; 4];
    let (_, n) = recv_fds(sock, tag, &mut fds)?;
    let [first, rest @ ..] = fds;
    for fd in rest {
        if fd >= 0 {
            raw::close(fd);
        }
    }
    if n == 0 {
        return Err((Step::Sync, libc::EPROTO, tag));
    }
    Ok(first)
}

/// Receives message `tag` with up to 4 fds (SCM_RIGHTS), close-on-exec, into `fds`: the
/// message and how many came.
pub(super) fn recv_fds(sock: c_int, tag: u32, fds: &mut [c_int; 4]) -> R<(Msg, usize)> {
    let mut m = Msg::default();
    let mut iov = libc::iovec {
        iov_base: (&mut m as *mut Msg).cast(),
        iov_len: std::mem::size_of::<Msg>(),
    };
    // Room for one header and four fds (CMSG_SPACE(16) is 32 on 64-bit), and to spare.
    let mut cbuf = [0u64; 8];
    // SAFETY: msghdr is plain data (integers and pointers); all zeroes is a valid value.
    let mut mh: libc::msghdr = unsafe { std::mem::zeroed() };
    mh.msg_iov = &mut iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cbuf.as_mut_ptr().cast();
    mh.msg_controllen = std::mem::size_of_val(&cbuf) as _;
    let n = loop {
        // SAFETY: `mh` points to `iov` (room for one Msg, any bytes of which are valid) and
        // to `cbuf` with its true size, all live and writable in this frame.
        let n = unsafe { libc::recvmsg(sock, &mut mh, libc::MSG_CMSG_CLOEXEC) };
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        break n;
    };
    if n != std::mem::size_of::<Msg>() as isize || m.tag != tag {
        return Err((Step::Sync, if n < 0 { errno() } else { libc::EPROTO }, tag));
    }
    // SAFETY: the kernel filled `cbuf` and set `msg_controllen` to what it wrote:
    // CMSG_FIRSTHDR returns a header inside `cbuf` or NULL, and `count` below is bounded by
    // the header's own length and by `fds`, so every read stays inside the header's data.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&mh);
        if c.is_null() || (*c).cmsg_level != libc::SOL_SOCKET || (*c).cmsg_type != libc::SCM_RIGHTS
        {
            return Err((Step::Sync, libc::EPROTO, tag));
        }
        let data = libc::CMSG_DATA(c) as *const c_int;
        let bytes = ((*c).cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
        let count = bytes
            .checked_div(std::mem::size_of::<c_int>())
            .unwrap_or(0)
            .min(fds.len());
        for (i, slot) in (0..count).zip(fds.iter_mut()) {
            *slot = std::ptr::read_unaligned(data.add(i));
        }
        Ok((m, count))
    }
}

//! `linux.netDevices`: moving host network devices into the container's network namespace
//! (and renaming them there), with one rtnetlink request each.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

use crate::{Error, Result};

const NETLINK_ROUTE: i32 = 0;
const RTM_NEWLINK: u16 = 16;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const IFLA_IFNAME: u16 = 3;
const IFLA_NET_NS_FD: u16 = 28;

fn attr(buf: &mut Vec<u8>, kind: u16, data: &[u8]) {
    let len = 4 + data.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(data);
    while !buf.len().is_multiple_of(4) {
        buf.push(0);
    }
}

/// Checks the device exists on the host and the new name is valid; returns its index.
pub fn check(field: &str, host: &str, name: &str) -> Result<u32> {
    let cfg = |reason: String| Error::Config {
        field: field.to_string(),
        reason,
    };
    if name.is_empty()
        || name.len() > 15
        || name.contains('/')
        || name.contains(char::is_whitespace)
    {
        return Err(cfg(format!(
            "{name:?} is not a valid interface name (1 to 15 characters)"
        )));
    }
    let c = CString::new(host).map_err(|_| cfg("contains a NUL byte".into()))?;
    // SAFETY: plain libc lookup with a C string.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        return Err(cfg(format!("no network device {host:?} on the host")));
    }
    Ok(idx)
}

/// Moves device `index` into the network namespace of `pid`, named `name` there.
pub fn move_into(pid: i32, index: u32, host: &str, name: &str) -> std::result::Result<(), String> {
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))
        .map_err(|e| format!("network namespace of pid {pid}: {e}"))?;
    // The spec: check that the move is possible before making it. A name already taken in the
    // container's namespace would fail the rename only after the kernel moved the device,
    // which would then die with that namespace. (A `%d` template names no device yet.)
    if !name.contains('%') && name_taken_in(&ns, name)? {
        return Err(format!(
            "moving network device {host:?} into the container as {name:?}: {} (the name is taken there; nothing was moved)",
            Errno::EEXIST.desc()
        ));
    }
    // SAFETY: creating a netlink socket.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(format!("netlink socket: {}", Errno::last()));
    }
    // SAFETY: fresh fd owned here.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut body = Vec::new();
    // struct ifinfomsg: family, pad, type, index, flags, change.
    body.extend_from_slice(&[libc::AF_UNSPEC as u8, 0, 0, 0]);
    body.extend_from_slice(&(index as i32).to_ne_bytes());
    // flags and change: IFF_UP. The kernel applies them after the move (do_setlink), so
    // the device is up in the container's namespace, as the spec requires.
    body.extend_from_slice(&(libc::IFF_UP as u32).to_ne_bytes());
    body.extend_from_slice(&(libc::IFF_UP as u32).to_ne_bytes());
    attr(
        &mut body,
        IFLA_NET_NS_FD,
        &(ns.as_raw_fd() as u32).to_ne_bytes(),
    );
    let mut nm = name.as_bytes().to_vec();
    nm.push(0);
    attr(&mut body, IFLA_IFNAME, &nm);
    let mut msg = Vec::new();
    msg.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
    msg.extend_from_slice(&RTM_NEWLINK.to_ne_bytes());
    msg.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes()); // seq
    msg.extend_from_slice(&0u32.to_ne_bytes()); // pid
    msg.extend_from_slice(&body);
    // SAFETY: sending a buffer we own to the kernel (nl_pid 0).
    let n = unsafe {
        let mut sa: libc::sockaddr_nl = std::mem::zeroed();
        sa.nl_family = libc::AF_NETLINK as u16;
        libc::sendto(
            sock.as_raw_fd(),
            msg.as_ptr().cast(),
            msg.len(),
            0,
            (&sa as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as u32,
        )
    };
    if n < 0 {
        return Err(format!("netlink send: {}", Errno::last()));
    }
    let mut buf = [0u8; 4096];
    // SAFETY: receiving into a buffer we own.
    let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 20 {
        return Err(format!("netlink reply: {}", Errno::last()));
    }
    // NLMSG_ERROR (2) carries the result: 0 is success, else -errno.
    let kind = u16::from_ne_bytes([buf[4], buf[5]]);
    if kind == 2 {
        let err = i32::from_ne_bytes([buf[16], buf[17], buf[18], buf[19]]);
        if err != 0 {
            return Err(format!(
                "moving network device {host:?} into the container as {name:?}: {}",
                Errno::from_raw(-err).desc()
            ));
        }
    }
    Ok(())
}

/// Whether a device named `name` exists in the network namespace `ns`: looked up from a
/// thread of its own that joins the namespace (a network namespace is per thread), so this
/// process's other threads never change namespace.
fn name_taken_in(ns: &std::fs::File, name: &str) -> std::result::Result<bool, String> {
    let c = CString::new(name).map_err(|_| format!("{name:?} contains a NUL byte"))?;
    let fd = ns.as_raw_fd();
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: setns of this thread only, with an fd that outlives the call.
            if unsafe { libc::setns(fd, libc::CLONE_NEWNET) } < 0 {
                return Err(format!(
                    "joining the container's network namespace: {}",
                    Errno::last()
                ));
            }
            // SAFETY: plain lookup with a C string.
            Ok(unsafe { libc::if_nametoindex(c.as_ptr()) } != 0)
        })
        .join()
        .unwrap_or_else(|_| Err("network namespace lookup failed".into()))
    })
}

//! `linux.netDevices`: moving host network devices into the container's network namespace
//! (and renaming them there), with one rtnetlink request each.
#![deny(clippy::undocumented_unsafe_blocks)]

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;

use crate::{Error, Result};

const RTM_NEWLINK: u16 = 16;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const IFLA_IFNAME: u16 = 3;
const IFLA_NET_NS_FD: u16 = 28;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_FLAGS: u16 = 8;
const IFA_F_PERMANENT: u32 = 0x80;
const RT_SCOPE_UNIVERSE: u8 = 0;

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
    // SAFETY: `c` is a NUL-terminated name alive for the call; if_nametoindex only reads it.
    // (nix wraps it only behind its `net` feature, which the workspace does not enable.)
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
    // Its permanent global addresses, read before the move (the kernel drops them in it)
    // and given back inside, as the spec requires.
    let addrs = permanent_global_addrs(index)?;
    // The spec: check that the move is possible before making it. A name already taken in the
    // container's namespace would fail the rename only after the kernel moved the device,
    // which would then die with that namespace. (A `%d` template names no device yet.)
    if !name.contains('%') && name_taken_in(&ns, name)? {
        return Err(format!(
            "moving network device {host:?} into the container as {name:?}: {} (the name is taken there; nothing was moved)",
            Errno::EEXIST.desc()
        ));
    }
    let sock = nl_socket()?;
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
    nl_send(&sock, RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, &body)?;
    nl_replies(&sock, |_, _| {}).map_err(|e| {
        format!("moving network device {host:?} into the container as {name:?}: {e}")
    })?;
    if !addrs.is_empty() {
        add_addrs(&ns, name, &addrs)
            .map_err(|e| format!("network device {name:?} in the container: {e}"))?;
    }
    Ok(())
}

/// An address of a device: family, prefix length, the address bytes.
struct Addr {
    family: u8,
    prefix: u8,
    addr: Vec<u8>,
}

fn nl_socket() -> std::result::Result<OwnedFd, String> {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockProtocol, SockType};
    socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    )
    .map_err(|e| format!("netlink socket: {e}"))
}

/// Sends one netlink request (header + `body`).
fn nl_send(sock: &OwnedFd, kind: u16, flags: u16, body: &[u8]) -> std::result::Result<(), String> {
    let mut msg = Vec::with_capacity(16 + body.len());
    msg.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
    msg.extend_from_slice(&kind.to_ne_bytes());
    msg.extend_from_slice(&flags.to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    msg.extend_from_slice(body);
    use nix::sys::socket::{sendto, MsgFlags, NetlinkAddr};
    // To the kernel: port id 0.
    sendto(
        sock.as_raw_fd(),
        &msg,
        &NetlinkAddr::new(0, 0),
        MsgFlags::empty(),
    )
    .map_err(|e| format!("netlink send: {e}"))?;
    Ok(())
}

/// Reads netlink replies until `NLMSG_DONE` or an ack, calling `each(type, payload)` for the
/// others; an error reply is returned as its errno.
fn nl_replies(sock: &OwnedFd, mut each: impl FnMut(u16, &[u8])) -> std::result::Result<(), String> {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = nix::sys::socket::recv(
            sock.as_raw_fd(),
            &mut buf,
            nix::sys::socket::MsgFlags::empty(),
        )
        .map_err(|e| format!("netlink reply: {e}"))?;
        let mut rest = buf.get(..n).unwrap_or_default();
        while rest.len() >= 16 {
            let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            let kind = u16::from_ne_bytes([rest[4], rest[5]]);
            if len < 16 || len > rest.len() {
                return Err("netlink reply: truncated message".into());
            }
            let payload = &rest[16..len];
            match kind {
                NLMSG_DONE => return Ok(()),
                NLMSG_ERROR => {
                    let err = payload
                        .get(..4)
                        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                        .unwrap_or(0);
                    if err != 0 {
                        return Err(Errno::from_raw(-err).desc().to_string());
                    }
                    return Ok(());
                }
                k => each(k, payload),
            }
            rest = rest.get(len.next_multiple_of(4)..).unwrap_or_default();
        }
    }
}

/// The permanent addresses of global scope (IPv4 and IPv6) of device `index`.
fn permanent_global_addrs(index: u32) -> std::result::Result<Vec<Addr>, String> {
    let sock = nl_socket()?;
    // struct ifaddrmsg: family, prefixlen, flags, scope, index.
    let body = [libc::AF_UNSPEC as u8, 0, 0, 0, 0, 0, 0, 0];
    nl_send(&sock, RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, &body)?;
    let mut out = Vec::new();
    nl_replies(&sock, |kind, p| {
        if kind != RTM_NEWADDR || p.len() < 8 {
            return;
        }
        let (family, prefix, flags8, scope) = (p[0], p[1], p[2], p[3]);
        let idx = u32::from_ne_bytes([p[4], p[5], p[6], p[7]]);
        if idx != index || scope != RT_SCOPE_UNIVERSE {
            return;
        }
        if i32::from(family) != libc::AF_INET && i32::from(family) != libc::AF_INET6 {
            return;
        }
        let mut flags = u32::from(flags8);
        let (mut local, mut address) = (None, None);
        let mut a = &p[8..];
        while a.len() >= 4 {
            let alen = u16::from_ne_bytes([a[0], a[1]]) as usize;
            let akind = u16::from_ne_bytes([a[2], a[3]]);
            if alen < 4 || alen > a.len() {
                break;
            }
            let data = &a[4..alen];
            match akind {
                IFA_LOCAL => local = Some(data.to_vec()),
                IFA_ADDRESS => address = Some(data.to_vec()),
                IFA_FLAGS if data.len() == 4 => {
                    flags = u32::from_ne_bytes([data[0], data[1], data[2], data[3]])
                }
                _ => {}
            }
            a = a.get(alen.next_multiple_of(4)..).unwrap_or_default();
        }
        if flags & IFA_F_PERMANENT == 0 {
            return;
        }
        if let Some(addr) = local.or(address) {
            out.push(Addr {
                family,
                prefix,
                addr,
            });
        }
    })?;
    Ok(out)
}

/// Adds `addrs` to the device `name` in the network namespace `ns` (from a thread of its own
/// that joins the namespace).
fn add_addrs(ns: &std::fs::File, name: &str, addrs: &[Addr]) -> std::result::Result<(), String> {
    let c = CString::new(name).map_err(|_| format!("{name:?} contains a NUL byte"))?;
    std::thread::scope(|s| {
        s.spawn(|| -> std::result::Result<(), String> {
            // This thread only: a network namespace is per thread.
            nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("joining its network namespace: {e}"))?;
            // SAFETY: `c` is a NUL-terminated name alive for the call; if_nametoindex only
            // reads it.
            let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
            if index == 0 {
                return Err("not found after the move".into());
            }
            let sock = nl_socket()?;
            for a in addrs {
                let mut body = vec![a.family, a.prefix, 0, RT_SCOPE_UNIVERSE];
                body.extend_from_slice(&index.to_ne_bytes());
                attr(&mut body, IFA_LOCAL, &a.addr);
                attr(&mut body, IFA_ADDRESS, &a.addr);
                nl_send(
                    &sock,
                    RTM_NEWADDR,
                    NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
                    &body,
                )?;
                nl_replies(&sock, |_, _| {})
                    .map_err(|e| format!("adding address of family {} back: {e}", a.family))?;
            }
            Ok(())
        })
        .join()
        .unwrap_or_else(|_| Err("adding its addresses failed".into()))
    })
}

/// Whether a device named `name` exists in the network namespace `ns`: looked up from a
/// thread of its own that joins the namespace (a network namespace is per thread), so this
/// process's other threads never change namespace.
fn name_taken_in(ns: &std::fs::File, name: &str) -> std::result::Result<bool, String> {
    let c = CString::new(name).map_err(|_| format!("{name:?} contains a NUL byte"))?;
    std::thread::scope(|s| {
        s.spawn(|| {
            // This thread only: a network namespace is per thread.
            nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("joining the container's network namespace: {e}"))?;
            // SAFETY: `c` is a NUL-terminated name alive for the call; if_nametoindex only
            // reads it.
            Ok(unsafe { libc::if_nametoindex(c.as_ptr()) } != 0)
        })
        .join()
        .unwrap_or_else(|_| Err("network namespace lookup failed".into()))
    })
}

//! `linux.netDevices`: moving host network devices into the container's network namespace
//! (and renaming them there), with one rtnetlink request each. The messages are
//! `netlink-packet-route`'s, sent on a `netlink-sys` socket (blocking, no async runtime).
//!
//! (Loopback is brought up elsewhere: by the container's child itself, between clone and
//! execve, with one `SIOCSIFFLAGS` ioctl, since that code may not allocate.)
#![deny(clippy::undocumented_unsafe_blocks)]

use std::ffi::CString;
use std::net::IpAddr;
use std::os::fd::AsRawFd;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use nix::errno::Errno;

use crate::{Error, Result};

/// Whether `name` is a name the kernel accepts for a network device (its `dev_valid_name`):
/// 1 to 15 bytes, not `.` or `..`, without `/`, `:`, whitespace or NUL. The reason when not.
pub fn interface_name(name: &str) -> std::result::Result<(), String> {
    let bad = name.is_empty()
        || name.len() > 15
        || name == "."
        || name == ".."
        || name
            .chars()
            .any(|c| c == '/' || c == ':' || c == '\0' || c.is_whitespace());
    if bad {
        return Err(format!(
            "{name:?} is not a valid interface name (1 to 15 characters, not \".\" or \"..\", \
             without '/', ':' or whitespace)"
        ));
    }
    Ok(())
}

/// Checks the device exists on the host and the new name is valid; returns its index.
pub fn check(field: &str, host: &str, name: &str) -> Result<u32> {
    let cfg = |reason: String| Error::Config {
        field: field.to_string(),
        reason,
    };
    interface_name(name).map_err(cfg)?;
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
    let sock = Rtnl::open()?;
    let addrs = permanent_global_addrs(&sock, index)?;
    // The spec: check that the move is possible before making it. A name already taken in the
    // container's namespace would fail the rename only after the kernel moved the device,
    // which would then die with that namespace. (A `%d` template names no device yet.)
    if !name.contains('%') && name_taken_in(&ns, name)? {
        return Err(format!(
            "moving network device {host:?} into the container as {name:?}: {} (the name is taken there; nothing was moved)",
            Errno::EEXIST.desc()
        ));
    }
    let mut link = LinkMessage::default();
    link.header.interface_family = AddressFamily::Unspec;
    link.header.index = index;
    // Up, as the spec requires: the kernel applies the flags after the move (do_setlink), so
    // the device is up in the container's namespace.
    link.header.flags = LinkFlags::Up;
    link.header.change_mask = LinkFlags::Up;
    link.attributes.push(LinkAttribute::NetNsFd(ns.as_raw_fd()));
    link.attributes
        .push(LinkAttribute::IfName(name.to_string()));
    sock.request(RouteNetlinkMessage::SetLink(link), NLM_F_ACK)
        .map_err(|e| {
            format!("moving network device {host:?} into the container as {name:?}: {e}")
        })?;
    if !addrs.is_empty() {
        add_addrs(&ns, name, &addrs)
            .map_err(|e| format!("network device {name:?} in the container: {e}"))?;
    }
    Ok(())
}

/// A blocking rtnetlink socket of this thread's network namespace.
struct Rtnl {
    sock: Socket,
    seq: std::cell::Cell<u32>,
}

impl Rtnl {
    fn open() -> std::result::Result<Rtnl, String> {
        let sock = Socket::new(NETLINK_ROUTE).map_err(|e| format!("netlink socket: {e}"))?;
        // To the kernel (port 0); replies come from it only.
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(|e| format!("netlink socket: {e}"))?;
        Ok(Rtnl {
            sock,
            seq: std::cell::Cell::new(0),
        })
    }

    /// Sends one request (`NLM_F_REQUEST` plus `flags`) and reads the replies until the ack
    /// (or `NLMSG_DONE` of a dump), returning the messages that came before it; an error
    /// reply is returned as its errno's text.
    fn request(
        &self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> std::result::Result<Vec<RouteNetlinkMessage>, String> {
        let seq = self.seq.get().wrapping_add(1);
        self.seq.set(seq);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = seq;
        let mut nl = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        nl.finalize();
        let mut buf = vec![0u8; nl.buffer_len()];
        nl.serialize(&mut buf);
        self.sock
            .send(&buf, 0)
            .map_err(|e| format!("netlink send: {e}"))?;
        let mut out = Vec::new();
        let mut rbuf: Vec<u8> = Vec::with_capacity(64 * 1024);
        loop {
            rbuf.clear();
            let n = self
                .sock
                .recv(&mut rbuf, 0)
                .map_err(|e| format!("netlink reply: {e}"))?;
            let mut rest = rbuf.get(..n).unwrap_or_default();
            while !rest.is_empty() {
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(rest)
                    .map_err(|e| format!("netlink reply: {e}"))?;
                let len = reply.header.length as usize;
                if len == 0 {
                    return Err("netlink reply: a message of length 0".into());
                }
                rest = rest.get(len.next_multiple_of(4)..).unwrap_or_default();
                if reply.header.sequence_number != seq {
                    continue;
                }
                match reply.payload {
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::Error(e) => {
                        return match e.raw_code() {
                            0 => Ok(out),
                            c => Err(Errno::from_raw(-c).desc().to_string()),
                        }
                    }
                    NetlinkPayload::InnerMessage(m) => out.push(m),
                    _ => {}
                }
            }
        }
    }
}

/// An address of a device: prefix length and the address.
struct Addr {
    prefix: u8,
    addr: IpAddr,
}

/// The permanent addresses of global scope (IPv4 and IPv6) of device `index`.
fn permanent_global_addrs(sock: &Rtnl, index: u32) -> std::result::Result<Vec<Addr>, String> {
    let mut req = AddressMessage::default();
    req.header.family = AddressFamily::Unspec;
    let replies = sock
        .request(RouteNetlinkMessage::GetAddress(req), NLM_F_DUMP)
        .map_err(|e| format!("listing the addresses of device {index}: {e}"))?;
    let mut out = Vec::new();
    for m in replies {
        let RouteNetlinkMessage::NewAddress(a) = m else {
            continue;
        };
        let h = &a.header;
        if h.index != index || h.scope != AddressScope::Universe {
            continue;
        }
        if !matches!(h.family, AddressFamily::Inet | AddressFamily::Inet6) {
            continue;
        }
        // IFA_FLAGS, when there, holds all of them; the header's byte only the low eight.
        let mut permanent = h.flags.contains(AddressHeaderFlags::Permanent);
        let (mut local, mut address) = (None, None);
        for attr in &a.attributes {
            match attr {
                AddressAttribute::Local(ip) => local = Some(*ip),
                AddressAttribute::Address(ip) => address = Some(*ip),
                AddressAttribute::Flags(f) => permanent = f.contains(AddressFlags::Permanent),
                _ => {}
            }
        }
        if !permanent {
            continue;
        }
        if let Some(addr) = local.or(address) {
            out.push(Addr {
                prefix: h.prefix_len,
                addr,
            });
        }
    }
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
            // Opened after setns: a netlink socket talks to the namespace it was made in.
            let sock = Rtnl::open()?;
            for a in addrs {
                let mut m = AddressMessage::default();
                m.header.family = match a.addr {
                    IpAddr::V4(_) => AddressFamily::Inet,
                    IpAddr::V6(_) => AddressFamily::Inet6,
                };
                m.header.prefix_len = a.prefix;
                m.header.scope = AddressScope::Universe;
                m.header.index = index;
                m.attributes.push(AddressAttribute::Local(a.addr));
                m.attributes.push(AddressAttribute::Address(a.addr));
                sock.request(
                    RouteNetlinkMessage::NewAddress(m),
                    NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
                )
                .map_err(|e| format!("adding address {}/{} back: {e}", a.addr, a.prefix))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_follow_the_kernel() {
        for ok in ["eth0", "lo", "a", "veth-x_1.2", "123456789012345", "eth%d"] {
            assert!(interface_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "1234567890123456",
            "a/b",
            "a:1",
            "a b",
            "a\tb",
            "a\0",
        ] {
            let e = interface_name(bad).unwrap_err();
            assert!(e.contains("not a valid interface name"), "{bad:?}: {e}");
        }
    }

    /// What the move keeps: of a device's addresses, only the permanent ones of global scope
    /// (a lifetime-limited one and a host-scope one are left out), IPv4 and IPv6. Read in a
    /// network namespace of its own (addresses from documentation ranges on its loopback), so
    /// nothing depends on the host's devices.
    #[test]
    fn only_permanent_global_addresses_are_kept() {
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test needs root (a network namespace)"
        );
        let got = std::thread::spawn(|| {
            // This thread only; `ip` forked from it runs in the same namespace.
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            for args in [
                &["addr", "add", "192.0.2.9/24", "dev", "lo"][..],
                &["addr", "add", "2001:db8::9/64", "dev", "lo", "nodad"],
                &[
                    "addr",
                    "add",
                    "198.51.100.9/24",
                    "dev",
                    "lo",
                    "valid_lft",
                    "300",
                    "preferred_lft",
                    "300",
                ],
                &[
                    "addr",
                    "add",
                    "203.0.113.9/24",
                    "dev",
                    "lo",
                    "scope",
                    "host",
                ],
            ] {
                let o = std::process::Command::new("ip")
                    .args(args)
                    .output()
                    .unwrap();
                assert!(o.status.success(), "ip {args:?}: {o:?}");
            }
            let sock = Rtnl::open().unwrap();
            let lo = CString::new("lo").unwrap();
            // SAFETY: `lo` is a NUL-terminated name alive for the call.
            let idx = unsafe { libc::if_nametoindex(lo.as_ptr()) };
            assert_ne!(idx, 0);
            let mut v: Vec<String> = permanent_global_addrs(&sock, idx)
                .unwrap()
                .iter()
                .map(|a| format!("{}/{}", a.addr, a.prefix))
                .collect();
            v.sort();
            v
        })
        .join()
        .unwrap();
        assert_eq!(got, ["192.0.2.9/24", "2001:db8::9/64"]);
    }
}

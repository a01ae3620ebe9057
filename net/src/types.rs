//! The plain data every face and the runtime's description share: published ports, rates,
//! a container's request for networks, and what it got ([`Attachment`]).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{invalid, Error, Result};

/// The network a container joins when asked for none by name (docker's `bridge`).
pub const DEFAULT_NETWORK: &str = "bridge";

/// A transport protocol of a published port.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

impl FromStr for Protocol {
    type Err = Error;
    fn from_str(s: &str) -> Result<Protocol> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Protocol::Tcp),
            "udp" => Ok(Protocol::Udp),
            _ => Err(invalid("port protocol", format!("{s:?} (want tcp or udp)"))),
        }
    }
}

/// A published port: `host_ip:host_port` on the host reaches `container_port` in the
/// container. `host_port` 0 means any free port, chosen when the container is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PortMapping {
    /// The host address to listen on (`None`: every address).
    pub host_ip: Option<IpAddr>,
    /// The host port (0: any free one).
    pub host_port: u16,
    /// The port in the container.
    pub container_port: u16,
    /// tcp or udp.
    pub protocol: Protocol,
}

impl PortMapping {
    /// Parses docker's `-p` forms: `CTR`, `HOST:CTR`, `IP:HOST:CTR`, `IP::CTR`, each with an
    /// optional `/tcp` or `/udp`; an IPv6 host address in brackets (`[::1]:8080:80`).
    pub fn parse(spec: &str) -> Result<PortMapping> {
        let bad = |why: &str| {
            invalid(
                "-p",
                format!("{spec:?}: {why} (want [IP:]HOSTPORT:CTRPORT[/tcp|udp])"),
            )
        };
        let (ports, protocol) = match spec.rsplit_once('/') {
            Some((p, proto)) => (
                p,
                proto
                    .parse::<Protocol>()
                    .map_err(|_| bad("unknown protocol"))?,
            ),
            None => (spec, Protocol::Tcp),
        };
        let (host_ip, rest) = if let Some(r) = ports.strip_prefix('[') {
            let (ip, rest) = r.split_once("]:").ok_or_else(|| bad("unclosed ["))?;
            (Some(ip), rest)
        } else {
            let parts: Vec<&str> = ports.split(':').collect();
            match parts.len() {
                1 | 2 => (None, ports),
                3 => (
                    Some(parts[0]),
                    ports.split_once(':').map(|x| x.1).unwrap_or(""),
                ),
                _ => return Err(bad("too many ':'")),
            }
        };
        let host_ip = match host_ip {
            None | Some("") => None,
            Some(ip) => Some(ip.parse::<IpAddr>().map_err(|_| bad("bad host address"))?),
        };
        let port = |s: &str, zero_ok: bool| -> Result<u16> {
            let p: u16 = s.parse().map_err(|_| bad("a port is a number 1-65535"))?;
            if p == 0 && !zero_ok {
                return Err(bad("port 0"));
            }
            Ok(p)
        };
        let (host_port, container_port) = match rest.split_once(':') {
            None => (0, port(rest, false)?),
            Some(("", c)) => (0, port(c, false)?),
            Some((h, c)) => (port(h, false)?, port(c, false)?),
        };
        Ok(PortMapping {
            host_ip,
            host_port,
            container_port,
            protocol,
        })
    }
}

impl FromStr for PortMapping {
    type Err = Error;
    fn from_str(s: &str) -> Result<PortMapping> {
        PortMapping::parse(s)
    }
}

impl fmt::Display for PortMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host_ip {
            Some(IpAddr::V6(ip)) => write!(f, "[{ip}]:")?,
            Some(ip) => write!(f, "{ip}:")?,
            None => write!(f, "0.0.0.0:")?,
        }
        write!(
            f,
            "{}->{}/{}",
            self.host_port, self.container_port, self.protocol
        )
    }
}

/// Network rate limits of a container, in bits per second (CNI's bandwidth plugin:
/// `ingress` is what reaches the container, `egress` what it sends).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rate {
    /// Into the container, bits/s.
    pub ingress_bps: Option<u64>,
    /// Out of the container, bits/s.
    pub egress_bps: Option<u64>,
}

impl Rate {
    /// No limit either way.
    pub fn is_unlimited(&self) -> bool {
        self.ingress_bps.is_none() && self.egress_bps.is_none()
    }
}

/// Parses a rate as `tc` writes one: a number of bits per second, or with a unit: `kbit`,
/// `mbit`, `gbit` (bits, powers of 1000), `kbps`, `mbps`, `gbps` (bytes). `field` names the
/// flag or key in errors.
pub fn parse_rate(field: &str, s: &str) -> Result<u64> {
    let t = s.trim().to_ascii_lowercase();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| {
        invalid(
            field,
            format!("{s:?}: not a rate (e.g. 10mbit, 500kbit, 2mbps)"),
        )
    })?;
    let mult: f64 = match unit {
        "" | "bit" | "bps" if unit != "bps" => 1.0,
        "kbit" | "k" => 1e3,
        "mbit" | "m" => 1e6,
        "gbit" | "g" => 1e9,
        "bps" => 8.0,
        "kbps" => 8e3,
        "mbps" => 8e6,
        "gbps" => 8e9,
        _ => {
            return Err(invalid(
                field,
                format!("{s:?}: unknown unit {unit:?} (kbit, mbit, gbit, kbps, mbps, gbps)"),
            ))
        }
    };
    let v = n * mult;
    if !v.is_finite() || !(1000.0..=1e13).contains(&v) {
        return Err(invalid(
            field,
            format!("{s:?}: a rate is between 1kbit and 10000gbit"),
        ));
    }
    Ok(v as u64)
}

/// What a container asks of the network when it is made (a network namespace of its own).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// The networks to attach, in order: the first is `eth0`, the next `eth1`...
    pub networks: Vec<String>,
    /// Published ports (on the first network).
    pub ports: Vec<PortMapping>,
    /// Rate limits (on every attachment).
    pub rate: Rate,
    /// The container's hostname, for its `/etc/hosts` and `/etc/hostname`.
    pub hostname: String,
}

/// One network interface a container got from a network (the CNI result, kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// The network's name.
    pub network: String,
    /// The interface in the container (`eth0`...).
    pub ifname: String,
    /// Its addresses, CIDR (`10.89.0.5/16`).
    pub ips: Vec<String>,
    /// Its gateway, if the result names one.
    pub gateway: Option<IpAddr>,
    /// Its MAC address, if the result names one.
    pub mac: Option<String>,
    /// The ports published through it, with the host ports chosen.
    pub ports: Vec<PortMapping>,
}

/// How to make a named network (`corral network create`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkOptions {
    /// Its IPv4 subnet, CIDR (default: the next free `/24` of corral's range).
    pub subnet: Option<String>,
    /// Its gateway (default: the subnet's first address).
    pub gateway: Option<IpAddr>,
    /// The bridge device's name (default: `corral` and a number).
    pub bridge: Option<String>,
}

/// A network as `network ls` and `network inspect` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkInfo {
    /// Its name.
    pub name: String,
    /// The config list file.
    pub file: std::path::PathBuf,
    /// The CNI version of the list.
    pub cni_version: String,
    /// The plugins of the list, in order (`bridge`, `portmap`...).
    pub plugins: Vec<String>,
    /// The bridge device, for a bridge network.
    pub bridge: Option<String>,
    /// The subnets of its IPAM ranges.
    pub subnets: Vec<String>,
    /// Their gateways.
    pub gateways: Vec<String>,
    /// The containers attached: id and addresses.
    pub containers: Vec<(String, Vec<String>)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_parse_as_docker_writes_them() {
        let p = PortMapping::parse("8080:80").unwrap();
        assert_eq!(
            (p.host_ip, p.host_port, p.container_port, p.protocol),
            (None, 8080, 80, Protocol::Tcp)
        );
        let p = PortMapping::parse("127.0.0.1:8080:80/udp").unwrap();
        assert_eq!(p.host_ip, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(p.protocol, Protocol::Udp);
        let p = PortMapping::parse("80").unwrap();
        assert_eq!((p.host_port, p.container_port), (0, 80));
        let p = PortMapping::parse("127.0.0.1::53/udp").unwrap();
        assert_eq!((p.host_port, p.container_port), (0, 53));
        let p = PortMapping::parse("[::1]:8080:80").unwrap();
        assert_eq!(p.host_ip, Some("::1".parse().unwrap()));
        assert_eq!(p.to_string(), "[::1]:8080->80/tcp");
        for bad in [
            "",
            "0",
            "x:80",
            "70000:80",
            "1:2:3:4",
            "80/sctp",
            "1.2.3:80:80",
            "8080:0",
        ] {
            let e = PortMapping::parse(bad).unwrap_err().to_string();
            assert!(e.starts_with("-p: "), "{bad}: {e}");
        }
    }

    #[test]
    fn rates_parse_as_tc_writes_them() {
        assert_eq!(parse_rate("r", "10mbit").unwrap(), 10_000_000);
        assert_eq!(parse_rate("r", "500kbit").unwrap(), 500_000);
        assert_eq!(parse_rate("r", "2mbps").unwrap(), 16_000_000);
        assert_eq!(parse_rate("r", "1.5gbit").unwrap(), 1_500_000_000);
        assert_eq!(parse_rate("r", "64000").unwrap(), 64_000);
        for bad in ["", "fast", "10mb", "-5mbit", "0", "10"] {
            let e = parse_rate("--ingress-rate", bad).unwrap_err().to_string();
            assert!(e.starts_with("--ingress-rate: "), "{bad}: {e}");
        }
    }
}

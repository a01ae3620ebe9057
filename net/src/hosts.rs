//! A container's `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf`, kept in
//! `<root>/cni/containers/<id>/` and bind-mounted into the container by the runtime.
//!
//! The hosts file names the container itself (its addresses, hostname and id) and every
//! other container on a network it shares, by id (and hostname). It is rewritten when a
//! container joins or leaves one of those networks, in place (same inode, since it is a
//! bind mount's source), under the network's lock and the container's own lock.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cni::{valid_name, CacheEntry};
use crate::error::{invalid, io_err, Result};
use crate::network::{lock_in_dir, write_atomic, NetRoot};
use crate::types::{Rate, Request};

/// The files of one container, to bind at `/etc/hosts`, `/etc/hostname` and
/// `/etc/resolv.conf`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerFiles {
    pub hosts: PathBuf,
    pub hostname: PathBuf,
    pub resolv_conf: PathBuf,
}

/// What is remembered of a container besides its attachments (`meta.json`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Meta {
    /// Its hostname.
    pub(crate) hostname: String,
    /// The state root of its runtime, once attached.
    #[serde(default)]
    pub(crate) owner: Option<PathBuf>,
    /// Its rate limits, for every attachment.
    #[serde(default)]
    pub(crate) rate: Rate,
}

/// One attachment as the hosts files see it: a container, a network, its addresses.
struct Member {
    id: String,
    network: String,
    addrs: Vec<IpAddr>,
}

impl Member {
    fn of(e: &CacheEntry) -> Member {
        let addrs = e
            .result
            .as_ref()
            .and_then(|r| crate::attach::attachment_of(e, r).ok())
            .map(|a| {
                a.ips
                    .iter()
                    .filter_map(|c| c.split('/').next().and_then(|s| s.parse().ok()))
                    .collect()
            })
            .unwrap_or_default();
        Member {
            id: e.container_id.clone(),
            network: e.network.clone(),
            addrs,
        }
    }
}

/// Checks a container id (CNI's `CNI_CONTAINERID` rules; it names a directory too).
pub(crate) fn check_id(id: &str) -> Result<()> {
    if id.len() > 128 || !valid_name(id) {
        return Err(invalid(
            "container id",
            format!("{id:?} (want 1-128 characters: a letter or digit, then letters, digits, '_', '.' or '-')"),
        ));
    }
    Ok(())
}

/// The hostname a container gets when its request names none: its id, cut to 63 bytes.
fn default_hostname(id: &str) -> String {
    id.chars().take(63).collect()
}

/// The domain of a container's fully qualified name in its `/etc/hosts`
/// (`HOSTNAME.corral.internal`; `.internal` is for private use).
pub const DOMAIN: &str = "corral.internal";

/// `/etc/hosts` for a container: the localhost lines, its own addresses (or `127.0.1.1`
/// when it has none) with its fully qualified name, hostname and id, then each peer's
/// address and names.
pub fn render_hosts(
    hostname: &str,
    id: &str,
    own: &[IpAddr],
    peers: &[(IpAddr, Vec<String>)],
) -> String {
    let mut out = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    let names = |list: &[&str]| {
        let mut v: Vec<&str> = Vec::new();
        for n in list {
            if !n.is_empty() && !v.contains(n) {
                v.push(n);
            }
        }
        v.join(" ")
    };
    // A name with a domain first, so that what asks for the host's fully qualified name
    // (apache's ServerName guess, `hostname -f`) finds one.
    let fqdn = if hostname.contains('.') || hostname.is_empty() {
        String::new()
    } else {
        format!("{hostname}.{DOMAIN}")
    };
    let me = names(&[&fqdn, hostname, id]);
    if own.is_empty() {
        out.push_str(&format!("127.0.1.1\t{me}\n"));
    }
    for ip in own {
        out.push_str(&format!("{ip}\t{me}\n"));
    }
    for (ip, n) in peers {
        let refs: Vec<&str> = n.iter().map(String::as_str).collect();
        out.push_str(&format!("{ip}\t{}\n", names(&refs)));
    }
    out
}

fn is_loopback_nameserver(line: &str) -> bool {
    let mut w = line.split_whitespace();
    if w.next() != Some("nameserver") {
        return false;
    }
    match w
        .next()
        .map(|a| a.split('%').next().unwrap_or(a).parse::<IpAddr>())
    {
        Some(Ok(ip)) => ip.is_loopback(),
        _ => false,
    }
}

fn has_nameserver(text: &str) -> bool {
    text.lines()
        .any(|l| l.split_whitespace().next() == Some("nameserver"))
}

/// A host's `resolv.conf` text made fit for a container: loopback nameservers dropped (they
/// would be the container's own loopback). `resolved` is systemd-resolved's upstream file,
/// used when every nameserver of `text` is a loopback one (`127.0.0.53`).
pub fn container_resolv_conf(text: &str, resolved: Option<&str>) -> String {
    let only_loopback = has_nameserver(text)
        && text
            .lines()
            .filter(|l| l.split_whitespace().next() == Some("nameserver"))
            .all(is_loopback_nameserver);
    let src = match (only_loopback, resolved) {
        (true, Some(r)) if has_nameserver(r) => r,
        _ => text,
    };
    let mut out = String::new();
    for l in src.lines() {
        if !is_loopback_nameserver(l) {
            out.push_str(l);
            out.push('\n');
        }
    }
    if !has_nameserver(&out) {
        out.push_str("# corral: the host names no nameserver a container can reach\n");
    }
    out
}

/// The host's resolv.conf for a container (see [`container_resolv_conf`]).
fn host_resolv_conf() -> String {
    let text = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let resolved = fs::read_to_string("/run/systemd/resolve/resolv.conf").ok();
    container_resolv_conf(&text, resolved.as_deref())
}

/// Rewrites `path` in place: the same inode (a bind mount's source keeps showing it), the
/// new text written over the old and the file cut to its length.
fn rewrite_in_place(path: &Path, text: &str) -> Result<()> {
    let f = File::options()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io_err("open", path))?;
    write_over(f, text).map_err(io_err("write", path))
}

/// Writes `text` from the start of `f` and cuts the file to its length.
fn write_over(mut f: File, text: &str) -> std::io::Result<()> {
    f.write_all(text.as_bytes())?;
    f.set_len(text.len() as u64)
}

impl NetRoot {
    pub(crate) fn container_dir(&self, id: &str) -> PathBuf {
        self.root.join("cni").join("containers").join(id)
    }

    fn files_in(dir: &Path) -> ContainerFiles {
        ContainerFiles {
            hosts: dir.join("hosts"),
            hostname: dir.join("hostname"),
            resolv_conf: dir.join("resolv.conf"),
        }
    }

    pub(crate) fn read_meta(&self, id: &str) -> Option<Meta> {
        let b = fs::read(self.container_dir(id).join("meta.json")).ok()?;
        serde_json::from_slice(&b).ok()
    }

    pub(crate) fn write_meta(&self, id: &str, m: &Meta) -> Result<()> {
        let p = self.container_dir(id).join("meta.json");
        let b = serde_json::to_vec_pretty(m).map_err(|e| invalid("meta.json", e.to_string()))?;
        write_atomic(&p, &b)
    }

    /// Makes a container's files (its hosts file names only itself until it is attached):
    /// `hostname` from the request (default: the id), `resolv.conf` from the host's. Called
    /// again, it rewrites them in place.
    pub fn prepare(&self, id: &str, req: &Request) -> Result<ContainerFiles> {
        check_id(id)?;
        let h = &req.hostname;
        if h.len() > 253
            || h.chars()
                .any(|c| !(c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_'))
        {
            return Err(invalid(
                "hostname",
                format!("{h:?} (want at most 253 letters, digits, '-', '_' or '.')"),
            ));
        }
        let dir = self.container_dir(id);
        fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        let mut meta = self.read_meta(id).unwrap_or_default();
        meta.hostname = if req.hostname.is_empty() {
            default_hostname(id)
        } else {
            req.hostname.clone()
        };
        meta.rate = req.rate;
        self.write_meta(id, &meta)?;
        let files = Self::files_in(&dir);
        rewrite_in_place(&files.hostname, &format!("{}\n", meta.hostname))?;
        rewrite_in_place(&files.resolv_conf, &host_resolv_conf())?;
        if !files.hosts.exists() {
            rewrite_in_place(&files.hosts, &render_hosts(&meta.hostname, id, &[], &[]))?;
        }
        self.write_hosts(id)?;
        Ok(files)
    }

    /// A container's files, if [`NetRoot::prepare`] made them.
    pub fn files(&self, id: &str) -> Option<ContainerFiles> {
        check_id(id).ok()?;
        let dir = self.container_dir(id);
        let f = Self::files_in(&dir);
        f.hosts.exists().then_some(f)
    }

    /// Removes a container's files (none: nothing to do).
    pub(crate) fn remove_files(&self, id: &str) -> Result<()> {
        let dir = self.container_dir(id);
        // Not while a rewrite of its hosts file holds it.
        let Some(_lock) = lock_in_dir(&dir.join(".lock"))? else {
            return Ok(());
        };
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove", &dir)(e)),
        }
    }

    /// The hosts file text of container `id` from the attachments `members` (one per
    /// cache entry); `hostnames` memoises the peers' hostnames.
    fn hosts_text(
        &self,
        id: &str,
        members: &[Member],
        hostnames: &mut BTreeMap<String, String>,
    ) -> String {
        let mut hostname_of = |cid: &str| -> String {
            hostnames
                .entry(cid.to_string())
                .or_insert_with(|| {
                    self.read_meta(cid)
                        .map(|m| m.hostname)
                        .unwrap_or_else(|| default_hostname(cid))
                })
                .clone()
        };
        let mine: Vec<&Member> = members.iter().filter(|m| m.id == id).collect();
        let own: Vec<IpAddr> = mine.iter().flat_map(|m| m.addrs.iter().copied()).collect();
        let my_networks: HashSet<&str> = mine.iter().map(|m| m.network.as_str()).collect();
        // Peers, in the order of their entries, one line per address.
        let mut peers: Vec<(IpAddr, Vec<String>)> = Vec::new();
        let mut seen: HashSet<IpAddr> = own.iter().copied().collect();
        for m in members
            .iter()
            .filter(|m| m.id != id && my_networks.contains(m.network.as_str()))
        {
            let hn = hostname_of(&m.id);
            for ip in &m.addrs {
                if seen.insert(*ip) {
                    peers.push((*ip, vec![m.id.clone(), hn.clone()]));
                }
            }
        }
        let hostname = hostname_of(id);
        render_hosts(&hostname, id, &own, &peers)
    }

    /// Rewrites the hosts files of `ids` (those that have one) from one reading of the
    /// cache made while holding all their locks (taken in order: two rewrites never wait
    /// on each other crosswise). A file is thus written from a cache at least as new as
    /// any change made before the lock was taken; a change made after it is followed by
    /// its own rewrite.
    fn write_hosts_of(&self, ids: &[String]) -> Result<()> {
        let mut ids: Vec<&String> = ids.iter().collect();
        ids.sort();
        ids.dedup();
        let mut locked = Vec::new();
        for id in ids {
            let dir = self.container_dir(id);
            if dir.join("hosts").exists() {
                if let Some(l) = lock_in_dir(&dir.join(".lock"))? {
                    locked.push((id, l));
                }
            }
        }
        if locked.is_empty() {
            return Ok(());
        }
        let members: Vec<Member> = self.cache().list()?.iter().map(Member::of).collect();
        let mut hostnames = BTreeMap::new();
        let mut first = None;
        for (id, _lock) in &locked {
            let hosts = self.container_dir(id).join("hosts");
            let text = self.hosts_text(id, &members, &mut hostnames);
            match File::options().write(true).open(&hosts) {
                Ok(f) => {
                    if let Err(e) = write_over(f, &text) {
                        first.get_or_insert(io_err("write", &hosts)(e));
                    }
                }
                // Detached while we waited: its directory is gone, nothing to write.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    first.get_or_insert(io_err("open", &hosts)(e));
                }
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Rewrites the hosts file of container `id` from the cache.
    pub(crate) fn write_hosts(&self, id: &str) -> Result<()> {
        self.write_hosts_of(&[id.to_string()])
    }

    /// Rewrites the hosts files of every container on `network` and of `also`, under the
    /// network's lock.
    pub(crate) fn refresh_hosts(&self, network: &str, also: &[&str]) -> Result<()> {
        let _lock = self.lock_network(network)?;
        let mut ids: Vec<String> = self
            .cache()
            .list()?
            .into_iter()
            .filter(|e| e.network == network)
            .map(|e| e.container_id)
            .collect();
        ids.extend(also.iter().map(|s| s.to_string()));
        self.write_hosts_of(&ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_name_self_then_peers() {
        let own = ["10.89.0.2".parse().unwrap()];
        let peers = vec![(
            "10.89.0.3".parse().unwrap(),
            vec!["b".to_string(), "b".to_string()],
        )];
        let t = render_hosts("web", "a", &own, &peers);
        assert_eq!(
            t,
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
             10.89.0.2\tweb.corral.internal web a\n10.89.0.3\tb\n"
        );
        let t = render_hosts("a", "a", &[], &[]);
        assert!(t.ends_with("127.0.1.1\ta.corral.internal a\n"), "{t}");
        let t = render_hosts("web.example.org", "a", &[], &[]);
        assert!(t.ends_with("127.0.1.1\tweb.example.org a\n"), "{t}");
    }

    #[test]
    fn resolv_conf_drops_loopback_nameservers() {
        let host = "search example.org\nnameserver 127.0.0.53\noptions edns0\n";
        let resolved = "nameserver 192.0.2.1\nsearch example.org\n";
        assert_eq!(container_resolv_conf(host, Some(resolved)), resolved);
        let t = container_resolv_conf(host, None);
        assert!(
            !t.contains("127.0.0.53") && t.contains("search example.org"),
            "{t}"
        );
        assert!(t.contains("# corral: the host names no nameserver"), "{t}");
        let host = "nameserver ::1\nnameserver 10.0.0.1\n";
        assert_eq!(
            container_resolv_conf(host, Some(resolved)),
            "nameserver 10.0.0.1\n"
        );
    }
}

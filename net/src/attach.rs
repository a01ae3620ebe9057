//! Attaching a container to its networks and taking it off them: CNI ADD and DEL over each
//! network's config list, the cache entry written before each ADD, and the garbage
//! collection of attachments whose container is gone (after `kill -9` too).
//!
//! Plugins are run from the calling thread, so they act in that thread's network namespace
//! (the "host" side); `netns` is the container's.
//!
//! A DEL without the container's namespace (its process is gone) is run with a stand-in:
//! a fresh, empty network namespace holding an interface of the attachment's name and
//! addresses. The `bridge` plugin (1.1.1 and later alike) finds the masquerade rules to
//! remove from the addresses of the container's interface, and without a namespace it
//! removes none; with the stand-in it finds them, deletes the stand-in's interface, and
//! the rules go. (The stand-in is made with `ip`, in that new namespace only.)

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Map, Value};

use crate::cni::{CacheEntry, CniResult, ConfList, RuntimeConf};
use crate::error::{invalid, Error, Result};
use crate::hosts::check_id;
use crate::network::{check_network_name, lock_file, NetRoot, Subnet};
use crate::types::{Attachment, PortMapping, Protocol, Rate, Request, DEFAULT_NETWORK};

/// The smallest token bucket the bandwidth plugin is given, in bits (64 KiB).
const MIN_BURST_BITS: u64 = 64 * 1024 * 8;

/// A rate's burst in bits: a 25th of a second at the rate, at least 64 KiB, so that a
/// transfer of a few MiB measures within a few per cent of the rate.
pub fn burst_bits(rate_bps: u64) -> u64 {
    (rate_bps / 25).max(MIN_BURST_BITS)
}

/// The `bandwidth` capability argument for `rate` (`None`: no limit).
pub fn bandwidth_arg(rate: &Rate) -> Option<Value> {
    if rate.is_unlimited() {
        return None;
    }
    let mut m = Map::new();
    if let Some(r) = rate.ingress_bps {
        m.insert("ingressRate".into(), json!(r));
        m.insert("ingressBurst".into(), json!(burst_bits(r)));
    }
    if let Some(r) = rate.egress_bps {
        m.insert("egressRate".into(), json!(r));
        m.insert("egressBurst".into(), json!(burst_bits(r)));
    }
    Some(Value::Object(m))
}

/// The `portMappings` capability argument.
fn port_mappings_arg(ports: &[PortMapping]) -> Value {
    Value::Array(
        ports
            .iter()
            .map(|p| {
                let mut m = json!({
                    "hostPort": p.host_port,
                    "containerPort": p.container_port,
                    "protocol": p.protocol.to_string(),
                });
                if let Some(ip) = p.host_ip {
                    m["hostIP"] = json!(ip.to_string());
                }
                m
            })
            .collect(),
    )
}

fn ports_of(args: &Map<String, Value>) -> Vec<PortMapping> {
    args.get("portMappings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| {
            Some(PortMapping {
                host_ip: m
                    .get("hostIP")
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse().ok()),
                host_port: u16::try_from(m.get("hostPort")?.as_u64()?).ok()?,
                container_port: u16::try_from(m.get("containerPort")?.as_u64()?).ok()?,
                protocol: m
                    .get("protocol")
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Whether two published ports would catch the same packets.
fn clash(a: &PortMapping, b: &PortMapping) -> bool {
    a.protocol == b.protocol
        && a.host_port == b.host_port
        && (a.host_ip.is_none() || b.host_ip.is_none() || a.host_ip == b.host_ip)
}

/// The host ports of `ports`, checked and chosen: a port another attachment publishes
/// (`published`, with its container) or a socket of the host holds is refused; a
/// `host_port` 0 gets a free port (port 0 bound on the host address, in the calling
/// thread's network namespace, and read back), one no attachment publishes. The sockets
/// are held until every port is chosen, so two are never the same.
fn choose_ports(
    ports: &[PortMapping],
    published: &[(String, PortMapping)],
) -> Result<Vec<PortMapping>> {
    let mut tcp: Vec<TcpListener> = Vec::new();
    let mut udp: Vec<UdpSocket> = Vec::new();
    let mut out: Vec<PortMapping> = Vec::with_capacity(ports.len());
    for p in ports {
        let mut p = *p;
        let ip = p.host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let fixed = p.host_port != 0;
        let mut tries = 0;
        loop {
            let bad = |e: std::io::Error| {
                if fixed {
                    invalid(
                        "-p",
                        format!("{p}: host port {} is in use: {e}", p.host_port),
                    )
                } else {
                    invalid("-p", format!("{p}: no free host port: {e}"))
                }
            };
            let addr = SocketAddr::new(ip, if fixed { p.host_port } else { 0 });
            let port = match p.protocol {
                Protocol::Tcp => {
                    let l = TcpListener::bind(addr).map_err(bad)?;
                    let port = l.local_addr().map_err(bad)?.port();
                    tcp.push(l);
                    port
                }
                Protocol::Udp => {
                    let s = UdpSocket::bind(addr).map_err(bad)?;
                    let port = s.local_addr().map_err(bad)?.port();
                    udp.push(s);
                    port
                }
            };
            let candidate = PortMapping {
                host_port: port,
                ..p
            };
            let theirs = published.iter().find(|(_, q)| clash(q, &candidate));
            let ours = out.iter().any(|q| clash(q, &candidate));
            match (theirs, fixed) {
                (Some((id, _)), true) => {
                    return Err(invalid(
                        "-p",
                        format!("{p}: host port {port} is published by container {id}"),
                    ))
                }
                (None, true) if ours => {
                    return Err(invalid(
                        "-p",
                        format!("{p}: host port {port} is named twice"),
                    ))
                }
                (None, _) if !ours => {
                    p.host_port = port;
                    break;
                }
                _ => {
                    tries += 1;
                    if tries > 64 {
                        return Err(invalid("-p", format!("{p}: no free host port")));
                    }
                }
            }
        }
        out.push(p);
    }
    drop((tcp, udp));
    Ok(out)
}

/// The attachment an ADD result describes.
pub(crate) fn attachment_of(e: &CacheEntry, result: &Value) -> Result<Attachment> {
    let r = CniResult::from_value(result.clone())?;
    let ips: Vec<String> = r
        .ips
        .iter()
        .filter(|ip| match ip.interface {
            Some(i) => r
                .interfaces
                .get(i)
                .map(|itf| itf.sandbox.is_some())
                .unwrap_or(true),
            None => true,
        })
        .map(|ip| ip.address.clone())
        .collect();
    let gateway = r.ips.iter().find_map(|ip| ip.gateway);
    let mac = r
        .interfaces
        .iter()
        .find(|i| i.sandbox.is_some() && i.name == e.ifname)
        .and_then(|i| i.mac.clone());
    Ok(Attachment {
        network: e.network.clone(),
        ifname: e.ifname.clone(),
        ips,
        gateway,
        mac,
        ports: ports_of(&e.capability_args),
    })
}

/// `ethN` for the smallest N not in `used`.
fn next_ifname(used: &[String]) -> String {
    (0..)
        .map(|n| format!("eth{n}"))
        .find(|n| !used.contains(n))
        .unwrap_or_else(|| "eth0".into())
}

fn ifname_order(ifname: &str) -> (usize, String) {
    let n = ifname
        .strip_prefix("eth")
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX);
    (n, ifname.to_string())
}

/// A stand-in for a container's network namespace that is gone: a new namespace, kept by
/// an open file, with an interface of the attachment's name and addresses.
struct StandIn {
    fd: OwnedFd,
}

impl StandIn {
    fn new(ifname: &str, ips: &[String]) -> std::io::Result<StandIn> {
        let ifname = ifname.to_string();
        let ips = ips.to_vec();
        let made = std::thread::spawn(move || -> std::io::Result<OwnedFd> {
            // This thread alone moves to the new namespace; `ip` is spawned from it.
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)?;
            let run = |args: &[&str]| -> std::io::Result<()> {
                let o = Command::new("ip").args(args).output()?;
                if o.status.success() {
                    Ok(())
                } else {
                    Err(std::io::Error::other(format!(
                        "ip {}: {}",
                        args.join(" "),
                        String::from_utf8_lossy(&o.stderr).trim()
                    )))
                }
            };
            // A veth, which every host that runs the bridge plugin has (`dummy` may be
            // missing); its peer goes with it.
            run(&[
                "link",
                "add",
                &ifname,
                "type",
                "veth",
                "peer",
                "name",
                "corral-standin",
            ])?;
            for ip in &ips {
                let cidr = if ip.contains('/') {
                    ip.clone()
                } else {
                    format!("{ip}/32")
                };
                run(&["addr", "add", &cidr, "dev", &ifname])?;
            }
            Ok(File::open("/proc/thread-self/ns/net")?.into())
        })
        .join()
        .map_err(|_| std::io::Error::other("stand-in namespace thread panicked"))??;
        Ok(StandIn { fd: made })
    }

    fn path(&self) -> PathBuf {
        PathBuf::from(format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            self.fd.as_raw_fd()
        ))
    }
}

/// The addresses host-local leased to `(id, ifname)` under `<dataDir>/<network>/` (a lease
/// file is named by its address and holds the id and the ifname), for an ADD that did not
/// finish.
fn leased_ips(config: &Value, id: &str, ifname: &str) -> Vec<String> {
    let mut out = Vec::new();
    let Some(name) = config.get("name").and_then(Value::as_str) else {
        return out;
    };
    let ipams = config
        .get("plugins")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("ipam"))
        .filter(|i| i.get("type").and_then(Value::as_str) == Some("host-local"));
    for ipam in ipams {
        let d = ipam
            .get("dataDir")
            .and_then(Value::as_str)
            .unwrap_or("/var/lib/cni/networks");
        let dir = Path::new(d).join(name);
        let Ok(rd) = fs::read_dir(&dir) else { continue };
        for ent in rd.flatten() {
            let f = ent.file_name().to_string_lossy().to_string();
            if f.parse::<IpAddr>().is_err() {
                continue;
            }
            let Ok(text) = fs::read_to_string(ent.path()) else {
                continue;
            };
            let mut lines = text.lines().map(str::trim);
            if lines.next() == Some(id) && lines.next().is_none_or(|l| l == ifname) {
                out.push(lease_cidr(ipam, &f));
            }
        }
    }
    out
}

/// `ip` with the prefix length of the host-local range (of `ipam`) that holds it (an
/// IPv4 range; else a host route's).
fn lease_cidr(ipam: &Value, ip: &str) -> String {
    let subnets = ipam
        .get("ranges")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_array)
        .flatten()
        .chain(std::iter::once(ipam))
        .filter_map(|r| r.get("subnet").and_then(Value::as_str));
    if let Ok(IpAddr::V4(a)) = ip.parse::<IpAddr>() {
        for s in subnets {
            if let Ok(sub) = Subnet::parse("subnet", s) {
                if sub.contains(a) {
                    return format!("{ip}/{}", sub.len);
                }
            }
        }
        return format!("{ip}/32");
    }
    format!("{ip}/128")
}

/// Whether a plugin's VERSION answer names CNI 1.1.0 or later (GC and STATUS).
fn speaks_1_1(versions: &[String]) -> bool {
    versions
        .iter()
        .any(|v| crate::cni::parse_version(v) >= crate::cni::parse_version("1.1.0"))
}

impl NetRoot {
    /// Whether a plugin of `list` speaks CNI GC. The answers are kept in
    /// `<root>/cni/versions.json`, by plugin file, size and modification time: asking
    /// every plugin its VERSION costs a few milliseconds each, and a runtime that
    /// collects at every create (a new process each time) would pay it every time. A
    /// plugin that cannot be found or asked counts as speaking it (the GC then reports it).
    fn any_speaks_gc(&self, list: &ConfList) -> bool {
        let memo_path = self.root.join("cni").join("versions.json");
        let mut memo: BTreeMap<String, bool> = fs::read(&memo_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let mut changed = false;
        let mut any = false;
        for i in 0..list.plugins.len() {
            let t = list.plugin_type(i);
            let Ok(exe) = self.cni.find(t) else {
                return true;
            };
            let Ok(m) = fs::metadata(&exe) else {
                return true;
            };
            let mtime = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            let key = format!("{}:{}:{}", exe.display(), m.len(), mtime);
            let speaks = match memo.get(&key) {
                Some(s) => *s,
                None => match self.cni.versions(t) {
                    Ok(v) => {
                        let s = speaks_1_1(&v);
                        memo.insert(key, s);
                        changed = true;
                        s
                    }
                    Err(_) => return true,
                },
            };
            any |= speaks;
        }
        if changed {
            if let Ok(b) = serde_json::to_vec_pretty(&memo) {
                let _ = crate::network::write_atomic(&memo_path, &b);
            }
        }
        any
    }

    /// Runs DEL for a cache entry: with `netns` when it is given and still there, else with
    /// a stand-in (see the module's documentation). The entry stays; the caller removes it.
    fn del_entry(&self, e: &CacheEntry, netns: Option<&Path>) -> Result<()> {
        let list = e.conf_list()?;
        let mut rt = e.runtime_conf();
        // An ADD that did not finish has no result: its addresses are host-local's leases,
        // and a result naming them lets the plugins that find their rules by address
        // (firewall) remove them.
        let (ips, made_prev) = match &e.result {
            Some(r) => (attachment_of(e, r).map(|a| a.ips).unwrap_or_default(), None),
            None => {
                let ips = leased_ips(&e.config, &e.container_id, &e.ifname);
                let prev = (!ips.is_empty()).then(|| {
                    json!({
                        "cniVersion": list.cni_version,
                        "interfaces": [{ "name": e.ifname, "sandbox": netns.map(|p| p.display().to_string()).unwrap_or_default() }],
                        "ips": ips.iter().map(|a| json!({ "address": a, "interface": 0 })).collect::<Vec<_>>(),
                    })
                });
                (ips, prev)
            }
        };
        let stand_in;
        rt.netns = match netns.filter(|p| p.exists()) {
            Some(p) => Some(p.to_path_buf()),
            None => {
                // Without `ip` or addresses, DEL runs without a namespace (what can be
                // undone without one is).
                stand_in = if ips.is_empty() {
                    None
                } else {
                    StandIn::new(&e.ifname, &ips).ok()
                };
                stand_in.as_ref().map(StandIn::path)
            }
        };
        self.cni
            .del(&list, &rt, e.result.as_ref().or(made_prev.as_ref()))
    }

    /// DELs one entry and removes it when the DEL succeeded.
    ///
    /// Two commands may undo one entry at once (a `delete` and another command's
    /// [`NetRoot::gc`], which sees the container's state gone before its detach ends): the
    /// entry's file is locked for the DEL and removed before the lock goes, and whoever
    /// comes second finds it gone and does nothing (a second DEL would fail on the rules the
    /// first removed).
    fn undo(&self, e: &CacheEntry, netns: Option<&Path>) -> Result<()> {
        use std::os::unix::fs::MetadataExt;
        let cache = self.cache();
        let path = cache.file(&e.container_id, &e.network, &e.ifname)?;
        let f = match File::open(&path) {
            Ok(f) => f,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(err) => return Err(crate::error::io_err("open", &path)(err)),
        };
        let lock = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive).map_err(
            |(_, errno)| Error::Io {
                op: "lock",
                path: path.clone(),
                source: errno.into(),
            },
        )?;
        let held = lock.metadata().map(|m| m.ino()).ok();
        match fs::metadata(&path) {
            Ok(m) if Some(m.ino()) == held => {}
            // Undone (and perhaps made again) by another command meanwhile.
            _ => return Ok(()),
        }
        let current = cache
            .get(&e.container_id, &e.network, &e.ifname)?
            .unwrap_or_else(|| e.clone());
        self.del_entry(&current, netns)?;
        cache.remove(&e.container_id, &e.network, &e.ifname)
    }

    /// ADD of one network: the entry written first (no result), then the result kept. A
    /// failed ADD is DELed and its entry removed (kept if that DEL fails too, for
    /// [`NetRoot::gc`]).
    #[allow(clippy::too_many_arguments)]
    fn add_one(
        &self,
        id: &str,
        owner: &Path,
        netns: &Path,
        network: &str,
        ifname: &str,
        ports: &[PortMapping],
        rate: &Rate,
    ) -> Result<Attachment> {
        let cache = self.cache();
        let mut capability_args = Map::new();
        if !ports.is_empty() {
            capability_args.insert("portMappings".into(), port_mappings_arg(ports));
        }
        if let Some(bw) = bandwidth_arg(rate) {
            capability_args.insert("bandwidth".into(), bw);
        }
        let (list, mut entry) = {
            let _lock = self.lock_network(network)?;
            let list = self.conflist(network)?;
            if let Some(old) = cache
                .of_container(id)?
                .into_iter()
                .find(|e| e.network == network || e.ifname == ifname)
            {
                return Err(Error::Network {
                    name: network.into(),
                    reason: format!(
                        "container {id} is attached already (to {} as {})",
                        old.network, old.ifname
                    ),
                });
            }
            let entry = CacheEntry {
                container_id: id.to_string(),
                network: network.to_string(),
                ifname: ifname.to_string(),
                netns: Some(netns.to_path_buf()),
                config: list.to_json(),
                capability_args: capability_args.clone(),
                args: vec![],
                result: None,
                owner: owner.to_path_buf(),
            };
            cache.put(&entry)?;
            (list, entry)
        };
        let rt = RuntimeConf {
            container_id: id.to_string(),
            netns: Some(netns.to_path_buf()),
            ifname: ifname.to_string(),
            args: vec![],
            capability_args,
        };
        // One ADD at a time per root: the plugins make their shared chains (firewall's
        // CNI-ADMIN, portmap's CNI-HOSTPORT-*) with a check then a create, which races
        // under iptables' nf_tables backend ("CHAIN_USER_ADD failed (File exists)").
        let added = {
            let _serial = lock_file(&self.locks_dir().join("add.lock"))?;
            self.cni.add(&list, &rt)
        };
        match added {
            Ok(res) => {
                entry.result = Some(res.raw);
                let kept = cache.put(&entry).and_then(|()| {
                    attachment_of(&entry, entry.result.as_ref().unwrap_or(&Value::Null))
                });
                if kept.is_err() {
                    // Not kept, not half-made: DEL with the result in hand.
                    let _ = self.undo(&entry, Some(netns));
                }
                kept
            }
            Err(err) => {
                let _ = self.undo(&entry, Some(netns));
                Err(err)
            }
        }
    }

    /// Attaches container `id` (of the runtime whose state root is `owner`, in the network
    /// namespace `netns`) to the networks of `req` (none named: the default one), as
    /// `eth0`, `eth1`...: published ports on the first, rate limits on each. All or
    /// nothing: when one network fails, those attached before are detached, and the error
    /// is the failing one's. The container's files are made if [`NetRoot::prepare`] did
    /// not make them, and the hosts files of every container on these networks rewritten.
    pub fn attach(
        &self,
        id: &str,
        owner: &Path,
        netns: &Path,
        req: &Request,
    ) -> Result<Vec<Attachment>> {
        check_id(id)?;
        let networks: Vec<String> = if req.networks.is_empty() {
            vec![DEFAULT_NETWORK.to_string()]
        } else {
            req.networks.clone()
        };
        for (i, n) in networks.iter().enumerate() {
            if n != DEFAULT_NETWORK {
                check_network_name(n)?;
            }
            if networks[..i].contains(n) {
                return Err(invalid("network", format!("{n:?} is named twice")));
            }
        }
        let published: Vec<(String, PortMapping)> = self
            .cache()
            .list()?
            .into_iter()
            .filter(|e| e.container_id != id)
            .flat_map(|e| {
                ports_of(&e.capability_args)
                    .into_iter()
                    .map(move |p| (e.container_id.clone(), p))
            })
            .collect();
        let ports = choose_ports(&req.ports, &published)?;
        let mut meta = self.read_meta(id).unwrap_or_default();
        let made_files = self.files(id).is_none();
        if made_files {
            self.prepare(id, req)?;
            meta = self.read_meta(id).unwrap_or_default();
        }
        meta.owner = Some(owner.to_path_buf());
        meta.rate = req.rate;
        self.write_meta(id, &meta)?;

        let mut done: Vec<Attachment> = Vec::new();
        for (i, network) in networks.iter().enumerate() {
            let ifname = format!("eth{i}");
            let p: &[PortMapping] = if i == 0 { &ports } else { &[] };
            match self.add_one(id, owner, netns, network, &ifname, p, &req.rate) {
                Ok(a) => done.push(a),
                Err(err) => {
                    let cache = self.cache();
                    for a in done.iter().rev() {
                        if let Ok(Some(e)) = cache.get(id, &a.network, &a.ifname) {
                            let _ = self.undo(&e, Some(netns));
                        }
                    }
                    for a in &done {
                        let _ = self.refresh_hosts(&a.network, &[]);
                    }
                    if made_files {
                        let _ = self.remove_files(id);
                    } else {
                        let _ = self.write_hosts(id);
                    }
                    return Err(err);
                }
            }
        }
        for a in &done {
            self.refresh_hosts(&a.network, &[id])?;
        }
        Ok(done)
    }

    /// Attaches a running container to one more network, as the next free `ethN` (its
    /// rate limits apply; published ports stay on the first network).
    pub fn connect(
        &self,
        id: &str,
        owner: &Path,
        netns: &Path,
        network: &str,
    ) -> Result<Attachment> {
        check_id(id)?;
        if network != DEFAULT_NETWORK {
            check_network_name(network)?;
        }
        let used: Vec<String> = self
            .cache()
            .of_container(id)?
            .into_iter()
            .map(|e| e.ifname)
            .collect();
        let mut meta = match self.read_meta(id) {
            Some(m) => m,
            None => {
                self.prepare(id, &Request::default())?;
                self.read_meta(id).unwrap_or_default()
            }
        };
        meta.owner = Some(owner.to_path_buf());
        self.write_meta(id, &meta)?;
        let a = self.add_one(
            id,
            owner,
            netns,
            network,
            &next_ifname(&used),
            &[],
            &meta.rate,
        )?;
        self.refresh_hosts(network, &[id])?;
        Ok(a)
    }

    /// Takes a container off one network (DEL of its cached attachment; `netns` `None` when
    /// the container's process is gone). Not attached to it: an error.
    pub fn disconnect(&self, id: &str, network: &str, netns: Option<&Path>) -> Result<()> {
        check_id(id)?;
        let entries: Vec<CacheEntry> = self
            .cache()
            .of_container(id)?
            .into_iter()
            .filter(|e| e.network == network)
            .collect();
        if entries.is_empty() {
            return Err(Error::Network {
                name: network.into(),
                reason: format!("container {id} is not attached to it"),
            });
        }
        let mut first = None;
        for e in &entries {
            if let Err(err) = self.undo(e, netns) {
                first.get_or_insert(err);
            }
        }
        let r = self.refresh_hosts(network, &[id]);
        match first {
            Some(e) => Err(e),
            None => r,
        }
    }

    /// Takes a container off every network and removes its files. Idempotent (nothing
    /// attached: nothing to do); `netns` `None` when the container's process is gone. Every
    /// attachment is tried; an attachment whose DEL failed stays cached (and its files
    /// stay), and the first error is returned.
    pub fn detach(&self, id: &str, netns: Option<&Path>) -> Result<()> {
        check_id(id)?;
        let mut entries = self.cache().of_container(id)?;
        entries.sort_by_key(|e| std::cmp::Reverse(ifname_order(&e.ifname)));
        let mut first = None;
        let mut networks: Vec<String> = Vec::new();
        for e in &entries {
            match self.undo(e, netns) {
                Ok(()) => networks.push(e.network.clone()),
                Err(err) => {
                    first.get_or_insert(err);
                }
            }
        }
        if first.is_none() {
            if let Err(e) = self.remove_files(id) {
                first.get_or_insert(e);
            }
        }
        for n in &networks {
            if let Err(e) = self.refresh_hosts(n, &[]) {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// A container's attachments, `eth0` first (an ADD not finished is not one).
    pub fn attachments(&self, id: &str) -> Result<Vec<Attachment>> {
        check_id(id)?;
        let mut entries = self.cache().of_container(id)?;
        entries.sort_by_key(|e| ifname_order(&e.ifname));
        entries
            .iter()
            .filter_map(|e| e.result.as_ref().map(|r| attachment_of(e, r)))
            .collect()
    }

    /// Collects what containers that are gone left: every cache entry whose `(id, owner)`
    /// `live` says is not a live container is DELed (without its namespace) and removed,
    /// the files of such containers removed, the hosts files of their networks rewritten;
    /// then each network's plugins that support CNI GC are sent the attachments still
    /// valid. Returns the number of attachments collected; every entry is tried, and the
    /// first error is returned after.
    pub fn gc(&self, live: &dyn Fn(&str, &Path) -> bool) -> Result<usize> {
        let cache = self.cache();
        let mut first: Option<Error> = None;
        let mut n = 0;
        let mut networks: Vec<String> = Vec::new();
        for e in cache.list()? {
            if live(&e.container_id, &e.owner) {
                continue;
            }
            match self.undo(&e, None) {
                Ok(()) => {
                    n += 1;
                    networks.push(e.network.clone());
                }
                Err(err) => {
                    first.get_or_insert(err);
                }
            }
        }
        // Files of containers that are gone, once nothing of theirs is cached.
        let remaining = cache.list()?;
        let dir = self.root.join("cni").join("containers");
        if let Ok(rd) = fs::read_dir(&dir) {
            for ent in rd.flatten() {
                let id = ent.file_name().to_string_lossy().to_string();
                let Some(meta) = self.read_meta(&id) else {
                    continue;
                };
                let Some(owner) = meta.owner else { continue };
                if !live(&id, &owner) && !remaining.iter().any(|e| e.container_id == id) {
                    if let Err(e) = self.remove_files(&id) {
                        first.get_or_insert(e);
                    }
                }
            }
        }
        networks.sort();
        networks.dedup();
        for net in &networks {
            if let Err(e) = self.refresh_hosts(net, &[]) {
                first.get_or_insert(e);
            }
        }
        // CNI GC, for the plugins that speak it (Cni::gc skips the others).
        for name in self.names()? {
            let list = match self.conflist(&name) {
                Ok(l) => l,
                Err(e) => {
                    first.get_or_insert(e);
                    continue;
                }
            };
            if list.disable_gc || !self.any_speaks_gc(&list) {
                continue;
            }
            let valid: Vec<(String, String)> = remaining
                .iter()
                .filter(|e| e.network == name)
                .map(|e| (e.container_id.clone(), e.ifname.clone()))
                .collect();
            if let Err(e) = self.cni.gc(&list, &valid) {
                first.get_or_insert(e);
            }
        }
        match first {
            Some(e) => Err(e),
            None => Ok(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_and_capability_args() {
        assert_eq!(burst_bits(1_000_000), MIN_BURST_BITS);
        assert_eq!(burst_bits(100_000_000), 4_000_000);
        assert_eq!(bandwidth_arg(&Rate::default()), None);
        let v = bandwidth_arg(&Rate {
            ingress_bps: Some(10_000_000),
            egress_bps: None,
        })
        .unwrap();
        assert_eq!(
            v,
            json!({"ingressRate": 10_000_000u64, "ingressBurst": MIN_BURST_BITS})
        );
        let p = PortMapping::parse("127.0.0.1:8080:80/udp").unwrap();
        let v = port_mappings_arg(&[p]);
        assert_eq!(
            v,
            json!([{"hostPort": 8080, "containerPort": 80, "protocol": "udp", "hostIP": "127.0.0.1"}])
        );
        let mut m = Map::new();
        m.insert("portMappings".into(), v);
        assert_eq!(ports_of(&m), vec![p]);
    }

    #[test]
    fn leases_get_their_range_prefix() {
        let ipam = json!({"type": "host-local", "ranges": [[{"subnet": "10.90.3.0/24"}]]});
        assert_eq!(lease_cidr(&ipam, "10.90.3.7"), "10.90.3.7/24");
        assert_eq!(lease_cidr(&ipam, "10.1.1.1"), "10.1.1.1/32");
        let old = json!({"type": "host-local", "subnet": "10.89.0.0/16"});
        assert_eq!(lease_cidr(&old, "10.89.2.2"), "10.89.2.2/16");
        assert_eq!(lease_cidr(&old, "fd00::2"), "fd00::2/128");
    }

    #[test]
    fn interface_names_fill_the_first_gap() {
        assert_eq!(next_ifname(&[]), "eth0");
        assert_eq!(next_ifname(&["eth0".into(), "eth2".into()]), "eth1");
        let mut v = vec!["eth10", "eth2", "eth0"];
        v.sort_by_key(|s| ifname_order(s));
        assert_eq!(v, ["eth0", "eth2", "eth10"]);
    }
}

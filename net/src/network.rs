//! Networks: CNI config lists in `<root>/networks/<name>.conflist`, and [`NetRoot`], the
//! handle on a network root that every operation of this crate goes through.
//!
//! Every network corral makes is one chain: `bridge` (with `host-local` addresses whose
//! leases live under the root, so they survive a crash), `portmap` (published ports, with
//! the localhost and hairpin paths), `firewall` (accepts the container's traffic in the
//! `FORWARD` chain, where a host's policy drops it) and `bandwidth` (rate limits). The
//! default network [`DEFAULT_NETWORK`] (`bridge`: device `corral0`, 10.89.0.0/16) is written
//! on first use; a named network gets the next free `10.90.N.0/24` and device `corralN`
//! unless told otherwise.

use std::fs::{self, File};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::fcntl::{Flock, FlockArg};
use serde_json::{json, Value};

use crate::cni::{valid_name, Cache, Cni, ConfList};
use crate::error::{invalid, io_err, Error, Result};
use crate::types::{NetworkInfo, NetworkOptions, DEFAULT_NETWORK};

/// The CNI version of the config lists corral writes (the newest the Debian 12 plugins speak).
pub const CNI_VERSION: &str = "1.0.0";
/// The default network's bridge device.
pub const DEFAULT_BRIDGE: &str = "corral0";
/// The default network's subnet.
pub const DEFAULT_SUBNET: &str = "10.89.0.0/16";
/// The range named networks get their `/24` from, in order: `10.90.0.0/24`, `10.90.1.0/24`...
pub const NAMED_RANGE: &str = "10.90.0.0/16";

/// Names that choose a network mode and can never name a network.
const RESERVED: &[&str] = &["none", "host", "default", "container"];

/// A network root: the networks, the CNI cache, the leases and the containers' hosts files
/// of one image store (the layout is in the crate's documentation). Cheap to open: nothing
/// is made until needed.
#[derive(Debug, Clone)]
pub struct NetRoot {
    pub(crate) root: PathBuf,
    pub(crate) cni: Cni,
}

/// An IPv4 subnet: its first address and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Subnet {
    pub(crate) addr: u32,
    pub(crate) len: u8,
}

impl Subnet {
    /// Parses `a.b.c.d/len`; `field` names the input in errors. Host bits set is an error.
    pub(crate) fn parse(field: &str, s: &str) -> Result<Subnet> {
        let bad = |why: &str| invalid(field, format!("{s:?}: {why}"));
        let (ip, len) = s
            .split_once('/')
            .ok_or_else(|| bad("not a CIDR subnet (want e.g. 10.90.7.0/24)"))?;
        let ip: IpAddr = ip.parse().map_err(|_| bad("not an address"))?;
        let ip = match ip {
            IpAddr::V4(ip) => ip,
            IpAddr::V6(_) => return Err(bad("IPv6 subnets are not supported")),
        };
        let len: u8 = len
            .parse()
            .ok()
            .filter(|l| *l <= 32)
            .ok_or_else(|| bad("the prefix length is 0-32"))?;
        if !(8..=30).contains(&len) {
            return Err(bad("a network's prefix length is 8-30"));
        }
        let addr = u32::from(ip);
        let sub = Subnet { addr, len };
        if addr & !sub.mask() != 0 {
            return Err(bad(&format!(
                "host bits are set (the subnet is {})",
                Subnet {
                    addr: addr & sub.mask(),
                    len
                }
            )));
        }
        Ok(sub)
    }

    fn mask(&self) -> u32 {
        if self.len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.len))
        }
    }

    pub(crate) fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == self.addr
    }

    fn overlaps(&self, other: &Subnet) -> bool {
        let m = self.mask() & other.mask();
        self.addr & m == other.addr & m
    }

    fn broadcast(&self) -> u32 {
        self.addr | !self.mask()
    }

    fn first_host(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.addr + 1)
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.addr), self.len)
    }
}

/// Whether `name` can be a network device name (what the kernel takes: 1-15 bytes, no
/// `/`, `:` or white space).
fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c == '\0')
}

/// Writes `bytes` to `path` whole: a temporary file in the same directory renamed over it.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io_err("create", dir))?;
    let tmp = dir.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let write = || -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io_err("write", path)(e)
    })
}

/// An exclusive `flock` on `path` (made if missing), held until the guard drops.
pub(crate) fn lock_file(path: &Path) -> Result<Flock<File>> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io_err("create", dir))?;
    }
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io_err("open", path))?;
    Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, errno)| Error::Io {
        op: "lock",
        path: path.to_path_buf(),
        source: errno.into(),
    })
}

/// An exclusive `flock` on `path`, made if missing, in a directory that must exist:
/// `None` when the directory is gone (what it locked was removed).
pub(crate) fn lock_in_dir(path: &Path) -> Result<Option<Flock<File>>> {
    let f = match File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("open", path)(e)),
    };
    Flock::lock(f, FlockArg::LockExclusive)
        .map(Some)
        .map_err(|(_, errno)| Error::Io {
            op: "lock",
            path: path.to_path_buf(),
            source: errno.into(),
        })
}

/// Checks a network name given by a user or a request.
pub(crate) fn check_network_name(name: &str) -> Result<()> {
    if RESERVED.contains(&name) || name.starts_with("container:") {
        return Err(invalid(
            "network",
            format!("{name:?} is a network mode, not a network's name"),
        ));
    }
    if name.len() > 64 || !valid_name(name) {
        return Err(invalid(
            "network",
            format!(
                "{name:?} is not a network name (1-64 characters: a letter or digit, then letters, digits, '_', '.' or '-')"
            ),
        ));
    }
    Ok(())
}

/// The subnets and gateways of a config list's IPAM ranges (`ranges` or the older
/// `subnet`/`gateway`), as written.
fn ipam_of(list: &ConfList) -> (Vec<String>, Vec<String>) {
    let mut subnets = Vec::new();
    let mut gateways = Vec::new();
    for p in &list.plugins {
        let Some(ipam) = p.get("ipam").and_then(Value::as_object) else {
            continue;
        };
        let mut take = |o: &serde_json::Map<String, Value>| {
            if let Some(s) = o.get("subnet").and_then(Value::as_str) {
                subnets.push(s.to_string());
            }
            if let Some(g) = o.get("gateway").and_then(Value::as_str) {
                gateways.push(g.to_string());
            }
        };
        take(ipam);
        for set in ipam
            .get("ranges")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            for r in set.as_array().into_iter().flatten() {
                if let Some(o) = r.as_object() {
                    take(o);
                }
            }
        }
    }
    (subnets, gateways)
}

/// The bridge device of a config list's `bridge` plugin (the plugin's own default is `cni0`).
fn bridge_of(list: &ConfList) -> Option<String> {
    list.plugins
        .iter()
        .find(|p| p.get("type").and_then(Value::as_str) == Some("bridge"))
        .map(|p| {
            p.get("bridge")
                .and_then(Value::as_str)
                .unwrap_or("cni0")
                .to_string()
        })
}

impl NetRoot {
    /// The network root `root` (an image store's directory), with the plugins found in
    /// [`Cni::default_dirs`].
    pub fn open(root: &Path) -> NetRoot {
        NetRoot::with_cni(root, Cni::new(Cni::default_dirs()))
    }

    /// The network root `root`, running plugins with `cni`.
    pub fn with_cni(root: &Path, cni: Cni) -> NetRoot {
        NetRoot {
            root: root.to_path_buf(),
            cni,
        }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the plugins are looked for.
    pub fn plugin_dirs(&self) -> &[PathBuf] {
        &self.cni.plugin_dirs
    }

    /// The CNI runtime used.
    pub fn cni(&self) -> &Cni {
        &self.cni
    }

    pub(crate) fn networks_dir(&self) -> PathBuf {
        self.root.join("networks")
    }

    pub(crate) fn conflist_path(&self, name: &str) -> PathBuf {
        self.networks_dir().join(format!("{name}.conflist"))
    }

    /// host-local's `dataDir`: leases are in `<this>/<network>/`.
    pub(crate) fn leases_dir(&self) -> PathBuf {
        self.root.join("cni").join("leases")
    }

    pub(crate) fn cache(&self) -> Cache {
        Cache::new(self.root.join("cni").join("results"))
    }

    pub(crate) fn locks_dir(&self) -> PathBuf {
        self.root.join("cni").join("locks")
    }

    /// The lock of one network: held to read its list and record an attachment, to
    /// remove it, and to rewrite the hosts files of its containers.
    pub(crate) fn lock_network(&self, name: &str) -> Result<Flock<File>> {
        lock_file(&self.locks_dir().join(format!("net-{name}.lock")))
    }

    /// The lock held while a network is made (its subnet and bridge chosen).
    fn lock_create(&self) -> Result<Flock<File>> {
        lock_file(&self.locks_dir().join("create.lock"))
    }

    /// The config list of a network corral makes.
    fn build_conflist(
        &self,
        name: &str,
        bridge: &str,
        subnet: &Subnet,
        gateway: Ipv4Addr,
    ) -> Value {
        json!({
            "cniVersion": CNI_VERSION,
            "name": name,
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": bridge,
                    "isGateway": true,
                    "ipMasq": true,
                    "hairpinMode": true,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{ "subnet": subnet.to_string(), "gateway": gateway.to_string() }]],
                        "routes": [{ "dst": "0.0.0.0/0" }],
                        "dataDir": self.leases_dir(),
                    }
                },
                { "type": "portmap", "capabilities": { "portMappings": true }, "snat": true },
                // Containers of different networks do not reach each other (docker's
                // isolation of user networks); published ports still do.
                { "type": "firewall", "ingressPolicy": "same-bridge" },
                { "type": "bandwidth", "capabilities": { "bandwidth": true } }
            ]
        })
    }

    fn write_list(&self, name: &str, list: &Value) -> Result<()> {
        let path = self.conflist_path(name);
        let mut bytes = serde_json::to_vec_pretty(list)
            .map_err(|e| invalid(path.display().to_string(), e.to_string()))?;
        bytes.push(b'\n');
        write_atomic(&path, &bytes)
    }

    /// Writes the default network if it is missing (under the create lock).
    fn ensure_default(&self) -> Result<()> {
        if self.conflist_path(DEFAULT_NETWORK).exists() {
            return Ok(());
        }
        let _lock = self.lock_create()?;
        if self.conflist_path(DEFAULT_NETWORK).exists() {
            return Ok(());
        }
        let subnet = Subnet::parse("default subnet", DEFAULT_SUBNET)?;
        let list = self.build_conflist(
            DEFAULT_NETWORK,
            DEFAULT_BRIDGE,
            &subnet,
            subnet.first_host(),
        );
        self.write_list(DEFAULT_NETWORK, &list)
    }

    /// The names of the networks written, sorted, without making the default one.
    pub(crate) fn names(&self) -> Result<Vec<String>> {
        let dir = self.networks_dir();
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(io_err("read", &dir)(e)),
        };
        let mut names = Vec::new();
        for ent in rd {
            let ent = ent.map_err(io_err("read", &dir))?;
            let f = ent.file_name();
            let f = f.to_string_lossy();
            if let Some(n) = f.strip_suffix(".conflist") {
                if n == DEFAULT_NETWORK || check_network_name(n).is_ok() {
                    names.push(n.to_string());
                }
            }
        }
        names.sort();
        Ok(names)
    }

    /// Makes a network: a bridge with host-local addresses from `o.subnet` (default: the
    /// next `10.90.N.0/24` no other network overlaps), portmap, firewall and bandwidth.
    /// Refuses a name taken or reserved (`none`, `host`...), a subnet overlapping another
    /// network's, a gateway outside the subnet, a bridge device another network uses.
    pub fn create(&self, name: &str, o: &NetworkOptions) -> Result<NetworkInfo> {
        check_network_name(name)?;
        if name == DEFAULT_NETWORK {
            return Err(Error::Network {
                name: name.into(),
                reason: "the default network is made by corral itself".into(),
            });
        }
        self.ensure_default()?;
        let _lock = self.lock_create()?;
        if self.conflist_path(name).exists() {
            return Err(Error::Network {
                name: name.into(),
                reason: "exists already".into(),
            });
        }
        // What the other networks hold.
        let mut taken: Vec<(String, Subnet)> = Vec::new();
        let mut bridges: Vec<(String, String)> = Vec::new();
        for other in self.names()? {
            let list = ConfList::load(&self.conflist_path(&other))?;
            for s in ipam_of(&list).0 {
                if let Ok(sub) = Subnet::parse("subnet", &s) {
                    taken.push((other.clone(), sub));
                }
            }
            if let Some(b) = bridge_of(&list) {
                bridges.push((other.clone(), b));
            }
        }
        let subnet = match &o.subnet {
            Some(s) => {
                let sub = Subnet::parse("--subnet", s)?;
                if let Some((other, os)) = taken.iter().find(|(_, t)| t.overlaps(&sub)) {
                    return Err(invalid(
                        "--subnet",
                        format!("{sub} overlaps network {other:?}'s {os}"),
                    ));
                }
                sub
            }
            None => {
                let range = Subnet::parse("range", NAMED_RANGE)?;
                (0..=255u32)
                    .map(|n| Subnet {
                        addr: range.addr | (n << 8),
                        len: 24,
                    })
                    .find(|c| !taken.iter().any(|(_, t)| t.overlaps(c)))
                    .ok_or_else(|| Error::Network {
                        name: name.into(),
                        reason: format!("no free /24 left in {NAMED_RANGE}: give --subnet"),
                    })?
            }
        };
        let gateway = match o.gateway {
            None => subnet.first_host(),
            Some(IpAddr::V4(g)) => {
                let n = u32::from(g);
                if !subnet.contains(g) || n == subnet.addr || n == subnet.broadcast() {
                    return Err(invalid(
                        "--gateway",
                        format!("{g} is not a host address of {subnet}"),
                    ));
                }
                g
            }
            Some(g @ IpAddr::V6(_)) => {
                return Err(invalid("--gateway", format!("{g}: IPv6 is not supported")))
            }
        };
        let bridge = match &o.bridge {
            Some(b) => {
                if !valid_ifname(b) {
                    return Err(invalid(
                        "--bridge",
                        format!(
                            "{b:?} is not a device name (1-15 characters, no '/', ':' or space)"
                        ),
                    ));
                }
                if let Some((other, _)) = bridges.iter().find(|(_, ob)| ob == b) {
                    return Err(invalid(
                        "--bridge",
                        format!("{b:?} is network {other:?}'s bridge"),
                    ));
                }
                b.clone()
            }
            None => (1..10_000)
                .map(|n| format!("corral{n}"))
                .find(|b| !bridges.iter().any(|(_, ob)| ob == b))
                .ok_or_else(|| Error::Network {
                    name: name.into(),
                    reason: "no free bridge name".into(),
                })?,
        };
        let list = self.build_conflist(name, &bridge, &subnet, gateway);
        self.write_list(name, &list)?;
        drop(_lock);
        self.inspect(name)
    }

    /// Every network, the default one first (written on first use).
    pub fn list(&self) -> Result<Vec<NetworkInfo>> {
        self.ensure_default()?;
        let mut names = self.names()?;
        names.sort_by_key(|n| (n != DEFAULT_NETWORK, n.clone()));
        let entries = self.cache().list()?;
        names.iter().map(|n| self.info(n, &entries)).collect()
    }

    /// One network, with the containers attached.
    pub fn inspect(&self, name: &str) -> Result<NetworkInfo> {
        let entries = self.cache().list()?;
        self.info(name, &entries)
    }

    fn info(&self, name: &str, entries: &[crate::cni::CacheEntry]) -> Result<NetworkInfo> {
        let list = self.conflist(name)?;
        let (subnets, gateways) = ipam_of(&list);
        let mut containers: Vec<(String, Vec<String>)> = Vec::new();
        for e in entries.iter().filter(|e| e.network == name) {
            let ips = e
                .result
                .as_ref()
                .and_then(|r| crate::attach::attachment_of(e, r).ok())
                .map(|a| a.ips)
                .unwrap_or_default();
            match containers.iter_mut().find(|(id, _)| *id == e.container_id) {
                Some((_, v)) => v.extend(ips),
                None => containers.push((e.container_id.clone(), ips)),
            }
        }
        Ok(NetworkInfo {
            name: name.to_string(),
            file: self.conflist_path(name),
            cni_version: list.cni_version.clone(),
            plugins: (0..list.plugins.len())
                .map(|i| list.plugin_type(i).to_string())
                .collect(),
            bridge: bridge_of(&list),
            subnets,
            gateways,
            containers,
        })
    }

    /// Removes a network: its list, its leases and its bridge device (when the device is a
    /// bridge with no ports left, seen from the calling thread's network namespace).
    /// Refused for the default network and while containers are attached (named in the
    /// error).
    pub fn remove(&self, name: &str) -> Result<()> {
        if name == DEFAULT_NETWORK {
            return Err(Error::Network {
                name: name.into(),
                reason: "the default network cannot be removed".into(),
            });
        }
        check_network_name(name)?;
        let lock = self.lock_network(name)?;
        let path = self.conflist_path(name);
        if !path.exists() {
            return Err(Error::Network {
                name: name.into(),
                reason: "no such network".into(),
            });
        }
        // A list that does not parse can still be removed (its bridge is then not known).
        let list = ConfList::load(&path).ok();
        let mut ids: Vec<String> = self
            .cache()
            .list()?
            .into_iter()
            .filter(|e| e.network == name)
            .map(|e| e.container_id)
            .collect();
        ids.dedup();
        if !ids.is_empty() {
            return Err(Error::Network {
                name: name.into(),
                reason: format!("containers are attached: {}", ids.join(", ")),
            });
        }
        fs::remove_file(&path).map_err(io_err("remove", &path))?;
        let leases = self.leases_dir().join(name);
        match fs::remove_dir_all(&leases) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("remove", &leases)(e)),
        }
        if let Some(b) = list.as_ref().and_then(bridge_of) {
            remove_bridge(name, &b)?;
        }
        let _ = fs::remove_file(self.locks_dir().join(format!("net-{name}.lock")));
        drop(lock);
        Ok(())
    }

    /// A network's config list; the default network is written on first use.
    pub fn conflist(&self, name: &str) -> Result<ConfList> {
        if name == DEFAULT_NETWORK {
            self.ensure_default()?;
        } else {
            check_network_name(name)?;
        }
        let path = self.conflist_path(name);
        if !path.exists() {
            return Err(Error::Network {
                name: name.into(),
                reason: format!("no such network (no {})", path.display()),
            });
        }
        let list = ConfList::load(&path)?;
        if list.name != name {
            return Err(Error::Network {
                name: name.into(),
                reason: format!(
                    "{} names network {:?} (a list's name is its file's)",
                    path.display(),
                    list.name
                ),
            });
        }
        Ok(list)
    }
}

/// Deletes the bridge device `dev` of network `name` in the calling thread's network
/// namespace, if it is a bridge and no interface is its port (a bridge a user made for
/// other uses keeps its ports and stays). No such device: nothing to do.
fn remove_bridge(name: &str, dev: &str) -> Result<()> {
    let run = |args: &[&str]| Command::new("ip").args(args).output();
    let show = match run(&["-d", "-j", "link", "show", "dev", dev]) {
        Ok(o) if o.status.success() => o.stdout,
        // No such device (or no `ip`: nothing we can do, and nothing to refuse).
        _ => return Ok(()),
    };
    let links: Value = serde_json::from_slice(&show).unwrap_or(Value::Null);
    let kind = links
        .get(0)
        .and_then(|l| l.get("linkinfo"))
        .and_then(|l| l.get("info_kind"))
        .and_then(Value::as_str);
    if kind != Some("bridge") {
        return Ok(());
    }
    let ports = run(&["-j", "link", "show", "master", dev])
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| serde_json::from_slice::<Value>(&o.stdout).ok())
        .and_then(|v| v.as_array().map(Vec::len))
        .unwrap_or(1);
    if ports > 0 {
        return Ok(());
    }
    match run(&["link", "delete", "dev", dev]) {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(Error::Network {
            name: name.into(),
            reason: format!(
                "deleting bridge {dev}: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ),
        }),
        Err(e) => Err(Error::Network {
            name: name.into(),
            reason: format!("deleting bridge {dev}: ip: {e}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_parse_and_overlap() {
        let a = Subnet::parse("s", "10.89.0.0/16").unwrap();
        let b = Subnet::parse("s", "10.89.3.0/24").unwrap();
        let c = Subnet::parse("s", "10.90.0.0/24").unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&c));
        assert_eq!(a.first_host(), Ipv4Addr::new(10, 89, 0, 1));
        assert_eq!(Ipv4Addr::from(c.broadcast()), Ipv4Addr::new(10, 90, 0, 255));
        for bad in [
            "10.0.0.1/24",
            "10.0.0.0",
            "10.0.0.0/33",
            "fd00::/64",
            "x/24",
            "10.0.0.0/31",
        ] {
            let e = Subnet::parse("--subnet", bad).unwrap_err().to_string();
            assert!(e.starts_with("--subnet: "), "{bad}: {e}");
        }
    }

    #[test]
    fn reserved_and_bad_names_are_refused() {
        for bad in [
            "none",
            "host",
            "container:x",
            "",
            "-x",
            "a/b",
            &"x".repeat(65),
        ] {
            let e = check_network_name(bad).unwrap_err().to_string();
            assert!(e.starts_with("network: "), "{bad}: {e}");
        }
        check_network_name("my-net_1.x").unwrap();
    }
}

//! A container's CNI networks, for the one create and remove of every face: the hosts files
//! bound into it before it is made, its interfaces attached once its network namespace
//! exists (`/proc/PID/ns/net` of the created container), detached when it is removed, and
//! what a killed command left collected on the way.

use std::path::Path;

use runtime::describe::{Description, Mount, Root};
use runtime::net::{Attachment, NetRoot, PortMapping, Protocol, Request};

use crate::error::invalid;
use crate::store::ImageStore;

/// What [`plan`] prepared: the request to attach with.
pub(crate) struct Plan {
    net: NetRoot,
    req: Request,
}

/// The hostname of a networked container that names none: the id's first 12 characters,
/// as docker's.
fn default_hostname(id: &str) -> String {
    id.chars().take(12).collect()
}

/// Prepares container `id`'s networks as `d` asks (nothing unless it attaches any): the
/// image's exposed ports published for `publish_all`, what killed commands left collected,
/// the container's `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf` made and bound
/// into `d`.
pub(crate) fn plan(
    store_dir: &Path,
    id: &str,
    d: &mut Description,
) -> Result<Option<Plan>, crate::Error> {
    if !d.network.attaches() {
        if !d.network.ports.is_empty() || d.network.publish_all {
            return Err(invalid(
                "published ports need a network: attach one (ports go through the first network)",
            )
            .into());
        }
        return Ok(None);
    }
    let mut ports = d.network.ports.clone();
    if d.network.publish_all {
        if let Root::Image(image) = &d.root {
            let store = ImageStore::open(store_dir)?;
            let img = store.resolve(image)?;
            ports.extend(exposed_ports(&img.config)?);
        }
    }
    let hostname = d.hostname.clone().unwrap_or_else(|| default_hostname(id));
    d.hostname = Some(hostname.clone());
    let req = Request {
        networks: d.network.networks.clone(),
        ports,
        rate: d.network.rate,
        hostname,
    };
    let net = NetRoot::open(store_dir);
    // Collect what killed commands left (a cache entry whose container's state is gone,
    // this id's own among them) before taking addresses, so a dead container's lease is
    // free again and its cache entries out of the way.
    collect(&net);
    let files = net.prepare(id, &req)?;
    for (src, dst) in [
        (&files.hosts, "/etc/hosts"),
        (&files.hostname, "/etc/hostname"),
        (&files.resolv_conf, "/etc/resolv.conf"),
    ] {
        d.mounts
            .push(Mount::bind(src.to_string_lossy().into_owned(), dst, false));
    }
    Ok(Some(Plan { net, req }))
}

/// The image's `ExposedPorts` (`80/tcp`, `53/udp`, `8080`), each on any free host port.
fn exposed_ports(
    config: &oci_spec::image::ImageConfiguration,
) -> Result<Vec<PortMapping>, crate::Error> {
    let mut out = Vec::new();
    let exposed = config
        .config()
        .as_ref()
        .and_then(|c| c.exposed_ports().clone())
        .unwrap_or_default();
    for p in exposed {
        let (port, proto) = p.split_once('/').unwrap_or((p.as_str(), "tcp"));
        let container_port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| invalid(format!("the image's ExposedPorts: {p:?} is not a port")))?;
        let protocol: Protocol = proto
            .parse()
            .map_err(|_| invalid(format!("the image's ExposedPorts: {p:?}: tcp or udp")))?;
        out.push(PortMapping {
            host_ip: None,
            host_port: 0,
            container_port,
            protocol,
        });
    }
    out.sort();
    out.dedup();
    Ok(out)
}

impl Plan {
    /// Attaches the networks to the container `id` whose process is `pid` (created, not
    /// started): all or nothing.
    pub(crate) fn attach(
        &self,
        id: &str,
        state_root: &Path,
        pid: i32,
    ) -> Result<Vec<Attachment>, crate::Error> {
        let netns = format!("/proc/{pid}/ns/net");
        Ok(self
            .net
            .attach(id, state_root, Path::new(&netns), &self.req)?)
    }

    /// Undoes [`plan`] and whatever an attach did.
    pub(crate) fn undo(&self, id: &str) {
        let _ = self.net.detach(id, None);
    }
}

/// Collects what killed commands left: attachments whose container's state is gone. Not
/// this command's failure if one of them cannot be undone (it stays cached for the next
/// collection, and is logged).
fn collect(net: &NetRoot) {
    if let Err(e) = net.gc(&|cid: &str, o: &Path| o.join(cid).exists()) {
        tracing::warn!("collecting the networks of containers that are gone: {e}");
    }
}

/// Detaches container `id` (its process gone) from its networks, if it has any; with
/// `collect`, also what killed commands left (`delete --force`).
pub(crate) fn detach(store_dir: &Path, id: &str, collect: bool) -> Result<(), crate::Error> {
    let net = NetRoot::open(store_dir);
    if collect {
        self::collect(&net);
    }
    Ok(net.detach(id, None)?)
}

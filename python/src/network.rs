//! Networking: the keywords `network`, `networks`, `ports`, `publish_all`, `ingress_rate`
//! and `egress_rate` of `Container(...)` into a [`Description`]'s network; a container's
//! attachments as dicts; the named networks of a store (`runtime::net`'s, CNI).

// corral_net's error holds a plugin's whole answer; it is made into a Python exception at
// once.
#![allow(clippy::result_large_err)]

use std::path::{Path, PathBuf};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};
use runtime::describe::NetworkMode;
use runtime::net::{self, NetRoot, NetworkOptions, PortMapping};
use runtime::Description;

use crate::args::{int_arg, list_of, path_arg, str_arg, type_err};
use crate::errors::{config_err, raise};
use crate::image::store_arg;

/// The network keywords of `Container(...)`.
pub(crate) struct NetKw<'a, 'py> {
    pub(crate) network: Option<&'a Bound<'py, PyAny>>,
    pub(crate) networks: Option<&'a Bound<'py, PyAny>>,
    pub(crate) ports: Option<&'a Bound<'py, PyAny>>,
    pub(crate) publish_all: bool,
    pub(crate) ingress_rate: Option<&'a Bound<'py, PyAny>>,
    pub(crate) egress_rate: Option<&'a Bound<'py, PyAny>>,
}

impl NetKw<'_, '_> {
    /// The keywords that are given, by name (for a bundle, which refuses them).
    pub(crate) fn given(&self) -> Vec<&'static str> {
        let set = |v: Option<&Bound<'_, PyAny>>| v.is_some_and(|v| !v.is_none());
        [
            ("network", set(self.network)),
            ("networks", set(self.networks)),
            ("ports", set(self.ports)),
            ("publish_all", self.publish_all),
            ("ingress_rate", set(self.ingress_rate)),
            ("egress_rate", set(self.egress_rate)),
        ]
        .into_iter()
        .filter(|(_, s)| *s)
        .map(|(n, _)| n)
        .collect()
    }
}

/// A networking error as a `corral` exception: bad input a `ConfigError` naming `arg`
/// (else the field the error names), a missing network a `NotFoundError`, a network in use
/// a `StateError`, a plugin's or a file's failure a `SpawnError` (step "network").
pub(crate) fn net_err(py: Python<'_>, arg: Option<&str>, e: net::Error) -> PyErr {
    let errno = match &e {
        net::Error::Network { reason, .. } if reason.contains("attached") => libc::EBUSY,
        net::Error::Network { reason, .. } if reason.contains("exists") => libc::EEXIST,
        e => e.errno(),
    };
    let class = match (&e, errno) {
        (net::Error::Invalid { .. }, _) => "ConfigError",
        (net::Error::Network { .. }, libc::ENOENT) => "NotFoundError",
        (net::Error::Network { .. }, libc::EBUSY | libc::EEXIST) => "StateError",
        (net::Error::Network { .. }, _) => "ConfigError",
        _ => "SpawnError",
    };
    let path = match &e {
        net::Error::Invalid { field, .. } => {
            Some(arg.map(str::to_string).unwrap_or_else(|| field.clone()))
        }
        net::Error::Io { path, .. } => Some(path.display().to_string()),
        _ => None,
    };
    let message = match (arg, &e) {
        (Some(a), net::Error::Invalid { reason, .. }) => format!("{a}: {reason}"),
        _ => e.to_string(),
    };
    raise(
        py,
        class,
        message,
        Some("network".into()),
        Some(errno),
        path,
    )
}

/// A network name as the store takes one: 1-64 characters, a letter or digit, then
/// letters, digits, '_', '.' or '-' (the store refuses the names of modes, "none", "host"...).
fn name_arg(arg: &str, v: &Bound<'_, PyAny>) -> PyResult<String> {
    let n = str_arg(arg, v)?;
    let mut chars = n.chars();
    let valid = n.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !valid {
        return Err(config_err(
            v.py(),
            arg,
            format!(
                "{n:?} is not a network name (1-64 characters: a letter or digit, then \
                 letters, digits, '_', '.' or '-')"
            ),
        ));
    }
    Ok(n)
}

/// `ports[i]`: docker's `-p` form as a str, or a container port as an int (published on a
/// free host port).
fn port_arg(arg: &str, v: &Bound<'_, PyAny>) -> PyResult<PortMapping> {
    let py = v.py();
    let spec = if v.is_instance_of::<PyString>() {
        str_arg(arg, v)?
    } else if v.is_instance_of::<pyo3::types::PyInt>() && !v.is_instance_of::<pyo3::types::PyBool>()
    {
        int_arg(arg, v)?.to_string()
    } else {
        return Err(type_err(
            arg,
            "a str \"[IP:][HOSTPORT:]CTRPORT[/tcp|udp]\" or an int (a container port)",
            v,
        ));
    };
    PortMapping::parse(&spec).map_err(|e| net_err(py, Some(arg), e))
}

/// A rate: bits per second as an int, or a str with a unit as tc writes one ("10mbit",
/// "500kbit", "2mbps").
fn rate_arg(arg: &str, v: Option<&Bound<'_, PyAny>>) -> PyResult<Option<u64>> {
    let Some(v) = v.filter(|v| !v.is_none()) else {
        return Ok(None);
    };
    let py = v.py();
    let s = if v.is_instance_of::<PyString>() {
        str_arg(arg, v)?
    } else if v.is_instance_of::<pyo3::types::PyInt>() && !v.is_instance_of::<pyo3::types::PyBool>()
    {
        int_arg(arg, v)?.to_string()
    } else {
        return Err(type_err(
            arg,
            "an int (bits per second) or a str such as \"10mbit\"",
            v,
        ));
    };
    net::parse_rate(arg, &s)
        .map(Some)
        .map_err(|e| net_err(py, Some(arg), e))
}

/// The network keywords into `d`. `network`: "private", "none", "host", the path of a
/// network namespace to join, or a network's name (as `networks=[name]`); `networks`: the
/// names of the networks to join, in order (eth0, eth1...).
pub(crate) fn fill_network(
    py: Python<'_>,
    d: &mut Description,
    kw: &NetKw<'_, '_>,
) -> PyResult<()> {
    let mut names = match kw.networks.filter(|v| !v.is_none()) {
        Some(v) => list_of("networks", v, name_arg)?,
        None => Vec::new(),
    };
    for (i, n) in names.iter().enumerate() {
        if names[..i].contains(n) {
            return Err(config_err(
                py,
                &format!("networks[{i}]"),
                format!("{n:?} is listed twice"),
            ));
        }
    }
    if let Some(v) = kw.network.filter(|v| !v.is_none()) {
        let m = path_arg("network", v)?;
        d.network.mode = match m.as_str() {
            "private" => NetworkMode::Private,
            "none" => NetworkMode::None,
            "host" => NetworkMode::Host,
            p if p.starts_with('/') => NetworkMode::Join(PathBuf::from(p)),
            _ => {
                let n = name_arg("network", v)?;
                if !names.is_empty() {
                    return Err(config_err(
                        py,
                        "network",
                        format!(
                            "the network {n:?} and networks=[...] both given: list every \
                             network in networks"
                        ),
                    ));
                }
                names.push(n);
                NetworkMode::Private
            }
        };
    }
    d.network.networks = names;
    if let Some(v) = kw.ports.filter(|v| !v.is_none()) {
        if v.is_instance_of::<PyString>() {
            return Err(type_err("ports", "a list of port specs (not one str)", v));
        }
        let it = v
            .try_iter()
            .map_err(|_| type_err("ports", "a list of port specs", v))?;
        for (i, p) in it.enumerate() {
            let p = port_arg(&format!("ports[{i}]"), &p?)?;
            if !d.network.ports.contains(&p) {
                d.network.ports.push(p);
            }
        }
    }
    d.network.publish_all = kw.publish_all;
    d.network.rate = net::Rate {
        ingress_bps: rate_arg("ingress_rate", kw.ingress_rate)?,
        egress_bps: rate_arg("egress_rate", kw.egress_rate)?,
    };
    Ok(())
}

/// One attachment as a dict: `network`, `ifname`, `ips` (CIDR strs), `gateway`, `mac`
/// (str or None), `ports` (dicts `host_ip`, `host_port`, `container_port`, `protocol`).
pub(crate) fn attachment_dict<'py>(
    py: Python<'py>,
    a: &net::Attachment,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("network", &a.network)?;
    d.set_item("ifname", &a.ifname)?;
    d.set_item("ips", a.ips.clone())?;
    d.set_item("gateway", a.gateway.map(|g| g.to_string()))?;
    d.set_item("mac", a.mac.clone())?;
    let ports = PyList::empty(py);
    for p in &a.ports {
        let pd = PyDict::new(py);
        pd.set_item("host_ip", p.host_ip.map(|i| i.to_string()))?;
        pd.set_item("host_port", p.host_port)?;
        pd.set_item("container_port", p.container_port)?;
        pd.set_item("protocol", p.protocol.to_string())?;
        ports.append(pd)?;
    }
    d.set_item("ports", ports)?;
    Ok(d)
}

/// The attachments of container `id` in the network root `store`.
pub(crate) fn attachments(store: &Path, id: &str) -> net::Result<Vec<net::Attachment>> {
    NetRoot::open(store).attachments(id)
}

/// A network as a dict: `name`, `file`, `cni_version`, `plugins`, `bridge`, `subnets`,
/// `gateways`, `containers` (a dict of container id to its addresses).
fn info_dict<'py>(py: Python<'py>, i: &net::NetworkInfo) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("name", &i.name)?;
    d.set_item("file", i.file.display().to_string())?;
    d.set_item("cni_version", &i.cni_version)?;
    d.set_item("plugins", i.plugins.clone())?;
    d.set_item("bridge", i.bridge.clone())?;
    d.set_item("subnets", i.subnets.clone())?;
    d.set_item("gateways", i.gateways.clone())?;
    let c = PyDict::new(py);
    for (id, ips) in &i.containers {
        c.set_item(id, ips.clone())?;
    }
    d.set_item("containers", c)?;
    Ok(d)
}

/// Makes the network `name` in `store` (default: corral's store): a bridge with a subnet of
/// its own (`subnet`, CIDR; default the next free /24 of 10.90.0.0/16) and `gateway`
/// (default the subnet's first address). Returns it as `network_list` shows it.
#[pyfunction]
#[pyo3(signature = (name, store=None, subnet=None, gateway=None))]
pub(crate) fn network_create<'py>(
    py: Python<'py>,
    name: &Bound<'py, PyAny>,
    store: Option<&Bound<'py, PyAny>>,
    subnet: Option<&Bound<'py, PyAny>>,
    gateway: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let name = name_arg("name", name)?;
    let store = store_arg(store)?;
    let subnet = match subnet.filter(|v| !v.is_none()) {
        Some(s) => Some(str_arg("subnet", s)?),
        None => None,
    };
    let gateway = match gateway.filter(|v| !v.is_none()) {
        Some(g) => {
            let s = str_arg("gateway", g)?;
            Some(
                s.parse()
                    .map_err(|_| config_err(py, "gateway", format!("{s:?}: not an IP address")))?,
            )
        }
        None => None,
    };
    let o = NetworkOptions {
        subnet,
        gateway,
        ..NetworkOptions::default()
    };
    let info = py
        .allow_threads(|| NetRoot::open(&store).create(&name, &o))
        .map_err(|e| net_err(py, None, e))?;
    info_dict(py, &info)
}

/// The networks of `store` (default: corral's store), `bridge` first, as dicts.
#[pyfunction]
#[pyo3(signature = (store=None))]
pub(crate) fn network_list<'py>(
    py: Python<'py>,
    store: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyList>> {
    let store = store_arg(store)?;
    let list = py
        .allow_threads(|| NetRoot::open(&store).list())
        .map_err(|e| net_err(py, None, e))?;
    let l = PyList::empty(py);
    for i in &list {
        l.append(info_dict(py, i)?)?;
    }
    Ok(l)
}

/// Removes the network `name` of `store` (default: corral's store); refused while a
/// container is on it, and for the default network `bridge`.
#[pyfunction]
#[pyo3(signature = (name, store=None))]
pub(crate) fn network_remove(
    py: Python<'_>,
    name: &Bound<'_, PyAny>,
    store: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    let name = name_arg("name", name)?;
    let store = store_arg(store)?;
    py.allow_threads(|| NetRoot::open(&store).remove(&name))
        .map_err(|e| net_err(py, None, e))
}

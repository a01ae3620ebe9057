//! Networking: a spec's network (its namespace, the CNI networks it joins, published ports,
//! rate limits), a container's attachments (what each network gave it), and the named
//! networks of a store. The networks themselves are `runtime::net`'s (CNI): a container of
//! a spec joins its networks when corral_create() makes it and leaves them when it is
//! deleted. A store's networks live in its directory (`networks/`, `cni/`): the store of
//! corral_spec_from_image(), or for corral_spec_new() $CORRAL_STORE, else /var/lib/corral
//! (corral_spec_set_store() changes it).

use std::ffi::{c_char, c_int};
use std::path::{Path, PathBuf};

use runtime::describe::NetworkMode;
use runtime::net::{self, NetRoot, NetworkOptions, PortMapping};

use crate::args::*;
use crate::container::with_container_store;
use crate::error::*;
use crate::handles::*;
use crate::spec::*;

/// The error of a networking call: `arg` names the argument the error is about (its field
/// in the message is replaced by it).
pub(crate) fn net_fail(arg: Option<&str>, e: net::Error) -> Fail {
    let code = match &e {
        net::Error::Network { reason, .. } if reason.contains("attached") => libc::EBUSY,
        net::Error::Network { reason, .. } if reason.contains("exists") => libc::EEXIST,
        e => e.errno(),
    };
    let path = match &e {
        net::Error::Invalid { field, .. } => Some(field.clone()),
        net::Error::Io { path, .. } => Some(path.display().to_string()),
        _ => None,
    };
    let message = match (arg, &e) {
        (Some(a), net::Error::Invalid { reason, .. }) => format!("{a}: {reason}"),
        _ => e.to_string(),
    };
    Fail {
        code,
        message,
        step: Some(if arg.is_some() { "argument" } else { "network" }.into()),
        path: arg.map(str::to_string).or(path),
    }
}

/// A network name as the store takes one: 1-64 characters, a letter or digit, then
/// letters, digits, '_', '.' or '-' (the store refuses the names of modes, "none", "host"...).
fn valid_network_name(n: &str) -> bool {
    let mut chars = n.chars();
    n.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// The network name argument `arg`.
fn network_name(arg: &str, p: *const c_char) -> Result<String, Fail> {
    let n = str_arg(arg, p)?;
    if !valid_network_name(n) {
        return Err(invalid(
            arg,
            &format!(
                "{n:?} is not a network name (1-64 characters: a letter or digit, then \
                 letters, digits, '_', '.' or '-')"
            ),
        ));
    }
    Ok(n.to_string())
}

/// Sets the network namespace of the container: "private" (one of its own, the default:
/// loopback, and an interface on each network added with corral_spec_add_network()),
/// "none" (one of its own with loopback only, whatever networks were added), "host" (the
/// caller's), or the absolute path of a network namespace to join ("/proc/PID/ns/net",
/// "/run/netns/NAME"). The same as corral_spec_set_namespace(spec, "network", ...), with
/// "none" besides.
#[no_mangle]
pub extern "C" fn corral_spec_set_network(spec: *mut corral_spec, mode: *const c_char) -> c_int {
    with_desc("corral_spec_set_network", spec, |d| {
        d.network.mode = match str_arg("mode", mode)? {
            "private" => NetworkMode::Private,
            "none" => NetworkMode::None,
            "host" => NetworkMode::Host,
            p if p.starts_with('/') => NetworkMode::Join(PathBuf::from(p)),
            other => {
                return Err(invalid(
                    "mode",
                    &format!(
                        "{other:?}: want \"private\", \"none\", \"host\" or the absolute path \
                         of a network namespace"
                    ),
                ))
            }
        };
        Ok(())
    })
}

/// Adds the network `name` of the store ("bridge" is the default network, made on first
/// use; others are made with corral_network_create()): the container gets an interface on
/// it, eth0 for the first network added, eth1 for the next... A container joins no
/// network unless one is added (loopback only). Adding a network twice is -EEXIST.
#[no_mangle]
pub extern "C" fn corral_spec_add_network(spec: *mut corral_spec, name: *const c_char) -> c_int {
    with_desc("corral_spec_add_network", spec, |d| {
        let n = network_name("name", name)?;
        if d.network.networks.contains(&n) {
            return Err(Fail {
                code: libc::EEXIST,
                message: format!("name: network {n:?} was added already"),
                step: Some("argument".into()),
                path: Some("name".into()),
            });
        }
        d.network.networks.push(n);
        Ok(())
    })
}

/// Publishes a port of the container on the host, as docker's `-p`:
/// "[IP:][HOSTPORT:]CTRPORT[/tcp|/udp]" ("8080:80", "127.0.0.1:8080:80/udp", "80" or
/// "127.0.0.1::80" for a free host port chosen at create; an IPv6 address in brackets,
/// "[::1]:8080:80"). The port is on the first network; the host port chosen is in
/// corral_attachments_json(). A bad spec is -EINVAL naming `port`.
#[no_mangle]
pub extern "C" fn corral_spec_add_port(spec: *mut corral_spec, port: *const c_char) -> c_int {
    with_desc("corral_spec_add_port", spec, |d| {
        let p =
            PortMapping::parse(str_arg("port", port)?).map_err(|e| net_fail(Some("port"), e))?;
        if !d.network.ports.contains(&p) {
            d.network.ports.push(p);
        }
        Ok(())
    })
}

/// Publishes every port the image exposes on a free host port (1), or not (0, the
/// default), as docker's `-P`.
#[no_mangle]
pub extern "C" fn corral_spec_set_publish_all(spec: *mut corral_spec, on: c_int) -> c_int {
    with_desc("corral_spec_set_publish_all", spec, |d| {
        d.network.publish_all = on != 0;
        Ok(())
    })
}

/// A rate in bits/s (`arg` names it): 0 is none, else 1000 (1 kbit/s) to 10^13.
fn rate_arg(arg: &str, bps: u64) -> Result<Option<u64>, Fail> {
    if bps == 0 {
        return Ok(None);
    }
    net::parse_rate(arg, &bps.to_string())
        .map(Some)
        .map_err(|e| net_fail(Some(arg), e))
}

/// Limits the container's network traffic on every network it joins, in bits per second:
/// `ingress_bps` what reaches it, `egress_bps` what it sends (0: no limit; else 1000 to
/// 10^13). The limit is a token bucket (tc) on the host side of each of its interfaces
/// (CNI's bandwidth plugin).
#[no_mangle]
pub extern "C" fn corral_spec_set_network_rate(
    spec: *mut corral_spec,
    ingress_bps: u64,
    egress_bps: u64,
) -> c_int {
    with_desc("corral_spec_set_network_rate", spec, |d| {
        let ingress = rate_arg("ingress_bps", ingress_bps)?;
        let egress = rate_arg("egress_bps", egress_bps)?;
        d.network.rate = net::Rate {
            ingress_bps: ingress,
            egress_bps: egress,
        };
        Ok(())
    })
}

/// The attachments of container `id` in the network root `store`, as JSON.
fn attachments_json(store: &Path, id: &str) -> Result<String, Fail> {
    let a = NetRoot::open(store)
        .attachments(id)
        .map_err(|e| net_fail(None, e))?;
    serde_json::to_string(&a).map_err(|e| fail(libc::EIO, format!("attachments: {e}")))
}

/// Writes what the networks gave the container as a JSON array to `*out`, one object per
/// interface, in the order the networks were added: `{"network": "bridge", "ifname":
/// "eth0", "ips": ["10.89.0.5/16"], "gateway": "10.89.0.1", "mac": "aa:bb:..",
/// "ports": [{"host_ip": null, "host_port": 8080, "container_port": 80, "protocol":
/// "tcp"}]}` (`gateway`, `mac`, `host_ip` may be null; a host port asked as 0 is the one
/// chosen). `[]` for a container on no network. Free it with corral_string_free(). A
/// container opened with corral_open(), or made from a bundle, is looked up in the default
/// store ($CORRAL_STORE, else /var/lib/corral).
#[no_mangle]
pub extern "C" fn corral_attachments_json(
    c: *mut corral_container,
    out: *mut *mut c_char,
) -> c_int {
    call("corral_attachments_json", || {
        out_ptr("out", out)?;
        let (store, id) = with_container_store(c, |ct, store| {
            Ok((
                store
                    .map(Path::to_path_buf)
                    .unwrap_or_else(corral_image::default_store),
                ct.id().to_string(),
            ))
        })?;
        strdup_out(out, attachments_json(&store, &id)?)
    })
}

/// The store `store` (NULL: $CORRAL_STORE, else /var/lib/corral).
fn store_of(store: *const c_char) -> Result<PathBuf, Fail> {
    Ok(opt_str_arg("store", store)?
        .map(PathBuf::from)
        .unwrap_or_else(corral_image::default_store))
}

/// A network as JSON.
fn info_json(i: &net::NetworkInfo) -> Result<serde_json::Value, Fail> {
    serde_json::to_value(i).map_err(|e| fail(libc::EIO, format!("network: {e}")))
}

/// Makes the network `name` in the store `store` (NULL: $CORRAL_STORE, else
/// /var/lib/corral): a bridge with its own subnet, `subnet` (CIDR, "10.90.7.0/24"; NULL:
/// the next free /24 of 10.90.0.0/16) with the gateway `gateway` (NULL: the subnet's first
/// address). Containers on it reach each other by name, and not containers of other
/// networks. If `json_out` is not NULL, `*json_out` is the network as
/// corral_network_list() shows it (free it with corral_string_free()). -EEXIST if there
/// is one of that name.
#[no_mangle]
pub extern "C" fn corral_network_create(
    store: *const c_char,
    name: *const c_char,
    subnet: *const c_char,
    gateway: *const c_char,
    json_out: *mut *mut c_char,
) -> c_int {
    call("corral_network_create", || {
        let store = store_of(store)?;
        let name = network_name("name", name)?;
        let gateway = match opt_str_arg("gateway", gateway)? {
            None => None,
            Some(g) => Some(
                g.parse()
                    .map_err(|_| invalid("gateway", &format!("{g:?}: not an IP address")))?,
            ),
        };
        let o = NetworkOptions {
            subnet: opt_str_arg("subnet", subnet)?.map(str::to_string),
            gateway,
            ..NetworkOptions::default()
        };
        let info = NetRoot::open(&store)
            .create(&name, &o)
            .map_err(|e| net_fail(None, e))?;
        if !json_out.is_null() {
            strdup_out(json_out, info_json(&info)?.to_string())?;
        }
        Ok(())
    })
}

/// Writes the networks of the store `store` (NULL: $CORRAL_STORE, else /var/lib/corral) as
/// a JSON array to `*json_out`, `bridge` first: `{"name", "file", "cni_version",
/// "plugins": [...], "bridge", "subnets": [...], "gateways": [...], "containers": [[id,
/// [addresses]], ...]}`. Free it with corral_string_free().
#[no_mangle]
pub extern "C" fn corral_network_list(store: *const c_char, json_out: *mut *mut c_char) -> c_int {
    call("corral_network_list", || {
        out_ptr("json_out", json_out)?;
        let store = store_of(store)?;
        let list = NetRoot::open(&store)
            .list()
            .map_err(|e| net_fail(None, e))?;
        let v = list.iter().map(info_json).collect::<Result<Vec<_>, _>>()?;
        strdup_out(json_out, serde_json::Value::from(v).to_string())
    })
}

/// Removes the network `name` of the store `store` (NULL: $CORRAL_STORE, else
/// /var/lib/corral). -EBUSY while a container is on it; the default network `bridge` is
/// not removed (-EINVAL); -ENOENT if there is none of that name.
#[no_mangle]
pub extern "C" fn corral_network_remove(store: *const c_char, name: *const c_char) -> c_int {
    call("corral_network_remove", || {
        let store = store_of(store)?;
        let name = network_name("name", name)?;
        NetRoot::open(&store)
            .remove(&name)
            .map_err(|e| net_fail(None, e))
    })
}

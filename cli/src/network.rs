//! Networking of the CLI: `run`/`create --image`'s `--network`, `-p`, `-P` and rates mapped
//! to a description's [`Network`], and `corral network ...` on the store's
//! [`NetRoot`] (networks live in the image store's directory).

use std::path::{Path, PathBuf};

use runtime::describe::{Network, NetworkMode};
use runtime::net::network::NetRoot;
use runtime::net::{parse_rate, NetworkOptions, PortMapping, DEFAULT_NETWORK};

use crate::args::{Cli, NetworkCmd, RunImageArgs};
use crate::error::{msg, R};
use crate::output::printable;

/// The networks of the store at `--store` / `$CORRAL_STORE`.
pub fn net_root(cli: &Cli) -> NetRoot {
    NetRoot::open(&crate::image::store_dir(cli))
}

/// `--network`, `--net-host`, `-p`, `-P`, `--ingress-rate` and `--egress-rate` as docker
/// reads them: no `--network` is the default network (`bridge`); `none`, `host` and
/// `container:ID` stand alone and publish nothing; several names attach several networks.
/// `root` is the state root, where `container:ID` is looked up.
pub fn describe(a: &RunImageArgs, root: &Path) -> R<Network> {
    let mut n = Network::default();
    let mut names: Vec<String> = a.network.clone();
    if a.net_host {
        if names.iter().any(|x| x != "host") {
            return Err(msg(format!(
                "--net-host: conflicts with --network {} (--net-host is --network host)",
                names.join(",")
            )));
        }
        names = vec!["host".into()];
    }
    if names.is_empty() {
        names.push(DEFAULT_NETWORK.into());
    }
    for name in &names {
        if name.is_empty() {
            return Err(msg("--network: an empty name"));
        }
    }
    let special = |x: &str| x == "none" || x == "host" || x.starts_with("container:");
    if names.len() > 1 {
        if let Some(s) = names.iter().find(|x| special(x)) {
            return Err(msg(format!(
                "--network {s}: stands alone (given with {})",
                names.join(", ")
            )));
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(dup) = names.iter().find(|x| !seen.insert(x.as_str())) {
            return Err(msg(format!("--network {dup}: given twice")));
        }
    }
    let first = names[0].as_str();
    n.mode = match first {
        "none" => NetworkMode::None,
        "host" => NetworkMode::Host,
        _ => match first.strip_prefix("container:") {
            Some(id) => NetworkMode::Join(container_netns(root, id)?),
            None => {
                n.networks = names.clone();
                NetworkMode::Private
            }
        },
    };
    for p in &a.publish {
        n.ports.push(PortMapping::parse(p)?);
    }
    n.publish_all = a.publish_all;
    if let Some(r) = &a.ingress_rate {
        n.rate.ingress_bps = Some(parse_rate("--ingress-rate", r)?);
    }
    if let Some(r) = &a.egress_rate {
        n.rate.egress_bps = Some(parse_rate("--egress-rate", r)?);
    }
    if n.mode != NetworkMode::Private {
        let flag = if !a.publish.is_empty() {
            Some("-p/--publish")
        } else if a.publish_all {
            Some("-P/--publish-all")
        } else if a.ingress_rate.is_some() {
            Some("--ingress-rate")
        } else if a.egress_rate.is_some() {
            Some("--egress-rate")
        } else {
            None
        };
        if let Some(flag) = flag {
            return Err(msg(format!(
                "{flag}: needs a network of the container's own (not --network {first})"
            )));
        }
    }
    Ok(n)
}

/// The network namespace of running container `id` (`--network container:ID`).
fn container_netns(root: &Path, id: &str) -> R<PathBuf> {
    if id.is_empty() {
        return Err(msg("--network container:ID: the id is empty"));
    }
    let c = runtime::Container::load(root, id)
        .map_err(|e| msg(format!("--network container:{id}: {e}")))?;
    if c.status() != runtime::Status::Running {
        return Err(msg(format!(
            "--network container:{id}: the container is {}, not running",
            c.status().as_str()
        )));
    }
    Ok(PathBuf::from(format!("/proc/{}/ns/net", c.pid())))
}

/// `corral network ...`.
pub fn network(cli: &Cli, root: &Path, cmd: &NetworkCmd) -> R {
    let net = net_root(cli);
    match cmd {
        NetworkCmd::Create {
            subnet,
            gateway,
            name,
        } => {
            let o = NetworkOptions {
                subnet: subnet.clone(),
                gateway: *gateway,
                bridge: None,
            };
            let info = net.create(name, &o)?;
            println!("{}", info.name);
        }
        NetworkCmd::Ls { quiet } => {
            let list = net.list()?;
            if *quiet {
                for n in &list {
                    println!("{}", printable(&n.name));
                }
            } else {
                println!(
                    "{:<20} {:<10} {:<10} {:<20} CONTAINERS",
                    "NAME", "DRIVER", "BRIDGE", "SUBNET"
                );
                for n in &list {
                    println!(
                        "{:<20} {:<10} {:<10} {:<20} {}",
                        printable(&n.name),
                        printable(n.plugins.first().map_or("-", |s| s.as_str())),
                        printable(n.bridge.as_deref().unwrap_or("-")),
                        printable(&joined(&n.subnets)),
                        n.containers.len()
                    );
                }
            }
        }
        NetworkCmd::Inspect { names } => {
            let mut out = Vec::new();
            for name in names {
                let info = net.inspect(name)?;
                let config = net.conflist(name)?.to_json();
                out.push(serde_json::json!({
                    "Name": info.name,
                    "Driver": info.plugins.first(),
                    "Plugins": info.plugins,
                    "Bridge": info.bridge,
                    "Subnets": info.subnets,
                    "Gateways": info.gateways,
                    "CNIVersion": info.cni_version,
                    "File": info.file,
                    "Containers": info.containers.iter()
                        .map(|(id, ips)| serde_json::json!({"Id": id, "Addresses": ips}))
                        .collect::<Vec<_>>(),
                    "Config": config,
                }));
            }
            crate::output::print_json(&serde_json::Value::Array(out))?;
        }
        NetworkCmd::Rm { names } => {
            for name in names {
                net.remove(name)?;
                println!("{name}");
            }
        }
        NetworkCmd::Connect { network, id } => {
            let c = runtime::Container::load(root, id)?;
            let netns = own_netns(&c, id, "connect")?;
            let a = net.connect(id, root, &netns, network)?;
            println!("{} {} {}", a.network, a.ifname, a.ips.join(","));
        }
        NetworkCmd::Disconnect { network, id } => {
            // A stopped container's interfaces went with its namespace: what is left (the
            // plugins' rules, leases, the cache) is undone without one.
            let c = runtime::Container::load(root, id).ok();
            let netns = match &c {
                Some(c) if c.status() != runtime::Status::Stopped => {
                    Some(own_netns(c, id, "disconnect")?)
                }
                _ => None,
            };
            net.disconnect(id, network, netns.as_deref())?;
        }
    }
    Ok(0)
}

/// The network namespace of a live container that has one of its own (not the host's, not
/// another container's), for `network connect`/`disconnect`.
fn own_netns(c: &runtime::Container, id: &str, what: &str) -> R<PathBuf> {
    if !matches!(
        c.status(),
        runtime::Status::Running | runtime::Status::Created | runtime::Status::Paused
    ) {
        return Err(msg(format!(
            "network {what}: container {id} is {}: it has no network namespace",
            c.status().as_str()
        )));
    }
    let bundle = runtime::Bundle::load(c.bundle())?;
    let ns = bundle
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    match ns
        .iter()
        .find(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Network)
    {
        None => Err(msg(format!(
            "network {what}: container {id} uses the host's network"
        ))),
        Some(n) if n.path().is_some() => Err(msg(format!(
            "network {what}: container {id} shares another's network namespace"
        ))),
        Some(_) => Ok(PathBuf::from(format!("/proc/{}/ns/net", c.pid()))),
    }
}

fn joined(v: &[String]) -> String {
    if v.is_empty() {
        "-".into()
    } else {
        v.join(",")
    }
}

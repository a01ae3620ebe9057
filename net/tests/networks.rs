//! Networks: create, list, inspect, remove, the default `bridge` network. Each test has its
//! own root directory; the tests that run plugins do so in network namespaces they make
//! (deleted by guards), never in the host's own.

// Closures here return corral_net's Result, whose error holds a plugin's whole answer.
#![allow(clippy::result_large_err)]

use std::path::Path;

use corral_net::network::NetRoot;
use corral_net::{Error, NetworkOptions, Request};
use testkit::Netns;

/// Whether device `dev` exists in namespace `ns`.
fn has_link(ns: &Netns, dev: &str) -> bool {
    ns.try_ip(&["link", "show", "dev", dev]).status.success()
}

fn opts(subnet: Option<&str>) -> NetworkOptions {
    NetworkOptions {
        subnet: subnet.map(str::to_string),
        ..NetworkOptions::default()
    }
}

#[test]
fn the_default_network_is_made_on_first_use_and_cannot_be_removed() {
    let root = tempfile::tempdir().unwrap();
    let net = NetRoot::open(root.path());
    assert!(!root.path().join("networks").exists(), "open makes nothing");
    let all = net.list().unwrap();
    assert_eq!(all.len(), 1);
    let b = &all[0];
    assert_eq!(b.name, "bridge");
    assert_eq!(b.bridge.as_deref(), Some("corral0"));
    assert_eq!(b.subnets, ["10.89.0.0/16"]);
    assert_eq!(b.gateways, ["10.89.0.1"]);
    assert_eq!(b.plugins, ["bridge", "portmap", "firewall", "bandwidth"]);
    assert_eq!(b.cni_version, "1.0.0");
    assert!(b.containers.is_empty());
    let list = net.conflist("bridge").unwrap();
    let ipam = &list.plugins[0]["ipam"];
    assert_eq!(ipam["type"], "host-local");
    assert_eq!(
        Path::new(ipam["dataDir"].as_str().unwrap()),
        root.path().join("cni/leases")
    );
    assert_eq!(list.plugins[1]["capabilities"]["portMappings"], true);
    assert_eq!(list.plugins[1]["snat"], true);
    assert_eq!(list.plugins[3]["capabilities"]["bandwidth"], true);
    let e = net.remove("bridge").unwrap_err().to_string();
    assert!(e.contains("cannot be removed"), "{e}");
    let e = net.create("bridge", &opts(None)).unwrap_err().to_string();
    assert!(e.contains("\"bridge\""), "{e}");
}

#[test]
fn named_networks_get_the_next_free_subnet_and_bridge() {
    let root = tempfile::tempdir().unwrap();
    let net = NetRoot::open(root.path());
    let a = net.create("alpha", &opts(None)).unwrap();
    assert_eq!(
        (a.subnets.clone(), a.gateways.clone(), a.bridge.clone()),
        (
            vec!["10.90.0.0/24".to_string()],
            vec!["10.90.0.1".to_string()],
            Some("corral1".to_string())
        )
    );
    let c = net.create("custom", &opts(Some("10.90.1.0/24"))).unwrap();
    assert_eq!(c.bridge.as_deref(), Some("corral2"));
    let b = net.create("beta", &opts(None)).unwrap();
    assert_eq!(b.subnets, ["10.90.2.0/24"], "skips the subnet custom took");
    assert_eq!(b.bridge.as_deref(), Some("corral3"));
    let names: Vec<String> = net.list().unwrap().into_iter().map(|n| n.name).collect();
    assert_eq!(names, ["bridge", "alpha", "beta", "custom"]);
    assert_eq!(net.inspect("custom").unwrap(), c);
    assert!(root.path().join("networks/custom.conflist").exists());

    // Refusals name what was wrong.
    let err = |r: Result<_, Error>| {
        r.map(|_: corral_net::NetworkInfo| ())
            .unwrap_err()
            .to_string()
    };
    assert!(err(net.create("alpha", &opts(None))).contains("exists already"));
    let e = err(net.create("over", &opts(Some("10.89.128.0/24"))));
    assert!(
        e.starts_with("--subnet: ") && e.contains("\"bridge\""),
        "{e}"
    );
    let e = err(net.create("over", &opts(Some("10.90.0.0/16"))));
    assert!(
        e.starts_with("--subnet: ") && e.contains("\"alpha\""),
        "{e}"
    );
    let e = err(net.create("host", &opts(None)));
    assert!(e.contains("network mode"), "{e}");
    let e = err(net.create(
        "gw",
        &NetworkOptions {
            subnet: Some("192.168.50.0/24".into()),
            gateway: Some("192.168.51.1".parse().unwrap()),
            bridge: None,
        },
    ));
    assert!(e.starts_with("--gateway: "), "{e}");
    let e = err(net.create(
        "br",
        &NetworkOptions {
            bridge: Some("corral1".into()),
            ..NetworkOptions::default()
        },
    ));
    assert!(
        e.starts_with("--bridge: ") && e.contains("\"alpha\""),
        "{e}"
    );
    let e = net.inspect("nosuch").unwrap_err().to_string();
    assert!(e.contains("no such network"), "{e}");
    let e = net.remove("nosuch").unwrap_err().to_string();
    assert!(e.contains("no such network"), "{e}");

    // A gateway given is kept.
    let g = net
        .create(
            "gw",
            &NetworkOptions {
                subnet: Some("192.168.50.0/24".into()),
                gateway: Some("192.168.50.254".parse().unwrap()),
                bridge: Some("corralgw".into()),
            },
        )
        .unwrap();
    assert_eq!(g.gateways, ["192.168.50.254"]);
    assert_eq!(g.bridge.as_deref(), Some("corralgw"));
}

#[test]
fn a_named_network_with_a_subnet_gives_its_addresses_and_is_removed_only_when_empty() {
    let host = Netns::new("nets-rm");
    let ctr = Netns::new("nets-rm-c");
    let root = tempfile::tempdir().unwrap();
    let owner = tempfile::tempdir().unwrap();
    let net = NetRoot::open(root.path());
    let info = net.create("lab", &opts(Some("172.31.200.0/24"))).unwrap();
    let dev = info.bridge.clone().unwrap();
    let req = Request {
        networks: vec!["lab".into()],
        ..Request::default()
    };
    let a = host
        .run(|| net.attach("box", owner.path(), &ctr.path(), &req))
        .unwrap();
    assert!(
        a[0].ips[0].starts_with("172.31.200.") && a[0].ips[0].ends_with("/24"),
        "{a:?}"
    );
    assert_eq!(a[0].gateway, Some("172.31.200.1".parse().unwrap()));
    assert!(has_link(&host, &dev));
    let info = net.inspect("lab").unwrap();
    assert_eq!(info.containers, [("box".to_string(), a[0].ips.clone())]);

    let e = host.run(|| net.remove("lab")).unwrap_err().to_string();
    assert!(e.contains("containers are attached: box"), "{e}");
    assert!(net.inspect("lab").is_ok());

    host.run(|| net.detach("box", Some(&ctr.path()))).unwrap();
    host.run(|| net.remove("lab")).unwrap();
    assert!(!has_link(&host, &dev), "the bridge goes with the network");
    assert!(!root.path().join("cni/leases/lab").exists());
    assert!(net.inspect("lab").is_err());
    let names: Vec<String> = net.list().unwrap().into_iter().map(|n| n.name).collect();
    assert_eq!(names, ["bridge"]);
}

#[test]
fn lists_written_by_hand_are_networks_too() {
    let root = tempfile::tempdir().unwrap();
    let net = NetRoot::open(root.path());
    let dir = root.path().join("networks");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("mine.conflist"),
        r#"{"cniVersion": "0.4.0", "name": "mine", "plugins": [
            {"type": "bridge", "bridge": "br-mine", "ipam": {"type": "host-local", "subnet": "10.200.0.0/24"}},
            {"type": "tuning"}]}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("other.conflist"),
        r#"{"cniVersion": "1.0.0", "name": "notother", "plugins": [{"type": "loopback"}]}"#,
    )
    .unwrap();
    let mine = net.inspect("mine").unwrap();
    assert_eq!(mine.plugins, ["bridge", "tuning"]);
    assert_eq!(mine.bridge.as_deref(), Some("br-mine"));
    assert_eq!(mine.subnets, ["10.200.0.0/24"]);
    // A subnet is not handed out twice, whoever wrote the list.
    let e = net
        .create("clash", &opts(Some("10.200.0.0/16")))
        .unwrap_err()
        .to_string();
    assert!(e.contains("\"mine\""), "{e}");
    let e = net.inspect("other").unwrap_err().to_string();
    assert!(e.contains("names network \"notother\""), "{e}");
    // Broken or not, a list can be removed (in a namespace of the test's: removing a
    // network looks for its bridge device).
    let host = Netns::new("nets-hand");
    host.run(|| {
        net.remove("other").unwrap();
        net.remove("mine").unwrap();
    });
    assert_eq!(net.list().unwrap().len(), 1);
}

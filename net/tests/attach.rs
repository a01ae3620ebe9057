//! Attaching containers with the real CNI plugins, inside network namespaces each test
//! makes: a "host" namespace (`ip netns add corral-t-...`) where the plugins run (called
//! from a thread that joined it) and one namespace per "container". Each test has its own
//! root directory; the namespaces are deleted by guards even when a test fails. Nothing
//! touches the host's own network namespace.

// Closures here return corral_net's Result, whose error holds a plugin's whole answer.
#![allow(clippy::result_large_err)]

use std::io::{Read, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use corral_net::network::NetRoot;
use corral_net::{NetworkOptions, PortMapping, Rate, Request};
use testkit::Netns;

/// A test's world: a host namespace and a network root of its own.
struct World {
    host: Netns,
    root: tempfile::TempDir,
    owner: tempfile::TempDir,
}

impl World {
    fn new(tag: &str) -> World {
        World {
            host: Netns::new(tag),
            root: tempfile::tempdir().expect("tempdir"),
            owner: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn net(&self) -> NetRoot {
        NetRoot::open(self.root.path())
    }

    fn iptables(&self) -> String {
        self.host.exec(&["iptables-save"])
    }

    /// What attachments leave in the host namespace and the root; empty when nothing.
    fn leftovers(&self) -> Vec<String> {
        let mut out = Vec::new();
        for kind in ["veth", "ifb", "dummy"] {
            let l = self.host.ip(&["-o", "link", "show", "type", kind]);
            if !l.trim().is_empty() {
                out.push(format!("{kind} devices: {l}"));
            }
        }
        let q = Command::new("tc")
            .args(["-n", self.host.name(), "qdisc", "show"])
            .output()
            .expect("run tc");
        for l in String::from_utf8_lossy(&q.stdout).lines() {
            if l.contains("tbf") || l.contains("ingress") {
                out.push(format!("qdisc: {l}"));
            }
        }
        for l in self.iptables().lines() {
            let chain_of_one = l.starts_with(":CNI-") && {
                let c = l[1..].split_whitespace().next().unwrap_or("");
                // Per-attachment chains: CNI-<hash>, CNI-DN-<hash>; the shared ones stay.
                !matches!(
                    c,
                    "CNI-ADMIN"
                        | "CNI-FORWARD"
                        | "CNI-HOSTPORT-DNAT"
                        | "CNI-HOSTPORT-MASQ"
                        | "CNI-HOSTPORT-SETMARK"
                        | "CNI-ISOLATION-STAGE-1"
                        | "CNI-ISOLATION-STAGE-2"
                )
            };
            if chain_of_one
                || (l.starts_with("-A") && l.contains(" id: "))
                || l.contains("10.89.")
                || l.contains("10.90.")
            {
                out.push(format!("iptables: {l}"));
            }
        }
        let leases = self.root.path().join("cni/leases");
        for d in std::fs::read_dir(&leases).into_iter().flatten().flatten() {
            for f in std::fs::read_dir(d.path()).into_iter().flatten().flatten() {
                if f.file_name().to_string_lossy().parse::<IpAddr>().is_ok() {
                    out.push(format!("lease {}", f.path().display()));
                }
            }
        }
        let files = self.root.path().join("cni/containers");
        for f in std::fs::read_dir(&files).into_iter().flatten().flatten() {
            out.push(format!("container files {}", f.path().display()));
        }
        let results = self.root.path().join("cni/results");
        for f in std::fs::read_dir(&results).into_iter().flatten().flatten() {
            out.push(format!("cache entry {}", f.path().display()));
        }
        out
    }

    fn assert_clean(&self) {
        let l = self.leftovers();
        assert!(l.is_empty(), "left behind:\n{}", l.join("\n"));
    }
}

fn req(networks: &[&str]) -> Request {
    Request {
        networks: networks.iter().map(|s| s.to_string()).collect(),
        ..Request::default()
    }
}

fn addr(cidr: &str) -> IpAddr {
    cidr.split('/').next().unwrap().parse().unwrap()
}

fn inode(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().ino()
}

#[test]
fn two_containers_get_addresses_and_their_hosts_files_name_each_other() {
    let w = World::new("net-two");
    let (c1, c2) = (Netns::new("net-two-c1"), Netns::new("net-two-c2"));
    let net = w.net();
    let (id1, id2) = ("one", "two");
    let f1 = net
        .prepare(
            id1,
            &Request {
                hostname: "web".into(),
                ..req(&[])
            },
        )
        .unwrap();
    let ino = inode(&f1.hosts);
    assert_eq!(std::fs::read_to_string(&f1.hostname).unwrap(), "web\n");
    let (a1, a2) = w.host.run(|| {
        let a1 = net
            .attach(id1, w.owner.path(), &c1.path(), &req(&[]))
            .unwrap();
        let a2 = net
            .attach(id2, w.owner.path(), &c2.path(), &req(&[]))
            .unwrap();
        (a1, a2)
    });
    assert_eq!((a1.len(), a2.len()), (1, 1));
    assert_eq!(
        (a1[0].network.as_str(), a1[0].ifname.as_str()),
        ("bridge", "eth0")
    );
    let (ip1, ip2) = (addr(&a1[0].ips[0]), addr(&a2[0].ips[0]));
    assert_ne!(ip1, ip2);
    assert!(
        a1[0].ips[0].starts_with("10.89.") && a1[0].ips[0].ends_with("/16"),
        "{a1:?}"
    );
    assert_eq!(a1[0].gateway, Some("10.89.0.1".parse().unwrap()));
    assert!(c1
        .ip(&["-o", "addr", "show", "dev", "eth0"])
        .contains(&a1[0].ips[0]));
    assert_eq!(net.attachments(id1).unwrap(), a1);

    // Each names itself and the other; container 1's file is the same inode.
    let h1 = std::fs::read_to_string(&f1.hosts).unwrap();
    assert!(
        h1.contains(&format!("{ip1}\tweb.corral.internal web one\n")),
        "{h1}"
    );
    assert!(h1.contains(&format!("{ip2}\ttwo\n")), "{h1}");
    assert_eq!(inode(&f1.hosts), ino);
    let f2 = net
        .files(id2)
        .expect("attach made the files of a container not prepared");
    let h2 = std::fs::read_to_string(&f2.hosts).unwrap();
    assert!(h2.contains(&format!("{ip1}\tone web\n")), "{h2}");
    assert!(
        h2.contains(&format!("{ip2}\ttwo.corral.internal two\n")),
        "{h2}"
    );

    // Traffic between them, by the addresses the hosts files give.
    let listener = c2.run(|| TcpListener::bind((ip2, 0)).unwrap());
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.write_all(b"hello").unwrap();
    });
    let got = c1.run(|| {
        let mut s = TcpStream::connect((ip2, port)).unwrap();
        let mut b = String::new();
        s.read_to_string(&mut b).unwrap();
        b
    });
    server.join().unwrap();
    assert_eq!(got, "hello");

    let info = net.inspect("bridge").unwrap();
    let ids: Vec<&str> = info.containers.iter().map(|(i, _)| i.as_str()).collect();
    assert_eq!(ids, ["one", "two"]);

    // Two leaves: one's file (same inode) no longer names it.
    w.host.run(|| net.detach(id2, Some(&c2.path()))).unwrap();
    assert!(net.files(id2).is_none());
    let h1 = std::fs::read_to_string(&f1.hosts).unwrap();
    assert!(!h1.contains("two"), "{h1}");
    assert_eq!(inode(&f1.hosts), ino);
    // Detach is idempotent.
    w.host.run(|| net.detach(id2, None)).unwrap();
    w.host.run(|| net.detach(id1, Some(&c1.path()))).unwrap();
    assert!(net.files(id1).is_none());
    w.assert_clean();
}

#[test]
fn two_networks_with_ports_and_rates_then_detach_leaves_nothing() {
    let w = World::new("net-2nets");
    let c = Netns::new("net-2nets-c");
    let net = w.net();
    let o = NetworkOptions {
        subnet: Some("10.90.77.0/24".into()),
        ..NetworkOptions::default()
    };
    let info = net.create("second", &o).unwrap();
    let bridge2 = info.bridge.clone().unwrap();
    let r = Request {
        networks: vec!["bridge".into(), "second".into()],
        ports: vec![PortMapping::parse("8080:80").unwrap()],
        rate: Rate {
            ingress_bps: Some(10_000_000),
            egress_bps: Some(20_000_000),
        },
        hostname: String::new(),
    };
    let a = w
        .host
        .run(|| net.attach("ctr", w.owner.path(), &c.path(), &r))
        .unwrap();
    assert_eq!(a.len(), 2);
    assert_eq!(
        (a[1].network.as_str(), a[1].ifname.as_str()),
        ("second", "eth1")
    );
    assert!(a[1].ips[0].starts_with("10.90.77."), "{a:?}");
    assert_eq!(a[0].ports, r.ports);
    assert!(a[1].ports.is_empty());
    let links = c.ip(&["-o", "link"]);
    assert!(links.contains("eth0") && links.contains("eth1"), "{links}");
    // What the plugins made is there: veths on both bridges, the rate limits, the rules.
    assert_eq!(
        w.host
            .ip(&["-o", "link", "show", "master", "corral0"])
            .lines()
            .count(),
        1
    );
    assert_eq!(
        w.host
            .ip(&["-o", "link", "show", "master", &bridge2])
            .lines()
            .count(),
        1
    );
    assert!(!w
        .host
        .ip(&["-o", "link", "show", "type", "ifb"])
        .trim()
        .is_empty());
    let qdiscs = String::from_utf8(
        Command::new("tc")
            .args(["-n", w.host.name(), "qdisc", "show"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    // One token bucket each way on each of the two attachments.
    assert_eq!(qdiscs.matches("qdisc tbf").count(), 4, "{qdiscs}");
    let ipt = w.iptables();
    assert!(
        ipt.contains("--dport 8080") && ipt.contains(r#"id: \"ctr\""#),
        "{ipt}"
    );
    assert!(!w.leftovers().is_empty());

    w.host.run(|| net.detach("ctr", Some(&c.path()))).unwrap();
    w.assert_clean();
    assert!(net.attachments("ctr").unwrap().is_empty());
}

#[test]
fn a_failing_second_network_leaves_nothing() {
    let w = World::new("net-fail");
    let c = Netns::new("net-fail-c");
    let net = w.net();
    // A device that is no bridge holds the second network's bridge name: its ADD fails.
    w.host.ip(&["link", "add", "corralbad", "type", "ifb"]);
    let o = NetworkOptions {
        bridge: Some("corralbad".into()),
        ..NetworkOptions::default()
    };
    net.create("broken", &o).unwrap();
    net.prepare("ctr", &Request::default()).unwrap();
    let err = w
        .host
        .run(|| {
            net.attach(
                "ctr",
                w.owner.path(),
                &c.path(),
                &req(&["bridge", "broken"]),
            )
        })
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("\"broken\"") && err.contains("bridge"),
        "{err}"
    );
    assert!(net.attachments("ctr").unwrap().is_empty());
    assert_eq!(
        c.ip(&["-o", "link"]).lines().count(),
        1,
        "only lo in the container"
    );
    w.host.ip(&["link", "delete", "corralbad"]);
    // Nothing but the files prepare made, which name no address.
    let left = w.leftovers();
    assert!(
        left.len() == 1 && left[0].starts_with("container files "),
        "{left:?}"
    );
    let hosts = std::fs::read_to_string(net.files("ctr").unwrap().hosts).unwrap();
    assert!(!hosts.contains("10.89."), "{hosts}");
    w.host.run(|| net.detach("ctr", None)).unwrap();
    assert!(net.files("ctr").is_none());
    w.assert_clean();
}

#[test]
fn gc_after_kill_9_collects_the_lease_rules_and_qdiscs() {
    let w = World::new("net-gc");
    let mut dead = Netns::new("net-gc-dead");
    let live = Netns::new("net-gc-live");
    let net = w.net();
    let gone_owner = tempfile::tempdir().unwrap();
    let r = Request {
        ports: vec![PortMapping::parse("80").unwrap()],
        rate: Rate {
            ingress_bps: Some(10_000_000),
            egress_bps: Some(10_000_000),
        },
        ..Request::default()
    };
    w.host.run(|| {
        net.attach("dead", gone_owner.path(), &dead.path(), &r)
            .unwrap();
        net.attach("live", w.owner.path(), &live.path(), &req(&[]))
            .unwrap();
    });
    let live_ip = net.attachments("live").unwrap()[0].ips[0].clone();
    // "kill -9": the container's namespace and its runtime's state are gone, nothing was
    // detached.
    dead.delete();
    let gone = gone_owner.path().to_path_buf();
    drop(gone_owner);
    assert!(!gone.exists());
    assert!(w.iptables().contains(r#"id: \"dead\""#));

    let n = w
        .host
        .run(|| net.gc(&|_id: &str, owner: &Path| owner.exists()))
        .unwrap();
    assert_eq!(n, 1);
    assert!(net.files("dead").is_none());
    assert!(net.attachments("dead").unwrap().is_empty());
    let ipt = w.iptables();
    assert!(!ipt.contains(r#"id: \"dead\""#), "{ipt}");
    assert!(!ipt.contains("CNI-DN-"), "{ipt}");
    assert!(w
        .host
        .ip(&["-o", "link", "show", "type", "ifb"])
        .trim()
        .is_empty());
    // The live container is untouched.
    assert_eq!(net.attachments("live").unwrap()[0].ips[0], live_ip);
    let leases: Vec<String> = std::fs::read_dir(w.root.path().join("cni/leases/bridge"))
        .unwrap()
        .flatten()
        .map(|f| f.file_name().to_string_lossy().into_owned())
        .filter(|f| f.parse::<IpAddr>().is_ok())
        .collect();
    assert_eq!(leases, [addr(&live_ip).to_string()]);
    // Nothing more to collect.
    assert_eq!(
        w.host
            .run(|| net.gc(&|_: &str, o: &Path| o.exists()))
            .unwrap(),
        0
    );
    w.host
        .run(|| net.detach("live", Some(&live.path())))
        .unwrap();
    w.assert_clean();
}

#[test]
fn a_published_port_with_host_port_0_gets_a_free_port_that_reaches_the_container() {
    let w = World::new("net-port");
    let c = Netns::new("net-port-c");
    let net = w.net();
    let r = Request {
        ports: vec![PortMapping::parse("127.0.0.1::80").unwrap()],
        ..Request::default()
    };
    let a = w
        .host
        .run(|| net.attach("web", w.owner.path(), &c.path(), &r))
        .unwrap();
    let p = a[0].ports[0];
    assert_ne!(p.host_port, 0);
    assert_eq!(p.container_port, 80);
    assert_eq!(net.attachments("web").unwrap()[0].ports, vec![p]);
    let ip = addr(&a[0].ips[0]);
    let listener = c.run(|| TcpListener::bind((ip, 80)).unwrap());
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.write_all(b"published").unwrap();
    });
    let got = w.host.run(|| {
        let mut s = TcpStream::connect(("127.0.0.1", p.host_port)).unwrap();
        let mut b = String::new();
        s.read_to_string(&mut b).unwrap();
        b
    });
    server.join().unwrap();
    assert_eq!(got, "published");

    // A port published already, or held by a socket of the host, is refused.
    let c2 = Netns::new("net-port-c2");
    let again = Request {
        ports: vec![PortMapping { host_ip: None, ..p }],
        ..Request::default()
    };
    let e = w
        .host
        .run(|| net.attach("other", w.owner.path(), &c2.path(), &again))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("-p: ") && e.contains("published by container web"),
        "{e}"
    );
    let e = w.host.run(|| {
        let held = TcpListener::bind("127.0.0.1:0").unwrap();
        let r = Request {
            ports: vec![PortMapping::parse(&format!(
                "127.0.0.1:{}:80",
                held.local_addr().unwrap().port()
            ))
            .unwrap()],
            ..Request::default()
        };
        net.attach("other", w.owner.path(), &c2.path(), &r)
            .unwrap_err()
            .to_string()
    });
    assert!(e.starts_with("-p: ") && e.contains("in use"), "{e}");
    assert!(net.attachments("other").unwrap().is_empty());
    assert!(
        net.files("other").is_none(),
        "a refused attach makes no files"
    );
    w.host.run(|| net.detach("web", Some(&c.path()))).unwrap();
    w.assert_clean();
}

#[test]
fn connect_and_disconnect_a_running_container() {
    let w = World::new("net-conn");
    let (c1, c2) = (Netns::new("net-conn-c1"), Netns::new("net-conn-c2"));
    let net = w.net();
    net.create("side", &NetworkOptions::default()).unwrap();
    w.host.run(|| {
        net.attach("a", w.owner.path(), &c1.path(), &req(&["side"]))
            .unwrap();
        net.attach("b", w.owner.path(), &c2.path(), &req(&[]))
            .unwrap();
    });
    let hosts_b = net.files("b").unwrap().hosts;
    let a_ip = net.attachments("a").unwrap()[0].ips[0].clone();
    assert!(!std::fs::read_to_string(&hosts_b).unwrap().contains("\ta\n"));
    let added = w
        .host
        .run(|| net.connect("b", w.owner.path(), &c2.path(), "side"))
        .unwrap();
    assert_eq!(added.ifname, "eth1");
    let h = std::fs::read_to_string(&hosts_b).unwrap();
    assert!(h.contains(&format!("{}\ta\n", addr(&a_ip))), "{h}");
    let err = w
        .host
        .run(|| net.connect("b", w.owner.path(), &c2.path(), "side"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("attached already"), "{err}");
    w.host
        .run(|| net.disconnect("b", "side", Some(&c2.path())))
        .unwrap();
    assert!(!std::fs::read_to_string(&hosts_b).unwrap().contains("\ta\n"));
    assert_eq!(net.attachments("b").unwrap().len(), 1);
    let err = w
        .host
        .run(|| net.disconnect("b", "side", Some(&c2.path())))
        .unwrap_err()
        .to_string();
    assert!(err.contains("not attached"), "{err}");
    w.host.run(|| {
        net.detach("a", Some(&c1.path())).unwrap();
        net.detach("b", Some(&c2.path())).unwrap();
    });
    w.assert_clean();
}

#[test]
fn detach_after_the_namespace_is_gone_leaves_nothing() {
    let w = World::new("net-gone");
    let mut c = Netns::new("net-gone-c");
    let net = w.net();
    let path = c.path();
    w.host
        .run(|| net.attach("x", w.owner.path(), &path, &req(&[])))
        .unwrap();
    c.delete();
    // The stale path is given, as a runtime that does not know the process died would.
    w.host.run(|| net.detach("x", Some(&path))).unwrap();
    w.assert_clean();
}

#[test]
fn containers_attached_at_once_get_distinct_addresses_and_all_name_each_other() {
    let w = World::new("net-many");
    let net = w.net();
    let ctrs: Vec<Netns> = (0..8)
        .map(|i| Netns::new(&format!("net-many-{i}")))
        .collect();
    let ids: Vec<String> = (0..8).map(|i| format!("c{i}")).collect();
    std::thread::scope(|s| {
        for (c, id) in ctrs.iter().zip(&ids) {
            let (net, w) = (&net, &w);
            s.spawn(move || {
                w.host
                    .run(|| net.attach(id, w.owner.path(), &c.path(), &req(&[])))
                    .unwrap()
            });
        }
    });
    let ips: Vec<IpAddr> = ids
        .iter()
        .map(|id| addr(&net.attachments(id).unwrap()[0].ips[0]))
        .collect();
    let mut distinct = ips.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 8, "{ips:?}");
    for id in &ids {
        let h = std::fs::read_to_string(net.files(id).unwrap().hosts).unwrap();
        for (other, ip) in ids.iter().zip(&ips) {
            if other != id {
                assert!(
                    h.contains(&format!("{ip}\t{other}\n")),
                    "{id}'s hosts:\n{h}"
                );
            }
        }
    }
    std::thread::scope(|s| {
        for (c, id) in ctrs.iter().zip(&ids) {
            let (net, w) = (&net, &w);
            s.spawn(move || w.host.run(|| net.detach(id, Some(&c.path()))).unwrap());
        }
    });
    w.assert_clean();
}

#[test]
fn gc_collects_an_attach_killed_before_its_result_was_kept() {
    let w = World::new("net-half");
    let mut c = Netns::new("net-half-c");
    let net = w.net();
    let gone_owner = tempfile::tempdir().unwrap();
    w.host
        .run(|| net.attach("half", gone_owner.path(), &c.path(), &req(&[])))
        .unwrap();
    // As if killed while the plugins ran: the entry written before ADD has no result.
    let cache = corral_net::cni::Cache::new(w.root.path().join("cni/results"));
    let mut e = cache.get("half", "bridge", "eth0").unwrap().unwrap();
    e.result = None;
    cache.put(&e).unwrap();
    assert!(net.attachments("half").unwrap().is_empty());
    assert!(w.iptables().contains(r#"id: \"half\""#));
    c.delete();
    drop(gone_owner);
    let n = w
        .host
        .run(|| net.gc(&|_: &str, o: &Path| o.exists()))
        .unwrap();
    assert_eq!(n, 1);
    // The lease and the masquerade chain were found from host-local's lease file.
    w.assert_clean();
}

#[test]
fn bad_requests_are_refused_before_anything_is_made() {
    let w = World::new("net-bad");
    let c = Netns::new("net-bad-c");
    let net = w.net();
    let cases: [(&str, Request, &str); 5] = [
        ("a/b", req(&[]), "container id: "),
        ("ok", req(&["none"]), "network: "),
        ("ok", req(&["bridge", "bridge"]), "network: "),
        (
            "ok",
            Request {
                hostname: "bad host\n".into(),
                ..req(&[])
            },
            "hostname: ",
        ),
        (
            "ok",
            req(&["nosuch"]),
            "network \"nosuch\": no such network",
        ),
    ];
    for (id, r, want) in cases {
        let e = w
            .host
            .run(|| net.attach(id, w.owner.path(), &c.path(), &r))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with(want), "{id} {r:?}: {e}");
    }
    w.assert_clean();
}

#[test]
fn gc_sends_cni_gc_with_the_valid_attachments_to_plugins_that_speak_it() {
    testkit::require_root();
    let root = tempfile::tempdir().unwrap();
    let plugins = tempfile::tempdir().unwrap();
    let log = plugins.path().join("log");
    let exe = plugins.path().join("gcspeaker");
    std::fs::write(
        &exe,
        format!(
            "#!/bin/sh\necho \"$CNI_COMMAND\" >> {log}\ncase \"$CNI_COMMAND\" in\n\
             VERSION) echo '{{\"cniVersion\":\"1.1.0\",\"supportedVersions\":[\"1.0.0\",\"1.1.0\"]}}' ;;\n\
             GC) cat >> {log} ;;\nesac\n",
            log = log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&exe, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let dir = root.path().join("networks");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("fake.conflist"),
        r#"{"cniVersion": "1.1.0", "name": "fake", "plugins": [{"type": "gcspeaker"}]}"#,
    )
    .unwrap();
    let net = NetRoot::with_cni(
        root.path(),
        corral_net::cni::Cni::new(vec![plugins.path().to_path_buf(), "/usr/lib/cni".into()]),
    );
    let cache = corral_net::cni::Cache::new(root.path().join("cni/results"));
    let list = net.conflist("fake").unwrap();
    cache
        .put(&corral_net::cni::CacheEntry {
            container_id: "alive".into(),
            network: "fake".into(),
            ifname: "eth0".into(),
            netns: None,
            config: list.to_json(),
            capability_args: Default::default(),
            args: vec![],
            result: Some(serde_json::json!({"cniVersion": "1.1.0", "ips": []})),
            owner: root.path().to_path_buf(),
        })
        .unwrap();
    assert_eq!(net.gc(&|_: &str, _: &Path| true).unwrap(), 0);
    let got = std::fs::read_to_string(&log).unwrap();
    assert!(got.starts_with("VERSION\nGC\n"), "{got}");
    let sent: serde_json::Value = serde_json::from_str(got.lines().nth(2).unwrap()).unwrap();
    assert_eq!(
        sent["cni.dev/valid-attachments"],
        serde_json::json!([{"containerID": "alive", "ifname": "eth0"}])
    );
    // The VERSION answer is kept in the root, for the next process.
    let memo = std::fs::read_to_string(root.path().join("cni/versions.json")).unwrap();
    assert!(
        memo.contains("gcspeaker") && memo.contains("true"),
        "{memo}"
    );
}

//! Networking through the `corral` binary: containers on the default and named networks
//! (CNI's bridge, host-local, portmap, firewall and bandwidth plugins), published TCP and
//! UDP ports, `--network none|host|container:ID`, rate limits measured, addresses never
//! handed out twice, and nothing left after `delete --force`, after kill -9 too.
//!
//! Every test runs corral inside a network namespace of its own (made here, deleted by a
//! guard even when the test fails): the bridges, their subnets, the NAT and filter rules
//! and every byte of traffic live there, never in the host's namespace. corral is started
//! in it by `setns` before exec (not `ip netns exec`, which remounts /sys and so hides the
//! cgroup hierarchy from corral). Each test has its own store (networks, leases, the CNI
//! cache) and state root.

mod common;

use common::{bounded, names};

use std::fs;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::TestRootfs;

/// A network namespace, a store and a state root of one test, the busybox image `bb`
/// imported, and the containers made (force-deleted, then the namespace deleted, on drop).
struct World {
    ns: testkit::Netns,
    dir: tempfile::TempDir,
    ids: Mutex<Vec<String>>,
    /// `CNI_PATH` for every corral call (None: the default plugin dirs).
    cni_path: Option<PathBuf>,
}

impl World {
    fn new() -> World {
        let ns = testkit::Netns::new("net");
        let dir = tempfile::Builder::new()
            .prefix("corral-network-")
            .tempdir()
            .unwrap();
        let rootfs = TestRootfs::new();
        let w = World {
            ns,
            dir,
            ids: Default::default(),
            cni_path: None,
        };
        let r = rootfs.rootfs();
        fs::create_dir_all(r.join("www")).unwrap();
        fs::write(r.join("www/index.html"), "hello from corral\n").unwrap();
        fs::write(r.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        fs::write(r.join("etc/group"), "root:x:0:\n").unwrap();
        w.ok(&["image", "import", r.to_str().unwrap(), "bb"]);
        drop(rootfs);
        w
    }

    fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// A container id this test uses (force-deleted at the end).
    fn id(&self, prefix: &str) -> String {
        let id = testkit::unique_id(prefix);
        self.ids.lock().unwrap().push(id.clone());
        id
    }

    /// A command that runs in the namespace (setns before exec), stdin /dev/null.
    fn in_ns(&self, program: &str) -> Command {
        let mut c = self.ns.command(program);
        c.stdin(Stdio::null());
        c
    }

    /// corral with this store and root, in the namespace.
    fn corral_cmd(&self, args: &[&str]) -> Command {
        let mut c = self.in_ns(&common::corral());
        c.env_remove(runtime::fault::ENV);
        c.arg("--store")
            .arg(self.store())
            .arg("--root")
            .arg(self.state())
            .args(args);
        if let Some(p) = &self.cni_path {
            c.env("CNI_PATH", p);
        }
        c
    }

    fn corral(&self, args: &[&str]) -> Output {
        bounded(self.corral_cmd(args), Duration::from_secs(240))
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.corral(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "corral {args:?}: stdout {} stderr {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.corral(args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "corral {args:?} should fail: stdout {} stderr {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// A program's stdout, run in the namespace (`iptables-save`, `tc`...); "" if missing.
    fn tool(&self, program: &str, args: &[&str]) -> String {
        match self.in_ns(program).args(args).output() {
            Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
            Err(_) => String::new(),
        }
    }

    /// `network inspect NAME`'s object.
    fn inspect(&self, name: &str) -> Value {
        let v: Value = serde_json::from_str(&self.ok(&["network", "inspect", name])).unwrap();
        v[0].clone()
    }

    /// The IPv4 address of container `id` on network `net`, from `network inspect`.
    fn addr(&self, net: &str, id: &str) -> Ipv4Addr {
        let v = self.inspect(net);
        let c = v["Containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["Id"] == id)
            .unwrap_or_else(|| panic!("{id} not on {net}: {v:#}"));
        let cidr = c["Addresses"][0].as_str().unwrap();
        cidr.split('/').next().unwrap().parse().unwrap()
    }

    /// The gateway of network `net` (the namespace's address on its bridge).
    fn gateway(&self, net: &str) -> Ipv4Addr {
        self.inspect(net)["Gateways"][0]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// What is left in the namespace and the store that names `id`, or any veth, ifb, tc
    /// qdisc of a container, lease or cache entry at all.
    fn leftovers(&self, ids: &[&str]) -> Vec<String> {
        let mut left = Vec::new();
        for kind in ["veth", "ifb"] {
            let links = self.ns.ip(&["-o", "link", "show", "type", kind]);
            if !links.trim().is_empty() {
                left.push(format!("{kind} links: {links}"));
            }
        }
        let rules = self.tool("iptables-save", &[]) + &self.tool("nft", &["list", "ruleset"]);
        for id in ids {
            for l in rules.lines().filter(|l| l.contains(id)) {
                left.push(format!("rule: {l}"));
            }
        }
        for l in self.tool("tc", &["qdisc", "show"]).lines() {
            if l.contains("tbf") || l.contains("ingress") || l.contains("ifb") {
                left.push(format!("qdisc: {l}"));
            }
        }
        let leases = self.store().join("cni/leases");
        for net in names(&leases) {
            for f in names(&leases.join(&net)) {
                if f != "lock" && !f.starts_with("last_reserved_ip") {
                    let owner = fs::read_to_string(leases.join(&net).join(&f)).unwrap_or_default();
                    left.push(format!("lease {net}/{f}: {owner}"));
                }
            }
        }
        for f in names(&self.store().join("cni/results")) {
            left.push(format!("cache entry {f}"));
        }
        for f in names(&self.store().join("cni/containers")) {
            left.push(format!("container files {f}"));
        }
        left
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let ids = self.ids.lock().map(|v| v.clone()).unwrap_or_default();
        for id in &ids {
            let _ = self.corral(&["delete", "--force", id]);
        }
        let leaks: Vec<String> = ids
            .iter()
            .flat_map(|id| testkit::find_leaks(id, Some(&self.state())))
            .collect();
        // The namespace (a field) is deleted after this.
        if !std::thread::panicking() {
            assert!(leaks.is_empty(), "leaked: {leaks:#?}");
        }
    }
}

/// Tries `f` every 100 ms for up to `secs` seconds (a server in a container starting).
fn retry<T>(secs: u64, mut f: impl FnMut() -> std::io::Result<T>) -> T {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) if Instant::now() > end => panic!("gave up after {secs}s: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// An HTTP GET of `/` at `addr`: the whole response.
fn http_get(addr: SocketAddr) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    if out.is_empty() {
        return Err(std::io::Error::other("empty response"));
    }
    Ok(out)
}

/// A shell line that GETs `/` of `host` port 80 with busybox nc (its wget crashes on a
/// name lookup in a root without libc's NSS modules; nc and ping look names up in
/// /etc/hosts), retrying while the server starts (up to ~10 s); exit 1 if it never answers.
fn get_retrying(host: &str) -> String {
    format!(
        "for i in $(seq 50); do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {host} 80 | grep -x 'hello from corral' && exit 0; sleep 0.2; done; exit 1"
    )
}

const HTTPD: &str = "httpd -f -p 80 -h /www";

#[test]
fn containers_reach_each_other_by_name_on_a_network_and_not_across() {
    let w = World::new();
    w.ok(&["network", "create", "front"]);
    w.ok(&["network", "create", "back"]);
    let ls = w.ok(&["network", "ls"]);
    assert!(
        ls.contains("front") && ls.contains("back") && ls.contains("bridge"),
        "{ls}"
    );
    let web = w.id("web");
    w.ok(&[
        "run",
        "-d",
        "--image",
        "bb",
        "--network",
        "front",
        "--name",
        &web,
        "--",
        "sh",
        "-c",
        HTTPD,
    ]);
    // By name, on the same network.
    let cli = w.id("cli");
    let got = w.ok(&[
        "run",
        "--rm",
        "--image",
        "bb",
        "--network",
        "front",
        "--name",
        &cli,
        "--",
        "sh",
        "-c",
        &get_retrying(&web),
    ]);
    assert_eq!(got, "hello from corral\n");
    // The server's /etc/hosts learns of a container that joins later.
    let other = w.id("other");
    w.ok(&[
        "run",
        "-d",
        "--image",
        "bb",
        "--network",
        "front",
        "--name",
        &other,
        "--",
        "sleep",
        "1000",
    ]);
    let hosts = w.ok(&["exec", &web, "cat", "/etc/hosts"]);
    assert!(hosts.contains(&other), "{hosts}");
    let web_ip = w.addr("front", &web);
    assert!(hosts.contains(&web_ip.to_string()), "{hosts}");
    // Not across networks: the name is unknown there (the address: the next test).
    let far = w.id("far");
    let out = w.corral(&[
        "run",
        "--rm",
        "--image",
        "bb",
        "--network",
        "back",
        "--name",
        &far,
        "--",
        "sh",
        "-c",
        &format!("ping -c 1 -W 2 {web}"),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() != Some(0) && err.contains("bad address"),
        "{out:?}"
    );
    // Two networks at once: eth0 and eth1, and the name on either.
    let both = w.id("both");
    let got = w.ok(&[
        "run",
        "--rm",
        "--image",
        "bb",
        "--network",
        "back",
        "--network",
        "front",
        "--name",
        &both,
        "--",
        "sh",
        "-c",
        &format!("ip -o link show eth1 >/dev/null && {}", get_retrying(&web)),
    ]);
    assert_eq!(got, "hello from corral\n");
    // A network in use is not removed; then it is.
    let e = w.fails(&["network", "rm", "front"]);
    assert!(e.contains("front"), "{e}");
    w.ok(&["delete", "--force", &web]);
    w.ok(&["delete", "--force", &other]);
    w.ok(&["network", "rm", "front", "back"]);
    let ls = w.ok(&["network", "ls", "-q"]);
    assert!(!ls.contains("front") && !ls.contains("back"), "{ls}");
    let left = w.leftovers(&[&web, &cli, &other, &far, &both]);
    assert!(left.is_empty(), "{left:#?}");
}

/// As docker isolates its networks: a container of one network does not reach a container
/// of another by its address either (the two bridges share the namespace's routing).
#[test]
fn networks_do_not_reach_each_other_by_address() {
    let w = World::new();
    w.ok(&["network", "create", "front"]);
    w.ok(&["network", "create", "back"]);
    let web = w.id("web");
    w.ok(&[
        "run",
        "-d",
        "--image",
        "bb",
        "--network",
        "front",
        "--name",
        &web,
        "--",
        "sh",
        "-c",
        HTTPD,
    ]);
    let web_ip = w.addr("front", &web).to_string();
    // It answers on its own network (so the refusal below is the network's)...
    let near = w.id("near");
    let got = w.ok(&[
        "run",
        "--rm",
        "--image",
        "bb",
        "--network",
        "front",
        "--name",
        &near,
        "--",
        "sh",
        "-c",
        &get_retrying(&web_ip),
    ]);
    assert_eq!(got, "hello from corral\n");
    // ...and not from another, nor from the default network.
    for net in ["back", "bridge"] {
        let far = w.id("far");
        let out = w.corral(&[
            "run",
            "--rm",
            "--image",
            "bb",
            "--network",
            net,
            "--name",
            &far,
            "--",
            "sh",
            "-c",
            &format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {web_ip} 80"),
        ]);
        assert!(
            out.status.code() != Some(0) && !String::from_utf8_lossy(&out.stdout).contains("hello"),
            "a container of network {net} reached {web_ip} on front: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    w.ok(&["delete", "--force", &web]);
}

#[test]
fn network_connect_and_disconnect_a_running_container() {
    let w = World::new();
    w.ok(&["network", "create", "--subnet", "10.123.4.0/24", "extra"]);
    let v = w.inspect("extra");
    assert_eq!(v["Subnets"][0], "10.123.4.0/24", "{v:#}");
    let id = w.id("conn");
    w.ok(&[
        "run", "-d", "--image", "bb", "--name", &id, "--", "sleep", "1000",
    ]);
    w.ok(&["network", "connect", "extra", &id]);
    let a = w.ok(&["exec", &id, "ip", "-4", "-o", "addr"]);
    assert!(a.contains("10.123.4."), "{a}");
    w.ok(&["network", "disconnect", "extra", &id]);
    let a = w.ok(&["exec", &id, "ip", "-4", "-o", "addr"]);
    assert!(!a.contains("10.123.4."), "{a}");
    assert!(a.contains("10.89."), "{a}");
    let e = w.fails(&["network", "disconnect", "extra", &id]);
    assert!(e.contains("extra"), "{e}");
    let e = w.fails(&["network", "connect", "nosuch", &id]);
    assert!(e.contains("nosuch"), "{e}");
    w.ok(&["delete", "--force", &id]);
    w.ok(&["network", "rm", "extra"]);
    let left = w.leftovers(&[&id]);
    assert!(left.is_empty(), "{left:#?}");
}

#[test]
fn published_tcp_and_udp_ports_answer_from_the_namespace() {
    let w = World::new();
    let id = w.id("pub");
    w.ok(&[
        "run",
        "-d",
        "--image",
        "bb",
        "--name",
        &id,
        "-p",
        "8080:80",
        "-p",
        "5353:5353/udp",
        "-p",
        "127.0.0.1::80",
        "--",
        "sh",
        "-c",
        "httpd -p 80 -h /www; exec /probe udp-echo 5353",
    ]);
    let gw = w.gateway("bridge");
    // The port chosen for 127.0.0.1::80, as `corral port` shows it.
    let ports = w.ok(&["port", &id]);
    assert!(ports.contains("80/tcp -> 0.0.0.0:8080\n"), "{ports}");
    assert!(ports.contains("5353/udp -> 0.0.0.0:5353\n"), "{ports}");
    let chosen: u16 = ports
        .lines()
        .find_map(|l| l.strip_prefix("80/tcp -> 127.0.0.1:"))
        .unwrap_or_else(|| panic!("{ports}"))
        .parse()
        .unwrap();
    assert_ne!(chosen, 0);
    let (tcp, tcp_local, udp) = w.ns.run(|| {
        let tcp = retry(10, || http_get(SocketAddr::new(IpAddr::V4(gw), 8080)));
        // The localhost path (portmap's SNAT of 127.0.0.1).
        let tcp_local = retry(10, || http_get("127.0.0.1:8080".parse().unwrap()));
        let chosen = retry(10, || http_get(SocketAddr::from(([127, 0, 0, 1], chosen))));
        assert!(chosen.contains("hello from corral"), "{chosen}");
        let sock = UdpSocket::bind("0.0.0.0:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let udp = retry(10, || {
            sock.send_to(b"ping over udp", (gw, 5353))?;
            let mut buf = [0u8; 64];
            let (n, _) = sock.recv_from(&mut buf)?;
            Ok(buf[..n].to_vec())
        });
        (tcp, tcp_local, udp)
    });
    assert!(tcp.contains("hello from corral"), "{tcp}");
    assert!(tcp_local.contains("hello from corral"), "{tcp_local}");
    assert_eq!(udp, b"ping over udp");
    w.ok(&["delete", "--force", &id]);
    // Gone with the container: nothing answers, nothing is left.
    let gone =
        w.ns.run(|| http_get(SocketAddr::new(IpAddr::V4(gw), 8080)).is_err());
    assert!(gone, "port 8080 still answers after delete");
    let left = w.leftovers(&[&id]);
    assert!(left.is_empty(), "{left:#?}");
}

#[test]
fn publish_all_publishes_what_the_image_exposes() {
    let w = World::new();
    let ctx = w.dir.path().join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(ctx.join("Dockerfile"), "FROM bb\nEXPOSE 80 5353/udp\n").unwrap();
    w.ok(&[
        "image",
        "build",
        "--network",
        "none",
        "-t",
        "web",
        ctx.to_str().unwrap(),
    ]);
    let id = w.id("all");
    w.ok(&[
        "run",
        "-d",
        "--image",
        "web",
        "-P",
        "--name",
        &id,
        "--",
        "sh",
        "-c",
        "httpd -p 80 -h /www; exec /probe udp-echo 5353",
    ]);
    let ports = w.ok(&["port", &id]);
    let host_port = |what: &str| -> u16 {
        ports
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{what} -> 0.0.0.0:")))
            .unwrap_or_else(|| panic!("{what} not published: {ports}"))
            .parse()
            .unwrap()
    };
    let (tcp, udp) = (host_port("80/tcp"), host_port("5353/udp"));
    let gw = w.gateway("bridge");
    let (page, echo) = w.ns.run(|| {
        let page = retry(10, || http_get(SocketAddr::new(IpAddr::V4(gw), tcp)));
        let sock = UdpSocket::bind("0.0.0.0:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let echo = retry(10, || {
            sock.send_to(b"exposed", (gw, udp))?;
            let mut buf = [0u8; 64];
            let (n, _) = sock.recv_from(&mut buf)?;
            Ok(buf[..n].to_vec())
        });
        (page, echo)
    });
    assert!(page.contains("hello from corral"), "{page}");
    assert_eq!(echo, b"exposed");
    w.ok(&["delete", "--force", &id]);
    let left = w.leftovers(&[&id]);
    assert!(left.is_empty(), "{left:#?}");
}

#[test]
fn network_none_host_and_container_modes() {
    let w = World::new();
    let none = w.id("none");
    let links = w.ok(&[
        "run",
        "--rm",
        "--image",
        "bb",
        "--network",
        "none",
        "--name",
        &none,
        "--",
        "ip",
        "-o",
        "link",
    ]);
    assert_eq!(links.lines().count(), 1, "{links}");
    assert!(links.contains("lo:"), "{links}");
    let left = w.leftovers(&[&none]);
    assert!(left.is_empty(), "{left:#?}");
    // Nothing was made for it: no bridge either.
    let all = w.ns.ip(&["-o", "link"]);
    assert!(!all.contains("corral0"), "{all}");
    // Publishing or limiting without a network of its own is refused, naming the flag.
    for (mode, flag, val) in [
        ("none", "-p", "8080:80"),
        ("host", "-p", "8080:80"),
        ("none", "--ingress-rate", "1mbit"),
        ("host", "--egress-rate", "1mbit"),
    ] {
        let e = w.fails(&[
            "run",
            "--rm",
            "--image",
            "bb",
            "--network",
            mode,
            flag,
            val,
            "--",
            "true",
        ]);
        assert!(e.contains(flag), "{mode} {flag}: {e}");
    }
    let e = w.fails(&[
        "run",
        "--rm",
        "--image",
        "bb",
        "--network",
        "none",
        "-P",
        "--",
        "true",
    ]);
    assert!(e.contains("-P"), "{e}");
    let e = w.fails(&[
        "run",
        "--rm",
        "--image",
        "bb",
        "--network",
        "none",
        "--network",
        "bridge",
        "--",
        "true",
    ]);
    assert!(e.contains("--network none"), "{e}");
    let e = w.fails(&[
        "run",
        "--rm",
        "--image",
        "bb",
        "-p",
        "80:80:80:80",
        "--",
        "true",
    ]);
    assert!(e.contains("-p"), "{e}");
    let e = w.fails(&[
        "run",
        "--rm",
        "--image",
        "bb",
        "--ingress-rate",
        "fast",
        "--",
        "true",
    ]);
    assert!(e.contains("--ingress-rate"), "{e}");
    let e = w.fails(&[
        "run",
        "--rm",
        "--image",
        "bb",
        "--network",
        "nosuch",
        "--",
        "true",
    ]);
    assert!(e.contains("nosuch"), "{e}");
    // host: the namespace's own links (this test's namespace: corral runs there).
    let host = w.id("host");
    let links = w.ok(&[
        "run",
        "--rm",
        "--image",
        "bb",
        "--network",
        "host",
        "--name",
        &host,
        "--",
        "ip",
        "-o",
        "link",
    ]);
    assert_eq!(
        links.lines().count(),
        w.ns.ip(&["-o", "link"]).lines().count(),
        "{links}"
    );
    let links2 = w.ok(&[
        "run",
        "--rm",
        "--image",
        "bb",
        "--net-host",
        "--name",
        &host,
        "--",
        "ip",
        "-o",
        "link",
    ]);
    assert_eq!(links2.lines().count(), links.lines().count());
    // container:ID shares a running container's namespace.
    let first = w.id("first");
    w.ok(&[
        "run", "-d", "--image", "bb", "--name", &first, "--", "sleep", "1000",
    ]);
    let ip = w.addr("bridge", &first);
    let joined = w.id("joined");
    let a = w.ok(&[
        "run",
        "--rm",
        "--image",
        "bb",
        "--network",
        &format!("container:{first}"),
        "--name",
        &joined,
        "--",
        "ip",
        "-4",
        "-o",
        "addr",
    ]);
    assert!(a.contains(&ip.to_string()), "{a}");
    let e = w.fails(&[
        "run",
        "--rm",
        "--image",
        "bb",
        "--network",
        "container:nosuch",
        "--",
        "true",
    ]);
    assert!(e.contains("container:nosuch"), "{e}");
    let created = w.id("created");
    w.ok(&[
        "create",
        "--image",
        "bb",
        "--network",
        "none",
        "--name",
        &created,
        "--",
        "true",
    ]);
    w.ok(&["start", &created]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !w.ok(&["state", &created]).contains("stopped") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let e = w.fails(&[
        "run",
        "--rm",
        "--image",
        "bb",
        "--network",
        &format!("container:{created}"),
        "--",
        "true",
    ]);
    assert!(e.contains("not running"), "{e}");
    w.ok(&["delete", "--force", &first]);
    w.ok(&["delete", &created]);
    let left = w.leftovers(&[&first, &joined]);
    assert!(left.is_empty(), "{left:#?}");
}

/// Bytes through TCP over `bytes`, in bits per second.
fn bps(bytes: usize, d: Duration) -> f64 {
    bytes as f64 * 8.0 / d.as_secs_f64()
}

#[test]
fn rate_limits_hold_in_each_direction() {
    const RATE: f64 = 16e6; // 16mbit: 4 MiB take about 2 s
    const BYTES: usize = 4 << 20;
    let w = World::new();
    let id = w.id("rate");
    let gw_port = 5002;
    // Egress (what the container sends): it sends BYTES to the namespace once it listens.
    let listener =
        w.ns.run(|| TcpListener::bind(("0.0.0.0", gw_port)).unwrap());
    w.ok(&[
        "run", "-d", "--image", "bb", "--name", &id, "--ingress-rate", "16mbit",
        "--egress-rate", "16mbit", "--", "sh", "-c",
        &format!(
            "nc -l -p 5001 -e sh -c 'head -c {BYTES} >/dev/null; echo done' & \
             sleep 0.5; dd if=/dev/zero bs=65536 count={} 2>/dev/null | nc 10.89.0.1 {gw_port}; wait",
            BYTES / 65536
        ),
    ]);
    let egress = {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let start = Instant::now();
        let mut buf = vec![0u8; 1 << 16];
        let mut n = 0;
        while n < BYTES {
            let r = s.read(&mut buf).unwrap();
            assert!(r > 0, "egress: EOF after {n} bytes");
            n += r;
        }
        bps(n, start.elapsed())
    };
    let ip = w.addr("bridge", &id);
    // Ingress (what reaches the container): BYTES to it, until it says it read them all.
    let ingress = w.ns.run(|| {
        let mut s = retry(10, || TcpStream::connect((ip, 5001)));
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let start = Instant::now();
        let chunk = vec![0u8; 1 << 16];
        for _ in 0..BYTES / chunk.len() {
            s.write_all(&chunk).unwrap();
        }
        let mut ack = String::new();
        s.read_to_string(&mut ack).unwrap();
        assert_eq!(ack, "done\n");
        bps(BYTES, start.elapsed())
    });
    eprintln!(
        "measured through 16 mbit/s: egress {:.2} mbit/s, ingress {:.2} mbit/s",
        egress / 1e6,
        ingress / 1e6
    );
    for (what, got) in [("egress", egress), ("ingress", ingress)] {
        assert!(
            (got - RATE).abs() <= RATE * 0.2,
            "{what}: {:.2} mbit/s through a 16 mbit/s limit",
            got / 1e6
        );
    }
    // The limits are tc's, on the namespace's side of the container's veth (and an ifb).
    let qd = w.tool("tc", &["qdisc", "show"]);
    assert!(qd.contains("tbf"), "{qd}");
    w.ok(&["delete", "--force", &id]);
    let left = w.leftovers(&[&id]);
    assert!(left.is_empty(), "{left:#?}");
}

#[test]
fn a_second_container_gets_another_address() {
    let w = World::new();
    let a = w.id("a");
    let b = w.id("b");
    w.ok(&[
        "run", "-d", "--image", "bb", "--name", &a, "--", "sleep", "1000",
    ]);
    w.ok(&[
        "run", "-d", "--image", "bb", "--name", &b, "--", "sleep", "1000",
    ]);
    let (ia, ib) = (w.addr("bridge", &a), w.addr("bridge", &b));
    assert_ne!(ia, ib);
    // Each has the address the network says, and reaches the other.
    let own = w.ok(&["exec", &b, "ip", "-4", "-o", "addr", "show", "eth0"]);
    assert!(own.contains(&format!("{ib}/")), "{own}");
    w.ok(&["exec", &b, "ping", "-c", "1", "-W", "5", &ia.to_string()]);
    // One lease each, naming its container.
    let leases = w.store().join("cni/leases/bridge");
    let held: Vec<String> = names(&leases)
        .into_iter()
        .filter(|f| f.parse::<IpAddr>().is_ok())
        .collect();
    assert_eq!(held.len(), 2, "{held:?}");
    for (id, ip) in [(&a, ia), (&b, ib)] {
        let owner = fs::read_to_string(leases.join(ip.to_string())).unwrap();
        assert!(owner.contains(id.as_str()), "{ip}: {owner}");
    }
    // A third, after the first left: not the second's.
    w.ok(&["delete", "--force", &a]);
    let c = w.id("c");
    w.ok(&[
        "run", "-d", "--image", "bb", "--name", &c, "--", "sleep", "1000",
    ]);
    assert_ne!(w.addr("bridge", &c), ib);
    w.ok(&["delete", "--force", &b]);
    w.ok(&["delete", "--force", &c]);
    let left = w.leftovers(&[&a, &b, &c]);
    assert!(left.is_empty(), "{left:#?}");
}

/// A plugin dir of the default plugins whose `bandwidth` hangs on ADD while `DIR/arm`
/// exists (writing its pid to `DIR/hung`), so a test can kill corral in the middle of an
/// attach.
fn hanging_plugin_dir(dir: &Path) -> PathBuf {
    let plugins = dir.join("plugins");
    fs::create_dir_all(&plugins).unwrap();
    let real = Path::new("/usr/lib/cni");
    for name in names(real) {
        if name != "bandwidth" {
            std::os::unix::fs::symlink(real.join(&name), plugins.join(&name)).unwrap();
        }
    }
    let script = format!(
        "#!/bin/sh\nif [ \"$CNI_COMMAND\" = ADD ] && [ -e {d}/arm ]; then echo $$ > {d}/hung; exec sleep 300; fi\nexec {r}/bandwidth \"$@\"\n",
        d = dir.display(),
        r = real.display()
    );
    let p = plugins.join("bandwidth");
    fs::write(&p, script).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    plugins
}

#[test]
fn delete_force_after_kill_9_of_create_and_run_leaves_nothing() {
    let mut w = World::new();
    let dir = w.dir.path().to_path_buf();
    w.cni_path = Some(hanging_plugin_dir(&dir));
    // create, killed in the middle of its attach (bridge, portmap and firewall done, the
    // bandwidth plugin's ADD under way).
    let made = w.id("made");
    fs::write(dir.join("arm"), "").unwrap();
    let mut c = w.corral_cmd(&[
        "create",
        "--image",
        "bb",
        "--name",
        &made,
        "-p",
        "8081:80",
        "--ingress-rate",
        "10mbit",
        "--",
        "sleep",
        "1000",
    ]);
    let mut child = c
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let hung = retry(60, || fs::read_to_string(dir.join("hung")));
    let veths = w.ns.ip(&["-o", "link", "show", "type", "veth"]);
    assert!(!veths.trim().is_empty(), "no veth made before the kill");
    child.kill().unwrap();
    child.wait().unwrap();
    fs::remove_file(dir.join("arm")).unwrap();
    let _ = Command::new("kill").args(["-9", hung.trim()]).status();
    w.ok(&["delete", "--force", &made]);
    let left = w.leftovers(&[&made]);
    assert!(left.is_empty(), "after kill -9 of create: {left:#?}");
    // run, killed once its container runs (rates and ports attached).
    let ran = w.id("ran");
    let mut c = w.corral_cmd(&[
        "run",
        "--image",
        "bb",
        "--name",
        &ran,
        "-p",
        "8082:80",
        "--ingress-rate",
        "10mbit",
        "--egress-rate",
        "10mbit",
        "--",
        "sleep",
        "1000",
    ]);
    c.env(runtime::fault::ENV, "start:after-state");
    let out = bounded(c, Duration::from_secs(120));
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&out.status),
        Some(libc::SIGKILL),
        "{out:?}"
    );
    let qd = w.tool("tc", &["qdisc", "show"]);
    assert!(qd.contains("tbf"), "no limit made before the kill: {qd}");
    w.ok(&["delete", "--force", &ran]);
    let left = w.leftovers(&[&ran]);
    assert!(left.is_empty(), "after kill -9 of run: {left:#?}");
}

#[test]
fn a_hundred_containers_on_one_bridge_start_and_stop_leaving_nothing() {
    const N: usize = 100;
    let w = World::new();
    let ids: Vec<String> = (0..N).map(|i| w.id(&format!("h{i}"))).collect();
    // Four at a time: the attaches of one network are serialized by its lock anyway.
    std::thread::scope(|s| {
        for chunk in ids.chunks(N / 4) {
            let w = &w;
            s.spawn(move || {
                for id in chunk {
                    w.ok(&[
                        "run", "-d", "--image", "bb", "--name", id, "--", "sleep", "1000",
                    ]);
                }
            });
        }
    });
    let v = w.inspect("bridge");
    let mut addrs: Vec<String> = v["Containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["Addresses"][0].as_str().unwrap().to_string())
        .collect();
    assert_eq!(addrs.len(), N, "{v:#}");
    addrs.sort();
    addrs.dedup();
    assert_eq!(addrs.len(), N, "an address handed out twice");
    let veths = w.ns.ip(&["-o", "link", "show", "type", "veth"]);
    assert_eq!(veths.lines().count(), N);
    // The last one knows the first by name.
    w.ok(&["exec", &ids[N - 1], "ping", "-c", "1", "-W", "5", &ids[0]]);
    // One after the other (deletes at the same time: the next test).
    for id in &ids {
        w.ok(&["delete", "--force", id]);
    }
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let left = w.leftovers(&refs);
    assert!(left.is_empty(), "{left:#?}");
}

/// Containers of one store deleted at the same time, while others are made: each command
/// undoes its own container's attachments, and none fails for another's (a delete and a
/// create also collect what killed commands left: a container being deleted is not one).
#[test]
fn concurrent_deletes_and_creates_do_not_undo_each_other() {
    const N: usize = 8;
    let w = World::new();
    let old: Vec<String> = (0..N).map(|i| w.id(&format!("old{i}"))).collect();
    for id in &old {
        w.ok(&[
            "run", "-d", "--image", "bb", "--name", id, "--", "sleep", "1000",
        ]);
    }
    let new: Vec<String> = (0..N).map(|i| w.id(&format!("new{i}"))).collect();
    std::thread::scope(|s| {
        for (o, n) in old.iter().zip(&new) {
            let w = &w;
            s.spawn(move || w.ok(&["delete", "--force", o]));
            s.spawn(move || {
                w.ok(&[
                    "run", "-d", "--image", "bb", "--name", n, "--", "sleep", "1000",
                ])
            });
        }
    });
    // The new ones kept their addresses and reach each other.
    let v = w.inspect("bridge");
    assert_eq!(v["Containers"].as_array().unwrap().len(), N, "{v:#}");
    w.ok(&["exec", &new[0], "ping", "-c", "1", "-W", "5", &new[N - 1]]);
    std::thread::scope(|s| {
        for n in &new {
            let w = &w;
            s.spawn(move || w.ok(&["delete", "--force", n]));
        }
    });
    let refs: Vec<&str> = old.iter().chain(&new).map(String::as_str).collect();
    let left = w.leftovers(&refs);
    assert!(left.is_empty(), "{left:#?}");
}

#[test]
fn network_commands_refuse_bad_input_naming_it() {
    let w = World::new();
    w.ok(&["network", "create", "ok1"]);
    for (args, want) in [
        (
            &["network", "create", "--subnet", "10.0.0.0/33", "x"][..],
            "--subnet",
        ),
        (&["network", "create", "--subnet", "foo", "x"], "--subnet"),
        (
            &[
                "network",
                "create",
                "--gateway",
                "10.1.0.1",
                "--subnet",
                "10.2.0.0/24",
                "x",
            ],
            "--gateway",
        ),
        (&["network", "create", "bad/name"], "bad/name"),
        (&["network", "create", "ok1"], "ok1"),
        (
            &["network", "create", "--subnet", "10.90.0.0/24", "clash"],
            "overlaps",
        ),
        (&["network", "rm", "bridge"], "bridge"),
        (&["network", "inspect", "nosuch"], "nosuch"),
        (&["network", "rm", "nosuch"], "nosuch"),
        (&["network", "connect", "ok1", "nosuch"], "nosuch"),
        (&["port", "nosuch"], "nosuch"),
        (
            &[
                "run",
                "--rm",
                "--image",
                "bb",
                "--network",
                "",
                "--",
                "true",
            ],
            "--network",
        ),
        (
            &[
                "run",
                "--rm",
                "--image",
                "bb",
                "--network",
                "ok1",
                "--network",
                "ok1",
                "--",
                "true",
            ],
            "twice",
        ),
        (
            &[
                "run",
                "--rm",
                "--image",
                "bb",
                "--net-host",
                "--network",
                "ok1",
                "--",
                "true",
            ],
            "--net-host",
        ),
        (
            &[
                "create",
                "--image",
                "bb",
                "--rm",
                "--network",
                "none",
                "--",
                "true",
            ],
            "--rm",
        ),
    ] {
        let e = w.fails(args);
        assert!(e.contains(want), "{args:?}: {e}");
    }
    // Nothing was made by the refused commands.
    let ls = w.ok(&["network", "ls", "-q"]);
    assert_eq!(ls, "bridge\nok1\n");
    assert!(w.ok(&["list", "-q"]).is_empty());
    let left = w.leftovers(&[]);
    assert!(left.is_empty(), "{left:#?}");
}

#[test]
fn build_run_steps_are_on_the_default_network_unless_told() {
    let w = World::new();
    let ctx = w.dir.path().join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    // The step fails unless it has eth0 and reaches the namespace's side of the bridge.
    fs::write(
        ctx.join("Dockerfile"),
        "FROM bb\nRUN ip -o link show eth0 && ping -c 1 -W 5 10.89.0.1 && ip -o link > /links\n",
    )
    .unwrap();
    let c = ctx.to_str().unwrap();
    w.ok(&["image", "build", "-t", "onnet", c]);
    let links = w.ok(&[
        "run",
        "--rm",
        "--image",
        "onnet",
        "--network",
        "none",
        "--",
        "cat",
        "/links",
    ]);
    assert!(links.contains("eth0"), "{links}");
    // --network none: loopback only, so the same step fails.
    let e = w.fails(&[
        "image",
        "build",
        "--no-cache",
        "--network",
        "none",
        "-t",
        "offnet",
        c,
    ]);
    assert!(e.contains("non-zero"), "{e}");
    // Nothing of the steps' containers is left on the network.
    let left = w.leftovers(&[]);
    assert!(left.is_empty(), "{left:#?}");
}

"""Networking from Python: ``networks``, ``ports`` and the rates of a container, its
``networks`` (what it got), and the named networks of a store. Every test that attaches a
network runs its containers in a child process inside a network namespace the test made
(``nsenter --net``; ``ip netns exec`` would mount another /sys over the cgroups), with a
store of its own; the namespace is deleted even when the test fails."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

import corral


class Netns:
    """A network namespace made for a test (``/run/netns/NAME``)."""

    def __init__(self, tag: str) -> None:
        self.name = f"corral-t-{tag}-{uuid.uuid4().hex[:8]}"
        subprocess.run(["ip", "netns", "add", self.name], check=True, capture_output=True)
        self.ip("link", "set", "lo", "up")

    @property
    def path(self) -> str:
        return f"/run/netns/{self.name}"

    def ip(self, *args: str) -> str:
        return subprocess.run(
            ["ip", "-n", self.name, *args], check=True, capture_output=True, text=True
        ).stdout

    def python(self, script: str, args: Dict[str, Any]) -> Dict[str, Any]:
        """Runs ``script`` in a Python child inside the namespace (after
        :data:`CHILD_PRELUDE`: ``ARGS`` is ``args`` there); what it prints last (a JSON object) is returned. Its failure fails the test."""
        p = subprocess.run(
            ["nsenter", f"--net={self.path}", sys.executable, "-c", CHILD_PRELUDE + textwrap.dedent(script), json.dumps(args)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=os.getcwd(),
        )
        assert p.returncode == 0, f"child failed ({p.returncode}):\n{p.stdout}\n{p.stderr}"
        return json.loads(p.stdout.strip().splitlines()[-1])

    def delete(self) -> None:
        subprocess.run(["ip", "netns", "delete", self.name], capture_output=True)


@pytest.fixture
def netns(env) -> Iterator[Netns]:
    ns = Netns(env.tag)
    try:
        yield ns
    finally:
        ns.delete()


def leftovers(store: Path) -> List[str]:
    """Leases, cached results and per-container files a store's networks keep."""
    out = []
    for d in (store / "cni" / "leases").glob("*"):
        for f in d.iterdir():
            try:
                ipaddress.ip_address(f.name)
            except ValueError:
                continue
            out.append(f"lease {f}")
    for sub in ("results", "containers"):
        out += [f"{sub}: {f}" for f in (store / "cni" / sub).glob("*")]
    return out


CHILD_PRELUDE = """
import json, socket, subprocess, sys, time
import corral
ARGS = json.loads(sys.argv[1])
"""


def test_a_container_on_two_networks_with_a_port_and_rates(env, netns, tmp_path):
    store = tmp_path / "store"
    script = """
    s, root, rootfs = ARGS["store"], ARGS["root"], ARGS["rootfs"]
    out = {}
    out["created"] = corral.network_create("faces", store=s, subnet="10.90.201.0/24")
    out["list"] = [n["name"] for n in corral.network_list(store=s)]
    c = corral.Container(["nc", "-ll", "-p", "80", "-e", "echo", "published"],
                         rootfs=rootfs, root=root, id=ARGS["id"], store=s,
                         networks=["bridge", "faces"], ports=["127.0.0.1::80"],
                         ingress_rate="10mbit", egress_rate=20_000_000)
    assert c.networks == []
    c.create()
    c.start()
    out["networks"] = c.networks
    out["eth0"] = c.exec(["ip", "-o", "-4", "addr", "show", "dev", "eth0"], capture_output=True, text=True).stdout
    out["eth1"] = c.exec(["ip", "-o", "-4", "addr", "show", "dev", "eth1"], capture_output=True, text=True).stdout
    port = out["networks"][0]["ports"][0]["host_port"]
    for _ in range(200):
        try:
            k = socket.create_connection(("127.0.0.1", port))
            break
        except ConnectionRefusedError:
            time.sleep(0.02)
    out["reply"] = k.makefile().read()
    k.close()
    out["qdiscs"] = subprocess.run(["tc", "qdisc", "show"], capture_output=True, text=True).stdout
    try:
        corral.network_remove("faces", store=s)
    except corral.StateError as e:
        out["busy"] = [str(e), e.errno]
    c.delete(force=True)
    out["qdiscs_after"] = subprocess.run(["tc", "qdisc", "show"], capture_output=True, text=True).stdout
    out["veths_after"] = subprocess.run(["ip", "-o", "link", "show", "type", "veth"], capture_output=True, text=True).stdout
    corral.network_remove("faces", store=s)
    out["list_after"] = [n["name"] for n in corral.network_list(store=s)]
    print(json.dumps(out))
    """
    out = netns.python(script, {"store": str(store), "root": str(env.root), "rootfs": env.rootfs, "id": env.id()})
    assert out["created"]["subnets"] == ["10.90.201.0/24"], out["created"]
    assert out["list"] == ["bridge", "faces"], out["list"]
    eth0, eth1 = out["networks"]
    assert (eth0["network"], eth0["ifname"], eth1["network"], eth1["ifname"]) == ("bridge", "eth0", "faces", "eth1")
    assert eth0["ips"][0].startswith("10.89.") and eth1["ips"][0].startswith("10.90.201."), out["networks"]
    assert eth0["gateway"] == "10.89.0.1" and eth0["mac"], eth0
    # The addresses listed are the interfaces' inside.
    assert f"inet {eth0['ips'][0].split('/')[0]}/" in out["eth0"], out["eth0"]
    assert f"inet {eth1['ips'][0].split('/')[0]}/" in out["eth1"], out["eth1"]
    (p,) = eth0["ports"]
    assert p["host_ip"] == "127.0.0.1" and p["container_port"] == 80 and p["protocol"] == "tcp"
    assert 0 < p["host_port"] < 65536
    assert eth1["ports"] == []
    assert out["reply"] == "published\n"
    # One token bucket each way per interface, at the rates asked.
    q = out["qdiscs"]
    assert q.count("qdisc tbf") == 4 and "rate 10Mbit" in q and "rate 20Mbit" in q, q
    assert "faces" in out["busy"][0] and out["busy"][1] == 16, out["busy"]  # EBUSY
    assert "qdisc tbf" not in out["qdiscs_after"], out["qdiscs_after"]
    assert out["veths_after"] == ""
    assert out["list_after"] == ["bridge"]
    assert leftovers(store) == []
    assert netns.ip("-o", "link", "show", "type", "veth") == ""


def test_network_none_a_network_by_name_and_a_missing_one(env, netns, tmp_path):
    store = tmp_path / "store"
    script = """
    s, root, rootfs = ARGS["store"], ARGS["root"], ARGS["rootfs"]
    out = {}
    with corral.Container(["sleep", "60"], rootfs=rootfs, root=root, id=ARGS["ids"][0], store=s,
                          networks=["bridge"], network="none") as c:
        out["none"] = c.networks
        out["links"] = c.exec(["ip", "-o", "link"], capture_output=True, text=True).stdout
    with corral.Container(["sleep", "60"], rootfs=rootfs, root=root, id=ARGS["ids"][2], store=s,
                          network="bridge") as c:
        out["by_name"] = c.networks
    try:
        corral.run(["true"], rootfs=rootfs, root=root, id=ARGS["ids"][1], store=s, network="nosuchnet")
    except corral.Error as e:
        out["missing"] = [type(e).__name__, str(e), e.errno]
    print(json.dumps(out))
    """
    out = netns.python(script, {"store": str(store), "root": str(env.root), "rootfs": env.rootfs,
                                "ids": [env.id(), env.id(), env.id()]})
    assert out["none"] == []
    # network=NAME is networks=[NAME].
    assert [(a["network"], a["ifname"]) for a in out["by_name"]] == [("bridge", "eth0")], out["by_name"]
    assert "eth0" not in out["links"], out["links"]
    cls, msg, err = out["missing"]
    assert cls == "NotFoundError" and "nosuchnet" in msg and err == 2, out["missing"]  # ENOENT
    assert leftovers(store) == []


BAD = [
    ({"ports": ["x:80"]}, corral.ConfigError, "ports[0]", '"x:80"'),
    ({"ports": [80, "80/sctp"]}, corral.ConfigError, "ports[1]", "protocol"),
    ({"ports": [70000]}, corral.ConfigError, "ports[0]", "1-65535"),
    ({"ports": "8080:80"}, TypeError, "ports", "not one str"),
    ({"ports": [8.5]}, TypeError, "ports[0]", "a str"),
    ({"ingress_rate": "fast"}, corral.ConfigError, "ingress_rate", "not a rate"),
    ({"egress_rate": 10}, corral.ConfigError, "egress_rate", "between 1kbit"),
    ({"egress_rate": "10mb"}, corral.ConfigError, "egress_rate", "unknown unit"),
    ({"ingress_rate": 1.5}, TypeError, "ingress_rate", "an int"),
    ({"networks": ["a/b"]}, corral.ConfigError, "networks[0]", "not a network name"),
    ({"networks": ["bridge", "-x"]}, corral.ConfigError, "networks[1]", "not a network name"),
    ({"network": "n" * 65}, corral.ConfigError, "network", "not a network name"),
    ({"networks": ["bridge", "bridge"]}, corral.ConfigError, "networks[1]", "twice"),
    ({"networks": "bridge"}, TypeError, "networks", "not one str"),
    ({"network": "n1", "networks": ["n2"]}, corral.ConfigError, "network", "both given"),
    ({"network": "host", "namespaces": {"network": "new"}}, corral.ConfigError, "network", "namespaces"),
    ({"network": 5}, TypeError, "network", "str"),
    ({"publish_all": 1}, TypeError, "publish_all", "bool"),
]


@pytest.mark.parametrize("kw,exc,arg,words", BAD, ids=[a for _, _, a, _ in BAD])
def test_bad_network_arguments_are_refused_by_name(env, kw, exc, arg, words):
    base = env.kw()
    base.update(kw)
    with pytest.raises(exc) as ei:
        corral.Container(**base)
    m = str(ei.value)
    assert m.startswith(arg + ":") and words in m, m
    if exc is corral.ConfigError:
        assert ei.value.errno == 22 and ei.value.path == arg
    assert not env.root.exists()


def test_network_arguments_with_a_bundle_or_a_pool_are_refused(env, tmp_path):
    with pytest.raises(corral.ConfigError, match="^networks: cannot be combined with bundle"):
        corral.Container(bundle=str(tmp_path), networks=["bridge"])
    with pytest.raises(corral.ConfigError, match="^networks: a pool's containers join no network"):
        corral.Pool(1, rootfs=env.rootfs, root=str(env.root), networks=["bridge"])
    assert not env.root.exists()


def test_bad_network_management_arguments(tmp_path):
    with pytest.raises(corral.ConfigError, match="^gateway: "):
        corral.network_create("n", store=tmp_path, gateway="nope")
    with pytest.raises(corral.ConfigError, match="^name: "):
        corral.network_create("a/b", store=tmp_path)
    with pytest.raises(corral.NotFoundError, match="nope"):
        corral.network_remove("nope", store=tmp_path)
    with pytest.raises(corral.ConfigError, match="default network"):
        corral.network_remove("bridge", store=tmp_path)


def test_publish_all_publishes_the_ports_an_image_exposes(env, netns, tmp_path):
    store = tmp_path / "store"
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM netbase:1\nEXPOSE 80/tcp\n")
    script = """
    s = ARGS["store"]
    st = corral.ImageStore(s)
    st.import_(ARGS["rootfs"], "netbase:1")
    st.build(ARGS["ctx"], tags=["netweb:1"])
    out = {}
    with corral.Container(["nc", "-ll", "-p", "80", "-e", "echo", "exposed"], image="netweb:1",
                          store=s, root=ARGS["root"], id=ARGS["id"], networks=["bridge"],
                          publish_all=True) as c:
        out["networks"] = c.networks
        port = out["networks"][0]["ports"][0]["host_port"]
        for _ in range(200):
            try:
                k = socket.create_connection(("127.0.0.1", port))
                break
            except ConnectionRefusedError:
                time.sleep(0.02)
        out["reply"] = k.makefile().read()
        k.close()
        out["hosts"] = c.exec(["cat", "/etc/hosts"], capture_output=True, text=True).stdout
    print(json.dumps(out))
    """
    out = netns.python(script, {"store": str(store), "root": str(env.root), "rootfs": env.rootfs,
                                "ctx": str(ctx), "id": env.id()})
    (a,) = out["networks"]
    (p,) = a["ports"]
    assert (p["host_ip"], p["container_port"], p["protocol"]) == (None, 80, "tcp"), a
    assert p["host_port"] > 0
    assert out["reply"] == "exposed\n"
    # Its /etc/hosts names it at its address.
    assert a["ips"][0].split("/")[0] in out["hosts"], out["hosts"]
    assert leftovers(store) == []

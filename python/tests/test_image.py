"""corral.Container(image=...): a container from an image of corral's image store."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import corral

CORRAL = Path(__file__).resolve().parents[2] / "target" / "debug" / "corral"


@pytest.fixture
def store(tmp_path: Path, rootfs: str) -> Path:
    """A store holding the test rootfs as the image `pybase:1` (imported by the CLI)."""
    s = tmp_path / "store"
    bin_ = os.environ.get("CORRAL_TEST_BIN", str(CORRAL))
    subprocess.run([bin_, "--store", str(s), "image", "import", rootfs, "pybase:1"],
                   check=True, capture_output=True)
    return s


def test_a_container_from_an_image_writes_only_its_own_layer(env, store):
    kw = env.kw(image="pybase:1", store=str(store), hostname="from-image",
                env={"GREETING": "hi"}, cwd="/tmp")
    del kw["rootfs"]
    r = corral.run(["sh", "-c", "echo $GREETING $(hostname) $(pwd); echo x > /written; cat /written"],
                   capture_output=True, **kw)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"hi from-image /tmp\nx\n"
    # Its record in the store went with it, and the image is untouched.
    assert not any((store / "containers").iterdir()) if (store / "containers").exists() else True
    kw["id"] = env.id()
    r = corral.run(["sh", "-c", "cat /written 2>/dev/null || echo absent"], capture_output=True, **kw)
    assert r.stdout == b"absent\n"


def test_a_missing_image_and_bad_combinations_raise(env, store):
    kw = env.kw(store=str(store))
    del kw["rootfs"]
    c = corral.Container(["true"], image="nope:1", **kw)
    with pytest.raises(corral.NotFoundError) as ei:
        c.create()
    assert "nope" in str(ei.value)
    with pytest.raises(corral.ConfigError) as ei:
        corral.Container(["true"], image="pybase:1", **env.kw(store=str(store)))
    assert ei.value.path == "rootfs"
    with pytest.raises(corral.ConfigError) as ei:
        corral.Container(["true"], image="Bad Name!", **kw)
    assert ei.value.path == "image"
    assert corral.list(env.root) == []


DOCKER_CAPS = 0xA80425FB


def _status(kw: dict, args: list) -> dict:
    r = corral.run(["sh", "-c", "grep -E '^(Seccomp|CapEff|NoNewPrivs):' /proc/self/status; " + " ".join(args)],
                   capture_output=True, **kw)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode() + r.stderr.decode()
    fields = dict(l.split(":\t", 1) for l in out.splitlines() if ":\t" in l)
    fields["out"] = out
    return fields


def test_a_container_from_an_image_gets_dockers_defaults(env, store):
    """Issue 16: docker's seccomp profile and capabilities, and no new user namespace."""
    kw = env.kw(image="pybase:1", store=str(store))
    del kw["rootfs"]
    f = _status(kw, ["busybox unshare -U -r -m sh -c 'mount -t tmpfs none /tmp && echo MOUNTED'; true"])
    assert f["Seccomp"] == "2", f["out"]
    assert int(f["CapEff"], 16) == DOCKER_CAPS, f["out"]
    assert f["NoNewPrivs"] == "0", f["out"]
    assert "MOUNTED" not in f["out"]
    assert "Operation not permitted" in f["out"]
    # seccomp=True is the default, not an error.
    f = _status(dict(kw, id=env.id(), seccomp=True), [])
    assert f["Seccomp"] == "2", f["out"]


def test_a_container_from_an_image_opts_out_by_name(env, store, tmp_path):
    kw = env.kw(image="pybase:1", store=str(store))
    del kw["rootfs"]
    f = _status(dict(kw, id=env.id(), seccomp=False), [])
    assert f["Seccomp"] == "0", f["out"]
    f = _status(dict(kw, id=env.id(), seccomp="unconfined"), [])
    assert f["Seccomp"] == "0", f["out"]
    f = _status(dict(kw, id=env.id(), security_opt=["seccomp=unconfined", "no-new-privileges"]), [])
    assert (f["Seccomp"], f["NoNewPrivs"]) == ("0", "1"), f["out"]
    f = _status(dict(kw, id=env.id(), cap_drop=["ALL"], cap_add=["NET_BIND_SERVICE"]), [])
    assert int(f["CapEff"], 16) == 1 << 10, f["out"]
    f = _status(dict(kw, id=env.id(), privileged=True), [])
    own = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("CapPrm:"))
    assert f["Seccomp"] == "0" and int(f["CapEff"], 16) == int(own.split()[1], 16), f["out"]
    profile = tmp_path / "profile.json"
    profile.write_text('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": '
                       '[{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}')
    f = _status(dict(kw, id=env.id(), seccomp=profile), ["mkdir /tmp/d || echo REFUSED"])
    assert f["Seccomp"] == "2" and "REFUSED" in f["out"], f["out"]
    f = _status(dict(kw, id=env.id(), devices=["/dev/null:/dev/othernull:rw"]), ["echo x > /dev/othernull && echo WROTE"])
    assert "WROTE" in f["out"], f["out"]
    for bad, path in [(dict(cap_add=["NOPE"]), "cap_add"), (dict(security_opt=["apparmor=x"]), "security_opt"),
                      (dict(devices=["/etc/passwd"]), "devices")]:
        with pytest.raises(corral.ConfigError) as ei:
            corral.Container(["true"], **dict(kw, id=env.id(), **bad))
        assert ei.value.path == path, str(ei.value)
    with pytest.raises(corral.ConfigError) as ei:
        corral.Container(["true"], **env.kw(privileged=True))
    assert ei.value.path == "privileged"
    assert corral.list(env.root) == []

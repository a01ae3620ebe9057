"""corral.Container(image=...): a container from an image of corral's image store, and the
store itself from Python (corral.ImageStore: import, build, tag, list, remove, prune)."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

import corral


@pytest.fixture
def store(tmp_path: Path, rootfs: str) -> Path:
    """A store holding the test rootfs as the image `pybase:1`."""
    s = tmp_path / "store"
    made = corral.ImageStore(s).import_(rootfs, "pybase:1")
    assert len(made) == 1 and made[0]["names"] == ["pybase:1"], made
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
    with pytest.raises(corral.ConfigError) as ei:
        corral.Pool(1, image="pybase:1", store=str(store), root=str(env.root))
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


def test_images_are_imported_tagged_listed_removed_and_pruned(store, tmp_path):
    s = corral.ImageStore(store)
    assert s.path == str(store) and corral.ImageStore(str(store)) == s
    [row] = s.list()
    assert (row["reference"], row["name"], row["tag"]) == ("pybase:1", "pybase", "1")
    assert row["id"].startswith("sha256:") and row["id"][7:19] == row["short_id"]
    assert row["size"] > 0
    s.tag("pybase:1", "pybase:other")
    s.tag(row["short_id"], "third")
    assert [r["reference"] for r in s.list()] == ["pybase:1", "pybase:other", "third:latest"]
    assert {r["id"] for r in s.list()} == {row["id"]}
    # A name of an image that keeps others goes alone; the last one takes the image along.
    assert s.remove("pybase:other") == {"untagged": ["pybase:other"], "deleted": []}
    assert s.remove("third") == {"untagged": ["third:latest"], "deleted": []}
    gone = s.remove("pybase:1")
    assert gone["untagged"] == ["pybase:1"] and row["id"] in gone["deleted"], gone
    assert s.list() == []
    report = s.prune()
    assert set(report) == {"layers", "blobs", "containers", "cache", "temp", "bytes"}
    assert all(isinstance(v, int) and v >= 0 for v in report.values()), report


def test_image_calls_refuse_bad_input_by_name(store, tmp_path):
    s = corral.ImageStore(store)
    with pytest.raises(corral.NotFoundError) as ei:
        s.tag("nope:1", "x:1")
    assert ei.value.step == "image" and "nope" in str(ei.value)
    with pytest.raises(corral.NotFoundError):
        s.remove("nope:1")
    with pytest.raises(corral.ConfigError) as ei:
        s.tag("pybase:1", "Bad Name!")
    assert ei.value.path == "target"
    with pytest.raises(corral.ImageError) as ei:
        s.import_(tmp_path / "no-such-dir", "x:1")
    assert ei.value.errno == errno.ENOENT and ei.value.path == str(tmp_path / "no-such-dir")
    with pytest.raises(corral.ConfigError) as ei:
        s.import_(tmp_path, "Bad Name!")
    assert ei.value.path == "name"
    with pytest.raises(TypeError, match="^path"):
        s.import_(5, "x:1")
    with pytest.raises(TypeError, match="^no_cache"):
        s.build(tmp_path, no_cache="yes")
    with pytest.raises(corral.ConfigError) as ei:
        s.build(tmp_path, network="bridge")
    assert ei.value.path == "network"
    with pytest.raises(TypeError, match="^progress"):
        s.build(tmp_path, progress=5)
    assert [r["reference"] for r in s.list()] == ["pybase:1"]


def test_an_image_is_built_with_progress_and_its_container_runs(env, store, tmp_path):
    s = corral.ImageStore(store)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "greeting.txt").write_text("hello from the context\n")
    (ctx / "Dockerfile").write_text(
        "FROM pybase:1\n"
        "ARG WHO=nobody\n"
        "COPY greeting.txt /greeting.txt\n"
        "RUN echo built-for-$WHO > /who\n"
        'CMD ["cat", "/greeting.txt", "/who"]\n'
    )
    events = []
    built = s.build(ctx, tags=["pyapp:1"], build_args={"WHO": "python"}, root=env.root,
                    progress=events.append)
    assert built["tags"] == ["pyapp:1"] and built["id"].startswith("sha256:")
    kinds = [e["event"] for e in events]
    assert kinds[0] == "step" and events[0]["n"] == 1 and events[0]["total"] == 5
    assert "running" in kinds and kinds[-2:] == ["built", "tagged"], kinds
    assert events[-1]["reference"] == "pyapp:1" and events[-1]["line"] == "Successfully tagged pyapp:1"
    assert events[-2]["id"] == built["short_id"]
    kw = env.kw(image="pyapp:1", store=s)
    del kw["rootfs"]
    r = corral.run(capture_output=True, **kw)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"hello from the context\nbuilt-for-python\n"
    # The same build again comes from the cache: the same image.
    events.clear()
    again = s.build(ctx, tags=["pyapp:1"], build_args={"WHO": "python"}, root=env.root,
                    progress=events.append)
    assert again["id"] == built["id"]
    assert "cached" in [e["event"] for e in events] and "running" not in [e["event"] for e in events]
    # An exception of progress is raised once the build is done.

    def boom(ev):
        raise KeyError("from progress")

    with pytest.raises(KeyError, match="from progress"):
        s.build(ctx, tags=["pyapp:2"], root=env.root, progress=boom)
    assert "pyapp:2" in [r["reference"] for r in s.list()]
    with pytest.raises(corral.ConfigError) as ei:
        s.build(ctx, dockerfile=ctx / "greeting.txt", root=env.root)
    assert "greeting.txt" in str(ei.value)


def test_an_image_container_keeps_every_limit(env, store):
    """Issue 17: memory_swap and cpu_shares were dropped for a container from an image."""
    kw = env.kw(image="pybase:1", store=str(store),
                limits=corral.Limits(memory="64M", memory_swap="128M", cpu_shares=512, pids=32))
    del kw["rootfs"]
    with corral.Container(["sleep", "60"], **kw) as c:
        cg = {l.split(":")[1]: l.split(":")[2] for l in Path(f"/proc/{c.pid}/cgroup").read_text().splitlines()}
        cpu = next(k for k in cg if "cpu" in k.split(",") or k == "cpu")
        mem = Path("/sys/fs/cgroup/memory") / cg["memory"].lstrip("/")
        assert (mem / "memory.limit_in_bytes").read_text().strip() == str(64 << 20)
        assert (mem / "memory.memsw.limit_in_bytes").read_text().strip() == str(128 << 20)
        cpu_dir = Path("/sys/fs/cgroup") / cpu / cg[cpu].lstrip("/")
        if not cpu_dir.exists():
            cpu_dir = Path("/sys/fs/cgroup/cpu") / cg[cpu].lstrip("/")
        assert (cpu_dir / "cpu.shares").read_text().strip() == "512"

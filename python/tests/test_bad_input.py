"""Bad input from Python: the matching exception, a message naming the argument, and nothing
left behind."""

from __future__ import annotations

import errno

import pytest

import corral
from conftest import open_fds


@pytest.fixture
def no_fd_leak():
    corral.Limits()  # lazy imports first
    before = open_fds()
    yield
    assert open_fds() == before


WRONG_TYPES = [
    ({"args": "echo hi"}, "args"),
    ({"args": ["echo", 1]}, "args[1]"),
    ({"env": {"A": 1}}, "env[\"A\"]"),
    ({"env": ["A=1"]}, "env"),
    ({"user": "root"}, "user"),
    ({"user": (0, "0")}, "user[1]"),
    ({"limits": {"memory": 1}}, "limits"),
    ({"mounts": ["/a:/b"]}, "mounts[0]"),
    ({"namespaces": ["network"]}, "namespaces"),
    ({"hostname": 5}, "hostname"),
    ({"cwd": 5}, "cwd"),
    ({"seccomp": "yes"}, "seccomp"),
    ({"id": 5}, "id"),
    ({"stdin": object()}, "stdin"),
    ({"stdout": 2.5}, "stdout"),
    ({"annotations": {"a": 1}}, "annotations[\"a\"]"),
]


@pytest.mark.parametrize("kw,arg", WRONG_TYPES, ids=[a for _, a in WRONG_TYPES])
def test_wrong_types_raise_type_error_naming_the_argument(env, no_fd_leak, kw, arg):
    base = env.kw()
    base.update(kw)
    with pytest.raises(TypeError) as ei:
        corral.Container(**base)
    assert str(ei.value).startswith(arg), str(ei.value)
    with pytest.raises(TypeError):
        corral.run(**base)
    assert not env.root.exists()


def test_limits_of_the_wrong_type(env):
    for kw, arg in [({"memory": [1]}, "memory"), ({"cpus": "half"}, "cpus"), ({"pids": 1.5}, "pids"),
                    ({"cpu_shares": "x"}, "cpu_shares"), ({"memory_swap": True}, "memory_swap")]:
        with pytest.raises(TypeError, match=f"^{arg}"):
            corral.Limits(**kw)
    with pytest.raises(TypeError):
        corral.Limits(64)  # keywords only


@pytest.mark.parametrize(
    "kw,arg",
    [
        ({"memory": -5}, "memory"),
        ({"memory": "-1M"}, "memory"),
        ({"memory": "lots"}, "memory"),
        ({"memory_swap": -7}, "memory_swap"),
        ({"pids": -3}, "pids"),
        ({"pids": 0}, "pids"),
        ({"cpus": -0.5}, "cpus"),
        ({"cpus": float("nan")}, "cpus"),
        ({"cpu_shares": 1}, "cpu_shares"),
    ],
)
def test_negative_or_bad_limits_are_config_errors_naming_the_limit(kw, arg):
    with pytest.raises(corral.ConfigError) as ei:
        corral.Limits(**kw)
    e = ei.value
    assert str(e).startswith(f"{arg}:"), str(e)
    assert e.path == arg and e.step == "config" and e.errno == errno.EINVAL
    assert isinstance(e, ValueError)


def test_a_missing_rootfs(env, no_fd_leak, tmp_path):
    missing = str(tmp_path / "no-such-rootfs")
    for make in (corral.Container, corral.run):
        with pytest.raises(corral.ConfigError) as ei:
            make(["true"], rootfs=missing, root=str(env.root), id=env.id(), capture_output=True) if make is corral.run \
                else make(["true"], rootfs=missing, root=str(env.root), id=env.id(), stdout=corral.PIPE)
        e = ei.value
        assert str(e).startswith("rootfs:") and missing in str(e)
        assert e.path == missing and e.errno == errno.ENOENT
    with pytest.raises(corral.ConfigError, match="^rootfs: missing"):
        corral.Container(["true"], root=str(env.root))
    with pytest.raises(corral.ConfigError, match="^bundle: give rootfs or bundle, not both"):
        corral.Container(["true"], rootfs=env.rootfs, bundle=env.rootfs)
    with pytest.raises(corral.ConfigError, match="^args: cannot be combined with bundle"):
        corral.Container(["true"], bundle=str(tmp_path))
    with pytest.raises(corral.ConfigError) as ei:
        corral.Container(bundle=str(tmp_path / "nope"))
    assert "nope" in str(ei.value)
    assert not env.root.exists()


@pytest.mark.parametrize(
    "kw,arg",
    [
        ({"args": []}, "args"),
        ({"env": {"A=B": "x"}}, "env"),
        ({"cwd": "relative"}, "cwd"),
        ({"namespaces": {"nett": "new"}}, 'namespaces["nett"]'),
        ({"namespaces": {"network": "sideways"}}, 'namespaces["network"]'),
        ({"user": -1}, "user"),
        ({"id": "../escape"}, "container id"),
        ({"id": ""}, "container id"),
        ({"stdout": -7}, "stdout"),
    ],
)
def test_bad_values_are_config_errors_naming_the_argument(env, no_fd_leak, kw, arg):
    base = env.kw()
    base.update(kw)
    with pytest.raises(corral.ConfigError) as ei:
        corral.Container(**base)
    assert str(ei.value).startswith(arg), str(ei.value)
    assert not env.root.exists()


def test_bad_arguments_of_methods(env):
    with corral.Container(["sleep", "60"], **env.kw()) as c:
        with pytest.raises(TypeError, match="^signal"):
            c.kill("TERM")
        with pytest.raises(corral.ConfigError, match="^signal"):
            c.kill(0)
        with pytest.raises(TypeError, match="^timeout"):
            c.wait(timeout="1")
        with pytest.raises(ValueError, match="^timeout"):
            c.wait(timeout=-1)
        with pytest.raises(TypeError, match="^limits"):
            c.update(limits={"memory": 1})
        with pytest.raises(corral.ConfigError, match="^memory"):
            c.update(memory=-1)
        with pytest.raises(TypeError, match="^args"):
            c.exec("ps")
        with pytest.raises(TypeError, match="^input"):
            c.exec(["cat"], input=5)
        assert c.state == "running"  # none of it touched the container


def test_a_missing_bind_source_is_refused_before_anything_is_made(env, no_fd_leak):
    with pytest.raises(corral.ConfigError) as ei:
        corral.run(["true"], mounts=[corral.Mount.bind("/no/such/source", "/mnt")], capture_output=True, **env.kw())
    assert "/no/such/source" in str(ei.value) and ei.value.path.startswith("mounts[")
    assert corral.list(env.root) == []


def test_a_failed_spawn_says_its_step_errno_and_path(env, no_fd_leak):
    with pytest.raises(corral.SpawnError) as ei:
        corral.run(["true"], mounts=[corral.Mount("/mnt", "none", type="nosuchfs")], capture_output=True, **env.kw())
    e = ei.value
    assert (e.step, e.errno) == ("mount", errno.ENODEV), e
    assert e.path is not None and e.path.startswith("/mnt"), e.path
    assert "/mnt" in str(e)
    assert corral.list(env.root) == []

"""corral.Pool: containers set up ahead, each running the program a take gives it."""

from __future__ import annotations

import os
import signal
import time

import pytest

import corral


def _ready(pool: corral.Pool, n: int) -> None:
    deadline = time.monotonic() + 30
    while pool.ready < n:
        assert time.monotonic() < deadline, f"the pool never had {n} ready"
        time.sleep(0.005)


def test_takes_run_the_callers_program_with_env_and_stdio(env):
    kw = env.kw(hostname="pooled", env={"FROM_POOL": "p"}, limits=corral.Limits(pids=16))
    del kw["id"]
    with corral.Pool(2, id_prefix=env.tag, **kw) as pool:
        _ready(pool, 2)
        assert len(corral.list(env.root)) == 2  # they wait, created
        for i in range(4):
            c = pool.take(
                ["sh", "-c", "echo $$ $(hostname) $FROM_POOL $ROUND; exit 3"],
                env={"ROUND": str(i)},
                stdout=corral.PIPE,
                wait=bool(i % 2),
            )
            assert c.id.startswith(env.tag)
            out = c.stdout.read()
            assert c.wait() == 3
            assert out == f"1 pooled p {i}\n".encode()
            assert list(c.timings)[-1] == "start"
            c.delete()
        # A long one, killed and deleted by its handle as any container.
        c = pool.take(["sleep", "60"])
        assert c.state == "running"
        c.kill()
        assert c.wait() == -signal.SIGKILL
        c.delete()
        _ready(pool, 2)
    # Closing removed the waiting ones.
    assert corral.list(env.root) == []


def test_bad_takes_and_pools_raise_the_matching_error(env):
    kw = env.kw()
    del kw["id"]
    with corral.Pool(1, id_prefix=env.tag, **kw) as pool:
        with pytest.raises(corral.SpawnError) as ei:
            pool.take(["/no/such/program"])
        assert ei.value.errno == 2 and ei.value.path == "/no/such/program"
        with pytest.raises(corral.ConfigError) as ei:
            pool.take([])
        assert ei.value.path == "args"
        with pytest.raises(TypeError):
            pool.take("true", stdout=True)
    with pytest.raises(TypeError):
        corral.Pool(2, args=["true"], **kw)
    with pytest.raises(corral.ConfigError) as ei:
        corral.Pool(0, id_prefix=env.tag, **kw)
    assert ei.value.path == "size"
    with pytest.raises(corral.ConfigError):
        corral.Pool(1, id_prefix=env.tag, hostname="x", namespaces={"uts": "host"}, **kw)
    assert corral.list(env.root) == []


def test_a_forked_child_leaves_the_parents_pool_alone(env):
    kw = env.kw()
    del kw["id"]
    with corral.Pool(1, id_prefix=env.tag, **kw) as pool:
        _ready(pool, 1)
        pid = os.fork()
        if pid == 0:
            # The child may not use the parent's pool, and dropping it must not tear it down.
            try:
                pool.take(["true"])
                os._exit(1)
            except corral.ConfigError:
                pass
            del pool
            os._exit(0)
        _, st = os.waitpid(pid, 0)
        assert os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0
        c = pool.take(["true"], wait=True)
        assert c.wait() == 0
        c.delete()

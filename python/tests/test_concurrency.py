"""Threads, os.fork() and asyncio: many containers at once, no deadlock, nothing leaked."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import corral
from conftest import cgroup_dirs_with, open_fds

THREADS = 8
CONTAINERS = 1000


def children_of_me():
    me = str(os.getpid())
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            if stat[stat.rfind(")") + 2 :].split()[1] == me:
                out.append(pid)
    return out


def rss_kib():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def mount_count():
    return len(Path("/proc/self/mountinfo").read_text().splitlines())


@pytest.mark.timeout(600)
def test_eight_threads_spawn_a_thousand_containers(env):
    corral.run(["true"], capture_output=True, **env.kw())  # lazy imports and first-use costs
    fds, mounts, threads, rss = open_fds(), mount_count(), threading.active_count(), rss_kib()
    errors = []
    done = [0] * THREADS

    def worker(n):
        try:
            for i in range(CONTAINERS // THREADS):
                r = corral.run(
                    ["sh", "-c", f"echo {n}-{i}; exit {i % 7}"],
                    capture_output=True,
                    rootfs=env.rootfs,
                    root=str(env.root),
                    id=f"{env.tag}-t{n}-{i}",
                    limits=corral.Limits(pids=16) if i % 2 else None,
                )
                assert (r.returncode, r.stdout) == (i % 7, f"{n}-{i}\n".encode()), r
                done[n] += 1
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    ts = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    t0 = time.monotonic()
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=max(1.0, 540 - (time.monotonic() - t0)))
    stuck = [t.name for t in ts if t.is_alive()]
    assert not stuck, f"deadlock: threads {stuck} still running after {time.monotonic() - t0:.0f}s, done {done}"
    assert not errors, errors[:3]
    assert sum(done) == CONTAINERS
    grown = rss_kib() - rss
    print(f"\n{CONTAINERS} containers from {THREADS} threads in {time.monotonic() - t0:.1f}s, RSS +{grown} KiB")
    # Nothing leaked: fds, mounts, threads, children, cgroups, state dirs.
    assert open_fds() == fds
    assert mount_count() == mounts
    assert threading.active_count() == threads
    assert children_of_me() == []
    assert cgroup_dirs_with(env.tag) == []
    assert os.listdir(env.root) == []
    # Memory: the thread stacks and allocator arenas of 8 threads, not 1,000 containers' worth.
    assert grown < 32 * 1024, f"RSS grew by {grown} KiB"


def test_fork_after_import_works_in_the_child(env):
    kw = dict(rootfs=env.rootfs, root=str(env.root))
    stop = threading.Event()

    def busy():  # another thread inside corral while the process forks
        while not stop.is_set():
            corral.run(["true"], id=env.id("busy"), **kw)

    with corral.Container(["sleep", "60"], id=env.id("parent"), **kw) as mine:
        t = threading.Thread(target=busy)
        t.start()
        try:
            time.sleep(0.05)
            pid = os.fork()
            if pid == 0:  # the child: run a container, drop the parent's handle, exit
                code = 100
                try:
                    r = corral.run(["sh", "-c", "exit 7"], id=env.id("child"), **kw)
                    ids = [s.id for s in corral.list(env.root)]
                    code = r.returncode if mine.id in ids else 101
                finally:
                    os._exit(code)
            _, status = os.waitpid(pid, 0)
        finally:
            stop.set()
            t.join(30)
        assert os.waitstatus_to_exitcode(status) == 7
        assert mine.state == "running"  # the child's copy of the handle left it alone


def test_a_program_that_forks_after_import(env, tmp_path):
    # A separate program: its child exits normally (atexit and finalisers run there) and must
    # leave the parent's container alone.
    script = tmp_path / "forker.py"
    script.write_text(textwrap.dedent(f"""
        import os, sys
        import corral
        kw = dict(rootfs={env.rootfs!r}, root={str(env.root)!r})
        c = corral.Container(["sleep", "60"], id={env.id("p")!r}, **kw)
        c.create(); c.start()
        pid = os.fork()
        if pid == 0:
            r = corral.run(["sh", "-c", "echo child-ran"], id={env.id("k")!r}, capture_output=True, **kw)
            assert r.stdout == b"child-ran\\n", r
            sys.exit(0)  # normal exit: atexit runs, the copied handle is finalised
        _, st = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(st) == 0, st
        assert c.state == "running", c.state
        c.kill(); print(c.wait())
        c.delete()
        print("ok")
    """))
    pypath = str(Path(corral.__file__).resolve().parent.parent)
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": pypath})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["-9", "ok"]


def test_a_container_made_by_another_process_has_no_known_status(env):
    # Created and detached by a forked child that then exits: loaded here, it is not our
    # child, so wait says None (unknown), and delete removes it.
    cid = env.id()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            c = corral.Container(["sleep", "60"], rootfs=env.rootfs, root=str(env.root), id=cid)
            c.create()
            c.start()
            c.detach()
            code = 0
        finally:
            os._exit(code)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    c = corral.Container.load(cid, root=str(env.root))
    assert c.state == "running"
    c.kill()
    assert c.wait(timeout=10) is None and c.returncode is None
    c.delete()


def test_asyncio_awaits_fifty_containers_in_one_loop(env):
    n = 50

    async def main():
        threads = threading.active_count()
        cs = [corral.Container(["sh", "-c", f"sleep 0.3; exit {i % 5}"], **env.kw()) for i in range(n)]
        for c in cs:
            c.create()
            c.start()
        ticks = 0
        most_threads = threads

        async def ticker():
            nonlocal ticks, most_threads
            while True:
                ticks += 1
                most_threads = max(most_threads, threading.active_count())
                await asyncio.sleep(0.01)

        tick = asyncio.ensure_future(ticker())
        codes = await asyncio.gather(*(c.wait_async(timeout=30) for c in cs))
        tick.cancel()
        for c in cs:
            c.delete()
        return codes, ticks, most_threads, threads

    codes, ticks, most_threads, threads = asyncio.run(main())
    assert codes == [i % 5 for i in range(n)]
    assert ticks >= 5  # the loop kept running while they ran
    assert most_threads == threads  # no thread per container (nor any other)


def test_wait_async_timeout(env):
    async def main():
        with corral.Container(["sleep", "60"], **env.kw()) as c:
            with pytest.raises(corral.TimeoutExpired):
                await c.wait_async(timeout=0.1)
            p = c.exec_process(["sh", "-c", "exit 3"])
            assert await p.wait_async() == 3
            c.kill()
            return await c.wait_async()

    assert asyncio.run(main()) == -9


def test_wait_async_reaps_exec_processes_nobody_waits_for(env):
    async def main():
        with corral.Container(["sh", "-c", "sleep 0.3"], **env.kw()) as c:
            p = c.exec_process(["sleep", "60"])
            code = await c.wait_async(timeout=10)
            return code, p.poll()

    assert asyncio.run(main()) == (0, -9)

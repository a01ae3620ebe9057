"""corral.Container: every method and property, against real containers."""

from __future__ import annotations

import errno
import os
import signal
import stat
import threading
import time
from pathlib import Path

import pytest

import corral


def test_life_of_a_container(env):
    c = corral.Container(["sleep", "60"], **env.kw())
    assert c.state == "new" and c.pid == 0 and c.returncode is None
    c.create()
    assert c.state == "created" and c.pid > 0
    assert [s.status for s in corral.list(env.root)] == ["created"]
    assert list(c.timings) == list(corral.PHASES[:-1])  # no start yet
    c.start()
    assert c.state == "running"
    assert list(c.timings) == list(corral.PHASES)
    st = c.oci_state()
    assert st["id"] == c.id and st["status"] == "running" and st["pid"] == c.pid
    assert c.poll() is None
    with pytest.raises(corral.TimeoutExpired):
        c.wait(timeout=0.05)
    c.pause()
    assert c.state == "paused"
    assert corral.list(env.root)[0].status == "paused"
    c.resume()
    assert c.state == "running"
    c.kill()  # SIGKILL by default
    assert c.wait() == -signal.SIGKILL and c.signal == signal.SIGKILL
    assert c.state == "stopped" and c.returncode == -9
    c.delete()
    assert c.state == "deleted"
    assert corral.list(env.root) == []
    c.delete()  # twice: nothing


def test_wait_returns_the_exit_code(env):
    c = corral.Container(["sh", "-c", "exit 42"], **env.kw())
    c.create()
    c.start()
    assert c.wait(timeout=10) == 42
    assert c.returncode == 42 and c.signal is None
    c.delete()


def test_context_manager_creates_starts_and_deletes(env):
    with corral.Container(["sleep", "60"], **env.kw()) as c:
        assert c.state == "running"
        pid = c.pid
    assert c.state == "deleted"
    assert not os.path.exists(f"/proc/{pid}") or Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    assert corral.list(env.root) == []


def test_context_manager_deletes_when_the_body_raises(env):
    with pytest.raises(RuntimeError):
        with corral.Container(["sleep", "60"], **env.kw()) as c:
            raise RuntimeError("boom")
    assert c.state == "deleted"


def test_what_the_container_is_given_it_sees(env, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "f").write_text("host file\n")
    r = corral.run(
        ["sh", "-c", "echo $GREETING; pwd; id -u; id -g; cat /data/f; touch /data/x; echo $?; mount | grep -c ' /scratch '"],
        env={"GREETING": "hello"},
        cwd="/tmp",
        user=(1000, 1001),
        mounts=[corral.Mount.bind(str(data), "/data", readonly=True), corral.Mount.tmpfs("/scratch")],
        capture_output=True,
        text=True,
        **env.kw(),
    )
    lines = r.stdout.split("\n")
    assert lines[:5] == ["hello", "/tmp", "1000", "1001", "host file"], r
    assert lines[5] != "0"  # read-only bind
    assert lines[6] == "1"
    assert not (data / "x").exists()


def test_namespaces_new_host_and_joined(env):
    host = corral.run(["ls", "/sys/class/net"], namespaces={"network": "host"}, capture_output=True, text=True, **env.kw())
    assert set(host.stdout.split()) == set(os.listdir("/sys/class/net"))
    own = corral.run(["ls", "/sys/class/net"], capture_output=True, text=True, **env.kw())
    assert own.stdout.split() == ["lo"]
    with corral.Container(["sleep", "60"], hostname="first", **env.kw()) as first:
        joined = corral.run(
            ["hostname"],
            namespaces={"uts": f"/proc/{first.pid}/ns/uts"},
            capture_output=True,
            text=True,
            **env.kw(),
        )
        assert joined.stdout == "first\n"


def test_limits_hold_inside_and_update_changes_them(env):
    lim = corral.Limits(memory="64M", pids=16, cpus=0.5)
    assert (lim.memory, lim.pids, lim.cpus) == (64 << 20, 16, 0.5)
    with corral.Container(["sleep", "60"], limits=lim, **env.kw()) as c:
        s = c.stats()
        assert s["memory_limit"] == 64 << 20 and s["pids_limit"] == 16
        assert s["pids_current"] == 1
        cg = c.exec(
            ["sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max "
             "/sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max"],
            capture_output=True,
            text=True,
        ).stdout.split()
        assert cg[:2] == [str(64 << 20), "16"], cg
        c.update(corral.Limits(memory="128M"))
        c.update(pids=32)
        s = c.stats()
        assert s["memory_limit"] == 128 << 20 and s["pids_limit"] == 32
        # The new pids limit holds: the fork past it fails inside (and the shell gives up).
        r = c.exec(["sh", "-c", "for i in $(seq 40); do sleep 1 >/dev/null 2>&1 & done"], capture_output=True, text=True)
        assert r.returncode == 2 and "can't fork" in r.stderr, r
        assert 30 <= c.stats()["pids_current"] <= 32


def test_exec_runs_in_the_container(env):
    with corral.Container(["sleep", "60"], hostname="inner", **env.kw()) as c:
        r = c.exec(["sh", "-c", "hostname; echo $X; pwd; cat"], env={"X": "y"}, cwd="/etc", input=b"in", capture_output=True)
        assert r.stdout == b"inner\ny\n/etc\nin" and r.returncode == 0
        assert r.id == c.id and r.timings == {}
        assert c.exec(["sh", "-c", "exit 5"]).returncode == 5
        with pytest.raises(corral.CalledProcessError):
            c.exec(["false"], check=True)
        with pytest.raises(corral.TimeoutExpired):
            c.exec(["sleep", "60"], timeout=0.2)
        p = c.exec_process(["sh", "-c", "read x; echo got $x"], stdin=corral.PIPE, stdout=corral.PIPE)
        assert p.pid > 0 and p.poll() is None
        out, err = p.communicate(b"it\n", timeout=10)
        assert out == b"got it\n" and err is None and p.returncode == 0
        p = c.exec_process(["sleep", "60"])
        p.kill()
        assert p.wait(timeout=10) == -9 and p.signal == 9
        assert sorted(c.pids()) == [c.pid]


def test_kill_all_reaches_every_process(env):
    with corral.Container(["sh", "-c", "sleep 60 & sleep 60 & wait"], **env.kw()) as c:
        deadline = time.monotonic() + 5
        while len(c.pids()) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(c.pids()) == 3
        c.kill(signal.SIGKILL, all=True)
        assert c.wait(timeout=10) == -9


def test_detach_then_load_from_another_handle(env):
    c = corral.Container(["sleep", "60"], **env.kw())
    c.create()
    c.start()
    cid, pid = c.id, c.pid
    c.detach()
    assert c.state == "detached"
    del c
    assert os.path.exists(f"/proc/{pid}")
    assert [(s.id, s.status, s.pid) for s in corral.list(env.root)] == [(cid, "running", pid)]
    d = corral.Container.load(cid, root=str(env.root))
    assert d.id == cid and d.pid == pid and d.state == "running"
    with pytest.raises(corral.StateError) as ei:
        d.delete()
    assert ei.value.errno == errno.EBUSY and ei.value.step == "state"
    d.kill()
    assert d.wait(timeout=10) == -9  # still our child: waited for (reaped) as one
    d.delete()
    assert corral.list(env.root) == []


def test_a_missing_container_is_not_found(env):
    with pytest.raises(corral.NotFoundError) as ei:
        corral.Container.load(env.id(), root=str(env.root))
    assert ei.value.errno == errno.ENOENT and isinstance(ei.value, LookupError)


def test_calls_in_the_wrong_state(env):
    c = corral.Container(["sleep", "60"], **env.kw())
    with pytest.raises(corral.StateError, match="not created yet"):
        c.start()
    with pytest.raises(corral.StateError):
        c.kill()
    c.create()
    with pytest.raises(corral.StateError, match="already created"):
        c.create()
    with pytest.raises(corral.StateError):
        c.exec(["true"])  # created, not running
    c.start()
    with pytest.raises(corral.StateError) as ei:
        c.start()
    assert ei.value.step == "state"
    with pytest.raises(corral.StateError):
        c.resume()  # running, not paused
    c.delete(force=True)
    with pytest.raises(corral.StateError, match="deleted"):
        c.kill()


def test_an_id_that_is_taken(env):
    cid = env.id()
    with corral.Container(["sleep", "60"], rootfs=env.rootfs, root=str(env.root), id=cid):
        with pytest.raises(corral.StateError, match="already exists") as ei:
            corral.run(["true"], rootfs=env.rootfs, root=str(env.root), id=cid)
        assert ei.value.errno == errno.EEXIST
    assert corral.list(env.root) == []


def test_a_created_container_can_be_waited_for_and_deleted(env):
    c = corral.Container(["true"], **env.kw())
    c.create()
    with pytest.raises(corral.TimeoutExpired):
        c.wait(timeout=0.05)
    c.delete()  # at its start gate: killed and removed
    assert corral.list(env.root) == []


def test_wait_in_one_thread_kill_from_another(env):
    with corral.Container(["sleep", "60"], **env.kw()) as c:
        got = []
        t = threading.Thread(target=lambda: got.append(c.wait()))
        t.start()
        time.sleep(0.1)
        assert t.is_alive()  # waiting, without holding anything kill needs
        c.kill()
        t.join(10)
        assert got == [-9]


def test_delete_from_another_thread_ends_a_wait(env):
    c = corral.Container(["sleep", "60"], **env.kw())
    c.create()
    c.start()
    got = []
    t = threading.Thread(target=lambda: got.append(c.wait()))
    t.start()
    time.sleep(0.1)
    c.delete(force=True)
    t.join(10)
    assert not t.is_alive() and got == [-9]


def test_a_handle_that_is_dropped_removes_its_container(env):
    c = corral.Container(["sleep", "60"], **env.kw())
    c.create()
    c.start()
    del c
    import gc

    gc.collect()
    assert corral.list(env.root) == []


def test_repr_and_help_read_well(env):
    c = corral.Container(["true"], **env.kw())
    assert repr(c) == f"<corral.Container id={c.id!r} state='new' pid=0>"
    assert repr(corral.Limits(memory=8 << 20, pids=3)) == "Limits(memory=8388608, pids=3)"
    assert "subprocess" in corral.__doc__
    for obj in (corral.run, corral.Container, corral.Container.create, corral.Container.wait_async,
                corral.Limits, corral.Mount, corral.Mount.bind, corral.list, corral.Error,
                corral.SpawnError, corral.TimeoutExpired):
        assert obj.__doc__ and len(obj.__doc__) > 20, obj


def test_a_signal_handler_runs_while_wait_blocks(env):
    # Ctrl-C's path: a signal for the main thread ends the wait's poll, Python runs its handler
    # (here one that raises), and the exception comes out of wait().
    class Interrupted(Exception):
        pass

    def handler(signum, frame):
        raise Interrupted()

    old = signal.signal(signal.SIGUSR1, handler)
    try:
        with corral.Container(["sleep", "60"], **env.kw()) as c:
            main = threading.get_ident()
            timer = threading.Timer(0.2, signal.pthread_kill, (main, signal.SIGUSR1))
            timer.start()
            with pytest.raises(Interrupted):
                c.wait()
            timer.join()
            assert c.state == "running"
    finally:
        signal.signal(signal.SIGUSR1, old)


def test_an_exec_handle_dropped_while_it_runs_is_reaped_by_delete(env):
    from test_concurrency import children_of_me

    with corral.Container(["sleep", "60"], **env.kw()) as c:
        p = c.exec_process(["sleep", "60"])
        pid = p.pid
        del p
        import gc

        gc.collect()
        assert str(pid) in children_of_me()
    assert children_of_me() == []  # killed with its container, and reaped: no zombie


def test_the_init_exits_while_an_exec_handle_waits_for_nobody(env):
    # The init of a pid namespace finishes exiting only once every process in it is reaped:
    # the container's wait reaps the exec'd one (killed by the kernel) on the way.
    with corral.Container(["sh", "-c", "sleep 0.3"], **env.kw()) as c:
        p = c.exec_process(["sleep", "60"])
        assert c.wait(timeout=10) == 0
        assert p.poll() == -9 and p.signal == 9


def _block_device() -> str:
    """A block device of the host (the loop devices are there on any Linux with loop)."""
    for name in sorted(os.listdir("/dev")):
        p = f"/dev/{name}"
        try:
            if stat.S_ISBLK(os.stat(p).st_mode):
                return p
        except OSError:
            continue
    raise AssertionError("no block device under /dev")


def _blkio_file(pid: int, name: str) -> str:
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, ctrls, path = line.split(":", 2)
        if "blkio" in ctrls.split(","):
            return (Path("/sys/fs/cgroup/blkio") / path.lstrip("/") / f"blkio.{name}").read_text()
        if ctrls == "":
            v2 = Path("/sys/fs/cgroup") / path.lstrip("/") / "io.max"
            if v2.exists():
                return v2.read_text()
    raise AssertionError("no blkio cgroup")


def test_block_io_limits_are_set_per_device_and_updated(env):
    dev = _block_device()
    rdev = os.stat(dev).st_rdev
    mm = f"{os.major(rdev)}:{os.minor(rdev)}"
    lim = corral.Limits(device_read_bps={dev: "1M"}, device_write_bps={dev: 2 << 20},
                        device_read_iops={dev: 100}, device_write_iops={dev: 200})
    assert lim.device_read_bps == {dev: 1 << 20} and lim.device_write_bps == {dev: 2 << 20}
    assert (lim.device_read_iops, lim.device_write_iops) == ({dev: 100}, {dev: 200})
    assert lim.blkio_weight is None and f"device_read_bps={{'{dev}': 1048576}}" in repr(lim)
    with corral.Container(["sleep", "60"], limits=lim, **env.kw()) as c:
        v1 = not Path("/sys/fs/cgroup/cgroup.controllers").exists()
        if v1:
            assert f"{mm} {1 << 20}" in _blkio_file(c.pid, "throttle.read_bps_device")
            assert f"{mm} {2 << 20}" in _blkio_file(c.pid, "throttle.write_bps_device")
            assert f"{mm} 100" in _blkio_file(c.pid, "throttle.read_iops_device")
            assert f"{mm} 200" in _blkio_file(c.pid, "throttle.write_iops_device")
        else:
            io = _blkio_file(c.pid, "")
            assert f"{mm} rbps={1 << 20} wbps={2 << 20} riops=100 wiops=200" in io, io
        c.update(device_read_bps={dev: "3M"})
        if v1:
            assert f"{mm} {3 << 20}" in _blkio_file(c.pid, "throttle.read_bps_device")
        else:
            assert f"rbps={3 << 20}" in _blkio_file(c.pid, "")


def test_bad_block_io_limits_are_config_errors_naming_the_limit(tmp_path):
    dev = _block_device()
    for kw, arg in [({"blkio_weight": 5}, "blkio_weight"), ({"blkio_weight": 70000}, "blkio_weight"),
                    ({"device_read_bps": {dev: 0}}, f"device_read_bps[{dev!r}]".replace("'", '"')),
                    ({"device_write_bps": {dev: "lots"}}, f"device_write_bps[{dev!r}]".replace("'", '"')),
                    ({"device_read_iops": {dev: -1}}, f"device_read_iops[{dev!r}]".replace("'", '"')),
                    ({"device_write_iops": {"/dev/null": 5}}, "device_write_iops"),
                    ({"device_read_bps": {str(tmp_path / "nope"): 5}}, "device_read_bps")]:
        with pytest.raises(corral.ConfigError) as ei:
            corral.Limits(**kw)
        assert str(ei.value).startswith(f"{arg}:"), (kw, str(ei.value))
    for kw, arg in [({"device_read_bps": [dev]}, "device_read_bps"), ({"blkio_weight": "heavy"}, "blkio_weight"),
                    ({"device_read_iops": {dev: "1M"}}, "device_read_iops")]:
        with pytest.raises(TypeError, match=f"^{arg}"):
            corral.Limits(**kw)


def test_a_warning_of_the_runtime_is_a_python_warning(env, tmp_path):
    """Issue 17: Container::warnings() reached no face. A failed startContainer hook is one
    (start succeeds as runc's does; the program does not run)."""
    import json
    import shutil
    import warnings

    bundle = tmp_path / "bundle"
    shutil.copytree(env.rootfs, bundle / "rootfs", symlinks=True)
    config = {
        "ociVersion": "1.0.2",
        "process": {"args": ["sh", "-c", "echo ran > /dev/null"], "cwd": "/", "user": {"uid": 0, "gid": 0},
                    "env": ["PATH=/bin"]},
        "root": {"path": "rootfs", "readonly": True},
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
        "hooks": {"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "echo nope; exit 4"]}]},
        "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]},
    }
    (bundle / "config.json").write_text(json.dumps(config))
    c = corral.Container(bundle=str(bundle), root=str(env.root), id=env.id())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        c.create()
        assert caught == []
        c.start()
    try:
        assert [w.category for w in caught] == [corral.CorralWarning], [str(w.message) for w in caught]
        msg = str(caught[0].message)
        assert "error running hook #0" in msg and "nope" in msg and c.id in msg, msg
        assert issubclass(corral.CorralWarning, RuntimeWarning)
        assert c.wait() == 127
    finally:
        c.delete(force=True)
    # A filter that makes them errors raises them.
    c = corral.Container(bundle=str(bundle), root=str(env.root), id=env.id())
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", corral.CorralWarning)
            c.create()
            with pytest.raises(corral.CorralWarning):
                c.start()
    finally:
        c.delete(force=True)

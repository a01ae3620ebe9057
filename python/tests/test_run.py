"""corral.run: the shape of subprocess.run, against real containers."""

from __future__ import annotations

import errno
import os
import signal
import tempfile

import pytest

import corral


def test_exit_code_stdout_stderr_and_timings(env):
    r = corral.run(["sh", "-c", "echo out; echo err >&2; exit 7"], capture_output=True, **env.kw())
    assert r.returncode == 7
    assert r.signal is None
    assert r.stdout == b"out\n"
    assert r.stderr == b"err\n"
    assert r.id.startswith(env.tag)
    # Every phase of the spawn, in order, each a duration in seconds.
    assert list(r.timings) == list(corral.PHASES)
    assert all(isinstance(v, float) and 0 <= v < 30 for v in r.timings.values())
    assert r.timings["clone"] > 0 and r.timings["start"] > 0


def test_the_container_sees_its_own_pid_namespace_and_hostname(env):
    r = corral.run(["sh", "-c", "echo $$; hostname"], hostname="pybox", capture_output=True, text=True, **env.kw())
    assert r.stdout.split() == ["1", "pybox"]


def test_input_is_fed_to_stdin(env):
    data = os.urandom(300_000)  # more than a pipe holds: written as the container reads
    r = corral.run(["cat"], input=data, capture_output=True, **env.kw())
    assert r.returncode == 0 and r.stdout == data


def test_text_mode(env):
    r = corral.run(["cat"], input="héllo", capture_output=True, text=True, **env.kw())
    assert r.stdout == "héllo"


def test_stdout_to_a_file_and_stderr_to_stdout(env, tmp_path):
    out = tmp_path / "out"
    with open(out, "wb") as f:
        r = corral.run(["sh", "-c", "echo a; echo b >&2"], stdout=f, stderr=corral.STDOUT, **env.kw())
    assert r.returncode == 0 and r.stdout is None
    assert out.read_bytes() == b"a\nb\n"


def test_stdin_from_a_file_descriptor_and_devnull(env, tmp_path):
    src = tmp_path / "in"
    src.write_bytes(b"from a file\n")
    fd = os.open(src, os.O_RDONLY)
    try:
        r = corral.run(["cat"], stdin=fd, stdout=corral.PIPE, stderr=corral.DEVNULL, **env.kw())
    finally:
        os.close(fd)
    assert r.stdout == b"from a file\n" and r.stderr is None
    r = corral.run(["cat"], stdin=corral.DEVNULL, capture_output=True, **env.kw())
    assert r.stdout == b""


def test_check_raises_with_the_exit_code(env):
    with pytest.raises(corral.CalledProcessError) as ei:
        corral.run(["sh", "-c", "echo partial; exit 3"], capture_output=True, check=True, **env.kw())
    e = ei.value
    assert isinstance(e, corral.Error)
    assert e.returncode == 3 and e.stdout == b"partial\n" and e.signal is None
    assert "exited with 3" in str(e)
    corral.run(["true"], check=True, **env.kw())  # 0: no exception


def test_a_signal_that_kills_it_is_a_negative_returncode(env):
    # Not pid 1 of a namespace of its own (an init cannot be killed from inside it).
    host_pid = {"pid": "host"}
    r = corral.run(["sh", "-c", "kill -9 $$"], namespaces=host_pid, **env.kw())
    assert r.returncode == -signal.SIGKILL and r.signal == signal.SIGKILL
    with pytest.raises(corral.CalledProcessError, match="signal 9"):
        corral.run(["sh", "-c", "kill -9 $$"], namespaces=host_pid, check=True, **env.kw())


def test_timeout_kills_everything_and_removes_the_container(env):
    with pytest.raises(corral.TimeoutExpired) as ei:
        corral.run(
            ["sh", "-c", "echo started; sleep 60 & sleep 60"],
            capture_output=True,
            timeout=0.5,
            **env.kw(),
        )
    e = ei.value
    assert isinstance(e, corral.Error) and isinstance(e, TimeoutError)
    assert e.timeout == 0.5 and e.errno == errno.ETIMEDOUT and e.step == "wait"
    assert e.stdout == b"started\n"
    assert corral.list(env.root) == []  # the env fixture also checks cgroups and processes


def test_args_from_a_bundle(env, tmp_path):
    import json
    import shutil

    bundle = tmp_path / "bundle"
    shutil.copytree(env.rootfs, bundle / "rootfs", symlinks=True)
    spec = {
        "ociVersion": "1.2.0",
        "process": {
            "args": ["sh", "-c", "echo from-bundle"],
            "cwd": "/",
            "env": ["PATH=/bin"],
            "user": {"uid": 0, "gid": 0},
        },
        "root": {"path": "rootfs", "readonly": True},
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
        "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}]},
    }
    (bundle / "config.json").write_text(json.dumps(spec))
    r = corral.run(bundle=str(bundle), capture_output=True, root=str(env.root), id=env.id())
    assert r.stdout == b"from-bundle\n"


def test_an_executable_that_is_missing_is_a_spawn_error_naming_it(env):
    with pytest.raises(corral.SpawnError) as ei:
        corral.run(["/no/such/program"], **env.kw())
    e = ei.value
    assert e.step == "exec" and e.errno == errno.ENOENT
    assert "/no/such/program" in str(e)
    assert corral.list(env.root) == []


def test_run_without_a_state_root_uses_the_default(rootfs):
    # The state lives under /run/corral (the default), and is gone after the run.
    r = corral.run(["true"], rootfs=rootfs)
    assert r.returncode == 0
    assert not os.path.exists(os.path.join(corral.default_root(), r.id))


def test_stdin_and_input_together_are_refused(env):
    with pytest.raises(ValueError, match="stdin and input"):
        corral.run(["cat"], stdin=corral.DEVNULL, input=b"x", **env.kw())
    with pytest.raises(ValueError, match="capture_output"):
        corral.run(["cat"], stdout=corral.PIPE, capture_output=True, **env.kw())


def test_no_fd_is_left_open(env):
    from conftest import open_fds

    corral.run(["true"], capture_output=True, input=b"x", **env.kw())  # warm up lazy imports
    before = open_fds()
    for _ in range(5):
        corral.run(["cat"], capture_output=True, input=b"x", **env.kw())
        with tempfile.TemporaryFile() as f:
            corral.run(["echo"], stdout=f, **env.kw())
    assert open_fds() == before

"""The limits docker has as run flags, as corral.Limits keywords: seen inside a container of
an image (docker's default open files limit kept under limits set whole) and refused in
docker's words, checked against the host, before anything is made."""

from __future__ import annotations

import os
import resource
from pathlib import Path

import pytest

import corral


@pytest.fixture
def store(tmp_path: Path, rootfs: str) -> Path:
    s = tmp_path / "store"
    corral.ImageStore(s).import_(rootfs, "pylim:1")
    return s


def _cap_sys_resource() -> bool:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) & (1 << 24))
    return False


def test_dockers_limits_hold_inside_an_image_container(env, store):
    lim = corral.Limits(memory="64M", memory_reservation="32M", cpuset_cpus="0", oom_score_adj=400,
                        shm_size="16M", ulimits={"nproc": (50, 60)}, memory_swappiness=10)
    assert (lim.cpuset_cpus, lim.oom_score_adj, lim.shm_size) == ("0", 400, 16 << 20)
    assert lim.ulimits == {"nproc": (50, 60)} and lim.memory_reservation == 32 << 20
    assert "oom_score_adj=400" in repr(lim) and "ulimits={'nproc': (50, 60)}" in repr(lim), repr(lim)
    kw = env.kw(image="pylim:1", store=str(store), limits=lim)
    del kw["rootfs"]
    script = ("cg=/sys/fs/cgroup; "
              "echo $(cat $cg/cpuset/cpuset.cpus 2>/dev/null || cat $cg/cpuset.cpus) "
              "$(cat $cg/memory/memory.soft_limit_in_bytes 2>/dev/null || cat $cg/memory.low) "
              "$(cat /proc/self/oom_score_adj) $(ulimit -u):$(ulimit -Hu) $(ulimit -n):$(ulimit -Hn) "
              "$(grep -c 'size=16384k' /proc/mounts)")
    r = corral.run(["sh", "-c", script], capture_output=True, text=True, **kw)
    assert r.returncode == 0, r.stderr
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nofile = 1 << 20 if _cap_sys_resource() else min(1 << 20, hard)
    assert r.stdout.split() == ["0", str(32 << 20), "400", "50:60", f"{nofile}:{nofile}", "1"], r.stdout


@pytest.mark.parametrize(
    "kw,arg,words",
    [
        ({"cpus": 4096}, "cpus", "Range of CPUs is from 0.01 to"),
        ({"memory": "1M"}, "memory", "Minimum memory limit allowed is 6MB"),
        # What a config.json could get wrong too keeps the spec's words and field.
        ({"memory": "64M", "memory_swap": "32M"}, "memory_swap", "is below memory.limit"),
        ({"cpuset_cpus": "0-4095"}, "cpuset_cpus", "Requested CPUs are not available - requested 0-4095"),
        ({"oom_score_adj": 1001}, "oom_score_adj", "range for oom score adj is [-1000, 1000]"),
        ({"memory_reservation": "1k"}, "memory_reservation", "Minimum memory reservation allowed is 6MB"),
        ({"ulimits": {"nofile": (10, 5)}}, 'ulimits["nofile"]', "soft limit must be less than or equal"),
        ({"ulimits": {"bogus": 1}}, 'ulimits["bogus"]', "invalid ulimit type: bogus"),
        ({"cpus": 1, "cpu_quota": 50000}, "cpus", "Conflicting options"),
    ],
)
def test_out_of_range_limits_are_refused_in_dockers_words(kw, arg, words):
    with pytest.raises(corral.ConfigError) as ei:
        corral.Limits(**kw)
    assert str(ei.value).startswith(f"{arg}:"), str(ei.value)
    assert words in str(ei.value), str(ei.value)

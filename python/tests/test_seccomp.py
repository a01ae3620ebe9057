"""A bundle whose seccomp profile predates the syscalls the runtime itself uses (openat2,
close_range, clone3, faccessat2, pidfd_*: everything from Linux 5.1 on is refused), as
`oci-runtime-tool generate` and older engines write them: run and exec work from Python,
with a cwd other than `/`, with and without noNewPrivileges."""

from __future__ import annotations

import json
import re
import shutil

import pytest

import corral


def old_syscalls() -> list:
    """Every x86_64 syscall older than Linux 5.1 (number < 424, pidfd_send_signal)."""
    text = open("/usr/include/x86_64-linux-gnu/asm/unistd_64.h").read()
    names = [n for n, nr in re.findall(r"#define __NR_(\w+) (\d+)", text) if int(nr) < 424]
    assert "openat2" not in names and "read" in names
    return names


@pytest.mark.parametrize("nnp", [True, False])
def test_an_old_profile_runs_and_execs(env, tmp_path, nnp):
    bundle = tmp_path / "bundle"
    shutil.copytree(env.rootfs, bundle / "rootfs", symlinks=True)
    spec = {
        "ociVersion": "1.2.0",
        "process": {
            "args": ["sleep", "60"],
            "cwd": "/tmp",
            "env": ["PATH=/bin"],
            "user": {"uid": 0, "gid": 0},
            "noNewPrivileges": nnp,
        },
        "root": {"path": "rootfs", "readonly": True},
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}],
            "seccomp": {
                "defaultAction": "SCMP_ACT_ERRNO",
                "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [{"names": old_syscalls(), "action": "SCMP_ACT_ALLOW"}],
            },
        },
    }
    spec["process"]["args"] = ["sh", "-c", "pwd"]
    (bundle / "config.json").write_text(json.dumps(spec))
    r = corral.run(bundle=str(bundle), capture_output=True, root=str(env.root), id=env.id())
    assert r.returncode == 0 and r.stdout == b"/tmp\n"
    spec["process"]["args"] = ["sleep", "60"]
    (bundle / "config.json").write_text(json.dumps(spec))
    with corral.Container(bundle=str(bundle), root=str(env.root), id=env.id()) as c:
        x = c.exec(["sh", "-c", "pwd; grep ^Seccomp: /proc/self/status"], cwd="/etc", capture_output=True)
        assert x.returncode == 0 and x.stdout == b"/etc\nSeccomp:\t2\n"

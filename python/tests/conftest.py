"""Shared fixtures of the pytest suite: a busybox root filesystem, a private state root and
unique ids per test, and a check that a test left nothing behind (mounts, cgroups,
processes, state dirs)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Iterator, List, Optional

import pytest

import corral

if os.geteuid() != 0:
    # The tests make real containers, mounts and cgroups: they fail, never skip, without root.
    raise RuntimeError("corral's Python tests need root (run them as root)")


def make_rootfs(dest: Path) -> Path:
    """A root filesystem at dest: the host's static busybox and its applets."""
    bb = shutil.which("busybox") or "/bin/busybox"
    for d in ("bin", "proc", "dev", "sys", "tmp", "etc", "root"):
        (dest / d).mkdir(parents=True, exist_ok=True)
    os.chmod(dest / "tmp", 0o1777)
    shutil.copy(bb, dest / "bin" / "busybox")
    os.chmod(dest / "bin" / "busybox", 0o755)
    applets = subprocess.run([bb, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for a in applets:
        if a != "busybox" and "/" not in a:
            try:
                os.symlink("busybox", dest / "bin" / a)
            except FileExistsError:
                pass
    return dest


@pytest.fixture(scope="session")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A busybox root filesystem shared by the tests (containers get it read-only)."""
    return str(make_rootfs(tmp_path_factory.mktemp("bundle") / "rootfs"))


def cgroup_dirs_with(needle: str) -> List[str]:
    out: List[str] = []

    def walk(d: str, depth: int) -> None:
        if depth > 5:
            return
        try:
            entries = list(os.scandir(d))
        except OSError:
            return
        for e in entries:
            if e.is_dir(follow_symlinks=False):
                if needle in e.name:
                    out.append(e.path)
                walk(e.path, depth + 1)

    walk("/sys/fs/cgroup", 0)
    return out


def _foreign_zombie(pid: str) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    f = stat[stat.rfind(")") + 1 :].split()
    return len(f) > 1 and f[0] == "Z" and f[1] != str(os.getpid())


def find_leaks(needle: str, root: Optional[Path]) -> List[str]:
    """Everything that mentions `needle` and should be gone: mounts, cgroup dirs, processes
    in such a cgroup, and anything left under the state root."""
    leaks = [f"mount: {l}" for l in Path("/proc/self/mountinfo").read_text().splitlines() if needle in l]
    leaks += [f"cgroup: {d}" for d in cgroup_dirs_with(needle)]
    me = str(os.getpid())
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or pid == me or _foreign_zombie(pid):
            continue
        try:
            cg = Path(f"/proc/{pid}/cgroup").read_text()
        except OSError:
            continue
        if needle in cg:
            leaks.append(f"process {pid} in a cgroup of {needle}")
    if root is not None and root.exists():
        # (The compiled-filter cache is the state root's, shared by its containers.)
        leaks += [f"state dir: {root / n}" for n in os.listdir(root) if n != ".seccomp-cache"]
    return leaks


def assert_no_leaks(needle: str, root: Optional[Path]) -> None:
    deadline = time.monotonic() + 2
    while True:
        leaks = find_leaks(needle, root)
        if not leaks or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not leaks, "left behind:\n  " + "\n  ".join(leaks)


class Env:
    """A test's own state root and id maker; every id starts with `tag`."""

    def __init__(self, root: Path, tag: str, rootfs: str) -> None:
        self.root = root
        self.tag = tag
        self.rootfs = rootfs
        self._n = 0

    def id(self, what: str = "c") -> str:
        self._n += 1
        return f"{self.tag}-{what}{self._n}"

    def kw(self, **extra: object) -> dict:
        """The keywords every container of the test gets: rootfs, root and a unique id."""
        d = {"rootfs": self.rootfs, "root": str(self.root), "id": self.id()}
        d.update(extra)
        return d


@pytest.fixture
def env(tmp_path: Path, rootfs: str) -> Iterator[Env]:
    """A private state root and unique ids; after the test, anything left is removed and
    the test fails if there was anything (so a leak is never hidden by the next test)."""
    tag = f"cpy{os.getpid():x}-{uuid.uuid4().hex[:6]}"
    root = tmp_path / "state"
    e = Env(root, tag, rootfs)
    yield e
    left = [s.id for s in corral.list(root)] if root.exists() else []
    for i in left:
        corral._corral.force_delete(i, str(root))
    assert_no_leaks(tag, root)
    assert not left, f"containers left under the state root: {left}"


def open_fds() -> List[str]:
    """This process's open fds and what they are."""
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            out.append(f"{fd} -> {os.readlink(f'/proc/self/fd/{fd}')}")
        except OSError:
            pass
    return sorted(out)

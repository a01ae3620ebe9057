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

"""The README's Python examples run as written (from a directory laid out as the repository
root is after ./scripts/demo.sh: target/demo-bundle/rootfs is a busybox root)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import corral

README = Path(__file__).resolve().parents[2] / "README.md"


def python_blocks():
    text = README.read_text()
    section = text[text.index("\n## Python\n") :]
    section = section[: section.index("\n## ", 1)]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_the_readme_python_examples_run_as_written(tmp_path, rootfs):
    blocks = python_blocks()
    assert len(blocks) == 4
    (tmp_path / "target" / "demo-bundle").mkdir(parents=True)
    os.symlink(rootfs, tmp_path / "target" / "demo-bundle" / "rootfs")
    before = {s.id for s in corral.list()}
    pypath = str(Path(corral.__file__).resolve().parent.parent)
    outs = []
    for code in blocks:
        r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                           timeout=60, env={**os.environ, "PYTHONPATH": pypath})
        assert r.returncode == 0, f"{code}\n--- stderr:\n{r.stderr}"
        outs.append(r.stdout)
    # What the comments in the examples say they print.
    assert outs[0].startswith("3 hello from box\n")
    assert all(p in outs[0] for p in corral.PHASES)
    lines = outs[1].splitlines()
    assert lines[0].startswith("running ") and lines[1] == "hi"
    assert "67108864" in lines and "True" in lines and lines[-2:] == ["-9", "deleted"]
    assert outs[2] == "[0, 1, 2, 3, 4]\n"
    first, second = outs[3].splitlines()
    assert first == 'exec ENOENT /no/such/program', first
    assert second.startswith('memory | memory: "-64M"'), second
    # Nothing of theirs is left under the default state root.
    assert {s.id for s in corral.list()} <= before

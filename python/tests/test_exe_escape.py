"""CVE-2019-5736 from Python: the process that sets a container up is a copy of the host's
Python interpreter until it runs the container's program. An image whose program, script
interpreter, ELF interpreter or exec'd program resolves to /proc/self/exe must never run the
host's interpreter inside the container (it would then be free to overwrite it): the process
becomes corral's sealed exec shim first. The image preloads a payload into any dynamically
linked program (its own busybox is static), which marks /tmp/pwned when it runs; it only marks,
it never writes (the host interpreter is the machine's own)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import corral

from conftest import make_rootfs

PAYLOAD = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
__attribute__((constructor)) static void pwn(void) {
  char exe[512] = {0};
  if (readlink("/proc/self/exe", exe, sizeof exe - 1) < 0) exe[0] = '?';
  int m = open("/tmp/pwned", O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (m >= 0) { dprintf(m, "%s\n", exe); close(m); }
  _exit(42);
}
"""


def hostile_root(dest: Path) -> Path:
    root = make_rootfs(dest)
    host = os.path.realpath("/proc/self/exe")  # this interpreter
    ldd = subprocess.run(["ldd", host], capture_output=True, text=True, check=True).stdout
    libs = [w for w in ldd.split() if w.startswith("/")]
    assert len(libs) >= 2, ldd
    for lib in libs:
        d = root / lib.lstrip("/")
        d.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(lib, d)
    src = dest.parent / "payload.c"
    src.write_text(PAYLOAD)
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(root / "payload.so"), str(src)], check=True)
    (root / "etc" / "ld.so.preload").write_text("/payload.so\n")
    os.symlink("/proc/self/exe", root / "evil")
    (root / "script").write_text("#!/proc/self/exe\n")
    os.chmod(root / "script", 0o755)
    main = dest.parent / "main.c"
    main.write_text("int main(void) { return 0; }\n")
    subprocess.run(["cc", "-o", str(root / "interp"), str(main),
                    "-Wl,--dynamic-linker=/proc/self/exe"], check=True)
    return root


def test_no_shape_of_proc_self_exe_runs_the_host_interpreter(env, tmp_path):
    root = hostile_root(tmp_path / "hostile" / "rootfs")
    pwned = root / "tmp" / "pwned"
    kw = dict(rootfs=str(root), root=str(env.root), readonly_root=False)
    for prog in ["/evil", "/script", "/interp"]:
        r = corral.run([prog], capture_output=True, id=env.id(), **kw)
        assert not pwned.exists(), f"{prog}: {sys.executable} ran inside: {pwned.read_text()}"
        assert r.returncode == 127, (prog, r)
    with corral.Container(["sleep", "60"], id=env.id(), **kw) as c:
        for prog in ["/evil", "/script", "/interp"]:
            x = c.exec([prog], capture_output=True)
            assert not pwned.exists(), f"exec {prog}: the host interpreter ran inside"
            assert x.returncode == 127, (prog, x)

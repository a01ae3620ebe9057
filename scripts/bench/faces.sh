#!/usr/bin/env bash
# The whole spawn through the C library and the Python module (create + start + wait +
# delete of /bin/true with memory, pids and cpu limits, on the demo root), in alternating
# rounds so that load falls on both alike; appends a section to BENCHMARKS.md. Run by
# scripts/bench.sh after bench-report wrote the file (T: the target dir, OUT: its work dir).
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH=$HOME/.cargo/bin:$PATH
T=${T:-${CARGO_TARGET_DIR:-$PWD/target}}
OUT=${OUT:-$T/bench-run}
# The whole spawn through the C library and the Python module (create + start + wait +
# delete of /bin/true with memory, pids and cpu limits, on the demo root), in alternating
# rounds so that load falls on both alike; appended to BENCHMARKS.md.
FACES=$OUT/faces
mkdir -p "$FACES/state"
bash scripts/make-demo-rootfs.sh
cargo build --release -q -p corral-ffi-c
bash scripts/install-lib.sh --from "$T/release" "$FACES/prefix" >/dev/null
# shellcheck disable=SC2046
cc -O2 -Wall -Werror benches/faces/spawn.c \
  $(PKG_CONFIG_PATH=$FACES/prefix/lib/pkgconfig pkg-config --cflags --libs container) -o "$FACES/spawn-c"
PATH=$PWD/target/pyenv/bin:$PATH target/pyenv/bin/pip install -q --disable-pip-version-check --no-build-isolation ./python
ROOTFS=$PWD/target/demo-bundle/rootfs
: >"$FACES/c.txt"; : >"$FACES/py.txt"
for _ in $(seq "${FACE_ROUNDS:-10}"); do
  LD_LIBRARY_PATH=$FACES/prefix/lib "$FACES/spawn-c" "$ROOTFS" "$FACES/state" "${FACE_PER:-20}" >>"$FACES/c.txt"
  target/pyenv/bin/python benches/faces/spawn.py "$ROOTFS" "$FACES/state" "${FACE_PER:-20}" >>"$FACES/py.txt"
done
python3 - "$FACES/c.txt" "$FACES/py.txt" >>BENCHMARKS.md <<'PY'
import statistics, sys
def q(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]
print("\n## The whole spawn through each face\n")
print("create + start + wait for exit + delete of `/bin/true` with memory, pids and cpu limits on")
print("the demo root, in alternating rounds (benches/faces/spawn.c through libcontainer.so,")
print("benches/faces/spawn.py through `corral.run`); the Rust API's own figure is")
print("`spawn/cgroup-limits` above.\n")
print("| face | runs | median ms | p90 ms |\n|---|---:|---:|---:|")
for name, path in [("C (libcontainer.so)", sys.argv[1]), ("Python (corral.run)", sys.argv[2])]:
    xs = [float(l) for l in open(path) if l.strip()]
    print(f"| {name} | {len(xs)} | {statistics.median(xs):.2f} | {q(xs, 0.9):.2f} |")
PY

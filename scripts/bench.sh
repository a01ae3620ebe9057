#!/usr/bin/env bash
# Regenerates BENCHMARKS.md and docs/benchmarks.svg on this machine, in one run:
#  1. corral (release) against crun, runc and youki: spawn-to-exit of /bin/true on one busybox
#     bundle, warm and cold, peak RSS and syscalls (scripts/bench/peers.sh: hyperfine, every
#     runtime in the same runs; installs the peers, youki once into /var/cache/corral-bench);
#  2. the criterion benches of the benches crate (library spawn variants and each phase);
#  3. bench-report turns both, the machine, the commands and benches/NOTES.md into the file;
#  4. the whole spawn through the C library and the Python module, appended.
# Takes about 15 minutes on 2 cores. Knobs: RUNS, ROUNDS, COLD_RUNS, COLD_ROUNDS (peers.sh),
# BENCH_ARGS (passed to the criterion benches, e.g. "--sample-size 10 --measurement-time 1"),
# SPAWN_ROUNDS and SPAWN_PER (spawn-rounds: 10 rounds of 10 spawns of each configuration).
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) == 0 ]] || { echo "run as root" >&2; exit 1; }
bash scripts/setup-deps.sh
export PATH=$HOME/.cargo/bin:$PATH
T=${CARGO_TARGET_DIR:-$PWD/target}
OUT=$T/bench-run
rm -rf "$OUT" "$T/criterion"; mkdir -p "$OUT"

cargo build --release -q -p corral-cli -p corral-benches --bin corral --bin bench-report --bin spawn-rounds
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
# Many short rounds: every command runs a few times per round, rounds follow each other, and
# the ratio is taken per round, so that a burst of load on this shared machine falls on all
# commands of a round alike (20 runs of one command back to back let a burst land on one).
export RUNS=${RUNS:-4} ROUNDS=${ROUNDS:-25} WARMUP=${WARMUP:-1} COLD_RUNS=${COLD_RUNS:-2} COLD_ROUNDS=${COLD_ROUNDS:-15}
CORRAL=$T/release/corral WORK=$OUT/peers bash scripts/bench/peers.sh
# shellcheck disable=SC2086
cargo bench -q -p corral-benches --bench spawn --bench phases -- ${BENCH_ARGS:-} 2>&1 | tee "$OUT/criterion.txt"

"$T/release/spawn-rounds" "${SPAWN_ROUNDS:-10}" "${SPAWN_PER:-10}" "$OUT/spawn-rounds.tsv"

{
  echo "date:    $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "corral:  $(git log -1 --format='%h %s' | cut -c1-100)"
  echo "kernel:  $(uname -srm)"
  echo "cpu:     $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "memory:  $(free -m | awk '/Mem:/ {print $2 " MiB"}')"
  echo "cgroups: $(stat -fc %T /sys/fs/cgroup) at /sys/fs/cgroup, cgroup2 controllers: $(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null || cat /sys/fs/cgroup/cgroup.controllers 2>/dev/null)"
  echo "rustc:   $(rustc --version)"
  echo "load:    $LOAD_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end (1, 5, 15 min; 2 cores shared with other work)"
} >"$OUT/machine.txt"
cat >"$OUT/commands.txt" <<CMDS
# everything below, in order, as root:
./scripts/bench.sh
# which runs:
cargo build --release -p corral-cli
CORRAL=target/release/corral WORK=target/bench-run/peers bash scripts/bench/peers.sh
#   hyperfine -N --warmup 1 --runs 4 (25 rounds) and, cold, --prepare 'sleep 0.1' --runs 2 (15 rounds),
#   each row as 'env --block-signal=CHLD RUNTIME run -b BUNDLE ID', in a mount namespace
#   without the cgroup2 mount (crun refuses this hybrid layout), so every runtime sees cgroup v1
cargo bench -p corral-benches
target/release/spawn-rounds 10 10 target/bench-run/spawn-rounds.tsv   # variants interleaved
target/release/bench-report --peers ... --criterion target/criterion ...
CMDS
"$T/release/bench-report" --peers "$OUT/peers" --criterion "$T/criterion" \
  --machine "$OUT/machine.txt" --commands "$OUT/commands.txt" --notes benches/NOTES.md \
  --rounds "$OUT/spawn-rounds.tsv" \
  --out BENCHMARKS.md --svg docs/benchmarks.svg
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
target/pyenv/bin/pip install -q --disable-pip-version-check --no-build-isolation ./python
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
echo "wrote BENCHMARKS.md and docs/benchmarks.svg"

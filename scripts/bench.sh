#!/usr/bin/env bash
# Regenerates BENCHMARKS.md and docs/benchmarks.svg on this machine, in one run:
#  1. corral (release, scripts/build-corral.sh) against crun, runc, youki and the floor (the C
#     stand-in, benches/standin): spawn-to-exit of /bin/true on one busybox bundle, warm and
#     cold, peak RSS and syscalls (scripts/bench/peers.sh: hyperfine, every runtime in the same
#     runs; installs the peers, youki once into /var/cache/corral-bench);
#  1b. corral built without one cost each, beside corral and the floor (scripts/bench/experiments.sh;
#     its builds go to target/bench-experiments, ~10 minutes the first time);
#  2. the criterion benches of the benches crate (library spawn variants and each phase);
#  3. bench-report turns both, the machine, the commands and benches/NOTES.md into the file;
#  4. the whole spawn through the C library and the Python module, appended.
# Takes about 20 minutes on 2 cores (30 the first time). Knobs: EXP_ROUNDS (experiments.sh), RUNS, ROUNDS, COLD_RUNS, COLD_ROUNDS (peers.sh),
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

cargo build --release -q -p corral-benches --bin bench-report --bin spawn-rounds
bash scripts/build-corral.sh   # target/release/corral and corral-full, static PIEs
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
# Many short rounds: every command runs a few times per round, rounds follow each other, and
# the ratio is taken per round, so that a burst of load on this shared machine falls on all
# commands of a round alike (20 runs of one command back to back let a burst land on one).
export RUNS=${RUNS:-4} ROUNDS=${ROUNDS:-25} WARMUP=${WARMUP:-1} COLD_RUNS=${COLD_RUNS:-2} COLD_ROUNDS=${COLD_ROUNDS:-15}
CORRAL=$T/release/corral WORK=$OUT/peers bash scripts/bench/peers.sh
# corral without one cost each, beside corral and the floor (builds in a target dir of its own,
# kept between runs).
CORRAL=$T/release/corral STANDIN=$OUT/peers/standin BUNDLE=$OUT/peers/bundle WORK=$T/bench-experiments \
  ROUNDS=${EXP_ROUNDS:-10} bash scripts/bench/experiments.sh | tee "$OUT/experiments.txt"
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
bash scripts/build-corral.sh   # cargo rustc --release -p corral-cli --bin corral (and --bin corral-full) -- -C target-feature=+crt-static
CORRAL=target/release/corral WORK=target/bench-run/peers bash scripts/bench/peers.sh
#   hyperfine -N --warmup 1 --runs 4 (25 rounds) and, cold, --prepare 'sleep 0.1' --runs 2 (15 rounds),
#   each row as 'env --block-signal=CHLD RUNTIME run -b BUNDLE ID', in a mount namespace
#   without the cgroup2 mount (crun refuses this hybrid layout), so every runtime sees cgroup v1
CORRAL=target/release/corral STANDIN=... BUNDLE=... WORK=target/bench-experiments bash scripts/bench/experiments.sh
#   corral built without one cost each (benches/experiments/*.patch, a position-dependent link,
#   benches/src/bin/corral-min.rs, --root on a tmpfs, all of them at once, corral-full),
#   10 rounds x hyperfine --runs 10 with corral and the floor, and the peak RSS and syscalls of each
cargo bench -p corral-benches
target/release/spawn-rounds 10 10 target/bench-run/spawn-rounds.tsv   # variants interleaved
target/release/bench-report --peers ... --criterion target/criterion ...
CMDS
"$T/release/bench-report" --peers "$OUT/peers" --criterion "$T/criterion" \
  --machine "$OUT/machine.txt" --commands "$OUT/commands.txt" --notes benches/NOTES.md \
  --rounds "$OUT/spawn-rounds.tsv" \
  --experiments "$T/bench-experiments/experiments.tsv" \
  --out BENCHMARKS.md --svg docs/benchmarks.svg
# The whole spawn through the C library and the Python module, appended to BENCHMARKS.md.
T=$T OUT=$OUT bash scripts/bench/faces.sh
echo "wrote BENCHMARKS.md and docs/benchmarks.svg"

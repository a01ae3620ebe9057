#!/usr/bin/env bash
# peers.sh - spawn-to-exit latency of OCI runtimes and sandbox peers on one bundle, side by side.
# (Adapted from the shared peers.sh: youki is installed once into YOUKI_ROOT and answered
# `--version` from a file; peak RSS and syscall counts are also written as files for
# scripts/bench.sh's report; see the end of this header.)
#
# Installs runc, crun, bubblewrap, busybox-static, hyperfine (apt) and youki (crates.io), builds a
# minimal busybox OCI bundle (`runc spec`, terminal=false, args=["/bin/true"]) plus a variant with
# cgroup limits (memory 64 MiB, pids 64, cpu 50000/100000), checks that every runtime runs both to
# exit 0, then times everything with hyperfine in ROUNDS rounds and reports, per command, the median
# of the per-round medians and the median of the per-round ratios to crun. Two tables: WARM
# (runs back to back) and COLD (an untimed `sleep COLD_GAP` before every run, via --prepare).
#
# Usage (root, Debian/Ubuntu, cargo on PATH):  [WORK=dir] [RUNS=20] [ROUNDS=5] [CORRAL=path] bash peers.sh
# CORRAL: path of a corral binary; when set, rows "corral" and "corral-cg" run it on the same bundles
#        (`$CORRAL run -b BUNDLE ID`), timed in the same hyperfine calls as the peers.
# Knobs: WORK (default: a new temp dir), RUNS, ROUNDS, WARMUP, COLD_RUNS (10), COLD_ROUNDS (3; 0 = skip),
#        COLD_GAP (0.1 s), SKIP_INSTALL=1 (use what is on PATH;
#        YOUKI=path to pick a youki), YOUKI_VERSION (0.7.0), LEGACY_VIEW=auto|1|0 (see below).
#
# Two workarounds:
#  * crun (1.8.x at least) refuses "hybrid" cgroup layouts whose cgroup2 mount has any controller
#    ("cgroups in hybrid mode not supported"). LEGACY_VIEW=auto detects that and runs the benchmark
#    in a private mount namespace where the cgroup2 mount at /sys/fs/cgroup/unified is unmounted,
#    so all runtimes see plain cgroup v1. Nothing outside that namespace changes.
#  * youki 0.7.0 `run` blocks signals only after the container has started; an init that exits
#    first loses its SIGCHLD and youki hangs (seen ~1 run in 40 here). The youki rows are
#    started through `env --block-signal=CHLD` (coreutils >= 8.31) so the signal stays pending;
#    the row "env /bin/true" vs "/bin/true" shows what that wrapper itself adds to them. (The
#    other rows run bare, so that their ratios to the stand-in are of the runtimes alone.)
#
# The floor: rows "standin" and "standin-cg" run benches/standin/standin.c (built here, static),
# a C program doing the kernel work of the same container and nothing else; every row also gets
# its ratio to it (standin-cg for the -cg rows).
#
# Files left in WORK for the report: warm-N.json, cold-N.json (hyperfine), rss.tsv (name, KiB),
# syscalls.tsv (name, syscalls of one run under `strace -f -c`), syscalls-by-name.tsv (syscall,
# then its count in one run of crun, corral and the stand-in), versions.txt, summary.txt.
set -euo pipefail

WORK=${WORK:-$(mktemp -d -t peers.XXXXXX)}
RUNS=${RUNS:-20}; ROUNDS=${ROUNDS:-5}; WARMUP=${WARMUP:-5}
COLD_RUNS=${COLD_RUNS:-10}; COLD_ROUNDS=${COLD_ROUNDS:-3}; COLD_GAP=${COLD_GAP:-0.1}
YOUKI_VERSION=${YOUKI_VERSION:-0.7.0}
YOUKI_ROOT=${YOUKI_ROOT:-/var/cache/corral-bench/youki}
LEGACY_VIEW=${LEGACY_VIEW:-auto}
export WORK RUNS ROUNDS WARMUP COLD_RUNS COLD_ROUNDS COLD_GAP YOUKI_VERSION LEGACY_VIEW CORRAL
B=$WORK/bundle; BC=$WORK/bundle-cg; R=$B/rootfs

bench() {  # runs in the (possibly private) mount namespace
  local W="env --block-signal=CHLD" Y=$YOUKI S=$WORK/standin
  local -a base=(
    crun "crun run -b $B pe-crun"
    runc "runc run -b $B pe-runc"
    youki "$W $Y run -b $B pe-youki"
    standin "$S $R"
    bwrap "bwrap --bind $R / --unshare-all --proc /proc --dev /dev /bin/true"
    unshare "unshare -fpmuin --mount-proc chroot $R /bin/true"
    "env /bin/true" "$W /bin/true"
    "/bin/true" "/bin/true"
    crun-cg "crun run -b $BC pe-crunc"
    runc-cg "runc run -b $BC pe-runcc"
    youki-cg "$W $Y run -b $BC pe-youkic"
    standin-cg "$S --limits $R"
  )
  if [[ -n ${CORRAL:-} ]]; then
    base+=(corral "$CORRAL run -b $B pe-corral" corral-cg "$CORRAL run -b $BC pe-corralc")
  fi
  local -a args=() ok=() cmd; local i k
  for ((i = 0; i < ${#base[@]}; i += 2)); do   # keep only what runs to exit 0 here
    read -ra cmd <<<"${base[i+1]}"
    if "${cmd[@]}" </dev/null >/dev/null 2>"$WORK/err.txt"; then
      args+=(-n "${base[i]}" "${base[i+1]}"); ok+=("${base[i]}")
    else
      echo "SKIPPED ${base[i]}: $(tail -1 "$WORK/err.txt")"
    fi
  done
  rm -f "$WORK"/warm-*.json "$WORK"/warm-*.txt "$WORK"/cold-*.json "$WORK"/cold-*.txt
  for ((i = 1; i <= ROUNDS; i++)); do
    hyperfine -N --style basic --warmup "$WARMUP" --runs "$RUNS" --export-json "$WORK/warm-$i.json" "${args[@]}" >"$WORK/warm-$i.txt" 2>&1 ||
      { mv "$WORK/warm-$i.txt" "$WORK/warm-$i.failed.txt"
        hyperfine -N --style basic --warmup "$WARMUP" --runs "$RUNS" --export-json "$WORK/warm-$i.json" "${args[@]}" >"$WORK/warm-$i.txt" 2>&1; }
  done
  echo; echo "WARM (back-to-back) spawn-to-exit, $ROUNDS rounds x $RUNS runs (hyperfine -N); ratio = median over rounds of median(cmd)/median(ref)"
  table "$WORK"/warm-*.json
  # cold: an untimed idle gap before every timed run. On cgroup v1 the first write to cgroup.procs
  # after idle waits for an RCU grace period (cgroup_threadgroup_rwsem), so this differs a lot.
  for ((i = 1; i <= COLD_ROUNDS; i++)); do
    # A peer that fails a run (youki 0.7.0 does, now and then) fails the round: it is run
    # again once, and the failure kept in the round's text.
    hyperfine -N --style basic --prepare "sleep $COLD_GAP" --warmup 1 --runs "$COLD_RUNS" --export-json "$WORK/cold-$i.json" "${args[@]}" >"$WORK/cold-$i.txt" 2>&1 ||
      { mv "$WORK/cold-$i.txt" "$WORK/cold-$i.failed.txt"
        hyperfine -N --style basic --prepare "sleep $COLD_GAP" --warmup 1 --runs "$COLD_RUNS" --export-json "$WORK/cold-$i.json" "${args[@]}" >"$WORK/cold-$i.txt" 2>&1; }
  done
  if ((COLD_ROUNDS > 0)); then
    echo; echo "COLD (${COLD_GAP}s idle before each run) spawn-to-exit, $COLD_ROUNDS rounds x $COLD_RUNS runs"
    table "$WORK"/cold-*.json
  fi
  echo; echo "peak RSS (GNU time %M: largest single process waited for), median of 5 runs, KiB"
  : >"$WORK/rss.tsv"
  for ((i = 0; i < ${#base[@]}; i += 2)); do
    [[ " ${ok[*]} " == *" ${base[i]} "* ]] || continue
    read -ra cmd <<<"${base[i+1]}"
    k=$(for k in 1 2 3 4 5; do /usr/bin/time -f %M "${cmd[@]}" </dev/null 2>&1 >/dev/null | tail -1; done | sort -n | sed -n 3p)
    printf '%-14s %8s\n' "${base[i]}" "$k"
    printf '%s\t%s\n' "${base[i]}" "$k" >>"$WORK/rss.tsv"
  done
  echo; echo "syscalls of one run (strace -f -c, all processes), median of 3 runs"
  : >"$WORK/syscalls.tsv"
  for ((i = 0; i < ${#base[@]}; i += 2)); do
    [[ " ${ok[*]} " == *" ${base[i]} "* ]] || continue
    case ${base[i]} in crun|runc|youki|corral|standin|crun-cg|corral-cg|standin-cg) ;; *) continue ;; esac
    read -ra cmd <<<"${base[i+1]}"
    k=$(for k in 1 2 3; do strace -f -c -o "$WORK/strace-${base[i]}-$k.txt" "${cmd[@]}" </dev/null >/dev/null 2>&1; awk '$NF == "total" {print $(NF-2)}' "$WORK/strace-${base[i]}-$k.txt"; done | sort -n | sed -n 2p)
    printf '%-14s %8s\n' "${base[i]}" "$k"
    printf '%s\t%s\n' "${base[i]}" "$k" >>"$WORK/syscalls.tsv"
  done
  # Per syscall, the first strace run of crun, corral and the stand-in, most calls by corral first.
  local f=() n
  for n in crun corral standin; do f+=("$WORK/strace-$n-1.txt"); done
  if [[ -f ${f[0]} && -f ${f[1]} && -f ${f[2]} ]]; then
    awk 'FNR == 1 {n++} /^-/ || /% time/ || $NF == "total" || NF < 5 {next}
         {c[$NF, n] = $4; s[$NF] = 1}
         END {for (x in s) printf "%s\t%d\t%d\t%d\n", x, c[x, 1], c[x, 2], c[x, 3]}' "${f[@]}" |
      sort -t$'\t' -k3,3nr -k2,2nr -k1,1 >"$WORK/syscalls-by-name.tsv"
  fi
}

table() {  # per command: median of per-round medians, median of per-round ratios to crun (crun-cg)
  jq -rs '
    def med: sort | if length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
    [.[] | [.results[] | {key: .command, value: .median}] | from_entries] as $r
    | ($r[0] | keys_unsorted[]) as $n
    | ($n | if endswith("-cg") then "crun-cg" else "crun" end) as $ref
    | ($n | if endswith("-cg") then "standin-cg" else "standin" end) as $floor
    | [$n, ([$r[][$n]] | med * 1000 | . * 1000 | round / 1000),
       (if $r[0][$ref] then ([$r[] | .[$n] / .[$ref]] | med * 1000 | round / 1000) else "n/a" end), $ref,
       (if $r[0][$floor] then ([$r[] | .[$n] / .[$floor]] | med * 1000 | round / 1000) else "n/a" end)]
    | @tsv' "$@" | awk -F'\t' 'BEGIN{printf "%-14s %12s %10s  %-8s %10s\n","command","median ms","ratio","vs","vs floor"} {printf "%-14s %12s %10s  %-8s %10s\n",$1,$2,$3,$4,$5}'
}

if [[ ${1:-} == --bench ]]; then YOUKI=$2; bench; exit; fi

[[ $(id -u) == 0 ]] || { echo "run as root" >&2; exit 1; }
mkdir -p "$WORK"
if [[ ${SKIP_INSTALL:-0} != 1 ]]; then
  need=()
  for p in runc crun bubblewrap busybox-static hyperfine libseccomp-dev pkg-config build-essential jq time coreutils util-linux strace; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
  done
  if ((${#need[@]})); then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}"
  fi
  # crates.io youki has no default features: v1 and v2 cgroups and seccomp must be asked for.
  [[ -x $YOUKI_ROOT/bin/youki ]] ||
    cargo install youki --version "$YOUKI_VERSION" --locked --root "$YOUKI_ROOT" --features v1,v2,seccomp
fi
YOUKI_BIN=${YOUKI:-$YOUKI_ROOT/bin/youki}; [[ -x $YOUKI_BIN ]] || YOUKI_BIN=$(command -v youki)

# youki 0.7.0 panics when the reader of its stdout goes away early (`youki --version | head -1`
# in the shared script): read its version from a file once. Rows run youki itself.
"$YOUKI_BIN" --version >"$WORK/youki.version" 2>&1 || true
YOUKI=$YOUKI_BIN
{ runc --version; crun --version | head -1; head -1 "$WORK/youki.version"; bwrap --version
  hyperfine --version; unshare --version; uname -r; } | tee "$WORK/versions.txt"

# --- the floor: the C stand-in, static
gcc -O2 -static -Wall -Wextra -o "$WORK/standin" "$(dirname "$0")/../../benches/standin/standin.c"

# --- the bundle: static busybox rootfs + `runc spec`, edited
rm -rf "$B" "$BC"; mkdir -p "$R"/{bin,proc,dev,sys,tmp,etc,root} "$BC"
cp "$(command -v busybox)" "$R/bin/busybox"     # busybox-static: no libraries needed
for a in sh true false echo sleep cat ls ps mount id head; do ln -s busybox "$R/bin/$a"; done
(cd "$B" && runc spec && jq '.process.terminal = false | .process.args = ["/bin/true"]' config.json >c.json && mv c.json config.json)
jq --arg r "$R" '.root.path = $r
  | .linux.resources.memory = {limit: 67108864} | .linux.resources.pids = {limit: 64}
  | .linux.resources.cpu = {quota: 50000, period: 100000}' "$B/config.json" >"$BC/config.json"

# --- hybrid cgroups with a controller in cgroup2: crun refuses; give everyone the v1-only view
if [[ $LEGACY_VIEW == auto ]]; then
  LEGACY_VIEW=0
  [[ $(stat -fc %T /sys/fs/cgroup) == tmpfs && -n $(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null) ]] && LEGACY_VIEW=1
fi
echo "work dir: $WORK   legacy cgroup view: $LEGACY_VIEW"
if [[ $LEGACY_VIEW == 1 ]]; then
  unshare -m --propagation private sh -c 'umount /sys/fs/cgroup/unified && exec bash "$0" --bench "$1"' "$0" "$YOUKI" | tee "$WORK/summary.txt"
else
  bash "$0" --bench "$YOUKI" | tee "$WORK/summary.txt"
fi

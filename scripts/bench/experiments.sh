#!/usr/bin/env bash
# experiments.sh - what each of corral's remaining costs is worth: builds of corral without one
# cost each, timed against corral and the floor in the same hyperfine rounds.
#
# Each benches/experiments/NAME.patch (its first lines say what it removes and what that gives
# up) is applied to a copy of HEAD (a git worktree under WORK) and built as corral is
# (scripts/build-corral.sh), in a target dir of its own (CARGO_TARGET_DIR=WORK/target, so the
# build of the repository's own target/release/corral is left alone). Two more rows need no
# patch: `nopie` is HEAD linked position-dependent (-C relocation-model=static: no startup
# relocations, no ASLR of corral's own image), `min` is the same spawn through the runtime
# library in a binary of its own (benches/src/bin/corral-min.rs), `tmpfs-root` is HEAD
# with its state dir (--root) on a tmpfs instead of /run/corral, `all-removed` is every one of
# these at once (min, position-dependent, every patch, a tmpfs root), and `full` is HEAD's
# corral-full (the whole command line in one binary, as corral was before the front). A patch
# that no longer applies fails the run.
# Then, in the same private mount namespace as peers.sh (cgroup v1 only), ROUNDS x one hyperfine
# call over the floor (benches/standin), corral and every experiment, and `strace -f -c` of each.
#
# Usage (root): CORRAL=target/release/corral STANDIN=path BUNDLE=dir WORK=dir bash experiments.sh
# Knobs: ROUNDS (10), RUNS (10), WARMUP (3). Writes WORK/exp-N.json, WORK/experiments.tsv
# (name, median ms, ratio to corral, ratio to the floor, syscalls, what it removes, peak RSS
# KiB) and
# WORK/parallel.tsv (floor and corral: runs per second one after the other, and as two
# streams at once; the median of 3 tries by the second figure).
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${CORRAL:?} ${STANDIN:?} ${BUNDLE:?} ${WORK:?}"
ROUNDS=${ROUNDS:-10}; RUNS=${RUNS:-10}; WARMUP=${WARMUP:-3}
export PATH=$HOME/.cargo/bin:$PATH
CORRAL=$(readlink -f "$CORRAL"); WORK=$(mkdir -p "$WORK" && cd "$WORK" && pwd)
SRC=$WORK/src BIN=$WORK/bin
mkdir -p "$BIN"
git worktree remove --force "$SRC" 2>/dev/null || rm -rf "$SRC"
git worktree prune
git worktree add -q --detach "$SRC" HEAD
trap 'git worktree remove --force "$SRC" 2>/dev/null || true' EXIT
: >"$WORK/what.tsv"
build() {  # NAME [extra rustc flags...]: the worktree as it is now, built, copied to BIN/NAME
  local name=$1; shift
  (cd "$SRC" && CARGO_TARGET_DIR=$WORK/target cargo rustc --release -q -p corral-cli --bin corral -- \
    -C target-feature=+crt-static "$@")
  cp "$WORK/target/release/corral" "$BIN/$name"
}
build nopie -C relocation-model=static
(cd "$SRC" && CARGO_TARGET_DIR=$WORK/target cargo rustc --release -q -p corral-benches --bin corral-min -- \
  -C target-feature=+crt-static)
cp "$WORK/target/release/corral-min" "$BIN/min"
printf 'min\t%s\n' "the same spawn through the runtime library in a small binary (benches/src/bin/corral-min.rs): no command line parser, docker, image or registry code linked, no logging or signal forwarding" >>"$WORK/what.tsv"
printf 'nopie\t%s\n' "linked position-dependent: no relocations at start, but no ASLR of corral's own code and data" >>"$WORK/what.tsv"
for p in benches/experiments/*.patch; do
  [[ -e $p ]] || continue
  name=$(basename "$p" .patch)
  git -C "$SRC" reset -q --hard
  git -C "$SRC" apply "$PWD/$p" || { echo "experiments: $p does not apply to HEAD" >&2; exit 1; }
  build "$name"
  printf '%s\t%s\n' "$name" "$(sed -n 's/^What: //p' "$p" | head -1)" >>"$WORK/what.tsv"
done
printf 'tmpfs-root\t%s\n' "HEAD with --root on a tmpfs: the state dir's files cost what they cost on /run's filesystem" >>"$WORK/what.tsv"
# Every cost above removed at once: what is left is corral's own work.
git -C "$SRC" reset -q --hard
for p in benches/experiments/*.patch; do
  [[ -e $p ]] && git -C "$SRC" apply "$PWD/$p"
done
(cd "$SRC" && CARGO_TARGET_DIR=$WORK/target cargo rustc --release -q -p corral-benches --bin corral-min -- \
  -C target-feature=+crt-static -C relocation-model=static)
cp "$WORK/target/release/corral-min" "$BIN/all-removed"
printf 'all-removed\t%s\n' "every cost above at once: min, linked position-dependent, with every patch, --root on a tmpfs; what is left is corral's own work (its config, plans, state, lookups inside the root)" >>"$WORK/what.tsv"
# As corral was before its front: the whole command line in one binary (no build: HEAD's).
printf 'full\t%s\n' "HEAD's corral-full, the whole command line in one binary, as corral was before the front (cli/src/front.rs): what the front saves" >>"$WORK/what.tsv"

inner() {
  umount /sys/fs/cgroup/unified 2>/dev/null || true
  local tmp; tmp=$(mktemp -d /dev/shm/corral-exp.XXXXXX)
  local -a rows=(floor "$STANDIN $BUNDLE/rootfs" corral "$CORRAL run -b $BUNDLE ex-corral")
  local n
  while IFS=$'\t' read -r n _; do
    case $n in
      tmpfs-root) rows+=("$n" "$CORRAL --root $tmp run -b $BUNDLE ex-$n") ;;
      all-removed) rows+=("$n" "$BIN/$n --root $tmp run -b $BUNDLE ex-$n") ;;
      full) rows+=("$n" "$(dirname "$CORRAL")/corral-full run -b $BUNDLE ex-$n") ;;
      *) rows+=("$n" "$BIN/$n run -b $BUNDLE ex-$n") ;;
    esac
  done <"$WORK/what.tsv"
  local -a args=(); local i k
  for ((i = 0; i < ${#rows[@]}; i += 2)); do
    ${rows[i+1]} </dev/null >/dev/null || { echo "experiments: ${rows[i]} fails: ${rows[i+1]}" >&2; exit 1; }
    args+=(-n "${rows[i]}" "${rows[i+1]}")
  done
  rm -f "$WORK"/exp-*.json
  for ((i = 1; i <= ROUNDS; i++)); do
    hyperfine -N --style none --warmup "$WARMUP" --runs "$RUNS" --export-json "$WORK/exp-$i.json" "${args[@]}" >/dev/null
  done
  : >"$WORK/exp-syscalls.tsv"
  local m
  for ((i = 0; i < ${#rows[@]}; i += 2)); do
    k=$(for k in 1 2 3; do strace -f -c -o "$WORK/strace.txt" ${rows[i+1]} </dev/null >/dev/null 2>&1; awk '$NF == "total" {print $(NF-2)}' "$WORK/strace.txt"; done | sort -n | sed -n 2p)
    # Peak RSS as peers.sh measures it (GNU time %M), median of 5.
    m=$(for m in 1 2 3 4 5; do /usr/bin/time -f %M ${rows[i+1]} </dev/null 2>&1 >/dev/null | tail -1; done | sort -n | sed -n 3p)
    printf '%s\t%s\t%s\n' "${rows[i]}" "$k" "$m" >>"$WORK/exp-syscalls.tsv"
  done
  rmdir "$tmp" 2>/dev/null || rm -rf "$tmp"
  # How spawning scales to two CPUs: PAR_N runs one after the other, then the same number
  # as two streams at once (3 times each), for the floor and corral. The floor's ratio is
  # what the kernel's own work allows.
  local n=${PAR_N:-150} name c s e one two r
  : >"$WORK/parallel.tsv"
  for name in floor corral; do
    if [[ $name == floor ]]; then c="$STANDIN $BUNDLE/rootfs"; else c="$CORRAL run -b $BUNDLE ex-par"; fi
    for r in 1 2 3; do
      s=$(date +%s%N); stream "$c" "$n" a; e=$(date +%s%N); one=$((n * 1000000000 / (e - s)))
      s=$(date +%s%N); stream "$c" $((n / 2)) a & stream "$c" $((n / 2)) b; wait; e=$(date +%s%N)
      two=$((n * 1000000000 / (e - s)))
      printf '%s\t%s\t%s\n' "$name" "$one" "$two"
    done | sort -t$'\t' -k3,3n | sed -n 2p >>"$WORK/parallel.tsv"
  done
}
stream() {  # CMD N TAG: N runs of CMD (a corral run gets its own id per stream)
  local i
  for ((i = 0; i < $2; i++)); do ${1/ex-par/ex-par-$3} </dev/null >/dev/null || { echo "experiments: $1 failed" >&2; exit 1; }; done
}
if [[ ${1:-} == --inner ]]; then inner; exit; fi
export CORRAL STANDIN BUNDLE WORK ROUNDS RUNS WARMUP BIN
unshare -m --propagation private bash "$0" --inner
jq -rs '
  def med: sort | if length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
  [.[] | [.results[] | {key: .command, value: .median}] | from_entries] as $r
  | ($r[0] | keys_unsorted[]) as $n
  | [$n, ([$r[][$n]] | med * 1e6 | round / 1000), ([$r[] | .[$n] / .corral] | med * 1000 | round / 1000),
     ([$r[] | .[$n] / .floor] | med * 1000 | round / 1000)] | @tsv' "$WORK"/exp-*.json >"$WORK/medians.tsv"
awk -F'\t' 'FILENAME ~ /what/ {w[$1] = $2; next} FILENAME ~ /syscalls/ {s[$1] = $2; r[$1] = $3; next}
  {print $1 "\t" $2 "\t" $3 "\t" $4 "\t" s[$1] "\t" ($1 == "floor" ? "the C stand-in" : $1 == "corral" ? "corral as built (HEAD)" : w[$1]) "\t" r[$1]}' \
  "$WORK/what.tsv" "$WORK/exp-syscalls.tsv" "$WORK/medians.tsv" | tee "$WORK/experiments.tsv"

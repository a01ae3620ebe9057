#!/usr/bin/env bash
# The kill -9 experiment of issue 7: N `corral create`s, each killed with SIGKILL after a
# random 0-50 ms, each followed by `corral delete --force ID`; then counts what is left of
# each container (state dirs, cgroup dirs, live processes, mounts) and removes it by hand.
#
#   bash scripts/kill9-experiment.sh [CORRAL_BINARY] [RUNS] [SEED]
#
# Defaults: target/debug/corral, 30 runs, seed from $RANDOM (printed). Needs root and a
# static busybox (scripts/setup-deps.sh installs it).
set -uo pipefail
cd "$(dirname "$0")/.."
corral=$(realpath "${1:-target/debug/corral}")
runs=${2:-30}
seed=${3:-$RANDOM}
[[ $(id -u) == 0 ]] || { echo "run as root" >&2; exit 1; }
[[ -x $corral ]] || { echo "no corral binary at $corral" >&2; exit 1; }
RANDOM=$seed
echo "binary $corral, $runs runs, seed $seed"

work=$(mktemp -d /tmp/kill9-XXXXXX)
root=$work/state
bundle=$work/bundle
mkdir -p "$root" "$bundle/rootfs"/{bin,proc,dev,sys,tmp,etc,root}
bb=
for c in /bin/busybox /usr/bin/busybox; do [[ -x $c ]] && bb=$c && break; done
[[ -n $bb ]] || { echo "no busybox: apt-get install busybox-static" >&2; exit 1; }
cp "$bb" "$bundle/rootfs/bin/busybox"
for a in sh sleep true; do ln -s busybox "$bundle/rootfs/bin/$a"; done
(cd "$bundle" && "$corral" spec)
jq --arg r "$bundle/rootfs" '.process.terminal=false | .process.args=["sleep","1000"] | .root.path=$r' \
  "$bundle/config.json" >"$bundle/c.json" && mv "$bundle/c.json" "$bundle/config.json"

died=0 finished=0 failed=0 del_fail=0 left_state=0 left_cgroups=0 left_procs=0 left_mounts=0
prefix=kill9x-$$-
for ((i = 0; i < runs; i++)); do
  id=$prefix$i
  ms=$((RANDOM % 51))
  "$corral" --root "$root" create --bundle "$bundle" "$id" </dev/null >/dev/null 2>&1 &
  pid=$!
  sleep "$(printf '0.%03d' "$ms")"
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  rc=$?
  case $rc in
    137) ((died++)) ;;
    0) ((finished++)) ;;
    *) ((failed++)) ;;
  esac
  "$corral" --root "$root" delete --force "$id" </dev/null >/dev/null 2>"$work/err" || {
    ((del_fail++))
    echo "  run $i: delete --force failed: $(cat "$work/err")"
  }
  # What is left of this container.
  s=0 c=0 p=0 m=0
  [[ -e $root/$id ]] && s=1
  mapfile -t cgs < <(find /sys/fs/cgroup -maxdepth 6 -type d -name "*$id*" 2>/dev/null | sort -r)
  c=${#cgs[@]}
  procs=()
  for d in /proc/[0-9]*; do
    q=${d#/proc/}
    [[ $q == "$$" ]] && continue
    if grep -qs -- "$id" "$d/cmdline" "$d/cgroup" && ! grep -qs '^State:.*Z' "$d/status"; then
      procs+=("$q")
    fi
  done
  p=${#procs[@]}
  m=$(grep -c -- "$id" /proc/self/mountinfo)
  ((left_state += s, left_cgroups += c, left_procs += p, left_mounts += m))
  if ((s + c + p + m)); then
    echo "  run $i (kill after ${ms} ms, create rc $rc): left $s state dir, $c cgroup dirs, $p processes, $m mounts"
  fi
  # Remove it by hand, so the machine is clean for the next run.
  for q in "${procs[@]}"; do kill -9 "$q" 2>/dev/null; done
  sleep 0.05
  while read -r mp; do umount -l "$mp" 2>/dev/null; done < <(grep -- "$id" /proc/self/mountinfo | awk '{print $5}')
  for d in "${cgs[@]}"; do rmdir "$d" 2>/dev/null; done
  rm -rf "${root:?}/$id"
done
echo "died mid-create: $died, finished before the kill: $finished, failed: $failed, delete --force failed: $del_fail"
echo "left after delete --force: $left_state state dirs, $left_cgroups cgroup dirs, $left_procs processes, $left_mounts mounts"
rm -rf "$work"

#!/usr/bin/env bash
# Sets everything up and runs a demo container on a busybox root filesystem: it prints its
# pid (1), its hostname, its limits and what it can see.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-deps.sh
export PATH=$HOME/.cargo/bin:$PATH
bash scripts/build-corral.sh
CORRAL=$PWD/target/release/corral

B=$PWD/target/demo-bundle
rm -rf "$B"
bash scripts/make-demo-rootfs.sh
# The C library too (header, libcontainer.so, container.pc under /usr/local), so that
# `cc app.c $(pkg-config --cflags --libs container)` works.
bash scripts/install-lib.sh /usr/local
cat > "$B/rootfs/demo.sh" <<'DEMO'
echo "my pid:          $$"
echo "my hostname:     $(hostname)"
cg=/sys/fs/cgroup
echo "memory limit:    $(cat $cg/memory/memory.limit_in_bytes 2>/dev/null || cat $cg/memory.max)"
echo "pids limit:      $(cat $cg/pids/pids.max 2>/dev/null || cat $cg/pids.max)"
echo "cpu quota:       $(cat $cg/cpu/cpu.cfs_quota_us 2>/dev/null || cat $cg/cpu.max) per $(cat $cg/cpu/cpu.cfs_period_us 2>/dev/null || echo -) us"
echo "network devices: $(ls /sys/class/net | tr '\n' ' ')"
echo "processes I see:"; ps -o pid,user,args
DEMO
(cd "$B" && "$CORRAL" spec)
jq '.process.terminal = false
  | .hostname = "corral-demo"
  | .process.args = ["sh", "/demo.sh"]
  | .linux.resources.memory = {limit: 67108864}
  | .linux.resources.pids = {limit: 32}
  | .linux.resources.cpu = {quota: 50000, period: 100000}' \
  "$B/config.json" > "$B/config.json.new" && mv "$B/config.json.new" "$B/config.json"
echo "+ corral run -b $B corral-demo-$$"
"$CORRAL" run -b "$B" "corral-demo-$$"

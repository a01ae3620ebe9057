#!/usr/bin/env bash
# Runs one fuzz target for a time budget: scripts/fuzz.sh TARGET SECONDS
#   TARGET: config (config.json parsing, validation, plan, seccomp), seccomp (linux.seccomp ->
#   policy -> BPF), tar (layer tar unpacking: nothing may be written outside the layer dir).
#
# cargo-fuzz needs nightly flags (-Zsanitizer, -Cpasses=sancov); this uses the installed
# stable toolchain with RUSTC_BOOTSTRAP=1, which unlocks them (no nightly download). If the
# toolchain ships no AddressSanitizer runtime, the run falls back to --sanitizer none.
# Builds have debug assertions and overflow checks on (cargo-fuzz's default profile).
#
# Seeds are read from fuzz/corpus/TARGET (committed); new inputs go to
# fuzz/corpus-new/TARGET (ignored by git). FUZZ_MERGE=1 merges the inputs that add coverage
# into fuzz/corpus/TARGET afterwards, to commit. A crash is saved in fuzz/artifacts/TARGET/
# and the script exits non-zero; turn it into a regression test in the crate it hit.
set -euo pipefail
[[ $# == 2 ]] || { echo "usage: $0 TARGET SECONDS  (TARGET: config | seccomp | tar)" >&2; exit 2; }
target=$1 secs=$2
case $target in config|seccomp|tar) ;; *) echo "unknown target $target" >&2; exit 2 ;; esac
[[ $secs =~ ^[0-9]+$ ]] || { echo "SECONDS must be a number" >&2; exit 2; }
cd "$(dirname "$0")/../fuzz"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
san=()
libdir=$(rustc --print target-libdir)
if ! compgen -G "$libdir/librustc-*_rt.asan.a" >/dev/null; then
  echo "no AddressSanitizer runtime in $libdir: fuzzing without a sanitizer" >&2
  san=(--sanitizer none)
fi
mkdir -p "corpus-new/$target"
status=0
cargo fuzz run "${san[@]}" "$target" "corpus-new/$target" "corpus/$target" -- \
  -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 || status=$?
if [[ ${FUZZ_MERGE:-0} == 1 ]]; then
  cargo fuzz run "${san[@]}" "$target" "corpus/$target" "corpus-new/$target" -- -merge=1
fi
exit $status

#!/usr/bin/env bash
# Builds the release `corral` and `corral-full` (target/release/), the two binaries of the
# command line (`corral`, the front, hands every command but the engines' spawn verbs to
# `corral-full` beside it), each as a static PIE: glibc linked in,
# position-independent, so ASLR stays. Every start of a dynamically linked corral paid the
# dynamic loader (three libraries mapped, every symbol bound at once: BIND_NOW): a static
# PIE starts ~0.3 ms sooner (BENCHMARKS.md). `cargo rustc` gives the flag to this one binary
# only: put in RUSTFLAGS it would reach the proc-macro crates and the C and Python
# libraries, which cannot be linked statically. A plain `cargo build` still gives a
# working, dynamically linked corral.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$HOME/.cargo/bin:$PATH
for bin in corral corral-full; do
  cargo rustc --release -q -p corral-cli --bin "$bin" -- -C target-feature=+crt-static
done

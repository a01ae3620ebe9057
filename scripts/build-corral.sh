#!/usr/bin/env bash
# Builds the release `corral` (target/release/corral) as a static PIE: glibc linked in,
# position-independent, so ASLR stays. Every start of a dynamically linked corral paid the
# dynamic loader (three libraries mapped, every symbol bound at once: BIND_NOW): a static
# PIE starts ~0.3 ms sooner (BENCHMARKS.md). `cargo rustc` gives the flag to this one binary
# only: put in RUSTFLAGS it would reach the proc-macro crates and the C and Python
# libraries, which cannot be linked statically. A plain `cargo build` still gives a
# working, dynamically linked corral.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$HOME/.cargo/bin:$PATH
cargo rustc --release -q -p corral-cli --bin corral -- -C target-feature=+crt-static

#!/usr/bin/env bash
# Runs every test of corral (as root: the tests create real containers), plus the format
# and lint checks.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-deps.sh
export PATH=$HOME/.cargo/bin:$PATH
# The demo root filesystem: the C examples run on it, as after the README's set-up command.
bash scripts/make-demo-rootfs.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -q -- -D warnings
cargo test --workspace --no-fail-fast 2>&1

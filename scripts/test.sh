#!/usr/bin/env bash
# Runs every test of corral (as root: the tests create real containers), plus the format
# and lint checks, then builds the Python module into target/pyenv and runs its pytest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-deps.sh
export PATH=$HOME/.cargo/bin:$PATH
# The demo root filesystem: the C examples run on it, as after the README's set-up command.
bash scripts/make-demo-rootfs.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -q -- -D warnings
cargo test --workspace --no-fail-fast 2>&1
# The Python module: installed into the venv setup-deps made (maturin from that venv, the
# workspace's target dir), then its tests, run from here so that the installed module is the
# one imported.
export PATH=$PWD/target/pyenv/bin:$PATH
pip install -q --disable-pip-version-check --no-build-isolation ./python
python -m pytest -q -p no:cacheprovider --basetemp "$PWD/target/pytest-tmp" python/tests

#!/usr/bin/env bash
# The test suite: Rust unit/integration tests and the Python suite
# (unit + real-kernel integration; needs root).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
cargo test --workspace --exclude moorage-python -q 2>&1 | tail -n 40
python3 -m pip install -q --root-user-action=ignore --no-deps ./plugins/moorage-hardened
python3 -m pytest -q -p no:cacheprovider tests plugins/moorage-hardened/tests "$@"

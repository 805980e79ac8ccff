#!/usr/bin/env bash
# Install what the tests need and run the whole pytest suite (the command CI runs).
# Extra arguments go to pytest, e.g. scripts/test.sh -k session -x
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup_env.sh" test,onnx,app
"$ROOT/scripts/install_xvfb.sh"
VENV="${WAVESEG_VENV:-$ROOT/.venv}"
cd "$ROOT"
exec "$VENV/bin/python" -m pytest "$@"

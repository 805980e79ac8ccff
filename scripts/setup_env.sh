#!/usr/bin/env bash
# Create (if missing) and fill the project's virtual environment; source it afterwards.
# Usage: scripts/setup_env.sh [EXTRAS]   e.g. scripts/setup_env.sh test,onnx
# The environment is reused when pyproject.toml and this script have not changed (a stamp
# file holds their hash), so repeated runs of test.sh and demo.sh cost seconds.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${WAVESEG_VENV:-$ROOT/.venv}"
EXTRAS="${1:-}"
# torch is pinned here (what CI uses), never in the package metadata; torchvision is needed
# because segment_anything and timm import it.
TORCH_PINS="torch==2.14.1 torchvision==0.29.1"
PYTHON="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
  echo "creating virtual environment $VENV" >&2
  "$PYTHON" -m venv "$VENV"
fi
STAMP="$VENV/.waveseg-install-stamp"
WANT="$(cat "$ROOT/pyproject.toml" "$ROOT/scripts/setup_env.sh" | sha256sum | cut -c1-16)-$EXTRAS"
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$WANT" ]; then
  echo "installing dependencies into $VENV (torch takes about a minute) ..." >&2
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q $TORCH_PINS
  SPEC="$ROOT"
  [ -n "$EXTRAS" ] && SPEC="$ROOT[$EXTRAS]"
  "$VENV/bin/python" -m pip install -q -e "$SPEC"
  echo "$WANT" > "$STAMP"
fi

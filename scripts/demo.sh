#!/usr/bin/env bash
# On a fresh machine: create .venv if missing, install WaveSeg, and segment the embedded sample.
# Writes waveseg-demo/demo_mask.nii.gz, demo_mask.seg.nrrd and demo_overlay.png (look at it).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup_env.sh"
VENV="${WAVESEG_VENV:-$ROOT/.venv}"
exec "$VENV/bin/waveseg" demo "$@"

#!/usr/bin/env bash
# On a fresh machine: create .venv if missing, install WaveSeg, and segment the embedded sample:
# a box, a corrective click, propagation through the volume (waveseg/demo.py), each step's Dice.
# Writes waveseg-demo/demo_1_box.png, demo_2_click.png, demo_3_propagation.png (look at them),
# demo_mask.nii.gz and demo_mask.seg.nrrd.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup_env.sh"
VENV="${WAVESEG_VENV:-$ROOT/.venv}"
exec "$VENV/bin/waveseg" demo "$@"

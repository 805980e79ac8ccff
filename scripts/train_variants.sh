#!/usr/bin/env bash
# Train several configs side by side on one machine (an accelerator lent for a few minutes),
# each in its own process and output folder, all from the same --init weights. A light model
# leaves most of one GPU idle, so four runs at once cost the device time of one.
#
#   PYTHON=python3 bash scripts/train_variants.sh SLICES_DIR INIT_WEIGHTS OUT_DIR CONFIG.json...
#
# Each run writes OUT_DIR/<config name>/ (model, card, log.jsonl, stdout.log); the exit status
# is non-zero if any run failed.
set -uo pipefail
if [ $# -lt 4 ]; then
  echo "usage: $0 SLICES_DIR INIT_WEIGHTS OUT_DIR CONFIG.json..." >&2
  exit 2
fi
slices=$1 init=$2 out=$3
shift 3
threads=$(( $(nproc) / $# ))
pids=() names=()
for config in "$@"; do
  name=$(basename "$config" .json)
  mkdir -p "$out/$name"
  OMP_NUM_THREADS=$(( threads > 0 ? threads : 1 )) "${PYTHON:-python3}" scripts/train.py --config "$config" \
    --init "$init" --slices "$slices" --out "$out/$name" > "$out/$name/stdout.log" 2>&1 &
  pids+=($!) names+=("$name")
done
status=0
for i in "${!pids[@]}"; do
  if ! wait "${pids[$i]}"; then
    echo "run ${names[$i]} failed; see its stdout.log:" >&2
    tail -5 "$out/${names[$i]}/stdout.log" >&2
    status=1
  fi
done
exit $status

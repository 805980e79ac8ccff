#!/usr/bin/env bash
# Rerun every headline number of README.md (the "Headline numbers" table: rows 1-5, the
# cold-start figures, 7 scribbles, 8 proposals from examples), each with the command the README
# names, one after another.
#
#   bash scripts/reproduce_benchmarks.sh            # every row
#   bash scripts/reproduce_benchmarks.sh 3 cold     # only these rows (1 2 3 4 5 cold 7 8)
#
# Needs the fetched data (scripts/fetch_data.py; the held-out slices from scripts/build_slices.py)
# and prepares what the README's commands assume: the never-seen lesion slices (row 2) and
# runs/shipped-3986, the previous default taken from git (row 4). runs/cpu-zoom2 (row 1's third
# column) is not in git: row 1 runs without it when it is absent. Reports go to reports/ as the
# README's commands say. Hours on a 2-core CPU (rows 1, 2 and 4 most); run it on a quiet machine,
# since the speed rows measure the machine. Exit status: the number of rows that failed.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-.venv/bin/python}
DATA=${WAVESEG_DATA:-$HOME/.cache/waveseg}
rows=("$@")
[ ${#rows[@]} -eq 0 ] && rows=(1 2 3 4 5 cold 7 8)
failed=0

run() {  # run a command, echoed first; count a failure but go on with the next row
  echo "+ $*" >&2
  "$@" || { echo "FAILED: $*" >&2; failed=$((failed + 1)); }
}

for row in "${rows[@]}"; do
  echo "=== README headline row $row ===" >&2
  case $row in
    1)
      extra=()
      [ -f runs/cpu-zoom2/wave-gms.json ] && extra=(runs/cpu-zoom2/wave-gms.json)
      run "$PY" scripts/evaluate.py --models litemedsam default "${extra[@]}" --limit 100 \
        --runtime auto --report reports/benchmark_onnx.md ;;
    2)
      if [ ! -f "$DATA/slices_unseen_lesions/test.npz" ]; then
        run "$PY" scripts/fetch_data.py --only pyradiomics
        run "$PY" scripts/build_slices.py --split configs/eval_unseen_lesions.json --out "$DATA/slices_unseen_lesions"
      fi
      run "$PY" scripts/evaluate.py --models litemedsam default --limit 10000 --runtime auto \
        --report reports/benchmark_unseen_lesions.md --slices "$DATA/slices_unseen_lesions/test.npz" ;;
    3)
      run "$PY" scripts/bench_engine.py --repeats 15 ;;
    4)
      if [ ! -f runs/shipped-3986/wave-gms.json ]; then  # the previous default, as README says
        mkdir -p runs/shipped-3986
        git show 5ff8f59:WaveSegSlicer/Resources/Models/wave-gms.safetensors > runs/shipped-3986/wave-gms.safetensors
        git show 5ff8f59:WaveSegSlicer/Resources/Models/wave-gms.json > runs/shipped-3986/wave-gms.json
      fi
      run "$PY" scripts/bench_volume.py --models litemedsam runs/shipped-3986/wave-gms.json default ;;
    5)
      run "$PY" scripts/bench_adapt.py --json reports/bench_adapt.json ;;
    cold)
      run "$PY" scripts/bench_engine.py --cold-start --repeats 5 ;;
    7)  # row 2 prepares the never-seen lesion slices
      run "$PY" scripts/evaluate.py --models litemedsam default --limit 20 --report reports/benchmark_strokes.md
      run "$PY" scripts/evaluate.py --models litemedsam default --limit 20 \
        --slices "$DATA/slices_unseen_lesions/test.npz" --report reports/benchmark_strokes_unseen_lesions.md ;;
    8)
      run "$PY" scripts/bench_in_context.py --out reports/bench_in_context ;;
    *)
      echo "unknown row $row (use 1 2 3 4 5 cold 7 8)" >&2
      failed=$((failed + 1)) ;;
  esac
done
echo "rows failed: $failed" >&2
exit "$failed"

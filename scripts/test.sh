#!/usr/bin/env bash
# Install what the tests need and run the whole pytest suite (the command CI runs).
# Extra arguments go to pytest, e.g. scripts/test.sh -k session -x
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup_env.sh" test,onnx,app
"$ROOT/scripts/install_xvfb.sh"
"$ROOT/scripts/install_nginx.sh"
VENV="${WAVESEG_VENV:-$ROOT/.venv}"
cd "$ROOT"
# A hard crash (abort, segfault) ends pytest without a summary; its thread stacks go to this file,
# and the crashing test's stack is printed last, where a truncated CI log still shows it.
export WAVESEG_CRASH_LOG="${WAVESEG_CRASH_LOG:-$(mktemp -t waveseg-crash.XXXXXX)}"
status=0
"$VENV/bin/python" -m pytest "$@" || status=$?
if [ "$status" -gt 5 ] && [ -s "$WAVESEG_CRASH_LOG" ]; then
  echo "=== pytest crashed (exit $status); the stacks at the crash (Extension modules list left out):" >&2
  grep -v "^Extension modules" "$WAVESEG_CRASH_LOG" | head -120 >&2
else
  rm -f "$WAVESEG_CRASH_LOG"  # kept only when it holds a crash
fi
exit "$status"

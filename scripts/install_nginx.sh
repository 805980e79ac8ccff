#!/usr/bin/env bash
# The server's tests run two `waveseg serve` backends behind a real nginx on loopback
# (Testing/test_server_nginx.py): install Debian's nginx (nginx-light is enough: upstream hash).
# The test runs its own nginx as a non-daemon with a generated config; the system service is not used.
set -euo pipefail
command -v nginx >/dev/null 2>&1 && exit 0
[ -x /usr/sbin/nginx ] && exit 0
SUDO=""
[ "$(id -u)" != 0 ] && SUDO="sudo"
echo "installing nginx-light (apt-get) for the server tests ..." >&2
$SUDO apt-get install -y -q nginx-light >/dev/null || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q nginx-light >/dev/null; }

#!/usr/bin/env bash
# The desktop app's tests and screenshots run Qt windows with VTK views on a virtual X display:
# Xvfb plus the X libraries Qt's xcb platform plugin loads (libxcb-icccm4, libxcb-keysyms1, ...).
set -euo pipefail
PACKAGES="xvfb libxcb-icccm4 libxcb-keysyms1 libxkbcommon-x11-0 libxcb-xinerama0 libxcb-randr0 libxcb-render-util0 libxcb-image0 libxcb-shape0 libxcb-cursor0"
missing=""
for p in $PACKAGES; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" != 0 ] && SUDO="sudo"
echo "installing$missing (apt-get) for the app tests ..." >&2
$SUDO apt-get install -y -q $missing >/dev/null || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q $missing >/dev/null; }

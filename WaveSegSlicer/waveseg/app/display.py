"""A virtual X display (Xvfb) for headless app screenshots and tests: VTK views inside Qt windows need
a real X server; ``scripts/test.sh`` installs xvfb, libxcb-icccm4 and libxcb-keysyms1."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path


def start_xvfb(size: str = "1280x1024x24") -> subprocess.Popen:
    """Start Xvfb on a free display, point DISPLAY and Qt at it, and return the process.

    Xvfb runs with ``-terminate``: it exits by itself when its last client (our Qt application)
    disconnects at process exit. Killing it earlier would make Qt abort the process with an X
    I/O error, so callers do not terminate it.
    """
    if shutil.which("Xvfb") is None:
        raise RuntimeError("Xvfb is not installed: apt-get install xvfb libxcb-icccm4 libxcb-keysyms1 (scripts/test.sh does)")
    number = next(n for n in range(90, 200) if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists())
    process = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", size, "-nolisten", "tcp", "-terminate"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not Path(f"/tmp/.X11-unix/X{number}").exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"Xvfb did not start on display :{number}")
        time.sleep(0.05)
    os.environ["DISPLAY"] = f":{number}"
    os.environ["QT_QPA_PLATFORM"] = "xcb"
    return process


def grab(widget):
    """A screen grab of ``widget`` as a QImage (VTK-drawn widgets grab black with ``widget.grab()``)."""
    from Qt import QtWidgets

    top_left = widget.mapToGlobal(widget.rect().topLeft())
    screen = QtWidgets.QApplication.primaryScreen()
    return screen.grabWindow(0, top_left.x(), top_left.y(), widget.width(), widget.height()).toImage()

"""A virtual X display (Xvfb) for headless app screenshots and tests: VTK views inside Qt windows need
a real X server; ``scripts/install_xvfb.sh`` installs xvfb and the X libraries Qt's xcb plugin loads."""

from __future__ import annotations

import ctypes
import os
import select
import shutil
import signal
import subprocess
import time

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _die_with_parent() -> None:
    """Runs in the Xvfb child before exec: the kernel sends it SIGTERM when our process is gone."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def start_xvfb(size: str = "1280x1024x24", timeout_s: float = 30.0) -> subprocess.Popen:
    """Start Xvfb on a free display, point DISPLAY and Qt at it, and return the process.

    ``-displayfd`` lets Xvfb pick a free display itself (it takes the lock atomically) and report
    it only once it accepts connections; waiting for the socket file instead can race with the server
    (Qt aborted the process: "could not connect to display"). The server lives exactly as long as
    this process (parent-death signal): stopping it while Qt is still connected would make Qt end
    the process with an X I/O error, and ``-terminate`` would stop it as soon as any short-lived
    client disconnects.
    """
    if shutil.which("Xvfb") is None:
        raise RuntimeError("Xvfb is not installed: apt-get install xvfb libxcb-icccm4 libxcb-keysyms1 (scripts/install_xvfb.sh does)")
    read_end, write_end = os.pipe()
    try:
        process = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-screen", "0", size, "-nolisten", "tcp"],
                                   pass_fds=(write_end,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   preexec_fn=_die_with_parent)
        os.close(write_end)
        number = _read_line(read_end, timeout_s)
    finally:
        os.close(read_end)
    if not number.isdigit():
        process.kill()
        raise RuntimeError(f"Xvfb did not report a display within {timeout_s:.0f} s (exit code {process.poll()})")
    os.environ["DISPLAY"] = f":{number}"
    os.environ["QT_QPA_PLATFORM"] = "xcb"
    return process


def _read_line(fd: int, timeout_s: float) -> str:
    """The display number Xvfb writes to ``-displayfd``, read up to its newline: Xvfb writes the
    number and the newline separately and dies ("Cannot write display number") if the pipe is
    closed in between."""
    data, deadline = b"", time.monotonic() + timeout_s
    while not data.endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        chunk = os.read(fd, 64) if ready else b""
        if not chunk:  # timed out, or Xvfb exited
            break
        data += chunk
    return data.decode().strip()


def grab(widget):
    """A screen grab of ``widget`` as a QImage (VTK-drawn widgets grab black with ``widget.grab()``)."""
    from Qt import QtWidgets

    top_left = widget.mapToGlobal(widget.rect().topLeft())
    screen = QtWidgets.QApplication.primaryScreen()
    return screen.grabWindow(0, top_left.x(), top_left.y(), widget.width(), widget.height()).toImage()

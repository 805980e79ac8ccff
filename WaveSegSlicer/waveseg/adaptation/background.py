"""Few-shot adaptation as a background process whose JSON progress lines a UI polls.

Adaptation takes about a minute of full CPU. As in SlicerMONAIAuto3DSeg, it runs in a separate
process (``python -m waveseg.adaptation.worker``; ``PythonSlicer`` in Slicer), a reader thread
moves each stdout line into a queue, and the UI (the Slicer module, the desktop app) polls the
queue with a ``QTimer`` (``poll`` never blocks; nothing here imports Qt). Cancel terminates the
process group; the worker writes its profile only after finishing, atomically, so a cancelled
run leaves nothing behind. The training data go to
a temporary ``.npz`` that is removed when the process ends.
"""

from __future__ import annotations

import collections
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Sequence

import numpy as np


def annotated_slices(volume: np.ndarray, mask: np.ndarray, axis: int = 0, min_pixels: int = 20) -> tuple[list, list, list[int]]:
    """Slices of a (Z, Y, X) volume where the (Z, Y, X) segment mask has at least ``min_pixels``.

    Returns (images, masks, indices): 2D arrays along ``axis`` and their slice indices.
    """
    from waveseg.volume_geometry import take_slice

    mask = np.asarray(mask, bool)
    if mask.shape != volume.shape:
        raise ValueError(f"segment mask {mask.shape} and volume {volume.shape} differ in shape")
    indices = [i for i in range(volume.shape[axis]) if take_slice(mask, axis, i).sum() >= min_pixels]
    return [take_slice(volume, axis, i) for i in indices], [take_slice(mask, axis, i) for i in indices], indices


class AdaptationProcess:
    """A running ``waveseg.adaptation.worker``; construct, then ``poll()`` from a timer.

    Arguments:
      images, masks: k 2D slices (H, W) and their binary masks (k >= 2: one is held back).
      name: profile name; model: model name or card path; python: interpreter to run
      (in Slicer, ``shutil.which("PythonSlicer")``); env: extra environment variables.
    """

    def __init__(self, images: Sequence[np.ndarray], masks: Sequence[np.ndarray], name: str, model: str = "default",
                 structure: str = "structure", method: str = "decoder", time_budget_s: float = 30.0, steps: int = 400,
                 window: tuple[float, float] | None = None, python: str | None = None, env: dict | None = None) -> None:
        handle, self.data_path = tempfile.mkstemp(prefix="waveseg-adapt-", suffix=".npz")
        os.close(handle)
        np.savez(self.data_path, images=np.stack(images), masks=np.stack(masks).astype(bool))
        command = [python or sys.executable, "-m", "waveseg.adaptation.worker", "--model", str(model),
                   "--data", self.data_path, "--name", name, "--structure", structure, "--method", method,
                   "--time-budget", str(time_budget_s), "--steps", str(steps)]
        if window is not None:
            command += ["--window", str(window[0]), str(window[1])]
        self.messages: queue.Queue[dict] = queue.Queue()
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=20)  # both reader threads append
        self.result: dict | None = None
        # own process group (POSIX) so that cancel ends its children too; on Windows no console window
        # pops up (Slicer hides it for its own subprocesses the same way, slicer/util.py:3911-3916)
        platform = {"creationflags": subprocess.CREATE_NO_WINDOW} if os.name == "nt" else {"start_new_session": True}
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        encoding="utf-8", errors="replace", env={**os.environ, **(env or {})}, **platform)
        self._readers = [threading.Thread(target=self._read_stdout, daemon=True),
                         threading.Thread(target=self._read_stderr, daemon=True)]
        for reader in self._readers:
            reader.start()

    def _read_stdout(self) -> None:
        for line in self.process.stdout:
            try:
                self.messages.put(json.loads(line))
            except json.JSONDecodeError:
                self.stderr_tail.append(line.rstrip())  # a stray print from a library: keep it for the log

    def _read_stderr(self) -> None:
        for line in self.process.stderr:
            self.stderr_tail.append(line.rstrip())

    def poll(self) -> list[dict]:
        """Messages received since the last call (never blocks). When the process has ended and
        all output is read, a final message is added if the worker said nothing conclusive."""
        out = []
        while True:
            try:
                out.append(self.messages.get_nowait())
            except queue.Empty:
                break
        for message in out:
            if message.get("event") in ("done", "error"):
                self.result = message
        if self.finished and self.result is None:
            tail = "\n".join(list(self.stderr_tail)[-5:])
            self.result = {"event": "error", "message": f"the adaptation process ended with code {self.process.returncode}\n{tail}"}
            out.append(self.result)
        return out

    @property
    def finished(self) -> bool:
        """True once the process has exited and its output has been read."""
        if self.process.poll() is None or any(r.is_alive() for r in self._readers):
            return False
        if self.messages.empty():
            Path(self.data_path).unlink(missing_ok=True)
            return True
        return False

    def cancel(self) -> None:
        """Stop the process (and its children); no profile is written."""
        if self.process.poll() is not None:
            return
        if os.name == "nt":
            # Slicer's PythonSlicer.exe is a launcher that starts python-real.exe: end the whole tree
            subprocess.run(["taskkill", "/T", "/F", "/PID", str(self.process.pid)], capture_output=True,
                           creationflags=subprocess.CREATE_NO_WINDOW)
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            self.process.terminate()

    def wait(self, timeout: float | None = None) -> int:
        """Block until the process ends (tests and scripts; the UI polls instead)."""
        return self.process.wait(timeout)

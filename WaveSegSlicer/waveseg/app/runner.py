"""One worker thread for every model call; results come back on the GUI thread.

The GUI thread never runs the model: ``submit`` hands a callable to a single worker thread
(one at a time, so two calls never race on the model) and a ``QTimer`` on the GUI thread
collects the result and calls back there, where widgets may be touched. A submit while busy is
refused (the caller tells the user), not queued behind a long propagation.
"""

from __future__ import annotations

import concurrent.futures
import time
from typing import Any, Callable

from Qt import QtCore

POLL_MS = 15


class ModelRunner(QtCore.QObject):
    """Runs model calls off the GUI thread. ``busyChanged(bool)`` follows the running state."""

    busyChanged = QtCore.Signal(bool)

    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="waveseg-app-model")
        self._job = None
        self._timer = QtCore.QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._poll)
        self.last_seconds = 0.0

    @property
    def busy(self) -> bool:
        return self._job is not None

    def submit(self, function: Callable[[], Any], on_done: Callable[[Any], None] | None = None,
               on_error: Callable[[Exception], None] | None = None) -> bool:
        """Start ``function()`` on the worker; False (and nothing started) while another call runs."""
        if self._job is not None:
            return False
        self._job = (self._pool.submit(function), on_done, on_error, time.perf_counter())
        self._timer.start()
        self.busyChanged.emit(True)
        return True

    def _poll(self) -> None:
        future, on_done, on_error, started = self._job
        if not future.done():
            return
        self._timer.stop()
        self._job = None
        self.last_seconds = time.perf_counter() - started
        self.busyChanged.emit(False)
        error = future.exception()
        if error is None:
            if on_done is not None:
                on_done(future.result())
        elif on_error is not None:
            on_error(error)

    def wait(self, timeout_s: float = 600.0) -> None:
        """Process events until the running call has finished (scripts and tests)."""
        deadline = time.monotonic() + timeout_s
        while self._job is not None and time.monotonic() < deadline:
            QtCore.QCoreApplication.processEvents(QtCore.QEventLoop.AllEvents, 20)
            time.sleep(0.005)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

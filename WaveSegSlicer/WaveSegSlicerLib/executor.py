"""One long-lived worker thread for every model call, with the UI kept alive meanwhile.

Model calls (encoding a slice, decoding a prompt, propagating) take from milliseconds to
minutes. Running them on Slicer's main thread would freeze the application, and running them
on a fresh thread each time would let two calls race on the same model. So, as
SlicerNNInteractive does, all calls go to one worker thread, and the caller waits in short
slices (``wait(0.03)``) while pumping Qt events (``slicer.app.processEvents``), which keeps
views rendering and the Cancel button clickable. A re-entrancy guard refuses a second call
while one is running (a user clicking again during a propagation). Package installation never
runs here: pip must run on the main thread.
"""

from __future__ import annotations

import concurrent.futures
from typing import Any, Callable

PUMP_INTERVAL_S = 0.03


class BusyError(RuntimeError):
    """Another WaveSeg model call is still running."""


class ModelExecutor:
    """Runs callables on a single worker thread; ``run`` blocks the caller but pumps events.

    Arguments:
      pump: called every ``PUMP_INTERVAL_S`` while waiting (in Slicer: ``slicer.app.processEvents``).
    """

    def __init__(self, pump: Callable[[], None] | None = None) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="waveseg-model")
        self._pump = pump
        self._running = False

    @property
    def busy(self) -> bool:
        return self._running

    def run(self, function: Callable[..., Any], *args, **kwargs) -> Any:
        """Run ``function(*args, **kwargs)`` on the worker thread; return its result or raise its error."""
        if self._running:
            raise BusyError("WaveSeg is still working on the previous request; wait for it or press Cancel")
        self._running = True
        try:
            future = self._pool.submit(function, *args, **kwargs)
            while True:
                try:
                    return future.result(timeout=PUMP_INTERVAL_S)
                except concurrent.futures.TimeoutError:
                    if self._pump is not None:
                        self._pump()
        finally:
            self._running = False

    def shutdown(self) -> None:
        """Stop the worker thread after the current call (called from the module's cleanup)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

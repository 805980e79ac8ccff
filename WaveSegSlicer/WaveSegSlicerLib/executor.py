"""One long-lived worker thread for every model call, with the UI kept alive meanwhile.

Model calls (encoding a slice, decoding a prompt, propagating) take from milliseconds to
minutes. Running them on Slicer's main thread would freeze the application, and running them
on a fresh thread each time would let two calls race on the same model. So, as
SlicerNNInteractive does, all calls go to one worker thread, and the caller waits in short
slices (``wait(0.03)``) while pumping Qt events (``slicer.app.processEvents``), which keeps
views rendering and the Cancel button clickable. A re-entrancy guard refuses a second call
while one is running (a user clicking again during a propagation). Package installation never
runs here: pip must run on the main thread.

One executor serves every clone of the effect (Slicer makes one per Segment Editor widget) and the
module: the ``Segmenter`` they share is not thread-safe, so two editors must not run it at once.
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
        self._future: concurrent.futures.Future | None = None

    @property
    def busy(self) -> bool:
        return self._running

    def run(self, function: Callable[..., Any], *args, **kwargs) -> Any:
        """Run ``function(*args, **kwargs)`` on the worker thread; return its result or raise its error."""
        if self._running:
            raise BusyError("WaveSeg is still working on the previous request; wait for it or press Cancel")
        self._running = True
        try:
            future = self._future = self._pool.submit(function, *args, **kwargs)
            while True:
                try:
                    return future.result(timeout=PUMP_INTERVAL_S)
                except concurrent.futures.TimeoutError:
                    if self._pump is not None:
                        self._pump()
        finally:
            self._running = False

    def wait(self) -> None:
        """Block (without pumping) until the call in flight, if any, has returned.

        For Cancel: the caller first asks the running call to stop (its ``cancel`` callback),
        then waits here before it closes what that call works on. Errors stay with ``run``.
        """
        if self._running and self._future is not None:
            concurrent.futures.wait([self._future])

    def shutdown(self) -> None:
        """Stop the worker thread after the current call (called from the module's cleanup)."""
        self._pool.shutdown(wait=False, cancel_futures=True)


_shared: ModelExecutor | None = None


def shared_executor(pump: Callable[[], None] | None = None) -> ModelExecutor:
    """The one executor for all model calls of this process (created on first use with ``pump``)."""
    global _shared
    if _shared is None:
        _shared = ModelExecutor(pump=pump)
    return _shared


def shutdown_shared() -> None:
    """Stop the shared worker (the module's cleanup at application exit)."""
    global _shared
    if _shared is not None:
        _shared.shutdown()
        _shared = None

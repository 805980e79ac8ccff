"""Real WaveSeg servers on loopback for the tests: in a thread of the test process, or as a
``waveseg serve`` subprocess on a socket the test bound (so no port can be taken in between).

Readiness is a condition (uvicorn's ``started`` flag, then a 200 from ``/v1/health``), polled
with a deadline that only a hung server reaches; no step waits a fixed time.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

READY_DEADLINE_S = 300  # a hung server, not a slow one: startup loads a model on a busy machine
HANG_GUARD_S = 600  # only against hanging forever; a wait reaching it is a failure
ROOT = Path(__file__).resolve().parent.parent


def bound_socket(port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(64)
    return sock


def health(port: int, ssl_context=None) -> int | None:
    """HTTP status of GET /v1/health (over TLS with ``ssl_context``), or None when nothing answers."""
    try:
        conn = (http.client.HTTPSConnection("127.0.0.1", port, timeout=30, context=ssl_context) if ssl_context
                else http.client.HTTPConnection("127.0.0.1", port, timeout=30))
        conn.request("GET", "/v1/health")
        status = conn.getresponse().status
        conn.close()
        return status
    except OSError:
        return None


def wait_until(condition, what: str, deadline_s: float = READY_DEADLINE_S, alive=lambda: True) -> None:
    """Poll ``condition`` until true; fail after the deadline or as soon as ``alive()`` is false."""
    end = time.monotonic() + deadline_s
    while not condition():
        if not alive():
            raise AssertionError(f"gave up waiting for {what}: the process ended")
        if time.monotonic() > end:
            raise AssertionError(f"gave up waiting for {what} after {deadline_s} s")
        time.sleep(0.05)  # the poll interval of a condition wait, not a synchronisation


class ThreadServer:
    """uvicorn serving ``create_app(config, pool)`` in a thread; ``stop()`` shuts it down."""

    def __init__(self, config, pool=None, port: int = 0) -> None:
        import uvicorn

        from waveseg.server.app import create_app

        self.app = create_app(config, pool)
        self.sock = bound_socket(port)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        wait_until(lambda: self.server.started, "the server thread to start", alive=self.thread.is_alive)
        wait_until(lambda: health(self.port) == 200, "the health endpoint", alive=self.thread.is_alive)

    @property
    def state(self):
        return self.app.state.server

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join()
        self.sock.close()


class ProcessServer:
    """``python -m waveseg.cli serve --fd N ...`` as a subprocess; ``kill()`` ends it hard."""

    def __init__(self, *args: str, env: dict | None = None, port: int = 0, ssl_context=None) -> None:
        self.sock = bound_socket(port)
        self.port = self.sock.getsockname()[1]
        self.url = f"{'https' if ssl_context else 'http'}://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "waveseg.cli", "serve", "--fd", str(self.sock.fileno()), "--log-level", "warning", *args]
        self.process = subprocess.Popen(command, pass_fds=[self.sock.fileno()], cwd=ROOT, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})})
        wait_until(lambda: health(self.port, ssl_context) == 200, "the server process", alive=lambda: self.process.poll() is None)

    def output(self) -> str:
        return self.process.stdout.read() if self.process.poll() is not None else ""

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self.process.wait()
        self.sock.close()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.sock.close()

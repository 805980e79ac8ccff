"""The server's settings (one frozen object, built by ``waveseg serve`` or by a test)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

MiB = 2**20


@dataclass
class ServerConfig:
    """Arguments:
      tokens: accepted bearer tokens (``waveseg.server.auth.read_tokens``); empty = no
        authentication, allowed only on a loopback address (``waveseg.server.main`` checks).
      models: model names or card paths the server offers; the first is the default.
      device: torch device for every model ("cuda" when present, else "cpu"; "auto" picks).
      max_volume_mb: largest decompressed volume a client may upload.
      max_body_mb: largest request body (the compressed upload, a slice mask, JSON).
      session_timeout_s: a session idle this long is closed and its memory freed.
      max_sessions_mb: LRU bound on the estimated memory of all sessions (volume, masks, undo
        history, embedding cache); the least recently used idle sessions are closed beyond it.
      session_cache_mb: each session's slice-embedding cache (4 MiB per slice).
      model_threads: threads that run model calls (1: calls queue, as on one GPU).
      prefetch: let sessions encode neighbouring slices in the background (off: with many users
        speculative encoding takes the device from other users' clicks).
      clock: time source (seconds, monotonic), replaceable so tests can expire sessions without waiting.
      on_progress: called on the model thread after each propagation progress event has been
        queued for the client, with (session id, done, planned); instrumentation and tests only.
    """

    tokens: tuple[str, ...] = ()
    models: tuple[str, ...] = ("default",)
    device: str = "auto"
    max_volume_mb: float = 1024
    max_body_mb: float = 512
    session_timeout_s: float = 3600
    max_sessions_mb: float = 8192
    session_cache_mb: float = 256
    model_threads: int = 1
    prefetch: bool = False
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    on_progress: Callable[[str, int, int], None] | None = field(default=None, repr=False)

    @property
    def max_volume_bytes(self) -> int:
        return int(self.max_volume_mb * MiB)

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * MiB)

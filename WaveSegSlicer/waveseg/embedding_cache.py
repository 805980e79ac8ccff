"""A bounded, thread-safe LRU cache of slice embeddings, with optional background prefetch.

Each entry is one ``EncodedImage`` (a (1, 256, 64, 64) float32 embedding: 4 MiB). The cache
holds at most ``limit_mb`` MiB of embeddings and evicts the least recently used. Keys are
(axis, index) of a slice; ``clear()`` must be called when the volume's voxels change, so no
stale embedding survives an image change (``VolumeSession`` does it).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Hashable

DEFAULT_LIMIT_MB = 512


class EmbeddingCache:
    def __init__(self, encode: Callable[[Hashable], object], limit_mb: float = DEFAULT_LIMIT_MB) -> None:
        if limit_mb <= 0:
            raise ValueError(f"cache limit must be positive (MiB); got {limit_mb}")
        self._encode = encode
        self.limit_bytes = int(limit_mb * 2**20)
        self._entries: OrderedDict[Hashable, object] = OrderedDict()
        self._sizes: dict[Hashable, int] = {}
        self._lock = threading.RLock()
        self._pending: dict[Hashable, Future] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._generation = 0  # bumped by clear(); prefetches of an older generation are dropped

    @property
    def bytes_used(self) -> int:
        with self._lock:
            return sum(self._sizes.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._entries

    def get(self, key: Hashable):
        """The embedding for ``key``, computing it (or waiting for its prefetch) if needed."""
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
            pending = self._pending.get(key)
        if pending is not None:
            pending.result()
            with self._lock:
                if key in self._entries:
                    self._entries.move_to_end(key)
                    return self._entries[key]
        return self._store(key, self._encode(key), self._generation)

    def _store(self, key: Hashable, value, generation: int):
        size = int(value.embedding.element_size() * value.embedding.nelement())
        with self._lock:
            if generation != self._generation:
                return value
            self._entries[key] = value
            self._sizes[key] = size
            self._entries.move_to_end(key)
            while sum(self._sizes.values()) > self.limit_bytes and len(self._entries) > 1:
                old, _ = self._entries.popitem(last=False)
                del self._sizes[old]
        return value

    def prefetch(self, keys: list[Hashable]) -> None:
        """Encode ``keys`` in one background thread (skips those cached or already queued)."""
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="waveseg-prefetch")
            generation = self._generation
            for key in keys:
                if key in self._entries or key in self._pending:
                    continue

                def work(key=key, generation=generation):
                    try:
                        self._store(key, self._encode(key), generation)
                    finally:
                        with self._lock:
                            self._pending.pop(key, None)

                self._pending[key] = self._executor.submit(work)

    def wait(self) -> None:
        """Block until queued prefetches are done."""
        for future in list(self._pending.values()):
            future.result()

    def clear(self) -> None:
        """Forget every embedding (call when the image changes)."""
        with self._lock:
            self._generation += 1
            self._entries.clear()
            self._sizes.clear()

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

"""Per-user volume sessions held by the server: the real ``VolumeSession``, plus what the wire needs.

Each ``ServerSession`` keeps a copy of the mask as last sent (``shadow``) so that a reply carries
only the axial slices an action changed; a ``revision`` that every change bumps, so a client
whose copy is stale (another client changed the session) is told instead of being sent a wrong
difference; a lock that lets one action run at a time; and a cancel flag for propagation.

``SessionStore`` closes sessions idle past the time-out and, beyond the memory bound, the least
recently used idle ones; an ended session's id is remembered (boundedly) to say why it is gone.
"""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from waveseg.remote.wire import mask_to_json

ENDED_REMEMBERED = 4096


class SessionGone(Exception):
    """The session does not exist (``reason`` says whether it never did, expired or was evicted)."""

    def __init__(self, session_id: str, reason: str) -> None:
        super().__init__(reason)
        self.session_id, self.reason = session_id, reason


class ServerFull(Exception):
    """No room for a new session within the memory bound even after closing idle ones."""


@dataclass(eq=False)
class ServerSession:
    id: str
    owner: int | None  # index of the token that created it; other tokens cannot see it
    volume_session: Any  # waveseg.volume.VolumeSession
    model: str
    profile: str | None
    cache_bytes: int
    last_used: float
    revision: int = 0
    shadow: np.ndarray = field(default=None, repr=False)  # (Z, Y, X) bool: the mask as last sent
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    last_report: dict | None = None

    def __post_init__(self) -> None:
        if self.shadow is None:
            self.shadow = self.volume_session.mask.copy()

    @property
    def busy(self) -> bool:
        return self.lock.locked()

    def memory_bytes(self) -> int:
        """Estimated memory: volume, mask and shadow, embedding cache limit, undo history."""
        vs = self.volume_session
        # VolumeSession keeps its undo steps in _history (waveseg/volume_history.py, EditStep.changes: old and
        # new slice masks); read-only here, to count what the undo history holds
        history = sum(old.nbytes + new.nbytes for step in getattr(vs, "_history", ()) for _, _, old, new in step.changes)
        return int(vs.volume.nbytes + 2 * vs.mask.nbytes + self.cache_bytes + history)

    def changes(self) -> dict[str, Any]:
        """The axial slices that differ from what was last sent (then sent: the shadow follows),
        with the state a client mirrors. Call with the lock held."""
        vs = self.volume_session
        changed = np.flatnonzero((vs.mask != self.shadow).reshape(vs.mask.shape[0], -1).any(axis=1))
        self.shadow[changed] = vs.mask[changed]
        if len(changed):
            self.revision += 1
        return {"revision": self.revision, "changed": changed.tolist(),
                "slices": mask_to_json(vs.mask[changed]) if len(changed) else None, **self.state()}

    def state(self) -> dict[str, Any]:
        vs = self.volume_session
        return {"revision": self.revision, "can_undo": vs.can_undo, "can_redo": vs.can_redo,
                "locked": sorted([int(a), int(i)] for a, i in vs.locked)}


class SessionStore:
    """Sessions by id, bounded by idle time and total estimated memory (least recently used first).

    ``clock`` is the server's (``ServerConfig.clock``). Thread-safe: request handlers and the
    reaper call it from different threads.
    """

    def __init__(self, timeout_s: float, max_bytes: int, clock) -> None:
        self.timeout_s, self.max_bytes, self.clock = timeout_s, max_bytes, clock
        self._sessions: collections.OrderedDict[str, ServerSession] = collections.OrderedDict()
        self._ended: collections.OrderedDict[str, str] = collections.OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._sessions)

    def exists(self, session_id: str) -> bool:
        return session_id in self._sessions

    def get(self, session_id: str, owner: int | None) -> ServerSession:
        """The session, touched as used now; ``SessionGone`` if unknown, ended, or another token's."""
        self.reap()
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None or session.owner != owner:
                raise SessionGone(session_id, self._ended.get(session_id, "unknown session (never created on this server, "
                                                                           "or the server restarted)"))
            session.last_used = self.clock()
            self._sessions.move_to_end(session_id)
            return session

    def add(self, session: ServerSession) -> None:
        """Register a new session, first closing idle sessions past the memory bound (LRU)."""
        self.reap()
        with self._lock:
            need = session.memory_bytes()
            for victim in [s for s in self._sessions.values() if not s.busy]:
                if self._total() + need <= self.max_bytes:
                    break
                self._end(victim, "closed to free server memory (least recently used); create a new session")
            if self._total() + need > self.max_bytes:
                raise ServerFull(f"the server holds {len(self._sessions)} busy sessions and has no memory left for another "
                                 f"({need / 2**20:.0f} MiB); try again later")
            self._sessions[session.id] = session

    def close(self, session_id: str, reason: str = "closed by the client") -> None:
        with self._lock:
            session = self._sessions.get(session_id)
            if session is not None:
                self._end(session, reason)

    def reap(self) -> int:
        """Close sessions idle longer than the time-out (not while an action runs); returns how many."""
        now = self.clock()
        with self._lock:
            expired = [s for s in self._sessions.values() if now - s.last_used > self.timeout_s and not s.busy]
            for session in expired:
                self._end(session, f"expired after {self.timeout_s:.0f} s without a request; create a new session")
        return len(expired)

    def total_bytes(self) -> int:
        with self._lock:
            return self._total()

    def close_all(self) -> None:
        with self._lock:
            for session in list(self._sessions.values()):
                self._end(session, "the server shut down")

    def _total(self) -> int:
        return sum(s.memory_bytes() for s in self._sessions.values())

    def _end(self, session: ServerSession, reason: str) -> None:
        del self._sessions[session.id]
        session.volume_session.close()  # stops its prefetch thread; the memory goes with the last reference
        self._ended[session.id] = reason
        while len(self._ended) > ENDED_REMEMBERED:
            self._ended.popitem(last=False)

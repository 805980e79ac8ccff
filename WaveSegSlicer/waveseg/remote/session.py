"""``RemoteVolumeSession``: a ``waveseg.volume.VolumeSession`` whose model runs on a server.

Same methods, arguments and coordinates as ``VolumeSession`` (voxel (i, j, k) = (column, row,
slice) of the (Z, Y, X) volume; slice-local (x, y) pixels). The volume is uploaded once,
compressed; each action sends its prompts and receives only the axial slices it changed, which
are written into ``mask``, this client's copy of the server's mask.

When the server no longer knows the session (restarted, expired, or a proxy moved it to another
backend), the next action re-creates it from the local volume and ``mask`` (with its locked
slices), adds a line to ``notices`` (and calls ``on_notice``), and runs the action again: the
user's masks are kept, the undo history from before is not. A stale copy (another client
changed the session) is refreshed and the action refused with ``SessionConflictError``.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from waveseg.remote.errors import RemoteError, SessionConflictError, SessionLostError
from waveseg.remote.wire import encode_mask, encode_volume, mask_from_json

ProgressCallback = Callable[[int, int], None]


@dataclass
class RemoteReport:
    """What a propagation did (the fields of ``waveseg.volume.PropagationReport``)."""

    written: list[int] = field(default_factory=list)
    stopped: dict[str, str] = field(default_factory=dict)
    cancelled: bool = False


def new_session_id() -> str:
    return secrets.token_hex(16)


class RemoteVolumeSession:
    """Arguments: segmenter (``RemoteSegmenter``), volume (Z, Y, X) of any numeric dtype,
    spacing (x, y, z) mm, window (lo, hi) or None, initial_mask optional (Z, Y, X) to start from."""

    def __init__(self, segmenter, volume: np.ndarray, spacing: Sequence[float] = (1.0, 1.0, 1.0),
                 window: tuple[float, float] | None = None, initial_mask: np.ndarray | None = None,
                 on_notice: Callable[[str], None] | None = None, _attach: str | None = None) -> None:
        self.segmenter, self.transport = segmenter, segmenter.transport
        self.volume = np.asarray(volume)
        if self.volume.ndim != 3:
            raise RemoteError(f"a volume session needs a (Z, Y, X) volume; got shape {self.volume.shape}")
        self.spacing = tuple(float(s) for s in spacing)
        self.window = None if window is None else (float(window[0]), float(window[1]))
        self._mask = np.zeros(self.volume.shape, bool)
        self.locked: set[tuple[int, int]] = set()
        self.can_undo = self.can_redo = False
        self.revision = 0
        self.notices: list[str] = []
        self.on_notice = on_notice
        self.upload_bytes = 0  # compressed bytes of the last volume upload (benchmarks report it)
        self._cancel_lock = threading.Lock()
        if _attach is not None:
            self.id = _attach
            self.refresh()
        else:
            self._create(initial_mask)

    @property
    def mask(self) -> np.ndarray:
        """(Z, Y, X) bool: this client's copy of the server's mask (change it through the actions)."""
        return self._mask

    @mask.setter
    def mask(self, value: np.ndarray) -> None:
        """Start from an existing mask, as ``VolumeSession.mask = ...`` before any action does
        (``WaveSegSlicerLib.volume_logic`` sets the segment being edited so); sent to the server."""
        value = np.asarray(value, bool)
        if value.shape != self._mask.shape:
            raise RemoteError(f"the mask has shape {value.shape}; the volume is {self._mask.shape}")
        if self.can_undo or self.can_redo:
            raise RemoteError("a remote session's mask can be replaced only before its first action")
        self._call(lambda: self._restore(value, set(self.locked)) or {})

    # -- the server side -------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        return {"X-WaveSeg-Session": self.id}

    def _create(self, initial_mask: np.ndarray | None = None) -> None:
        self.id = new_session_id()
        header, payload = encode_volume(self.volume)
        spec = {"model": self.segmenter.model, "profile": self.segmenter.profile, "spacing": list(self.spacing),
                "window": None if self.window is None else list(self.window), "array": header}
        import json

        self.upload_bytes = len(payload)
        reply = self.transport.request("POST", "/v1/sessions", body=payload,
                                       headers={**self._headers(), "X-WaveSeg-Spec": json.dumps(spec)})
        self.instance = reply.get("instance")
        self._apply_state(reply)
        if initial_mask is not None and np.asarray(initial_mask).any():
            self._restore(np.asarray(initial_mask, bool), set())

    def _restore(self, mask: np.ndarray, locked: set) -> None:
        import json

        header, payload = encode_mask(mask)
        reply = self.transport.request("PUT", f"/v1/sessions/{self.id}/mask", body=payload,
                                       headers={**self._headers(), "X-WaveSeg-Array": json.dumps(header),
                                                "X-WaveSeg-Locked": json.dumps(sorted([a, i] for a, i in locked))})
        self._mask[...] = mask
        self._apply_state(reply)
        return reply

    def _recreate(self, why: str) -> None:
        mask, locked = self.mask.copy(), set(self.locked)
        old = self.id
        self._create()
        if mask.any() or locked:
            self._restore(mask, locked)
        self.can_undo = self.can_redo = False
        self._notice(f"the server lost session {old} ({why}); re-created it as {self.id} with your masks and locked slices "
                     "(the undo history from before is gone)")

    def _notice(self, text: str) -> None:
        self.notices.append(text)
        if self.on_notice is not None:
            self.on_notice(text)

    def _apply_state(self, reply: dict[str, Any]) -> None:
        self.revision = int(reply.get("revision", self.revision))
        self.can_undo, self.can_redo = bool(reply.get("can_undo", False)), bool(reply.get("can_redo", False))
        self.locked = {(int(a), int(i)) for a, i in reply.get("locked", [])}

    def _apply(self, reply: dict[str, Any]) -> dict[str, Any]:
        changed = reply.get("changed") or []
        if changed:
            slices = mask_from_json(reply["slices"], 3, self.mask.size)
            if slices.shape != (len(changed), *self.mask.shape[1:]):
                raise RemoteError(f"the server sent slices of shape {slices.shape} for {len(changed)} changed slices")
            self._mask[np.asarray(changed)] = slices
        self._apply_state(reply)
        return reply

    def _call(self, send: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Run one action; re-create a lost session once; refresh a stale copy."""
        try:
            return self._apply(send())
        except SessionLostError as exc:
            self._recreate(str(exc))
            return self._apply(send())
        except SessionConflictError as exc:
            if exc.code == "stale":
                self.refresh()
                raise SessionConflictError(f"{exc}; this client's copy is now up to date, repeat the action if you still want it",
                                           exc.status, exc.code, exc.reply) from None
            raise

    def _post(self, action: str, **body) -> dict[str, Any]:
        return self._call(lambda: self.transport.request("POST", f"/v1/sessions/{self.id}/{action}", {"revision": self.revision, **body},
                                                         headers=self._headers()))

    def _stream(self, action: str, progress: ProgressCallback | None, cancel: Callable[[], bool] | None, **body) -> RemoteReport:
        def send() -> dict[str, Any]:
            cancelled = False
            for event in self.transport.stream(f"/v1/sessions/{self.id}/{action}", {"revision": self.revision, **body},
                                               headers=self._headers()):
                if event["event"] == "progress":
                    if progress is not None:
                        progress(int(event["done"]), int(event["planned"]))
                    if cancel is not None and not cancelled and cancel():
                        cancelled = True
                        self.request_cancel()
                elif event["event"] == "result":
                    return event
                else:
                    raise RemoteError(f"{action} failed on the server: {event.get('error')}", None, event.get("code"), event)
            raise RemoteError(f"the server ended the {action} reply without a result")

        report = self._call(send).get("report") or {}
        return RemoteReport(list(report.get("written", [])), dict(report.get("stopped", {})), bool(report.get("cancelled", False)))

    def request_cancel(self) -> None:
        """Ask the server to stop this session's running propagation (safe from any thread)."""
        with self._cancel_lock:
            self.transport.side_request("POST", f"/v1/sessions/{self.id}/cancel", {}, headers=self._headers())

    def refresh(self) -> None:
        """Replace the local mask and state by the server's (after another client's changes)."""
        reply = self.transport.request("GET", f"/v1/sessions/{self.id}/mask", headers=self._headers())
        mask = mask_from_json(reply["mask"], 3, self.mask.size)
        if self._mask.shape != mask.shape:
            raise RemoteError(f"session {self.id} holds a volume of shape {mask.shape}; this client's is {self._mask.shape}")
        self._mask[...] = mask
        self._apply_state(reply)

    # -- VolumeSession's actions -----------------------------------------------------------
    def segment_slice(self, axis: int, index: int, box: Sequence[float] | None = None,
                      points: Sequence[Sequence[float]] | None = None, labels: Sequence[int] | None = None) -> np.ndarray:
        """Segment one slice from slice-local prompts (x, y) and lock it; returns its 2D mask."""
        self._post("segment_slice", axis=int(axis), index=int(index), box=None if box is None else [float(v) for v in box],
                   points=None if points is None else [[float(x), float(y)] for x, y in points],
                   labels=None if labels is None else [int(v) for v in labels])
        return np.take(self.mask, int(index), axis=int(axis)).copy()

    def set_slice_mask(self, axis: int, index: int, mask2d: np.ndarray) -> None:
        """Replace one slice's mask by hand and lock it."""
        import json

        header, payload = encode_mask(np.asarray(mask2d, bool))
        self._call(lambda: self.transport.request("PUT", f"/v1/sessions/{self.id}/slices/{int(axis)}/{int(index)}?revision={self.revision}",
                                                  body=payload, headers={**self._headers(), "X-WaveSeg-Array": json.dumps(header)}))

    def accept(self, axis: int, index: int) -> None:
        self._post("accept", axis=int(axis), index=int(index))

    def clear(self) -> None:
        self._post("clear")

    def undo(self) -> np.ndarray:
        self._post("undo")
        return self.mask

    def redo(self) -> np.ndarray:
        self._post("redo")
        return self.mask

    def box3d(self, corner0: Sequence[float], corner1: Sequence[float], axis: int = 0, progress: ProgressCallback | None = None,
              cancel: Callable[[], bool] | None = None) -> RemoteReport:
        """Segment inside a 3D box of two voxel corners (i, j, k) and propagate through it."""
        return self._stream("box3d", progress, cancel, corner0=[float(v) for v in corner0], corner1=[float(v) for v in corner1], axis=int(axis))

    def propagate(self, axis: int, index: int, progress: ProgressCallback | None = None,
                  cancel: Callable[[], bool] | None = None) -> RemoteReport:
        """Propagate slice ``index``'s mask outwards along ``axis``."""
        return self._stream("propagate", progress, cancel, axis=int(axis), index=int(index))

    def click(self, ijk: Sequence[float], positive: bool = True, axis: int = 0, repropagate: bool = True,
              progress: ProgressCallback | None = None, cancel: Callable[[], bool] | None = None) -> RemoteReport:
        """A click at voxel (i, j, k) on the slice across ``axis``; optionally re-propagate."""
        return self._stream("click", progress, cancel, ijk=[float(v) for v in ijk], positive=bool(positive), axis=int(axis),
                            repropagate=bool(repropagate))

    def image_changed(self) -> None:
        raise RemoteError("the volume of a remote session cannot change; close it and start a new session")

    def close(self) -> None:
        """End the session on the server (its memory is freed there); safe to call twice."""
        if getattr(self, "id", None) is None:
            return
        try:
            self.transport.request("DELETE", f"/v1/sessions/{self.id}", headers=self._headers())
        except RemoteError:
            pass  # already gone (expired, server down): nothing left to free
        self.id = None

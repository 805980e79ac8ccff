"""Undo and redo for ``VolumeSession``: every public action is one step of slice changes.

A step records, per changed slice, the old and the new 2D mask, and the session's locked slices,
per-slice prompts and logits before and after, so that undo restores all of them exactly and a
click after an undo never reuses an undone click or its logits. Mixed into ``VolumeSession``,
which owns ``mask``, ``locked``, ``_prompts``, ``_logits``, ``_history`` and ``_index``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from waveseg.volume_geometry import put_slice, take_slice


@dataclass
class EditStep:
    changes: list[tuple[int, int, np.ndarray, np.ndarray]] = field(default_factory=list)  # axis, index, old, new
    locked_before: frozenset = frozenset()
    locked_after: frozenset = frozenset()
    # per-slice prompts and logits (shallow copies: small dicts of references), so that a click
    # after an undo never reuses an undone click or its logits
    prompts_before: dict = field(default_factory=dict)
    prompts_after: dict = field(default_factory=dict)
    logits_before: dict = field(default_factory=dict)
    logits_after: dict = field(default_factory=dict)



class EditHistory:
    """``_begin`` a step, ``_write`` slices into it, ``_commit`` it; ``undo`` / ``redo`` walk the steps."""

    def _begin(self) -> EditStep:
        return EditStep(locked_before=frozenset(self.locked), prompts_before=dict(self._prompts), logits_before=dict(self._logits))

    def _write(self, step: EditStep, axis: int, index: int, new: np.ndarray) -> None:
        old = take_slice(self.mask, axis, index).copy()
        if not np.array_equal(old, new):
            step.changes.append((axis, index, old, new.copy()))
            put_slice(self.mask, axis, index, new)

    def _commit(self, step: EditStep) -> None:
        step.locked_after = frozenset(self.locked)
        step.prompts_after, step.logits_after = dict(self._prompts), dict(self._logits)
        del self._history[self._index :]
        self._history.append(step)
        self._index += 1

    def undo(self) -> np.ndarray:
        """Revert the last action (no-op at the start); returns the (Z, Y, X) mask."""
        if self._index > 0:
            self._index -= 1
            step = self._history[self._index]
            for axis, index, old, _ in reversed(step.changes):
                put_slice(self.mask, axis, index, old)
            self.locked = set(step.locked_before)
            self._prompts, self._logits = dict(step.prompts_before), dict(step.logits_before)
        return self.mask

    def redo(self) -> np.ndarray:
        """Re-apply an undone action; returns the mask."""
        if self._index < len(self._history):
            step = self._history[self._index]
            for axis, index, _, new in step.changes:
                put_slice(self.mask, axis, index, new)
            self.locked = set(step.locked_after)
            self._prompts, self._logits = dict(step.prompts_after), dict(step.logits_after)
            self._index += 1
        return self.mask

    @property
    def can_undo(self) -> bool:
        return self._index > 0

    @property
    def can_redo(self) -> bool:
        return self._index < len(self._history)

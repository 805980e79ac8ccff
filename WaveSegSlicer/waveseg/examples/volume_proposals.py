"""Proposals in a volume session: from its accepted slices, or from a saved example set.

    report = propose_other_slices(vs, axis=0)                 # examples: the slices the user locked
    report = propose_volume(vs, load_example_set("site-thalamus", seg), axis=0)
    vs.undo()                                                  # one undo step for the whole action

Each not-yet-locked slice across ``axis`` gets the no-prompt proposal of
``waveseg.examples.proposal.propose``; a proposal flagged low-confidence (the structure looks
absent) leaves its slice as it was. From the session's own annotated slices, each slice is
prompted with the shape interpolated from the annotated slices around it
(``waveseg.examples.interpolation``), and a slice between two annotated ones is always written:
the user marked the structure above and below it, which says more than the similarity and the
decoder's score, whose low-confidence flag left amygdala and aorta slices of 0.8-0.97 Dice
unwritten (scripts/bench_in_context.py). Beyond the annotated range, where the structure ends
somewhere, ``beyond="propagate"`` (default) carries the outermost annotated slice's mask outwards
with the session's own propagation and its stop rules (``waveseg.propagation``), and
``beyond="propose"`` proposes each slice, written only when confident (the only way for a single
slice, the app's E). Measured against each other by ``scripts/bench_in_context.py`` (2026-12-06, 15
rows within the examples' volume, k = 1, 3, 5): mean Dice on the evaluated slices 0.560 propagating
against 0.469 proposing, higher in 12 rows; structure-free slices beyond the ends given a mask 27 %
against 28 %. Proposed slices are not locked: they are suggestions that
propagation and the user may overwrite, and the proposal's logits are kept as the slice's last
prediction, so the user's next click on it refines the proposal (``VolumeSession.click``), the
usual way. The work goes through the session's own history (``_begin`` / ``_write`` /
``_commit``), so undo and redo treat it like any other edit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from waveseg.errors import InvalidPromptError, ModelFileError, WaveSegError
from waveseg.examples.example_set import ExampleSet, encoder_fingerprint
from waveseg.examples.interpolation import interpolate_annotated
from waveseg.examples.proposal import propose
from waveseg.volume_geometry import take_slice


# Embedding cells (4 frame pixels each) around the examples' masks where a proposal from the same
# volume looks for the structure: its look-alikes elsewhere (the other thalamus, vessels beside the
# aorta) are left out. Chosen with scripts/bench_in_context.py --near (docs/in_context.md).
NEAR_OWN_EXAMPLES = 2
BEYOND = ("propagate", "propose")


@dataclass
class ProposalReport:
    """What a volume proposal did: slices written, slices left alone as low-confidence, cancelled."""

    written: list[int] = field(default_factory=list)
    low_confidence: list[int] = field(default_factory=list)
    cancelled: bool = False


def annotated_slices(vs, axis: int) -> list[int]:
    """The slices across ``axis`` that serve as examples: the locked (prompted, edited, accepted)
    ones with a mask, or, when none is locked, every slice with a mask (a segment drawn before the
    session started, which the Slicer effect and the app hand over unlocked)."""
    locked = sorted(i for a, i in vs.locked if a == axis and take_slice(vs.mask, axis, i).any())
    if locked:
        return locked
    others = tuple(d for d in range(3) if d != axis)
    return [int(i) for i in np.flatnonzero(vs.mask.any(axis=others))]


def _check_local(vs) -> None:
    if not hasattr(vs, "_cache"):
        raise WaveSegError("proposals from examples run with a local model; a server session does not offer them yet")


def session_examples(vs, axis: int = 0, slices: Sequence[int] | None = None, structure: str = "") -> ExampleSet:
    """An ``ExampleSet`` from a ``VolumeSession``'s slices across ``axis``: the given ``slices``,
    else ``annotated_slices``."""
    _check_local(vs)
    if axis not in (0, 1, 2):
        raise InvalidPromptError(f"axis must be 0, 1 or 2; got {axis}")
    if slices is None:
        slices = annotated_slices(vs, axis)
    if not slices:
        raise InvalidPromptError("no annotated slice to learn from: segment or accept at least one slice first")
    px = vs._pixels(axis)
    encoded = [vs._cache.get((axis, int(i))) for i in slices]
    masks = [px.mask_to_square(take_slice(vs.mask, axis, int(i))) for i in slices]
    return ExampleSet.from_encoded(vs.segmenter, encoded, masks, structure)


def propose_volume(vs, examples: ExampleSet, axis: int = 0, slices: Sequence[int] | None = None,
                   progress: Callable[[int, int], None] | None = None,
                   cancel: Callable[[], bool] | None = None, near_examples: int | None = None) -> ProposalReport:
    """Propose ``examples``' structure on the unlocked ``slices`` across ``axis`` (default: all) of
    the ``VolumeSession`` ``vs``, as one undoable step; refuses a set made with another model.
    A cancel keeps what was written so far (one step, undoable). ``near_examples``: look only this
    many embedding cells around the examples' masks (``propose``); for examples from this volume."""
    _check_local(vs)
    if examples.fingerprint != encoder_fingerprint(vs.segmenter):
        raise ModelFileError(f"the example set was made with model {examples.model_name!r}, not with this session's "
                             f"{vs.segmenter.card.name!r}; make it again with this model")
    return _propose_slices(vs, examples, axis, slices, progress, cancel, near_examples, {})


def _propose_slices(vs, examples: ExampleSet, axis: int, slices: Sequence[int] | None, progress, cancel,
                    near_examples: int | None, annotated: dict[int, np.ndarray], beyond: str = "propose") -> ProposalReport:
    """The work of ``propose_volume``; ``annotated`` {slice: (H, W) bool square-pixel mask} of this
    volume give each slice its shape prior (none when empty: examples from elsewhere); ``beyond``:
    how slices outside the annotated range are done (module docstring)."""
    if axis not in (0, 1, 2):
        raise InvalidPromptError(f"axis must be 0, 1 or 2; got {axis}")
    if beyond not in BEYOND:
        raise InvalidPromptError(f"beyond must be one of {BEYOND}; got {beyond!r}")
    todo = [int(i) for i in (range(vs.volume.shape[axis]) if slices is None else slices) if (axis, int(i)) not in vs.locked]
    for i in todo:
        vs._check_slice(axis, i)
    walk = {}  # direction -> (start, farthest requested slice) of the propagation beyond the annotated range
    if annotated and beyond == "propagate":
        lo, hi = min(annotated), max(annotated)
        below, above = [i for i in todo if i < lo], [i for i in todo if i > hi]
        walk = {d: v for d, v in ((-1, (lo, min(below, default=lo))), (1, (hi, max(above, default=hi)))) if v[0] != v[1]}
        todo = [i for i in todo if lo < i < hi]
    px = vs._pixels(axis)
    report = ProposalReport()
    step = vs._begin()
    for n, index in enumerate(todo):
        if cancel is not None and cancel():
            report.cancelled = True
            break
        vs._prefetch_ahead(axis, index, 1, (0, vs.volume.shape[axis] - 1))
        prior = interpolate_annotated(annotated, index) if annotated else None
        between = bool(annotated) and min(annotated) < index < max(annotated)
        proposal = propose(vs.segmenter, vs._cache.get((axis, index)), examples, near_examples=near_examples,
                           shape_prior=prior)
        if (proposal.confident or between) and proposal.mask.any():
            vs._write(step, axis, index, px.mask_to_native(proposal.mask))
            vs._logits[(axis, index)] = proposal.prediction.logits
            # the proposal's box stays with the slice, so the user's clicks keep it (VolumeSession.click)
            box = None if proposal.box is None else [float(v) for v in px.xy_to_native(proposal.box.reshape(2, 2)).reshape(4)]
            vs._prompts[(axis, index)] = {"box": box, "points": [], "labels": [], "score": proposal.prediction.score}
            report.written.append(index)
        else:
            report.low_confidence.append(index)
        if progress is not None:
            progress(n + 1, len(todo) + len(walk))
    for n, (direction, (start, farthest)) in enumerate(walk.items()):
        if report.cancelled or (cancel is not None and cancel()):
            report.cancelled = True
            break
        # one direction only: the walk's other end is its start, which ends that direction at once
        limits = (farthest, start) if direction < 0 else (start, farthest)
        walked = vs._propagate(step, axis, start, limits, None, cancel, settle=False)
        report.written += walked.written
        report.cancelled = walked.cancelled
        requested = range(farthest, start) if direction < 0 else range(start + 1, farthest + 1)
        report.low_confidence += [i for i in requested if i not in walked.written and (slices is None or i in slices)
                                  and (axis, i) not in vs.locked]
        if progress is not None:
            progress(len(todo) + n + 1, len(todo) + len(walk))
    vs._commit(step)
    return report


def propose_other_slices(vs, axis: int = 0, slices: Sequence[int] | None = None, structure: str = "",
                         progress: Callable[[int, int], None] | None = None,
                         cancel: Callable[[], bool] | None = None, beyond: str = "propagate") -> ProposalReport:
    """Propose on the slices across ``axis`` (default: all) that are neither locked nor examples, from
    the session's ``annotated_slices``; one undoable step. The examples lie in this volume, so the
    structure is looked for only near where they show it (``NEAR_OWN_EXAMPLES``), each slice between
    them is prompted with the shape interpolated from the annotated slices around it, and slices
    beyond them are done as ``beyond`` says (module docstring). ``report.low_confidence``: the
    slices left as they were (not confident, or where the propagation stopped before them)."""
    _check_local(vs)
    examples_at = annotated_slices(vs, axis)
    examples = session_examples(vs, axis, examples_at, structure)
    px = vs._pixels(axis)
    annotated = {i: px.mask_to_square(take_slice(vs.mask, axis, i)) for i in examples_at}
    todo = [int(i) for i in (range(vs.volume.shape[axis]) if slices is None else slices) if int(i) not in examples_at]
    return _propose_slices(vs, examples, axis, todo, progress, cancel, NEAR_OWN_EXAMPLES, annotated, beyond)

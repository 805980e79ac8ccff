"""3D: a volume session that segments slices from prompts and propagates through the volume.

    vs = seg.volume_session(volume_zyx, spacing=(sx, sy, sz))
    vs.box3d((i0, j0, k0), (i1, j1, k1))          # middle slice from the box, then propagate
    vs.click((i, j, k), positive=False)           # refine that slice, re-propagate the change
    vs.scribble(axis, index, polyline_xy); vs.lasso(axis, index, polygon_xy, positive=False)  # volume_strokes
    vs.undo(); vs.redo()
    vs.mask                                       # (Z, Y, X) bool

Coordinates: voxel (i, j, k) = (column, row, slice) of the (Z, Y, X) array; slice-local
prompts are (x, y) pixels of ``take_slice(volume, axis, index)`` (see ``volume_geometry``).
Geometry: the session works in voxel space, so any direction matrix is handled (it only
matters on export, where it is kept); anisotropic slices are resampled to square pixels for the
model. Slices the user prompted, edited or accepted are locked: propagation never overwrites
them. Every public action is one undo step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from waveseg.embedding_cache import DEFAULT_LIMIT_MB, EmbeddingCache
from waveseg.errors import InvalidImageError, InvalidPromptError
from waveseg.metrics import dice
from waveseg.predictor import Segmenter
from waveseg.propagation import PropagationRule, StopState, next_prompt, stop_reason
from waveseg.volume_geometry import SlicePixels, take_slice, voxel_to_slice
from waveseg.volume_history import EditHistory, EditStep
from waveseg.volume_strokes import StrokeActions
from waveseg.volume_zoom import zoomed_slice_prediction

SETTLED_DICE = 0.97  # re-propagation stops where the new mask agrees this well with the old one
# The next-slice prompt and the stop rules (their thresholds and the measurements behind them) are in
# waveseg.propagation.PropagationRule.

ProgressCallback = Callable[[int, int], None]  # (slices done, slices planned)


@dataclass
class PropagationReport:
    """What a propagation did: slices written, why each direction stopped, cancellation."""

    written: list[int] = field(default_factory=list)
    stopped: dict[str, str] = field(default_factory=dict)
    cancelled: bool = False


def _clicks_missed(mask2d: np.ndarray, points: Sequence[Sequence[float]], labels: Sequence[int]) -> int:
    """How many clicks (x, y) the 2D mask contradicts: a positive click outside it, a negative inside."""
    h, w = mask2d.shape
    return sum(bool(mask2d[min(max(int(round(y)), 0), h - 1), min(max(int(round(x)), 0), w - 1)]) != bool(label)
               for (x, y), label in zip(points, labels))


class VolumeSession(EditHistory, StrokeActions):
    """Interactive 3D segmentation of one (Z, Y, X) volume with a ``Segmenter``.

    Arguments:
      volume: (Z, Y, X) array of any numeric dtype.
      spacing: voxel size (x, y, z) in mm; used to give slices square pixels.
      window: optional (lo, hi) intensity window for every slice (e.g. CT).
      cache_mb: memory limit of the slice-embedding LRU cache in MiB (4 MiB per slice).
      prefetch: encode neighbouring slices in a background thread while the user works.
      share_cache_with: another session over the same volume, window and segmenter whose slice
        embeddings this one reuses (several segments of one image encode each slice once).
      propagation: the next-slice prompt and stop rules (``PropagationRule``; default: shipped).
    """

    def __init__(self, segmenter: Segmenter, volume: np.ndarray, spacing: Sequence[float] = (1.0, 1.0, 1.0),
                 window: tuple[float, float] | None = None, cache_mb: float = DEFAULT_LIMIT_MB, prefetch: bool = True,
                 share_cache_with: "VolumeSession | None" = None, propagation: PropagationRule | None = None) -> None:
        volume = np.asarray(volume)
        if volume.ndim != 3 or min(volume.shape) < 1:
            raise InvalidImageError(f"a volume session needs a (Z, Y, X) volume; got shape {volume.shape}. Use session() for 2D images")
        spacing = tuple(float(s) for s in spacing)
        if len(spacing) != 3 or not all(np.isfinite(spacing)) or min(spacing) <= 0:
            raise InvalidImageError(f"spacing must be three positive numbers (x, y, z) in mm; got {spacing}")
        self.segmenter = segmenter
        self.volume = volume
        self.spacing = spacing
        self.window = window
        self.prefetch_enabled = prefetch
        self.propagation = PropagationRule() if propagation is None else propagation
        # a slice the user prompts with a small box is decoded from a crop around it
        # (``waveseg.volume_zoom``), as ``Segmenter.predict`` does; the segmenter's setting ("auto" by
        # default; False for one without). Propagated slices are not: scripts/bench_volume.py on 36
        # volumes (2026-12-07), mean 3D Dice: no zoom 0.612, the prompted slice zoomed 0.625, every
        # slice of a small box zoomed 0.621 (and 38 % slower: its crops cannot be prefetched)
        self.roi_zoom: str | bool = getattr(segmenter, "roi_zoom", False)
        self.mask = np.zeros(volume.shape, dtype=bool)
        self.locked: set[tuple[int, int]] = set()
        self._prompts: dict[tuple[int, int], dict] = {}
        self._logits: dict[tuple[int, int], np.ndarray] = {}
        if share_cache_with is not None and (share_cache_with.volume is not volume or share_cache_with.window != window):
            raise InvalidImageError("share_cache_with must be a session over the same volume array and window")
        self._cache_mb = cache_mb
        self._cache = share_cache_with.cache if share_cache_with is not None else EmbeddingCache(self._slice_encoder(segmenter), cache_mb)
        self._history: list[EditStep] = []
        self._index = 0

    # -- slices and embeddings ----------------------------------------------------------
    def _check_slice(self, axis: int, index: int) -> None:
        if axis not in (0, 1, 2):
            raise InvalidPromptError(f"axis must be 0 (axial), 1 (coronal) or 2 (sagittal); got {axis}")
        if not 0 <= index < self.volume.shape[axis]:
            raise InvalidPromptError(f"slice {index} is past the end: axis {axis} has slices 0..{self.volume.shape[axis] - 1}")

    def _pixels(self, axis: int) -> SlicePixels:
        return SlicePixels.for_slice(self.volume.shape, self.spacing, axis)

    def _slice_encoder(self, segmenter: Segmenter):
        """The cache's encode function, bound to ``segmenter`` rather than to this session: a cache
        shared by several sessions keeps encoding with the model it was made for."""
        volume, spacing, window = self.volume, self.spacing, self.window

        def encode(key: tuple[int, int]):
            axis, index = key
            return segmenter.encode(SlicePixels.for_slice(volume.shape, spacing, axis).image_to_square(take_slice(volume, axis, index)), window)

        return encode

    def _prefetch_around(self, axis: int, index: int, radius: int = 2) -> None:
        if self.prefetch_enabled:
            n = self.volume.shape[axis]
            self._cache.prefetch([(axis, i) for d in range(1, radius + 1) for i in (index + d, index - d) if 0 <= i < n])

    def _prefetch_ahead(self, axis: int, index: int, direction: int, limits: tuple[int, int], depth: int = 2) -> None:
        """Queue the ``depth`` slices after ``index`` in ``direction`` (within ``limits``): while
        propagation decodes one slice, the next is encoded in the background."""
        ahead = [i for i in (index + d * direction for d in range(1, depth + 1)) if limits[0] <= i <= limits[1]]
        if self.prefetch_enabled and ahead:
            self._cache.prefetch([(axis, i) for i in ahead])

    def use_segmenter(self, segmenter: Segmenter, share_cache_with: "VolumeSession | None" = None) -> None:
        """Segment with another model (e.g. one with this structure's adaptation profile) from now
        on; masks and undo history stay. Its slices are encoded anew, in their own cache or in
        ``share_cache_with``'s (a session over the same volume with that same segmenter)."""
        if share_cache_with is not None and (share_cache_with.segmenter is not segmenter or share_cache_with.volume is not self.volume):
            raise InvalidImageError("share_cache_with must be a session over the same volume with the same segmenter")
        self._cache.close()  # its prefetch thread; a session still sharing it restarts prefetch on demand
        self.segmenter = segmenter
        self._cache = share_cache_with.cache if share_cache_with is not None else EmbeddingCache(self._slice_encoder(segmenter), self._cache_mb)

    def image_changed(self) -> None:
        """Call after modifying ``volume`` in place: drops every cached embedding."""
        self._cache.clear()

    # -- model on one slice ---------------------------------------------------------------
    def _predict(self, axis: int, index: int, points=None, labels=None, box=None, mask_input=None, zoom: bool = False):
        """Decode one slice from slice-local prompts; ``zoom`` (a user-prompted slice, no mask prompt): a small box may be answered from a crop."""
        px = self._pixels(axis)
        if points is not None:
            points = px.xy_to_square(points)
        if box is not None:
            box = px.xy_to_square(np.asarray(box, np.float32).reshape(2, 2)).reshape(4)
        if mask_input is not None and mask_input.dtype == bool:
            mask_input = px.mask_to_square(mask_input)
        if zoom and box is not None and self.roi_zoom:
            image = px.image_to_square(take_slice(self.volume, axis, index))
            out = zoomed_slice_prediction(self.segmenter, image, self.window, self.roi_zoom, box, points,
                                          None if labels is None else np.asarray(labels), box)
            if out is not None:
                return px.mask_to_native(out.mask), out
        encoded = self._cache.get((axis, index))
        out = self.segmenter.predict_encoded(encoded, points=points, labels=labels, box=box, mask_input=mask_input)
        return px.mask_to_native(out.mask), out

    # -- actions --------------------------------------------------------------------------
    def segment_slice(self, axis: int, index: int, box: Sequence[float] | None = None,
                      points: Sequence[Sequence[float]] | None = None, labels: Sequence[int] | None = None) -> np.ndarray:
        """Segment one slice from slice-local prompts (x, y) and lock it; returns its 2D mask."""
        self._check_slice(axis, index)
        step = self._begin()
        mask2d = self._segment(step, axis, index, box, points, labels)
        self._commit(step)
        self._prefetch_around(axis, index)
        return mask2d

    def _segment(self, step: EditStep, axis: int, index: int, box, points, labels) -> np.ndarray:
        mask2d, out = self._predict(axis, index, points, labels, box, zoom=True)
        self._prompts[(axis, index)] = {"box": None if box is None else list(box),
                                        "points": [] if points is None else [list(p) for p in points],
                                        "labels": [] if labels is None else list(labels), "score": out.score}
        self._logits[(axis, index)] = out.logits
        self._write(step, axis, index, mask2d)
        self.locked.add((axis, index))
        return mask2d

    def set_slice_mask(self, axis: int, index: int, mask2d: np.ndarray) -> None:
        """Replace one slice's mask by hand (e.g. from a paint tool) and lock it."""
        self._check_slice(axis, index)
        mask2d = np.asarray(mask2d, bool)
        expected = take_slice(self.mask, axis, index).shape
        if mask2d.shape != expected:
            raise InvalidPromptError(f"slice mask has shape {mask2d.shape}; slice {index} of axis {axis} is {expected}")
        step = self._begin()
        self._write(step, axis, index, mask2d)
        self._logits.pop((axis, index), None)
        self.locked.add((axis, index))
        self._commit(step)

    def accept(self, axis: int, index: int) -> None:
        """Mark a slice as accepted: propagation will not change it (undoable)."""
        self._check_slice(axis, index)
        step = self._begin()
        self.locked.add((axis, index))
        self._commit(step)

    def clear(self) -> None:
        """Empty the whole mask and unlock every slice (one undoable step)."""
        step = self._begin()
        for k in np.flatnonzero(self.mask.any(axis=(1, 2))):
            self._write(step, 0, int(k), np.zeros(self.mask.shape[1:], bool))
        self.locked.clear()
        self._prompts, self._logits = {}, {}
        self._commit(step)

    def box3d(self, corner0: Sequence[float], corner1: Sequence[float], axis: int = 0,
              progress: ProgressCallback | None = None, cancel: Callable[[], bool] | None = None) -> PropagationReport:
        """Segment inside a 3D box given by two voxel corners (i, j, k).

        The slice across ``axis`` in the middle of the box is segmented from the box's 2D
        extent, then the mask propagates to the box's other slices (and no further) under the
        in-box rule (``PropagationRule``): the box says where the object is, so propagation covers
        its whole extent unless the object has clearly ended, and each next slice's box stays
        inside the 3D box's (x, y) extent.
        """
        c0, c1 = np.asarray(corner0, float), np.asarray(corner1, float)
        if c0.shape != (3,) or c1.shape != (3,) or not (np.isfinite(c0).all() and np.isfinite(c1).all()):
            raise InvalidPromptError("a 3D box is two voxel corners (i, j, k), each of 3 finite numbers")
        lo, hi = np.minimum(c0, c1), np.maximum(c0, c1)
        shape_ijk = np.array(self.volume.shape[::-1]) - 1
        if (hi < 0).any() or (lo > shape_ijk).any():
            raise InvalidPromptError(
                f"3D box {tuple(lo.tolist())}..{tuple(hi.tolist())} lies outside the volume (i, j, k up to {tuple(shape_ijk.tolist())})")
        lo, hi = np.clip(lo, 0, shape_ijk), np.clip(hi, 0, shape_ijk)
        mid = (lo + hi) / 2
        index, _ = voxel_to_slice(tuple(mid), axis)
        _, (x0, y0) = voxel_to_slice(tuple(lo), axis)
        _, (x1, y1) = voxel_to_slice(tuple(hi), axis)
        ijk_axis = 2 - axis  # array axis 0 is k (index 2 of ijk), 1 is j, 2 is i
        limits = (int(round(lo[ijk_axis])), int(round(hi[ijk_axis])))
        step = self._begin()
        self._segment(step, axis, index, (x0, y0, x1, y1), None, None)
        self._prompts[(axis, index)]["box3d"] = (limits, (x0, y0, x1, y1))
        report = self._propagate(step, axis, index, limits, progress, cancel, settle=False, bounds=(x0, y0, x1, y1))
        self._commit(step)
        return report

    def _box3d_around(self, axis: int, index: int) -> tuple[tuple[int, int], tuple[float, float, float, float]] | None:
        """(slice limits, (x0, y0, x1, y1)) of the latest 3D box whose slices along ``axis`` include
        ``index``, or None. Boxes live in the prompts of the slices they segmented, so undo and redo
        bring them back and take them away with those slices."""
        own = self._prompts.get((axis, index), {}).get("box3d")
        if own is not None:
            return own
        boxes = [p["box3d"] for (a, _), p in self._prompts.items() if a == axis and p.get("box3d")]
        return next((b for b in reversed(boxes) if b[0][0] <= index <= b[0][1]), None)

    def propagate(self, axis: int, index: int, progress: ProgressCallback | None = None,
                  cancel: Callable[[], bool] | None = None) -> PropagationReport:
        """Propagate the mask of slice ``index`` outwards in both directions along ``axis``."""
        self._check_slice(axis, index)
        if not take_slice(self.mask, axis, index).any():
            raise InvalidPromptError(f"slice {index} of axis {axis} has no mask to propagate; prompt it first")
        step = self._begin()
        report = self._propagate(step, axis, index, (0, self.volume.shape[axis] - 1), progress, cancel, settle=False)
        self._commit(step)
        return report

    def click(self, ijk: Sequence[float], positive: bool = True, axis: int = 0, repropagate: bool = True,
              progress: ProgressCallback | None = None, cancel: Callable[[], bool] | None = None) -> PropagationReport:
        """Add a click at voxel (i, j, k) on the slice across ``axis``; refine that slice (with
        its earlier prompts and logits) and re-propagate until the change dies out."""
        ijk = tuple(float(v) for v in ijk)
        index, (x, y) = voxel_to_slice(ijk, axis)
        self._check_slice(axis, index)
        h, w = take_slice(self.mask, axis, index).shape
        if not (-0.5 <= x <= w - 0.5 and -0.5 <= y <= h - 0.5):
            raise InvalidPromptError(f"voxel {ijk} is outside the volume of shape (Z, Y, X) = {self.volume.shape}")
        prompts = self._prompts.get((axis, index), {"box": None, "points": [], "labels": []})
        points = prompts["points"] + [[x, y]]
        labels = prompts["labels"] + [int(bool(positive))]
        previous = self._logits.get((axis, index))
        if previous is None and take_slice(self.mask, axis, index).any():
            previous = take_slice(self.mask, axis, index).copy()
        step = self._begin()
        box = prompts["box"]
        mask2d, out = self._predict(axis, index, np.asarray(points, np.float32), np.asarray(labels), box, previous)
        if box is not None and _clicks_missed(mask2d, points, labels):
            # The box (the user's, or the one propagation prompted this slice with) keeps the
            # object's extent, but the decoder may then overrule a click; a click is the user's
            # explicit word, so where the box result contradicts one, the clicks-only result that
            # honours more of them wins.
            clicks_only = self._predict(axis, index, np.asarray(points, np.float32), np.asarray(labels), None, previous)
            if _clicks_missed(clicks_only[0], points, labels) < _clicks_missed(mask2d, points, labels):
                (mask2d, out), box = clicks_only, None
        in_box = self._box3d_around(axis, index)
        self._prompts[(axis, index)] = {"box": box, "points": points, "labels": labels, "score": out.score, "box3d": in_box}
        self._logits[(axis, index)] = out.logits
        self._write(step, axis, index, mask2d)
        self.locked.add((axis, index))
        report = PropagationReport()
        if repropagate and mask2d.any():
            # Inside a user's 3D box the correction spreads through that box's slices only, with its
            # (x, y) bounds: spread through the whole volume under the free rule, it wrote masks past
            # the object's end and replaced good ones (scripts/bench_volume.py, "+3 clicks": totalseg_ct
            # liver 0.613 -> 0.191 before this).
            limits, bounds = in_box if in_box is not None else ((0, self.volume.shape[axis] - 1), None)
            report = self._propagate(step, axis, index, limits, progress, cancel, settle=True, bounds=bounds)
        self._commit(step)
        return report

    def _propagate(self, step: EditStep, axis: int, start: int, limits: tuple[int, int],
                   progress: ProgressCallback | None, cancel: Callable[[], bool] | None, settle: bool,
                   bounds: tuple[float, float, float, float] | None = None) -> PropagationReport:
        """Walk from slice ``start`` to both ``limits``; ``bounds`` (x0, y0, x1, y1): the slices lie
        inside a user's 3D box with that 2D extent (the in-box rule), None: the free rule."""
        rule = self.propagation
        report = PropagationReport()
        planned = max(limits[1] - limits[0], 1)
        done = 0
        for direction, name in ((1, "forward"), (-1, "backward")):
            previous = take_slice(self.mask, axis, start).copy()
            previous_logits = self._logits.get((axis, start))
            state = StopState()
            index = start + direction
            while True:
                if not limits[0] <= index <= limits[1]:
                    report.stopped[name] = "end of range"
                    break
                if cancel is not None and cancel():
                    report.cancelled = True
                    report.stopped[name] = "cancelled"
                    return report
                if (axis, index) in self.locked:
                    report.stopped[name] = f"locked slice {index}"
                    break
                self._prefetch_ahead(axis, index, direction, limits)
                prompt = next_prompt(rule, previous, previous_logits, bounds)
                if prompt is None:
                    report.stopped[name] = "object too small"
                    break
                mask2d, out = self._predict(axis, index, **prompt)
                if rule.prompt_kind(bounds is not None) == "recentre" and mask2d.any():
                    recentred = next_prompt(rule, mask2d, None, bounds)
                    if recentred is not None:
                        prompt = recentred
                        mask2d, out = self._predict(axis, index, **prompt)
                reason, keep = stop_reason(rule, state, index, int(mask2d.sum()), int(previous.sum()), out.score,
                                           in_box=bounds is not None)
                if reason is not None:
                    report.stopped[name] = reason
                    break
                old = take_slice(self.mask, axis, index)
                old_score = self._prompts.get((axis, index), {}).get("score")
                if settle and old.any() and old_score is not None and out.score < old_score:
                    # A correction is one slice's fix; carried on, it should only replace masks the
                    # decoder itself rates lower (its predicted IoU), not good ones propagated before.
                    report.stopped[name] = f"kept slice {index}: its mask scores higher ({old_score:.2f} > {out.score:.2f})"
                    break
                if settle and dice(old, mask2d) >= SETTLED_DICE:
                    report.stopped[name] = f"change died out at slice {index}"
                    break
                if keep:
                    self._write(step, axis, index, mask2d)
                    self._logits[(axis, index)] = out.logits
                    self._prompts[(axis, index)] = {"box": [float(v) for v in prompt["box"]], "points": [], "labels": [],  # clicks keep the box
                                                    "score": out.score, "box3d": None if bounds is None else (limits, bounds)}
                    report.written.append(index)
                    previous, previous_logits = mask2d, out.logits
                index += direction
                done += 1
                if progress is not None:
                    progress(done, planned)
        return report

    # -- output ---------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the prefetch thread (the session stays usable; prefetch restarts on demand)."""
        self._cache.close()

    @property
    def cache(self) -> EmbeddingCache:
        return self._cache


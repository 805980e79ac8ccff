"""Scribbles and lassos in a ``VolumeSession`` (a mixin, so volume.py keeps one concept per file).

    vs.scribble(axis, index, polyline_xy, positive=True)   # refine that slice, re-propagate like a click
    vs.lasso(axis, index, polygon_xy, positive=False)      # remove the polygon's inside on that slice

Strokes are in the slice-local (x, y) pixels of ``take_slice(volume, axis, index)`` (axis 0
axial, 1 coronal, 2 sagittal; ``volume_geometry.voxel_to_slice`` maps a voxel (i, j, k) there).
They are resampled to the square pixels the model sees, as clicks are. Each is one undo step: the
slice is decoded with its earlier clicks, box and strokes, the previous logits (or mask) as the
mask prompt, and the new stroke (``waveseg.prompting.stroke_prompts``; a corrective stroke changes the slice
only near itself, ``StrokeRule.local``), then locked, and the change propagates until it dies out
(``VolumeSession.click``'s rule). Known limit: a later ``click`` on the slice refines from the
logits, which keep the strokes pinned, but does not send the strokes again.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from waveseg.errors import InvalidPromptError
from waveseg.prompting.stroke_prompts import StrokeRule, force_strokes, lasso_box, local_edit, scribble_box
from waveseg.prompting.strokes import Stroke, validate_stroke
from waveseg.volume_geometry import take_slice
from waveseg.volume_zoom import zoomed_slice_prediction


class StrokeActions:
    """``scribble`` and ``lasso`` for ``VolumeSession`` (uses its slices, cache, history and propagation)."""

    def scribble(self, axis: int, index: int, polyline_xy: Sequence[Sequence[float]] | np.ndarray, positive: bool = True,
                 repropagate: bool = True, progress: Callable[[int, int], None] | None = None,
                 cancel: Callable[[], bool] | None = None):
        """Add a scribble ((N >= 2, 2) slice-local (x, y) pixels) on slice ``index`` across ``axis``;
        returns the ``PropagationReport`` of the re-propagation."""
        return self._stroke(axis, index, polyline_xy, positive, False, repropagate, progress, cancel)

    def lasso(self, axis: int, index: int, polygon_xy: Sequence[Sequence[float]] | np.ndarray, positive: bool = True,
              repropagate: bool = True, progress: Callable[[int, int], None] | None = None,
              cancel: Callable[[], bool] | None = None):
        """Add (positive) or remove (negative) a polygon's inside ((N >= 3, 2) slice-local (x, y)
        pixels, closed implicitly) on slice ``index`` across ``axis``; a first positive lasso on an
        empty slice also becomes the slice's box. Returns the ``PropagationReport``."""
        return self._stroke(axis, index, polygon_xy, positive, True, repropagate, progress, cancel)

    def _stroke(self, axis, index, xy, positive, closed, repropagate, progress, cancel):
        from waveseg.volume import PropagationReport  # here: volume imports this module

        self._check_slice(axis, index)
        key = (axis, index)
        current = take_slice(self.mask, axis, index)
        stroke = validate_stroke(xy, positive, current.shape, closed)
        rule = getattr(self.segmenter, "stroke_rule", None) or StrokeRule()
        prompts = self._prompts.get(key, {"box": None, "points": [], "labels": []})
        earlier = list(prompts.get("strokes", ()))
        previous = self._logits.get(key)
        if previous is None and current.any():
            previous = current.copy()
        if closed and not positive and previous is None:
            raise InvalidPromptError(f"a negative lasso removes from the mask, and slice {index} of axis {axis} is empty")
        box = prompts["box"]
        if closed and positive and box is None and previous is None and rule.lasso_box:
            box = [float(v) for v in lasso_box([stroke], current.shape)]
        step = self._begin()
        mask2d, logits, score = self._predict_strokes(axis, index, prompts["points"], prompts["labels"], box, previous,
                                                      earlier, stroke, rule)
        self._prompts[key] = {"box": box, "points": prompts["points"], "labels": prompts["labels"], "score": score,
                              "strokes": earlier + [stroke]}
        self._logits[key] = logits
        self._write(step, axis, index, mask2d)
        self.locked.add(key)
        report = PropagationReport()
        if repropagate and mask2d.any():
            report = self._propagate(step, axis, index, (0, self.volume.shape[axis] - 1), progress, cancel, settle=True)
        self._commit(step)
        return report

    def _predict_strokes(self, axis, index, points, labels, box, previous, earlier: list[Stroke], new: Stroke,
                         rule: StrokeRule):
        """One slice decoded with clicks, box, mask prompt and strokes, in the model's square pixels;
        returns (native (H, W) mask, (1, 256, 256) logits, predicted IoU)."""
        px = self._pixels(axis)
        encoded = self._cache.get((axis, index))
        previous_native = previous if previous is not None and previous.dtype == bool else None
        if previous is not None and previous.dtype != bool:  # earlier logits: the mask they show, for local_edit
            import torch

            from waveseg.predictor import logits_to_masks

            previous_native = px.mask_to_native(logits_to_masks(torch.from_numpy(np.asarray(previous, np.float32).reshape(1, 256, 256)), encoded.geometry)[0])

        def square(s: Stroke) -> Stroke:
            return Stroke(px.xy_to_square(s.xy).astype(np.float64), s.positive, s.closed)

        if previous is not None and previous.dtype == bool:
            previous = px.mask_to_square(previous)
        strokes = earlier + [new]
        if previous is None and box is None and not len(points):
            zoomed = self._zoomed_first_scribble(axis, index, px, encoded, [square(s) for s in strokes], rule)
            if zoomed is not None:
                mask, logits, score = zoomed
                mask2d = px.mask_to_native(mask)
                return (force_strokes(mask2d, strokes, mask2d.shape) if rule.force else mask2d), logits, score
        out = self.segmenter.predict_encoded(
            encoded,
            points=px.xy_to_square(np.asarray(points, np.float32)) if len(points) else None,
            labels=np.asarray(labels) if len(points) else None,
            box=None if box is None else px.xy_to_square(np.asarray(box, np.float32).reshape(2, 2)).reshape(4),
            mask_input=previous, scribbles=[square(s) for s in strokes])
        mask, logits = out.mask, out.logits
        if previous is not None:  # a corrective stroke edits near itself (in square pixels)
            previous_logits = previous if previous.dtype != bool else None
            mask, logits = local_edit(mask, logits, px.mask_to_square(previous_native), previous_logits, square(new),
                                      encoded.geometry, rule)
        mask2d = px.mask_to_native(mask)
        if rule.force and (previous is not None or rule.force_first_lasso or not new.closed):  # exact at native pixels
            mask2d = force_strokes(mask2d, strokes, mask2d.shape)
        return mask2d, logits, out.score

    def _zoomed_first_scribble(self, axis, index, px, encoded, strokes: list[Stroke], rule: StrokeRule):
        """A slice's first prompt, positive scribbles only, decoded from a crop around their grown
        extent when it is small, as ``InteractiveSession`` zooms (``StrokeRule.zoom_grow``, the
        session's ``roi_zoom``); None when it is not. ``strokes`` in the square pixels of ``px``;
        returns ((Hs, Ws) square mask, (1, 256, 256) logits in the slice's frame, score)."""
        if rule.zoom_grow is None or not self.roi_zoom or any(s.closed for s in strokes):
            return None
        extent = scribble_box(strokes, encoded.geometry.original_hw, rule.zoom_grow)
        image = px.image_to_square(take_slice(self.volume, axis, index))
        out = zoomed_slice_prediction(self.segmenter, image, self.window, self.roi_zoom, extent, scribbles=strokes)
        return None if out is None else (out.mask, out.logits, out.score)

"""Interactive 2D session: clicks, a box, scribbles, lassos, an existing mask; undo and redo to any depth.

Every action returns the current (H, W) bool mask. The image is encoded once, when first
needed (and a zoomed crop once per crop when ROI zoom is active); each click is decoded together with all earlier
clicks, the box, and the previous prediction's logits as the mask prompt (with the clicks pinned
into it, ``waveseg.prompting.click_pinning``), so each click refines the mask, as SAM was trained to do. Scribbles and lassos are kept and
decoded again with every later prompt, as clicks are (a lasso's inside stays added or removed; a
first positive lasso also becomes the box); a corrective stroke changes the mask only near itself
(``StrokeRule.local``). Each stroke is one undo step. See ``waveseg.prompting.stroke_prompts``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from waveseg.errors import InvalidPromptError
from waveseg.prediction import EncodedImage, Prediction
from waveseg.preprocess import ResizeGeometry, as_gray_or_rgb, normalize_intensity
from waveseg.prompting.validation import validate_box, validate_points
from waveseg.prompting.roi import CropCache, next_roi
from waveseg.prompting.stroke_prompts import StrokeRule, finish_strokes, lasso_box, local_edit, scribble_box
from waveseg.prompting.strokes import Stroke, validate_stroke

if TYPE_CHECKING:  # the session imports no torch: GraphSegmenter answers it without torch
    from waveseg.predictor import Segmenter


@dataclass(frozen=True)
class SessionState:
    """One step of the session's history (immutable; masks are read-only arrays)."""

    points: tuple[tuple[float, float], ...] = ()
    labels: tuple[int, ...] = ()
    box: tuple[float, float, float, float] | None = None
    mask: np.ndarray | None = field(default=None, repr=False)  # (H, W) bool
    logits: np.ndarray | None = field(default=None, repr=False)  # (1, 256, 256) in frame `roi`
    roi: tuple[int, int, int, int] | None = None  # crop the logits belong to; None = full image
    score: float | None = None
    strokes: tuple[Stroke, ...] = ()  # every scribble and lasso so far, in order


class InteractiveSession:
    """Prompt one image interactively.

    Arguments:
      segmenter: the ``Segmenter`` (or torch-free ``GraphSegmenter``) whose model answers the prompts.
      image: (H, W) or (H, W, 3) array, any dtype; window: optional (lo, hi) intensity window.
      roi_zoom: "auto" (default) re-encodes a crop around the target when the box (without one, the
        positive scribbles' grown extent; with the clicks) is smaller than 25 % of the image's longest
        side; True always crops when the target's extent is known, from the box, the scribbles or
        else the current mask; False never does. Clicks alone give no extent. Once
        zoomed, the crop stays while it still frames the target (``waveseg.prompting.roi.keep_or_move_roi``).
        Coordinates stay in full-image pixels either way.
    """

    # False: choose a fresh crop at every prompt (scripts/bench_roi_clicks.py compares both)
    keep_crop = True
    # "auto" zooms on a box's extent only. Without a box the extent would be the last mask's, and
    # zooming on that cost click-only sessions Dice and clicks; True restores that for
    # scripts/bench_roi_clicks.py, which compares both
    auto_zoom_on_mask = False

    def __init__(self, segmenter: "Segmenter", image: np.ndarray, window: tuple[float, float] | None = None,
                 roi_zoom: str | bool = "auto") -> None:
        if roi_zoom not in ("auto", True, False):
            raise ValueError(f"roi_zoom must be 'auto', True or False; got {roi_zoom!r}")
        self.segmenter = segmenter
        self.image = as_gray_or_rgb(image)
        self.window = window
        self.roi_zoom = roi_zoom
        self.image_hw: tuple[int, int] = self.image.shape[:2]
        normalize_intensity(self.image, window)  # refuse an unusable image now, not at the first click
        self._full: EncodedImage | None = None  # encoded on first use (ROI zoom may never need it)
        self._crops = CropCache(lambda crop: segmenter.encode(crop, window), self.image)
        self._history: list[SessionState] = [self._empty_state()]
        self._index = 0

    # -- state --------------------------------------------------------------------------
    @property
    def encodings(self) -> int:
        """Images and crops encoded so far (each costs one encoder run)."""
        return int(self._full is not None) + self._crops.encodings

    @property
    def state(self) -> SessionState:
        return self._history[self._index]

    @property
    def mask(self) -> np.ndarray:
        """The current (H, W) bool mask (a copy)."""
        return self.state.mask.copy()

    @property
    def can_undo(self) -> bool:
        return self._index > 0

    @property
    def can_redo(self) -> bool:
        return self._index < len(self._history) - 1

    def _empty_state(self) -> SessionState:
        empty = np.zeros(self.image_hw, dtype=bool)
        empty.flags.writeable = False
        return SessionState(mask=empty)

    def _push(self, state: SessionState) -> np.ndarray:
        state.mask.flags.writeable = False
        del self._history[self._index + 1 :]  # a new action discards what could be redone
        self._history.append(state)
        self._index += 1
        return self.mask

    # -- actions ------------------------------------------------------------------------
    def add_click(self, x: float, y: float, positive: bool = True) -> np.ndarray:
        """Add a foreground (positive) or background click at pixel (x, y); returns the mask."""
        validate_points([[x, y]], [1], self.image_hw)
        s = self.state
        return self._push(self._predict(s.points + ((float(x), float(y)),), s.labels + (int(bool(positive)),), s.box, s,
                                        s.strokes))

    def add_scribble(self, points_xy, positive: bool = True) -> np.ndarray:
        """Add a scribble: an (N >= 2, 2) polyline of (x, y) pixels along which the mask should be
        foreground (positive) or background; one undo step. Returns the mask."""
        stroke = validate_stroke(points_xy, positive, self.image_hw, closed=False)
        s = self.state
        return self._push(self._predict(s.points, s.labels, s.box, s, s.strokes, stroke))

    def add_lasso(self, polygon_xy, positive: bool = True) -> np.ndarray:
        """Add a lasso: an (N >= 3, 2) polygon of (x, y) pixels, closed implicitly, whose inside is
        added to (positive) or removed from (negative) the mask; one undo step. A positive lasso
        drawn first (no box, no mask yet) also becomes the box. Returns the mask."""
        stroke = validate_stroke(polygon_xy, positive, self.image_hw, closed=True)
        s = self.state
        if not positive and not s.mask.any():
            raise InvalidPromptError("a negative lasso removes from the mask, and the mask is empty; draw a positive prompt first")
        box = s.box
        if positive and box is None and not s.mask.any() and self._stroke_rule.lasso_box:
            box = tuple(float(v) for v in lasso_box([stroke], self.image_hw))
        return self._push(self._predict(s.points, s.labels, box, s, s.strokes, stroke))

    def set_box(self, box: tuple[float, float, float, float]) -> np.ndarray:
        """Set or replace the box (x0, y0, x1, y1); earlier clicks are kept. Returns the mask."""
        b = validate_box(box, self.image_hw)
        s = self.state
        # a new box names a new target: do not feed the old mask back
        return self._push(self._predict(s.points, s.labels, tuple(float(v) for v in b), None, s.strokes))

    def clear_box(self) -> np.ndarray:
        """Remove the box; the clicks alone decide the mask (empty if there are none)."""
        s = self.state
        if not s.points and not any(st.positive for st in s.strokes):
            return self._push(self._empty_state())
        return self._push(self._predict(s.points, s.labels, None, None, s.strokes))

    def set_mask(self, mask: np.ndarray) -> np.ndarray:
        """Start from an existing (H, W) mask (e.g. a saved segmentation); clicks then refine it."""
        m = np.asarray(mask)
        if m.shape != self.image_hw:
            raise InvalidPromptError(f"mask has shape {m.shape}; it must match the image, {self.image_hw}")
        return self._push(SessionState(mask=m.astype(bool).copy()))

    def undo(self) -> np.ndarray:
        """Go one step back (no-op at the start); returns the mask."""
        self._index = max(0, self._index - 1)
        return self.mask

    def redo(self) -> np.ndarray:
        """Re-apply an undone step (no-op when there is none); returns the mask."""
        self._index = min(len(self._history) - 1, self._index + 1)
        return self.mask

    def reset(self) -> np.ndarray:
        """Clear all prompts (undoable); returns the empty mask."""
        return self._push(self._empty_state())

    # -- model --------------------------------------------------------------------------
    @property
    def _stroke_rule(self) -> StrokeRule:
        return getattr(self.segmenter, "stroke_rule", None) or StrokeRule()  # a remote segmenter has none

    def _encoded(self, roi: tuple[int, int, int, int] | None) -> EncodedImage:
        if roi is None:
            if self._full is None:
                self._full = self.segmenter.encode(self.image, self.window)
            return self._full
        return self._crops.get(roi)

    def _predict(self, points: tuple, labels: tuple, box: tuple | None, previous: SessionState | None,
                 earlier: tuple[Stroke, ...] = (), new: Stroke | None = None) -> SessionState:
        """Decode the prompts; ``earlier``: the strokes so far, ``new``: this step's stroke, if any."""
        pts = np.asarray(points, dtype=np.float32).reshape(-1, 2)
        strokes = list(earlier) + ([new] if new is not None else [])
        prev_mask = previous.mask if previous is not None else None
        extent_mask = prev_mask if self.roi_zoom is True or self.auto_zoom_on_mask else None
        extent_pts = np.concatenate([pts] + [s.xy.astype(np.float32) for s in strokes])  # the crop must frame the strokes too
        extent_box = None if box is None else np.asarray(box)
        if extent_box is None and self._stroke_rule.zoom_grow is not None:  # a first scribble's extent (StrokeRule.zoom_grow)
            extent_box = scribble_box(strokes, self.image_hw, self._stroke_rule.zoom_grow)
        roi = next_roi(None if previous is None else previous.roi, extent_box, extent_mask,
                       extent_pts, self.image_hw, self.roi_zoom, keep=self.keep_crop)
        ox, oy = (roi[0], roi[1]) if roi else (0, 0)
        encoded = self._encoded(roi)
        mask_input = None
        if previous is not None and previous.logits is not None and previous.roi == roi:
            mask_input = previous.logits
        elif prev_mask is not None and prev_mask.any():
            mask_input = prev_mask if roi is None else prev_mask[roi[1] : roi[3], roi[0] : roi[2]].copy()
        out: Prediction = self.segmenter.predict_encoded(
            encoded,
            points=pts - [ox, oy] if len(pts) else None,
            labels=np.asarray(labels) if len(pts) else None,
            box=None if box is None else np.asarray(box) - [ox, oy, ox, oy],
            mask_input=mask_input,
            # earlier lassos ride with the scribbles as Stroke objects (kept, pinned and forced in order)
            scribbles=[st.shifted(ox, oy) for st in strokes] or None,
        )
        mask, logits = out.mask, out.logits
        if new is not None and mask_input is not None:  # a corrective stroke edits near itself
            previous_mask = prev_mask if roi is None else prev_mask[roi[1] : roi[3], roi[0] : roi[2]]
            previous_logits = mask_input if mask_input.dtype != bool else None
            mask, logits = local_edit(mask, logits, previous_mask, previous_logits, new.shifted(ox, oy), encoded.geometry,
                                      self._stroke_rule)
        if roi is not None:
            inside, mask = mask, np.zeros(self.image_hw, dtype=bool)
            mask[roi[1] : roi[3], roi[0] : roi[2]] = inside
            if strokes and self._stroke_rule.force:  # strokes' parts outside the crop
                whole = ResizeGeometry.for_shape(*self.image_hw)  # only its original_hw is used: the image's
                mask = finish_strokes(mask, None, strokes, whole, mask_input is None, self._stroke_rule)[0]
        return SessionState(points, labels, box, mask, logits, roi, out.score, tuple(strokes))

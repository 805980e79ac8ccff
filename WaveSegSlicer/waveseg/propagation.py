"""How propagation prompts each next slice from the previous one, and where it stops.

``VolumeSession`` walks slice by slice from a segmented slice. For every next slice it asks
``next_prompt`` for the decoder's prompt (built from the previous slice's mask and logits) and
``stop_reason`` whether to keep the new mask or to stop. Inside a user's 3D box (``box3d``) the
box's slices are the user's statement of where the object is, so the walk uses the in-box rule;
outside a box (``propagate``, re-propagation after a click) it uses the stricter free rule.
Masks are (rows, cols) bool arrays of one slice; boxes are (x0, y0, x1, y1) pixels of that slice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import distance_transform_edt

PROMPTS = ("box", "box+mask", "box+point", "recentre")


@dataclass(frozen=True)
class PropagationRule:
    """Thresholds and prompt kind of propagation (defaults: the shipped rule).

    prompt: the next slice's prompt, one of ``PROMPTS``: the previous mask's box plus ``margin``
      pixels (``margin_unit``: "frame" = pixels of the 256 x 256 model frame, "pixel" = the slice's
      own pixels); that box with the previous slice's logits as the mask prompt; that box with one
      positive point at the previous mask's most interior pixel; or that box, then once more with
      the box of the mask it gave (re-centred on the new slice's object).
    min_score, relative_score, max_area_jump: the free rule (outside a 3D box). Stop where the
      decoder's predicted IoU falls below ``min_score`` or below ``relative_score`` x the first
      propagated slice's, or where the area changes by more than ``max_area_jump``x.
    in_box_min_score, in_box_patience: the in-box rule. Stop only after ``in_box_patience``
      consecutive slices whose mask is empty or scores below ``in_box_min_score``; those slices
      are left empty. ``in_box_patience=0`` never stops inside the box.
    in_box_drop: inside the box a slice also fails when its score falls below ``in_box_drop`` x the
      last kept slice's: an object's end is an abrupt drop (a bright cube: 0.94 -> 0.55 on the
      first blank slice), while scores along an object drift slowly (Colin27 thalamus: 0.68 -> 0.51
      over 12 slices, no step below 0.89x). 0 turns it off.
    clip_to_box: inside a 3D box, clip each next box to the 3D box's (x, y) extent.
    free_prompt, free_margin: the prompt kind and margin outside a 3D box. The free rule reads the
      decoder's score, and a mask prompt lifts it past the object's end (Colin27 thalamus, from
      its slice 6: box + mask ran on through the empty slices 12..15, box alone stopped), so
      outside a box the prompt stays the box its thresholds were measured with.
    """

    # Chosen by mean 3D Dice over the 36 volumes of scripts/bench_volume.py (tight 3D box, shipped
    # model, 2026-12-02): box 0.576, box + mask 0.603, box + interior point 0.585, re-centred box
    # 0.582, box with margin 1.5 0.607, box + mask with margin 1.5 0.610, never stopping 0.581; the
    # held-out volumes do not move down (LiTS liver 0.931 -> 0.930, tumour 0.497 -> 0.501, macaque
    # brain 0.930 -> 0.957). Command:
    #   scripts/bench_propagation.py --z-margins 0 --variants "prompt=box,margin=3" "prompt=box+mask,margin=3" \
    #     "prompt=box+point,margin=3" "prompt=recentre,margin=3" "prompt=box,margin=1.5" \
    #     "prompt=box+mask,margin=1.5" "prompt=box,margin=3,in_box_patience=0"
    prompt: str = "box+mask"
    margin: float = 1.5
    margin_unit: str = "frame"
    min_score: float = 0.3
    relative_score: float = 0.8
    max_area_jump: float = 2.5
    in_box_min_score: float = 0.3
    in_box_patience: int = 2
    # 0.9 by scripts/bench_propagation.py --z-margins 0 3 --variants "" "in_box_drop=0.9" "in_box_drop=0.8"
    # (run cut short by time: the first 18 volumes of bench_volume.py, 2026-12-02). Tight box: the same
    # 3D Dice to 0.001 on 17, pyradiomics lung2 0.829 -> 0.823. Box 3 slices longer than the object at
    # each end: mean +0.023 (breast1 lesion 0.469 -> 0.783, lung2 0.686 -> 0.720, brain2 0.416 -> 0.439,
    # left kidney 0.821 -> 0.839, thalamus L 0.749 -> 0.762), none lower; 0.8 helped only breast1 (0.536).
    in_box_drop: float = 0.9
    clip_to_box: bool = True
    free_prompt: str = "box"
    free_margin: float = 3.0

    def __post_init__(self) -> None:
        if self.prompt not in PROMPTS or self.free_prompt not in PROMPTS:
            raise ValueError(f"prompt and free_prompt must be one of {PROMPTS}; got {self.prompt!r}, {self.free_prompt!r}")
        if self.margin_unit not in ("frame", "pixel"):
            raise ValueError(f"margin_unit must be 'frame' or 'pixel'; got {self.margin_unit!r}")

    def margin_pixels(self, slice_hw: tuple[int, int], in_box: bool = True) -> float:
        """The box margin in pixels of a slice of (rows, cols) ``slice_hw`` (inside a 3D box or not)."""
        margin = self.margin if in_box else self.free_margin
        return margin * max(slice_hw) / 256 if self.margin_unit == "frame" else margin

    def prompt_kind(self, in_box: bool) -> str:
        """The next-slice prompt kind inside a 3D box or outside one."""
        return self.prompt if in_box else self.free_prompt


def mask_box(mask: np.ndarray, margin: float, bounds: tuple[float, float, float, float] | None = None):
    """(x0, y0, x1, y1) of a (rows, cols) mask's extent plus ``margin`` pixels, inside the slice
    and, when given, inside ``bounds`` (x0, y0, x1, y1); None for an empty mask."""
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return None
    h, w = mask.shape
    x0, y0, x1, y1 = cols.min() - margin, rows.min() - margin, cols.max() + margin, rows.max() + margin
    if bounds is not None:
        x0, y0 = max(x0, bounds[0] - margin), max(y0, bounds[1] - margin)
        x1, y1 = min(x1, bounds[2] + margin), min(y1, bounds[3] + margin)
    return (float(max(x0, 0)), float(max(y0, 0)), float(min(x1, w - 1)), float(min(y1, h - 1)))


def interior_point(mask: np.ndarray) -> tuple[float, float]:
    """(x, y) of the pixel of a non-empty (rows, cols) mask farthest from its edge."""
    rows, cols = np.nonzero(mask)
    r0, c0 = rows.min(), cols.min()
    crop = np.pad(mask[r0 : rows.max() + 1, c0 : cols.max() + 1], 1)  # a background ring: edges at the crop's border count
    r, c = np.unravel_index(int(np.argmax(distance_transform_edt(crop))), crop.shape)
    return float(c - 1 + c0), float(r - 1 + r0)


def next_prompt(rule: PropagationRule, previous: np.ndarray, previous_logits: np.ndarray | None,
                bounds: tuple[float, float, float, float] | None) -> dict | None:
    """Keyword prompts for ``VolumeSession._predict`` on the next slice (box, points, labels,
    mask_input), or None when the previous (rows, cols) mask gives no box. ``bounds``: the 3D
    box's (x0, y0, x1, y1) when the slice lies inside one, else None."""
    in_box = bounds is not None
    box = mask_box(previous, rule.margin_pixels(previous.shape, in_box), bounds if rule.clip_to_box else None)
    if box is None or box[2] - box[0] < 1 or box[3] - box[1] < 1:
        return None
    prompt = {"box": box}
    kind = rule.prompt_kind(in_box)
    if kind == "box+mask" and previous_logits is not None:
        prompt["mask_input"] = previous_logits
    if kind == "box+point":
        prompt["points"], prompt["labels"] = np.asarray([interior_point(previous)], np.float32), np.asarray([1])
    return prompt


@dataclass
class StopState:
    """What the rules remember along one direction of one propagation."""

    reference_score: float | None = None
    misses: int = 0  # consecutive in-box slices that failed the in-box rule
    last_score: float | None = None  # the last kept in-box slice's score


def stop_reason(rule: PropagationRule, state: StopState, index: int, area: int, previous_area: int, score: float,
                in_box: bool) -> tuple[str | None, bool]:
    """(why propagation stops at slice ``index``, or None; whether to write the new mask).

    Inside a box a failing slice is skipped (not written) and the walk continues from the last
    good mask, until ``in_box_patience`` such slices in a row say the object has ended.
    """
    state.reference_score = score if state.reference_score is None else state.reference_score
    if in_box:
        dropped = rule.in_box_drop > 0 and state.last_score is not None and score < rule.in_box_drop * state.last_score
        if area > 0 and score >= rule.in_box_min_score and not dropped:
            state.misses, state.last_score = 0, score
            return None, True
        state.misses += 1
        if rule.in_box_patience and state.misses >= rule.in_box_patience:
            drop = f" or {rule.in_box_drop}x the last kept" if rule.in_box_drop > 0 else ""
            return f"object ended at slice {index} ({state.misses} slices below score {rule.in_box_min_score}{drop})", False
        return None, False
    if area == 0 or score < max(rule.min_score, rule.relative_score * state.reference_score):
        return f"object ended at slice {index} (score {score:.2f})", False
    if area > previous_area * rule.max_area_jump or area * rule.max_area_jump < previous_area:
        return f"area jump at slice {index} ({previous_area} -> {area} px)", False
    return None, True

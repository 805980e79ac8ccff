"""How scribbles and lassos reach the SAM-style decoder (``Segmenter.predict``), and how its masks honour them.

The decoder knows two prompt forms: sparse point tokens and one dense mask prompt (the earlier
logits). A stroke is given to it in both, and the result is then made to agree with the stroke:

* tokens: ``StrokeRule.scribble_points`` points spread evenly along each scribble, labelled like
  it (1 positive, 0 negative), after the clicks; a positive lasso that is the first prompt (no
  box, no mask prompt) also gives its bounding box, the prompt the decoder knows best for "the
  object is in here", and so do first positive scribbles, their extent grown by
  ``StrokeRule.scribble_box`` of its size on each side;
* dense: a positive lasso with no mask prompt gives its filled inside as the mask prompt (with the
  model's edge profile, ``waveseg.prompting.mask_prompt``); strokes reach later decodes densely through the
  fed-back logits, in which the result step below pins them. Optionally (``StrokeRule.pin``, off:
  no gain measured), where the mask prompt contradicts a stroke's pixels they are pinned to
  +-``PIN_LOGIT`` before decoding, as ``waveseg.prompting.click_pinning`` does for a click's disc;
* result: the pixels of a positive scribble, or a positive lasso's inside, are set in every
  returned mask (and pinned in the returned logits, so feeding them back keeps them); a negative
  stroke's are cleared. A lasso thus adds or removes exactly its inside, and a scribble's line is
  never left contradicted, as the user drew it. Exception: a positive lasso that is the mask's first
  prompt is a rough outline of the target and is not forced (``force_first_lasso``); the model's
  mask inside its box stands.

Why these choices (``scripts/bench_strokes.py``): the numbers and commands are in ``StrokeRule``'s docstring.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

from waveseg.prompting.click_pinning import PIN_LOGIT
from waveseg.errors import InvalidPromptError
from waveseg.prompting.mask_prompt import edge_profile_logits
from waveseg.preprocess import LOWRES_MASK_SIZE, ResizeGeometry
from waveseg.prompting.strokes import Stroke, inside_points, stroke_pixels, validate_stroke

if TYPE_CHECKING:  # torch is imported where a stroke reaches the model: sessions import this module torch-free
    import torch

FRAME_WIDTH = 2  # a scribble's width when pinned in the 256 model frame (pixels)


@dataclass
class StrokeRule:
    """How strokes become prompts; the defaults are the shipped rule.

    Chosen on the held-out split (20 masks, shipped wave-gms, strokes through ``InteractiveSession``;
    ``.venv/bin/python scripts/bench_strokes.py --limit 20 --round 1`` then ``--round 2``), Dice after
    1 / 3 / 5 scribbles and after a first lasso / lasso + 1 / + 3 scribbles:
    round 1 (5 points, pin, force, local 2, first lasso forced, else as named):
      5 points 0.643 / 0.777 / 0.836, lasso 0.828 / 0.872 / 0.889; 1 point 0.565 / 0.793 / 0.872;
      3 points 0.698 / 0.829 / 0.867; no pinning 0.643 / 0.777 / 0.839; no forcing 0.643 / 0.763 /
      0.828; local None 0.643 / 0.816 / 0.860; local 1 0.643 / 0.765 / 0.818; first lasso not forced:
      lasso 0.845 (forced 0.828: the noisy outline's overshoot was added); first lasso as a box only:
      lasso 0.818 (box + inside as mask prompt 0.828).
    round 2 (3 points, first lasso not forced): pin + local 2 0.698 / 0.829 / 0.867; pin + local None
      0.698 / 0.828 / 0.880; no pin + local 2 0.698 / 0.840 / 0.878; no pin + local None 0.698 /
      0.842 / 0.891; no pin + local 4 0.698 / 0.851 / 0.877.
    So: 3 point tokens (1 point starts weak, 5 or 8 over-constrain the decoder), the stroke's pixels
    forced in the result (and pinned in the logits fed back, which carries them densely to the next
    decode), no extra pinning into the prompt (no gain), a first lasso as box + inside, not forced.
    Keeping a corrective stroke's change near it costs about 1 point at 5 scribbles (0.878 vs 0.891)
    and nothing at 3; it is kept, as the issue asks that a stroke change the mask only near itself
    (without it, a negative scribble on a false band above the sample brain changed 4069 pixels farther
    than 15 pixels from the band, 22 % of the brain's area: Testing/test_strokes.py's case).
    Round 1 and 2 used one generator for both protocols, so their lasso columns saw different
    outlines per rule; ``stroke_protocol`` now seeds each step (the evaluate.py tables).
    round 3 (2026-12-06, ``--round 3``, the round-2 rule plus a box from a first positive scribble's
      extent, grown by a fraction of its size on each side): none 0.698 / 0.843 / 0.887; grow 0
      0.664 / 0.883 / 0.905; 0.1 0.676 / 0.889 / 0.911; 0.15 0.687 / 0.884 / 0.908; 0.2 0.692 / 0.875 /
      0.898; 0.3 0.692 / 0.872 / 0.894. On the never-seen lesions (``--slices
      ~/.cache/waveseg/slices_unseen_lesions/test.npz``) none 0.505 / 0.774 / 0.853, grow 0 0.681 /
      0.838 / 0.873, 0.1 0.681 / 0.837 / 0.871, 0.3 0.657 / 0.828 / 0.875. Growing by a tenth of the
      larger side as well (at least) gave 0.689 / 0.881 / 0.911 at 0.1; keeping the box in every later
      decode (the box of all positive scribbles) 0.676 / 0.870 / 0.909; no box for a nearly straight
      scribble (shorter side under 0.4 of the longer) 0.751 / 0.878 / 0.908 held-out but 0.617 /
      0.810 / 0.869 on the never-seen lesions (0.2: 0.730 / 0.880 / 0.908). With the box, point tokens
      per scribble 1 / 2 / 5 gave 0.867 / 0.865 / 0.874 at 3 scribbles held-out (0.853 / 0.834 / 0.821
      never-seen) against 0.889 (0.837) with 3, and changes anywhere (local None) 0.895 (0.846), which
      the issue's "changes the mask only near it" rules out (local 3 / 4: 0.889 / 0.890, never-seen
      0.841 / 0.841); 1 / 2 point tokens for the first scribble only, 3 for later ones: 0.873 / 0.885
      (0.850 / 0.840). So a first scribble's box,
      grown by 0.1: the decoder knows "the object is in here" best, and a scribble drawn along or
      around the target spans most of it; later scribbles correct through the fed-back logits."""

    scribble_points: int = 3  # point tokens per scribble
    pin: bool = False  # pin the strokes' pixels into the mask prompt where it contradicts them
    force: bool = True  # set / clear the strokes' pixels in the returned masks (and pin them in its logits)
    lasso_box: bool = True  # a first positive lasso also gives its bounding box
    lasso_mask: bool = True  # a first positive lasso also gives its inside as the mask prompt
    force_first_lasso: bool = False  # force a positive lasso's inside also when it is the first prompt (a rough outline)
    # a first positive scribble (no box, no mask prompt yet) also gives a box: the positive scribbles'
    # extent grown by this fraction of its size on each side (at least SCRIBBLE_BOX_MIN pixels); None: no box
    scribble_box: float | None = 0.1
    # with no box, a session's ROI zoom takes the positive scribbles' extent, grown by this fraction of
    # its size on each side, as the target's extent (None: scribbles never zoom). 2026-12-07,
    # scripts/bench_strokes.py --limit 20 --round 4, Dice after 3 scribbles held-out / never-seen
    # lesions: no zoom 0.889 / 0.837; grown 0: 0.891 / 0.857; 0.1: 0.891 / 0.854; 0.3: 0.892 /
    # 0.862; 0.5: 0.891 / 0.861. Small lesions gain most: a scribble drawn along or around the target
    # spans most of it, and the crop gives the decoder more pixels on it.
    zoom_grow: float | None = 0.3
    # a corrective stroke (sessions, ``local_edit``) changes the mask only within this many times
    # half its extent (at least LOCAL_MIN model-frame pixels) of its pixels; None: anywhere
    local: float | None = 2.0


SCRIBBLE_BOX_MIN = 3.0  # image pixels a first scribble's box grows by at least on each side
LOCAL_MIN = 12.0  # model-frame pixels (the frame is 256 wide): a short stroke still edits a small neighbourhood


def parse_strokes(scribbles, lasso, image_hw: tuple[int, int]) -> list[Stroke]:
    """Validate ``scribbles`` [(polyline (N, 2) xy, positive), ...] and ``lasso`` ((polygon (N, 2)
    xy, positive) or None) in image pixels; returns the strokes, scribbles first, lasso last."""
    strokes = []
    for item in scribbles or ():
        strokes.append(_one(item, "scribble", image_hw, closed=False))
    if lasso is not None:
        strokes.append(_one(lasso, "lasso", image_hw, closed=True))
    return strokes


def _one(item, what: str, image_hw: tuple[int, int], closed: bool) -> Stroke:
    if isinstance(item, Stroke):
        return item
    try:
        xy, positive = item
    except (TypeError, ValueError):
        raise InvalidPromptError(f"a {what} is given as (points_xy, positive), points (N, 2) pixels; got {item!r}") from None
    if not isinstance(positive, (bool, np.bool_, int, np.integer)) or positive not in (0, 1):
        raise InvalidPromptError(f"a {what}'s positive flag must be True or False; got {positive!r}")
    return validate_stroke(xy, bool(positive), image_hw, closed)


def stroke_tokens(strokes: Sequence[Stroke], image_hw: tuple[int, int], rule: StrokeRule) -> tuple[np.ndarray, np.ndarray]:
    """(K, 2) float32 (x, y) image-pixel points and (K,) int64 labels of the scribbles' point tokens."""
    xy, labels = [np.zeros((0, 2), np.float32)], [np.zeros(0, np.int64)]
    for s in strokes:
        if not s.closed:
            pts = inside_points(s.xy, image_hw, rule.scribble_points)
            xy.append(pts)
            labels.append(np.full(len(pts), int(s.positive), np.int64))
    return np.concatenate(xy), np.concatenate(labels)


def lasso_box(strokes: Sequence[Stroke], image_hw: tuple[int, int]) -> np.ndarray | None:
    """(4,) float32 (x0, y0, x1, y1) box of a positive lasso's inside, or None."""
    for s in strokes:
        if s.closed and s.positive:
            rows, cols = np.nonzero(stroke_pixels(s, image_hw))
            return np.array([cols.min(), rows.min(), cols.max(), rows.max()], np.float32)
    return None


def scribble_box(strokes: Sequence[Stroke], image_hw: tuple[int, int], grow: float) -> np.ndarray | None:
    """(4,) float32 (x0, y0, x1, y1): the positive scribbles' extent grown by ``grow`` times its
    size on each side (at least ``SCRIBBLE_BOX_MIN`` pixels), clipped to the image; None without one."""
    xy = [s.xy for s in strokes if s.positive and not s.closed]
    if not xy:
        return None
    xy = np.concatenate(xy)
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    pad = np.maximum(grow * (hi - lo), SCRIBBLE_BOX_MIN)
    h, w = image_hw
    return np.clip(np.concatenate([lo - pad, hi + pad]), 0, [w - 1, h - 1, w - 1, h - 1]).astype(np.float32)


def frame_pixels(stroke: Stroke, geometry: ResizeGeometry) -> np.ndarray:
    """(256, 256) bool: the stroke's pixels in the model frame (drawn there, so a thin line on a large
    image is not lost by downsampling); the padding stays False."""
    rh, rw = geometry.resized_hw
    framed = Stroke(geometry.to_model_xy(stroke.xy).astype(np.float64), stroke.positive, stroke.closed)
    out = np.zeros((LOWRES_MASK_SIZE, LOWRES_MASK_SIZE), bool)
    try:
        out[:rh, :rw] = stroke_pixels(framed, (rh, rw), width=FRAME_WIDTH)
    except ValueError:  # a stroke that became empty in the frame: nothing to pin
        pass
    return out


def pin_strokes(logits: torch.Tensor, strokes: Sequence[Stroke], geometry: ResizeGeometry,
                only_contradicted: bool = True) -> torch.Tensor:
    """A copy of (..., 256, 256) model-frame ``logits`` with each stroke's pixels raised to >= +PIN_LOGIT
    (positive) or lowered to <= -PIN_LOGIT (negative), in order (later strokes win); with
    ``only_contradicted``, only pixels whose sign disagrees with the stroke change."""
    import torch

    out = logits.detach().to("cpu", torch.float32).numpy().copy()
    for s in strokes:
        px = frame_pixels(s, geometry)
        view = out[..., px]
        if s.positive:
            out[..., px] = np.where(view > 0, view, PIN_LOGIT) if only_contradicted else np.maximum(view, PIN_LOGIT)
        else:
            out[..., px] = np.where(view <= 0, view, -PIN_LOGIT) if only_contradicted else np.minimum(view, -PIN_LOGIT)
    return torch.from_numpy(out).to(logits.device, logits.dtype)


def force_strokes(masks: np.ndarray, strokes: Sequence[Stroke], image_hw: tuple[int, int]) -> np.ndarray:
    """(..., H, W) bool masks with each stroke's pixels set (positive) or cleared (negative), in order."""
    out = np.array(masks, bool, copy=True)
    for s in strokes:
        out[..., stroke_pixels(s, image_hw)] = s.positive
    return out


def apply_stroke_prompts(strokes: Sequence[Stroke], points, box, mask_logits: torch.Tensor | None,
                         geometry: ResizeGeometry, rule: StrokeRule, profile: bool = True):
    """The decoder's prompts with the strokes added (module docstring): returns (points, box,
    mask_logits) in ``Segmenter.predict_encoded``'s forms: ((N, 2) xy, (N,) labels) or None, (4,) or
    None, (1, 1, 256, 256) or None. ``profile``: give a lasso's inside the model's edge profile."""
    hw = geometry.original_hw
    xy, labels = stroke_tokens(strokes, hw, rule)
    if len(xy):
        points = (xy, labels) if points is None else (np.concatenate([points[0], xy]), np.concatenate([points[1], labels]))
    lasso = next((s for s in reversed(strokes) if s.closed), None)  # the newest lasso
    if mask_logits is None and lasso is not None and lasso.positive:  # the first prompt of a mask
        if rule.lasso_box and box is None:
            box = lasso_box(strokes, hw)
        if rule.lasso_mask:
            inside = frame_pixels(lasso, geometry)
            framed = edge_profile_logits(inside) if profile else np.where(inside, 10.0, -10.0).astype(np.float32)
            import torch

            mask_logits = torch.from_numpy(framed)[None, None]
    elif mask_logits is None and box is None and rule.scribble_box is not None:
        box = scribble_box(strokes, hw, rule.scribble_box)
    elif mask_logits is not None and rule.pin:
        mask_logits = pin_strokes(mask_logits, strokes, geometry)
    if points is None and box is None and mask_logits is None:
        raise InvalidPromptError("a negative scribble or lasso removes from a mask: give mask_input (the mask to edit) "
                                 "or a positive prompt with it")
    return points, box, mask_logits


def finish_strokes(masks: np.ndarray, logits: torch.Tensor | None, strokes: Sequence[Stroke],
                   geometry: ResizeGeometry, first: bool = False,
                   rule: StrokeRule | None = None) -> tuple[np.ndarray, torch.Tensor | None]:
    """Decoded (M, H, W) masks and (M, 256, 256) logits made to agree with the strokes (set / clear
    their pixels; pin them in the logits, so feeding the logits back keeps the edit). ``first``: the
    strokes are the mask's first prompt, where ``rule.force_first_lasso`` decides on a positive lasso."""
    if first and rule is not None and not rule.force_first_lasso:
        strokes = [s for s in strokes if not (s.closed and s.positive)]
    masks = force_strokes(masks, strokes, geometry.original_hw)
    return masks, None if logits is None else pin_strokes(logits, strokes, geometry)


def local_edit(mask: np.ndarray, logits: np.ndarray, previous_mask: np.ndarray | None, previous_logits: np.ndarray | None,
               new: Stroke, geometry: ResizeGeometry, rule: StrokeRule) -> tuple[np.ndarray, np.ndarray]:
    """Keep a corrective stroke's change near it: beyond ``rule.local`` x half the new stroke's extent
    (at least ``LOCAL_MIN`` model-frame pixels) from its pixels, the (H, W) mask and (1, 256, 256)
    logits go back to ``previous_mask`` / ``previous_logits`` (logits of the mask prompt it was
    decoded with). With no previous mask, or ``rule.local`` None, they are returned unchanged."""
    from scipy.ndimage import distance_transform_edt  # imported here: scipy.ndimage takes 0.5 s, a box's first mask needs none of it

    if rule.local is None or previous_mask is None or not previous_mask.any():
        return mask, logits
    framed = frame_pixels(new, geometry)
    if not framed.any():
        return mask, logits
    rows, cols = np.nonzero(framed)
    radius = max(LOCAL_MIN, rule.local * np.hypot(np.ptp(rows), np.ptp(cols)) / 2)
    if previous_logits is not None:
        far = distance_transform_edt(~framed) > radius
        logits = np.where(far, np.asarray(previous_logits, np.float32).reshape(logits.shape), logits).astype(np.float32)
    far_image = distance_transform_edt(~stroke_pixels(new, geometry.original_hw)) > radius / geometry.scale
    return np.where(far_image, previous_mask, mask), logits

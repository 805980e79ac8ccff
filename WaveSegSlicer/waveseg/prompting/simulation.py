"""Simulated user prompts, for training, evaluation and on-site adaptation.

Clicks follow the RITM protocol (Sofiiuk et al., 2022): the next click goes to the point
farthest from the boundary (the distance-transform maximum) of the larger error region; it is
positive if that region is missed foreground, negative if it is false background. Boxes are the
mask's tight bounding box, optionally jittered. Coordinates are (x, y) pixels.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import distance_transform_edt


def tight_box(mask: np.ndarray) -> np.ndarray:
    """(4,) float32 (x0, y0, x1, y1) bounding box of a non-empty (H, W) mask."""
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        raise ValueError("cannot box an empty mask")
    return np.array([cols.min(), rows.min(), cols.max(), rows.max()], dtype=np.float32)


def jittered_box(mask: np.ndarray, rng: np.random.Generator, max_shift: float = 0.1, max_pixels: float = 20.0) -> np.ndarray:
    """The tight box with each side moved by up to ``max_shift`` x its side length (at most
    ``max_pixels``), as MedSAM's training does, clipped to the image."""
    box = tight_box(mask)
    h, w = mask.shape
    size = np.array([box[2] - box[0], box[3] - box[1]] * 2, dtype=np.float32)
    shift = rng.uniform(-1, 1, 4) * np.minimum(size * max_shift, max_pixels)
    box = box + shift.astype(np.float32)
    box[[0, 2]] = np.clip(np.sort(box[[0, 2]]), 0, w - 1)
    box[[1, 3]] = np.clip(np.sort(box[[1, 3]]), 0, h - 1)
    return box


def _farthest_inside(region: np.ndarray) -> tuple[float, float, float]:
    """(x, y, distance) of the point of ``region`` farthest from its border."""
    # the transform runs on the region's bounding box only (with a ring of background around
    # it): the nearest background pixel of any region pixel lies inside that ring, so distances
    # and the row-major first maximum are those of the whole frame, at a fraction of the cost
    # for the small error regions that corrective clicks see (training runs thousands of these)
    rows, cols = np.nonzero(np.any(region, axis=1))[0], np.nonzero(np.any(region, axis=0))[0]
    y0, x0 = rows[0], cols[0]
    distance = distance_transform_edt(np.pad(region[y0 : rows[-1] + 1, x0 : cols[-1] + 1], 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(distance)), distance.shape)
    return float(x + x0), float(y + y0), float(distance[y, x])


def next_click(prediction: np.ndarray | None, truth: np.ndarray) -> tuple[float, float, int] | None:
    """RITM rule: (x, y, label) of the next click, or None when the prediction is perfect.

    prediction: (H, W) bool current mask (None = nothing predicted yet); truth: (H, W) bool.
    """
    pred = np.zeros_like(truth, bool) if prediction is None else np.asarray(prediction, bool)
    missed = truth & ~pred
    extra = pred & ~truth
    if not missed.any() and not extra.any():
        return None
    x_fn, y_fn, d_fn = _farthest_inside(missed) if missed.any() else (0, 0, -1.0)
    x_fp, y_fp, d_fp = _farthest_inside(extra) if extra.any() else (0, 0, -1.0)
    return (x_fn, y_fn, 1) if d_fn >= d_fp else (x_fp, y_fp, 0)

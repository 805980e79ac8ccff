"""Validation of user prompts in image pixel coordinates.

Conventions (everywhere in WaveSeg's 2D API): a point is (x, y) with x the column and y the
row, in pixels of the image as given (0-based, pixel centres at integers); a label is 1 for
foreground and 0 for background; a box is (x0, y0, x1, y1), inclusive pixel coordinates.
Sensible fixes that are documented and safe are applied; anything else raises
``InvalidPromptError`` with what was wrong and what is expected:

* a box given by any two opposite corners (e.g. dragged up-left) is reordered;
* a box reaching outside the image is clipped to it; one entirely outside is an error;
* a box of zero width or height (after clipping) is an error;
* a point outside the image is an error (a click there has no meaning).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from waveseg.errors import InvalidPromptError


def validate_points(
    points: Sequence[Sequence[float]] | np.ndarray | None,
    labels: Sequence[int] | np.ndarray | None,
    image_hw: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray] | None:
    """Return ((N, 2) float32 (x, y), (N,) int64 labels) or None when there are no points."""
    if points is None and labels is None:
        return None
    if points is None or labels is None:
        raise InvalidPromptError("points and labels must be given together (labels: 1 foreground, 0 background)")
    try:
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2) if np.size(points) else np.zeros((0, 2))
        lab = np.asarray(labels).reshape(-1)
    except (TypeError, ValueError):
        raise InvalidPromptError(f"points must be an (N, 2) array of (x, y) pixels; got {points!r}") from None
    if np.asarray(points).size and np.asarray(points).shape[-1] != 2:
        raise InvalidPromptError(f"points must be (N, 2) (x, y) pairs; got shape {np.asarray(points).shape}")
    if len(pts) != len(lab):
        raise InvalidPromptError(f"got {len(pts)} points but {len(lab)} labels; give one label per point")
    if len(pts) == 0:
        return None
    if not np.all(np.isfinite(pts)):
        raise InvalidPromptError("point coordinates must be finite numbers")
    if not np.all(np.isin(lab, (0, 1))):
        bad = sorted(set(lab.tolist()) - {0, 1})
        raise InvalidPromptError(f"labels must be 1 (foreground) or 0 (background); got {bad}")
    h, w = image_hw
    outside = (pts[:, 0] < -0.5) | (pts[:, 0] > w - 0.5) | (pts[:, 1] < -0.5) | (pts[:, 1] > h - 0.5)
    if outside.any():
        x, y = pts[np.argmax(outside)]
        raise InvalidPromptError(f"point (x={x:g}, y={y:g}) is outside the {w}x{h} (width x height) image")
    return pts.astype(np.float32), lab.astype(np.int64)


def validate_box(box: Sequence[float] | np.ndarray | None, image_hw: tuple[int, int]) -> np.ndarray | None:
    """Return the (4,) float32 box (x0, y0, x1, y1) ordered and clipped to the image, or None."""
    if box is None:
        return None
    try:
        b = np.asarray(box, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise InvalidPromptError(f"box must be 4 numbers (x0, y0, x1, y1); got {box!r}") from None
    if b.size != 4:
        raise InvalidPromptError(f"box must be 4 numbers (x0, y0, x1, y1); got {b.size}")
    if not np.all(np.isfinite(b)):
        raise InvalidPromptError("box coordinates must be finite numbers")
    x0, x1 = sorted((b[0], b[2]))
    y0, y1 = sorted((b[1], b[3]))
    h, w = image_hw
    if x1 < 0 or y1 < 0 or x0 > w - 1 or y0 > h - 1:
        raise InvalidPromptError(f"box {tuple(b.tolist())} lies entirely outside the {w}x{h} (width x height) image")
    x0, x1 = np.clip([x0, x1], 0, w - 1)
    y0, y1 = np.clip([y0, y1], 0, h - 1)
    if x1 - x0 < 1 or y1 - y0 < 1:
        raise InvalidPromptError(
            f"box {tuple(b.tolist())} has zero width or height inside the image; drag a box at least 1 pixel wide and high"
        )
    return np.array([x0, y0, x1, y1], dtype=np.float32)

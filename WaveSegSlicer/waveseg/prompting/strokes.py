"""Stroke geometry: scribbles (polylines) and lassos (closed polygons) as pixels and as points.

Coordinates are (x, y) pixels of the image as given (x = column, pixel centres at integers), as
for clicks (``waveseg.prompting.validation``). What is accepted, and what happens to odd strokes:

* a scribble is an (N, 2) polyline with N >= 2 distinct points; a lasso an (N, 2) polygon with
  N >= 3 vertices, closed implicitly (last vertex back to the first) and enclosing area;
* one point, or all points equal, is ``InvalidPromptError`` (a click is the prompt for one spot);
  a lasso with no area (collinear vertices) too; NaN or Inf anywhere too;
* a stroke may leave the image (a mouse drag often does): its pixels outside are dropped; a stroke
  with no pixel inside the image is ``InvalidPromptError``; vertices farther than one image
  size outside are refused (they are a bug, not a drag);
* a self-intersecting lasso (a figure-eight, a loop that crosses itself where the drag closes) is
  filled as everything its outline encloses (the outline's holes filled), not by the even-odd
  rule, under which a twisted loop would leave an unfilled hole where it overlaps itself.

Rasterising uses Pillow's ``ImageDraw`` (already a core dependency; scikit-image's ``draw`` would
do the same but is not one) and ``scipy.ndimage.binary_fill_holes``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from waveseg.errors import InvalidPromptError

SCRIBBLE_WIDTH = 3  # pixels of a scribble's line at image resolution (a thin pen, as in ScribblePrompt)


@dataclass(frozen=True)
class Stroke:
    """A validated scribble or lasso: ``xy`` (N, 2) float64 (x, y) image pixels, positive or not."""

    xy: np.ndarray
    positive: bool
    closed: bool  # True: a lasso (polygon), False: a scribble (polyline)

    def shifted(self, dx: float, dy: float) -> "Stroke":
        """The same stroke in a frame whose origin is pixel (dx, dy) (e.g. a crop's corner)."""
        return Stroke(self.xy - [dx, dy], self.positive, self.closed)


def _as_xy(points, what: str, image_hw: tuple[int, int]) -> np.ndarray:
    try:
        xy = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidPromptError(f"a {what} must be an (N, 2) array of (x, y) pixels; got {points!r}") from None
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise InvalidPromptError(f"a {what} must be an (N, 2) array of (x, y) pixels; got shape {xy.shape}")
    if not np.all(np.isfinite(xy)):
        raise InvalidPromptError(f"{what} coordinates must be finite numbers (got NaN or Inf)")
    h, w = image_hw
    if (xy[:, 0] < -w).any() or (xy[:, 0] > 2 * w).any() or (xy[:, 1] < -h).any() or (xy[:, 1] > 2 * h).any():
        raise InvalidPromptError(f"a {what} vertex lies more than one image size outside the {w}x{h} (width x height) image")
    return xy


def validate_stroke(points: Sequence[Sequence[float]] | np.ndarray, positive: bool, image_hw: tuple[int, int],
                    closed: bool) -> Stroke:
    """Check a scribble (``closed=False``) or lasso (``closed=True``) as described in the module
    docstring; returns the ``Stroke``. image_hw: (H, W)."""
    what = "lasso" if closed else "scribble"
    xy = _as_xy(points, what, image_hw)
    distinct = np.unique(xy, axis=0)
    if len(distinct) < (3 if closed else 2):
        raise InvalidPromptError(f"a {what} needs at least {3 if closed else 2} distinct points; got {len(distinct)} "
                                 "(use a click for a single spot)")
    if closed:
        x, y = xy[:, 0], xy[:, 1]
        area = 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))  # shoelace
        if area < 0.5:
            raise InvalidPromptError(f"a lasso must enclose an area; its {len(xy)} vertices enclose {area:.2g} square pixels")
    stroke = Stroke(xy, bool(positive), closed)
    if not stroke_pixels(stroke, image_hw).any():
        raise InvalidPromptError(f"the {what} lies entirely outside the {image_hw[1]}x{image_hw[0]} (width x height) image")
    return stroke


def stroke_pixels(stroke: Stroke, image_hw: tuple[int, int], width: int = SCRIBBLE_WIDTH) -> np.ndarray:
    """(H, W) bool: the pixels a scribble's line of ``width`` pixels covers, or a lasso's filled inside
    (its outline included). Parts outside the image are dropped."""
    if stroke.closed:
        return lasso_fill(stroke.xy, image_hw)
    h, w = image_hw
    canvas = Image.new("1", (w, h), 0)
    draw = ImageDraw.Draw(canvas)
    points = [tuple(p) for p in stroke.xy]
    draw.line(points, fill=1, width=width, joint="curve")
    if width > 1:  # Pillow's wide lines have square ends; round caps, so a short stroke is not a bar
        r = (width - 1) / 2
        for x, y in (points[0], points[-1]):
            draw.ellipse((x - r, y - r, x + r, y + r), fill=1)
    return np.array(canvas, dtype=bool)


def lasso_fill(polygon_xy: np.ndarray, image_hw: tuple[int, int]) -> np.ndarray:
    """(H, W) bool inside of a closed polygon (N, 2) (x, y), outline included; a self-intersecting
    polygon is filled as all it encloses. Drawn on a canvas that holds the whole polygon, so a
    lasso running off the image is still closed, then cut to the image."""
    from scipy.ndimage import binary_fill_holes  # imported here: scipy.ndimage takes 0.5 s, a box's first mask needs none of it

    h, w = image_hw
    xy = np.asarray(polygon_xy, np.float64)
    x0, y0 = np.floor(np.minimum(xy.min(axis=0), 0)).astype(int) - 1
    x1, y1 = np.ceil(np.maximum(xy.max(axis=0), [w - 1, h - 1])).astype(int) + 2
    canvas = Image.new("1", (int(x1 - x0), int(y1 - y0)), 0)
    draw = ImageDraw.Draw(canvas)
    points = [tuple(p) for p in xy - [x0, y0]]
    draw.polygon(points, fill=1, outline=1)
    draw.line(points + [points[0]], fill=1, width=1)  # a closed, 8-connected outline for the hole filling
    filled = binary_fill_holes(np.array(canvas, dtype=bool))
    return filled[-y0 : -y0 + h, -x0 : -x0 + w].copy()


def sample_along(xy: np.ndarray, count: int) -> np.ndarray:
    """``count`` (x, y) points spread evenly by arc length along a polyline (N, 2), both ends
    included (one point: the middle). Returns (count, 2) float32."""
    xy = np.asarray(xy, np.float64)
    step = np.hypot(*np.diff(xy, axis=0).T)
    arc = np.concatenate([[0.0], np.cumsum(step)])
    targets = np.array([arc[-1] / 2]) if count == 1 else np.linspace(0.0, arc[-1], count)
    return np.stack([np.interp(targets, arc, xy[:, 0]), np.interp(targets, arc, xy[:, 1])], axis=1).astype(np.float32)


def inside_points(xy: np.ndarray, image_hw: tuple[int, int], count: int) -> np.ndarray:
    """(K, 2) float32: those of a polyline's ``count`` evenly spread points that lie inside the
    image (K <= count; the samples on a stroke's part outside the image are dropped)."""
    h, w = image_hw
    pts = sample_along(xy, count)
    keep = (pts[:, 0] >= -0.5) & (pts[:, 0] <= w - 0.5) & (pts[:, 1] >= -0.5) & (pts[:, 1] <= h - 0.5)
    return pts[keep]

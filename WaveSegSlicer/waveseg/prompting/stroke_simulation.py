"""Simulated scribbles and lassos, for evaluation (``scripts/evaluate.py``) and training.

Scribbles follow ScribblePrompt (Wong et al., ECCV 2024): each corrective scribble goes into the
largest error region (the largest connected component of missed foreground or of false
foreground), positive in missed foreground, negative in false foreground, and is one of three
kinds: a "line" (a straight segment through the region's deepest point along its long axis), a
"centreline" (the region's skeleton's longest path) or a "contour" (an arc of the region's outline
drawn a little inside it); each is smoothed and jittered a little. A lasso is a jittered,
smoothed outline of a mask (the target, or an error region), as a user traces it roughly.
All coordinates are (x, y) pixels; masks are (H, W) bool. scikit-image (``skeletonize``,
``find_contours``) is imported when a stroke is simulated: it is in the ``train`` extra.
"""

from __future__ import annotations

from collections import deque

import numpy as np
from scipy.ndimage import distance_transform_edt, gaussian_filter1d, label

SCRIBBLE_KINDS = ("line", "centreline", "contour")


def largest_error_region(prediction: np.ndarray | None, truth: np.ndarray) -> tuple[np.ndarray, bool] | None:
    """(region (H, W) bool, positive) of the largest connected error component, or None when the
    prediction is perfect; positive = the region is missed foreground."""
    pred = np.zeros_like(truth, bool) if prediction is None else np.asarray(prediction, bool)
    best = None
    for errors, positive in ((truth & ~pred, True), (pred & ~truth, False)):
        if not errors.any():
            continue
        components, n = label(errors, structure=np.ones((3, 3)))
        sizes = np.bincount(components.ravel())[1:]
        k = int(np.argmax(sizes))
        if best is None or sizes[k] > best[2]:
            best = (components == k + 1, positive, sizes[k])
    return None if best is None else (best[0], best[1])


def _deepest(distance: np.ndarray) -> np.ndarray:
    y, x = np.unravel_index(int(np.argmax(distance)), distance.shape)
    return np.array([x, y], np.float64)


def _short_stroke(point: np.ndarray) -> np.ndarray:
    """A 2-pixel stroke at ``point``: the scribble for a region too small for any kind."""
    return np.array([point - [0.5, 0], point + [0.5, 0]])


def _line(region: np.ndarray, distance: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    rows, cols = np.nonzero(region)
    xy = np.stack([cols, rows], 1).astype(np.float64)
    centre = _deepest(distance)
    if len(xy) < 3:
        return _short_stroke(centre)
    _, vectors = np.linalg.eigh(np.cov((xy - xy.mean(0)).T))
    angle = np.arctan2(vectors[1, -1], vectors[0, -1]) + rng.normal(0, 0.15)
    direction = np.array([np.cos(angle), np.sin(angle)])
    inner = distance >= min(1.5, distance.max())  # stay a pixel inside the region's edge
    h, w = region.shape
    ends = []
    for sign in (1, -1):
        t = 0.0
        while True:
            x, y = centre + sign * (t + 1) * direction
            if not (0 <= round(y) < h and 0 <= round(x) < w and inner[int(round(y)), int(round(x))]):
                break
            t += 1
        ends.append(centre + sign * t * rng.uniform(0.6, 1.0) * direction)
    return np.array(ends) if np.hypot(*(ends[0] - ends[1])) >= 1 else _short_stroke(centre)


def _centreline(region: np.ndarray, distance: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from skimage.morphology import skeletonize

    skeleton = skeletonize(region)
    pixels = {(int(r), int(c)) for r, c in zip(*np.nonzero(skeleton))}
    if len(pixels) < 2:
        return _short_stroke(_deepest(distance))

    def farthest(start):  # breadth-first search over the 8-connected skeleton: the far end and the path to it
        parent, queue, last = {start: None}, deque([start]), start
        while queue:
            last = queue.popleft()
            r, c = last
            for dr in (-1, 0, 1):
                for dc in (-1, 0, 1):
                    nxt = (r + dr, c + dc)
                    if nxt in pixels and nxt not in parent:
                        parent[nxt] = last
                        queue.append(nxt)
        path = [last]
        while parent[path[-1]] is not None:
            path.append(parent[path[-1]])
        return last, path

    end, _ = farthest(min(pixels))
    _, path = farthest(end)
    xy = np.array([(c, r) for r, c in path], np.float64)
    return _smooth(xy, rng, amplitude=0.5)


def _contour(region: np.ndarray, distance: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from skimage.measure import find_contours

    depth = distance.max()
    if depth < 2:
        return _centreline(region, distance, rng)
    contours = find_contours(np.pad(distance, 1), min(2.0, depth / 2))
    outline = max(contours, key=len)[:, ::-1] - 1  # (row, col) -> (x, y), padding removed
    n = len(outline)
    length = max(2, int(n * rng.uniform(0.5, 0.9)))
    start = int(rng.integers(n))
    return _smooth(outline[(start + np.arange(length)) % n], rng, amplitude=0.5)


def _smooth(xy: np.ndarray, rng: np.random.Generator, amplitude: float, sigma: float = 4.0, closed: bool = False) -> np.ndarray:
    """Points (N, 2) plus a smooth random displacement of about ``amplitude`` pixels, then thinned
    to about one vertex per 3 pixels (a mouse stroke's density)."""
    mode = "wrap" if closed else "nearest"
    noise = gaussian_filter1d(rng.normal(0, 1, xy.shape), sigma, axis=0, mode=mode)
    # by its root mean square, not its standard deviation: over a stroke of a few points the smoothed
    # noise is almost constant, and dividing by its tiny spread moved a whole 2-point stroke 4 pixels and more
    # (a thin error region on the image's last rows got a scribble entirely below the image)
    scale = float(np.sqrt(np.mean(noise ** 2))) or 1.0
    xy = gaussian_filter1d(xy, 1.0, axis=0, mode=mode) + amplitude * noise / scale
    keep = np.unique(np.r_[np.arange(0, len(xy), 3), len(xy) - 1])
    out = xy[keep]
    return out if len(np.unique(out, axis=0)) >= 2 else _short_stroke(xy[0])


def simulate_scribble(region: np.ndarray, rng: np.random.Generator, kind: str | None = None) -> np.ndarray:
    """(N, 2) float64 (x, y) polyline of a scribble of ``kind`` (one of ``SCRIBBLE_KINDS``, random
    if None) inside the non-empty (H, W) bool ``region``."""
    kind = SCRIBBLE_KINDS[int(rng.integers(3))] if kind is None else kind
    distance = distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
    draw = {"line": _line, "centreline": _centreline, "contour": _contour}[kind]
    h, w = region.shape
    return np.clip(draw(np.asarray(region, bool), distance, rng), 0, [w - 1, h - 1])  # a pen stays on the image


def next_scribble(prediction: np.ndarray | None, truth: np.ndarray, rng: np.random.Generator,
                  kind: str | None = None) -> tuple[np.ndarray, bool] | None:
    """ScribblePrompt's corrective rule: (polyline (N, 2) xy, positive) in the largest error region,
    or None when the prediction is perfect."""
    found = largest_error_region(prediction, truth)
    if found is None:
        return None
    region, positive = found
    return simulate_scribble(region, rng, kind), positive


def noisy_outline(mask: np.ndarray, rng: np.random.Generator, noise: float = 0.08, vertices: int = 48) -> np.ndarray:
    """(N, 2) float64 (x, y) lasso polygon: the outline of ``mask``'s largest component, each point
    moved along the outline's normal by a smooth random offset of about ``noise`` x the object's
    equivalent radius (at least 1 pixel), resampled to about ``vertices`` vertices."""
    from skimage.measure import find_contours

    components, n = label(mask, structure=np.ones((3, 3)))
    if n == 0:
        raise ValueError("cannot outline an empty mask")
    largest = components == 1 + int(np.argmax(np.bincount(components.ravel())[1:]))
    outline = max(find_contours(np.pad(largest, 1).astype(float), 0.5), key=len)[:, ::-1] - 1
    tangent = np.gradient(outline, axis=0)
    normal = np.stack([tangent[:, 1], -tangent[:, 0]], 1)
    normal /= np.linalg.norm(normal, axis=1, keepdims=True).clip(1e-6)
    radius = np.sqrt(largest.sum() / np.pi)
    offset = gaussian_filter1d(rng.normal(0, 1, len(outline)), max(2.0, len(outline) / 12), mode="wrap")
    offset = offset / (offset.std() or 1.0) * max(1.0, noise * radius)
    jittered = outline + offset[:, None] * normal
    keep = np.linspace(0, len(jittered) - 1, min(vertices, len(jittered)), endpoint=False).astype(int)
    return jittered[keep]


# -- for training (``waveseg.training.simulated_prompts``): the forms the decoder gets at inference ---------
def scribble_as_clicks(prediction: np.ndarray | None, truth: np.ndarray, rng: np.random.Generator,
                       points: int = 3) -> list[tuple[float, float, int]] | None:
    """A corrective scribble (``next_scribble``) as the point tokens ``Segmenter`` gives the decoder
    (``StrokeRule.scribble_points`` spread along it): [(x, y, label), ...], or None when perfect."""
    from waveseg.prompting.strokes import inside_points

    scribble = next_scribble(prediction, truth, rng)
    if scribble is None:
        return None
    xy, positive = scribble
    return [(float(x), float(y), int(positive)) for x, y in inside_points(xy, truth.shape, points)]


def lasso_start(truth: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A first positive lasso from a noisy outline of ``truth`` (H, W) as the decoder gets it: its
    box (4,) float32 (x0, y0, x1, y1) and its inside as (H, W) float32 edge-profile logits."""
    from waveseg.prompting.mask_prompt import edge_profile_logits
    from waveseg.prompting.strokes import lasso_fill

    fill = lasso_fill(noisy_outline(truth, rng), truth.shape)
    if not fill.any():  # a tiny target's outline can shrink to nothing: fall back to the target itself
        fill = np.asarray(truth, bool)
    rows, cols = np.nonzero(fill)
    return np.array([cols.min(), rows.min(), cols.max(), rows.max()], np.float32), edge_profile_logits(fill)

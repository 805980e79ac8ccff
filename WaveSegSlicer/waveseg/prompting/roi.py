"""ROI zoom: choose a crop around a small target so it is encoded at a higher resolution.

The encoder sees every slice at 256 x 256; a 20-pixel lesion on a 512 x 512 CT slice then
covers 10 pixels. Cropping a square around the prompts (with context around the target) and
encoding the crop gives the decoder more pixels on the target. The light backbones make the
extra encoding affordable.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable

import numpy as np

ROI_THRESHOLD = 0.25  # "auto" zooms when the target's longest side < 25 % of the image's
ROI_CONTEXT = 2.5  # crop side = target's longest side x 2.5 (context for the decoder)
ROI_MIN_SIDE = 32  # pixels; never crop below this
ROI_KEEP_MARGIN = 0.25  # keep a crop while the target keeps 1/4 of its side as context on each side
ROI_KEEP_GROWTH = 1.5  # ... and the crop is at most 1.5 x the side a fresh crop would have


def target_extent(box: np.ndarray | None, mask: np.ndarray | None, points: np.ndarray | None) -> np.ndarray | None:
    """(x0, y0, x1, y1) extent of what the user is segmenting, or None when it is unknown.

    The box if given, else the current mask's bounding box; positive or negative clicks
    extend it. Clicks alone give no extent (the target's size is unknown).
    """
    if box is not None:
        extent = np.asarray(box, dtype=np.float64)
    elif mask is not None and mask.any():
        rows, cols = np.nonzero(mask)
        extent = np.array([cols.min(), rows.min(), cols.max(), rows.max()], dtype=np.float64)
    else:
        return None
    if points is not None and len(points):
        extent = np.array([min(extent[0], points[:, 0].min()), min(extent[1], points[:, 1].min()),
                           max(extent[2], points[:, 0].max()), max(extent[3], points[:, 1].max())])
    return extent


def choose_roi(extent: np.ndarray | None, image_hw: tuple[int, int], mode: str | bool,
               threshold: float = ROI_THRESHOLD, context: float = ROI_CONTEXT) -> tuple[int, int, int, int] | None:
    """The crop (x0, y0, x1, y1), end-exclusive, to encode instead of the whole image, or None.

    mode: False never zooms; "auto" zooms when the extent is small (see ``ROI_THRESHOLD``);
    True zooms whenever an extent is known.
    """
    if mode is False or extent is None:
        return None
    h, w = image_hw
    size = max(extent[2] - extent[0] + 1, extent[3] - extent[1] + 1)
    if mode == "auto" and size >= threshold * max(h, w):
        return None
    side = int(np.ceil(max(size * context, ROI_MIN_SIDE)))
    cx, cy = (extent[0] + extent[2]) / 2, (extent[1] + extent[3]) / 2
    x0 = int(np.clip(round(cx - side / 2), 0, max(w - side, 0)))
    y0 = int(np.clip(round(cy - side / 2), 0, max(h - side, 0)))
    roi = (x0, y0, min(x0 + side, w), min(y0 + side, h))
    if roi == (0, 0, w, h):
        return None
    return roi


def keep_or_move_roi(previous: tuple[int, int, int, int] | None, fresh: tuple[int, int, int, int] | None,
                     extent: np.ndarray | None, image_hw: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """The crop for the next prompt: ``previous`` while it still frames ``extent`` well, else ``fresh``.

    previous: the crop of the last prompt; fresh: ``choose_roi`` for the new extent; both
    (x0, y0, x1, y1) end-exclusive or None. A click near the box's edge, or (with
    ``roi_zoom=True``) the next mask, moves the target's extent by a few pixels, and so would
    move a freshly chosen crop. A moved crop costs a new encoding, and the model's
    own logits (which belong to the old crop) can no longer be fed back, only the binary mask.
    So the crop is kept while the extent stays inside it with ``ROI_KEEP_MARGIN`` of the
    target's side as context (waived at the image's border) and it is no more than
    ``ROI_KEEP_GROWTH`` times the side of ``fresh``.
    """
    if previous is None or fresh is None or extent is None:
        return fresh
    h, w = image_hw
    x0, y0, x1, y1 = previous
    pad = ROI_KEEP_MARGIN * max(extent[2] - extent[0] + 1, extent[3] - extent[1] + 1)
    framed = ((x0 == 0 or extent[0] - pad >= x0) and (y0 == 0 or extent[1] - pad >= y0)
              and (x1 == w or extent[2] + pad < x1) and (y1 == h or extent[3] + pad < y1))
    not_too_big = max(x1 - x0, y1 - y0) <= ROI_KEEP_GROWTH * max(fresh[2] - fresh[0], fresh[3] - fresh[1])
    return previous if framed and not_too_big else fresh


def next_roi(previous: tuple[int, int, int, int] | None, box: np.ndarray | None, mask: np.ndarray | None,
             points: np.ndarray | None, image_hw: tuple[int, int], mode: str | bool, keep: bool = True
             ) -> tuple[int, int, int, int] | None:
    """The crop for a prompt, or None for the whole image: ``choose_roi`` on the target's extent
    (``target_extent`` of box, mask, points), keeping ``previous`` while it still frames it
    (``keep_or_move_roi``; ``keep=False`` always takes the fresh crop)."""
    extent = target_extent(box, mask, points)
    fresh = choose_roi(extent, image_hw, mode)
    return keep_or_move_roi(previous, fresh, extent, image_hw) if keep else fresh


class CropCache:
    """Encoded crops of one image; the ``capacity`` most recently used are kept.

    encode: turns an image crop ((h, w) or (h, w, 3) array) into an ``EncodedImage``; image:
    the whole image, as validated by ``as_gray_or_rgb``.
    """

    def __init__(self, encode: Callable[[np.ndarray], Any], image: np.ndarray, capacity: int = 4) -> None:
        self._encode = encode
        self._image = image
        self._capacity = capacity
        self._crops: OrderedDict[tuple[int, int, int, int], Any] = OrderedDict()
        self.encodings = 0  # crops encoded so far (each costs one encoder run)

    def get(self, roi: tuple[int, int, int, int]) -> Any:
        """The encoded crop (x0, y0, x1, y1), end-exclusive, encoding it on first use."""
        if roi not in self._crops:
            x0, y0, x1, y1 = roi
            self._crops[roi] = self._encode(self._image[y0:y1, x0:x1])
            self.encodings += 1
            while len(self._crops) > self._capacity:
                self._crops.popitem(last=False)
        self._crops.move_to_end(roi)
        return self._crops[roi]

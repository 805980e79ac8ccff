"""ROI zoom for ``Segmenter.predict``: a small box is answered from an encoded crop around it.

``InteractiveSession`` zooms on a small box (``waveseg.prompting.roi``) and keeps the crop's own logits
between clicks. ``Segmenter.predict`` has a stricter contract: its ``logits`` are always in the
whole image's 256 x 256 model frame, so that any caller can feed them back as ``mask_input``.
So a zoomed prediction returns the crop's logits resampled into the whole image's frame, and
remembers the crop's own logits under a digest of the returned array. When that array (or a
copy of it) comes back as ``mask_input``, the next prompt is decoded in the same crop with the
exact crop logits, as a session would; any other ``mask_input`` is cropped as a mask.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from waveseg.preprocess import LOWRES_MASK_SIZE, ResizeGeometry

OUTSIDE_CROP_LOGIT = -10.0  # whole-frame logits outside the crop: background, as far from the target as
# the model's own logits get (about -10, scripts/bench_mask_feedback.py's profile)
_REMEMBERED = 8  # zoomed predictions remembered per image (an undo history of a few steps)


def crop_logits_to_frame(crop_logits: np.ndarray, crop_geometry: ResizeGeometry, roi: tuple[int, int, int, int],
                         frame_geometry: ResizeGeometry) -> np.ndarray:
    """A crop's (1, 256, 256) logits -> (1, 256, 256) float32 logits in the whole image's frame.

    roi: the crop (x0, y0, x1, y1), end-exclusive, in image pixels. Each whole-frame pixel
    centre is mapped to image pixels and then into the crop's frame, both with the pixel-centre
    convention of ``logits_to_masks``, and sampled bilinearly; pixels outside the crop get
    ``OUTSIDE_CROP_LOGIT``.
    """
    (height, width), (rh, rw) = frame_geometry.original_hw, frame_geometry.resized_hw
    (crop_h, crop_w), (ch, cw) = crop_geometry.original_hw, crop_geometry.resized_hw
    x0, y0, x1, y1 = roi
    xs = (np.arange(rw) + 0.5) * width / rw - 0.5  # image x of each whole-frame column centre
    ys = (np.arange(rh) + 0.5) * height / rh - 0.5
    in_cols = np.nonzero((xs >= x0 - 0.5) & (xs < x1 - 0.5))[0]  # whole-frame columns inside the crop
    in_rows = np.nonzero((ys >= y0 - 0.5) & (ys < y1 - 0.5))[0]
    frame = np.full((1, LOWRES_MASK_SIZE, LOWRES_MASK_SIZE), OUTSIDE_CROP_LOGIT, np.float32)
    if len(in_cols) == 0 or len(in_rows) == 0:
        return frame
    cols = (xs[in_cols] - x0 + 0.5) * cw / crop_w - 0.5  # ... in the crop's frame
    rows = (ys[in_rows] - y0 + 0.5) * ch / crop_h - 0.5
    grid_rows, grid_cols = np.meshgrid(rows, cols, indexing="ij")
    crop = np.asarray(crop_logits, np.float32).reshape(LOWRES_MASK_SIZE, LOWRES_MASK_SIZE)[:ch, :cw]
    # only the crop's own rectangle is sampled (a few thousand pixels for a small box)
    frame[0, in_rows[0] : in_rows[-1] + 1, in_cols[0] : in_cols[-1] + 1] = ndimage.map_coordinates(
        crop, [grid_rows, grid_cols], order=1, mode="nearest")
    return frame


@dataclass(frozen=True)
class ZoomedLogits:
    roi: tuple[int, int, int, int]
    crop_logits: np.ndarray  # (1, 256, 256) in the crop's frame


def _digest(logits: np.ndarray) -> bytes | None:
    array = np.asarray(logits)
    if array.size != LOWRES_MASK_SIZE * LOWRES_MASK_SIZE or not np.issubdtype(array.dtype, np.floating):
        return None
    return hashlib.blake2b(np.ascontiguousarray(array, np.float32).tobytes(), digest_size=16).digest()


class ZoomMemory:
    """Which whole-frame logits ``Segmenter.predict`` returned from which crop (per image)."""

    def __init__(self) -> None:
        self._entries: OrderedDict[bytes, ZoomedLogits] = OrderedDict()

    def clear(self) -> None:
        self._entries.clear()

    def remember(self, frame_logits: np.ndarray, roi: tuple[int, int, int, int], crop_logits: np.ndarray) -> None:
        self._entries[_digest(frame_logits)] = ZoomedLogits(roi, crop_logits)
        while len(self._entries) > _REMEMBERED:
            self._entries.popitem(last=False)

    def recall(self, mask_input: np.ndarray | None) -> ZoomedLogits | None:
        """The crop and crop logits behind ``mask_input`` if it is logits this memory returned."""
        if mask_input is None:
            return None
        key = _digest(mask_input)
        return self._entries.get(key) if key is not None else None

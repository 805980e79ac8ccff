"""LiteMedSAM's 3D recipe from the CVPR 2024 "MedSAM on laptop" challenge, as the reference in
scripts/bench_volume.py.

The challenge's inference script (CVPR24_LiteMedSAM_infer.py) segments the middle slice of the 3D
box from the box's 2D extent, then walks to both ends of the box: each next slice is prompted
with the previous slice's mask box plus 3 pixels of the 256 x 256 model frame (``get_bbox256``,
``bbox_shift=3``), falling back to the middle slice's box where the previous mask is empty. It has
no stop rule inside the box. This file runs that loop through WaveSeg's ``Segmenter`` (which
resizes the longest side to 256 and pads, as that script does) so that any model can follow it.
It includes the box's last slice, which that script's ``range(z_middle, z_max)`` leaves out.
"""

from __future__ import annotations

import numpy as np

from waveseg.predictor import Segmenter
from waveseg.volume_geometry import SlicePixels

SHIFT_256 = 3  # get_bbox256's bbox_shift, in pixels of the 256 x 256 frame


def _mask_box(mask: np.ndarray, margin: float) -> tuple[float, float, float, float]:
    rows, cols = np.nonzero(mask)
    h, w = mask.shape
    return (max(cols.min() - margin, 0), max(rows.min() - margin, 0),
            min(cols.max() + margin, w - 1), min(rows.max() + margin, h - 1))


def segment_box3d(seg: Segmenter, volume: np.ndarray, corner0, corner1, spacing=(1.0, 1.0, 1.0),
                  window: tuple[float, float] | None = None) -> np.ndarray:
    """Axial propagation inside a 3D box, the challenge's way.

    volume: (Z, Y, X); corner0, corner1: voxel corners (i, j, k) = (x, y, z) of the box, inclusive;
    spacing: (x, y, z) mm (slices with non-square pixels are resampled as ``VolumeSession`` does).
    Returns the (Z, Y, X) bool mask (empty outside the box's slices).
    """
    (i0, j0, k0), (i1, j1, k1) = np.minimum(corner0, corner1), np.maximum(corner0, corner1)
    k0, k1 = int(k0), int(k1)
    px = SlicePixels.for_slice(volume.shape, tuple(spacing), 0)
    margin = SHIFT_256 * max(px.native_hw) / 256  # the frame's 3 pixels in the slice's own pixels
    middle = (k0 + k1) // 2
    middle_box = (float(i0), float(j0), float(i1), float(j1))
    out = np.zeros(volume.shape, bool)

    def predict(k: int, box) -> np.ndarray:
        encoded = seg.encode(px.image_to_square(volume[k]), window)
        square_box = px.xy_to_square(np.asarray(box, np.float32).reshape(2, 2)).reshape(4)
        return px.mask_to_native(seg.predict_encoded(encoded, box=square_box).mask)

    out[middle] = predict(middle, middle_box)
    for direction, end in ((1, k1), (-1, k0)):
        for k in range(middle + direction, end + direction, direction):
            previous = out[k - direction]
            out[k] = predict(k, _mask_box(previous, margin) if previous.any() else middle_box)
    return out

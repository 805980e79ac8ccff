"""Bilinear resizing in numpy with the numbers of ``torch.nn.functional.interpolate``.

The torch-free first-mask path (``waveseg.graph_segmenter``) must feed the encoder the same
input and threshold the same logits as ``Segmenter`` does with torch, so it cannot use another
library's resampler: PIL and OpenCV place pixel centres and normalise border weights in their own
ways, and SciPy's ``zoom`` has no antialiasing. This is torch's own rule, written as one weight
matrix per axis (``out = Wy @ image @ Wx.T``):

- ``antialias=True`` (``_compute_indices_weights_aa`` in ATen's ``UpSampleKernel.cpp``): a
  triangle filter widened by the scale when shrinking, centred at ``scale * (i + 0.5)``, its
  taps normalised to sum to one;
- ``antialias=False``: two taps at ``scale * (i + 0.5) - 0.5`` clamped at 0, as
  ``area_pixel_compute_source_index`` with ``align_corners=False``.

Both take ``scale = input size / output size`` (the ``size=`` form of ``interpolate``). Tests
compare with torch on random and real images (``Testing/test_graph_segmenter.py``).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=64)
def _weights(in_size: int, out_size: int, antialias: bool) -> np.ndarray:
    """(out_size, in_size) float32 interpolation weights along one axis."""
    scale = np.float32(in_size / out_size)  # torch's scale is a float for float images
    w = np.zeros((out_size, in_size), np.float64)
    if antialias:
        support = scale if scale >= 1.0 else 1.0  # interp_size / 2 = 1 for bilinear, widened when shrinking
        inv = 1.0 / scale if scale >= 1.0 else 1.0
        for i in range(out_size):
            centre = scale * (i + 0.5)
            lo = max(int(centre - support + 0.5), 0)
            hi = min(int(centre + support + 0.5), in_size)
            j = np.arange(lo, hi)
            taps = np.clip(1.0 - np.abs((j - centre + 0.5) * inv), 0.0, None)
            w[i, lo:hi] = taps / taps.sum()
    else:
        src = np.maximum(scale * (np.arange(out_size, dtype=np.float32) + np.float32(0.5)) - np.float32(0.5), np.float32(0.0))
        i0 = src.astype(np.int64)
        i1 = np.minimum(i0 + 1, in_size - 1)
        frac = src - i0.astype(np.float32)
        rows = np.arange(out_size)
        np.add.at(w, (rows, i0), 1.0 - frac)
        np.add.at(w, (rows, i1), frac)
    w.setflags(write=False)
    return w.astype(np.float32)


def resize_bilinear(image: np.ndarray, out_hw: tuple[int, int], antialias: bool) -> np.ndarray:
    """Resize the last two axes of ``image`` ((..., H, W), float) to ``out_hw`` (rows, cols);
    float32, as ``F.interpolate(mode="bilinear", align_corners=False, antialias=...)``."""
    image = np.asarray(image, np.float32)
    h, w = image.shape[-2:]
    if (h, w) == tuple(out_hw):
        return image.copy()
    wy = _weights(h, out_hw[0], antialias)
    wx = _weights(w, out_hw[1], antialias)
    return np.matmul(np.matmul(wy, image), wx.T)

"""Slices of a (Z, Y, X) volume in the three orientations, and their coordinate conventions.

Voxel coordinates are (i, j, k) = (column x, row y, slice z) of the (Z, Y, X) array, 0-based.
A slice is named by (axis, index) of the array axis it cuts:

| axis | orientation (for RAS/LPS-aligned scans) | slice array | local (x, y) of voxel (i, j, k) |
|------|------------------------------------------|-------------|---------------------------------|
| 0    | axial                                    | vol[k]      | (i, j)                          |
| 1    | coronal                                  | vol[:, j]   | (i, k)                          |
| 2    | sagittal                                 | vol[:, :, i]| (j, k)                          |

Slices whose pixels are not square (anisotropic spacing, e.g. a coronal slice of a 0.7 x 0.7 x 5 mm
CT) are resampled to square pixels before encoding, and masks are resampled back, so the model
sees anatomy with its true aspect ratio.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

AXIS_NAMES = ("axial", "coronal", "sagittal")
ANISOTROPY_TOLERANCE = 1.1  # resample when row and column pixel sizes differ by more than 10 %


def _torch():
    """torch, imported on first resampling: the slice and voxel helpers of this module serve Slicer's remote
    mode too (``WaveSegSlicerLib.volume_logic``), where torch may not be installed."""
    import torch
    import torch.nn.functional as F

    return torch, F


def take_slice(volume: np.ndarray, axis: int, index: int) -> np.ndarray:
    """(rows, cols) view of ``volume`` at ``index`` along ``axis``."""
    return volume[index] if axis == 0 else volume[:, index] if axis == 1 else volume[:, :, index]


def put_slice(volume: np.ndarray, axis: int, index: int, values: np.ndarray) -> None:
    if axis == 0:
        volume[index] = values
    elif axis == 1:
        volume[:, index] = values
    else:
        volume[:, :, index] = values


def voxel_to_slice(ijk: tuple[float, float, float], axis: int) -> tuple[int, tuple[float, float]]:
    """(slice index, local (x, y)) of voxel (i, j, k) on a slice across ``axis``."""
    i, j, k = ijk
    if axis == 0:
        return int(round(k)), (i, j)
    if axis == 1:
        return int(round(j)), (i, k)
    return int(round(i)), (j, k)


@dataclass(frozen=True)
class SlicePixels:
    """Maps a slice's native pixels to square pixels (and back) for encoding."""

    native_hw: tuple[int, int]
    square_hw: tuple[int, int]

    @classmethod
    def for_slice(cls, shape_zyx: tuple[int, int, int], spacing_xyz: tuple[float, float, float], axis: int) -> "SlicePixels":
        sx, sy, sz = spacing_xyz
        rows_mm, cols_mm = {0: (sy, sx), 1: (sz, sx), 2: (sz, sy)}[axis]
        hw = {0: shape_zyx[1:], 1: (shape_zyx[0], shape_zyx[2]), 2: shape_zyx[:2]}[axis]
        ratio = rows_mm / cols_mm
        if max(ratio, 1 / ratio) <= ANISOTROPY_TOLERANCE:
            return cls(tuple(hw), tuple(hw))
        # stretch the axis with the larger pixel so that both pixel sizes equal the smaller one
        if ratio > 1:
            return cls(tuple(hw), (max(1, int(round(hw[0] * ratio))), hw[1]))
        return cls(tuple(hw), (hw[0], max(1, int(round(hw[1] / ratio)))))

    @property
    def resampled(self) -> bool:
        return self.native_hw != self.square_hw

    def _scale(self) -> np.ndarray:
        return np.array([self.square_hw[1] / self.native_hw[1], self.square_hw[0] / self.native_hw[0]], np.float32)

    def image_to_square(self, image: np.ndarray) -> np.ndarray:
        if not self.resampled:
            return image
        torch, F = _torch()
        t = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None]
        return F.interpolate(t, size=self.square_hw, mode="bilinear", align_corners=False)[0, 0].numpy()

    def mask_to_native(self, mask: np.ndarray) -> np.ndarray:
        if not self.resampled:
            return mask
        torch, F = _torch()
        t = torch.from_numpy(mask.astype(np.float32))[None, None]
        return F.interpolate(t, size=self.native_hw, mode="bilinear", align_corners=False)[0, 0].numpy() > 0.5

    def mask_to_square(self, mask: np.ndarray) -> np.ndarray:
        if not self.resampled:
            return mask
        torch, F = _torch()
        t = torch.from_numpy(mask.astype(np.float32))[None, None]
        return F.interpolate(t, size=self.square_hw, mode="bilinear", align_corners=False)[0, 0].numpy() > 0.5

    def xy_to_square(self, xy: np.ndarray) -> np.ndarray:
        """Native pixel (x, y) -> square-pixel (x, y); works for (..., 2) arrays and boxes as (2, 2)."""
        return (np.asarray(xy, np.float32) + 0.5) * self._scale() - 0.5

    def xy_to_native(self, xy: np.ndarray) -> np.ndarray:
        """Square-pixel (x, y) -> native pixel (x, y), the inverse of ``xy_to_square``."""
        return (np.asarray(xy, np.float32) + 0.5) / self._scale() - 0.5

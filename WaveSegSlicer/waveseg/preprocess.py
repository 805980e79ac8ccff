"""Intensity normalisation and the resize-longest-side-and-pad transform.

This is how every WaveSeg model was trained (LiteMedSAM's own preprocessing):

1. Intensities: with a ``window=(lo, hi)`` the image is clipped to it and scaled to [0, 1].
   Without one, ``uint8`` images are divided by 255 (photographs, screenshots, 8-bit exports)
   and any other dtype is clipped to its 0.5 and 99.5 percentiles and scaled to [0, 1]
   (robust to CT air/metal and MR bright spots). Non-finite pixels (NaN, +-Inf) are treated as
   missing and set to 0 after scaling; a constant image becomes all zeros.
2. Gray images are repeated to 3 channels; RGB images are kept as they are.
3. Geometry: the longest side is resized to 256 pixels (aspect ratio kept, bilinear with
   anti-aliasing), then the image is padded with zeros at the bottom and right to 256 x 256.
   Points and boxes are scaled by the same factor; masks are cropped back and resized.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from waveseg.errors import InvalidImageError

MODEL_INPUT_SIZE = 256  # side of the square model input (pixels)
LOWRES_MASK_SIZE = 256  # side of the decoder's mask logits (4 x the 64 x 64 embedding)
PERCENTILES = (0.5, 99.5)


@dataclass(frozen=True)
class ResizeGeometry:
    """How an (H, W) image maps into the 256 x 256 model frame.

    ``scale`` multiplies (x, y) pixel coordinates; ``resized_hw`` is the (rows, cols) size of the
    image inside the frame before padding.
    """

    original_hw: tuple[int, int]
    resized_hw: tuple[int, int]
    scale: float

    @classmethod
    def for_shape(cls, height: int, width: int, size: int = MODEL_INPUT_SIZE) -> "ResizeGeometry":
        scale = size / max(height, width)
        resized = (max(1, int(height * scale + 0.5)), max(1, int(width * scale + 0.5)))
        return cls((height, width), resized, scale)

    def to_model_xy(self, xy: np.ndarray) -> np.ndarray:
        """Scale (..., 2) pixel (x, y) coordinates of the original image into the model frame."""
        h, w = self.original_hw
        rh, rw = self.resized_hw
        return np.asarray(xy, dtype=np.float32) * np.array([rw / w, rh / h], dtype=np.float32)


def as_gray_or_rgb(image: np.ndarray) -> np.ndarray:
    """Validate an image and return it as (H, W) or (H, W, 3).

    Accepts (H, W), (H, W, 1), (H, W, 3) and (H, W, 4) (alpha dropped), and (1, H, W): a
    one-slice volume, which is what SimpleITK's ``GetArrayFromImage`` returns for a single 2D
    DICOM or NIfTI slice read as 3D. Raises ``InvalidImageError`` for anything else, e.g. a 3D
    volume given where a slice is expected.
    """
    array = np.asarray(image)
    if array.dtype == bool:
        array = array.astype(np.uint8)
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise InvalidImageError(f"image dtype {array.dtype} is not numeric; expected integers or floats")
    if array.ndim == 3 and array.shape[2] in (1, 3, 4):
        array = array[:, :, 0] if array.shape[2] == 1 else array[:, :, :3]
    elif array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim not in (2, 3):
        raise InvalidImageError(
            f"image has shape {array.shape}; expected a 2D slice (H, W) or (H, W, 3). "
            "For a volume, choose a slice (e.g. volume[k]) or use a volume session"
        )
    if array.ndim == 3 and array.shape[2] != 3:
        raise InvalidImageError(
            f"image has shape {array.shape}: a volume, or an image whose last axis is not 1, 3 or 4 channels. "
            "Give one 2D slice (H, W) or (H, W, 3), or use a volume session for volumes"
        )
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise InvalidImageError(f"image has shape {array.shape}; it must have at least one pixel")
    return array


def normalize_intensity(image: np.ndarray, window: tuple[float, float] | None = None) -> np.ndarray:
    """Map an (H, W) or (H, W, 3) image of any dtype to float32 in [0, 1] (see module docstring)."""
    array = as_gray_or_rgb(image)
    values = array.astype(np.float32)
    finite = np.isfinite(values)
    if not finite.any():
        raise InvalidImageError("image has no finite pixel (all NaN or Inf); nothing to segment")
    if window is not None:
        lo, hi = (float(v) for v in window)
        if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
            raise InvalidImageError(f"window {window!r} must be two finite numbers (lo, hi) with hi > lo")
    elif array.dtype == np.uint8:
        lo, hi = 0.0, 255.0
    else:
        lo, hi = (float(v) for v in np.percentile(values[finite], PERCENTILES))
    if hi <= lo:  # constant image (or nearly): nothing to stretch
        return np.zeros(values.shape, dtype=np.float32)
    out = (np.clip(values, lo, hi) - lo) / (hi - lo)
    out[~finite] = 0.0
    return out.astype(np.float32)

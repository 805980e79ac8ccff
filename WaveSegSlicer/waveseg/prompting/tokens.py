"""What the decoder takes: point tokens in the model frame, and a mask prompt told apart from
earlier logits. Shared by ``Segmenter`` (torch) and ``GraphSegmenter`` (torch-free)."""

from __future__ import annotations

import numpy as np

from waveseg.errors import InvalidPromptError
from waveseg.preprocess import LOWRES_MASK_SIZE, ResizeGeometry


def is_binary_mask(m: np.ndarray, image_hw: tuple[int, int]) -> bool:
    """Whether a ``mask_input`` array is a mask (bool; integer or 0/1 float of the image's shape)
    rather than earlier logits. A float 0/1 mask is what nibabel's ``get_fdata()`` gives for a
    label file; logits are never all exactly 0 or 1."""
    if m.dtype == bool:
        return True
    if m.shape != image_hw:
        return False
    return np.issubdtype(m.dtype, np.integer) or (np.issubdtype(m.dtype, np.floating) and bool(np.isin(m, (0.0, 1.0)).all()))


def point_tokens(points: tuple[np.ndarray, np.ndarray] | None, box: np.ndarray | None,
                 geometry: ResizeGeometry) -> tuple[np.ndarray, np.ndarray]:
    """Validated clicks ((N, 2) xy, (N,) labels) and box (4,) in image pixels -> (K, 2) model-frame
    points and (K,) labels in segment-anything's ONNX convention: clicks, then the box corners
    labelled 2 and 3, or one padding point labelled -1 when there is no box."""
    coords, labels = [], []
    if points is not None:
        coords.append(geometry.to_model_xy(points[0]))
        labels.append(points[1].astype(np.float32))
    if box is not None:
        coords.append(geometry.to_model_xy(box.reshape(2, 2)))
        labels.append(np.array([2, 3], np.float32))
    else:
        coords.append(np.zeros((1, 2), np.float32))
        labels.append(np.array([-1], np.float32))
    return np.concatenate(coords).astype(np.float32), np.concatenate(labels)


def check_mask_shape(m: np.ndarray, image_hw: tuple[int, int]) -> None:
    """Refuse a binary ``mask_input`` that does not match the image."""
    if m.shape != image_hw:
        raise InvalidPromptError(f"mask_input mask has shape {m.shape}; a mask must match the image, {image_hw}")


def earlier_logits(m: np.ndarray, image_hw: tuple[int, int]) -> np.ndarray:
    """A ``mask_input`` that is not a mask, checked as earlier logits -> (1, 1, 256, 256) float32."""
    lowres = (LOWRES_MASK_SIZE, LOWRES_MASK_SIZE)
    if m.shape not in (lowres, (1, *lowres), (1, 1, *lowres)):
        raise InvalidPromptError(
            f"mask_input has shape {m.shape}; expected earlier logits (1, 256, 256) or a mask of the image's "
            f"shape {image_hw} (bool, integer, or float with only 0 and 1)"
        )
    if not np.all(np.isfinite(m)):
        raise InvalidPromptError("mask_input logits contain NaN or Inf")
    return m.astype(np.float32).reshape(1, 1, *lowres)

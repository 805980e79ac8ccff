"""Overlap and boundary metrics on binary numpy masks.

MONAI's ``DiceMetric`` works on batched torch tensors with one-hot channels; these two numpy
one-liners are what the interactive loops (propagation stop rules, RITM click loops, benchmarks)
need per slice, without a torch round trip. Two empty masks agree perfectly (1.0).
"""

from __future__ import annotations

import warnings

import numpy as np


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice coefficient 2|A and B| / (|A| + |B|) of two same-shape boolean masks."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union |A and B| / |A or B| of two same-shape boolean masks."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    union = int((a | b).sum())
    return 1.0 if union == 0 else int((a & b).sum()) / union


def surface_dice(prediction: np.ndarray, truth: np.ndarray, tolerance: float = 2.0) -> float:
    """Normalised surface Dice (NSD) of two same-shape 2D boolean masks (rows, cols).

    The share of both masks' boundary pixels that lie within ``tolerance`` pixels of the other
    mask's boundary (the MedSAM challenges' boundary metric, at 2 pixels there). Computed with
    MONAI's ``compute_surface_dice`` (Euclidean distance, unit pixel spacing); MONAI is imported
    here, not at package import (extras ``[data]``, ``[train]``, ``[test]``). Two empty masks agree
    perfectly (1.0); one empty mask against a non-empty one scores 0.0.
    """
    a, b = np.asarray(prediction, bool), np.asarray(truth, bool)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"surface_dice needs two 2D masks of one shape, got {a.shape} and {b.shape}")
    if not a.any() or not b.any():
        return 1.0 if a.any() == b.any() else 0.0
    import torch
    from monai.metrics import compute_surface_dice

    def one_hot(m: np.ndarray) -> torch.Tensor:  # (batch 1, channels background + foreground, rows, cols)
        return torch.from_numpy(np.stack([~m, m])[None].astype(np.float32))

    with warnings.catch_warnings():  # MONAI 1.5+ warns about an argument of its own internal call
        warnings.simplefilter("ignore", FutureWarning)
        value = compute_surface_dice(one_hot(a), one_hot(b), class_thresholds=[float(tolerance)], include_background=False)
    return float(value.item())

"""Overlap metrics on binary numpy masks.

MONAI's ``DiceMetric`` works on batched torch tensors with one-hot channels; these two numpy
one-liners are what the interactive loops (propagation stop rules, RITM click loops, benchmarks)
need per slice, without a torch round trip. Two empty masks agree perfectly (1.0).
"""

from __future__ import annotations

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

"""What encoding an image and answering a prompt give back (torch-free, shared by ``Segmenter``
and the torch-free ``GraphSegmenter``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from waveseg.preprocess import ResizeGeometry


@dataclass
class EncodedImage:
    """An image's embedding and how the image maps into the model frame."""

    embedding: Any  # (1, 256, 64, 64): a torch.Tensor from Segmenter, a float32 array from GraphSegmenter
    geometry: ResizeGeometry


@dataclass
class Prediction:
    """Result of one prompt.

    mask: (H, W) bool at the image's own resolution (the best candidate).
    score: the decoder's predicted IoU of ``mask``.
    logits: (1, 256, 256) float32 low-resolution logits in the model frame; pass them back as
      ``mask_input`` to refine.
    masks, scores: all candidates, (M, H, W) and (M,), M = 3 with ``multimask=True`` else 1.
    """

    mask: np.ndarray
    score: float
    logits: np.ndarray
    masks: np.ndarray = field(repr=False)
    scores: np.ndarray = field(repr=False)

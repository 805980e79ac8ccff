"""Augmented views of annotated slices: the ones adaptation trains on, and unseen ones to validate.

Training views change intensity (gamma, contrast, brightness) and mirror left-right, as the
prompt-simulated training does. Validation views with a single annotated slice are geometric
(rotation, scale, shift) and have intensity changes of their own: training never sees those
pixels in those positions, so a decoder that memorised the slice's pixel layout does not score
well on them for free. They are still the same anatomy on the same slice, which is why the gate
asks more of a gain measured on them (``waveseg.adaptation.gate.MIN_GAIN_ONE_SLICE``).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from waveseg.errors import InvalidPromptError
from waveseg.training.data import augment_intensity


def training_views(x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator, intensity_views: int = 2
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Views of each slice: itself, mirrored, and ``intensity_views`` intensity-augmented copies of both.

    Arguments:
      x: (K, 3, 256, 256) model inputs in [0, 1]; y: (K, 256, 256) {0, 1} masks in the model frame.
    Returns:
      (V, 3, 256, 256) images, (V, 256, 256) masks and (V,) the index of the slice each view is of.
    """
    xs, ys, source = [], [], []
    for i in range(len(x)):
        for mirrored in (False, True):
            image, mask = (x[i].flip(-1), y[i].flip(-1)) if mirrored else (x[i], y[i])
            for n in range(intensity_views + 1):
                xs.append(image if n == 0 else augment_intensity(image, rng))
                ys.append(mask)
                source.append(i)
    return torch.stack(xs), torch.stack(ys), torch.tensor(source)


def geometric_views(x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator, count: int = 8,
                    max_degrees: float = 20.0, scale_range: tuple[float, float] = (0.8, 1.2), max_shift: float = 0.1
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` views of one slice under random rotation, scale and shift (and intensity changes).

    Arguments:
      x: (3, 256, 256) in [0, 1]; y: (256, 256) {0, 1}. ``max_shift`` is a fraction of the side.
    Returns:
      (count, 3, 256, 256) images (bilinear) and (count, 256, 256) masks (nearest); views whose
      mask left the frame or vanished are replaced until ``count`` remain (at most 4 * count tries).
    """
    images, masks = [], []
    area = float(y.sum())
    for _ in range(4 * count):
        if len(images) == count:
            break
        angle = math.radians(rng.uniform(-max_degrees, max_degrees))
        scale = rng.uniform(*scale_range)
        shift = rng.uniform(-max_shift, max_shift, 2) * 2  # affine_grid's frame spans [-1, 1]
        cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
        theta = torch.tensor([[[cos, -sin, shift[0]], [sin, cos, shift[1]]]], dtype=torch.float32)
        grid = F.affine_grid(theta, (1, 1, *y.shape), align_corners=False)
        image = F.grid_sample(x[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]
        mask = F.grid_sample(y[None, None].float(), grid, mode="nearest", padding_mode="zeros", align_corners=False)[0, 0]
        edge = torch.cat([mask[0], mask[-1], mask[:, 0], mask[:, -1]])
        if mask.sum() < 0.25 * area or edge.any():  # cut off by the frame: not a whole structure
            continue
        images.append(augment_intensity(image, rng))
        masks.append(mask.to(y.dtype))
    if not images:
        raise InvalidPromptError("the annotated structure fills the slice up to its border, so no rotated or rescaled view "
                                 "of it can check the adaptation; annotate one more slice")
    return torch.stack(images), torch.stack(masks)

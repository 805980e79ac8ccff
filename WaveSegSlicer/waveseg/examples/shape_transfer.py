"""An example's shape placed at the user's click: a shape prior for a slice of another patient.

On a slice of the examples' own volume the shape interpolated from the annotated slices around
it is the prior (``waveseg.examples.interpolation``). On another patient's slice nothing says
where the structure is until the user clicks; the click then registers the examples to the slice
by a translation: each example's mask (in the model frame, where both slices are resized to the
same 256-pixel side) is moved so that its deepest interior point (the maximum of its distance
transform, where the RITM protocol and most users put a first click) lies on the click, and of
the k moved masks the one whose cells the similarity map rates most foreground-like is kept. No
scaling or rotation: a translation is what one click determines. Measured on the "across" rows of
``scripts/bench_in_context.py`` (k = 3, 8 slices each, one click, thalamus / hippocampus /
amygdala / spleen / aorta; reports/bench_in_context.md, 2026-12-06): 0.608 / 0.548 / 0.484 / 0.544
/ 0.869 against 0.606 / 0.329 / 0.272 / 0.502 / 0.307 with the similarity map's region as the mask
prompt (the 2026-12-03 report).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from scipy import ndimage

from waveseg.examples.example_set import FOREGROUND_FRACTION, ExampleSet, cell_fractions
from waveseg.predictor import EncodedImage, logits_to_masks

def _moved(mask: np.ndarray, to_rc: tuple[float, float]) -> np.ndarray:
    """(256, 256) bool frame mask shifted (not wrapped) so that its deepest point lands on ``to_rc``."""
    depth = ndimage.distance_transform_edt(mask)
    r, c = np.unravel_index(int(np.argmax(depth)), depth.shape)
    dr, dc = int(round(to_rc[0] - r)), int(round(to_rc[1] - c))
    out = np.zeros_like(mask)
    h, w = mask.shape
    src = mask[max(0, -dr) : h - max(0, dr), max(0, -dc) : w - max(0, dc)]
    out[max(0, dr) : max(0, dr) + src.shape[0], max(0, dc) : max(0, dc) + src.shape[1]] = src
    return out


def shape_at_click(examples: ExampleSet, click_xy: Sequence[float], encoded: EncodedImage, margin: np.ndarray) -> np.ndarray:
    """(H, W) bool shape prior for ``encoded``'s slice: the best example's mask moved to the click.

    Arguments:
      click_xy: the user's positive click (x, y) in the slice's pixels.
      margin: (64, 64) the similarity map's foreground-minus-background margin on this slice
        (``waveseg.examples.similarity``; -inf / NaN on padding).
    Returns an empty mask when no moved example keeps a pixel inside the slice.
    """
    geometry = encoded.geometry
    fx, fy = geometry.to_model_xy(np.asarray([click_xy], np.float32))[0]
    rh, rw = geometry.resized_hw
    best, best_score = None, -np.inf
    for mask in examples.masks.numpy().astype(bool):
        moved = _moved(mask, (fy, fx))
        moved[rh:, :] = False
        moved[:, rw:] = False  # the padding is not image
        cells = (cell_fractions(torch.from_numpy(moved)).numpy() >= FOREGROUND_FRACTION) & np.isfinite(margin)
        if not cells.any():
            continue
        score = float(margin[cells].mean())
        if score > best_score:
            best, best_score = moved, score
    if best is None:
        return np.zeros(geometry.original_hw, bool)
    logits = torch.from_numpy(np.where(best, 1.0, -1.0).astype(np.float32))[None]
    return logits_to_masks(logits, geometry)[0]

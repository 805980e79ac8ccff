"""The shape a structure is expected to have on a slice between (or beyond) its annotated slices.

Within the volume the user annotated, the annotated slices say more about a slice between them
than any feature similarity can: the structure changes little from slice to slice. This is
shape-based interpolation (Raya & Udupa, IEEE TMI 1990; Herman et al., IEEE CG&A 1992): the signed
distance maps of the two annotated slices that flank the slice are blended by its distance to each,
and the shape is where the blend is negative. Beyond the annotated range the nearest annotated
slice's mask stands in, unchanged. The known limit of the method: two annotations that do not
overlap (a structure that moves by more than its width between them) blend to nothing in the
middle; ``propose`` then ignores the empty prior and the similarity map decides.

Why it is written here: Slicer's "Fill between slices" effect uses ITK's morphological contour
interpolation, which SimpleITK does not wrap and which needs the separate ``itk`` wheels (about
100 MB); the signed-distance blend takes two ``scipy.ndimage`` distance transforms. The result is
a prompt for the decoder (``waveseg.examples.proposal.propose(shape_prior=...)``), not a mask that
is written as it is: on the Colin27 / TotalSegmentator rows of ``scripts/bench_in_context.py``
(k = 3, 8 slices each) the decoder prompted with it scored 0.893 / 0.486 / 0.788 / 0.882 / 0.873
(thalamus, hippocampus, amygdala, spleen, aorta; reports/bench_in_context.md) against 0.892 /
0.447 / 0.841 / 0.853 / 0.860 for the interpolated shape itself (a one-off script on the same
slices), and 0.692 / 0.462 / 0.471 / 0.664 / 0.512 for the similarity map's proposal (the
2026-12-03 report).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
from scipy import ndimage

from waveseg.errors import InvalidPromptError


def _signed_distance(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool -> (H, W) float: negative inside, positive outside, in pixels from the boundary."""
    return ndimage.distance_transform_edt(~mask) - ndimage.distance_transform_edt(mask)


def interpolate_annotated(masks: Mapping[int, np.ndarray], index: int) -> np.ndarray:
    """The expected (H, W) bool shape on slice ``index`` from annotated ``masks`` {slice: (H, W) bool}.

    Between two annotated slices: the signed-distance blend of the two that flank ``index``;
    beyond them: the nearest annotated mask; on an annotated slice: its own mask. Slices whose mask
    is empty are not annotations and are ignored.
    """
    annotated = {int(i): np.asarray(m, bool) for i, m in masks.items() if np.asarray(m).any()}
    if not annotated:
        raise InvalidPromptError("no annotated slice with a mask to interpolate from")
    shapes = {m.shape for m in annotated.values()}
    if len(shapes) != 1:
        raise InvalidPromptError(f"annotated masks differ in shape: {sorted(shapes)}")
    if index in annotated:
        return annotated[index].copy()
    below = [i for i in annotated if i < index]
    above = [i for i in annotated if i > index]
    if not below or not above:
        return annotated[max(below) if below else min(above)].copy()
    lo, hi = max(below), min(above)
    weight = (index - lo) / (hi - lo)
    blend = (1.0 - weight) * _signed_distance(annotated[lo]) + weight * _signed_distance(annotated[hi])
    return blend < 0

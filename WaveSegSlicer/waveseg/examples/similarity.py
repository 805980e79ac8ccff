"""Similarity of a new slice's embedding to an example set: where does the structure look alike?

Two maps over the 64 x 64 embedding, both from cosine similarities of unit-length features:
  * ``prototype``: PerSAM's location confidence map (Zhang et al., "Personalize Segment Anything
    Model with One Shot", ICLR 2024, Sec. 3.2): the cosine similarity of each cell to the target
    embedding, the mean feature under the reference mask (here: under all k masks).
  * ``margin``: what differs from PerSAM. With several examples (and with medical structures that
    look like their neighbours: thalamus and other grey matter), one mean vector blurs the target;
    each cell is instead compared with its ``TOP`` nearest foreground and nearest background
    features of the examples (a k-nearest-neighbour vote, as few-shot segmentation with
    foreground and background prototypes does, e.g. PANet, Wang et al., ICCV 2019), and the map is
    the difference of the two mean similarities: > 0 where the cell looks more like the
    structure than like its surroundings.
Cost: one (4096 x 256) @ (256 x N) product per side, a few milliseconds on the CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from waveseg.examples.example_set import GRID, ExampleSet, valid_cells

TOP = 8  # nearest example features averaged per cell and side (robust to a few mislabelled cells)


@dataclass
class SimilarityMap:
    """Maps over the (64, 64) embedding grid, row-major (row, col); cells outside ``valid``
    (the zero padding) hold -inf so they are never chosen.

    prototype: cosine similarity to the examples' mean foreground feature (PerSAM).
    margin: foreground minus background similarity (k nearest each); > 0 looks like the structure.
    valid: (rows, cols) of cells that cover the image.
    """

    prototype: np.ndarray
    margin: np.ndarray
    valid: tuple[int, int]


def _top_mean(sim: torch.Tensor, top: int) -> torch.Tensor:
    """(cells, N) similarities -> (cells,) mean of each row's ``top`` largest."""
    return sim.topk(min(top, sim.shape[1]), dim=1).values.mean(dim=1)


@torch.inference_mode()
def similarity_map(examples: ExampleSet, embedding: torch.Tensor, resized_hw: tuple[int, int]) -> SimilarityMap:
    """Similarity maps of a slice's (1, 256, 64, 64) ``embedding`` (image of ``resized_hw`` rows,
    cols inside the model frame) to ``examples``."""
    cells = F.normalize(embedding.detach().float().cpu().reshape(256, GRID * GRID).T, dim=1)  # (4096, 256)
    fg = examples.foreground_features()
    bg = examples.background_features()
    prototype = F.normalize(fg.mean(dim=0), dim=0)
    proto_sim = (cells @ prototype).reshape(GRID, GRID)
    fg_score = _top_mean(cells @ fg.T, TOP)
    bg_score = _top_mean(cells @ bg.T, TOP) if len(bg) else torch.zeros_like(fg_score)
    margin = (fg_score - bg_score).reshape(GRID, GRID)
    rows, cols = valid_cells(resized_hw)
    out = []
    for m in (proto_sim, margin):
        m = m.numpy().astype(np.float32).copy()
        m[rows:, :] = -np.inf
        m[:, cols:] = -np.inf
        out.append(m)
    return SimilarityMap(out[0], out[1], (rows, cols))

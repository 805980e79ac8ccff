"""Propose a structure on a new slice from an example set: prompts from similarity, then decode.

    proposal = propose(seg, encoded, examples)                         # no prompt at all
    proposal = propose(seg, encoded, examples, points=[[x, y]], labels=[1])   # the user's first click
    proposal.prediction.mask, proposal.confident, proposal.confidence

The recipe is PerSAM's training-free one (Zhang et al., ICLR 2024; github.com/ZrrSkywalker/
Personalize-SAM, ``persam.py``): a location confidence map from the cosine similarity of the new
image's features to the reference's target feature; the most similar location as a positive point
and the least similar as a negative one; decode; then "cascaded post-refinement", decoding again
with the first mask's logits and its bounding box. What differs here:
  * the map is the foreground-minus-background margin of ``waveseg.examples.similarity`` (k
    examples, nearest features on both sides), not the single mean feature (``rule="persam"``
    keeps PerSAM's map and points, for the benchmark);
  * the connected region of cells the map calls foreground around the positive point becomes a
    coarse mask prompt for the first pass (as MultiverSeg and the issue ask: a dense prompt, which
    PerSAM does not use) and the negative point is the most background-like cell just outside it;
  * PerSAM's target-guided attention and target-semantic prompting change the decoder's
    attention and tokens; they are left out (this decoder's code is segment-anything's, unchanged);
  * one refinement pass, not two (the interactive-speed budget: at most one extra decoder pass),
    PerSAM's second (box + logits), since with a mask prompt in the first pass its first adds little;
  * with a user's box, the examples only add the mask prompt of the region the box holds (and the
    box refinement); with a click, the examples' shape is placed at the first positive click (or
    the volume's interpolated shape is used when the click lies in it), so the click says where
    the structure is and the examples say what it looks like; the mask always holds the click,
    and the next clicks refine it as usual, so a wrong-looking proposal never blocks the user.
A shape prior (the shape interpolated from the annotated slices of the same volume,
``waveseg.examples.interpolation``, or the examples' shape placed at the click,
``waveseg.examples.shape_transfer``) replaces the map's region as the prompt: its box (plus
``PRIOR_BOX_MARGIN`` pixels) and its mask, one decoder pass and no refinement (measured below); the
map then only says how confident the proposal is.
Confidence: a slice without the structure has no region that looks like it, or one the decoder
rates poorly; ``confident`` is False below the thresholds measured by ``scripts/bench_in_context.py``
(see ``CONFIDENCE_*``), and with no foreground-like cell at all the proposal is empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy import ndimage

from waveseg.errors import InvalidPromptError
from waveseg.examples.example_set import CELL, ExampleSet, cell_fractions
from waveseg.examples.shape_transfer import shape_at_click
from waveseg.examples.similarity import SimilarityMap, similarity_map
from waveseg.prompting.mask_prompt import edge_profile_logits
from waveseg.predictor import EncodedImage, Prediction, Segmenter, frame_mask
from waveseg.prompting.simulation import tight_box
from waveseg.prompting.validation import validate_box, validate_points

RULES = ("margin", "persam")
# Below these a no-prompt proposal is flagged as low confidence (measured: scripts/bench_in_context.py
# --absent, structure-free slices against slices with the structure; see docs/benchmarks.md).
CONFIDENCE_MARGIN = 0.04  # the region's peak foreground-minus-background similarity
CONFIDENCE_SCORE = 0.5  # the decoder's predicted IoU of the proposal
REGION_LEVEL = 0.3  # fraction of the peak margin that bounds the coarse mask prompt (measured)
NEGATIVE_RING = 3  # cells around the region in which the negative point is looked for
# pixels added around the shape prior's box. scripts/bench_in_context.py rows, within the volume, no
# prompt, box + mask from the interpolated shape (thalamus / hippocampus / amygdala / spleen / aorta,
# one-off script, 2026-12-06): margin 0: k = 3 0.885 / 0.466 / 0.785 / 0.889 / 0.858, k = 1 0.854 /
# 0.214 / 0.598 / 0.677 / 0.448; margin 2: 0.893 / 0.486 / 0.788 / 0.882 / 0.873 and 0.851 / 0.215 /
# 0.604 / 0.682 / 0.472. A refinement pass after it lowered 9 of those 10 rows (thalamus k = 3 0.866,
# amygdala 0.743), the mask alone without the box gave 0.02-0.12.
PRIOR_BOX_MARGIN = 2.0


@dataclass
class Proposal:
    """A proposed mask and how it was made.

    prediction: the decoder's last answer (``mask`` (H, W) bool, ``score``, ``logits`` to feed back).
    confidence: (peak margin of the region, decoder score); confident: both above the thresholds.
    points, labels: the (x, y) image-pixel points decoded (the user's and the examples').
    """

    prediction: Prediction
    confidence: tuple[float, float]
    confident: bool
    points: np.ndarray
    labels: np.ndarray
    similarity: SimilarityMap
    evidence: dict = field(default_factory=dict)  # further signals (benchmarks): mask_margin, area_ratio
    box: np.ndarray | None = None  # the (x0, y0, x1, y1) pixel box decoded with (the user's or the prior's)

    @property
    def mask(self) -> np.ndarray:
        return self.prediction.mask


def _cell_to_xy(cells_rc: np.ndarray, encoded: EncodedImage) -> np.ndarray:
    """(N, 2) (row, col) embedding cells -> (N, 2) (x, y) pixels of the original image (cell centres)."""
    h, w = encoded.geometry.original_hw
    rh, rw = encoded.geometry.resized_hw
    frame_xy = (np.asarray(cells_rc, np.float32)[:, ::-1] + 0.5) * CELL - 0.5
    return np.clip(frame_xy * np.array([w / rw, h / rh], np.float32), 0, [w - 1, h - 1]).astype(np.float32)


def _xy_to_cell(xy: np.ndarray, encoded: EncodedImage) -> tuple[int, int]:
    frame = encoded.geometry.to_model_xy(np.asarray(xy, np.float32).reshape(1, 2))[0]
    return int(min(max(frame[1] // CELL, 0), 63)), int(min(max(frame[0] // CELL, 0), 63))


def _region_logits(region: np.ndarray) -> np.ndarray:
    """(64, 64) bool cells -> (1, 256, 256) model-frame logits with the model's edge profile."""
    frame = np.kron(region, np.ones((CELL, CELL), bool))
    return edge_profile_logits(frame)[None].astype(np.float32)


def _negative_cell(margin: np.ndarray, region: np.ndarray) -> tuple[int, int]:
    """The most background-like valid cell within ``NEGATIVE_RING`` cells of ``region``."""
    ring = ndimage.binary_dilation(region, iterations=NEGATIVE_RING) & ~region & np.isfinite(margin)
    if not ring.any():
        ring = ~region & np.isfinite(margin)
    if not ring.any():
        ring = np.isfinite(margin)
    flat = np.where(ring, margin, np.inf)
    return tuple(int(v) for v in np.unravel_index(int(np.argmin(flat)), flat.shape))


def _components(margin: np.ndarray, allowed: np.ndarray | None) -> list[tuple[np.ndarray, tuple[int, int], float]]:
    """Connected foreground-like regions (margin > 0, within ``allowed``), largest evidence (sum of
    the margin) first: [(region (64, 64) bool, its peak cell (row, col), its peak margin)]."""
    positive = margin > 0
    if allowed is not None:
        positive &= allowed
    if positive.any():
        # the region is where the margin reaches REGION_LEVEL of its peak: margin > 0 alone also
        # takes in the structure's look-alike surroundings (about twice its area, measured)
        positive &= margin >= REGION_LEVEL * margin[positive].max()
    labels, count = ndimage.label(positive)
    found = []
    for n in range(1, count + 1):
        region = labels == n
        values = np.where(region, margin, -np.inf)
        peak = tuple(int(v) for v in np.unravel_index(int(np.argmax(values)), margin.shape))
        found.append((float(margin[region].sum()), region, peak, float(margin[peak])))
    found.sort(key=lambda item: -item[0])
    return [(region, peak, value) for _, region, peak, value in found]


def _region_at(margin: np.ndarray, cell: tuple[int, int]) -> np.ndarray:
    """The connected foreground-like region holding ``cell`` (margin > 0 and at least REGION_LEVEL
    of the region's peak); empty if the cell looks like background."""
    labels, _ = ndimage.label(margin > 0)
    if labels[cell]:
        region = labels == labels[cell]
        labels, _ = ndimage.label(region & (margin >= REGION_LEVEL * margin[region].max()))
        if not labels[cell]:  # the click lies in the region's fringe: keep the fringe's piece
            labels, _ = ndimage.label(region)
    return labels == labels[cell] if labels[cell] else np.zeros(margin.shape, bool)


def _refine(segmenter: Segmenter, encoded: EncodedImage, first: Prediction, points, labels, box) -> Prediction:
    """PerSAM's cascaded post-refinement 2: the first mask's logits and box (or the user's box)."""
    if box is None:
        rows, cols = np.nonzero(first.mask)
        if rows.size == 0 or rows.max() == rows.min() or cols.max() == cols.min():
            return first  # nothing, or a line of pixels: no box to refine with
        box = np.array([cols.min(), rows.min(), cols.max(), rows.max()], np.float32)
    return segmenter.predict_encoded(encoded, points, labels, box, first.logits)


def _prior_prompt(prior: np.ndarray, encoded: EncodedImage, margin: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(H, W) bool shape prior -> its box (x0, y0, x1, y1) with ``PRIOR_BOX_MARGIN``, its (1, 256, 256)
    mask prompt and the highest similarity margin on its cells and the cells next to them."""
    h, w = prior.shape
    box = tight_box(prior) + np.array([-1, -1, 1, 1], np.float32) * PRIOR_BOX_MARGIN
    box = np.clip(box, 0, [w - 1, h - 1, w - 1, h - 1]).astype(np.float32)
    framed = frame_mask(prior, encoded.geometry)
    cells = ndimage.binary_dilation(cell_fractions(framed).numpy() > 0) & np.isfinite(margin)
    peak = float(margin[cells].max()) if cells.any() else 0.0
    return box, edge_profile_logits(framed.numpy())[None].astype(np.float32), peak


def propose(segmenter: Segmenter, encoded: EncodedImage, examples: ExampleSet,
            points: Sequence[Sequence[float]] | np.ndarray | None = None, labels: Sequence[int] | np.ndarray | None = None,
            box: Sequence[float] | np.ndarray | None = None, rule: str = "margin", refine: bool = True,
            near_examples: int | None = None, shape_prior: np.ndarray | None = None) -> Proposal:
    """Propose the examples' structure on an encoded slice, with or without the user's prompts.

    Arguments:
      encoded: the slice (``Segmenter.encode``), made by the model the examples were made with.
      points, labels: the user's (N, 2) (x, y) pixel clicks and (N,) labels (1 fg, 0 bg), or None.
      box: the user's (x0, y0, x1, y1) box in pixels, or None.
      rule: "margin" (default; see the module docstring) or "persam" (PerSAM's map and points).
      refine: decode a second time with the first pass's logits and box (one extra decoder pass).
      near_examples: with no prompt, look for the structure only within this many embedding cells
        (4 frame pixels each) of the examples' masks: for slices of the examples' own volume (or one
        registered to it), where the structure moves little; None looks everywhere.
      shape_prior: (H, W) bool, the shape expected on this slice (``interpolate_annotated`` over the
        examples' own volume), or None. Used unless a box is given or the first positive click lies
        outside it; an empty prior is ignored. None with a positive click (and no box):
        the examples' shape placed at the click (``shape_at_click``) is the prior.
    Returns a ``Proposal``; with no prompt and no foreground-like cell, its mask is empty.
    """
    if rule not in RULES:
        raise InvalidPromptError(f"rule must be one of {RULES}; got {rule!r}")
    hw = encoded.geometry.original_hw
    pts = validate_points(points, labels, hw)
    bx = validate_box(box, hw)
    if shape_prior is not None:
        shape_prior = np.asarray(shape_prior, bool)
        if shape_prior.shape != hw:
            raise InvalidPromptError(f"the shape prior's shape {shape_prior.shape} differs from the slice's {hw}")
    sim = similarity_map(examples, encoded.embedding, encoded.geometry.resized_hw)
    margin = sim.margin
    mask_prompt = None
    first_positive = pts[0][pts[1] == 1][:1] if pts is not None else np.zeros((0, 2), np.float32)
    prior = rule == "margin" and bx is None
    if prior and shape_prior is None and len(first_positive):
        # no shape from this volume: the click places the examples' shape (waveseg.examples.shape_transfer).
        # Also where the map calls the clicked cell background: across patients it does so for most
        # true clicks (hippocampus, amygdala, aorta: 0.33 / 0.27 / 0.31 Dice then, against 0.55 /
        # 0.48 / 0.87 placing the shape; bench_in_context.py rows, one-off script, 2026-12-06)
        shape_prior = shape_at_click(examples, first_positive[0], encoded, margin)
    prior = prior and shape_prior is not None and bool(shape_prior.any())
    if prior and len(first_positive):  # a click outside the volume's shape: the click path decides
        x, y = np.clip(np.round(first_positive[0]), 0, [hw[1] - 1, hw[0] - 1]).astype(int)
        prior = bool(shape_prior[y, x])
    if prior:
        use_box, mask_prompt, peak = _prior_prompt(shape_prior, encoded, margin)
        use_points = None if pts is None else pts[0]
        use_labels = None if pts is None else pts[1].astype(np.int64)
        refine = False
    elif pts is None and bx is None:
        if rule == "persam":
            pos = np.unravel_index(int(np.argmax(sim.prototype)), margin.shape)
            neg = np.unravel_index(int(np.argmin(np.where(np.isfinite(sim.prototype), sim.prototype, np.inf))), margin.shape)
            peak = float(margin[pos])
        else:
            allowed = examples.location_prior(near_examples) if near_examples is not None else None
            parts = _components(margin, allowed)[: examples.parts()]
            if not parts:
                empty = Prediction(np.zeros(hw, bool), 0.0, np.full((1, 256, 256), -10.0, np.float32),
                                   np.zeros((1, *hw), bool), np.zeros(1, np.float32))
                return Proposal(empty, (float(np.max(margin[np.isfinite(margin)])), 0.0), False,
                                np.zeros((0, 2), np.float32), np.zeros(0, np.int64), sim)
            region = np.logical_or.reduce([p[0] for p in parts])
            neg = _negative_cell(margin, region)
            mask_prompt = _region_logits(region)
            peak = max(p[2] for p in parts)
            use_points = _cell_to_xy(np.array([p[1] for p in parts] + [neg]), encoded)
            use_labels = np.array([1] * len(parts) + [0], np.int64)
        if rule == "persam":
            use_points = _cell_to_xy(np.array([pos, neg]), encoded)
            use_labels = np.array([1, 0], np.int64)
        use_box = None
    else:
        use_points = None if pts is None else pts[0]
        use_labels = None if pts is None else pts[1].astype(np.int64)
        use_box = bx
        peak = 0.0
        if rule == "margin":
            anchor = None
            if pts is not None and (pts[1] == 1).any():
                anchor = _xy_to_cell(pts[0][int(np.argmax(pts[1] == 1))], encoded)
            elif bx is not None:
                inside = np.full(margin.shape, -np.inf, np.float32)
                (r0, c0), (r1, c1) = _xy_to_cell(bx[:2], encoded), _xy_to_cell(bx[2:], encoded)
                inside[r0 : r1 + 1, c0 : c1 + 1] = margin[r0 : r1 + 1, c0 : c1 + 1]
                anchor = tuple(int(v) for v in np.unravel_index(int(np.argmax(inside)), margin.shape))
            if anchor is not None:
                region = _region_at(margin, anchor)
                if region.any():  # the map agrees with the click: its region is the mask prompt
                    peak = float(margin[region].max())
                    if bx is None:
                        # the structure's other pieces (the other thalamus): the examples say how
                        # many there are; each gets a positive point at its peak
                        others = [p for p in _components(margin, None) if not (p[0] & region).any()]
                        for other, cell, _ in others[: examples.parts() - 1]:
                            region = region | other
                            use_points = np.concatenate([use_points, _cell_to_xy(np.array([cell]), encoded)])
                            use_labels = np.concatenate([use_labels, [1]])
                    mask_prompt = _region_logits(region)
    first = segmenter.predict_encoded(encoded, use_points, use_labels, use_box, mask_prompt)
    out = _refine(segmenter, encoded, first, use_points, use_labels, use_box) if refine else first
    if use_points is None:
        use_points, use_labels = np.zeros((0, 2), np.float32), np.zeros(0, np.int64)
    confident = bool(peak >= CONFIDENCE_MARGIN and out.score >= CONFIDENCE_SCORE and out.mask.any())
    return Proposal(out, (peak, float(out.score)), confident, np.asarray(use_points, np.float32),
                    np.asarray(use_labels, np.int64), sim, _evidence(out, margin, examples, encoded),
                    None if use_box is None else np.asarray(use_box, np.float32))


def _evidence(out: Prediction, margin: np.ndarray, examples: ExampleSet, encoded: EncodedImage) -> dict:
    """The mean margin under the proposed mask's cells, and its area over the examples' mean area
    (both as fractions of the image): signals of absence that the benchmark weighs."""
    logits = out.logits[0] > 0  # (256, 256) model frame
    cells = logits.reshape(64, CELL, 64, CELL).mean(axis=(1, 3)) >= 0.5
    rh, rw = encoded.geometry.resized_hw
    area = float(logits.sum()) / float(rh * rw)
    return {"mask_margin": float(margin[cells & np.isfinite(margin)].mean()) if (cells & np.isfinite(margin)).any() else 0.0,
            "area_ratio": area / max(examples.mean_area_fraction(), 1e-6)}

"""``ExampleSet``: k annotated slices, kept as the model's embeddings and masks in its frame.

    examples = ExampleSet.from_slices(seg, [image_a, image_b], [mask_a, mask_b], structure="thalamus")
    examples.foreground_features()     # (N, 256) unit vectors under the masks
    examples.background_features()     # (M, 256) unit vectors outside them (inside the image)

Each example is stored as the encoder's (256, 64, 64) embedding of the slice and its mask in the
256 x 256 model frame (resized, zero-padded: ``waveseg.predictor.frame_mask``), plus the size of
the image inside that frame, so the padding is never taken for background. Nothing else is kept:
prototypes and feature sets are computed from these on demand, which is what makes a saved set
(``waveseg.examples.store``) round-trip bit for bit. No weights change anywhere in this package.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from waveseg.errors import InvalidPromptError
from waveseg.predictor import EncodedImage, Segmenter, frame_mask

GRID = 64  # the embedding is 64 x 64 cells over the 256 x 256 frame: one cell = 4 x 4 frame pixels
CELL = 4
FOREGROUND_FRACTION = 0.5  # a cell is foreground when at least half of its 4 x 4 pixels are in the mask
BACKGROUND_MARGIN = 2  # cells this close to the mask are neither: their features mix both sides
MAX_EXAMPLES = 64
# Background: every cell within HARD_RING cells of the mask (the look-alike neighbours that decide
# the border), and FAR_FEATURES evenly spaced cells of the rest per example. Keeping all ~2000 cells
# per example cost 0.1-0.3 s per map on this CPU; an even subsample of all of them, or k-means
# centres, lost 0.1-0.3 Dice on the thalamus (the nearest background features matter, measured).
HARD_RING = 8
FAR_FEATURES = 256


def encoder_fingerprint(segmenter: Segmenter) -> str:
    """SHA-256 of the image encoder's tensors: identifies the embeddings a set was made with.

    The encoder alone, not the whole model: an example set holds embeddings, which depend only on
    the encoder, so an adaptation profile that leaves the encoder as it is (``train_neck=False``, or
    method "decoder" on a backbone without a neck) keeps the set usable, while another model
    (another encoder, or other encoder weights, such as the default decoder method's adapted neck)
    is refused: its embeddings would not match the set's."""
    from waveseg.adaptation.profiles import model_fingerprint

    return model_fingerprint(segmenter.model.image_encoder)


def _dilate(cells: torch.Tensor, radius: int) -> torch.Tensor:
    """(64, 64) bool -> the cells within ``radius`` (chessboard distance) of a True cell."""
    return F.max_pool2d(cells.float()[None, None], 2 * radius + 1, 1, radius)[0, 0] > 0


def valid_cells(resized_hw: tuple[int, int]) -> tuple[int, int]:
    """(rows, cols) of embedding cells that cover the image, not the zero padding."""
    return max(1, -(-int(resized_hw[0]) // CELL)), max(1, -(-int(resized_hw[1]) // CELL))


def cell_fractions(frame: torch.Tensor) -> torch.Tensor:
    """(256, 256) bool frame mask -> (64, 64) float fraction of each cell inside the mask."""
    return F.avg_pool2d(frame.float()[None, None], CELL)[0, 0]


@dataclass
class ExampleSet:
    """k annotated examples of one structure.

    embeddings: (k, 256, 64, 64) float32, the encoder's output for each example slice.
    masks: (k, 256, 256) bool, each mask in the model frame (image resized, zero-padded).
    resized_hw: (k, 2) int, (rows, cols) of each image inside the frame.
    structure: a name for people; fingerprint: ``encoder_fingerprint`` of the model used.
    """

    embeddings: torch.Tensor
    masks: torch.Tensor
    resized_hw: np.ndarray
    structure: str = ""
    fingerprint: str = ""
    model_name: str = ""
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        k = len(self.embeddings)
        if self.embeddings.shape[1:] != (256, GRID, GRID) or self.masks.shape != (k, 256, 256) or len(self.resized_hw) != k:
            raise InvalidPromptError(
                f"an example set needs (k, 256, 64, 64) embeddings, (k, 256, 256) masks and k sizes; got "
                f"{tuple(self.embeddings.shape)}, {tuple(self.masks.shape)} and {len(self.resized_hw)}")
        if not 1 <= k <= MAX_EXAMPLES:
            raise InvalidPromptError(f"an example set holds 1 to {MAX_EXAMPLES} examples; got {k}")

    def __len__(self) -> int:
        return len(self.embeddings)

    @classmethod
    def from_encoded(cls, segmenter: Segmenter, encoded: Sequence[EncodedImage], masks: Sequence[np.ndarray],
                     structure: str = "") -> "ExampleSet":
        """From already encoded slices and their (H, W) bool masks at each image's resolution.
        Refuses an empty mask: an example must show the structure."""
        if len(encoded) != len(masks):
            raise InvalidPromptError(f"got {len(encoded)} slices but {len(masks)} masks; give one mask per slice")
        if not 1 <= len(masks) <= MAX_EXAMPLES:
            raise InvalidPromptError(f"give 1 to {MAX_EXAMPLES} example slices; got {len(masks)}")
        frames, sizes = [], []
        for n, (enc, mask) in enumerate(zip(encoded, masks)):
            mask = np.asarray(mask)
            if mask.shape != enc.geometry.original_hw:
                raise InvalidPromptError(f"example {n}: mask shape {mask.shape} differs from its slice's {enc.geometry.original_hw}")
            framed = frame_mask(mask.astype(bool), enc.geometry)
            if not framed.any():
                raise InvalidPromptError(f"example {n}: the mask is empty (or too small to see at the model's resolution)")
            frames.append(framed)
            sizes.append(enc.geometry.resized_hw)
        embeddings = torch.cat([enc.embedding.detach().float().cpu() for enc in encoded]).contiguous()
        return cls(embeddings, torch.stack(frames), np.asarray(sizes, np.int64), structure,
                   encoder_fingerprint(segmenter), segmenter.card.name)

    @classmethod
    def from_slices(cls, segmenter: Segmenter, images: Sequence[np.ndarray], masks: Sequence[np.ndarray],
                    structure: str = "", window: tuple[float, float] | None = None) -> "ExampleSet":
        """Encode k (H, W) slices (any dtype; optional intensity ``window``) with their (H, W) masks."""
        if len(images) != len(masks):
            raise InvalidPromptError(f"got {len(images)} images but {len(masks)} masks; give one mask per image")
        return cls.from_encoded(segmenter, [segmenter.encode(image, window) for image in images], masks, structure)

    def extended(self, other: "ExampleSet") -> "ExampleSet":
        """This set and ``other`` (same model) as one set."""
        if other.fingerprint != self.fingerprint:
            raise InvalidPromptError("the two example sets were made with different models")
        return ExampleSet(torch.cat([self.embeddings, other.embeddings]), torch.cat([self.masks, other.masks]),
                          np.concatenate([self.resized_hw, other.resized_hw]), self.structure or other.structure,
                          self.fingerprint, self.model_name)

    # -- features ----------------------------------------------------------------------
    def _features(self, side: str) -> torch.Tensor:
        if side not in self._cache:
            picked = []
            for emb, mask, hw in zip(self.embeddings, self.masks, self.resized_hw):
                fraction = cell_fractions(mask)
                rows, cols = valid_cells(tuple(hw))
                inside = torch.zeros_like(fraction, dtype=torch.bool)
                inside[:rows, :cols] = True
                if side == "fg":
                    chosen = fraction >= FOREGROUND_FRACTION
                    if not chosen.any():  # a mask thinner than half a cell: its best-covered cells
                        chosen = fraction >= fraction.max()
                else:
                    chosen = inside & ~_dilate(fraction > 0, BACKGROUND_MARGIN)
                    ring = chosen & _dilate(fraction > 0, HARD_RING)
                    far = (chosen & ~ring).flatten().nonzero()[:, 0]
                    keep = far[torch.linspace(0, len(far) - 1, min(len(far), FAR_FEATURES)).long()] if len(far) else far
                    chosen = ring.flatten().clone()
                    chosen[keep] = True
                    chosen = chosen.reshape(ring.shape)
                picked.append(emb.permute(1, 2, 0)[chosen])  # (n, 256)
            feats = F.normalize(torch.cat(picked), dim=1)
            self._cache[side] = feats.contiguous()
        return self._cache[side]

    def foreground_features(self) -> torch.Tensor:
        """(N, 256) unit-length features of the cells under the masks (at least one per example)."""
        return self._features("fg")

    def background_features(self) -> torch.Tensor:
        """(M, 256) unit-length features of the image cells away from the masks (may be empty)."""
        return self._features("bg")

    def parts(self) -> int:
        """How many separate pieces the structure has on a slice (median over the examples, at
        the embedding's resolution): 2 for a paired structure cut axially (both thalami)."""
        from scipy import ndimage

        counts = []
        for mask in self.masks:
            cells = (cell_fractions(mask) >= FOREGROUND_FRACTION).numpy()
            labels, n = ndimage.label(cells)
            sizes = np.bincount(labels.ravel())[1:]
            counts.append(max(1, int((sizes >= 2).sum())))
        return max(1, int(np.median(counts)))

    def location_prior(self, margin_cells: int) -> np.ndarray:
        """(64, 64) bool: the cells within ``margin_cells`` of any example's mask. Meaningful only
        when the new slice lies in the examples' frame (their volume, or one registered to it)."""
        from scipy import ndimage

        union = np.zeros((GRID, GRID), bool)
        for mask in self.masks:
            union |= (cell_fractions(mask) > 0).numpy()
        return ndimage.binary_dilation(union, iterations=margin_cells) if margin_cells > 0 else union

    def mean_area_fraction(self) -> float:
        """Mean fraction of the image (not the padding) that the examples' masks cover."""
        areas = [float(m.sum()) / float(hw[0] * hw[1]) for m, hw in zip(self.masks, self.resized_hw)]
        return float(np.mean(areas))

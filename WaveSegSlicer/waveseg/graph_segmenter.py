"""``GraphSegmenter``: the first mask without torch, from graphs an earlier process cached.

``import torch`` alone takes 2.3-2.7 s on this project's quiet 2-core machine (5 s under load),
longer than everything else a first mask needs. When the graph cache (``waveseg.graph_cache``)
holds the model's encoder and first-decode graphs, made by an earlier ``Segmenter`` from weights
that were still exactly the model file's, this class answers box and click prompts with
onnxruntime and numpy only: the same computation as ``Segmenter`` (the graphs are the ones it
runs; ``waveseg.resample`` reproduces torch's resizing), so the same masks up to float rounding
(``Testing/test_graph_segmenter.py`` compares them). The CLI's ``segment`` uses it when it can
and falls back to ``Segmenter`` otherwise (``scripts/bench_engine.py --cold-start`` times both).

What it does not do, because those paths need torch modules: multimask output, scribbles and
lassos, a mask prompt alone (no point or box), adaptation profiles. It raises ``NeedsTorch`` for
those. Every decode is an image's first-decode graph (``Segmenter`` reuses per-image terms from
the second click on: faster per click, the same numbers), which suits one-shot calls.

    seg = GraphSegmenter.from_cache("default")      # None: not cached yet, use Segmenter
    session = seg.session(image)                     # waveseg.InteractiveSession: ROI zoom, undo
    mask = session.set_box((x0, y0, x1, y1))
"""

from __future__ import annotations

import os

import numpy as np

from waveseg import graph_cache
from waveseg.errors import InvalidPromptError, WaveSegError
from waveseg.model_files import ModelCard, resolve_card
from waveseg.ort_session import inference_session
from waveseg.prediction import EncodedImage, Prediction
from waveseg.preprocess import LOWRES_MASK_SIZE, MODEL_INPUT_SIZE, ResizeGeometry, normalize_intensity
from waveseg.prompting.click_pinning import pin_clicks
from waveseg.prompting.mask_prompt import edge_profile_logits
from waveseg.prompting.stroke_prompts import StrokeRule
from waveseg.prompting.tokens import check_mask_shape, earlier_logits, is_binary_mask, point_tokens
from waveseg.prompting.validation import validate_box, validate_points
from waveseg.resample import resize_bilinear


class NeedsTorch(WaveSegError):
    """A prompt ``GraphSegmenter`` cannot answer without torch; use ``Segmenter``."""


def model_input(normalized: np.ndarray, geometry: ResizeGeometry) -> np.ndarray:
    """Normalised (H, W) or (H, W, 3) float image -> (1, 3, 256, 256) float32 padded model input
    (``waveseg.predictor.to_model_input`` in numpy)."""
    channels = normalized[None] if normalized.ndim == 2 else np.moveaxis(normalized, 2, 0)
    resized = resize_bilinear(channels, geometry.resized_hw, antialias=True)
    out = np.zeros((1, 3, MODEL_INPUT_SIZE, MODEL_INPUT_SIZE), np.float32)
    rh, rw = geometry.resized_hw
    out[0, :, :rh, :rw] = resized  # one channel broadcasts to three, as torch's expand
    return np.clip(out, 0.0, 1.0)


def masks_from_logits(logits: np.ndarray, geometry: ResizeGeometry) -> np.ndarray:
    """(M, 256, 256) model-frame logits -> (M, H, W) bool masks (``waveseg.predictor.logits_to_masks``)."""
    rh, rw = geometry.resized_hw
    valid = logits[:, :rh, :rw]
    if (rh, rw) != geometry.original_hw:
        valid = resize_bilinear(valid, geometry.original_hw, antialias=False)
    return valid > 0


def framed_mask(mask: np.ndarray, geometry: ResizeGeometry) -> np.ndarray:
    """(H, W) bool mask -> (256, 256) bool in the model frame (``waveseg.predictor.frame_mask``)."""
    resized = resize_bilinear(mask.astype(np.float32), geometry.resized_hw, antialias=True)
    out = np.zeros((LOWRES_MASK_SIZE, LOWRES_MASK_SIZE), np.float32)
    out[: resized.shape[0], : resized.shape[1]] = resized
    return out > 0.5


class GraphSegmenter:
    """Box and click prompts from cached onnxruntime graphs, without torch (module doc).

    Build it with ``from_cache``; answers the calls ``InteractiveSession`` makes (``encode``,
    ``predict_encoded``). Not thread-safe, like ``Segmenter``.
    """

    runtime = "onnx"
    pin_clicks = True  # as Segmenter's defaults: clicks pinned into a fed-back mask prompt,
    mask_profile = True  # and a bool mask prompt given the model's edge profile

    def __init__(self, card: ModelCard, encoder, decoder) -> None:
        self.card = card
        self._encoder, self._decoder = encoder, decoder
        self.stroke_rule = StrokeRule()  # read by InteractiveSession; strokes themselves raise NeedsTorch

    @property
    def backbone(self) -> str:
        return self.card.backbone

    @classmethod
    def from_cache(cls, name_or_path: str | os.PathLike = "default", threads: int = 0) -> "GraphSegmenter | None":
        """The model ``name_or_path`` (as ``Segmenter.from_pretrained``) from the graph cache, or
        None when its graphs are not there (no onnxruntime, cache off or cold, a model without a
        weights file, e.g. a bare backbone name). ``threads``: 0 = onnxruntime's default."""
        try:
            import onnxruntime
        except ImportError:
            return None
        card = resolve_card(name_or_path)
        if card is None or not card.sha256:
            return None
        graphs = [graph_cache.load_alias(graph_cache.alias_name(card.sha256, role, onnxruntime.__version__))
                  for role in (graph_cache.ENCODER_ROLE, graph_cache.FIRST_DECODE_ROLE)]
        if any(g is None for g in graphs):
            return None
        try:
            encoder, decoder = (inference_session(g, threads) for g in graphs)
        except Exception:  # noqa: BLE001 - onnxruntime refused a graph: Segmenter rebuilds it
            return None
        return cls(card, encoder, decoder)

    def encode(self, image: np.ndarray, window: tuple[float, float] | None = None) -> EncodedImage:
        """Normalise, resize and encode an (H, W) or (H, W, 3) image of any dtype; the embedding is
        a (1, 256, 64, 64) float32 array."""
        normalized = normalize_intensity(image, window)
        geometry = ResizeGeometry.for_shape(*normalized.shape[:2])
        (embedding,) = self._encoder.run(None, {"image": model_input(normalized, geometry)})
        return EncodedImage(embedding, geometry)

    def predict_encoded(self, encoded: EncodedImage, points=None, labels=None, box=None, mask_input=None,
                        multimask: bool = False, scribbles=None, lasso=None) -> Prediction:
        """``Segmenter.predict_encoded`` for points, a box and an optional mask prompt (pixels
        (x, y), box (x0, y0, x1, y1)); raises ``NeedsTorch`` for what needs torch (module doc)."""
        if multimask or scribbles or lasso:
            raise NeedsTorch("multimask output, scribbles and lassos need torch: use waveseg.Segmenter")
        geometry = encoded.geometry
        hw = geometry.original_hw
        pts = validate_points(points, labels, hw)
        bx = validate_box(box, hw)
        mask = None
        if mask_input is not None:
            m = np.asarray(mask_input)
            if is_binary_mask(m, hw):
                check_mask_shape(m, hw)
                framed = framed_mask(m.astype(bool), geometry)
                mask = (edge_profile_logits(framed) if self.mask_profile else np.where(framed, 10.0, -10.0))[None, None]
            else:
                mask = earlier_logits(m, hw)
        if pts is None and bx is None:
            if mask is None:
                raise InvalidPromptError("give at least one prompt: points with labels, a box, or mask_input")
            raise NeedsTorch("a mask prompt alone needs torch: use waveseg.Segmenter")
        coords, token_labels = point_tokens(pts, bx, geometry)
        if mask is not None and self.pin_clicks:
            mask = pin_clicks(mask, coords, token_labels)
        logits, iou = self._decoder.run(None, {
            "embedding": encoded.embedding, "point_coords": coords[None], "point_labels": token_labels[None],
            "mask_input": np.zeros((1, 1, LOWRES_MASK_SIZE, LOWRES_MASK_SIZE), np.float32) if mask is None else mask.astype(np.float32),
            "has_mask_input": np.array([0.0 if mask is None else 1.0], np.float32)})
        masks = masks_from_logits(logits[0], geometry)
        return Prediction(mask=masks[0], score=float(iou[0, 0]), logits=logits[0, :1].astype(np.float32), masks=masks,
                          scores=iou[0].astype(np.float32))

    def session(self, image: np.ndarray, window: tuple[float, float] | None = None, roi_zoom: str | bool = "auto"):
        """An ``InteractiveSession`` on ``image`` answered by this segmenter."""
        from waveseg.session import InteractiveSession

        return InteractiveSession(self, image, window=window, roi_zoom=roi_zoom)

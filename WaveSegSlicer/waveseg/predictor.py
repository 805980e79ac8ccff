"""``Segmenter``: the public 2D API (set an image once, prompt it many times).

    seg = Segmenter.from_pretrained("default", device="cpu")
    seg.set_image(image)                     # (H, W) or (H, W, 3), any dtype
    out = seg.predict(points=[[x, y]], labels=[1], box=(x0, y0, x1, y1))
    out.mask, out.score, out.logits          # (H, W) bool, float, (1, 256, 256) float32
    refined = seg.predict(points=..., labels=..., mask_input=out.logits)

Coordinates are pixels of the image as given: points (x, y) with x = column, boxes
(x0, y0, x1, y1). Intensity normalisation and resizing are described in ``waveseg.preprocess``.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from waveseg.prompting.box_zoom import ZoomMemory, crop_logits_to_frame
from waveseg.prompting.click_pinning import pin_clicks
from waveseg.decoding import PromptDecoder
from waveseg.errors import InvalidPromptError, WaveSegError
from waveseg.prompting.mask_prompt import edge_profile_logits
from waveseg.model_files import ModelCard, load_model
from waveseg.prediction import EncodedImage, Prediction
from waveseg import graph_cache
from waveseg.onnx_graph import OnnxGraph, use_onnx, weights_key
from waveseg.preprocess import LOWRES_MASK_SIZE, MODEL_INPUT_SIZE, ResizeGeometry, as_gray_or_rgb, normalize_intensity
from waveseg.prompting.tokens import check_mask_shape, earlier_logits, is_binary_mask, point_tokens
from waveseg.prompting.validation import validate_box, validate_points
from waveseg.prompting.roi import CropCache, next_roi
from waveseg.prompting.stroke_prompts import StrokeRule, apply_stroke_prompts, finish_strokes, parse_strokes

MASK_LOGIT = 10.0  # magnitude of a binary mask_input's logits without the edge profile (mask_profile=False)


def to_model_input(image: np.ndarray, geometry: ResizeGeometry) -> torch.Tensor:
    """Normalised (H, W) or (H, W, 3) float image -> (1, 3, 256, 256) padded model input."""
    t = torch.from_numpy(np.ascontiguousarray(image))
    t = t[None, None] if t.ndim == 2 else t.permute(2, 0, 1)[None]
    t = F.interpolate(t, size=geometry.resized_hw, mode="bilinear", align_corners=False, antialias=True)
    rh, rw = geometry.resized_hw
    t = F.pad(t, (0, MODEL_INPUT_SIZE - rw, 0, MODEL_INPUT_SIZE - rh))
    return t.expand(1, 3, MODEL_INPUT_SIZE, MODEL_INPUT_SIZE).clamp(0.0, 1.0).contiguous()


def logits_to_masks(logits: torch.Tensor, geometry: ResizeGeometry) -> np.ndarray:
    """(M, 256, 256) model-frame logits -> (M, H, W) bool masks at the original resolution."""
    rh, rw = geometry.resized_hw
    valid = logits[:, :rh, :rw]
    if (rh, rw) != geometry.original_hw:  # at the same size bilinear resampling is the identity: skip it
        valid = F.interpolate(valid[None], size=geometry.original_hw, mode="bilinear", align_corners=False)[0]
    return (valid > 0).numpy()


def frame_mask(mask: np.ndarray, geometry: ResizeGeometry) -> torch.Tensor:
    """(H, W) bool mask at image resolution -> (256, 256) bool mask in the model frame (resized, padded)."""
    t = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None, None]
    t = F.interpolate(t, size=geometry.resized_hw, mode="bilinear", align_corners=False, antialias=True)
    rh, rw = geometry.resized_hw
    return F.pad(t, (0, LOWRES_MASK_SIZE - rw, 0, LOWRES_MASK_SIZE - rh))[0, 0] > 0.5


def mask_to_logits(mask: np.ndarray, geometry: ResizeGeometry, profile: bool = True) -> torch.Tensor:
    """(H, W) bool mask at image resolution -> (1, 1, 256, 256) logits in the model frame, positive
    exactly on ``frame_mask``: with ``profile`` falling off at its edge as the model's own logits
    do (``waveseg.prompting.mask_prompt``), else +-``MASK_LOGIT`` everywhere (the rule before 2026-11-30)."""
    framed = frame_mask(mask, geometry)
    if profile:
        return torch.from_numpy(edge_profile_logits(framed.numpy()))[None, None]
    return (framed.float() * (2 * MASK_LOGIT) - MASK_LOGIT)[None, None]


class Segmenter:
    """A promptable segmenter: encodes an image once, then answers prompts quickly.

    Build it with ``Segmenter.from_pretrained``. Not thread-safe: use one per thread (the
    Slicer module and the server run all model calls on one worker thread).

    ``pin_clicks`` (default True) writes each click that a fed-back mask prompt contradicts into
    it before decoding, so a corrective click is not ignored (see ``waveseg.prompting.click_pinning``).
    ``mask_profile`` (default True) gives a bool ``mask_input`` the edge profile of the model's own
    logits instead of +-10 everywhere (see ``waveseg.prompting.mask_prompt``).
    ``roi_zoom`` ("auto", the default; True; or False) lets ``predict`` answer a prompt with a
    box from an encoded crop around the box, as ``InteractiveSession`` does: "auto" when the box
    (with the clicks) is smaller than 25 % of the image's longest side (``waveseg.prompting.roi``).
    ``predict_encoded`` never zooms. See ``waveseg.prompting.box_zoom`` for how the logits stay in the
    whole image's frame.
    """

    def __init__(self, model: torch.nn.Module, card: ModelCard, device: str = "cpu", runtime: str = "auto") -> None:
        self.model = model.to(device).eval()
        self.card = card
        self.device = torch.device(device)
        self._file_weights: tuple[str, tuple] | None = None  # (weights file SHA-256, weights_key) while unchanged
        self.decoder = PromptDecoder(self.model, runtime, alias=self._graph_alias)
        self._encoder_graph = None
        if use_onnx(runtime, self.model):
            self._encoder_graph = OnnxGraph(lambda: self.model.image_encoder, ("image",), ("embedding",), required=runtime == "onnx",
                                            alias=lambda: self._graph_alias(graph_cache.ENCODER_ROLE))
        self._encoded: EncodedImage | None = None
        self._crops: CropCache | None = None
        self._zoomed = ZoomMemory()
        self.pin_clicks = True
        self.mask_profile = True
        self.roi_zoom: str | bool = "auto"
        self.stroke_rule = StrokeRule()  # how scribbles and lassos reach the decoder (waveseg.prompting.stroke_prompts)

    @property
    def runtime(self) -> str:
        """Where the encoder runs: "onnx" (onnxruntime) or "torch"."""
        return "onnx" if self._encoder_graph is not None and not self._encoder_graph.failed else "torch"

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike = "default", device: str = "cpu",
                        profile: str | os.PathLike | None = None, runtime: str = "auto") -> "Segmenter":
        """Load a model: "default", a backbone name ("litemedsam", "wave-gms", "hrmedseg-lite")
        or the path of a WaveSeg model (card ``.json``, its ``.safetensors`` or their folder);
        ``profile`` names (or is the path of) an adaptation profile made for that model;
        ``runtime`` runs the encoder and the per-click step in "onnx" (onnxruntime), "torch", or
        "auto" (onnx when installed and on the CPU; same numbers, faster); see ``waveseg.onnx_graph``."""
        try:
            torch_device = torch.device(device)
        except RuntimeError:
            raise WaveSegError(f"device {device!r} is not a valid torch device; use 'cpu' or 'cuda'") from None
        if torch_device.type == "cuda" and not torch.cuda.is_available():
            raise WaveSegError("device 'cuda' was asked for but no CUDA GPU is available; use device='cpu'")
        if torch_device.type == "mps" and not torch.backends.mps.is_available():
            raise WaveSegError("device 'mps' was asked for but Apple's Metal backend is not available here; use device='cpu'")
        model, card = load_model(name_or_path)
        if profile is not None:
            from waveseg.adaptation.profiles import apply_profile

            apply_profile(model, profile)
            card.notes = f"{card.notes}; profile {profile!s}".lstrip("; ")
        seg = cls(model, card, device, runtime)
        if profile is None and card.sha256:
            seg._file_weights = (card.sha256, weights_key([seg.model]))
        return seg

    def _graph_alias(self, role: str) -> str | None:
        """The torch-free cache name of this model's ``role`` graph while its weights are still
        exactly its file's (``waveseg.graph_cache.alias_name``; ``waveseg.graph_segmenter`` reads it)."""
        if self._file_weights is None or weights_key([self.model]) != self._file_weights[1]:
            return None
        import onnxruntime

        return graph_cache.alias_name(self._file_weights[0], role, onnxruntime.__version__)

    @property
    def backbone(self) -> str:
        return self.card.backbone

    # -- images -------------------------------------------------------------------------
    @torch.inference_mode()
    def encode(self, image: np.ndarray, window: tuple[float, float] | None = None) -> EncodedImage:
        """Normalise, resize and encode an (H, W) or (H, W, 3) image of any dtype."""
        normalized = normalize_intensity(image, window)
        geometry = ResizeGeometry.for_shape(*normalized.shape[:2])
        x = to_model_input(normalized, geometry).to(self.device)
        out = self._encoder_graph(x) if self._encoder_graph is not None else None
        return EncodedImage(torch.from_numpy(out[0]) if out is not None else self.model.encode(x), geometry)

    def set_image(self, image: np.ndarray, window: tuple[float, float] | None = None) -> None:
        """Encode ``image`` for the following ``predict`` calls (the slow step, once per image).

        image: (H, W) or (H, W, 3) array of any numeric dtype ((H, W, 1), (H, W, 4) and a
        one-slice volume (1, H, W) are accepted too); window: optional (lo, hi) intensity window
        (e.g. (-160, 240) HU for abdomen CT).
        """
        self._encoded = self.encode(image, window)
        self._crops = CropCache(lambda crop: self.encode(crop, window), as_gray_or_rgb(image))
        self._zoomed.clear()

    @property
    def image_hw(self) -> tuple[int, int]:
        if self._encoded is None:
            raise WaveSegError("no image is set; call set_image(image) first")
        return self._encoded.geometry.original_hw

    # -- prompts ------------------------------------------------------------------------
    def predict(
        self,
        points: Sequence[Sequence[float]] | np.ndarray | None = None,
        labels: Sequence[int] | np.ndarray | None = None,
        box: Sequence[float] | np.ndarray | None = None,
        mask_input: np.ndarray | None = None,
        multimask: bool = False,
        scribbles: Sequence[tuple[np.ndarray, bool]] | None = None,
        lasso: tuple[np.ndarray, bool] | None = None,
    ) -> Prediction:
        """Segment the current image from prompts.

        Arguments:
          points: (N, 2) pixel coordinates (x, y), x = column, y = row.
          labels: (N,) 1 = foreground, 0 = background.
          box: (x0, y0, x1, y1) in pixels; corners in any order, clipped to the image.
          mask_input: either the ``logits`` of an earlier prediction ((1, 256, 256) or
            (256, 256) float) to refine, or an existing (H, W) mask to start from (bool, integer
            labels, nonzero = inside, or float with only 0 and 1). With
            ``pin_clicks`` (the default) the clicks it contradicts are pinned into it first.
          multimask: return three candidates (``masks``) and pick the best-scored as ``mask``.
          scribbles: [(polyline, positive), ...], each polyline (N >= 2, 2) pixels (x, y): the mask
            should include (positive) or exclude (negative) the pixels along it.
          lasso: (polygon, positive), polygon (N >= 3, 2) pixels (x, y), closed implicitly: its
            inside is added to (positive) or removed from (negative) the mask. How strokes reach
            the model, and what odd strokes do: ``waveseg.prompting.stroke_prompts``, ``waveseg.prompting.strokes``.
        Returns:
          ``Prediction`` with ``mask`` (H, W) bool, ``score`` and ``logits`` (1, 256, 256).
          With a small box (``roi_zoom``), the masks come from a crop around it at the crop's
          finer resolution, and ``logits`` are the crop's resampled into the whole image's frame.
        """
        if self._encoded is None:
            raise WaveSegError("no image is set; call set_image(image) first")
        if box is not None and self.roi_zoom:
            strokes = parse_strokes(scribbles, lasso, self.image_hw)
            zoomed = self._predict_zoomed(points, labels, box, mask_input, multimask, strokes)
            if zoomed is not None:
                return zoomed
        return self.predict_encoded(self._encoded, points, labels, box, mask_input, multimask, scribbles, lasso)

    def _predict_zoomed(self, points, labels, box, mask_input, multimask: bool, strokes=()) -> Prediction | None:
        """``predict`` from a crop around the box, or None when the box is too large to zoom on."""
        geometry = self._encoded.geometry
        hw = geometry.original_hw
        pts = validate_points(points, labels, hw)
        bx = validate_box(box, hw)
        earlier = self._zoomed.recall(mask_input)
        roi = next_roi(earlier.roi if earlier else None, bx, None, None if pts is None else pts[0], hw, self.roi_zoom)
        if roi is None:
            return None
        x0, y0, x1, y1 = roi
        if earlier is not None and earlier.roi == roi:
            crop_mask_input = earlier.crop_logits  # the crop's own logits: nothing lost by resampling
        elif mask_input is not None:
            # any other mask prompt becomes a mask at the image's resolution, then cropped
            m = np.asarray(mask_input)
            if m.shape == hw and is_binary_mask(m, hw):
                whole = m.astype(bool)
            else:  # earlier logits (validated there), or a mask of the wrong shape (refused there)
                whole = logits_to_masks(self._mask_input_logits(m, geometry)[0], geometry)[0]
            crop_mask_input = whole[y0:y1, x0:x1].copy() if whole[y0:y1, x0:x1].any() else None
        else:
            crop_mask_input = None
        encoded = self._crops.get(roi)
        shifted = [s.shifted(x0, y0) for s in strokes]  # strokes in the crop's pixels (Stroke objects skip re-validation)
        out = self.predict_encoded(encoded, None if pts is None else pts[0] - [x0, y0], None if pts is None else pts[1],
                                   bx - [x0, y0, x0, y0], crop_mask_input, multimask,
                                   [s for s in shifted if not s.closed], next((s for s in shifted if s.closed), None))
        masks = np.zeros((len(out.masks), *hw), bool)
        masks[:, y0:y1, x0:x1] = out.masks
        if strokes and self.stroke_rule.force:  # the parts of strokes outside the crop too
            masks = finish_strokes(masks, None, strokes, geometry, mask_input is None, self.stroke_rule)[0]
        logits = crop_logits_to_frame(out.logits, encoded.geometry, roi, geometry)
        self._zoomed.remember(logits, roi, out.logits)
        best = int(np.argmax(out.scores))
        return Prediction(mask=masks[best], score=out.score, logits=logits, masks=masks, scores=out.scores)

    @torch.inference_mode()
    def predict_encoded(
        self,
        encoded: EncodedImage,
        points: Sequence[Sequence[float]] | np.ndarray | None = None,
        labels: Sequence[int] | np.ndarray | None = None,
        box: Sequence[float] | np.ndarray | None = None,
        mask_input: np.ndarray | None = None,
        multimask: bool = False,
        scribbles: Sequence[tuple[np.ndarray, bool]] | None = None,
        lasso: tuple[np.ndarray, bool] | None = None,
    ) -> Prediction:
        """``predict`` against an explicit ``EncodedImage`` (used by sessions and ROI zoom)."""
        geometry = encoded.geometry
        hw = geometry.original_hw
        pts = validate_points(points, labels, hw)
        bx = validate_box(box, hw)
        mask_logits = self._mask_input_logits(mask_input, geometry)
        strokes = parse_strokes(scribbles, lasso, hw)
        first = mask_logits is None
        if strokes:
            pts, bx, mask_logits = apply_stroke_prompts(strokes, pts, bx, mask_logits, geometry, self.stroke_rule, self.mask_profile)
        if pts is None and bx is None and mask_logits is None:
            raise InvalidPromptError("give at least one prompt: points with labels, a box, or mask_input")
        if pts is None and bx is None:  # a mask prompt alone: no point tokens at all, as SAM does
            logits, iou = self.model.decode(encoded.embedding, None, None, mask_logits.to(self.device), multimask)
        else:
            coords, labels = point_tokens(pts, bx, geometry)
            if mask_logits is not None and self.pin_clicks:
                mask_logits = pin_clicks(mask_logits, coords, labels)
            logits, iou = self.decoder.decode(encoded.embedding, coords, labels, mask_logits, multimask)
        logits, iou = logits[0].float().cpu(), iou[0].float().cpu()
        masks = logits_to_masks(logits, geometry)
        if strokes and self.stroke_rule.force:
            masks, logits = finish_strokes(masks, logits, strokes, geometry, first, self.stroke_rule)
        best = int(torch.argmax(iou))
        return Prediction(
            mask=masks[best],
            score=float(iou[best]),
            logits=logits[best : best + 1].numpy().astype(np.float32),
            masks=masks,
            scores=iou.numpy(),
        )

    def _mask_input_logits(self, mask_input: np.ndarray | None, geometry: ResizeGeometry) -> torch.Tensor | None:
        if mask_input is None:
            return None
        m = np.asarray(mask_input)
        if is_binary_mask(m, geometry.original_hw):
            check_mask_shape(m, geometry.original_hw)
            return mask_to_logits(m.astype(bool), geometry, self.mask_profile)
        return torch.from_numpy(earlier_logits(m, geometry.original_hw))

    # -- sessions -----------------------------------------------------------------------
    def session(self, image: np.ndarray, window: tuple[float, float] | None = None, roi_zoom: str | bool = "auto"):
        """Start an interactive session (clicks, box, undo/redo) on an image; see ``InteractiveSession``."""
        from waveseg.session import InteractiveSession

        return InteractiveSession(self, image, window=window, roi_zoom=roi_zoom)


    def volume_session(self, volume: np.ndarray, spacing=(1.0, 1.0, 1.0), window: tuple[float, float] | None = None,
                       cache_mb: float = 512, prefetch: bool = True, share_cache_with=None, propagation=None):
        """Start a 3D session over a (Z, Y, X) volume with voxel spacing (x, y, z) mm; see ``VolumeSession``.
        ``propagation``: a ``waveseg.propagation.PropagationRule`` (None: the shipped rule)."""
        from waveseg.volume import VolumeSession

        return VolumeSession(self, volume, spacing=spacing, window=window, cache_mb=cache_mb, prefetch=prefetch,
                             share_cache_with=share_cache_with, propagation=propagation)


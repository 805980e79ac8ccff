"""The per-click step: prompt encoder + mask decoder, in onnxruntime or in torch.

``PromptDecoder`` runs ``FastMaskDecoding`` (same numbers as the model's ``decode``, computed
faster; see ``waveseg.modeling.fast_decoding``). An image's first decode computes everything
from the embedding; from its second decode on (clicks on one slice), the first layer's per-image
terms are computed once and reused: propagation decodes each slice once and never pays for
them, a session's clicks do. Single-mask decoding on the CPU runs in
onnxruntime when it is installed (``waveseg.onnx_graph``: exported from the current weights,
re-exported when they change). Multimask decoding, other devices and machines without
onnxruntime use the same computation in torch.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from waveseg.modeling.fast_decoding import MULTI_MASK_TOKENS, FastMaskDecoding, image_tokens
from waveseg import graph_cache
from waveseg.onnx_graph import OnnxGraph, use_onnx, weights_key

_INPUTS = ("image_tokens", "k0", "v0", "q0", "point_coords", "point_labels", "mask_input", "has_mask_input")
_FIRST_INPUTS = ("embedding", *_INPUTS[4:])
_OUTPUTS = ("low_res_logits", "iou")


class PromptDecoder:
    """Decode prompts against one image embedding at a time (not thread-safe, like ``Segmenter``).

    runtime: "onnx" (needs onnxruntime and a CPU model), "torch", or "auto" (onnx when possible).
    alias: role -> the first-decode graph's torch-free cache name, or None (``OnnxGraph``'s alias).
    """

    # with many clicks, project the image tokens instead of re-associating onto the prompt side
    # (FastMaskDecoding's module doc, point 4); False: always re-associate (bench_engine.py compares)
    project_image_for_many_clicks = True

    def __init__(self, model: torch.nn.Module, runtime: str = "auto", alias: Callable[[str], str | None] | None = None) -> None:
        self.model = model
        self._single = FastMaskDecoding(model).eval()
        self._single_many = FastMaskDecoding(model, project_image=True).eval()  # for many clicks
        self._multi = FastMaskDecoding(model, MULTI_MASK_TOKENS).eval()
        self._graph = self._many_graph = self._terms_graph = self._first_graph = None
        if use_onnx(runtime, model):
            points_axis = {"point_coords": {1: "points"}, "point_labels": {1: "points"}}
            # names: the disk cache's key for what each graph computes from the same decoder weights
            self._graph = OnnxGraph(lambda: self._single, _INPUTS, _OUTPUTS, watched=self._watched,
                                    dynamic_axes=points_axis, required=runtime == "onnx", name="decode single, prompt side re-associated")
            self._many_graph = OnnxGraph(lambda: self._single_many, _INPUTS, _OUTPUTS, watched=self._watched,
                                         dynamic_axes=points_axis, required=runtime == "onnx", name="decode single, image projected")
            # eval() matters beyond these wrappers: torch.onnx.export restores the exported module's
            # training flag recursively afterwards, which would put the whole model in training mode
            terms = _ImageTerms(self._single).eval()
            self._terms_graph = OnnxGraph(lambda: terms, ("embedding",), _INPUTS[:4], watched=self._watched, required=runtime == "onnx",
                                          name="decode image terms")
            first = _FirstDecode(self._single).eval()
            self._first_graph = OnnxGraph(lambda: first, _FIRST_INPUTS, _OUTPUTS, watched=self._watched,
                                          dynamic_axes=points_axis, required=runtime == "onnx", name="decode single, an image's first",
                                          alias=None if alias is None else lambda: alias(graph_cache.FIRST_DECODE_ROLE))
        self._image: tuple[torch.Tensor, tuple] | None = None  # (embedding, weights key) decoded last
        self._terms: tuple[torch.Tensor, ...] | None = None  # its image terms, from its second decode on

    def _watched(self) -> list[torch.nn.Module]:
        return [self.model.prompt_encoder, self.model.mask_decoder]

    @torch.inference_mode()
    def decode(self, embedding: torch.Tensor, point_coords: np.ndarray, point_labels: np.ndarray,
               mask_logits: torch.Tensor | None, multimask: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Arguments: embedding (1, 256, 64, 64); point_coords (N, 2) float32 (x, y) in the 256
        model frame and point_labels (N,) with 1/0 clicks, 2/3 box corners, -1 padding (one
        padding point when there is no box); mask_logits (1, 1, 256, 256) or None.
        Returns (1, M, 256, 256) logits and (1, M) predicted IoU on the CPU, M = 3 or 1."""
        key = weights_key(self._watched())
        device = embedding.device
        has_mask = torch.tensor([0.0 if mask_logits is None else 1.0], device=device)
        mask = torch.zeros(1, 1, 256, 256, device=device) if mask_logits is None else mask_logits.to(device)
        coords = torch.from_numpy(np.asarray(point_coords, np.float32)[None]).to(device)
        labels = torch.from_numpy(np.asarray(point_labels, np.float32)[None]).to(device)
        prompts = (coords, labels, mask, has_mask)
        decoding = self._multi if multimask else self._single
        use_graph = not multimask  # multimask decoding runs in torch

        if self._image is None or self._image[0] is not embedding or self._image[1] != key:  # this image's first decode
            self._image, self._terms = (embedding, key), None
            out = self._first_graph(embedding, *prompts, key=key) if self._first_graph is not None and use_graph else None
            if out is not None:
                return torch.from_numpy(out[0]), torch.from_numpy(out[1])
            logits, iou = decoding.decode(image_tokens(embedding), None, *prompts)
            return logits.float().cpu(), iou.float().cpu()
        if self._terms is None:  # its second decode: clicks follow, the terms pay off
            out = self._terms_graph(embedding, key=key) if self._terms_graph is not None else None
            self._terms = tuple(torch.from_numpy(a) for a in out) if out is not None else self._single.image_terms(embedding)
        inputs = (*self._terms, *prompts)
        many = (self.project_image_for_many_clicks and not multimask
                and FastMaskDecoding.prefers_projected_image(self.model, coords.shape[1]))
        graph, decoding = (self._many_graph, self._single_many) if many else (self._graph, decoding)
        out = graph(*inputs, key=key) if graph is not None and use_graph else None
        if out is not None:
            return torch.from_numpy(out[0]), torch.from_numpy(out[1])
        logits, iou = decoding(*inputs)
        return logits.float().cpu(), iou.float().cpu()

    def has_terms(self, embedding: torch.Tensor) -> bool:
        """Whether the next decode of ``embedding`` reuses its image terms (under the current weights)."""
        return self._terms is not None and self._image[0] is embedding and self._image[1] == weights_key(self._watched())

    def forget_image(self) -> None:
        """Treat the next decode as its image's first (benchmarks time it this way)."""
        self._image = self._terms = None


class _ImageTerms(torch.nn.Module):
    """``FastMaskDecoding.image_terms`` as a module, to export it."""

    def __init__(self, decoding: FastMaskDecoding) -> None:
        super().__init__()
        self.decoding = decoding

    def forward(self, embedding: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.decoding.image_terms(embedding)


class _FirstDecode(torch.nn.Module):
    """``FastMaskDecoding.decode`` from the embedding, without per-image terms, to export it."""

    def __init__(self, decoding: FastMaskDecoding) -> None:
        super().__init__()
        self.decoding = decoding

    def forward(self, embedding: torch.Tensor, point_coords: torch.Tensor, point_labels: torch.Tensor,
                mask_input: torch.Tensor, has_mask_input: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.decoding.decode(image_tokens(embedding), None, point_coords, point_labels, mask_input, has_mask_input)

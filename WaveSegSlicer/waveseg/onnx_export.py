"""Export the prompt encoder + mask decoder to ONNX for a faster per-click step on CPU.

segment-anything's ``SamOnnxModel`` already rewrites the prompt encoder without data-dependent
control flow for tracing; we reuse it and only tell it our input size (256 instead of 1024).
Inputs of the exported graph: image_embeddings (1, 256, 64, 64); point_coords (1, N, 2) in the
256 model frame (a box is two points labelled 2 and 3); point_labels (1, N) with -1 padding;
mask_input (1, 1, 256, 256); has_mask_input (1,). Output: low-res logits (1, 1, 256, 256) and
scores (1, 1).
"""

from __future__ import annotations

import os

import torch
from segment_anything.utils.onnx import SamOnnxModel
from torch import nn

from waveseg.preprocess import MODEL_INPUT_SIZE


class _DecoderGraph(SamOnnxModel):
    def __init__(self, model: nn.Module) -> None:
        nn.Module.__init__(self)
        self.mask_decoder = model.mask_decoder
        self.model = model
        self.img_size = MODEL_INPUT_SIZE
        self.return_single_mask = True
        self.use_stability_score = False
        self.return_extra_metrics = False

    def forward(self, image_embeddings, point_coords, point_labels, mask_input, has_mask_input):
        sparse = self._embed_points(point_coords, point_labels)
        dense = self._embed_masks(mask_input, has_mask_input)
        masks, scores = self.model.mask_decoder.predict_masks(
            image_embeddings=image_embeddings,
            image_pe=self.model.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
        )
        return self.select_masks(masks, scores, point_coords.shape[1])


def export_decoder(model: nn.Module, path: str | os.PathLike) -> None:
    """Write the ONNX graph of ``model``'s prompt encoder + mask decoder to ``path``."""
    graph = _DecoderGraph(model).eval()
    inputs = (
        torch.randn(1, 256, 64, 64),
        torch.randint(0, 256, (1, 3, 2), dtype=torch.float32),
        torch.tensor([[1, 2, 3]], dtype=torch.float32),
        torch.zeros(1, 1, 256, 256),
        torch.tensor([1.0]),
    )
    torch.onnx.export(
        graph, inputs, str(path), opset_version=17, dynamo=False,
        input_names=["image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input"],
        output_names=["low_res_logits", "scores"],
        dynamic_axes={"point_coords": {1: "num_points"}, "point_labels": {1: "num_points"}},
    )

"""The promptable model: an injected image encoder + SAM's prompt encoder and mask decoder.

Composed by constructor injection, like segment-anything's ``Sam``: any registered backbone can
be combined with the same prompt encoder and decoder.
"""

from __future__ import annotations

import torch
from segment_anything.modeling import MaskDecoder, PromptEncoder
from torch import nn


class PromptableSegmenter(nn.Module):
    """Image encoder + prompt encoder + mask decoder.

    Arguments:
      image_encoder: (B, 3, 256, 256) image in [0, 1] -> (B, 256, 64, 64) embedding.
      prompt_encoder: SAM ``PromptEncoder`` for a 256 x 256 input and 64 x 64 embedding.
      mask_decoder: SAM ``MaskDecoder`` with 256 channels.
    """

    def __init__(self, image_encoder: nn.Module, prompt_encoder: PromptEncoder, mask_decoder: MaskDecoder) -> None:
        super().__init__()
        self.image_encoder = image_encoder
        self.prompt_encoder = prompt_encoder
        self.mask_decoder = mask_decoder

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, 256, 256) float in [0, 1] -> (B, 256, 64, 64) image embedding."""
        return self.image_encoder(images)

    def decode(
        self,
        embedding: torch.Tensor,
        points: tuple[torch.Tensor, torch.Tensor] | None = None,
        boxes: torch.Tensor | None = None,
        mask_input: torch.Tensor | None = None,
        multimask: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode masks for one set of prompts per embedding.

        Arguments:
          embedding: (B, 256, 64, 64).
          points: ((B, N, 2) float (x, y) in the 256 x 256 model frame, (B, N) int labels with
            1 = foreground, 0 = background, -1 = padding), or None.
          boxes: (B, 4) float (x0, y0, x1, y1) in the model frame, or None.
          mask_input: (B, 1, 256, 256) logits from a previous prediction, or None.
          multimask: return 3 candidate masks instead of 1.

        Returns:
          (B, M, 256, 256) mask logits in the model frame and (B, M) predicted IoU, M = 3 or 1.
        """
        if embedding.shape[0] > 1:
            # segment-anything's MaskDecoder repeats the image embedding once per prompt set
            # (it assumes one image per call), so a batch of images is decoded one by one.
            outputs = [
                self.decode(
                    embedding[i : i + 1],
                    None if points is None else (points[0][i : i + 1], points[1][i : i + 1]),
                    None if boxes is None else boxes[i : i + 1],
                    None if mask_input is None else mask_input[i : i + 1],
                    multimask,
                )
                for i in range(embedding.shape[0])
            ]
            return torch.cat([o[0] for o in outputs]), torch.cat([o[1] for o in outputs])
        sparse, dense = self.prompt_encoder(points=points, boxes=boxes, masks=mask_input)
        return self.mask_decoder(
            image_embeddings=embedding,
            image_pe=self.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=multimask,
        )

    def decode_tokens(
        self, embedding: torch.Tensor, coords: torch.Tensor, labels: torch.Tensor, mask_input: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode a batch of images, each with its own prompt, in one decoder call (training).

        Arguments:
          embedding: (B, 256, 64, 64).
          coords: (B, K, 2) float (x, y) in the 256 x 256 model frame; labels: (B, K) int with
            1 / 0 = foreground / background click, 2 / 3 = box top-left / bottom-right corner and
            -1 = padding (SAM's ONNX convention; the same embeddings as ``PromptEncoder`` gives
            for points, boxes and its padding point).
          mask_input: (B, 1, 256, 256) logits from a previous prediction, or None for all.

        Returns:
          (B, 1, 256, 256) mask logits and (B, 1) predicted IoU.
        """
        prompt = self.prompt_encoder
        sparse = prompt.pe_layer.forward_with_coords(coords + 0.5, prompt.input_image_size)
        sparse = sparse.masked_fill((labels == -1)[..., None], 0.0)
        label_table = torch.cat([prompt.not_a_point_embed.weight] + [e.weight for e in prompt.point_embeddings])
        sparse = sparse + label_table[labels + 1]
        if mask_input is None:
            dense = prompt.no_mask_embed.weight.reshape(1, -1, 1, 1).expand_as(embedding)
        else:
            dense = prompt._embed_masks(mask_input)
        # segment-anything's MaskDecoder repeats ONE image embedding per prompt set and then adds
        # the dense prompt; a zero image with each image folded into its dense term gives exactly
        # image + dense per sample, so a whole batch of images decodes in one call
        return self.mask_decoder(
            image_embeddings=torch.zeros_like(embedding[:1]),
            image_pe=prompt.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=embedding + dense,
            multimask_output=False,
        )

    def forward(self, images: torch.Tensor, **prompts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode and decode in one call (training); prompts as in ``decode``."""
        return self.decode(self.encode(images), **prompts)

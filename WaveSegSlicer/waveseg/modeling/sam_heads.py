"""SAM's prompt encoder and mask decoder, configured as in LiteMedSAM.

The modules come from the ``segment-anything`` package (not copied): embed dim 256, a 64 x 64
image embedding for a 256 x 256 input, mask input of 256 x 256 (4 x the embedding), and a
two-way transformer of depth 2, MLP 2048, 8 heads. LiteMedSAM's ``prompt_encoder.*`` and
``mask_decoder.*`` weights load into them with ``strict=True``.
"""

from __future__ import annotations

from segment_anything.modeling import MaskDecoder, PromptEncoder, TwoWayTransformer

EMBED_DIM = 256
EMBEDDING_HW = (64, 64)
INPUT_HW = (256, 256)


def build_prompt_encoder() -> PromptEncoder:
    return PromptEncoder(
        embed_dim=EMBED_DIM,
        image_embedding_size=EMBEDDING_HW,
        input_image_size=INPUT_HW,
        mask_in_chans=16,
    )


def build_mask_decoder() -> MaskDecoder:
    return MaskDecoder(
        num_multimask_outputs=3,
        transformer=TwoWayTransformer(depth=2, embedding_dim=EMBED_DIM, mlp_dim=2048, num_heads=8),
        transformer_dim=EMBED_DIM,
        iou_head_depth=3,
        iou_head_hidden_dim=256,
    )

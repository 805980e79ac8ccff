"""HRMedSeg-lite: conv stem + gated linear-attention ViT blocks + cross-multiscale neck.

After HRMedSeg (Xu et al., CVPR 2025), which pairs a lightweight gated linear-attention encoder
(cost linear in the number of tokens) with a multiscale decoder for high-resolution medical
segmentation. Linear attention (Katharopoulos et al., 2020) uses the feature map
phi(x) = elu(x) + 1, so attention costs O(N d^2) instead of O(N^2 d); a sigmoid output gate
(as in gated linear attention) and a 3x3 depthwise positional convolution restore locality.

Data flow for a 256 x 256 input:
    stem: 3x3 s2 conv -> 3x3 s2 conv            -> w0 ch @ 64^2   (feature 1)
    stride-2 conv, gated linear attention x d1  -> w1 ch @ 32^2   (feature 2)
    stride-2 conv, gated linear attention x d2  -> w2 ch @ 16^2   (feature 3)
    cross-multiscale neck                       -> 256 ch @ 64^2
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from waveseg.modeling.blocks import MultiScaleNeck, conv_bn_act
from waveseg.modeling.registry import register_backbone


class GatedLinearAttention(nn.Module):
    """Multi-head linear attention with an output gate over (B, N, C) tokens."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkvg = nn.Linear(dim, 4 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v, gate = self.qkvg(x).chunk(4, dim=-1)
        heads = lambda t: t.reshape(b, n, self.num_heads, c // self.num_heads).transpose(1, 2)  # noqa: E731
        q, k, v = F.elu(heads(q)) + 1.0, F.elu(heads(k)) + 1.0, heads(v)
        kv = k.transpose(-2, -1) @ v / n  # (B, h, d, d): summary of all tokens, linear in N
        normaliser = q @ k.mean(dim=2, keepdim=True).transpose(-2, -1)  # (B, h, N, 1)
        out = (q @ kv) / (normaliser + 1e-6)
        out = out.transpose(1, 2).reshape(b, n, c)
        return self.proj(out * torch.sigmoid(gate))


class GatedLinearAttentionBlock(nn.Module):
    """Depthwise positional conv + pre-norm gated linear attention + MLP on a (B, C, H, W) map."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 2.0) -> None:
        super().__init__()
        self.pos = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = GatedLinearAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.pos(x)
        b, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2)
        t = t + self.attn(self.norm1(t))
        t = t + self.mlp(self.norm2(t))
        return t.transpose(1, 2).reshape(b, c, h, w)


class HRMedSegLiteEncoder(nn.Module):
    """(B, 3, 256, 256) in [0, 1] -> (B, 256, 64, 64). See the module docstring for the stages."""

    def __init__(self, widths: tuple[int, int, int], depths: tuple[int, int], num_heads: tuple[int, int],
                 fuse_ch: int) -> None:
        super().__init__()
        w0, w1, w2 = widths
        self.stem = nn.Sequential(conv_bn_act(3, w0 // 2, stride=2), conv_bn_act(w0 // 2, w0, stride=2))
        self.down1 = conv_bn_act(w0, w1, stride=2)
        self.stage1 = nn.Sequential(*(GatedLinearAttentionBlock(w1, num_heads[0]) for _ in range(depths[0])))
        self.down2 = conv_bn_act(w1, w2, stride=2)
        self.stage2 = nn.Sequential(*(GatedLinearAttentionBlock(w2, num_heads[1]) for _ in range(depths[1])))
        self.neck = MultiScaleNeck((w0, w1, w2), fuse_ch)

    def features(self, image: torch.Tensor) -> list[torch.Tensor]:
        """The three stages' maps that the neck fuses, finest first."""
        f0 = self.stem(image * 2.0 - 1.0)
        f1 = self.stage1(self.down1(f0))
        f2 = self.stage2(self.down2(f1))
        return [f0, f1, f2]

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.neck(self.features(image))


@register_backbone("hrmedseg-lite")
def build_hrmedseg_lite() -> HRMedSegLiteEncoder:
    """2.26M parameters and 2.89 GFLOPs per 256 x 256 slice (scripts/bench_engine.py)."""
    return HRMedSegLiteEncoder(widths=(64, 128, 256), depths=(4, 2), num_heads=(4, 8), fuse_ch=64)

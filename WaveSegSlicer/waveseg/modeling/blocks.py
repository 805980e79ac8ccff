"""Small building blocks shared by the light backbones (conv, residual, attention, neck)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from segment_anything.modeling.common import LayerNorm2d
from torch import nn


def conv_bn_act(in_ch: int, out_ch: int, stride: int = 1, kernel: int = 3) -> nn.Sequential:
    """Plain k x k convolution + BatchNorm + GELU. Plain 3x3 convs train 2-4x faster per step on
    a 2-core CPU than depthwise-separable blocks of fewer FLOPs (measured, see DESIGN.md)."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.GELU(),
    )


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with an identity shortcut; keeps (B, C, H, W)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = conv_bn_act(channels, channels)
        self.conv2 = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x + self.conv2(self.conv1(x)))


class ChannelLayerNorm(LayerNorm2d):
    """segment-anything's ``LayerNorm2d`` (over the C of (B, C, H, W); same parameters, same
    numbers) computed by torch's fused ``layer_norm`` on a channels-last view: it exports as one
    LayerNormalization node, where ``LayerNorm2d``'s own form exports as two ReduceMeans across
    the channel axis and elementwise ops, which onnxruntime ran slower."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), self.weight, self.bias, self.eps).permute(0, 3, 1, 2)


class MultiScaleNeck(nn.Module):
    """Fuse feature maps of several resolutions into the (B, 256, 64, 64) SAM embedding.

    Each input goes through a 1x1 lateral projection to ``fuse_ch`` channels, is upsampled
    bilinearly to 64 x 64 and summed; a 3x3 conv mixes the sum and a 1x1 conv lifts it to
    ``out_ch`` channels, followed by LayerNorm2d like SAM's neck. The LayerNorm's scale and bias
    can be copied from the teacher before distillation, which matches the teacher's small
    embedding magnitude from the first step.
    """

    def __init__(self, in_channels: tuple[int, ...], fuse_ch: int, out_ch: int = 256, out_hw: int = 64) -> None:
        super().__init__()
        self.out_hw = out_hw
        self.laterals = nn.ModuleList(nn.Conv2d(c, fuse_ch, 1) for c in in_channels)
        self.mix = conv_bn_act(fuse_ch, fuse_ch)
        self.project = nn.Conv2d(fuse_ch, out_ch, 1)
        self.norm = ChannelLayerNorm(out_ch)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        fused = 0
        for lateral, feature in zip(self.laterals, features):
            y = lateral(feature)
            if y.shape[-1] != self.out_hw:
                y = F.interpolate(y, size=(self.out_hw, self.out_hw), mode="bilinear", align_corners=False)
            fused = fused + y
        return self.norm(self.project(self.mix(fused)))


class AttentionBlock(nn.Module):
    """Pre-norm multi-head self-attention + MLP over the tokens of a (B, C, H, W) map."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 2.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2)
        n = self.norm1(t)
        t = t + self.attn(n, n, n, need_weights=False)[0]
        t = t + self.mlp(self.norm2(t))
        return t.transpose(1, 2).reshape(b, c, h, w)

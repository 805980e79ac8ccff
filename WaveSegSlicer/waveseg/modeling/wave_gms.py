"""Wave-GMS-style wavelet multi-resolution encoder.

Wave-GMS (Ahmed et al., 2025) feeds a multi-level discrete wavelet decomposition of the image to
a light trainable encoder and aligns the multi-resolution latents with a frozen foundation
model's latent space. Here the decomposition uses PyWavelets' filter banks applied as fixed,
strided torch convolutions (so it is differentiable and runs in the same graph), and the latent
space to align with is LiteMedSAM's 256 x 64 x 64 embedding (by distillation, in training).

Data flow for a 256 x 256 input (gray = channel mean):
    DWT level 1 (4 sub-bands, 128^2) -> stem            -> 64 ch @ 64^2 (+ level-2 sub-bands)
    -> residual block                                   -> 64 ch @ 64^2   (feature 1)
    -> stride-2 conv (+ level-3 sub-bands), residual     -> 128 ch @ 32^2  (feature 2)
    -> stride-2 conv (+ level-4 sub-bands), residual, attention -> 256 ch @ 16^2 (feature 3)
    -> multi-scale neck                                 -> 256 ch @ 64^2
"""

from __future__ import annotations

import numpy as np
import pywt
import torch
import torch.nn.functional as F
from torch import nn

from waveseg.modeling.blocks import AttentionBlock, MultiScaleNeck, ResidualBlock, conv_bn_act
from waveseg.modeling.registry import register_backbone


class WaveletDecomposition(nn.Module):
    """Multi-level 2D DWT with PyWavelets' analysis filters as a fixed strided convolution.

    Input (B, 1, H, W); output a list of ``levels`` tensors (B, 4, H/2^l, W/2^l) holding the
    sub-bands (LL, detail-rows, detail-cols, diagonal) of levels l = 1..levels, each computed
    from the previous level's LL. For 'haar' and even sizes this equals ``pywt.dwt2``.
    """

    def __init__(self, wavelet: str = "haar", levels: int = 4) -> None:
        super().__init__()
        bank = pywt.Wavelet(wavelet)
        # pywt convolves with dec_* filters; as a correlation the filters are reversed.
        lo = np.asarray(bank.dec_lo[::-1], dtype=np.float32)
        hi = np.asarray(bank.dec_hi[::-1], dtype=np.float32)
        kernels = np.stack([np.outer(lo, lo), np.outer(hi, lo), np.outer(lo, hi), np.outer(hi, hi)])
        self.register_buffer("kernels", torch.from_numpy(kernels)[:, None], persistent=False)
        self.levels = levels
        self.pad = len(lo) - 2  # symmetric extension needed for filters longer than 2 taps

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        bands = []
        approx = x
        for _ in range(self.levels):
            if self.pad:
                approx = F.pad(approx, (self.pad // 2, self.pad - self.pad // 2) * 2, mode="reflect")
            level = F.conv2d(approx, self.kernels, stride=2)
            bands.append(level)
            approx = level[:, :1]
        return bands


class WaveGMSEncoder(nn.Module):
    """(B, 3, 256, 256) in [0, 1] -> (B, 256, 64, 64). See the module docstring for the stages."""

    def __init__(self, wavelet: str, widths: tuple[int, int, int], num_heads: int, fuse_ch: int) -> None:
        super().__init__()
        w1, w2, w3 = widths
        self.dwt = WaveletDecomposition(wavelet, levels=4)
        self.stem = nn.Sequential(conv_bn_act(4, w1 // 2), conv_bn_act(w1 // 2, w1, stride=2))
        self.merge1 = conv_bn_act(w1 + 4, w1, kernel=1)
        self.stage1 = ResidualBlock(w1)
        self.down2 = conv_bn_act(w1, w2, stride=2)
        self.merge2 = conv_bn_act(w2 + 4, w2, kernel=1)
        self.stage2 = ResidualBlock(w2)
        self.down3 = conv_bn_act(w2, w3, stride=2)
        self.merge3 = conv_bn_act(w3 + 4, w3, kernel=1)
        self.stage3 = nn.Sequential(ResidualBlock(w3), AttentionBlock(w3, num_heads))
        self.neck = MultiScaleNeck((w1, w2, w3), fuse_ch)

    def features(self, image: torch.Tensor) -> list[torch.Tensor]:
        """The three stages' maps that the neck fuses: (B, w1, 64, 64), (B, w2, 32, 32), (B, w3, 16, 16)."""
        gray = image.mean(dim=1, keepdim=True)
        b1, b2, b3, b4 = self.dwt(gray * 2.0 - 1.0)
        f1 = self.stage1(self.merge1(torch.cat([self.stem(b1), b2], 1)))
        f2 = self.stage2(self.merge2(torch.cat([self.down2(f1), b3], 1)))
        f3 = self.stage3(self.merge3(torch.cat([self.down3(f2), b4], 1)))
        return [f1, f2, f3]

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.neck(self.features(image))


@register_backbone("wave-gms")
def build_wave_gms() -> WaveGMSEncoder:
    """2.58M parameters and 2.64 GFLOPs per 256 x 256 slice (scripts/bench_engine.py)."""
    return WaveGMSEncoder(wavelet="haar", widths=(48, 128, 256), num_heads=8, fuse_ch=64)

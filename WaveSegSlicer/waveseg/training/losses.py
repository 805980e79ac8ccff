"""Losses for distillation and for prompt-simulated fine-tuning."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, cosine_weight: float = 1.0) -> torch.Tensor:
    """Scale-normalised MSE + (1 - cosine similarity) between (B, 256, 64, 64) embeddings.

    LiteMedSAM's embeddings are small (mean square about 0.01): plain MSE is dominated by the
    scale mismatch, so the MSE is divided by the teacher's mean square, and a per-position
    cosine term aligns directions independently of scale.
    """
    mse = F.mse_loss(student, teacher) / teacher.pow(2).mean().clamp_min(1e-8)
    cosine = F.cosine_similarity(student, teacher, dim=1).mean()
    return mse + cosine_weight * (1.0 - cosine)


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MONAI's Dice + binary cross-entropy on (B, 1, H, W) logits and {0, 1} targets."""
    from monai.losses import DiceCELoss

    return DiceCELoss(sigmoid=True)(logits, target)

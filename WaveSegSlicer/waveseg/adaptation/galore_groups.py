"""Optimiser parameter groups for GaLore on the image encoder.

We use ``pytorch-optimizer``'s ``GaLore`` (AdamW with gradient low-rank projection on the
parameter groups that carry a ``rank``). ``galore-torch`` was the alternative: it pulls in
transformers and bitsandbytes, and fails on tensors that are not 2D. pytorch-optimizer projects
only 2D tensors too, so convolution kernels (out, in, kh, kw) are re-parametrised as 2D matrices
(out, in*kh*kw) with ``torch.nn.utils.parametrize`` while adapting: the optimiser then sees a
matrix, the convolution still sees its kernel, and the parametrisation is removed afterwards.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize


class _MatrixAsKernel(nn.Module):
    """Parametrisation: stored (out, in*kh*kw) matrix -> (out, in, kh, kw) kernel."""

    def __init__(self, shape: torch.Size) -> None:
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, matrix: torch.Tensor) -> torch.Tensor:
        return matrix.reshape(self.shape)

    def right_inverse(self, kernel: torch.Tensor) -> torch.Tensor:
        return kernel.reshape(kernel.shape[0], -1)


def kernels_as_matrices(module: nn.Module, min_size: int = 4096) -> list[nn.Module]:
    """Re-parametrise every conv kernel with at least ``min_size`` elements as a matrix.

    Returns the modified convolutions, for ``restore_kernels``.
    """
    changed = []
    for conv in module.modules():
        if isinstance(conv, nn.Conv2d) and conv.weight.numel() >= min_size and conv.groups == 1:
            parametrize.register_parametrization(conv, "weight", _MatrixAsKernel(conv.weight.shape), unsafe=True)
            changed.append(conv)
    return changed


def restore_kernels(convs: list[nn.Module]) -> None:
    """Undo ``kernels_as_matrices``, keeping the adapted values as ordinary kernels."""
    for conv in convs:
        parametrize.remove_parametrizations(conv, "weight", leave_parametrized=True)


def galore_param_groups(model: nn.Module, lr: float, decoder_lr: float, rank: int,
                        update_proj_gap: int = 50, scale: float = 0.25) -> list[dict]:
    """GaLore on the encoder's matrices (rank ``rank``), plain AdamW on the rest."""
    matrices, others = [], []
    for p in model.image_encoder.parameters():
        if p.requires_grad:
            (matrices if p.dim() == 2 and min(p.shape) > rank else others).append(p)
    heads = [p for m in (model.prompt_encoder, model.mask_decoder) for p in m.parameters() if p.requires_grad]
    return [
        {"params": matrices, "lr": lr, "rank": rank, "update_proj_gap": update_proj_gap, "scale": scale,
         "projection_type": "std"},
        {"params": others, "lr": lr},
        {"params": heads, "lr": decoder_lr},
    ]


def optimizer_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes held in the optimiser's state tensors (moments and projection matrices)."""
    total = 0
    for state in optimizer.state.values():
        for value in state.values():
            if torch.is_tensor(value):
                total += value.element_size() * value.nelement()
            elif hasattr(value, "ortho_matrix") and torch.is_tensor(value.ortho_matrix):
                total += value.ortho_matrix.element_size() * value.ortho_matrix.nelement()
    return total

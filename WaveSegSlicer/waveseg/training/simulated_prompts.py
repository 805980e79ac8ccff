"""One prompt-simulated training step, as an ``nn.Module`` so PyTorch DDP can wrap it.

For each sample the prompt is a jittered box (with probability ``box_prob``) or one click at
the object's centre, followed by 0..``max_rounds`` rounds of RITM clicks placed in the current
error region with the previous logits fed back as the mask prompt (no gradient through those
rounds, as in SAM's training; with ``pin_clicks`` the clicks are pinned into those logits, as
``Segmenter`` does at inference); the loss is Dice + BCE of the last round's mask plus the MSE of
the predicted IoU. Coordinates are in the 256 x 256 model frame.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from waveseg.click_pinning import pin_clicks
from waveseg.prompt_simulation import jittered_box, next_click
from waveseg.training.losses import segmentation_loss


class SimulatedPromptStep(nn.Module):
    def __init__(self, model: nn.Module, box_prob: float = 0.5, max_rounds: int = 4, pin_clicks: bool = False) -> None:
        super().__init__()
        self.model = model
        self.box_prob = box_prob
        self.max_rounds = max_rounds
        self.pin_clicks = pin_clicks

    def forward(self, images: torch.Tensor, masks: torch.Tensor, seed: int) -> torch.Tensor:
        """images (B, 3, 256, 256) in [0, 1]; masks (B, 256, 256) {0, 1}; returns the mean loss."""
        rng = np.random.default_rng(seed)
        embeddings = self.model.encode(images)
        losses = []
        for b in range(images.shape[0]):
            truth = masks[b].cpu().numpy().astype(bool)
            box = torch.from_numpy(jittered_box(truth, rng))[None].to(images.device) if rng.random() < self.box_prob else None
            clicks = [] if box is not None else [next_click(None, truth)]
            logits = None
            with torch.no_grad():
                for _ in range(int(rng.integers(0, self.max_rounds + 1))):
                    logits, _ = self.model.decode(embeddings[b : b + 1].detach(), self._points(clicks, images.device), box,
                                                  self._mask_prompt(logits, clicks))
                    click = next_click((logits[0, 0] > 0).cpu().numpy(), truth)
                    if click is None:
                        break
                    clicks.append(click)
            logits, iou = self.model.decode(embeddings[b : b + 1], self._points(clicks, images.device), box,
                                            self._mask_prompt(logits, clicks))
            target = masks[b : b + 1, None].float()
            with torch.no_grad():
                pred = logits > 0
                actual_iou = (pred & (target > 0)).sum() / ((pred | (target > 0)).sum().clamp_min(1))
            losses.append(segmentation_loss(logits, target) + F.mse_loss(iou[:, 0], actual_iou[None].float()))
        return torch.stack(losses).mean()

    def _mask_prompt(self, logits: torch.Tensor | None, clicks: list) -> torch.Tensor | None:
        """The fed-back (1, 1, 256, 256) logits, with the clicks pinned when ``pin_clicks`` is set."""
        if logits is None or not clicks or not self.pin_clicks:
            return logits
        return pin_clicks(logits, [c[:2] for c in clicks], [c[2] for c in clicks])

    @staticmethod
    def _points(clicks: list, device: torch.device) -> tuple[torch.Tensor, torch.Tensor] | None:
        if not clicks:
            return None
        xy = torch.tensor([[c[0], c[1]] for c in clicks], dtype=torch.float32, device=device)[None]
        return xy, torch.tensor([[c[2] for c in clicks]], dtype=torch.int64, device=device)

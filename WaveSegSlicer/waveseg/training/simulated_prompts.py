"""One prompt-simulated training step, as an ``nn.Module`` so PyTorch DDP can wrap it.

For each sample the prompt is a jittered box (with probability ``box_prob``) or one click at
the object's centre, followed by 0..``max_rounds`` rounds of RITM clicks placed in the current
error region with the previous logits fed back as the mask prompt (no gradient through those
rounds, as in SAM's training; with ``pin_clicks`` the clicks are pinned into those logits, as
``Segmenter`` does at inference); the loss is Dice + BCE (the BCE optionally weighted to the true
edge) of the last round's mask plus the MSE of the predicted IoU. Coordinates are in the 256 x 256
model frame. Strokes (issue #26, ``waveseg.prompting.stroke_simulation``): with ``lasso_prob`` a sample starts
from a noisy-outline lasso instead (its box and its inside as the mask prompt, as ``Segmenter`` gives
a first lasso); with ``stroke_prob`` a sample that starts from a click starts from a scribble
inside the target instead, and a correction round is a scribble in the largest error region (its
point tokens) instead of one click. Both 0 by default: earlier configs draw the same prompts.

The batch is decoded together, round by round: at round r every sample still clicking has r + 2
prompt tokens (a box's two corners and r clicks, or r + 1 clicks and SAM's padding point), so
one decoder call serves them all, instead of one call per sample.
"""

from __future__ import annotations

from itertools import groupby

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from waveseg.prompting.click_pinning import pin_clicks
from waveseg.prompting.simulation import jittered_box, next_click
from waveseg.prompting.stroke_simulation import lasso_start, scribble_as_clicks
from waveseg.training.losses import segmentation_loss


class SimulatedPromptStep(nn.Module):
    def __init__(self, model: nn.Module, box_prob: float = 0.5, max_rounds: int = 4, pin_clicks: bool = False,
                 boundary_weight: float = 0.0, stroke_prob: float = 0.0, lasso_prob: float = 0.0) -> None:
        super().__init__()
        self.stroke_prob, self.lasso_prob = stroke_prob, lasso_prob
        self.boundary_weight = boundary_weight
        self.model = model
        self.box_prob = box_prob
        self.max_rounds = max_rounds
        self.pin_clicks = pin_clicks

    def forward(self, images: torch.Tensor | None, masks: torch.Tensor, seed: int,
                embeddings: torch.Tensor | None = None) -> torch.Tensor:
        """images (B, 3, 256, 256) in [0, 1]; masks (B, 256, 256) {0, 1}; returns the mean loss.

        ``embeddings`` (B, 256, 64, 64), when given, replace encoding ``images`` (which may then be
        None): a frozen encoder's embeddings computed once, as decoder-only adaptation does.
        """
        rng = np.random.default_rng(seed)
        size = masks.shape[0]
        if embeddings is None:
            embeddings = self.model.encode(images)
        truths = masks.cpu().numpy().astype(bool)
        boxes = [jittered_box(t, rng) if rng.random() < self.box_prob else None for t in truths]
        clicks = [[] if box is not None else [next_click(None, t)] for box, t in zip(boxes, truths)]
        rounds = rng.integers(0, self.max_rounds + 1, size)
        logits: list[torch.Tensor | None] = [None] * size  # (1, 1, 256, 256) on the CPU
        if self.stroke_prob:  # a first scribble (the protocol's weakest step), as ScribblePrompt trains it
            for b in range(size):
                if boxes[b] is None and rng.random() < self.stroke_prob:
                    clicks[b] = scribble_as_clicks(None, truths[b], rng) or clicks[b]
        if self.lasso_prob:  # (no draw at all when off, so earlier configs keep their random stream)
            for b in range(size):
                if rng.random() < self.lasso_prob:
                    box, inside = lasso_start(truths[b], rng)
                    boxes[b], clicks[b], logits[b] = box, [], torch.from_numpy(inside)[None, None]

        def prompt_shape(b: int) -> tuple[int, bool]:  # (prompt tokens - 1, fed-back mask or not)
            return len(clicks[b]) + (boxes[b] is not None), logits[b] is not None

        with torch.no_grad():
            for r in range(int(rounds.max(initial=0))):
                active = [b for b in range(size) if rounds[b] > r]
                if not active:
                    break
                # one decode per prompt shape: without strokes all active samples share one shape
                # (r + 2 tokens); a scribble adds several tokens, a lasso start a mask prompt
                for _, same in groupby(sorted(active, key=prompt_shape), key=prompt_shape):
                    self._round(embeddings, list(same), boxes, clicks, logits, truths, rounds, r, rng)
        # the last decode, with gradient, groups samples that have the same prompt shape
        total = embeddings.new_zeros(())

        for _, group in groupby(sorted(range(size), key=prompt_shape), key=prompt_shape):
            group = list(group)
            out, iou = self._decode(embeddings, group, boxes, clicks, logits)
            target = masks[group, None].float()
            with torch.no_grad():
                pred, truth = out > 0, target > 0
                actual_iou = (pred & truth).sum((1, 2, 3)) / (pred | truth).sum((1, 2, 3)).clamp_min(1)
            # per-sample Dice and the pixel-mean BCE average over equal-sized samples, so a group's
            # mean loss times its size sums to the batch mean
            loss = segmentation_loss(out, target, self.boundary_weight) + F.mse_loss(iou[:, 0], actual_iou.float())
            total = total + len(group) * loss
        return total / size

    def _round(self, embeddings, group, boxes, clicks, logits, truths, rounds, r, rng) -> None:
        """One correction round (no gradient) for samples ``group`` of one prompt shape: decode, then
        each gets its next click (or scribble) from its error, or stops when perfect."""
        out, _ = self._decode(embeddings.detach(), group, boxes, clicks, logits)
        out = out.float().cpu()
        for row, b in enumerate(group):
            logits[b] = out[row : row + 1]
            if self.stroke_prob and rng.random() < self.stroke_prob:
                scribble = scribble_as_clicks(out[row, 0].numpy() > 0, truths[b], rng)
                if scribble is None:
                    rounds[b] = r
                else:
                    clicks[b].extend(scribble)
                continue
            click = next_click(out[row, 0].numpy() > 0, truths[b])
            if click is None:
                rounds[b] = r  # perfect: this sample stops clicking
            else:
                clicks[b].append(click)

    def _decode(self, embeddings: torch.Tensor, group: list[int], boxes: list, clicks: list, logits: list):
        """Decode samples ``group`` (all with the same number of prompt tokens) in one call."""
        device = embeddings.device
        coords, labels = [], []
        for b in group:
            xy = [c[:2] for c in clicks[b]]
            if boxes[b] is not None:
                coords.append(xy + [tuple(boxes[b][:2]), tuple(boxes[b][2:])])
                labels.append([c[2] for c in clicks[b]] + [2, 3])
            else:
                coords.append(xy + [(0.0, 0.0)])
                labels.append([c[2] for c in clicks[b]] + [-1])
        mask_input = None
        if logits[group[0]] is not None:
            mask_input = torch.cat([self._mask_prompt(logits[b], clicks[b]) for b in group]).to(device)
        return self.model.decode_tokens(embeddings[group], torch.tensor(coords, dtype=torch.float32, device=device),
                                        torch.tensor(labels, dtype=torch.int64, device=device), mask_input)

    def _mask_prompt(self, logits: torch.Tensor | None, clicks: list) -> torch.Tensor | None:
        """The fed-back (1, 1, 256, 256) logits, with the clicks pinned when ``pin_clicks`` is set."""
        if logits is None or not clicks or not self.pin_clicks:
            return logits
        return pin_clicks(logits, [c[:2] for c in clicks], [c[2] for c in clicks])

"""Few-shot adaptation of a ``Segmenter`` to a structure from k annotated 2D slices.

    result = adapt(seg, images, masks, structure="liver", time_budget_s=60)
    result.val_dice_before, result.val_dice_after
    save_profile("site-liver", result.delta, result.metadata)     # then from_pretrained(..., profile=...)

Methods: "galore" (GaLore on the encoder's weight matrices, conv kernels as matrices, plain AdamW
on prompt encoder and decoder, as MedSAGa does), "adamw" (full fine-tuning), "decoder" (decoder
only), "lora" (the ``peft`` package's LoRA adapters on the encoder's convolutions and linear
layers, merged back into the weights at the end, plus AdamW on the decoder; for comparison).
Prompts are simulated from the masks (jittered boxes and RITM clicks, see
``waveseg.training.simulated_prompts``) with intensity augmentation and left-right flips. One
slice (when k >= 2) is held back for early stopping. The work happens on a copy of the model: the
segmenter is changed only when ``apply=True`` and the run finished, so a cancelled or failed run
leaves it exactly as it was.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch

from waveseg.adaptation import METHODS
from waveseg.errors import InvalidImageError, InvalidPromptError, WaveSegError
from waveseg.metrics import dice
from waveseg.predictor import Segmenter, frame_mask, to_model_input
from waveseg.preprocess import ResizeGeometry, normalize_intensity

LORA_RANK = 8
MAX_SLICES = 64


class AdaptationCancelled(WaveSegError):
    """Raised when ``cancel()`` returned True; the segmenter is unchanged."""


@dataclass
class AdaptationResult:
    delta: dict[str, torch.Tensor]
    val_dice_before: float
    val_dice_after: float
    steps: int
    seconds: float
    optimizer_state_bytes: int
    metadata: dict[str, Any] = field(default_factory=dict)


def _prepare(images: Sequence[np.ndarray], masks: Sequence[np.ndarray], window) -> tuple[torch.Tensor, torch.Tensor]:
    if len(images) != len(masks):
        raise InvalidPromptError(f"got {len(images)} images but {len(masks)} masks; give one mask per image")
    if not 1 <= len(images) <= MAX_SLICES:
        raise InvalidPromptError(f"adapt from 1 to {MAX_SLICES} annotated slices; got {len(images)}")
    xs, ys = [], []
    for n, (image, mask) in enumerate(zip(images, masks)):
        image, mask = np.asarray(image), np.asarray(mask)
        if image.shape[:2] != mask.shape:
            raise InvalidPromptError(f"slice {n}: mask shape {mask.shape} differs from image shape {image.shape[:2]}")
        if np.issubdtype(image.dtype, np.floating) and not np.isfinite(image).all():
            raise InvalidImageError(f"slice {n} has NaN or Inf pixels; clean the image before adapting to it")
        m = mask.astype(bool)
        if not m.any() or m.all():
            raise InvalidPromptError(f"slice {n}: the mask is {'empty' if not m.any() else 'full'}; annotate the structure on it")
        normalized = normalize_intensity(image, window)
        geometry = ResizeGeometry.for_shape(*normalized.shape[:2])
        xs.append(to_model_input(normalized, geometry)[0])
        ys.append(frame_mask(m, geometry))
    return torch.stack(xs), torch.stack(ys).to(torch.uint8)


def _with_lora(encoder: torch.nn.Module) -> torch.nn.Module:
    """Wrap every trainable Conv2d / Linear of the encoder with peft LoRA adapters (rank ``LORA_RANK``)."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise WaveSegError("method 'lora' needs the peft package: pip install peft") from None
    targets = [name for name, module in encoder.named_modules()
               if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)) and module.weight.requires_grad]
    return get_peft_model(encoder, LoraConfig(r=LORA_RANK, lora_alpha=2 * LORA_RANK, target_modules=targets))


def _train_mode(model: torch.nn.Module) -> None:
    """Training mode, but BatchNorm keeps its statistics: a few slices would overwrite them."""
    model.train()
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()


@torch.no_grad()
def _box_dice(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    from waveseg.prompt_simulation import tight_box

    scores = []
    for image, mask in zip(x, y):
        truth = mask.numpy().astype(bool)
        logits, _ = model.decode(model.encode(image[None]), boxes=torch.from_numpy(tight_box(truth))[None])
        scores.append(dice(logits[0, 0].numpy() > 0, truth))
    return float(np.mean(scores))


def adapt(
    segmenter: Segmenter,
    images: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    structure: str = "structure",
    method: str = "galore",
    window: tuple[float, float] | None = None,
    steps: int = 120,
    time_budget_s: float = 60.0,
    lr: float = 3e-4,
    decoder_lr: float = 1e-4,
    rank: int = 16,
    batch: int = 2,
    seed: int = 0,
    apply: bool = False,
    progress: Callable[[dict], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> AdaptationResult:
    """Adapt ``segmenter``'s model to ``masks`` on ``images`` ((H, W) slices, any dtype).

    Stops after ``steps`` steps or ``time_budget_s`` seconds, whichever is first (``math.inf``:
    the steps alone; tests use it, so a slow machine cannot cut their runs short); keeps the
    weights with the best validation Dice (box prompt on the held-back slice). ``progress``
    receives one dict per step ({"step", "loss", "val_dice", "seconds"}); ``cancel`` is polled
    every step. Returns the weight delta and measurements; with ``apply=True`` also loads the
    adapted weights into ``segmenter``.
    """
    if method not in METHODS:
        raise WaveSegError(f"method must be one of {METHODS}; got {method!r}")
    from waveseg.training.simulated_prompts import SimulatedPromptStep
    from waveseg.training.data import augment_intensity

    x, y = _prepare(images, masks, window)
    val = slice(len(x) - 1, len(x)) if len(x) >= 2 else slice(0, 1)  # k = 1: validate on the only slice
    train = slice(0, len(x) - 1) if len(x) >= 2 else slice(0, 1)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    base = segmenter.model
    model = copy.deepcopy(base)
    convs = []
    if method == "decoder":
        for p in model.image_encoder.parameters():
            p.requires_grad_(False)
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=decoder_lr)
    elif method == "adamw":
        optimizer = torch.optim.AdamW([{"params": model.image_encoder.parameters(), "lr": lr},
                                       {"params": list(model.prompt_encoder.parameters()) + list(model.mask_decoder.parameters()),
                                        "lr": decoder_lr}])
    elif method == "lora":
        model.image_encoder = _with_lora(model.image_encoder)
        optimizer = torch.optim.AdamW([{"params": [p for p in model.image_encoder.parameters() if p.requires_grad], "lr": lr},
                                       {"params": list(model.prompt_encoder.parameters()) + list(model.mask_decoder.parameters()),
                                        "lr": decoder_lr}])
    else:
        from pytorch_optimizer import GaLore

        from waveseg.adaptation.galore_groups import galore_param_groups, kernels_as_matrices

        convs = kernels_as_matrices(model.image_encoder)
        optimizer = GaLore(galore_param_groups(model, lr, decoder_lr, rank))
    step_module = SimulatedPromptStep(model, box_prob=0.5, max_rounds=2)
    before = _box_dice(model.eval(), x[val], y[val])
    _train_mode(model)
    best_dice, best_state = before, copy.deepcopy(model.state_dict())
    started = time.perf_counter()
    step = 0
    for step in range(1, steps + 1):
        if cancel is not None and cancel():
            raise AdaptationCancelled("adaptation cancelled; the model is unchanged")
        pick = rng.integers(train.start, train.stop, size=batch)
        xb = torch.stack([augment_intensity(x[i], rng) for i in pick])
        yb = y[pick].clone()
        flip = torch.from_numpy(rng.random(batch) < 0.5)
        xb[flip], yb[flip] = xb[flip].flip(-1), yb[flip].flip(-1)
        loss = step_module(xb, yb, seed=seed * 7919 + step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        record = {"step": step, "loss": round(loss.item(), 5), "seconds": round(time.perf_counter() - started, 2)}
        out_of_time = time.perf_counter() - started > time_budget_s
        if step % 10 == 0 or step == steps or out_of_time:
            score = _box_dice(model.eval(), x[val], y[val])
            _train_mode(model)
            record["val_dice"] = round(score, 4)
            if score > best_dice:
                best_dice, best_state = score, copy.deepcopy(model.state_dict())
        if progress is not None:
            progress(record)
        if out_of_time:
            break
    from waveseg.adaptation.galore_groups import optimizer_state_bytes, restore_kernels

    state_bytes = optimizer_state_bytes(optimizer)
    model.load_state_dict(best_state)
    restore_kernels(convs)
    if method == "lora":
        model.image_encoder = model.image_encoder.merge_and_unload()  # plain modules again: same keys as the base
    model.eval()
    from waveseg.adaptation.profiles import model_fingerprint, profile_delta

    delta = profile_delta(base.state_dict(), model.state_dict())
    metadata = {"base_model": segmenter.card.name, "base_fingerprint": model_fingerprint(base), "structure": structure,
                "slices": len(x), "method": method, "val_dice_before": round(before, 4), "val_dice_after": round(best_dice, 4)}
    if apply:
        base.load_state_dict(model.state_dict())
    return AdaptationResult(delta, before, best_dice, step, time.perf_counter() - started, state_bytes, metadata)

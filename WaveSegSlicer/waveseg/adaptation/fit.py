"""One adaptation training run: optimiser per method, steps until a deadline, scored checkpoints.

Methods: "decoder" (prompt encoder, mask decoder and the encoder's neck; the frozen encoder
stages' maps of the training views are computed once, so a step costs the neck and one decoder
pass per prompt round), "galore"
(GaLore on the encoder's weight matrices, conv kernels as matrices, plain AdamW on prompt encoder
and decoder, as MedSAGa does), "adamw" (full fine-tuning) and "lora" (the ``peft`` package's LoRA
adapters on the encoder's convolutions and linear layers, merged back at the end). ``l2`` adds
L2-SP (Li et al., ICML 2018), a pull of every trained weight toward its base value.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from waveseg.errors import WaveSegError

LORA_RANK = 8


class AdaptationCancelled(WaveSegError):
    """Raised when ``cancel()`` returned True; the segmenter is unchanged."""


@dataclass(frozen=True)
class FitSettings:
    method: str = "decoder"
    lr: float = 3e-4          # encoder (galore, adamw, lora)
    decoder_lr: float = 1e-4  # prompt encoder and mask decoder
    rank: int = 16            # GaLore projection rank
    batch: int = 2
    l2: float = 0.0           # L2-SP strength: l2 * sum((w - w_base)^2) over trained weights
    eval_every: int = 5
    click_rounds: int = 1     # corrective click rounds simulated per step (each costs a decoder pass)
    train_transformer: bool = True  # False: the decoder's two-way transformer stays as it is
    # method "decoder": also train the encoder's neck (the 1x1 / 3x3 convs that fuse its stages into the
    # embedding; 82k parameters in wave-gms) on the frozen stages' cached maps, where the encoder has one
    train_neck: bool = True

    @classmethod
    def for_method(cls, method: str, **overrides) -> "FitSettings":
        """The measured defaults of ``method``, with ``overrides`` (None values ignored).

        "decoder": the decoder's two-way transformer frozen, box or centre-click prompts without
        corrective rounds, lr 1e-3. On the AAL hippocampus (k = 3, 60 steps, box Dice on the other
        slices, 2026-12-02) that gained +8 points by step 10 and +12 by step 30 at 0.67x the cost of
        a step with one corrective round and the whole decoder trained at lr 3e-4 (1.49 against
        2.23 s per step on a busy machine; +1 by step 10, +7 by step 30): in a 30 s budget shared by
        cross-validation runs, steps are few. The neck trains too (``train_neck``, same lr): on
        scripts/bench_adapt.py's weak structures at k = 3 (1 thread, 60 s, 2026-12-07, its table's
        order) +11.0 / +10.6 / +11.6 / +9.9 points against +9.4 / +10.7 / +9.2 / +8.5 with it frozen,
        the same day; a budget four times longer with it frozen gave +10.0 / +10.7 / +9.2 / +8.5, so it is what the
        neck can learn, not more steps. With one annotated slice ``adapt`` keeps the neck frozen.
        """
        base = cls(method=method, decoder_lr=1e-3, click_rounds=0, train_transformer=False) if method == "decoder" \
            else cls(method=method)
        return dataclasses.replace(base, **{k: v for k, v in overrides.items() if v is not None})


@dataclass
class FitRecord:
    """What a run did: steps taken, seconds, and the scores (one per validation sample) at each checkpoint."""

    steps: int = 0
    seconds: float = 0.0
    checkpoints: dict[int, list[float]] = field(default_factory=dict)
    optimizer_state_bytes: int = 0
    step_seconds: float = 0.0  # running estimate of one step's and one checkpoint's cost, for the next run
    eval_seconds: float = 0.0


def _with_lora(encoder: torch.nn.Module) -> torch.nn.Module:
    """Wrap every trainable Conv2d / Linear of the encoder with peft LoRA adapters (rank ``LORA_RANK``)."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise WaveSegError("method 'lora' needs the peft package: pip install peft") from None
    targets = [name for name, module in encoder.named_modules()
               if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)) and module.weight.requires_grad]
    return get_peft_model(encoder, LoraConfig(r=LORA_RANK, lora_alpha=2 * LORA_RANK, target_modules=targets))


Frozen = torch.Tensor | list[torch.Tensor]  # (V, 256, 64, 64) embeddings, or the stages' maps the neck fuses


def trains_neck(model: torch.nn.Module, settings: FitSettings) -> bool:
    """Whether the decoder method also trains the neck: asked for, and the encoder has a neck over ``features``."""
    encoder = model.image_encoder
    return settings.method == "decoder" and settings.train_neck and hasattr(encoder, "features") and hasattr(encoder, "neck")


@torch.no_grad()
def frozen_inputs(model: torch.nn.Module, x: torch.Tensor, neck: bool) -> Frozen:
    """What the frozen part of the encoder gives for (N, 3, 256, 256) ``x``: the embeddings, or with
    ``neck`` the stages' maps (a list, each (N, C, h, w)) that the trained neck turns into them."""
    return model.image_encoder.features(x) if neck else model.encode(x)


def take(frozen: Frozen, index) -> Frozen:
    """Rows ``index`` of cached frozen inputs (a tensor or each map of a list)."""
    return [f[index] for f in frozen] if isinstance(frozen, list) else frozen[index]


def embedding_of(model: torch.nn.Module, frozen: Frozen) -> torch.Tensor:
    """(N, 256, 64, 64) embeddings from cached frozen inputs, through ``model``'s (trained) neck if needed."""
    return model.image_encoder.neck(frozen) if isinstance(frozen, list) else frozen


def train_mode(model: torch.nn.Module) -> None:
    """Training mode, but BatchNorm keeps its statistics: a few slices would overwrite them."""
    model.train()
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()


class _Optimisation:
    """The optimiser for one method on ``model`` (changed in place: frozen parts, GaLore's
    kernel parametrisation, LoRA adapters); ``finish()`` turns the model back into plain modules."""

    def __init__(self, model: torch.nn.Module, settings: FitSettings) -> None:
        self.model, self.method, self.convs = model, settings.method, []
        heads = lambda: list(model.prompt_encoder.parameters()) + list(model.mask_decoder.parameters())
        if settings.method == "decoder":
            for p in model.image_encoder.parameters():
                p.requires_grad_(False)
            if not settings.train_transformer:
                for p in model.mask_decoder.transformer.parameters():
                    p.requires_grad_(False)
            trained = [p for p in heads() if p.requires_grad]
            if trains_neck(model, settings):
                trained += list(model.image_encoder.neck.parameters())
                for p in model.image_encoder.neck.parameters():
                    p.requires_grad_(True)
            self.optimizer = torch.optim.AdamW(trained, lr=settings.decoder_lr)
        elif settings.method == "adamw":
            self.optimizer = torch.optim.AdamW([{"params": model.image_encoder.parameters(), "lr": settings.lr},
                                                {"params": heads(), "lr": settings.decoder_lr}])
        elif settings.method == "lora":
            model.image_encoder = _with_lora(model.image_encoder)
            self.optimizer = torch.optim.AdamW([
                {"params": [p for p in model.image_encoder.parameters() if p.requires_grad], "lr": settings.lr},
                {"params": heads(), "lr": settings.decoder_lr}])
        elif settings.method == "galore":
            from pytorch_optimizer import GaLore

            from waveseg.adaptation.galore_groups import galore_param_groups, kernels_as_matrices

            self.convs = kernels_as_matrices(model.image_encoder)
            self.optimizer = GaLore(galore_param_groups(model, settings.lr, settings.decoder_lr, settings.rank))
        else:
            raise WaveSegError(f"unknown adaptation method {settings.method!r}")
        # L2-SP anchors: the trained weights' values before the first step
        self.anchors = [(p, p.detach().clone()) for group in self.optimizer.param_groups for p in group["params"]] \
            if settings.l2 > 0 else []

    def finish(self) -> None:
        from waveseg.adaptation.galore_groups import restore_kernels

        restore_kernels(self.convs)
        if self.method == "lora":
            self.model.image_encoder = self.model.image_encoder.merge_and_unload()  # plain modules: the base's keys
        for p in self.model.parameters():
            p.requires_grad_(True)
        self.model.eval()


def fit(model: torch.nn.Module, views: torch.Tensor, masks: torch.Tensor, settings: FitSettings, max_steps: int,
        deadline: float, embeddings: torch.Tensor | None = None, seed: int = 0,
        evaluate: Callable[[torch.nn.Module], list[float]] | None = None,
        keep_best: bool = False, cancel: Callable[[], bool] | None = None,
        progress: Callable[[dict], None] | None = None, clock: Callable[[], float] = time.perf_counter,
        estimates: tuple[float, float] = (0.0, 0.0), snapshots: dict[int, dict[str, torch.Tensor]] | None = None) -> FitRecord:
    """Train ``model`` in place on ``views`` (V, 3, 256, 256) with ``masks`` (V, 256, 256).

    Stops after ``max_steps`` or when the next step would end after ``deadline`` (a
    ``clock()`` value, by default ``time.perf_counter()``; ``math.inf`` for none). ``embeddings`` (V, 256, 64, 64) are the
    frozen encoder's (method "decoder"), or the stages' maps its trained neck fuses (``frozen_inputs``). ``evaluate(model)`` returns one score per validation
    sample and runs before the first step, every ``settings.eval_every`` steps and at the end;
    with ``keep_best`` the model ends with the weights of the checkpoint whose mean score was
    highest (step 0, the unchanged model, included). ``estimates`` are a previous run's
    (step_seconds, eval_seconds), so that even the first step respects the deadline. ``snapshots``,
    if given (method "decoder" only), receives at every checkpoint a copy of the trained tensors
    {name: tensor}, keyed by step. The model is left in eval mode, as plain modules (LoRA merged,
    kernels restored).
    """
    if snapshots is not None and settings.method != "decoder":
        raise WaveSegError("snapshots of the trained tensors are kept for method 'decoder' only")
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    from waveseg.training.simulated_prompts import SimulatedPromptStep

    optimisation = _Optimisation(model, settings)
    step_module = SimulatedPromptStep(model, box_prob=0.5, max_rounds=settings.click_rounds)
    record, best = FitRecord(), (-float("inf"), None)
    started = clock()
    step_seconds, eval_seconds = estimates

    def checkpoint(step: int) -> None:
        nonlocal eval_seconds, best
        if evaluate is not None:
            t = clock()
            model.eval()
            scores = record.checkpoints[step] = [float(s) for s in evaluate(model)]
            train_mode(model)
            if snapshots is not None:
                snapshots[step] = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}
            if keep_best and float(np.mean(scores)) > best[0]:
                best = (float(np.mean(scores)), {k: v.detach().clone() for k, v in model.state_dict().items()})
            eval_seconds = max(eval_seconds, clock() - t)

    train_mode(model)
    checkpoint(0)
    for step in range(1, max_steps + 1):
        if cancel is not None and cancel():
            optimisation.finish()
            raise AdaptationCancelled("adaptation cancelled; the model is unchanged")
        # every step is followed by a checkpoint, at the next scoring step or when the run stops
        # after it: keep room for one (without it a run ended up to 8 % past its budget, bench_adapt.py)
        if clock() + 1.2 * step_seconds + (eval_seconds if evaluate is not None else 0.0) > deadline:
            break
        scoring = step % settings.eval_every == 0 or step == max_steps
        t = clock()
        pick = torch.from_numpy(rng.integers(0, len(views), size=settings.batch))
        loss = step_module(None if embeddings is not None else views[pick], masks[pick], seed=seed * 7919 + step,
                           embeddings=None if embeddings is None else embedding_of(model, take(embeddings, pick)))
        for p, anchor in optimisation.anchors:
            loss = loss + settings.l2 * (p - anchor).pow(2).sum()
        optimisation.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimisation.optimizer.step()
        took = clock() - t
        # a moving average, not the maximum: the first step of a process costs several times a
        # later one (allocations, thread start-up) and would otherwise starve the runs after it
        step_seconds = 0.5 * (step_seconds + took) if step_seconds else took
        record.steps = step
        if scoring:
            checkpoint(step)
        if progress is not None:
            progress({"step": step, "loss": round(loss.item(), 5), "seconds": round(clock() - started, 2)})
    if record.steps not in record.checkpoints:
        checkpoint(record.steps)
    if keep_best and best[1] is not None:
        model.load_state_dict(best[1])
    from waveseg.adaptation.galore_groups import optimizer_state_bytes

    record.optimizer_state_bytes = optimizer_state_bytes(optimisation.optimizer)
    optimisation.finish()
    record.seconds = clock() - started
    record.step_seconds, record.eval_seconds = step_seconds, eval_seconds
    return record

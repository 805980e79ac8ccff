"""Training loops (distillation, then prompt-simulated fine-tuning) with resumable checkpoints.

Runs as one process or under ``torchrun`` (PyTorch DDP on the gloo backend on CPU, NCCL on
GPUs): each rank sees its own shard of the data through a ``DistributedSampler`` and DDP
averages the gradients. Checkpoints (model, optimiser, stage, step) are written atomically
every ``checkpoint_every`` steps and loaded with ``torch.load(weights_only=True)``; an
interrupted run continues from the last one.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler

from waveseg.atomic import atomic_path
from waveseg.training.losses import distillation_loss
from waveseg.training.simulated_prompts import SimulatedPromptStep


@dataclass
class StageConfig:
    steps: int
    batch: int
    lr: float
    weight_decay: float = 1e-4
    decoder_lr: float = 0.0  # 0 freezes the prompt encoder and mask decoder
    box_prob: float = 0.5
    max_rounds: int = 4
    spatial_augment: float = 0.0  # fine-tuning: probability of each random flip / affine of image and mask
    pin_clicks: bool = False  # fine-tuning: pin clicks into the fed-back logits, as inference does
    roi_zoom: float = 0.0  # fine-tuning: probability of showing a small target as ROI zoom shows it
    boundary_weight: float = 0.0  # fine-tuning: extra cross-entropy weight near the true edge (losses.segmentation_loss)
    stroke_prob: float = 0.0  # fine-tuning: a click prompt or correction is a scribble instead (SimulatedPromptStep)
    lasso_prob: float = 0.0  # fine-tuning: a sample starts from a noisy-outline lasso
    cosine_weight: float = 1.0
    time_budget_s: float = 0.0  # > 0: every 20 steps, cut ``steps`` so that the stage ends within this time


@dataclass
class TrainConfig:
    backbone: str
    seed: int = 0
    checkpoint_every: int = 50
    distill: StageConfig | None = None
    finetune: StageConfig | None = None
    notes: str = ""

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> "TrainConfig":
        raw = json.loads(Path(path).read_text())
        for stage in ("distill", "finetune"):
            if raw.get(stage):
                raw[stage] = StageConfig(**raw[stage])
        return cls(**raw)


@dataclass
class Distributed:
    rank: int = 0
    world: int = 1
    enabled: bool = False

    @classmethod
    def from_env(cls) -> "Distributed":
        """Join the process group when launched by torchrun (WORLD_SIZE > 1)."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world == 1:
            return cls()
        if not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        return cls(dist.get_rank(), world, True)

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _save_checkpoint(path: Path, stage: str, step: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    with atomic_path(path) as tmp:
        torch.save({"stage": stage, "step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict()}, tmp)


def load_checkpoint(path: Path) -> dict[str, Any] | None:
    return torch.load(path, map_location="cpu", weights_only=True) if path.exists() else None


def _loader(dataset: Dataset, batch: int, seed: int, ddp: Distributed, steps: int) -> DataLoader:
    if ddp.enabled:
        sampler = DistributedSampler(dataset, num_replicas=ddp.world, rank=ddp.rank, seed=seed, drop_last=True)
    else:
        sampler = RandomSampler(dataset, replacement=True, num_samples=steps * batch,
                                generator=torch.Generator().manual_seed(seed))
    return DataLoader(dataset, batch_size=batch, sampler=sampler, drop_last=True, num_workers=0)


def _batches(loader: DataLoader):
    epoch = 0
    while True:
        if isinstance(loader.sampler, DistributedSampler):
            loader.sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


def run_stage(
    stage: str,
    model: torch.nn.Module,
    dataset: Dataset,
    config: StageConfig,
    train_config: TrainConfig,
    out_dir: Path,
    ddp: Distributed,
    start_step: int = 0,
    optimizer_state: dict | None = None,
    log: Callable[[dict], None] = lambda record: None,
    device: str = "cpu",
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Train ``model`` (already on ``device``) for ``config.steps`` steps of ``stage`` ("distill" or "finetune").

    ``clock`` (seconds) measures the time budget and the logged seconds. A test passes a fake one,
    so where the budget cuts the stage does not depend on how fast the machine runs the steps.
    """
    if config.time_budget_s > 0 and ddp.enabled:
        raise ValueError("time_budget_s needs a single process: DDP ranks would cut their step counts differently")
    torch.manual_seed(train_config.seed + ddp.rank)
    encoder_params = list(model.image_encoder.parameters())
    head_params = list(model.prompt_encoder.parameters()) + list(model.mask_decoder.parameters())
    groups = [{"params": encoder_params, "lr": config.lr}]
    if stage == "finetune" and config.decoder_lr > 0:
        groups.append({"params": head_params, "lr": config.decoder_lr})
    for p in head_params:
        p.requires_grad_(stage == "finetune" and config.decoder_lr > 0)
    optimizer = torch.optim.AdamW(groups, weight_decay=config.weight_decay)
    if optimizer_state is not None:
        optimizer.load_state_dict(optimizer_state)
    for group in optimizer.param_groups:  # present after a resume; LambdaLR needs it to start mid-way
        group.setdefault("initial_lr", group["lr"])

    total = config.steps  # may be cut by the time budget; the schedule follows it

    def warmup_cosine(s: int) -> float:
        return min(1.0, (s + 1) / 50) * 0.5 * (1 + math.cos(math.pi * min(s, total) / total))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine, last_epoch=start_step - 1)
    step_module = model.image_encoder if stage == "distill" else SimulatedPromptStep(
        model, config.box_prob, config.max_rounds, config.pin_clicks, config.boundary_weight,
        config.stroke_prob, config.lasso_prob)
    wrapped = DistributedDataParallel(step_module) if ddp.enabled else step_module
    model.train()
    batches = _batches(_loader(dataset, config.batch, train_config.seed, ddp, config.steps))
    checkpoint = out_dir / "checkpoint.pt"
    started = clock()
    step = start_step
    while step < total:
        inputs, targets = (t.to(device, non_blocking=True) for t in next(batches))
        if stage == "distill":
            loss = distillation_loss(wrapped(inputs), targets, config.cosine_weight)
        else:
            loss = wrapped(inputs, targets, seed=train_config.seed * 1_000_003 + step * 101 + ddp.rank)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        step += 1
        if config.time_budget_s > 0 and (step - start_step) % 20 == 0:  # re-estimated: the speed may change
            elapsed = clock() - started
            total = min(config.steps, step + max(1, int((config.time_budget_s - elapsed) * (step - start_step) / elapsed)))
        if ddp.is_main:
            log({"stage": stage, "step": step, "of": total, "loss": round(loss.item(), 5),
                 "lr": optimizer.param_groups[0]["lr"], "seconds": round(clock() - started, 1)})
            if step % train_config.checkpoint_every == 0 or step == total:
                _save_checkpoint(checkpoint, stage, step if step < total else config.steps, model, optimizer)
    model.eval()

"""Few-shot adaptation of a ``Segmenter`` to a structure from k annotated 2D slices, behind a gate.

    result = adapt(seg, images, masks, structure="thalamus", time_budget_s=30)
    result.kept, result.message          # what validation showed, in one sentence with the numbers
    if result.kept:
        save_profile("site-thalamus", result.delta, result.metadata)

The work happens on copies of the model. Validation predicts what the adapted model does on
slices it was not trained on, and the do-no-harm gate (``waveseg.adaptation.gate``) keeps the
adapted weights only when that shows a gain beyond its noise:
  * k >= 2 annotated slices: cross-validation (leave-one-out up to ``folds`` slices, else
    ``folds``-fold). Each fold trains on the other slices from the base weights and scores box
    Dice on its held-out slices at checkpoints; the number of steps (the regularisation strength:
    early stopping toward the base weights) is the checkpoint with the best held-out mean over
    all folds. The final model is the mean of the fold models at that step (method "decoder",
    ``final="auto"``), or trains on all k slices for that many steps (``final="retrain"``).
  * given ``validation_images`` / ``validation_masks`` (for example neighbouring slices the user
    accepted): one run on the k slices, scored on those.
  * k = 1 and nothing else: one run scored on rotated, rescaled views of the slice with their own
    intensity changes (``waveseg.adaptation.views``), which training never sees; a weaker check
    (same anatomy), so the gate asks for a larger gain.
The default method is "decoder" (mask decoder, prompt encoder and, with k >= 2 or given
validation slices, the encoder's neck): on the project's benchmark it gains more than GaLore, and
with the encoder's stages frozen their maps are computed once, which is what makes
cross-validation fit into a 30 s budget (``scripts/bench_adapt.py``).
The whole call, validation included, ends within ``time_budget_s``. With ``apply=True`` and a
kept result the segmenter's weights become the adapted ones; otherwise it is left exactly as it
was, also after a cancel or an error.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch

from waveseg.adaptation import METHODS
from waveseg.adaptation.fit import AdaptationCancelled, FitSettings, Frozen, embedding_of, fit, frozen_inputs, take, trains_neck
from waveseg.adaptation.gate import GateDecision, decide
from waveseg.errors import InvalidImageError, InvalidPromptError, WaveSegError
from waveseg.metrics import dice
from waveseg.predictor import Segmenter, frame_mask, to_model_input
from waveseg.preprocess import ResizeGeometry, normalize_intensity
from waveseg.prompting.simulation import tight_box
from waveseg.prompting.roi import choose_roi, target_extent

__all__ = ["AdaptationCancelled", "AdaptationResult", "adapt"]

MAX_SLICES = 64
FINALS = ("auto", "retrain", "fold_average")  # "auto": fold_average for method "decoder", else retrain
FINISH_RESERVE_S = 0.5  # at most this much of the budget is kept for the final delta and packaging


@dataclass
class AdaptationResult:
    """``delta`` is empty unless ``kept``; ``decision`` says what validation showed."""

    delta: dict[str, torch.Tensor]
    decision: GateDecision
    steps: int
    seconds: float
    optimizer_state_bytes: int
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def kept(self) -> bool:
        return self.decision.kept

    @property
    def message(self) -> str:
        return self.decision.message

    @property
    def val_dice_before(self) -> float:
        return self.decision.dice_before

    @property
    def val_dice_after(self) -> float:
        return self.decision.dice_after


def _prepare(images: Sequence[np.ndarray], masks: Sequence[np.ndarray], window, roi_zoom: str | bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 3, 256, 256) model inputs and (N, 256, 256) masks. With ``roi_zoom`` each slice is first
    cropped as ``Segmenter.predict`` crops around the mask's box (``waveseg.prompting.roi``), so the model is
    adapted and validated on what it is shown when the user prompts (checked by scripts/bench_adapt.py:
    on the pyradiomics lung1 tumour the base model's box Dice is 0.897 zoomed and 0.684 on the whole
    slice, so a gate that scores whole slices judges another task than the user's)."""
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
        roi = choose_roi(target_extent(tight_box(m), None, None), m.shape, roi_zoom)
        if roi is not None:  # the crop is normalised on its own, as predict encodes it
            image, m = image[roi[1]:roi[3], roi[0]:roi[2]], m[roi[1]:roi[3], roi[0]:roi[2]]
        normalized = normalize_intensity(image, window)
        geometry = ResizeGeometry.for_shape(*normalized.shape[:2])
        xs.append(to_model_input(normalized, geometry)[0])
        ys.append(frame_mask(m, geometry))
    return torch.stack(xs), torch.stack(ys).to(torch.uint8)


def _embed(model: torch.nn.Module, x: torch.Tensor, cancel: Callable[[], bool] | None, neck: bool, chunk: int = 8) -> Frozen:
    """(N, 3, 256, 256) -> the frozen part of the encoder's output (``fit.frozen_inputs``), in chunks."""
    out = []
    for i in range(0, len(x), chunk):
        if cancel is not None and cancel():
            raise AdaptationCancelled("adaptation cancelled; the model is unchanged")
        out.append(frozen_inputs(model, x[i : i + chunk], neck))
    return [torch.cat(maps) for maps in zip(*out)] if neck else torch.cat(out)


@torch.no_grad()
def _box_dice(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, embeddings: Frozen | None = None) -> list[float]:
    """Box-prompt Dice of each (3, 256, 256) image in ``x`` against its (256, 256) mask in ``y``."""
    scores = []
    for n, (image, mask) in enumerate(zip(x, y)):
        truth = mask.numpy().astype(bool)
        embedding = model.encode(image[None]) if embeddings is None else embedding_of(model, take(embeddings, slice(n, n + 1)))
        logits, _ = model.decode(embedding, boxes=torch.from_numpy(tight_box(truth))[None])
        scores.append(dice(logits[0, 0].numpy() > 0, truth))
    return scores


def _fold_average(base: torch.nn.Module, states: list[dict[str, torch.Tensor]]) -> torch.nn.Module:
    """A copy of ``base`` whose trained tensors are the mean of the fold models' ``states``.

    Why averaging works here: every fold starts from the same base weights and moves them a few
    steps, so the fold models lie in one basin and their mean is a model in it too ("model soups",
    Wortsman et al., ICML 2022; cross-validation bagging). Each fold saw k - 1 of the k slices, so
    the mean has seen them all. The gate judged the fold models, not their mean; that is the
    limit of this choice (measured against "retrain" by scripts/bench_adapt.py --finals)."""
    model = copy.deepcopy(base)
    named = dict(model.named_parameters())
    with torch.no_grad():
        for name in states[0]:
            named[name].copy_(torch.stack([s[name] for s in states]).mean(dim=0))
    return model


def _best_step(runs: list[dict[int, list[float]]]) -> int:
    """The step, up to where the shortest run got, with the highest mean held-out score (ties: fewer
    steps). A run's score at a step is that of its last checkpoint at or before it: runs cut by the
    budget stop at different steps, and only comparing checkpoints that all runs share threw away
    every trained checkpoint on a busy machine (fold runs of 6, 7 and 8 steps share only step 0)."""
    last = min(max(r) for r in runs)
    steps = sorted({step for r in runs for step in r if step <= last})

    def mean_score(step: int) -> float:
        return float(np.mean([s for r in runs for s in r[max(c for c in r if c <= step)]]))

    return max(steps, key=lambda step: (mean_score(step), -step))


def adapt(
    segmenter: Segmenter,
    images: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    structure: str = "structure",
    method: str = "decoder",
    window: tuple[float, float] | None = None,
    steps: int = 400,
    time_budget_s: float = 30.0,
    lr: float | None = None,
    decoder_lr: float | None = None,
    rank: int | None = None,
    batch: int | None = None,
    l2: float | None = None,
    folds: int = 3,
    final: str = "auto",
    validation_images: Sequence[np.ndarray] | None = None,
    validation_masks: Sequence[np.ndarray] | None = None,
    seed: int = 0,
    apply: bool = False,
    progress: Callable[[dict], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> AdaptationResult:
    """Adapt ``segmenter``'s model to ``masks`` on ``images`` ((H, W) slices, any dtype), gated.

    ``lr`` .. ``l2`` left None take the method's measured defaults (``FitSettings.for_method``).
    ``steps`` bounds each training run; ``time_budget_s`` bounds the whole call, validation
    included (``math.inf``: the steps alone; tests use it so a slow machine cannot cut their runs
    short). ``progress`` receives dicts {"phase", "step", "loss", "seconds", "fraction"} (fraction
    of the budget used, or of the runs done without a budget); ``cancel`` is polled every step; ``clock`` measures the budget (seconds).
    ``final`` (k >= 2, cross-validation): "retrain" trains the final model on all k slices for the
    chosen number of steps; "fold_average" (method "decoder" only) skips that run and averages the
    fold models' trained tensors at the chosen step, so each fold gets a third of the budget
    instead of a quarter (k = 3); see ``_fold_average``. "auto" (default): fold_average for the
    decoder method, which on scripts/bench_adapt.py gained at least as much as retraining on every
    weak structure at k = 3, and more in total at k = 5 (reports/bench_adapt_finals.md).
    ``structure`` names what the profile is for; it becomes the profile's scope
    (``waveseg.adaptation.scope``). Returns the gate's decision and, when kept, the weight delta;
    with ``apply=True`` and a kept result also loads the adapted weights into ``segmenter``.
    """
    if method not in METHODS:
        raise WaveSegError(f"method must be one of {METHODS}; got {method!r}")
    if final not in FINALS:
        raise WaveSegError(f"final must be one of {FINALS}; got {final!r}")
    if final == "fold_average" and method != "decoder":
        raise WaveSegError("final='fold_average' averages decoder tensors; use it with method 'decoder'")
    if final == "auto":
        final = "fold_average" if method == "decoder" else "retrain"
    if not time_budget_s > 0:
        raise WaveSegError(f"the time budget must be positive; got {time_budget_s}")
    from waveseg.adaptation.views import geometric_views, training_views

    started = clock()
    deadline = started + time_budget_s - min(FINISH_RESERVE_S, 0.02 * time_budget_s)
    zoom = segmenter.roi_zoom
    x, y = _prepare(images, masks, window, zoom)
    given = validation_images is not None or validation_masks is not None
    if given:
        vx, vy = _prepare(validation_images or [], validation_masks or [], window, zoom)
    rng = np.random.default_rng(seed)
    settings = FitSettings.for_method(method, lr=lr, decoder_lr=decoder_lr, rank=rank, batch=batch, l2=l2)
    if len(images) == 1 and validation_images is None:
        # One slice and only its own augmented views to validate on: the neck stays frozen (fewer
        # trained parameters). scripts/bench_adapt.py --shots 1 (2026-12-07): with the neck trained
        # the MNI152 amygdala's views promised +24.0 points and the other slices lost 5.2 (frozen: -0.7).
        settings = dataclasses.replace(settings, train_neck=False)
    base = segmenter.model
    frozen = method == "decoder"
    neck = trains_neck(base, settings)
    views, view_masks, source = training_views(x, y, rng)
    view_embeddings = _embed(base, views, cancel, neck) if frozen else None

    def scorer(ex: torch.Tensor, ey: torch.Tensor) -> Callable[[torch.nn.Module], list[float]]:
        embeddings = _embed(base, ex, cancel, neck) if frozen else None
        return lambda model: _box_dice(model, ex, ey, embeddings)

    k = len(x)
    n_folds = 0 if given or k == 1 else min(k, folds)
    averaging = bool(n_folds) and final == "fold_average"
    runs_total = n_folds + (0 if averaging else 1)
    runs_done = 0
    state_bytes = 0
    estimates = (0.0, 0.0)  # (seconds per step, per checkpoint), carried from run to run

    def run(phase: str, selected: torch.Tensor, max_steps: int, evaluate=None, keep_best: bool = False, snapshots=None):
        nonlocal runs_done, state_bytes, estimates
        now = clock()
        run_deadline = now + (deadline - now) / (runs_total - runs_done)  # an equal share of what is left
        model = copy.deepcopy(base)

        def report(record: dict) -> None:
            if progress is not None:
                used = (clock() - started) / time_budget_s if math.isfinite(time_budget_s) \
                    else (runs_done + record["step"] / max(max_steps, 1)) / runs_total
                progress({"phase": phase, **record, "fraction": round(min(used, 1.0), 3)})

        record = fit(model, views[selected], view_masks[selected], settings, max_steps, run_deadline,
                     embeddings=None if view_embeddings is None else take(view_embeddings, selected), seed=seed + runs_done,
                     evaluate=evaluate, keep_best=keep_best, cancel=cancel, progress=report, clock=clock,
                     estimates=estimates, snapshots=snapshots)
        estimates = (record.step_seconds, record.eval_seconds)
        runs_done += 1
        state_bytes = max(state_bytes, record.optimizer_state_bytes)
        return model, record

    everything = torch.arange(len(views))
    if n_folds:
        scheme = "leave-one-out" if n_folds == k else "k-fold"
        fold_of = torch.arange(k) % n_folds  # slices come ordered along the structure: folds interleave
        histories, fold_snapshots = [], []
        for f in range(n_folds):
            held = torch.nonzero(fold_of == f)[:, 0]
            train = torch.nonzero(~torch.isin(source, held))[:, 0]
            snapshots = {} if averaging else None
            _, record = run(f"validation {f + 1}/{n_folds}", train, steps, scorer(x[held], y[held]), snapshots=snapshots)
            histories.append(record.checkpoints)
            fold_snapshots.append(snapshots)
        best = _best_step(histories)
        before = [s for h in histories for s in h[0]]
        after = [s for h in histories for s in h[max(c for c in h if c <= best)]]
        decision = decide(before, after, scheme, k, n_folds)
        model, total_steps = None, best
        if decision.kept and averaging:
            model = _fold_average(base, [s[max(c for c in s if c <= best)] for s in fold_snapshots])
        elif decision.kept:
            model, record = run("final", everything, best)
            total_steps = record.steps
    else:
        scheme = "held-out slices" if given else "augmented views"
        if not given:
            vx, vy = geometric_views(x[0], y[0], rng)
        model, record = run("training", everything, steps, scorer(vx, vy), keep_best=True)
        best = _best_step([record.checkpoints])
        decision = decide(record.checkpoints[0], record.checkpoints[best], scheme, k)
        total_steps = best
    from waveseg.adaptation.profiles import model_fingerprint, profile_delta

    delta = profile_delta(base.state_dict(), model.state_dict()) if decision.kept else {}
    metadata = {"base_model": segmenter.card.name, "base_fingerprint": model_fingerprint(base), "structure": structure,
                "scope": [structure], "slices": k, "method": method, "neck_trained": neck, "steps": total_steps,
                "val_dice_before": round(decision.dice_before, 4), "val_dice_after": round(decision.dice_after, 4),
                "validation": scheme, "final": final if n_folds else "single run", "roi_zoom": zoom, "gate": decision.message}
    if apply and decision.kept:
        base.load_state_dict(model.state_dict())
    return AdaptationResult(delta, decision, total_steps, clock() - started, state_bytes, metadata)

"""The do-no-harm gate: keep an adapted model only when validation shows a gain beyond its noise.

Free of torch, so the command line, the worker's readers and the UIs can use it cheaply.

Validation gives, for every held-out slice (or held-out view, with one annotated slice), the box
Dice of the base model and of the adapted one. The gain is their mean difference; its noise is
the standard error of the paired differences (one, not two: with the 3-5 held-out slices a user
annotates, two standard errors rejected a +9.5-point gain on the hippocampus whose folds gained
+1, +4 and +24 points). A profile is kept only when the gain exceeds both the noise and a floor (``MIN_GAIN``; ``MIN_GAIN_ONE_SLICE`` when all views come from one
annotated slice, because views of one slice are not independent samples of the structure and
their standard error understates how much the other slices can differ).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

MIN_GAIN = 0.02
MIN_GAIN_ONE_SLICE = 0.05

# how the held-out Dice was measured, as the message says it
SCHEMES = {
    "leave-one-out": "leave-one-out over {k} annotated slices",
    "k-fold": "{folds}-fold cross-validation over {k} annotated slices",
    "held-out slices": "{n} held-out slices you supplied",
    "augmented views": "{n} unseen rotated and rescaled views of the one annotated slice",
}


@dataclass(frozen=True)
class GateDecision:
    """What validation showed and what was decided (all Dice in [0, 1], gains in Dice units)."""

    kept: bool
    dice_before: float
    dice_after: float
    gain: float
    noise: float
    threshold: float
    n: int
    scheme: str
    message: str

    def as_dict(self) -> dict:
        return asdict(self)


def _points(x: float) -> str:
    return f"{100 * x:+.1f} points"


def decide(before: Sequence[float], after: Sequence[float], scheme: str, k: int, folds: int = 0) -> GateDecision:
    """Compare paired per-sample Dice ``before`` and ``after`` adaptation and decide.

    Arguments:
      before, after: box Dice of the base and the adapted model on the same n held-out samples.
      scheme: one of ``SCHEMES`` (how the samples were held out).
      k: number of annotated slices; folds: number of folds (scheme "k-fold").
    """
    if len(before) != len(after) or not before:
        raise ValueError(f"need the same non-zero number of scores before and after; got {len(before)} and {len(after)}")
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {sorted(SCHEMES)}; got {scheme!r}")
    n = len(before)
    diffs = [a - b for a, b in zip(after, before)]
    gain = sum(diffs) / n
    spread = math.sqrt(sum((d - gain) ** 2 for d in diffs) / (n - 1)) if n > 1 else 0.0
    noise = spread / math.sqrt(n)
    floor = MIN_GAIN_ONE_SLICE if scheme == "augmented views" else MIN_GAIN
    threshold = max(floor, noise)
    kept = gain > threshold
    dice_before, dice_after = sum(before) / n, sum(after) / n
    how = SCHEMES[scheme].format(k=k, n=n, folds=folds)
    if kept:
        message = (f"Adaptation helped: box Dice on held-out data {dice_before:.2f} -> {dice_after:.2f} "
                   f"({_points(gain)}, {how}); the adapted profile is kept.")
    else:
        message = (f"Adaptation did not help: box Dice on held-out data {dice_before:.2f} -> {dice_after:.2f} "
                   f"({_points(gain)}, {how}; a profile needs more than {100 * threshold:.1f} points); "
                   f"the base model stays.")
    return GateDecision(kept, dice_before, dice_after, gain, noise, threshold, n, scheme, message)

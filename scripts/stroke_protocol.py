"""The scribble and lasso protocols of ``scripts/evaluate.py`` (issue #26), also used by bench_strokes.py.

* scribbles (ScribblePrompt's protocol): at each step one scribble in the largest error region
  (``waveseg.prompting.stroke_simulation.next_scribble``: kind line / centreline / contour drawn at random
  from a generator seeded per mask and step, so every model gets the same kinds), all earlier scribbles and
  the previous logits fed back, up to ``MAX_SCRIBBLES`` steps;
* lasso: one positive lasso from a noisy outline of the target (``noisy_outline``), then
  ``LASSO_SCRIBBLES`` corrective scribbles.
Reported: Dice after 1/3/5 scribbles, after the lasso and after lasso + 1/3 scribbles, and the
interactions each prompt kind needs to reach Dice 0.85 (clicks too, from the click curve).
"""

from __future__ import annotations

import numpy as np

from waveseg.metrics import dice
from waveseg.prompting.stroke_simulation import next_scribble, noisy_outline

MAX_SCRIBBLES = 10
LASSO_SCRIBBLES = 3
TARGET_DICE = 0.85


def scribble_loop(seg, image: np.ndarray, encoded, truth: np.ndarray, n_steps: int, seed: int,
                  lasso: np.ndarray | None = None, roi_zoom: str | bool = "auto") -> list[np.ndarray]:
    """Masks after each step through ``InteractiveSession`` (the user's path: strokes kept, a
    corrective stroke's change kept near it): the lasso first (if given), then ``n_steps`` corrective
    scribbles. ``encoded``: ``seg.encode(image)``. ``roi_zoom``: the session's; "auto" (the API's
    default, evaluate.py's) zooms on a small first lasso's box or positive scribbles' extent, as
    a user's session does; clicks alone never zoom there, so the click protocol needs no zoom."""
    session = seg.session(image, roi_zoom=roi_zoom)
    session._full = encoded  # the image's embedding, computed once for all protocols (the session would encode the same)
    masks, prediction = [], None
    if lasso is not None:
        prediction = session.add_lasso(lasso, positive=True)
        masks.append(prediction)
    for _ in range(n_steps):
        # a fresh generator per step: step i gets the same kind and noise whatever earlier steps drew,
        # so models and rules are compared on the same scribble kinds
        scribble = next_scribble(prediction, truth, np.random.default_rng([seed, len(masks)]))
        if scribble is not None:
            prediction = session.add_scribble(*scribble)
        masks.append(prediction)
    return masks


def to_reach(curve: list[float], target: float = TARGET_DICE) -> int:
    """Interactions until the Dice curve first reaches ``target``; the curve's length + 1 if never."""
    return next((i + 1 for i, d in enumerate(curve) if d >= target), len(curve) + 1)


def run(seg, image: np.ndarray, encoded, truth: np.ndarray, seed: int, roi_zoom: str | bool = "auto") -> dict[str, list[float]]:
    """Dice curves of both protocols on one mask: {"scribble_curve": [...], "lasso_curve": [...]}."""
    scribbles = scribble_loop(seg, image, encoded, truth, MAX_SCRIBBLES, seed, roi_zoom=roi_zoom)
    outline = noisy_outline(truth, np.random.default_rng([seed, 1000]))  # the same outline for every model
    lasso = scribble_loop(seg, image, encoded, truth, LASSO_SCRIBBLES, seed + 1, lasso=outline, roi_zoom=roi_zoom)
    return {"scribble_curve": [dice(m, truth) for m in scribbles], "lasso_curve": [dice(m, truth) for m in lasso]}


def summarize(r: dict) -> dict:
    """Means over masks; r has "scribble_curve", "lasso_curve" and "curve" (the clicks' Dice) lists."""
    s, lasso, clicks = (np.array(r[k]) for k in ("scribble_curve", "lasso_curve", "curve"))
    out = {"scribble1": s[:, 0].mean(), "scribble3": s[:, 2].mean(), "scribble5": s[:, 4].mean(),
            "lasso": lasso[:, 0].mean(), "lasso_1": lasso[:, 1].mean(), "lasso_3": lasso[:, 3].mean(),
            "click5_dice": clicks[:, 4].mean(), "click3_dice": clicks[:, 2].mean(),
            "noi_click": np.mean([to_reach(c[:MAX_SCRIBBLES]) for c in clicks]),
            "noi_scribble": np.mean([to_reach(c) for c in s]), "noi_lasso": np.mean([to_reach(c) for c in lasso]),
            "scribble_curve": s.mean(axis=0), "lasso_curve_mean": lasso.mean(axis=0)}
    return {k: v.tolist() if isinstance(v, np.ndarray) else float(v) for k, v in out.items()}  # JSON-ready


def table(summaries: dict[str, dict]) -> list[str]:
    """Markdown lines of the stroke table, one row per model."""
    lines = [f"Scribbles and lasso (issue #26): Dice after 1/3/5 scribbles (ScribblePrompt's protocol), after one "
             f"noisy-outline lasso and lasso + 1/3 scribbles; interactions to reach Dice {TARGET_DICE} "
             f"(capped: {MAX_SCRIBBLES + 1} = not within {MAX_SCRIBBLES} clicks or scribbles, "
             f"{LASSO_SCRIBBLES + 2} = not within the lasso + {LASSO_SCRIBBLES}); clicks from the RITM curve above.", "",
             "| model | 3 clicks | 5 clicks | 1 scribble | 3 scribbles | 5 scribbles | lasso | lasso + 1 | lasso + 3 | "
             f"to {TARGET_DICE}: clicks | scribbles | lasso + scribbles | 3 scribbles >= 5 clicks |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for label, s in summaries.items():
        lines.append(f"| {label} | {s['click3_dice']:.3f} | {s['click5_dice']:.3f} | {s['scribble1']:.3f} | {s['scribble3']:.3f} | "
                     f"{s['scribble5']:.3f} | {s['lasso']:.3f} | {s['lasso_1']:.3f} | {s['lasso_3']:.3f} | {s['noi_click']:.2f} | "
                     f"{s['noi_scribble']:.2f} | {s['noi_lasso']:.2f} | {'yes' if s['scribble3'] >= s['click5_dice'] else 'no'} |")
    return lines

#!/usr/bin/env python
"""How scribbles and lassos should reach the decoder: the protocols of stroke_protocol.py under
several ``StrokeRule`` settings, one model, one process, the same masks and seeds for every rule.

    .venv/bin/python scripts/bench_strokes.py [--model default] [--limit 40] [--slices .../test.npz]

Rules compared (``waveseg.prompting.stroke_prompts.StrokeRule``; "shipped" is its defaults): point tokens per
scribble, pinning the strokes into the mask prompt or not, forcing the strokes' pixels into the
result or not, a corrective stroke's change kept near it or not, forcing a first lasso's inside,
the first lasso's inside as the mask prompt (rounds 1-3, without ROI zoom); ROI zoom in the
session on the scribbles' extent (round 4, ``StrokeRule.zoom_grow``). Strokes go
through ``InteractiveSession`` (the user's path). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch

import modality_report
import stroke_protocol
from evaluate import DEFAULT_SLICES, chosen_masks
from waveseg.predictor import Segmenter
from waveseg.prompting.stroke_prompts import StrokeRule

RULES = {  # round 1 (all against the defaults then: 5 points, pin, force, local 2, first lasso forced, no scribble box)
    "5 points, pin, force, local 2, first lasso forced": StrokeRule(scribble_box=None, scribble_points=5, force_first_lasso=True),
    "1 point per scribble": StrokeRule(scribble_box=None, scribble_points=1, force_first_lasso=True),
    "3 points": StrokeRule(scribble_box=None, scribble_points=3, force_first_lasso=True),
    "no pinning": StrokeRule(scribble_box=None, scribble_points=5, pin=False, force_first_lasso=True),
    "no forcing": StrokeRule(scribble_box=None, scribble_points=5, force=False, force_first_lasso=True),
    "change anywhere (local=None)": StrokeRule(scribble_box=None, scribble_points=5, local=None, force_first_lasso=True),
    "local=1": StrokeRule(scribble_box=None, scribble_points=5, local=1.0, force_first_lasso=True),
    "first lasso not forced": StrokeRule(scribble_box=None, scribble_points=5, force_first_lasso=False),
    "first lasso: box only": StrokeRule(scribble_box=None, scribble_points=5, lasso_mask=False, force_first_lasso=True),
}
ROUND2 = {  # round 2: 3 points, first lasso not forced; pinning and locality
    "3 points, pin, local 2": StrokeRule(scribble_box=None, scribble_points=3, pin=True, local=2.0, force_first_lasso=False),
    "3 points, pin, local 4": StrokeRule(scribble_box=None, scribble_points=3, pin=True, local=4.0, force_first_lasso=False),
    "3 points, pin, local None": StrokeRule(scribble_box=None, scribble_points=3, pin=True, local=None, force_first_lasso=False),
    "3 points, no pin, local 2": StrokeRule(scribble_box=None, scribble_points=3, pin=False, local=2.0, force_first_lasso=False),
    "3 points, no pin, local 4": StrokeRule(scribble_box=None, scribble_points=3, pin=False, local=4.0, force_first_lasso=False),
    "3 points, no pin, local None": StrokeRule(scribble_box=None, scribble_points=3, pin=False, local=None, force_first_lasso=False),
}

ROUND3 = {  # round 3 (2026-12-06): a box from a first positive scribble's extent
    "no scribble box (the rule before 2026-12-06)": StrokeRule(scribble_box=None),
    "scribble box, grow 0": StrokeRule(scribble_box=0.0),
    "scribble box, grow 0.1 (shipped)": StrokeRule(scribble_box=0.1),
    "scribble box, grow 0.15": StrokeRule(scribble_box=0.15),
    "scribble box, grow 0.2": StrokeRule(scribble_box=0.2),
    "scribble box, grow 0.3": StrokeRule(scribble_box=0.3),
    "scribble box 0.1, 1 point": StrokeRule(scribble_box=0.1, scribble_points=1),
    "scribble box 0.1, 2 points": StrokeRule(scribble_box=0.1, scribble_points=2),
    "scribble box 0.1, 5 points": StrokeRule(scribble_box=0.1, scribble_points=5),
    "scribble box 0.1, local None": StrokeRule(scribble_box=0.1, local=None),
    "scribble box 0.1, local 3": StrokeRule(scribble_box=0.1, local=3.0),
    "scribble box 0.1, local 4": StrokeRule(scribble_box=0.1, local=4.0),
}

ROUND4 = {  # round 4 (2026-12-07): (rule, the session's roi_zoom); StrokeRule.zoom_grow: ROI zoom on the scribbles' extent
    "no ROI zoom (evaluate.py's stroke protocol before)": (StrokeRule(zoom_grow=None), False),
    "ROI zoom auto on a box only (a first lasso's)": (StrokeRule(zoom_grow=None), "auto"),
    "ROI zoom auto on the scribbles' extent, grown 0": (StrokeRule(zoom_grow=0.0), "auto"),
    "ROI zoom auto on the scribbles' extent, grown 0.1": (StrokeRule(zoom_grow=0.1), "auto"),
    "ROI zoom auto on the scribbles' extent, grown 0.3 (shipped)": (StrokeRule(zoom_grow=0.3), "auto"),
    "ROI zoom auto on the scribbles' extent, grown 0.5": (StrokeRule(zoom_grow=0.5), "auto"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--slices", nargs="+", default=[str(DEFAULT_SLICES)])
    parser.add_argument("--round", type=int, default=2, choices=[1, 2, 3, 4], help="which set of rules")
    args = parser.parse_args()
    rules = {1: RULES, 2: ROUND2, 3: ROUND3, 4: ROUND4}[args.round]
    torch.set_num_threads(1)
    data = modality_report.load_slices(args.slices)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        seg = Segmenter.from_pretrained(args.model)
    chosen = chosen_masks(data, args.limit)
    encoded = {}
    results = {name: {"scribble_curve": [], "lasso_curve": []} for name in rules}
    start = time.perf_counter()
    for m in chosen:
        s = int(data["mask_slice"][m])
        if s not in encoded:
            encoded = {s: seg.encode(data["images"][s])}  # masks are grouped by slice: keep one
        truth = data["masks"][m]
        for name, rule in rules.items():
            rule, zoom = rule if isinstance(rule, tuple) else (rule, False)  # rounds 1-3 ran without ROI zoom
            seg.stroke_rule = rule
            for k, v in stroke_protocol.run(seg, data["images"][s], encoded[s], truth, args.seed + int(m), zoom).items():
                results[name][k].append(v)
    print(f"{len(chosen)} masks, model {seg.card.name}, {time.perf_counter() - start:.0f} s")
    print("| rule | 1 scribble | 3 | 5 | to 0.85 | lasso | lasso + 1 | lasso + 3 | to 0.85 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        sc, la = np.array(r["scribble_curve"]), np.array(r["lasso_curve"])
        reach_s = np.mean([stroke_protocol.to_reach(c) for c in sc])
        reach_l = np.mean([stroke_protocol.to_reach(c) for c in la])
        print(f"| {name} | {sc[:, 0].mean():.3f} | {sc[:, 2].mean():.3f} | {sc[:, 4].mean():.3f} | {reach_s:.2f} | "
              f"{la[:, 0].mean():.3f} | {la[:, 1].mean():.3f} | {la[:, 3].mean():.3f} | {reach_l:.2f} |")


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""How scribbles and lassos should reach the decoder: the protocols of stroke_protocol.py under
several ``StrokeRule`` settings, one model, one process, the same masks and seeds for every rule.

    .venv/bin/python scripts/bench_strokes.py [--model default] [--limit 40] [--slices .../test.npz]

Rules compared (``waveseg.stroke_prompts.StrokeRule``): point tokens per scribble (1, 3, 5, 8),
pinning the strokes into the mask prompt or not, forcing the strokes' pixels into the result or
not; for the first lasso, its box and/or its inside as the mask prompt. Prints a Markdown table.
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
from waveseg.stroke_prompts import StrokeRule

RULES = {
    "shipped (5 points, pin, force, lasso box + mask)": StrokeRule(),
    "1 point per scribble": StrokeRule(scribble_points=1),
    "1 point, no pinning": StrokeRule(scribble_points=1, pin=False),
    "1 point, no forcing": StrokeRule(scribble_points=1, force=False),
    "2 points": StrokeRule(scribble_points=2),
    "3 points": StrokeRule(scribble_points=3),
    "8 points": StrokeRule(scribble_points=8),
    "no pinning": StrokeRule(pin=False),
    "no forcing": StrokeRule(force=False),
    "tokens only (no pin, no force)": StrokeRule(pin=False, force=False),
    "lasso: box only": StrokeRule(lasso_mask=False),
    "lasso: mask only": StrokeRule(lasso_box=False),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--slices", nargs="+", default=[str(DEFAULT_SLICES)])
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = modality_report.load_slices(args.slices)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        seg = Segmenter.from_pretrained(args.model)
    chosen = chosen_masks(data, args.limit)
    encoded = {}
    results = {name: {"scribble_curve": [], "lasso_curve": []} for name in RULES}
    start = time.perf_counter()
    for m in chosen:
        s = int(data["mask_slice"][m])
        if s not in encoded:
            encoded = {s: seg.encode(data["images"][s])}  # masks are grouped by slice: keep one
        truth = data["masks"][m]
        for name, rule in RULES.items():
            seg.stroke_rule = rule
            for k, v in stroke_protocol.run(seg, data["images"][s], encoded[s], truth, args.seed + int(m)).items():
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

#!/usr/bin/env python
"""Click pinning on and off: clicks-only RITM loops on the held-out benchmark masks.

For each model, the same held-out masks (``scripts/evaluate.py``'s selection) are clicked 20
times by the RITM rule, previous logits fed back, once with ``Segmenter.pin_clicks`` off and
once on, in this one process on the same encodings. Reports Dice after 5 clicks, NoC@85/@90
and how often the newest click's own pixel is still wrong after the decoder answers it.

    .venv/bin/python scripts/bench_click_pinning.py --models default [--limit 100] \
        [--report reports/click_pinning.md]
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np
from tqdm import tqdm

from evaluate import MAX_CLICKS, chosen_masks, click_loop, clicks_to_reach
from scripts_common import VOLUMES
from waveseg.metrics import dice
from waveseg.predictor import Segmenter
from waveseg.prompting.simulation import next_click


def newest_click_wrong(masks: list[np.ndarray], truth: np.ndarray) -> list[bool]:
    """For each click of a ``click_loop`` run: is that click's own pixel still wrong in the mask it produced?"""
    wrong, previous = [], None
    for mask in masks:
        click = next_click(previous, truth)
        if click is None:  # the loop stopped clicking: the mask was already perfect
            break
        x, y, label = click
        wrong.append(bool(mask[int(round(y)), int(round(x))]) != bool(label))
        previous = mask
    return wrong


def run(seg: Segmenter, data: dict, limit: int, label: str) -> dict[bool, dict]:
    chosen = chosen_masks(data, limit)
    results = {pin: {"click5": [], "noc85": [], "noc90": [], "wrong": []} for pin in (False, True)}
    encoded_slice, encoded = None, None
    for m in tqdm(chosen, desc=label, unit="mask"):
        s = int(data["mask_slice"][m])
        if s != encoded_slice:
            encoded_slice, encoded = s, seg.encode(data["images"][s])
        truth = data["masks"][m]
        for pin, r in results.items():
            seg.pin_clicks = pin
            masks = click_loop(seg, encoded, truth, None, MAX_CLICKS, [])
            r["click5"].append(dice(masks[4], truth))
            r["noc85"].append(clicks_to_reach(masks, truth, 0.85))
            r["noc90"].append(clicks_to_reach(masks, truth, 0.90))
            r["wrong"] += newest_click_wrong(masks, truth)
    seg.pin_clicks = True
    return {pin: {key: float(np.mean(values)) for key, values in r.items()} | {"n": len(chosen)} for pin, r in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["default"])
    parser.add_argument("--limit", type=int, default=100, help="at most this many structure masks (evenly spread)")
    parser.add_argument("--report", default="reports/click_pinning.md")
    args = parser.parse_args()
    data = dict(np.load(VOLUMES.parent / "slices" / "test.npz"))
    command = f".venv/bin/python scripts/bench_click_pinning.py --models {' '.join(args.models)} --limit {args.limit}"
    lines = ["# Click pinning on and off (held-out split, clicks only)", "", f"Command: `{command}`", "",
             "| model | pinning | masks | 5 clicks Dice | NoC@85 | NoC@90 | newest click's pixel still wrong |",
             "|---|---|---:|---:|---:|---:|---:|"]
    summary = {}
    for name in args.models:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            seg = Segmenter.from_pretrained(name)
        summary[name] = run(seg, data, args.limit, name)
        for pin, s in summary[name].items():
            lines.append(f"| {name} | {'on' if pin else 'off'} | {s['n']} | {s['click5']:.3f} | {s['noc85']:.1f} | "
                         f"{s['noc90']:.1f} | {100 * s['wrong']:.0f} % |")
    report = Path(args.report)
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text("\n".join(lines) + "\n")
    report.with_suffix(".json").write_text(json.dumps({"command": command, "models": {
        name: {("on" if pin else "off"): s for pin, s in r.items()} for name, r in summary.items()}}, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

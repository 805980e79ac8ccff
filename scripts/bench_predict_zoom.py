#!/usr/bin/env python
"""Time ``Segmenter.predict`` with ROI zoom on and off, on held-out masks whose box is small.

For each held-out mask whose tight box is below the "auto" threshold, in this one process and
on the same prompts, alternating which side goes first: ``set_image``, then the box, then 5
RITM clicks each fed back the previous ``logits``, once with ``roi_zoom="auto"`` (the default)
and once with ``roi_zoom=False``. Reports the median ms of the box call (the zoomed one includes
encoding the crop) and of a click, their ratios, and Dice after the box and after 5 clicks.

    .venv/bin/python scripts/bench_predict_zoom.py [--limit 100] [--slices PATH]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections import defaultdict

import numpy as np

from evaluate import DEFAULT_SLICES, chosen_masks
from waveseg.metrics import dice
from waveseg.predictor import Segmenter
from waveseg.prompting.simulation import next_click, tight_box
from waveseg.prompting.roi import choose_roi


def run(seg: Segmenter, image: np.ndarray, truth: np.ndarray, box: np.ndarray, results: dict) -> None:
    seg.set_image(image)
    start = time.perf_counter()
    out = seg.predict(box=box)
    results["box_ms"].append(1000 * (time.perf_counter() - start))
    results["box_dice"].append(dice(out.mask, truth))
    points, labels = [], []
    for _ in range(5):
        click = next_click(out.mask, truth)
        if click is None:
            break
        points.append(click[:2])
        labels.append(click[2])
        start = time.perf_counter()
        out = seg.predict(points=points, labels=labels, box=box, mask_input=out.logits)
        results["click_ms"].append(1000 * (time.perf_counter() - start))
    results["box5_dice"].append(dice(out.mask, truth))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--slices", default=str(DEFAULT_SLICES))
    args = parser.parse_args()
    data = dict(np.load(args.slices))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        seg = Segmenter.from_pretrained("default")
    sides = {"auto": defaultdict(list), False: defaultdict(list)}
    n = 0
    for m in chosen_masks(data, args.limit):
        truth = data["masks"][m]
        box = tight_box(truth)
        if choose_roi(box, truth.shape, "auto") is None:
            continue
        order = ["auto", False] if n % 2 == 0 else [False, "auto"]
        for mode in order:
            seg.roi_zoom = mode
            run(seg, data["images"][data["mask_slice"][m]], truth, box, sides[mode])
        n += 1
    on, off = sides["auto"], sides[False]
    print(f"{n} held-out masks with a small box ({args.slices}), `Segmenter.predict`, same prompts, one process:\n")
    print("| roi_zoom | box call, median ms | click, median ms | Dice after the box | Dice after box + 5 clicks |")
    print("|---|---:|---:|---:|---:|")
    for label, r in (("auto (zoom)", on), ("False (whole image)", off)):
        print(f"| {label} | {statistics.median(r['box_ms']):.1f} | {statistics.median(r['click_ms']):.1f} | "
              f"{np.mean(r['box_dice']):.3f} | {np.mean(r['box5_dice']):.3f} |")
    print(f"\nRatios zoom / whole image: box call {statistics.median(on['box_ms']) / statistics.median(off['box_ms']):.2f}x, "
          f"click {statistics.median(on['click_ms']) / statistics.median(off['click_ms']):.2f}x")


if __name__ == "__main__":
    main()

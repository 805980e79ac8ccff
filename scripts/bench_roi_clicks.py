#!/usr/bin/env python
"""Click sessions under ROI zoom: off; on the last mask's extent too, fresh or kept crop; on a box's only.

The held-out masks of ``scripts/evaluate.py`` (same choice, same RITM clicks, clicks only and
box + 5 clicks) run through ``InteractiveSession`` four times, same model, one process:
``roi_zoom=False``; ``roi_zoom="auto"`` zooming on the last mask's extent in click-only sessions
too (``InteractiveSession.auto_zoom_on_mask``, as before 2026-11-30), with a fresh crop at every
click and with the crop kept while it fits (``InteractiveSession.keep_crop``); and "auto" as
shipped, on a box's extent only, crop kept. Reports Dice after 5 clicks, NoC@85/@90, box + 5
clicks, encodings per session and the median time per click, for all masks and for the
sessions that zoomed at least once in any mode.

    .venv/bin/python scripts/bench_roi_clicks.py [--model default] [--limit 100]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
from tqdm import tqdm

from evaluate import MAX_CLICKS, chosen_masks, clicks_to_reach
from scripts_common import VOLUMES
from waveseg.metrics import dice
from waveseg.predictor import Segmenter
from waveseg.prompting.simulation import next_click, tight_box
from waveseg.session import InteractiveSession


def run_session(seg: Segmenter, image: np.ndarray, truth: np.ndarray, box, n_clicks: int, roi_zoom: str | bool):
    """RITM clicks (after an optional box) -> (masks after each click, encodings, click seconds, zoomed)."""
    session = InteractiveSession(seg, image, roi_zoom=roi_zoom)
    prediction = session.set_box(box) if box is not None else None
    masks, seconds, zoomed = [], [], session.state.roi is not None
    for _ in range(n_clicks):
        click = next_click(prediction, truth)
        if click is not None:
            start = time.perf_counter()
            prediction = session.add_click(click[0], click[1], positive=bool(click[2]))
            seconds.append(time.perf_counter() - start)
            zoomed |= session.state.roi is not None
        masks.append(prediction)
    return masks, session.encodings, seconds, zoomed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="a name or a card path")
    parser.add_argument("--limit", type=int, default=100)
    args = parser.parse_args()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        seg = Segmenter.from_pretrained(args.model)
    data = dict(np.load(VOLUMES.parent / "slices" / "test.npz"))
    modes = {"no zoom": (False, False, True), "mask's extent too, fresh crop each click": ("auto", True, False),
             "mask's extent too, crop kept while it fits": ("auto", True, True),
             "box's extent only, crop kept (shipped)": ("auto", False, True)}
    rows = {mode: [] for mode in modes}
    for m in tqdm(chosen_masks(data, args.limit), unit="mask"):
        image, truth = data["images"][int(data["mask_slice"][m])], data["masks"][m]
        for mode, (roi_zoom, on_mask, keep) in modes.items():
            InteractiveSession.auto_zoom_on_mask, InteractiveSession.keep_crop = on_mask, keep
            clicks, encodes, seconds, zoomed = run_session(seg, image, truth, None, MAX_CLICKS, roi_zoom)
            boxed, box_encodes, box_seconds, box_zoomed = run_session(seg, image, truth, tight_box(truth), 5, roi_zoom)
            rows[mode].append({"click5": dice(clicks[4], truth), "noc85": clicks_to_reach(clicks, truth, 0.85),
                               "noc90": clicks_to_reach(clicks, truth, 0.90), "box5": dice(boxed[-1], truth),
                               "encodes": encodes + box_encodes, "seconds": seconds + box_seconds,
                               "zoomed": zoomed or box_zoomed})
    InteractiveSession.auto_zoom_on_mask, InteractiveSession.keep_crop = False, True
    zoomed = [i for i in range(len(rows[next(iter(modes))])) if any(rows[mode][i]["zoomed"] for mode in modes)]
    print(f"model {args.model}; {len(zoomed)} of {len(rows[next(iter(modes))])} masks zoomed at least once\n")
    print("| crop | masks | 5 clicks | NoC@85 | NoC@90 | box + 5 clicks | encodings per mask (both sessions) | median ms per click |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for mode in modes:
        for subset, picked in (("all", rows[mode]), ("zoomed", [rows[mode][i] for i in zoomed])):
            if not picked:
                continue
            mean = lambda key: statistics.mean(r[key] for r in picked)  # noqa: E731
            ms = 1000 * statistics.median(s for r in picked for s in r["seconds"])
            print(f"| {mode} | {subset} ({len(picked)}) | {mean('click5'):.3f} | {mean('noc85'):.2f} | {mean('noc90'):.2f} | "
                  f"{mean('box5'):.3f} | {mean('encodes'):.2f} | {ms:.0f} |")


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""How strict NoC@85 is on each held-out structure: what a one-pixel boundary error costs.

For the held-out masks that ``evaluate.py`` uses (same selection; ``--slices`` picks another part,
e.g. the training slices), per structure:
  * the IoU of the truth against itself grown by one pixel (4-neighbourhood), shrunk by one
    pixel, and shifted by one pixel (mean of the four directions): what a result that is right
    up to one pixel scores;
  * with ``--model``, evaluate.py's RITM click loop (20 clicks, logits fed back) scored twice:
    plain IoU, which is the protocol, and IoU with the one-pixel band on either side of the true
    boundary left unscored (PASCAL VOC leaves a 5-pixel band around its objects unscored the same
    way). The second is a diagnostic of where the remaining error lies, not a replacement metric.

    .venv/bin/python scripts/analyse_label_tolerance.py --model default --limit 100 \
        [--report reports/label_tolerance.md]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy import ndimage
from tqdm import tqdm

from evaluate import MAX_CLICKS, chosen_masks, click_loop
from scripts_common import VOLUMES
from waveseg.metrics import iou

THRESHOLD = 0.85


def boundary_band(truth: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels one step (4-neighbourhood) from the true boundary, on either side."""
    return ndimage.binary_dilation(truth) & ~ndimage.binary_erosion(truth)


def iou_outside_band(prediction: np.ndarray, truth: np.ndarray, band: np.ndarray) -> float:
    """IoU counting only pixels outside ``band`` (1.0 when nothing outside it is foreground)."""
    scored = ~band
    return iou(prediction & scored, truth & scored)


def one_pixel_errors(truth: np.ndarray) -> tuple[float, float, float]:
    """IoU of the truth against itself grown by 1 px, shrunk by 1 px, and shifted by 1 px (mean of 4)."""
    shifts = [iou(np.roll(truth, step, axis), truth) for axis in (0, 1) for step in (-1, 1)]
    return (iou(ndimage.binary_dilation(truth), truth), iou(ndimage.binary_erosion(truth), truth),
            float(np.mean(shifts)))


def clicks_to(scores: list[float]) -> int:
    """NoC: first click count whose score reaches ``THRESHOLD``; ``MAX_CLICKS`` if none does."""
    return next((i + 1 for i, s in enumerate(scores) if s >= THRESHOLD), MAX_CLICKS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="also run the RITM click loop with this model (e.g. default)")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--slices", default=str(VOLUMES.parent / "slices" / "test.npz"))
    parser.add_argument("--report", default="reports/label_tolerance.md")
    args = parser.parse_args()
    data = dict(np.load(args.slices))
    seg = None
    if args.model:
        from waveseg.predictor import Segmenter

        seg = Segmenter.from_pretrained(args.model)
    rows = defaultdict(list)
    encoded_slice, encoded = None, None
    for m in tqdm(chosen_masks(data, args.limit), desc="masks", unit="mask"):
        truth = data["masks"][m]
        row = [float(truth.sum()), *one_pixel_errors(truth)]
        if seg is not None:
            s = int(data["mask_slice"][m])
            if s != encoded_slice:
                encoded_slice, encoded = s, seg.encode(data["images"][s])
            masks = click_loop(seg, encoded, truth, None, MAX_CLICKS, [])
            band = boundary_band(truth)
            plain = [iou(p, truth) for p in masks]
            void = [iou_outside_band(p, truth, band) for p in masks]
            row += [plain[4], void[4], clicks_to(plain), clicks_to(void)]
        rows[str(data["mask_name"][m])].append(row)

    header = ("| structure | n | mean area (px) | IoU, truth grown 1 px | shrunk 1 px | shifted 1 px "
              "| masks where growing 1 px falls below 0.85 |")
    lines = ["# How strict is IoU 0.85? What one-pixel boundary errors cost, per structure", "",
             "Command: `.venv/bin/python " + " ".join(["scripts/analyse_label_tolerance.py", *sys.argv[1:]]).replace(str(Path.home()), "~") + "`", "",
             f"{sum(len(v) for v in rows.values())} masks of {Path(args.slices).parent.name}/{Path(args.slices).name}, "
             "spread evenly as evaluate.py chooses them; 256 x 256 model frame; "
             "growing, shrinking and the band use one step of the 4-neighbourhood (scipy's default cross).", "", header, "|---|---:|---:|---:|---:|---:|---:|"]
    for name, v in sorted(rows.items()):
        a = np.array(v)
        lines.append(f"| {name} | {len(a)} | {a[:, 0].mean():.0f} | {a[:, 1].mean():.3f} | {a[:, 2].mean():.3f} "
                     f"| {a[:, 3].mean():.3f} | {(a[:, 1] < THRESHOLD).sum()} of {len(a)} |")
    if seg is not None:
        every = np.concatenate([np.array(v) for v in rows.values()])
        lines += ["", f"Model `{args.model}`, RITM clicks only (evaluate.py's loop). IoU after 5 clicks and NoC@85, "
                  "scored on all pixels (the protocol) and with the 1-pixel band on either side of the true boundary "
                  "unscored (diagnostic):", "",
                  "| structure | n | IoU, 5 clicks | IoU outside the band, 5 clicks | NoC@85 | NoC@85 outside the band |",
                  "|---|---:|---:|---:|---:|---:|"]
        for name, v in sorted(rows.items()) + [("all", every)]:
            a = np.array(v)
            lines.append(f"| {name} | {len(a)} | {a[:, 4].mean():.3f} | {a[:, 5].mean():.3f} | {a[:, 6].mean():.2f} "
                         f"| {a[:, 7].mean():.2f} |")
    report = Path(args.report)
    report.parent.mkdir(parents=True, exist_ok=True)
    tmp = report.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(report)
    print("\n".join(lines))


if __name__ == "__main__":
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        main()

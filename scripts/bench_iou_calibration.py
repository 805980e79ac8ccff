#!/usr/bin/env python
"""How well does the decoder's predicted IoU match the true IoU? Held-out slices, several prompts.

3D propagation stops where the predicted IoU (``Prediction.score``) falls (``waveseg.volume``),
and the Slicer module and the app show it, so its calibration matters. On the held-out masks of
``scripts/evaluate.py`` (same choice), for the tight box, a jittered box (seeded) and RITM clicks
(previous logits fed back, as ``evaluate.py`` does), this records the predicted and the true
IoU of the returned mask and reports their means, the mean error (predicted - true), the mean
absolute error and the Spearman rank correlation, per prompt and for the box per structure.
Several models run in one process on the same prompts.

    .venv/bin/python scripts/bench_iou_calibration.py [--models default litemedsam] [--limit 100]
"""

from __future__ import annotations

import argparse
import warnings
from collections import defaultdict

import numpy as np
from scipy.stats import spearmanr
from tqdm import tqdm

from evaluate import chosen_masks
from scripts_common import VOLUMES
from waveseg.metrics import iou
from waveseg.predictor import Segmenter
from waveseg.prompting.simulation import jittered_box, next_click, tight_box

CLICK_COUNTS = (1, 3, 5, 10, 20)


def collect(seg: Segmenter, data: dict, limit: int, seed: int) -> dict[str, list[tuple[float, float, str]]]:
    """prompt kind -> [(predicted IoU, true IoU, structure)] over the chosen held-out masks."""
    rng = np.random.default_rng(seed)
    pairs: dict[str, list] = defaultdict(list)
    for m in tqdm(chosen_masks(data, limit), unit="mask"):
        truth, name = data["masks"][m], str(data["mask_name"][m])
        encoded = seg.encode(data["images"][int(data["mask_slice"][m])])
        for kind, box in (("tight box", tight_box(truth)), ("jittered box", jittered_box(truth, rng))):
            out = seg.predict_encoded(encoded, box=box)
            pairs[kind].append((out.score, iou(out.mask, truth), name))
        points, labels, prediction, logits = [], [], None, None
        for count in range(1, max(CLICK_COUNTS) + 1):
            click = next_click(prediction, truth)
            if click is not None:
                points.append(click[:2])
                labels.append(click[2])
                out = seg.predict_encoded(encoded, points=points, labels=labels, mask_input=logits)
                prediction, logits = out.mask, out.logits
            if count in CLICK_COUNTS:
                pairs[f"{count} click{'s' if count > 1 else ''}"].append((out.score, iou(prediction, truth), name))
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["default"], help="names or card paths")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data = dict(np.load(VOLUMES.parent / "slices" / "test.npz"))
    for model in args.models:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            seg = Segmenter.from_pretrained(model)
        pairs = collect(seg, data, args.limit, args.seed)
        print(f"\nmodel {model}: predicted vs true IoU of the returned mask\n")
        print("| prompt | n | mean predicted | mean true | mean error | mean abs error | Spearman |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for kind, rows in pairs.items():
            predicted, true = np.array([r[0] for r in rows]), np.array([r[1] for r in rows])
            print(f"| {kind} | {len(rows)} | {predicted.mean():.3f} | {true.mean():.3f} | {(predicted - true).mean():+.3f} | "
                  f"{np.abs(predicted - true).mean():.3f} | {spearmanr(predicted, true).statistic:.2f} |")
        print("\nTight box, per structure:\n")
        print("| structure | n | mean predicted | mean true | mean error |")
        print("|---|---:|---:|---:|---:|")
        for name in sorted({r[2] for r in pairs["tight box"]}):
            rows = [r for r in pairs["tight box"] if r[2] == name]
            predicted, true = np.array([r[0] for r in rows]), np.array([r[1] for r in rows])
            print(f"| {name} | {len(rows)} | {predicted.mean():.3f} | {true.mean():.3f} | {(predicted - true).mean():+.3f} |")


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""The 2D ceiling of box propagation: every slice of a bench_volume.py volume prompted with the
ground truth's own tight box (no propagation), under the case's window and under window None
(percentile stretch), for one model. Prints the 3D Dice of those slice masks and the middle
slice's 2D Dice. Whatever a next-slice prompt does, box-only propagation cannot beat this column
by much; where the reference beats it, the gap is the 2D model's, not propagation's.

    .venv/bin/python scripts/bench_slice_boxes.py --cases totalseg slicerio
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np

from bench_volume import CASES, load_case, truth_box
from waveseg.metrics import dice
from waveseg.predictor import Segmenter
from waveseg.propagation import mask_box
from waveseg.volume import VolumeSession


def slice_box_masks(seg: Segmenter, image, truth, spacing, window) -> np.ndarray:
    """(Z, Y, X) masks of every slice with truth, each from that slice's tight truth box (+0.5 px)."""
    session = VolumeSession(seg, image, spacing=spacing, window=window, prefetch=False, cache_mb=1024)
    mask = np.zeros_like(truth)
    for k in np.flatnonzero(truth.any(axis=(1, 2))):
        mask[k] = session._predict(0, int(k), box=mask_box(truth[k], 0.5))[0]  # 0.5 px: a box at least 1 px wide
    session.close()
    return mask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--cases", nargs="*", help="only cases whose title contains one of these words")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        seg = Segmenter.from_pretrained(args.model)
    cases = [c for c in CASES if not args.cases or any(w.lower() in c.title.lower() for w in args.cases)]
    print(f"model: {args.model}; tight truth box on every slice\n")
    print("| volume | window | 3D Dice, case window | middle slice | 3D Dice, window None | middle slice |")
    print("|---|---|---:|---:|---:|---:|")
    for case in cases:
        image, truth, spacing = load_case(case)
        box = truth_box(truth, 0)
        middle = int((box[0][2] + box[1][2]) // 2)
        cells = []
        for window in ([case.window, None] if case.window is not None else [None]):
            mask = slice_box_masks(seg, image, truth, spacing, window)
            cells += [f"{dice(mask, truth):.3f}", f"{dice(mask[middle], truth[middle]):.3f}"]
        if case.window is None:
            cells = ["-", "-"] + cells
        print(f"| {case.title} | {case.window} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()

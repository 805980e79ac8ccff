#!/usr/bin/env python
"""Does ROI zoom help on small targets? Box Dice with and without it, same model, same boxes.

Targets: deep grey-matter structures with visible T1 edges (AAL caudate, putamen, pallidum,
thalamus, hippocampus, amygdala on Colin27, every 3rd axial slice) and LiTS tumour components
(every 4th axial slice of the 128^3 CT crop, window -160..240 HU). Only targets whose longest
side is below the ROI threshold (25 % of the slice's longest side) count, i.e. those that
``roi_zoom="auto"`` would zoom on. Needs ``scripts/fetch_data.py`` first.

    .venv/bin/python scripts/bench_roi_zoom.py [--models litemedsam default ...] [--limit 120]

Several models run in one process on the same targets and boxes.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
import warnings

import numpy as np
import SimpleITK as sitk
from scripts_common import load_array
from waveseg.metrics import dice
from waveseg.predictor import Segmenter
from waveseg.prompting.roi import ROI_THRESHOLD

AAL_EDGE_LABELS = {37: "hippocampus", 38: "hippocampus", 41: "amygdala", 42: "amygdala", 71: "caudate", 72: "caudate",
                   73: "putamen", 74: "putamen", 75: "pallidum", 76: "pallidum", 77: "thalamus", 78: "thalamus"}


def small_targets(image: np.ndarray, labels: np.ndarray, wanted: dict[int, str], step: int, window):
    """Yield (name, slice image, target mask, tight box) for small connected targets."""
    for k in range(0, image.shape[0], step):
        for value, name in wanted.items():
            components = sitk.GetArrayFromImage(sitk.ConnectedComponent(sitk.GetImageFromArray((labels[k] == value).astype(np.uint8))))
            for c in range(1, components.max() + 1):
                target = components == c
                if target.sum() < 20:
                    continue
                rows, cols = np.nonzero(target)
                box = (cols.min(), rows.min(), cols.max(), rows.max())
                if max(box[2] - box[0] + 1, box[3] - box[1] + 1) < ROI_THRESHOLD * max(target.shape):
                    yield name, image[k], target, box, window


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["litemedsam"], help="names or card paths")
    parser.add_argument("--limit", type=int, default=120, help="at most this many targets per dataset")
    parser.add_argument("--only", choices=("aal", "lits"), help="run one dataset only")
    args = parser.parse_args()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        segmenters = {name: Segmenter.from_pretrained(name) for name in args.models}
    datasets = {}
    if args.only in (None, "aal"):
        datasets["Colin27 AAL deep grey matter"] = small_targets(
            load_array("colin27_ch2.nii.gz"), load_array("colin27_aal.nii.gz"), AAL_EDGE_LABELS, 3, None)
    if args.only in (None, "lits"):
        datasets["LiTS tumour components"] = small_targets(
            load_array("lits117_ct.nii.gz"), load_array("lits117_label.nii.gz"), {2: "tumour"}, 4, (-160, 240))
    print("box Dice of the tight box, ROI zoom off vs on (crop = 2.5 x target, re-encoded)\n")
    print("| model | targets | n | Dice, no zoom | Dice, ROI zoom | difference | seconds per target, no zoom / zoom |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for title, targets in datasets.items():
        targets = list(itertools.islice(targets, args.limit))
        for name, seg in segmenters.items():
            off, on, t_off, t_on = [], [], [], []
            for _, image, target, box, window in targets:
                for mode, scores, times in ((False, off, t_off), (True, on, t_on)):
                    start = time.perf_counter()
                    mask = seg.session(image, window=window, roi_zoom=mode).set_box(box)
                    times.append(time.perf_counter() - start)
                    scores.append(dice(mask, target))
            if not off:
                continue
            m_off, m_on = statistics.mean(off), statistics.mean(on)
            print(f"| {name} | {title} | {len(off)} | {m_off:.3f} | {m_on:.3f} | {m_on - m_off:+.3f} | "
                  f"{statistics.median(t_off):.2f} / {statistics.median(t_on):.2f} |")


if __name__ == "__main__":
    main()

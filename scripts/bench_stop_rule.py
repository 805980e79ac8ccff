#!/usr/bin/env python
"""Propagation stop rule: 3D Dice under several (predicted-IoU floor, relative score) settings.

Outside a 3D box, propagation stops where the decoder's predicted IoU falls below
``PropagationRule.min_score`` or below ``relative_score`` x the first propagated slice's
(``waveseg/propagation.py``). This script runs one model on the same volumes under each setting,
in one process: a 3D box from the ground truth's extent (``VolumeSession.box3d``; since the in-box
rule of 2026-12-02 these thresholds no longer act inside a box, so that column shows the in-box
rule), and the ground truth's box on its middle axial slice followed by ``propagate`` through the
whole volume (no 3D box to bound it). The held-out volumes are those of
``bench_volume.py``; the Colin27 and MNI152 structures come from training volumes and are here
because the rule, not the model, is under test. Needs scripts/fetch_data.py (with --only mni152 too).

    .venv/bin/python scripts/bench_stop_rule.py --settings 0.5:0.8 0.3:0.8 0.3:0.7
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np

from bench_volume import CASES as BENCH_VOLUME_CASES
from scripts_common import load_array
from waveseg.metrics import dice
from waveseg.predictor import Segmenter
from waveseg.propagation import PropagationRule
from waveseg.volume import VolumeSession

# (title, image, label file, label values or None for "> 0", CT window, z range), as bench_volume.CASES
TRAINING_VOLUME_CASES = [
    ("Colin27 brain (training volume)", "colin27_ch2.nii.gz", "colin27_ch2bet.nii.gz", None, None, None),
    ("MNI152 brain (training volume)", "mni152_t1_brain.nii.gz", "mni152_t1_brain.nii.gz", None, None, None),
    ("Colin27 caudate (training volume)", "colin27_ch2.nii.gz", "colin27_aal.nii.gz", (71, 72), None, None),
    ("MNI152 lateral ventricles (training volume)", "mni152_t1_brain.nii.gz", "mni152_desikan_killiany.nii.gz",
     (4, 5, 43, 44), None, None),
]
HELD_OUT_CASES = [(c.title, c.image, c.label, c.values, c.window, c.z_range) for c in BENCH_VOLUME_CASES
                  if c.title in ("LiTS liver (upper)", "LiTS tumour (upper)", "inia19 macaque brain")]
CASES = TRAINING_VOLUME_CASES + HELD_OUT_CASES


def box3d_dice(seg: Segmenter, image: np.ndarray, truth: np.ndarray, window, rule: PropagationRule) -> float:
    """3D Dice after one 3D box from the ground truth's (Z, Y, X) extent."""
    zs, ys, xs = np.nonzero(truth)
    session = VolumeSession(seg, image, window=window, prefetch=False, propagation=rule)
    session.box3d((xs.min(), ys.min(), zs.min()), (xs.max(), ys.max(), zs.max()))
    session.close()
    return dice(session.mask, truth)


def seeded_dice(seg: Segmenter, image: np.ndarray, truth: np.ndarray, window, rule: PropagationRule) -> float:
    """3D Dice after the ground truth's box on its middle axial slice, then ``propagate``."""
    slices = np.nonzero(truth.any(axis=(1, 2)))[0]
    middle = int(np.median(slices))
    ys, xs = np.nonzero(truth[middle])
    session = VolumeSession(seg, image, window=window, prefetch=False, propagation=rule)
    session.segment_slice(0, middle, box=(xs.min(), ys.min(), xs.max(), ys.max()))
    session.propagate(0, middle)
    session.close()
    return dice(session.mask, truth)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--settings", nargs="+", default=["0.5:0.8", "0.3:0.8", "0.3:0.7"],
                        help="FLOOR:RELATIVE pairs, e.g. 0.3:0.8")
    args = parser.parse_args()
    try:
        settings = [tuple(float(v) for v in s.split(":")) for s in args.settings]
    except ValueError:
        raise SystemExit(f"--settings takes FLOOR:RELATIVE pairs such as 0.3:0.8; got {args.settings}") from None
    if any(len(s) != 2 for s in settings):
        raise SystemExit(f"--settings takes FLOOR:RELATIVE pairs such as 0.3:0.8; got {args.settings}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        seg = Segmenter.from_pretrained(args.model)
    print(f"model: {args.model}; 3D Dice, 3D box / middle-slice box + propagate\n")
    print("| volume | " + " | ".join(f"floor {f}, relative {r}" for f, r in settings) + " |")
    print("|---|" + "---:|" * len(settings))
    for title, image_file, label_file, values, window, z_range in CASES:
        image, labels = load_array(image_file), load_array(label_file)
        if z_range:
            image, labels = image[z_range[0] : z_range[1]], labels[z_range[0] : z_range[1]]
        truth = labels > 0 if values is None else np.isin(labels, values)
        cells = []
        for floor, relative in settings:
            rule = PropagationRule(min_score=floor, relative_score=relative)
            cells.append(f"{box3d_dice(seg, image, truth, window, rule):.3f} / {seeded_dice(seg, image, truth, window, rule):.3f}")
        print(f"| {title} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()

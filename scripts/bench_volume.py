#!/usr/bin/env python
"""3D benchmark: one 3D box from the ground truth's extent -> propagation -> 3D Dice and time.

Every model runs in this one process on the same volumes and boxes, through the same
``VolumeSession`` propagation; then 3 corrective clicks (RITM rule, each on the currently worst
slice) are added and the 3D Dice measured again. Sessions prefetch the next slices in a
background thread as shipped (``--no-prefetch``: each slice is encoded when propagation reaches
it). Needs scripts/fetch_data.py first.

    .venv/bin/python scripts/bench_volume.py --models litemedsam runs/wave-gms-small/wave-gms.json
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from scripts_common import load_array
from waveseg.metrics import dice
from waveseg.predictor import Segmenter
from waveseg.prompt_simulation import next_click

# (title, image, label file, label values, window, z range held out from training)
CASES = [
    ("LiTS liver (upper, held out)", "lits117_ct.nii.gz", "lits117_label.nii.gz", (1, 2), (-160, 240), (72, 128)),
    ("LiTS tumour (upper, held out)", "lits117_ct.nii.gz", "lits117_label.nii.gz", (2,), (-160, 240), (72, 128)),
    ("inia19 macaque brain (held out)", "inia19_t1.nii.gz", "inia19_neuromaps.nii.gz", None, None, None),
]


def run_case(seg: Segmenter, image, truth, window, prefetch: bool) -> dict:
    zs, ys, xs = np.nonzero(truth)
    start = time.perf_counter()
    session = seg.volume_session(image, window=window, prefetch=prefetch)
    session.box3d((xs.min(), ys.min(), zs.min()), (xs.max(), ys.max(), zs.max()))
    session.cache.wait()  # slices prefetched past the object's end count too
    seconds = time.perf_counter() - start
    box_dice = dice(session.mask, truth)
    for _ in range(3):
        per_slice = [dice(session.mask[k], truth[k]) for k in range(truth.shape[0])]
        worst = int(np.argmin([d if truth[k].any() or session.mask[k].any() else 2 for k, d in enumerate(per_slice)]))
        click = next_click(session.mask[worst], truth[worst])
        if click is None:
            break
        session.click((click[0], click[1], worst), positive=bool(click[2]))
    session.close()
    return {"dice": box_dice, "dice_clicks": dice(session.mask, truth), "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["litemedsam"])
    parser.add_argument("--runtime", default="auto", choices=["auto", "onnx", "torch"],
                        help="where encoders and decoders run, the same for every model (Segmenter's runtime)")
    parser.add_argument("--no-prefetch", action="store_true",
                        help="encode every slice when propagation reaches it, instead of the next slices in a background thread")
    args = parser.parse_args()
    segmenters = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for name in args.models:
            segmenters[name] = seg = Segmenter.from_pretrained(name, runtime=args.runtime)
            encoded = seg.encode(np.zeros((64, 64), np.float32))
            for _ in range(2):  # an image's first decode, then the per-click step: every graph is exported before timing
                seg.predict_encoded(encoded, box=(8, 8, 40, 40))
    print(f"runtime: {next(iter(segmenters.values())).runtime}, prefetch: {'off' if args.no_prefetch else 'on'}\n")
    print("| volume | model | 3D Dice (box) | 3D Dice (+3 clicks) | seconds per volume | time ratio vs litemedsam |")
    print("|---|---|---:|---:|---:|---:|")
    for title, image_file, label_file, values, window, z_range in CASES:
        image, labels = load_array(image_file), load_array(label_file)
        if z_range:
            image, labels = image[z_range[0] : z_range[1]], labels[z_range[0] : z_range[1]]
        truth = labels > 0 if values is None else np.isin(labels, values)
        results = {name: run_case(seg, image, truth, window, not args.no_prefetch) for name, seg in segmenters.items()}
        ref = results.get("litemedsam")
        for name, r in results.items():
            ratio = f"{ref['seconds'] / r['seconds']:.1f}x faster" if ref else "-"
            print(f"| {title} | {name} | {r['dice']:.3f} | {r['dice_clicks']:.3f} | {r['seconds']:.1f} | {ratio} |", flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""Few-shot adaptation benchmark on structures the model never trained on.

For each structure and k in (1, 3, 5): adapt on k annotated axial slices (spread over the
structure's extent) with GaLore, full AdamW fine-tuning and decoder-only fine-tuning, all in
this one process from the same base weights, and report the box-prompt Dice on the structure's
other slices before and after, seconds, peak RSS during the run (sampled from /proc) and the
optimiser state's bytes, and the Dice of another structure (putamen) with the profile active: the
base model, and so every structure when no profile is active, is untouched (weights are reloaded
from the shipped file's state before each run, and profiles are separate files).
Needs scripts/fetch_data.py first.

    .venv/bin/python scripts/bench_adapt.py [--model default] [--time-budget 60]
"""

from __future__ import annotations

import argparse
import os
import threading
import time
import warnings

import numpy as np

from scripts_common import load_array
from waveseg.adaptation import METHODS
from waveseg.adaptation.fewshot import adapt
from waveseg.metrics import dice
from waveseg.predictor import Segmenter
from waveseg.prompt_simulation import tight_box

# (title, image, labels, label values, window): held-out structures (configs/data_split.json)
STRUCTURES = [
    ("Colin27 thalamus (AAL 77+78)", "colin27_ch2.nii.gz", "colin27_aal.nii.gz", (77, 78), None),
    ("Colin27 hippocampus (AAL 37+38)", "colin27_ch2.nii.gz", "colin27_aal.nii.gz", (37, 38), None),
]


OTHER_STRUCTURE = (73, 74)  # putamen: a trained-on structure, to see what a profile does to others


class PeakRSS:
    """Samples this process's resident set size every 20 ms while active (bytes)."""

    def __enter__(self) -> "PeakRSS":
        self.peak, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while not self._stop.is_set():
            with open("/proc/self/statm") as f:
                self.peak = max(self.peak, int(f.read().split()[1]) * page)
            time.sleep(0.02)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def box_dice(seg: Segmenter, volume: np.ndarray, truth: np.ndarray, slices: list[int]) -> float:
    scores = []
    for k in slices:
        seg.set_image(volume[k])
        scores.append(dice(seg.predict(box=tight_box(truth[k])).mask, truth[k]))
    return float(np.mean(scores))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--time-budget", type=float, default=60.0)
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--only", default="", help="run only structures whose title contains this text")
    parser.add_argument("--shots", type=int, nargs="+", default=[1, 3, 5], help="numbers k of annotated slices")
    args = parser.parse_args()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        base = Segmenter.from_pretrained(args.model)
    # adaptation trains on whole slices, and the published table predates predict's ROI zoom:
    # score the box on the whole slice, as then
    base.roi_zoom = False
    base_state = {k: v.clone() for k, v in base.model.state_dict().items()}
    print(f"model {base.card.name}; box Dice on the structure's other axial slices; time budget {args.time_budget:.0f} s\n")
    other_volume = load_array("colin27_ch2.nii.gz")
    other_truth = np.isin(load_array("colin27_aal.nii.gz"), OTHER_STRUCTURE)
    other_slices = [k for k in range(other_truth.shape[0]) if other_truth[k].sum() >= 30][::3]
    other_before = box_dice(base, other_volume, other_truth, other_slices)
    print(f"putamen (AAL 73+74) box Dice without a profile: {other_before:.3f}\n")
    print("| structure | k | method | Dice before | Dice after | gain | seconds | peak RSS (MB) | optimiser state (MB) | putamen Dice, profile active |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for title, image_file, label_file, values, window in [s for s in STRUCTURES if args.only in s[0]]:
        volume, truth = load_array(image_file), np.isin(load_array(label_file), values)
        present = [k for k in range(truth.shape[0]) if truth[k].sum() >= 30]
        for k_shot in args.shots:
            picks = [present[int(i)] for i in np.linspace(len(present) * 0.2, len(present) * 0.8, k_shot)]
            others = [k for k in present if k not in picks][::2]
            base.model.load_state_dict(base_state)
            before = box_dice(base, volume, truth, others)
            for method in METHODS:
                base.model.load_state_dict(base_state)
                with PeakRSS() as rss:
                    result = adapt(base, [volume[k] for k in picks], [truth[k] for k in picks], structure=title,
                                   method=method, window=window, steps=args.steps, time_budget_s=args.time_budget, apply=True)
                after = box_dice(base, volume, truth, others)
                other = box_dice(base, other_volume, other_truth, other_slices)
                print(f"| {title} | {k_shot} | {method} | {before:.3f} | {after:.3f} | {after - before:+.3f} | "
                      f"{result.seconds:.0f} | {rss.peak / 2**20:.0f} | {result.optimizer_state_bytes / 2**20:.1f} | {other:.3f} |", flush=True)
    base.model.load_state_dict(base_state)


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""Few-shot adaptation behind the do-no-harm gate, on structures the model never trained on.

For each structure: k annotated axial slices (spread over the middle 60 % of its extent), then
``waveseg.adapt`` with each method, all in this one process from the same base weights and the
same slices, with the defaults a user gets (30 s budget, 400 steps); the box-prompt Dice on the
structure's *other* slices before and after (after = what the user is left with: the adapted
model when the gate kept it, else the base model), what the gate decided and on what validation
gain, the adaptation's seconds and its peak resident memory (sampled from /proc every 20 ms; the
whole process, and above what it held before the call).

Weak structures (the goal: >= +10 points after 3 slices) and good ones (never below -1 point
once the gate has decided) are both listed; see ``STRUCTURES``. Every method runs at k = 3; with
``--all-methods-at-every-k`` every method runs at every k (about 80 runs of 30 s), else the other
k run the default method only. Needs scripts/fetch_data.py first.

    .venv/bin/python scripts/bench_adapt.py [--only hippocampus] [--shots 1 3 5] [--json out.json]
    .venv/bin/python scripts/bench_adapt.py --shots 3 --methods decoder --finals retrain fold_average   # how the final model is made
    .venv/bin/python scripts/bench_adapt.py --shots 3 --methods decoder --decoder-lrs 0.001 0.002        # the decoder's learning rate
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
import warnings
from dataclasses import dataclass

import numpy as np

from scripts_common import load_array
from waveseg.adaptation import METHODS
from waveseg.adaptation.fewshot import FINALS, adapt
from waveseg.metrics import dice
from waveseg.predictor import Segmenter
from waveseg.prompting.simulation import tight_box

DEFAULT_METHOD = "decoder"
MIN_PIXELS = 30  # a slice counts as showing the structure from this many pixels


@dataclass(frozen=True)
class Structure:
    title: str
    kind: str  # "weak" or "good": what the base model does on it (measured, printed beside)
    image: str
    labels: str
    values: tuple[int, ...] | None  # label values; None: any nonzero label
    window: tuple[float, float] | None = None
    z_range: tuple[int, int] | None = None  # slices to use (the held-out part of a partly trained volume)


# None of these structures is in the shipped model's training data (its card, configs/data_split_mni152.json).
STRUCTURES = [
    Structure("Colin27 hippocampus (AAL 37+38)", "weak", "colin27_ch2.nii.gz", "colin27_aal.nii.gz", (37, 38)),
    Structure("Colin27 amygdala (AAL 41+42)", "weak", "colin27_ch2.nii.gz", "colin27_aal.nii.gz", (41, 42)),
    Structure("MNI152 hippocampus (aseg 17+53)", "weak", "mni152_t1_brain.nii.gz", "mni152_desikan_killiany.nii.gz", (17, 53)),
    Structure("MNI152 amygdala (aseg 18+54)", "weak", "mni152_t1_brain.nii.gz", "mni152_desikan_killiany.nii.gz", (18, 54)),
    Structure("LiTS liver, upper slices (held out)", "good", "lits117_ct.nii.gz", "lits117_label.nii.gz", (1, 2), (-160, 240), (72, 128)),
    Structure("pyradiomics lung1 tumour (CT)", "good", "pyradiomics_lung1_image.nii.gz", "pyradiomics_lung1_label.nii.gz", None),
    Structure("pyradiomics brain1 tumour (MR)", "good", "pyradiomics_brain1_image.nii.gz", "pyradiomics_brain1_label.nii.gz", None),
    Structure("inia19 macaque brain (MR)", "good", "inia19_t1.nii.gz", "inia19_neuromaps.nii.gz", None),
]


class PeakRSS:
    """Samples this process's resident set size every 20 ms while active (bytes)."""

    def __enter__(self) -> "PeakRSS":
        self.start = self.peak = self._read()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    @staticmethod
    def _read() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._read())
            time.sleep(0.02)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._read())


def box_dice(seg: Segmenter, volume: np.ndarray, truth: np.ndarray, slices: list[int], window) -> float:
    """Mean box-prompt Dice over ``slices`` of a (Z, Y, X) volume, box = the truth's tight box."""
    scores = []
    for k in slices:
        seg.set_image(volume[k], window)
        scores.append(dice(seg.predict(box=tight_box(truth[k])).mask, truth[k]))
    return float(np.mean(scores))


def load_structure(s: Structure) -> tuple[np.ndarray, np.ndarray]:
    volume, labels = load_array(s.image), load_array(s.labels)
    truth = labels > 0 if s.values is None else np.isin(labels, s.values)
    if s.z_range is not None:
        volume, truth = volume[slice(*s.z_range)], truth[slice(*s.z_range)]
    return volume, truth


def pick_slices(present: list[int], k: int) -> list[int]:
    """k slices spread over the middle 60 % of the structure's extent (what a user would annotate)."""
    if k == 1:
        return [present[len(present) // 2]]
    return sorted({present[int(round(i))] for i in np.linspace(len(present) * 0.2, len(present) * 0.8 - 1, k)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--time-budget", type=float, default=30.0)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--only", default="", help="run only structures whose title contains this text")
    parser.add_argument("--shots", type=int, nargs="+", default=[1, 3, 5], help="numbers k of annotated slices")
    parser.add_argument("--all-methods-at-every-k", action="store_true")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS, help="methods to run at k = 3 (and every k with the flag above)")
    parser.add_argument("--max-eval-slices", type=int, default=16, help="evaluate on at most this many other slices (evenly spaced)")
    parser.add_argument("--roi-zoom", default="auto", choices=["auto", "off"], help="predict's ROI zoom when scoring (default: the user's)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads (0: torch's default, which the adaptation worker of the app and Slicer uses; 1: steadier on a shared CPU)")
    parser.add_argument("--finals", nargs="+", default=["auto"], choices=FINALS,
                        help="with k >= 2, how the default method's final model is made (each is a row; see waveseg.adaptation.fewshot)")
    parser.add_argument("--decoder-lrs", type=float, nargs="+", default=[None],
                        help="the default method's decoder learning rates to compare (each is a row; default: its own)")
    parser.add_argument("--json", default="", help="also write the rows here")
    args = parser.parse_args()
    args.roi_zoom = args.roi_zoom == "auto" and "auto"
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    args.threads = torch.get_num_threads()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        base = Segmenter.from_pretrained(args.model, runtime="torch")  # adaptation changes weights: no exported graph
    base.roi_zoom = args.roi_zoom  # "auto": as the user predicts after adapting (a small box is zoomed on)
    base_state = {k: v.clone() for k, v in base.model.state_dict().items()}
    print(f"model {base.card.name}; box Dice on the structure's other axial slices; budget {args.time_budget:.0f} s, "
          f"{args.steps} steps, ROI zoom {args.roi_zoom or 'off'}, {args.threads} torch thread(s)\n")
    print("| structure | kind | k | method | Dice before | Dice after | change | gate | validation gain | seconds | peak RSS MB (+ during) |")
    print("|---|---|---:|---|---:|---:|---:|---|---:|---:|---:|")
    rows = []
    for s in [s for s in STRUCTURES if args.only.lower() in s.title.lower()]:
        volume, truth = load_structure(s)
        present = [k for k in range(truth.shape[0]) if truth[k].sum() >= MIN_PIXELS]
        for k_shot in args.shots:
            if len(present) < k_shot + 2:
                print(f"| {s.title} | {s.kind} | {k_shot} | - | only {len(present)} slices show it | | | | | | |")
                continue
            picks = pick_slices(present, k_shot)
            others = [k for k in present if k not in picks]
            others = [others[int(i)] for i in np.linspace(0, len(others) - 1, min(len(others), args.max_eval_slices))]
            base.model.load_state_dict(base_state)
            before = box_dice(base, volume, truth, others, s.window)
            methods = args.methods if (k_shot == 3 or args.all_methods_at_every_k) else (DEFAULT_METHOD,)
            runs = [(m, f, lr) for m in methods for f in (args.finals if m == DEFAULT_METHOD and k_shot > 1 else ["auto"])
                    for lr in (args.decoder_lrs if m == DEFAULT_METHOD else [None])]
            for method, final, lr in runs:
                base.model.load_state_dict(base_state)
                with PeakRSS() as rss:
                    result = adapt(base, [volume[k] for k in picks], [truth[k] for k in picks], structure=s.title,
                                   method=method, window=s.window, steps=args.steps, time_budget_s=args.time_budget, final=final,
                                   decoder_lr=lr, apply=True)
                after = box_dice(base, volume, truth, others, s.window)  # the base model again when the gate said no
                d = result.decision
                shown = (method if final == "auto" else f"{method} ({final})") + ("" if lr is None else f" lr {lr:g}")
                row = {"structure": s.title, "kind": s.kind, "k": k_shot, "method": shown, "final": result.metadata["final"], "slices": picks, "eval_slices": len(others),
                       "dice_before": before, "dice_after": after, "kept": result.kept, "validation_gain": d.gain,
                       "validation_noise": d.noise, "scheme": d.scheme, "seconds": result.seconds,
                       "peak_rss_mb": rss.peak / 2**20, "rss_increase_mb": (rss.peak - rss.start) / 2**20, "message": result.message}
                rows.append(row)
                print(f"| {s.title} | {s.kind} | {k_shot} | {shown} | {before:.3f} | {after:.3f} | {100 * (after - before):+.1f} | "
                      f"{'kept' if result.kept else 'base kept'} | {100 * d.gain:+.1f} ± {100 * d.noise:.1f} | {result.seconds:.1f} | "
                      f"{rss.peak / 2**20:.0f} (+{(rss.peak - rss.start) / 2**20:.0f}) |", flush=True)
    base.model.load_state_dict(base_state)
    if rows:
        summarise(rows, args.time_budget)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


def summarise(rows: list[dict], budget: float) -> None:
    """The issue's goals, checked on these rows."""
    for shown in sorted({r["method"] for r in rows if r["method"].startswith(DEFAULT_METHOD)}):
        weak3 = [r for r in rows if r["kind"] == "weak" and r["k"] == 3 and r["method"] == shown]
        if weak3:
            print(f"\nweak structures, 3 slices, {shown}: changes "
                  + ", ".join(f"{100 * (r['dice_after'] - r['dice_before']):+.1f}" for r in weak3) + " points (goal >= +10)")
    worst = min(rows, key=lambda r: r["dice_after"] - r["dice_before"])
    print(f"worst change of any case after the gate: {100 * (worst['dice_after'] - worst['dice_before']):+.1f} points "
          f"({worst['structure']}, k={worst['k']}, {worst['method']}; goal >= -1)")
    print(f"longest run: {max(r['seconds'] for r in rows):.1f} s (budget {budget:.0f} s, goal within 5 %); "
          f"peak RSS: {max(r['peak_rss_mb'] for r in rows):.0f} MB (goal <= 1536)")


if __name__ == "__main__":
    main()

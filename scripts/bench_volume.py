#!/usr/bin/env python
"""3D benchmark: one 3D box from the ground truth's extent -> propagation -> 3D Dice, time, and
the 2D Dice of every slice.

Every model runs in this one process on the same volumes and the same 3D box. WaveSeg models
(``--models``) run through ``VolumeSession.box3d`` as shipped, then 3 corrective clicks (RITM rule,
each on the currently worst slice) are added and the 3D Dice measured again. The reference
(``--reference``, LiteMedSAM by default) runs the CVPR 2024 challenge's recipe
(``litemedsam_recipe.py``: box on the middle slice, each next slice boxed by the previous mask
plus 3 px, no stop rule inside the box). Per volume it prints where WaveSeg's propagation stopped
and which rule stopped it, and ``--plots`` draws the 2D Dice along the axis. ``--z-margin N``
makes the 3D box N slices longer at each end than the object (a loose box: the test of whether
propagation stops where the object ends). Sessions prefetch the next slices in a background
thread as shipped (``--no-prefetch``: each slice is encoded when propagation reaches it).
Needs scripts/fetch_data.py first.

    .venv/bin/python scripts/bench_volume.py --models default --plots docs/volume_slices
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from litemedsam_recipe import segment_box3d
from scripts_common import VOLUMES, load_array
from waveseg.metrics import dice
from waveseg.predictor import Segmenter
from waveseg.prompting.simulation import next_click


@dataclass(frozen=True)
class VolumeCase:
    title: str
    image: str
    label: str
    values: tuple[int, ...] | None  # label values of the structure; None = every value > 0
    window: tuple[float, float] | None = None
    z_range: tuple[int, int] | None = None  # the slices held out from training
    group: str = "held out"
    # WaveSeg's window where it differs from the reference's ("same": none differs). WaveSeg was trained on
    # CT in soft-tissue and head windows only, and on lungs MedSAM's lung window costs it most of its Dice
    # (tight per-slice boxes, slicerio chest: right lung 0.323 with the lung window, 0.914 with window None
    # (percentile stretch); left lung 0.497 / 0.949), so on lungs it gets None.
    own_window: tuple[float, float] | None | str = "same"

    @property
    def waveseg_window(self) -> tuple[float, float] | None:
        return self.window if self.own_window == "same" else self.own_window


AAL = {"thalamus": (77, 78), "hippocampus": (37, 38), "amygdala": (41, 42)}  # (left, right) AAL values
CASES = [
    VolumeCase("LiTS liver (upper)", "lits117_ct.nii.gz", "lits117_label.nii.gz", (1, 2), (-160, 240), (72, 128)),
    VolumeCase("LiTS tumour (upper)", "lits117_ct.nii.gz", "lits117_label.nii.gz", (2,), (-160, 240), (72, 128)),
    VolumeCase("inia19 macaque brain", "inia19_t1.nii.gz", "inia19_neuromaps.nii.gz", None),
    *[VolumeCase(f"Colin27 {name} {side}", "colin27_ch2.nii.gz", "colin27_aal.nii.gz", (value,))
      for name, values in AAL.items() for side, value in zip(("L", "R"), values)],
    *[VolumeCase(f"pyradiomics {case} lesion", f"pyradiomics_{case}_image.nii.gz", f"pyradiomics_{case}_label.nii.gz",
                 None, group="never seen") for case in ("brain1", "brain2", "breast1", "lung1", "lung2")],
]
# The data census's labelled volumes (scripts/fetch_data.py --only totalseg|slicerio; docs/data.md):
# labels made by software (TotalSegmentator) or in 3D Slicer by an unstated method, so silver standard; never
# trained on. CT windows are MedSAM's preprocessing windows: soft tissue (W400 L40), lung (W1500 L-160), bone (W1800 L400).
SOFT, LUNG, BONE = (-160.0, 240.0), (-910.0, 590.0), (-500.0, 1300.0)
NEW_SOURCES = {  # stem: [(structure, label values, window), ...]
    "totalseg_ct": [("liver", (5,), SOFT), ("spleen", (1,), SOFT), ("right kidney", (2,), SOFT), ("left kidney", (3,), SOFT),
                    ("aorta", (52,), SOFT), ("stomach", (6,), SOFT), ("pancreas", (7,), SOFT), ("L3 vertebra", (29,), BONE),
                    ("left lung", (10, 11), LUNG), ("right lung lower lobe", (14,), LUNG)],
    "totalseg_ctdicom": [("liver", (5,), SOFT), ("spleen", (1,), SOFT), ("aorta", (52,), SOFT), ("T12 vertebra", (32,), BONE)],
    "totalseg_mr": [("liver", (5,), None), ("spleen", (1,), None), ("right kidney", (2,), None), ("left kidney", (3,), None),
                    ("vertebrae", (19,), None)],
    "slicerio_ctchest": [("right lung", (5,), LUNG), ("left lung", (6,), LUNG), ("thoracic spine", (3,), BONE)],
}
CASES += [VolumeCase(f"{stem} {name}", f"{stem}_image.nii.gz", f"{stem}_label.nii.gz", values, window, group="new source, silver labels",
                     own_window=None if window == LUNG else "same")
          for stem, structures in NEW_SOURCES.items() for name, values, window in structures]


def load_case(case: VolumeCase):
    """(image (Z, Y, X), truth (Z, Y, X) bool, spacing (x, y, z) mm) of a case."""
    import SimpleITK as sitk

    image, labels = load_array(case.image), load_array(case.label)
    spacing = sitk.ReadImage(str(VOLUMES / case.image)).GetSpacing()
    if case.z_range:
        image, labels = image[case.z_range[0] : case.z_range[1]], labels[case.z_range[0] : case.z_range[1]]
    truth = labels > 0 if case.values is None else np.isin(labels, case.values)
    return image, truth, tuple(float(s) for s in spacing)


def truth_box(truth: np.ndarray, z_margin: int):
    """Voxel corners (i, j, k) of the truth's extent, ``z_margin`` slices longer at each end."""
    zs, ys, xs = np.nonzero(truth)
    return ((xs.min(), ys.min(), max(zs.min() - z_margin, 0)),
            (xs.max(), ys.max(), min(zs.max() + z_margin, truth.shape[0] - 1)))


def per_slice_dice(mask: np.ndarray, truth: np.ndarray) -> list[float | None]:
    """2D Dice of each axial slice; None where both are empty."""
    return [dice(mask[k], truth[k]) if truth[k].any() or mask[k].any() else None for k in range(truth.shape[0])]


def run_waveseg(seg: Segmenter, image, truth, spacing, window, box, prefetch: bool, roi_zoom: str | bool = "auto") -> dict:
    start = time.perf_counter()
    session = seg.volume_session(image, spacing=spacing, window=window, prefetch=prefetch)
    session.roi_zoom = roi_zoom
    report = session.box3d(*box)
    session.cache.wait()  # slices prefetched past the object's end count too
    seconds = time.perf_counter() - start
    mask = session.mask.copy()
    for _ in range(3):
        per_slice = [dice(session.mask[k], truth[k]) for k in range(truth.shape[0])]
        worst = int(np.argmin([d if truth[k].any() or session.mask[k].any() else 2 for k, d in enumerate(per_slice)]))
        click = next_click(session.mask[worst], truth[worst])
        if click is None:
            break
        session.click((click[0], click[1], worst), positive=bool(click[2]))
    session.close()
    written = sorted(report.written + [int(round((box[0][2] + box[1][2]) / 2))])
    return {"dice": dice(mask, truth), "dice_clicks": dice(session.mask, truth), "seconds": seconds,
            "per_slice": per_slice_dice(mask, truth), "stopped": dict(report.stopped),
            "covered": [written[0], written[-1]]}


def run_reference(seg: Segmenter, image, truth, spacing, window, box) -> dict:
    start = time.perf_counter()
    mask = segment_box3d(seg, image, *box, spacing=spacing, window=window)
    seconds = time.perf_counter() - start
    return {"dice": dice(mask, truth), "seconds": seconds, "per_slice": per_slice_dice(mask, truth)}


def plot_case(path: Path, title: str, truth: np.ndarray, box, results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3))
    ax.axvspan(box[0][2] - 0.5, box[1][2] + 0.5, color="0.92", label="3D box")
    for name, r in results.items():
        ks = [k for k, d in enumerate(r["per_slice"]) if d is not None]
        line, = ax.plot(ks, [r["per_slice"][k] for k in ks], ".-", label=f"{name} (3D {r['dice']:.3f})")
        if "covered" in r:
            for k in r["covered"]:
                ax.axvline(k, color=line.get_color(), ls=":", lw=1)
    ax.set(title=title, xlabel="axial slice", ylabel="2D Dice", ylim=(-0.02, 1.02))
    ax.legend(fontsize=7, loc="lower center")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["default"], help="models run through VolumeSession.box3d")
    parser.add_argument("--reference", default="litemedsam", help="model run with LiteMedSAM's challenge recipe; 'none' to skip")
    parser.add_argument("--cases", nargs="*", help="only cases whose title contains one of these words, in their order")
    parser.add_argument("--z-margin", type=int, default=0, help="slices the 3D box extends past the object at each end")
    parser.add_argument("--runtime", default="auto", choices=["auto", "onnx", "torch"],
                        help="where encoders and decoders run, the same for every model (Segmenter's runtime)")
    parser.add_argument("--no-prefetch", action="store_true",
                        help="encode every slice when propagation reaches it, instead of the next slices in a background thread")
    parser.add_argument("--roi-zoom", default="auto", choices=["auto", "off"],
                        help="VolumeSession's ROI zoom on the boxed slice when the box is small (default: the user's, auto)")
    parser.add_argument("--plots", type=Path, help="folder for one PNG per volume: 2D Dice along the axis")
    parser.add_argument("--json", type=Path, help="write every number (per-slice Dice included) here")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch (and so onnxruntime) threads; 1 by default: on a shared 2-core machine 2 threads thrash")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)  # before any Segmenter: its onnxruntime sessions take torch's thread count
    names = list(args.models) + ([] if args.reference == "none" else [f"{args.reference} (challenge recipe)"])
    segmenters = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for name in dict.fromkeys(list(args.models) + ([] if args.reference == "none" else [args.reference])):
            segmenters[name] = seg = Segmenter.from_pretrained(name, runtime=args.runtime)
            encoded = seg.encode(np.zeros((64, 64), np.float32))
            for _ in range(2):  # an image's first decode, then the per-click step: every graph is exported before timing
                seg.predict_encoded(encoded, box=(8, 8, 40, 40))
    # in the order of --cases' words (a run cut short by time has done the first ones)
    cases = list(dict.fromkeys(c for w in (args.cases or [""]) for c in CASES if w.lower() in c.title.lower()))
    print(f"runtime: {next(iter(segmenters.values())).runtime}, prefetch: {'off' if args.no_prefetch else 'on'}, ROI zoom: {args.roi_zoom}, "
          f"z margin: {args.z_margin}\n")
    print("| volume | " + " | ".join(f"{n}: 3D Dice" for n in names) + " | WaveSeg +3 clicks | seconds | speed vs reference | WaveSeg covered (box) | stopped by |")
    print("|---|" + "---:|" * len(names) + "---:|---|---:|---|---|")
    everything = {}
    zoom = "auto" if args.roi_zoom == "auto" else False
    for case in cases:
        image, truth, spacing = load_case(case)
        box = truth_box(truth, args.z_margin)
        results = {name: run_waveseg(segmenters[name], image, truth, spacing, case.waveseg_window, box, not args.no_prefetch, zoom)
                   for name in args.models}
        if args.reference != "none":
            results[names[-1]] = run_reference(segmenters[args.reference], image, truth, spacing, case.window, box)
        everything[case.title] = {"box_z": [int(box[0][2]), int(box[1][2])], "group": case.group, **results}
        first = results[args.models[0]]
        ref = results.get(names[-1]) if args.reference != "none" else None
        speed = f"{ref['seconds'] / first['seconds']:.1f}x" if ref else "-"
        seconds = " / ".join(f"{r['seconds']:.1f}" for r in results.values())
        stops = "; ".join(f"{k}: {v}" for k, v in first["stopped"].items())
        print(f"| {case.title} | " + " | ".join(f"{results[n]['dice']:.3f}" for n in names)
              + f" | {first['dice_clicks']:.3f} | {seconds} | {speed} | {first['covered'][0]}-{first['covered'][1]} "
              f"({box[0][2]}-{box[1][2]}) | {stops} |", flush=True)
        if args.json:  # after every volume, so that a run cut short keeps what it measured
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(everything, indent=1))
        if args.plots:
            slug = "".join(ch if ch.isalnum() else "_" for ch in case.title.lower()).strip("_")
            plot_case(args.plots / f"{slug}.png", case.title, truth, box, results)
    if len(cases) > 1:
        means = [np.mean([everything[c.title][n]["dice"] for c in cases]) for n in names]
        total = [sum(everything[c.title][n]["seconds"] for c in cases) for n in names]
        print("| **mean** | " + " | ".join(f"**{m:.3f}**" for m in means) + f" | | {' / '.join(f'{t:.1f}' for t in total)} | "
              + (f"{total[-1] / total[0]:.1f}x" if args.reference != "none" else "-") + " | | |")


if __name__ == "__main__":
    main()

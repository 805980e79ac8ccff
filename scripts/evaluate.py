#!/usr/bin/env python
"""Benchmark WaveSeg backbones against LiteMedSAM on the held-out split (DESIGN.md protocol).

All models run in this one process on the same held-out slices and prompts:
  * box Dice with the tight box and with a jittered box (seeded); the "fill the box" baseline;
  * clicks only (RITM rule: next click at the distance-transform maximum of the larger error
    region, previous logits fed back with the clicks pinned into them, as ``Segmenter`` does):
    Dice after 1/3/5 clicks, NoC@85/@90 (IoU, 20 clicks max);
  * box + 5 corrective clicks;
  * the same box, clicks and box + 5 clicks through ``InteractiveSession`` with ROI zoom ("auto",
    the public API's default: a small box is answered from a re-encoded crop around it; since
    2026-11-30 ``Segmenter.predict`` zooms on a small box the same way, mask for mask);
  * median encoder time and median per-click decoder time, and their ratios to LiteMedSAM;
  * NSD (normalised surface Dice at a 2-pixel tolerance, MONAI's ``compute_surface_dice`` through
    ``waveseg.metrics.surface_dice``) of the box, jittered box, 5-click and box + 5-click masks;
  * scribbles and lasso (issue #26, ``scripts/stroke_protocol.py``): ScribblePrompt's protocol (a
    scribble in the largest error region at each step) and one noisy-outline lasso + 3 scribbles:
    Dice after 1/3/5 scribbles and interactions to reach Dice 0.85 beside the clicks'; ``--no-roi``
    skips the ROI-zoom session protocols (to keep a stroke run short);
  * with ``--by-modality``: the same numbers per modality and per (modality, source), with n and the
    number of patients, and the gaps to the goals of issue #23 (``scripts/modality_report.py``).
Slices are the model-frame slices of ``scripts/build_slices.py`` (test part); several ``--slices``
files are evaluated as one set. Writes a Markdown report and a Dice-versus-clicks plot.

    .venv/bin/python scripts/evaluate.py --models litemedsam runs/wave-gms-small/wave-gms.json \
        [--limit 60] [--report reports/benchmark.md]
    .venv/bin/python scripts/evaluate.py --models litemedsam default --by-modality --per-group 24 \
        --slices ~/.cache/waveseg/slices_unseen_lesions/test.npz ~/.cache/waveseg/slices_unseen_packages/test.npz
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

import modality_report
import stroke_protocol
from scripts_common import VOLUMES
from waveseg.metrics import dice, iou, surface_dice
from waveseg.predictor import Segmenter
from waveseg.prompting.simulation import jittered_box, next_click, tight_box

MAX_CLICKS = 20
DEFAULT_REPORT = "reports/benchmark.md"
DEFAULT_SLICES = VOLUMES.parent / "slices" / "test.npz"


def click_loop(seg: Segmenter, encoded, truth: np.ndarray, box, n_clicks: int, timings: list[float],
               feed_back: str = "logits"):
    """Run RITM clicks (after an optional box); return the list of masks after each click.

    feed_back: what each click is decoded with besides the clicks and box: the earlier "logits"
    (the protocol), the earlier binary "mask", or "none" (scripts/bench_mask_feedback.py)."""
    points, labels, logits, masks = [], [], None, []
    prediction = None
    if box is not None:
        out = seg.predict_encoded(encoded, box=box)
        prediction, logits = out.mask, out.logits
    for _ in range(n_clicks):
        click = next_click(prediction, truth)
        if click is None:
            masks.append(prediction)
            continue
        points.append(click[:2])
        labels.append(click[2])
        earlier = {"logits": logits, "mask": prediction, "none": None}[feed_back]
        start = time.perf_counter()
        out = seg.predict_encoded(encoded, points=points, labels=labels, box=box, mask_input=earlier)
        timings.append(time.perf_counter() - start)
        prediction, logits = out.mask, out.logits
        masks.append(prediction)
    return masks


def zoom_click_loop(seg: Segmenter, image: np.ndarray, truth: np.ndarray, box, n_clicks: int) -> list[np.ndarray]:
    """``click_loop`` through the public ``InteractiveSession`` with ``roi_zoom="auto"``."""
    session = seg.session(image, roi_zoom="auto")
    prediction = session.set_box(box) if box is not None else None
    masks = []
    for _ in range(n_clicks):
        click = next_click(prediction, truth)
        if click is not None:
            prediction = session.add_click(click[0], click[1], positive=bool(click[2]))
        masks.append(prediction)
    return masks


def clicks_to_reach(masks: list[np.ndarray], truth: np.ndarray, threshold: float) -> int:
    """NoC: the first click count whose mask reaches IoU ``threshold``; ``MAX_CLICKS`` if none does."""
    return next((i + 1 for i, mask in enumerate(masks) if iou(mask, truth) >= threshold), MAX_CLICKS)


def chosen_masks(data: dict, limit: int) -> np.ndarray:
    """Indices of at most ``limit`` held-out masks, evenly spread over all held-out sets."""
    n = len(data["mask_slice"])
    return np.unique(np.linspace(0, n - 1, min(limit, n)).astype(int))


def evaluate(seg: Segmenter, data, limit: int, seed: int, label: str, chosen: np.ndarray | None = None,
             roi: bool = True) -> dict:
    """Per-mask results of every protocol step; ``chosen`` (mask indices) overrides ``limit``."""
    rng = np.random.default_rng(seed)
    results = defaultdict(list)
    enc_times, click_times = [], []
    by_slice = defaultdict(list)
    chosen = chosen_masks(data, limit) if chosen is None else chosen
    for m in chosen:
        by_slice[int(data["mask_slice"][m])].append(int(m))
    bar = tqdm(total=len(chosen), desc=label, unit="mask")
    for s, mask_ids in by_slice.items():
        image = data["images"][s]
        start = time.perf_counter()
        encoded = seg.encode(image)
        enc_times.append(time.perf_counter() - start)
        for m in mask_ids:
            truth = data["masks"][m]
            box = tight_box(truth)
            fill = np.zeros_like(truth)
            fill[int(box[1]) : int(box[3]) + 1, int(box[0]) : int(box[2]) + 1] = True
            results["box_fill"].append(dice(fill, truth))
            box_mask = seg.predict_encoded(encoded, box=box).mask
            jitter_mask = seg.predict_encoded(encoded, box=jittered_box(truth, rng)).mask
            results["box"].append(dice(box_mask, truth))
            results["box_jitter"].append(dice(jitter_mask, truth))
            results["nsd_box"].append(surface_dice(box_mask, truth))
            results["nsd_box_jitter"].append(surface_dice(jitter_mask, truth))
            results["box_roi"].append(dice(seg.session(image, roi_zoom="auto").set_box(box), truth))
            clicks = click_loop(seg, encoded, truth, None, MAX_CLICKS, click_times)
            results["curve"].append([dice(c, truth) for c in clicks])
            for threshold in (85, 90):
                results[f"noc{threshold}"].append(clicks_to_reach(clicks, truth, threshold / 100))
            results["nsd_click5"].append(surface_dice(clicks[4], truth))
            box_5clicks = click_loop(seg, encoded, truth, box, 5, click_times)[-1]
            results["box_5clicks"].append(dice(box_5clicks, truth))
            results["nsd_box_5clicks"].append(surface_dice(box_5clicks, truth))
            if roi:
                zoomed = zoom_click_loop(seg, image, truth, None, MAX_CLICKS)
                results["click5_roi"].append(dice(zoomed[4], truth))
                results["noc85_roi"].append(clicks_to_reach(zoomed, truth, 0.85))
                results["box_5clicks_roi"].append(dice(zoom_click_loop(seg, image, truth, box, 5)[-1], truth))
            for key, curve in stroke_protocol.run(seg, image, encoded, truth, seed + int(m)).items():
                results[key].append(curve)
            results["structure"].append(str(data["mask_name"][m]))
            results["mask_index"].append(m)
            bar.update(1)
    bar.close()
    results["enc_ms"] = 1000 * statistics.median(enc_times)
    results["click_ms"] = 1000 * statistics.median(click_times)
    return results


def summarize(r: dict) -> dict:
    curve = np.array(r["curve"])
    return {
        "n": len(r["box"]), "box_fill": np.mean(r["box_fill"]), "box": np.mean(r["box"]), "box_jitter": np.mean(r["box_jitter"]),
        "box_roi": np.mean(r["box_roi"]), "click1": curve[:, 0].mean(), "click3": curve[:, 2].mean(), "click5": curve[:, 4].mean(),
        "noc85": np.mean(r["noc85"]), "noc90": np.mean(r["noc90"]), "box_5clicks": np.mean(r["box_5clicks"]),
        "click5_roi": _mean(r["click5_roi"]), "noc85_roi": _mean(r["noc85_roi"]), "box_5clicks_roi": _mean(r["box_5clicks_roi"]),
        "nsd_box": np.mean(r["nsd_box"]), "nsd_box_jitter": np.mean(r["nsd_box_jitter"]),
        "nsd_click5": np.mean(r["nsd_click5"]), "nsd_box_5clicks": np.mean(r["nsd_box_5clicks"]),
        "enc_ms": r["enc_ms"], "click_ms": r["click_ms"], "curve": curve.mean(axis=0),
        "by_structure": _by_structure(r, curve),
        **({"strokes": stroke_protocol.summarize(r)} if r.get("scribble_curve") else {}),
    }


def _mean(values: list) -> float:
    """The mean, or NaN for a protocol that was skipped (``--no-roi``)."""
    return float(np.mean(values)) if len(values) else float("nan")


def _by_structure(r: dict, curve: np.ndarray) -> dict:
    """structure -> (n, box Dice, Dice after 5 clicks, box + 5 clicks, NoC@85), to show where the gaps are."""
    names = np.array(r["structure"])
    return {name: (int((names == name).sum()), float(np.mean(np.array(r["box"])[names == name])),
                   float(curve[names == name, 4].mean()), float(np.mean(np.array(r["box_5clicks"])[names == name])),
                   float(np.mean(np.array(r["noc85"])[names == name])))
            for name in sorted(set(r["structure"]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["litemedsam"])
    parser.add_argument("--limit", type=int, default=10_000, help="at most this many structure masks (evenly spread)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--slices", nargs="+", default=[str(DEFAULT_SLICES)],
                        help="test.npz files of scripts/build_slices.py, evaluated as one set "
                             "(default: the held-out part of configs/data_split.json)")
    parser.add_argument("--by-modality", action="store_true",
                        help="also report per modality and per (modality, source), with n and patients")
    parser.add_argument("--per-group", type=int, default=None,
                        help="with --by-modality: at most this many masks per (modality, source), evenly spread")
    parser.add_argument("--no-roi", action="store_true", help="skip the ROI-zoom session protocols (shorter runs)")
    parser.add_argument("--report", default=DEFAULT_REPORT)
    parser.add_argument("--runtime", default="auto", choices=["auto", "onnx", "torch"],
                        help="where encoders and decoders run, the same for every model (Segmenter's runtime)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: no thrashing on shared cores)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    data = modality_report.load_slices(args.slices)
    chosen = modality_report.choose_per_group(data, args.per_group) if args.by_modality and args.per_group else None
    summaries, per_mask = {}, {}
    for name in args.models:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            seg = Segmenter.from_pretrained(name, runtime=args.runtime)
        label = seg.card.name if name != "litemedsam" else "litemedsam"
        if label in summaries:  # two versions of one model: tell them apart by their folder
            label = f"{label} ({Path(name).parent.name})"
        per_mask[label] = evaluate(seg, data, args.limit, args.seed, label, chosen, roi=not args.no_roi)
        summaries[label] = summarize(per_mask[label])
    ref = summaries.get("litemedsam")
    default_slices = [Path(p) for p in args.slices] == [DEFAULT_SLICES]
    slices_shown = " ".join(args.slices).replace(str(Path.home()), "~")
    by_modality = ' --by-modality' + (f' --per-group {args.per_group}' if args.per_group else '') if args.by_modality else ''
    limit_shown = '' if chosen is not None else f' --limit {args.limit}'
    lines = [
        "# WaveSeg benchmark (held-out data)", "",
        f"Command: `.venv/bin/python scripts/evaluate.py --models {' '.join(args.models)}{limit_shown} --runtime {args.runtime}{by_modality}"
        f"{' --no-roi' if args.no_roi else ''}{'' if args.report == DEFAULT_REPORT else ' --report ' + args.report}"
        f"{'' if default_slices else ' --slices ' + slices_shown}`", "",
        f"Runtime: {seg.runtime} (encoders and per-click decoder, the same for every model). Click pinning: "
        f"{'on' if seg.pin_clicks else 'off'} (Segmenter's default; see scripts/bench_click_pinning.py).", "",
        f"{next(iter(summaries.values()))['n']} structure masks on held-out slices "
        f"({'configs/data_split.json, test part' if default_slices else slices_shown}); "
        "Dice in the 256 x 256 model frame; all models in one process on the same prompts.", "",
        "| model | box-fill baseline | box | jittered box | box + ROI zoom | 1 click | 3 clicks | 5 clicks | NoC@85 | NoC@90 | box + 5 clicks | encoder ms (ratio) | per-click ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, s in summaries.items():
        ratio = f" ({ref['enc_ms'] / s['enc_ms']:.1f}x faster)" if ref and label != "litemedsam" else ""
        lines.append(f"| {label} | {s['box_fill']:.3f} | {s['box']:.3f} | {s['box_jitter']:.3f} | {s['box_roi']:.3f} | {s['click1']:.3f} | "
                     f"{s['click3']:.3f} | {s['click5']:.3f} | {s['noc85']:.1f} | {s['noc90']:.1f} | {s['box_5clicks']:.3f} | "
                     f"{s['enc_ms']:.0f}{ratio} | {s['click_ms']:.0f} |")
    if not args.no_roi:
        lines += ["", "With ROI zoom (`InteractiveSession(roi_zoom=\"auto\")`, the public API's default), same prompts:", "",
                  "| model | box | 5 clicks | NoC@85 | box + 5 clicks |", "|---|---:|---:|---:|---:|"]
        lines += [f"| {label} | {s['box_roi']:.3f} | {s['click5_roi']:.3f} | {s['noc85_roi']:.1f} | {s['box_5clicks_roi']:.3f} |"
                  for label, s in summaries.items()]
    lines += ["", "Per structure: Dice of box / 5 clicks / box + 5 clicks; NoC@85", "",
              "| structure | n | " + " | ".join(summaries) + " |", "|---|---:|" + "---|" * len(summaries)]
    for name, (n, *_) in next(iter(summaries.values()))["by_structure"].items():
        cells = [" / ".join(f"{v:.2f}" for v in s["by_structure"][name][1:4]) + f"; {s['by_structure'][name][4]:.1f}"
                 for s in summaries.values()]
        lines.append(f"| {name} | {n} | " + " | ".join(cells) + " |")
    if all("strokes" in s for s in summaries.values()):
        lines += [""] + stroke_protocol.table({label: s["strokes"] for label, s in summaries.items()})
    grouped = modality_report.group_summaries(per_mask, data, summarize) if args.by_modality else None
    if grouped:
        lines += modality_report.tables(grouped, roi=not args.no_roi)
    report = Path(args.report)
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text("\n".join(lines) + "\n")
    summary = {label: {k: (v.tolist() if isinstance(v, np.ndarray) else v if isinstance(v, dict) else float(v))
                       for k, v in s.items()} for label, s in summaries.items()}
    extra = {"by_modality": modality_report.to_json(grouped)} if grouped else {}
    report.with_suffix(".json").write_text(json.dumps({"command": lines[2], "models": summary, **extra}, indent=1))
    print("\n".join(lines))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        for label, s in summaries.items():
            ax.plot(range(1, MAX_CLICKS + 1), s["curve"], marker="o", markersize=3, label=label)
        ax.set_xlabel("clicks (RITM rule)")
        ax.set_ylabel("mean Dice")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(report.with_suffix(".png"), dpi=120)
        print(f"wrote {report} and {report.with_suffix('.png')}")
    except ImportError:
        print(f"wrote {report} (install matplotlib for the plot)")


if __name__ == "__main__":
    main()

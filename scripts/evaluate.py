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
  * median encoder time and median per-click decoder time, and their ratios to LiteMedSAM.
Slices are the model-frame slices of ``scripts/build_slices.py`` (test part). Writes a Markdown
report and a Dice-versus-clicks plot.

    .venv/bin/python scripts/evaluate.py --models litemedsam runs/wave-gms-small/wave-gms.json \
        [--limit 60] [--report reports/benchmark.md]
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

from scripts_common import VOLUMES
from waveseg.metrics import dice, iou
from waveseg.predictor import Segmenter
from waveseg.prompt_simulation import jittered_box, next_click, tight_box

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


def evaluate(seg: Segmenter, data, limit: int, seed: int, label: str) -> dict:
    rng = np.random.default_rng(seed)
    results = defaultdict(list)
    enc_times, click_times = [], []
    by_slice = defaultdict(list)
    chosen = chosen_masks(data, limit)
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
            results["box"].append(dice(seg.predict_encoded(encoded, box=box).mask, truth))
            results["box_jitter"].append(dice(seg.predict_encoded(encoded, box=jittered_box(truth, rng)).mask, truth))
            results["box_roi"].append(dice(seg.session(image, roi_zoom="auto").set_box(box), truth))
            clicks = click_loop(seg, encoded, truth, None, MAX_CLICKS, click_times)
            results["curve"].append([dice(c, truth) for c in clicks])
            for threshold in (85, 90):
                results[f"noc{threshold}"].append(clicks_to_reach(clicks, truth, threshold / 100))
            results["box_5clicks"].append(dice(click_loop(seg, encoded, truth, box, 5, click_times)[-1], truth))
            zoomed = zoom_click_loop(seg, image, truth, None, MAX_CLICKS)
            results["click5_roi"].append(dice(zoomed[4], truth))
            results["noc85_roi"].append(clicks_to_reach(zoomed, truth, 0.85))
            results["box_5clicks_roi"].append(dice(zoom_click_loop(seg, image, truth, box, 5)[-1], truth))
            results["structure"].append(str(data["mask_name"][m]))
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
        "click5_roi": np.mean(r["click5_roi"]), "noc85_roi": np.mean(r["noc85_roi"]), "box_5clicks_roi": np.mean(r["box_5clicks_roi"]),
        "enc_ms": r["enc_ms"], "click_ms": r["click_ms"], "curve": curve.mean(axis=0),
        "by_structure": _by_structure(r, curve),
    }


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
    parser.add_argument("--slices", default=str(DEFAULT_SLICES),
                        help="test.npz of scripts/build_slices.py (default: the held-out part of configs/data_split.json)")
    parser.add_argument("--report", default=DEFAULT_REPORT)
    parser.add_argument("--runtime", default="auto", choices=["auto", "onnx", "torch"],
                        help="where encoders and decoders run, the same for every model (Segmenter's runtime)")
    args = parser.parse_args()
    data = dict(np.load(args.slices))
    summaries = {}
    for name in args.models:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            seg = Segmenter.from_pretrained(name, runtime=args.runtime)
        label = seg.card.name if name != "litemedsam" else "litemedsam"
        if label in summaries:  # two versions of one model: tell them apart by their folder
            label = f"{label} ({Path(name).parent.name})"
        summaries[label] = summarize(evaluate(seg, data, args.limit, args.seed, label))
    ref = summaries.get("litemedsam")
    default_slices = Path(args.slices) == DEFAULT_SLICES
    slices_shown = args.slices.replace(str(Path.home()), "~")
    lines = [
        "# WaveSeg benchmark (held-out data)", "",
        f"Command: `.venv/bin/python scripts/evaluate.py --models {' '.join(args.models)} --limit {args.limit} --runtime {args.runtime}"
        f"{'' if args.report == DEFAULT_REPORT else ' --report ' + args.report}"
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
    report = Path(args.report)
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text("\n".join(lines) + "\n")
    summary = {label: {k: (v.tolist() if isinstance(v, np.ndarray) else v if isinstance(v, dict) else float(v))
                       for k, v in s.items()} for label, s in summaries.items()}
    report.with_suffix(".json").write_text(json.dumps({"command": lines[2], "models": summary}, indent=1))
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

#!/usr/bin/env python
"""In-context proposals (waveseg.examples) on never-trained structures and never-seen sources.

For each structure and k in (1, 3, 5): k annotated axial slices of one volume (spread over the
middle 60 % of the structure's extent, as scripts/bench_adapt.py picks them) make an ExampleSet;
it is evaluated on that volume's other slices ("within") and, where the same structure is labelled
in another volume, on that volume's slices ("across": Colin27 AAL -> MNI152 FreeSurfer aseg;
TotalSegmentator's CT sample -> its DICOM CT sample). One model, one process, the same slices and
the same embeddings for every method:
  * no prompt: the proposal from the examples alone (``propose``): within the examples' volume
    the shape interpolated from the example slices around the slice is the prompt
    (``waveseg.examples.interpolation``) and the map only looks near the examples' masks
    (``NEAR_OWN_EXAMPLES`` cells; ``--near``), as ``propose_other_slices`` prompts it; scored on
    every evaluated slice, written or not;
    "map only, as written" is the similarity map's proposal without the interpolated shape,
    written only where confident (an unwritten one scores as an empty mask): the volume tool
    before 2026-12-06, and the only path across patients, where there is no shape to interpolate;
  * volume tool: what ``propose_other_slices`` (within) and ``propose_volume`` with the example
    set (across) write in a real ``VolumeSession`` on the evaluated and the absent slices, the
    examples set as the user's annotated slices; within, beyond the examples' range either
    propagated ("propagate", the default) or proposed slice by slice ("propose"); Dice on the
    evaluated slices (an unwritten slice is empty) and the share of absent slices written;
  * 1 click: the RITM first click (``waveseg.prompting.simulation.next_click``) without examples
    (``predict_encoded``) and with them (``propose(points=...)``: within the volume with the
    interpolated shape, across patients with the examples' shape placed at the click,
    ``waveseg.examples.shape_transfer``);
  * NoC@85 (capped at 20): RITM clicks, each decoded with all earlier clicks and the previous
    logits; with examples the written proposal counts as click 0 and its logits and box start the
    loop (as a click on a proposed slice does in ``VolumeSession.click``, which keeps the box
    unless the clicks-only answer honours more clicks; an unwritten proposal starts nothing);
    without, the clicks alone. (Sending
    the first click through ``propose`` instead cost clicks: 8.2 against 5.2 on the Colin27
    thalamus, k = 3, 6 slices, in a one-off run during development);
  * box: the tight box through ``Segmenter.predict`` (the shipped path, ROI zoom "auto");
  * adaptation: ``waveseg.adaptation.fewshot.adapt`` on the same k slices with its default
    settings (decoder-only, 30 s budget, do-no-harm gate), then its box and 1-click Dice on the
    same slices (the encoder is frozen, so the same embeddings serve); "kept" says whether the
    gate kept the adapted weights (if not, the base model's numbers are repeated);
  * time per slice: median seconds of one proposal (similarity map + one or two decoder passes) and of
    one plain click (one decoder pass), after the slice is encoded.
Slices without the structure ("absent": beyond its extent, inside the body) measure the
low-confidence flag: the fraction of absent slices flagged (empty or not confident) and of present
slices wrongly flagged, for the shipped thresholds and for other margin thresholds (``--absent``
table). Labels: AAL and FreeSurfer are atlases drawn by people / an atlas pipeline;
TotalSegmentator's labels are its software's output (silver standard).
Needs scripts/fetch_data.py (Colin27, MNI152) and scripts/fetch_package_samples.py (totalseg).

    .venv/bin/python scripts/bench_in_context.py [--shots 1 3 5] [--eval 8] [--no-adapt] [--only TEXT]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from scripts_common import VOLUMES, load_array
from waveseg.adaptation.fewshot import adapt
from waveseg.examples import proposal as proposal_module
from waveseg.examples.example_set import ExampleSet
from waveseg.examples.interpolation import interpolate_annotated
from waveseg.examples.proposal import Proposal, propose
from waveseg.examples.volume_proposals import NEAR_OWN_EXAMPLES, propose_other_slices, propose_volume
from waveseg.metrics import dice
from waveseg.predictor import Segmenter
from waveseg.prompting.simulation import next_click, tight_box
from waveseg.volume import _clicks_missed

MAX_CLICKS = 20
TARGET = 0.85
CT_WINDOW = (-160.0, 240.0)


@dataclass
class Volume:
    title: str
    image: str
    labels: str
    values: dict[str, tuple[int, ...]]  # structure -> label values in this volume
    window: tuple[float, float] | None = None


def _names(stem: str) -> dict[str, int]:
    return {name: int(value) for value, name in json.loads((VOLUMES / f"{stem}_label.json").read_text()).items()}


COLIN = Volume("Colin27 (AAL)", "colin27_ch2.nii.gz", "colin27_aal.nii.gz",
               {"thalamus": (77, 78), "hippocampus": (37, 38), "amygdala": (41, 42)})
MNI = Volume("MNI152 (FreeSurfer aseg)", "mni152_t1_brain.nii.gz", "mni152_desikan_killiany.nii.gz",
             {"thalamus": (10, 49), "hippocampus": (17, 53), "amygdala": (18, 54)})


def _totalseg(stem: str, title: str) -> Volume:
    names = _names(stem)
    return Volume(title, f"{stem}_image.nii.gz", f"{stem}_label.nii.gz",
                  {organ: (names[organ],) for organ in ("spleen", "aorta") if organ in names}, CT_WINDOW)


# (source, target or None); never trained on: thalamus, hippocampus, amygdala (held out in every
# configs/data_split*.json) and the TotalSegmentator samples (never-seen sources, model card)
PAIRS = [("colin", "mni"), ("totalseg_ct", "totalseg_ctdicom")]


def _volume(key: str) -> Volume:
    if key == "colin":
        return COLIN
    if key == "mni":
        return MNI
    return _totalseg(key, {"totalseg_ct": "TotalSegmentator CT", "totalseg_ctdicom": "TotalSegmentator DICOM CT"}[key])


def present_slices(truth: np.ndarray, min_pixels: int = 30) -> list[int]:
    return [k for k in range(truth.shape[0]) if truth[k].sum() >= min_pixels]


def absent_slices(truth: np.ndarray, image: np.ndarray, count: int) -> list[int]:
    """Slices with no voxel of the structure but with the body (nonzero image spread), near its ends."""
    has = np.flatnonzero(truth.any(axis=(1, 2)))
    lo, hi = int(has.min()), int(has.max())
    candidates = [k for d in range(3, 30) for k in (lo - d, hi + d) if 0 <= k < truth.shape[0]]
    body = [k for k in candidates if np.ptp(image[k]) > 0 and (image[k] > np.percentile(image[k], 50)).mean() > 0.2]
    return body[:count]


def written(proposal: Proposal, between: bool) -> bool:
    """Whether ``propose_other_slices`` / ``propose_volume`` writes this proposal on its slice."""
    return bool((proposal.confident or between) and proposal.mask.any())


def noc(seg: Segmenter, enc, truth: np.ndarray, proposal: Proposal | None, between: bool = False) -> int:
    """Clicks to reach Dice TARGET (MAX_CLICKS + 1 when never reached). With a written proposal it is
    click 0 and each click refines it as ``VolumeSession.click`` does after a proposal: all clicks so
    far with the previous logits and the proposal's box, unless the clicks-only answer contradicts
    fewer clicks."""
    out, box = None, None
    if proposal is not None and written(proposal, between):
        out, box = proposal.prediction, proposal.box
        if dice(out.mask, truth) >= TARGET:
            return 0
    points, labels = [], []
    for n in range(1, MAX_CLICKS + 1):
        x, y, label = next_click(None if out is None else out.mask, truth)
        points.append([x, y])
        labels.append(label)
        previous = None if out is None else out.logits
        out = seg.predict_encoded(enc, points=points, labels=labels, box=box, mask_input=previous)
        if box is not None and _clicks_missed(out.mask, points, labels):
            plain = seg.predict_encoded(enc, points=points, labels=labels, mask_input=previous)
            if _clicks_missed(plain.mask, points, labels) < _clicks_missed(out.mask, points, labels):
                out, box = plain, None
        if dice(out.mask, truth) >= TARGET:
            return n
    return MAX_CLICKS + 1


def evaluate(seg: Segmenter, images: list[np.ndarray], truths: list[np.ndarray], encs: list, examples: ExampleSet,
             absent_encs: list, window: tuple[float, float] | None, near: int | None = None,
             priors: list | None = None, absent_priors: list | None = None) -> dict:
    """``priors``: per evaluated slice (shape prior (H, W) bool, between two examples), and
    ``absent_priors`` per absent slice (its shape prior), within the examples' volume; None across
    patients."""
    rows = {key: [] for key in ("no_prompt", "no_prompt_map", "click", "click_ex", "noc", "noc_ex", "box", "t_prop", "t_click")}
    signals = {"present": [], "absent": []}
    for n, (image, truth, enc) in enumerate(zip(images, truths, encs)):
        prior, between = priors[n] if priors is not None else (None, False)
        t0 = time.perf_counter()
        proposal = propose(seg, enc, examples, near_examples=near, shape_prior=prior)
        rows["t_prop"].append(time.perf_counter() - t0)
        rows["no_prompt"].append(dice(proposal.mask, truth))
        by_map = proposal if prior is None else propose(seg, enc, examples, near_examples=near)
        rows["no_prompt_map"].append(dice(by_map.mask, truth) if written(by_map, False) else 0.0)
        signals["present"].append((*proposal.confidence, bool(proposal.confident and proposal.mask.any()),
                                   proposal.evidence.get("mask_margin", 0.0), proposal.evidence.get("area_ratio", 0.0),
                                   rows["no_prompt"][-1]))
        x, y, label = next_click(None, truth)
        t0 = time.perf_counter()
        plain = seg.predict_encoded(enc, points=[[x, y]], labels=[label])
        rows["t_click"].append(time.perf_counter() - t0)
        rows["click"].append(dice(plain.mask, truth))
        rows["click_ex"].append(dice(propose(seg, enc, examples, points=[[x, y]], labels=[label], shape_prior=prior).mask, truth))
        rows["noc"].append(noc(seg, enc, truth, None))
        rows["noc_ex"].append(noc(seg, enc, truth, proposal, between))
        seg.set_image(image, window)  # the shipped box path (ROI zoom) needs the image set
        rows["box"].append(dice(seg.predict(box=tight_box(truth)).mask, truth))
    for n, enc in enumerate(absent_encs):
        proposal = propose(seg, enc, examples, near_examples=near, shape_prior=None if absent_priors is None else absent_priors[n])
        signals["absent"].append((*proposal.confidence, bool(proposal.confident and proposal.mask.any()),
                                  proposal.evidence.get("mask_margin", 0.0), proposal.evidence.get("area_ratio", 0.0),
                                  float(proposal.mask.sum())))
    summary = {key: float(np.mean(v)) if key.startswith(("no_", "click", "box")) else
               (float(np.median(v)) if key.startswith("t_") else float(np.mean(v))) for key, v in rows.items()}
    summary["noc85_reached"] = float(np.mean([n <= MAX_CLICKS for n in rows["noc_ex"]]))
    summary["slices"] = len(truths)
    summary["signals"] = signals
    return summary


def volume_tool(seg: Segmenter, image: np.ndarray, truth: np.ndarray, window, examples: ExampleSet,
                picks: list[int] | None, chosen: list[int], absent: list[int], beyond: str, cache_from=None):
    """(mean Dice on ``chosen``, share of ``absent`` slices written, the session) after the volume
    tool: ``propose_other_slices`` from the ``picks`` slices set as annotated, or, with ``picks``
    None, ``propose_volume`` with ``examples`` (another patient's set)."""
    vs = seg.volume_session(image, window=window, prefetch=False, cache_mb=4096, share_cache_with=cache_from)
    if picks is None:
        propose_volume(vs, examples, 0, slices=chosen + absent)
    else:
        for k in picks:
            vs.set_slice_mask(0, k, truth[k])
        propose_other_slices(vs, 0, slices=chosen + absent, beyond=beyond)
    scores = [dice(vs.mask[k], truth[k]) for k in chosen]
    return float(np.mean(scores)), float(np.mean([vs.mask[k].any() for k in absent])) if absent else 0.0, vs


def adapted_scores(seg: Segmenter, images, truths, encs, window) -> tuple[float, float]:
    box, click = [], []
    for image, truth, enc in zip(images, truths, encs):
        seg.set_image(image, window)
        box.append(dice(seg.predict(box=tight_box(truth)).mask, truth))
        x, y, label = next_click(None, truth)
        click.append(dice(seg.predict_encoded(enc, points=[[x, y]], labels=[label]).mask, truth))
    return float(np.mean(box)), float(np.mean(click))


def _spread(items: list[int], count: int) -> list[int]:
    if len(items) <= count:
        return items
    return [items[int(round(i))] for i in np.linspace(0, len(items) - 1, count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--shots", type=int, nargs="+", default=[1, 3, 5])
    parser.add_argument("--eval", type=int, default=8, help="evaluated slices per volume (spread over the structure)")
    parser.add_argument("--absent", type=int, default=6, help="structure-free slices per volume")
    parser.add_argument("--no-adapt", action="store_true")
    parser.add_argument("--near", type=int, default=NEAR_OWN_EXAMPLES,
                        help="within the examples' volume, look for the structure only this many embedding cells "
                             "around their masks (propose's near_examples; default: propose_other_slices's "
                             f"{NEAR_OWN_EXAMPLES}); -1: everywhere")
    parser.add_argument("--only", default="", help="run only structures whose name contains this text")
    parser.add_argument("--out", default="reports/bench_in_context")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        seg = Segmenter.from_pretrained(args.model)
    base_state = {k: v.clone() for k, v in seg.model.state_dict().items()}
    results = []
    for source_key, target_key in PAIRS:
        source, target = _volume(source_key), _volume(target_key)
        s_image, s_labels = load_array(source.image), load_array(source.labels)
        t_image, t_labels = load_array(target.image), load_array(target.labels)
        for structure, values in source.values.items():
            if args.only not in structure:
                continue
            s_truth = np.isin(s_labels, values)
            present = present_slices(s_truth)
            sets = {"within": (s_image, s_truth, source)}
            if structure in target.values:
                sets["across"] = (t_image, np.isin(t_labels, target.values[structure]), target)
            encoded, sessions = {}, {}  # sessions: one per volume, whose embedding cache the next ones share
            for where, (image, truth, vol) in sets.items():
                absent = absent_slices(truth, image, args.absent)
                encoded[where] = {"absent": [seg.encode(image[k], vol.window) for k in absent], "absent_slices": absent}
            for k_shot in args.shots:
                picks = [present[int(i)] for i in np.linspace(len(present) * 0.2, len(present) * 0.8, k_shot)]
                examples = ExampleSet.from_slices(seg, [s_image[k] for k in picks], [s_truth[k] for k in picks],
                                                  structure, source.window)
                evals = {}
                for where, (image, truth, vol) in sets.items():
                    pool = [k for k in present_slices(truth) if not (where == "within" and k in picks)]
                    chosen = _spread(pool, args.eval)
                    images = [image[k] for k in chosen]
                    truths = [truth[k] for k in chosen]
                    encs = [seg.encode(im, vol.window) for im in images]
                    evals[where] = (images, truths, encs, vol, chosen)
                for where, (images, truths, encs, vol, chosen) in evals.items():
                    # the location prior holds in the examples' own volume only
                    near = args.near if where == "within" and args.near >= 0 else None
                    priors = absent_priors = None
                    if where == "within":  # as propose_other_slices prompts the slices of the examples' volume
                        annotated = {k: s_truth[k] for k in picks}
                        priors = [(interpolate_annotated(annotated, k), min(picks) < k < max(picks)) for k in chosen]
                        absent_priors = [interpolate_annotated(annotated, k) for k in encoded[where]["absent_slices"]]
                    summary = evaluate(seg, images, truths, encs, examples, encoded[where]["absent"], vol.window, near,
                                       priors, absent_priors)
                    summary.update(structure=structure, k=k_shot, where=where, source=source.title, target=vol.title,
                                   eval_slices=chosen, example_slices=picks, absent_slices=encoded[where]["absent_slices"])
                    image, truth, _ = sets[where]
                    for beyond in ("propagate", "propose"):
                        if where == "within" or beyond == "propagate":  # across, beyond plays no part
                            d, absent_written, sessions[where] = volume_tool(
                                seg, image, truth, vol.window, examples, picks if where == "within" else None, chosen,
                                encoded[where]["absent_slices"], beyond, sessions.get(where))
                        summary[f"tool_{beyond}"], summary[f"tool_{beyond}_absent"] = d, absent_written
                    results.append(summary)
                if not args.no_adapt:
                    seg.model.load_state_dict(base_state)
                    window = source.window
                    result = adapt(seg, [s_image[k] for k in picks], [s_truth[k] for k in picks], structure=structure,
                                   window=window, apply=True)
                    for where, (images, truths, encs, vol, chosen) in evals.items():
                        box, click = adapted_scores(seg, images, truths, encs, vol.window)
                        row = next(r for r in results if r["structure"] == structure and r["k"] == k_shot and r["where"] == where
                                   and r["source"] == source.title)
                        row.update(adapt_box=box, adapt_click=click, adapt_kept=bool(result.kept), adapt_s=result.seconds)
                    seg.model.load_state_dict(base_state)
                for r in results[-len(evals):]:
                    print(_row(r), flush=True)
    write(results, Path(args.out), args)


def _row(r: dict) -> str:
    adapt_cols = (f"{r['adapt_box']:.3f} | {r['adapt_click']:.3f} | {'yes' if r['adapt_kept'] else 'no'} | {r['adapt_s']:.0f}"
                  if "adapt_box" in r else "- | - | - | -")
    return (f"| {r['structure']} | {r['k']} | {r['where']}: {r['target']} | {r['slices']} | {r['no_prompt']:.3f} | "
            f"{r['no_prompt_map']:.3f} | {r['tool_propagate']:.3f} | {r['tool_propose']:.3f} | "
            f"{r['tool_propagate_absent']:.2f} / {r['tool_propose_absent']:.2f} | {r['click']:.3f} | "
            f"{r['click_ex']:.3f} | {r['box']:.3f} | {r['noc']:.1f} | {r['noc_ex']:.1f} | {adapt_cols} | "
            f"{r['t_prop'] * 1000:.0f} | {r['t_click'] * 1000:.0f} |")


HEADER = ("| structure | k | evaluated on | slices | no prompt | map only, as written | volume tool: propagate beyond | volume tool: propose beyond | absent slices written (propagate / propose) | 1 click | 1 click + examples | box | NoC@85 | "
          "NoC@85 + examples | adapted: box | adapted: 1 click | adaptation kept | adaptation s | proposal ms | click ms |\n"
          "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|")


def absent_table(results: list[dict]) -> str:
    present = [s for r in results for s in r["signals"]["present"]]
    absent = [s for r in results for s in r["signals"]["absent"]]
    lines = ["| margin threshold | absent slices flagged | present slices flagged |", "|---:|---:|---:|"]
    score_floor = proposal_module.CONFIDENCE_SCORE
    for threshold in (0.0, 0.02, 0.03, 0.04, 0.05, 0.06):
        def flagged(s):
            return s[0] < threshold or s[1] < score_floor
        mark = " (shipped)" if abs(threshold - proposal_module.CONFIDENCE_MARGIN) < 1e-9 else ""
        lines.append(f"| {threshold:.2f}{mark} | {np.mean([flagged(s) for s in absent]):.2f} ({len(absent)}) | "
                     f"{np.mean([flagged(s) for s in present]):.2f} ({len(present)}) |")
    return "\n".join(lines)


def write(results: list[dict], out: Path, args) -> None:
    command = "scripts/bench_in_context.py " + " ".join(
        [f"--shots {' '.join(map(str, args.shots))}", f"--eval {args.eval}", f"--absent {args.absent}"]
        + (["--no-adapt"] if args.no_adapt else []) + ([f"--near {args.near}"] if args.near != NEAR_OWN_EXAMPLES else []) + ([f"--only {args.only}"] if args.only else []))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"command": command, "results": results}, indent=1))
    text = [f"# In-context proposals (`{command}`)", "", "Mean Dice on the evaluated slices; NoC@85 capped at 20 "
            "(21 = not reached); times are medians after the slice is encoded, one thread.", "", HEADER]
    text += [_row(r) for r in results]
    text += ["", "## Low-confidence flag on slices without the structure (all rows pooled)", "", absent_table(results), ""]
    out.with_suffix(".md").write_text("\n".join(text))
    print("\n".join(text[-12:]))


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""What the mask prompt should look like when the earlier result is a binary mask, not logits.

1. The profile: the median logit of the model's own predictions (after 1-4 RITM clicks, logits fed
   back) by signed distance to their edge, in model-frame pixels, next to what
   ``waveseg.prompting.mask_prompt.edge_profile_logits`` gives a binary mask at that distance.
2. The RITM click loop of ``scripts/evaluate.py`` on its held-out masks (clicks only, and box + 5
   clicks), one model, one process, four ways of feeding the earlier result back: its logits (as
   ``InteractiveSession`` does while it has them); its binary mask with the edge profile
   (``Segmenter.mask_profile``, the default); its binary mask as +-10 (the rule before 2026-11-30);
   nothing (every click decoded from the clicks alone). A binary mask is what an existing
   segment, a mask loaded from disk or a moved ROI-zoom crop gives. Reports Dice after 5 clicks,
   NoC@85/@90, box + 5 clicks and NoC@85 per structure.

    .venv/bin/python scripts/bench_mask_feedback.py [--model default] [--limit 100] [--profile-masks 40]
"""

from __future__ import annotations

import argparse
import warnings
from collections import defaultdict

import numpy as np
from tqdm import tqdm

from evaluate import MAX_CLICKS, chosen_masks, click_loop, clicks_to_reach
from scripts_common import VOLUMES
from waveseg.prompting.mask_prompt import logit_at_distance, signed_distance
from waveseg.metrics import dice
from waveseg.predictor import Segmenter
from waveseg.prompting.simulation import next_click, tight_box

FEEDBACK = ("logits", "mask, edge profile", "mask, +-10", "none")


def feedback_loop(seg: Segmenter, encoded, truth: np.ndarray, box, n_clicks: int, feedback: str) -> list[np.ndarray]:
    """evaluate.py's RITM click loop with the earlier result fed back as ``feedback`` says."""
    seg.mask_profile = feedback != "mask, +-10"
    kind = {"logits": "logits", "none": "none"}.get(feedback, "mask")
    return click_loop(seg, encoded, truth, box, n_clicks, [], feed_back=kind)


def logit_profile(seg: Segmenter, data: dict, limit: int) -> dict[int, float]:
    """Median logit of the model's predictions after 1-4 clicks, by signed edge distance, binned:
    k (k != 0) holds the pixels whose distance d has the sign of k and |k| - 1 < |d| <= |k|."""
    by_distance = defaultdict(list)
    for m in chosen_masks(data, limit):
        truth = data["masks"][m]
        encoded = seg.encode(data["images"][data["mask_slice"][m]])
        points, labels, prediction, logits = [], [], None, None
        for _ in range(4):
            click = next_click(prediction, truth)
            if click is None:
                break
            points.append(click[:2])
            labels.append(click[2])
            out = seg.predict_encoded(encoded, points=points, labels=labels, mask_input=logits)
            prediction, logits = out.mask, out.logits
            distance = signed_distance(logits[0] > 0)
            bins = (np.sign(distance) * np.ceil(np.abs(distance))).astype(int)  # k: |distance| in (|k| - 1, |k|]
            for k in range(-12, 13):
                if k != 0:
                    by_distance[k].append(logits[0][bins == k])
    return {d: float(np.median(np.concatenate(v))) for d, v in sorted(by_distance.items()) if sum(map(len, v))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--limit", type=int, default=100, help="held-out masks for the click loops")
    parser.add_argument("--profile-masks", type=int, default=40, help="held-out masks for the logit profile")
    args = parser.parse_args()
    data = dict(np.load(VOLUMES.parent / "slices" / "test.npz"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        seg = Segmenter.from_pretrained(args.model)

    profile = logit_profile(seg, data, args.profile_masks)
    print(f"Logit profile of {args.model} ({args.profile_masks} masks, 1-4 clicks): signed distance -> median logit / edge profile")
    print("| distance (px) | " + " | ".join(f"{d:+d}" for d in profile) + " |")
    print("|---|" + "---:|" * len(profile))
    print("| model's median | " + " | ".join(f"{v:.1f}" for v in profile.values()) + " |")
    centres = [np.sign(k) * (abs(k) - 0.5) for k in profile]  # an axis-aligned pixel's distance in bin k
    print("| edge profile | " + " | ".join(f"{v:.1f}" for v in logit_at_distance(np.array(centres))) + " |")

    results = {name: defaultdict(list) for name in FEEDBACK}
    names = []
    chosen = chosen_masks(data, args.limit)
    for m in tqdm(chosen, desc="masks", unit="mask"):
        truth = data["masks"][m]
        encoded = seg.encode(data["images"][data["mask_slice"][m]])
        names.append(str(data["mask_name"][m]).split(":")[-1])
        for name in FEEDBACK:
            r = results[name]
            masks = feedback_loop(seg, encoded, truth, None, MAX_CLICKS, name)
            r["click5"].append(dice(masks[4], truth))
            r["noc85"].append(clicks_to_reach(masks, truth, 0.85))
            r["noc90"].append(clicks_to_reach(masks, truth, 0.90))
            r["box5"].append(dice(feedback_loop(seg, encoded, truth, tight_box(truth), 5, name)[-1], truth))
    seg.mask_profile = True
    names = np.array(names)
    structures = sorted(set(names))
    print(f"\n{len(chosen)} held-out masks, {args.model}, one process; NoC@85 per structure: " + ", ".join(structures))
    print("| earlier result fed back as | 5 clicks | NoC@85 | NoC@90 | box + 5 clicks | NoC@85 per structure |")
    print("|---|---:|---:|---:|---:|---|")
    for name, r in results.items():
        noc = np.array(r["noc85"])
        per = " / ".join(f"{noc[names == s].mean():.1f}" for s in structures)
        print(f"| {name} | {np.mean(r['click5']):.3f} | {noc.mean():.2f} | {np.mean(r['noc90']):.2f} | {np.mean(r['box5']):.3f} | {per} |")

if __name__ == "__main__":
    main()

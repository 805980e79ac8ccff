#!/usr/bin/env python
"""Propagation inside a 3D box: 3D Dice of one model under several next-slice prompts and in-box
stop rules, in one process, on the volumes of bench_volume.py.

Each variant is a comma-separated list of ``waveseg.propagation.PropagationRule`` fields, e.g.
``prompt=box+mask,in_box_patience=0``; an empty string is the shipped rule. Every variant runs on
the tight 3D box (the ground truth's extent) and on boxes ``--z-margins`` slices longer at each
end than the object (a loose box: does propagation stop where the object ends?).

    .venv/bin/python scripts/bench_propagation.py --variants "" "prompt=box+mask" --z-margins 0 3
"""

from __future__ import annotations

import argparse
import dataclasses
import warnings

import numpy as np

from bench_volume import CASES, load_case, truth_box
from waveseg.metrics import dice
from waveseg.predictor import Segmenter
from waveseg.propagation import PropagationRule
from waveseg.volume import VolumeSession


def parse_rule(spec: str) -> PropagationRule:
    """``PropagationRule`` from "field=value,field=value" (values typed as the field's default)."""
    defaults = PropagationRule()
    fields = {f.name: type(getattr(defaults, f.name)) for f in dataclasses.fields(PropagationRule)}
    changes = {}
    for item in filter(None, spec.split(",")):
        name, _, value = item.partition("=")
        if name not in fields:
            raise SystemExit(f"unknown PropagationRule field {name!r}; fields: {', '.join(fields)}")
        kind = fields[name]
        changes[name] = (value.lower() in ("1", "true", "yes")) if kind is bool else kind(value)
    return dataclasses.replace(defaults, **changes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--variants", nargs="+", default=[""])
    parser.add_argument("--z-margins", nargs="+", type=int, default=[0, 3])
    parser.add_argument("--cases", nargs="*", help="only cases whose title contains one of these words")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch (and so onnxruntime) threads; 1 by default: on a shared 2-core machine 2 threads thrash")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)  # before any Segmenter: its onnxruntime sessions take torch's thread count
    rules = [parse_rule(v) for v in args.variants]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        seg = Segmenter.from_pretrained(args.model)
    cases = [c for c in CASES if not args.cases or any(w.lower() in c.title.lower() for w in args.cases)]
    columns = [(m, v) for m in args.z_margins for v in args.variants]
    print(f"model: {args.model}; 3D Dice; columns: z margin / variant\n")
    print("| volume | " + " | ".join(f"+{m} / {v or 'shipped'}" for m, v in columns) + " |")
    print("|---|" + "---:|" * len(columns))
    table = []
    for case in cases:
        image, truth, spacing = load_case(case)
        row, first = [], None
        for margin, spec in columns:
            # every variant reads the first one's slice embeddings: each slice is encoded once per volume
            session = VolumeSession(seg, image, spacing=spacing, window=case.waveseg_window, prefetch=False,
                                    propagation=rules[args.variants.index(spec)], share_cache_with=first,
                                    cache_mb=1024)
            first = first or session
            session.box3d(*truth_box(truth, margin))
            row.append(dice(session.mask, truth))
        first.close()
        table.append(row)
        print(f"| {case.title} | " + " | ".join(f"{d:.3f}" for d in row) + " |", flush=True)
    print("| **mean** | " + " | ".join(f"**{d:.3f}**" for d in np.mean(table, axis=0)) + " |")


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""Ship a trained model: copy its weights and card into WaveSegSlicer/Resources/Models, add the
measured metrics from scripts/evaluate.py's JSON to the card, and list it in models.json.

    .venv/bin/python scripts/publish_model.py runs/wave-gms-small/wave-gms.json reports/benchmark_onnx.json [--default] \
        [--extra never_seen_lesions=reports/benchmark_unseen_lesions.json]

``--extra NAME=JSON`` adds another evaluate.py run (another data set) to the card's metrics as NAME.

Refuses when the weights' SHA-256 does not match the card. ``--default`` makes it the model
that ``Segmenter.from_pretrained("default")`` loads.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
from pathlib import Path

from waveseg.atomic import atomic_path, write_bytes_atomic
from waveseg.model_files import ModelCard, models_dir, sha256_of


def by_modality_rows(grouped: dict, label: str) -> dict:
    """{modality: {"n", "patients", label: row, "litemedsam_same_run": row}} of an evaluate.py
    --by-modality JSON, for the card."""
    return {name: {"n": row["n"], "patients": row["patients"], label: row["models"][label],
                   "litemedsam_same_run": row["models"].get("litemedsam")}
            for name, row in [*grouped["modality"].items(), ("all", grouped["all"])]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("card")
    parser.add_argument("benchmark_json")
    parser.add_argument("--default", action="store_true")
    parser.add_argument("--label", help="the model's row in the benchmark JSON (default: its card name)")
    parser.add_argument("--extra", action="append", default=[], metavar="NAME=JSON",
                        help="another evaluate.py JSON (e.g. another data set) to add to the card's metrics as NAME")
    args = parser.parse_args()
    card_path = Path(args.card)
    card = ModelCard.from_json(card_path)
    weights = card_path.parent / card.weights
    if sha256_of(weights) != card.sha256:
        raise SystemExit(f"{weights} does not match its card's SHA-256; not publishing")
    bench = json.loads(Path(args.benchmark_json).read_text())
    label = args.label or card.name
    if label not in bench["models"]:
        raise SystemExit(f"{args.benchmark_json} has no row {label!r}; it has {sorted(bench['models'])}")
    card.metrics = {"command": bench["command"], "held_out": bench["models"][label],
                    "litemedsam_same_run": bench["models"].get("litemedsam")}
    for extra in args.extra:
        name, _, path = extra.partition("=")
        other = json.loads(Path(path).read_text())
        if not name or label not in other["models"]:
            raise SystemExit(f"--extra {extra!r}: expected NAME=JSON with a row {label!r}")
        card.metrics[name] = {"command": other["command"], label: other["models"][label],
                              "litemedsam_same_run": other["models"].get("litemedsam")}
        if "by_modality" in other:  # evaluate.py --by-modality: this model's and LiteMedSAM's row per modality
            card.metrics[name]["by_modality"] = by_modality_rows(other["by_modality"], label)
    target = models_dir()
    shipped = target / f"{card.name}.json"
    if not card.never_seen and shipped.exists():  # a run's card does not know the never-seen sets
        card.never_seen = ModelCard.from_json(shipped).never_seen
    with atomic_path(target / card.weights) as tmp:
        shutil.copyfile(weights, tmp)
    write_bytes_atomic(target / f"{card.name}.json", json.dumps(dataclasses.asdict(card), indent=2).encode())
    catalog_path = target / "models.json"
    catalog = json.loads(catalog_path.read_text())
    catalog["models"][card.name] = f"{card.name}.json"
    if args.default:
        catalog["default"] = card.name
    write_bytes_atomic(catalog_path, (json.dumps(catalog, indent=2) + "\n").encode())
    print(f"published {card.name} to {target} (default: {catalog['default']})")


if __name__ == "__main__":
    main()

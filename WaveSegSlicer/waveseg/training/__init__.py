"""Training of the light backbones: distillation from LiteMedSAM, then prompt-simulated
fine-tuning (see scripts/train.py). Needs the ``[train]`` extra (MONAI)."""

"""The student model at the start of training."""

from __future__ import annotations

from waveseg.model_files import load_litemedsam_state
from waveseg.modeling.promptable import PromptableSegmenter
from waveseg.modeling.registry import build_backbone
from waveseg.modeling.sam_heads import build_mask_decoder, build_prompt_encoder


def build_student(backbone: str) -> PromptableSegmenter:
    """A light backbone + LiteMedSAM's prompt encoder and mask decoder (weights loaded).

    The student's final LayerNorm starts from the teacher's (``image_encoder.neck.3``), so its
    output starts at the teacher's small embedding scale.
    """
    teacher = load_litemedsam_state()
    model = PromptableSegmenter(build_backbone(backbone), build_prompt_encoder(), build_mask_decoder())
    model.load_state_dict({k: v for k, v in teacher.items() if not k.startswith("image_encoder.")}, strict=False)
    model.image_encoder.neck.norm.weight.data.copy_(teacher["image_encoder.neck.3.weight"])
    model.image_encoder.neck.norm.bias.data.copy_(teacher["image_encoder.neck.3.bias"])
    return model

"""A real adaptation profile file for tests that need one without a 30 s adaptation run."""

from __future__ import annotations

import warnings

import torch

from waveseg.adaptation.profiles import model_fingerprint, save_profile
from waveseg.predictor import Segmenter


def save_scoped_profile(model: str, structure: str, name: str) -> str:
    """Write profile ``name`` (safetensors, ``model``'s fingerprint, scope ``[structure]``) whose
    decoder change is large enough to change masks: what ``adapt`` writes, minus the training.
    Needs ``WAVESEG_PROFILES_DIR`` set to a test folder."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        base = Segmenter.from_pretrained(model).model
    generator = torch.Generator().manual_seed(0)
    delta = {key: 0.5 * value.std() * torch.randn(value.shape, generator=generator)
             for key, value in base.state_dict().items()
             if key.startswith("mask_decoder.output_upscaling") and value.is_floating_point() and value.ndim > 1}
    assert delta, f"{model} has no mask_decoder.output_upscaling weights to perturb"
    save_profile(name, delta, {"base_model": model, "base_fingerprint": model_fingerprint(base),
                               "structure": structure, "scope": [structure], "slices": 3})
    return name

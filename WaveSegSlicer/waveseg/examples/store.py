"""Saved example sets: named, versioned safetensors files, usable only with their model.

    path = save_example_set(examples, "site-thalamus")          # or a path ending in .safetensors
    examples = load_example_set("site-thalamus", seg)          # refused for another model

A file holds three tensors, ``embeddings`` (k, 256, 64, 64) float32, ``masks`` (k, 256, 256)
uint8 and ``resized_hw`` (k, 2) int64, and string metadata: ``format`` ("waveseg-example-set"),
``version`` (``FORMAT_VERSION``), ``name``, ``structure``, ``model`` (the model's name),
``encoder_fingerprint`` (``waveseg.examples.example_set.encoder_fingerprint``), ``examples`` (k),
``created``. Tensors are stored as they are, so a set reads back bit for bit. Files are written
atomically (a temporary file renamed over the target, ``waveseg.atomic``); reading never executes
code (safetensors, no pickle). The pattern is that of ``waveseg.adaptation.profiles``. The folder
is ``$WAVESEG_EXAMPLES_DIR`` or ``~/.local/share/waveseg/examples``.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from waveseg.atomic import atomic_path
from waveseg.errors import ModelFileError
from waveseg.examples.example_set import ExampleSet, encoder_fingerprint
from waveseg.predictor import Segmenter

FORMAT = "waveseg-example-set"
FORMAT_VERSION = 1
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def examples_dir() -> Path:
    return Path(os.environ.get("WAVESEG_EXAMPLES_DIR", Path.home() / ".local" / "share" / "waveseg" / "examples"))


def _path(name_or_path: str | os.PathLike) -> Path:
    path = Path(name_or_path)
    if path.suffix == ".safetensors":
        return path
    if not _NAME.match(str(name_or_path)):
        raise ModelFileError(f"example set name {name_or_path!s} must be 1-64 letters, digits, '.', '_' or '-'")
    return examples_dir() / f"{name_or_path}.safetensors"


def save_example_set(examples: ExampleSet, name_or_path: str | os.PathLike) -> Path:
    """Write ``examples`` atomically under a name (in ``examples_dir()``) or to a ``.safetensors``
    path; returns the path. An existing file of that name is replaced whole."""
    from safetensors.torch import save_file

    if not examples.fingerprint:
        raise ModelFileError("this example set has no model fingerprint; build it with ExampleSet.from_slices")
    path = _path(name_or_path)
    tensors = {"embeddings": examples.embeddings.contiguous(), "masks": examples.masks.to(torch.uint8).contiguous(),
               "resized_hw": torch.from_numpy(np.ascontiguousarray(examples.resized_hw, np.int64))}
    metadata = {"format": FORMAT, "version": str(FORMAT_VERSION), "name": path.stem, "structure": examples.structure,
                "model": examples.model_name, "encoder_fingerprint": examples.fingerprint,
                "examples": str(len(examples)), "created": _dt.datetime.now().isoformat(timespec="seconds")}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def read_example_set_metadata(name_or_path: str | os.PathLike) -> dict[str, Any]:
    """The metadata of a saved set (its header only: cheap for menus)."""
    return _read(_path(name_or_path), with_tensors=False)[1]


def _read(path: Path, with_tensors: bool) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import SafetensorError, safe_open

    if not path.exists():
        raise ModelFileError(f"example set {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = dict(handle.metadata() or {})
            tensors = {key: handle.get_tensor(key) for key in handle.keys()} if with_tensors else {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFileError(f"{path} is not a valid WaveSeg example set: {exc}") from None
    if metadata.get("format") != FORMAT or "encoder_fingerprint" not in metadata:
        raise ModelFileError(f"{path} is not a WaveSeg example set (no {FORMAT!r} header)")
    if metadata.get("version") != str(FORMAT_VERSION):
        raise ModelFileError(f"{path} is an example set of format version {metadata.get('version')}; "
                             f"this WaveSeg reads version {FORMAT_VERSION}")
    if with_tensors and set(tensors) != {"embeddings", "masks", "resized_hw"}:
        raise ModelFileError(f"{path} holds tensors {sorted(tensors)}; an example set holds embeddings, masks, resized_hw")
    return tensors, metadata


def load_example_set(name_or_path: str | os.PathLike, segmenter: Segmenter) -> ExampleSet:
    """Read a saved set for ``segmenter``; a set made with another model (another image encoder or
    other encoder weights) is refused with a ``ModelFileError`` naming both models."""
    path = _path(name_or_path)
    tensors, metadata = _read(path, with_tensors=True)
    fingerprint = encoder_fingerprint(segmenter)
    if metadata["encoder_fingerprint"] != fingerprint:
        raise ModelFileError(
            f"example set {metadata.get('name')!r} was made with model {metadata.get('model')!r} "
            f"({metadata['encoder_fingerprint'][:12]}...), not with this model {segmenter.card.name!r} "
            f"({fingerprint[:12]}...): its embeddings mean nothing to this encoder (an adaptation profile that adapted "
            f"the encoder's neck makes another encoder too); make the set again with this model")
    try:
        return ExampleSet(tensors["embeddings"], tensors["masks"].bool(), tensors["resized_hw"].numpy(),
                          metadata.get("structure", ""), metadata["encoder_fingerprint"], metadata.get("model", ""))
    except ValueError as exc:
        raise ModelFileError(f"{path}: {exc}") from None


def list_example_sets() -> list[dict[str, Any]]:
    """Metadata (with ``path``) of every readable set in ``examples_dir()``, sorted by name."""
    found = []
    for path in sorted(examples_dir().glob("*.safetensors")):
        try:
            found.append({**_read(path, with_tensors=False)[1], "path": str(path)})
        except ModelFileError:
            continue
    return found

"""Named adaptation profiles: the difference between adapted and base weights, as safetensors.

A profile is ``<profiles dir>/<name>.safetensors`` holding, for every floating-point tensor the
adaptation changed, ``adapted - base`` in float32 (so applying it to the same base model gives the
adapted weights bit for bit), and string metadata: base model name and fingerprint, structure,
number of slices, date, measured validation Dice. Files are written atomically; loading never
executes code (safetensors, no pickle) and refuses a profile made for another base model.
The folder is ``$WAVESEG_PROFILES_DIR`` or ``~/.local/share/waveseg/profiles``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch

from waveseg.atomic import atomic_path
from waveseg.errors import ModelFileError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def profiles_dir() -> Path:
    return Path(os.environ.get("WAVESEG_PROFILES_DIR", Path.home() / ".local" / "share" / "waveseg" / "profiles"))


def model_fingerprint(model: torch.nn.Module) -> str:
    """SHA-256 over the model's tensors (names, dtypes, shapes, bytes): identifies a base model."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def _path(name: str) -> Path:
    if not _NAME.match(name):
        raise ModelFileError(f"profile name {name!r} must be 1-64 letters, digits, '.', '_' or '-'")
    return profiles_dir() / f"{name}.safetensors"


def profile_delta(base: dict[str, torch.Tensor], adapted: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """{name: adapted - base} (float32) for the floating tensors that differ."""
    delta = {}
    for key, value in adapted.items():
        if value.is_floating_point() and not torch.equal(value, base[key]):
            delta[key] = (value.float() - base[key].float()).contiguous()
    return delta


def save_profile(name: str, delta: dict[str, torch.Tensor], metadata: dict[str, Any]) -> Path:
    """Write a profile atomically; ``metadata`` values are stored as JSON strings."""
    from safetensors.torch import save_file

    path = _path(name)
    meta = {k: json.dumps(v) for k, v in {**metadata, "name": name,
                                          "created": _dt.datetime.now().isoformat(timespec="seconds")}.items()}
    with atomic_path(path) as tmp:
        save_file(delta, str(tmp), metadata=meta)
    return path


def _profile_path(path_or_name: str | os.PathLike) -> Path:
    path = Path(path_or_name)
    if path.suffix != ".safetensors":
        path = _path(str(path_or_name))
    if not path.exists():
        raise ModelFileError(f"profile {path_or_name!s} does not exist (looked for {path})")
    return path


def _read(path: Path, with_tensors: bool) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            raw_meta = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()} if with_tensors else {}
        metadata = {k: json.loads(v) for k, v in raw_meta.items()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFileError(f"{path} is not a valid WaveSeg profile: {exc}") from None
    if "base_fingerprint" not in metadata:
        raise ModelFileError(f"{path} is not a WaveSeg profile (no base model fingerprint)")
    return tensors, metadata


def read_profile(path_or_name: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(delta tensors, metadata) of a profile given by name or path."""
    return _read(_profile_path(path_or_name), with_tensors=True)


def apply_profile(model: torch.nn.Module, path_or_name: str | os.PathLike) -> dict[str, Any]:
    """Add a profile's delta to ``model``'s weights in place; returns the profile's metadata.

    Refuses (and leaves the model untouched) when the profile was made for another base model.
    """
    delta, metadata = read_profile(path_or_name)
    fingerprint = model_fingerprint(model)
    if metadata["base_fingerprint"] != fingerprint:
        raise ModelFileError(
            f"profile {metadata.get('name')!r} was made for base model {metadata.get('base_model')!r} "
            f"({metadata['base_fingerprint'][:12]}...), not for this model ({fingerprint[:12]}...)"
        )
    state = model.state_dict()
    unknown = sorted(set(delta) - set(state))
    if unknown:
        raise ModelFileError(f"profile holds tensors this model does not have: {unknown[:3]}")
    for key, value in delta.items():
        if value.shape != state[key].shape:
            raise ModelFileError(f"profile tensor {key} has shape {tuple(value.shape)}, the model's is {tuple(state[key].shape)}")
    with torch.no_grad():
        for key, value in delta.items():
            state[key].copy_((state[key].float() + value).to(state[key].dtype))
    return metadata


def list_profiles() -> list[dict[str, Any]]:
    """Metadata of every readable profile in the profiles folder, sorted by name."""
    found = []
    for path in sorted(profiles_dir().glob("*.safetensors")):
        try:
            found.append({**_read(path, with_tensors=False)[1], "path": str(path)})  # the header only: UIs call this often
        except ModelFileError:
            continue
    return found


def delete_profile(name: str) -> None:
    path = _path(name)
    if not path.exists():
        raise ModelFileError(f"profile {name!r} does not exist")
    path.unlink()


def export_profile(name: str, destination: str | os.PathLike) -> Path:
    """Copy a profile to ``destination`` (a file or a folder) to share it."""
    source = _path(name)
    read_profile(source)  # refuse to export a broken file
    destination = Path(destination)
    if destination.is_dir():
        destination = destination / source.name
    with atomic_path(destination) as tmp:
        shutil.copyfile(source, tmp)
    return destination


def import_profile(source: str | os.PathLike, name: str | None = None) -> Path:
    """Validate a shared profile file and copy it into the profiles folder (as ``name``)."""
    read_profile(Path(source))
    target = _path(name or Path(source).stem)
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)
    return target

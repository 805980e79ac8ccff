"""The models and adaptation profiles a server offers, and their loaded ``Segmenter`` objects.

A request names a model and a profile; neither ever reaches the file system as given: a model
must be one of the names the server was started with, a profile must match the profile name
rule and be listed in the server's own profiles folder, and only then is its path built here.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

from waveseg.errors import ModelFileError, WaveSegError

PROFILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")  # profiles.py's rule without '.': no suffix trick


def resolve_device(device: str) -> str:
    """"auto" -> "cuda" when a CUDA GPU is visible, else "cpu"."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class ModelPool:
    """Loaded segmenters keyed by (model, profile); each is loaded once and shared by sessions.

    Arguments: models: the names (or card paths) served, the first being the default; device:
    torch device or "auto".
    """

    def __init__(self, models: tuple[str, ...], device: str = "auto") -> None:
        if not models:
            raise WaveSegError("a server needs at least one model")
        self.models = tuple(models)
        self.device = resolve_device(device)
        self._loaded: dict[tuple[str, str | None], Any] = {}
        self._lock = threading.Lock()

    def profile_path(self, name: str) -> Path:
        """The file of a listed profile; ``WaveSegError`` for a bad or unknown name."""
        from waveseg.adaptation.profiles import profiles_dir

        if not isinstance(name, str) or not PROFILE_NAME.match(name):
            raise WaveSegError(f"profile name {name!r} must be 1-64 letters, digits, '_' or '-'")
        path = profiles_dir() / f"{name}.safetensors"
        if name not in {p["name"] for p in self.profiles()} or not path.is_file():
            raise WaveSegError(f"this server has no profile {name!r}; GET /v1/models lists its profiles")
        return path

    def model_name(self, name: str | None) -> str:
        if name in (None, "", "default"):
            return self.models[0]
        if name not in self.models:
            raise WaveSegError(f"this server does not offer model {name!r}; it offers {', '.join(self.models)}")
        return name

    def segmenter(self, model: str | None, profile: str | None):
        """The ``Segmenter`` for a served model with an optional server profile (loaded once)."""
        from waveseg.predictor import Segmenter

        key = (self.model_name(model), profile or None)
        path = self.profile_path(profile) if profile else None
        with self._lock:
            if key not in self._loaded:
                try:
                    self._loaded[key] = Segmenter.from_pretrained(key[0], device=self.device, profile=path)
                except ModelFileError as exc:
                    raise WaveSegError(f"cannot load model {key[0]!r}" + (f" with profile {profile!r}" if profile else "")
                                       + f": {exc}") from None
            return self._loaded[key]

    def forget_profile(self, profile: str) -> None:
        """Drop loaded models with this profile (it was re-adapted under the same name)."""
        with self._lock:
            for key in [k for k in self._loaded if k[1] == profile]:
                del self._loaded[key]

    def profiles(self) -> list[dict[str, Any]]:
        from waveseg.adaptation.profiles import list_profiles

        keep = ("structure", "scope", "base_model", "slices", "val_dice_before", "val_dice_after", "created", "method")
        # named by file (an imported profile may carry another name in its metadata); never the path itself
        listed = [{"name": Path(p["path"]).stem, **{k: p[k] for k in keep if k in p}} for p in list_profiles()]
        return [p for p in listed if PROFILE_NAME.match(p["name"])]

    def describe(self) -> dict[str, Any]:
        """What ``GET /v1/models`` answers."""
        return {"device": self.device, "default": self.models[0], "models": [{"name": m, "default": n == 0} for n, m in enumerate(self.models)],
                "profiles": self.profiles()}

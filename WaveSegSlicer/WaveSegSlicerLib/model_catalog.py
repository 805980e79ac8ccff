"""The models and profiles WaveSeg offers in Slicer, and the loaded ``Segmenter`` they share.

The module panel and the effect's options panel both list and load models through here, so
they show the same choices and use one model in memory. Nothing here imports torch until a
model is loaded: the lists must show before the PyTorch extension has installed it.
"""

from __future__ import annotations

import json
import os
import threading


def model_names() -> list[str]:
    """Catalog names: "default", the teacher "litemedsam" and every shipped model."""
    from waveseg.model_files import models_dir

    with open(os.path.join(models_dir(), "models.json"), encoding="utf-8") as f:
        catalog = json.load(f)
    return ["default", "litemedsam", *catalog.get("models", {})]


def profiles() -> list[dict]:
    """Metadata of the saved adaptation profiles ([] while torch is not installed)."""
    try:
        from waveseg.adaptation.profiles import list_profiles
    except ImportError:
        return []
    return list_profiles()


class SegmenterCache:
    """One loaded ``waveseg.Segmenter`` at a time, keyed by (model, profile, device).

    ``get`` runs on the model worker thread (loading takes seconds); ``forget`` on the main thread
    after a profile changed on disk under the same name. The lock keeps the two apart.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple | None = None
        self._segmenter = None

    def get(self, model: str = "default", profile: str | None = None, device: str = "cpu"):
        key = (model, profile or None, device)
        with self._lock:
            if self._key != key:
                from waveseg.predictor import Segmenter

                self._key, self._segmenter = None, None  # free the old model before loading the next
                self._segmenter = Segmenter.from_pretrained(key[0], device=key[2], profile=key[1])
                self._key = key
            return self._segmenter

    @property
    def loaded(self) -> tuple | None:
        """(model, profile, device) of the model in memory, or None."""
        return self._key

    def forget(self) -> None:
        with self._lock:
            self._key, self._segmenter = None, None


SEGMENTERS = SegmenterCache()

"""Helpers shared by the scripts (data locations)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


VOLUMES = Path(os.environ.get("WAVESEG_DATA", Path.home() / ".cache" / "waveseg")) / "volumes"


def load_array(name: str) -> np.ndarray:
    """(Z, Y, X) array of a volume fetched by scripts/fetch_data.py."""
    path = VOLUMES / name
    if not path.exists():
        raise SystemExit(f"{path} is missing: run scripts/fetch_data.py first")
    import SimpleITK as sitk  # here, not at the top: the training machine has no SimpleITK and needs none

    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


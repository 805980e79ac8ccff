"""WaveSeg: interactive promptable segmentation of medical images on a laptop CPU.

The package is importable without torch (3D Slicer loads the module before PyTorch is
installed): the heavy classes are imported lazily on first attribute access.

    from waveseg import Segmenter
    seg = Segmenter.from_pretrained("default", device="cpu")
    seg.set_image(image)                       # (H, W) or (H, W, 3), any dtype
    out = seg.predict(box=(x0, y0, x1, y1))    # out.mask: (H, W) bool
"""

from __future__ import annotations

import importlib
from typing import Any

from waveseg.errors import WaveSegError

__version__ = "0.1.0"

# public name -> module that defines it; resolved on first access (PEP 562)
_LAZY = {
    "Segmenter": "waveseg.predictor",
    "Prediction": "waveseg.predictor",
    "InteractiveSession": "waveseg.session",
    "read_image": "waveseg.io",
    "write_mask": "waveseg.io",
    "ImageVolume": "waveseg.io",
    "list_backbones": "waveseg.modeling.registry",
    "adapt": "waveseg.adaptation.fewshot",
    "VolumeSession": "waveseg.volume",
}

__all__ = ["WaveSegError", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'waveseg' has no attribute {name!r}")

"""A registry of image-encoder backbones, in the manner of timm's ``@register_model``.

Every registered builder returns an ``nn.Module`` mapping a (B, 3, 256, 256) float image in
[0, 1] to a (B, 256, 64, 64) embedding. Builders spell out all their hyper-parameters.
This module itself imports no torch, so the list of names is available in Slicer before
PyTorch is installed.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any, Callable

# Modules whose import registers builders; imported on demand by build_backbone().
_BACKBONE_MODULES = (
    "waveseg.modeling.litemedsam",
    "waveseg.modeling.wave_gms",
    "waveseg.modeling.hrmedseg_lite",
)
KNOWN_BACKBONES = ("litemedsam", "wave-gms", "hrmedseg-lite")

_BUILDERS: dict[str, Callable[..., Any]] = {}


def register_backbone(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering ``builder`` under ``name``; warns when it replaces another."""

    def decorate(builder: Callable[..., Any]) -> Callable[..., Any]:
        if name in _BUILDERS and _BUILDERS[name] is not builder:
            warnings.warn(f"backbone {name!r} was registered twice; the later builder wins", stacklevel=2)
        _BUILDERS[name] = builder
        return builder

    return decorate


def _import_builders() -> None:
    for module in _BACKBONE_MODULES:
        importlib.import_module(module)


def list_backbones() -> list[str]:
    """Names of the registered backbones (without importing torch if none is loaded yet)."""
    return sorted(set(KNOWN_BACKBONES) | set(_BUILDERS))


def build_backbone(name: str, **kwargs: Any) -> Any:
    """Build the backbone registered as ``name`` with its default hyper-parameters."""
    _import_builders()
    if name not in _BUILDERS:
        from waveseg.errors import ModelFileError

        raise ModelFileError(f"unknown backbone {name!r}; available: {', '.join(list_backbones())}")
    return _BUILDERS[name](**kwargs)

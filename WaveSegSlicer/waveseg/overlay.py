"""PNG overlays a person can look at: the slice, the mask tinted, the box and the clicks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from waveseg.atomic import atomic_path
from waveseg.preprocess import normalize_intensity


def render_overlay(image: np.ndarray, mask: np.ndarray, box: Sequence[float] | None = None,
                   points: np.ndarray | None = None, labels: np.ndarray | None = None,
                   window: tuple[float, float] | None = None, color: tuple[int, int, int] = (230, 76, 51)):
    """An RGB ``PIL.Image``: (H, W[, 3]) image, (H, W) mask at 45 % opacity, box in yellow,
    positive clicks green, negative red. Images smaller than 256 px are enlarged for viewing."""
    from PIL import Image, ImageDraw

    gray = normalize_intensity(image, window)
    rgb = np.repeat(gray[..., None], 3, axis=2) if gray.ndim == 2 else gray
    rgb = (rgb * 255).astype(np.float32)
    m = np.asarray(mask, bool)
    rgb[m] = 0.55 * rgb[m] + 0.45 * np.asarray(color, np.float32)
    picture = Image.fromarray(rgb.clip(0, 255).astype(np.uint8))
    zoom = max(1, 256 // max(m.shape))
    if zoom > 1:
        picture = picture.resize((m.shape[1] * zoom, m.shape[0] * zoom), Image.NEAREST)
    draw = ImageDraw.Draw(picture)
    if box is not None:
        draw.rectangle([v * zoom for v in box], outline=(255, 220, 0), width=2)
    for (x, y), label in zip(points if points is not None else [], labels if labels is not None else []):
        r = 3
        fill = (40, 220, 60) if label else (240, 40, 40)
        draw.ellipse([x * zoom - r, y * zoom - r, x * zoom + r, y * zoom + r], fill=fill, outline=(0, 0, 0))
    return picture


def save_overlay(path: str | os.PathLike, *args, **kwargs) -> Path:
    """Render with ``render_overlay(*args, **kwargs)`` and write a PNG atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        render_overlay(*args, **kwargs).save(tmp, format="PNG")
    return path

#!/usr/bin/env python
"""Cut the fetched volumes into 2D slices in the model frame, following configs/data_split.json.

Every slice is normalised and resized exactly as ``Segmenter.set_image`` does (per-slice
percentiles, or the volume's CT window; longest side 256, zero pad) and stored as uint8, with one
binary 256 x 256 mask per labelled structure present on it. Output: ``<cache>/slices/{train,test}.npz``
with ``images`` (N, 256, 256) uint8, ``valid_hw`` (N, 2), ``source`` (N,) and, per structure
instance, ``masks`` (M, 256, 256) bool, ``mask_slice`` (M,) index into images, ``mask_name`` (M,),
``mask_modality`` (M,) (the entry's "modality" up to " ("), ``mask_source`` (M,) (the entry's
"source", default its name) and ``mask_patient`` (M,) (the entry's "patient", default its name).
A structure rule is ">0" (any label), a list of label ids, or "each" (every label id present on
the slice is its own mask, named ``<structure>_<id>``: instance labels such as nuclei).

    .venv/bin/python scripts/build_slices.py [--split configs/data_split.json] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from scripts_common import VOLUMES, load_array
from waveseg.predictor import to_model_input
from waveseg.preprocess import ResizeGeometry, normalize_intensity

ROOT = Path(__file__).resolve().parent.parent
OUT = VOLUMES.parent / "slices"
MIN_FOREGROUND = 0.05  # skip slices where less than 5 % of pixels are above 0.1 (air, padding)
MIN_MASK_PIXELS = 30  # in the 256 frame


def _structure_mask(labels: np.ndarray, rule) -> np.ndarray:
    return labels > 0 if rule == ">0" else np.isin(labels, rule)


def _structure_masks(labels: np.ndarray, name: str, rule) -> list[tuple[str, np.ndarray]]:
    """(name, binary mask) of one structure rule on a (rows, cols) label plane."""
    if rule == "each":
        return [(f"{name}_{int(v)}", labels == v) for v in np.unique(labels) if v != 0]
    return [(name, _structure_mask(labels, rule))]


def modality_group(modality: str) -> str:
    """The row a split entry's "modality" ("CT (chest, lung tumour)") is reported in: "CT"."""
    return modality.split(" (")[0].strip() or "unknown"


def _slices(volume: np.ndarray, axis: int, step: int):
    for k in range(0, volume.shape[axis], step):
        yield k, np.take(volume, k, axis=axis)


def framed_plane(plane: np.ndarray, window: tuple[float, float] | None) -> tuple[np.ndarray, tuple[int, int]] | None:
    """A (rows, cols) plane as ``Segmenter.set_image`` sees it: ((256, 256) uint8 model-frame image,
    its content's (h, w) in the top-left), or None when it is nearly empty (``MIN_FOREGROUND``)."""
    normalized = normalize_intensity(plane, window)
    if (normalized > 0.1).mean() < MIN_FOREGROUND:
        return None
    geometry = ResizeGeometry.for_shape(*plane.shape)
    framed = to_model_input(normalized, geometry)[0, 0].numpy()
    return (framed * 255).round().astype(np.uint8), geometry.resized_hw


def build(entries: list[dict]) -> dict[str, np.ndarray]:
    images, valid, source, masks, mask_slice, mask_name = [], [], [], [], [], []
    mask_modality, mask_source, mask_patient = [], [], []
    for entry in entries:
        image = load_array(entry["image"]).astype(np.float32)
        label_maps = [(load_array(spec["file"]), spec["structures"]) for spec in entry["labels"]]
        z0, z1 = entry.get("z_range", [0, image.shape[0]])
        image = image[z0:z1]
        label_maps = [(lab[z0:z1], structures) for lab, structures in label_maps]
        window = tuple(entry["window"]) if "window" in entry else None
        for axis in entry.get("axes", [0, 1, 2]):
            for k, plane in _slices(image, axis, entry["step"]):
                framed = framed_plane(plane, window)
                if framed is None:
                    continue
                index = len(images)
                images.append(framed[0])
                valid.append(framed[1])
                source.append(f"{entry['name']}:axis{axis}:{k}")
                for labels, structures in label_maps:
                    plane_labels = np.take(labels, k, axis=axis)
                    for structure, rule in structures.items():
                        for name, mask in _structure_masks(plane_labels, structure, rule):
                            rh, rw = framed[1]
                            m = torch.from_numpy(mask.astype(np.float32))[None, None]
                            resized = F.interpolate(m, size=(rh, rw), mode="nearest")[0, 0]
                            framed_mask = np.zeros((256, 256), bool)
                            framed_mask[:rh, :rw] = resized.numpy() > 0.5
                            if framed_mask.sum() >= MIN_MASK_PIXELS:
                                masks.append(framed_mask)
                                mask_slice.append(index)
                                mask_name.append(f"{entry['name']}:{name}")
                                mask_modality.append(modality_group(entry.get("modality", "")))
                                mask_source.append(entry.get("source", entry["name"]))
                                mask_patient.append(entry.get("patient", entry["name"]))
        print(f"{entry['name']}: {len(images)} slices, {len(masks)} structure masks so far")
    return {"images": np.stack(images), "valid_hw": np.array(valid), "source": np.array(source),
            "masks": np.stack(masks) if masks else np.zeros((0, 256, 256), bool),
            "mask_slice": np.array(mask_slice, dtype=np.int64), "mask_name": np.array(mask_name),
            "mask_modality": np.array(mask_modality), "mask_source": np.array(mask_source),
            "mask_patient": np.array(mask_patient)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default=str(ROOT / "configs" / "data_split.json"), help="the split's JSON file")
    parser.add_argument("--out", default=str(OUT), help="folder for train.npz and test.npz")
    args = parser.parse_args()
    split = json.loads(Path(args.split).read_text())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for part in ("train", "test"):
        if not split[part]:  # an evaluation-only set has no training part
            continue
        arrays = build(split[part])
        np.savez_compressed(out / f"{part}.npz", **arrays)
        print(f"wrote {out / part}.npz: {len(arrays['images'])} slices, {len(arrays['masks'])} masks")


if __name__ == "__main__":
    main()

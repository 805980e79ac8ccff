#!/usr/bin/env python
"""Teacher pseudo-labels on the unlabelled images (issue #23), merged with a labelled split for training.

For every slice of the unlabelled sources (``UNLABELLED`` below: the CT, MR, ultrasound,
X-ray and NM images of pydicom-data, the InVesalius head CT and imageio's abdominal stent CT; docs/data.md), in the model frame
exactly as ``scripts/build_slices.py`` cuts labelled slices:

1. candidate objects: connected components of the slice's multi-Otsu intensity classes
   (scikit-image ``threshold_multiotsu`` + ``label``), 0.3-35 % of the image, opened by 2 px;
2. the teacher (LiteMedSAM, the model WaveSeg distils) segments each candidate's box;
3. a mask is kept when the teacher's own predicted IoU is at least ``--min-score`` and it agrees
   with its candidate (Dice >= ``--min-agreement``: the box held one object, not a crowd), and when
   it does not repeat a mask already kept on the slice (IoU > 0.8); at most ``--per-slice``, best first.

This is the pseudo-labelling of SAM's data engine (its "fully automatic stage": prompts everywhere,
masks kept by predicted IoU, stability and non-maximum suppression; Kirillov et al. 2023, and
segment-anything's ``SamAutomaticMaskGenerator``), with two changes: the prompts are boxes around
intensity regions, because LiteMedSAM was trained on boxes and answers single points poorly, and
agreement with the intensity region stands in for SAM's stability score. The generator itself
needs a 1024-pixel ``SamPredictor``, which LiteMedSAM's 256-pixel encoder is not.

Output ``OUT/train.npz`` holds the labelled split's training slices (``--labelled``) followed by the
pseudo-labelled ones, in build_slices' format (``source`` ``pseudo:<image>:<frame>``, ``mask_source``
``teacher``); each pseudo mask is repeated ``--repeat`` times (by default as often as makes the pseudo
masks a quarter of the merged set, so that a few dozen of them are still drawn against thousands). ``OUT/pseudo.npz`` holds the pseudo-labelled slices alone, for inspection.

    .venv/bin/python scripts/build_pseudo_labels.py --labelled ~/.cache/waveseg/slices_mni152/train.npz \
        --out ~/.cache/waveseg/slices_pseudo
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from build_slices import MIN_MASK_PIXELS, framed_plane, modality_group
from scripts_common import load_array
from waveseg.metrics import dice, iou
from waveseg.predictor import Segmenter

# (file under VOLUMES, modality, CT window or None (percentiles), slicing axis, how many evenly spaced slices)
UNLABELLED = [
    ("unlabelled/pydicom_data_693_UNCR.nii.gz", "CT", (-160, 240), 0, 1),
    ("unlabelled/pydicom_data_explicit_VR_UN.nii.gz", "CT", (-160, 240), 0, 1),
    ("unlabelled/pydicom_data_eCT_Supplemental.nii.gz", "CT", (-160, 240), 0, 1),
    ("unlabelled/pydicom_data_MR2_UNCR.nii.gz", "MR", None, 0, 1),
    ("unlabelled/pydicom_data_MR_SIEMENS_DICOM_WithOverlays.nii.gz", "MR", None, 0, 1),
    ("unlabelled/pydicom_data_emri_small.nii.gz", "MR", None, 0, 3),
    ("unlabelled/pydicom_data_OBXXXX1A.nii.gz", "US", None, 0, 1),
    ("unlabelled/pydicom_data_US1_UNCR.nii.gz", "US", None, 0, 1),
    ("unlabelled/pydicom_data_gdcm_US_ALOKA_16.nii.gz", "US", None, 0, 1),
    ("unlabelled/pydicom_data_RG1_UNCR.nii.gz", "X-ray", None, 0, 1),
    ("unlabelled/pydicom_data_RG3_UNCR.nii.gz", "X-ray", None, 0, 1),
    ("unlabelled/pydicom_data_JPEG2000_UNC.nii.gz", "NM", None, 0, 1),
    ("invesalius_head_ct.nii.gz", "CT", (-100, 1300), 0, 12),
    ("invesalius_head_ct.nii.gz", "CT", (-100, 1300), 1, 8),
    ("invesalius_head_ct.nii.gz", "CT", (-100, 1300), 2, 8),
    # abdominal CT around an aortic stent graft; its values read as HU clipped at 0 (fat is 0: mid-grey in this window)
    ("unlabelled/imageio_stent_ct.nii.gz", "CT", (-160, 240), 0, 40),
    ("unlabelled/imageio_stent_ct.nii.gz", "CT", (-160, 240), 1, 8),
    ("unlabelled/imageio_stent_ct.nii.gz", "CT", (-160, 240), 2, 8),
]
MIN_AREA, MAX_AREA = 0.003, 0.35  # a candidate's share of the slice's valid area


def framed_slices(volume: np.ndarray, window, axis: int, count: int):
    """(frame index, model-frame uint8 (256, 256), valid (h, w)) for up to ``count`` evenly spaced slices.

    volume: (Z, Y, X) as fetched; slices along ``axis`` are normalised and framed as build_slices does.
    """
    n = volume.shape[axis]
    picks = np.unique(np.linspace(0, n - 1, count + 2)[1:-1].round().astype(int)) if count < n else range(n)
    for k in picks:
        framed = framed_plane(np.take(volume, int(k), axis=axis).astype(np.float32), window)
        if framed is not None:
            yield int(k), *framed


def candidates(image: np.ndarray) -> list[np.ndarray]:
    """Binary (h, w) masks of intensity-class components of a (h, w) uint8 slice, largest first."""
    from skimage.filters import threshold_multiotsu
    from skimage.measure import label
    from skimage.morphology import disk, opening

    if len(np.unique(image)) < 4:  # too few grey levels for four classes (threshold_multiotsu would refuse it)
        return []
    classes = np.digitize(image, threshold_multiotsu(image, classes=4))
    area = image.size
    found = []
    for c in range(4):
        components = label(opening(classes == c, disk(2)))
        for index in range(1, components.max() + 1):
            component = components == index
            if MIN_AREA * area <= component.sum() <= MAX_AREA * area:
                found.append(component)
    return sorted(found, key=lambda m: -int(m.sum()))


def box_of(mask: np.ndarray) -> list[float]:
    """(x0, y0, x1, y1) pixel box of a (h, w) mask."""
    ys, xs = np.nonzero(mask)
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]


def pseudo_label(teacher: Segmenter, image: np.ndarray, valid_hw, min_score: float, min_agreement: float,
                 per_slice: int) -> list[tuple[np.ndarray, float]]:
    """Teacher masks kept on one model-frame (256, 256) uint8 slice: [(mask (256, 256) bool, score)]."""
    h, w = (int(v) for v in valid_hw)
    content = image[:h, :w]
    encoded = teacher.encode(content)
    kept: list[tuple[np.ndarray, float]] = []
    for component in candidates(content):
        prediction = teacher.predict_encoded(encoded, box=box_of(component))
        mask = prediction.mask
        if prediction.score < min_score or dice(mask, component) < min_agreement or mask.sum() < MIN_MASK_PIXELS:
            continue
        if any(iou(mask, other[:h, :w]) > 0.8 for other, _ in kept):
            continue
        framed = np.zeros((256, 256), bool)
        framed[:h, :w] = mask
        kept.append((framed, prediction.score))
    return sorted(kept, key=lambda item: -item[1])[:per_slice]


def merge(labelled: dict[str, np.ndarray], pseudo: dict[str, np.ndarray], repeat: int) -> dict[str, np.ndarray]:
    """build_slices arrays of ``labelled`` followed by ``pseudo``'s, each pseudo mask ``repeat`` times.

    Both hold ``images`` (N, 256, 256) with ``valid_hw`` and ``source`` per slice, and ``masks``
    (M, 256, 256) with ``mask_slice`` (into their own images), ``mask_name``, ``mask_modality``,
    ``mask_source`` and ``mask_patient`` per mask; the merged ``mask_slice`` indexes the merged images.
    """
    order = np.repeat(np.arange(len(pseudo["masks"])), repeat)
    merged = {key: np.concatenate([labelled[key], pseudo[key]]) for key in ("images", "valid_hw", "source")}
    merged["mask_slice"] = np.concatenate([labelled["mask_slice"], pseudo["mask_slice"][order] + len(labelled["images"])])
    for key in ("masks", "mask_name", "mask_modality", "mask_source", "mask_patient"):
        merged[key] = np.concatenate([labelled[key], pseudo[key][order]])
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labelled", required=True, help="a build_slices train.npz to merge the pseudo-labels into")
    parser.add_argument("--out", required=True, help="folder for train.npz (merged) and pseudo.npz")
    parser.add_argument("--min-score", type=float, default=0.8, help="the teacher's predicted IoU to keep a mask")
    parser.add_argument("--min-agreement", type=float, default=0.5, help="Dice between the mask and its candidate region")
    parser.add_argument("--per-slice", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=0, help="copies of each pseudo mask (0: as many as make the "
                        "pseudo masks a quarter of the merged set)")
    args = parser.parse_args()
    teacher = Segmenter.from_pretrained("litemedsam")  # predict_encoded: the whole slice, no ROI zoom
    images, valid, source, masks, mask_slice, mask_modality, scores = [], [], [], [], [], [], []
    plan = [(entry, list(framed_slices(load_array(entry[0]), entry[2], entry[3], entry[4]))) for entry in UNLABELLED]
    with tqdm(total=sum(len(slices) for _, slices in plan), desc="pseudo-labels") as bar:
        for (name, modality, _, axis, _), slices in plan:
            for k, image, hw in slices:
                kept = pseudo_label(teacher, image, hw, args.min_score, args.min_agreement, args.per_slice)
                if kept:
                    images.append(image)
                    valid.append(hw)
                    source.append(f"pseudo:{Path(name).name.split('.')[0]}:axis{axis}:{k}")
                for mask, score in kept:
                    masks.append(mask)
                    mask_slice.append(len(images) - 1)
                    mask_modality.append(modality)
                    scores.append(score)
                bar.update(1)
    if not masks:
        raise SystemExit("the teacher kept no mask: lower --min-score or --min-agreement")
    pseudo = {"images": np.stack(images), "valid_hw": np.array(valid), "source": np.array(source),
              "masks": np.stack(masks), "mask_slice": np.array(mask_slice, dtype=np.int64),
              "mask_name": np.array([f"{source[s]}:object" for s in mask_slice]),
              "mask_modality": np.array([modality_group(m) for m in mask_modality]),
              "mask_source": np.array(["teacher"] * len(masks)), "mask_patient": np.array([source[s] for s in mask_slice]),
              "teacher_score": np.array(scores, dtype=np.float32)}
    labelled = dict(np.load(args.labelled))
    repeat = args.repeat or max(1, round(len(labelled["masks"]) / 3 / len(masks)))
    merged = merge(labelled, pseudo, repeat)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "pseudo.npz", **pseudo)
    np.savez_compressed(out / "train.npz", **merged)
    per_modality = {m: int((pseudo["mask_modality"] == m).sum()) for m in sorted(set(pseudo["mask_modality"]))}
    print(json.dumps({"slices": len(images), "masks": len(masks), "per_modality": per_modality, "repeat": repeat,
                      "merged_masks": len(merged["masks"])}))


if __name__ == "__main__":
    main()

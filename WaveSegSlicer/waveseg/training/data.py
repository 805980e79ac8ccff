"""Datasets over the slices written by scripts/build_slices.py (model frame, uint8)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset


def augment_intensity(image: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Random gamma (0.7-1.5) and contrast/brightness jitter on a [0, 1] image; zero padding stays zero."""
    pad = image == 0
    out = image.clamp(0, 1) ** float(rng.uniform(0.7, 1.5))
    out = (out * float(rng.uniform(0.85, 1.15)) + float(rng.uniform(-0.05, 0.05))).clamp(0, 1)
    return out.masked_fill(pad, 0.0)


class DistillationSlices(Dataset):
    """(student input (3, 256, 256) in [0, 1], teacher embedding (256, 64, 64)) pairs."""

    def __init__(self, slices_npz: Path, teacher_npy: Path, augment: bool = True, seed: int = 0) -> None:
        self.images = np.load(slices_npz)["images"]
        self.teacher = np.load(teacher_npy, mmap_mode="r")
        done = np.load(str(teacher_npy).replace(".npy", ".done.npy"))
        self.indices = np.nonzero(done)[0]
        self.augment = augment
        self.seed = seed

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        index = int(self.indices[i])
        image = torch.from_numpy(self.images[index].astype(np.float32) / 255.0)
        if self.augment:
            image = augment_intensity(image, np.random.default_rng((self.seed, i, torch.randint(0, 2**31, ()).item())))
        teacher = torch.from_numpy(np.asarray(self.teacher[index], dtype=np.float32))
        return image[None].expand(3, -1, -1).contiguous(), teacher


MIN_AUGMENTED_PIXELS = 16  # a spatial transform that leaves less of the target than this is undone


def spatial_transform(probability: float):
    """MONAI's random left-right flip and affine (rotation +-15 deg, scale 0.65-1.35, shift +-25 px, about 10 %),
    applied to the image and its mask together; each happens with ``probability``.

    Zooming in shows small structures at the size ROI zoom gives them; zooming out shows large
    organs smaller, as in a wider field of view (the held-out macaque brain is one).
    """
    from monai.transforms import Compose, RandAffined, RandFlipd

    return Compose([
        RandFlipd(keys=("image", "mask"), prob=probability, spatial_axis=1),
        RandAffined(keys=("image", "mask"), prob=probability, rotate_range=np.pi / 12, scale_range=(0.35, 0.35),
                    translate_range=(25, 25), mode=("bilinear", "nearest"), padding_mode="zeros"),
    ])


def roi_zoom_view(image: np.ndarray, mask: np.ndarray, valid_hw: tuple[int, int],
                  rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The view ``InteractiveSession`` encodes when ROI zoom is on, or None for a large target.

    image: (256, 256) uint8 slice in the model frame, its content in the top-left ``valid_hw``;
    mask: (256, 256) {0, 1}. The extent is a jittered box around the mask (as a user's box, or a
    mask and its clicks, would give); ``waveseg.prompting.roi.choose_roi`` picks the crop and the crop goes
    through the encoder's own normalisation and resize (``Segmenter.encode``), so training sees
    the magnified, re-rendered crops that inference shows. Returns (image (256, 256) float in
    [0, 1], mask (256, 256) bool) in the crop's model frame.
    """
    from waveseg.predictor import to_model_input
    from waveseg.preprocess import MODEL_INPUT_SIZE, ResizeGeometry, normalize_intensity
    from waveseg.prompting.simulation import jittered_box
    from waveseg.prompting.roi import choose_roi

    h, w = (int(v) for v in valid_hw)
    roi = choose_roi(jittered_box(mask[:h, :w] > 0, rng), (h, w), "auto")
    if roi is None:
        return None
    x0, y0, x1, y1 = roi
    crop = normalize_intensity(image[y0:y1, x0:x1])
    geometry = ResizeGeometry.for_shape(*crop.shape)
    zoomed = to_model_input(crop, geometry)[0, 0]
    crop_mask = torch.from_numpy(np.ascontiguousarray(mask[y0:y1, x0:x1], dtype=np.float32))[None, None]
    rh, rw = geometry.resized_hw
    framed = torch.zeros(MODEL_INPUT_SIZE, MODEL_INPUT_SIZE, dtype=torch.bool)
    framed[:rh, :rw] = torch.nn.functional.interpolate(crop_mask, size=(rh, rw), mode="nearest")[0, 0] > 0.5
    return zoomed, framed


class LabelledSlices(Dataset):
    """(image (3, 256, 256) in [0, 1], mask (256, 256) bool as uint8) for each structure instance.

    spatial_augment: probability of each random spatial transform (see ``spatial_transform``);
    0 leaves the geometry as built. roi_zoom: probability that a small target is shown as ROI
    zoom shows it (see ``roi_zoom_view``) instead.
    """

    def __init__(self, slices_npz: Path, augment: bool = True, spatial_augment: float = 0.0, roi_zoom: float = 0.0) -> None:
        data = np.load(slices_npz)
        self.images, self.masks, self.mask_slice = data["images"], data["masks"], data["mask_slice"]
        self.valid_hw = data["valid_hw"]
        self.augment = augment
        self.spatial = spatial_transform(spatial_augment) if augment and spatial_augment > 0 else None
        self.roi_zoom = roi_zoom if augment else 0.0

    def __len__(self) -> int:
        return len(self.masks)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = torch.from_numpy(self.images[self.mask_slice[i]].astype(np.float32) / 255.0)
        mask = torch.from_numpy(self.masks[i].astype(np.float32))
        if self.augment:
            seed = torch.randint(0, 2**31, ()).item()  # follows torch's seed, so runs repeat
            zoom_rng = np.random.default_rng((seed, 1))
            zoomed = None
            if self.roi_zoom > 0 and zoom_rng.random() < self.roi_zoom:
                index = self.mask_slice[i]
                zoomed = roi_zoom_view(self.images[index], self.masks[i], self.valid_hw[index], zoom_rng)
            if zoomed is not None and zoomed[1].sum() >= MIN_AUGMENTED_PIXELS:
                image = augment_intensity(zoomed[0], np.random.default_rng(seed))
                mask = zoomed[1]
            else:
                image = augment_intensity(image, np.random.default_rng(seed))
                if self.spatial is not None:
                    self.spatial.set_random_state(seed)
                    moved = self.spatial({"image": image[None], "mask": mask[None]})
                    if moved["mask"].sum() >= MIN_AUGMENTED_PIXELS:
                        image, mask = moved["image"][0].as_tensor().float(), moved["mask"][0].as_tensor() > 0.5  # plain tensors, not MetaTensors
        return image[None].expand(3, -1, -1).contiguous(), mask.to(torch.uint8)

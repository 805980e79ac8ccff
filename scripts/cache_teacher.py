#!/usr/bin/env python
"""Compute LiteMedSAM's embeddings of the training slices once, for distillation (resumable).

LiteMedSAM's encoder costs about 1.7 s per slice in torch on 2 cores, far more than a student
step, so each (slice, augmentation) is encoded once and kept as fp16 (2 MB) in a memory-mapped
``<cache>/slices/teacher_<part>.npy`` of shape (N, 256, 64, 64), with a ``.done`` flag file per
block of progress. Interrupt it at any time; the next run continues where it stopped.
Augmentation: view 0 is the slice, view 1 its left-right mirror (``--views 2``).

    .venv/bin/python scripts/cache_teacher.py [--part train] [--views 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from tqdm import tqdm

from scripts_common import VOLUMES
from waveseg.model_files import load_model

SLICES = VOLUMES.parent / "slices"


def view_of(images: np.ndarray, index: int, view: int) -> np.ndarray:
    """(256, 256) uint8 image of augmented view ``view`` of slice ``index``."""
    image = images[index]
    return image[:, ::-1] if view == 1 else image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", default="train")
    parser.add_argument("--views", type=int, default=1, choices=(1, 2))
    args = parser.parse_args()
    images = np.load(SLICES / f"{args.part}.npz")["images"]
    n = len(images) * args.views
    path = SLICES / f"teacher_{args.part}.npy"
    done_path = SLICES / f"teacher_{args.part}.done.npy"
    if path.exists() and np.load(path, mmap_mode="r").shape[0] == n:
        out = np.load(path, mmap_mode="r+")
        done = np.load(done_path) if done_path.exists() else np.zeros(n, bool)
    else:
        out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(n, 256, 64, 64))
        done = np.zeros(n, bool)
    model, _ = load_model("litemedsam")
    todo = np.nonzero(~done)[0]
    last_save = time.time()
    with torch.inference_mode():
        for item in tqdm(todo, desc="teacher embeddings", unit="slice"):
            index, view = divmod(int(item), args.views) if args.views > 1 else (int(item), 0)
            x = torch.from_numpy(np.ascontiguousarray(view_of(images, index, view)).astype(np.float32) / 255.0)
            out[item] = model.encode(x[None, None].expand(1, 3, 256, 256)).numpy().astype(np.float16)
            done[item] = True
            if time.time() - last_save > 30:
                out.flush()
                np.save(done_path, done)
                last_save = time.time()
    out.flush()
    np.save(done_path, done)
    print(f"{int(done.sum())}/{n} embeddings in {path}")


if __name__ == "__main__":
    main()

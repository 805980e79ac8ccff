#!/usr/bin/env python
"""Compute LiteMedSAM's embeddings of the training slices once, for distillation (resumable).

LiteMedSAM's encoder costs about 1.7 s per slice in torch on 2 cores, far more than a student
step, so each (slice, augmentation) is encoded once and kept as fp16 (2 MB) in a memory-mapped
``<cache>/slices/teacher_<part>.npy`` of shape (N, 256, 64, 64), with a ``.done`` flag file per
block of progress. Interrupt it at any time; the next run continues where it stopped.
Augmentation: view 0 is the slice, view 1 its left-right mirror (``--views 2``).

    .venv/bin/python scripts/cache_teacher.py [--part train] [--views 2] [--device cuda --batch 32]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

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
    parser.add_argument("--slices", default=str(SLICES), help="folder of <part>.npz; the embeddings go there too")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    parser.add_argument("--batch", type=int, default=1)
    args = parser.parse_args()
    slices = Path(args.slices)
    images = np.load(slices / f"{args.part}.npz")["images"]
    n = len(images) * args.views
    path = slices / f"teacher_{args.part}.npy"
    done_path = slices / f"teacher_{args.part}.done.npy"
    if path.exists() and np.load(path, mmap_mode="r").shape[0] == n:
        out = np.load(path, mmap_mode="r+")
        done = np.load(done_path) if done_path.exists() else np.zeros(n, bool)
    else:
        out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(n, 256, 64, 64))
        done = np.zeros(n, bool)
    model, _ = load_model("litemedsam")
    model.to(args.device)
    todo = np.nonzero(~done)[0]
    last_save = time.time()
    with torch.inference_mode(), tqdm(total=len(todo), desc="teacher embeddings", unit="slice") as bar:
        for start in range(0, len(todo), args.batch):
            items = todo[start : start + args.batch]
            views = [divmod(int(item), args.views) if args.views > 1 else (int(item), 0) for item in items]
            x = np.stack([view_of(images, index, view) for index, view in views]).astype(np.float32) / 255.0
            x = torch.from_numpy(x)[:, None].expand(-1, 3, -1, -1).to(args.device)
            out[items] = model.encode(x).cpu().numpy().astype(np.float16)
            done[items] = True
            bar.update(len(items))
            if time.time() - last_save > 30:
                out.flush()
                np.save(done_path, done)
                last_save = time.time()
    out.flush()
    np.save(done_path, done)
    print(f"{int(done.sum())}/{n} embeddings in {path}")


if __name__ == "__main__":
    main()

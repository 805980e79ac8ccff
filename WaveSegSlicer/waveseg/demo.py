"""``waveseg demo``: the main job on the embedded sample, step by step, each scored.

On the 16-slice Colin27 T1 sample (``waveseg.sample_data``), through one ``VolumeSession`` as
Slicer and the app use it:

1. a box around the brain on the middle slice (``DEMO_SLICE``),
2. one corrective click on that slice, placed by the RITM rule (the farthest point inside the
   larger error region against the reference brain mask, positive or negative accordingly),
3. propagation of that slice's mask through the whole volume.

Each step prints its Dice against the reference brain mask (2D on the slice for steps 1 and 2,
3D over the volume for step 3) and writes one overlay PNG; the final mask is written as a label
map and a 3D Slicer segmentation. The reference is ``ch2bet`` (FSL BET's brain mask of the same
template), not a hand-drawn label.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

import numpy as np

from waveseg.metrics import dice


@dataclasses.dataclass
class DemoStep:
    name: str
    dice: float
    overlay: Path
    detail: str


def _montage(volume: np.ndarray, mask: np.ndarray, columns: int = 4):
    """One RGB ``PIL.Image``: every axial slice of the (Z, Y, X) volume with its mask tinted, in a
    grid of ``columns`` (row-major, slice 0 top left), all under one intensity window."""
    from PIL import Image

    from waveseg.overlay import render_overlay

    lo, hi = np.percentile(volume, (0.5, 99.5))  # one window for all slices, so they compare
    tiles = [render_overlay(volume[k], mask[k], window=(float(lo), float(hi))) for k in range(volume.shape[0])]
    w, h = tiles[0].size
    rows = -(-len(tiles) // columns)
    sheet = Image.new("RGB", (columns * w, rows * h))
    for k, tile in enumerate(tiles):
        sheet.paste(tile, ((k % columns) * w, (k // columns) * h))
    return sheet


def run_demo(segmenter, out: str | Path, log: Callable[[str], None] = print) -> list[DemoStep]:
    """Run the three steps with ``segmenter`` and write into folder ``out``:
    ``demo_1_box.png``, ``demo_2_click.png``, ``demo_3_propagation.png`` (all 16 slices),
    ``demo_mask.nii.gz`` and ``demo_mask.seg.nrrd`` (the final (Z, Y, X) mask on the sample's grid)."""
    from waveseg.atomic import atomic_path
    from waveseg.io import read_image, write_mask
    from waveseg.overlay import save_overlay
    from waveseg.prompting.simulation import next_click
    from waveseg.sample_data import DEMO_BOX, DEMO_SLICE, SAMPLE_BRAIN_MASK, SAMPLE_T1

    out = Path(out)
    volume = read_image(SAMPLE_T1)
    truth = read_image(SAMPLE_BRAIN_MASK).array > 0
    image = volume.array[DEMO_SLICE]
    session = segmenter.volume_session(volume.array, spacing=volume.spacing, prefetch=False)
    steps = []
    try:
        mask = session.segment_slice(0, DEMO_SLICE, box=DEMO_BOX)
        path = save_overlay(out / "demo_1_box.png", image, mask, box=DEMO_BOX)
        steps.append(DemoStep("box", dice(mask, truth[DEMO_SLICE]), path, f"box {DEMO_BOX} on axial slice {DEMO_SLICE}"))

        x, y, label = next_click(mask, truth[DEMO_SLICE])  # where the box result is most wrong
        session.click((x, y, DEMO_SLICE), positive=bool(label), repropagate=False)
        mask = session.mask[DEMO_SLICE]
        path = save_overlay(out / "demo_2_click.png", image, mask, box=DEMO_BOX, points=np.array([[x, y]]), labels=[label])
        kind = "positive" if label else "negative"
        steps.append(DemoStep("corrective click", dice(mask, truth[DEMO_SLICE]), path,
                              f"{kind} click at (x={x}, y={y}), the RITM rule's next click"))

        report = session.propagate(0, DEMO_SLICE)
        path = out / "demo_3_propagation.png"
        with atomic_path(path) as tmp:
            _montage(volume.array, session.mask).save(tmp, format="PNG")
        steps.append(DemoStep("propagation", dice(session.mask, truth), path,
                              f"through the volume: {len(report.written)} slices written, stopped: {report.stopped}"))
    finally:
        session.close()
    for number, step in enumerate(steps, start=1):
        scope = "3D, all 16 slices" if step.name == "propagation" else f"slice {DEMO_SLICE}"
        log(f"step {number}, {step.name}: Dice {step.dice:.3f} against the reference brain mask ({scope}); "
            f"{step.detail}; overlay {step.overlay}")
    write_mask(session.mask, out / "demo_mask.nii.gz", volume)
    write_mask(session.mask, out / "demo_mask.seg.nrrd", volume, segment_name="brain")
    return steps

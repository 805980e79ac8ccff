#!/usr/bin/env python
"""Make the golden masks of the Slicer self-test's prompt table (WaveSegSlicerLib/selftest_cases.py).

Runs every case through the module's MRML logic on PyPI's slicer-core (real MRML, no GUI) with
the shipped wave-gms model and writes ``WaveSegSlicer/Resources/Testing/selftest_golden.npz``
(bit-packed masks). Re-run only when the model or the prompt table changes on purpose.

    .venv/bin/python scripts/make_selftest_golden.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "WaveSegSlicer"))  # the module folder, as in Slicer

from WaveSegSlicerLib import mrml_bridge  # noqa: E402
from WaveSegSlicerLib.editor_grid import EditorGrid  # noqa: E402
from WaveSegSlicerLib.mrml_support import new_scene, load_volume  # noqa: E402
from WaveSegSlicerLib.selftest_cases import GOLDEN_PATH, MODEL, PROMPT_CASES, run_case, voxel_handlers  # noqa: E402
from WaveSegSlicerLib.volume_logic import VolumePromptLogic  # noqa: E402
from waveseg.atomic import atomic_path  # noqa: E402
from waveseg.predictor import Segmenter  # noqa: E402
from waveseg.sample_data import SAMPLE_T1  # noqa: E402


def main() -> None:
    scene = new_scene()
    volume_node = load_volume(scene, SAMPLE_T1)
    segmenter = Segmenter.from_pretrained(MODEL)
    voxels, spacing = mrml_bridge.volume_array(volume_node)
    grid = EditorGrid.of_volume(volume_node)
    golden = {}
    for case in PROMPT_CASES:
        logic = VolumePromptLogic(segmenter, voxels, spacing, prefetch=False)
        run_case(case, volume_node, *voxel_handlers(grid, volume_node, logic), logic.propagate)
        golden[case.name] = np.packbits(logic.mask)
        golden["shape"] = np.array(logic.mask.shape)
        print(f"{case.name}: {int(logic.mask.sum())} voxels on {int(logic.mask.any(axis=(1, 2)).sum())} axial slices")
        logic.close()
    with atomic_path(GOLDEN_PATH) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **golden)
    print(f"wrote {GOLDEN_PATH}")


if __name__ == "__main__":
    main()

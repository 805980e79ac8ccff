"""The table of prompts that the module's self-test (in Slicer) and pytest (on slicer-core) run.

Each case is a list of steps in voxel (i, j, k) coordinates of the embedded Colin27 sample
(``waveseg.sample_data.SAMPLE_T1``, 16 axial slices of 181 x 217): a box, points, or a
propagation, all on slices across ``axis``. Steps are turned into world RAS with the volume's
IJK-to-RAS matrix, so the same table exercises the RAS -> voxel path that mouse prompts take.
Golden masks (``Resources/Testing/selftest_golden.npz``) were made with ``scripts/make_selftest_golden.py``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import numpy as np

MODEL = "wave-gms"  # the shipped light model: fast in a self-test, independent of the catalog default
GOLDEN_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "Resources", "Testing", "selftest_golden.npz")


@dataclass(frozen=True)
class PromptCase:
    name: str
    axis: int  # 0: slices across K (axial here), 1: across J, 2: across I
    steps: tuple  # ("box", ijk0, ijk1) | ("point", ijk, positive) | ("propagate",)


def _box(i0, j0, i1, j1, k):
    return ("box", (i0, j0, k), (i1, j1, k))


PROMPT_CASES = (
    PromptCase("brain_box", 0, (_box(20, 20, 162, 198, 8),)),
    PromptCase("brain_box_then_negative_click", 0, (_box(20, 20, 162, 198, 8), ("point", (90, 30, 8), False))),
    PromptCase("two_positive_clicks", 0, (("point", (90, 100, 8), True), ("point", (100, 108, 8), True))),
    PromptCase("brain_box_propagated", 0, (_box(20, 20, 162, 198, 8), ("propagate",))),
    PromptCase("coronal_box", 1, (("box", (25, 108, 2), (156, 108, 13)),)),
)


def axis_normal_ras(volume_node, axis: int) -> np.ndarray:
    """RAS direction of the voxel axis that slices across ``axis`` (the view normal)."""
    from WaveSegSlicerLib.mrml_bridge import ijk_to_ras_matrix

    return ijk_to_ras_matrix(volume_node)[:3, 2 - axis]


def ijk_to_ras(volume_node, ijk) -> np.ndarray:
    from WaveSegSlicerLib.mrml_bridge import ijk_to_ras_matrix

    return (ijk_to_ras_matrix(volume_node) @ np.array([*ijk, 1.0]))[:3]


def run_case(case: PromptCase, volume_node, box: Callable, point: Callable, propagate: Callable) -> None:
    """Feed one case's steps, in world RAS, to ``box(ras0, ras1, normal)``, ``point(ras, positive,
    normal)`` and ``propagate()`` (a ``VolumePromptLogic``'s methods, or the effect's prompt handlers)."""
    normal = axis_normal_ras(volume_node, case.axis)
    for step in case.steps:
        if step[0] == "box":
            box(ijk_to_ras(volume_node, step[1]), ijk_to_ras(volume_node, step[2]), normal)
        elif step[0] == "point":
            point(ijk_to_ras(volume_node, step[1]), step[2], normal)
        else:
            propagate()


def golden_mask(case: PromptCase) -> np.ndarray:
    """(Z, Y, X) bool golden mask of one case."""
    with np.load(GOLDEN_PATH) as golden:
        return np.unpackbits(golden[case.name]).reshape(golden["shape"]).astype(bool)

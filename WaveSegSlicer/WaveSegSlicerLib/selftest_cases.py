"""The table of prompts that the module's self-test (in Slicer) and pytest (on slicer-core) run.

Each case is a list of steps in voxel (i, j, k) coordinates of the embedded Colin27 sample
(``waveseg.sample_data.SAMPLE_T1``, 16 axial slices of 181 x 217): a box, points, or a
propagation, all on slices across ``axis``. Steps are turned into world RAS with the volume's
IJK-to-RAS matrix, so the same table exercises the RAS -> voxel path that mouse prompts take.
Golden masks (``Resources/Testing/selftest_golden.npz``) were made with ``scripts/make_selftest_golden.py``.

The ``view_*`` helpers drive an effect the way a user does: a slice view turned to a voxel plane,
then mouse and key events given to ``processInteractionEvents``. The in-Slicer self-test runs
them on real slice widgets; pytest runs them on the Slicer stand-in (``Testing/slicer_harness.py``).
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass
from typing import Callable, Iterator

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


ORIENTATIONS = ("Axial", "Coronal", "Sagittal")  # vtkMRMLSliceNode presets, one per array axis of an RAS-aligned scan


def aim_view(slice_node, volume_node, axis: int, ijk) -> None:
    """Show the voxel plane across ``axis`` through voxel ``ijk`` (as "Rotate to volume plane" does;
    ``vtkMRMLSliceNode::RotateToVolumePlane`` follows the volume's parent transforms)."""
    getattr(slice_node, f"SetOrientationTo{ORIENTATIONS[axis]}")()
    slice_node.RotateToVolumePlane(volume_node)
    world = world_ras(volume_node, ijk)
    slice_node.JumpSliceByOffsetting(*world)


def world_ras(volume_node, ijk) -> np.ndarray:
    """World RAS of voxel (i, j, k): the volume's IJK-to-RAS, then its parent transforms."""
    import vtk

    local = ijk_to_ras(volume_node, ijk)
    transform = vtk.vtkGeneralTransform()
    parent = volume_node.GetParentTransformNode()
    if parent is not None:
        parent.GetTransformToWorld(transform)
    return np.array(transform.TransformPoint([float(v) for v in local]))


def _event(effect, interactor, view, event, xy, control=False, shift=False, keysym=None) -> bool:
    interactor.SetEventInformation(int(round(xy[0])), int(round(xy[1])), int(control), int(shift), "\0", 0, keysym)
    return effect.processInteractionEvents(interactor, event, view)


def view_click(effect, interactor, view, ras, positive: bool = True) -> None:
    """A left click at world RAS ``ras`` (Ctrl held for a negative point)."""
    import vtk

    xy = effect.rasToXy(ras, view)
    _event(effect, interactor, view, vtk.vtkCommand.LeftButtonPressEvent, xy, control=not positive)
    _event(effect, interactor, view, vtk.vtkCommand.LeftButtonReleaseEvent, xy, control=not positive)


def view_drag(effect, interactor, view, ras0, ras1) -> None:
    """A left drag from world RAS ``ras0`` to ``ras1`` (a box)."""
    import vtk

    xy0, xy1 = effect.rasToXy(ras0, view), effect.rasToXy(ras1, view)
    _event(effect, interactor, view, vtk.vtkCommand.LeftButtonPressEvent, xy0)
    _event(effect, interactor, view, vtk.vtkCommand.MouseMoveEvent, ((xy0[0] + xy1[0]) / 2, (xy0[1] + xy1[1]) / 2))
    _event(effect, interactor, view, vtk.vtkCommand.MouseMoveEvent, xy1)
    _event(effect, interactor, view, vtk.vtkCommand.LeftButtonReleaseEvent, xy1)


def view_key(effect, interactor, view, keysym: str, shift: bool = False) -> bool:
    """A key press in the view; True when the effect took it."""
    import vtk

    return _event(effect, interactor, view, vtk.vtkCommand.KeyPressEvent, (0, 0), shift=shift, keysym=keysym)


def run_case_in_view(case: PromptCase, effect, interactor, view, volume_node) -> None:
    """Feed one case's steps as mouse and key events in ``view`` (its slice node is turned to each
    step's voxel plane first)."""
    slice_node = view.sliceLogic().GetSliceNode()
    for step in case.steps:
        if step[0] == "box":
            aim_view(slice_node, volume_node, case.axis, step[1])
            view_drag(effect, interactor, view, world_ras(volume_node, step[1]), world_ras(volume_node, step[2]))
        elif step[0] == "point":
            aim_view(slice_node, volume_node, case.axis, step[1])
            view_click(effect, interactor, view, world_ras(volume_node, step[1]), positive=step[2])
        else:
            view_key(effect, interactor, view, "p")


def voxel_handlers(grid, node, logic) -> tuple[Callable, Callable]:
    """``run_case``'s ``box`` and ``point`` callbacks for a ``VolumePromptLogic`` on ``grid``: world RAS
    through ``node``'s parent transforms to voxels, converted as the effect converts view prompts."""
    from WaveSegSlicerLib.editor_grid import prompt_voxel_and_axis

    def box(ras0, ras1, normal):
        (ijk0, ijk1), axis = prompt_voxel_and_axis(grid, node, [ras0, ras1], normal)
        return logic.box(ijk0, ijk1, axis)

    def point(ras, positive, normal, **kwargs):
        (ijk,), axis = prompt_voxel_and_axis(grid, node, [ras], normal)
        return logic.click(ijk, positive, axis, **kwargs)

    return box, point


@contextlib.contextmanager
def worker_held_until_cancel(effect) -> Iterator[list]:
    """Hold the model worker at each slice of a propagation until the effect's cancel flag is raised,
    so that a test presses Cancel during a propagation whatever the machine's speed. (Cancel blocks
    the main thread until the worker stops, so the flag itself must release it.) Yields the list of
    the names of the threads that ran the model, one entry per slice."""
    release, calls = threading.Event(), []
    segmenter, effect_class = effect.logic.session.segmenter, type(effect)
    original = segmenter.predict_encoded

    def held(*args, **kwargs):
        calls.append(threading.current_thread().name)
        release.wait()
        return original(*args, **kwargs)

    def raise_flag(instance, value):
        instance.__dict__["cancelRequested"] = value
        if value:
            release.set()

    segmenter.predict_encoded = held
    effect_class.cancelRequested = property(lambda instance: instance.__dict__.get("cancelRequested", False), raise_flag)
    try:
        yield calls
    finally:
        del effect_class.cancelRequested
        del segmenter.predict_encoded  # the instance attribute; the class's method shows again
        release.set()


def golden_mask(case: PromptCase) -> np.ndarray:
    """(Z, Y, X) bool golden mask of one case."""
    with np.load(GOLDEN_PATH) as golden:
        return np.unpackbits(golden[case.name]).reshape(golden["shape"]).astype(bool)

"""Scribble and lasso tools of the WaveSeg Segment Editor effect (issue #26), driven by slice-view
events through ``slicer_harness`` and slicer-core, as ``test_slicer_effect.py`` drives clicks and
boxes (its ``Editor`` scene is reused). The effect's keys are checked against Slicer's shortcuts
there (``test_effect_keys_are_not_segment_editor_or_slice_view_keys`` reads every key of ``KEYS``)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import distance_transform_edt

slicer = pytest.importorskip("slicer", reason="slicer-core is part of the test extra")
vtk = pytest.importorskip("vtk")

from test_slicer_effect import Editor  # noqa: E402
from WaveSegSlicerLib.selftest_cases import _event, world_ras  # noqa: E402
from waveseg.prompting.strokes import lasso_fill, stroke_pixels, validate_stroke  # noqa: E402

SLICE = 8  # the brain box's axial slice


@pytest.fixture
def editor(monkeypatch):
    made = Editor(monkeypatch)
    yield made
    made.effect.deactivate()


def draw(editor, ijk_points, negative: bool = False, release: bool = True) -> None:
    """A left-drag through voxels (i, j, k) of the shown slice (Ctrl held for a negative stroke)."""
    xys = [editor.effect.rasToXy(world_ras(editor.volume, ijk), editor.view) for ijk in ijk_points]
    _event(editor.effect, editor.interactor, editor.view, vtk.vtkCommand.LeftButtonPressEvent, xys[0], control=negative)
    for xy in xys[1:]:
        _event(editor.effect, editor.interactor, editor.view, vtk.vtkCommand.MouseMoveEvent, xy, control=negative)
    if release:
        _event(editor.effect, editor.interactor, editor.view, vtk.vtkCommand.LeftButtonReleaseEvent, xys[-1], control=negative)


def test_a_negative_lasso_removes_its_inside_and_backspace_restores(editor):
    editor.box()
    after_box = editor.effect.logic.mask.copy()
    assert editor.key("l") and editor.effect.strokes.tool == "lasso"
    polygon = [(70, 90, SLICE), (110, 85, SLICE), (115, 125, SLICE), (75, 130, SLICE)]
    draw(editor, polygon, negative=True)
    inside = lasso_fill(np.array([p[:2] for p in polygon], float), after_box.shape[1:])
    assert after_box[SLICE][inside].all() and not editor.effect.logic.mask[SLICE][inside].any()
    assert editor.effect.statusLabel.text.startswith("Lasso")
    assert editor.key("BackSpace")
    np.testing.assert_array_equal(editor.effect.logic.mask, after_box)


def test_a_scribble_is_shown_while_drawn_then_marks_its_line(editor):
    editor.box()
    after_box = editor.effect.logic.mask.copy()
    assert editor.key("d") and editor.effect.strokes.tool == "scribble"
    line = [(70, 100, SLICE), (85, 104, SLICE), (100, 108, SLICE), (115, 110, SLICE)]
    draw(editor, line, negative=True, release=False)
    actor, polyData = editor.effect.strokes.actors[editor.view]
    assert actor.GetVisibility() and polyData.GetNumberOfPoints() == 4  # the stroke so far, visible
    assert actor.GetProperty().GetColor() == pytest.approx((0.95, 0.3, 0.25))  # negative: red
    xy = editor.effect.rasToXy(world_ras(editor.volume, line[-1]), editor.view)
    _event(editor.effect, editor.interactor, editor.view, vtk.vtkCommand.LeftButtonReleaseEvent, xy, control=True)
    assert not actor.GetVisibility()
    after = editor.effect.logic.mask[SLICE]
    assert after_box[SLICE, 104, 85] and not after[104, 85] and not after[108, 100]  # on the line: cut out
    drawn = stroke_pixels(validate_stroke([p[:2] for p in line], False, after.shape, False), after.shape)
    far = distance_transform_edt(~drawn) > 50  # beyond the corrective stroke's reach (StrokeRule.local: 46 pixels here)
    assert not (after != after_box[SLICE])[far].any()
    # K: back to clicks and boxes; a drag is a box again
    assert editor.key("k") and editor.effect.strokes.tool == "prompt"
    editor.box()
    assert editor.effect.statusLabel.text.startswith("Box")

"""The effect's Propose button as Slicer runs it (``slicer_harness``; real MRML, Segment Editor logic,
effect, model and worker): the selected segment proposed on its other slices from its annotated
ones, previewed, undone with BackSpace, applied with Enter."""

from __future__ import annotations

import numpy as np
import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core is part of the test extra")
pytest.importorskip("vtk")

from test_slicer_effect import Editor  # noqa: E402
from WaveSegSlicerLib.editor_grid import image_of_mask  # noqa: E402
from waveseg.io import read_image  # noqa: E402
from waveseg.metrics import dice  # noqa: E402
from waveseg.sample_data import SAMPLE_BRAIN_MASK  # noqa: E402


@pytest.fixture
def editor(monkeypatch):
    made = Editor(monkeypatch)
    yield made
    made.effect.deactivate()


@pytest.fixture(scope="module")
def brain():
    return read_image(SAMPLE_BRAIN_MASK).array > 0


def test_propose_from_the_boxed_slice_then_undo_and_apply(editor, brain):
    editor.box()  # the brain on axial slice 8
    assert editor.effect.logic.mask.any(axis=(1, 2)).sum() == 1
    assert editor.effect.proposeButton.enabled
    editor.effect.proposeButton.click()
    assert "proposed on 15 slices" in editor.effect.statusLabel.text, editor.effect.statusLabel.text
    proposed = editor.effect.logic.mask.copy()
    others = [k for k in range(16) if k != 8]
    assert dice(proposed[others], brain[others]) >= 0.85
    editor.key("BackSpace")  # one undo step takes the proposals back
    assert editor.effect.logic.mask.any(axis=(1, 2)).sum() == 1
    editor.key("BackSpace", shift=True)
    np.testing.assert_array_equal(editor.effect.logic.mask, proposed)
    editor.key("Return")
    np.testing.assert_array_equal(editor.segment_on_volume_grid(editor.segment_a), proposed)


def test_propose_from_a_segment_drawn_before_keeps_the_drawn_slices(editor, brain):
    drawn = np.zeros(brain.shape, bool)
    drawn[[3, 12]] = brain[[3, 12]]  # painted earlier, before any WaveSeg prompt
    logic = slicer.vtkSlicerSegmentationsModuleLogic
    grid = editor.scripted.defaultModifierLabelmap()
    from WaveSegSlicerLib.editor_grid import EditorGrid

    logic.SetBinaryLabelmapToSegment(image_of_mask(drawn, EditorGrid.of_image(grid)), editor.segmentation, editor.segment_a,
                                     logic.MODE_REPLACE)
    assert editor.effect.logic is None
    editor.effect.proposeButton.click()  # starts the session on the segment, then proposes
    mask = editor.effect.logic.mask
    np.testing.assert_array_equal(mask[[3, 12]], drawn[[3, 12]])
    others = [k for k in range(16) if k not in (3, 12)]
    assert dice(mask[others], brain[others]) >= 0.85

"""The app's scribble and lasso tools (issue #26), driven through the slice view's own mouse and key
handling (QTest), with the shipped wave-gms; no 3D view, so no display is needed (offscreen Qt)."""

from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("Qt", reason="the app tests need the [app] extra")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from app_window import HANG_GUARD_MS, load_wave_gms, open_main_window  # noqa: E402

from waveseg.sample_data import DEMO_SLICE  # noqa: E402
from waveseg.prompting.strokes import lasso_fill, stroke_pixels, validate_stroke  # noqa: E402


@pytest.fixture(scope="module")
def segmenter():
    return load_wave_gms()


@pytest.fixture
def window(qtbot, segmenter, tmp_path, monkeypatch):
    from waveseg.app.demo_state import demo_state

    win = open_main_window(qtbot, segmenter, tmp_path, monkeypatch)
    demo_state(win, propagate=False)
    win.activateWindow()
    qtbot.waitUntil(lambda: win.isActiveWindow(), timeout=HANG_GUARD_MS)
    return win


def _key(qtbot, window, key: str) -> None:
    from Qt import QtCore

    qtbot.keyClick(window.views[0], getattr(QtCore.Qt, f"Key_{key}"))


def test_keys_switch_tools_and_a_negative_scribble_is_one_undo_step(window, qtbot):
    from Qt import QtCore

    from waveseg.app.demo_state import draw_stroke, settle

    axial = window.views[0]
    _key(qtbot, window, "S")
    assert axial.tool == "scribble" and window.tool_actions["scribble"].isChecked()
    assert window.tool_actions["scribble"].toolTip() == "Scribble (S)"
    before = window.document.segment.mask.copy()
    line = [(70.0, 100.0), (85.0, 104.0), (100.0, 108.0), (115.0, 110.0)]
    draw_stroke(axial, line, modifier=QtCore.Qt.ControlModifier)
    settle(window)
    after = window.document.segment.mask[DEMO_SLICE]
    drawn = np.array(window.document.segment.session._prompts[(0, DEMO_SLICE)]["strokes"][-1].xy)
    pixels = stroke_pixels(validate_stroke(drawn, False, after.shape, False), after.shape)
    assert before[DEMO_SLICE][pixels].all() and not after[pixels].any()  # the line is cut out of the brain
    assert window.latency.text().startswith("scribble")
    window.undo_action.trigger()
    settle(window)
    np.testing.assert_array_equal(window.document.segment.mask, before)
    _key(qtbot, window, "B")
    assert axial.tool == "prompt"


def test_a_negative_lasso_removes_its_inside_and_undo_restores(window, qtbot):
    from Qt import QtCore

    from waveseg.app.demo_state import draw_stroke, settle

    axial = window.views[0]
    _key(qtbot, window, "L")
    before = window.document.segment.mask.copy()
    polygon = [(70.0, 90.0), (110.0, 85.0), (115.0, 125.0), (75.0, 130.0)]
    draw_stroke(axial, polygon, button=QtCore.Qt.RightButton)  # right-drag: negative
    settle(window)
    drawn = window.document.segment.session._prompts[(0, DEMO_SLICE)]["strokes"][-1]
    assert drawn.closed and not drawn.positive
    inside = lasso_fill(drawn.xy, before.shape[1:])
    assert not window.document.segment.mask[DEMO_SLICE][inside].any()
    qtbot.keyClick(axial, QtCore.Qt.Key_Z, QtCore.Qt.ControlModifier)
    settle(window)
    np.testing.assert_array_equal(window.document.segment.mask, before)


def test_the_stroke_is_visible_while_drawing_and_gone_after(window, qtbot):
    from Qt import QtCore

    from waveseg.app.demo_state import draw_stroke, settle

    axial = window.views[0]
    _key(qtbot, window, "S")

    def green_pixels() -> int:
        image = axial.grab().toImage().convertToFormat(axial.grab().toImage().Format.Format_RGB888)
        rgb = np.frombuffer(image.constBits(), np.uint8, image.sizeInBytes()).reshape(image.height(), image.bytesPerLine())
        rgb = rgb[:, : 3 * image.width()].reshape(image.height(), image.width(), 3).astype(int)
        return int(((rgb[..., 1] > 180) & (rgb[..., 0] < 120) & (rgb[..., 2] < 150)).sum())

    baseline = green_pixels()
    draw_stroke(axial, [(40.0, 60.0), (90.0, 60.0), (140.0, 70.0)], release=False)
    assert green_pixels() > baseline + 50  # the positive stroke is drawn in green as the mouse moves
    end = axial.slice_to_widget(140.0, 70.0).toPoint()
    from Qt.QtTest import QTest

    QTest.mouseRelease(axial, QtCore.Qt.LeftButton, QtCore.Qt.NoModifier, end)
    settle(window)
    assert axial._stroke == [] and window.document.segment.session.can_undo

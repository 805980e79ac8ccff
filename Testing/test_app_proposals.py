"""The app's Propose actions (E, Shift+E) with real Qt and the shipped wave-gms: the brain boxed
on one axial slice of the embedded sample is proposed on the others, as one undo step."""

from __future__ import annotations


import numpy as np
import pytest

pytest.importorskip("Qt", reason="the app tests need the [app] extra")
pytest.importorskip("vtkmodules")

from app_window import HANG_GUARD_MS, HANG_GUARD_S, load_wave_gms, open_main_window  # noqa: E402

from waveseg.app.display import start_xvfb  # noqa: E402
from waveseg.io import read_image  # noqa: E402
from waveseg.metrics import dice  # noqa: E402
from waveseg.sample_data import DEMO_SLICE, SAMPLE_BRAIN_MASK  # noqa: E402



@pytest.fixture(scope="module")
def display():
    return start_xvfb(timeout_s=HANG_GUARD_S)


@pytest.fixture(scope="module")
def qapp(display):
    from Qt import QtWidgets

    return QtWidgets.QApplication.instance() or QtWidgets.QApplication(["waveseg-tests"])


@pytest.fixture(scope="module")
def segmenter():
    return load_wave_gms()


@pytest.fixture
def window(qtbot, segmenter, tmp_path, monkeypatch):
    return open_main_window(qtbot, segmenter, tmp_path, monkeypatch)


def test_propose_through_the_volume_then_on_one_slice_with_undo(window, qtbot):
    from Qt import QtCore

    from waveseg.app.demo_state import demo_state, settle

    brain = read_image(SAMPLE_BRAIN_MASK).array > 0
    window.propose_action.trigger()  # nothing open: a message, no error
    demo_state(window, propagate=False)  # the brain boxed on axial slice 8: the example
    mask = window.document.segment.mask
    assert mask.any(axis=(1, 2)).sum() == 1
    window.activateWindow()
    qtbot.waitUntil(lambda: window.isActiveWindow(), timeout=HANG_GUARD_MS)
    assert window.propose_action.toolTip() == "Propose (E)"
    qtbot.keyClick(window.views[0], QtCore.Qt.Key_E, QtCore.Qt.ShiftModifier)  # through the volume
    settle(window)
    mask = window.document.segment.mask
    assert mask.any(axis=(1, 2)).all()
    others = [k for k in range(16) if k != DEMO_SLICE]
    assert dice(mask[others], brain[others]) >= 0.85
    assert "proposed on 15 slice(s)" in window.statusBar().currentMessage()
    qtbot.keyClick(window.views[0], QtCore.Qt.Key_Z, QtCore.Qt.ControlModifier)  # one undo step
    settle(window)
    assert window.document.segment.mask.any(axis=(1, 2)).sum() == 1
    window.views[0].set_index(3)
    qtbot.keyClick(window.views[0], QtCore.Qt.Key_E)  # this slice only
    settle(window)
    mask = window.document.segment.mask
    assert sorted(np.flatnonzero(mask.any(axis=(1, 2)))) == [3, DEMO_SLICE]
    assert dice(mask[3], brain[3]) >= 0.85

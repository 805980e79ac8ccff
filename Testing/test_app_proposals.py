"""The app's Propose actions (E, Shift+E) with real Qt and the shipped wave-gms: the brain boxed
on one axial slice of the embedded sample is proposed on the others, as one undo step."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("Qt", reason="the app tests need the [app] extra")
pytest.importorskip("vtkmodules")

from waveseg.app.display import start_xvfb  # noqa: E402
from waveseg.io import read_image  # noqa: E402
from waveseg.metrics import dice  # noqa: E402
from waveseg.sample_data import DEMO_SLICE, SAMPLE_BRAIN_MASK  # noqa: E402

HANG_GUARD_S = 900  # only against hanging forever
HANG_GUARD_MS = HANG_GUARD_S * 1000


@pytest.fixture(scope="module")
def display():
    return start_xvfb(timeout_s=HANG_GUARD_S)


@pytest.fixture(scope="module")
def qapp(display):
    from Qt import QtWidgets

    return QtWidgets.QApplication.instance() or QtWidgets.QApplication(["waveseg-tests"])


@pytest.fixture(scope="module")
def segmenter():
    from waveseg.predictor import Segmenter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return Segmenter.from_pretrained("wave-gms")


@pytest.fixture
def window(qtbot, segmenter, tmp_path, monkeypatch):
    from waveseg.app.main_window import MainWindow

    monkeypatch.setenv("WAVESEG_PROFILES_DIR", str(tmp_path / "profiles"))
    win = MainWindow(lambda profile: segmenter, with_3d=False, prefetch=False, model_name="wave-gms")
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win, timeout=HANG_GUARD_MS)
    return win


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

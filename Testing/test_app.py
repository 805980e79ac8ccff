"""The desktop app with real Qt (PySide6 through Qt.py) and real VTK, on a virtual X display.

Mouse prompts go through the slice views' own event handling (QTest presses, moves and
releases); the model is the shipped wave-gms (fast on CPU)."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("Qt", reason="the app tests need the [app] extra")
pytest.importorskip("vtkmodules")

from app_window import HANG_GUARD_MS, HANG_GUARD_S, load_wave_gms, open_main_window  # noqa: E402

from waveseg.app.display import grab, start_xvfb  # noqa: E402
from waveseg.metrics import dice  # noqa: E402
from waveseg.sample_data import DEMO_SLICE  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"
REFERENCE_TOLERANCE = 12.0  # mean absolute grey-level difference (0..255) of the downscaled screenshots


@pytest.fixture(scope="session")
def display():
    return start_xvfb(timeout_s=HANG_GUARD_S)  # lives as long as the test process


@pytest.fixture(scope="session")
def qapp(display):
    """pytest-qt's QApplication, created only once Xvfb runs (Qt aborts without a display)."""
    from Qt import QtWidgets

    return QtWidgets.QApplication.instance() or QtWidgets.QApplication(["waveseg-tests"])


@pytest.fixture(scope="module")
def segmenter():
    return load_wave_gms()


@pytest.fixture
def window(qtbot, segmenter, tmp_path, monkeypatch):
    return open_main_window(qtbot, segmenter, tmp_path, monkeypatch, with_3d=True)


def test_drag_and_clicks_segment_with_undo_redo(window, brain_mask):
    from Qt import QtCore

    from waveseg.app.demo_state import click, demo_state, settle

    demo_state(window, propagate=False)
    mask = window.document.segment.mask
    assert dice(mask[DEMO_SLICE], brain_mask) >= 0.9  # the box dragged over the brain gives the brain
    assert mask[DEMO_SLICE].sum() > 0 and mask.sum() == mask[DEMO_SLICE].sum()
    after_box = mask.copy()
    click(window.views[0], 90, 30, modifier=QtCore.Qt.ControlModifier)  # Ctrl+click: negative point
    settle(window)
    after_click = window.document.segment.mask.copy()
    assert not np.array_equal(after_click, after_box)
    window.undo_action.trigger()
    settle(window)
    np.testing.assert_array_equal(window.document.segment.mask, after_box)
    window.redo_action.trigger()
    settle(window)
    np.testing.assert_array_equal(window.document.segment.mask, after_click)
    assert "ms" in window.latency.text()  # the status bar shows the last prompt's latency


def test_shortcuts_propagate_and_undo(window, qtbot):
    from Qt import QtCore

    from waveseg.app.demo_state import demo_state, settle

    demo_state(window, propagate=False)
    window.activateWindow()
    qtbot.waitUntil(lambda: window.isActiveWindow(), timeout=HANG_GUARD_MS)
    assert window.propagate_action.toolTip() == "Propagate (P)"
    qtbot.keyClick(window.views[0], QtCore.Qt.Key_P)
    settle(window)
    assert window.document.segment.mask.any(axis=(1, 2)).sum() >= 10  # propagated through the volume
    qtbot.keyClick(window.views[0], QtCore.Qt.Key_Z, QtCore.Qt.ControlModifier)
    settle(window)
    assert window.document.segment.mask.any(axis=(1, 2)).sum() == 1


def test_save_then_reopen_gives_the_same_segmentation(window, tmp_path):
    from waveseg.app.demo_state import demo_state
    from waveseg.app.document import Document
    from waveseg.io import read_image

    demo_state(window)
    window.new_segment()
    window.document.segment.session.set_slice_mask(0, 3, _square(window))
    path = tmp_path / "two.seg.nrrd"
    window.save(path)
    reopened = Document(read_image(window.document.image.source), window.segmenter, prefetch=False)
    reopened.load_segments(path)
    assert [s.name for s in reopened.segments] == [s.name for s in window.document.segments]
    for mine, theirs in zip(window.document.segments, reopened.segments):
        np.testing.assert_array_equal(mine.mask, theirs.mask)
        np.testing.assert_allclose(mine.color, theirs.color)
    reopened.close()


def _square(window) -> np.ndarray:
    square = np.zeros(window.document.image.array.shape[1:], bool)
    square[100:120, 80:100] = True
    return square


def test_opening_reads_and_loads_the_model_off_the_gui_thread(qtbot, segmenter, tmp_path, monkeypatch):
    from waveseg.app.main_window import MainWindow

    monkeypatch.setenv("WAVESEG_PROFILES_DIR", str(tmp_path / "profiles"))
    loaded_on = []
    win = MainWindow(lambda profile: loaded_on.append(threading.get_ident()) or segmenter, with_3d=False, prefetch=False)
    qtbot.addWidget(win)
    win.open_sample()
    assert win.document is None and "opening" in win.statusBar().currentMessage()
    win.runner.wait()
    assert loaded_on and loaded_on[0] != threading.get_ident()
    assert win.document is not None and win.document.segmenter is segmenter
    assert win.views[0].volume is win.document.image.array


def test_a_bad_file_is_reported_and_keeps_the_open_image(window, tmp_path, monkeypatch):
    from Qt import QtWidgets

    from waveseg.app.demo_state import demo_state

    demo_state(window, propagate=False)
    before = window.document
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"not an image")
    warnings_shown = []  # the modal dialog itself would block the test
    monkeypatch.setattr(QtWidgets.QMessageBox, "warning", lambda parent, title, text: warnings_shown.append(text))
    window.open_image(bad)
    window.runner.wait()
    assert len(warnings_shown) == 1 and "broken.nii.gz" in warnings_shown[0]
    assert window.document is before and before.segment.mask.any()


def test_gui_stays_responsive_while_propagating(window, qtbot):
    from Qt import QtCore

    from waveseg.app.demo_state import demo_state

    demo_state(window, propagate=False)
    worker, handled, ticked = [], [], threading.Event()
    timer = QtCore.QTimer(interval=10)
    timer.timeout.connect(ticked.set)  # runs on the GUI thread
    session = window.document.segment.session

    def wait_for_a_gui_event(done: int, planned: int) -> None:  # on the worker, after each propagated slice
        # The next slice waits until the GUI thread has handled a timer event: counted by that
        # condition, not by how many ticks fit into however long the propagation takes.
        if not handled or handled[-1]:
            ticked.clear()
            handled.append(ticked.wait(HANG_GUARD_S))

    timer.start()
    window.runner.submit(lambda: worker.append(threading.get_ident())
                         or session.propagate(0, DEMO_SLICE, progress=wait_for_a_gui_event))
    window.runner.wait()
    timer.stop()
    assert worker[0] != threading.get_ident()  # the model ran off the GUI thread ...
    assert len(handled) >= 5 and all(handled)  # ... and the GUI thread handled events between its slices
    assert session.mask.any(axis=(1, 2)).sum() >= 10


def test_window_screenshot_matches_the_reference(window, tmp_path):
    from PIL import Image

    from waveseg.app.demo_state import demo_state

    demo_state(window)
    grab(window).save(str(tmp_path / "window.png"))
    ours = Image.open(tmp_path / "window.png").convert("L").resize((300, 205))
    reference = Image.open(DATA / "app_reference.png").convert("L").resize((300, 205))
    difference = np.abs(np.asarray(ours, float) - np.asarray(reference, float)).mean()
    assert difference <= REFERENCE_TOLERANCE, f"screenshot differs from the reference by {difference:.1f} grey levels"
    grab(window.surface).save(str(tmp_path / "surface.png"))
    surface = np.asarray(Image.open(tmp_path / "surface.png").convert("RGB"))
    assert surface[..., 0].max() > 150  # the 3D surface is drawn (VTK content is not black)


def test_adaptation_dock_refuses_too_few_slices_and_cancels(window, qtbot, tmp_path, monkeypatch):
    from waveseg.adaptation.background import AdaptationProcess
    from waveseg.app import adaptation_dock
    from waveseg.app.demo_state import demo_state

    def endless(*args, **kwargs) -> AdaptationProcess:
        # Only Cancel can end this run: with the dock's 120 steps and 60 s budget, a slow machine
        # could finish (or run out of time) before the test's click, and the cancel would test nothing.
        return AdaptationProcess(*args, **{**kwargs, "steps": 10**9, "time_budget_s": math.inf})

    monkeypatch.setattr(adaptation_dock, "AdaptationProcess", endless)
    demo_state(window, propagate=False)
    dock = window.adaptation
    dock.nameEdit.setText("site-brain")
    dock.adaptButton.click()
    assert "at least 2 annotated" in dock.status.text() and dock.process is None  # one slice only
    window.propagate()
    window.runner.wait()
    dock.adaptButton.click()
    assert dock.process is not None and not dock.adaptButton.isEnabled()
    qtbot.waitUntil(lambda: dock.status.text().startswith("step"), timeout=HANG_GUARD_MS)
    dock.cancelButton.click()
    qtbot.waitUntil(lambda: dock.process is None, timeout=HANG_GUARD_MS)
    assert dock.status.text().startswith("Adaptation stopped")
    profiles = tmp_path / "profiles"
    assert not profiles.exists() or not any(profiles.iterdir())  # cancelled: no profile, no partial file


def test_a_segment_named_for_a_profiles_structure_gets_it_and_the_dock_can_turn_it_off(window):
    from profile_factory import save_scoped_profile

    from waveseg.app.demo_state import demo_state, settle

    save_scoped_profile("wave-gms", "Thalamus", "thal-site")  # into the fixture's WAVESEG_PROFILES_DIR
    demo_state(window, propagate=False)
    assert window.document.segments[0].profile is None  # "Segment_1" names no structure: the base model
    window.segment_list.item(0).setText("thalamus")  # double-click rename
    settle(window)
    assert window.document.segments[0].profile == "thal-site"
    assert "thal-site for 'thalamus'" in window.statusBar().currentMessage()
    window.adaptation.refresh_profiles()
    combo = window.adaptation.profileCombo
    combo.setCurrentIndex(combo.findData("-"))  # "(none)"
    combo.activated.emit(combo.currentIndex())
    settle(window)
    assert window.document.segments[0].profile is None


def test_document_refuses_2d_images_and_saving_nothing(segmenter, sample_volume, tmp_path):
    from waveseg.app.document import Document
    from waveseg.io import ImageVolume

    flat = ImageVolume(sample_volume.array[DEMO_SLICE], (1.0, 1.0), (0.0, 0.0), (1.0, 0.0, 0.0, 1.0), "slice.png")
    with pytest.raises(ValueError, match="2D"):
        Document(flat, segmenter)
    document = Document(sample_volume, segmenter, prefetch=False)
    with pytest.raises(ValueError, match="no segment to save"):
        document.save(tmp_path / "empty.seg.nrrd")
    assert not (tmp_path / "empty.seg.nrrd").exists()

"""The desktop app in remote mode: the same mouse prompts give the same masks as with the local
model, the model running on a real server on loopback (``waveseg app --server URL``)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("Qt", reason="the app tests need the [app] extra")
pytest.importorskip("fastapi", reason="the server tests need the [server] extra")

from server_harness import ThreadServer  # noqa: E402

HANG_GUARD_S = 900


@pytest.fixture(scope="module")
def qapp():
    """pytest-qt's QApplication, created once Xvfb runs (as in test_app.py)."""
    from waveseg.app.display import start_xvfb

    start_xvfb(timeout_s=HANG_GUARD_S)
    from Qt import QtWidgets

    return QtWidgets.QApplication.instance() or QtWidgets.QApplication(["waveseg-tests"])


@pytest.fixture(scope="module")
def served():
    from waveseg.server.config import ServerConfig
    from waveseg.server.models import ModelPool

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        pool = ModelPool(("wave-gms",), "cpu")
        pool.segmenter(None, None)
    srv = ThreadServer(ServerConfig(models=("wave-gms",), device="cpu", session_cache_mb=16), pool)
    yield srv, pool
    srv.stop()


def _script(qtbot, window) -> list[np.ndarray]:
    """The same user actions in a window: drag the demo box, propagate, Ctrl+click, undo; the mask after each."""
    from Qt import QtCore

    from waveseg.app.demo_state import click, demo_state, settle

    qtbot.addWidget(window)
    window.resize(1000, 700)
    window.show()
    qtbot.waitExposed(window, timeout=HANG_GUARD_S * 1000)
    masks = []
    demo_state(window, propagate=True)
    masks.append(window.document.segment.mask.copy())
    click(window.views[0], 90, 30, modifier=QtCore.Qt.ControlModifier)
    settle(window)
    masks.append(window.document.segment.mask.copy())
    window.undo_action.trigger()
    settle(window)
    masks.append(window.document.segment.mask.copy())
    return masks


def test_app_with_a_server_gives_the_local_masks_and_ends_its_session(qtbot, served):
    from waveseg.app.main_window import MainWindow
    from waveseg.remote import RemoteSegmenter, RemoteVolumeSession

    srv, pool = served
    remote_window = MainWindow(lambda profile: RemoteSegmenter(srv.url, profile=profile), with_3d=False, prefetch=False,
                               model_name="wave-gms", server=srv.url)
    assert srv.url in remote_window.windowTitle() and not remote_window.adaptation.isEnabled()
    remote_masks = _script(qtbot, remote_window)
    assert isinstance(remote_window.document.segment.session, RemoteVolumeSession) and len(srv.state.store) == 1
    local_window = MainWindow(lambda profile: pool.segmenter(None, None), with_3d=False, prefetch=False, model_name="wave-gms")
    local_masks = _script(qtbot, local_window)
    assert remote_masks[0].any() and not np.array_equal(remote_masks[0], remote_masks[1])
    for n, (remote, local) in enumerate(zip(remote_masks, local_masks)):
        assert np.array_equal(remote, local), f"step {n}"
    remote_window.close()
    local_window.close()
    assert len(srv.state.store) == 0  # closing the window ended the server session

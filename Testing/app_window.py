"""The app's main window as the app tests open it: the shipped wave-gms (fast on CPU), a profiles
folder of the test's own, no background prefetch, shown and exposed."""

from __future__ import annotations

import warnings

HANG_GUARD_S = 900  # only against hanging forever: every wait ends on its own condition
HANG_GUARD_MS = HANG_GUARD_S * 1000


def load_wave_gms():
    from waveseg.predictor import Segmenter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return Segmenter.from_pretrained("wave-gms")


def open_main_window(qtbot, segmenter, tmp_path, monkeypatch, with_3d: bool = False):
    """A shown ``MainWindow`` (1200 x 820) whose every profile loads ``segmenter``."""
    from waveseg.app.main_window import MainWindow

    monkeypatch.setenv("WAVESEG_PROFILES_DIR", str(tmp_path / "profiles"))
    win = MainWindow(lambda profile: segmenter, with_3d=with_3d, prefetch=False, model_name="wave-gms")
    qtbot.addWidget(win)
    win.resize(1200, 820)
    win.show()
    qtbot.waitExposed(win, timeout=HANG_GUARD_MS)
    return win

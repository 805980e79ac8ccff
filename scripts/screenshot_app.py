#!/usr/bin/env python
"""Screenshots of the desktop app into Resources/ (a prompt, the mask, the 3D view, the adaptation dock).

Runs the real app on a virtual X display (Xvfb) with the shipped wave-gms model on the embedded
sample, drives it through its slice view's mouse handling, and grabs the screen (VTK views grab
black with QWidget.grab()). ``--reference`` also refreshes the test's reference image.

    .venv/bin/python scripts/screenshot_app.py [--reference]
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", action="store_true", help="also write Testing/data/app_reference.png")
    args = parser.parse_args()
    from waveseg.app.display import grab, start_xvfb

    start_xvfb()  # lives as long as this process
    from Qt import QtCore, QtWidgets

    from waveseg.app.demo_state import click, demo_state, settle
    from waveseg.app.main_window import MainWindow
    from waveseg.predictor import Segmenter

    app = QtWidgets.QApplication([])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        segmenter = Segmenter.from_pretrained("wave-gms")
    window = MainWindow(lambda profile: segmenter, prefetch=False, model_name="wave-gms")
    window.show()
    demo_state(window, propagate=False)
    grab(window).save(str(ROOT / "Resources" / "app_prompt.png"))
    click(window.views[0], 90, 30, button=QtCore.Qt.RightButton)  # a negative point
    settle(window, 0.2)
    window.propagate()
    settle(window, 1.5)
    grab(window).save(str(ROOT / "Resources" / "app_mask_3d.png"))
    grab(window.adaptation).save(str(ROOT / "Resources" / "app_adaptation_dock.png"))
    if args.reference:
        window.close()
        window = MainWindow(lambda profile: segmenter, prefetch=False, model_name="wave-gms")
        window.resize(1200, 820)
        window.show()
        demo_state(window)
        grab(window).save(str(ROOT / "Testing" / "data" / "app_reference.png"))
    window.close()
    app.quit()
    print("wrote Resources/app_prompt.png, app_mask_3d.png, app_adaptation_dock.png")


if __name__ == "__main__":
    main()

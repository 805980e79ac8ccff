"""A fixed app state (embedded sample, a box on axial slice 8, propagated) for screenshots and tests.

Prompts go through the slice view's own mouse handling (``QTest`` presses and releases), so the
state is what a user's drag produces.
"""

from __future__ import annotations

from Qt import QtCore, QtWidgets
from Qt.QtTest import QTest

from waveseg.sample_data import DEMO_BOX, DEMO_SLICE


def drag_box(view, box) -> None:
    """Drag a box (x0, y0, x1, y1) in slice pixels on a slice view with the left mouse button."""
    start = view.slice_to_widget(box[0], box[1]).toPoint()
    end = view.slice_to_widget(box[2], box[3]).toPoint()
    QTest.mousePress(view, QtCore.Qt.LeftButton, QtCore.Qt.NoModifier, start)
    QTest.mouseMove(view, end)
    QTest.mouseRelease(view, QtCore.Qt.LeftButton, QtCore.Qt.NoModifier, end)


def draw_stroke(view, points, modifier=QtCore.Qt.NoModifier, button=QtCore.Qt.LeftButton, release: bool = True) -> None:
    """Drag through slice-pixel points [(x, y), ...] on a slice view (a scribble or lasso with those
    tools); ``release=False`` leaves the stroke being drawn."""
    widget = [view.slice_to_widget(x, y).toPoint() for x, y in points]
    QTest.mousePress(view, button, modifier, widget[0])
    for point in widget[1:]:
        QTest.mouseMove(view, point)
    if release:
        QTest.mouseRelease(view, button, modifier, widget[-1])


def click(view, x: float, y: float, modifier=QtCore.Qt.NoModifier, button=QtCore.Qt.LeftButton) -> None:
    QTest.mouseClick(view, button, modifier, view.slice_to_widget(x, y).toPoint())


def settle(window, seconds: float = 0.0) -> None:
    """Let the runner finish, run the debounced 3D update and repaint; then process events for
    ``seconds`` more (screenshot scripts only).

    Each step waits on its own condition, not on time: a fixed pause that outlasts the 250 ms 3D
    debounce on an idle machine can end before it fires on a loaded one (an empty 3D view in a test).
    """
    window.runner.wait()
    window.flush_surfaces()
    QtWidgets.QApplication.processEvents()  # the repaints the updates above asked for
    if seconds > 0:
        QTest.qWait(int(seconds * 1000))


def demo_state(window, propagate: bool = True) -> None:
    """Open the sample, drag the demo box on axial slice 8, optionally propagate."""
    window.open_sample()
    window.runner.wait()  # the image is read (and the model loaded) on the worker thread
    axial = window.views[0]
    axial.set_index(DEMO_SLICE)
    drag_box(axial, DEMO_BOX)
    settle(window)
    if propagate:
        window.propagate()
        settle(window)

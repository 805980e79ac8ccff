"""The app's scribble and lasso tools: a checkable tool group (toolbar + keys) and the stroke handler.

Keys: B = points and box (the default tool), S = scribble, L = lasso (none is taken by the window:
P propagate, A accept, Ctrl+S save). In a stroke tool, left-drag draws a positive stroke and
Ctrl+drag or right-drag a negative one (``SliceView``); each stroke is one undo step of the
segment's ``VolumeSession`` (``scribble`` / ``lasso``), refining that slice as a click does.
"""

from __future__ import annotations

from Qt import QtGui, QtWidgets

TOOLS = (("Points and box", "B", "prompt"), ("Scribble", "S", "scribble"), ("Lasso", "L", "lasso"))
HELP_ROWS = """<tr><td><b>B</b> / <b>S</b> / <b>L</b></td><td>tool: points and box / scribble / lasso</td></tr>
<tr><td><b>drag</b>, <b>Ctrl+drag</b> (scribble, lasso)</td><td>positive / negative stroke (right-drag: negative)</td></tr>"""


def add_stroke_tools(window, menu: QtWidgets.QMenu, toolbar: QtWidgets.QToolBar) -> dict[str, QtGui.QAction]:
    """Add the exclusive tool actions to ``window`` (a ``MainWindow``); returns {tool: action}."""
    group = QtGui.QActionGroup(window)
    group.setExclusive(True)
    actions = {}
    for text, key, tool in TOOLS:
        action = window._action(text, key, lambda _checked=False, t=tool: set_tool(window, t), menu, toolbar)
        action.setObjectName(f"{tool}_tool")
        action.setCheckable(True)
        group.addAction(action)
        actions[tool] = action
    actions["prompt"].setChecked(True)
    return actions


def set_tool(window, tool: str) -> None:
    """Switch every slice view to ``tool`` ("prompt", "scribble" or "lasso")."""
    for view in window.views:
        view.tool = tool
    window.statusBar().showMessage({"prompt": "click = point, drag = box", "scribble": "drag = scribble (Ctrl: negative)",
                                    "lasso": "drag around = lasso (Ctrl: remove)"}[tool], 3000)


def on_stroke(window, axis: int, index: int, points, positive: bool, closed: bool) -> None:
    """A stroke drawn on a slice view: refine that slice with it on the runner thread (undoable)."""
    if window.document is None:
        return
    session = window.document.segment.session
    action = session.lasso if closed else session.scribble
    window._run("lasso" if closed else "scribble", lambda: action(axis, index, points, positive=positive, repropagate=False),
                (axis, index))

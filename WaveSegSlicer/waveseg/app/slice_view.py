"""One slice view (axial, coronal or sagittal) of a (Z, Y, X) volume with coloured mask overlays.

Drawn with QPainter from numpy (no VTK), so it runs in any Qt platform, offscreen included.
Mouse: left-click = positive point, Ctrl+left-click or right-click = negative point, left-drag =
box, Shift+left-drag = window/level, middle-drag = pan, wheel = next/previous slice,
Ctrl+wheel = zoom. With the scribble or lasso tool (``tool``), a left-drag draws a positive stroke
and Ctrl+left-drag or a right-drag a negative one, shown while drawing. Slice-local coordinates are those of ``waveseg.volume_geometry.take_slice``:
x = column, y = row of the 2D slice; coronal and sagittal views show slice row 0 (k = 0) at the
bottom so that k grows upwards.
"""

from __future__ import annotations

import numpy as np
from Qt import QtCore, QtGui, QtWidgets

from waveseg.volume_geometry import take_slice

AXIS_NAMES = ("axial", "coronal", "sagittal")
DRAG_THRESHOLD_PX = 5
OVERLAY_ALPHA = 0.45


def slice_to_voxel(axis: int, index: int, x: float, y: float) -> tuple[float, float, float]:
    """Slice-local (x, y) on slice ``index`` across ``axis`` -> voxel (i, j, k); inverse of ``voxel_to_slice``."""
    if axis == 0:
        return (x, y, float(index))
    if axis == 1:
        return (x, float(index), y)
    return (float(index), x, y)


def window_for(volume: np.ndarray) -> tuple[float, float]:
    """A default display window: the 1st..99.5th percentile of a subsample of the voxels."""
    sample = volume[:: max(1, volume.shape[0] // 16)].astype(np.float32)
    lo, hi = np.percentile(sample, [1, 99.5])
    return float(lo), float(max(hi, lo + 1e-3))


class SliceView(QtWidgets.QWidget):
    """Signals: ``pointPrompted(axis, index, x, y, positive)``, ``boxPrompted(axis, index, x0, y0, x1, y1)``,
    ``strokePrompted(axis, index, points, positive, closed)`` (points: (N, 2) slice-local (x, y);
    closed: a lasso), ``indexChanged(axis, index)``."""

    TOOLS = ("prompt", "scribble", "lasso")  # prompt: click = point, drag = box
    pointPrompted = QtCore.Signal(int, int, float, float, bool)
    strokePrompted = QtCore.Signal(int, int, object, bool, bool)
    boxPrompted = QtCore.Signal(int, int, float, float, float, float)
    indexChanged = QtCore.Signal(int, int)

    def __init__(self, axis: int, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.axis = axis
        self.setObjectName(f"{AXIS_NAMES[axis]}View")
        self.setMinimumSize(160, 160)
        self.setMouseTracking(False)
        self.setFocusPolicy(QtCore.Qt.StrongFocus)
        self.setToolTip(f"{AXIS_NAMES[axis].capitalize()} view: click = positive point, Ctrl+click or right-click = "
                        "negative point, drag = box, Shift+drag = window/level, middle-drag = pan, wheel = slice, Ctrl+wheel = zoom")
        self.volume: np.ndarray | None = None
        self.pixel_size = (1.0, 1.0)  # mm of a slice pixel along x and y
        self.index = 0
        self.window = (0.0, 1.0)
        self.overlays: list[tuple[np.ndarray, tuple[float, float, float]]] = []
        self.cross: tuple[float, float] | None = None  # slice-local position of the other views' slices
        self.zoom, self.pan = 1.0, QtCore.QPointF(0, 0)
        self._press: tuple[QtCore.QPointF, QtCore.Qt.MouseButton, QtCore.Qt.KeyboardModifiers] | None = None
        self._drag_end: QtCore.QPointF | None = None
        self._start_window = self.window
        self._start_pan = self.pan
        self.tool = "prompt"
        self._stroke: list[tuple[float, float]] = []  # slice-local points of the stroke being drawn
        self._stroke_positive = True

    # -- content ----------------------------------------------------------------------------------
    def set_volume(self, volume: np.ndarray, spacing_xyz: tuple[float, float, float], window: tuple[float, float]) -> None:
        self.volume = volume
        sx, sy, sz = spacing_xyz
        self.pixel_size = ((sx, sy), (sx, sz), (sy, sz))[self.axis]
        self.window = window
        self.index = volume.shape[self.axis] // 2
        self.zoom, self.pan = 1.0, QtCore.QPointF(0, 0)
        self.update()

    def set_overlays(self, overlays: list[tuple[np.ndarray, tuple[float, float, float]]]) -> None:
        """(Z, Y, X) masks with RGB colours in [0, 1], drawn in order."""
        self.overlays = overlays
        self.update()

    def set_index(self, index: int) -> None:
        if self.volume is None:
            return
        index = int(np.clip(index, 0, self.volume.shape[self.axis] - 1))
        if index != self.index:
            self.index = index
            self.indexChanged.emit(self.axis, index)
            self.update()

    def slice_rgb(self) -> np.ndarray:
        """(H, W, 3) uint8 of the current slice with the window applied and the overlays blended."""
        image = take_slice(self.volume, self.axis, self.index).astype(np.float32)
        lo, hi = self.window
        gray = np.clip((image - lo) / max(hi - lo, 1e-6), 0, 1)
        rgb = np.repeat(gray[..., None], 3, axis=2)
        for mask, color in self.overlays:
            m = take_slice(mask, self.axis, self.index)
            rgb[m] = (1 - OVERLAY_ALPHA) * rgb[m] + OVERLAY_ALPHA * np.asarray(color, np.float32)
        return (rgb * 255).astype(np.uint8)

    # -- geometry between widget pixels and slice pixels --------------------------------------------
    def _flipped(self) -> bool:
        return self.axis != 0

    def _transform(self) -> QtGui.QTransform:
        h, w = take_slice(self.volume, self.axis, self.index).shape
        px, py = self.pixel_size
        scale = min(self.width() / (w * px), self.height() / (h * py)) * self.zoom
        sx, sy = scale * px, scale * py
        ox = (self.width() - w * sx) / 2 + self.pan.x()
        oy = (self.height() - h * sy) / 2 + self.pan.y()
        if self._flipped():
            return QtGui.QTransform(sx, 0, 0, -sy, ox, oy + h * sy)
        return QtGui.QTransform(sx, 0, 0, sy, ox, oy)

    def widget_to_slice(self, point: QtCore.QPointF) -> tuple[float, float]:
        """Widget pixel -> slice-local (x, y) (pixel centres at integers)."""
        inverse, _ = self._transform().inverted()
        p = inverse.map(point)
        return p.x() - 0.5, p.y() - 0.5

    def slice_to_widget(self, x: float, y: float) -> QtCore.QPointF:
        return self._transform().map(QtCore.QPointF(x + 0.5, y + 0.5))

    # -- painting ---------------------------------------------------------------------------------------
    def paintEvent(self, event: QtGui.QPaintEvent) -> None:
        painter = QtGui.QPainter(self)
        painter.fillRect(self.rect(), QtGui.QColor(20, 20, 24))
        if self.volume is None:
            painter.setPen(QtGui.QColor(160, 160, 160))
            painter.drawText(self.rect(), QtCore.Qt.AlignCenter, "File > Open an image, or File > Open sample")
            return
        rgb = np.ascontiguousarray(self.slice_rgb())
        h, w, _ = rgb.shape
        image = QtGui.QImage(rgb.data, w, h, 3 * w, QtGui.QImage.Format_RGB888)
        painter.setTransform(self._transform())
        painter.drawImage(QtCore.QRectF(0, 0, w, h), image)
        painter.resetTransform()
        if self.cross is not None:
            painter.setPen(QtGui.QPen(QtGui.QColor(80, 200, 255, 140), 1))
            c = self.slice_to_widget(*self.cross)
            painter.drawLine(QtCore.QPointF(c.x(), 0), QtCore.QPointF(c.x(), self.height()))
            painter.drawLine(QtCore.QPointF(0, c.y()), QtCore.QPointF(self.width(), c.y()))
        if self._stroke:
            self._paint_stroke(painter)
        elif self._press is not None and self._drag_end is not None and self._press[1] == QtCore.Qt.LeftButton \
                and not self._press[2] & QtCore.Qt.ShiftModifier:
            painter.setPen(QtGui.QPen(QtGui.QColor(255, 215, 40), 1.5))
            painter.drawRect(QtCore.QRectF(self._press[0], self._drag_end).normalized())
        painter.setPen(QtGui.QColor(220, 220, 220))
        painter.drawText(8, 18, f"{AXIS_NAMES[self.axis]}  {self.index + 1}/{self.volume.shape[self.axis]}")

    def _paint_stroke(self, painter: QtGui.QPainter) -> None:
        """The stroke being drawn: green positive, red negative; a lasso closed back to its start."""
        color = QtGui.QColor(60, 220, 90) if self._stroke_positive else QtGui.QColor(240, 70, 60)
        painter.setPen(QtGui.QPen(color, 2, QtCore.Qt.SolidLine, QtCore.Qt.RoundCap, QtCore.Qt.RoundJoin))
        polygon = QtGui.QPolygonF([self.slice_to_widget(x, y) for x, y in self._stroke])
        if self.tool == "lasso":
            painter.drawPolygon(polygon)
        else:
            painter.drawPolyline(polygon)

    # -- mouse --------------------------------------------------------------------------------------------
    def mousePressEvent(self, event: QtGui.QMouseEvent) -> None:
        if self.volume is None:
            return
        if self.tool != "prompt" and event.button() in (QtCore.Qt.LeftButton, QtCore.Qt.RightButton) \
                and not event.modifiers() & QtCore.Qt.ShiftModifier:
            self._press = None
            self._stroke = [self.widget_to_slice(event.position())]
            self._stroke_positive = event.button() == QtCore.Qt.LeftButton and not event.modifiers() & QtCore.Qt.ControlModifier
            self.update()
            return
        self._press = (event.position(), event.button(), event.modifiers())
        self._drag_end = None
        self._start_window, self._start_pan = self.window, QtCore.QPointF(self.pan)
        if event.button() == QtCore.Qt.RightButton:
            x, y = self.widget_to_slice(event.position())
            self._press = None
            self._emit_point(x, y, positive=False)

    def mouseMoveEvent(self, event: QtGui.QMouseEvent) -> None:
        if self._stroke:
            point = self.widget_to_slice(event.position())
            if np.hypot(point[0] - self._stroke[-1][0], point[1] - self._stroke[-1][1]) >= 0.5:  # skip sub-pixel jitter
                self._stroke.append(point)
            self.update()
            return
        if self._press is None:
            return
        start, button, modifiers = self._press
        delta = event.position() - start
        if button == QtCore.Qt.MiddleButton:
            self.pan = self._start_pan + delta
        elif modifiers & QtCore.Qt.ShiftModifier:  # window/level: right = wider window, down = lower level
            lo, hi = self._start_window
            width, level = (hi - lo) * float(np.exp(delta.x() / 200)), (hi + lo) / 2 + (hi - lo) * delta.y() / 400
            self.window = (level - width / 2, level + width / 2)
        else:
            self._drag_end = event.position()
        self.update()

    def mouseReleaseEvent(self, event: QtGui.QMouseEvent) -> None:
        if self._stroke:
            points, self._stroke = np.array(self._stroke, np.float64), []
            self.update()
            # a click with a stroke tool has no stroke: the core refuses strokes of one point
            if len(np.unique(points, axis=0)) >= (3 if self.tool == "lasso" else 2):
                self.strokePrompted.emit(self.axis, self.index, points, self._stroke_positive, self.tool == "lasso")
            return
        if self._press is None:
            return
        start, button, modifiers = self._press
        self._press, end, self._drag_end = None, event.position(), None
        self.update()
        if button != QtCore.Qt.LeftButton or modifiers & QtCore.Qt.ShiftModifier:
            return
        x0, y0 = self.widget_to_slice(start)
        if (end - start).manhattanLength() > DRAG_THRESHOLD_PX:
            x1, y1 = self.widget_to_slice(end)
            h, w = take_slice(self.volume, self.axis, self.index).shape
            box = np.clip([min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)], 0, [w - 1, h - 1, w - 1, h - 1])
            self.boxPrompted.emit(self.axis, self.index, *map(float, box))
        else:
            self._emit_point(x0, y0, positive=not modifiers & QtCore.Qt.ControlModifier)

    def _emit_point(self, x: float, y: float, positive: bool) -> None:
        h, w = take_slice(self.volume, self.axis, self.index).shape
        if -0.5 <= x <= w - 0.5 and -0.5 <= y <= h - 0.5:
            self.pointPrompted.emit(self.axis, self.index, float(x), float(y), bool(positive))

    def wheelEvent(self, event: QtGui.QWheelEvent) -> None:
        if self.volume is None:
            return
        steps = event.angleDelta().y() / 120
        if event.modifiers() & QtCore.Qt.ControlModifier:
            self.zoom = float(np.clip(self.zoom * 1.15 ** steps, 0.25, 16))
            self.update()
        else:
            self.set_index(self.index + int(np.sign(steps)))

"""3D view of the segments: a VTK surface (surface nets) per segment in a Qt widget.

VTK renders through OpenGL, so this view needs a display (an X server; Xvfb in tests); the
slice views do not. Widgets that VTK draws grab black with ``QWidget.grab()``: take screenshots
with a screen grab (``QScreen.grabWindow``).
"""

from __future__ import annotations

import numpy as np
import vtkmodules.qt

vtkmodules.qt.PyQtImpl = "PySide6"  # Qt.py runs over PySide6; VTK must use the same binding

import vtkmodules.vtkInteractionStyle  # noqa: E402,F401  (registers the interactor styles)
import vtkmodules.vtkRenderingOpenGL2  # noqa: E402,F401  (registers the OpenGL render window)
from Qt import QtWidgets  # noqa: E402
from vtkmodules.qt.QVTKRenderWindowInteractor import QVTKRenderWindowInteractor  # noqa: E402
from vtkmodules.util.numpy_support import numpy_to_vtk  # noqa: E402
from vtkmodules.vtkCommonDataModel import vtkImageData  # noqa: E402
from vtkmodules.vtkFiltersCore import vtkSurfaceNets3D  # noqa: E402
from vtkmodules.vtkRenderingCore import vtkActor, vtkPolyDataMapper, vtkRenderer  # noqa: E402


def surface_of(mask: np.ndarray, spacing_xyz: tuple[float, float, float]):
    """``vtkPolyData`` surface of a (Z, Y, X) mask in mm (surface nets, smoothed)."""
    padded = np.pad(np.asarray(mask, np.uint8), 1)  # a zero border closes the surface where the mask meets the volume's edge
    image = vtkImageData()
    image.SetDimensions(padded.shape[2], padded.shape[1], padded.shape[0])
    image.SetSpacing(*spacing_xyz)
    image.SetOrigin(*(-s for s in spacing_xyz))
    image.GetPointData().SetScalars(numpy_to_vtk(padded.ravel(), deep=True))
    nets = vtkSurfaceNets3D()
    nets.SetInputData(image)
    nets.SetValue(0, 1)
    nets.SetOutputMeshTypeToTriangles()
    nets.Update()
    return nets.GetOutput()


class _Interactor(QVTKRenderWindowInteractor):
    """A VTK interactor whose render window is finalised once.

    QVTKRenderWindowInteractor finalises its render window in its own ``closeEvent``. When only
    the main window is closed, that event comes later, while Qt deletes the closed window. The
    test suite aborted there with heap corruption once in six full runs on 2026-11-30 (the stack:
    a later test's ``qWait`` -> ``closeEvent`` -> ``Finalize``; with PySide6 6.12, 2 of 3 runs of
    the app tests). Most likely the native window was already gone (not proven). So
    ``SurfaceView.release`` finalises while the window still exists, and the late ``closeEvent``
    then does nothing.
    """

    _finalized = False

    def Finalize(self) -> None:  # noqa: N802 (VTK's name)
        if not self._finalized:
            self._finalized = True
            super().Finalize()


class SurfaceView(QtWidgets.QWidget):
    """Shows one surface per (mask, colour); the camera is reset when a new volume is shown."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("surfaceView")
        self.setToolTip("3D view of the segments: drag to rotate, wheel to zoom")
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.interactor = _Interactor(self)
        layout.addWidget(self.interactor)
        self.renderer = vtkRenderer()
        self.renderer.SetBackground(0.08, 0.08, 0.1)
        self.interactor.GetRenderWindow().AddRenderer(self.renderer)
        self._actors: list[vtkActor] = []
        self._camera_set = False

    def release(self) -> None:
        """Free the render window's OpenGL resources now (call when the app closes)."""
        self.interactor.Finalize()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.interactor.Initialize()

    def reset_camera(self) -> None:
        self._camera_set = False

    def set_segments(self, segments: list[tuple[np.ndarray, tuple[float, float, float]]], spacing_xyz) -> None:
        for actor in self._actors:
            self.renderer.RemoveActor(actor)
        self._actors = []
        for mask, color in segments:
            if not mask.any():
                continue
            mapper = vtkPolyDataMapper()
            mapper.SetInputData(surface_of(mask, spacing_xyz))
            mapper.ScalarVisibilityOff()
            actor = vtkActor()
            actor.SetMapper(mapper)
            actor.GetProperty().SetColor(*color)
            self.renderer.AddActor(actor)
            self._actors.append(actor)
        if self._actors and not self._camera_set:
            self.renderer.GetActiveCamera().SetViewUp(0, -1, 0)
            self.renderer.GetActiveCamera().Elevation(-60)
            self.renderer.ResetCamera()
            self._camera_set = True
        self.interactor.GetRenderWindow().Render()

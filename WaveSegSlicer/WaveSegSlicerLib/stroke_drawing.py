"""Scribble and lasso drawing for the WaveSeg Segment Editor effect: the tool, the stroke shown
while it is drawn, and the slice-view events that make it.

Keys (none is a Segment Editor or slice-view key, Slicer v5.10.0: ``qMRMLSegmentEditorWidget.cxx:2300-2390``
takes digits, Escape, Space, z, y, q, w, slash, asterisk, comma, period, greater, less, i;
``vtkMRMLSliceIntersectionWidget.cxx:168-196`` takes g, t, f, b, v, V, r, arrows and brackets; and
``vtkSlicerMarkupsWidget.cxx:69`` takes s over a markup, so s is not used): d = scribble tool,
l = lasso tool, k = back to clicks and boxes. With a stroke tool, left-drag draws a positive stroke,
Ctrl+left-drag a negative one (right-drag stays Slicer's zoom, as for boxes); on release the
effect gets the stroke's display (x, y) points (``addStroke``).
"""

import vtk

TOOL_KEYS = {("d", False): "scribble", ("l", False): "lasso", ("k", False): "prompt"}
COLORS = {True: (0.25, 0.85, 0.35), False: (0.95, 0.3, 0.25)}  # positive green, negative red (as the app)


class StrokeDrawing:
    """The effect's stroke tool state and per-view stroke actors (created lazily, removed by ``remove``)."""

    def __init__(self, scriptedEffect):
        self.scriptedEffect = scriptedEffect
        self.tool = "prompt"  # "prompt" (clicks and boxes), "scribble" or "lasso"
        self.points = []  # display (x, y) of the stroke being drawn
        self.positive = True
        self.view = None  # the slice widget it is drawn in
        self.actors = {}  # slice widget -> (actor, polydata)

    def _actor(self, viewWidget):
        if viewWidget not in self.actors:
            polyData = vtk.vtkPolyData()
            mapper = vtk.vtkPolyDataMapper2D()
            mapper.SetInputData(polyData)
            actor = vtk.vtkActor2D()
            actor.SetMapper(mapper)
            actor.GetProperty().SetLineWidth(2)
            actor.VisibilityOff()
            self.scriptedEffect.addActor2D(viewWidget, actor)
            self.actors[viewWidget] = (actor, polyData)
        return self.actors[viewWidget]

    def show(self, viewWidget):
        """Draw the stroke so far (a lasso closed back to its start), or hide it when there is none."""
        actor, polyData = self._actor(viewWidget)
        if not self.points:
            actor.VisibilityOff()
        else:
            points, line = vtk.vtkPoints(), vtk.vtkPolyLine()
            ids = list(range(len(self.points))) + ([0] if self.tool == "lasso" and len(self.points) > 2 else [])
            for x, y in self.points:
                points.InsertNextPoint(x, y, 0)
            line.GetPointIds().SetNumberOfIds(len(ids))
            for n, i in enumerate(ids):
                line.GetPointIds().SetId(n, i)
            cells = vtk.vtkCellArray()
            cells.InsertNextCell(line)
            polyData.SetPoints(points)
            polyData.SetLines(cells)
            polyData.Modified()
            actor.GetProperty().SetColor(*COLORS[self.positive])
            actor.VisibilityOn()
        viewWidget.sliceView().scheduleRender()

    def process(self, effect, interactor, eventId, viewWidget, xy):
        """Handle an event while a stroke tool is on: True when taken, None to leave it to the effect."""
        if self.tool == "prompt":
            return None
        if eventId == vtk.vtkCommand.LeftButtonPressEvent and not (interactor.GetShiftKey() or interactor.GetAltKey()):
            if self.view is not None and self.view is not viewWidget:
                self.cancel()
            self.view, self.points, self.positive = viewWidget, [tuple(xy)], not interactor.GetControlKey()
            self.show(viewWidget)
            return True
        if eventId == vtk.vtkCommand.MouseMoveEvent and self.points and self.view is viewWidget:
            if tuple(xy) != self.points[-1]:
                self.points.append(tuple(xy))
            self.show(viewWidget)
            return True
        if eventId == vtk.vtkCommand.LeftButtonReleaseEvent and self.points and self.view is viewWidget:
            points, self.points = self.points + [tuple(xy)], []
            self.show(viewWidget)
            self.view = None
            if len(set(points)) >= (3 if self.tool == "lasso" else 2):  # a click with a stroke tool draws nothing
                effect.addStroke(viewWidget, points, self.positive, self.tool == "lasso")
            return True
        return None

    def cancel(self):
        """Drop a stroke being drawn (e.g. its press was in another view)."""
        view, self.points, self.view = self.view, [], None
        if view is not None:
            self.show(view)

    def remove(self):
        """Remove every stroke actor (the effect's deactivate)."""
        for widget, (actor, _polyData) in self.actors.items():
            self.scriptedEffect.removeActor2D(widget, actor)
        self.actors, self.points, self.view = {}, [], None

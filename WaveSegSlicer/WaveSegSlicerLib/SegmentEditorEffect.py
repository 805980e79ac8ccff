"""The "WaveSeg" Segment Editor effect: clicks and boxes in slice views -> a previewed mask.

Mouse: click = positive point, Ctrl+click or right-click = negative point, drag = box.
Keys (in a slice view): Enter = Apply, Esc = Cancel, P = Propagate, Z = undo prompt,
Y = redo prompt. Ctrl+Z / Ctrl+Y stay the Segment Editor's own undo / redo of applied results.

The preview lives in its own segmentation node; Apply writes it into the selected segment
through ``modifySelectedSegmentByLabelmap`` after ``saveStateForUndo()``, so the editor's
masking, overwrite and undo settings apply. Model calls run on the module's single worker
thread (``WaveSegSlicerLib.executor``) while Qt events are pumped.
"""

import logging
import os

import qt
import vtk

import slicer
from SegmentEditorEffects import AbstractScriptedSegmentEditorEffect

DRAG_THRESHOLD_PX = 5  # a press and release further apart than this is a box, else a point
HELP = """<html>Segment with clicks and boxes (WaveSeg, runs on the CPU).<p>
<ul style="margin: 0">
<li><b>Left-click:</b> add a positive point (inside the structure).</li>
<li><b>Ctrl+left-click</b> or <b>right-click:</b> add a negative point (outside).</li>
<li><b>Left-drag:</b> draw a box around the structure.</li>
<li><b>Enter:</b> apply the preview to the selected segment. <b>Esc:</b> discard the preview.</li>
<li><b>P:</b> propagate the current slice through the volume (progress bar, Cancel).</li>
<li><b>Z / Y:</b> undo / redo the last prompt. <b>Ctrl+Z / Ctrl+Y:</b> undo / redo applied results.</li>
</ul><p>The slice view must show voxel planes of the source volume (use "Rotate to volume plane" if it
warns). Model, device and profile are chosen in the WaveSeg module.</html>"""


class SegmentEditorEffect(AbstractScriptedSegmentEditorEffect):
    def __init__(self, scriptedEffect):
        scriptedEffect.name = "WaveSeg"  # not translated: modules find effects by name
        scriptedEffect.perSegment = True
        scriptedEffect.requireSegments = True
        AbstractScriptedSegmentEditorEffect.__init__(self, scriptedEffect)
        self.logic = None  # WaveSegSlicerLib.volume_logic.VolumePromptLogic, created on the first prompt
        self.previewNode = None
        self.boxActors = {}  # slice widget -> (actor, points) of the rubber band, created lazily
        self.pressXY = None
        self.cancelRequested = False
        self._executor = None

    def clone(self):
        import qSlicerSegmentationsEditorEffectsPythonQt as effects

        clonedEffect = effects.qSlicerSegmentEditorScriptedEffect(None)
        clonedEffect.setPythonSource(__file__.replace("\\", "/"))
        return clonedEffect

    def icon(self):
        iconPath = os.path.join(os.path.dirname(__file__), "SegmentEditorEffect.png")
        return qt.QIcon(iconPath) if os.path.exists(iconPath) else qt.QIcon()

    def helpText(self):
        return HELP

    # -- options panel -----------------------------------------------------------------------
    def setupOptionsFrame(self):
        buttons = qt.QHBoxLayout()
        self.applyButton = self._button("Apply", "Write the preview into the selected segment (Enter)", self.onApply, buttons)
        self.cancelButton = self._button("Cancel", "Discard the preview and the prompts (Esc)", self.onCancel, buttons)
        self.propagateButton = self._button("Propagate", "Propagate the last prompted slice through the volume (P)",
                                            self.onPropagate, buttons)
        self.undoButton = self._button("Undo prompt", "Undo the last prompt (Z)", self.onUndo, buttons)
        self.redoButton = self._button("Redo prompt", "Redo the undone prompt (Y)", self.onRedo, buttons)
        frame = qt.QWidget()
        frame.setLayout(buttons)
        self.scriptedEffect.addOptionsWidget(frame)
        self.repropagateCheckBox = qt.QCheckBox("Re-propagate corrections")
        self.repropagateCheckBox.toolTip = "Clicks on a propagated slice carry on to its neighbours until the change dies out"
        self.scriptedEffect.addOptionsWidget(self.repropagateCheckBox)
        self.statusLabel = qt.QLabel("")
        self.statusLabel.wordWrap = True
        self.scriptedEffect.addOptionsWidget(self.statusLabel)
        self.updateButtons()

    def _button(self, text, tip, slot, layout):
        button = qt.QPushButton(text)
        button.objectName = self.__class__.__name__ + text.replace(" ", "")
        button.toolTip = tip
        button.connect("clicked()", slot)
        layout.addWidget(button)
        return button

    def updateButtons(self):
        has = self.logic is not None
        self.applyButton.enabled = has
        self.cancelButton.enabled = has
        self.propagateButton.enabled = has and self.logic.last_slice is not None
        self.undoButton.enabled = has and self.logic.session.can_undo
        self.redoButton.enabled = has and self.logic.session.can_redo

    def createCursor(self, widget):
        return slicer.util.mainWindow().cursor

    def activate(self):
        self.statusLabel.text = ""

    def deactivate(self):
        self.onCancel()
        for widget, (actor, _points) in self.boxActors.items():
            self.scriptedEffect.removeActor2D(widget, actor)
        self.boxActors = {}

    def sourceVolumeNodeChanged(self):
        self.onCancel()

    def referenceGeometryChanged(self):
        self.onCancel()

    # -- model plumbing ------------------------------------------------------------------------
    def executor(self):
        if self._executor is None:
            from WaveSegSlicerLib.executor import ModelExecutor

            self._executor = ModelExecutor(pump=slicer.app.processEvents)
        return self._executor

    def promptLogic(self):
        """The session for the current source volume and segment, created (and the model
        loaded) on first use; starts from the segment's current mask."""
        if self.logic is not None:
            return self.logic
        import WaveSegSlicer
        from WaveSegSlicerLib import mrml_bridge
        from WaveSegSlicerLib.volume_logic import VolumePromptLogic

        moduleLogic = WaveSegSlicer.WaveSegSlicerLogic()
        if not moduleLogic.ensureDependencies():
            raise RuntimeError("WaveSeg's Python packages are not installed")
        editorNode = self.scriptedEffect.parameterSetNode()
        volumeNode = editorNode.GetSourceVolumeNode()
        segmentationNode = editorNode.GetSegmentationNode()
        current = mrml_bridge.read_segment_mask(segmentationNode, editorNode.GetSelectedSegmentID(), volumeNode)
        segmenter = self.executor().run(moduleLogic.segmenter, *moduleLogic.settings())  # loading weights takes seconds: off the main thread
        self.logic = VolumePromptLogic(segmenter, volumeNode, initial_mask=current)  # copies the voxels (MRML: main thread)
        return self.logic

    def runModel(self, description, function, *args, **kwargs):
        """Run a prompt on the worker thread; show errors in the status line, never a traceback."""
        qt.QApplication.setOverrideCursor(qt.Qt.WaitCursor)
        started = vtk.vtkTimerLog.GetUniversalTime()
        try:
            result = self.executor().run(function, *args, **kwargs)
            self.statusLabel.text = f"{description}: {1000 * (vtk.vtkTimerLog.GetUniversalTime() - started):.0f} ms"
            self.updatePreview()
            return result
        except Exception as exc:  # errors from the core carry their own explanation
            logging.exception("WaveSeg prompt failed")
            self.statusLabel.text = f"<font color='red'>{description} failed: {exc}</font>"
            return None
        finally:
            qt.QApplication.restoreOverrideCursor()
            self.updateButtons()

    # -- prompts -------------------------------------------------------------------------------
    @staticmethod
    def sliceNormal(viewWidget):
        sliceToRas = viewWidget.sliceLogic().GetSliceNode().GetSliceToRAS()
        return [sliceToRas.GetElement(row, 2) for row in range(3)]

    def addPoint(self, viewWidget, xy, positive):
        ras = self.scriptedEffect.xyToRas(xy, viewWidget)
        self.addPromptRas("point", [ras], self.sliceNormal(viewWidget), positive)

    def addBox(self, viewWidget, xy0, xy1):
        rasCorners = [self.scriptedEffect.xyToRas(xy, viewWidget) for xy in (xy0, xy1)]
        self.addPromptRas("box", rasCorners, self.sliceNormal(viewWidget))

    def addPromptRas(self, kind, rasPoints, normal, positive=True):
        """One prompt in world RAS on the slice view with ``normal`` (also used by the self-test)."""
        try:
            logic = self.promptLogic()
        except Exception as exc:
            logging.exception("WaveSeg could not start")
            self.statusLabel.text = f"<font color='red'>WaveSeg could not start: {exc}</font>"
            return
        if kind == "box":
            self.runModel("Box", logic.box, rasPoints[0], rasPoints[1], normal)
        else:
            self.runModel("Point", logic.click, rasPoints[0], positive, normal,
                          repropagate=self.repropagateCheckBox.checked, cancel=lambda: self.cancelRequested)

    def runCase(self, case):
        """Run a ``selftest_cases.PromptCase`` through the same handlers as mouse prompts."""
        from WaveSegSlicerLib.selftest_cases import run_case

        run_case(case, self.scriptedEffect.parameterSetNode().GetSourceVolumeNode(),
                 box=lambda ras0, ras1, normal: self.addPromptRas("box", [ras0, ras1], normal),
                 point=lambda ras, positive, normal: self.addPromptRas("point", [ras], normal, positive),
                 propagate=self.onPropagate)

    # -- preview / apply / cancel ----------------------------------------------------------------
    def updatePreview(self):
        from WaveSegSlicerLib import mrml_bridge

        volumeNode = self.scriptedEffect.parameterSetNode().GetSourceVolumeNode()
        if self.previewNode is None:
            self.previewNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "WaveSeg preview")
            self.previewNode.SetHideFromEditors(True)
            self.previewNode.CreateDefaultDisplayNodes()
            self.previewNode.SetReferenceImageGeometryParameterFromVolumeNode(volumeNode)
            self.previewNode.GetDisplayNode().SetOpacity(0.6)
            mrml_bridge.ensure_segment(self.previewNode, "preview", (1.0, 0.85, 0.1))
        segmentId = self.previewNode.GetSegmentation().GetSegmentIdBySegmentName("preview")
        mrml_bridge.write_mask_to_segment(self.logic.mask, volumeNode, self.previewNode, segmentId)

    def onApply(self):
        if self.logic is None:
            return
        if not self.scriptedEffect.confirmCurrentSegmentVisible():
            return
        from WaveSegSlicerLib import mrml_bridge

        volumeNode = self.scriptedEffect.parameterSetNode().GetSourceVolumeNode()
        self.scriptedEffect.saveStateForUndo()
        labelmap = mrml_bridge.oriented_image_from_mask(self.logic.mask, volumeNode)
        self.scriptedEffect.modifySelectedSegmentByLabelmap(labelmap, slicer.qSlicerSegmentEditorAbstractEffect.ModificationModeSet)
        self.onCancel()
        self.statusLabel.text = "Applied to the selected segment (Ctrl+Z undoes it)"

    def onCancel(self):
        self.cancelRequested = True
        if self.logic is not None:
            self.logic.close()
        self.logic = None
        if self.previewNode is not None:
            slicer.mrmlScene.RemoveNode(self.previewNode)
            self.previewNode = None
        self.cancelRequested = False
        self.updateButtons()

    def onUndo(self):
        if self.logic is not None:
            self.runModel("Undo", self.logic.undo)

    def onRedo(self):
        if self.logic is not None:
            self.runModel("Redo", self.logic.redo)

    def onPropagate(self):
        if self.logic is None or self.logic.last_slice is None:
            return
        progress = slicer.util.createProgressDialog(labelText="WaveSeg: propagating through the volume ...", maximum=100)
        state = {"done": 0, "planned": 1}
        progress.connect("canceled()", lambda: setattr(self, "cancelRequested", True))

        def onProgress(done, planned):  # called on the worker thread: only store numbers here
            state["done"], state["planned"] = done, max(planned, 1)

        timer = qt.QTimer()
        timer.connect("timeout()", lambda: setattr(progress, "value", int(100 * state["done"] / state["planned"])))
        timer.start(100)
        self.cancelRequested = False
        try:
            report = self.runModel("Propagation", self.logic.propagate, progress=onProgress,
                                   cancel=lambda: self.cancelRequested)
        finally:
            timer.stop()
            progress.close()
            self.cancelRequested = False
        if report is not None:
            stops = ", ".join(f"{direction}: {why}" for direction, why in report.stopped.items())
            self.statusLabel.text += f"; {len(report.written)} slices written" + (" (cancelled)" if report.cancelled else f"; stopped {stops}")

    # -- mouse and keys ----------------------------------------------------------------------------
    def boxActor(self, viewWidget):
        if viewWidget not in self.boxActors:
            points = vtk.vtkPoints()
            lines = vtk.vtkCellArray()
            polyLine = vtk.vtkPolyLine()
            polyLine.GetPointIds().SetNumberOfIds(5)
            for n in range(5):
                points.InsertNextPoint(0, 0, 0)
                polyLine.GetPointIds().SetId(n, n % 4)
            lines.InsertNextCell(polyLine)
            polyData = vtk.vtkPolyData()
            polyData.SetPoints(points)
            polyData.SetLines(lines)
            mapper = vtk.vtkPolyDataMapper2D()
            mapper.SetInputData(polyData)
            actor = vtk.vtkActor2D()
            actor.SetMapper(mapper)
            actor.GetProperty().SetColor(1.0, 0.85, 0.1)
            actor.VisibilityOff()
            self.scriptedEffect.addActor2D(viewWidget, actor)
            self.boxActors[viewWidget] = (actor, points)
        return self.boxActors[viewWidget]

    def showBox(self, viewWidget, xy0, xy1):
        actor, points = self.boxActor(viewWidget)
        if xy1 is None:
            actor.VisibilityOff()
        else:
            for n, (x, y) in enumerate(((xy0[0], xy0[1]), (xy1[0], xy0[1]), (xy1[0], xy1[1]), (xy0[0], xy1[1]))):
                points.SetPoint(n, x, y, 0)
            points.Modified()
            actor.VisibilityOn()
        viewWidget.sliceView().scheduleRender()

    KEYS = {"Return": "onApply", "KP_Enter": "onApply", "Escape": "onCancel", "p": "onPropagate", "z": "onUndo", "y": "onRedo"}

    def processInteractionEvents(self, callerInteractor, eventId, viewWidget):
        if viewWidget.className() != "qMRMLSliceWidget":
            return False
        xy = callerInteractor.GetEventPosition()
        if eventId == vtk.vtkCommand.LeftButtonPressEvent and not (callerInteractor.GetShiftKey() or callerInteractor.GetAltKey()):
            self.pressXY = xy
            return True
        if eventId == vtk.vtkCommand.MouseMoveEvent and self.pressXY is not None:
            self.showBox(viewWidget, self.pressXY, xy)
            return True
        if eventId == vtk.vtkCommand.LeftButtonReleaseEvent and self.pressXY is not None:
            start, self.pressXY = self.pressXY, None
            self.showBox(viewWidget, start, None)
            if max(abs(xy[0] - start[0]), abs(xy[1] - start[1])) > DRAG_THRESHOLD_PX:
                self.addBox(viewWidget, start, xy)
            else:
                self.addPoint(viewWidget, xy, positive=not callerInteractor.GetControlKey())
            return True
        if eventId == vtk.vtkCommand.RightButtonPressEvent and not callerInteractor.GetControlKey():
            self.addPoint(viewWidget, xy, positive=False)
            return True
        if eventId == vtk.vtkCommand.KeyPressEvent and not callerInteractor.GetControlKey():
            handler = self.KEYS.get(callerInteractor.GetKeySym())
            if handler is not None:
                getattr(self, handler)()
                return True
        return False

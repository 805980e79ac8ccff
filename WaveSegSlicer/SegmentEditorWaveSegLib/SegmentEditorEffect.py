"""The "WaveSeg" Segment Editor effect: clicks and boxes in slice views -> a previewed mask.

Mouse: click = positive point, Ctrl+click = negative point, drag = box (right-drag stays Slicer's
zoom). Keys in a slice view (none of them is a Segment Editor shortcut; those are listed in
v5.10.0 ``qMRMLSegmentEditorWidget.cxx:2300-2377``, z/y/Esc/q/w/i/Space/digits among them):
Enter = Apply, C = Cancel, P = Propagate, BackSpace = undo prompt, Shift+BackSpace = redo prompt,
D / L / K = scribble / lasso / click-and-box tool (``WaveSegSlicerLib.stroke_drawing``, which quotes
the Slicer lines that take the other letters).

How the pieces fit, and the Slicer behaviour each depends on:
- The session works on the editor's grid (``sourceVolumeImageData()``) and Apply fills
  ``defaultModifierLabelmap()``, so masking, oversampling and transforms are Slicer's
  (``WaveSegSlicerLib.editor_grid``). Apply takes from the session only the block that changed
  and keeps the segment as it is elsewhere, through ``modifySelectedSegmentByLabelmap(labelmap,
  Set)`` after ``saveStateForUndo()``: one Ctrl+Z undoes it.
- The segment selected at the first prompt is remembered; Apply writes into it even if another
  segment was selected since (changing the selection does not deactivate an effect,
  ``qMRMLSegmentEditorWidget.cxx:1421-1434``).
- MRML is read and written on the main thread only; the model worker (``WaveSegSlicerLib.executor``)
  gets arrays and voxel numbers. While it runs, prompts and buttons are refused and Cancel
  waits for it to stop before closing the session.
"""

import logging
import os

import qt
import vtk

import slicer
from SegmentEditorEffects import AbstractScriptedSegmentEditorEffect

DRAG_THRESHOLD_PX = 5  # a press and release further apart than this is a box, else a point
PREVIEW_COLOR = (1.0, 0.85, 0.1)
# (VTK key symbol, Shift held) -> handler; a test checks them against the Segment Editor's shortcuts
KEYS = {("Return", False): "onApply", ("KP_Enter", False): "onApply", ("c", False): "onCancel",
        ("p", False): "onPropagate", ("BackSpace", False): "onUndo", ("BackSpace", True): "onRedo",
        ("d", False): "useScribbleTool", ("l", False): "useLassoTool", ("k", False): "usePromptTool"}
HELP = """<html>Segment with clicks and boxes (WaveSeg, runs on the CPU).<p>
<ul style="margin: 0">
<li><b>Left-click:</b> add a positive point (inside the structure). <b>Ctrl+left-click:</b> a negative point.</li>
<li><b>Left-drag:</b> draw a box around the structure.</li>
<li><b>D / L / K:</b> scribble / lasso / click-and-box tool; with a stroke tool, left-drag draws a positive stroke
(a lasso adds its inside), Ctrl+left-drag a negative one (a lasso removes its inside).</li>
<li><b>Enter:</b> apply the preview to the segment you started on. <b>C:</b> cancel (discard the preview).</li>
<li><b>P:</b> propagate the last prompted slice through the volume (progress bar, Cancel).</li>
<li><b>Propose:</b> the selected segment on its other slices, from the slices already drawn (no training).</li>
<li><b>BackSpace / Shift+BackSpace:</b> undo / redo the last prompt. <b>Ctrl+Z:</b> undo an applied result.</li>
</ul><p>The slice view must show voxel planes of the source volume (use "Rotate to volume plane" if it
warns). Masking and overwrite settings apply on Apply, as for every effect.</html>"""


class SegmentEditorEffect(AbstractScriptedSegmentEditorEffect):
    def __init__(self, scriptedEffect):
        scriptedEffect.name = "WaveSeg"  # not translated: modules find effects by name
        scriptedEffect.perSegment = True
        scriptedEffect.requireSegments = True
        AbstractScriptedSegmentEditorEffect.__init__(self, scriptedEffect)
        self.logic = None  # WaveSegSlicerLib.volume_logic.VolumePromptLogic, created at the first prompt
        self.grid = None  # WaveSegSlicerLib.editor_grid.EditorGrid the session works on
        self.segmentId = None  # the segment selected at the first prompt: where Apply writes
        self.profile = None  # the adaptation profile its session's model has (None: the base model)
        self.previewNode = None
        self.previewMask = None  # what the preview shows now, to upload only what changed
        self.boxActors = {}  # slice widget -> (actor, points) of the rubber band, created lazily
        self.press = None  # (view widget, xy) of a left press not yet released
        self.cancelRequested = False
        self.running = False  # this effect's model call is in flight (its buttons are locked)
        self.installing = False  # the installer runs (it pumps events on 5.10: a second click must not start it again)
        self.generation = 0  # bumped by Cancel: a model load that returns afterwards is discarded
        self.editorObservation = None  # (segment editor node, observer tag) while active
        from WaveSegSlicerLib.stroke_drawing import StrokeDrawing

        self.strokes = StrokeDrawing(scriptedEffect)  # the scribble / lasso tool and the stroke being drawn

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
        # model and profile here too: leaving the Segment Editor for the WaveSeg module ends the
        # effect (SegmentEditor.py exit() -> setActiveEffect(None)) and with it the prompts
        self.modelComboBox = qt.QComboBox()
        self.modelComboBox.toolTip = "Model that segments (the WaveSeg module lists where each comes from)"
        self.modelComboBox.connect("currentIndexChanged(int)", self.onModelChosen)
        self.scriptedEffect.addLabeledOptionsWidget("Model:", self.modelComboBox)
        self.profileComboBox = qt.QComboBox()
        self.profileComboBox.toolTip = ("Adaptation profile (made in the WaveSeg module): automatic gives a segment the profile made for "
                                        "the structure it is named for, else the base model; a chosen profile applies to every segment")
        self.profileComboBox.connect("currentIndexChanged(int)", self.onProfileChosen)
        self.scriptedEffect.addLabeledOptionsWidget("Profile:", self.profileComboBox)
        # remote mode: the model runs on a WaveSeg server (docs/server.md); no torch needed here
        self.serverLineEdit = qt.QLineEdit()
        self.serverLineEdit.placeholderText = "local (this computer)"
        self.serverLineEdit.toolTip = "URL of a WaveSeg server (waveseg serve), e.g. https://seg.example.org:8765; empty: run the model here"
        self.serverLineEdit.connect("editingFinished()", self.onServerChanged)
        self.scriptedEffect.addLabeledOptionsWidget("Server:", self.serverLineEdit)
        self.tokenFileLineEdit = qt.QLineEdit()
        self.tokenFileLineEdit.placeholderText = "file holding the server's token"
        self.tokenFileLineEdit.toolTip = "Path of a file whose first line is your token for the server (the token is never stored in the scene)"
        self.tokenFileLineEdit.connect("editingFinished()", self.onServerChanged)
        self.scriptedEffect.addLabeledOptionsWidget("Token file:", self.tokenFileLineEdit)
        buttons = qt.QHBoxLayout()
        self.applyButton = self._button("Apply", "Write the preview into the segment you started on (Enter)", self.onApply, buttons)
        self.cancelButton = self._button("Cancel", "Discard the preview and the prompts; stops a propagation (C)", self.onCancel, buttons)
        self.propagateButton = self._button("Propagate", "Propagate the last prompted slice through the volume (P)",
                                            self.onPropagate, buttons)
        self.undoButton = self._button("Undo prompt", "Undo the last prompt (BackSpace)", self.onUndo, buttons)
        self.redoButton = self._button("Redo prompt", "Redo the undone prompt (Shift+BackSpace)", self.onRedo, buttons)
        self.proposeButton = self._button("Propose", "Propose the selected segment on its slices not yet annotated (across the last "
                                          "prompted view; axial at first), from its annotated slices; BackSpace undoes it",
                                          self.onPropose, buttons)
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

    def moduleLogic(self):
        import WaveSegSlicer

        return WaveSegSlicer.WaveSegSlicerLogic()

    def busy(self):
        """A model call or the installer runs (this effect's, or another editor's on the shared worker)."""
        return self.running or self.installing or self.executor().busy

    def updateButtons(self):
        has, busy = self.logic is not None, self.busy()
        self.applyButton.enabled = has and not busy
        self.cancelButton.enabled = has  # also while busy: it stops the running call
        self.propagateButton.enabled = has and not busy and self.logic.last_slice is not None
        self.undoButton.enabled = has and not busy and self.logic.session.can_undo
        self.redoButton.enabled = has and not busy and self.logic.session.can_redo
        self.proposeButton.enabled = not busy  # without a session, the first Propose starts one on the segment
        for combo in (self.modelComboBox, self.profileComboBox, self.serverLineEdit, self.tokenFileLineEdit):
            combo.enabled = not has  # the session's embeddings belong to one model: Apply or Cancel first

    def onEditorNodeModified(self, caller=None, event=None):
        """Tell the user when another segment is selected while prompts are live. (The Segment Editor
        only sets the ID, qMRMLSegmentEditorWidget.cxx:1421-1434, and calls updateGUIFromMRML only on
        effect parameter changes, so the effect observes the node itself.)"""
        editorNode = self.scriptedEffect.parameterSetNode()
        segmentationNode = editorNode.GetSegmentationNode() if editorNode is not None else None
        if self.logic is not None and segmentationNode is not None and editorNode.GetSelectedSegmentID() != self.segmentId:
            segment = segmentationNode.GetSegmentation().GetSegment(self.segmentId)
            name = segment.GetName() if segment else self.segmentId
            self.statusLabel.text = f"These prompts belong to segment '{name}': Apply writes there (Cancel to start on the selected one)."

    def syncModelChoice(self):
        """Fill the model and profile lists and show what the module's parameter node holds."""
        logic = self.moduleLogic()
        model, profile = logic.settings()[:2]
        if hasattr(logic, "serverSettings"):
            self.serverLineEdit.text, self.tokenFileLineEdit.text = logic.serverSettings()
        profiles = [p["name"] for p in logic.profiles()]
        choices = {"": "(automatic: by segment name)", "-": "(none)"}  # waveseg.adaptation.scope AUTOMATIC, NO_PROFILE
        for combo, items, current in ((self.modelComboBox, logic.modelNames(), model), (self.profileComboBox, [*choices, *profiles], profile or "")):
            combo.blockSignals(True)
            combo.clear()
            for item in items:
                combo.addItem(choices.get(item, item) if combo is self.profileComboBox else item, item)
            combo.setCurrentIndex(max(combo.findData(current), 0))
            combo.blockSignals(False)

    def onServerChanged(self):
        """Store the server URL and token file in Slicer's user settings and list that server's models."""
        url, tokenFile = self.serverLineEdit.text.strip(), self.tokenFileLineEdit.text.strip()
        logic = self.moduleLogic()
        if (url, tokenFile) == tuple(logic.serverSettings()):
            return
        logic.setServerSettings(url, tokenFile)
        self.syncModelChoice()
        self.statusLabel.text = f"Model runs on the server {url}." if url else "Model runs on this computer."

    def onModelChosen(self, index):
        if index >= 0:
            self.moduleLogic().getParameterNode().model = self.modelComboBox.itemData(index)

    def onProfileChosen(self, index):
        if index >= 0:
            self.moduleLogic().getParameterNode().profile = self.profileComboBox.itemData(index) or ""

    def createCursor(self, widget):
        return slicer.util.mainWindow().cursor

    def activate(self):
        self.statusLabel.text = ""
        self.syncModelChoice()
        editorNode = self.scriptedEffect.parameterSetNode()
        self.editorObservation = (editorNode, editorNode.AddObserver(vtk.vtkCommand.ModifiedEvent, self.onEditorNodeModified))

    def deactivate(self):
        self.onCancel()
        self.stopObservingEditor()
        for widget, (actor, _points) in self.boxActors.items():
            self.scriptedEffect.removeActor2D(widget, actor)
        self.boxActors = {}
        self.press = None
        self.strokes.remove()

    def cleanup(self):
        """Slicer 5.10 calls this from the editor widget's destructor, without deactivate()
        (AbstractScriptedSegmentEditorEffect.py:56, qMRMLSegmentEditorWidget.cxx:283-287)."""
        self.onCancel()
        self.stopObservingEditor()

    def stopObservingEditor(self):
        if self.editorObservation:
            self.editorObservation[0].RemoveObserver(self.editorObservation[1])
            self.editorObservation = None

    def sourceVolumeNodeChanged(self):
        self.onCancel()

    def referenceGeometryChanged(self):
        self.onCancel()

    # -- model plumbing ------------------------------------------------------------------------
    def executor(self):
        from WaveSegSlicerLib.executor import shared_executor

        return shared_executor(pump=lambda: slicer.app.processEvents())

    def promptLogic(self):
        """The session for the segment selected now, created (and the model loaded) at the first prompt."""
        if self.logic is not None:
            return self.logic
        moduleLogic = self.moduleLogic()
        # first: on a Slicer without torch this offers the installer; nothing below may import torch before it
        self.installing = True
        try:
            installed = moduleLogic.ensureDependencies()
        finally:
            self.installing = False
        if not installed:
            raise RuntimeError("WaveSeg's Python packages are not installed")
        from WaveSegSlicerLib.editor_grid import EditorGrid, image_array, mask_on_grid
        from WaveSegSlicerLib.volume_logic import VolumePromptLogic

        editorNode = self.scriptedEffect.parameterSetNode()
        source = self.scriptedEffect.sourceVolumeImageData()  # the source volume on the editor's grid
        grid = EditorGrid.of_image(source)
        volume = image_array(source)
        segmentId = editorNode.GetSelectedSegmentID()
        initial = mask_on_grid(self.scriptedEffect.selectedSegmentLabelmap(), grid)  # vtkSlicerSegmentEditorLogic.cxx:1089-1104
        settings = moduleLogic.settings()  # parameter node: read here, on the main thread
        # the profile made for this segment's structure (by its name), unless one was chosen for all
        from waveseg.adaptation.scope import profile_for_segment

        segment = self.scriptedEffect.parameterSetNode().GetSegmentationNode().GetSegmentation().GetSegment(segmentId)
        profile = profile_for_segment(segment.GetName() if segment else "", moduleLogic.profiles(), settings[1])
        settings = (settings[0], profile, *settings[2:])
        generation, self.running = self.generation, True
        try:
            segmenter = self.executor().run(moduleLogic.segmenter, *settings)  # loading weights takes seconds: off the main thread
        finally:
            self.running = False
        if generation != self.generation:  # Cancel, or the effect was switched, while the model loaded
            raise RuntimeError("cancelled while the model was loading")
        self.logic = VolumePromptLogic(segmenter, volume, grid.spacing_xyz, initial_mask=initial)
        self.grid, self.segmentId, self.previewMask, self.profile = grid, segmentId, None, profile
        return self.logic

    def runModel(self, description, function, *args, **kwargs):
        """Run a model call on the worker thread; show errors in the status line, never a traceback."""
        logic = self.logic
        qt.QApplication.setOverrideCursor(qt.Qt.WaitCursor)
        started = vtk.vtkTimerLog.GetUniversalTime()
        self.running = True
        self.updateButtons()
        try:
            result = self.executor().run(function, *args, **kwargs)
            if self.logic is not logic:  # cancelled while it ran: the session is gone
                return None
            profile = f" (profile {self.profile})" if self.profile else ""  # visible: a profile is never applied silently
            self.statusLabel.text = f"{description}: {1000 * (vtk.vtkTimerLog.GetUniversalTime() - started):.0f} ms{profile}"
            self.updatePreview()
            return result
        except Exception as exc:  # errors from the core carry their own explanation
            logging.exception("WaveSeg prompt failed")
            self.statusLabel.text = f"<font color='red'>{description} failed: {exc}</font>"
            return None
        finally:
            self.running = False
            qt.QApplication.restoreOverrideCursor()
            self.updateButtons()

    # -- prompts -------------------------------------------------------------------------------
    @staticmethod
    def sliceNormal(viewWidget):
        sliceToRas = viewWidget.sliceLogic().GetSliceNode().GetSliceToRAS()
        return [sliceToRas.GetElement(row, 2) for row in range(3)]

    def addPoint(self, viewWidget, xy, positive):
        # the Python helper, not scriptedEffect.xyToRas: that C++ overload takes a QPoint
        # (qSlicerSegmentEditorAbstractEffect.h), AbstractScriptedSegmentEditorEffect.py:85-88 builds it
        self.addPromptRas("point", [self.xyToRas(xy, viewWidget)], self.sliceNormal(viewWidget), positive)

    def addBox(self, viewWidget, xy0, xy1):
        self.addPromptRas("box", [self.xyToRas(xy, viewWidget) for xy in (xy0, xy1)], self.sliceNormal(viewWidget))

    def addStroke(self, viewWidget, xys, positive, closed):
        """A scribble (``closed`` False) or lasso drawn through display points ``xys`` of ``viewWidget``."""
        self.addPromptRas("lasso" if closed else "scribble", [self.xyToRas(xy, viewWidget) for xy in xys],
                          self.sliceNormal(viewWidget), positive)

    def useScribbleTool(self):
        self.strokes.tool = "scribble"

    def useLassoTool(self):
        self.strokes.tool = "lasso"

    def usePromptTool(self):
        self.strokes.tool = "prompt"

    def addPromptRas(self, kind, rasPoints, normal, positive=True):
        """One prompt in world RAS on the slice view with ``normal`` (also used by the self-test)."""
        if self.busy():
            self.statusLabel.text = "WaveSeg is still working; wait for it or press Cancel"
            return
        try:
            logic = self.promptLogic()
            from WaveSegSlicerLib.editor_grid import prompt_voxel_and_axis

            voxels, axis = prompt_voxel_and_axis(self.grid, self.scriptedEffect.parameterSetNode().GetSegmentationNode(),
                                                 rasPoints, normal)
        except Exception as exc:
            logging.exception("WaveSeg could not take the prompt")
            self.statusLabel.text = f"<font color='red'>WaveSeg: {exc}</font>"
            self.updateButtons()
            return
        if kind == "box":
            self.runModel("Box", logic.box, voxels[0], voxels[1], axis)
        elif kind in ("scribble", "lasso"):
            self.runModel(kind.capitalize(), logic.stroke, voxels, positive, axis, kind == "lasso",
                          repropagate=self.repropagateCheckBox.checked, cancel=lambda: self.cancelRequested)
        else:
            self.runModel("Point", logic.click, voxels[0], positive, axis,
                          repropagate=self.repropagateCheckBox.checked, cancel=lambda: self.cancelRequested)

    # -- preview / apply / cancel ----------------------------------------------------------------
    def updatePreview(self):
        """Show the session's mask in a hidden segmentation (uploaded when it changed)."""
        from WaveSegSlicerLib import mrml_bridge
        from WaveSegSlicerLib.editor_grid import changed_box, image_of_mask

        mask = self.logic.mask
        if self.previewNode is not None and changed_box(self.previewMask, mask) is None:
            return
        if self.previewNode is None:
            segmentationNode = self.scriptedEffect.parameterSetNode().GetSegmentationNode()
            self.previewNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "WaveSeg preview")
            self.previewNode.SetSaveWithScene(False)  # never saved with the scene
            self.previewNode.SetHideFromEditors(True)
            self.previewNode.CreateDefaultDisplayNodes()
            self.previewNode.GetDisplayNode().SetOpacity(0.6)
            parent = segmentationNode.GetParentTransformNode()  # drawn where the segmentation is, as AutoComplete's preview
            self.previewNode.SetAndObserveTransformNodeID(parent.GetID() if parent else None)
            mrml_bridge.ensure_segment(self.previewNode, "preview", PREVIEW_COLOR)
        segmentId = self.previewNode.GetSegmentation().GetSegmentIdBySegmentName("preview")
        # the whole mask: MODE_REPLACE with an extent would replace the segment by that block alone
        # (vtkSegmentationModifier.cxx:315-354)
        logic = slicer.vtkSlicerSegmentationsModuleLogic
        logic.SetBinaryLabelmapToSegment(image_of_mask(mask, self.grid), self.previewNode, segmentId, logic.MODE_REPLACE)
        self.previewMask = mask.copy()

    def onApply(self):
        if self.logic is None or self.busy():
            return
        from WaveSegSlicerLib.editor_grid import changed_box, fill_image, mask_on_grid

        editorNode = self.scriptedEffect.parameterSetNode()
        segment = editorNode.GetSegmentationNode().GetSegmentation().GetSegment(self.segmentId)
        if segment is None:
            self.statusLabel.text = "<font color='red'>The segment these prompts were for was deleted; Cancel and start again.</font>"
            return
        if editorNode.GetSelectedSegmentID() != self.segmentId:
            editorNode.SetSelectedSegmentID(self.segmentId)  # write where the prompts started, never into another segment
        if not self.scriptedEffect.confirmCurrentSegmentVisible():  # 0: the user cancelled the "segment is hidden" question
            self.statusLabel.text = "Not applied: the segment is hidden (show it, or confirm, to apply)."
            return
        mask = self.logic.mask
        box = changed_box(self.logic.initial_mask, mask)
        if box is None:
            self.statusLabel.text = "Nothing to apply: the preview equals the segment."
            return
        modifier = self.scriptedEffect.defaultModifierLabelmap()
        if modifier is None or not self.grid.matches(modifier):
            self.statusLabel.text = "<font color='red'>The segmentation's geometry changed since the first prompt; Cancel and start again.</font>"
            return
        # Set replaces the whole segment by the modifier (vtkSlicerSegmentEditorLogic.cxx:1905-1930; an
        # extent would only limit what is added back), so the modifier carries the segment as it is
        # now outside the block WaveSeg changed: edits made since the first prompt are kept there
        result = mask_on_grid(self.scriptedEffect.selectedSegmentLabelmap(), self.grid)
        result[box] = mask[box]
        fill_image(modifier, result)
        self.scriptedEffect.saveStateForUndo()
        self.scriptedEffect.modifySelectedSegmentByLabelmap(modifier, slicer.qSlicerSegmentEditorAbstractEffect.ModificationModeSet)
        written = mask_on_grid(self.scriptedEffect.selectedSegmentLabelmap(), self.grid)
        wanted, got = int(mask[box].sum()), int((written[box] & mask[box]).sum())
        name = segment.GetName()
        self.onCancel()
        if wanted and not got:
            self.statusLabel.text = (f"<font color='red'>Nothing was applied to '{name}': the editable area or intensity range "
                                     "excludes the whole result (Masking settings).</font>")
        elif got < wanted:
            self.statusLabel.text = (f"Applied to '{name}' (Ctrl+Z undoes it); {wanted - got} of {wanted} voxels were outside "
                                     "the editable area or intensity range and were left out.")
        else:
            self.statusLabel.text = f"Applied to '{name}' (Ctrl+Z undoes it)."

    def onCancel(self):
        """Discard prompts and preview. A running model call is asked to stop, and waited for,
        before its session is closed."""
        self.cancelRequested = True
        self.generation += 1
        if self.running and self.logic is not None:  # this effect's session call: let it stop before closing the session
            self.executor().wait()
        if self.logic is not None:
            self.logic.close()
        self.logic = self.grid = self.segmentId = self.previewMask = self.profile = None
        if self.previewNode is not None:
            slicer.mrmlScene.RemoveNode(self.previewNode)
            self.previewNode = None
        self.cancelRequested = False
        self.updateButtons()

    def onUndo(self):
        if self.logic is not None and not self.busy() and self.logic.session.can_undo:
            self.runModel("Undo", self.logic.undo)

    def onRedo(self):
        if self.logic is not None and not self.busy() and self.logic.session.can_redo:
            self.runModel("Redo", self.logic.redo)

    def requestStop(self):
        """The progress dialog's Cancel: stop the running propagation, keep the slices done so far.
        (QProgressDialog also emits canceled() when it is closed, hence the check.)"""
        if self.busy():
            self.cancelRequested = True

    def onPropagate(self):
        if self.logic is None or self.logic.last_slice is None or self.busy():
            return
        progress = slicer.util.createProgressDialog(labelText="WaveSeg: propagating through the volume ...", maximum=100)
        state = {"done": 0, "planned": 1}
        progress.connect("canceled()", self.requestStop)

        def onProgress(done, planned):  # called on the worker thread: only store numbers here
            state["done"], state["planned"] = done, max(planned, 1)

        timer = qt.QTimer()
        timer.connect("timeout()", lambda: setattr(progress, "value", int(100 * state["done"] / state["planned"])))
        timer.start(100)
        self.cancelRequested = False
        try:
            report = self.runModel("Propagation", self.logic.propagate, progress=onProgress, cancel=lambda: self.cancelRequested)
        finally:
            timer.stop()
            progress.close()
            progress.deleteLater()  # its parent is the main window (slicer/util.py:3221): close() only hides it
            self.cancelRequested = False
        if report is not None:
            stops = ", ".join(f"{direction}: {why}" for direction, why in report.stopped.items())
            self.statusLabel.text += f"; {len(report.written)} slices written" + (
                " (stopped by you; BackSpace undoes it)" if report.cancelled else f"; stopped {stops}")
        elif self.logic is None:
            self.statusLabel.text = "Propagation cancelled; prompts discarded."

    def onPropose(self):
        """Propose the selected segment from its annotated slices (waveseg.examples.volume_proposals):
        the slices locked in this session, else the slices the segment already had."""
        if self.busy():
            return
        try:
            logic = self.promptLogic()
        except Exception as exc:  # no packages, or cancelled while the model loaded
            self.statusLabel.text = f"<font color='red'>Propose failed: {exc}</font>"
            return
        from waveseg.examples.volume_proposals import propose_other_slices

        axis = logic.last_slice[0] if logic.last_slice is not None else 0
        report = self.runModel("Proposal", propose_other_slices, logic.session, axis)
        if report is not None:
            self.statusLabel.text += (f"; proposed on {len(report.written)} slices" + (
                f", {len(report.low_confidence)} look free of it (left as they were)" if report.low_confidence else ""))

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
            actor.GetProperty().SetColor(*PREVIEW_COLOR)
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

    def processInteractionEvents(self, callerInteractor, eventId, viewWidget):
        if viewWidget.className() != "qMRMLSliceWidget":
            return False
        xy = callerInteractor.GetEventPosition()
        if self.press is not None and self.press[0] is not viewWidget:  # a press in another view that never came back
            self.showBox(self.press[0], None, None)
            self.press = None
        if self.strokes.process(self, callerInteractor, eventId, viewWidget, xy):
            return True
        if eventId == vtk.vtkCommand.LeftButtonPressEvent and not (callerInteractor.GetShiftKey() or callerInteractor.GetAltKey()):
            self.press = (viewWidget, xy)
            return True
        if eventId == vtk.vtkCommand.MouseMoveEvent and self.press is not None:
            self.showBox(viewWidget, self.press[1], xy)
            return True
        if eventId == vtk.vtkCommand.LeftButtonReleaseEvent and self.press is not None:
            start, self.press = self.press[1], None
            self.showBox(viewWidget, start, None)
            if max(abs(xy[0] - start[0]), abs(xy[1] - start[1])) > DRAG_THRESHOLD_PX:
                self.addBox(viewWidget, start, xy)
            else:
                self.addPoint(viewWidget, xy, positive=not callerInteractor.GetControlKey())
            return True
        if eventId == vtk.vtkCommand.KeyPressEvent and not callerInteractor.GetControlKey():
            handler = KEYS.get((callerInteractor.GetKeySym(), bool(callerInteractor.GetShiftKey())))
            if handler is not None:
                getattr(self, handler)()
                return True
        return False

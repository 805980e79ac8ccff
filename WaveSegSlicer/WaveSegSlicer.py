"""WaveSeg Slicer module: model and profile choice, few-shot adaptation, and the "WaveSeg"
Segment Editor effect (registered at startup; its code is SegmentEditorWaveSegLib/SegmentEditorEffect.py).

Model work lives in the ``waveseg`` core and in ``WaveSegSlicerLib`` (MRML conversions, worker
thread, background adaptation process); this file only wires Slicer's module classes to them.
"""

import logging
import os
import shutil
from typing import Annotated

import qt
import vtk

import slicer
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode

EFFECT_NAME = "WaveSeg"


#
# WaveSegSlicer
#


class WaveSegSlicer(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("WaveSeg")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
        self.parent.dependencies = ["Segmentations"]
        self.parent.contributors = ["WaveSeg developers"]
        self.parent.helpText = _("""
Interactive segmentation from clicks and boxes that runs on a laptop CPU, with propagation through
the volume and on-site few-shot adaptation kept as named profiles. Use the <b>WaveSeg</b> effect
in the Segment Editor to segment; use this module to pick the model, device and profile and to adapt.
See the <a href="https://github.com/waveseg/SlicerWaveSeg#readme">documentation</a>.
""")
        self.parent.acknowledgementText = _("""
Uses segment-anything (Meta, Apache-2.0) and LiteMedSAM weights (Apache-2.0); see the model cards
in Resources/Models for data provenance and licences.
""")
        slicer.app.connect("startupCompleted()", registerEditorEffect)


def registerEditorEffect():
    """Register the scripted "WaveSeg" Segment Editor effect (no torch import happens here).

    Slicer loads the file as a module named after its folder and puts it in ``sys.modules`` under
    that name (v5.10.0 qSlicerSegmentEditorScriptedEffect.cxx:146-176), so the effect has a
    package of its own, as Utilities/Templates/Modules/ScriptedSegmentEditorEffect has.
    """
    import qSlicerSegmentationsEditorEffectsPythonQt as effects

    instance = effects.qSlicerSegmentEditorScriptedEffect(None)
    effectPath = os.path.join(os.path.dirname(__file__), "SegmentEditorWaveSegLib", "SegmentEditorEffect.py")
    if not instance.setPythonSource(effectPath.replace("\\", "/")):  # False when the file fails to load
        logging.error(f"WaveSeg: could not load the Segment Editor effect from {effectPath}")
        return
    instance.self().register()


#
# WaveSegSlicerParameterNode
#


@parameterNodeWrapper
class WaveSegSlicerParameterNode:
    """
    model - catalog name of the model (filled from Resources/Models/models.json).
    profile - which adaptation profile segments get: "" automatic (the profile made for the
      structure a segment is named for, else the base model), "-" none, or a name for every segment.
    device - where the model runs.
    inputVolume / segmentation - the volume and segmentation that adaptation learns from.
    adaptMethod / adaptTimeBudget / profileName - the adaptation run's settings.
    """

    model: str = "default"
    profile: str = ""
    device: Annotated[str, Choice(["cpu", "cuda", "mps"])] = "cpu"
    inputVolume: vtkMRMLScalarVolumeNode
    segmentation: vtkMRMLSegmentationNode
    adaptMethod: Annotated[str, Choice(["decoder", "galore", "adamw"])] = "decoder"  # not "lora": peft is not installed in Slicer
    adaptTimeBudget: Annotated[float, WithinRange(10, 600)] = 30
    profileName: str = ""


#
# WaveSegSlicerWidget
#


class WaveSegSlicerWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._adaptation = None
        self._adaptationTimer = qt.QTimer()
        self._adaptationTimer.setInterval(200)
        self._adaptationTimer.connect("timeout()", self.onAdaptationPoll)

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/WaveSegSlicer.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = WaveSegSlicerLogic()

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

        self.ui.modelComboBox.connect("currentIndexChanged(int)", self.onModelChanged)
        self.ui.profileComboBox.connect("currentIndexChanged(int)", self.onProfileChanged)
        self.ui.openEditorButton.connect("clicked(bool)", self.onOpenEditor)
        self.ui.adaptButton.connect("clicked(bool)", self.onAdapt)
        self.ui.cancelAdaptButton.connect("clicked(bool)", self.onCancelAdapt)
        self.ui.exportProfileButton.connect("clicked(bool)", self.onExportProfile)
        self.ui.importProfileButton.connect("clicked(bool)", self.onImportProfile)
        self.ui.deleteProfileButton.connect("clicked(bool)", self.onDeleteProfile)
        self.ui.cancelAdaptButton.enabled = False
        self._setupServerSection()
        self.initializeParameterNode()
        self.refreshModelsAndProfiles()

    def _setupServerSection(self) -> None:
        """Remote mode (docs/server.md): the server URL and token file, the same user settings as the
        effect's panel. Built in code like Slicer's own scripted modules do (v5.10.0
        Modules/Scripted/CropVolumeSequence/CropVolumeSequence.py:54-59: ctkCollapsibleButton + QFormLayout)."""
        import ctk

        section = ctk.ctkCollapsibleButton()
        section.text = _("Remote server")
        url, tokenFile = self.logic.serverSettings()
        section.collapsed = not url
        self.layout.addWidget(section)
        form = qt.QFormLayout(section)
        self.serverLineEdit = qt.QLineEdit(url)
        self.serverLineEdit.placeholderText = _("local (this computer)")
        self.serverLineEdit.toolTip = _("URL of a WaveSeg server (waveseg serve); empty: the model runs here")
        self.tokenFileLineEdit = qt.QLineEdit(tokenFile)
        self.tokenFileLineEdit.toolTip = _("File whose first line is your token for the server (never stored in the scene)")
        form.addRow(_("Server:"), self.serverLineEdit)
        form.addRow(_("Token file:"), self.tokenFileLineEdit)
        for edit in (self.serverLineEdit, self.tokenFileLineEdit):
            edit.connect("editingFinished()", self.onServerChanged)

    def onServerChanged(self) -> None:
        url, tokenFile = self.serverLineEdit.text.strip(), self.tokenFileLineEdit.text.strip()
        if (url, tokenFile) != tuple(self.logic.serverSettings()):
            self.logic.setServerSettings(url, tokenFile)
            self.refreshModelsAndProfiles()

    def cleanup(self) -> None:
        from WaveSegSlicerLib.executor import shutdown_shared

        self.onCancelAdapt()
        self.removeObservers()
        shutdown_shared()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._checkCanAdapt)

    def onSceneStartClose(self, caller, event) -> None:
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume:
            self._parameterNode.inputVolume = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
        if not self._parameterNode.segmentation:
            self._parameterNode.segmentation = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLSegmentationNode")

    def setParameterNode(self, inputParameterNode) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._checkCanAdapt)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._checkCanAdapt)
            self._checkCanAdapt()

    def _checkCanAdapt(self, caller=None, event=None) -> None:
        self.showChosenModel()  # the parameter node may have changed from the effect's panel or a loaded scene
        p = self._parameterNode
        ready = bool(p and p.inputVolume and p.segmentation and p.profileName.strip()) and self._adaptation is None
        self.ui.adaptButton.enabled = ready
        self.ui.adaptButton.toolTip = _("Adapt the model to the annotated slices of the selected segment") if ready else _(
            "Select a volume, a segmentation with an annotated segment, and type a profile name")

    # -- models and profiles ------------------------------------------------------------
    def refreshModelsAndProfiles(self) -> None:
        """Fill the model and profile lists from the catalog and the profiles folder."""
        for combo in (self.ui.modelComboBox, self.ui.profileComboBox):
            combo.blockSignals(True)
        self.ui.modelComboBox.clear()
        for name in self.logic.modelNames():
            self.ui.modelComboBox.addItem(name)
        self.ui.profileComboBox.clear()
        self.ui.profileComboBox.addItem(_("(automatic: by segment name)"), "")  # waveseg.adaptation.scope.AUTOMATIC
        self.ui.profileComboBox.addItem(_("(none)"), "-")  # waveseg.adaptation.scope.NO_PROFILE
        for profile in self.logic.profiles():
            self.ui.profileComboBox.addItem(f"{profile['name']} ({profile.get('structure', '?')}, {profile.get('base_model', '?')})",
                                            profile["name"])
        for combo in (self.ui.modelComboBox, self.ui.profileComboBox):
            combo.blockSignals(False)
        self.showChosenModel()

    def showChosenModel(self) -> None:
        """Select the parameter node's model and profile in the combo boxes (without echoing back)."""
        if not self._parameterNode:
            return
        for combo, value in ((self.ui.modelComboBox, self._parameterNode.model), (self.ui.profileComboBox, self._parameterNode.profile)):
            combo.blockSignals(True)
            index = combo.findText(value) if combo is self.ui.modelComboBox else combo.findData(value)
            combo.setCurrentIndex(max(index, 0))
            combo.blockSignals(False)

    def onModelChanged(self, index) -> None:
        if self._parameterNode and index >= 0:
            self._parameterNode.model = self.ui.modelComboBox.currentText

    def onProfileChanged(self, index) -> None:
        if self._parameterNode and index >= 0:
            self._parameterNode.profile = self.ui.profileComboBox.itemData(index) or ""

    def onOpenEditor(self) -> None:
        slicer.util.selectModule("SegmentEditor")
        editor = slicer.modules.segmenteditor.widgetRepresentation().self().editor
        editor.setActiveEffectByName(EFFECT_NAME)

    def onExportProfile(self) -> None:
        name = self._parameterNode.profile
        if name in ("", "-"):
            slicer.util.warningDisplay(_("Select a profile to export first."))
            return
        path = qt.QFileDialog.getSaveFileName(None, _("Export WaveSeg profile"), f"{name}.safetensors", "*.safetensors")
        if path:
            with slicer.util.tryWithErrorDisplay(_("Failed to export the profile."), waitCursor=True):
                from waveseg.adaptation.profiles import export_profile

                export_profile(name, path)

    def onImportProfile(self) -> None:
        path = qt.QFileDialog.getOpenFileName(None, _("Import WaveSeg profile"), "", "*.safetensors")
        if path:
            with slicer.util.tryWithErrorDisplay(_("Failed to import the profile."), waitCursor=True):
                from waveseg.adaptation.profiles import import_profile

                import_profile(path)
                self.logic.forgetSegmenters()  # a profile of the same name may have been replaced
                self.refreshModelsAndProfiles()

    def onDeleteProfile(self) -> None:
        name = self._parameterNode.profile
        if name in ("", "-") or not slicer.util.confirmYesNoDisplay(_("Delete profile '{name}'? This cannot be undone.").format(name=name)):
            return
        with slicer.util.tryWithErrorDisplay(_("Failed to delete the profile.")):
            from waveseg.adaptation.profiles import delete_profile

            delete_profile(name)
            self.logic.forgetSegmenters()
            self._parameterNode.profile = ""
            self.refreshModelsAndProfiles()

    # -- adaptation ------------------------------------------------------------------------
    def onAdapt(self) -> None:
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay(_("Failed to start adaptation."), waitCursor=True):
            if not self.logic.ensureDependencies():
                return
            segmentId = self.ui.segmentSelector.currentSegmentID()
            self._adaptation = self.logic.startAdaptation(p.inputVolume, p.segmentation, segmentId, p.profileName.strip(),
                                                          p.model, p.adaptMethod, p.adaptTimeBudget)
            self.ui.adaptProgressBar.value = 0
            self.ui.adaptStatusLabel.text = _("Adapting ...")
            self.ui.cancelAdaptButton.enabled = True
            self._checkCanAdapt()
            self._adaptationTimer.start()

    def onAdaptationPoll(self) -> None:
        if self._adaptation is None:
            self._adaptationTimer.stop()
            return
        for message in self._adaptation.poll():
            if self._parameterNode is None:  # the scene was closed while adapting: nothing to show it on
                continue
            if message.get("event") == "progress":
                self.ui.adaptProgressBar.value = min(100, int(100 * message.get("fraction", 0)))
                self.ui.adaptStatusLabel.text = _("{phase}: step {step}, loss {loss:.3f}").format(
                    phase=message.get("phase", ""), step=message.get("step"), loss=message.get("loss", 0))
            elif message.get("event") == "done":
                self.ui.adaptProgressBar.value = 100
                # the gate's sentence with its numbers; no profile was written when it kept the base model
                self.ui.adaptStatusLabel.text = message.get("message", "")
                if not message.get("kept", True):
                    continue
                self.logic.forgetSegmenters()  # re-adapting a profile of the same name must not keep the old weights
                # automatic (the default) gives the new profile to segments named for its structure, here the adapted segment
                self.refreshModelsAndProfiles()
            elif message.get("event") == "error":
                self.ui.adaptStatusLabel.text = _("Adaptation stopped: {message}").format(message=message.get("message"))
        if self._adaptation.result is not None:
            self._adaptation = None
            self._adaptationTimer.stop()
            self.ui.cancelAdaptButton.enabled = False
            self._checkCanAdapt()

    def onCancelAdapt(self) -> None:
        if self._adaptation is not None:
            self._adaptation.cancel()
            self.ui.adaptStatusLabel.text = _("Cancelling ...")


#
# WaveSegSlicerLogic
#


class WaveSegSlicerLogic(ScriptedLoadableModuleLogic):
    """Model choice (shared with the effect through ``WaveSegSlicerLib.model_catalog``) and adaptation runs.

    Can be used without the widget, e.g. from the Python console:
        logic = WaveSegSlicerLogic(); segmenter = logic.segmenter(*logic.settings())
    """

    def getParameterNode(self):
        return WaveSegSlicerParameterNode(super().getParameterNode())

    def serverSettings(self) -> tuple:
        """(server URL or "", token file or "") from Slicer's user settings (remote mode when a URL is set;
        ``WaveSegSlicerLib.remote_settings`` says why not the parameter node). Main thread only."""
        from WaveSegSlicerLib import remote_settings

        return remote_settings.read(qt.QSettings())

    def setServerSettings(self, url: str, tokenFile: str = "") -> None:
        from WaveSegSlicerLib import remote_settings

        remote_settings.write(qt.QSettings(), url, tokenFile)
        self.forgetSegmenters()

    def ensureDependencies(self) -> bool:
        """True when WaveSeg can run: in remote mode always (the client needs numpy only), else after the installer."""
        if self.serverSettings()[0]:
            return True
        from WaveSegSlicerLib.dependencies import ensure_dependencies

        return ensure_dependencies()

    def modelNames(self) -> list:
        url, tokenFile = self.serverSettings()
        if url:
            from WaveSegSlicerLib import remote_settings
            from waveseg.errors import WaveSegError

            try:
                return remote_settings.model_names(url, tokenFile)
            except WaveSegError as exc:
                logging.warning("WaveSeg server %s: %s", url, exc)
                return ["default"]
        from WaveSegSlicerLib.model_catalog import model_names

        return model_names()

    def profiles(self) -> list:
        url, tokenFile = self.serverSettings()
        if url:
            from WaveSegSlicerLib import remote_settings
            from waveseg.errors import WaveSegError

            try:
                return remote_settings.profiles(url, tokenFile)
            except WaveSegError:
                return []
        from WaveSegSlicerLib.model_catalog import profiles

        return profiles()

    def settings(self) -> tuple:
        """(model, profile choice or None for automatic, device, server) from the parameter node and the user settings;
        server is (URL, token file) in remote mode, else None. Read on the main thread."""
        p = self.getParameterNode()
        url, tokenFile = self.serverSettings()
        return p.model, p.profile or None, p.device, ((url, tokenFile) if url else None)

    def segmenter(self, model: str = "default", profile: str = None, device: str = "cpu", server: tuple = None):
        """The ``waveseg.Segmenter`` for these settings, or with ``server`` = (URL, token file) a
        ``waveseg.remote.RemoteSegmenter``; loaded once and shared with the effect (safe on the worker thread)."""
        if server:
            from WaveSegSlicerLib.remote_settings import REMOTE_SEGMENTERS

            return REMOTE_SEGMENTERS.get(server[0], server[1], model, profile)
        from WaveSegSlicerLib.model_catalog import SEGMENTERS

        return SEGMENTERS.get(model, profile, device)

    def forgetSegmenters(self) -> None:
        """Drop the loaded model, e.g. after a profile was re-adapted, imported or deleted under the same name."""
        from WaveSegSlicerLib.model_catalog import SEGMENTERS
        from WaveSegSlicerLib.remote_settings import REMOTE_SEGMENTERS

        SEGMENTERS.forget()
        REMOTE_SEGMENTERS.forget()

    def startAdaptation(self, volumeNode, segmentationNode, segmentId: str, profileName: str, model: str = "default",
                        method: str = "galore", timeBudget: float = 60.0):
        """Start a background adaptation on the slices of ``segmentId`` that are annotated.

        Returns a ``waveseg.adaptation.background.AdaptationProcess`` to poll.
        """
        from WaveSegSlicerLib import mrml_bridge
        from waveseg.adaptation.background import AdaptationProcess, annotated_slices

        if not segmentId:
            segmentId = segmentationNode.GetSegmentation().GetNthSegmentID(0)
        if not segmentId:
            raise ValueError(_("The segmentation has no segment to learn from; annotate a few slices first."))
        volume, _spacing = mrml_bridge.volume_array(volumeNode)
        mask = mrml_bridge.read_segment_mask(segmentationNode, segmentId, volumeNode)
        images, masks, indices = annotated_slices(volume, mask)
        if len(indices) < 2:
            raise ValueError(_("Adaptation needs at least 2 annotated slices of the segment (one is held back to check "
                               "the result); found {count}.").format(count=len(indices)))
        structure = segmentationNode.GetSegmentation().GetSegment(segmentId).GetName()
        logging.info(f"WaveSeg adaptation on slices {indices} of segment {structure!r}")
        python = shutil.which("PythonSlicer")  # Slicer's own Python; sys.executable is the Slicer application
        if not python:
            raise RuntimeError(_("PythonSlicer was not found on the PATH; cannot start the adaptation process."))
        return AdaptationProcess(images, masks, name=profileName, model=model, structure=structure, method=method,
                                 time_budget_s=timeBudget, python=python,
                                 env={"PYTHONPATH": os.pathsep.join(p for p in (os.path.dirname(__file__), os.environ.get("PYTHONPATH")) if p)})


#
# WaveSegSlicerTest
#


class WaveSegSlicerTest(ScriptedLoadableModuleTest):
    """Runs inside Slicer (Self Tests module, or ctest through ``slicer_add_python_unittest``): drives
    the WaveSeg effect with mouse and key events in the Red slice view (``processInteractionEvents``),
    on the embedded Colin27 sample under a rotated and shifted transform, and checks Apply against
    golden masks, intensity masking, a switched segment and Cancel during propagation.

    It installs nothing: when WaveSeg's packages are missing it is skipped with a message (ctest
    reports a skip; Reload and Test shows the message), since pip must not run inside a test.
    """

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        import unittest

        self.setUp()
        try:
            self.test_EffectInSliceViews()
        except unittest.SkipTest as skipped:  # the in-application runner has no skip (ScriptedLoadableModule.py:497-508)
            self.delayDisplay(f"WaveSeg self-test skipped: {skipped}")

    def _missingPackages(self) -> str:
        from WaveSegSlicerLib.dependencies import describe, requirements, unmet

        return describe(unmet(requirements()))

    def _editor(self, volumeNode, segmentationNode):
        editorWidget = slicer.qMRMLSegmentEditorWidget()
        editorWidget.setMRMLScene(slicer.mrmlScene)
        editorNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentEditorNode")
        editorWidget.setMRMLSegmentEditorNode(editorNode)
        editorWidget.setSegmentationNode(segmentationNode)
        editorWidget.setSourceVolumeNode(volumeNode)
        editorWidget.show()
        return editorWidget, editorNode

    def test_EffectInSliceViews(self):
        missing = self._missingPackages()
        if missing:
            self.skipTest("these Python packages are missing (install them from the WaveSeg module, not in a test):\n" + missing)
        from WaveSegSlicerLib import mrml_bridge
        from WaveSegSlicerLib.selftest_cases import MODEL, PROMPT_CASES, golden_mask, run_case_in_view, view_key, worker_held_until_cancel
        from waveseg.metrics import dice
        from waveseg.sample_data import SAMPLE_T1

        self.delayDisplay("Loading the embedded Colin27 sample under a rotated and shifted transform")
        volumeNode = slicer.util.loadVolume(str(SAMPLE_T1))
        transformNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
        toParent = vtk.vtkTransform()
        toParent.Translate(3.0, -12.0, 7.5)
        toParent.RotateZ(30)
        transformNode.SetMatrixTransformToParent(toParent.GetMatrix())
        volumeNode.SetAndObserveTransformNodeID(transformNode.GetID())
        segmentationNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode")
        segmentationNode.CreateDefaultDisplayNodes()
        segmentationNode.SetReferenceImageGeometryParameterFromVolumeNode(volumeNode)
        parameters = WaveSegSlicerLogic().getParameterNode()
        parameters.model, parameters.profile, parameters.device = MODEL, "", "cpu"
        editorWidget, editorNode = self._editor(volumeNode, segmentationNode)
        sliceWidget = slicer.app.layoutManager().sliceWidget("Red")
        interactor = sliceWidget.sliceView().interactor()
        segmentation = segmentationNode.GetSegmentation()

        def effect():
            editorWidget.setActiveEffectByName(EFFECT_NAME)
            return editorWidget.activeEffect().self()

        for case in PROMPT_CASES:
            self.delayDisplay(f"Prompt case {case.name}")
            segmentId = segmentation.AddEmptySegment("", case.name)
            editorNode.SetSelectedSegmentID(segmentId)
            waveseg = effect()
            run_case_in_view(case, waveseg, interactor, sliceWidget, volumeNode)
            self.assertTrue(view_key(waveseg, interactor, sliceWidget, "Return"), "Enter was not taken by the effect")
            score = dice(mrml_bridge.read_segment_mask(segmentationNode, segmentId, volumeNode), golden_mask(case))
            self.assertGreaterEqual(score, 0.99, f"{case.name}: Dice {score:.3f} with the golden mask")

        self.delayDisplay("A segment switched before Apply, with intensity masking on")
        first, second = segmentation.AddEmptySegment("", "first"), segmentation.AddEmptySegment("", "second")
        editorNode.SetSelectedSegmentID(first)
        waveseg = effect()
        run_case_in_view(PROMPT_CASES[0], waveseg, interactor, sliceWidget, volumeNode)
        editorNode.SetSelectedSegmentID(second)
        editorNode.SetSourceVolumeIntensityMask(True)
        editorNode.SetSourceVolumeIntensityMaskRange(40, 10000)
        view_key(waveseg, interactor, sliceWidget, "Return")
        editorNode.SetSourceVolumeIntensityMask(False)
        applied = mrml_bridge.read_segment_mask(segmentationNode, first, volumeNode)
        voxels = slicer.util.arrayFromVolume(volumeNode)
        self.assertTrue(applied.any() and (voxels[applied] >= 40).all(), "Apply ignored the intensity range")
        self.assertFalse(mrml_bridge.read_segment_mask(segmentationNode, second, volumeNode).any(), "Apply wrote into the switched-to segment")

        self.delayDisplay("Cancel during propagation")
        editorNode.SetSelectedSegmentID(second)
        waveseg = effect()
        run_case_in_view(PROMPT_CASES[0], waveseg, interactor, sliceWidget, volumeNode)
        qt.QTimer.singleShot(0, waveseg.cancelButton.click)  # fires in the first event pump of the propagation
        with worker_held_until_cancel(waveseg) as slices:
            view_key(waveseg, interactor, sliceWidget, "p")
        self.assertIsNone(waveseg.logic, "Cancel left the session open")
        self.assertEqual(len(slices), 1, "the propagation went on after Cancel")
        self.assertIsNone(slicer.mrmlScene.GetFirstNodeByName("WaveSeg preview"))
        editorWidget.setActiveEffect(None)
        self.delayDisplay("Test passed")

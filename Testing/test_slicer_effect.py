"""The WaveSeg Segment Editor effect as Slicer runs it: registered by Slicer's own loader code,
driven with mouse and key events in slice views, applied through the real Segment Editor logic.

The Slicer side is ``slicer_harness`` (each piece taken from Slicer v5.10.0's source and quoted
there); MRML, the Segment Editor logic (masking, overwrite, undo), the effect file, the model and
the worker thread are the real ones. Each Apply case compares voxels with the intended mask.
"""

from __future__ import annotations

import importlib
import threading
import types
from pathlib import Path

import numpy as np
import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core is part of the test extra")
vtk = pytest.importorskip("vtk")

import slicer_harness as harness  # noqa: E402
from WaveSegSlicerLib import model_catalog, mrml_bridge  # noqa: E402
from WaveSegSlicerLib.editor_grid import EditorGrid, image_array, image_of_mask, mask_on_grid  # noqa: E402
from WaveSegSlicerLib.mrml_support import load_volume, new_scene  # noqa: E402
from WaveSegSlicerLib.selftest_cases import (  # noqa: E402
    MODEL, PROMPT_CASES, aim_view, golden_mask, run_case_in_view, view_click, view_drag, view_key, worker_held_until_cancel, world_ras)
from waveseg.metrics import dice  # noqa: E402
from waveseg.sample_data import SAMPLE_T1  # noqa: E402

LIB_MODULES = sorted(p.stem for p in (harness.MODULE_DIR / "WaveSegSlicerLib").glob("*.py") if p.stem != "__init__")
BRAIN_BOX = ((20, 20, 8), (162, 198, 8))  # voxel corners of the self-test's brain box (slice k = 8)


class ModuleLogic:
    """``WaveSegSlicer.WaveSegSlicerLogic`` minus Slicer's parameter node (parameterNodeWrapper needs the
    Slicer application): the catalog and the shared model cache are the module's own code."""

    def __init__(self) -> None:
        self.parameters = types.SimpleNamespace(model=MODEL, profile="", device="cpu")

    def ensureDependencies(self) -> bool:
        from WaveSegSlicerLib.dependencies import requirements, unmet

        return not unmet(requirements())  # the test environment has every requirement

    def getParameterNode(self):
        return self.parameters

    def settings(self):
        p = self.parameters
        return p.model, p.profile or None, p.device

    def segmenter(self, *settings):
        return model_catalog.SEGMENTERS.get(*settings)

    def modelNames(self):
        return model_catalog.model_names()

    def profiles(self):
        return model_catalog.profiles()


class Editor:
    """A scene with the Colin27 sample, a segmentation, the Segment Editor logic, the effect registered
    as Slicer registers it, its options panel, one slice view and its interactor."""

    def __init__(self, monkeypatch, transform: np.ndarray | None = None, oversampling: int = 1,
                 transform_segmentation: bool = False) -> None:
        self.scene = new_scene()
        self.app = harness.install(monkeypatch, self.scene)
        self.volume = load_volume(self.scene, SAMPLE_T1, "colin27")
        if transform is not None:
            node = self.scene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
            node.SetMatrixTransformToParent(slicer.util.vtkMatrixFromArray(transform))
            self.volume.SetAndObserveTransformNodeID(node.GetID())
        self.segmentation = self.scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
        if transform_segmentation:
            self.segmentation.SetAndObserveTransformNodeID(self.volume.GetTransformNodeID())
        self.segmentation.CreateDefaultDisplayNodes()
        self.segmentation.SetReferenceImageGeometryParameterFromVolumeNode(self.volume)
        if oversampling > 1:
            self._oversample(oversampling)
        self.segment_a = self.segmentation.GetSegmentation().AddEmptySegment("", "a")
        self.segment_b = self.segmentation.GetSegmentation().AddEmptySegment("", "b")
        self.editor_node, self.logic = harness.new_editor(self.scene, self.segmentation, self.volume)
        self.editor_node.SetSelectedSegmentID(self.segment_a)
        self.scripted = harness.ScriptedEffect(self.logic)
        self.effect = harness.register_effect(self.scripted)
        self.module_logic = ModuleLogic()
        monkeypatch.setattr(self.effect, "moduleLogic", lambda: self.module_logic)
        self.effect.setupOptionsFrame()
        self.effect.activate()
        self.view = harness.SliceWidget(self.scene)
        self.interactor = vtk.vtkRenderWindowInteractor()

    def _oversample(self, factor: int) -> None:
        """The segmentation's geometry at ``factor`` times the volume's resolution (Segment Editor's
        "Specify geometry" with oversampling), as a serialised reference geometry."""
        image = slicer.vtkOrientedImageData()
        dims = self.volume.GetImageData().GetDimensions()
        image.SetDimensions(*(d * factor for d in dims))
        matrix = vtk.vtkMatrix4x4()
        self.volume.GetIJKToRASMatrix(matrix)
        ijk_to_ras = slicer.util.arrayFromVTKMatrix(matrix)
        fine = ijk_to_ras.copy()
        fine[:3, :3] /= factor
        fine[:3, 3] = (ijk_to_ras @ np.array([*(np.full(3, -0.5 + 0.5 / factor)), 1.0]))[:3]  # same outer edge
        image.SetImageToWorldMatrix(slicer.util.vtkMatrixFromArray(fine))
        geometry = slicer.vtkSegmentationConverter.SerializeImageGeometry(image)
        self.segmentation.GetSegmentation().SetConversionParameter(
            slicer.vtkSegmentationConverter.GetReferenceImageGeometryParameterName(), geometry)

    def box(self, ijk0=BRAIN_BOX[0], ijk1=BRAIN_BOX[1], axis: int = 0) -> None:
        aim_view(self.view.node, self.volume, axis, ijk0)
        view_drag(self.effect, self.interactor, self.view, world_ras(self.volume, ijk0), world_ras(self.volume, ijk1))

    def key(self, keysym: str, shift: bool = False) -> bool:
        return view_key(self.effect, self.interactor, self.view, keysym, shift=shift)

    def segment_on_volume_grid(self, segment_id: str) -> np.ndarray:
        """A segment resampled onto the volume's own voxels (through the transforms), as Slicer exports it."""
        return mrml_bridge.read_segment_mask(self.segmentation, segment_id, self.volume)

    def segment_on_editor_grid(self, segment_id: str) -> np.ndarray:
        """A segment on the editor's grid (e.g. the oversampled one), as selectedSegmentLabelmap() gives it."""
        self.editor_node.SetSelectedSegmentID(segment_id)
        return mask_on_grid(self.scripted.selectedSegmentLabelmap(), EditorGrid.of_image(self.scripted.defaultModifierLabelmap()))


@pytest.fixture
def editor(monkeypatch):
    made = Editor(monkeypatch)
    yield made
    made.effect.deactivate()


def reference_box_mask() -> np.ndarray:
    return golden_mask(PROMPT_CASES[0])  # "brain_box": the same box, without transforms


# -- loading ----------------------------------------------------------------------------------------
def test_registration_as_slicer_does_it_leaves_every_module_importable(monkeypatch):
    scene = new_scene()
    harness.install(monkeypatch, scene)
    editor_node, logic = harness.new_editor(scene, scene.AddNewNodeByClass("vtkMRMLSegmentationNode"),
                                            scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode"))
    scripted = harness.ScriptedEffect(logic)
    effect = harness.register_effect(scripted)
    effect.register()
    assert scripted.registered and scripted.name == "WaveSeg" and scripted.perSegment
    loaded = importlib.import_module(harness.EFFECT_FILE.parent.name)  # what sys.modules now holds under the folder's name
    assert loaded.__file__ == str(harness.EFFECT_FILE)
    for name in LIB_MODULES:  # every helper module of the extension still imports after registration
        importlib.import_module(f"WaveSegSlicerLib.{name}")
    effect.setupOptionsFrame()
    assert (effect.applyButton.text, effect.cancelButton.text, effect.propagateButton.text) == ("Apply", "Cancel", "Propagate")
    assert not effect.applyButton.enabled  # nothing to apply before a prompt
    assert "BackSpace" in effect.helpText() and effect.icon() is not None


def test_the_loader_replaces_a_package_named_like_the_effect_folder(monkeypatch, tmp_path):
    """Why the effect has its own package: an effect file inside WaveSegSlicerLib (the old layout)
    takes that package's place in sys.modules and every later helper import fails."""
    harness.install(monkeypatch, new_scene())
    lib = tmp_path / "WaveSegSlicerLib"
    lib.mkdir()
    (lib / "SegmentEditorEffect.py").write_text("class SegmentEditorEffect:\n    def __init__(self, scriptedEffect):\n        pass\n")
    for name in [n for n in importlib.sys.modules if n.split(".")[0] == "WaveSegSlicerLib"]:
        monkeypatch.delitem(importlib.sys.modules, name)  # as at Slicer's start-up: nothing imported yet
    harness.register_effect(harness.ScriptedEffect(slicer.vtkSlicerSegmentEditorLogic()), lib / "SegmentEditorEffect.py")
    with pytest.raises(ImportError, match="is not a package"):
        importlib.import_module("WaveSegSlicerLib.mrml_bridge")


def test_a_tuple_is_not_a_qpoint(editor):
    """PythonQt gives xyToRas no tuple -> QPoint conversion: the effect must use the Python helper."""
    with pytest.raises(ValueError, match="QPoint"):
        editor.scripted.xyToRas((10, 10), editor.view)
    assert len(editor.effect.xyToRas((10, 10), editor.view)) == 3


# -- prompts and Apply ---------------------------------------------------------------------------------
@pytest.mark.parametrize("case", PROMPT_CASES, ids=[c.name for c in PROMPT_CASES])
def test_prompt_table_in_a_slice_view_then_apply(editor, case):
    run_case_in_view(case, editor.effect, editor.interactor, editor.view, editor.volume)
    assert "failed" not in editor.effect.statusLabel.text
    assert editor.key("Return")
    assert "Applied to 'a'" in editor.effect.statusLabel.text
    assert dice(editor.segment_on_volume_grid(editor.segment_a), golden_mask(case)) >= 0.99
    assert editor.effect.logic is None and editor.effect.previewNode is None
    assert editor.scene.GetNodesByClass("vtkMRMLLabelMapVolumeNode").GetNumberOfItems() == 0


def test_preview_follows_the_session_and_is_never_saved(editor):
    editor.box()
    preview = editor.effect.previewNode
    assert preview is not None and not preview.GetSaveWithScene()
    segment_id = preview.GetSegmentation().GetSegmentIdBySegmentName("preview")
    shown = mrml_bridge.read_segment_mask(preview, segment_id, editor.volume)
    np.testing.assert_array_equal(shown, editor.effect.logic.mask)
    assert editor.key("p")  # propagate, then correct one slice: the preview keeps the other slices
    view_click(editor.effect, editor.interactor, editor.view, world_ras(editor.volume, (90, 30, 8)), positive=False)
    shown = mrml_bridge.read_segment_mask(preview, segment_id, editor.volume)
    assert shown.any(axis=(1, 2)).sum() > 1
    np.testing.assert_array_equal(shown, editor.effect.logic.mask)
    assert editor.app.progressDialogs[-1].deleted  # not left behind under the main window
    assert editor.key("c")  # Cancel: preview and prompts gone, the segment untouched
    assert editor.effect.previewNode is None and editor.scene.GetNodeByID(preview.GetID()) is None
    assert not editor.segment_on_volume_grid(editor.segment_a).any()


@pytest.mark.parametrize("rotation_deg", [0.0, 30.0])
def test_apply_under_a_parent_transform_lands_on_the_transformed_volume(monkeypatch, rotation_deg):
    a = np.deg2rad(rotation_deg)
    transform = np.eye(4)
    transform[:3, :3] = [[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]]
    transform[:3, 3] = (3.0, -12.0, 7.5)
    editor = Editor(monkeypatch, transform=transform)
    editor.box()
    assert "failed" not in editor.effect.statusLabel.text and "WaveSeg:" not in editor.effect.statusLabel.text
    editor.key("Return")
    assert dice(editor.segment_on_volume_grid(editor.segment_a), reference_box_mask()) >= 0.99
    editor.effect.deactivate()


def test_segmentation_under_the_volume_transform_and_its_preview(monkeypatch):
    transform = np.eye(4)
    transform[:3, 3] = (3.0, 0.0, -2.0)
    editor = Editor(monkeypatch, transform=transform, transform_segmentation=True)
    editor.box()
    assert editor.effect.previewNode.GetTransformNodeID() == editor.segmentation.GetTransformNodeID()  # drawn where the segment is
    editor.key("Return")
    assert dice(editor.segment_on_volume_grid(editor.segment_a), reference_box_mask()) >= 0.99
    editor.effect.deactivate()


def test_oversampled_segmentation_with_intensity_masking(monkeypatch):
    editor = Editor(monkeypatch, oversampling=2)
    editor.box()
    intended = editor.effect.logic.mask.copy()
    source = image_array(editor.scripted.sourceVolumeImageData())
    assert intended.shape == source.shape == tuple(2 * n for n in reference_box_mask().shape)  # the session works on the fine grid
    low, high = np.percentile(source[intended], [30, 100])
    editor.editor_node.SetSourceVolumeIntensityMask(True)
    editor.editor_node.SetSourceVolumeIntensityMaskRange(low, high)
    editor.key("Return")
    written = editor.segment_on_editor_grid(editor.segment_a)
    np.testing.assert_array_equal(written, intended & (source >= low) & (source <= high))
    assert "were outside the editable area or intensity range" in editor.effect.statusLabel.text
    editor.effect.deactivate()


def test_masking_that_excludes_everything_is_reported_not_claimed(editor):
    editor.box()
    editor.editor_node.SetSourceVolumeIntensityMask(True)
    editor.editor_node.SetSourceVolumeIntensityMaskRange(10000, 20000)  # no voxel of the T1 is that bright
    editor.key("Return")
    assert not editor.segment_on_volume_grid(editor.segment_a).any()
    assert "Nothing was applied" in editor.effect.statusLabel.text


def test_apply_keeps_untouched_slices_of_the_segment(editor):
    """Only the changed block is written: content on other slices (e.g. restored by Ctrl+Z while the
    preview was live) is left as it is."""
    editor.box()
    other = np.zeros(reference_box_mask().shape, bool)
    other[2, 50:60, 50:60] = True  # drawn into "a" after the session started, on a slice WaveSeg did not touch
    logic = slicer.vtkSlicerSegmentationsModuleLogic
    logic.SetBinaryLabelmapToSegment(image_of_mask(other, editor.effect.grid), editor.segmentation, editor.segment_a,
                                     logic.MODE_REPLACE, editor.effect.grid.extent)
    intended = editor.effect.logic.mask.copy()
    editor.key("Return")
    np.testing.assert_array_equal(editor.segment_on_volume_grid(editor.segment_a), intended | other)


@pytest.mark.parametrize("mode,erased", [("OverwriteAllSegments", True), ("OverwriteVisibleSegments", True), ("OverwriteNone", False)])
def test_each_overwrite_mode(editor, mode, erased):
    existing = np.zeros(reference_box_mask().shape, bool)
    existing[8, 100:120, 80:100] = True  # "b" inside the brain, where the box result goes
    logic = slicer.vtkSlicerSegmentationsModuleLogic
    editor.box()
    logic.SetBinaryLabelmapToSegment(image_of_mask(existing, editor.effect.grid), editor.segmentation, editor.segment_b,
                                     logic.MODE_REPLACE, editor.effect.grid.extent)
    editor.editor_node.SetOverwriteMode(getattr(slicer.vtkMRMLSegmentEditorNode, mode))
    intended = editor.effect.logic.mask.copy()
    editor.key("Return")
    np.testing.assert_array_equal(editor.segment_on_volume_grid(editor.segment_a), intended)
    b_after = editor.segment_on_volume_grid(editor.segment_b)
    np.testing.assert_array_equal(b_after, existing & ~intended if erased else existing)


def test_a_segment_switched_before_apply_gets_nothing(editor):
    editor.box()
    editor.editor_node.SetSelectedSegmentID(editor.segment_b)  # what q / w or a click in the segment list does
    assert "belong to segment 'a'" in editor.effect.statusLabel.text
    intended = editor.effect.logic.mask.copy()
    editor.key("Return")
    np.testing.assert_array_equal(editor.segment_on_volume_grid(editor.segment_a), intended)
    assert not editor.segment_on_volume_grid(editor.segment_b).any()
    assert editor.editor_node.GetSelectedSegmentID() == editor.segment_a


def test_apply_is_one_undo_step(editor):
    editor.box()
    editor.key("Return")
    assert editor.segment_on_volume_grid(editor.segment_a).any()
    assert editor.logic.CanUndo()
    editor.logic.Undo()  # what Ctrl+Z in the Segment Editor runs
    assert not editor.segment_on_volume_grid(editor.segment_a).any()


def test_declining_the_installer_stops_before_anything_imports_torch(editor, monkeypatch):
    """The first prompt asks for the packages before importing what needs torch (with torch absent,
    any earlier import would fail with "No module named 'torch'" and the installer never show)."""
    for name in [n for n in importlib.sys.modules if n == "torch" or n.startswith(("torch.", "waveseg.volume", "WaveSegSlicerLib.volume_logic"))]:
        monkeypatch.delitem(importlib.sys.modules, name)
    monkeypatch.setitem(importlib.sys.modules, "torch", None)  # as on a Slicer without the PyTorch extension's torch
    monkeypatch.setattr(editor.module_logic, "ensureDependencies", lambda: False)  # the user pressed Cancel
    editor.box()
    assert "packages are not installed" in editor.effect.statusLabel.text
    assert editor.effect.logic is None


def test_cancel_while_the_model_loads_leaves_no_session(editor, monkeypatch):
    """Esc or another effect while the first prompt loads the model (events are pumped meanwhile):
    the load's result is discarded, no session or preview appears afterwards."""
    loading = editor.module_logic.segmenter

    def load_then_switch_effect(*settings):
        segmenter = loading(*settings)
        importlib.sys.modules["qt"].QTimer.singleShot(0, editor.effect.deactivate)  # what Esc does, in the next pump
        release.wait()
        return segmenter

    release = threading.Event()
    monkeypatch.setattr(editor.module_logic, "segmenter", load_then_switch_effect)
    editor.app.hooks.append(lambda: release.set() if editor.effect.generation else None)
    editor.box()
    assert editor.effect.logic is None and editor.effect.previewNode is None
    assert "cancelled while the model was loading" in editor.effect.statusLabel.text


def test_the_worker_side_needs_no_mrml():
    """What runs on the model worker imports neither slicer nor vtk: it cannot touch MRML."""
    import ast

    tree = ast.parse((harness.MODULE_DIR / "WaveSegSlicerLib" / "volume_logic.py").read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])}
    assert imported and not imported & {"slicer", "vtk", "qt", "WaveSegSlicerLib"}


def test_a_forgotten_model_is_loaded_again():
    first = model_catalog.SEGMENTERS.get(MODEL, None, "cpu")
    assert model_catalog.SEGMENTERS.get(MODEL, None, "cpu") is first
    model_catalog.SEGMENTERS.forget()  # after a profile of the same name was re-adapted, imported or deleted
    assert model_catalog.SEGMENTERS.loaded is None
    assert model_catalog.SEGMENTERS.get(MODEL, None, "cpu") is not first


def test_a_press_in_another_view_leaves_no_box_behind(editor):
    other = harness.SliceWidget(editor.scene, "Yellow")
    editor.interactor.SetEventInformation(10, 10, 0, 0, "\0", 0, None)
    assert editor.effect.processInteractionEvents(editor.interactor, vtk.vtkCommand.LeftButtonPressEvent, other)
    editor.interactor.SetEventInformation(50, 60, 0, 0, "\0", 0, None)
    assert not editor.effect.processInteractionEvents(editor.interactor, vtk.vtkCommand.MouseMoveEvent, editor.view)
    assert editor.effect.press is None  # the release never came back to "Yellow": no rubber band follows the mouse


# -- keys, undo of prompts, busy and cancel ----------------------------------------------------------------
# qMRMLSegmentEditorWidget::installKeyboardShortcuts (v5.10.0 qMRMLSegmentEditorWidget.cxx:2300-2377) and
# the slice view's own keys (vtkMRMLSliceIntersectionWidget.cxx:168-196): none may be an effect key.
SEGMENT_EDITOR_KEYS = {*"1234567890", "Escape", "space", "z", "y", "q", "w", "slash", "asterisk", "comma", "period",
                       "greater", "less", "i"}
SLICE_VIEW_KEYS = {"g", "t", "Right", "Left", "Up", "Down", "f", "b", "v", "V", "bracketleft", "bracketright",
                   "braceleft", "braceright", "r"}


def test_effect_keys_are_not_segment_editor_or_slice_view_keys(editor):
    effect_keys = {keysym for keysym, _shift in importlib.sys.modules[harness.EFFECT_FILE.parent.name].KEYS}
    assert effect_keys and not effect_keys & (SEGMENT_EDITOR_KEYS | SLICE_VIEW_KEYS)
    assert not editor.key("z") and not editor.key("Escape")  # left to the Segment Editor


def test_backspace_undoes_and_shift_backspace_redoes_a_prompt(editor):
    editor.box()
    after_box = editor.effect.logic.mask.copy()
    view_click(editor.effect, editor.interactor, editor.view, world_ras(editor.volume, (90, 30, 8)), positive=False)
    after_click = editor.effect.logic.mask.copy()
    assert not np.array_equal(after_click, after_box)
    assert editor.key("BackSpace")
    np.testing.assert_array_equal(editor.effect.logic.mask, after_box)
    assert editor.key("BackSpace", shift=True)
    np.testing.assert_array_equal(editor.effect.logic.mask, after_click)


def test_prompts_and_model_choice_are_locked_while_the_model_runs(monkeypatch, editor):
    editor.box()
    seen = {}

    def during_run():  # a user's click and Apply while the propagation runs
        if "busy" not in seen and editor.effect.busy():
            before = editor.effect.logic.mask.copy()
            view_click(editor.effect, editor.interactor, editor.view, world_ras(editor.volume, (90, 30, 8)))
            editor.effect.applyButton.click()
            seen["busy"] = (editor.effect.statusLabel.text, np.array_equal(before, editor.effect.logic.mask),
                            editor.effect.applyButton.enabled, editor.effect.modelComboBox.enabled)

    editor.app.hooks.append(during_run)
    slow_down(monkeypatch, editor, lambda: "busy" in seen)
    editor.key("p")
    status, unchanged, apply_enabled, combo_enabled = seen["busy"]
    assert "still working" in status and unchanged and not apply_enabled and not combo_enabled
    assert editor.segment_on_volume_grid(editor.segment_a).sum() == 0  # Apply did nothing while busy


def slow_down(monkeypatch, editor, until) -> None:
    """Hold the worker at each model call of a propagation until ``until()`` is true at a pump of the
    main thread, so a test acts during a propagation whatever the machine's speed (no sleeps)."""
    release = threading.Event()
    segmenter = editor.effect.logic.session.segmenter
    original = segmenter.predict_encoded
    monkeypatch.setattr(segmenter, "predict_encoded", lambda *a, **k: (release.wait(), original(*a, **k))[1])
    editor.app.hooks.append(lambda: release.set() if until() else None)


def test_cancel_during_propagation_stops_it_and_closes_the_session(editor):
    editor.box()
    pressed = {}

    def press_cancel():
        if not pressed and editor.effect.busy():
            pressed["cancel"] = True
            editor.effect.cancelButton.click()

    editor.app.hooks.append(press_cancel)
    with worker_held_until_cancel(editor.effect) as calls:
        editor.key("p")
    assert pressed and editor.effect.logic is None and editor.effect.previewNode is None
    assert "cancelled" in editor.effect.statusLabel.text
    assert len(calls) == 1  # the slice in flight when Cancel was pressed, then it stopped
    assert calls[0].startswith("waveseg-model")  # the model ran on the worker thread
    assert not editor.segment_on_volume_grid(editor.segment_a).any()


def test_progress_dialog_cancel_stops_propagation_and_keeps_the_prompts(editor):
    editor.box()
    after_box = editor.effect.logic.mask.copy()
    stopped = {}

    def press_dialog_cancel():
        if not stopped and editor.effect.busy() and editor.app.progressDialogs:
            stopped["cancel"] = True
            editor.app.progressDialogs[-1].cancel()

    editor.app.hooks.append(press_dialog_cancel)
    with worker_held_until_cancel(editor.effect):
        editor.key("p")
    assert stopped and editor.effect.logic is not None and "stopped by you" in editor.effect.statusLabel.text
    assert editor.app.progressDialogs[-1].closed
    assert editor.key("BackSpace")  # the stopped propagation is one undo step
    np.testing.assert_array_equal(editor.effect.logic.mask, after_box)


def test_model_choice_in_the_effect_panel_sets_the_module_parameters(editor):
    assert editor.effect.modelComboBox.currentText == MODEL
    editor.effect.modelComboBox.choose("hrmedseg-lite")
    assert editor.module_logic.parameters.model == "hrmedseg-lite"
    editor.box()
    assert not editor.effect.modelComboBox.enabled  # the session's embeddings belong to one model
    assert model_catalog.SEGMENTERS.loaded == ("hrmedseg-lite", None, "cpu")


def test_a_profile_applies_only_to_the_segment_named_for_its_structure(editor, monkeypatch, tmp_path):
    from profile_factory import save_scoped_profile

    monkeypatch.setenv("WAVESEG_PROFILES_DIR", str(tmp_path / "profiles"))
    save_scoped_profile(MODEL, "A", "a-site")  # made from a segment named "A": the segment "a" is that structure
    editor.effect.syncModelChoice()
    assert editor.effect.profileComboBox.currentText == "(automatic: by segment name)"
    editor.box()
    assert editor.effect.profile == "a-site" and model_catalog.SEGMENTERS.loaded == (MODEL, "a-site", "cpu")
    assert "(profile a-site)" in editor.effect.statusLabel.text  # never applied silently
    editor.effect.onCancel()
    editor.editor_node.SetSelectedSegmentID(editor.segment_b)
    editor.box()
    assert editor.effect.profile is None and model_catalog.SEGMENTERS.loaded == (MODEL, None, "cpu")
    assert "profile" not in editor.effect.statusLabel.text
    editor.effect.onCancel()
    editor.effect.profileComboBox.choose("(none)")  # no profile for any segment
    editor.editor_node.SetSelectedSegmentID(editor.segment_a)
    editor.box()
    assert editor.effect.profile is None and model_catalog.SEGMENTERS.loaded == (MODEL, None, "cpu")


def test_harness_offers_only_what_slicer_offers():
    """The stand-in ``scriptedEffect`` has no method that Slicer's C++ effect lacks."""
    import json

    table = json.loads((Path(__file__).parent / "data" / "slicer_api_v5.10.0.json").read_text())["scriptedEffect"]
    offered = {name for name, value in vars(harness.ScriptedEffect).items() if not name.startswith("_") and callable(value)}
    assert offered and offered <= set(table["methods"]), sorted(offered - set(table["methods"]))
    enums = {name for name in vars(harness.ScriptedEffect) if name.startswith("ModificationMode")}
    assert enums and enums <= set(table["enums"]["ModificationMode"]["values"])


def test_the_module_registers_the_effect_and_its_self_test_passes(monkeypatch):
    """WaveSegSlicer.py itself on Slicer's base classes: the module registers the effect at
    startupCompleted, and WaveSegSlicerTest (what Slicer's ctest runs) passes with view events, a
    transformed volume, masking, a segment switch and Cancel during propagation."""
    scene = new_scene()
    app = harness.install(monkeypatch, scene)
    harness.install_module(monkeypatch, scene, app)
    module = importlib.import_module("WaveSegSlicer")
    module.WaveSegSlicer(types.SimpleNamespace())
    assert not harness.REGISTERED_EFFECTS  # nothing happens before Slicer has started
    app.emit("startupCompleted()")
    assert [effect.name for effect in harness.REGISTERED_EFFECTS] == ["WaveSeg"]
    test = module.WaveSegSlicerTest("test_EffectInSliceViews")
    test.setUp()
    test.test_EffectInSliceViews()

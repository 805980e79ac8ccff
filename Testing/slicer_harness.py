"""What Slicer does to a scripted Segment Editor effect, reproduced around real MRML (slicer-core).

Real Slicer cannot run here. The parts of it that touch our effect are reproduced from its source
(Slicer v5.10.0, commit a2b6d082be04274a849884fbb1e85634a9df90fb), each quoted where it matters:

- ``register_effect``: the registration that ``qSlicerSegmentEditorScriptedEffect::setPythonSource``
  performs (``Modules/Loadable/Segmentations/EditorEffects/qSlicerSegmentEditorScriptedEffect.cxx:146-176``),
  running the exact Python string of ``qSlicerScriptedUtils::loadSourceAsModule``
  (``Base/QTCore/qSlicerScriptedUtils.cxx:45-50``).
- ``ScriptedEffect``: the C++ ``qSlicerSegmentEditorAbstractEffect`` calls our effect makes, each
  forwarding to the real ``vtkSlicerSegmentEditorLogic`` from slicer-core exactly as the C++ does
  (``qSlicerSegmentEditorAbstractEffect.cxx:243-305, 943-1027`` -> ``qMRMLSegmentEditorWidget.cxx:1978-1989``).
  ``xyToRas`` refuses anything but a ``QPoint``, as PythonQt does (no tuple -> QPoint conversion).
- ``AbstractScriptedSegmentEditorEffect``: the base class's helpers (``AbstractScriptedSegmentEditorEffect.py:49-98``).
- ``qt``: a PythonQt-style stand-in with only the widgets the effect builds (properties as
  attributes, ``connect("signal()", slot)``); ``QProgressDialog.close()`` emits ``canceled()``
  as Qt's ``QProgressDialog::closeEvent`` does.
- Slice views: a real ``vtkMRMLSliceNode`` (its XY-to-RAS matrix is Slicer's) and a real
  ``vtkRenderWindowInteractor`` carrying event positions, modifiers and key symbols.
- ``slicer.app.processEvents``: fires the stand-in QTimers and a test's hooks, as the pump the
  model worker's caller runs every 30 ms.
Everything that is not Slicer's is real: our effect file, WaveSegSlicerLib, the model and MRML.
"""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path
from typing import Callable

import numpy as np
import vtk

import slicer

MODULE_DIR = Path(__file__).resolve().parent.parent / "WaveSegSlicer"
REGISTERED_EFFECTS: list = []  # the effect factory's list (qSlicerSegmentEditorEffectFactory)
EFFECT_FILE = MODULE_DIR / "SegmentEditorWaveSegLib" / "SegmentEditorEffect.py"


# -- qt (PythonQt conventions) ------------------------------------------------------------------
class QObject:
    def __init__(self, *args) -> None:
        self._slots: dict[str, list[Callable]] = {}
        self._blocked = False
        self.enabled, self.toolTip, self.objectName = True, "", ""

    def connect(self, signal: str, slot: Callable) -> None:
        self._slots.setdefault(signal, []).append(slot)

    def emit(self, signal: str, *args) -> None:
        if not self._blocked:
            for slot in list(self._slots.get(signal, [])):
                slot(*args)

    def blockSignals(self, block: bool) -> bool:
        previous, self._blocked = self._blocked, bool(block)
        return previous


class QWidget(QObject):
    def setLayout(self, layout) -> None:
        self.layout = layout


class QLabel(QWidget):
    def __init__(self, text: str = "") -> None:
        super().__init__()
        self.text, self.wordWrap = text, False


class QPushButton(QWidget):
    def __init__(self, text: str = "") -> None:
        super().__init__()
        self.text = text

    def click(self) -> None:
        if self.enabled:  # a disabled button takes no clicks
            self.emit("clicked()")


class QCheckBox(QPushButton):
    checked = False


class QComboBox(QWidget):
    def __init__(self) -> None:
        super().__init__()
        self._items: list[tuple[str, object]] = []
        self.currentIndex = -1

    def addItem(self, text: str, data=None) -> None:
        self._items.append((text, data))
        if self.currentIndex < 0:
            self.setCurrentIndex(0)

    def clear(self) -> None:
        self._items, self.currentIndex = [], -1

    def findData(self, data) -> int:
        return next((n for n, (_t, d) in enumerate(self._items) if d == data), -1)

    def findText(self, text: str) -> int:
        return next((n for n, (t, _d) in enumerate(self._items) if t == text), -1)

    def itemData(self, index: int):
        return self._items[index][1]

    def setCurrentIndex(self, index: int) -> None:
        if index != self.currentIndex:
            self.currentIndex = index
            self.emit("currentIndexChanged(int)", index)

    @property
    def currentText(self) -> str:
        return self._items[self.currentIndex][0] if self.currentIndex >= 0 else ""

    def choose(self, text: str) -> None:
        """What a user's pick in the list does."""
        if self.enabled:
            self.setCurrentIndex(self.findText(text))


class QLineEdit(QWidget):
    def __init__(self, text: str = "") -> None:
        super().__init__()
        self.text, self.placeholderText = text, ""

    def type(self, text: str) -> None:
        """What a user's typing then leaving the field does."""
        if self.enabled:
            self.text = text
            self.emit("editingFinished()")


class QSettings:
    """``qt.QSettings()``: Slicer's user settings file (one dict per test, reset by ``install``)."""

    store: dict = {}

    def value(self, key: str, default=None):
        return self.store.get(key, default)

    def setValue(self, key: str, value) -> None:
        self.store[key] = value

    def contains(self, key: str) -> bool:
        return key in self.store


class QHBoxLayout(QObject):
    def addWidget(self, widget) -> None:
        pass


class QTimer(QObject):
    running: list["QTimer"] = []
    single_shots: list[Callable] = []  # run at the next processEvents, as a 0 ms single shot is

    @staticmethod
    def singleShot(msec: int, slot: Callable) -> None:
        QTimer.single_shots.append(slot)

    def start(self, interval_ms: int = 0) -> None:
        QTimer.running.append(self)

    def stop(self) -> None:
        if self in QTimer.running:
            QTimer.running.remove(self)


class QProgressDialog(QWidget):
    def __init__(self) -> None:
        super().__init__()
        self.value, self.closed = 0, False

    def close(self) -> None:
        self.closed = True
        self.emit("canceled()")  # QProgressDialog::closeEvent emits canceled() too

    def cancel(self) -> None:
        """The user's click on the dialog's Cancel button."""
        self.emit("canceled()")

    def deleteLater(self) -> None:
        self.deleted = True


class QPoint:
    def __init__(self, x: int, y: int) -> None:
        if not (isinstance(x, (int, np.integer)) and isinstance(y, (int, np.integer))):
            raise TypeError("QPoint(int, int)")
        self._xy = (int(x), int(y))

    def x(self) -> int:
        return self._xy[0]

    def y(self) -> int:
        return self._xy[1]


class QVector3D:
    def __init__(self, x: float, y: float, z: float) -> None:
        self._v = (float(x), float(y), float(z))

    def x(self) -> float:
        return self._v[0]

    def y(self) -> float:
        return self._v[1]

    def z(self) -> float:
        return self._v[2]


def qt_module() -> types.ModuleType:
    qt = types.ModuleType("qt")
    for cls in (QObject, QWidget, QLabel, QPushButton, QCheckBox, QComboBox, QLineEdit, QSettings, QHBoxLayout, QTimer, QPoint, QVector3D):
        setattr(qt, cls.__name__, cls)
    qt.QIcon = lambda *args: object()
    qt.Qt = types.SimpleNamespace(WaitCursor=3)
    qt.QApplication = types.SimpleNamespace(setOverrideCursor=lambda cursor: None, restoreOverrideCursor=lambda: None)
    return qt


# -- Slicer's effect base class and the C++ effect ---------------------------------------------------
class AbstractScriptedSegmentEditorEffect:
    """The helpers of Slicer's base class that our effect uses (AbstractScriptedSegmentEditorEffect.py:49-88)."""

    def __init__(self, scriptedEffect) -> None:
        self.scriptedEffect = scriptedEffect

    def register(self) -> None:
        # slicer.qSlicerSegmentEditorEffectFactory.instance().registerEffect(self.scriptedEffect) (:52-54)
        self.scriptedEffect.registered = True
        REGISTERED_EFFECTS.append(self.scriptedEffect)

    def cleanup(self) -> None:
        pass

    def rasToXy(self, ras, viewWidget):
        xyPoint = self.scriptedEffect.rasToXy(QVector3D(ras[0], ras[1], ras[2]), viewWidget)
        return [xyPoint.x(), xyPoint.y()]

    def xyToRas(self, xy, viewWidget):
        rasVector = self.scriptedEffect.xyToRas(QPoint(xy[0], xy[1]), viewWidget)
        return [rasVector.x(), rasVector.y(), rasVector.z()]


class SliceWidget:
    """A slice view: ``className()``, ``sliceLogic().GetSliceNode()`` (a real vtkMRMLSliceNode), ``sliceView()``."""

    def __init__(self, scene, name: str = "Red", size_px: int = 600) -> None:
        slicer.vtkMRMLSliceNode.AddDefaultSliceOrientationPresets(scene)  # as Slicer's application logic does for its views
        self.node = scene.AddNewNodeByClass("vtkMRMLSliceNode", name)  # copies the scene's default node, with the presets
        self.node.SetLayoutName(name)
        self.node.SetDimensions(size_px, size_px, 1)
        self.node.SetFieldOfView(250.0, 250.0, 1.0)  # about 0.4 mm per pixel, as a laptop's slice view
        self.renders = 0
        self._interactor = vtk.vtkRenderWindowInteractor()  # carries positions, modifiers and key symbols

    def className(self) -> str:
        return "qMRMLSliceWidget"

    def sliceLogic(self):
        return types.SimpleNamespace(GetSliceNode=lambda: self.node)

    def sliceView(self):
        return types.SimpleNamespace(scheduleRender=self._render, interactor=lambda: self._interactor)

    def _render(self) -> None:
        self.renders += 1


class ScriptedEffect:
    """``qSlicerSegmentEditorScriptedEffect`` for one effect, over a real ``vtkSlicerSegmentEditorLogic``.

    Only the C++ methods our effect calls exist here (a test checks each against Slicer's
    header table), and each does what the C++ does.
    """

    # the C++ enum mirrors the logic's and is static_cast to it (qSlicerSegmentEditorAbstractEffect.cxx:302)
    ModificationModeSet = slicer.vtkSlicerSegmentEditorLogic.ModificationModeSet
    ModificationModeAdd = slicer.vtkSlicerSegmentEditorLogic.ModificationModeAdd
    ModificationModeRemove = slicer.vtkSlicerSegmentEditorLogic.ModificationModeRemove

    def __init__(self, logic=None) -> None:
        self.logic = logic  # vtkSlicerSegmentEditorLogic, which qMRMLSegmentEditorWidget owns and forwards to
        self.name, self.perSegment, self.requireSegments = "", False, False
        self.optionsWidgets: list = []
        self.actors: list = []
        self.registered = False
        self._self = None

    def self(self):
        return self._self

    def setPythonSource(self, path: str) -> bool:
        register_effect(self, Path(path))
        return self._self is not None

    def parameterSetNode(self):
        return self.logic.GetSegmentEditorNode()

    def addOptionsWidget(self, widget) -> None:
        self.optionsWidgets.append(widget)

    def addLabeledOptionsWidget(self, label: str, widget):
        self.optionsWidgets.append(widget)
        return widget

    def addActor2D(self, viewWidget, actor) -> None:
        self.actors.append(actor)

    def removeActor2D(self, viewWidget, actor) -> None:
        self.actors.remove(actor)

    def xyToRas(self, xy, viewWidget):
        if not isinstance(xy, QPoint):  # PythonQt: the only overload Python reaches is xyToRas(QPoint, qMRMLSliceWidget*)
            raise ValueError("Could not find matching overload for given arguments: xyToRas(QPoint, qMRMLSliceWidget*)")
        ras = [0.0, 0.0, 0.0]
        slicer.vtkSlicerSegmentEditorLogic.XyToRas([float(xy.x()), float(xy.y())], ras, viewWidget.node)
        return QVector3D(*ras)

    def rasToXy(self, ras, viewWidget):
        # vtkSlicerSegmentEditorLogic::RasToXy (vtkSlicerSegmentEditorLogic.cxx:2136-2156): XYToRAS
        # inverted, then static_cast<int> (truncation); not wrapped in slicer-core, so written here
        rasToXy = vtk.vtkMatrix4x4()
        vtk.vtkMatrix4x4.Invert(viewWidget.node.GetXYToRAS(), rasToXy)
        x, y, _z, _w = rasToXy.MultiplyPoint([ras.x(), ras.y(), ras.z(), 1.0])
        return QPoint(int(x), int(y))

    def confirmCurrentSegmentVisible(self) -> int:
        return 1 if self.logic.IsSelectedSegmentVisible() else 0  # Slicer asks to show a hidden one; the tests keep it visible

    def sourceVolumeImageData(self):
        return self.logic.GetAlignedSourceVolume() if self.logic.UpdateAlignedSourceVolume() else None

    def defaultModifierLabelmap(self):
        return self.logic.GetModifierLabelmap() if self.logic.ResetModifierLabelmapToDefault() else None

    def selectedSegmentLabelmap(self):
        return self.logic.GetSelectedSegmentLabelmap() if self.logic.UpdateSelectedSegmentLabelmap() else None

    def saveStateForUndo(self) -> None:
        self.logic.SaveStateForUndo()

    def modifySelectedSegmentByLabelmap(self, labelmap, mode, extent=None, bypassMasking=False) -> None:
        if isinstance(extent, bool):  # the (labelmap, mode, bypassMasking) overload
            extent, bypassMasking = None, extent
        if extent is not None and len(extent) != 6:
            raise ValueError("extent must have 6 int values")
        editor = self.parameterSetNode()
        self.modifySegmentByLabelmap(editor.GetSegmentationNode(), editor.GetSelectedSegmentID() or "", labelmap, mode,
                                     extent, bypassMasking)

    def modifySegmentByLabelmap(self, segmentationNode, segmentID, labelmap, mode, extent=None, bypassMasking=False) -> None:
        self.logic.ModifySegmentByLabelmap(segmentationNode, segmentID, labelmap, mode,
                                           tuple(extent) if extent is not None else (0, -1, 0, -1, 0, -1),
                                           self.perSegment, bypassMasking)


# -- registration and the running application ---------------------------------------------------------
def register_effect(scripted_effect: ScriptedEffect, path: Path = EFFECT_FILE):
    """Register our effect as ``qSlicerSegmentEditorScriptedEffect::setPythonSource`` does; returns its instance."""
    module_name = path.parent.name  # "Use parent directory name as module name" (:146-149)
    class_name = "SegmentEditorEffect"
    module = sys.modules.get(module_name)
    if not (module and hasattr(module, class_name)):  # "Get actual module from sys.modules" (:162-171)
        # the exact string qSlicerScriptedUtils::loadSourceAsModule runs (qSlicerScriptedUtils.cxx:45-50)
        exec(f"import importlib.util;import sys;spec = importlib.util.spec_from_file_location({module_name!r}, {str(path)!r});"
             f"module = importlib.util.module_from_spec(spec);sys.modules[{module_name!r}] = module;spec.loader.exec_module(module)", {})
        module = sys.modules[module_name]
    scripted_effect._self = getattr(module, class_name)(scripted_effect)
    return scripted_effect._self


class Application:
    """``slicer.app``: ``processEvents`` fires running timers and the test's hooks."""

    def __init__(self) -> None:
        self.hooks: list[Callable[[], None]] = []
        self.pumped = 0
        self.signals: dict[str, list[Callable]] = {}
        self.views: dict[str, SliceWidget] = {}

    def processEvents(self) -> None:
        self.pumped += 1
        for timer in list(QTimer.running):
            timer.emit("timeout()")
        while QTimer.single_shots:
            QTimer.single_shots.pop(0)()
        for hook in list(self.hooks):
            hook()

    def connect(self, signal: str, slot: Callable) -> None:
        self.signals.setdefault(signal, []).append(slot)

    def emit(self, signal: str) -> None:
        for slot in self.signals.get(signal, []):
            slot()

    def layoutManager(self):
        scene = slicer.mrmlScene
        return types.SimpleNamespace(sliceWidget=lambda name: self.views.setdefault(name, SliceWidget(scene, name)))

    def testingEnabled(self) -> bool:
        return True


def install(monkeypatch, scene) -> Application:
    """Put the stand-ins where the effect imports them (undone by ``monkeypatch`` after the test)."""
    app = Application()
    monkeypatch.setitem(sys.modules, "qt", qt_module())
    effects = types.ModuleType("SegmentEditorEffects")
    effects.AbstractScriptedSegmentEditorEffect = AbstractScriptedSegmentEditorEffect
    monkeypatch.setitem(sys.modules, "SegmentEditorEffects", effects)
    monkeypatch.delitem(sys.modules, EFFECT_FILE.parent.name, raising=False)
    monkeypatch.setattr(slicer, "app", app, raising=False)
    monkeypatch.setattr(slicer, "mrmlScene", scene, raising=False)
    monkeypatch.setattr(slicer, "qSlicerSegmentEditorAbstractEffect", ScriptedEffect, raising=False)
    monkeypatch.setattr(slicer.util, "mainWindow", lambda: types.SimpleNamespace(cursor=None))
    dialogs: list[QProgressDialog] = []
    app.progressDialogs = dialogs

    def createProgressDialog(labelText: str = "", maximum: int = 100, **kwargs) -> QProgressDialog:
        dialogs.append(QProgressDialog())
        return dialogs[-1]

    monkeypatch.setattr(slicer.util, "createProgressDialog", createProgressDialog)
    monkeypatch.setattr(QTimer, "running", [])
    monkeypatch.setattr(QTimer, "single_shots", [])
    monkeypatch.setattr(QSettings, "store", {})
    monkeypatch.setattr(sys.modules[__name__], "REGISTERED_EFFECTS", [])
    monkeypatch.syspath_prepend(str(MODULE_DIR))  # the qt-scripted-modules folder is on sys.path in Slicer
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    return app


def new_editor(scene, segmentation_node, volume_node):
    """A Segment Editor parameter node and logic on this scene, as qMRMLSegmentEditorWidget sets them up."""
    if not scene.IsNodeClassRegistered("vtkMRMLSegmentEditorNode"):
        scene.RegisterNodeClass(slicer.vtkMRMLSegmentEditorNode())
    editor_node = scene.AddNewNodeByClass("vtkMRMLSegmentEditorNode")
    logic = slicer.vtkSlicerSegmentEditorLogic()
    logic.SetMRMLScene(scene)
    logic.SetSegmentEditorNode(editor_node)
    editor_node.SetAndObserveSegmentationNode(segmentation_node)
    editor_node.SetAndObserveSourceVolumeNode(volume_node)
    return editor_node, logic


# -- the module's Slicer base classes, for running WaveSegSlicer.py itself ------------------------------
class ParameterNodeWrapper:
    """``slicer.parameterNodeWrapper`` for the field types the module uses (str, float, nodes): each
    field is a parameter of the real vtkMRMLScriptedModuleNode, so two wrappers of one node agree."""

    def __init__(self, fields: dict, node) -> None:
        object.__setattr__(self, "_fields", fields)
        object.__setattr__(self, "_node", node)

    def __getattr__(self, name: str):
        default = self._fields[name]
        if isinstance(default, type):  # a node reference
            return self._node.GetNodeReference(name)
        value = self._node.GetParameter(name)
        return type(default)(value) if value != "" else default

    def __setattr__(self, name: str, value) -> None:
        if isinstance(self._fields[name], type):
            self._node.SetNodeReferenceID(name, value.GetID() if value else None)
        else:
            self._node.SetParameter(name, str(value))


def parameter_node_wrapper(cls):
    import typing

    fields = {}
    for name, annotation in typing.get_type_hints(cls, include_extras=True).items():
        base = typing.get_args(annotation)[0] if typing.get_origin(annotation) is typing.Annotated else annotation
        fields[name] = getattr(cls, name, base)  # the default, or the node class of a reference
    return lambda node: ParameterNodeWrapper(fields, node)


class ScriptedLoadableModuleLogic:
    def getParameterNode(self):
        """The module's singleton vtkMRMLScriptedModuleNode (ScriptedLoadableModule.py getParameterNode)."""
        node = slicer.mrmlScene.GetSingletonNode("WaveSegSlicer", "vtkMRMLScriptedModuleNode")
        if node is None:
            node = slicer.vtkMRMLScriptedModuleNode()
            node.SetSingletonTag("WaveSegSlicer")
            node = slicer.mrmlScene.AddNode(node)
        return node


class SegmentEditorWidget:
    """``qMRMLSegmentEditorWidget`` as far as the self-test drives it: effects are clones of the
    registered ones (``clone()``), set up once, then activated and deactivated."""

    def __init__(self) -> None:
        self.active = None
        self.clones: dict[str, ScriptedEffect] = {}

    def setMRMLScene(self, scene) -> None:
        self.scene = scene

    def setMRMLSegmentEditorNode(self, node) -> None:
        self.logic = slicer.vtkSlicerSegmentEditorLogic()
        self.logic.SetMRMLScene(self.scene)
        self.logic.SetSegmentEditorNode(node)
        self.node = node

    def setSegmentationNode(self, node) -> None:
        self.node.SetAndObserveSegmentationNode(node)

    def setSourceVolumeNode(self, node) -> None:
        self.node.SetAndObserveSourceVolumeNode(node)

    def show(self) -> None:
        pass

    def setActiveEffectByName(self, name: str) -> None:
        if self.active is not None and self.active.name == name:
            return
        if name not in self.clones:
            registered = next(e for e in REGISTERED_EFFECTS if e.name == name)
            clone = registered.self().clone()
            clone.logic = self.logic
            clone.self().setupOptionsFrame()
            self.clones[name] = clone
        self.setActiveEffect(self.clones[name])

    def setActiveEffect(self, effect) -> None:
        if self.active is not None:
            self.active.self().deactivate()
        self.active = effect
        if effect is not None:
            effect.self().activate()

    def activeEffect(self):
        return self.active


def install_module(monkeypatch, scene, app: Application) -> None:
    """Make WaveSegSlicer.py importable: Slicer's Python base classes for scripted modules."""
    import unittest

    loadable = types.ModuleType("slicer.ScriptedLoadableModule")
    loadable.ScriptedLoadableModule = type("ScriptedLoadableModule", (), {"__init__": lambda self, parent: setattr(self, "parent", parent)})
    loadable.ScriptedLoadableModuleWidget = type("ScriptedLoadableModuleWidget", (), {})
    loadable.ScriptedLoadableModuleLogic = ScriptedLoadableModuleLogic
    loadable.ScriptedLoadableModuleTest = type("ScriptedLoadableModuleTest", (unittest.TestCase,),
                                               {"delayDisplay": lambda self, message, msec=None: None})
    wrapper = types.ModuleType("slicer.parameterNodeWrapper")
    wrapper.parameterNodeWrapper = parameter_node_wrapper
    wrapper.Choice = wrapper.WithinRange = lambda *args: None
    i18n = types.ModuleType("slicer.i18n")
    i18n.tr = lambda text: text
    i18n.translate = lambda context, text: text
    for name, module in (("slicer.ScriptedLoadableModule", loadable), ("slicer.parameterNodeWrapper", wrapper), ("slicer.i18n", i18n)):
        monkeypatch.setitem(sys.modules, name, module)
        monkeypatch.setattr(slicer, name.split(".")[1], module, raising=False)
    effects = types.ModuleType("qSlicerSegmentationsEditorEffectsPythonQt")
    effects.qSlicerSegmentEditorScriptedEffect = lambda parent: ScriptedEffect()
    monkeypatch.setitem(sys.modules, effects.__name__, effects)
    monkeypatch.setattr(slicer, "qMRMLSegmentEditorWidget", SegmentEditorWidget, raising=False)
    from WaveSegSlicerLib.mrml_support import load_volume

    monkeypatch.setattr(slicer.util, "loadVolume", lambda path: load_volume(scene, path, Path(path).name.split(".")[0]))
    if not scene.IsNodeClassRegistered("vtkMRMLSegmentEditorNode"):
        scene.RegisterNodeClass(slicer.vtkMRMLSegmentEditorNode())
    monkeypatch.delitem(sys.modules, "WaveSegSlicer", raising=False)

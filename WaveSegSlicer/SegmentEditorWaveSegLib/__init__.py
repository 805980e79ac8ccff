"""The "WaveSeg" Segment Editor effect, alone in its package as Slicer's template has it.

Slicer registers a scripted effect by loading its file as a module named after the file's folder
and putting it in ``sys.modules`` under that name (v5.10.0
``Modules/Loadable/Segmentations/EditorEffects/qSlicerSegmentEditorScriptedEffect.cxx:146-176`` ->
``Base/QTCore/qSlicerScriptedUtils.cxx:45-50``), which replaces this package. So nothing else may
live here: the helpers the effect imports are in ``WaveSegSlicerLib``.
"""

from .SegmentEditorEffect import SegmentEditorEffect  # noqa: F401  (as Utilities/Templates/.../SegmentEditorTemplateKeyLib/__init__.py)

"""A working MRML scene outside the Slicer application (PyPI ``slicer-core``): for tests and scripts.

Inside Slicer the Segmentations module registers the segmentation converter rules at startup
and ``slicer.mrmlScene`` exists; slicer-core provides the same MRML classes but neither of
those, so this module does both. It is never used by the module running inside Slicer.
"""

from __future__ import annotations

import os

import slicer

_rules_registered = False


def register_segmentation_converters() -> None:
    """Register the binary labelmap <-> closed surface rules once (as Slicer's Segmentations module does)."""
    global _rules_registered
    if not _rules_registered:
        factory = slicer.vtkSegmentationConverterFactory.GetInstance()
        for rule in (slicer.vtkBinaryLabelmapToClosedSurfaceConversionRule, slicer.vtkClosedSurfaceToBinaryLabelmapConversionRule):
            factory.RegisterConverterRule(rule())
        _rules_registered = True


def new_scene():
    """A fresh ``vtkMRMLScene``, also installed as ``slicer.mrmlScene`` (which ``slicer.util`` uses)."""
    register_segmentation_converters()
    scene = slicer.vtkMRMLScene()
    slicer.mrmlScene = scene
    return scene


def load_volume(scene, path: str | os.PathLike, name: str = "volume"):
    """Read an image file (NIfTI, NRRD, ...) into a new scalar volume node with MRML's own reader."""
    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name)
    storage = scene.AddNewNodeByClass("vtkMRMLVolumeArchetypeStorageNode")
    storage.SetFileName(str(path))
    if not storage.ReadData(node):
        raise OSError(f"MRML could not read {path}")
    node.SetAndObserveStorageNodeID(storage.GetID())
    return node

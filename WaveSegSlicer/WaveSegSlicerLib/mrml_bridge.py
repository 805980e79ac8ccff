"""Conversions between MRML nodes and the WaveSeg core's numpy arrays (main thread only), for
the module's adaptation and the self-test; the effect works on the editor's grid (``editor_grid``).

Conventions: ``slicer.util.arrayFromVolume`` returns (K, J, I) = (Z, Y, X) arrays, which is the
core's volume order; voxel coordinates are (i, j, k) = (column, row, slice); RAS is Slicer's
world frame in mm. Array axis 0 (K) is the core's ``axis=0`` ("axial" in voxel space), 1 is
J and 2 is I. Only MRML, vtk and numpy are used, so this runs in Slicer and in PyPI's
``slicer-core`` alike (the ``slicer.util`` segment helpers need ``slicer.modules``, which
slicer-core lacks; the static ``vtkSlicerSegmentationsModuleLogic`` functions they call do not).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import vtk

import slicer


class GeometryError(ValueError):
    """A prompt or view that does not fit the volume (outside it, or an oblique slice view)."""


def ijk_to_ras_matrix(volume_node) -> np.ndarray:
    """(4, 4) matrix from voxel (i, j, k, 1) to the volume's RAS (without parent transforms)."""
    matrix = vtk.vtkMatrix4x4()
    volume_node.GetIJKToRASMatrix(matrix)
    return slicer.util.arrayFromVTKMatrix(matrix)


def volume_array(volume_node) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Voxels of a scalar volume node as a (Z, Y, X) array (a copy) and its spacing (x, y, z) mm."""
    if volume_node is None or volume_node.GetImageData() is None:
        raise GeometryError("the volume node has no image data; load or select a volume first")
    array = slicer.util.arrayFromVolume(volume_node)
    if array.ndim != 3:
        raise GeometryError(f"WaveSeg needs a scalar volume; this one has voxel array shape {array.shape}")
    return np.array(array), tuple(float(s) for s in volume_node.GetSpacing())


def read_segment_mask(segmentation_node, segment_id: str, volume_node) -> np.ndarray:
    """A segment as a (Z, Y, X) bool mask resampled onto ``volume_node``'s voxel grid."""
    scene = segmentation_node.GetScene()
    ids = vtk.vtkStringArray()
    ids.InsertNextValue(segment_id)
    labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "__waveseg_temp__")
    try:
        if not slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(segmentation_node, ids, labelmap, volume_node):
            raise RuntimeError(f"could not export segment {segment_id!r}")
        return slicer.util.arrayFromVolume(labelmap) > 0
    finally:
        # the export adds a "<segmentation>_ColorTable" node each time (vtkSlicerSegmentationsModuleLogic.cxx:1236-1240);
        # remove it unconditionally, as slicer.util.arrayFromSegmentBinaryLabelmap does (util.py:2190)
        display = labelmap.GetDisplayNode()
        if display is not None and display.GetColorNode() is not None:
            scene.RemoveNode(display.GetColorNode())
        scene.RemoveNode(labelmap)


def ensure_segment(segmentation_node, name: str, color: Sequence[float] = (0.9, 0.3, 0.2)) -> str:
    """ID of the segment called ``name``, adding an empty one (with ``color`` RGB 0..1) if missing."""
    segmentation = segmentation_node.GetSegmentation()
    segment_id = segmentation.GetSegmentIdBySegmentName(name)
    if not segment_id:
        segment_id = segmentation.AddEmptySegment("", name, [float(c) for c in color])
        if not segment_id:
            raise RuntimeError("could not add a segment (are the segmentation converter rules registered?)")
    return segment_id

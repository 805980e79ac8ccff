"""Conversions between MRML nodes and the WaveSeg core's numpy arrays.

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
from vtk.util import numpy_support

import slicer

ALIGNMENT_TOLERANCE = 0.999  # |cos| between a slice normal and a voxel axis to count as aligned


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


def world_to_volume_ras(volume_node, ras: Sequence[float]) -> np.ndarray:
    """World RAS -> the volume's own RAS, through its parent transforms (linear or not)."""
    transform = vtk.vtkGeneralTransform()
    slicer.vtkMRMLTransformNode.GetTransformBetweenNodes(None, volume_node.GetParentTransformNode(), transform)
    return np.array(transform.TransformPoint([float(v) for v in ras[:3]]))


def ras_to_ijk(volume_node, ras: Sequence[float]) -> np.ndarray:
    """World RAS point (mm) -> continuous voxel (i, j, k) of ``volume_node``."""
    local = world_to_volume_ras(volume_node, ras)
    matrix = vtk.vtkMatrix4x4()
    volume_node.GetRASToIJKMatrix(matrix)
    return np.array(matrix.MultiplyPoint([*local, 1.0])[:3])


def slice_axis_for_normal(volume_node, normal_ras: Sequence[float]) -> int:
    """Array axis (0 = K, 1 = J, 2 = I) whose voxel planes a slice view with this normal shows.

    Raises ``GeometryError`` when the view is oblique to the voxel grid: the core segments voxel
    planes, so the user is asked to rotate the view to the volume plane (as Slicer's level
    tracing effect does).
    """
    direction = ijk_to_ras_matrix(volume_node)[:3, :3]
    direction = direction / np.linalg.norm(direction, axis=0, keepdims=True)
    normal = np.asarray(normal_ras[:3], float)
    normal = normal / np.linalg.norm(normal)
    cosines = np.abs(direction.T @ normal)  # one per voxel axis i, j, k
    ijk_axis = int(np.argmax(cosines))
    if cosines[ijk_axis] < ALIGNMENT_TOLERANCE:
        raise GeometryError("the slice view is not aligned with the volume's voxel planes; "
                            "use the slice view's 'Rotate to volume plane' button and try again")
    return 2 - ijk_axis


def oriented_image_from_mask(mask: np.ndarray, volume_node):
    """(Z, Y, X) mask -> ``vtkOrientedImageData`` (uint8 0/1) with the volume's voxel geometry."""
    mask = np.ascontiguousarray(np.asarray(mask) > 0, dtype=np.uint8)
    dims = volume_node.GetImageData().GetDimensions()  # (I, J, K)
    if mask.shape != tuple(dims[::-1]):
        raise GeometryError(f"mask shape {mask.shape} does not match the volume's (Z, Y, X) = {tuple(dims[::-1])}")
    image = slicer.vtkOrientedImageData()
    image.SetDimensions(*dims)
    image.AllocateScalars(vtk.VTK_UNSIGNED_CHAR, 1)
    numpy_support.vtk_to_numpy(image.GetPointData().GetScalars())[:] = mask.ravel()  # I fastest = C order of (K, J, I)
    matrix = vtk.vtkMatrix4x4()
    volume_node.GetIJKToRASMatrix(matrix)
    image.SetImageToWorldMatrix(matrix)
    return image


def write_mask_to_segment(mask: np.ndarray, volume_node, segmentation_node, segment_id: str) -> None:
    """Replace a segment's binary labelmap by a (Z, Y, X) mask on ``volume_node``'s grid."""
    if segmentation_node.GetSegmentation().GetSegment(segment_id) is None:
        raise GeometryError(f"segment {segment_id!r} is not in segmentation {segmentation_node.GetName()!r}")
    image = oriented_image_from_mask(mask, volume_node)
    logic = slicer.vtkSlicerSegmentationsModuleLogic
    if not logic.SetBinaryLabelmapToSegment(image, segmentation_node, segment_id, logic.MODE_REPLACE, image.GetExtent()):
        raise RuntimeError(f"could not write the mask into segment {segment_id!r}")


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
        display = labelmap.GetDisplayNode()
        if display is not None and display.GetColorNode() is not None and display.GetColorNode().GetName().startswith("__waveseg"):
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

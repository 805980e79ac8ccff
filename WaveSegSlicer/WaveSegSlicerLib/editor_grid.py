"""The Segment Editor's voxel grid as numpy: what the WaveSeg effect segments and what Apply writes.

The effect does not work on the source volume's own voxels. It works on the editor's geometry:
``scriptedEffect.sourceVolumeImageData()`` is the source volume resampled onto the segmentation's
reference geometry, and ``scriptedEffect.defaultModifierLabelmap()`` is an empty labelmap on that
same grid (Slicer v5.10.0 ``qSlicerSegmentEditorAbstractEffect.cxx:943-985`` ->
``vtkSlicerSegmentEditorLogic::UpdateVolume``, ``vtkSlicerSegmentEditorLogic.cxx:1002-1026``).
Working there means that intensity masking (which refuses a modifier of another geometry,
``vtkSlicerSegmentEditorLogic.cxx:1748-1756``), oversampled segmentations and parent transforms
all come out right without resampling of our own.

These images' "world" is the segmentation node's own coordinate system; a prompt clicked in a view
is in world RAS and goes through the inverse of the segmentation's parent transform first.
Conventions: arrays are (Z, Y, X) = (K, J, I) with index 0 at the image extent's start; voxel
coordinates are (i, j, k) relative to that start. Everything here runs on Slicer's main thread:
it reads MRML. The model worker only ever gets the arrays and numbers it returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import vtk
from vtk.util import numpy_support

import slicer

from WaveSegSlicerLib.mrml_bridge import GeometryError

ALIGNMENT_TOLERANCE = 0.999  # |cos| between a slice normal and a voxel axis to count as aligned
Extent = tuple[int, int, int, int, int, int]  # (i0, i1, j0, j1, k0, k1), inclusive, as VTK's


@dataclass(frozen=True)
class EditorGrid:
    """A labelmap geometry: its VTK extent and its (4, 4) matrix from extent IJK to node-local RAS."""

    extent: Extent
    image_to_local: np.ndarray

    @classmethod
    def of_image(cls, image) -> "EditorGrid":
        """The grid of a ``vtkOrientedImageData`` (e.g. ``defaultModifierLabelmap()``)."""
        if image is None:
            raise GeometryError("the Segment Editor has no geometry yet: select a source volume and a segmentation")
        extent = tuple(int(v) for v in image.GetExtent())
        if extent[0] > extent[1] or extent[2] > extent[3] or extent[4] > extent[5]:
            raise GeometryError("the segmentation's reference geometry is empty; select a source volume first")
        matrix = vtk.vtkMatrix4x4()
        image.GetImageToWorldMatrix(matrix)
        return cls(extent, slicer.util.arrayFromVTKMatrix(matrix))

    @classmethod
    def of_volume(cls, volume_node) -> "EditorGrid":
        """A volume's own voxel grid: the editor's grid when the segmentation's geometry comes from
        that volume and both sit under the same transform (scripts and tests; the effect asks the editor)."""
        dims = volume_node.GetImageData().GetDimensions()
        matrix = vtk.vtkMatrix4x4()
        volume_node.GetIJKToRASMatrix(matrix)
        return cls((0, dims[0] - 1, 0, dims[1] - 1, 0, dims[2] - 1), slicer.util.arrayFromVTKMatrix(matrix))

    @property
    def shape_zyx(self) -> tuple[int, int, int]:
        i0, i1, j0, j1, k0, k1 = self.extent
        return (k1 - k0 + 1, j1 - j0 + 1, i1 - i0 + 1)

    @property
    def spacing_xyz(self) -> tuple[float, float, float]:
        return tuple(float(s) for s in np.linalg.norm(self.image_to_local[:3, :3], axis=0))

    def matches(self, image) -> bool:
        """Whether ``image`` has this grid (same extent and matrix): a modifier to fill, or not."""
        other = EditorGrid.of_image(image)
        return other.extent == self.extent and np.allclose(other.image_to_local, self.image_to_local, atol=1e-6)

    def voxel(self, local_ras: Sequence[float]) -> np.ndarray:
        """Node-local RAS (mm) -> continuous array voxel (i, j, k); ``GeometryError`` outside the grid."""
        extent_ijk = (np.linalg.inv(self.image_to_local) @ np.array([*local_ras[:3], 1.0]))[:3]
        ijk = extent_ijk - np.array(self.extent[::2])
        upper = np.array(self.shape_zyx[::-1]) - 0.5
        if (ijk < -0.5).any() or (ijk > upper).any():
            raise GeometryError(f"the point at RAS {tuple(np.round(local_ras[:3], 1))} lies outside the volume")
        return ijk

    def axis_for_normal(self, local_normal: Sequence[float]) -> int:
        """Array axis (0 = K, 1 = J, 2 = I) whose voxel planes a view with this normal shows.

        Raises ``GeometryError`` for a view oblique to the grid: the core segments voxel planes,
        so the user is asked to rotate the view to the volume plane, as Slicer's level tracing
        effect does.
        """
        direction = self.image_to_local[:3, :3] / np.linalg.norm(self.image_to_local[:3, :3], axis=0, keepdims=True)
        normal = np.asarray(local_normal[:3], float)
        cosines = np.abs(direction.T @ (normal / np.linalg.norm(normal)))  # one per voxel axis i, j, k
        ijk_axis = int(np.argmax(cosines))
        if cosines[ijk_axis] < ALIGNMENT_TOLERANCE:
            raise GeometryError("the slice view is not aligned with the volume's voxel planes; "
                                "use the slice view's 'Rotate to volume plane' button and try again")
        return 2 - ijk_axis


def image_array(image) -> np.ndarray:
    """Voxels of a single-component ``vtkOrientedImageData`` as a (Z, Y, X) array (a copy)."""
    grid = EditorGrid.of_image(image)
    scalars = image.GetPointData().GetScalars()
    if scalars is None or scalars.GetNumberOfComponents() != 1:
        raise GeometryError("WaveSeg needs a scalar (single-component) source volume")
    return np.array(numpy_support.vtk_to_numpy(scalars)).reshape(grid.shape_zyx)  # I fastest = C order of (K, J, I)


def mask_on_grid(labelmap, grid: EditorGrid) -> np.ndarray:
    """A binary labelmap (e.g. ``selectedSegmentLabelmap()``) as a (Z, Y, X) bool mask on ``grid``;
    an empty labelmap gives an empty mask, another geometry is resampled (nearest voxel)."""
    extent = labelmap.GetExtent() if labelmap is not None else (0, -1, 0, -1, 0, -1)
    if extent[0] > extent[1] or extent[2] > extent[3] or extent[4] > extent[5]:
        return np.zeros(grid.shape_zyx, bool)
    if not grid.matches(labelmap):
        resampled = slicer.vtkOrientedImageData()
        slicer.vtkOrientedImageDataResample.ResampleOrientedImageToReferenceOrientedImage(
            labelmap, image_of_mask(np.zeros(grid.shape_zyx, bool), grid), resampled)
        labelmap = resampled
    return image_array(labelmap) > 0


def fill_image(image, mask: np.ndarray) -> None:
    """Write a (Z, Y, X) bool mask into a uint8 labelmap of the same shape (a modifier labelmap)."""
    scalars = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars())
    if mask.shape != EditorGrid.of_image(image).shape_zyx:
        raise GeometryError(f"mask shape {mask.shape} does not match the labelmap's {EditorGrid.of_image(image).shape_zyx}")
    scalars[:] = np.ascontiguousarray(mask, dtype=np.uint8).ravel()
    image.Modified()


def image_of_mask(mask: np.ndarray, grid: EditorGrid):
    """A new uint8 ``vtkOrientedImageData`` on ``grid`` holding the (Z, Y, X) mask (for the preview)."""
    image = slicer.vtkOrientedImageData()
    image.SetExtent(*grid.extent)
    image.AllocateScalars(vtk.VTK_UNSIGNED_CHAR, 1)
    matrix = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            matrix.SetElement(r, c, float(grid.image_to_local[r, c]))
    image.SetImageToWorldMatrix(matrix)
    fill_image(image, mask)
    return image


def changed_box(before: np.ndarray, after: np.ndarray) -> tuple[slice, slice, slice] | None:
    """(Z, Y, X) slices bounding the voxels where two masks differ; None when they are equal."""
    changed = before != after
    if not changed.any():
        return None
    box = []
    for axis in range(3):
        hits = np.flatnonzero(changed.any(axis=tuple(a for a in range(3) if a != axis)))
        box.append(slice(int(hits[0]), int(hits[-1]) + 1))
    return tuple(box)


def world_to_node_matrix(node) -> np.ndarray:
    """(4, 4) matrix from world RAS to ``node``'s own RAS (through its parent transforms).

    The Segment Editor cannot edit a segmentation under a non-linear transform either
    (``vtkSlicerSegmentEditorLogic::GetSegmentationIJKToRAS`` returns false then).
    """
    parent = node.GetParentTransformNode()
    matrix = vtk.vtkMatrix4x4()
    if parent is not None:
        if not parent.IsTransformToWorldLinear():
            raise GeometryError(f"{node.GetName()!r} is under a non-linear transform; harden the transform first")
        parent.GetMatrixTransformFromWorld(matrix)
    return slicer.util.arrayFromVTKMatrix(matrix)


def prompt_voxel_and_axis(grid: EditorGrid, segmentation_node, ras_points: Sequence[Sequence[float]],
                          normal_ras: Sequence[float]) -> tuple[list[np.ndarray], int]:
    """World-RAS prompt points and view normal -> array voxels (i, j, k) and the slice axis."""
    to_local = world_to_node_matrix(segmentation_node)
    voxels = [grid.voxel((to_local @ np.array([*p[:3], 1.0]))[:3]) for p in ras_points]
    normal = np.linalg.inv(to_local[:3, :3]).T @ np.asarray(normal_ras[:3], float)  # normals map by the inverse transpose
    return voxels, grid.axis_for_normal(normal)

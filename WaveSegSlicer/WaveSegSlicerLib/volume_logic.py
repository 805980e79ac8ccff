"""One interactive WaveSeg 3D session on a volume node, with prompts given in RAS.

This is the part of the module's Logic that the Segment Editor effect drives; it owns a core
``waveseg.volume.VolumeSession`` (embedding cache, propagation, undo/redo) and converts between
Slicer's world RAS (mm) and the session's voxel coordinates. It never touches widgets.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from WaveSegSlicerLib import mrml_bridge
from waveseg.volume_geometry import voxel_to_slice

Progress = Callable[[int, int], None]


class VolumePromptLogic:
    """Prompts in RAS on a volume node's slices -> a (Z, Y, X) mask on the volume's voxel grid.

    Arguments:
      segmenter: a ``waveseg.Segmenter``.
      volume_node: a ``vtkMRMLScalarVolumeNode``; its voxels are copied once.
      window: optional (lo, hi) intensity window (e.g. CT soft tissue) used for every slice.
      initial_mask: optional (Z, Y, X) mask to start from (e.g. the current segment).
    """

    def __init__(self, segmenter, volume_node, window: tuple[float, float] | None = None,
                 initial_mask: np.ndarray | None = None, prefetch: bool = True) -> None:
        volume, spacing = mrml_bridge.volume_array(volume_node)
        self.volume_node = volume_node
        self.session = segmenter.volume_session(volume, spacing=spacing, window=window, prefetch=prefetch)
        self.last_slice: tuple[int, int] | None = None  # (axis, index) of the last prompted slice: what Propagate uses
        if initial_mask is not None and np.any(initial_mask):
            self.session.mask = np.asarray(initial_mask, bool).copy()

    @property
    def mask(self) -> np.ndarray:
        """(Z, Y, X) bool mask of the whole session."""
        return self.session.mask

    def _voxel(self, ras: Sequence[float]) -> np.ndarray:
        ijk = mrml_bridge.ras_to_ijk(self.volume_node, ras)
        upper = np.array(self.session.volume.shape[::-1]) - 0.5
        if (ijk < -0.5).any() or (ijk > upper).any():
            raise mrml_bridge.GeometryError(f"the point at RAS {tuple(np.round(ras[:3], 1))} lies outside the volume")
        return ijk

    def click(self, ras: Sequence[float], positive: bool, slice_normal: Sequence[float], repropagate: bool = False,
              progress: Progress | None = None, cancel: Callable[[], bool] | None = None) -> tuple[int, int]:
        """Add a positive/negative point at world RAS on the slice view with ``slice_normal``.

        Returns the (axis, index) of the voxel slice that was segmented; with ``repropagate``
        the change carries to neighbouring slices until it dies out.
        """
        axis = mrml_bridge.slice_axis_for_normal(self.volume_node, slice_normal)
        ijk = self._voxel(ras)
        self.session.click(tuple(ijk), positive=positive, axis=axis, repropagate=repropagate, progress=progress, cancel=cancel)
        self.last_slice = (axis, voxel_to_slice(tuple(ijk), axis)[0])
        return self.last_slice

    def box(self, ras0: Sequence[float], ras1: Sequence[float], slice_normal: Sequence[float]) -> tuple[int, int]:
        """Segment the slice under a box dragged from ``ras0`` to ``ras1``; returns (axis, index)."""
        axis = mrml_bridge.slice_axis_for_normal(self.volume_node, slice_normal)
        ijk0, ijk1 = self._voxel(ras0), self._voxel(ras1)
        index, (x0, y0) = voxel_to_slice(tuple(ijk0), axis)
        _, (x1, y1) = voxel_to_slice(tuple(ijk1), axis)
        self.session.segment_slice(axis, index, box=(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
        self.last_slice = (axis, index)
        return self.last_slice

    def propagate(self, progress: Progress | None = None, cancel: Callable[[], bool] | None = None):
        """Propagate the last prompted slice through the volume; returns the core's report."""
        if self.last_slice is None:
            raise mrml_bridge.GeometryError("prompt a slice first, then propagate it")
        return self.session.propagate(*self.last_slice, progress=progress, cancel=cancel)

    def undo(self) -> np.ndarray:
        return self.session.undo()

    def redo(self) -> np.ndarray:
        return self.session.redo()

    def write_to_segment(self, segmentation_node, segment_id: str) -> None:
        """Replace the segment's labelmap by the session's mask (batch use; the effect goes
        through the Segment Editor instead, so masking/overwrite settings and undo apply)."""
        mrml_bridge.write_mask_to_segment(self.session.mask, self.volume_node, segmentation_node, segment_id)

    def close(self) -> None:
        self.session.close()

"""One interactive WaveSeg 3D session on the Segment Editor's grid, driven by voxel prompts.

This is the part of the module's Logic that the Segment Editor effect drives on its model worker
thread. It owns a core ``waveseg.volume.VolumeSession`` (embedding cache, propagation, undo/redo)
and gets only numpy arrays and numbers: MRML is not thread-safe (``vtkMRMLScene::GetNodeByID``
rebuilds its node map, Slicer v5.10.0 ``Libs/MRML/Core/vtkMRMLScene.cxx:2106``), so the effect
converts view clicks to voxels on the main thread (``WaveSegSlicerLib.editor_grid``) and only
then calls these methods.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from waveseg.volume_geometry import voxel_to_slice

Progress = Callable[[int, int], None]


class VolumePromptLogic:
    """Voxel prompts on a (Z, Y, X) volume -> a (Z, Y, X) bool mask on the same grid.

    Arguments:
      segmenter: a ``waveseg.Segmenter``.
      volume: (Z, Y, X) voxels (the editor's source volume image); copied by the session.
      spacing: voxel size (x, y, z) in mm.
      window: optional (lo, hi) intensity window (e.g. CT soft tissue) used for every slice.
      initial_mask: optional (Z, Y, X) mask to start from (the segment being edited).
    """

    def __init__(self, segmenter, volume: np.ndarray, spacing: Sequence[float], window: tuple[float, float] | None = None,
                 initial_mask: np.ndarray | None = None, prefetch: bool = True) -> None:
        self.session = segmenter.volume_session(volume, spacing=tuple(spacing), window=window, prefetch=prefetch)
        self.initial_mask = np.zeros(volume.shape, bool) if initial_mask is None else np.asarray(initial_mask, bool).copy()
        if self.initial_mask.shape != volume.shape:
            raise ValueError(f"initial mask shape {self.initial_mask.shape} differs from the volume's {volume.shape}")
        if self.initial_mask.any():
            self.session.mask = self.initial_mask.copy()
        self.last_slice: tuple[int, int] | None = None  # (axis, index) of the last prompted slice: what Propagate uses

    @property
    def mask(self) -> np.ndarray:
        """(Z, Y, X) bool mask of the whole session."""
        return self.session.mask

    def click(self, ijk: Sequence[float], positive: bool, axis: int, repropagate: bool = False,
              progress: Progress | None = None, cancel: Callable[[], bool] | None = None) -> tuple[int, int]:
        """Add a positive/negative point at voxel (i, j, k) on the slice across ``axis``.

        Returns the (axis, index) of the slice that was segmented; with ``repropagate`` the
        change carries to neighbouring slices until it dies out.
        """
        ijk = tuple(float(v) for v in ijk)
        self.session.click(ijk, positive=positive, axis=axis, repropagate=repropagate, progress=progress, cancel=cancel)
        self.last_slice = (axis, voxel_to_slice(ijk, axis)[0])
        return self.last_slice

    def stroke(self, voxels: Sequence[Sequence[float]], positive: bool, axis: int, closed: bool, repropagate: bool = False,
               progress: Progress | None = None, cancel: Callable[[], bool] | None = None) -> tuple[int, int]:
        """A scribble (``closed`` False) or lasso through voxels (i, j, k) on the slice across ``axis``
        (the slice of the first voxel); returns (axis, index), as ``click``."""
        index = voxel_to_slice(tuple(float(v) for v in voxels[0]), axis)[0]
        xy = [voxel_to_slice(tuple(float(v) for v in ijk), axis)[1] for ijk in voxels]
        action = self.session.lasso if closed else self.session.scribble
        action(axis, index, xy, positive=positive, repropagate=repropagate, progress=progress, cancel=cancel)
        self.last_slice = (axis, index)
        return self.last_slice

    def box(self, ijk0: Sequence[float], ijk1: Sequence[float], axis: int) -> tuple[int, int]:
        """Segment the slice under a box with corners at voxels ``ijk0`` and ``ijk1``; returns (axis, index)."""
        index, (x0, y0) = voxel_to_slice(tuple(ijk0), axis)
        _, (x1, y1) = voxel_to_slice(tuple(ijk1), axis)
        self.session.segment_slice(axis, index, box=(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
        self.last_slice = (axis, index)
        return self.last_slice

    def propagate(self, progress: Progress | None = None, cancel: Callable[[], bool] | None = None):
        """Propagate the last prompted slice through the volume; returns the core's report."""
        if self.last_slice is None:
            raise ValueError("prompt a slice first, then propagate it")
        return self.session.propagate(*self.last_slice, progress=progress, cancel=cancel)

    def undo(self) -> np.ndarray:
        return self.session.undo()

    def redo(self) -> np.ndarray:
        return self.session.redo()

    def close(self) -> None:
        self.session.close()

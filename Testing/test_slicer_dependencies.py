"""The dependency check the extension runs before it imports torch: requirements and version floors
read from the shipped requirements.txt, and the constraints file that keeps pip off torch."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("slicer", reason="slicer-core is part of the test extra")

from WaveSegSlicerLib import dependencies  # noqa: E402


def test_every_requirement_is_met_in_the_test_environment():
    wanted = dependencies.requirements()
    names = [req.name for req in wanted]
    assert names[:2] == ["torch", "torchvision"] and "monai" in names and "segment-anything" in names
    assert dependencies.unmet(wanted) == []


def test_missing_and_too_old_packages_are_reported_with_their_versions():
    versions = {"torch": "2.0.1", "torchvision": None}
    problems = dependencies.unmet(dependencies.requirements()[:2], lambda name: versions[name])
    assert [(req.name, version) for req, version in problems] == [("torch", "2.0.1"), ("torchvision", None)]
    assert "torch>=2.1 (installed: 2.0.1)" in dependencies.describe(problems)


def test_requirements_leave_torch_to_the_pytorch_extension():
    listed = [line.split("#")[0].strip() for line in Path(dependencies.requirements_path()).read_text().splitlines()]
    assert not [line for line in listed if line.split(">")[0].split("=")[0].split("<")[0].strip() in ("torch", "torchvision")]


def test_constraints_pin_the_installed_torch():
    path = Path(dependencies.torch_constraints_file())
    try:
        pins = path.read_text().split()
    finally:
        path.unlink()
    assert pins[:2] == [f"torch=={dependencies.installed_version('torch')}", f"torchvision=={dependencies.installed_version('torchvision')}"]
    assert f"numpy=={dependencies.installed_version('numpy')}" in pins  # Slicer's bundled numpy stays too

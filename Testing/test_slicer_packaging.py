"""Static checks of the Slicer extension, whose GUI code can only run inside Slicer: the module's
CMake file list, ruff (undefined names, unused imports, syntax) and compilation of the Slicer
files, the .ui bindings against the parameter node, the catalog entry and the icons."""

from __future__ import annotations

import ast
import json
import py_compile
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
MODULE = ROOT / "WaveSegSlicer"
SLICER_FILES = [MODULE / "WaveSegSlicer.py", *sorted(p for lib in MODULE.glob("*Lib") for p in lib.glob("*.py"))]
UI_FILE = MODULE / "Resources" / "UI" / "WaveSegSlicer.ui"


def cmake_listed_files() -> set[str]:
    text = (MODULE / "CMakeLists.txt").read_text()
    listed = set()
    for block in re.findall(r"set\(MODULE_PYTHON_(?:SCRIPTS|RESOURCES)\n(.*?)\n\s*\)", text, re.S):
        for line in block.split("\n"):
            entry = line.strip().replace("${MODULE_NAME}", "WaveSegSlicer")
            if entry and not entry.startswith("#"):
                listed.add(entry)
    return listed


NOT_SHIPPED = ("waveseg/app/", "waveseg/server/")  # the desktop app (Qt.py + VTK) and the site server (FastAPI) are not part of the Slicer extension


def shipped_files() -> set[str]:
    """Files under WaveSegSlicer/ that git tracks (or would track), except build leftovers."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "WaveSegSlicer"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    files = {str(Path(p).relative_to("WaveSegSlicer")) for p in out} - {"CMakeLists.txt"}
    return {f for f in files if not f.startswith(NOT_SHIPPED)}


def test_cmake_lists_every_shipped_file():
    listed, present = cmake_listed_files(), shipped_files()
    assert listed, "no files found in WaveSegSlicer/CMakeLists.txt"
    assert not present - listed, f"files missing from WaveSegSlicer/CMakeLists.txt: {sorted(present - listed)}"
    assert not listed - present, f"CMakeLists.txt lists files that do not exist: {sorted(listed - present)}"


def test_extension_cmake_adds_the_module_with_metadata():
    text = (ROOT / "CMakeLists.txt").read_text()
    assert re.search(r"^add_subdirectory\(WaveSegSlicer\)", text, re.M)
    assert 'set(EXTENSION_CATEGORY "Segmentation")' in text
    assert 'set(EXTENSION_DEPENDS "PyTorch")' in text
    assert "slicer_add_python_unittest(SCRIPT ${MODULE_NAME}.py)" in (MODULE / "CMakeLists.txt").read_text()


@pytest.mark.parametrize("path", SLICER_FILES, ids=lambda p: p.name)
def test_slicer_files_compile(path, tmp_path):
    py_compile.compile(str(path), cfile=str(tmp_path / "out.pyc"), doraise=True)


def test_ruff_finds_no_undefined_names_or_unused_imports():
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    result = subprocess.run([ruff, "check", "--no-cache", "--select", "F,E9", *map(str, SLICER_FILES)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _parameter_node_fields() -> set[str]:
    tree = ast.parse((MODULE / "WaveSegSlicer.py").read_text())
    node = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "WaveSegSlicerParameterNode")
    return {stmt.target.id for stmt in node.body if isinstance(stmt, ast.AnnAssign)}


def _ui_widgets() -> dict[str, ET.Element]:
    return {w.get("name"): w for w in ET.parse(UI_FILE).getroot().iter("widget")}


def test_ui_bindings_match_the_parameter_node():
    fields = _parameter_node_fields()
    bound = {w.find("property[@name='SlicerParameterName']/string").text
             for w in _ui_widgets().values() if w.find("property[@name='SlicerParameterName']") is not None}
    assert bound, "no SlicerParameterName bindings in the .ui file"
    assert bound <= fields, f"the .ui binds unknown parameters: {sorted(bound - fields)}"
    assert fields - bound == {"model", "profile"}  # filled from the catalog and profiles folder at run time


def test_every_ui_widget_the_code_uses_exists():
    widgets = _ui_widgets()
    used = set(re.findall(r"self\.ui\.(\w+)", (MODULE / "WaveSegSlicer.py").read_text()))
    assert used and used <= set(widgets), f"WaveSegSlicer.py uses widgets missing from the .ui: {sorted(used - set(widgets))}"


def test_catalog_entry_follows_the_extensions_index_schema():
    entry = json.loads((ROOT / "WaveSeg.json").read_text())
    allowed = {"$schema", "category", "scm_url", "scm_revision", "scm_type", "build_dependencies", "build_subdirectory",
               "enabled", "tier"}  # slicer-extension-catalog-entry-schema-v1.0.1 (additionalProperties: false)
    assert {"$schema", "category", "scm_url"} <= set(entry) <= allowed
    assert entry["category"] == "Segmentation" and entry["build_dependencies"] == ["PyTorch"]


@pytest.mark.parametrize("path,size", [("Resources/WaveSeg.png", (128, 128)),
                                       ("WaveSegSlicer/Resources/Icons/WaveSegSlicer.png", (128, 128)),
                                       ("WaveSegSlicer/SegmentEditorWaveSegLib/SegmentEditorEffect.png", (21, 21)),
                                       ("Resources/Screenshot01.png", None)])
def test_icons_and_screenshot_exist(path, size):
    with Image.open(ROOT / path) as image:
        assert image.format == "PNG"
        if size:
            assert image.size == size


def test_requirements_cover_the_core_dependencies():
    import tomllib

    wanted = {re.split(r"[<>=]", d)[0].lower() for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    listed = {re.split(r"[<>=]", line)[0].lower() for line in (MODULE / "Resources" / "requirements.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")}
    bundled_with_slicer = {"numpy", "simpleitk", "torch", "torchvision"}  # Slicer or PyTorchUtils provide these
    assert wanted - bundled_with_slicer <= listed, f"missing from requirements.txt: {sorted(wanted - bundled_with_slicer - listed)}"

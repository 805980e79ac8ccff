"""The core package imports neither torch nor Slicer/Qt at import time (Slicer loads it first)."""

import subprocess
import sys


def test_import_waveseg_does_not_import_torch_or_slicer():
    code = (
        "import sys, waveseg, waveseg.cli, waveseg.io, waveseg.modeling.registry;"
        "names = waveseg.list_backbones();"
        "bad = [m for m in ('torch', 'slicer', 'qt', 'PythonQt', 'ctk', 'vtk') if m in sys.modules];"
        "print(names); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "litemedsam" in result.stdout and "wave-gms" in result.stdout


def test_core_sources_never_import_slicer_or_qt():
    import re
    from pathlib import Path

    import waveseg

    forbidden = re.compile(r"^\s*(import|from)\s+(slicer|qt|ctk|PythonQt|vtk|mrml)(\.|\s|$)", re.MULTILINE)
    root = Path(waveseg.__file__).parent
    offenders = [str(p) for p in root.rglob("*.py") if forbidden.search(p.read_text())]
    assert not offenders, offenders

"""The core package imports neither torch nor Slicer/Qt at import time (Slicer loads it first)."""

import subprocess
import sys


def _python(code: str) -> str:
    """Run ``code`` in a fresh interpreter (nothing imported yet); its stdout, after it succeeded."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_import_waveseg_does_not_import_torch_or_slicer():
    code = (
        "import sys, waveseg, waveseg.cli, waveseg.io, waveseg.modeling.registry;"
        "names = waveseg.list_backbones();"
        "bad = [m for m in ('torch', 'slicer', 'qt', 'PythonQt', 'ctk', 'vtk') if m in sys.modules];"
        "print(names); sys.exit(1 if bad else 0)"
    )
    out = _python(code)
    assert "litemedsam" in out and "wave-gms" in out


def test_core_sources_never_import_slicer_or_qt():
    import re
    from pathlib import Path

    import waveseg

    forbidden = re.compile(r"^\s*(import|from)\s+(slicer|qt|ctk|PythonQt|vtk|mrml)(\.|\s|$)", re.MULTILINE)
    root = Path(waveseg.__file__).parent
    offenders = [str(p) for p in root.rglob("*.py") if forbidden.search(p.read_text())]
    assert not offenders, offenders


def test_segmenting_does_not_import_torchvision_but_segment_anything_stays_whole():
    """segment_anything's __init__ (SamPredictor -> torchvision -> torch._dynamo, about 2 s) is deferred
    (waveseg.modeling); its names are still there for code that reads them."""
    code = (
        "import sys, warnings; warnings.simplefilter('ignore');"
        "from waveseg import Segmenter; from waveseg.sample_data import DEMO_BOX;"
        "import numpy as np; seg = Segmenter.from_pretrained('wave-gms', runtime='torch');"
        "seg.set_image(np.random.default_rng(0).integers(0, 255, (64, 64)).astype(np.uint8));"
        "seg.predict(box=(10, 10, 40, 40));"
        "heavy = [m for m in ('torchvision', 'torch._dynamo') if m in sys.modules];"
        "from segment_anything import sam_model_registry, SamPredictor;"
        "print(heavy, sorted(sam_model_registry), SamPredictor.__name__)"
    )
    out = _python(code)
    assert out.startswith("[] ['default', 'vit_b', 'vit_h', 'vit_l'] SamPredictor"), out

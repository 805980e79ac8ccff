"""Install WaveSeg's Python dependencies inside Slicer, only after asking, on the main thread.

Nothing is installed at import time or in constructors (Slicer's Python FAQ). On first use:
torch + torchvision through the PyTorch extension's ``PyTorchUtils`` (it picks the right CUDA /
CPU build, as SlicerTotalSegmentator does), then ``Resources/requirements.txt`` through
``slicer.packaging.pip_ensure`` (Slicer 5.12+) or ``slicer.util.pip_install`` (earlier), with a
confirmation dialog and a restart prompt when an already-imported package was upgraded.
"""

from __future__ import annotations

import importlib.util
import os

import slicer

MINIMUM_TORCH = ">=2.1"
MINIMUM_TORCHVISION = ">=0.16"
# import name -> reason it is checked (pip names are in Resources/requirements.txt)
REQUIRED_IMPORTS = {
    "segment_anything": "SAM prompt encoder and mask decoder",
    "timm": "LiteMedSAM's TinyViT encoder",
    "safetensors": "WaveSeg model and profile files",
    "pywt": "wavelet filters of the wave-gms encoder",
    "nibabel": "NIfTI checks",
    "nrrd": "NRRD files",
    "slicerio": ".seg.nrrd segment names and colours",
    "scipy": "click simulation for adaptation",
    "pytorch_optimizer": "GaLore optimiser for adaptation",
    "monai": "adaptation losses",
}


class DependencyError(RuntimeError):
    """The user declined, or an installation failed; the message says what to do."""


def requirements_path() -> str:
    return os.path.join(os.path.dirname(os.path.dirname(__file__)), "Resources", "requirements.txt")


def missing_imports() -> list[str]:
    """Import names of required packages that are not installed (torch first)."""
    names = ["torch", "torchvision", *REQUIRED_IMPORTS]
    return [name for name in names if importlib.util.find_spec(name) is None]


def _ensure_torch() -> None:
    try:
        import PyTorchUtils
    except ModuleNotFoundError:
        raise DependencyError("WaveSeg needs the PyTorch extension: install 'PyTorch' from the Extensions Manager, "
                              "restart Slicer and try again") from None
    torch_logic = PyTorchUtils.PyTorchUtilsLogic()
    if not torch_logic.torchInstalled():
        torch = torch_logic.installTorch(askConfirmation=True, torchVersionRequirement=MINIMUM_TORCH,
                                         torchvisionVersionRequirement=MINIMUM_TORCHVISION)
        if torch is None:
            raise DependencyError("PyTorch was not installed; WaveSeg cannot run without it")


def _pip_install_requirements() -> None:
    packaging = getattr(slicer, "packaging", None)
    if packaging is not None and hasattr(packaging, "pip_ensure"):
        packaging.pip_ensure(packaging.load_requirements(requirements_path()), requester="WaveSeg")
    else:
        slicer.util.pip_install(["-r", requirements_path()])


def ensure_dependencies() -> bool:
    """Make sure everything WaveSeg imports is installed; ask the user first. Main thread only.

    Returns True when all is installed; False if the user declined. Raises ``DependencyError``
    when installation failed.
    """
    missing = missing_imports()
    if not missing:
        return True
    if not slicer.util.confirmOkCancelDisplay(
            "WaveSeg needs these Python packages, which are not installed yet:\n  " + ", ".join(missing)
            + "\n\nInstall them now? This needs a network connection once and may take several minutes.",
            "WaveSeg: install Python packages"):
        return False
    with slicer.util.WaitCursor():
        if "torch" in missing or "torchvision" in missing:
            _ensure_torch()
        if set(missing) - {"torch", "torchvision"}:
            try:
                _pip_install_requirements()
            except Exception as exc:  # pip's errors are varied; show what failed
                raise DependencyError(f"installing WaveSeg's packages failed: {exc}") from exc
    still_missing = missing_imports()
    if still_missing:
        raise DependencyError("these packages are still missing after installation: " + ", ".join(still_missing))
    if "torch" in missing:
        slicer.util.infoDisplay("PyTorch was installed. If WaveSeg reports errors, restart Slicer.", "WaveSeg")
    return True

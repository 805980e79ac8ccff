"""Install WaveSeg's Python dependencies inside Slicer: one confirmation, on the main thread, never
replacing the torch that the PyTorch extension chose.

Nothing is installed at import time or in constructors (Slicer's Python FAQ). On first use, and only
after the user agreed once:
1. torch + torchvision through the PyTorch extension's ``PyTorchUtils`` (it picks the CUDA / CPU
   build), also when only torchvision is missing, without a second dialog (``installTorch(
   askConfirmation=False, ...)``, as SlicerTotalSegmentator does). An installed torch older than
   WaveSeg's floor is not replaced here: the user updates it in the PyTorch Utils module.
2. ``Resources/requirements.txt`` with a constraints file that pins the installed torch and
   torchvision, so pip can never swap them (e.g. monai 1.6 requires torch>=2.8; with the pin pip
   takes an older monai instead): through ``slicer.packaging.pip_ensure`` on Slicer 5.12+ (imported
   explicitly: ``slicer/__init__.py`` does not import it, see the 5.12 template's
   ``import slicer.packaging``), else ``slicer.util.pip_install``.
3. A restart prompt when a package that was already imported changed version (``pip_ensure``
   does this on 5.12; here for 5.10).
Requirements and version floors are read from the same ``requirements.txt`` that pip installs.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import sys
import tempfile
from typing import Callable

import slicer

try:
    from packaging.requirements import Requirement
except ImportError:  # Slicer's Python always has pip, which vendors packaging
    from pip._vendor.packaging.requirements import Requirement

TORCH_REQUIREMENTS = ("torch>=2.1", "torchvision>=0.16")  # from the PyTorch extension, never from pip


class DependencyError(RuntimeError):
    """An installation failed or left something unmet; the message says what to do."""


def requirements_path() -> str:
    return os.path.join(os.path.dirname(os.path.dirname(__file__)), "Resources", "requirements.txt")


def requirements() -> list[Requirement]:
    """torch, torchvision and every line of ``Resources/requirements.txt``, parsed."""
    with open(requirements_path(), encoding="utf-8") as f:
        lines = [line.split("#")[0].strip() for line in f]
    return [Requirement(text) for text in (*TORCH_REQUIREMENTS, *lines) if text]


def installed_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def unmet(wanted: list[Requirement], version_of: Callable[[str], str | None] = installed_version) -> list[tuple[Requirement, str | None]]:
    """(requirement, installed version or None) for each requirement that is missing or too old."""
    result = []
    for requirement in wanted:
        version = version_of(requirement.name)
        if version is None or not requirement.specifier.contains(version, prereleases=True):
            result.append((requirement, version))
    return result


def describe(problems: list[tuple[Requirement, str | None]]) -> str:
    return "\n".join(f"  {req}" + (f" (installed: {version})" if version else "") for req, version in problems)


def _ensure_torch(problems: list[tuple[Requirement, str | None]]) -> None:
    torch_problems = [(req, version) for req, version in problems if req.name in ("torch", "torchvision")]
    if not torch_problems:
        return
    if any(version is not None for _req, version in torch_problems):
        raise DependencyError("WaveSeg needs a newer PyTorch than the one installed:\n" + describe(torch_problems)
                              + "\nUpdate it in the PyTorch Utils module (Utilities), restart Slicer and try again.")
    try:
        import PyTorchUtils
    except ModuleNotFoundError:
        raise DependencyError("WaveSeg needs the PyTorch extension: install 'PyTorch' from the Extensions Manager, "
                              "restart Slicer and try again") from None
    # installTorch always asks light-the-torch for both packages (PyTorchUtils.py:235-243): with torch
    # already there, pin it so that only torchvision is added. The user already agreed: no second dialog.
    # light-the-torch picks the build by the detected hardware unless told (its --pytorch-computation-backend):
    # give it the installed torch's own backend (the "+cu121" / "+cpu" label), so torchvision matches it
    installed_torch = installed_version("torch")
    torch_version = f"=={installed_torch}" if installed_torch else TORCH_REQUIREMENTS[0][len("torch"):]
    torchvision_version = TORCH_REQUIREMENTS[1][len("torchvision"):]
    backend = installed_torch.split("+")[1] if installed_torch and "+" in installed_torch else None
    if PyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirmation=False, forceComputationBackend=backend,
                                                     torchVersionRequirement=torch_version,
                                                     torchvisionVersionRequirement=torchvision_version) is None:
        raise DependencyError("PyTorch was not installed; WaveSeg cannot run without it")


PINNED = ("torch", "torchvision", "numpy", "scipy", "SimpleITK")  # PyTorch's choice, and what Slicer bundles (SuperBuild)


def torch_constraints_file() -> str:
    """A pip constraints file pinning the installed torch, torchvision and Slicer's bundled numpy,
    scipy and SimpleITK, so no requirement can move them under a running Slicer (path; the caller
    removes it)."""
    pins = [f"{name}=={installed_version(name)}" for name in PINNED if installed_version(name)]
    handle, path = tempfile.mkstemp(prefix="waveseg-constraints-", suffix=".txt")
    with os.fdopen(handle, "w") as f:
        f.write("\n".join(pins) + "\n")
    return path


def changed_imported_distributions(before: dict[str, str]) -> list[str]:
    """Distributions whose version changed since ``before`` and that this process has imported."""
    imported = {name.split(".")[0] for name in sys.modules}
    changed = []
    for module, distributions in importlib.metadata.packages_distributions().items():
        for distribution in distributions:
            if module in imported and before.get(distribution) not in (None, installed_version(distribution)):
                changed.append(f"{distribution} {before[distribution]} -> {installed_version(distribution)}")
    return sorted(set(changed))


def _pip_install(problems: list[tuple[Requirement, str | None]]) -> None:
    others = [str(req) for req, _version in problems if req.name not in ("torch", "torchvision")]
    if not others:
        return
    constraints = torch_constraints_file()
    try:
        try:
            import slicer.packaging as packaging  # Slicer 5.12+
        except ImportError:
            packaging = None
        if packaging is not None:
            packaging.pip_ensure(others, constraints=constraints, prompt_install=False, requester="WaveSeg")
            return
        before = {dist.metadata["Name"]: dist.version for dist in importlib.metadata.distributions()}
        slicer.util.pip_install(["-c", constraints, *others])
        changed = changed_imported_distributions(before)
        # confirmYesNoDisplay answers yes by itself in testing mode (5.12's pip_ensure guards it the same way)
        if changed and not slicer.app.testingEnabled() and slicer.util.confirmYesNoDisplay(
                "These packages were updated while already loaded; WaveSeg may not work until Slicer restarts:\n  "
                + "\n  ".join(changed) + "\n\nRestart Slicer now?", "WaveSeg: restart recommended"):
            slicer.util.restart()
    except Exception as exc:  # pip's errors are varied; show what failed
        raise DependencyError(f"installing WaveSeg's packages failed: {exc}") from exc
    finally:
        os.remove(constraints)


def ensure_dependencies() -> bool:
    """Make sure every requirement is installed at its version floor; ask the user once. Main thread only.

    Returns True when all is installed; False if the user declined. Raises ``DependencyError``
    when installation failed or left a requirement unmet.
    """
    problems = unmet(requirements())
    if not problems:
        return True
    if not slicer.util.confirmOkCancelDisplay(
            "WaveSeg needs these Python packages, which are missing or too old:\n" + describe(problems)
            + "\n\nInstall them now? This needs a network connection once and may take several minutes.",
            "WaveSeg: install Python packages"):
        return False
    with slicer.util.WaitCursor():
        _ensure_torch(problems)
        _pip_install(problems)
    importlib.invalidate_caches()
    still = unmet(requirements())
    if still:
        raise DependencyError("these packages are still missing or too old after installation:\n" + describe(still))
    return True

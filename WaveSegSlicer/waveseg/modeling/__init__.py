"""Promptable segmentation models: backbone registry, SAM prompt encoder and mask decoder.

Importing this package imports torch. Backbone builders register themselves when their module is
imported; ``registry.build_backbone`` imports all of them first.
"""

import importlib.util
import sys
import types


class _DeferredPackage(types.ModuleType):
    """``segment_anything`` whose ``__init__`` runs only when one of its names is first read.

    Its ``__init__`` imports ``SamPredictor`` -> ``torchvision`` -> ``torch._dynamo``: 2.2 s of a
    3.6 s start on this CPU (``python -X importtime``), for nothing WaveSeg uses. WaveSeg only
    imports submodules (``segment_anything.modeling``, ``segment_anything.utils.onnx``), which
    Python finds through the package's ``__path__`` without running ``__init__``; any other code
    that reads ``segment_anything.sam_model_registry`` and the like gets the whole package.
    (``importlib.util.LazyLoader`` defers the submodules' imports too, so it does not help here.)
    """

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        spec = self.__spec__
        self.__class__ = types.ModuleType  # once: what __init__ defines is then found directly
        spec.loader.exec_module(self)
        return getattr(self, name)


def _defer_segment_anything_init() -> None:
    if "segment_anything" in sys.modules:  # already imported (e.g. by another Slicer extension)
        return
    spec = importlib.util.find_spec("segment_anything")  # locates it; runs nothing
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return  # not installed: the import error comes where it is used
    module = importlib.util.module_from_spec(spec)
    module.__class__ = _DeferredPackage
    sys.modules["segment_anything"] = module


_defer_segment_anything_init()

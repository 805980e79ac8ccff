"""Run a torch module in onnxruntime, re-exported whenever its weights change.

On this project's 2-core CPU onnxruntime runs the wave-gms encoder and WaveSeg's per-click
decoder about 1.2x faster than torch eager (scripts/bench_engine.py). The graph is exported from the
module's current weights in memory and re-exported when any watched parameter is replaced or
changed in place (adaptation, a profile), so a stale graph is never run. Exported graphs are kept
on disk (``waveseg.graph_cache``), keyed by a hash of the watched modules' tensors as they are in
memory: a later process with the same weights reads the graph back instead of exporting it again
(seconds at first use: tracing, and importing ``torch.onnx`` and ``onnx``).
"""

from __future__ import annotations

import io
import threading
import warnings
from typing import Callable, Iterable

import numpy as np
import torch

from waveseg import graph_cache
from waveseg.errors import WaveSegError
from waveseg.ort_session import inference_session

OPSET = 17


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def weights_key(modules: Iterable[torch.nn.Module]) -> tuple:
    """Changes whenever a parameter of ``modules`` is replaced or changed in place (torch bumps a
    tensor's version counter on every in-place write, e.g. an optimiser step or load_state_dict)."""
    return tuple((id(m), p.data_ptr(), p._version) for m in modules for p in m.parameters())


RUNTIMES = ("auto", "onnx", "torch")


def use_onnx(runtime: str, model: torch.nn.Module) -> bool:
    """Whether ``runtime`` ("auto", "onnx" or "torch") means onnxruntime for ``model``; refuses
    impossible requests with a clear error."""
    if runtime not in RUNTIMES:
        raise WaveSegError(f"runtime {runtime!r} is unknown; use one of {', '.join(RUNTIMES)}")
    on_cpu = next(model.parameters()).device.type == "cpu"
    if runtime == "onnx" and not onnxruntime_available():
        raise WaveSegError("runtime 'onnx' needs onnxruntime: pip install onnxruntime (or use runtime='torch')")
    if runtime == "onnx" and not on_cpu:
        raise WaveSegError("runtime 'onnx' runs on the CPU only; use runtime='torch' with a GPU")
    return runtime == "onnx" or (runtime == "auto" and on_cpu and onnxruntime_available())


class OnnxGraph:
    """``module()``'s forward pass in onnxruntime.

    Arguments:
      module: returns the module to run (called on every use: adaptation may replace it).
      inputs, outputs: names of the graph's inputs and outputs, in forward's order.
      watched: returns the modules whose parameters the graph depends on (default: the module).
      dynamic_axes: as for ``torch.onnx.export``.
      required: raise when the export fails (else warn once and return None from then on).
      name: what the graph computes beyond the watched weights, for the disk cache's key (default:
        the module's class); two graphs of the same class that compute differently from the same
        weights (options, a different output) must be given different names.
      alias: returns a name for the graph that needs no torch to compute (the weights file's
        SHA-256 and the graph's role, ``graph_cache.alias_name``) while the watched weights are
        still that file's, else None; the cache then also finds the graph under that name, which is
        how ``waveseg.graph_segmenter`` starts without torch.
    """

    def __init__(self, module: Callable[[], torch.nn.Module], inputs: tuple[str, ...], outputs: tuple[str, ...],
                 watched: Callable[[], Iterable[torch.nn.Module]] | None = None, dynamic_axes: dict | None = None,
                 threads: int | None = None, required: bool = False, name: str | None = None,
                 alias: Callable[[], str | None] | None = None) -> None:
        self.module, self.inputs, self.outputs = module, inputs, outputs
        self.name = name
        self.alias = alias
        self.watched = watched or (lambda: [self.module()])
        self.dynamic_axes = dynamic_axes
        self.threads = threads or torch.get_num_threads()
        self.required = required
        self.failed = False
        self.loaded_from_cache = False  # whether the current session's graph was read from the disk cache
        self._session = None
        self._key: tuple | None = None
        self._lock = threading.Lock()  # the prefetch thread may encode while the main thread does

    @property
    def exported(self) -> bool:
        """Whether an onnxruntime session exists (the graph has run at least once)."""
        return self._session is not None

    def __call__(self, *tensors: torch.Tensor, key: tuple | None = None) -> list[np.ndarray] | None:
        """Run on CPU tensors; None when the graph cannot be exported (then use torch).
        ``key``: ``weights_key(watched())`` when the caller has just computed it."""
        watched = list(self.watched())
        if self.failed or any(m.training for m in watched):  # training mode (e.g. during adaptation): torch's numbers
            return None
        key = weights_key(watched) if key is None else key
        with self._lock:
            if self._session is None or self._key != key:
                self._session, self._key = self._session_for(tensors, watched), key
            session = self._session
        if session is None:
            return None
        return session.run(None, {name: t.numpy() for name, t in zip(self.inputs, tensors)})

    def _session_for(self, example: tuple[torch.Tensor, ...], watched: list[torch.nn.Module]):
        """An onnxruntime session for the current weights: from the disk cache, else exported (and cached)."""
        import onnxruntime as ort

        module = self.module()
        name = self.name or f"{type(module).__module__}.{type(module).__qualname__}"
        # the stored graph is onnxruntime's own optimised form (below): its version is part of the key
        name = f"{name} | onnxruntime {ort.__version__}, optimised to the extended level"
        key = graph_cache.graph_key(name, self.inputs, self.outputs, self.dynamic_axes, example, watched, OPSET)
        graph = graph_cache.load(key)
        if graph is not None:
            try:
                session = self._ort_session(graph)
                self.loaded_from_cache = True
                self._store_alias(key)
                return session
            except Exception:  # digest matched but onnxruntime refuses it (e.g. written by an incompatible version)
                graph_cache.discard(key)
        self.loaded_from_cache = False
        graph = self._export(example)
        if graph is None:
            return None
        graph = _pre_optimized(graph)
        session = self._ort_session(graph)
        graph_cache.store(key, graph)  # only a graph onnxruntime accepted
        self._store_alias(key)
        return session

    def _store_alias(self, key: str) -> None:
        name = self.alias() if self.alias is not None else None
        if name is not None:
            graph_cache.store_alias(name, key)

    def _export(self, example: tuple[torch.Tensor, ...]) -> bytes | None:
        buffer = io.BytesIO()
        try:
            # grad mode on: without it nn.MultiheadAttention takes its fused fast path, which has no ONNX form
            with torch.inference_mode(False), torch.enable_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tracer warnings about constant shapes: fixed-size model inputs
                example = tuple(t.clone() for t in example)  # inference tensors cannot be traced
                torch.onnx.export(self.module(), example, buffer, opset_version=OPSET, dynamo=False, input_names=list(self.inputs),
                                  output_names=list(self.outputs), dynamic_axes=self.dynamic_axes)
        except Exception as exc:  # e.g. a torch build whose exporter needs packages not installed, an unsupported op
            if self.required:
                raise WaveSegError(f"cannot export {type(self.module()).__name__} to ONNX ({exc}); use torch") from exc
            warnings.warn(f"running {type(self.module()).__name__} in torch: the ONNX export failed ({exc})", RuntimeWarning, stacklevel=4)
            self.failed = True
            return None
        return buffer.getvalue()

    def _ort_session(self, graph: bytes):
        return inference_session(graph, self.threads)


def _pre_optimized(graph: bytes) -> bytes:
    """``graph`` after onnxruntime's graph optimisations up to the extended level (constant
    folding, fusions), serialised: a session is then created from it several times faster, which
    is what a warm start pays (0.10-0.39 s -> 0.02-0.15 s per graph of the default model, measured
    once with a throwaway script on 2026-12-02; bench_engine.py --cold-start shows the whole start). Not the "all" level: its layout transforms are specific to the CPU they ran
    on, and a cache folder can be shared by machines. Every session, fresh or from the cache, is
    created from these bytes, so both give the same numbers. The original graph if this fails."""
    import os
    import tempfile

    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "optimised.onnx")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = path
        options.intra_op_num_threads = 1
        try:
            ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
            with open(path, "rb") as handle:
                return handle.read()
        except Exception:  # noqa: BLE001 - an optimisation onnxruntime cannot serialise: keep the exported graph
            return graph

"""The per-click step: prompt encoder + mask decoder, in onnxruntime or in torch.

``PromptDecoder`` runs ``FastMaskDecoding`` (same numbers as the model's ``decode``, computed
faster; see ``waveseg.modeling.fast_decoding``). Single-mask decoding on the CPU runs in
onnxruntime when it is installed: the decoder graph is exported from the model's current
weights in memory (well under a second) and re-exported whenever those weights change
(adaptation, a profile), so a stale graph is never used. Multimask decoding, other devices and
machines without onnxruntime use the same computation in torch.
"""

from __future__ import annotations

import io
import warnings
from typing import Callable

import numpy as np
import torch

from waveseg.errors import WaveSegError
from waveseg.modeling.fast_decoding import MULTI_MASK_TOKENS, FastMaskDecoding

BACKENDS = ("auto", "onnx", "torch")
_INPUTS = ("image_tokens", "k0", "v0", "q0", "point_coords", "point_labels", "mask_input", "has_mask_input")


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


class PromptDecoder:
    """Decode prompts against one image embedding at a time (not thread-safe, like ``Segmenter``).

    backend: "onnx" (needs onnxruntime and a CPU model), "torch", or "auto" (onnx when possible).
    """

    def __init__(self, model: torch.nn.Module, backend: str = "auto", threads: int | None = None) -> None:
        if backend not in BACKENDS:
            raise WaveSegError(f"decoder backend {backend!r} is unknown; use one of {', '.join(BACKENDS)}")
        on_cpu = next(model.parameters()).device.type == "cpu"
        if backend == "onnx" and not onnxruntime_available():
            raise WaveSegError("decoder backend 'onnx' needs onnxruntime: pip install onnxruntime (or use 'torch')")
        if backend == "onnx" and not on_cpu:
            raise WaveSegError("decoder backend 'onnx' runs on the CPU only; use 'torch' with a GPU model")
        self.requested = backend
        self.backend = "onnx" if backend == "onnx" or (backend == "auto" and on_cpu and onnxruntime_available()) else "torch"
        self.model = model
        self.threads = threads or torch.get_num_threads()
        self._single = FastMaskDecoding(model).eval()
        self._multi = FastMaskDecoding(model, MULTI_MASK_TOKENS).eval()
        self._terms_for: tuple[torch.Tensor, tuple] | None = None
        self._terms: tuple[torch.Tensor, ...] = ()
        self._session = None
        self._session_key: tuple | None = None

    def _weights_key(self) -> tuple:
        """Changes whenever a prompt-encoder or decoder weight is replaced or changed in place."""
        return tuple((p.data_ptr(), p._version) for m in (self.model.prompt_encoder, self.model.mask_decoder)
                     for p in m.parameters())

    @torch.inference_mode()
    def decode(self, embedding: torch.Tensor, point_coords: np.ndarray, point_labels: np.ndarray,
               mask_logits: torch.Tensor | None, multimask: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Arguments: embedding (1, 256, 64, 64); point_coords (N, 2) float32 (x, y) in the 256
        model frame and point_labels (N,) with 1/0 clicks, 2/3 box corners, -1 padding (one
        padding point when there is no box); mask_logits (1, 1, 256, 256) or None.
        Returns (1, M, 256, 256) logits and (1, M) predicted IoU on the CPU, M = 3 or 1."""
        key = self._weights_key()
        if self._terms_for is None or self._terms_for[0] is not embedding or self._terms_for[1] != key:
            self._terms = self._single.image_terms(embedding)
            self._terms_for = (embedding, key)
        device = embedding.device
        has_mask = torch.tensor([0.0 if mask_logits is None else 1.0], device=device)
        mask = torch.zeros(1, 1, 256, 256, device=device) if mask_logits is None else mask_logits.to(device)
        coords = torch.from_numpy(np.asarray(point_coords, np.float32)[None]).to(device)
        labels = torch.from_numpy(np.asarray(point_labels, np.float32)[None]).to(device)
        inputs = (*self._terms, coords, labels, mask, has_mask)
        run = self._onnx_session(key, inputs) if self.backend == "onnx" and not multimask else None
        if run is not None:
            logits, iou = run({name: t.numpy() for name, t in zip(_INPUTS, inputs)})
            return torch.from_numpy(logits), torch.from_numpy(iou)
        logits, iou = (self._multi if multimask else self._single)(*inputs)
        return logits.float().cpu(), iou.float().cpu()

    def _onnx_session(self, key: tuple, example: tuple) -> Callable[[dict], list] | None:
        """The onnxruntime call for the current weights, exported when they changed; None (and the
        torch path from now on) when the export fails under "auto"."""
        if self._session is None or self._session_key != key:
            import onnxruntime as ort

            graph = io.BytesIO()
            try:
                with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # tracer warnings about constant shapes: the graph is for one image
                    example = tuple(t.clone() for t in example)  # inference tensors cannot be traced
                    torch.onnx.export(self._single, example, graph, opset_version=17, dynamo=False,
                                      input_names=list(_INPUTS), output_names=["low_res_logits", "iou"],
                                      dynamic_axes={"point_coords": {1: "points"}, "point_labels": {1: "points"}})
            except Exception as exc:  # e.g. a torch build whose ONNX exporter needs packages not installed
                if self.requested == "onnx":
                    raise WaveSegError(f"cannot export the decoder to ONNX ({exc}); use decoder='torch'") from exc
                warnings.warn(f"decoding in torch: the ONNX export failed ({exc})", RuntimeWarning, stacklevel=3)
                self.backend = "torch"
                return None
            options = ort.SessionOptions()
            options.intra_op_num_threads = self.threads
            # torch runs just before and after each call: onnxruntime's threads must not spin-wait
            # for work between calls, or they take the cores from torch (measured: 44 -> 30 ms).
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            session = ort.InferenceSession(graph.getvalue(), options, providers=["CPUExecutionProvider"])
            self._session, self._session_key = (lambda feed: session.run(None, feed)), key
        return self._session

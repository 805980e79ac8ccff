"""onnxruntime sessions for WaveSeg's graphs, made the same way everywhere (torch-free)."""

from __future__ import annotations


def inference_session(graph: bytes, threads: int = 0):
    """An ``onnxruntime.InferenceSession`` on the CPU for ``graph`` (serialised ONNX);
    ``threads``: intra-op threads, 0 = onnxruntime's default (the physical cores)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    # torch runs just before and after each call: onnxruntime's threads must not spin-wait
    # for work between calls, or they take the cores from torch (measured: 44 -> 30 ms per click).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])

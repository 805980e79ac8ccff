#!/usr/bin/env python
"""Engine benchmark: parameters, GFLOPs, median encoder and per-prompt decoder time per backbone.

All backbones run in this one process on the same real slice (the embedded Colin27 T1 sample),
one after another, interleaved over repeats so that machine load affects all alike; ratios are
to ``litemedsam``. The decoder (the same for all backbones) is timed in torch and, when
onnxruntime is installed, as an ONNX graph. Prints a Markdown table.

    .venv/bin/python scripts/bench_engine.py [--repeats 15] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from waveseg.io import read_image
from waveseg.modeling.registry import list_backbones
from waveseg.predictor import Segmenter, to_model_input
from waveseg.preprocess import ResizeGeometry, normalize_intensity
from waveseg.sample_data import DEMO_BOX, DEMO_SLICE, SAMPLE_T1


def _median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    image = read_image(SAMPLE_T1).array[DEMO_SLICE]
    normalized = normalize_intensity(image)
    x = to_model_input(normalized, ResizeGeometry.for_shape(*normalized.shape))
    rows = {}
    segmenters = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # untrained light backbones warn
        for name in list_backbones():
            segmenters[name] = Segmenter.from_pretrained(name)
    for name, seg in segmenters.items():
        encoder = seg.model.image_encoder
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            encoder(x)
        rows[name] = {"params": sum(p.numel() for p in encoder.parameters()), "gflops": counter.get_total_flops() / 1e9,
                      "enc": [], "dec": []}
        seg.set_image(image)
    for _ in range(args.repeats):  # interleaved: each round times every backbone once
        for name, seg in segmenters.items():
            with torch.inference_mode():
                rows[name]["enc"].append(_median_ms(lambda: seg.model.encode(x), 1))
            rows[name]["dec"].append(_median_ms(lambda: seg.predict(box=DEMO_BOX, points=[[90, 100]], labels=[1]), 1))

    ort_ms = None
    try:
        import onnxruntime as ort

        from waveseg.onnx_export import export_decoder

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "decoder.onnx"
            export_decoder(segmenters["litemedsam"].model, path)
            options = ort.SessionOptions()
            options.intra_op_num_threads = args.threads
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            feed = {
                "image_embeddings": np.random.default_rng(0).standard_normal((1, 256, 64, 64)).astype(np.float32) * 0.1,
                "point_coords": np.array([[[100, 120], [25, 25], [200, 230]]], np.float32),
                "point_labels": np.array([[1, 2, 3]], np.float32),
                "mask_input": np.zeros((1, 1, 256, 256), np.float32),
                "has_mask_input": np.array([1.0], np.float32),
            }
            ort_ms = _median_ms(lambda: session.run(None, feed), args.repeats)
    except ImportError:
        pass

    ref = rows["litemedsam"]
    ref_enc, ref_dec = statistics.median(ref["enc"]), statistics.median(ref["dec"])
    print(f"torch {torch.__version__}, {args.threads} threads, {args.repeats} repeats, "
          f"slice {image.shape[1]}x{image.shape[0]} (Colin27 T1), prompt = box + 1 click\n")
    print("| backbone | params (M) | GFLOPs | encoder median (ms) | encoder speed-up vs litemedsam | per-prompt decode median (ms) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in rows.items():
        enc, dec = statistics.median(r["enc"]), statistics.median(r["dec"])
        print(f"| {name} | {r['params'] / 1e6:.2f} | {r['gflops']:.2f} | {enc:.1f} | {ref_enc / enc:.1f}x | {dec:.1f} |")
    if ort_ms is not None:
        print(f"\nDecoder (prompt encoder + mask decoder, low-res logits only) in onnxruntime: {ort_ms:.1f} ms median; "
              f"torch predict() including upsampling to the slice: {ref_dec:.1f} ms ({ref_dec / ort_ms:.1f}x).")


if __name__ == "__main__":
    main()

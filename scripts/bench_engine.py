#!/usr/bin/env python
"""Engine benchmark: parameters, GFLOPs, median encoder and per-prompt decoder time per backbone.

All backbones run in this one process on the same real slice (the embedded Colin27 T1 sample),
one after another, interleaved over repeats so that machine load affects all alike; ratios are
to ``litemedsam``. Encoders are timed in torch and (when installed) in onnxruntime, which
``Segmenter`` uses by default on the CPU; per-prompt decode is ``predict()`` as shipped. The
decoder (the same for all backbones) is also timed as segment-anything runs it and as WaveSeg
runs it in torch and in onnxruntime. Prints Markdown tables.

    .venv/bin/python scripts/bench_engine.py [--repeats 15] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from waveseg.io import read_image
from waveseg.modeling.registry import list_backbones
from waveseg.decoding import PromptDecoder
from waveseg.onnx_graph import OnnxGraph, onnxruntime_available
from waveseg.predictor import Segmenter, logits_to_masks, to_model_input
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


def _decoder_times(seg: Segmenter, image: np.ndarray, repeats: int) -> dict[str, float]:
    """Median per-click time of segment-anything's decoder and of WaveSeg's fast decoding in
    torch and onnxruntime (``waveseg.decoding``), interleaved, on the same prompt."""
    seg.set_image(image)
    first = seg.predict(box=DEMO_BOX)
    encoded = seg._encoded
    g = encoded.geometry
    click = (torch.from_numpy(g.to_model_xy(np.array([[90, 100]], np.float32)))[None], torch.tensor([[1]]))
    box = torch.from_numpy(g.to_model_xy(np.array(DEMO_BOX, np.float32).reshape(2, 2)).reshape(1, 4))
    mask = torch.from_numpy(first.logits[None])

    def reference():
        with torch.inference_mode():
            logits, _ = seg.model.decode(encoded.embedding, click, box, mask)
            return logits_to_masks(logits[0], g)

    backends = {"torch": PromptDecoder(seg.model, "torch")}
    if onnxruntime_available():
        backends["onnxruntime"] = PromptDecoder(seg.model, "onnx")
    calls = {"segment-anything MaskDecoder (torch)": reference}
    for name, decoder in backends.items():
        def call(decoder=decoder):
            seg.decoder = decoder
            return seg.predict(box=DEMO_BOX, points=[[90, 100]], labels=[1], mask_input=first.logits)
        calls[f"WaveSeg fast decoding ({name})"] = call

        def first_call(decoder=decoder):  # as propagation decodes each slice: once, without image terms
            seg.decoder = decoder
            decoder.forget_image()
            return seg.predict(box=DEMO_BOX, points=[[90, 100]], labels=[1], mask_input=first.logits)
        calls[f"WaveSeg fast decoding ({name}), an image's first decode"] = first_call
    # 20 clicks, as late in a long session: the per-click step projects the image tokens (the
    # default) or re-associates onto the prompt side as for few clicks; same model, same prompt
    many = np.stack([np.linspace(60, 120, 20), np.linspace(80, 170, 20)], axis=1)
    many_labels = np.arange(20) % 3 != 2
    many_ref = (torch.from_numpy(g.to_model_xy(many.astype(np.float32)))[None], torch.from_numpy(many_labels.astype(np.int64))[None])

    def many_reference():
        with torch.inference_mode():
            logits, _ = seg.model.decode(encoded.embedding, many_ref, box, mask)
            return logits_to_masks(logits[0], g)
    calls["segment-anything MaskDecoder (torch), 20 clicks"] = many_reference
    for project in (True, False):
        decoder = PromptDecoder(seg.model, "onnx" if "onnxruntime" in backends else "torch")
        decoder.project_image_for_many_clicks = project

        def many_call(decoder=decoder):
            seg.decoder = decoder
            return seg.predict(box=DEMO_BOX, points=many, labels=many_labels.astype(int), mask_input=first.logits)
        form = "image tokens projected (default)" if project else "prompt side re-associated"
        calls[f"WaveSeg fast decoding ({list(backends)[-1]}), 20 clicks, {form}"] = many_call
    times: dict[str, list[float]] = {name: [] for name in calls}
    for fn in calls.values():
        fn()  # warm-up (the onnxruntime graph is exported here)
    for _ in range(repeats):
        for name, fn in calls.items():
            times[name].append(_median_ms(fn, 1))
    return {name: statistics.median(t) for name, t in times.items()}


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
                      "enc": [], "enc_ort": [], "dec": []}
        if onnxruntime_available():
            rows[name]["graph"] = OnnxGraph(lambda encoder=encoder: encoder, ("image",), ("embedding",), required=True)
        seg.set_image(image)
    for _ in range(args.repeats):  # interleaved: each round times every backbone once
        for name, seg in segmenters.items():
            with torch.inference_mode():
                rows[name]["enc"].append(_median_ms(lambda: seg.model.encode(x), 1))
            if "graph" in rows[name]:
                rows[name]["enc_ort"].append(_median_ms(lambda: rows[name]["graph"](x), 1))
            rows[name]["dec"].append(_median_ms(lambda: seg.predict(box=DEMO_BOX, points=[[90, 100]], labels=[1]), 1))

    decoder_ms = _decoder_times(segmenters["litemedsam"], image, args.repeats)

    ref = rows["litemedsam"]
    ref_enc = statistics.median(ref["enc"])
    print(f"torch {torch.__version__}, {args.threads} threads, {args.repeats} repeats, "
          f"slice {image.shape[1]}x{image.shape[0]} (Colin27 T1), prompt = box + 1 click\n")
    ort = bool(ref["enc_ort"])
    ref_ort = statistics.median(ref["enc_ort"]) if ort else None
    print("| backbone | params (M) | GFLOPs | encoder, torch (ms) | speed-up vs litemedsam | encoder, onnxruntime (ms) | speed-up vs litemedsam "
          "| per-prompt decode (ms) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in rows.items():
        enc, dec = statistics.median(r["enc"]), statistics.median(r["dec"])
        enc_ort = f"{statistics.median(r['enc_ort']):.1f} | {ref_ort / statistics.median(r['enc_ort']):.1f}x" if ort else "- | -"
        print(f"| {name} | {r['params'] / 1e6:.2f} | {r['gflops']:.2f} | {enc:.1f} | {ref_enc / enc:.1f}x | {enc_ort} | {dec:.1f} |")
    sam = decoder_ms["segment-anything MaskDecoder (torch)"]
    sam_many = decoder_ms["segment-anything MaskDecoder (torch), 20 clicks"]
    print("\nPer-click step (prompt encoder + mask decoder + mask at the slice's size), box + 1 click (rows marked "
          "20 clicks: box + 20 clicks) + previous logits, same model and inputs:\n")
    print("| decoder | median (ms) | speed-up vs segment-anything's (same prompt) |")
    print("|---|---:|---:|")
    for name, ms in decoder_ms.items():
        print(f"| {name} | {ms:.1f} | {(sam_many if '20 clicks' in name else sam) / ms:.2f}x |")


if __name__ == "__main__":
    main()

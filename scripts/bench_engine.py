#!/usr/bin/env python
"""Engine benchmark: parameters, GFLOPs, median encoder and per-prompt decoder time per backbone.

All backbones run in this one process on the same real slice (the embedded Colin27 T1 sample),
one after another, interleaved over repeats so that machine load affects all alike; ratios are
to ``litemedsam``. Encoders are timed in torch and (when installed) in onnxruntime, which
``Segmenter`` uses by default on the CPU; per-prompt decode is ``predict()`` as shipped. The
decoder (the same for all backbones) is also timed as segment-anything runs it and as WaveSeg
runs it in torch and in onnxruntime. Prints Markdown tables.

With ``--cold-start``: time from process start to the first mask in fresh subprocesses, the way a
CLI call or a first Slicer prompt pays it (interpreter start, imports, model load, onnxruntime
graphs exported or read from the disk cache, reading the sample, ``set_image``, the first box
``predict``), with a cold graph cache (an empty ``$WAVESEG_CACHE``), a warm one (the same
folder again), and the warm cache read by the torch-free ``GraphSegmenter`` that ``waveseg
segment`` uses (same mask, checked; torch never imported, checked), alternated so that machine
load affects all alike; prints the median of each stage and the ratios to cold.

    .venv/bin/python scripts/bench_engine.py [--repeats 15] [--threads 2]
    .venv/bin/python scripts/bench_engine.py --cold-start [--repeats 5] [--threads 1] [--model default] [--batch 8]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
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


# run in a fresh interpreter: stage times from its first line; time.time() at the first mask for the parent
_COLD_CHILD = """
import time; t = [time.perf_counter()]; wall0 = time.time()
import torch; torch.set_num_threads({threads}); t.append(time.perf_counter())
from waveseg import Segmenter, read_image
from waveseg.sample_data import DEMO_BOX, DEMO_SLICE, SAMPLE_T1
t.append(time.perf_counter())
seg = Segmenter.from_pretrained({model!r}); t.append(time.perf_counter())
image = read_image(SAMPLE_T1).array[DEMO_SLICE]; t.append(time.perf_counter())
seg.set_image(image); t.append(time.perf_counter())
mask = seg.predict(box=DEMO_BOX).mask; t.append(time.perf_counter()); done = time.time()
import json; print(json.dumps({{"stages": [b - a for a, b in zip(t, t[1:])], "done": done, "pixels": int(mask.sum()),
    "cached": [g.loaded_from_cache for g in (seg._encoder_graph, seg.decoder._first_graph) if g is not None]}}))
"""
# the same steps without torch, as `waveseg segment` takes them once the cache is warm (waveseg.graph_segmenter)
_TORCH_FREE_CHILD = """
import time; t = [time.perf_counter()]; wall0 = time.time()
t.append(time.perf_counter())  # no torch to import
from waveseg import read_image
from waveseg.graph_segmenter import GraphSegmenter
from waveseg.sample_data import DEMO_BOX, DEMO_SLICE, SAMPLE_T1
t.append(time.perf_counter())
seg = GraphSegmenter.from_cache({model!r}, threads={threads}); t.append(time.perf_counter())
image = read_image(SAMPLE_T1).array[DEMO_SLICE]; t.append(time.perf_counter())
encoded = seg.encode(image); t.append(time.perf_counter())
mask = seg.predict_encoded(encoded, box=DEMO_BOX).mask; t.append(time.perf_counter()); done = time.time()
import json, sys; print(json.dumps({{"stages": [b - a for a, b in zip(t, t[1:])], "done": done, "pixels": int(mask.sum()),
    "cached": [True], "torch imported": "torch" in sys.modules}}))
"""
_STAGES = ("import torch", "import waveseg", "load model", "read sample", "set_image", "first predict",
           "interpreter start and the rest")


def cold_start(args: argparse.Namespace) -> None:
    """Median seconds from process start to the first mask, cold and warm graph cache (module doc)."""
    codes = {"cold": _COLD_CHILD, "warm": _COLD_CHILD, "torch-free": _TORCH_FREE_CHILD}
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    runs: dict[str, list[dict]] = {kind: [] for kind in codes}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            env["WAVESEG_CACHE"] = os.path.join(tmp, f"cache{r}")  # empty: cold; the next runs find it warm
            for kind, code in codes.items():
                start = time.time()
                out = subprocess.run([sys.executable, "-c", code.format(threads=args.threads, model=args.model)], env=env,
                                     capture_output=True, text=True, check=True)
                result = json.loads(out.stdout.strip().splitlines()[-1])
                result["total"] = result["done"] - start
                result["stages"].append(result["total"] - sum(result["stages"]))  # interpreter start and the rest
                if all(result["cached"]) != (kind != "cold"):
                    raise SystemExit(f"{kind} run {r}: graphs read from the cache: {result['cached']}")
                if result.get("torch imported") or (kind != "cold" and result["pixels"] != runs["cold"][-1]["pixels"]):
                    raise SystemExit(f"{kind} run {r}: torch imported, or another mask ({result['pixels']} pixels)")
                runs[kind].append(result)
    med = {kind: {"total": statistics.median(x["total"] for x in rs),
                  **{s: statistics.median(x["stages"][i] for x in rs) for i, s in enumerate(_STAGES)}}
           for kind, rs in runs.items()}
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__}, {args.threads} thread(s), model {args.model!r}, {args.repeats} fresh processes of each kind "
          f"(cold, warm, torch-free), alternated; 1-minute load average at the end {load:.1f} on {os.cpu_count()} cores\n")
    print("| stage (median s; the stages' medians need not add up to the total's) | cold graph cache | warm graph cache "
          "| warm, torch-free (GraphSegmenter) |")
    print("|---|---:|---:|---:|")
    print("| process start to first mask | " + " | ".join(f"{med[k]['total']:.2f}" for k in codes) + " |")
    for s in _STAGES:
        print(f"| {s} | " + " | ".join(f"{med[k][s]:.2f}" for k in codes) + " |")
    print(f"\nwarm / cold: {med['warm']['total'] / med['cold']['total']:.2f}; "
          f"torch-free / cold: {med['torch-free']['total'] / med['cold']['total']:.2f}")
    if args.batch:
        batch_vs_single(args, env)


def batch_vs_single(args: argparse.Namespace, env: dict) -> None:
    """``--batch N``: N box prompts on the sample's slices as N ``waveseg segment`` calls and as one
    ``waveseg batch`` call (same prompts, same warm graph cache), wall-clock seconds each."""
    from waveseg.sample_data import DEMO_BOX, SAMPLE_T1

    cli = [sys.executable, "-m", "waveseg.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        env = {**env, "WAVESEG_CACHE": os.path.join(tmp, "cache")}
        items = [{"image": str(SAMPLE_T1), "slice": k % 16, "box": list(DEMO_BOX), "output": f"batch{k}.nii.gz"}
                 for k in range(args.batch)]
        with open(os.path.join(tmp, "prompts.json"), "w") as handle:
            json.dump(items, handle)
        subprocess.run([*cli, "batch", "prompts.json", "--model", args.model], env=env, cwd=tmp, check=True,
                       capture_output=True)  # warms the graph cache for both sides
        start = time.perf_counter()
        for item in items:
            subprocess.run([*cli, "segment", item["image"], "--slice", str(item["slice"]), "--box", *map(str, item["box"]),
                            "--model", args.model, "-o", os.path.join(tmp, "single.nii.gz")], env=env, check=True, capture_output=True)
        single = time.perf_counter() - start
        start = time.perf_counter()
        subprocess.run([*cli, "batch", "prompts.json", "--model", args.model], env=env, cwd=tmp, check=True, capture_output=True)
        batch = time.perf_counter() - start
    print(f"\n{args.batch} slices, one box each, warm graph cache: {args.batch} `waveseg segment` calls {single:.1f} s "
          f"({single / args.batch:.2f} s per slice), one `waveseg batch` call {batch:.1f} s ({batch / args.batch:.2f} s per slice); "
          f"batch / single {batch / single:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=None, help="default 15 (5 with --cold-start)")
    parser.add_argument("--threads", type=int, default=None, help="default: torch's (1 with --cold-start)")
    parser.add_argument("--cold-start", action="store_true", help="time process start to first mask, cold and warm cache")
    parser.add_argument("--model", default="default", help="with --cold-start: the model to load")
    parser.add_argument("--batch", type=int, default=0, help="with --cold-start: also time N slices as N CLI calls and as one batch")
    args = parser.parse_args()
    if args.cold_start:
        args.repeats, args.threads = args.repeats or 5, args.threads or 1
        return cold_start(args)
    args.repeats, args.threads = args.repeats or 15, args.threads or torch.get_num_threads()
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

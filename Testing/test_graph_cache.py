"""The on-disk cache of exported onnxruntime graphs (waveseg.graph_cache, used by waveseg.onnx_graph).

Real model (the shipped wave-gms), real export, real onnxruntime: a second segmenter with the same
weights reads every graph from disk and gives bit-identical outputs; a changed weight (as an
adaptation profile changes them in memory) never runs a graph cached for other weights; a damaged
cache file is rebuilt, never run.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from waveseg import graph_cache
from waveseg.sample_data import DEMO_BOX

pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("WAVESEG_CACHE", str(tmp_path))
    return tmp_path / "graphs"


def _segmenter():
    from waveseg.predictor import Segmenter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return Segmenter.from_pretrained("wave-gms", runtime="onnx")


def _graphs(seg):
    d = seg.decoder
    return {"encoder": seg._encoder_graph, "first": d._first_graph, "terms": d._terms_graph, "single": d._graph}


def _run(seg, image):
    """Box (an image's first decode), then a click on it (image terms + per-click graph)."""
    seg.set_image(image)
    box = seg.predict(box=DEMO_BOX)
    click = seg.predict(box=DEMO_BOX, points=[[90, 100]], labels=[1], mask_input=box.logits)
    return seg._encoded.embedding.numpy().copy(), box.logits, click.logits


def test_cache_hit_gives_identical_outputs(cache, sample_slice):
    first = _segmenter()
    before = _run(first, sample_slice)
    assert not any(g.loaded_from_cache for g in _graphs(first).values())
    files = sorted(cache.glob("*.onnx"))
    assert len(files) == 4  # encoder, first decode, image terms, per-click decode

    second = _segmenter()
    after = _run(second, sample_slice)
    assert all(g.loaded_from_cache for g in _graphs(second).values())
    assert sorted(cache.glob("*.onnx")) == files
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)


def test_changed_weights_never_use_a_stale_graph(cache, sample_slice):
    base = _run(_segmenter(), sample_slice)
    files = set(cache.glob("*.onnx"))

    changed = _segmenter()  # as apply_profile does: weights changed in place before the first use
    with torch.no_grad():
        for module in (changed.model.image_encoder, changed.model.mask_decoder):
            for p in module.parameters():
                p.mul_(1.05)
    embedding, box_logits, _ = _run(changed, sample_slice)
    assert not any(g.loaded_from_cache for g in _graphs(changed).values())
    assert len(set(cache.glob("*.onnx")) - files) == 4  # a new graph for each
    assert not np.allclose(embedding, base[0])
    # the graphs run the changed weights: onnxruntime agrees with torch on them
    with torch.inference_mode():
        x = torch.from_numpy(embedding)
        reference = changed.model.image_encoder(_model_input(sample_slice))
    np.testing.assert_allclose(x.numpy(), reference.numpy(), atol=2e-4, rtol=1e-3)

    # changed again in memory after the graphs ran (adaptation of a live segmenter): re-exported
    with torch.no_grad():
        next(changed.model.mask_decoder.parameters()).add_(0.01)
    changed.predict(box=DEMO_BOX)
    assert not changed.decoder._first_graph.loaded_from_cache
    assert len(set(cache.glob("*.onnx")) - files) == 5


def _model_input(image):
    from waveseg.predictor import to_model_input
    from waveseg.preprocess import ResizeGeometry, normalize_intensity

    normalized = normalize_intensity(image)
    return to_model_input(normalized, ResizeGeometry.for_shape(*normalized.shape[:2]))


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage"])
def test_damaged_cache_file_is_rebuilt(cache, sample_slice, damage):
    before = _run(_segmenter(), sample_slice)
    for path in cache.glob("*.onnx"):
        raw = bytearray(path.read_bytes())
        if damage == "truncate":
            raw = raw[: len(raw) // 2]
        elif damage == "flip":
            raw[-100] ^= 0xFF  # one byte of the weights: still a parseable graph, but not the one exported
        else:
            raw = bytearray(b"not a graph")
        path.write_bytes(bytes(raw))

    seg = _segmenter()
    after = _run(seg, sample_slice)
    assert not any(g.loaded_from_cache for g in _graphs(seg).values())
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)
    for path in cache.glob("*.onnx"):  # rewritten whole
        assert graph_cache.load(path.stem) is not None


def test_cache_off_writes_nothing(tmp_path, monkeypatch, sample_slice):
    monkeypatch.setenv("WAVESEG_CACHE", "off")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    _run(_segmenter(), sample_slice)
    assert graph_cache.cache_dir() is None
    assert not list(tmp_path.rglob("*.onnx"))


def test_prune_removes_least_recently_used(tmp_path, monkeypatch):
    monkeypatch.setenv("WAVESEG_CACHE", str(tmp_path))
    monkeypatch.setenv("WAVESEG_CACHE_MB", str(2.5 * 1000 / 2**20))  # room for two 1000-byte graphs
    import os

    for age, key in enumerate(["c" * 64, "b" * 64, "a" * 64]):  # c oldest
        graph_cache.store(key, b"x" * 1000)
        os.utime(graph_cache.cache_dir() / f"{key}.onnx", (1000 + age, 1000 + age))
    graph_cache.store("d" * 64, b"y" * 1000)
    left = sorted(p.stem[0] for p in graph_cache.cache_dir().glob("*.onnx"))
    assert left == ["a", "d"]

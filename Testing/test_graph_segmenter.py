"""The torch-free first mask (waveseg.graph_segmenter): the graphs an earlier Segmenter cached,
numpy pre- and post-processing equal to torch's, the same masks, and no torch imported.

Real shipped model, real onnxruntime, a real brain slice and the CLI as a user runs it; each
test has its own graph cache folder, so nothing depends on what another test cached.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from waveseg.errors import WaveSegError
from waveseg.sample_data import DEMO_BOX, DEMO_SLICE, SAMPLE_T1

pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")
F = torch.nn.functional

SMALL_BOX = (80, 90, 105, 112)  # about 25 pixels: ROI zoom encodes a crop around it


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("WAVESEG_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "graphs"


@pytest.mark.parametrize("antialias", [True, False])
@pytest.mark.parametrize("shapes", [((512, 512), (256, 256)), ((217, 181), (256, 213)), ((256, 256), (217, 181)),
                                    ((300, 200), (256, 171)), ((7, 5), (256, 183))])
def test_numpy_resizing_gives_torchs_numbers(shapes, antialias):
    from waveseg.resample import resize_bilinear

    (h, w), out_hw = shapes
    x = np.random.default_rng(h * w).random((2, h, w), dtype=np.float32) * 20 - 10  # logit-like range
    ref = F.interpolate(torch.from_numpy(x)[None], size=out_hw, mode="bilinear", align_corners=False, antialias=antialias)[0]
    np.testing.assert_allclose(resize_bilinear(x, out_hw, antialias), ref.numpy(), atol=2e-4, rtol=0)


def _prompts(session):
    """Box, positive click, negative click, then a small box (ROI zoom): the masks after each."""
    return [session.set_box(DEMO_BOX), session.add_click(90, 100, True), session.add_click(60, 60, False),
            session.set_box(SMALL_BOX)]


def test_cached_graphs_give_the_segmenters_masks_without_it(cache, sample_slice):
    from waveseg.graph_segmenter import GraphSegmenter
    from waveseg.predictor import Segmenter

    assert GraphSegmenter.from_cache("default") is None  # nothing cached yet: the caller uses Segmenter
    seg = Segmenter.from_pretrained("default")
    session = seg.session(sample_slice)
    expected = _prompts(session)
    graphs = GraphSegmenter.from_cache("default", threads=1)
    assert graphs is not None
    fast = graphs.session(sample_slice)
    got = _prompts(fast)
    assert fast.state.roi is not None and fast.state.roi == session.state.roi  # the last box was zoomed on
    for want, have in zip(expected, got):
        assert want.any() and np.array_equal(want, have)
    assert fast.state.score == pytest.approx(session.state.score, abs=1e-4)
    # a mask prompt (a saved segmentation) refined by a click, the same way
    encoded = seg.encode(sample_slice)
    start = expected[0]
    want = seg.predict_encoded(encoded, points=[[60, 60]], labels=[0], mask_input=start).mask
    have = graphs.predict_encoded(graphs.encode(sample_slice), points=[[60, 60]], labels=[0], mask_input=start).mask
    assert np.array_equal(want, have)


def test_the_cli_segments_without_importing_torch_once_the_cache_is_warm(cache, tmp_path, sample_slice):
    from waveseg.io import read_image
    from waveseg.predictor import Segmenter

    seg = Segmenter.from_pretrained("default")
    expected = seg.session(sample_slice).set_box(DEMO_BOX)  # also warms the cache, as a first CLI call would
    code = (
        "import json, sys\nfrom waveseg.cli import main\n"
        f"rc = main(['segment', {str(SAMPLE_T1)!r}, '--slice', '{DEMO_SLICE}', '--box', *map(str, {list(DEMO_BOX)!r}),"
        f" '-o', {str(tmp_path / 'mask.nii.gz')!r}])\n"
        "print(json.dumps({'rc': rc, 'torch': 'torch' in sys.modules}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"rc": 0, "torch": False}
    assert "from the graph cache: done" in result.stderr
    written = read_image(tmp_path / "mask.nii.gz").array[DEMO_SLICE] > 0
    assert np.array_equal(written, expected)


def test_changed_weights_and_damaged_graphs_are_never_run_without_torch(cache, sample_slice):
    from waveseg.graph_segmenter import GraphSegmenter
    from waveseg.predictor import Segmenter

    seg = Segmenter.from_pretrained("default")
    with torch.no_grad():
        seg.model.mask_decoder.iou_prediction_head.layers[0].bias.add_(0.5)  # as an adaptation step changes them
    seg.session(sample_slice).set_box(DEMO_BOX)
    assert any(cache.glob("*.onnx"))  # graphs of the changed weights are cached (for torch) ...
    assert not any(cache.glob("*.alias")) and GraphSegmenter.from_cache("default") is None  # ... but not as the file's
    Segmenter.from_pretrained("default").session(sample_slice).set_box(DEMO_BOX)
    assert GraphSegmenter.from_cache("default") is not None
    for graph in cache.glob("*.onnx"):  # truncated files (a full disk, a half copy)
        graph.write_bytes(graph.read_bytes()[:1000])
    assert GraphSegmenter.from_cache("default") is None
    assert not any(cache.glob("*.alias"))  # dangling aliases removed; the next Segmenter start rebuilds all


def test_what_needs_torch_is_refused_with_a_clear_error(cache, sample_slice):
    from waveseg.graph_segmenter import GraphSegmenter, NeedsTorch
    from waveseg.predictor import Segmenter

    Segmenter.from_pretrained("default").session(sample_slice).set_box(DEMO_BOX)
    graphs = GraphSegmenter.from_cache("default")
    encoded = graphs.encode(sample_slice)
    mask = graphs.predict_encoded(encoded, box=DEMO_BOX).mask
    for kwargs in ({"box": DEMO_BOX, "multimask": True}, {"box": DEMO_BOX, "scribbles": [(np.array([[50, 50], [60, 60]]), True)]},
                   {"mask_input": mask}):
        with pytest.raises(NeedsTorch, match="Segmenter"):
            graphs.predict_encoded(encoded, **kwargs)
    with pytest.raises(WaveSegError, match="at least one prompt"):
        graphs.predict_encoded(encoded)
    with pytest.raises(WaveSegError, match="outside"):
        graphs.predict_encoded(encoded, points=[[900, 2]], labels=[1])
    assert GraphSegmenter.from_cache("litemedsam") is None  # a bare backbone has no weights file to key graphs by

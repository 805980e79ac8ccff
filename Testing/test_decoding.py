"""The fast per-click step: same numbers as segment-anything's decoder, in torch and onnxruntime,
and never a stale graph or stale image terms after the weights or the image change."""

import numpy as np
import pytest
import torch

from waveseg.prompting.click_pinning import pin_clicks
from waveseg.errors import WaveSegError
from waveseg.metrics import iou
from waveseg.predictor import Segmenter
from waveseg.prompting.tokens import point_tokens
from waveseg.sample_data import DEMO_BOX

CLICKS = [[90, 100], [60, 150]]
LABELS = [1, 0]
# enough clicks for the form that projects the image tokens (FastMaskDecoding.prefers_projected_image)
MANY_CLICKS = [[40 + 9 * i, 60 + 11 * i] for i in range(14)]
MANY_LABELS = [int(i % 3 != 2) for i in range(14)]


@pytest.fixture(scope="module")
def segmenters():
    """The shipped default model, decoded in onnxruntime and in torch (one shared model)."""
    onnx = Segmenter.from_pretrained("default", runtime="onnx")
    torch_seg = Segmenter(onnx.model, onnx.card, runtime="torch")
    return onnx, torch_seg


def _reference(seg: Segmenter, encoded, points=None, labels=None, box=None, mask_input=None, multimask=False):
    """segment-anything's own prompt encoder + MaskDecoder (PromptableSegmenter.decode)."""
    g = encoded.geometry
    point_arg = None if points is None else (torch.from_numpy(g.to_model_xy(np.array(points, np.float32)))[None],
                                             torch.tensor([labels]))
    box_arg = None if box is None else torch.from_numpy(g.to_model_xy(np.array(box, np.float32).reshape(2, 2)).reshape(1, 4))
    mask_arg = None if mask_input is None else torch.from_numpy(mask_input[None])
    if mask_arg is not None and point_arg is not None and seg.pin_clicks:  # as Segmenter does (waveseg.prompting.click_pinning)
        mask_arg = pin_clicks(mask_arg, point_arg[0][0], point_arg[1][0])
    with torch.inference_mode():
        logits, scores = seg.model.decode(encoded.embedding, point_arg, box_arg, mask_arg, multimask)
    return logits[0].numpy(), scores[0].numpy()


PROMPTS = {
    "box": dict(box=DEMO_BOX),
    "clicks": dict(points=CLICKS, labels=LABELS),
    "box and clicks": dict(points=CLICKS[:1], labels=LABELS[:1], box=DEMO_BOX),
    "many clicks": dict(points=MANY_CLICKS, labels=MANY_LABELS),
    "box and many clicks": dict(points=MANY_CLICKS, labels=MANY_LABELS, box=DEMO_BOX),
}


@pytest.mark.parametrize("backend", ["onnx", "torch"])
@pytest.mark.parametrize("prompt", sorted(PROMPTS))
@pytest.mark.parametrize("with_mask", [False, True])
@pytest.mark.parametrize("decode", ["first", "with image terms"])
def test_fast_decoding_gives_the_decoders_numbers(segmenters, sample_slice, backend, prompt, with_mask, decode):
    seg = segmenters[0] if backend == "onnx" else segmenters[1]
    encoded = seg.encode(sample_slice)
    # an image's first decode computes its first layer in full; later ones reuse its image terms
    earlier = seg.predict_encoded(encoded, box=DEMO_BOX) if decode == "with image terms" else None
    assert seg.decoder.has_terms(encoded.embedding) is False
    mask_input = None
    if with_mask:
        mask_input = (earlier or seg.predict_encoded(seg.encode(sample_slice), box=DEMO_BOX)).logits
    kwargs = dict(PROMPTS[prompt], mask_input=mask_input)
    out = seg.predict_encoded(encoded, **kwargs)
    assert seg.decoder.has_terms(encoded.embedding) is (decode == "with image terms")
    logits, scores = _reference(seg, encoded, **kwargs)
    assert np.abs(out.logits - logits).max() < 1e-3
    assert out.score == pytest.approx(float(scores[0]), abs=1e-4)


def test_multimask_decoding_gives_the_decoders_three_candidates(segmenters, sample_slice):
    seg = segmenters[0]
    encoded = seg.encode(sample_slice)
    out = seg.predict_encoded(encoded, points=CLICKS[:1], labels=LABELS[:1], multimask=True)
    logits, scores = _reference(seg, encoded, points=CLICKS[:1], labels=LABELS[:1], multimask=True)
    np.testing.assert_allclose(out.scores, scores, atol=1e-4)
    assert out.masks.shape[0] == 3
    best = int(np.argmax(scores))
    assert np.abs(out.logits[0] - logits[best]).max() < 1e-3


def test_changed_weights_are_never_decoded_with_a_stale_graph_or_stale_image_terms(sample_slice):
    seg = Segmenter.from_pretrained("default", runtime="onnx")
    encoded = seg.encode(sample_slice)
    seg.predict_encoded(encoded, box=DEMO_BOX)
    before = seg.predict_encoded(encoded, box=DEMO_BOX)  # the second decode: image terms cached
    # what adaptation does: optimiser steps change decoder weights in place, including the
    # first layer's key projection, whose image part is cached per image
    with torch.no_grad():
        seg.model.mask_decoder.transformer.layers[0].cross_attn_token_to_image.k_proj.weight.mul_(1.5)
        seg.model.mask_decoder.output_upscaling[0].bias.add_(0.3)
    after = seg.predict_encoded(encoded, box=DEMO_BOX)
    logits, _ = _reference(seg, encoded, box=DEMO_BOX)
    assert np.abs(after.logits - logits).max() < 1e-3
    assert np.abs(after.logits - before.logits).max() > 0.1  # the change did matter


def test_every_step_runs_in_onnxruntime_and_the_model_stays_in_eval_mode(sample_slice):
    seg = Segmenter.from_pretrained("default", runtime="onnx")
    encoded = seg.encode(sample_slice)
    seg.predict_encoded(encoded, box=DEMO_BOX)  # first decode
    seg.predict_encoded(encoded, box=DEMO_BOX)  # image terms, then the per-click step
    seg.predict_encoded(encoded, points=MANY_CLICKS, labels=MANY_LABELS)  # the per-click step for many clicks
    # exporting a module restores its training flag recursively: a wrapper left in training
    # mode once put the whole model in training mode, and everything then ran in torch
    assert not any(m.training for m in seg.model.modules())
    decoder = seg.decoder
    assert seg._encoder_graph.exported and decoder._first_graph.exported and decoder._terms_graph.exported and decoder._graph.exported
    assert decoder._many_graph.exported


def test_a_new_image_gets_its_own_image_terms(segmenters, sample_volume):
    seg = segmenters[0]
    first, second = (seg.encode(sample_volume.array[z]) for z in (6, 10))
    seg.predict_encoded(first, box=DEMO_BOX)
    seg.predict_encoded(first, box=DEMO_BOX)  # the first image's terms are cached
    seg.predict_encoded(second, box=DEMO_BOX)
    out = seg.predict_encoded(second, box=DEMO_BOX)  # the second image's terms
    logits, _ = _reference(seg, second, box=DEMO_BOX)
    assert iou(out.logits[0] > 0, logits[0] > 0) > 0.999


def test_point_tokens_follow_the_onnx_convention():
    from waveseg.preprocess import ResizeGeometry

    g = ResizeGeometry.for_shape(512, 256)  # model frame 256 x 128: factor 0.5
    coords, labels = point_tokens((np.array([[10.0, 20.0]], np.float32), np.array([1])), None, g)
    np.testing.assert_allclose(coords, [[5, 10], [0, 0]])
    np.testing.assert_array_equal(labels, [1, -1])  # a padding point when there is no box
    coords, labels = point_tokens(None, np.array([0, 0, 100, 200], np.float32), g)
    np.testing.assert_allclose(coords, [[0, 0], [50, 100]])
    np.testing.assert_array_equal(labels, [2, 3])


def test_an_unknown_runtime_is_refused(segmenters):
    seg = segmenters[0]
    with pytest.raises(WaveSegError, match="unknown"):
        Segmenter(seg.model, seg.card, runtime="tensorrt")


def test_the_encoder_in_onnxruntime_gives_torchs_embedding_and_follows_weight_changes(sample_slice):
    seg = Segmenter.from_pretrained("default", runtime="onnx")
    torch_seg = Segmenter(seg.model, seg.card, runtime="torch")
    assert seg.runtime == "onnx" and torch_seg.runtime == "torch"
    before = seg.encode(sample_slice).embedding
    assert (before - torch_seg.encode(sample_slice).embedding).abs().max() < 1e-4
    with torch.no_grad():  # what an adaptation step does to the encoder
        next(seg.model.image_encoder.parameters()).mul_(1.5)
    after = seg.encode(sample_slice).embedding
    assert (after - torch_seg.encode(sample_slice).embedding).abs().max() < 1e-4
    assert (after - before).abs().max() > 1e-3  # the change did matter
    seg.model.train()  # training mode (batch norm, dropout): torch's numbers, never a graph of eval mode
    try:
        assert seg._encoder_graph(torch.zeros(1, 3, 256, 256)) is None
        assert seg.decoder._terms_graph(torch.zeros(1, 256, 64, 64)) is None
        assert seg.decoder._first_graph(torch.zeros(1, 256, 64, 64)) is None
    finally:
        seg.model.eval()


def test_a_failed_export_falls_back_to_torch_under_auto_and_is_refused_under_onnx(segmenters, sample_slice, monkeypatch):
    seg = segmenters[0]

    def broken_export(*args, **kwargs):  # e.g. an operator this torch build cannot export
        raise RuntimeError("unsupported operator")

    monkeypatch.setattr(torch.onnx, "export", broken_export)
    monkeypatch.setenv("WAVESEG_CACHE", "off")  # a graph cached by an earlier test would need no export
    auto = Segmenter(seg.model, seg.card, runtime="auto")
    with pytest.warns(RuntimeWarning, match="ONNX export failed"):
        out = auto.predict_encoded(auto.encode(sample_slice), box=DEMO_BOX)
    assert auto.runtime == "torch"
    reference = segmenters[1].predict_encoded(segmenters[1].encode(sample_slice), box=DEMO_BOX)
    np.testing.assert_array_equal(out.mask, reference.mask)
    strict = Segmenter(seg.model, seg.card, runtime="onnx")
    with pytest.raises(WaveSegError, match="cannot export"):
        strict.encode(sample_slice)

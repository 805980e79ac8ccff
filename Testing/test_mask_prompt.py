"""A binary mask as a mask prompt: the model's own edge profile instead of +-10 everywhere."""

import numpy as np
import pytest

from conftest import ritm_clicks
from waveseg.prompting.mask_prompt import INSIDE_LOGIT, OUTSIDE_LOGIT, edge_profile_logits, logit_at_distance, signed_distance
from waveseg.metrics import iou
from waveseg.predictor import MASK_LOGIT, mask_to_logits
from waveseg.preprocess import ResizeGeometry


def test_signed_distance_is_half_a_pixel_at_the_edge_and_grows_away_from_it():
    mask = np.zeros((20, 20), bool)
    mask[5:15, 5:15] = True
    d = signed_distance(mask)
    assert d[5, 10] == 0.5 and d[6, 10] == 1.5 and d[9, 9] == 4.5  # inside, from the top edge
    assert d[4, 10] == -0.5 and d[2, 10] == -2.5  # outside
    assert np.isneginf(signed_distance(np.zeros((4, 4), bool))).all()
    assert np.isposinf(signed_distance(np.ones((4, 4), bool))).all()


def test_the_profile_keeps_the_mask_and_falls_off_at_its_edge():
    mask = np.zeros((64, 64), bool)
    mask[16:48, 20:40] = True
    logits = edge_profile_logits(mask)
    assert np.array_equal(logits > 0, mask)  # the prompt says exactly this mask
    row = logits[32]
    assert np.all(np.diff(row[:30]) >= 0) and np.all(np.diff(row[30:]) <= 0)  # rises to the middle, falls after
    assert 0 < row[20] < 1.5 and -1.5 < row[19] < 0  # soft at the edge, as the model's own logits are
    assert row[30] > 5 and row[0] < -8  # confident away from it
    assert -OUTSIDE_LOGIT <= logits.min() and logits.max() <= INSIDE_LOGIT
    assert np.all(edge_profile_logits(np.zeros((8, 8), bool)) == -OUTSIDE_LOGIT)
    assert np.all(edge_profile_logits(np.ones((8, 8), bool)) == INSIDE_LOGIT)
    assert logit_at_distance(np.array([0.5]))[0] == pytest.approx(INSIDE_LOGIT * np.tanh(0.5 / 3.5))


def test_mask_to_logits_gives_the_same_mask_either_way(brain_mask):
    geometry = ResizeGeometry.for_shape(*brain_mask.shape)
    profiled = mask_to_logits(brain_mask, geometry)[0, 0].numpy()
    flat = mask_to_logits(brain_mask, geometry, profile=False)[0, 0].numpy()
    assert profiled.shape == flat.shape == (256, 256)
    assert np.array_equal(profiled > 0, flat > 0)
    assert set(np.unique(flat)) == {-MASK_LOGIT, MASK_LOGIT}
    assert np.abs(profiled).min() < 2  # the edge is soft


def _ious_on_mask_feedback(segmenter, image, truth, n):
    """IoU after each of n RITM clicks, each decoded with the previous *binary* mask fed back."""
    return [iou(mask, truth) for mask, _ in ritm_clicks(segmenter, image, truth, n, feed_back="mask")]


def test_with_the_profile_a_binary_mask_fed_back_refines_like_logits_on_a_real_slice(fast_segmenter, sample_slice, brain_mask, monkeypatch):
    monkeypatch.setattr(fast_segmenter, "mask_profile", False)  # restored after the test
    flat = _ious_on_mask_feedback(fast_segmenter, sample_slice, brain_mask, 6)
    fast_segmenter.mask_profile = True
    profiled = _ious_on_mask_feedback(fast_segmenter, sample_slice, brain_mask, 6)
    print("IoU after each click, +-10:", np.round(flat, 3), "profile:", np.round(profiled, 3))
    assert profiled[-1] >= flat[-1]

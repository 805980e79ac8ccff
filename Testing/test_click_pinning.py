"""Click pinning: clicks written into the fed-back mask prompt, so corrective clicks are honoured."""

import numpy as np
import torch

from conftest import ritm_clicks
from waveseg.prompting.click_pinning import PIN_LOGIT, PIN_RADIUS, pin_clicks


def test_a_contradicted_click_gets_a_disc_and_box_corners_padding_and_the_input_are_left_alone():
    logits = torch.full((1, 1, 256, 256), -2.0)
    logits[..., 128:] = 2.0  # the right half is foreground
    coords = torch.tensor([[40.0, 50.0], [200.0, 100.0], [10.0, 10.0], [250.0, 250.0], [0.0, 0.0]])
    labels = torch.tensor([1, 0, 2, 3, -1])
    pinned = pin_clicks(logits, coords, labels)
    assert torch.all(logits.abs() == 2.0)  # a copy, not an in-place edit
    assert pinned[0, 0, 50, 40] == PIN_LOGIT and pinned[0, 0, 100, 200] == -PIN_LOGIT
    changed = pinned != logits
    assert not changed[0, 0, :20, :20].any() and not changed[0, 0, 240:, 240:].any()  # labels 2, 3, -1: untouched
    around_positive = int((pinned == PIN_LOGIT).sum())
    assert abs(around_positive - np.pi * PIN_RADIUS**2) <= 2 * np.pi * PIN_RADIUS  # a disc of the documented radius
    assert pinned[0, 0, 50, 40 + int(PIN_RADIUS) + 1] == -2.0


def test_clicks_the_logits_already_agree_with_are_left_alone():
    logits = torch.full((1, 1, 256, 256), 15.0)
    logits[..., 100:, :] = -15.0
    pinned = pin_clicks(logits, torch.tensor([[50.0, 50.0], [50.0, 150.0]]), torch.tensor([1, 0]))
    assert torch.equal(pinned, logits)


def test_later_clicks_win_where_discs_of_opposite_labels_overlap():
    pinned = pin_clicks(torch.zeros(1, 1, 256, 256), torch.tensor([[100.0, 100.0], [101.0, 100.0]]), torch.tensor([1, 0]))
    assert pinned[0, 0, 100, 100] == -PIN_LOGIT


def _honoured(segmenter, image, truth, n):
    """For each of n RITM clicks (logits fed back), whether its own pixel came out right."""
    return [bool(mask[int(y), int(x)]) == bool(label) for mask, (x, y, label) in ritm_clicks(segmenter, image, truth, n)]


def test_with_pinning_every_corrective_click_is_honoured_on_a_real_slice(fast_segmenter, sample_slice, brain_mask, monkeypatch):
    monkeypatch.setattr(fast_segmenter, "pin_clicks", False)  # restored after the test
    unpinned = _honoured(fast_segmenter, sample_slice, brain_mask, 10)
    fast_segmenter.pin_clicks = True
    pinned = _honoured(fast_segmenter, sample_slice, brain_mask, 10)
    # Why pinning exists: the shipped decoder alone ignores some corrective clicks on this slice
    # (the RITM rule then clicks the same spot again). Should a future model honour them all
    # unaided, this first assertion documents that pinning is no longer needed there.
    assert not all(unpinned)
    assert all(pinned)


def test_training_pins_the_simulated_clicks_into_the_fed_back_logits_only_when_asked():
    from waveseg.training.simulated_prompts import SimulatedPromptStep

    logits = torch.zeros(1, 1, 256, 256)
    logits[..., 60:80, 50:70] = 3.0  # a wrong foreground blob under the background click
    clicks = [(30.0, 40.0, 1), (60.0, 70.0, 0)]
    pinned = SimulatedPromptStep(torch.nn.Identity(), pin_clicks=True)._mask_prompt(logits, clicks)
    assert pinned[0, 0, 40, 30] == PIN_LOGIT and pinned[0, 0, 70, 60] == -PIN_LOGIT
    assert SimulatedPromptStep(torch.nn.Identity())._mask_prompt(logits, clicks) is logits  # off by default
    assert SimulatedPromptStep(torch.nn.Identity(), pin_clicks=True)._mask_prompt(None, clicks) is None  # first round

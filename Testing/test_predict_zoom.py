"""ROI zoom in ``Segmenter.predict``: a small box is answered from a crop, as a session does,
while ``logits`` stay in the whole image's frame and refine in the same crop when fed back."""

import numpy as np
import pytest
import torch

from waveseg.prompting.box_zoom import crop_logits_to_frame
from waveseg.metrics import dice
from waveseg.predictor import logits_to_masks
from waveseg.preprocess import ResizeGeometry
from waveseg.sample_data import DEMO_BOX

SMALL_BOX = (80, 90, 100, 110)  # 21 px on a 217 x 181 slice: below the 25 % threshold
CLICKS = [((90, 100), True), ((102, 100), False), ((85, 95), True)]


@pytest.fixture
def seg(fast_segmenter, sample_slice, monkeypatch):
    monkeypatch.setattr(fast_segmenter, "roi_zoom", "auto")
    fast_segmenter.set_image(sample_slice)
    return fast_segmenter


def test_a_small_box_and_its_clicks_give_the_sessions_masks(seg, sample_slice):
    session = seg.session(sample_slice, roi_zoom="auto")
    expected = [session.set_box(SMALL_BOX)]
    out = seg.predict(box=SMALL_BOX)
    got = [out.mask]
    points, labels = [], []
    for (x, y), positive in CLICKS:
        expected.append(session.add_click(x, y, positive))
        points.append((x, y))
        labels.append(int(positive))
        out = seg.predict(points=points, labels=labels, box=SMALL_BOX, mask_input=out.logits)
        got.append(out.mask)
    assert session.state.roi is not None  # the session zoomed throughout
    for a, b in zip(expected, got):
        assert np.array_equal(a, b)


def test_zoomed_logits_are_in_the_whole_frame_and_agree_with_the_mask(seg, sample_slice):
    out = seg.predict(box=SMALL_BOX)
    assert out.logits.shape == (1, 256, 256) and out.logits.dtype == np.float32
    assert out.mask.any() and not out.mask[:, :60].any()  # pasted back inside the crop only
    geometry = ResizeGeometry.for_shape(*sample_slice.shape)
    from_logits = logits_to_masks(torch.from_numpy(out.logits), geometry)[0]
    # the whole frame is coarser than the crop's frame, so the outlines differ by about one frame pixel
    assert dice(from_logits, out.mask) >= 0.85


def test_a_copy_of_the_logits_refines_in_the_crop_and_a_foreign_mask_is_cropped(seg):
    first = seg.predict(box=SMALL_BOX)
    click = dict(points=[(90, 100)], labels=[1], box=SMALL_BOX)
    original = seg.predict(mask_input=first.logits, **click)
    assert np.array_equal(original.mask, seg.predict(mask_input=first.logits.copy(), **click).mask)
    # a bool mask of the image's shape is cropped and given the edge profile, in the same crop
    as_mask = seg.predict(mask_input=first.mask, **click)
    assert dice(as_mask.mask, original.mask) >= 0.8


def test_roi_zoom_off_or_a_large_box_is_the_plain_whole_image_prediction(seg, monkeypatch):
    plain = seg.predict_encoded(seg._encoded, box=DEMO_BOX)
    assert np.array_equal(seg.predict(box=DEMO_BOX).mask, plain.mask)  # large: not zoomed
    monkeypatch.setattr(seg, "roi_zoom", False)
    assert np.array_equal(seg.predict(box=SMALL_BOX).mask, seg.predict_encoded(seg._encoded, box=SMALL_BOX).mask)


def test_crop_logits_map_back_to_the_same_pixels():
    """A crop's logits that are positive on a square come back positive on that square."""
    image_hw, roi = (300, 200), (50, 100, 110, 160)  # a 60 x 60 crop
    crop_geometry, frame_geometry = ResizeGeometry.for_shape(60, 60), ResizeGeometry.for_shape(*image_hw)
    crop_logits = np.full((1, 256, 256), -5.0, np.float32)
    crop_logits[0, 64:192, 64:192] = 5.0  # crop pixels 15..44 in both axes
    frame = crop_logits_to_frame(crop_logits, crop_geometry, roi, frame_geometry)
    mask = logits_to_masks(torch.from_numpy(frame), frame_geometry)[0]
    truth = np.zeros(image_hw, bool)
    truth[115:145, 65:95] = True  # image rows 100 + 15..44, columns 50 + 15..44
    assert dice(mask, truth) >= 0.95
    assert frame[0, 0, 0] == -10.0 and not mask[:100].any() and not mask[:, :50].any()

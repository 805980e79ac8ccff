"""Interactive session: refinement, undo/redo exactness, one encoding per image, ROI zoom."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from waveseg.metrics import dice
from waveseg.errors import InvalidPromptError
from waveseg.sample_data import DEMO_BOX


class CountingSegmenter:
    """Wraps a Segmenter and counts encoder calls (a real model underneath, not a mock)."""

    def __init__(self, segmenter):
        self._segmenter = segmenter
        self.encodes = 0

    def encode(self, image, window=None):
        self.encodes += 1
        return self._segmenter.encode(image, window)

    def __getattr__(self, name):
        return getattr(self._segmenter, name)


@pytest.fixture(scope="module")
def litemedsam_session(litemedsam, sample_slice):
    return litemedsam.session(sample_slice, roi_zoom=False)


def test_clicks_refine_the_box_mask_on_real_mri(litemedsam_session, brain_mask):
    s = litemedsam_session
    s.reset()
    box_mask = s.set_box(DEMO_BOX)
    missed = brain_mask & ~box_mask
    rows, cols = np.nonzero(missed)
    refined = s.add_click(int(cols[len(cols) // 2]), int(rows[len(rows) // 2]), positive=True)
    assert dice(refined, brain_mask) > dice(box_mask, brain_mask)
    assert s.state.logits is not None and len(s.state.points) == 1


def test_image_is_encoded_once_for_many_prompts(fast_segmenter, sample_slice):
    counting = CountingSegmenter(fast_segmenter)
    from waveseg.session import InteractiveSession

    s = InteractiveSession(counting, sample_slice, roi_zoom=False)
    s.set_box(DEMO_BOX)
    s.add_click(90, 100)
    s.add_click(20, 20, positive=False)
    s.undo()
    s.redo()
    s.clear_box()
    assert counting.encodes == 1


def test_roi_zoom_encodes_a_crop_around_a_small_target(fast_segmenter, sample_slice):
    counting = CountingSegmenter(fast_segmenter)
    from waveseg.session import InteractiveSession

    s = InteractiveSession(counting, sample_slice, roi_zoom="auto")
    small = (80, 90, 100, 110)  # 21 px on a 217 px image: below the 25 % threshold
    mask = s.set_box(small)
    x0, y0, x1, y1 = s.state.roi
    assert x0 <= 80 and y0 <= 90 and x1 > 100 and y1 > 110 and (x1 - x0) < 181
    assert not mask[:y0].any() and not mask[y1:].any()  # pasted back inside the crop only
    s.add_click(90, 100)  # same crop: no new encoding, and the full image was never needed
    assert counting.encodes == s.encodings == 1
    big = InteractiveSession(counting, sample_slice, roi_zoom="auto")
    big.set_box(DEMO_BOX)
    assert big.state.roi is None


def test_a_zoomed_session_keeps_its_crop_while_the_target_still_fits():
    from waveseg.prompting.roi import choose_roi, keep_or_move_roi

    hw = (256, 256)
    first = np.array([100.0, 100.0, 119.0, 119.0])  # a 20-pixel target
    crop = choose_roi(first, hw, "auto")
    assert crop == (84, 84, 134, 134)
    nudged = first + [-2, 1, 3, 2]  # the mask after a click: a few pixels different
    assert choose_roi(nudged, hw, "auto") != crop  # a fresh crop would move ...
    assert keep_or_move_roi(crop, choose_roi(nudged, hw, "auto"), nudged, hw) == crop  # ... the kept one does not
    grown = np.array([90.0, 100.0, 119.0, 119.0])  # now within 5 px of the crop's left edge
    assert keep_or_move_roi(crop, choose_roi(grown, hw, "auto"), grown, hw) == choose_roi(grown, hw, "auto")
    shrunk = np.array([108.0, 108.0, 111.0, 111.0])  # a 4-pixel target: the old crop is too wide for it
    assert keep_or_move_roi(crop, choose_roi(shrunk, hw, "auto"), shrunk, hw) == (94, 94, 126, 126)
    at_border = np.array([0.0, 100.0, 19.0, 119.0])  # touching the image's edge: no margin needed there
    border_crop = choose_roi(at_border, hw, "auto")
    assert border_crop[0] == 0
    moved = at_border + [0, 0, 1, 1]
    assert keep_or_move_roi(border_crop, choose_roi(moved, hw, "auto"), moved, hw) == border_crop
    assert keep_or_move_roi(None, crop, first, hw) == crop  # nothing to keep
    assert keep_or_move_roi(crop, None, np.array([0.0, 0.0, 200.0, 200.0]), hw) is None  # grown too big to zoom


def test_a_click_just_outside_the_box_keeps_the_zoomed_crop_and_its_encoding(fast_segmenter, sample_slice):
    from waveseg.session import InteractiveSession

    encodes = {}
    for keep in (True, False):
        counting = CountingSegmenter(fast_segmenter)
        s = InteractiveSession(counting, sample_slice, roi_zoom="auto")
        s.keep_crop = keep
        s.set_box((80, 90, 100, 110))
        crop = s.state.roi
        s.add_click(102, 100)  # widens the target's extent by 2 px: a fresh crop would move
        assert (s.state.roi == crop) == keep
        encodes[keep] = counting.encodes
        assert s.encodings == counting.encodes  # the session counts its own encodings
    assert encodes == {True: 1, False: 2}


def test_auto_zoom_needs_a_box_while_true_also_zooms_on_the_masks_extent(fast_segmenter, sample_slice):
    small = np.zeros(sample_slice.shape[:2], dtype=bool)
    small[95:115, 85:105] = True  # a 20-pixel target, below the 25 % threshold
    rois = {}
    for mode in ("auto", True):
        s = fast_segmenter.session(sample_slice, roi_zoom=mode)
        s.set_mask(small)
        s.add_click(95, 105)
        rois[mode] = s.state.roi
        s.set_box((85, 95, 104, 114))
        assert s.state.roi is not None  # with a box both zoom
    assert rois["auto"] is None and rois[True] is not None


def test_start_from_an_existing_mask_then_refine(fast_segmenter, sample_slice, brain_mask):
    s = fast_segmenter.session(sample_slice, roi_zoom=False)
    assert np.array_equal(s.set_mask(brain_mask), brain_mask)
    after = s.add_click(90, 100)
    assert after.shape == brain_mask.shape
    assert np.array_equal(s.undo(), brain_mask)
    with pytest.raises(InvalidPromptError, match="must match"):
        s.set_mask(brain_mask[:10])


def test_bad_clicks_do_not_change_the_history(fast_segmenter, sample_slice):
    s = fast_segmenter.session(sample_slice)
    s.set_box(DEMO_BOX)
    before = (s.mask.copy(), s.can_redo, s._index)
    with pytest.raises(InvalidPromptError):
        s.add_click(999, 5)
    with pytest.raises(InvalidPromptError):
        s.set_box((5, 5, 5, 5))
    assert np.array_equal(s.mask, before[0]) and s._index == before[2]


def test_returned_masks_are_copies(fast_segmenter, sample_slice, brain_mask):
    s = fast_segmenter.session(sample_slice)
    m = s.set_mask(brain_mask)
    m[:] = False
    assert np.array_equal(s.mask, brain_mask)


_action = st.one_of(
    st.tuples(st.just("click"), st.integers(0, 180), st.integers(0, 216), st.booleans()),
    st.tuples(st.just("box"), st.integers(0, 170), st.integers(0, 200), st.integers(5, 60), st.integers(5, 60)),
    st.tuples(st.just("clear_box")),
    st.tuples(st.just("reset")),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(actions=st.lists(_action, min_size=1, max_size=6), start_with_box=st.booleans())
def test_any_actions_then_as_many_undos_restore_the_start_and_redo_replays(fast_segmenter, sample_slice, actions, start_with_box):
    s = fast_segmenter.session(sample_slice, roi_zoom="auto")
    if start_with_box:
        s.set_box(DEMO_BOX)
    start = s.mask
    masks = []
    for action in actions:
        kind = action[0]
        if kind == "click":
            s.add_click(action[1], action[2], positive=action[3])
        elif kind == "box":
            _, x, y, w, h = action
            s.set_box((x, y, min(x + w, 180), min(y + h, 216)))
        else:
            getattr(s, kind)()
        masks.append(s.mask)
    for _ in actions:
        s.undo()
    assert np.array_equal(s.mask, start)
    for expected in masks:
        assert np.array_equal(s.redo(), expected)
    assert not s.can_redo

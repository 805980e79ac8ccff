"""Propagation inside and outside a user's 3D box (waveseg.propagation, VolumeSession.box3d/click).

On the embedded Colin27 T1 (16 axial slices): the AAL right thalamus (Testing/data, slices 0..11,
drawn by the atlas's authors) and the brain mask. Inside a 3D box propagation covers the box's
whole extent unless the object has clearly ended; outside a box the stricter free rule stops it;
a corrective click after a 3D box spreads through that box's slices only and leaves good slices.
"""

from pathlib import Path

import numpy as np
import pytest

from waveseg.io import read_image
from waveseg.metrics import dice
from waveseg.propagation import PropagationRule, StopState, next_prompt, stop_reason
from waveseg.sample_data import SAMPLE_BRAIN_MASK
from waveseg.volume import VolumeSession

THALAMUS = Path(__file__).resolve().parent / "data" / "colin27_aal_thalamus_right_axial.nii.gz"


@pytest.fixture(scope="module")
def thalamus():
    return read_image(THALAMUS).array > 0  # (16, 217, 181), object on slices 0..11


def _box(truth: np.ndarray, z0: int, z1: int):
    """Voxel corners (i, j, k) of the truth's (x, y) extent over slices z0..z1."""
    _, ys, xs = np.nonzero(truth)
    return (int(xs.min()), int(ys.min()), z0), (int(xs.max()), int(ys.max()), z1)


def test_in_box_rule_skips_a_failing_slice_and_the_free_rule_stops_there():
    rule = PropagationRule()
    state = StopState()
    assert stop_reason(rule, state, 5, 100, 100, 0.9, in_box=True) == (None, True)
    assert stop_reason(rule, state, 6, 100, 100, 0.1, in_box=True) == (None, False)  # skipped, not written
    assert stop_reason(rule, state, 7, 100, 100, 0.9, in_box=True) == (None, True)  # the object goes on
    stop_reason(rule, state, 8, 0, 100, 0.9, in_box=True)
    reason, keep = stop_reason(rule, state, 9, 0, 100, 0.9, in_box=True)  # two in a row: it has ended
    assert reason.startswith("object ended at slice 9") and not keep
    reason, keep = stop_reason(rule, StopState(), 6, 100, 100, 0.1, in_box=False)
    assert reason.startswith("object ended at slice 6") and not keep


def test_next_box_stays_inside_the_3d_box():
    previous = np.zeros((100, 100), bool)
    previous[10:90, 10:90] = True
    prompt = next_prompt(PropagationRule(margin=0, margin_unit="pixel"), previous, None, (30.0, 30.0, 60.0, 60.0))
    assert prompt["box"] == (30.0, 30.0, 60.0, 60.0)


def test_box3d_covers_the_whole_box_of_a_real_structure(fast_segmenter, sample_volume, thalamus):
    """The committed rule's first version stopped inside this box (slices 2..9 of 0..11)."""
    session = fast_segmenter.volume_session(sample_volume.array, spacing=sample_volume.spacing, prefetch=False)
    report = session.box3d(*_box(thalamus, 0, 11))
    assert all(session.mask[k].any() for k in range(12)), report
    assert not session.mask[12:].any()
    assert dice(session.mask, thalamus) >= 0.6, report  # 0.672 measured (shipped model and rule, 2026-12-02)


def test_box3d_stops_where_the_object_clearly_ended(fast_segmenter):
    """A box 2 slices longer than a bright cube at each end: the walk stops past the cube's ends and
    the slices beyond stay empty (without the score-drop rule, ``in_box_drop=0``, box + mask prompts
    carry the mask on through the blank slices, scored 0.77-0.85 against 0.96 on the cube). (On the thalamus a loose box is not clear enough: the model scores
    its masks on the slices past the thalamus 0.50-0.60, as high as on the thalamus' last slices.)"""
    volume = np.zeros((14, 64, 64), np.uint8)
    volume[4:10, 20:44, 20:44] = 200  # slices 4..9
    session = fast_segmenter.volume_session(volume, prefetch=False)
    report = session.box3d((18, 18, 2), (45, 45, 11))
    assert all(session.mask[k].any() for k in range(4, 10)), report
    assert not session.mask[:3].any() and not session.mask[11:].any(), report
    assert report.stopped["forward"].startswith("object ended"), report
    without = fast_segmenter.volume_session(volume, prefetch=False, propagation=PropagationRule(in_box_drop=0))
    without.box3d((18, 18, 2), (45, 45, 11))
    assert without.mask[11].any()  # the rule is what stops it


def test_outside_a_box_propagation_stops_where_the_object_ends(fast_segmenter, sample_volume, thalamus):
    session = fast_segmenter.volume_session(sample_volume.array, spacing=sample_volume.spacing, prefetch=False)
    session.set_slice_mask(0, 6, thalamus[6])
    report = session.propagate(0, 6)
    assert report.stopped["forward"] != "end of range" and not session.mask[14:].any(), report


def test_a_click_after_box3d_spreads_inside_the_box_only_and_keeps_good_slices(fast_segmenter, sample_volume):
    """The brain fills all 16 slices, the box only 5..11: a correction on slice 8 may change the
    box's slices, never the ones outside it, and no slice of the box gets much worse."""
    brain = read_image(SAMPLE_BRAIN_MASK).array > 0
    session = fast_segmenter.volume_session(sample_volume.array, spacing=sample_volume.spacing, prefetch=False)
    session.box3d(*_box(brain, 5, 11))
    before = session.mask.copy()
    assert not before[:5].any() and not before[12:].any()
    missed = np.argwhere(brain[8] & ~before[8])  # a positive click where the mask misses brain, else a negative one
    y, x = missed[len(missed) // 2] if len(missed) else np.argwhere(before[8] & ~brain[8])[0]
    report = session.click((int(x), int(y), 8), positive=bool(brain[8, y, x]))
    assert not session.mask[:5].any() and not session.mask[12:].any(), report
    for k in range(5, 12):
        assert dice(session.mask[k], brain[k]) >= dice(before[k], brain[k]) - 0.02, (k, report)
    session.undo()
    assert np.array_equal(session.mask, before)


def test_a_click_after_undoing_the_box_is_free_again(fast_segmenter, sample_volume):
    """The box lives in the prompts of its slices: undoing box3d takes it away, so a later
    click propagates under the free rule (here: past slices 5..11)."""
    brain = read_image(SAMPLE_BRAIN_MASK).array > 0
    session = VolumeSession(fast_segmenter, sample_volume.array, spacing=sample_volume.spacing, prefetch=False)
    session.box3d(*_box(brain, 5, 11))
    assert session._box3d_around(0, 8) is not None
    session.undo()
    assert session._box3d_around(0, 8) is None
    session.redo()
    assert session._box3d_around(0, 8)[0] == (5, 11)

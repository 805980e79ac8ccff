"""Scribble and lasso prompts (issue #26): geometry, Segmenter.predict, InteractiveSession,
VolumeSession, on the real embedded MRI with the shipped default model."""

import warnings

import numpy as np
import pytest
from scipy.ndimage import distance_transform_edt

from waveseg.errors import InvalidPromptError
from waveseg.metrics import dice
from waveseg.sample_data import DEMO_BOX, DEMO_SLICE
from waveseg.prompting.strokes import lasso_fill, stroke_pixels, validate_stroke

HW = (217, 181)  # the sample slice (rows, cols)


@pytest.fixture(scope="module")
def default_segmenter():
    from waveseg.predictor import Segmenter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return Segmenter.from_pretrained("default")


def far_from(pixels: np.ndarray, distance: float) -> np.ndarray:
    """(H, W) bool: pixels farther than ``distance`` from every True pixel of ``pixels``."""
    return distance_transform_edt(~pixels) > distance


# -- geometry and bad strokes ----------------------------------------------------------------
@pytest.mark.parametrize("points, closed, message", [
    ([[10, 10]], False, "at least 2 distinct points"),
    ([[10, 10], [10, 10], [10, 10]], False, "at least 2 distinct points"),
    ([[10, 10], [20, 20]], True, "at least 3 distinct points"),
    ([[10, 10], [20, 20], [30, 30]], True, "enclose an area"),
    ([[10, np.nan], [20, 20]], False, "finite"),
    ([[10, 10], [np.inf, 20], [5, 30]], True, "finite"),
    ([[-30, -30], [-10, -5]], False, "entirely outside"),
    ([[-30, -30], [-10, -30], [-10, -5]], True, "entirely outside"),
    ([[10, 10], [5000, 20]], False, "more than one image size outside"),
    ([10, 10, 20, 20], False, r"\(N, 2\)"),
    ("a line", False, r"\(N, 2\)"),
])
def test_bad_strokes_are_refused_with_a_clear_error(points, closed, message):
    with pytest.raises(InvalidPromptError, match=message):
        validate_stroke(points, True, HW, closed)


def test_a_stroke_running_off_the_image_keeps_its_inside_part():
    scribble = validate_stroke([[90, 100], [300, 100]], True, HW, closed=False)
    pixels = stroke_pixels(scribble, HW)
    assert pixels[100, 90:181].all() and pixels.shape == HW
    # a lasso half outside is still closed: its inside part is filled
    lasso = lasso_fill(np.array([[-50, 50], [90, 50], [90, 150], [-50, 150]]), HW)
    assert lasso[50:151, 0:91].all() and lasso.sum() == 101 * 91


def test_a_self_intersecting_lasso_is_filled_as_all_it_encloses():
    # a figure-eight: both loops are inside
    bowtie = lasso_fill(np.array([[20, 20], [80, 80], [80, 20], [20, 80]]), HW)
    assert bowtie[30, 22] and bowtie[30, 78] and bowtie[50, 50] and not bowtie[22, 50]
    # a pentagram drawn in one stroke crosses itself five times; the even-odd rule would leave its
    # centre empty, the lasso fills it
    angles = np.pi / 2 + np.arange(5) * 4 * np.pi / 5
    star = np.stack([100 + 60 * np.cos(angles), 100 - 60 * np.sin(angles)], 1)
    assert lasso_fill(star, HW)[100, 100]


def test_predict_refuses_a_malformed_stroke_argument(default_segmenter, sample_slice):
    default_segmenter.set_image(sample_slice)
    with pytest.raises(InvalidPromptError, match="positive flag"):
        default_segmenter.predict(scribbles=[([[10, 10], [20, 20]], "yes")])
    with pytest.raises(InvalidPromptError, match=r"\(points_xy, positive\)"):
        default_segmenter.predict(lasso=[[10, 10], [20, 20], [20, 10]])
    with pytest.raises(InvalidPromptError, match="removes from a mask"):
        default_segmenter.predict(lasso=([[10, 10], [60, 10], [60, 60]], False))


# -- Segmenter.predict -------------------------------------------------------------------------
def test_predict_with_a_first_lasso_segments_the_brain(default_segmenter, sample_slice, brain_mask):
    default_segmenter.set_image(sample_slice)
    polygon = np.array([[20, 20], [162, 20], [162, 198], [20, 198]])
    out = default_segmenter.predict(lasso=(polygon, True))
    assert dice(out.mask, brain_mask) > 0.85
    inside = lasso_fill(polygon, HW)
    # a first lasso is a rough outline: the model's mask inside it stands (StrokeRule.force_first_lasso)
    assert not out.mask[~inside].any() and not out.mask[inside].all()
    # a corrective positive lasso adds its whole inside
    patch = np.array([[5, 5], [30, 3], [28, 15], [6, 14]])
    again = default_segmenter.predict(lasso=(patch, True), mask_input=out.logits)
    assert again.mask[lasso_fill(patch, HW)].all()


def test_predict_honours_a_scribble_inside_a_small_zoomed_box(default_segmenter, sample_slice):
    default_segmenter.set_image(sample_slice)
    line = np.array([[70.0, 70.0], [85.0, 80.0]])
    out = default_segmenter.predict(box=(60, 60, 100, 95), scribbles=[(line, True)])
    stroke = stroke_pixels(validate_stroke(line, True, HW, False), HW)
    assert out.mask[stroke].all() and not out.mask[far_from(np.pad(np.ones((36, 41), bool), ((60, 121), (60, 80))), 5)].any()


# -- InteractiveSession ------------------------------------------------------------------------
@pytest.fixture()
def session(default_segmenter, sample_slice):
    return default_segmenter.session(sample_slice, roi_zoom=False)


def test_a_positive_scribble_fills_a_hole_where_drawn_and_changes_little_elsewhere(session, brain_mask):
    hole = np.zeros(HW, bool)
    hole[90:130, 70:110] = True  # a 40 x 40 hole cut out of the brain
    session.set_mask(brain_mask & ~hole)
    scribble = np.array([[75, 110], [90, 100], [105, 112]])
    after = session.add_scribble(scribble, positive=True)
    before = brain_mask & ~hole
    assert after[stroke_pixels(validate_stroke(scribble, True, HW, False), HW)].all()
    assert after[hole].mean() > 0.5  # most of the hole is filled, not only the line
    changed = after != before
    assert changed[far_from(hole, 15)].sum() < 0.02 * brain_mask.sum()


def test_a_negative_scribble_removes_a_false_blob_and_changes_little_elsewhere(session, brain_mask):
    blob = np.zeros(HW, bool)
    blob[5:18, 60:120] = True  # a false band above the brain (rows 5-17)
    assert not (blob & brain_mask).any()
    session.set_mask(brain_mask | blob)
    after = session.add_scribble([[62, 11], [90, 12], [118, 11]], positive=False)
    assert after[blob].mean() < 0.5
    changed = after != (brain_mask | blob)
    assert changed[far_from(blob, 15)].sum() < 0.02 * brain_mask.sum()


def test_a_negative_lasso_removes_exactly_its_inside(session, brain_mask):
    box_mask = session.set_box(DEMO_BOX)
    polygon = np.array([[70, 90], [110, 85], [115, 125], [75, 130]])
    after = session.add_lasso(polygon, positive=False)
    inside = lasso_fill(polygon, HW)
    assert box_mask[inside].all() and not after[inside].any()
    changed = after != box_mask
    assert changed[far_from(inside, 15)].sum() < 0.02 * box_mask.sum()
    # the removal survives the next prompt (it is pinned into the logits fed back)
    later = session.add_click(40, 110, positive=True)
    assert later[inside].mean() < 0.1


def test_a_positive_lasso_adds_exactly_its_inside_and_a_first_one_is_the_box(session, brain_mask):
    first = session.add_lasso([[20, 20], [162, 20], [162, 198], [20, 198]])
    assert session.state.box == (20.0, 20.0, 162.0, 198.0) and dice(first, brain_mask) > 0.85
    outside = np.array([[5, 5], [30, 3], [28, 15], [6, 14]])  # a patch of the corner, off the brain
    after = session.add_lasso(outside, positive=True)
    assert after[lasso_fill(outside, HW)].all()


def test_undo_restores_each_stroke_exactly(session):
    masks = [session.mask]
    masks.append(session.set_box(DEMO_BOX))
    masks.append(session.add_scribble([[40, 100], [60, 120]], positive=False))
    masks.append(session.add_click(90, 60))
    masks.append(session.add_lasso([[80, 80], [100, 80], [100, 100]], positive=False))
    masks.append(session.add_scribble([[85, 85], [95, 95]], positive=True))
    assert len(session.state.strokes) == 3
    for expected in reversed(masks[:-1]):
        assert np.array_equal(session.undo(), expected)
    for expected in masks[1:]:
        assert np.array_equal(session.redo(), expected)
    for _ in range(3):
        session.undo()
    session.add_scribble([[30, 150], [50, 160]])  # replaces what could be redone
    assert len(session.state.strokes) == 2 and not session.can_redo
    assert np.array_equal(session.state.strokes[0].xy, [[40, 100], [60, 120]])


def test_a_negative_lasso_on_an_empty_mask_is_refused(session):
    with pytest.raises(InvalidPromptError, match="mask is empty"):
        session.add_lasso([[10, 10], [60, 10], [60, 60]], positive=False)
    assert not session.can_undo


# -- VolumeSession -------------------------------------------------------------------------------
def test_volume_strokes_on_axial_and_coronal_slices_repropagate_and_undo_exactly(default_segmenter, sample_volume):
    volume = sample_volume.array
    vs = default_segmenter.volume_session(volume, prefetch=False)
    report = vs.lasso(0, DEMO_SLICE, [[20, 20], [162, 20], [162, 198], [20, 198]])
    assert report.written and vs.mask[DEMO_SLICE].any() and (0, DEMO_SLICE) in vs.locked
    after_lasso = vs.mask.copy()
    removed = np.array([[80, 80], [100, 80], [100, 100], [80, 100]])
    vs.lasso(0, DEMO_SLICE, removed, positive=False)
    assert not vs.mask[DEMO_SLICE][lasso_fill(removed, HW)].any()
    # a coronal slice (axis 1: rows of the axial slices) is 16 x 181; a scribble across it
    coronal = vs.mask[:, 100, :].copy()
    vs.scribble(1, 100, [[60, 2], [120, 12]], positive=False)
    line = stroke_pixels(validate_stroke([[60, 2], [120, 12]], False, coronal.shape, False), coronal.shape)
    assert not vs.mask[:, 100, :][line].any() and coronal[line].any()
    vs.undo()
    vs.undo()
    assert np.array_equal(vs.mask, after_lasso)
    with pytest.raises(InvalidPromptError, match="past the end"):
        vs.scribble(0, 99, [[1, 1], [5, 5]])


def test_a_first_scribble_gives_its_grown_extent_as_the_box(default_segmenter, sample_slice):
    """StrokeRule.scribble_box: the first positive scribble's extent, grown by a tenth of its size on
    each side, is the box; a later scribble (with the mask fed back) gives none; without the rule
    (scribble_box=None) no box is sent, as before 2026-12-06."""
    from waveseg.preprocess import ResizeGeometry
    from waveseg.prompting.stroke_prompts import StrokeRule, apply_stroke_prompts, parse_strokes, scribble_box

    curve = np.array([[60.0, 80.0], [80.0, 100.0], [100.0, 90.0], [110.0, 130.0]])
    strokes = parse_strokes([(curve, True)], None, HW)
    assert np.allclose(scribble_box(strokes, HW, 0.1), [55, 75, 115, 135])
    geometry = ResizeGeometry.for_shape(*HW)
    points, box, _ = apply_stroke_prompts(strokes, None, None, None, geometry, StrokeRule())
    assert np.allclose(box, [55, 75, 115, 135]) and len(points[0]) == StrokeRule().scribble_points
    assert apply_stroke_prompts(strokes, None, None, None, geometry, StrokeRule(scribble_box=None))[1] is None
    import torch

    later = apply_stroke_prompts(strokes, None, None, torch.zeros(1, 1, 256, 256), geometry, StrokeRule())
    assert later[1] is None
    negative_only = parse_strokes([(curve, False)], None, HW)
    assert scribble_box(negative_only, HW, 0.1) is None
    # the box reaches the decoder through predict: the answer differs from the one without it
    default_segmenter.set_image(sample_slice)
    with_box = default_segmenter.predict(scribbles=[(curve, True)]).mask
    default_segmenter.stroke_rule = StrokeRule(scribble_box=None)
    try:
        without = default_segmenter.predict(scribbles=[(curve, True)]).mask
    finally:
        default_segmenter.stroke_rule = StrokeRule()
    assert (with_box != without).sum() > 100


def test_a_small_first_scribble_zooms_the_session_on_its_grown_extent(default_segmenter, sample_slice):
    """StrokeRule.zoom_grow: with ROI zoom "auto" and no box, a short positive
    scribble gives the target's extent (grown by 0.3 of its size), so the session encodes a crop
    around it instead of the whole slice and keeps that crop for the next scribble inside it; a
    scribble across most of the slice, or the rule switched off, keeps the whole slice."""
    from waveseg.prompting.stroke_prompts import StrokeRule

    short = np.array([[80.0, 100.0], [95.0, 108.0]])
    zoomed = default_segmenter.session(sample_slice, roi_zoom="auto")
    mask = zoomed.add_scribble(short, positive=True)
    roi = zoomed.state.roi
    assert roi is not None and zoomed.encodings == 1  # the crop only: the whole slice was never encoded
    x0, y0, x1, y1 = roi
    assert x0 <= 80 and 95 < x1 and y0 <= 100 and 108 < y1 and max(x1 - x0, y1 - y0) < 0.5 * max(HW)
    assert mask[stroke_pixels(validate_stroke(short, True, HW, False), HW)].all()
    assert not mask[:y0].any() and not mask[y1:].any() and not mask[:, :x0].any() and not mask[:, x1:].any()
    zoomed.add_scribble(np.array([[84.0, 103.0], [91.0, 106.0]]), positive=False)
    assert zoomed.state.roi == roi and zoomed.encodings == 1  # the next stroke inside the crop keeps it
    assert np.array_equal(zoomed.undo(), mask)

    across = default_segmenter.session(sample_slice, roi_zoom="auto")
    across.add_scribble(np.array([[30.0, 60.0], [150.0, 160.0]]), positive=True)
    assert across.state.roi is None
    default_segmenter.stroke_rule = StrokeRule(zoom_grow=None)
    try:
        plain = default_segmenter.session(sample_slice, roi_zoom="auto")
        plain.add_scribble(short, positive=True)
        assert plain.state.roi is None
    finally:
        default_segmenter.stroke_rule = StrokeRule()


def test_a_small_first_scribble_on_an_empty_volume_slice_is_decoded_from_a_crop(default_segmenter, sample_volume):
    """VolumeSession zooms a slice's first prompt as InteractiveSession does when it is positive
    scribbles only (StrokeRule.zoom_grow, the segmenter's roi_zoom): one crop is encoded around the
    scribble's grown extent, the slice's mask stays inside it and holds the scribble, and undo
    restores the empty slice; with zoom_grow None the whole slice's embedding answers."""
    from conftest import recorded_encodes
    from waveseg.prompting.stroke_prompts import StrokeRule

    volume = sample_volume.array
    short = [[80.0, 100.0], [95.0, 108.0]]
    line = stroke_pixels(validate_stroke(short, True, HW, False), HW)
    try:
        with recorded_encodes(default_segmenter) as crops:
            vs = default_segmenter.volume_session(volume, prefetch=False)
            vs.scribble(0, DEMO_SLICE, short, positive=True, repropagate=False)
            zoomed = vs.mask[DEMO_SLICE].copy()
            small = [hw for hw in crops if max(hw) < 0.5 * max(HW)]
            assert len(small) == 1  # the crop around the scribble, besides the whole slice's encoding
            assert zoomed[line].all() and zoomed.sum() < 0.1 * zoomed.size
            vs.undo()
            assert not vs.mask[DEMO_SLICE].any()
            crops.clear()
            default_segmenter.stroke_rule = StrokeRule(zoom_grow=None)
            plain = default_segmenter.volume_session(volume, prefetch=False)
            plain.scribble(0, DEMO_SLICE, short, positive=True, repropagate=False)
            assert not [hw for hw in crops if max(hw) < 0.5 * max(HW)]
            assert not np.array_equal(plain.mask[DEMO_SLICE], zoomed)
    finally:
        default_segmenter.stroke_rule = StrokeRule()

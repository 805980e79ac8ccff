"""3D volume sessions: propagation quality on a real volume, undo/redo exactness, the bounded
embedding cache, anisotropy, cancellation and bad input."""

import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from waveseg.metrics import dice
from waveseg.embedding_cache import EmbeddingCache
from waveseg.errors import InvalidImageError, InvalidPromptError
from waveseg.io import read_image
from waveseg.sample_data import SAMPLE_BRAIN_MASK
from waveseg.volume_geometry import SlicePixels, take_slice, voxel_to_slice


GOLDEN_3D_DICE = 0.90
HANG_GUARD_S = 900.0  # only against hanging forever; a wait reaching it is a failure


@pytest.fixture(scope="module")
def brain_volume_mask():
    return read_image(SAMPLE_BRAIN_MASK).array > 0


@pytest.fixture(scope="module")
def brain_session(litemedsam, sample_volume):
    """One LiteMedSAM volume session over the real sample; tests undo back to its start."""
    session = litemedsam.volume_session(sample_volume.array, spacing=sample_volume.spacing, prefetch=False)
    yield session
    session.close()


def _rewind(session):
    while session.can_undo:
        session.undo()
    assert not session.mask.any()


def test_box3d_propagation_reaches_a_golden_3d_dice_on_real_mri(brain_session, brain_volume_mask):
    _rewind(brain_session)
    report = brain_session.box3d((20, 20, 0), (162, 198, 15))
    assert sorted(report.written + [8]) == list(range(16)), report
    assert dice(brain_session.mask, brain_volume_mask) >= GOLDEN_3D_DICE


def test_cancellation_keeps_the_session_consistent_and_undoable(brain_session, brain_mask):
    _rewind(brain_session)
    brain_session.set_slice_mask(0, 8, brain_mask)
    before = brain_session.mask.copy()
    checks = []

    def cancel_after_two_slices():
        checks.append(1)
        return len(checks) > 2

    report = brain_session.propagate(0, 8, cancel=cancel_after_two_slices)
    assert report.cancelled and report.written == [9, 10]
    assert brain_session.mask[9].any() and brain_session.mask[10].any() and not brain_session.mask[11].any()
    brain_session.undo()
    assert np.array_equal(brain_session.mask, before)


def test_locked_slices_are_never_overwritten_and_clicks_repropagate(brain_session, brain_mask):
    _rewind(brain_session)
    brain_session.set_slice_mask(0, 8, brain_mask)
    hand = np.zeros_like(brain_mask)
    hand[50:60, 50:60] = True
    brain_session.set_slice_mask(0, 10, hand)
    report = brain_session.propagate(0, 8)
    assert np.array_equal(brain_session.mask[10], hand) and report.stopped["forward"] == "locked slice 10"
    before = brain_session.mask.copy()
    brain_session.click((90, 170, 5), positive=False)  # a background click on slice 5
    assert not brain_session.mask[5, 170, 90]
    assert np.array_equal(brain_session.mask[10], hand) and np.array_equal(brain_session.mask[8], before[8])


def _one_click_brain_point(session, index: int, brain: np.ndarray) -> tuple[int, int]:
    """(x, y) of the point, on a 4 x 4 grid inside ``brain``, whose click on slice ``index`` best
    matches ``brain`` there (each trial click is undone)."""
    rows, cols = np.nonzero(brain)
    grid = [(int(np.percentile(cols, px)), int(np.percentile(rows, py))) for px in (35, 45, 55, 65) for py in (35, 45, 55, 65)]

    def clicked_dice(point):
        session.click((*point, index), positive=True)
        result = dice(session.mask[index], brain)
        session.undo()
        return result

    return max((p for p in grid if brain[p[1], p[0]]), key=clicked_dice)


def test_a_click_beyond_the_propagated_range_extends_it_but_keeps_better_masks(fast_segmenter, sample_volume, brain_volume_mask):
    """Re-propagation after a click replaces a propagated mask only with one the decoder scores at
    least as high (on LiTS, lone clicks on end slices used to drag good neighbours down)."""
    # One click is ambiguous (the brain, or the white matter or cortical parcel under it); this test
    # is about re-propagation, so it clicks where the model's one-click answer is the brain.
    session = fast_segmenter.volume_session(sample_volume.array, spacing=sample_volume.spacing, prefetch=False)
    session.box3d((20, 20, 5), (162, 198, 11))  # slices 5..11 only
    x, y = _one_click_brain_point(session, 3, brain_volume_mask[3])
    before = session.mask.copy()
    scores = {k: session._prompts[(0, k)]["score"] for k in range(5, 12)}
    session.click((x, y, 3), positive=True)  # inside the brain, on an unsegmented slice
    assert session.mask[3, y, x] and dice(session.mask[3], brain_volume_mask[3]) > 0.5
    for k in range(5, 12):
        if not np.array_equal(session.mask[k], before[k]):
            assert session._prompts[(0, k)]["score"] >= scores[k], k
    assert dice(session.mask[5:12], brain_volume_mask[5:12]) >= dice(before[5:12], brain_volume_mask[5:12]) - 0.01
    session.undo()
    for k in range(5, 12):  # masks the decoder rated above anything it can predict are never replaced
        session._prompts[(0, k)]["score"] = 1.01
    report = session.click((x, y, 3), positive=True)
    assert report.stopped["forward"].startswith("kept slice 5"), report
    assert np.array_equal(session.mask[5:12], before[5:12])


def test_propagation_stops_where_the_object_ends(litemedsam):
    volume = np.zeros((12, 64, 64), np.uint8)
    volume[3:9, 20:44, 20:44] = 200  # a bright cube on slices 3..8
    session = litemedsam.volume_session(volume, prefetch=False)
    session.set_slice_mask(0, 5, volume[5] > 0)
    report = session.propagate(0, 5)
    assert session.mask[3:9].sum(axis=(1, 2)).min() > 0
    assert not session.mask[:2].any() and not session.mask[10:].any(), report


def test_cache_respects_its_memory_limit_and_clears(fast_segmenter, sample_volume):
    session = fast_segmenter.volume_session(sample_volume.array, cache_mb=10, prefetch=False)
    for k in range(8):
        session.segment_slice(0, k, box=(20, 20, 160, 190))
    assert session.cache.bytes_used <= 10 * 2**20 and len(session.cache) == 2  # 4 MiB per slice
    session.image_changed()
    assert len(session.cache) == 0


def test_prefetch_fills_neighbours_in_the_background_and_clear_drops_stale_results():
    gate = threading.Event()
    encoded = []

    class Fake:  # an embedding-sized payload; the cache only reads .embedding's size
        def __init__(self):
            import torch

            self.embedding = torch.zeros(1, 256, 64, 64)

    def encode(key):
        # held until the test has cleared the cache, however slow the machine: a timed-out wait
        # would store the embedding before clear() and skip what is tested (raising fails cache.wait())
        if not gate.wait(HANG_GUARD_S):
            raise AssertionError("the gate was never opened")
        encoded.append(key)
        return Fake()

    cache = EmbeddingCache(encode, limit_mb=64)
    cache.prefetch([(0, 1), (0, 2)])
    cache.clear()  # the image changed while the prefetch was waiting
    gate.set()
    cache.wait()
    assert len(cache) == 0 and set(encoded) == {(0, 1), (0, 2)}
    cache.prefetch([(0, 3)])
    cache.wait()
    assert (0, 3) in cache
    cache.close()


def test_propagation_encodes_the_next_two_slices_of_the_box_in_the_background(fast_segmenter, sample_volume):
    session = fast_segmenter.volume_session(sample_volume.array, spacing=sample_volume.spacing)
    requested, on_thread = [], {}
    prefetch, encode = session.cache.prefetch, session.cache._encode

    def record_prefetch(keys):
        requested.append([k for _, k in keys])
        prefetch(keys)

    def record_encode(key):
        on_thread[key[1]] = threading.current_thread().name
        return encode(key)

    session.cache.prefetch, session.cache._encode = record_prefetch, record_encode
    report = session.box3d((20, 20, 5), (162, 198, 11))  # middle slice 8, box slices 5..11
    session.close()
    assert sorted(report.written) == [5, 6, 7, 9, 10, 11], report
    # always ahead in the direction of travel, never behind and never past the box
    assert requested == [[10, 11], [11], [6, 5], [5]]
    assert all(on_thread[k].startswith("waveseg-prefetch") for k in (10, 11, 6, 5)), on_thread
    assert session.mask[5:12].any(axis=(1, 2)).all()


def test_anisotropic_slices_are_encoded_with_square_pixels(fast_segmenter, sample_volume):
    px = SlicePixels.for_slice((16, 217, 181), (1.0, 1.0, 3.0), axis=1)
    assert px.native_hw == (16, 181) and px.square_hw == (48, 181)
    session = fast_segmenter.volume_session(sample_volume.array, spacing=(1.0, 1.0, 3.0), prefetch=False)
    mask = session.segment_slice(1, 100, box=(30, 2, 150, 13))
    assert mask.shape == (16, 181)


def test_voxel_coordinates_map_to_slices():
    assert voxel_to_slice((5, 6, 7), 0) == (7, (5, 6))
    assert voxel_to_slice((5, 6, 7), 1) == (6, (5, 7))
    assert voxel_to_slice((5, 6, 7), 2) == (5, (6, 7))
    volume = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    assert take_slice(volume, 2, 1).shape == (2, 3)


@pytest.mark.parametrize(
    "action, match",
    [
        (lambda s: s.segment_slice(0, 16, box=(1, 1, 9, 9)), "past the end"),
        (lambda s: s.segment_slice(3, 0, box=(1, 1, 9, 9)), "axis must be"),
        (lambda s: s.click((500, 5, 5)), "outside the volume"),
        (lambda s: s.click((5, 5, -3)), "past the end"),
        (lambda s: s.box3d((400, 400, 40), (500, 500, 50)), "outside the volume"),
        (lambda s: s.box3d((1, 2), (3, 4)), "two voxel corners"),
        (lambda s: s.propagate(0, 3), "no mask to propagate"),
        (lambda s: s.set_slice_mask(0, 3, np.zeros((5, 5))), "shape"),
    ],
)
def test_bad_volume_prompts_are_clear_errors(fast_segmenter, sample_volume, action, match):
    session = fast_segmenter.volume_session(sample_volume.array, prefetch=False)
    with pytest.raises(InvalidPromptError, match=match):
        action(session)
    assert not session.mask.any() and not session.can_undo


@pytest.mark.parametrize("volume, spacing", [(np.zeros((5, 6)), (1, 1, 1)), (np.zeros((2, 3, 4, 5)), (1, 1, 1)),
                                             (np.zeros((4, 5, 6)), (1, 0, 1))])
def test_bad_volumes_are_refused(fast_segmenter, volume, spacing):
    with pytest.raises(InvalidImageError):
        fast_segmenter.volume_session(volume, spacing=spacing)


_volume_action = st.one_of(
    st.tuples(st.just("box"), st.integers(0, 15), st.integers(0, 120), st.integers(0, 150)),
    st.tuples(st.just("click"), st.integers(0, 180), st.integers(0, 216), st.integers(0, 15), st.booleans()),
    st.tuples(st.just("paint"), st.integers(0, 15)),
    st.tuples(st.just("accept"), st.integers(0, 15)),
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(actions=st.lists(_volume_action, min_size=1, max_size=4))
def test_any_3d_actions_then_as_many_undos_give_back_the_start(fast_segmenter, sample_volume, brain_mask, actions):
    session = fast_segmenter.volume_session(sample_volume.array, prefetch=False)
    session.set_slice_mask(0, 8, brain_mask)
    start = session.mask.copy()
    after = []
    for action in actions:
        if action[0] == "box":
            _, k, x, y = action
            session.segment_slice(0, k, box=(x, y, x + 30, y + 40))
        elif action[0] == "click":
            session.click(action[1:4], positive=action[4])
        elif action[0] == "paint":
            session.set_slice_mask(0, action[1], brain_mask)
        else:
            session.accept(0, action[1])
        after.append(session.mask.copy())
    for _ in actions:
        session.undo()
    assert np.array_equal(session.mask, start)
    for expected in after:
        assert np.array_equal(session.redo(), expected)


def test_sessions_over_one_volume_share_slice_embeddings(fast_segmenter, sample_volume):
    first = fast_segmenter.volume_session(sample_volume.array, prefetch=False)
    second = fast_segmenter.volume_session(sample_volume.array, prefetch=False, share_cache_with=first)
    first.segment_slice(0, 8, box=(20, 20, 160, 190))
    second.segment_slice(0, 8, box=(60, 60, 120, 140))
    assert second.cache is first.cache and len(first.cache) == 1  # slice 8 was encoded once
    with pytest.raises(InvalidImageError, match="same volume"):
        fast_segmenter.volume_session(sample_volume.array.copy(), share_cache_with=first)


def test_a_small_3d_box_segments_its_middle_slice_from_a_crop(fast_segmenter):
    """VolumeSession.roi_zoom (the segmenter's, "auto"): the slice a 3D box smaller than a quarter of
    the slice is drawn on is answered from a crop around the box (waveseg.volume_zoom), the other
    slices from their whole-slice embeddings; the masks find the object; roi_zoom False encodes
    whole slices only."""
    rng = np.random.default_rng(0)
    volume = rng.normal(60, 8, (10, 200, 200)).astype(np.float32)
    yy, xx = np.mgrid[:200, :200]
    disc = (yy - 90) ** 2 + (xx - 110) ** 2 < 12 ** 2
    volume[2:8, disc] += 140  # a bright cylinder on slices 2..7, 24 px across
    truth = np.zeros(volume.shape, bool)
    truth[2:8] = disc
    from conftest import recorded_encodes

    with recorded_encodes(fast_segmenter) as shapes:
        vs = fast_segmenter.volume_session(volume, prefetch=False)
        vs.box3d((96, 76, 2), (124, 104, 7))
        crops = [hw for hw in shapes if hw != (200, 200)]
        assert len(crops) == 1 and max(crops[0]) < 100, shapes
        assert dice(vs.mask, truth) > 0.8 and not vs.mask[:, :40].any()
        shapes.clear()
        whole = fast_segmenter.volume_session(volume, prefetch=False)
        whole.roi_zoom = False
        whole.box3d((96, 76, 2), (124, 104, 7))
        assert shapes and all(hw == (200, 200) for hw in shapes)

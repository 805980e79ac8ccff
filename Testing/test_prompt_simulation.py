import numpy as np
from scipy.ndimage import binary_dilation, distance_transform_edt

from waveseg.prompting.simulation import _farthest_inside, jittered_box, next_click, tight_box


def test_first_click_is_deep_inside_the_object(brain_mask):
    x, y, label = next_click(None, brain_mask)
    assert label == 1 and brain_mask[int(y), int(x)]
    rows, cols = np.nonzero(brain_mask)
    assert abs(x - cols.mean()) < 30 and abs(y - rows.mean()) < 30


def test_next_click_goes_to_the_larger_error_region():
    truth = np.zeros((60, 60), bool)
    truth[10:50, 10:50] = True
    pred = truth.copy()
    pred[20:40, 20:40] = False  # a 20x20 hole: missed foreground
    pred[0:3, 0:3] = True  # a small false positive
    x, y, label = next_click(pred, truth)
    assert label == 1 and 20 <= x < 40 and 20 <= y < 40
    pred = truth.copy()
    pred[50:60, 0:60] = True  # a large false-positive band
    assert next_click(pred, truth)[2] == 0
    assert next_click(truth, truth) is None


def test_farthest_point_on_the_bounding_box_equals_the_whole_frame_transform():
    rng = np.random.default_rng(0)
    for trial in range(60):
        region = binary_dilation(rng.random((96, 80)) < 0.003, iterations=int(rng.integers(0, 5)))
        region[:, : trial % 7] = True  # some regions touch the frame's edge
        if not region.any():
            continue
        distance = distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
        y, x = np.unravel_index(int(np.argmax(distance)), distance.shape)
        assert _farthest_inside(region) == (float(x), float(y), float(distance[y, x]))


def test_jittered_boxes_stay_near_the_tight_box_and_inside_the_image(brain_mask):
    rng = np.random.default_rng(0)
    tight = tight_box(brain_mask)
    for _ in range(50):
        box = jittered_box(brain_mask, rng)
        assert box[0] < box[2] and box[1] < box[3]
        assert box.min() >= 0 and box[2] <= brain_mask.shape[1] - 1 and box[3] <= brain_mask.shape[0] - 1
        assert np.abs(box - tight).max() <= 20 + 1e-4

"""Simulated scribbles and lassos (issue #26): valid strokes in the right place, and the training
step's stroke hook, on the real embedded brain slice and its mask."""

import numpy as np
import pytest
import torch

pytest.importorskip("skimage", reason="stroke simulation needs scikit-image (the train extra)")

from waveseg.errors import InvalidPromptError  # noqa: E402
from waveseg.metrics import dice  # noqa: E402
from waveseg.prompting.stroke_simulation import (SCRIBBLE_KINDS, largest_error_region, lasso_start, next_scribble,  # noqa: E402
                                       noisy_outline, scribble_as_clicks, simulate_scribble)
from waveseg.prompting.strokes import lasso_fill, stroke_pixels, validate_stroke  # noqa: E402


@pytest.fixture(scope="module")
def missed_and_extra(brain_mask):
    """A prediction that misses a band of the brain and adds a blob outside it."""
    prediction = brain_mask.copy()
    prediction[100:130, :] = False
    prediction[2:14, 60:120] = True
    return prediction


def test_the_largest_error_region_is_the_missed_band(brain_mask, missed_and_extra):
    region, positive = largest_error_region(missed_and_extra, brain_mask)
    assert positive and region.sum() == (brain_mask[100:130]).sum()
    assert largest_error_region(brain_mask, brain_mask) is None


@pytest.mark.parametrize("kind", SCRIBBLE_KINDS)
def test_a_scribble_in_a_thin_region_on_the_image_edge_stays_on_the_image(kind):
    """A false-positive sliver on the last two rows (as evaluate.py met on a never-seen CT slice):
    every simulated scribble is a valid stroke on the image, within 2 pixels of the sliver (its
    smoothing noise is about half a pixel)."""
    from scipy.ndimage import binary_dilation

    for seed in range(60):
        rng = np.random.default_rng(seed)
        region = np.zeros((256, 256), bool)
        col = int(rng.integers(0, 250))
        region[254:256, col : col + int(rng.integers(1, 6))] = True
        xy = simulate_scribble(region, np.random.default_rng([seed, 1]), kind)
        assert (xy >= 0).all() and (xy <= 255).all(), f"seed {seed}: {xy.tolist()}"
        drawn = stroke_pixels(validate_stroke(xy, False, region.shape, closed=False), region.shape)
        assert (drawn & binary_dilation(region, iterations=2)).any(), f"seed {seed}: the scribble is far from its region"


@pytest.mark.parametrize("kind", SCRIBBLE_KINDS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_scribble_kind_is_a_valid_stroke_inside_its_error_region(kind, seed, brain_mask, missed_and_extra):
    xy, positive = next_scribble(missed_and_extra, brain_mask, np.random.default_rng(seed), kind=kind)
    stroke = validate_stroke(xy, positive, brain_mask.shape, closed=False)  # raises if it is not a valid stroke
    region, _ = largest_error_region(missed_and_extra, brain_mask)
    drawn = stroke_pixels(stroke, brain_mask.shape, width=1)
    assert positive and (drawn & region).sum() >= 0.9 * drawn.sum()
    assert drawn.sum() >= 10  # a stroke, not a dot: the band is 30 pixels high and 180 wide


def test_a_negative_scribble_goes_into_false_foreground(brain_mask):
    prediction = brain_mask.copy()
    prediction[2:14, 20:160] = True  # the only error: a false band above the brain
    xy, positive = next_scribble(prediction, brain_mask, np.random.default_rng(0))
    drawn = stroke_pixels(validate_stroke(xy, positive, brain_mask.shape, False), brain_mask.shape, width=1)
    assert not positive and (drawn & prediction & ~brain_mask).sum() >= 0.9 * drawn.sum()


def test_a_tiny_region_still_gets_a_valid_two_point_scribble():
    truth = np.zeros((64, 64), bool)
    truth[30, 30] = True
    for kind in SCRIBBLE_KINDS:
        xy, positive = next_scribble(None, truth, np.random.default_rng(0), kind=kind)
        validate_stroke(xy, positive, truth.shape, closed=False)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_noisy_outline_is_a_valid_lasso_close_to_the_target(seed, brain_mask):
    polygon = noisy_outline(brain_mask, np.random.default_rng(seed))
    validate_stroke(polygon, True, brain_mask.shape, closed=True)
    fill = lasso_fill(polygon, brain_mask.shape)
    assert 0.85 < dice(fill, brain_mask) < 0.995  # rough (noisy), but of the target
    with pytest.raises(ValueError):
        noisy_outline(np.zeros_like(brain_mask), np.random.default_rng(seed))


def test_training_forms_of_strokes(brain_mask, missed_and_extra):
    clicks = scribble_as_clicks(missed_and_extra, brain_mask, np.random.default_rng(0))
    assert len(clicks) == 3 and all(label == 1 and brain_mask[int(round(y)), int(round(x))] for x, y, label in clicks)
    box, inside = lasso_start(brain_mask, np.random.default_rng(0))
    assert inside.shape == brain_mask.shape and inside.dtype == np.float32
    assert dice(inside > 0, brain_mask) > 0.85 and box[0] < box[2] and box[1] < box[3]
    with pytest.raises(InvalidPromptError):
        validate_stroke(np.array(clicks)[:1, :2], True, brain_mask.shape, False)  # one of them alone is no stroke


def test_the_training_step_mixes_strokes_in_and_trains(sample_volume):
    from waveseg.predictor import frame_mask, to_model_input
    from waveseg.preprocess import ResizeGeometry, normalize_intensity
    from waveseg.sample_data import SAMPLE_BRAIN_MASK
    from waveseg.io import read_image
    from waveseg.training.simulated_prompts import SimulatedPromptStep
    from waveseg.training.student import build_student

    masks3d = read_image(SAMPLE_BRAIN_MASK).array > 0
    images, masks = [], []
    for k in (4, 8, 12, 14):
        geometry = ResizeGeometry.for_shape(*masks3d[k].shape)
        images.append(to_model_input(normalize_intensity(sample_volume.array[k]), geometry)[0])
        masks.append(frame_mask(masks3d[k], geometry).float())
    images, masks = torch.stack(images), torch.stack(masks)
    model = build_student("wave-gms")
    step = SimulatedPromptStep(model, box_prob=0.5, max_rounds=3, pin_clicks=True, stroke_prob=0.5, lasso_prob=0.5)
    for seed in range(3):  # mixes of lasso starts, boxes, clicks and scribbles in one batch
        model.zero_grad()
        loss = step(images, masks, seed=seed)
        loss.backward()
        assert torch.isfinite(loss) and loss > 0
        assert model.mask_decoder.iou_token.weight.grad.abs().sum() > 0

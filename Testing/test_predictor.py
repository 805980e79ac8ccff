"""The public 2D API: golden mask, output contract, refinement, bad images and bad prompts."""

import numpy as np
import pytest
from PIL import Image

from conftest import DATA
from waveseg.metrics import dice
from waveseg.errors import InvalidImageError, InvalidPromptError, WaveSegError
from waveseg.sample_data import DEMO_BOX


@pytest.fixture(scope="module")
def encoded_litemedsam(litemedsam, sample_slice):
    litemedsam.set_image(sample_slice)
    return litemedsam


def test_box_on_the_sample_matches_the_golden_mask(encoded_litemedsam, brain_mask):
    out = encoded_litemedsam.predict(box=DEMO_BOX)
    golden = np.asarray(Image.open(DATA / "golden_litemedsam_demo_box.png")) > 0
    assert out.mask.shape == golden.shape and out.mask.dtype == bool
    assert dice(out.mask, golden) >= 0.98
    assert dice(out.mask, brain_mask) >= 0.90  # and it is the brain, by the reference mask
    assert out.logits.shape == (1, 256, 256) and out.logits.dtype == np.float32
    assert 0.5 < out.score <= 1.2


def test_refining_with_logits_and_a_click_changes_the_mask_sensibly(encoded_litemedsam, brain_mask):
    first = encoded_litemedsam.predict(box=DEMO_BOX)
    # a positive click inside a region the box prediction missed (posterior brain)
    missed = brain_mask & ~first.mask
    rows, cols = np.nonzero(missed)
    x, y = int(cols[len(cols) // 2]), int(rows[len(rows) // 2])
    refined = encoded_litemedsam.predict(points=[[x, y]], labels=[1], box=DEMO_BOX, mask_input=first.logits)
    assert refined.mask[y, x]
    assert dice(refined.mask, brain_mask) >= dice(first.mask, brain_mask) - 0.01


def test_multimask_returns_three_candidates_and_the_best(encoded_litemedsam):
    out = encoded_litemedsam.predict(points=[[90, 100]], labels=[1], multimask=True)
    assert out.masks.shape == (3, 217, 181) and out.scores.shape == (3,)
    assert out.score == pytest.approx(out.scores.max())


def test_existing_mask_can_start_a_prediction(encoded_litemedsam, brain_mask):
    out = encoded_litemedsam.predict(mask_input=brain_mask)
    assert out.mask.shape == brain_mask.shape


def test_a_mask_may_come_as_bool_integer_labels_or_0_1_floats(fast_segmenter, sample_slice, brain_mask):
    # nibabel's get_fdata() gives a label file as float64 0/1; Slicer's labelmaps are uint8 or int16
    fast_segmenter.set_image(sample_slice)
    clicks = {"points": [[90, 100]], "labels": [0]}
    as_bool = fast_segmenter.predict(mask_input=brain_mask, **clicks)
    for other in (brain_mask.astype(np.float64), brain_mask.astype(np.uint8) * 255, brain_mask.astype(np.int16)):
        out = fast_segmenter.predict(mask_input=other, **clicks)
        assert np.array_equal(out.mask, as_bool.mask) and out.score == pytest.approx(as_bool.score)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({}, "at least one prompt"),
        ({"points": [[10, 10]]}, "together"),
        ({"points": [[10, 10], [20, 20]], "labels": [1]}, "2 points but 1 labels"),
        ({"points": [[10, 10]], "labels": [2]}, "labels must be 1"),
        ({"points": [[500, 10]], "labels": [1]}, "outside"),
        ({"points": [[np.nan, 10]], "labels": [1]}, "finite"),
        ({"points": [[1, 2, 3]], "labels": [1]}, r"\(N, 2\)"),
        ({"box": (10, 10, 10, 50)}, "zero width"),
        ({"box": (1, 2, 3)}, "4 numbers"),
        ({"box": (400, 400, 500, 500)}, "entirely outside"),
        ({"mask_input": np.zeros((5, 5))}, "mask_input has shape"),
        ({"mask_input": np.zeros((5, 5), bool)}, "must match the image"),
        ({"mask_input": np.full((217, 181), 0.5)}, "float with only 0 and 1"),  # image-sized, but not a mask
    ],
)
def test_bad_prompts_are_clear_errors(fast_segmenter, sample_slice, kwargs, match):
    fast_segmenter.set_image(sample_slice)
    with pytest.raises(InvalidPromptError, match=match):
        fast_segmenter.predict(**kwargs)


def test_inverted_box_is_reordered_and_overhanging_box_is_clipped(fast_segmenter, sample_slice):
    fast_segmenter.set_image(sample_slice)
    a = fast_segmenter.predict(box=(150, 180, 30, 40))
    b = fast_segmenter.predict(box=(30, 40, 150, 180))
    c = fast_segmenter.predict(box=(-50, -50, 180, 216))
    d = fast_segmenter.predict(box=(0, 0, 180, 216))
    assert np.array_equal(a.mask, b.mask) and np.array_equal(c.mask, d.mask)


def test_predict_before_set_image_is_a_clear_error():
    from waveseg.predictor import Segmenter

    seg = Segmenter.__new__(Segmenter)
    seg._encoded = None
    with pytest.raises(WaveSegError, match="set_image"):
        seg.predict(box=(0, 0, 5, 5))


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((1, 1), np.float32),  # a single pixel
        np.full((40, 70), 7, np.int16),  # constant
        np.random.default_rng(0).integers(0, 255, (33, 65, 3), dtype=np.uint8),  # RGB
        np.random.default_rng(1).normal(size=(300, 20)).astype(np.float64),  # tall, float64
    ],
    ids=["1x1", "constant", "rgb", "tall-float64"],
)
def test_odd_images_give_a_mask_of_their_own_shape(fast_segmenter, image):
    fast_segmenter.set_image(image)
    out = fast_segmenter.predict(points=[[0, 0]], labels=[1])
    assert out.mask.shape == image.shape[:2] and np.isfinite(out.score)


def test_a_large_8192_image_is_handled(fast_segmenter):
    image = np.zeros((8192, 8192), np.uint8)
    image[2000:6000, 3000:5000] = 200
    fast_segmenter.set_image(image)
    out = fast_segmenter.predict(box=(3000, 2000, 5000, 6000))
    assert out.mask.shape == (8192, 8192)


def test_nan_image_is_handled_and_all_nan_refused(fast_segmenter, sample_slice):
    image = sample_slice.astype(np.float32)
    image[:50] = np.nan
    fast_segmenter.set_image(image)
    assert fast_segmenter.predict(box=DEMO_BOX).mask.shape == image.shape
    with pytest.raises(InvalidImageError, match="no finite pixel"):
        fast_segmenter.set_image(np.full((4, 4), np.inf))


def test_a_volume_given_as_a_slice_is_refused(fast_segmenter, sample_volume):
    with pytest.raises(InvalidImageError, match="volume"):
        fast_segmenter.set_image(sample_volume.array)


def test_a_slice_read_back_by_simpleitk_as_a_one_slice_volume_is_accepted(fast_segmenter, sample_slice, tmp_path):
    import SimpleITK as sitk

    path = tmp_path / "slice.nii.gz"
    sitk.WriteImage(sitk.JoinSeries(sitk.GetImageFromArray(sample_slice)), str(path))  # a 2D slice stored as 3D
    one_slice_volume = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
    assert one_slice_volume.shape == (1, *sample_slice.shape)
    fast_segmenter.set_image(sample_slice)
    expected = fast_segmenter.predict(box=DEMO_BOX).mask
    fast_segmenter.set_image(one_slice_volume)
    assert np.array_equal(expected, fast_segmenter.predict(box=DEMO_BOX).mask)


def test_gray_and_rgb_copies_of_a_slice_agree(fast_segmenter, sample_slice):
    fast_segmenter.set_image(sample_slice)
    gray = fast_segmenter.predict(box=DEMO_BOX).mask
    fast_segmenter.set_image(np.repeat(sample_slice[..., None], 3, axis=2))
    assert np.array_equal(gray, fast_segmenter.predict(box=DEMO_BOX).mask)


def test_bad_device_is_a_clear_error():
    from waveseg.predictor import Segmenter

    with pytest.raises(WaveSegError, match="device"):
        Segmenter.from_pretrained("litemedsam", device="banana")


@pytest.mark.parametrize("device", ["cuda", "mps"])
def test_absent_accelerator_is_a_clear_error(device):
    import torch

    from waveseg.predictor import Segmenter

    present = torch.cuda.is_available() if device == "cuda" else torch.backends.mps.is_available()
    if present:
        pytest.skip(f"{device} is present on this machine")
    with pytest.raises(WaveSegError, match=f"'{device}' was asked for"):
        Segmenter.from_pretrained("wave-gms", device=device)

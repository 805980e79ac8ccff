import numpy as np
import pytest

from waveseg.errors import InvalidImageError
from waveseg.preprocess import ResizeGeometry, as_gray_or_rgb, normalize_intensity


def test_uint8_is_scaled_by_255():
    out = normalize_intensity(np.array([[0, 255], [51, 102]], dtype=np.uint8))
    np.testing.assert_allclose(out, [[0, 1], [0.2, 0.4]], atol=1e-6)


def test_window_clips_and_scales_ct_hounsfield_units():
    hu = np.array([[-1000, -160], [40, 3000]], dtype=np.int16)
    np.testing.assert_allclose(normalize_intensity(hu, window=(-160, 240)), [[0, 0], [0.5, 1]], atol=1e-6)


def test_percentile_clip_ignores_outliers(sample_slice):
    image = sample_slice.astype(np.float32)
    image[0, 0] = 1e6  # a single hot pixel must not squash the contrast
    out = normalize_intensity(image)
    assert out.max() == 1.0 and np.median(out[out > 0]) > 0.2


def test_nan_and_inf_pixels_become_zero_and_the_rest_is_kept(sample_slice):
    image = sample_slice.astype(np.float32)
    image[10:20, 10:20] = np.nan
    image[30, 30] = np.inf
    out = normalize_intensity(image)
    assert np.isfinite(out).all()
    assert (out[10:20, 10:20] == 0).all() and out[30, 30] == 0
    assert out.max() == 1.0


def test_all_nan_image_is_refused():
    with pytest.raises(InvalidImageError, match="no finite pixel"):
        normalize_intensity(np.full((8, 8), np.nan))


def test_constant_image_becomes_zeros():
    assert not normalize_intensity(np.full((5, 7), 42.0)).any()


@pytest.mark.parametrize("window", [(1, 1), (5, 2), (0, np.nan)])
def test_bad_window_is_refused(window):
    with pytest.raises(InvalidImageError, match="window"):
        normalize_intensity(np.zeros((4, 4)), window=window)


@pytest.mark.parametrize(
    "shape, expected",
    [((5, 6), (5, 6)), ((5, 6, 1), (5, 6)), ((5, 6, 3), (5, 6, 3)), ((5, 6, 4), (5, 6, 3)), ((1, 5, 6), (5, 6))],
)
def test_gray_and_colour_shapes(shape, expected):
    assert as_gray_or_rgb(np.zeros(shape)).shape == expected


@pytest.mark.parametrize("shape", [(2, 5, 6, 1), (5, 6, 2), (4, 5, 6, 7), (2, 5, 6), (5, 6, 7)])
def test_volumes_and_odd_channel_counts_are_refused(shape):
    with pytest.raises(InvalidImageError, match="shape"):
        as_gray_or_rgb(np.zeros(shape))


def test_non_numeric_image_is_refused():
    with pytest.raises(InvalidImageError, match="dtype"):
        as_gray_or_rgb(np.array([["a", "b"]]))


def test_geometry_keeps_aspect_ratio_and_scales_points():
    g = ResizeGeometry.for_shape(217, 181)
    assert g.resized_hw == (256, 214)
    np.testing.assert_allclose(g.to_model_xy(np.array([[181, 217]])), [[214, 256]], rtol=1e-6)
    assert ResizeGeometry.for_shape(1, 1).resized_hw == (256, 256)
    assert ResizeGeometry.for_shape(8192, 16).resized_hw == (256, 1)


@pytest.mark.parametrize("hw", [(256, 256), (256, 180), (90, 256), (512, 384), (37, 300)])
def test_logits_to_masks_matches_bilinear_resampling_at_every_size(hw):
    """At the model frame's own size the resampling is skipped; it must give the same mask."""
    import torch
    import torch.nn.functional as F

    from waveseg.predictor import logits_to_masks

    geometry = ResizeGeometry.for_shape(*hw)
    logits = torch.randn(2, 256, 256, generator=torch.Generator().manual_seed(0))
    rh, rw = geometry.resized_hw
    full = F.interpolate(logits[None, :, :rh, :rw], size=hw, mode="bilinear", align_corners=False)[0]
    masks = logits_to_masks(logits, geometry)
    assert masks.shape == (2, *hw) and masks.dtype == bool
    np.testing.assert_array_equal(masks, (full > 0).numpy())

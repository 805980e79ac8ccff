"""The shape expected between annotated slices (waveseg.examples.interpolation): signed-distance
blending between the flanking annotations, the nearest annotation beyond them, clear errors."""

import numpy as np
import pytest

from waveseg.errors import InvalidPromptError
from waveseg.examples.interpolation import interpolate_annotated


def disc(radius: float, centre=(50, 50), shape=(101, 101)) -> np.ndarray:
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    return (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius**2


def equivalent_radius(mask: np.ndarray) -> float:
    return float(np.sqrt(mask.sum() / np.pi))


def test_between_two_annotations_the_shape_grows_with_the_distance_to_each():
    masks = {10: disc(10), 20: disc(30)}
    assert equivalent_radius(interpolate_annotated(masks, 15)) == pytest.approx(20, abs=1)
    assert equivalent_radius(interpolate_annotated(masks, 12)) == pytest.approx(14, abs=1)
    # a shape that moves: the blend lies between the two centres
    moving = {0: disc(15, (30, 40)), 4: disc(15, (30, 60))}
    rows, cols = np.nonzero(interpolate_annotated(moving, 2))
    assert cols.mean() == pytest.approx(50, abs=1) and rows.mean() == pytest.approx(30, abs=1)
    # shapes that do not overlap blend to nothing (documented; propose then ignores the empty prior)
    assert not interpolate_annotated({0: disc(8, (30, 30)), 4: disc(8, (30, 70))}, 2).any()


def test_beyond_the_annotations_and_on_them_the_nearest_mask_is_returned_unchanged():
    masks = {10: disc(10), 20: disc(30), 30: np.zeros((101, 101), bool)}  # an empty mask is no annotation
    assert np.array_equal(interpolate_annotated(masks, 3), masks[10])
    assert np.array_equal(interpolate_annotated(masks, 25), masks[20])
    assert np.array_equal(interpolate_annotated(masks, 20), masks[20])
    out = interpolate_annotated(masks, 20)
    out[:] = False
    assert masks[20].any()  # a copy: the caller's annotation is never changed


def test_nothing_to_interpolate_from_or_masks_of_different_shapes_are_refused():
    with pytest.raises(InvalidPromptError, match="no annotated slice"):
        interpolate_annotated({}, 3)
    with pytest.raises(InvalidPromptError, match="no annotated slice"):
        interpolate_annotated({1: np.zeros((5, 5), bool)}, 3)
    with pytest.raises(InvalidPromptError, match="differ in shape"):
        interpolate_annotated({1: disc(3, (5, 5), (11, 11)), 5: disc(3)}, 3)

"""The one-pixel tolerance analysis behind the NoC@85 diagnosis (scripts/analyse_label_tolerance.py)."""

from pathlib import Path

import numpy as np
import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


@pytest.fixture
def tolerance(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPTS))
    import analyse_label_tolerance

    return analyse_label_tolerance


def _square(side: int, at: int = 10, size: int = 40) -> np.ndarray:
    mask = np.zeros((size, size), bool)
    mask[at : at + side, at : at + side] = True
    return mask


def test_one_pixel_errors_of_a_square_are_what_geometry_says(tolerance):
    grown, shrunk, shifted = tolerance.one_pixel_errors(_square(10))
    assert grown == pytest.approx(100 / 140)  # the 4-neighbourhood adds 10 pixels on each side
    assert shrunk == pytest.approx(64 / 100)
    assert shifted == pytest.approx(90 / 110)
    # a larger object of the same shape is less sensitive to the same one-pixel error
    assert tolerance.one_pixel_errors(_square(30))[0] > 0.85 > grown


def test_the_band_hides_exactly_the_one_pixel_errors(tolerance):
    truth = _square(10)
    band = tolerance.boundary_band(truth)
    assert band.sum() == 140 - 64  # grown minus shrunk
    grown = _square(12, at=9)
    grown[9, 9] = grown[9, 20] = grown[20, 9] = grown[20, 20] = False  # the cross-shaped growth
    assert tolerance.iou_outside_band(grown, truth, band) == 1.0
    two_off = _square(14, at=8)  # two pixels out: the outer ring is scored
    assert tolerance.iou_outside_band(two_off, truth, band) < 1.0


def test_noc_counts_the_first_click_that_reaches_the_threshold(tolerance):
    assert tolerance.clicks_to([0.5, 0.84, 0.86, 0.9]) == 3
    assert tolerance.clicks_to([0.5] * 20) == 20

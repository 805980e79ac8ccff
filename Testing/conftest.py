"""Shared fixtures: the embedded real sample (Colin27 T1 + brain mask) and segmenters.

LiteMedSAM is loaded once per test session (it takes seconds); prompt-handling tests that do not
depend on model quality use the light shipped ``wave-gms``, which is much faster.
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from waveseg.io import read_image
from waveseg.prompting.simulation import next_click
from waveseg.sample_data import DEMO_SLICE, SAMPLE_BRAIN_MASK, SAMPLE_T1

DATA = Path(__file__).resolve().parent / "data"


def ritm_clicks(segmenter, image, truth, n: int, feed_back: str = "logits") -> list[tuple[np.ndarray, tuple]]:
    """n RITM clicks through ``Segmenter.predict``, the earlier result fed back as its "logits" or
    its binary "mask"; returns (mask, (x, y, label) of the click) after each click."""
    segmenter.set_image(image)
    points, labels, out, steps = [], [], None, []
    for _ in range(n):
        click = next_click(None if out is None else out.mask, truth)
        points.append(click[:2])
        labels.append(click[2])
        earlier = None if out is None else out.logits if feed_back == "logits" else out.mask
        out = segmenter.predict(points=points, labels=labels, mask_input=earlier)
        steps.append((out.mask, click))
    return steps


@contextlib.contextmanager
def recorded_encodes(segmenter):
    """Within it, the (h, w) of every image ``segmenter.encode`` is given (appended to the yielded
    list): which crops or whole slices a session encoded. The real encoder still runs."""
    shapes, encode = [], segmenter.encode

    def recording(image, window=None):
        shapes.append(image.shape[:2])
        return encode(image, window)

    segmenter.encode = recording
    try:
        yield shapes
    finally:
        del segmenter.encode  # the instance attribute: the class's method again


@pytest.hookimpl(trylast=True)  # after pytest's own faulthandler plugin, which would replace this file
def pytest_configure(config):
    """With WAVESEG_CRASH_LOG set (scripts/test.sh sets it), a hard crash (abort, segfault) dumps every
    thread's stack to that file too, so test.sh can print the crashing test at the end of its output."""
    path = os.environ.get("WAVESEG_CRASH_LOG")
    if path:
        config._waveseg_crash_log = open(path, "w")  # kept open for the whole run
        faulthandler.enable(file=config._waveseg_crash_log, all_threads=True)


@pytest.fixture(scope="session", autouse=True)
def _graph_cache(tmp_path_factory):
    """Exported onnxruntime graphs (waveseg.graph_cache) go to a folder of this run, shared by its
    tests and the subprocesses they start, never to the user's ~/.cache."""
    os.environ["WAVESEG_CACHE"] = str(tmp_path_factory.mktemp("waveseg-cache"))
    yield


@pytest.fixture(scope="session", autouse=True)
def _profiles_folder(tmp_path_factory):
    """Adaptation profiles are read from and written to a folder of this run, never the user's
    (a profile left there by an earlier adaptation made torch-free tests load torch to list it)."""
    os.environ["WAVESEG_PROFILES_DIR"] = str(tmp_path_factory.mktemp("waveseg-profiles"))
    yield


@pytest.fixture(scope="session")
def sample_volume():
    return read_image(SAMPLE_T1)


@pytest.fixture(scope="session")
def sample_slice(sample_volume) -> np.ndarray:
    """(217, 181) uint8 axial T1 slice of a real brain."""
    return sample_volume.array[DEMO_SLICE]


@pytest.fixture(scope="session")
def brain_mask() -> np.ndarray:
    """(217, 181) bool reference brain mask of ``sample_slice``."""
    return read_image(SAMPLE_BRAIN_MASK).array[DEMO_SLICE] > 0


@pytest.fixture(scope="session")
def litemedsam():
    from waveseg.predictor import Segmenter

    return Segmenter.from_pretrained("litemedsam")


@pytest.fixture(scope="session")
def fast_segmenter():
    """The shipped wave-gms (light and fast): for tests of plumbing, not model quality."""
    from waveseg.predictor import Segmenter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return Segmenter.from_pretrained("wave-gms")

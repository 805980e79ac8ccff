"""Adaptation profiles are scoped to their structure: a segment named for it gets the profile,
every other segment the base model, bit for bit (``waveseg.adaptation.scope``, the app's Document)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from profile_factory import save_scoped_profile

from waveseg.adaptation.profiles import list_profiles
from waveseg.adaptation.scope import AUTOMATIC, NO_PROFILE, ScopedSegmenters, normalise_structure, profile_for_segment
from waveseg.app.document import Document
from waveseg.predictor import Segmenter
from waveseg.sample_data import DEMO_SLICE

MODEL = "wave-gms"
BOX = (30, 30, 150, 190)  # (x0, y0, x1, y1) around the brain on the sample's axial slices
SLICES = (DEMO_SLICE - 6, DEMO_SLICE, DEMO_SLICE + 6)


def _load(profile=None) -> Segmenter:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return Segmenter.from_pretrained(MODEL, profile=profile)


@pytest.fixture
def thalamus_profile(tmp_path, monkeypatch) -> str:
    monkeypatch.setenv("WAVESEG_PROFILES_DIR", str(tmp_path / "profiles"))
    return save_scoped_profile(MODEL, "Thalamus", "thal-site")


def test_profile_resolution_by_segment_name():
    profiles = [{"name": "old", "scope": ["thalamus"], "created": "2026-01-01T00:00:00"},
                {"name": "new", "scope": ["Thalamus"], "created": "2026-06-01T00:00:00"},
                {"name": "liver", "structure": "Liver"}]  # a profile from before scopes: its structure is its scope
    assert normalise_structure(" Right_Thalamus ") == normalise_structure("right-thalamus") == "right thalamus"
    assert profile_for_segment("THALAMUS", profiles) == "new"  # the newest of two for the same structure
    assert profile_for_segment("liver", profiles, AUTOMATIC) == "liver"
    assert profile_for_segment("Segment_1", profiles) is None  # no profile names it: the base model
    generic = [{"name": "made-on-segment-1", "scope": ["Segment_1"]}]  # adapted before the segment was renamed
    assert profile_for_segment("Segment_1", generic) is None  # a default name names no structure
    assert profile_for_segment("Segment_1", generic, "made-on-segment-1") == "made-on-segment-1"  # chosen: applies
    assert profile_for_segment("", profiles) is None
    assert profile_for_segment("liver", profiles, NO_PROFILE) is None
    assert profile_for_segment("liver", profiles, "old") == "old"  # an explicit choice applies to every segment


def _prompt(document: Document, row: int) -> np.ndarray:
    document.active = row
    session = document.segment.session
    for index in SLICES:
        session.segment_slice(0, index, box=BOX)
    session.click((90, 120, DEMO_SLICE), positive=False, axis=0, repropagate=False)
    return session.mask.copy()


def test_a_scoped_profile_leaves_other_segments_bit_identical(thalamus_profile, sample_volume):
    loaded = []
    base = _load()
    scoped = ScopedSegmenters(lambda profile: loaded.append(profile) or _load(profile), list_profiles)
    document = Document(sample_volume, base, prefetch=False, segmenters=scoped)
    document.add_segment("Putamen")
    document.add_segment("thalamus")
    assert [s.profile for s in document.segments] == [None, thalamus_profile] and loaded == [thalamus_profile]
    assert document.segments[0].session.segmenter is base and document.segments[0].session.cache is not document.segments[1].session.cache

    reference = Document(sample_volume, base, prefetch=False)  # no scoping: the base model everywhere
    reference.add_segment("Putamen")
    reference.add_segment("thalamus")
    profiled = Document(sample_volume, _load(thalamus_profile), prefetch=False)  # the profile everywhere

    putamen, thalamus = _prompt(document, 0), _prompt(document, 1)
    assert np.array_equal(putamen, _prompt(reference, 0))  # the other structure: bit for bit the base model
    assert np.array_equal(thalamus, _prompt(profiled, 1))  # its own structure: the profile's model
    assert not np.array_equal(thalamus, _prompt(reference, 1))  # and that differs from the base model here

    document.segments[0].name = "Thalamus"  # renamed: from now on the profile applies to it too
    assert document.rescope() == [document.segments[0]]
    assert np.array_equal(document.segments[0].mask, putamen) and document.segments[0].session.can_undo  # nothing lost
    assert document.segments[0].session.segmenter is document.segments[1].session.segmenter  # one model, one cache
    assert document.segments[0].session.cache is document.segments[1].session.cache
    assert np.array_equal(_prompt(document, 0), _prompt(profiled, 0))

    scoped.choice = NO_PROFILE  # "(none)": every segment back on the base model
    document.rescope()
    assert all(s.session.segmenter is base and s.profile is None for s in document.segments)

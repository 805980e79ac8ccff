"""Teacher pseudo-labels (scripts/build_pseudo_labels.py, issue #23) on a real slice, and their merge into a split."""

from pathlib import Path

import numpy as np
import pytest

from waveseg.metrics import iou

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


@pytest.fixture()
def pseudo_labels(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPTS))
    import build_pseudo_labels

    return build_pseudo_labels


def test_kept_masks_are_confident_distinct_and_inside_the_image(pseudo_labels, litemedsam, sample_slice):
    image, (h, w) = pseudo_labels.framed_plane(sample_slice.astype(np.float32), None)
    kept = pseudo_labels.pseudo_label(litemedsam, image, (h, w), min_score=0.8, min_agreement=0.5, per_slice=4)
    assert 1 <= len(kept) <= 4
    scores = [score for _, score in kept]
    assert min(scores) >= 0.8 and scores == sorted(scores, reverse=True)
    for i, (mask, _) in enumerate(kept):
        assert mask.shape == (256, 256) and mask.sum() >= pseudo_labels.MIN_MASK_PIXELS
        assert not mask[h:].any() and not mask[:, w:].any()  # nothing on the zero padding
        assert all(iou(mask, other) <= 0.8 for other, _ in kept[:i])
    stricter = pseudo_labels.pseudo_label(litemedsam, image, (h, w), min_score=max(scores) + 1e-3, min_agreement=0.5, per_slice=4)
    assert stricter == []


def test_a_slice_without_contrast_gives_no_candidate(pseudo_labels):
    assert pseudo_labels.candidates(np.full((200, 180), 40, np.uint8)) == []


def test_merged_pseudo_masks_point_at_their_own_images(pseudo_labels):
    def part(n_images: int, n_masks: int, tag: str) -> dict:
        images = np.arange(n_images, dtype=np.uint8)[:, None, None] * np.ones((1, 256, 256), np.uint8)
        return {"images": images + (100 if tag == "p" else 0), "valid_hw": np.full((n_images, 2), 256),
                "source": np.array([f"{tag}{i}" for i in range(n_images)]),
                "masks": np.zeros((n_masks, 256, 256), bool), "mask_slice": np.arange(n_masks) % n_images,
                "mask_name": np.array([f"{tag}m{i}" for i in range(n_masks)]), "mask_modality": np.array(["CT"] * n_masks),
                "mask_source": np.array([tag] * n_masks), "mask_patient": np.array([tag] * n_masks)}

    labelled, pseudo = part(3, 5, "l"), part(2, 2, "p")
    merged = pseudo_labels.merge(labelled, pseudo, repeat=3)
    assert len(merged["images"]) == 5 and len(merged["masks"]) == 5 + 2 * 3
    assert list(merged["mask_name"][5:]) == ["pm0"] * 3 + ["pm1"] * 3
    for name, index in zip(merged["mask_name"], merged["mask_slice"]):
        tag, i = name[0], int(name[2:])
        expected = f"{tag}{i % (3 if tag == 'l' else 2)}"
        assert merged["source"][index] == expected

"""NSD (waveseg.metrics.surface_dice) and evaluate.py --by-modality's grouping, on the embedded real
sample (Colin27 T1 + brain mask): build_slices.py cuts it with modality, source and patient, two sets
are merged, both models run the protocol on the same chosen masks, and every group row must be
the protocol's numbers of exactly that group's masks."""

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage
from waveseg.io import read_image
from waveseg.metrics import dice, surface_dice
from waveseg.sample_data import DATA_DIR, DEMO_SLICE, SAMPLE_BRAIN_MASK

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def _nsd_by_distance_maps(a: np.ndarray, b: np.ndarray, tolerance: float) -> float:
    """NSD from its definition (boundary = mask minus its erosion; Euclidean distance maps), to
    check MONAI's value independently."""
    edges_a, edges_b = a & ~ndimage.binary_erosion(a), b & ~ndimage.binary_erosion(b)
    to_b, to_a = ndimage.distance_transform_edt(~edges_b), ndimage.distance_transform_edt(~edges_a)
    within = (to_b[edges_a] <= tolerance).sum() + (to_a[edges_b] <= tolerance).sum()
    return within / (edges_a.sum() + edges_b.sum())


@pytest.fixture(scope="module")
def brain() -> np.ndarray:
    return read_image(SAMPLE_BRAIN_MASK).array[DEMO_SLICE] > 0


def test_nsd_forgives_boundary_errors_within_the_tolerance_that_dice_counts(brain):
    assert surface_dice(brain, brain) == pytest.approx(1.0)
    shifted = np.roll(brain, 1, axis=1)
    assert dice(shifted, brain) < 0.99
    assert surface_dice(shifted, brain, tolerance=2.0) == pytest.approx(1.0)
    far = np.roll(brain, 6, axis=1)
    assert surface_dice(far, brain, tolerance=2.0) < 0.8


@pytest.mark.parametrize("shift", [0, 2, 3, 5])
def test_nsd_matches_its_definition(brain, shift):
    eroded = ndimage.binary_erosion(brain, iterations=shift) if shift else brain
    moved = np.roll(eroded, shift, axis=0)
    expected = _nsd_by_distance_maps(moved, brain, 2.0)
    assert surface_dice(moved, brain, tolerance=2.0) == pytest.approx(expected, abs=1e-6)


def test_nsd_of_empty_masks_and_bad_shapes(brain):
    empty = np.zeros_like(brain)
    assert surface_dice(empty, empty) == 1.0
    assert surface_dice(empty, brain) == 0.0 and surface_dice(brain, empty) == 0.0
    with pytest.raises(ValueError, match="2D masks of one shape"):
        surface_dice(brain, brain[:-1])


@pytest.fixture(scope="module")
def scripts():
    mp = pytest.MonkeyPatch()
    mp.syspath_prepend(str(SCRIPTS))
    import build_slices
    import evaluate
    import modality_report
    import scripts_common

    mp.setattr(scripts_common, "VOLUMES", DATA_DIR)  # build_slices reads the embedded sample
    mp.setattr(evaluate, "MAX_CLICKS", 5)  # the protocol's loops, shortened: this tests grouping
    yield build_slices, evaluate, modality_report
    mp.undo()


@pytest.fixture(scope="module")
def merged(scripts, tmp_path_factory):
    build_slices, _, modality_report = scripts
    label = {"file": SAMPLE_BRAIN_MASK.name, "structures": {"brain": ">0"}}
    tagged = {"name": "colin27_axial", "image": "colin27_t1_axial.nii.gz", "modality": "MR (brain T1)",
              "source": "mricron", "patient": "colin27", "step": 5, "axes": [0], "labels": [label]}
    # an entry without modality, source or patient (as older splits are): reported as "unknown"
    untagged = {"name": "colin27_coronal", "image": "colin27_t1_axial.nii.gz", "step": 60, "axes": [1], "labels": [label]}
    folder = tmp_path_factory.mktemp("slices")
    paths = []
    for entry in (tagged, untagged):
        arrays = build_slices.build([entry])
        if entry is untagged:  # as written before build_slices recorded them
            arrays = {k: v for k, v in arrays.items() if k not in ("mask_modality", "mask_source", "mask_patient")}
        paths.append(folder / f"{entry['name']}.npz")
        np.savez_compressed(paths[-1], **arrays)
    return [dict(np.load(p)) for p in paths], modality_report.load_slices(paths)


def test_merged_sets_keep_every_mask_on_its_own_slice(merged):
    parts, data = merged
    assert len(data["masks"]) == sum(len(p["masks"]) for p in parts) >= 5
    k = 0
    for part in parts:
        for i in range(len(part["masks"])):
            assert np.array_equal(data["images"][data["mask_slice"][k]], part["images"][part["mask_slice"][i]])
            k += 1
    assert set(data["mask_modality"]) == {"MR", "unknown"}
    assert set(data["mask_source"]) == {"mricron", "colin27_coronal"}


def test_by_modality_rows_are_the_protocol_of_their_own_masks(scripts, merged, fast_segmenter, litemedsam):
    _, evaluate, modality_report = scripts
    _, data = merged
    chosen = modality_report.choose_per_group(data, 2)
    keys = modality_report.group_keys(data)[chosen]
    assert sorted(keys.tolist()) == ["MR / mricron"] * 2 + ["unknown / colin27_coronal"] * 2
    per_mask = {"litemedsam": evaluate.evaluate(litemedsam, data, 0, 0, "litemedsam", chosen),
                "wave-gms": evaluate.evaluate(fast_segmenter, data, 0, 0, "wave-gms", chosen)}
    grouped = modality_report.group_summaries(per_mask, data, evaluate.summarize)

    row = grouped["source"]["MR / mricron"]
    assert (row["n"], row["slices"], row["patients"]) == (2, 2, 1)
    assert grouped["modality"]["unknown"]["patients"] == 1 and grouped["all"]["n"] == 4
    for label, results in per_mask.items():
        positions = [i for i, m in enumerate(results["mask_index"]) if data["mask_modality"][m] == "MR"]
        assert len(positions) == 2
        for key in ("box", "nsd_box", "box_5clicks", "nsd_box_5clicks", "noc85", "box_roi"):
            assert grouped["modality"]["MR"]["models"][label][key] == pytest.approx(np.mean([results[key][i] for i in positions]))
        assert grouped["all"]["models"][label]["box"] == pytest.approx(evaluate.summarize(results)["box"])

    gaps = modality_report.goal_gaps(row, "wave-gms")
    ours, ref = row["models"]["wave-gms"], row["models"]["litemedsam"]
    assert gaps["box"] == pytest.approx(ours["box"] - ref["box"] - 0.03)
    assert gaps["click5"] == pytest.approx(ours["click5"] - 0.90)
    assert gaps["noc85"] == pytest.approx(5 - ours["noc85"])
    assert modality_report.goal_gaps(row, "litemedsam") is None
    lines = modality_report.tables(grouped)
    assert any(line.startswith("| MR | mricron | 2 (2, 1) | wave-gms | ") for line in lines)
    assert any(line.startswith(f"| MR | wave-gms | {gaps['box']:+.3f}") for line in lines)
    without_roi = modality_report.tables(grouped, roi=False)  # evaluate.py --no-roi: no ROI-zoom columns at all
    assert not any("ROI zoom" in line for line in without_roi)
    assert f"| MR | wave-gms | {gaps['box']:+.3f} | {gaps['click5']:+.3f} | {gaps['noc85']:+.1f} |" in without_roi

    shuffled = dict(per_mask, **{"wave-gms": dict(per_mask["wave-gms"], mask_index=per_mask["wave-gms"]["mask_index"][::-1])})
    with pytest.raises(ValueError, match="other masks"):
        modality_report.group_summaries(shuffled, data, evaluate.summarize)
    # the JSON beside the report keeps every number, the stroke protocol's nested summary too
    as_json = json.loads(json.dumps(modality_report.to_json(grouped)))
    for label in per_mask:
        written, measured = as_json["modality"]["MR"]["models"][label], grouped["modality"]["MR"]["models"][label]
        assert written["box"] == pytest.approx(measured["box"])
        assert written["strokes"].keys() == measured["strokes"].keys()

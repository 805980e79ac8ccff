"""The data splits in configs/ keep the protocol honest: every experiment's split has the same
held-out part, and no split trains on a held-out volume or on a held-out structure."""

import json
from pathlib import Path

import pytest

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
SPLITS = sorted(CONFIGS.glob("data_split*.json"))
REFERENCE = json.loads((CONFIGS / "data_split.json").read_text())

# label ids of the structures held out, in each label file that has them; split files name them,
# atlases outside the split (FreeSurfer's aseg in the MNI152 volume) are listed here by hand
HELD_OUT_IDS = {
    "colin27_aal.nii.gz": {77, 78, 37, 38, 41, 42},  # AAL thalamus, hippocampus, amygdala
    "mni152_desikan_killiany.nii.gz": {10, 49, 17, 53, 18, 54},  # aseg thalamus, hippocampus, amygdala
}


def _held_out_structure_names() -> set[str]:
    """Structures of the test part that some training volume could also carry (not whole organs)."""
    names = set()
    for entry in REFERENCE["test"]:
        for spec in entry["labels"]:
            names |= {name for name in spec["structures"] if name not in ("brain", "liver", "tumour")}
    return names


def test_split_files_exist():
    assert len(SPLITS) >= 2, SPLITS


@pytest.mark.parametrize("path", SPLITS, ids=[p.name for p in SPLITS])
def test_every_split_has_the_reference_held_out_part(path):
    assert json.loads(path.read_text())["test"] == REFERENCE["test"]


@pytest.mark.parametrize("path", SPLITS, ids=[p.name for p in SPLITS])
def test_no_split_trains_on_a_held_out_volume_or_structure(path):
    train = json.loads(path.read_text())["train"]
    held_out_names = _held_out_structure_names()
    assert held_out_names == {"thalamus", "hippocampus", "amygdala"}
    train_images = {entry["image"] for entry in train}
    # the macaque volume is never trained on, in any form
    assert not train_images & {"inia19_t1.nii.gz"}
    for entry in train:
        for spec in entry["labels"]:
            assert spec["file"] != "inia19_neuromaps.nii.gz"
            for name, rule in spec["structures"].items():
                assert not any(held in name for held in held_out_names), (path.name, name)
                if rule != ">0":
                    assert not set(rule) & HELD_OUT_IDS.get(spec["file"], set()), (path.name, name)


def test_lits_training_slices_never_reach_the_held_out_half():
    for path in SPLITS:
        for entry in json.loads(path.read_text())["train"]:
            if entry["image"] == "lits117_ct.nii.gz":
                held_out = next(e for e in REFERENCE["test"] if e["image"] == "lits117_ct.nii.gz")
                assert entry["z_range"][1] <= held_out["z_range"][0], path.name


def test_the_unseen_lesion_set_is_evaluation_only_and_never_trained_on():
    unseen = json.loads((CONFIGS / "eval_unseen_lesions.json").read_text())
    assert unseen["train"] == [] and len(unseen["test"]) == 5
    unseen_files = {entry["image"] for entry in unseen["test"]}
    unseen_files |= {spec["file"] for entry in unseen["test"] for spec in entry["labels"]}
    assert all(name.startswith("pyradiomics_") for name in unseen_files)
    for path in SPLITS:
        for entry in json.loads(path.read_text())["train"] + json.loads(path.read_text())["test"]:
            assert entry["image"] not in unseen_files, (path.name, entry["image"])


def test_every_never_seen_set_is_evaluation_only_and_in_no_split():
    """configs/eval_unseen_*.json (pyradiomics lesions, the package samples of the data census) are
    never trained on: no split names any of their images or label files, in any part."""
    sets = sorted(CONFIGS.glob("eval_unseen_*.json"))
    assert {p.name for p in sets} >= {"eval_unseen_lesions.json", "eval_unseen_packages.json"}
    modalities = set()
    for path in sets:
        config = json.loads(path.read_text())
        assert config["train"] == [], path.name
        files = {entry["image"] for entry in config["test"]}
        files |= {spec["file"] for entry in config["test"] for spec in entry["labels"]}
        modalities |= {entry["modality"].split(" (")[0] for entry in config["test"]}
        for split in SPLITS:
            parts = json.loads(split.read_text())
            used = {e["image"] for e in parts["train"] + parts["test"]}
            used |= {s["file"] for e in parts["train"] + parts["test"] for s in e["labels"]}
            assert not used & files, (split.name, path.name, used & files)
    assert modalities >= {"CT", "MR", "Microscopy"}

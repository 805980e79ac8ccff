"""Model files: LiteMedSAM heads load strictly, our safetensors format round-trips, and
tampered, pickled or foreign weights are refused with a clear error."""

import json
import pickle
import warnings

import pytest
import torch

from waveseg.errors import ModelFileError
from waveseg.model_files import ModelCard, load_litemedsam_state, load_model, save_model, sha256_of
from waveseg.modeling.sam_heads import build_mask_decoder, build_prompt_encoder


def _heads(prefix):
    state = load_litemedsam_state()
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def test_litemedsam_heads_load_into_segment_anything_modules_strictly():
    build_prompt_encoder().load_state_dict(_heads("prompt_encoder."), strict=True)
    build_mask_decoder().load_state_dict(_heads("mask_decoder."), strict=True)


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model, _ = load_model("hrmedseg-lite")
    folder = tmp_path_factory.mktemp("model")
    card_path = save_model(model, ModelCard(name="tiny", backbone="hrmedseg-lite"), folder, half=False)
    return model, folder, card_path


def test_safetensors_round_trip_is_bit_exact(saved_model):
    model, folder, card_path = saved_model
    for path in (card_path, folder / "tiny.safetensors", folder):
        if path == folder:
            (folder / "model.json").write_text(card_path.read_text())
        loaded, card = load_model(path)
        assert card.backbone == "hrmedseg-lite" and card.sha256 == sha256_of(folder / "tiny.safetensors")
        for (k, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
            assert torch.equal(a, b), k
    assert not list(folder.glob(".*")), "no temporary files may be left behind"


def test_tampered_weights_are_refused(saved_model, tmp_path):
    _, folder, card_path = saved_model
    data = bytearray((folder / "tiny.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (tmp_path / "tiny.safetensors").write_bytes(bytes(data))
    (tmp_path / "tiny.json").write_text(card_path.read_text())
    with pytest.raises(ModelFileError, match="SHA-256"):
        load_model(tmp_path / "tiny.json")


def test_a_card_for_another_architecture_is_refused(saved_model, tmp_path):
    _, folder, card_path = saved_model
    card = json.loads(card_path.read_text())
    card["backbone"] = "wave-gms"
    (tmp_path / "tiny.safetensors").write_bytes((folder / "tiny.safetensors").read_bytes())
    (tmp_path / "tiny.json").write_text(json.dumps(card))
    with pytest.raises(ModelFileError, match="do not match"):
        load_model(tmp_path / "tiny.json")


def test_pickled_weights_are_never_loaded(tmp_path):
    evil = tmp_path / "weights.pth"
    evil.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ModelFileError, match="not loaded"):
        load_model(evil)


def test_a_pickle_renamed_to_safetensors_is_refused(tmp_path):
    (tmp_path / "m.safetensors").write_bytes(pickle.dumps({"a": 1}))
    card = ModelCard(name="m", backbone="wave-gms", weights="m.safetensors", sha256=sha256_of(tmp_path / "m.safetensors"))
    (tmp_path / "m.json").write_text(json.dumps(card.__dict__))
    with pytest.raises(ModelFileError, match="not valid safetensors"):
        load_model(tmp_path / "m.json")


@pytest.mark.parametrize("name", ["no-such-model", "missing.json"])
def test_unknown_names_and_missing_cards_are_clear_errors(name):
    with pytest.raises(ModelFileError):
        load_model(name)


def test_corrupt_card_is_a_clear_error(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ModelFileError, match="cannot be read"):
        load_model(tmp_path / "bad.json")


def test_default_is_a_benchmarked_light_model():
    """The catalog's default is a trained light backbone whose card carries the evaluate.py numbers
    (box Dice measured next to LiteMedSAM's in the same run, not more than 1 point below it)."""
    model, card = load_model("default")
    assert card.backbone in ("wave-gms", "hrmedseg-lite")
    ours, reference = card.metrics["held_out"], card.metrics["litemedsam_same_run"]
    assert card.metrics["command"].startswith("Command: `.venv/bin/python scripts/evaluate.py")
    assert ours["box"] >= reference["box"] - 0.01


def test_the_fp16_litemedsam_copy_is_reproducible_close_and_checked(tmp_path, monkeypatch):
    """scripts/export_litemedsam_fp16.py writes exactly the file whose hash the code ships, it loads
    (WAVESEG_LITEMEDSAM_FP16) to LiteMedSAM's weights at fp16 precision, and a changed byte is refused."""
    import subprocess
    import sys
    from pathlib import Path

    copy = tmp_path / "litemedsam-fp16.safetensors"
    script = Path(__file__).resolve().parent.parent / "scripts" / "export_litemedsam_fp16.py"
    result = subprocess.run([sys.executable, str(script), str(copy)], capture_output=True, encoding="utf-8", errors="replace")
    assert result.returncode == 0 and "matches" in result.stdout, result.stdout + result.stderr[-2000:]
    reference = load_litemedsam_state()
    monkeypatch.setenv("WAVESEG_LITEMEDSAM_FP16", str(copy))
    loaded = load_litemedsam_state()
    assert loaded.keys() == reference.keys()
    for key, value in reference.items():
        torch.testing.assert_close(loaded[key], value.float() if value.is_floating_point() else value, rtol=1e-3, atol=1e-3)
    data = bytearray(copy.read_bytes())
    data[-1] ^= 1
    copy.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="corrupt or was modified"):
        load_litemedsam_state()


def test_default_card_lists_its_never_seen_sets_apart_from_its_training_data():
    """The card names the data sets it was never trained on (issue #23), each with licence, labels
    and the config it is evaluated with, and none of them is among its training data (one package
    may hold both: mricron-data's Colin27 is trained on, its inia19 macaque never)."""
    import dataclasses
    from pathlib import Path

    _, card = load_model("default")
    root = Path(__file__).resolve().parent.parent
    assert len(card.never_seen) >= 5
    trained_on = {entry["name"] for entry in card.training_data}
    for entry in card.never_seen:
        assert {"name", "source", "modality", "labels", "licence", "config"} <= set(entry), entry
        assert entry["name"] not in trained_on
        assert (root / entry["config"].split(" ")[0]).exists(), entry["config"]
    # the round trip keeps them (a card written by publish_model.py)
    assert ModelCard(**dataclasses.asdict(card)).never_seen == card.never_seen

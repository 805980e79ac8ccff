"""Few-shot adaptation and profiles: it improves held-back slices, profiles round-trip bit-exactly,
cancellation and bad input leave the model unchanged, foreign or corrupt profiles are refused."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from waveseg.adaptation.fewshot import AdaptationCancelled, adapt
from waveseg.adaptation.profiles import (apply_profile, delete_profile, export_profile, import_profile,
                                         list_profiles, model_fingerprint, save_profile)
from waveseg.errors import InvalidImageError, InvalidPromptError, ModelFileError, WaveSegError
from waveseg.io import read_image
from waveseg.metrics import dice
from waveseg.predictor import Segmenter
from waveseg.sample_data import SAMPLE_BRAIN_MASK

TRAIN, HELD_BACK = (2, 6, 10), (4, 13)
NO_TIME_LIMIT = math.inf  # the step count alone ends these runs: a time budget would cut them on a slow machine


@pytest.fixture(autouse=True)
def profiles_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("WAVESEG_PROFILES_DIR", str(tmp_path / "profiles"))


WHITE_MATTER_T1 = 100  # Colin27 T1 intensity above which brain tissue is (mostly) white matter


@pytest.fixture(scope="module")
def brain_slices(sample_volume):
    """The real sample and a structure the base model does not segment from a box by itself:
    white matter (T1 > 100 inside the reference brain mask), whose box is nearly the brain's."""
    masks = (read_image(SAMPLE_BRAIN_MASK).array > 0) & (sample_volume.array > WHITE_MATTER_T1)
    return sample_volume.array, masks


def _fresh():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return Segmenter.from_pretrained("wave-gms")


def _held_back_dice(seg, volume, masks):
    from waveseg.prompting.simulation import tight_box

    scores = []
    for k in HELD_BACK:
        seg.set_image(volume[k])
        scores.append(dice(seg.predict(box=tight_box(masks[k])).mask, masks[k]))
    return float(np.mean(scores))


@pytest.fixture(scope="module")
def adapted(brain_slices):
    volume, masks = brain_slices
    seg = _fresh()
    before = _held_back_dice(seg, volume, masks)
    fingerprint = model_fingerprint(seg.model)
    records = []
    result = adapt(seg, [volume[k] for k in TRAIN], [masks[k] for k in TRAIN], structure="white matter",
                   steps=30, time_budget_s=NO_TIME_LIMIT, progress=records.append)
    assert model_fingerprint(seg.model) == fingerprint, "adapt(apply=False) must not touch the segmenter"
    return seg, result, before, records


def test_adaptation_improves_held_back_slices(adapted, brain_slices):
    seg, result, before, records = adapted
    assert result.kept and result.decision.scheme == "leave-one-out" and result.decision.n == len(TRAIN), result.message
    assert "Adaptation helped" in result.message and result.metadata["scope"] == ["white matter"]
    # the default method's default final averages the three fold models: no fourth, final run
    assert {r["phase"] for r in records} == {"validation 1/3", "validation 2/3", "validation 3/3"}
    assert result.metadata["final"] == "fold_average" and records[-1]["fraction"] == 1.0
    # the decoder method trains the prompt encoder, the mask decoder and the encoder's neck; the stages stay
    assert set(result.delta) <= {k for k in seg.model.state_dict()
                                 if k.startswith(("prompt_encoder", "mask_decoder", "image_encoder.neck."))}
    assert any(k.startswith("image_encoder.neck.") for k in result.delta) and result.metadata["neck_trained"]
    adapted_seg = _fresh()
    adapted_seg.model.load_state_dict(
        {k: v + result.delta.get(k, torch.zeros_like(v)) if v.is_floating_point() else v
         for k, v in adapted_seg.model.state_dict().items()})
    after = _held_back_dice(adapted_seg, *brain_slices)
    assert after > before + 0.05, (before, after)
    assert result.optimizer_state_bytes > 0


def test_the_retrain_final_trains_once_more_on_every_slice_and_fold_average_needs_the_decoder_method(brain_slices):
    volume, masks = brain_slices
    seg = _fresh()
    before = _held_back_dice(seg, volume, masks)
    records = []
    result = adapt(seg, [volume[k] for k in TRAIN], [masks[k] for k in TRAIN], structure="white matter", final="retrain",
                   steps=30, time_budget_s=NO_TIME_LIMIT, progress=records.append, apply=True)
    assert result.kept and result.metadata["final"] == "retrain", result.message
    assert records[-1]["phase"] == "final" and records[-1]["fraction"] == 1.0
    assert _held_back_dice(seg, volume, masks) > before + 0.05
    with pytest.raises(WaveSegError, match="method 'decoder'"):
        adapt(_fresh(), [volume[2], volume[6]], [masks[2], masks[6]], method="galore", final="fold_average", steps=1)


def test_profile_round_trip_is_bit_exact(adapted):
    seg, result, _, _ = adapted
    expected = _fresh().model
    expected.load_state_dict({k: (v.float() + result.delta[k]).to(v.dtype) if k in result.delta else v
                              for k, v in expected.state_dict().items()})
    save_profile("brain-test", result.delta, result.metadata)
    loaded = Segmenter.from_pretrained("wave-gms", profile="brain-test")
    for (key, a), b in zip(expected.state_dict().items(), loaded.model.state_dict().values()):
        assert torch.equal(a, b), key
    assert [p["name"] for p in list_profiles()] == ["brain-test"]


def test_profiles_export_import_delete_and_refuse_foreign_or_corrupt(adapted, tmp_path, litemedsam):
    _, result, _, _ = adapted
    save_profile("brain-test", result.delta, result.metadata)
    shared = export_profile("brain-test", tmp_path)
    import_profile(shared, name="brain-copy")
    assert sorted(p["name"] for p in list_profiles()) == ["brain-test", "brain-test"]  # name stored inside
    fingerprint = model_fingerprint(litemedsam.model)
    with pytest.raises(ModelFileError, match="made for base model"):
        apply_profile(litemedsam.model, "brain-test")
    assert model_fingerprint(litemedsam.model) == fingerprint
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x00" * 100)
    with pytest.raises(ModelFileError, match="not a valid"):
        import_profile(corrupt)
    delete_profile("brain-copy")
    with pytest.raises(ModelFileError, match="does not exist"):
        delete_profile("brain-copy")
    with pytest.raises(ModelFileError, match="profile name"):
        save_profile("../escape", result.delta, result.metadata)


def test_cancellation_leaves_the_model_unchanged(brain_slices):
    volume, masks = brain_slices
    seg = _fresh()
    fingerprint = model_fingerprint(seg.model)
    polls, steps = [], []

    def cancel_at_the_third_poll() -> bool:  # cancelled by counting polls, not by time
        polls.append(1)
        return len(polls) == 3

    with pytest.raises(AdaptationCancelled):
        adapt(seg, [volume[2], volume[6]], [masks[2], masks[6]], method="galore", steps=50, time_budget_s=NO_TIME_LIMIT,
              apply=True, progress=steps.append, cancel=cancel_at_the_third_poll)
    assert len(polls) == 3 and len(steps) < 50
    assert model_fingerprint(seg.model) == fingerprint


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda v, m: ([v[2]], [np.zeros_like(m[2])]), InvalidPromptError, "empty"),
        (lambda v, m: ([v[2]], [np.ones_like(m[2])]), InvalidPromptError, "full"),
        (lambda v, m: ([v[2]], [m[2][:100]]), InvalidPromptError, "differs"),
        (lambda v, m: ([v[2], v[3]], [m[2]]), InvalidPromptError, "one mask per image"),
        (lambda v, m: ([], []), InvalidPromptError, "from 1 to"),
        (lambda v, m: ([np.where(m[2], np.nan, v[2].astype(float))], [m[2]]), InvalidImageError, "NaN"),
    ],
)
def test_bad_adaptation_input_is_refused(brain_slices, make, error, match):
    seg = _fresh()
    images, masks = make(*brain_slices)
    with pytest.raises(error, match=match):
        adapt(seg, images, masks, apply=True)


def test_worker_reports_json_lines_and_writes_a_profile(brain_slices, tmp_path):
    volume, masks = brain_slices
    np.savez(tmp_path / "k.npz", images=volume[[2, 6]], masks=masks[[2, 6]])
    result = subprocess.run([sys.executable, "-m", "waveseg.adaptation.worker", "--model", "wave-gms", "--data",
                             str(tmp_path / "k.npz"), "--name", "w", "--steps", "3",
                             "--time-budget", str(NO_TIME_LIMIT)], capture_output=True, encoding="utf-8", errors="replace")
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.returncode == 0, result.stderr[-2000:]
    assert {e["event"] for e in events[:-1]} == {"progress"} and events[-1]["event"] == "done"
    done = events[-1]
    assert done["message"].startswith("Adaptation") and (done["profile"] is not None) == done["kept"]
    assert [p["name"] for p in list_profiles()] == (["w"] if done["kept"] else [])
    bad = subprocess.run([sys.executable, "-m", "waveseg.adaptation.worker", "--data", str(tmp_path / "missing.npz"),
                          "--name", "x"], capture_output=True, encoding="utf-8", errors="replace")
    assert bad.returncode == 2 and json.loads(bad.stdout.splitlines()[-1])["event"] == "error"


def test_lora_adaptation_merges_into_plain_weights(brain_slices):
    """The LoRA comparison method: adapters train, then merge, so its profile is an ordinary delta."""
    pytest.importorskip("peft")
    from waveseg.adaptation.fewshot import _prepare
    from waveseg.adaptation.fit import FitSettings, fit
    from waveseg.adaptation.profiles import profile_delta

    volume, masks = brain_slices
    model = _fresh().model
    base = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = _prepare([volume[k] for k in TRAIN], [masks[k] for k in TRAIN], None)
    record = fit(model, x, y, FitSettings.for_method("lora"), 2, NO_TIME_LIMIT)
    assert record.steps == 2 and set(model.state_dict()) == set(base)  # no adapter modules left after merging
    delta = profile_delta(base, model.state_dict())
    assert any(k.startswith("image_encoder.") for k in delta)


def test_overfitting_one_slice_of_a_structure_the_model_gets_right_keeps_the_base_model(sample_volume):
    """One annotated slice of the brain, which the base model already segments from a box: the
    gate sees no gain on unseen views, keeps the base model and says so with the numbers."""
    brain = read_image(SAMPLE_BRAIN_MASK).array > 0
    seg = _fresh()
    fingerprint = model_fingerprint(seg.model)
    result = adapt(seg, [sample_volume.array[8]], [brain[8]], structure="brain", steps=15, time_budget_s=NO_TIME_LIMIT,
                   apply=True)
    assert not result.kept and result.delta == {}
    assert result.decision.scheme == "augmented views" and result.decision.dice_before > 0.9
    assert "did not help" in result.message and "the base model stays" in result.message
    assert model_fingerprint(seg.model) == fingerprint


def test_the_time_budget_is_honoured(brain_slices):
    """The budget covers the whole call; measured on a clock that advances 0.25 s per reading, so
    the test does not depend on how fast this machine is."""
    volume, masks = brain_slices
    readings = []

    def clock() -> float:
        readings.append(1)
        return 0.25 * len(readings)

    result = adapt(_fresh(), [volume[k] for k in TRAIN], [masks[k] for k in TRAIN], steps=10_000, time_budget_s=20.0,
                   clock=clock)
    assert 0 < result.seconds <= 20.0 * 1.05 and result.steps < 10_000


@pytest.mark.parametrize("before, after, scheme, kept", [
    ([0.6, 0.7, 0.65], [0.75, 0.8, 0.78], "leave-one-out", True),     # +12.7 points, consistent
    ([0.9, 0.92, 0.88], [0.91, 0.92, 0.89], "leave-one-out", False),  # +0.7 points: below the floor
    ([0.6, 0.7, 0.65], [0.95, 0.5, 0.7], "leave-one-out", False),     # +6.7 points but noise 12.2
    ([0.8] * 8, [0.84] * 8, "augmented views", False),                # one slice: needs more than 5 points
])
def test_gate_keeps_only_gains_beyond_noise(before, after, scheme, kept):
    from waveseg.adaptation.gate import decide

    decision = decide(before, after, scheme, k=3)
    assert decision.kept is kept
    assert ("helped" if kept else "did not help") in decision.message


def test_one_annotated_slice_keeps_the_encoders_neck_frozen(brain_slices):
    """With one slice, validated only on its own augmented views, the decoder method trains fewer
    parameters: the neck stays as it is (fewshot.adapt), so no profile can carry a neck delta."""
    volume, masks = brain_slices
    result = adapt(_fresh(), [volume[TRAIN[0]]], [masks[TRAIN[0]]], steps=3, time_budget_s=NO_TIME_LIMIT)
    assert result.decision.scheme == "augmented views" and result.metadata["neck_trained"] is False
    assert not any(k.startswith("image_encoder.") for k in result.delta)

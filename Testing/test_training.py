"""Training runs end to end on a tiny real set: DDP with two CPU processes (gloo), checkpoints
that resume, and a model file that loads."""

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from waveseg.model_files import load_model
from waveseg.predictor import to_model_input
from waveseg.preprocess import ResizeGeometry, normalize_intensity

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tiny_slices(tmp_path_factory, sample_volume, litemedsam):
    """4 real slices in the model frame, their brain masks, and LiteMedSAM's embeddings."""
    from waveseg.io import read_image
    from waveseg.sample_data import SAMPLE_BRAIN_MASK

    folder = tmp_path_factory.mktemp("slices")
    masks_volume = read_image(SAMPLE_BRAIN_MASK).array > 0
    images, masks = [], []
    for k in (2, 6, 10, 14):
        normalized = normalize_intensity(sample_volume.array[k])
        geometry = ResizeGeometry.for_shape(*normalized.shape)
        images.append((to_model_input(normalized, geometry)[0, 0].numpy() * 255).round().astype(np.uint8))
        m = torch.from_numpy(masks_volume[k].astype(np.float32))[None, None]
        framed = np.zeros((256, 256), bool)
        rh, rw = geometry.resized_hw
        framed[:rh, :rw] = torch.nn.functional.interpolate(m, size=(rh, rw), mode="nearest")[0, 0].numpy() > 0.5
        masks.append(framed)
    np.savez(folder / "train.npz", images=np.stack(images), masks=np.stack(masks), mask_slice=np.arange(4),
             mask_name=np.array(["sample:brain"] * 4), valid_hw=np.array([[256, 214]] * 4), source=np.array(["s"] * 4))
    with torch.inference_mode():
        teacher = litemedsam.model.encode(torch.from_numpy(np.stack(images)[:, None].astype(np.float32) / 255).expand(4, 3, 256, 256))
    np.save(folder / "teacher_train.npy", teacher.numpy().astype(np.float16))
    np.save(folder / "teacher_train.done.npy", np.ones(4, bool))
    return folder


def _config(path: Path, distill_steps: int, finetune_steps: int) -> Path:
    path.write_text(json.dumps({
        "backbone": "wave-gms", "seed": 0, "checkpoint_every": 2,
        "distill": {"steps": distill_steps, "batch": 2, "lr": 0.002},
        "finetune": {"steps": finetune_steps, "batch": 1, "lr": 0.0002, "decoder_lr": 0.00003, "max_rounds": 1},
    }))
    return path


def _steps(out: Path) -> list[tuple[str, int]]:
    return [(r["stage"], r["step"]) for r in map(json.loads, (out / "log.jsonl").read_text().splitlines())]


def test_ddp_on_two_cpu_processes_trains_and_writes_a_loadable_model(tiny_slices, tmp_path):
    torchrun = str(Path(sys.executable).parent / "torchrun")
    out = tmp_path / "run"
    result = subprocess.run(
        [torchrun, "--nproc_per_node", "2", "--master_port", "29533", str(ROOT / "scripts" / "train.py"),
         "--config", str(_config(tmp_path / "c.json", 2, 1)), "--out", str(out), "--slices", str(tiny_slices)],
        capture_output=True, encoding="utf-8", errors="replace", timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert _steps(out) == [("distill", 1), ("distill", 2), ("finetune", 1)]
    model, card = load_model(out / "wave-gms.json")
    assert card.backbone == "wave-gms" and card.dtype == "float16" and card.training_data


def test_a_run_from_shipped_weights_keeps_their_lineage_and_data_provenance(tiny_slices, tmp_path):
    from waveseg.model_files import models_dir

    shipped = models_dir() / "wave-gms.json"
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"backbone": "wave-gms", "finetune": {"steps": 1, "batch": 1, "lr": 1e-5, "spatial_augment": 0.5,
                                                                      "pin_clicks": True, "stroke_prob": 0.5, "lasso_prob": 0.5}}))
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), "--config", str(config), "--out", str(out),
                             "--slices", str(tiny_slices), "--init", str(models_dir() / "wave-gms.safetensors")],
                            capture_output=True, encoding="utf-8", errors="replace", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    _, card = load_model(out / "wave-gms.json")
    _, init_card = load_model(shipped)
    assert card.notes.startswith(init_card.notes) and '"spatial_augment": 0.5' in card.notes
    assert '"pin_clicks": true' in card.notes and '"stroke_prob": 0.5' in card.notes
    assert card.training_data[: len(init_card.training_data)] == init_card.training_data
    assert card.training_data[-1] == {"name": "s", "source": "not listed in scripts/train.py", "licence": "unknown"}


def test_an_interrupted_run_resumes_from_its_checkpoint(tiny_slices, tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, str(ROOT / "scripts" / "train.py"), "--out", str(out), "--slices", str(tiny_slices)]
    first = subprocess.run(command + ["--config", str(_config(tmp_path / "a.json", 2, 0))], capture_output=True, encoding="utf-8", errors="replace")
    assert first.returncode == 0, first.stderr[-3000:]
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 2
    second = subprocess.run(command + ["--config", str(_config(tmp_path / "b.json", 4, 0))], capture_output=True, encoding="utf-8", errors="replace")
    assert second.returncode == 0, second.stderr[-3000:]
    assert _steps(out) == [("distill", 1), ("distill", 2), ("distill", 3), ("distill", 4)]


def test_distillation_lowers_the_loss_on_real_slices(tiny_slices):
    from waveseg.training.data import DistillationSlices
    from waveseg.training.losses import distillation_loss

    from waveseg.training.student import build_student

    torch.manual_seed(0)
    model = build_student("wave-gms")
    data = DistillationSlices(tiny_slices / "train.npz", tiny_slices / "teacher_train.npy", augment=False)
    x = torch.stack([data[i][0] for i in range(4)])
    t = torch.stack([data[i][1] for i in range(4)])
    optimizer = torch.optim.AdamW(model.image_encoder.parameters(), lr=2e-3)
    losses = []
    for _ in range(8):
        loss = distillation_loss(model.image_encoder(x), t)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses


def test_a_time_budget_cuts_the_stage_and_the_schedule_follows(tiny_slices, tmp_path):
    """A stage with ``time_budget_s`` stops early (re-estimated every 20 steps), its cosine schedule
    ends at zero at the cut, and its checkpoint marks the stage as finished."""
    from waveseg.training.data import DistillationSlices
    from waveseg.training.student import build_student
    from waveseg.training.trainer import Distributed, StageConfig, TrainConfig, run_stage

    stage = StageConfig(steps=1000, batch=1, lr=0.002, time_budget_s=1e-3)  # spent after the first step
    ticks = itertools.count()  # a fake clock, one second further at every reading: the cut cannot depend on the machine's speed
    records = []
    run_stage("distill", build_student("wave-gms"), DistillationSlices(tiny_slices / "train.npz", tiny_slices / "teacher_train.npy"),
              stage, TrainConfig(backbone="wave-gms", checkpoint_every=1000), tmp_path, Distributed(), log=records.append,
              clock=lambda: float(next(ticks)))
    assert [r["step"] for r in records] == list(range(1, 22))  # 20 steps to measure, then one more
    assert records[-1]["of"] == 21 and records[-1]["lr"] == 0.0
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["step"] == 1000


def _slices_with_masks(folder: Path, source: Path, masks: np.ndarray) -> Path:
    data = dict(np.load(source / "train.npz"))
    np.savez(folder / "train.npz", **{**data, "masks": masks})
    return folder / "train.npz"


def test_spatial_augmentation_moves_image_and_mask_together(tiny_slices, tmp_path):
    """Flips and affines (MONAI) move the mask with the image; seeded by torch; off by default."""
    from waveseg.training.data import LabelledSlices

    images = np.load(tiny_slices / "train.npz")["images"]
    bright = images > 64  # a label that can be recomputed from the moved image (the intensity jitter keeps its rank)
    npz = _slices_with_masks(tmp_path, tiny_slices, bright)
    moved = LabelledSlices(npz, spatial_augment=1.0)
    changed = 0
    for i in range(len(moved)):
        torch.manual_seed(i)
        image, mask = moved[i]
        assert image.shape == (3, 256, 256) and mask.shape == (256, 256) and mask.dtype == torch.uint8
        m, moved_image = mask.numpy().astype(bool), image[0].numpy()
        # the intensity jitter is monotonic: the moved image's brightest pixels, as many as the mask has, are the mask
        again = moved_image >= np.sort(moved_image.ravel())[-m.sum()]
        assert 2 * (again & m).sum() / (again.sum() + m.sum()) > 0.9  # interpolation blurs only the edges
        changed += not np.array_equal(m, bright[i])
        torch.manual_seed(i)
        assert torch.equal(moved[i][1], mask)
    assert changed == len(moved)
    torch.manual_seed(0)
    assert np.array_equal(LabelledSlices(npz)[1][1].numpy().astype(bool), bright[1])


def test_spatial_augmentation_never_moves_a_small_target_out_of_view(tiny_slices, tmp_path):
    from waveseg.training.data import MIN_AUGMENTED_PIXELS, LabelledSlices

    corner = np.zeros((4, 256, 256), bool)
    corner[:, 2:7, 2:7] = True  # 25 pixels at the edge: most shifts or rotations lose it
    data = LabelledSlices(_slices_with_masks(tmp_path, tiny_slices, corner), spatial_augment=1.0)
    for seed in range(20):
        torch.manual_seed(seed)
        assert data[seed % 4][1].sum() >= MIN_AUGMENTED_PIXELS


def test_averaging_a_model_with_itself_gives_it_back_and_bad_arguments_are_refused(tmp_path):
    from safetensors.numpy import load_file

    from waveseg.model_files import models_dir

    script = [sys.executable, str(ROOT / "scripts" / "average_models.py")]
    shipped = str(models_dir() / "wave-gms.json")
    done = subprocess.run(script + [shipped, shipped, "--out", str(tmp_path / "same")], capture_output=True, encoding="utf-8")
    assert done.returncode == 0, done.stderr[-3000:]
    original, averaged = load_file(models_dir() / "wave-gms.safetensors"), load_file(tmp_path / "same" / "wave-gms.safetensors")
    assert original.keys() == averaged.keys() and all(np.array_equal(original[k], averaged[k]) for k in original)
    _, card = load_model(tmp_path / "same" / "wave-gms.json")
    assert card.notes.startswith("weight average: 0.5 x")
    for bad, message in (([shipped, shipped, "--weight", "1.5"], "--weight must be between 0 and 1"),
                         ([shipped, str(models_dir() / "hrmedseg-lite.json")], "cannot average a wave-gms model with a hrmedseg-lite")):
        refused = subprocess.run(script + bad + ["--out", str(tmp_path / "bad")], capture_output=True, encoding="utf-8")
        assert refused.returncode != 0 and message in refused.stderr and not (tmp_path / "bad").exists()


def test_one_decoder_call_for_a_batch_gives_each_prompts_own_decode(fast_segmenter, sample_volume):
    """decode_tokens (the training step's batched decode) against segment-anything's prompt
    encoder and decoder run on each image alone: box + clicks, clicks + padding, with and
    without a fed-back mask."""
    model = fast_segmenter.model
    images = torch.from_numpy(sample_volume.array[[4, 8, 12], :, :176].astype(np.float32) / 255)
    images = torch.nn.functional.pad(images, (0, 256 - 176, 0, 256 - images.shape[1]))[:, None].expand(3, 3, 256, 256)
    # the same number of tokens per image: a box's two corners + 2 clicks, or 3 clicks + the padding point
    clicks = [torch.tensor([[80.0, 90.0], [40.0, 120.0]]), torch.tensor([[100.0, 60.0], [70.0, 150.0], [90.0, 90.0]]),
              torch.tensor([[60.0, 60.0], [90.0, 100.0]])]
    click_labels = [torch.tensor([1, 0]), torch.tensor([1, 1, 0]), torch.tensor([0, 1])]
    boxes = [torch.tensor([[30.0, 40.0, 150.0, 170.0]]), None, torch.tensor([[50.0, 20.0, 120.0, 200.0]])]
    with torch.inference_mode():
        embedding = model.encode(images)
        masks = torch.randn(3, 1, 256, 256) * 4
        coords = torch.stack([torch.cat([clicks[b], boxes[b].reshape(2, 2) if boxes[b] is not None else torch.zeros(1, 2)])
                              for b in range(3)])
        labels = torch.stack([torch.cat([click_labels[b], torch.tensor([2, 3] if boxes[b] is not None else [-1])])
                              for b in range(3)])
        for mask_input in (None, masks):
            batched, batched_iou = model.decode_tokens(embedding, coords, labels, mask_input)
            for b in range(3):
                alone, alone_iou = model.decode(embedding[b : b + 1], (clicks[b][None], click_labels[b][None]), boxes[b],
                                                None if mask_input is None else mask_input[b : b + 1])
                torch.testing.assert_close(batched[b : b + 1], alone, atol=1e-4, rtol=1e-4)
                torch.testing.assert_close(batched_iou[b : b + 1], alone_iou, atol=1e-5, rtol=1e-4)


def test_a_batched_click_step_trains_encoder_and_decoder_on_real_masks(tiny_slices):
    from waveseg.training.data import LabelledSlices
    from waveseg.training.simulated_prompts import SimulatedPromptStep
    from waveseg.training.student import build_student

    model = build_student("wave-gms")
    data = LabelledSlices(tiny_slices / "train.npz", augment=False)
    images = torch.stack([data[i][0] for i in range(4)])
    masks = torch.stack([data[i][1] for i in range(4)])
    step = SimulatedPromptStep(model, box_prob=0.5, max_rounds=3, pin_clicks=True)
    for seed in range(3):  # different mixes of boxes, clicks and round counts in one batch
        model.zero_grad()
        loss = step(images, masks, seed=seed)
        loss.backward()
        assert torch.isfinite(loss) and loss > 0
        assert model.image_encoder.neck.norm.weight.grad.abs().sum() > 0
        assert model.mask_decoder.iou_token.weight.grad.abs().sum() > 0


def test_roi_zoom_views_show_a_small_target_as_the_session_encodes_it(tiny_slices):
    from waveseg.prompting.roi import ROI_CONTEXT
    from waveseg.training.data import LabelledSlices, roi_zoom_view

    data = np.load(tiny_slices / "train.npz")
    image, brain = data["images"][1], data["masks"][1]
    assert roi_zoom_view(image, brain, (256, 214), np.random.default_rng(0)) is None  # a large target is not zoomed
    yy, xx = np.mgrid[:256, :256]
    small = ((yy - 120) ** 2 + (xx - 100) ** 2 <= 36).astype(np.uint8)  # a disc 13 pixels across
    view, mask = roi_zoom_view(image, small, (256, 214), np.random.default_rng(0))
    magnification = (256 / (13 * ROI_CONTEXT)) ** 2
    assert 0.4 * magnification < mask.sum() / small.sum() < 2.5 * magnification
    rows, cols = np.nonzero(mask.numpy())
    assert 64 < rows.mean() < 192 and 64 < cols.mean() < 192  # the target sits in the crop's middle
    assert view.shape == (256, 256) and 0 <= view.min() and view.max() <= 1 and view.std() > 0.05

    zoomed_set = LabelledSlices(tiny_slices / "train.npz", roi_zoom=1.0)
    zoomed_set.masks = small[None].repeat(4, 0)
    torch.manual_seed(0)
    _, zoomed_mask = zoomed_set[0]
    assert zoomed_mask.sum() > 3 * small.sum()
    assert LabelledSlices(tiny_slices / "train.npz", augment=False, roi_zoom=1.0).roi_zoom == 0.0  # evaluation sets never zoom


def test_dice_and_cross_entropy_equal_monais_on_real_and_random_logits(tiny_slices):
    from monai.losses import DiceCELoss, DiceLoss

    from waveseg.training.data import LabelledSlices
    from waveseg.training.losses import dice_loss, segmentation_loss

    masks = torch.stack([LabelledSlices(tiny_slices / "train.npz", augment=False)[n][1][None].float() for n in range(3)])
    logits = torch.randn(masks.shape, generator=torch.Generator().manual_seed(0)) * 3 + (masks * 2 - 1)
    for target in (masks, torch.zeros_like(masks)):  # an empty target too: the smoothing terms decide
        assert torch.allclose(dice_loss(logits, target), DiceLoss(sigmoid=True)(logits, target), rtol=1e-5, atol=1e-7)
        assert torch.allclose(segmentation_loss(logits, target), DiceCELoss(sigmoid=True)(logits, target), rtol=1e-5, atol=1e-7)


def test_the_boundary_weighted_loss_counts_an_edge_error_more_than_an_interior_one(tiny_slices):
    from waveseg.training.data import LabelledSlices
    from waveseg.training.losses import boundary_band, segmentation_loss

    from monai.losses import DiceCELoss

    mask = LabelledSlices(tiny_slices / "train.npz", augment=False)[0][1][None, None].float()
    band = boundary_band(mask)
    assert band.sum() > 0 and set(band.unique().tolist()) <= {0.0, 1.0}
    assert (band * mask).sum() > 0 and (band * (1 - mask)).sum() > 0  # both sides of the edge
    truth_logits = (mask * 2 - 1) * 4
    interior = mask - band.clamp(max=1) * mask  # foreground pixels away from the edge
    picks = [torch.nonzero(region[0, 0])[:40] for region in (interior, band * mask)]
    assert all(len(p) == 40 for p in picks)
    losses = {"right": [segmentation_loss(truth_logits, mask, w).item() for w in (0.0, 4.0)]}
    for name, pixels in zip(("interior", "edge"), picks):  # the same number of pixels flipped
        wrong = truth_logits.clone()
        wrong[0, 0, pixels[:, 0], pixels[:, 1]] = -4.0
        losses[name] = [segmentation_loss(wrong, mask, w).item() for w in (0.0, 4.0)]
    assert losses["edge"][0] == pytest.approx(losses["interior"][0], rel=1e-4)  # unweighted: alike
    cost = {name: losses[name][1] - losses["right"][1] for name in ("edge", "interior")}  # weighted
    assert cost["edge"] > 2 * cost["interior"] > 0
    # weight 0 is MONAI's Dice + cross-entropy exactly
    assert segmentation_loss(truth_logits, mask).item() == pytest.approx(DiceCELoss(sigmoid=True)(truth_logits, mask).item())

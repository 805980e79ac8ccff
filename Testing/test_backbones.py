"""One suite over the backbone registry: shape contract, finiteness, determinism, budgets."""

import numpy as np
import pytest
import pywt
import torch
from torch.utils.flop_counter import FlopCounterMode

from waveseg.modeling.registry import build_backbone, list_backbones, register_backbone
from waveseg.modeling.wave_gms import WaveletDecomposition

LIGHT = ["wave-gms", "hrmedseg-lite"]


@pytest.fixture(scope="module")
def real_batch(sample_slice):
    from waveseg.predictor import to_model_input
    from waveseg.preprocess import ResizeGeometry, normalize_intensity

    image = normalize_intensity(sample_slice)
    return to_model_input(image, ResizeGeometry.for_shape(*image.shape))


@pytest.mark.parametrize("name", list_backbones())
def test_backbone_maps_a_slice_to_the_sam_embedding(name, real_batch):
    torch.manual_seed(0)
    model = build_backbone(name).eval()
    with torch.no_grad():
        first = model(real_batch)
        second = model(real_batch)
    assert first.shape == (1, 256, 64, 64)
    assert torch.isfinite(first).all()
    assert torch.equal(first, second), "eval mode must be deterministic"


@pytest.mark.parametrize("name", LIGHT)
def test_light_backbones_fit_the_budget(name):
    model = build_backbone(name).eval()
    params = sum(p.numel() for p in model.parameters())
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, 3, 256, 256))
    assert params <= 3_000_000
    assert counter.get_total_flops() <= 3e9  # FLOPs = 2 x multiply-adds, as LiteMedSAM's 75 GFLOPs


@pytest.mark.parametrize("name", LIGHT)
def test_light_backbone_with_decoder_learns_on_a_real_slice(name, real_batch, brain_mask):
    """A few optimisation steps on one real slice lower the Dice+BCE loss of a box prompt."""
    from monai.losses import DiceCELoss

    from waveseg.model_files import load_litemedsam_state
    from waveseg.modeling.promptable import PromptableSegmenter
    from waveseg.modeling.sam_heads import build_mask_decoder, build_prompt_encoder
    from waveseg.preprocess import ResizeGeometry

    torch.manual_seed(0)
    model = PromptableSegmenter(build_backbone(name), build_prompt_encoder(), build_mask_decoder())
    heads = {k: v for k, v in load_litemedsam_state().items() if not k.startswith("image_encoder.")}
    model.load_state_dict(heads, strict=False)
    geometry = ResizeGeometry.for_shape(*brain_mask.shape)
    target = torch.zeros(1, 1, 256, 256)
    rh, rw = geometry.resized_hw
    target[0, 0, :rh, :rw] = torch.nn.functional.interpolate(
        torch.from_numpy(brain_mask.astype(np.float32))[None, None], size=(rh, rw), mode="nearest")[0, 0]
    rows, cols = np.nonzero(brain_mask)
    box = torch.from_numpy(geometry.to_model_xy(np.array([[cols.min(), rows.min()], [cols.max(), rows.max()]])).reshape(1, 4))
    loss_fn = DiceCELoss(sigmoid=True)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    losses = []
    for _ in range(6):
        logits, _ = model(real_batch, boxes=box)
        loss = loss_fn(logits, target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.8 * losses[0], losses


def test_wavelet_decomposition_matches_pywavelets():
    x = np.random.default_rng(0).random((32, 32)).astype(np.float32)
    levels = WaveletDecomposition("haar", levels=2)(torch.from_numpy(x)[None, None])
    approx, (rows, cols, diag) = pywt.dwt2(x, "haar")
    for got, want in zip(levels[0][0], (approx, rows, cols, diag)):
        np.testing.assert_allclose(got.numpy(), want, atol=1e-5)
    approx2 = pywt.dwt2(approx, "haar")[0]
    np.testing.assert_allclose(levels[1][0, 0].numpy(), approx2, atol=1e-5)


def test_registering_a_name_twice_warns():
    @register_backbone("test-dummy")
    def first():
        return torch.nn.Identity()

    with pytest.warns(UserWarning, match="registered twice"):
        @register_backbone("test-dummy")
        def second():
            return torch.nn.Identity()


def test_unknown_backbone_is_a_clear_error():
    from waveseg.errors import ModelFileError

    with pytest.raises(ModelFileError, match="unknown backbone 'nope'"):
        build_backbone("nope")


def test_the_necks_channel_layer_norm_gives_segment_anythings_layernorm2d():
    from segment_anything.modeling.common import LayerNorm2d

    from waveseg.modeling.blocks import ChannelLayerNorm

    torch.manual_seed(0)
    theirs, ours = LayerNorm2d(32), ChannelLayerNorm(32)
    with torch.no_grad():
        theirs.weight.normal_(), theirs.bias.normal_()
    ours.load_state_dict(theirs.state_dict())  # same parameters: shipped weights load unchanged
    x = torch.randn(2, 32, 8, 8) * 3 + 1
    assert (ours(x) - theirs(x)).abs().max() < 1e-5

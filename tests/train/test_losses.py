"""Training losses against values worked out by hand on tiny tensors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from upscale.errors import WeightsError
from upscale.train.losses import (
    ContrastiveLoss,
    PerceptualLoss,
    drcn_alpha,
    drcn_loss,
    drn_primal_loss,
    dual_regression_loss,
    esrgan_perceptual,
    gan_d_loss,
    gan_g_loss,
    johnson_feature,
    pixel_loss,
    ragan_d_loss,
    ragan_g_loss,
    srgan_content,
    tv_loss,
)
from upscale.train.networks import VGGFeatureExtractor

LOG2 = math.log(2)


def _full(value: float, *shape: int) -> torch.Tensor:
    return torch.full(shape, float(value))


# --- pixel ---------------------------------------------------------------------------------------------------------


def test_pixel_loss() -> None:
    a, b = _full(1, 1, 1, 2, 2), _full(3, 1, 1, 2, 2)
    assert pixel_loss("l1")(a, b).item() == 2.0
    assert pixel_loss("mse")(a, b).item() == 4.0
    with pytest.raises(ValueError, match="unknown pixel loss 'l2'"):
        pixel_loss("l2")  # type: ignore[arg-type]


# --- DRCN ----------------------------------------------------------------------------------------------------------


def _drcn_case() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    target = torch.zeros(2, 1, 2, 2)
    preds = torch.stack([_full(1, 2, 1, 2, 2), _full(3, 2, 1, 2, 2)], dim=1)  # N×D×C×H×W, D = 2
    ensemble = _full(2, 2, 1, 2, 2)
    return preds, ensemble, target


@pytest.mark.parametrize(
    ("alpha", "expected"),
    [
        (1.0, 2.5),  # l1 = mean(1², 3²) / 2
        (0.0, 2.0),  # l2 = 2² / 2
        (0.5, 2.25),
    ],
)
def test_drcn_loss(alpha: float, expected: float) -> None:
    preds, ensemble, target = _drcn_case()
    assert drcn_loss(preds, ensemble, target, alpha).item() == pytest.approx(expected)


def test_drcn_loss_checks_its_inputs() -> None:
    preds, ensemble, target = _drcn_case()
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        drcn_loss(preds, ensemble, target, 1.5)
    with pytest.raises(ValueError, match="N×D×C×H×W"):
        drcn_loss(preds[:, 0], ensemble, target, 0.5)


def test_drcn_alpha_schedule() -> None:
    assert drcn_alpha(0, 100) == 1.0
    assert drcn_alpha(10, 100) == pytest.approx(0.6)
    assert drcn_alpha(25, 100) == 0.0
    assert drcn_alpha(80, 100) == 0.0
    assert drcn_alpha(50, 100, start=0.9, end=0.1, decay_fraction=1.0) == pytest.approx(0.5)
    assert drcn_alpha(0, 100, decay_fraction=0.0) == 0.0
    with pytest.raises(ValueError, match="total > 0"):
        drcn_alpha(0, 0)


# --- total variation -----------------------------------------------------------------------------------------------


def test_tv_loss() -> None:
    assert tv_loss(_full(0.7, 2, 3, 5, 4)).item() == 0.0
    ramp = torch.tensor([[0.0, 1.0], [2.0, 3.0]]).view(1, 1, 2, 2)
    assert tv_loss(ramp).item() == pytest.approx(1.0 + 4.0)  # dx = 1, 1; dy = 2, 2
    spike = torch.tensor([[0.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 0.0]]).view(1, 1, 3, 3)
    assert tv_loss(spike).item() == pytest.approx(18 / 6 + 18 / 6)  # two ±3 differences of six, each way
    with pytest.raises(ValueError, match="H, W >= 2"):
        tv_loss(torch.zeros(1, 1, 1, 4))


# --- adversarial ---------------------------------------------------------------------------------------------------


def test_gan_losses_at_zero_logits() -> None:
    zeros = torch.zeros(4, 1)
    assert gan_d_loss(zeros, zeros).item() == pytest.approx(LOG2)
    assert gan_g_loss(zeros).item() == pytest.approx(LOG2)
    sure = gan_d_loss(_full(20, 4, 1), _full(-20, 4, 1))
    assert sure.item() == pytest.approx(0.0, abs=1e-8)
    assert gan_g_loss(_full(-3, 4, 1)).item() == pytest.approx(-math.log(torch.sigmoid(torch.tensor(-3.0)).item()))


def test_ragan_losses() -> None:
    equal = _full(0.3, 3, 1)
    assert ragan_d_loss(equal, equal.clone()).item() == pytest.approx(LOG2)
    assert ragan_g_loss(equal, equal.clone()).item() == pytest.approx(LOG2)
    real, fake = _full(15, 3, 1), _full(-15, 3, 1)
    assert ragan_d_loss(real, fake).item() == pytest.approx(0.0, abs=1e-8)
    assert ragan_g_loss(real, fake).item() == pytest.approx(30.0, abs=1e-6)  # each term ≈ 30, averaged
    # A relativistic loss only sees differences: shifting all logits changes nothing.
    r, f = torch.randn(5, 1), torch.randn(5, 1)
    assert ragan_d_loss(r + 7, f + 7).item() == pytest.approx(ragan_d_loss(r, f).item(), abs=1e-6)


def test_ragan_g_loss_detaches_real_logits() -> None:
    real = torch.randn(4, 1, requires_grad=True)
    fake = torch.randn(4, 1, requires_grad=True)
    ragan_g_loss(real, fake).backward()
    assert real.grad is None
    assert fake.grad is not None and fake.grad.abs().sum() > 0


# --- DRN -----------------------------------------------------------------------------------------------------------


def _drn_case() -> tuple[list[torch.Tensor], torch.Tensor, list[torch.Tensor]]:
    outputs = [_full(1, 1, 3, 2, 2), _full(2, 1, 3, 4, 4), _full(4, 1, 3, 8, 8)]  # LR size, x2, x4
    lrs = [_full(1.5, 1, 3, 2, 2), _full(3, 1, 3, 4, 4)]
    hr = _full(4.25, 1, 3, 8, 8)
    return outputs, hr, lrs


def test_dual_regression_loss() -> None:
    outputs, _, lrs = _drn_case()
    duals = [nn.AvgPool2d(2), nn.AvgPool2d(2)]
    # avg-pool keeps constants: |2 - 1.5| + |4 - 3|
    assert dual_regression_loss(duals, outputs, lrs).item() == pytest.approx(0.5 + 1.0)
    ramp = torch.tensor([[1.0, 3.0], [5.0, 7.0]]).view(1, 1, 2, 2)
    outputs = [torch.zeros(1, 1, 1, 1), ramp, _full(2, 1, 1, 4, 4)]
    lrs = [torch.ones(1, 1, 1, 1), ramp]
    # |mean(1, 3, 5, 7) - 1| + mean(|2 - 1|, |2 - 3|, |2 - 5|, |2 - 7|)
    assert dual_regression_loss(duals, outputs, lrs).item() == pytest.approx(3.0 + 2.5)
    with pytest.raises(ValueError, match="need 2 dual networks"):
        dual_regression_loss(duals[:1], outputs, lrs)


def test_drn_primal_loss() -> None:
    outputs, hr, lrs = _drn_case()
    # |4 - 4.25| + |1 - 1.5| + |2 - 3|
    assert drn_primal_loss(outputs, hr, lrs).item() == pytest.approx(0.25 + 0.5 + 1.0)
    with pytest.raises(ValueError, match="one LR target per output"):
        drn_primal_loss(outputs, hr, lrs[:1])
    with pytest.raises(ValueError, match="output 1 is"):
        drn_primal_loss(outputs, hr, [lrs[0], lrs[0]])


# --- RLFN contrastive ----------------------------------------------------------------------------------------------


def test_contrastive_loss() -> None:
    loss = ContrastiveLoss(seed=3)
    sr, hr, neg = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    assert loss(hr, hr, neg).item() == 0.0
    value = loss(sr, hr, neg)
    assert value.item() > 0
    assert list(loss.parameters()) and not any(p.requires_grad for p in loss.parameters())


def test_contrastive_loss_is_fixed_by_its_seed() -> None:
    torch.manual_seed(1)
    a = ContrastiveLoss(seed=5)
    torch.manual_seed(2)
    b = ContrastiveLoss(seed=5)
    c = ContrastiveLoss(seed=6)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    sr, hr, neg = torch.rand(1, 3, 6, 6), torch.rand(1, 3, 6, 6), torch.rand(1, 3, 6, 6)
    assert torch.equal(a(sr, hr, neg), b(sr, hr, neg))
    assert not torch.equal(a(sr, hr, neg), c(sr, hr, neg))


def test_contrastive_loss_pushes_sr_towards_hr() -> None:
    loss = ContrastiveLoss(channels=4, layer_weights=(1.0, 0.0))
    sr = torch.rand(1, 3, 6, 6, requires_grad=True)
    hr, neg = torch.rand(1, 3, 6, 6), torch.rand(1, 3, 6, 6)
    value = loss(sr, hr, neg)
    feats = loss.features
    s, h, n = feats(sr)[0], feats(hr)[0], feats(neg)[0]
    expected = (s - h).abs().mean() / ((s - n).abs().mean() + loss.eps)
    assert value.item() == pytest.approx(expected.item(), rel=1e-6)
    value.backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0


# --- VGG perceptual ------------------------------------------------------------------------------------------------


def test_perceptual_loss_refuses_random_vgg() -> None:
    with pytest.raises(WeightsError, match="upscale weights download vgg19"):
        esrgan_perceptual(None)
    with pytest.raises(WeightsError, match="VGG16 weights"):
        PerceptualLoss("vgg16", {"relu2_2": 1.0}, "mse", None)


def test_perceptual_loss_values_and_gradients() -> None:
    loss = esrgan_perceptual(None, random_vgg=True)
    hr = torch.rand(1, 3, 32, 32)
    assert loss(hr.clone(), hr).item() == 0.0
    sr = torch.rand(1, 3, 32, 32, requires_grad=True)
    value = loss(sr, hr)
    assert value.item() > 0
    value.backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss.parameters())


def test_perceptual_loss_is_the_weighted_feature_distance() -> None:
    source = VGGFeatureExtractor(arch="vgg16", layers=("relu1_2", "relu2_2"))
    weights = {f"features.{k}": v for k, v in source.features.state_dict().items()}
    loss = PerceptualLoss("vgg16", {"relu1_2": 0.5, "relu2_2": 2.0}, "l1", weights)
    sr, hr = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    fs, fh = source(sr), source(hr)
    expected = 0.5 * (fs["relu1_2"] - fh["relu1_2"]).abs().mean() + 2.0 * (fs["relu2_2"] - fh["relu2_2"]).abs().mean()
    assert loss(sr, hr).item() == pytest.approx(expected.item(), rel=1e-5)


def test_perceptual_presets() -> None:
    esrgan = esrgan_perceptual(None, random_vgg=True)
    assert esrgan.vgg.arch == "vgg19" and esrgan.layer_weights == {"conv5_4": 1.0}
    assert isinstance(esrgan.criterion, nn.L1Loss)
    johnson = johnson_feature(None, random_vgg=True)
    assert johnson.vgg.arch == "vgg16" and johnson.layer_weights == {"relu2_2": 1.0}
    assert isinstance(johnson.criterion, nn.MSELoss) and len(johnson.vgg.features) == 9
    srgan = srgan_content(None, random_vgg=True)
    assert srgan.vgg.arch == "vgg19" and srgan.layer_weights == {"relu5_4": 1.0}
    unscaled = PerceptualLoss("vgg19", {"relu5_4": 1.0}, "mse", None, random_vgg=True)
    unscaled.load_state_dict(srgan.state_dict())
    sr, hr = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    assert srgan(sr, hr).item() == pytest.approx(unscaled(sr, hr).item() / 12.75**2, rel=1e-5)

"""Training losses of the models upscale can train: DRCN, Johnson et al., SRGAN, ESRGAN, DRN and RLFN.

Plain functions for the stateless losses, small ``nn.Module`` classes where a frozen network is involved.
Every input is an N×C×H×W tensor (DRCN's intermediate predictions are N×D×C×H×W); every loss returns a
scalar tensor. Loss *weights* in a recipe's total (ESRGAN's λ, DRN's dual λ, ...) are the caller's, so
each function computes exactly one term and its docstring names the paper and equation it follows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import WeightsError
from .networks import VGGArch, VGGFeatureExtractor

__all__ = [
    "ContrastiveLoss",
    "PerceptualLoss",
    "drcn_alpha",
    "drcn_loss",
    "drn_primal_loss",
    "dual_regression_loss",
    "esrgan_perceptual",
    "gan_d_loss",
    "gan_g_loss",
    "johnson_feature",
    "pixel_loss",
    "ragan_d_loss",
    "ragan_g_loss",
    "srgan_content",
    "tv_loss",
]

Criterion = Literal["l1", "mse"]
VGGWeights = Mapping[str, Any] | str | Path | None


def pixel_loss(kind: Criterion) -> nn.Module:
    """The per-pixel criterion ``kind``: ``"l1"`` (``nn.L1Loss``) or ``"mse"`` (``nn.MSELoss``), both mean-reduced."""
    if kind == "l1":
        return nn.L1Loss()
    if kind == "mse":
        return nn.MSELoss()
    raise ValueError(f"unknown pixel loss {kind!r}; use 'l1' or 'mse'")


# --- DRCN (Kim, Lee, Lee, CVPR 2016) ------------------------------------------------------------------------------


def drcn_loss(preds: torch.Tensor, ensemble: torch.Tensor, target: torch.Tensor, alpha: float) -> torch.Tensor:
    """DRCN's recursive-supervision loss (paper eq. 9-11 without the weight-decay term).

    ``alpha · l1 + (1 - alpha) · l2`` where ``l1 = mean_d MSE(y_d, target) / 2`` supervises each of the D
    intermediate predictions and ``l2 = MSE(ensemble, target) / 2`` the weighted ensemble. The paper divides the
    summed squared error by 2DN and 2N (N = number of images); here it is the per-pixel mean, i.e. additionally
    divided by C·H·W, so the loss does not depend on the patch size. β·||θ||² is the optimizer's weight decay.

    Args:
        preds: N×D×C×H×W, the intermediate predictions ``y_d`` (``DRCN.forward_all``'s second output).
        ensemble: N×C×H×W, the final output ``Σ_d w_d · y_d``.
        target: N×C×H×W ground truth.
        alpha: weight of the intermediate term, in [0, 1]; see :func:`drcn_alpha`.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], not {alpha}")
    if preds.dim() != 5 or preds.shape[0] != target.shape[0] or preds.shape[2:] != target.shape[1:]:
        raise ValueError(f"preds must be N×D×C×H×W matching target {tuple(target.shape)}, not {tuple(preds.shape)}")
    l1 = F.mse_loss(preds, target.unsqueeze(1).expand_as(preds)) / 2  # same size per d: the mean over d of MSEs
    l2 = F.mse_loss(ensemble, target) / 2
    return alpha * l1 + (1 - alpha) * l2


def drcn_alpha(
    iteration: int, total: int, *, start: float = 1.0, end: float = 0.0, decay_fraction: float = 0.25
) -> float:
    """DRCN's α at ``iteration`` of ``total``: linear from ``start`` to ``end`` over the first ``decay_fraction`` of
    training, then constant at ``end``.

    The paper only says α starts high (to stabilise the early recursions) and decays to favour the final output;
    the schedule is not published. Ours follows common ports (1 -> 0 over roughly the first quarter of training).
    """
    if total <= 0 or iteration < 0:
        raise ValueError(f"need total > 0 and iteration >= 0, not {iteration}/{total}")
    if not 0.0 <= decay_fraction <= 1.0:
        raise ValueError(f"decay_fraction must be in [0, 1], not {decay_fraction}")
    decay_iters = decay_fraction * total
    if decay_iters == 0:
        return end
    progress = min(iteration / decay_iters, 1.0)
    return start + (end - start) * progress


# --- Johnson et al. (ECCV 2016) -----------------------------------------------------------------------------------


def tv_loss(x: torch.Tensor) -> torch.Tensor:
    """Total-variation regulariser: ``mean(dx²) + mean(dy²)``, dx and dy the differences of horizontal and vertical
    neighbours (``x[..., :, 1:] - x[..., :, :-1]`` and ``x[..., 1:, :] - x[..., :-1, :]``).

    The squared (not absolute) differences of Johnson et al.'s regulariser, but averaged rather than summed, so
    the weight chosen for it does not depend on the batch or image size. Needs H and W of at least 2.
    """
    if x.dim() != 4 or x.shape[-1] < 2 or x.shape[-2] < 2:
        raise ValueError(f"tv_loss needs an N×C×H×W tensor with H, W >= 2, not {tuple(x.shape)}")
    horizontal = (x[..., :, 1:] - x[..., :, :-1]).pow(2).mean()
    vertical = (x[..., 1:, :] - x[..., :-1, :]).pow(2).mean()
    return horizontal + vertical


# --- adversarial: SRGAN (Ledig et al., CVPR 2017) and ESRGAN (Wang et al., ECCVW 2018) -----------------------------


def _bce(logits: torch.Tensor, label: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, label))


def gan_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Standard GAN discriminator loss (SRGAN): ``(BCE(D(x), 1) + BCE(D(G(z)), 0)) / 2`` on raw logits.

    The two terms are averaged (log 2 at logits 0, like :func:`ragan_d_loss`); the paper's objective sums them,
    which only doubles the gradient. ``fake_logits`` should come from a detached generator output.
    """
    return (_bce(real_logits, 1.0) + _bce(fake_logits, 0.0)) / 2


def gan_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """SRGAN's generator loss ``l_Gen = -log D(G(x))`` (the non-saturating form), averaged over the batch."""
    return _bce(fake_logits, 1.0)


def ragan_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """ESRGAN's relativistic average discriminator loss (paper eq. 1-2).

    ``(BCE(C(x_r) - mean C(x_f), 1) + BCE(C(x_f) - mean C(x_r), 0)) / 2`` with BCE on logits. The authors' code
    averages the two terms; the paper sums them. ``fake_logits`` should come from a detached generator output.
    """
    real_rel = real_logits - fake_logits.mean()
    fake_rel = fake_logits - real_logits.mean()
    return (_bce(real_rel, 1.0) + _bce(fake_rel, 0.0)) / 2


def ragan_g_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """ESRGAN's relativistic average generator loss (paper eq. 3): the symmetric form of :func:`ragan_d_loss`.

    ``(BCE(C(x_r) - mean C(x_f), 0) + BCE(C(x_f) - mean C(x_r), 1)) / 2``, averaged as in the authors' code (the
    paper sums). ``real_logits`` are detached here, so the generator's gradient flows only through ``fake_logits``
    and nothing reaches the discriminator through the real branch.
    """
    real_logits = real_logits.detach()
    real_rel = real_logits - fake_logits.mean()
    fake_rel = fake_logits - real_logits.mean()
    return (_bce(real_rel, 0.0) + _bce(fake_rel, 1.0)) / 2


# --- DRN (Guo et al., CVPR 2020) ----------------------------------------------------------------------------------


def _check_pyramid(outputs: Sequence[torch.Tensor], lrs: Sequence[torch.Tensor]) -> None:
    if len(outputs) < 2 or len(lrs) != len(outputs) - 1:
        raise ValueError(f"need one LR target per output but the last: {len(outputs)} outputs, {len(lrs)} targets")
    for k, (out, lr) in enumerate(zip(outputs, lrs, strict=False)):
        if out.shape != lr.shape:
            raise ValueError(f"output {k} is {tuple(out.shape)} but its LR target is {tuple(lr.shape)}")


def drn_primal_loss(outputs: Sequence[torch.Tensor], hr: torch.Tensor, lrs: Sequence[torch.Tensor]) -> torch.Tensor:
    """DRN's primal term: ``L1(outputs[-1], hr) + Σ_k L1(outputs[k], lrs[k])`` for every output but the last.

    ``outputs`` is ``DRN.forward_all``'s list ``[LR-size, x2, (x4), ...]``; ``lrs[k]`` is the ground truth at
    ``outputs[k]``'s size (the LR input, then the bicubic x2, x4 ... images of the dataset). The official code
    supervises every intermediate output this way, the LR-size one included.
    """
    _check_pyramid(outputs, lrs)
    loss = F.l1_loss(outputs[-1], hr)
    for out, lr in zip(outputs[:-1], lrs, strict=True):
        loss = loss + F.l1_loss(out, lr)
    return loss


def dual_regression_loss(
    duals: Sequence[nn.Module], outputs: Sequence[torch.Tensor], lrs: Sequence[torch.Tensor]
) -> torch.Tensor:
    """DRN's dual-regression term ``Σ_i L1(duals[i](outputs[i+1]), lrs[i])``; the caller applies λ (0.1).

    Dual ``i`` maps the 2^(i+1)-scale output back to scale 2^i, closing the loop on the primal network.
    ``outputs`` and ``lrs`` are as in :func:`drn_primal_loss`.
    """
    _check_pyramid(outputs, lrs)
    if len(duals) != len(lrs):
        raise ValueError(f"need {len(lrs)} dual networks for {len(outputs)} outputs, not {len(duals)}")
    terms = [F.l1_loss(dual(out), lr) for dual, out, lr in zip(duals, outputs[1:], lrs, strict=True)]
    return torch.stack(terms).sum()


# --- RLFN (Kong et al., CVPRW 2022) -------------------------------------------------------------------------------


class ContrastiveLoss(nn.Module):
    """RLFN's contrastive loss: ``Σ_j λ_j · L1(φ_j(sr), φ_j(hr)) / (L1(φ_j(sr), φ_j(negative)) + eps)``.

    Anchor ``sr``, positive ``hr``, negative ``negative`` (the bicubic-upsampled LR). φ is a randomly initialised,
    frozen shallow extractor ``Conv3x3(in->C) -> Tanh -> Conv3x3(C->C) -> Tanh``; φ_1, φ_2 are the two Tanh outputs.
    The paper fixes only "random, frozen, two 3×3 convs, Tanh"; our choices are the width ``C`` (16), the Tanh after
    the second conv, using both layers with weights ``(1, 1)``, and PyTorch's default uniform initialisation drawn
    from a private generator seeded with ``seed``, so every run and every resume sees the same network without
    touching the global RNG. ``eps`` keeps the ratio finite when ``sr`` equals ``negative``.

    Inputs are RGB tensors in the range the generator works in; ``hr`` and ``negative`` get no gradient.
    """

    def __init__(
        self,
        *,
        in_channels: int = 3,
        channels: int = 16,
        layer_weights: Sequence[float] = (1.0, 1.0),
        seed: int = 0,
        eps: float = 1e-7,
    ) -> None:
        super().__init__()
        if len(layer_weights) != 2:
            raise ValueError(f"layer_weights needs one weight per Tanh layer (2), not {len(layer_weights)}")
        self.conv1 = nn.Conv2d(in_channels, channels, 3, 1, 1)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1)
        generator = torch.Generator().manual_seed(seed)
        for conv in (self.conv1, self.conv2):
            bound = 1.0 / (conv.in_channels * 9) ** 0.5  # nn.Conv2d's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
            for param in (conv.weight, conv.bias):
                with torch.no_grad():
                    param.copy_((torch.rand(param.shape, generator=generator) * 2 - 1) * bound)
        self.layer_weights = tuple(float(w) for w in layer_weights)
        self.eps = eps
        self.requires_grad_(False)
        self.eval()

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The two Tanh outputs φ_1(x), φ_2(x)."""
        f1 = torch.tanh(self.conv1(x))
        return f1, torch.tanh(self.conv2(f1))

    def forward(self, sr: torch.Tensor, hr: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
        sr_feats = self.features(sr)
        with torch.no_grad():
            hr_feats = self.features(hr)
            neg_feats = self.features(negative)
        loss = sr.new_zeros(())
        for weight, s, h, n in zip(self.layer_weights, sr_feats, hr_feats, neg_feats, strict=True):
            loss = loss + weight * F.l1_loss(s, h) / (F.l1_loss(s, n) + self.eps)
        return loss


# --- VGG feature losses: Johnson (VGG16 relu2_2), SRGAN (VGG19 relu5_4), ESRGAN (VGG19 conv5_4) --------------------


class PerceptualLoss(nn.Module):
    """``Σ_l weight_l · criterion(s · φ_l(sr), s · φ_l(hr))`` over VGG layers φ_l, with ``s = feature_scale``.

    Args:
        arch: ``"vgg19"`` or ``"vgg16"`` (torchvision ``features`` layout; see
            :class:`~upscale.train.networks.VGGFeatureExtractor` for the layer names).
        layers: ``{layer name: weight}``, e.g. ``{"conv5_4": 1.0}``.
        criterion: ``"l1"`` or ``"mse"``, mean-reduced (MSE of features = Johnson's ``||·||² / (C·H·W)``).
        vgg_weights: ImageNet weights, a state dict or a file (torchvision keys ``features.N.*``).
        random_vgg: allow running without ``vgg_weights``. A random VGG gives a meaningless loss, so this exists
            for tests only; without it, missing weights raise :class:`~upscale.errors.WeightsError`.
        feature_scale: multiplies the features before the criterion (SRGAN's 1/12.75).

    Inputs are RGB in [0, 1] (ImageNet mean/std normalisation happens inside). ``hr`` features are computed
    without gradient; the VGG is frozen, so only ``sr`` receives gradient.
    """

    def __init__(
        self,
        arch: VGGArch,
        layers: Mapping[str, float],
        criterion: Criterion,
        vgg_weights: VGGWeights,
        *,
        random_vgg: bool = False,
        feature_scale: float = 1.0,
    ) -> None:
        super().__init__()
        if vgg_weights is None and not random_vgg:
            raise WeightsError(
                f"the perceptual loss needs ImageNet {arch.upper()} weights: pass them "
                f"(e.g. from `upscale weights download {arch}`)"
            )
        if not layers:
            raise ValueError("PerceptualLoss needs at least one layer")
        self.vgg = VGGFeatureExtractor(arch=arch, layers=tuple(layers))
        if vgg_weights is not None:
            self.vgg.load_vgg(vgg_weights)
        self.layer_weights = dict(layers)
        self.criterion = pixel_loss(criterion)
        self.feature_scale = feature_scale

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        sr_feats = self.vgg(sr)
        with torch.no_grad():
            hr_feats = self.vgg(hr.detach())
        s = self.feature_scale
        loss = sr.new_zeros(())
        for name, weight in self.layer_weights.items():
            loss = loss + weight * self.criterion(sr_feats[name] * s, hr_feats[name] * s)
        return loss


def esrgan_perceptual(vgg_weights: VGGWeights, *, random_vgg: bool = False) -> PerceptualLoss:
    """ESRGAN's perceptual loss: VGG19 ``conv5_4`` *before* the ReLU, L1, weight 1 (MODELS.md §6.4)."""
    return PerceptualLoss("vgg19", {"conv5_4": 1.0}, "l1", vgg_weights, random_vgg=random_vgg)


def srgan_content(vgg_weights: VGGWeights, *, random_vgg: bool = False) -> PerceptualLoss:
    """SRGAN's VGG54 content loss: MSE of VGG19 ``relu5_4`` features scaled by 1/12.75, as in the paper."""
    return PerceptualLoss("vgg19", {"relu5_4": 1.0}, "mse", vgg_weights, random_vgg=random_vgg, feature_scale=1 / 12.75)


def johnson_feature(vgg_weights: VGGWeights, *, random_vgg: bool = False) -> PerceptualLoss:
    """Johnson et al.'s feature reconstruction loss: MSE of VGG16 ``relu2_2`` features, ``||·||² / (C·H·W)``.

    The original used Caffe's VGG16 on BGR 0-255 mean-subtracted input; this uses torchvision's layout and ImageNet
    mean/std normalisation, so weights must be torchvision's VGG16.
    """
    return PerceptualLoss("vgg16", {"relu2_2": 1.0}, "mse", vgg_weights, random_vgg=random_vgg)

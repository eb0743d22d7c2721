"""What one training step minimises, per recipe objective.

An :class:`Objective` turns a batch into the generator's loss (and its named parts for the log). The
adversarial ones also own a discriminator and update it after the generator's step; DRN owns its dual
networks. Those extra networks are trained and checkpointed with the model (``extra``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import UpscaleError
from ..models.registry import ModelSpec
from ..resize import imresize
from . import losses
from .checkpoint import TrainingError
from .data import Batch
from .recipes import Recipe

LossResult = tuple[torch.Tensor, dict[str, float], torch.Tensor]
"""``(total, parts for the log, the SR output)``."""
StepFn = Callable[[torch.Tensor], None]
"""Backpropagates a loss and steps the optimiser of the extra networks."""


class PatchSizeError(TrainingError):
    """The training crop does not fit the network or a loss of the recipe at this scale."""


class ForwardAll(nn.Module):
    """Calls ``forward_all`` of the wrapped network, so that a DistributedDataParallel wrapper (which
    synchronises only through ``forward``) sees the multi-output pass DRCN and DRN train with."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> Any:
        return self.net.forward_all(x)


@dataclass
class LossSetup:
    """What the objective needs besides the recipe: VGG weights and the scale."""

    scale: int
    vgg_weights: str | Path | None = None
    """A file, or ``vgg16``/``vgg19`` from the weights cache; None: the cached file of the recipe's VGG."""
    random_vgg: bool = False
    """Use a randomly initialised VGG (tests only; a real run must give weights)."""

    def vgg(self, arch: str) -> Path | None:
        """The VGG weights file to load, or None with ``random_vgg``; never downloads."""
        if self.random_vgg:
            return None
        from ..hub import vgg_weights_path

        given = self.vgg_weights
        if given is None or str(given) in ("vgg16", "vgg19"):
            return vgg_weights_path(str(given or arch))
        return Path(given)


class Objective:
    """Pixel loss (L1 or MSE) on the network's output; the base of the others."""

    uses_forward_all = False

    def __init__(self, recipe: Recipe, spec: ModelSpec, setup: LossSetup) -> None:
        self.recipe = recipe
        self.spec = spec
        self.setup = setup
        self.extra: dict[str, nn.Module] = {}
        """Trained networks besides the model (discriminator, duals), checkpointed with it."""
        self.extra_lr: dict[str, float] = {}
        self.pixel = losses.pixel_loss(recipe.pixel_loss)
        self.weights = recipe.loss_weights

    def run(self, net: nn.Module, x: torch.Tensor) -> Any:
        """The network on inputs in [0, 1], outputs in [0, 1] (the spec's value range is applied)."""
        vr = self.spec.value_range
        out = net(x * vr if vr != 1.0 else x)
        if vr == 1.0:
            return out
        if isinstance(out, (list, tuple)):
            return [o / vr for o in out]
        return out / vr

    def _crop(self, t: torch.Tensor) -> torch.Tensor:
        c = self.recipe.loss_crop
        return t[..., c:-c, c:-c] if c else t

    def loss(self, net: nn.Module, batch: Batch, iteration: int) -> LossResult:
        """``(total, parts, sr)`` for the generator."""
        sr = self.run(net, batch.lr)
        total = self.pixel(self._crop(sr), self._crop(batch.hr))
        return total, {"pixel": float(total.detach())}, sr

    def discriminator_step(
        self, batch: Batch, sr: torch.Tensor, step: Callable[[torch.Tensor], None]
    ) -> dict[str, float]:
        """Update the extra networks after the generator's step; ``step(loss)`` backpropagates and steps."""
        return {}


class DRCNObjective(Objective):
    uses_forward_all = True

    def __init__(self, recipe: Recipe, spec: ModelSpec, setup: LossSetup, total_iters: int) -> None:
        super().__init__(recipe, spec, setup)
        self.total_iters = total_iters

    def loss(self, net: nn.Module, batch: Batch, iteration: int) -> LossResult:
        ensemble, preds = self.run(net, batch.lr)
        alpha = losses.drcn_alpha(iteration, self.total_iters)
        total = losses.drcn_loss(preds, ensemble, batch.hr, alpha)
        return total, {"drcn": float(total.detach()), "alpha": alpha}, ensemble


class PerceptualObjective(Objective):
    """Johnson et al.: VGG16 relu2_2 feature reconstruction plus total variation."""

    def __init__(self, recipe: Recipe, spec: ModelSpec, setup: LossSetup) -> None:
        super().__init__(recipe, spec, setup)
        self.feature = losses.johnson_feature(setup.vgg("vgg16"), random_vgg=setup.random_vgg)

    def loss(self, net: nn.Module, batch: Batch, iteration: int) -> LossResult:
        sr = self.run(net, batch.lr)
        feat = self.feature(sr, batch.hr)
        tv = losses.tv_loss(sr)
        total = self.weights.get("percep", 1.0) * feat + self.weights.get("tv", 0.0) * tv
        return total, {"feature": float(feat.detach()), "tv": float(tv.detach())}, sr


class GANObjective(Objective):
    """SRGAN (VGG19 content + BCE adversarial) or ESRGAN (L1 + VGG19 conv5_4 + relativistic average GAN)."""

    def __init__(self, recipe: Recipe, spec: ModelSpec, setup: LossSetup) -> None:
        super().__init__(recipe, spec, setup)
        from .networks import SRGANDiscriminator, VGGStyleDiscriminator

        self.relativistic = recipe.objective == "esrgan"
        if self.relativistic:
            if recipe.patch != VGGStyleDiscriminator.input_size:
                raise PatchSizeError(f"ESRGAN's discriminator takes 128-px crops; use --patch 128, not {recipe.patch}")
            self.extra["discriminator"] = VGGStyleDiscriminator()
            self.percep = losses.esrgan_perceptual(setup.vgg("vgg19"), random_vgg=setup.random_vgg)
        else:
            self.extra["discriminator"] = SRGANDiscriminator(input_size=recipe.patch)
            self.percep = losses.srgan_content(setup.vgg("vgg19"), random_vgg=setup.random_vgg)
        self.extra_lr["discriminator"] = recipe.d_lr
        self.disc: nn.Module = self.extra["discriminator"]

    def loss(self, net: nn.Module, batch: Batch, iteration: int) -> LossResult:
        sr = self.run(net, batch.lr)
        self.disc.requires_grad_(False)
        fake = self.disc(sr)
        percep = self.percep(sr, batch.hr)
        parts = {"percep": float(percep.detach())}
        total = self.weights.get("percep", 1.0) * percep
        if self.relativistic:
            real = self.disc(batch.hr)
            adv = losses.ragan_g_loss(real, fake)
            pix = self.pixel(sr, batch.hr)
            total = total + self.weights.get("pixel", 0.0) * pix
            parts["pixel"] = float(pix.detach())
        else:
            adv = losses.gan_g_loss(fake)
        total = total + self.weights.get("adv", 0.0) * adv
        parts["adv"] = float(adv.detach())
        self.disc.requires_grad_(True)
        return total, parts, sr

    def discriminator_step(
        self, batch: Batch, sr: torch.Tensor, step: Callable[[torch.Tensor], None]
    ) -> dict[str, float]:
        real, fake = self.disc(batch.hr), self.disc(sr.detach())
        d_loss = losses.ragan_d_loss(real, fake) if self.relativistic else losses.gan_d_loss(real, fake)
        step(d_loss)
        return {"d_loss": float(d_loss.detach())}


class DRNObjective(Objective):
    """L1 on every scale's output plus lambda times the dual regression loss; LR-only images
    (``unpaired``) add the dual loss alone, closing the loop without an HR target."""

    uses_forward_all = True

    def __init__(self, recipe: Recipe, spec: ModelSpec, setup: LossSetup, net: nn.Module) -> None:
        super().__init__(recipe, spec, setup)
        from ..models.nets.drn import build_dual_models

        self.extra["duals"] = build_dual_models(scale=setup.scale, n_feats=net.head.out_channels)
        self.extra_lr["duals"] = recipe.lr
        self.unpaired: Callable[[int], torch.Tensor] | None = None

    def loss(self, net: nn.Module, batch: Batch, iteration: int) -> LossResult:
        outputs = self.run(net, batch.lr)
        phases = len(outputs) - 1
        lrs = [batch.lr_small] + [imresize(batch.hr, scale=1.0 / 2 ** (phases - k)) for k in range(1, phases)]
        primal = losses.drn_primal_loss(outputs, batch.hr, lrs)
        # The duals (bias-free convolutions and LeakyReLU) commute with the value range: no rescaling needed.
        dual = losses.dual_regression_loss(self.extra["duals"], outputs, lrs)
        lam = self.weights.get("dual", 0.1)
        total = primal + lam * dual
        parts = {"primal": float(primal.detach()), "dual": float(dual.detach())}
        if self.unpaired is not None:
            x = self.unpaired(iteration)
            cycle = self.run(net, x)[-1]
            for dual_net in reversed(self.extra["duals"]):
                cycle = dual_net(cycle)
            unpaired = F.l1_loss(cycle, x)
            total = total + lam * unpaired
            parts["unpaired"] = float(unpaired.detach())
        return total, parts, outputs[-1]


class ContrastiveObjective(Objective):
    """RLFN's last stage: L1 plus the contrastive loss, with the bicubic upsampling of the LR as negative."""

    def __init__(self, recipe: Recipe, spec: ModelSpec, setup: LossSetup) -> None:
        super().__init__(recipe, spec, setup)
        self.contrastive = losses.ContrastiveLoss()

    def loss(self, net: nn.Module, batch: Batch, iteration: int) -> LossResult:
        sr = self.run(net, batch.lr)
        pix = self.pixel(sr, batch.hr)
        negative = imresize(batch.lr_small, scale=self.setup.scale)
        cl = self.contrastive(sr, batch.hr, negative)
        total = self.weights.get("pixel", 1.0) * pix + self.weights.get("cl", 0.0) * cl
        return total, {"pixel": float(pix.detach()), "cl": float(cl.detach())}, sr


def make_objective(recipe: Recipe, spec: ModelSpec, setup: LossSetup, net: nn.Module, total_iters: int) -> Objective:
    if recipe.objective == "pixel":
        return Objective(recipe, spec, setup)
    if recipe.objective == "drcn":
        return DRCNObjective(recipe, spec, setup, total_iters)
    if recipe.objective == "perceptual":
        return PerceptualObjective(recipe, spec, setup)
    if recipe.objective in ("srgan", "esrgan"):
        return GANObjective(recipe, spec, setup)
    if recipe.objective == "drn":
        return DRNObjective(recipe, spec, setup, net)
    if recipe.objective == "rlfn-contrastive":
        return ContrastiveObjective(recipe, spec, setup)
    raise UpscaleError(f"unknown objective '{recipe.objective}'")

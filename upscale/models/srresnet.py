"""SRResNet / SRGAN (Ledig et al., "Photo-Realistic Single Image Super-Resolution Using a Generative
Adversarial Network", CVPR 2017), and BasicSR's modified SRResNet (MSRResNet).

SRResNet and the SRGAN generator are the same network (Fig. 4 of the paper); SRGAN only trains it
further with a VGG content loss and the adversarial loss of :class:`Discriminator`. RGB
low-resolution input in [0, 1]:
``conv 9×9 (64), PReLU`` (=A) -> 16 residual blocks (``conv 3×3, BN, PReLU, conv 3×3, BN`` + input)
-> ``conv 3×3, BN`` + A -> per ×2: ``conv 3×3 (256), PixelShuffle(2), PReLU`` -> ``conv 9×9 (3)``.
Each PReLU has a single slope (1,549,462 parameters at ×4). The paper scales its HR targets to
[-1, 1]; here the output is in [0, 1] like the input, which is the same network with the last
convolution's weights halved and 0.5 added to its bias. The paper is ×4 only; ×2 uses one sub-pixel
stage and ×3 one ``PixelShuffle(3)`` stage. The authors released no weights, so the key names are
this module's own.

MSRResNet is a different architecture with the same name stem (no batch norm, 3×3 first conv,
LeakyReLU(0.1), bilinear-upsampled input added to the output); it is a separate model here,
``msrresnet``, with BasicSR's key names (``conv_first``, ``body.N.conv1``, ``upconv1``, ``conv_hr``,
``conv_last``), so its released ``.pth`` files load as they are.
"""

from __future__ import annotations

import re
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UnsupportedScaleError
from .registry import ModelSpec, StateDict


def _stage_factors(scale: int) -> list[int]:
    """Sub-pixel stages: ×2 each for powers of two, a single ×3 for 3."""
    if scale == 3:
        return [3]
    if scale >= 2 and scale & (scale - 1) == 0:
        return [2] * (scale.bit_length() - 1)
    raise UnsupportedScaleError(f"SRResNet upsamples by 3 or powers of two, not x{scale}")


class ResidualBlock(nn.Module):
    """``conv 3×3, BN, PReLU, conv 3×3, BN`` plus identity."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.prelu = nn.PReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bn2(self.conv2(self.prelu(self.bn1(self.conv1(x)))))


class SubPixelStage(nn.Module):
    """``conv 3×3 (C·r²), PixelShuffle(r), PReLU``."""

    def __init__(self, channels: int, factor: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels * factor * factor, 3, padding=1)
        self.shuffle = nn.PixelShuffle(factor)
        self.prelu = nn.PReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.prelu(self.shuffle(self.conv(x)))


class SRResNet(nn.Module):
    """The SRResNet / SRGAN generator; RGB in [0, 1] in and out."""

    def __init__(self, *, scale: int = 4, num_features: int = 64, num_blocks: int = 16) -> None:
        super().__init__()
        self.scale = scale
        c = num_features
        self.conv1 = nn.Conv2d(3, c, 9, padding=4)
        self.prelu1 = nn.PReLU()
        self.blocks = nn.Sequential(*(ResidualBlock(c) for _ in range(num_blocks)))
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(c)
        self.upsample = nn.Sequential(*(SubPixelStage(c, r) for r in _stage_factors(scale)))
        self.conv3 = nn.Conv2d(c, 3, 9, padding=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.prelu1(self.conv1(x))
        feat = self.bn2(self.conv2(self.blocks(skip))) + skip
        return self.conv3(self.upsample(feat))


class Discriminator(nn.Module):
    """The SRGAN discriminator for ``input_size_px``² HR crops (96 in the paper).

    ``conv 3×3 (64), LReLU(0.2)`` -> 7 × ``conv 3×3, BN, LReLU(0.2)`` with (channels, stride)
    (64, 2), (128, 1), (128, 2), (256, 1), (256, 2), (512, 1), (512, 2) -> dense 1024, LReLU(0.2)
    -> dense 1. Returns the logit; the paper's final sigmoid belongs in the loss
    (``binary_cross_entropy_with_logits``), which is the numerically stable form of ``-log D``.
    """

    def __init__(self, *, in_channels: int = 3, input_size_px: int = 96) -> None:
        super().__init__()
        if input_size_px % 16:
            raise ValueError(f"input_size_px must be a multiple of 16 (four stride-2 convs), not {input_size_px}")
        layers: list[nn.Module] = [nn.Conv2d(in_channels, 64, 3, padding=1), nn.LeakyReLU(0.2, inplace=True)]
        prev = 64
        for ch, stride in ((64, 2), (128, 1), (128, 2), (256, 1), (256, 2), (512, 1), (512, 2)):
            conv = nn.Conv2d(prev, ch, 3, stride=stride, padding=1)
            layers += [conv, nn.BatchNorm2d(ch), nn.LeakyReLU(0.2, inplace=True)]
            prev = ch
        self.features = nn.Sequential(*layers)
        side = input_size_px // 16
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(512 * side * side, 1024), nn.LeakyReLU(0.2, inplace=True), nn.Linear(1024, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class MSRResNet(nn.Module):
    """BasicSR's modified SRResNet (×2, ×3, ×4): no BN, LeakyReLU(0.1), bilinear global skip."""

    def __init__(
        self,
        *,
        scale: int = 4,
        in_channels: int = 3,
        out_channels: int = 3,
        num_features: int = 64,
        num_blocks: int = 16,
    ) -> None:
        super().__init__()
        if scale not in (2, 3, 4):
            raise UnsupportedScaleError(f"MSRResNet has x2, x3 and x4, not x{scale}")
        self.scale = scale
        c = num_features
        self.conv_first = nn.Conv2d(in_channels, c, 3, padding=1)
        self.body = nn.Sequential(*(_PlainResidualBlock(c) for _ in range(num_blocks)))
        r = 2 if scale == 4 else scale
        self.upconv1 = nn.Conv2d(c, c * r * r, 3, padding=1)
        if scale == 4:
            self.upconv2 = nn.Conv2d(c, c * 4, 3, padding=1)
        self.pixel_shuffle = nn.PixelShuffle(r)
        self.conv_hr = nn.Conv2d(c, c, 3, padding=1)
        self.conv_last = nn.Conv2d(c, out_channels, 3, padding=1)
        self.lrelu = nn.LeakyReLU(0.1, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(self.lrelu(self.conv_first(x)))
        out = self.lrelu(self.pixel_shuffle(self.upconv1(out)))
        if self.scale == 4:
            out = self.lrelu(self.pixel_shuffle(self.upconv2(out)))
        out = self.conv_last(self.lrelu(self.conv_hr(out)))
        return out + F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)


class _PlainResidualBlock(nn.Module):
    """``conv 3×3, ReLU, conv 3×3`` plus identity (BasicSR's ``ResidualBlockNoBN``, residual scale 1)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(torch.relu(self.conv1(x)))


def _count(sd: StateDict, prefix: str) -> int:
    return len({m.group(1) for k in sd if (m := re.match(rf"{re.escape(prefix)}\.(\d+)\.", k))})


def detect(sd: StateDict) -> bool:
    return "conv1.weight" in sd and "blocks.0.bn1.running_mean" in sd and "upsample.0.conv.weight" in sd


def hparams_from(sd: StateDict) -> dict[str, Any]:
    c = int(sd["conv1.weight"].shape[0])
    scale = 1
    for i in range(_count(sd, "upsample")):
        scale *= round((sd[f"upsample.{i}.conv.weight"].shape[0] / c) ** 0.5)
    return {"scale": scale, "num_features": c, "num_blocks": _count(sd, "blocks")}


_MMSR_NAMES = {"recon_trunk.": "body.", "HRconv.": "conv_hr."}


def convert_msrresnet(sd: StateDict) -> dict[str, Any]:
    """BasicSR's 2019 (mmsr) files say ``recon_trunk`` and ``HRconv`` where later ones say ``body`` and ``conv_hr``."""
    out = {}
    for key, value in sd.items():
        old = next((o for o in _MMSR_NAMES if key.startswith(o)), None)
        out[_MMSR_NAMES[old] + key[len(old) :] if old else key] = value
    return out


def detect_msrresnet(sd: StateDict) -> bool:
    return (
        "conv_first.weight" in sd
        and "body.0.conv1.weight" in sd
        and "upconv1.weight" in sd
        and "conv_hr.weight" in sd
        and "conv_last.weight" in sd
    )


def hparams_from_msrresnet(sd: StateDict) -> dict[str, Any]:
    c, in_ch = (int(n) for n in sd["conv_first.weight"].shape[:2])
    r = round((sd["upconv1.weight"].shape[0] / c) ** 0.5)
    return {
        "scale": 4 if "upconv2.weight" in sd else r,
        "in_channels": in_ch,
        "out_channels": int(sd["conv_last.weight"].shape[0]),
        "num_features": c,
        "num_blocks": _count(sd, "body"),
    }


def _spec(name: str, title: str) -> ModelSpec:
    return ModelSpec(
        name=name,
        build=SRResNet,
        scales=(2, 3, 4),
        title=title,
        colour="rgb",
        input_kind="lr",
        value_range=1.0,
        # In LR pixels: 4 (9×9 in) + 2 per residual block (32) + 1 (conv after the blocks) + 1 and
        # 1/2 for the sub-pixel convs + ceil(4 / scale) for the 9×9 output conv: at most 40.
        margin_px=40,
        exact_tiling=True,  # batch norm in eval mode is a fixed affine map
        default_hparams={"num_features": 64, "num_blocks": 16},
        detect=detect,
        hparams_from=hparams_from,
    )


SRRESNET_SPEC = _spec("srresnet", "SRResNet, from Photo-Realistic SISR Using a GAN (CVPR 2017)")
SRGAN_SPEC = _spec("srgan", "SRGAN generator: Photo-Realistic SISR Using a GAN (CVPR 2017)")

MSRRESNET_SPEC = ModelSpec(
    name="msrresnet",
    build=MSRResNet,
    scales=(2, 3, 4),
    title="Modified SRResNet (BasicSR): SRResNet without batch norm",
    colour="rgb",
    input_kind="lr",
    value_range=1.0,
    # In LR pixels: 1 (conv_first) + 2 per block (32) + 1 (upconv1) + at most 1/2 each for upconv2,
    # conv_hr and conv_last at ≥2×: under 36; the bilinear skip reaches only 1.
    margin_px=36,
    exact_tiling=True,
    default_hparams={"num_features": 64, "num_blocks": 16},
    detect=detect_msrresnet,
    convert=convert_msrresnet,
    hparams_from=hparams_from_msrresnet,
)

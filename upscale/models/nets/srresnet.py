"""The SRResNet / SRGAN generator, the SRGAN discriminator and MSRResNet (:mod:`upscale.models.srresnet`
describes them and reads their checkpoints)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import UnsupportedScaleError


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

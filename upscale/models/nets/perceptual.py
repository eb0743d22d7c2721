"""Johnson et al.'s SR transform network (:mod:`upscale.models.perceptual` describes it and reads its
checkpoints)."""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

Upsampler = Literal["nearest", "deconv"]


class ResidualBlock(nn.Module):
    """``conv 3×3, BN, ReLU, conv 3×3, BN`` plus identity, with no activation after the sum."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return x + self.bn2(self.conv2(out))


class UpStage(nn.Module):
    """One ×2 stage: nearest + 3×3 conv (``conv``) or a stride-2 3×3 transposed conv (``deconv``), BN, ReLU."""

    def __init__(self, channels: int, upsampler: Upsampler) -> None:
        super().__init__()
        self.upsampler = upsampler
        if upsampler == "nearest":
            self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        elif upsampler == "deconv":
            # Torch7 SpatialFullConvolution(3, 3, 2, 2, 1, 1, 1, 1): output exactly twice the input.
            self.deconv = nn.ConvTranspose2d(channels, channels, 3, stride=2, padding=1, output_padding=1)
        else:
            raise ValueError(f"upsampler must be 'nearest' or 'deconv', not {upsampler!r}")
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsampler == "nearest":
            x = self.conv(nn.functional.interpolate(x, scale_factor=2, mode="nearest"))
        else:
            x = self.deconv(x)
        return torch.relu(self.bn(x))


class PerceptualSR(nn.Module):
    """Johnson et al.'s SR transform network for ×2^k; RGB in [0, 1] in and out."""

    def __init__(
        self,
        *,
        scale: int = 4,
        num_features: int = 64,
        num_blocks: int = 4,
        upsampler: Upsampler = "nearest",
    ) -> None:
        super().__init__()
        stages = round(math.log2(scale)) if scale >= 2 else 0
        if 2**stages != scale:
            raise ValueError(f"the perceptual-loss network upsamples by powers of two, not x{scale}")
        self.scale = scale
        c = num_features
        self.conv_in = nn.Conv2d(3, c, 9, padding=4)
        self.bn_in = nn.BatchNorm2d(c)
        self.blocks = nn.Sequential(*(ResidualBlock(c) for _ in range(num_blocks)))
        self.up = nn.Sequential(*(UpStage(c, upsampler) for _ in range(stages)))
        self.conv_out = nn.Conv2d(c, 3, 9, padding=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn_in(self.conv_in(x)))
        x = self.up(self.blocks(x))
        return (torch.tanh(self.conv_out(x)) + 1) / 2

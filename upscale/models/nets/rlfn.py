"""The RLFN network (:mod:`upscale.models.rlfn` describes it and reads its checkpoints)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ESA(nn.Module):
    """Enhanced spatial attention: a strided, pooled branch that gates the features."""

    def __init__(self, channels: int, esa_channels: int = 16) -> None:
        super().__init__()
        f = esa_channels
        self.conv1 = nn.Conv2d(channels, f, 1)
        self.conv_f = nn.Conv2d(f, f, 1)
        self.conv2 = nn.Conv2d(f, f, 3, stride=2, padding=0)
        self.conv3 = nn.Conv2d(f, f, 3, padding=1)
        self.conv4 = nn.Conv2d(f, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c1_ = self.conv1(x)
        c1 = F.max_pool2d(self.conv2(c1_), kernel_size=7, stride=3)
        c3 = F.interpolate(self.conv3(c1), size=x.shape[-2:], mode="bilinear", align_corners=False)
        return x * torch.sigmoid(self.conv4(c3 + self.conv_f(c1_)))


class RLFB(nn.Module):
    """Residual local feature block: three 3×3 convs, a local residual, a 1×1 conv and ESA."""

    def __init__(self, channels: int, mid_channels: int | None = None, esa_channels: int = 16) -> None:
        super().__init__()
        mid = mid_channels or channels
        self.c1_r = nn.Conv2d(channels, mid, 3, padding=1)
        self.c2_r = nn.Conv2d(mid, mid, 3, padding=1)
        self.c3_r = nn.Conv2d(mid, channels, 3, padding=1)
        self.c5 = nn.Conv2d(channels, channels, 1)
        self.esa = ESA(channels, esa_channels)
        self.act = nn.LeakyReLU(0.05, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.c1_r(x))
        out = self.act(self.c2_r(out))
        out = self.act(self.c3_r(out))
        return self.esa(self.c5(out + x))


class RLFN(nn.Module):
    """RLFN (``channels=52``), RLFN-S (``channels=48``) and the NTIRE variant (46/48, 4 blocks)."""

    def __init__(
        self,
        *,
        scale: int = 4,
        in_channels: int = 3,
        out_channels: int = 3,
        channels: int = 52,
        mid_channels: int | None = None,
        num_blocks: int = 6,
        esa_channels: int = 16,
    ) -> None:
        super().__init__()
        self.scale = scale
        self.conv_1 = nn.Conv2d(in_channels, channels, 3, padding=1)
        for i in range(1, num_blocks + 1):
            self.add_module(f"block_{i}", RLFB(channels, mid_channels, esa_channels))
        self.num_blocks = num_blocks
        self.conv_2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.upsampler = nn.Sequential(
            nn.Conv2d(channels, out_channels * scale * scale, 3, padding=1), nn.PixelShuffle(scale)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv_1(x)
        out = feat
        for i in range(1, self.num_blocks + 1):
            out = getattr(self, f"block_{i}")(out)
        return self.upsampler(self.conv_2(out) + feat)

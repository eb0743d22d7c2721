"""RLFN: Residual Local Feature Network (Kong et al., CVPRW 2022, NTIRE 2022 efficient SR).

Key names follow the authors' model zoo (``conv_1``, ``block_N.c1_r``, ``block_N.esa.conv1``, ...),
so their ``.pth`` files load as they are. As in the released weights (not the paper's figure), the
block's activations are LeakyReLU(0.05) and the network works on RGB in [0, 255].
"""

from __future__ import annotations

import re
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .registry import ModelSpec, StateDict


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


def detect(sd: StateDict) -> bool:
    return "conv_1.weight" in sd and "block_1.esa.conv_f.weight" in sd and "upsampler.0.weight" in sd


def hparams_from(sd: StateDict) -> dict[str, Any]:
    channels, in_ch = sd["conv_1.weight"].shape[:2]
    up = sd["upsampler.0.weight"].shape[0]
    num_blocks = len({m.group(1) for k in sd if (m := re.match(r"block_(\d+)\.", k))})
    mid = sd["block_1.c1_r.weight"].shape[0]
    scale = round((up / in_ch) ** 0.5)
    return {
        "scale": scale,
        "in_channels": in_ch,
        "out_channels": in_ch,
        "channels": channels,
        "mid_channels": None if mid == channels else mid,
        "num_blocks": num_blocks,
        "esa_channels": sd["block_1.esa.conv1.weight"].shape[0],
    }


def _spec(name: str, channels: int, title: str, accepts) -> ModelSpec:
    return ModelSpec(
        name=name,
        build=RLFN,
        scales=(2, 3, 4),
        title=title,
        colour="rgb",
        input_kind="lr",
        value_range=255.0,
        # Each ESA gates with a mask pooled over a strided grid, so the result depends a little on
        # where a tile starts; 6 blocks of 3×3 convs plus the ESA reach give a wide margin.
        margin_px=32,
        exact_tiling=False,
        min_size_px=16,
        auto_bf16=True,  # official x4: Set5 32.24 dB in fp32 and bf16, Set14 28.62 / 28.61
        default_hparams={"channels": channels},
        detect=lambda sd: detect(sd) and accepts(sd["conv_1.weight"].shape[0]),
        hparams_from=hparams_from,
    )


# ``rlfn`` also takes the pruned NTIRE file (46 features, 48 mid channels, 4 blocks).
RLFN_SPEC = _spec("rlfn", 52, "Residual Local Feature Network (CVPRW 2022)", lambda c: c != 48)
RLFN_S_SPEC = _spec("rlfn-s", 48, "Residual Local Feature Network, small (CVPRW 2022)", lambda c: c == 48)

"""The DRN primal and dual networks (:mod:`upscale.models.drn` describes them and reads their checkpoints)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import WeightsError
from ..drn import PUBLISHED

RGB_MEAN = (0.4488, 0.4371, 0.4040)
"""DIV2K mean used by the EDSR family (the official DRN ``MeanShift``)."""


class MeanShift(nn.Conv2d):
    """A 1×1 conv initialised to add ``sign·rgb_range·mean``. Its parameters are trained in the release
    (the official code never froze them), so checkpoints carry their own values."""

    def __init__(self, rgb_range: float = 255.0, sign: int = -1) -> None:
        super().__init__(3, 3, 1)
        with torch.no_grad():
            self.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
            self.bias.copy_(sign * rgb_range * torch.tensor(RGB_MEAN))


class CALayer(nn.Module):
    """Channel attention: global average pool, 1×1 squeeze (``channels // reduction``), 1×1 excite, sigmoid."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.conv_du = nn.Sequential(
            nn.Conv2d(channels, channels // reduction, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels // reduction, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.conv_du(x.mean(dim=(-2, -1), keepdim=True))


class RCAB(nn.Module):
    """Residual channel attention block: conv, ReLU, conv, channel attention, plus the input (unscaled)."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1),
            CALayer(channels, reduction),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class DownBlock(nn.Module):
    """Halves the resolution: ``conv3×3 s2 (no bias)``, LeakyReLU(0.2), ``conv3×3 (no bias)``.

    Used for the primal network's down stages and, with 3 channels in and out, as each dual network.
    """

    def __init__(self, in_channels: int, channels: int, out_channels: int, negval: float = 0.2) -> None:
        super().__init__()
        self.dual_module = nn.Sequential(
            nn.Sequential(
                nn.Conv2d(in_channels, channels, 3, stride=2, padding=1, bias=False),
                nn.LeakyReLU(negval, inplace=True),
            ),
            nn.Conv2d(channels, out_channels, 3, padding=1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dual_module(x)


def _upsampler(channels: int) -> nn.Sequential:
    """x2 sub-pixel upsampling without activation (``conv3×3 c->4c``, PixelShuffle(2))."""
    return nn.Sequential(nn.Conv2d(channels, 4 * channels, 3, padding=1), nn.PixelShuffle(2))


class DRN(nn.Module):
    """The primal DRN network for ``scale`` = 2^P with ``n_feats`` (F) base channels and ``n_blocks`` (B)
    RCABs per up stage. DRN-S: F=16/B=30 (x4), F=8/B=30 (x8); DRN-L: F=20/B=40 (x4), F=10/B=36 (x8).

    ``forward`` returns the final SR image; :meth:`forward_all` returns every scale's output
    ``[LR size, x2, ..., x scale]``, all in [0, ``rgb_range``] and unclamped, for the training losses.
    """

    def __init__(
        self,
        *,
        scale: int = 4,
        n_feats: int = 16,
        n_blocks: int = 30,
        rgb_range: float = 255.0,
        negval: float = 0.2,
    ) -> None:
        super().__init__()
        phases = round(math.log2(scale)) if scale >= 2 else 0
        if phases < 1 or 2**phases != scale:
            raise ValueError(f"DRN: scale must be a power of two >= 2, not {scale}")
        self.scale = scale
        self.phases = phases
        f = n_feats
        self.sub_mean = MeanShift(rgb_range, sign=-1)
        self.head = nn.Conv2d(3, f, 3, padding=1)
        self.down = nn.ModuleList(DownBlock(f * 2**p, f * 2**p, f * 2 ** (p + 1), negval) for p in range(phases))
        self.up_blocks = nn.ModuleList()
        for i in range(phases):
            # Stage 0 works on the bottleneck (F·2^P); later stages on the concat of up path and skip.
            width = f * 2**phases if i == 0 else f * 2 ** (phases - i + 1)
            self.up_blocks.append(
                nn.Sequential(
                    *(RCAB(width) for _ in range(n_blocks)),
                    _upsampler(width),
                    nn.Conv2d(width, f * 2 ** (phases - 1 - i), 1),
                )
            )
        # tail.0 reads the bottleneck; tail.k the concat after up stage k-1 (width F·2^(P-k+1)).
        self.tail = nn.ModuleList(
            nn.Conv2d(f * 2 ** (phases - k + 1) if k else f * 2**phases, 3, 3, padding=1) for k in range(phases + 1)
        )
        self.add_mean = MeanShift(rgb_range, sign=1)

    def forward_all(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        x = self.head(self.sub_mean(x))
        skips = []
        for down in self.down:
            skips.append(x)
            x = down(x)
        results = [self.add_mean(self.tail[0](x))]
        for i, up in enumerate(self.up_blocks):
            x = torch.cat((up(x), skips[-1 - i]), 1)
            results.append(self.add_mean(self.tail[i + 1](x)))
        return results

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_all(x)[-1]


def build_dual_models(*, scale: int = 4, n_feats: int = 16, negval: float = 0.2) -> nn.ModuleList:
    """The log2(``scale``) dual networks; dual ``i`` maps the 2^(i+1) output back to scale 2^i."""
    phases = round(math.log2(scale))
    return nn.ModuleList(DownBlock(3, n_feats, 3, negval) for _ in range(phases))


def load_dual_models(path: str | Path) -> nn.ModuleList:
    """Read an official ``*_dual_model.pt`` (a list of state dicts) or a file saved from
    ``build_dual_models(...).state_dict()``, with shapes giving F and the scale."""
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad file
        raise WeightsError(f"{path}: not a readable weights file ({type(exc).__name__})") from None
    if isinstance(obj, Mapping):  # a ModuleList state dict: "0.dual_module..."
        groups: dict[int, dict[str, Any]] = {}
        for key, value in obj.items():
            if m := re.match(r"(\d+)\.(dual_module\..+)$", key):
                groups.setdefault(int(m[1]), {})[m[2]] = value
        obj = [groups[i] for i in sorted(groups)]
    if (
        not isinstance(obj, (list, tuple))
        or not obj
        or not all(isinstance(sd, Mapping) and "dual_module.0.0.weight" in sd for sd in obj)
    ):
        raise WeightsError(f"{path}: holds no DRN dual models")
    n_feats = obj[0]["dual_module.0.0.weight"].shape[0]
    duals = build_dual_models(scale=2 ** len(obj), n_feats=n_feats)
    for dual, sd in zip(duals, obj, strict=True):
        try:
            dual.load_state_dict(sd)
        except RuntimeError as exc:
            raise WeightsError(f"{path}: does not fit DRN dual models ({str(exc).splitlines()[-1].strip()})") from None
    return duals


def _build_published(variant: str, scale: int, n_feats: int | None, n_blocks: int | None) -> DRN:
    f, b = PUBLISHED[(variant, scale)] if scale in (4, 8) else PUBLISHED[(variant, 4)]
    return DRN(scale=scale, n_feats=n_feats or f, n_blocks=n_blocks or b)


def build_drn_s(*, scale: int, n_feats: int | None = None, n_blocks: int | None = None) -> DRN:
    """DRN-S: F=16, B=30 at x4 and F=8, B=30 at x8 unless given."""
    return _build_published("s", scale, n_feats, n_blocks)


def build_drn_l(*, scale: int, n_feats: int | None = None, n_blocks: int | None = None) -> DRN:
    """DRN-L: F=20, B=40 at x4 and F=10, B=36 at x8 unless given."""
    return _build_published("l", scale, n_feats, n_blocks)

"""ESRGAN's RRDBNet generator (:mod:`upscale.models.esrgan` describes it and reads its checkpoints)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3×3 convs; the output is scaled by 0.2 and added to the input."""

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32, res_scale: float = 0.2) -> None:
        super().__init__()
        self.res_scale = res_scale
        for m in range(1, 5):
            setattr(self, f"conv{m}", nn.Conv2d(num_feat + (m - 1) * num_grow_ch, num_grow_ch, 3, padding=1))
        self.conv5 = nn.Conv2d(num_feat + 4 * num_grow_ch, num_feat, 3, padding=1)
        self.lrelu = nn.LeakyReLU(0.2, inplace=True)
        # "Smaller initialisation" (paper §3.1): Kaiming-normal scaled by 0.1 keeps the deep trunk stable.
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4, self.conv5):
            nn.init.kaiming_normal_(conv.weight)
            conv.weight.data.mul_(0.1)
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            feats.append(self.lrelu(conv(torch.cat(feats, 1))))
        return x + self.res_scale * self.conv5(torch.cat(feats, 1))


class RRDB(nn.Module):
    """Residual-in-residual dense block: three RDBs in series with a scaled (0.2) outer residual."""

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32, res_scale: float = 0.2) -> None:
        super().__init__()
        self.res_scale = res_scale
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res_scale * self.rdb3(self.rdb2(self.rdb1(x)))


def _default_unshuffle(scale: int) -> int:
    """Real-ESRGAN's rule: x2 and x1 unshuffle the input so the body still upsamples by 4."""
    return 4 // scale if scale in (1, 2) else 1


class RRDBNet(nn.Module):
    """RRDBNet: ``conv_first``, ``num_block`` RRDBs, ``conv_body`` + global residual, nearest-x2 + conv stages.

    ``pixel_unshuffle`` (1, 2 or 4) folds the input into ``num_in_ch·r²`` channels first; the body then
    upsamples by ``scale·r`` with ``log2(scale·r)`` nearest-x2 stages. ``None`` picks Real-ESRGAN's choice
    (2 for x2, 4 for x1, else 1); ``pixel_unshuffle=1`` at x2 is the 2018 ESRGAN x2 network.
    Inputs whose sides are not a multiple of ``r`` are reflect-padded and the output cropped, as
    Real-ESRGAN's inference does.
    """

    def __init__(
        self,
        *,
        scale: int = 4,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 64,
        num_block: int = 23,
        num_grow_ch: int = 32,
        pixel_unshuffle: int | None = None,
    ) -> None:
        super().__init__()
        unshuffle = _default_unshuffle(scale) if pixel_unshuffle is None else pixel_unshuffle
        body_scale = scale * unshuffle
        num_up = round(math.log2(body_scale)) if body_scale >= 1 else -1
        if unshuffle not in (1, 2, 4) or num_up < 0 or 2**num_up != body_scale:
            raise ValueError(f"RRDBNet: no x{scale} network with pixel_unshuffle={unshuffle}")
        self.scale = scale
        self.unshuffle = unshuffle
        self.num_up = num_up
        self.conv_first = nn.Conv2d(num_in_ch * unshuffle**2, num_feat, 3, padding=1)
        self.body = nn.Sequential(*(RRDB(num_feat, num_grow_ch) for _ in range(num_block)))
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, padding=1)
        for k in range(1, num_up + 1):
            setattr(self, f"conv_up{k}", nn.Conv2d(num_feat, num_feat, 3, padding=1))
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, padding=1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, padding=1)
        self.lrelu = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        r = self.unshuffle
        if r > 1:
            pad_h, pad_w = -h % r, -w % r
            if pad_h or pad_w:
                mode = "reflect" if min(h, w) > max(pad_h, pad_w) else "replicate"
                x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
            x = F.pixel_unshuffle(x, r)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        for k in range(1, self.num_up + 1):
            up = getattr(self, f"conv_up{k}")
            feat = self.lrelu(up(F.interpolate(feat, scale_factor=2, mode="nearest")))
        out = self.conv_last(self.lrelu(self.conv_hr(feat)))
        return out[..., : h * self.scale, : w * self.scale] if r > 1 else out

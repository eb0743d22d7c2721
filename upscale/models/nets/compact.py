"""Real-ESRGAN's compact network (:mod:`upscale.models.compact` describes it and reads its checkpoints)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SRVGGNetCompact(nn.Module):
    """A plain stack of 3×3 convolutions on the LR image, a sub-pixel output and a nearest-upsampled skip.

    ``body`` alternates convolutions and per-channel PReLUs: ``body.0`` is ``conv 3×3 (num_in_ch ->
    num_feat)``, ``body.1`` its PReLU, then ``num_conv`` times ``conv 3×3 (num_feat)`` + PReLU, and the last
    entry, ``body.{2·num_conv + 2}``, is ``conv 3×3 (num_feat -> num_out_ch·scale²)``. Its output is
    pixel-shuffled to the HR size and the input, upsampled by nearest neighbour, is added: the body
    only learns the residual. The indices are the authors', so their ``.pth`` files load as published.

    Args:
        scale: upscaling factor (the released files are ×4; any integer ≥ 1 builds).
        num_in_ch: input channels (3, RGB in [0, 1]).
        num_out_ch: output channels; must equal ``num_in_ch`` for the skip connection.
        num_feat: width of the body (64 in every released file).
        num_conv: convolutions between the first and the last (16 for realesr-animevideov3, 32 for
            realesr-general-x4v3).
    """

    def __init__(
        self,
        *,
        scale: int = 4,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 64,
        num_conv: int = 32,
    ) -> None:
        super().__init__()
        if num_out_ch != num_in_ch:
            raise ValueError(f"SRVGGNetCompact adds its input to its output: {num_in_ch} in, {num_out_ch} out")
        if scale < 1 or num_conv < 0:
            raise ValueError(f"SRVGGNetCompact needs scale >= 1 and num_conv >= 0, not {scale} and {num_conv}")
        self.scale = scale
        layers: list[nn.Module] = []
        width = num_in_ch
        for _ in range(num_conv + 1):
            layers += [nn.Conv2d(width, num_feat, 3, padding=1), nn.PReLU(num_feat)]
            width = num_feat
        layers.append(nn.Conv2d(num_feat, num_out_ch * scale * scale, 3, padding=1))
        self.body = nn.ModuleList(layers)
        self.upsampler = nn.PixelShuffle(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for layer in self.body:
            out = layer(out)
        return self.upsampler(out) + F.interpolate(x, scale_factor=self.scale, mode="nearest")

"""Bicubic interpolation as a model, so the baseline goes through the same engine and metrics.

It is MATLAB's bicubic (Keys, a = -0.5), the kernel the SR literature's bicubic rows use.
"""

from __future__ import annotations

import torch
from torch import nn

from ..resize import imresize
from .registry import ModelSpec


class Bicubic(nn.Module):
    def __init__(self, *, scale: int = 4) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return imresize(x, scale=self.scale)


BICUBIC_SPEC = ModelSpec(
    name="bicubic",
    build=Bicubic,
    scales=(2, 3, 4, 8),
    title="Bicubic interpolation (MATLAB imresize kernel)",
    margin_px=3,
    any_scale=True,
    needs_weights=False,
)

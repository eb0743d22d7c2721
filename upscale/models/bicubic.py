"""Bicubic interpolation as a model, so the baseline goes through the same engine and metrics.

It is MATLAB's bicubic (Keys, a = -0.5), the kernel the SR literature's bicubic rows use.
"""

from __future__ import annotations

from .registry import ModelSpec

BICUBIC_SPEC = ModelSpec(
    name="bicubic",
    build="upscale.models.nets.bicubic:Bicubic",
    scales=(2, 3, 4, 8),
    title="Bicubic interpolation (MATLAB imresize kernel)",
    fits="any input, as the baseline",
    margin_px=3,
    any_scale=True,
    needs_weights=False,
    params={2: 0, 3: 0, 4: 0, 8: 0},
)

"""Assertions shared by the per-model tests."""

from __future__ import annotations

import torch
from torch import nn

from upscale.resize import imresize


def assert_tile_matches_whole(
    net: nn.Module,
    lr: torch.Tensor,
    *,
    margin: int,
    scale: int,
    box: tuple[int, int, int, int],
    pre_upsample: bool = False,
    atol: float = 1e-9,
) -> None:
    """A tile of ``lr`` with ``margin`` pixels of context gives the whole image's output for ``box``
    (top, left, bottom, right in LR pixels). ``pre_upsample`` bicubic-upsamples the input first."""
    top, left, bottom, right = box

    def run(x: torch.Tensor) -> torch.Tensor:
        return net(imresize(x, scale=scale) if pre_upsample else x)

    with torch.no_grad():
        full = run(lr)
        tile = run(lr[..., top - margin : bottom + margin, left - margin : right + margin])
    m, s = margin, scale
    inner = tile[..., m * s : (m + bottom - top) * s, m * s : (m + right - left) * s]
    torch.testing.assert_close(inner, full[..., top * s : bottom * s, left * s : right * s], rtol=0, atol=atol)


def assert_half_close_to_float32(net: nn.Module, x: torch.Tensor) -> None:
    """``supports_half``: float16 stays within a small fraction of the float32 output's range."""
    with torch.no_grad():
        ref = net(x)
        half = net.half()(x.half()).float()
    assert (half - ref).abs().max() <= 2e-3 * ref.abs().max() + 2e-3

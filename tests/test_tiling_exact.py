"""Tiled equals untiled when the tile pad is exactly the model's declared margin plus the feather, on frames
many tiles wide and with weights whose outputs depend on the input and are not clipped, so that a margin
declared too small (context cut off at a seam) shows."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tests.conftest import photo
from upscale.engine import FEATHER_PX, EngineOptions, Upscaler
from upscale.models import REGISTRY, LoadedModel, build_model, load_model

TILE_PX = 32


def _frame(w: int, h: int) -> np.ndarray:
    """A real photo with its values kept off 0 and 1, so clipping cannot hide a difference."""
    return 0.1 + 0.8 * photo("chelsea", (w, h)).astype(np.float32) / 255


def _tiled_and_whole(model: LoadedModel, img: np.ndarray) -> tuple[np.ndarray, np.ndarray, Upscaler]:
    pad = model.spec.margin_px + FEATHER_PX
    tiled_up = Upscaler(model, EngineOptions(tile=TILE_PX, tile_pad=pad, batch_size=4))
    assert tiled_up.feather == FEATHER_PX  # the pad leaves exactly the declared margin outside the cross-fade
    whole = Upscaler(model, EngineOptions(tile=0)).upscale(img)
    tiled = tiled_up.upscale(img)
    return tiled.astype(np.float64), whole.astype(np.float64), tiled_up


def _check(model: LoadedModel, img: np.ndarray, *, windows: int = 2) -> None:
    tiled, whole, up = _tiled_and_whole(model, img)
    window = TILE_PX + 2 * up.tile_pad
    assert min(img.shape[:2]) >= windows * window, "the frame must hold tiles with full context on every side"
    clipped = np.mean((whole <= 0.0) | (whole >= 1.0))
    assert clipped < 0.01, f"{clipped:.1%} of the output is clipped; the comparison would be blind there"
    assert whole.std() > 0.1  # the output is a picture, not a constant
    diff = np.abs(tiled - whole)
    assert diff.max() <= 1e-5, f"{model.spec.name}: tiled differs from untiled by {diff.max():.2e}"


def _msrresnet_with_live_residual(img: np.ndarray) -> LoadedModel:
    """MSRResNet x2 (narrow, full depth, so its receptive field is the real one) with He-initialised
    convolutions: every block passes on as much as it receives, so pixels up to the receptive field's edge
    move the output. The last layer is scaled so the learned residual has the spread of a trained network's
    (about 0.08 around the bilinear skip): outputs stay in range and depend on the input."""
    torch.manual_seed(0)
    model = build_model(REGISTRY.get("msrresnet"), 2, num_features=8)
    net = model.module
    for conv in net.modules():
        if isinstance(conv, nn.Conv2d):
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
            nn.init.normal_(conv.bias, std=0.01)
    x = torch.from_numpy(img).permute(2, 0, 1)[None]
    with torch.no_grad():
        residual = net(x) - F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        k = 0.08 / residual.std()
        net.conv_last.weight *= k
        net.conv_last.bias *= k
    return model


def test_msrresnet_tiles_exactly_with_its_declared_margin() -> None:
    img = _frame(232, 232)
    _check(_msrresnet_with_live_residual(img), img)


def test_official_srcnn_tiles_exactly_with_its_declared_margin(shared_data) -> None:
    model = load_model("srcnn", weights=shared_data / "official-weights" / "srcnn_v1_915" / "x2.mat", scale=2)
    _check(model, _frame(200, 168))

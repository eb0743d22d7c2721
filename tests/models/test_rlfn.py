"""RLFN and RLFN-S: published sizes, shapes, and the authors' model-zoo files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import photo
from upscale.engine import EngineOptions, Upscaler
from upscale.errors import WeightsError
from upscale.models import REGISTRY, build_model, load_model, read_state_dict
from upscale.resize import imresize_np


@pytest.mark.parametrize(
    ("name", "scale", "params"),
    [("rlfn", 2, 526_856), ("rlfn", 4, 543_740), ("rlfn-s", 2, 454_620), ("rlfn-s", 4, 470_208), ("rlfn", 3, 533_891)],
)
def test_parameter_counts_match_the_paper(name: str, scale: int, params: int) -> None:
    assert build_model(REGISTRY.get(name), scale).num_params == params


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_output_shape(scale: int) -> None:
    net = build_model(REGISTRY.get("rlfn"), scale).module
    with torch.inference_mode():
        assert net(torch.rand(1, 3, 20, 24)).shape == (1, 3, 20 * scale, 24 * scale)


_FILES = {
    "rlfn_x2.pth": ("rlfn", 2, 526_856),
    "rlfn_x4.pth": ("rlfn", 4, 543_740),
    "rlfn_s_x2.pth": ("rlfn-s", 2, 454_620),
    "rlfn_s_x4.pth": ("rlfn-s", 4, 470_208),
    "rlfn_ntire_x4.pth": ("rlfn", 4, 317_218),
}


def _psnr_y(a: np.ndarray, b: np.ndarray, border: int) -> float:
    from upscale.color import rgb_to_y

    ya = rgb_to_y(a.astype(np.float64) / 255)[border:-border, border:-border]
    yb = rgb_to_y(b.astype(np.float64) / 255)[border:-border, border:-border]
    return float(10 * np.log10(1 / np.mean((ya - yb) ** 2)))


@pytest.mark.parametrize("filename", list(_FILES))
def test_official_model_zoo_files_load_fully_and_beat_bicubic(filename: str, shared_data: Path) -> None:
    name, scale, params = _FILES[filename]
    path = shared_data / "official-weights" / "rlfn" / filename
    model = load_model(name, weights=path)
    assert (model.scale, model.num_params) == (scale, params)
    # every tensor of the file is used, and nothing is left at its random initial value
    assert set(read_state_dict(path)) == set(model.module.state_dict())
    hr = photo("astronaut", (192, 192))
    lr = imresize_np(hr, 1 / scale)
    sr = Upscaler(model, EngineOptions(tile=0)).upscale(lr)
    bic = Upscaler(build_model(REGISTRY.get("bicubic"), scale), EngineOptions(tile=0)).upscale(lr)
    assert _psnr_y(sr, hr, scale) > _psnr_y(bic, hr, scale) + 0.8


def test_rlfn_s_file_is_refused_as_rlfn(shared_data: Path) -> None:
    with pytest.raises(WeightsError, match="holds weights of 'rlfn-s', not 'rlfn'"):
        load_model("rlfn", weights=shared_data / "official-weights/rlfn/rlfn_s_x4.pth")

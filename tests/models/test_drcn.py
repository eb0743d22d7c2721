"""DRCN: parameter count, weight sharing of the recursion, the ensemble, loading and tiling margins."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from tests.conftest import photo
from tests.models.checks import assert_half_close_to_float32, assert_tile_matches_whole
from upscale.color import rgb_to_y
from upscale.errors import WeightsError
from upscale.models import load_model
from upscale.models.drcn import DRCN_SPEC
from upscale.models.nets.drcn import DRCN
from upscale.models.nets.srcnn import SRCNN
from upscale.resize import imresize


def _saved(folder: Path, net: torch.nn.Module) -> Path:
    path = folder / "net.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    return path


def _randomised(net: DRCN) -> DRCN:
    """The paper's identity start for the recursion plus noise, so every recursion changes the
    features and the last ones still see the whole receptive field."""
    with torch.no_grad():
        net.inference.weight.add_(torch.randn_like(net.inference.weight) * 0.15)
        torch.nn.init.normal_(net.inference.bias, std=0.01)
        torch.nn.init.uniform_(net.w, 0.0, 0.2)
    return net.eval()


def _y(name: str, size: tuple[int, int]) -> torch.Tensor:
    return torch.from_numpy(rgb_to_y(photo(name, size) / 255.0)).float()[None, None]


def test_param_count_matches_published() -> None:
    with torch.device("meta"):
        net = DRCN()
    conv = sum(p.numel() for n, p in net.named_parameters() if n != "w")
    assert conv == 1_775_105
    assert net.w.numel() == 16
    assert sum(p.numel() for p in net.parameters()) == 1_775_121


def test_one_convolution_is_applied_d_times() -> None:
    net = DRCN(num_filters=8, num_recursions=5).eval()
    calls = []
    net.inference.register_forward_hook(lambda *_: calls.append(1))
    with torch.no_grad():
        net(torch.rand(1, 1, 6, 6))
    assert len(calls) == 5
    assert sum(isinstance(m, torch.nn.Conv2d) for m in net.modules()) == 5  # 2 embedding + 1 shared + 2 reconstruction


def test_initialisation_follows_the_paper() -> None:
    net = DRCN(num_filters=8, num_recursions=4)
    w = net.inference.weight
    identity = torch.zeros_like(w)
    identity[range(8), range(8), 1, 1] = 1.0
    assert torch.equal(w, identity)
    assert torch.equal(net.w, torch.full((4,), 0.25))


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_output_has_the_pre_upsampled_size(tmp_path: Path, scale: int) -> None:
    loaded = load_model("drcn", scale=scale, weights=_saved(tmp_path, DRCN(num_filters=8, num_recursions=3)))
    up = imresize(torch.rand(2, 1, 5, 7), scale=scale)
    with torch.no_grad():
        out = loaded.module(up)
    assert loaded.scale == scale
    assert out.shape == (2, 1, 5 * scale, 7 * scale)


def test_forward_all_returns_every_prediction_and_their_weighted_sum() -> None:
    net = _randomised(DRCN(num_filters=8, num_recursions=6)).double()
    x = _y("camera", (12, 10)).double()
    with torch.no_grad():
        out, preds = net.forward_all(x)
        direct = net(x)
    assert preds.shape == (1, 6, 1, 10, 12)
    torch.testing.assert_close(out, (preds * net.w.view(1, -1, 1, 1, 1)).sum(1))
    torch.testing.assert_close(direct, out)
    assert not torch.allclose(preds[:, 0], preds[:, -1])  # each recursion predicts something different


def test_predictions_add_the_input_back() -> None:
    net = _randomised(DRCN(num_filters=8, num_recursions=3))
    torch.nn.init.zeros_(net.reconstruction[2].weight)
    torch.nn.init.zeros_(net.reconstruction[2].bias)
    x = _y("coffee", (9, 7))
    with torch.no_grad():
        out, preds = net.forward_all(x)
    torch.testing.assert_close(preds, x.unsqueeze(1).expand_as(preds))
    torch.testing.assert_close(out, net.w.sum() * x)


def test_safetensors_round_trip(tmp_path: Path) -> None:
    net = _randomised(DRCN(num_filters=12, num_recursions=5))
    loaded = load_model("drcn", scale=2, weights=_saved(tmp_path, net))
    assert loaded.module.num_recursions == 5
    assert loaded.module.inference.out_channels == 12
    x = imresize(_y("astronaut", (10, 8)), scale=2)
    with torch.no_grad():
        assert torch.equal(loaded.module(x), net(x))


def test_weights_of_another_model_are_named(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match=r"weights of 'srcnn', not 'drcn'"):
        load_model("drcn", weights=_saved(tmp_path, SRCNN()))


@pytest.mark.parametrize("scale", [1, 2, 3])
def test_margin_gives_exact_tiles(scale: int) -> None:
    """Full depth (D = 16, 41×41 receptive field) at a small width: a tile with ``margin_px`` of LR
    context, upsampled on its own, gives the pixels of the whole image."""
    net = _randomised(DRCN(num_filters=4, num_recursions=16)).double()
    m = DRCN_SPEC.margin_px
    lr = _y("coffee", (2 * m + 14, 2 * m + 13)).double()
    box = (m + 4, m + 3, m + 9, m + 9)  # context beyond the margin on every side
    assert_tile_matches_whole(net, lr, margin=m, scale=scale, box=box, pre_upsample=True)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def test_half_precision_matches_float32(device: str) -> None:
    """``supports_half``: float16 stays within a small fraction of the float32 output's range."""
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    net = DRCN(num_filters=32).eval().to(device)
    x = imresize(_y("camera", (12, 10)), scale=2).to(device)
    assert_half_close_to_float32(net, x)

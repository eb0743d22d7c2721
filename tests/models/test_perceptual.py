"""Johnson et al.'s SR transform network: sizes, both upsampler layouts, loading and tiling margins."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from tests.conftest import photo
from tests.models.checks import assert_half_close_to_float32, assert_tile_matches_whole
from upscale.errors import UnsupportedScaleError, WeightsError
from upscale.models import load_model
from upscale.models.nets.perceptual import PerceptualSR
from upscale.models.nets.srcnn import SRCNN
from upscale.models.perceptual import PERCEPTUAL_SPEC


def _saved(folder: Path, net: torch.nn.Module) -> Path:
    path = folder / "net.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    return path


def _randomised(net: PerceptualSR) -> PerceptualSR:
    """Batch-norm statistics and affine terms away from the identity, so they have to round-trip."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
    return net.eval()


def _rgb(name: str, size: tuple[int, int]) -> torch.Tensor:
    return torch.from_numpy(photo(name, size)).permute(2, 0, 1)[None].float() / 255.0


@pytest.mark.parametrize("upsampler", ["nearest", "deconv"])
@pytest.mark.parametrize(("scale", "expected"), [(4, 401_859), (8, 438_915)])
def test_param_counts_match_the_paper_layout(scale: int, expected: int, upsampler: str) -> None:
    net = PerceptualSR(scale=scale, upsampler=upsampler)
    assert sum(p.numel() for p in net.parameters()) == expected
    assert len(net.blocks) == 4
    assert len(net.up) == {4: 2, 8: 3}[scale]


@pytest.mark.parametrize("upsampler", ["nearest", "deconv"])
@pytest.mark.parametrize("scale", [4, 8])
def test_output_shape_and_range(scale: int, upsampler: str) -> None:
    net = _randomised(PerceptualSR(scale=scale, num_features=8, num_blocks=1, upsampler=upsampler))
    x = torch.rand(2, 3, 5, 7) * 40 - 20  # far outside [0, 1]: the scaled tanh still bounds the output
    with torch.no_grad():
        out = net(x)
    assert out.shape == (2, 3, 5 * scale, 7 * scale)
    assert out.min() >= 0 and out.max() <= 1


def test_nearest_stage_is_nearest_upsampling_then_a_3x3_conv() -> None:
    net = PerceptualSR(scale=4, num_features=8, num_blocks=1).eval()
    stage = net.up[0]
    x = torch.rand(1, 8, 4, 5)
    with torch.no_grad():
        expected = torch.relu(stage.bn(stage.conv(x.repeat_interleave(2, -2).repeat_interleave(2, -1))))
        torch.testing.assert_close(stage(x), expected)
    assert stage.conv.kernel_size == (3, 3) and stage.conv.stride == (1, 1)


def test_scales_other_than_powers_of_two_are_refused() -> None:
    with pytest.raises(UnsupportedScaleError):
        load_model("perceptual", scale=3)
    with pytest.raises(ValueError, match="powers of two"):
        PerceptualSR(scale=3)


@pytest.mark.parametrize(("scale", "upsampler"), [(4, "nearest"), (8, "deconv")])
def test_safetensors_round_trip(tmp_path: Path, scale: int, upsampler: str) -> None:
    net = _randomised(PerceptualSR(scale=scale, num_features=12, num_blocks=2, upsampler=upsampler))
    loaded = load_model("perceptual", weights=_saved(tmp_path, net))  # scale and layout come from the file
    assert loaded.scale == scale
    assert loaded.module.up[0].upsampler == upsampler
    x = _rgb("astronaut", (9, 7))
    with torch.no_grad():
        assert torch.equal(loaded.module(x), net(x))


def test_weights_of_another_model_are_named(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match=r"weights of 'srcnn', not 'perceptual'"):
        load_model("perceptual", weights=_saved(tmp_path, SRCNN()))


def test_file_for_another_scale_is_refused(tmp_path: Path) -> None:
    path = _saved(tmp_path, PerceptualSR(scale=8, num_features=8, num_blocks=1))
    with pytest.raises(WeightsError, match="x8, not x4"):
        load_model("perceptual", scale=4, weights=path)


@pytest.mark.parametrize(("scale", "upsampler"), [(4, "nearest"), (8, "nearest"), (4, "deconv")])
def test_margin_gives_exact_tiles(scale: int, upsampler: str) -> None:
    """Default depth at a small width: a tile with ``margin_px`` of context gives the whole image's pixels."""
    net = _randomised(PerceptualSR(scale=scale, num_features=8, upsampler=upsampler)).double()
    m = PERCEPTUAL_SPEC.margin_px
    lr = _rgb("coffee", (2 * m + 12, 2 * m + 11)).double()
    box = (m + 3, m + 3, m + 8, m + 9)  # context beyond the margin on every side
    assert_tile_matches_whole(net, lr, margin=m, scale=scale, box=box)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def test_half_precision_matches_float32(device: str) -> None:
    """``supports_half``: float16 stays within a small fraction of the float32 output's range."""
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    net = _randomised(PerceptualSR(scale=4)).to(device)
    x = _rgb("astronaut", (16, 12)).to(device)
    assert_half_close_to_float32(net, x)

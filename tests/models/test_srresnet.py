"""SRResNet / SRGAN generator, the SRGAN discriminator and BasicSR's MSRResNet."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from tests.conftest import photo
from tests.models.checks import assert_half_close_to_float32, assert_tile_matches_whole
from upscale.errors import WeightsError
from upscale.models import REGISTRY, load_model
from upscale.models.nets.srcnn import SRCNN
from upscale.models.nets.srresnet import Discriminator, MSRResNet, SRResNet
from upscale.models.srresnet import MSRRESNET_SPEC, SRRESNET_SPEC


def _num_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def _saved(folder: Path, net: torch.nn.Module | dict) -> Path:
    sd = net if isinstance(net, dict) else net.state_dict()
    path = folder / "net.safetensors"
    save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    return path


def _randomised(net: torch.nn.Module) -> torch.nn.Module:
    """He-scaled convolutions (so far pixels still matter after 16 blocks), and batch-norm
    statistics, affine terms and PReLU slopes away from their defaults."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
            elif isinstance(m, torch.nn.PReLU):
                m.weight.uniform_(0.0, 0.5)
    return net.eval()


def _rgb(name: str, size: tuple[int, int]) -> torch.Tensor:
    return torch.from_numpy(photo(name, size)).permute(2, 0, 1)[None].float() / 255.0


# --- sizes ------------------------------------------------------------------------------------


def test_generator_param_count_matches_published() -> None:
    with torch.device("meta"):
        net = SRResNet(scale=4)
    assert _num_params(net) == 1_549_462
    assert len(net.blocks) == 16


@pytest.mark.parametrize(("scale", "expected"), [(2, 1_369_859), (3, 1_554_499), (4, 1_517_571)])
def test_msrresnet_param_counts_match_basicsr(scale: int, expected: int) -> None:
    with torch.device("meta"):
        net = MSRResNet(scale=scale)
    assert _num_params(net) == expected


def test_discriminator_size_and_output() -> None:
    net = Discriminator().eval()
    assert _num_params(net) == 23_565_505  # "about 23.6M"
    assert net.classifier[1].in_features == 512 * 6 * 6
    with torch.no_grad():
        assert net(torch.rand(2, 3, 96, 96)).shape == (2, 1)


@pytest.mark.parametrize("name", ["srresnet", "srgan", "msrresnet"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_output_shape_per_scale(name: str, scale: int) -> None:
    spec = REGISTRY.get(name)
    net = spec.network(scale=scale, num_features=8, num_blocks=1).eval()
    with torch.no_grad():
        out = net(torch.rand(2, 3, 5, 7))
    assert out.shape == (2, 3, 5 * scale, 7 * scale)


def test_srgan_is_the_srresnet_generator() -> None:
    assert REGISTRY.get("srgan").network is SRResNet is REGISTRY.get("srresnet").network


# --- loading ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "scale"), [("srresnet", 4), ("srgan", 2), ("srresnet", 3)])
def test_safetensors_round_trip(tmp_path: Path, name: str, scale: int) -> None:
    net = _randomised(SRResNet(scale=scale, num_features=16, num_blocks=3))
    loaded = load_model(name, weights=_saved(tmp_path, net))  # scale, width and depth come from the file
    assert loaded.scale == scale
    assert len(loaded.module.blocks) == 3
    x = _rgb("astronaut", (9, 7))
    with torch.no_grad():
        assert torch.equal(loaded.module(x), net(x))


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_msrresnet_round_trip(tmp_path: Path, scale: int) -> None:
    net = MSRResNet(scale=scale, num_features=16, num_blocks=2).eval()
    loaded = load_model("msrresnet", weights=_saved(tmp_path, net))
    assert loaded.scale == scale
    x = _rgb("chelsea", (8, 6))
    with torch.no_grad():
        assert torch.equal(loaded.module(x), net(x))


def test_msrresnet_loads_basicsr_2019_key_names(tmp_path: Path) -> None:
    """BasicSR's 2019 release wrote ``recon_trunk.N`` and ``HRconv`` (``{'params': ...}`` wrapped later)."""
    net = MSRResNet(scale=4, num_features=16, num_blocks=2).eval()
    old = {k.replace("body.", "recon_trunk.").replace("conv_hr.", "HRconv."): v for k, v in net.state_dict().items()}
    assert any(k.startswith("recon_trunk.") for k in old) and "HRconv.weight" in old
    path = tmp_path / "msrresnet_2019.pth"
    torch.save(old, path)
    loaded = load_model("msrresnet", weights=path)
    x = _rgb("coffee", (7, 6))
    with torch.no_grad():
        assert torch.equal(loaded.module(x), net(x))


def test_msrresnet_file_given_as_srresnet_is_named(tmp_path: Path) -> None:
    path = _saved(tmp_path, MSRResNet(scale=4, num_features=8, num_blocks=1))
    with pytest.raises(WeightsError, match=r"weights of 'msrresnet', not 'srresnet'"):
        load_model("srresnet", weights=path)


def test_srresnet_file_given_as_msrresnet_is_named(tmp_path: Path) -> None:
    path = _saved(tmp_path, SRResNet(scale=4, num_features=8, num_blocks=1))
    with pytest.raises(WeightsError, match=r"weights of 'srresnet', not 'msrresnet'"):
        load_model("msrresnet", weights=path)


def test_weights_of_another_model_are_named(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match=r"weights of 'srcnn', not 'srgan'"):
        load_model("srgan", weights=_saved(tmp_path, SRCNN()))


def test_file_for_another_scale_is_refused(tmp_path: Path) -> None:
    path = _saved(tmp_path, SRResNet(scale=2, num_features=8, num_blocks=1))
    with pytest.raises(WeightsError, match="x2, not x4"):
        load_model("srresnet", scale=4, weights=path)


# --- tiling -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "spec", "scale"),
    [
        (SRResNet, SRRESNET_SPEC, 2),
        (SRResNet, SRRESNET_SPEC, 3),
        (SRResNet, SRRESNET_SPEC, 4),
        (MSRResNet, MSRRESNET_SPEC, 2),
        (MSRResNet, MSRRESNET_SPEC, 4),
    ],
)
def test_margin_gives_exact_tiles(build, spec, scale: int) -> None:
    """Default depth (16 blocks) at a small width: a tile with ``margin_px`` of context gives the
    whole image's pixels; batch norm in eval mode does not depend on the tile."""
    net = _randomised(build(scale=scale, num_features=4)).double()
    m = spec.margin_px
    lr = _rgb("coffee", (2 * m + 10, 2 * m + 9)).double()
    box = (m + 2, m + 2, m + 7, m + 8)  # context beyond the margin on every side
    assert_tile_matches_whole(net, lr, margin=m, scale=scale, box=box)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def test_half_precision_matches_float32(device: str) -> None:
    """``supports_half``: float16 stays within a small fraction of the float32 output's range."""
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    net = SRResNet(scale=4).eval().to(device)
    x = _rgb("astronaut", (16, 12)).to(device)
    assert_half_close_to_float32(net, x)

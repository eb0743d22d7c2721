"""DRN (Dual Regression Networks): sizes, multi-scale outputs, the official release layout, dual models."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from upscale.errors import WeightsError
from upscale.models import REGISTRY, build_model, load_model, read_state_dict
from upscale.models.drn import DRN_L_SPEC, DRN_S_SPEC
from upscale.models.nets.drn import DRN, RGB_MEAN, build_dual_models, load_dual_models

# (variant, scale): (F, B, primal params incl. MeanShift, state-dict keys, params per dual) from MODELS.md §7.
PUBLISHED = {
    ("s", 4): (16, 30, 4_804_065, 504, 864),
    ("l", 4): (20, 40, 9_825_893, 664, 1_080),
    ("s", 8): (8, 30, 5_403_000, 752, 432),
    ("l", 8): (10, 36, 10_004_018, 896, 540),
}
SPECS = {"s": DRN_S_SPEC, "l": DRN_L_SPEC}


def _num_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(("variant", "scale"), list(PUBLISHED))
def test_published_configurations_match_counts(variant: str, scale: int) -> None:
    n_feats, n_blocks, params, keys, dual_params = PUBLISHED[(variant, scale)]
    with torch.device("meta"):
        net = build_model(SPECS[variant], scale).module
        duals = build_dual_models(scale=scale, n_feats=n_feats)
    assert net.head.weight.shape[0] == n_feats
    assert sum(1 for m in net.up_blocks[0] if type(m).__name__ == "RCAB") == n_blocks
    # The counts cover the primal network including sub_mean/add_mean (24 params), not the duals.
    assert _num_params(net) == params
    assert len(net.state_dict()) == keys
    assert len(duals) == net.phases and all(_num_params(d) == dual_params for d in duals)


def _small(scale: int, n_feats: int) -> DRN:
    return DRN(scale=scale, n_feats=n_feats, n_blocks=2).eval()


@pytest.mark.parametrize("scale", [4, 8])
def test_multiscale_outputs(scale: int) -> None:
    net = _small(scale, 8)
    x = torch.rand(2, 3, 6, 5) * 255
    with torch.no_grad():
        outs = net.forward_all(x)
        final = net(x)
    assert [o.shape[-2:] for o in outs] == [(6 * 2**k, 5 * 2**k) for k in range(net.phases + 1)]
    assert all(o.shape[:2] == (2, 3) for o in outs)
    assert torch.equal(final, outs[-1])


def test_input_is_pytorch_bicubic_upsampled_inside_the_net() -> None:
    net = _small(4, 16)
    x = torch.rand(1, 3, 5, 7) * 255
    seen: list[torch.Tensor] = []
    net.head.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    with torch.no_grad():
        net(x)
    mean = 255 * torch.tensor(RGB_MEAN).view(1, 3, 1, 1)
    expected = F.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False) - mean
    torch.testing.assert_close(seen[0], expected, rtol=0, atol=1e-4)


def test_mean_shift_round_trips_at_init() -> None:
    net = _small(4, 16)
    x = torch.rand(1, 3, 4, 4) * 255
    with torch.no_grad():
        torch.testing.assert_close(net.add_mean(net.sub_mean(x)), x)


@pytest.mark.parametrize(("variant", "scale"), list(PUBLISHED))
def test_release_layout_loads_and_reproduces(tmp_path: Path, variant: str, scale: int) -> None:
    n_feats = PUBLISHED[(variant, scale)][0]
    net = _small(scale, n_feats)
    sd = net.state_dict()
    p = net.phases
    official = {
        "sub_mean.bias",
        "head.weight",
        f"down.{p - 1}.dual_module.0.0.weight",
        f"down.{p - 1}.dual_module.1.weight",
        "up_blocks.0.1.body.2.weight",
        "up_blocks.0.1.body.3.conv_du.2.bias",
        "up_blocks.0.2.0.weight",  # upsampler conv after B=2 RCABs
        "up_blocks.0.3.weight",  # 1x1 conv
        f"tail.{p}.weight",
        "add_mean.weight",
    }
    assert official <= set(sd)
    path = tmp_path / f"DRN{variant.upper()}{scale}x.pt"
    torch.save(sd, path)

    assert REGISTRY.identify(read_state_dict(path)) is SPECS[variant]
    loaded = load_model(f"drn-{variant}", weights=path)
    assert loaded.scale == scale
    assert loaded.module.head.weight.shape[0] == n_feats
    x = torch.rand(1, 3, 6, 4) * 255
    with torch.no_grad():
        assert torch.equal(loaded.module(x), net(x))


def test_dual_model_file(tmp_path: Path) -> None:
    """Release ``*_dual_model.pt`` files are a list of dual state dicts, without the primal network."""
    duals = build_dual_models(scale=4, n_feats=16)
    path = tmp_path / "DRNS4x_dual_model.pt"
    torch.save([d.state_dict() for d in duals], path)
    loaded = load_dual_models(path)
    x = torch.rand(1, 3, 8, 8) * 255
    with torch.no_grad():
        for ours, theirs in zip(loaded, duals, strict=True):
            assert ours(x).shape == (1, 3, 4, 4)
            assert torch.equal(ours(x), theirs(x))
    with pytest.raises(WeightsError, match=r"DRNS4x_dual_model.pt: holds a list of state dicts \(DRN dual networks"):
        load_model("drn-s", weights=path)


def test_wrong_variant_and_scale_are_refused(tmp_path: Path) -> None:
    large = tmp_path / "DRNL4x.pt"
    torch.save(_small(4, 20).state_dict(), large)
    with pytest.raises(WeightsError, match=r"holds weights of 'drn-l', not 'drn-s'"):
        load_model("drn-s", weights=large)
    with pytest.raises(WeightsError, match=r"holds 'drn-l' weights for x4, not x8"):
        load_model("drn-l", scale=8, weights=large)
    with pytest.raises(WeightsError, match=r"holds weights of 'drn-l', not 'esrgan'"):
        load_model("esrgan", weights=large)


def test_specs_declare_the_contract() -> None:
    for spec in (DRN_S_SPEC, DRN_L_SPEC):
        assert spec.scales == (4, 8)
        assert spec.value_range == 255.0
        assert spec.colour == "rgb" and spec.input_kind == "lr"
        assert not spec.exact_tiling  # channel attention pools over the whole input
    net = _small(4, 8)
    with torch.no_grad():
        assert net(torch.rand(1, 3, 1, 3)).shape == (1, 3, 4, 12)  # any size, no multiple needed

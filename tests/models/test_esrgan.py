"""RRDBNet (ESRGAN / Real-ESRGAN): sizes, the three official key layouts, and the training-only networks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from upscale.errors import WeightsError
from upscale.models import REGISTRY, load_model, read_state_dict
from upscale.models.esrgan import ESRGAN_SPEC, convert, hparams_from
from upscale.models.nets.esrgan import RRDBNet
from upscale.models.nets.rlfn import RLFN
from upscale.train.networks import VGG19_LAYERS, VGG19FeatureExtractor, VGGStyleDiscriminator


def _num_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"scale": 4}, 16_697_987),
        ({"scale": 2}, 16_703_171),  # Real-ESRGAN x2plus: conv_first sees 12 channels
        ({"scale": 1}, 16_723_907),
        ({"scale": 4, "num_block": 16}, 11_662_019),
        ({"scale": 4, "num_block": 6}, 4_467_779),  # RealESRGAN_x4plus_anime_6B
    ],
)
def test_param_counts_match_published(kwargs: dict, expected: int) -> None:
    with torch.device("meta"):
        net = RRDBNet(**kwargs)
    assert _num_params(net) == expected


def _small(scale: int, pixel_unshuffle: int | None = None) -> RRDBNet:
    """Non-default widths, so a loader that ignored the file's shapes would fail."""
    return RRDBNet(scale=scale, num_feat=24, num_block=2, num_grow_ch=12, pixel_unshuffle=pixel_unshuffle).eval()


@pytest.mark.parametrize(("scale", "unshuffle"), [(1, None), (2, None), (2, 1), (4, None), (8, None)])
def test_output_shape_per_scale(scale: int, unshuffle: int | None) -> None:
    net = RRDBNet(scale=scale, num_feat=8, num_block=1, num_grow_ch=4, pixel_unshuffle=unshuffle)
    with torch.no_grad():
        out = net(torch.rand(2, 3, 7, 10))
    assert out.shape == (2, 3, 7 * scale, 10 * scale)


def test_unshuffle_reflect_pads_odd_sizes_and_crops() -> None:
    net = _small(2)
    x = torch.rand(1, 3, 7, 9)
    with torch.no_grad():
        out = net(x)
        padded = net(F.pad(x, (0, 1, 0, 1), mode="reflect"))
    assert torch.equal(out, padded[..., :14, :18])


# --- official layouts, written from MODELS.md §6.2 ---------------------------------------------


def _to_2019(sd: dict) -> dict:
    out = {}
    for key, value in sd.items():
        key = re.sub(r"^body\.(\d+)\.rdb(\d)\.", r"RRDB_trunk.\1.RDB\2.", key)
        key = re.sub(r"^conv_up(\d)\.", r"upconv\1.", key)
        key = key.replace("conv_body.", "trunk_conv.").replace("conv_hr.", "HRconv.")
        out[key] = value
    return out


def _to_old(sd: dict, num_block: int, num_up: int) -> dict:
    top = {"conv_first": 0, "conv_hr": 3 * num_up + 2, "conv_last": 3 * num_up + 4}
    top.update({f"conv_up{k}": 3 * k for k in range(1, num_up + 1)})
    out = {}
    for key, value in sd.items():
        name, _, param = key.rpartition(".")
        if m := re.match(r"body\.(\d+)\.rdb(\d)\.conv(\d)$", name):
            out[f"model.1.sub.{m[1]}.RDB{m[2]}.conv{m[3]}.0.{param}"] = value
        elif name == "conv_body":
            out[f"model.1.sub.{num_block}.{param}"] = value
        else:
            out[f"model.{top[name]}.{param}"] = value
    return out


LAYOUTS = [
    ("basicsr", 4, None),
    ("params_ema", 4, None),
    ("params", 4, None),
    ("params_ema", 2, None),  # Real-ESRGAN x2plus
    ("params_ema", 1, None),
    ("esrgan2019", 4, None),
    ("old", 4, None),
    ("old", 2, 1),  # 2018-style x2: one nearest-x2 stage, no unshuffle
    ("old", 8, None),
]


@pytest.mark.parametrize(("layout", "scale", "unshuffle"), LAYOUTS)
def test_official_layouts_load_and_reproduce(tmp_path: Path, layout: str, scale: int, unshuffle: int | None) -> None:
    net = _small(scale, unshuffle)
    sd = net.state_dict()
    saved: object = {
        "basicsr": sd,
        "params_ema": {"params_ema": sd},
        "params": {"params": sd},
        "esrgan2019": _to_2019(sd),
        "old": _to_old(sd, num_block=2, num_up=net.num_up),
    }[layout]
    if layout == "old":
        assert "model.1.sub.2.weight" in saved and f"model.{3 * net.num_up + 4}.weight" in saved
    path = tmp_path / "weights.pth"
    torch.save(saved, path)

    loaded = load_model("esrgan", weights=path)
    assert loaded.scale == scale
    assert loaded.module.unshuffle == net.unshuffle
    assert loaded.num_params == _num_params(net)
    x = torch.rand(1, 3, 8, 6)
    with torch.no_grad():
        assert torch.equal(loaded.module(x), net(x))
    assert REGISTRY.identify(read_state_dict(path)) is ESRGAN_SPEC


def test_hparams_from_reads_shapes() -> None:
    sd = convert(_to_old(_small(2, 1).state_dict(), num_block=2, num_up=1))
    assert hparams_from(sd) == {
        "scale": 2,
        "num_in_ch": 3,
        "num_out_ch": 3,
        "num_feat": 24,
        "num_block": 2,
        "num_grow_ch": 12,
        "pixel_unshuffle": 1,
    }
    assert hparams_from(_small(1).state_dict())["pixel_unshuffle"] == 4


def test_wrong_scale_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x4.pth"
    torch.save(_small(4).state_dict(), path)
    with pytest.raises(WeightsError, match=r"'esrgan' weights for x4, not x2"):
        load_model("esrgan", scale=2, weights=path)


def test_wrong_architecture_names_what_was_found(tmp_path: Path) -> None:
    rlfn = tmp_path / "rlfn.pth"
    torch.save(RLFN(scale=4).state_dict(), rlfn)
    with pytest.raises(WeightsError, match=r"holds weights of 'rlfn', not 'esrgan'"):
        load_model("esrgan", weights=rlfn)
    esrgan = tmp_path / "esrgan.pth"
    torch.save(_to_2019(_small(4).state_dict()), esrgan)
    with pytest.raises(WeightsError, match=r"holds weights of 'esrgan', not 'drn-s'"):
        load_model("drn-s", weights=esrgan)


def test_truncated_checkpoint_is_refused(tmp_path: Path) -> None:
    sd = _small(4).state_dict()
    del sd["body.1.rdb3.conv5.bias"]
    path = tmp_path / "cut.pth"
    torch.save(sd, path)
    with pytest.raises(WeightsError, match=r"missing body\.1\.rdb3\.conv5\.bias"):
        load_model("esrgan", weights=path)


# --- training-only networks ------------------------------------------------------------------


def test_discriminator_vgg_128() -> None:
    disc = VGGStyleDiscriminator().eval()
    assert _num_params(disc) == 14_499_401
    keys = disc.state_dict().keys()
    assert {"conv0_0.bias", "bn0_1.running_var", "conv4_1.weight", "linear1.weight", "linear2.bias"} <= set(keys)
    assert "conv1_0.bias" not in keys
    with torch.no_grad():
        assert disc(torch.rand(2, 3, 128, 128)).shape == (2, 1)
    with pytest.raises(ValueError, match="128x128"):
        disc(torch.rand(1, 3, 64, 64))


def test_vgg19_returns_features_before_activation() -> None:
    vgg = VGG19FeatureExtractor(layers=("conv5_4", "relu5_4"))
    assert len(vgg.features) == VGG19_LAYERS.index("relu5_4") + 1 == 36  # torchvision's features[:36]
    x = torch.rand(2, 3, 32, 32)
    feats = vgg(x)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = vgg.features[:35]((x - mean) / std)
    assert feats["conv5_4"].shape == (2, 512, 2, 2)
    assert torch.equal(feats["conv5_4"], expected)
    assert feats["conv5_4"].min() < 0  # pre-activation
    assert torch.equal(feats["relu5_4"], feats["conv5_4"].clamp(min=0))
    assert not any(p.requires_grad for p in vgg.parameters())


def test_vgg19_loads_a_torchvision_style_state_dict(tmp_path: Path) -> None:
    source = VGG19FeatureExtractor(layers=("conv2_2",))
    sd = {f"features.{k}": v for k, v in source.features.state_dict().items()}
    sd["classifier.0.weight"] = torch.zeros(4, 4)  # the full model's head is ignored
    target = VGG19FeatureExtractor(layers=("conv2_2",))
    path = tmp_path / "vgg19.pth"
    torch.save(sd, path)
    target.load_vgg19(path)
    x = torch.rand(1, 3, 16, 16)
    assert torch.equal(target(x)["conv2_2"], source(x)["conv2_2"])
    with pytest.raises(WeightsError, match=r"missing features\.2\.weight"):
        target.load_vgg19({"features.0.weight": sd["features.0.weight"], "features.0.bias": sd["features.0.bias"]})

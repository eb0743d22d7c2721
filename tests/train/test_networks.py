"""Training-only networks: the VGG16/VGG19 feature extractor and SRGAN's discriminator.

ESRGAN's ``VGGStyleDiscriminator`` and the VGG19-specific tests live in ``tests/models/test_esrgan.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from upscale.errors import WeightsError
from upscale.train.networks import (
    VGG16_LAYERS,
    VGG19_LAYERS,
    SRGANDiscriminator,
    VGG19FeatureExtractor,
    VGGFeatureExtractor,
)


def _num_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _torchvision_sd(vgg: VGGFeatureExtractor) -> dict[str, torch.Tensor]:
    """The extractor's weights under torchvision's full-model names, with a classifier head to be ignored."""
    sd = {f"features.{k}": v.clone() for k, v in vgg.features.state_dict().items()}
    sd["classifier.0.weight"] = torch.zeros(4, 4)
    return sd


# --- VGG ----------------------------------------------------------------------------------------------------------


def test_vgg_layer_names_match_torchvision_indices() -> None:
    assert len(VGG16_LAYERS) == 31 and len(VGG19_LAYERS) == 37  # len(torchvision vgg16/vgg19 .features)
    assert VGG16_LAYERS[:10] == VGG19_LAYERS[:10]
    assert VGG16_LAYERS.index("relu2_2") == 8
    assert VGG16_LAYERS.index("conv3_3") == 14 and VGG16_LAYERS.index("pool3") == 16
    assert VGG16_LAYERS.index("conv5_3") == 28 and VGG16_LAYERS[-1] == "pool5"
    assert VGG19_LAYERS.index("conv5_4") == 34 and VGG19_LAYERS.index("relu5_4") == 35
    assert "conv3_4" not in VGG16_LAYERS


def test_vgg16_sizes_and_features() -> None:
    vgg = VGGFeatureExtractor(arch="vgg16", layers=("relu2_2", "pool5"))
    assert len(vgg.features) == 31
    assert _num_params(vgg) == 14_714_688  # torchvision vgg16.features
    feats = vgg(torch.rand(1, 3, 32, 32))
    assert feats["relu2_2"].shape == (1, 128, 16, 16) and feats["relu2_2"].min() >= 0
    assert feats["pool5"].shape == (1, 512, 1, 1)
    assert not any(p.requires_grad for p in vgg.parameters())


def test_vgg19_subclass_keeps_its_api() -> None:
    vgg = VGG19FeatureExtractor()
    assert isinstance(vgg, VGGFeatureExtractor) and vgg.arch == "vgg19" and vgg.layers == ("conv5_4",)
    assert len(vgg.features) == 35


@pytest.mark.parametrize(("arch", "layers"), [("vgg16", ("relu5_3", "pool5")), ("vgg19", ("relu5_4", "pool5"))])
def test_vgg_round_trips_a_torchvision_state_dict(tmp_path: Path, arch: str, layers: tuple[str, ...]) -> None:
    source = VGGFeatureExtractor(arch=arch, layers=layers)
    target = VGGFeatureExtractor(arch=arch, layers=layers[:1])
    path = tmp_path / f"{arch}.pth"
    torch.save(_torchvision_sd(source), path)
    target.load_vgg(path)
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(target(x)[layers[0]], source(x)[layers[0]])


def test_vgg19_load_vgg19_still_works() -> None:
    source = VGG19FeatureExtractor(layers=("conv2_2",))
    target = VGG19FeatureExtractor(layers=("conv2_2",))
    target.load_vgg19(_torchvision_sd(source))
    x = torch.rand(1, 3, 16, 16)
    assert torch.equal(target(x)["conv2_2"], source(x)["conv2_2"])


def test_vgg_refuses_the_other_vgg() -> None:
    vgg16_sd = _torchvision_sd(VGGFeatureExtractor(arch="vgg16", layers=("pool5",)))
    vgg19_sd = _torchvision_sd(VGGFeatureExtractor(arch="vgg19", layers=("pool5",)))
    # Even where the first blocks would fit (conv2_2 is features.7 in both), a whole VGG16 is not a VGG19.
    with pytest.raises(WeightsError, match="a VGG16 state dict, not VGG19"):
        VGGFeatureExtractor(arch="vgg19", layers=("conv2_2",)).load_vgg(vgg16_sd)
    with pytest.raises(WeightsError, match="a VGG19 state dict, not VGG16"):
        VGGFeatureExtractor(arch="vgg16", layers=("conv5_3",)).load_vgg(vgg19_sd)


def test_vgg_refuses_missing_and_misshaped_tensors() -> None:
    vgg = VGGFeatureExtractor(arch="vgg16", layers=("conv3_1",))
    sd = _torchvision_sd(vgg)
    partial = {k: v for k, v in sd.items() if not k.startswith("features.10.")}
    with pytest.raises(WeightsError, match=r"not a VGG16 state dict \(missing features\.10\.weight"):
        vgg.load_vgg(partial)
    sd["features.10.weight"] = torch.zeros(256, 64, 3, 3)
    with pytest.raises(WeightsError, match=r"not a VGG16 state dict \(.*size mismatch"):
        vgg.load_vgg(sd)


def test_vgg_rejects_unknown_arch_and_layers() -> None:
    with pytest.raises(ValueError, match="unknown VGG arch 'vgg11'"):
        VGGFeatureExtractor(arch="vgg11", layers=("conv1_1",))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"unknown VGG16 layers \['conv5_4'\]"):
        VGGFeatureExtractor(arch="vgg16", layers=("conv5_4",))
    with pytest.raises(ValueError, match="unknown VGG19 layers"):
        VGGFeatureExtractor(arch="vgg19", layers=())


# --- SRGAN discriminator ------------------------------------------------------------------------------------------


def test_srgan_discriminator_96() -> None:
    disc = SRGANDiscriminator().eval()
    assert _num_params(disc) == 23_563_649  # "~23.6M"; the convs before BN carry no bias
    assert round(_num_params(disc) / 1e6, 1) == 23.6
    assert disc.linear1.in_features == 512 * 6 * 6
    with torch.no_grad():
        assert disc(torch.rand(2, 3, 96, 96)).shape == (2, 1)
    with pytest.raises(ValueError, match="96x96"):
        disc(torch.rand(1, 3, 128, 128))


def test_srgan_discriminator_other_input_size() -> None:
    disc = SRGANDiscriminator(input_size=40, num_feat=8).eval()
    assert disc.linear1.in_features == 64 * 3 * 3  # 40 -> 20 -> 10 -> 5 -> 3
    with torch.no_grad():
        out = disc(torch.rand(3, 3, 40, 40))
    assert out.shape == (3, 1) and out.dtype == torch.float32
    with pytest.raises(ValueError, match="at least 16"):
        SRGANDiscriminator(input_size=8)

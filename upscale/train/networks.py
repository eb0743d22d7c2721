"""Networks used only while training: the ESRGAN and SRGAN discriminators and a VGG16/VGG19 feature extractor.

None is a super-resolution model, so none is in the model registry. All are built from scratch with
random weights; the VGG loads an ImageNet state dict the user supplies (torchvision's ``features.N.weight``
names), nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from ..errors import WeightsError

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "VGG16_LAYERS",
    "VGG19_LAYERS",
    "SRGANDiscriminator",
    "VGG19FeatureExtractor",
    "VGGArch",
    "VGGFeatureExtractor",
    "VGGStyleDiscriminator",
    "vgg_layer_names",
]


class VGGStyleDiscriminator(nn.Module):
    """ESRGAN's ``Discriminator_VGG_128``: ten convs (stride 2 every second one, BN after all but the
    first), then ``linear1 8192->100``, LeakyReLU(0.2), ``linear2 100->1``. Input 128×128 RGB; output one
    raw logit per image (the relativistic loss applies its own sigmoid). Key names are BasicSR's
    ``conv0_0``, ``bn0_1``, ..., ``linear2``."""

    input_size = 128

    def __init__(self, *, num_in_ch: int = 3, num_feat: int = 64) -> None:
        super().__init__()
        nf = num_feat
        self.conv0_0 = nn.Conv2d(num_in_ch, nf, 3, 1, 1)
        self.conv0_1 = nn.Conv2d(nf, nf, 4, 2, 1, bias=False)
        self.bn0_1 = nn.BatchNorm2d(nf)
        widths = [nf, nf * 2, nf * 4, nf * 8, nf * 8]
        for i in range(1, 5):
            setattr(self, f"conv{i}_0", nn.Conv2d(widths[i - 1], widths[i], 3, 1, 1, bias=False))
            setattr(self, f"bn{i}_0", nn.BatchNorm2d(widths[i]))
            setattr(self, f"conv{i}_1", nn.Conv2d(widths[i], widths[i], 4, 2, 1, bias=False))
            setattr(self, f"bn{i}_1", nn.BatchNorm2d(widths[i]))
        self.linear1 = nn.Linear(widths[4] * 4 * 4, 100)
        self.linear2 = nn.Linear(100, 1)
        self.lrelu = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(f"VGGStyleDiscriminator takes 128x128 input, not {x.shape[-1]}x{x.shape[-2]}")
        feat = self.lrelu(self.conv0_0(x))
        feat = self.lrelu(self.bn0_1(self.conv0_1(feat)))
        for i in range(1, 5):
            for j in (0, 1):
                feat = self.lrelu(getattr(self, f"bn{i}_{j}")(getattr(self, f"conv{i}_{j}")(feat)))
        return self.linear2(self.lrelu(self.linear1(feat.flatten(1))))


class SRGANDiscriminator(nn.Module):
    """SRGAN's discriminator (Ledig et al., CVPR 2017, Fig. 4).

    ``conv3x3 64 s1``, LeakyReLU(0.2), then seven ``conv3x3, BN, LeakyReLU(0.2)`` blocks with (channels, stride)
    (64,2), (128,1), (128,2), (256,1), (256,2), (512,1), (512,2); flatten; ``linear1 -> 1024``, LeakyReLU(0.2);
    ``linear2 -> 1``. No max-pooling. Returns one raw logit per image (N×1): the paper's final sigmoid is left to
    the loss (``BCEWithLogits`` is numerically safer).

    Args:
        input_size: side of the square input crop in pixels (96 in the paper); the four stride-2 convs
            reduce it to ``ceil(input_size / 16)``, which sizes ``linear1``.
        num_in_ch: input channels (3, RGB).
        num_feat: width of the first block (64); later blocks use 2×, 4× and 8× that.

    The convs that feed a BatchNorm have no bias (BN's shift makes it redundant; the paper does not say):
    23,563,649 parameters at 96×96 (23,565,505 with those biases), the paper's "~23.6M". There are no official
    weights, so the key names (``conv_first``, ``body.N.{0,1}``, ``linear1``, ``linear2``) are ours.
    """

    def __init__(self, *, input_size: int = 96, num_in_ch: int = 3, num_feat: int = 64) -> None:
        super().__init__()
        if input_size < 16:
            raise ValueError(f"SRGANDiscriminator input_size must be at least 16, not {input_size}")
        self.input_size = input_size
        nf = num_feat
        self.conv_first = nn.Conv2d(num_in_ch, nf, 3, 1, 1)
        plan = ((nf, 2), (nf * 2, 1), (nf * 2, 2), (nf * 4, 1), (nf * 4, 2), (nf * 8, 1), (nf * 8, 2))
        blocks: list[nn.Module] = []
        in_ch, side = nf, input_size
        for out_ch, stride in plan:
            blocks.append(
                nn.Sequential(
                    nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False),
                    nn.BatchNorm2d(out_ch),
                    nn.LeakyReLU(0.2, inplace=True),
                )
            )
            in_ch, side = out_ch, (side - 1) // stride + 1  # k3 p1: ceil(side / stride)
        self.body = nn.Sequential(*blocks)
        self.linear1 = nn.Linear(in_ch * side * side, 1024)
        self.linear2 = nn.Linear(1024, 1)
        self.lrelu = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.input_size, self.input_size):
            size = self.input_size
            raise ValueError(f"SRGANDiscriminator takes {size}x{size} input, not {x.shape[-1]}x{x.shape[-2]}")
        feat = self.body(self.lrelu(self.conv_first(x)))
        return self.linear2(self.lrelu(self.linear1(feat.flatten(1))))


VGGArch = Literal["vgg16", "vgg19"]

# torchvision ``vgg16``/``vgg19`` ``features``: conv widths per block; a max-pool ends each block.
_VGG_BLOCKS: dict[str, tuple[tuple[int, ...], ...]] = {
    "vgg16": ((64, 64), (128, 128), (256,) * 3, (512,) * 3, (512,) * 3),
    "vgg19": ((64, 64), (128, 128), (256,) * 4, (512,) * 4, (512,) * 4),
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg_layer_names(arch: VGGArch) -> tuple[str, ...]:
    """Names of the ``features`` entries in order: ``conv1_1, relu1_1, ..., pool5`` (torchvision indices)."""
    if arch not in _VGG_BLOCKS:
        raise ValueError(f"unknown VGG arch {arch!r}; known: {', '.join(_VGG_BLOCKS)}")
    names = []
    for b, block in enumerate(_VGG_BLOCKS[arch], start=1):
        for c in range(1, len(block) + 1):
            names += [f"conv{b}_{c}", f"relu{b}_{c}"]
        names.append(f"pool{b}")
    return tuple(names)


VGG16_LAYERS = vgg_layer_names("vgg16")
VGG19_LAYERS = vgg_layer_names("vgg19")
_VGG_CONV_INDICES = {  # which ``features.N`` hold weights, to tell a VGG16 state dict from a VGG19 one
    arch: frozenset(i for i, name in enumerate(vgg_layer_names(arch)) if name.startswith("conv"))
    for arch in _VGG_BLOCKS
}


class VGGFeatureExtractor(nn.Module):
    """VGG16 or VGG19 cut after the deepest requested layer; returns ``{layer: features}``.

    Layer names follow the blocks: ``conv{block}_{n}``, ``relu{block}_{n}``, ``pool{block}`` (e.g. ``conv5_4``
    is ESRGAN's VGG19 feature *before* the ReLU, ``relu5_4`` SRGAN's after it, ``relu2_2`` Johnson's VGG16 one).
    Inputs are RGB in [0, 1], normalised with the ImageNet mean/std when ``use_input_norm`` (torchvision's
    convention). The ``features`` indices match torchvision's ``vgg16``/``vgg19`` so their state dicts load
    via :meth:`load_vgg`. Parameters are frozen: the network only measures.
    """

    def __init__(self, *, arch: VGGArch = "vgg19", layers: Sequence[str], use_input_norm: bool = True) -> None:
        super().__init__()
        names = vgg_layer_names(arch)
        unknown = [name for name in layers if name not in names]
        if unknown or not layers:
            raise ValueError(f"unknown {arch.upper()} layers {unknown}; known: {', '.join(names)}")
        self.arch = arch
        self.layer_names = names
        self.layers = tuple(layers)
        last = max(names.index(name) for name in layers)
        widths = _VGG_BLOCKS[arch]
        modules: list[nn.Module] = []
        in_ch = 3
        for name in names[: last + 1]:
            if name.startswith("conv"):
                b, c = (int(v) for v in name[4:].split("_"))
                out_ch = widths[b - 1][c - 1]
                modules.append(nn.Conv2d(in_ch, out_ch, 3, padding=1))
                in_ch = out_ch
            elif name.startswith("relu"):
                modules.append(nn.ReLU(inplace=False))  # in-place would overwrite a returned conv output
            else:
                modules.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*modules)
        for conv in self.features:
            if isinstance(conv, nn.Conv2d):  # torchvision's VGG initialisation: features keep their scale
                nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(conv.bias)
        self.use_input_norm = use_input_norm
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.use_input_norm:
            x = (x - self.mean) / self.std
        out: dict[str, torch.Tensor] = {}
        for name, module in zip(self.layer_names, self.features, strict=False):
            x = module(x)
            if name in self.layers:
                out[name] = x
        return out

    def load_vgg(self, state_dict: Mapping[str, Any] | str | Path) -> None:
        """Load ImageNet weights (torchvision ``features.N.*`` keys; ``classifier.*`` is ignored).

        Raises :class:`~upscale.errors.WeightsError` for a missing or mis-shaped tensor, and for a complete
        state dict of the other VGG (its conv indices differ, although the first blocks would load).
        """
        name = self.arch.upper()
        if isinstance(state_dict, (str, Path)):
            from ..models.loading import read_state_dict

            state_dict = read_state_dict(state_dict)
        conv_indices = {
            int(k.split(".")[1])
            for k in state_dict
            if k.startswith("features.") and k.endswith(".weight") and k.split(".")[1].isdigit()
        }
        for other, indices in _VGG_CONV_INDICES.items():
            if other != self.arch and conv_indices == indices:
                raise WeightsError(f"a {other.upper()} state dict, not {name}")
        own = self.features.state_dict()
        wanted = {k: state_dict[f"features.{k}"] for k in own if f"features.{k}" in state_dict}
        missing = [f"features.{k}" for k in own if k not in wanted]
        if missing:
            raise WeightsError(f"not a {name} state dict (missing {', '.join(missing[:3])})")
        try:
            self.features.load_state_dict(wanted)
        except RuntimeError as exc:
            raise WeightsError(f"not a {name} state dict ({str(exc).strip().splitlines()[-1].strip()})") from None


class VGG19FeatureExtractor(VGGFeatureExtractor):
    """:class:`VGGFeatureExtractor` fixed to VGG19, defaulting to ESRGAN's ``conv5_4`` (before the ReLU)."""

    def __init__(self, *, layers: Sequence[str] = ("conv5_4",), use_input_norm: bool = True) -> None:
        super().__init__(arch="vgg19", layers=layers, use_input_norm=use_input_norm)

    def load_vgg19(self, state_dict: Mapping[str, Any] | str | Path) -> None:
        """Load ImageNet VGG19 weights; the same as :meth:`VGGFeatureExtractor.load_vgg`."""
        self.load_vgg(state_dict)

"""Networks used only while training: ESRGAN's VGG-style discriminator and a VGG19 feature extractor.

Neither is a super-resolution model, so neither is in the model registry. Both are built from scratch
with random weights; the VGG19 loads an ImageNet state dict the user supplies (torchvision's
``features.N.weight`` names), nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import WeightsError


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


# VGG19 ``features``: conv widths per block; a max-pool ends each block.
_VGG19_BLOCKS = ((64, 64), (128, 128), (256, 256, 256, 256), (512, 512, 512, 512), (512, 512, 512, 512))
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _vgg19_layer_names() -> list[str]:
    """Names of the ``features`` entries in order: ``conv1_1, relu1_1, ..., pool5`` (torchvision indices)."""
    names = []
    for b, block in enumerate(_VGG19_BLOCKS, start=1):
        for c in range(1, len(block) + 1):
            names += [f"conv{b}_{c}", f"relu{b}_{c}"]
        names.append(f"pool{b}")
    return names


VGG19_LAYERS = tuple(_vgg19_layer_names())


class VGG19FeatureExtractor(nn.Module):
    """VGG19 cut after the deepest requested layer; returns ``{layer: features}``.

    Ask for ``conv5_4`` to get ESRGAN's perceptual features *before* the ReLU, ``relu5_4`` for after.
    Inputs are RGB in [0, 1], normalised with the ImageNet mean/std when ``use_input_norm``. The ``features``
    indices match torchvision's ``vgg19`` so its state dict loads via :meth:`load_vgg19`. Parameters are
    frozen: the network only measures.
    """

    def __init__(self, *, layers: Sequence[str] = ("conv5_4",), use_input_norm: bool = True) -> None:
        super().__init__()
        unknown = [name for name in layers if name not in VGG19_LAYERS]
        if unknown or not layers:
            raise ValueError(f"unknown VGG19 layers {unknown}; known: {', '.join(VGG19_LAYERS)}")
        self.layers = tuple(layers)
        last = max(VGG19_LAYERS.index(name) for name in layers)
        modules: list[nn.Module] = []
        in_ch = 3
        for name in VGG19_LAYERS[: last + 1]:
            if name.startswith("conv"):
                b, c = (int(v) for v in name[4:].split("_"))
                out_ch = _VGG19_BLOCKS[b - 1][c - 1]
                modules.append(nn.Conv2d(in_ch, out_ch, 3, padding=1))
                in_ch = out_ch
            elif name.startswith("relu"):
                modules.append(nn.ReLU(inplace=False))  # in-place would overwrite a returned conv output
            else:
                modules.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*modules)
        self.use_input_norm = use_input_norm
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.use_input_norm:
            x = (x - self.mean) / self.std
        out: dict[str, torch.Tensor] = {}
        for name, module in zip(VGG19_LAYERS, self.features, strict=False):
            x = module(x)
            if name in self.layers:
                out[name] = x
        return out

    def load_vgg19(self, state_dict: Mapping[str, Any] | str | Path) -> None:
        """Load ImageNet VGG19 weights (torchvision ``features.N.*`` keys; ``classifier.*`` is ignored)."""
        if isinstance(state_dict, (str, Path)):
            from ..models.loading import read_state_dict

            state_dict = read_state_dict(state_dict)
        own = self.features.state_dict()
        wanted = {k: state_dict[f"features.{k}"] for k in own if f"features.{k}" in state_dict}
        missing = [f"features.{k}" for k in own if k not in wanted]
        if missing:
            raise WeightsError(f"not a VGG19 state dict (missing {', '.join(missing[:3])})")
        try:
            self.features.load_state_dict(wanted)
        except RuntimeError as exc:
            raise WeightsError(f"not a VGG19 state dict ({str(exc).strip().splitlines()[-1].strip()})") from None

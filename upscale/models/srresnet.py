"""SRResNet / SRGAN (Ledig et al., "Photo-Realistic Single Image Super-Resolution Using a Generative
Adversarial Network", CVPR 2017), and BasicSR's modified SRResNet (MSRResNet).

SRResNet and the SRGAN generator are the same network (Fig. 4 of the paper); SRGAN only trains it
further with a VGG content loss and the adversarial loss of
:class:`~upscale.models.nets.srresnet.Discriminator`. RGB low-resolution input in [0, 1]:
``conv 9×9 (64), PReLU`` (=A) -> 16 residual blocks (``conv 3×3, BN, PReLU, conv 3×3, BN`` + input)
-> ``conv 3×3, BN`` + A -> per ×2: ``conv 3×3 (256), PixelShuffle(2), PReLU`` -> ``conv 9×9 (3)``.
Each PReLU has a single slope (1,549,462 parameters at ×4). The paper scales its HR targets to
[-1, 1]; here the output is in [0, 1] like the input, which is the same network with the last
convolution's weights halved and 0.5 added to its bias. The paper is ×4 only; ×2 uses one sub-pixel
stage and ×3 one ``PixelShuffle(3)`` stage. The authors released no weights, so the key names are
this module's own.

MSRResNet is a different architecture with the same name stem (no batch norm, 3×3 first conv,
LeakyReLU(0.1), bilinear-upsampled input added to the output); it is a separate model here,
``msrresnet``, with BasicSR's key names (``conv_first``, ``body.N.conv1``, ``upconv1``, ``conv_hr``,
``conv_last``), so its released ``.pth`` files load as they are.
"""

from __future__ import annotations

import re
from typing import Any

from .registry import ModelSpec, StateDict


def _count(sd: StateDict, prefix: str) -> int:
    return len({m.group(1) for k in sd if (m := re.match(rf"{re.escape(prefix)}\.(\d+)\.", k))})


def detect(sd: StateDict) -> bool:
    return "conv1.weight" in sd and "blocks.0.bn1.running_mean" in sd and "upsample.0.conv.weight" in sd


def hparams_from(sd: StateDict) -> dict[str, Any]:
    c = int(sd["conv1.weight"].shape[0])
    scale = 1
    for i in range(_count(sd, "upsample")):
        scale *= round((sd[f"upsample.{i}.conv.weight"].shape[0] / c) ** 0.5)
    return {"scale": scale, "num_features": c, "num_blocks": _count(sd, "blocks")}


_MMSR_NAMES = {"recon_trunk.": "body.", "HRconv.": "conv_hr."}


def convert_msrresnet(sd: StateDict) -> dict[str, Any]:
    """BasicSR's 2019 (mmsr) files say ``recon_trunk`` and ``HRconv`` where later ones say ``body`` and ``conv_hr``."""
    out = {}
    for key, value in sd.items():
        old = next((o for o in _MMSR_NAMES if key.startswith(o)), None)
        out[_MMSR_NAMES[old] + key[len(old) :] if old else key] = value
    return out


def detect_msrresnet(sd: StateDict) -> bool:
    return (
        "conv_first.weight" in sd
        and "body.0.conv1.weight" in sd
        and "upconv1.weight" in sd
        and "conv_hr.weight" in sd
        and "conv_last.weight" in sd
    )


def hparams_from_msrresnet(sd: StateDict) -> dict[str, Any]:
    c, in_ch = (int(n) for n in sd["conv_first.weight"].shape[:2])
    r = round((sd["upconv1.weight"].shape[0] / c) ** 0.5)
    return {
        "scale": 4 if "upconv2.weight" in sd else r,
        "in_channels": in_ch,
        "out_channels": int(sd["conv_last.weight"].shape[0]),
        "num_features": c,
        "num_blocks": _count(sd, "body"),
    }


def _spec(name: str, title: str) -> ModelSpec:
    return ModelSpec(
        name=name,
        build="upscale.models.nets.srresnet:SRResNet",
        scales=(2, 3, 4),
        title=title,
        colour="rgb",
        input_kind="lr",
        value_range=1.0,
        # In LR pixels: 4 (9×9 in) + 2 per residual block (32) + 1 (conv after the blocks) + 1 and
        # 1/2 for the sub-pixel convs + ceil(4 / scale) for the 9×9 output conv: at most 40.
        margin_px=40,
        exact_tiling=True,  # batch norm in eval mode is a fixed affine map
        default_hparams={"num_features": 64, "num_blocks": 16},
        detect=detect,
        hparams_from=hparams_from,
        params={2: 1_401_749, 3: 1_586_389, 4: 1_549_462},
    )


SRRESNET_SPEC = _spec("srresnet", "SRResNet, from Photo-Realistic SISR Using a GAN (CVPR 2017)")
SRGAN_SPEC = _spec("srgan", "SRGAN generator: Photo-Realistic SISR Using a GAN (CVPR 2017)")

MSRRESNET_SPEC = ModelSpec(
    name="msrresnet",
    build="upscale.models.nets.srresnet:MSRResNet",
    scales=(2, 3, 4),
    title="Modified SRResNet (BasicSR): SRResNet without batch norm",
    colour="rgb",
    input_kind="lr",
    value_range=1.0,
    # In LR pixels: 1 (conv_first) + 2 per block (32) + 1 (upconv1) + at most 1/2 each for upconv2,
    # conv_hr and conv_last at ≥2×: under 36; the bilinear skip reaches only 1.
    margin_px=36,
    exact_tiling=True,
    default_hparams={"num_features": 64, "num_blocks": 16},
    detect=detect_msrresnet,
    convert=convert_msrresnet,
    hparams_from=hparams_from_msrresnet,
    params={2: 1_369_859, 3: 1_554_499, 4: 1_517_571},
)

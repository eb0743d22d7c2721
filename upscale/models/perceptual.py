"""The super-resolution transform network of Johnson, Alahi and Fei-Fei, "Perceptual Losses for
Real-Time Style Transfer and Super-Resolution" (ECCV 2016).

RGB low-resolution input; most of the work happens at low resolution:
``conv 9×9 (64), BN, ReLU`` -> B residual blocks (``conv 3×3, BN, ReLU, conv 3×3, BN`` + identity;
B = 4) -> log2(scale) upsampling stages of 64 channels with BN and ReLU -> ``conv 9×9 (3)`` ->
scaled tanh, so the output stays in the valid pixel range (here ``(tanh + 1) / 2`` for [0, 1]).

Upsampling stages. The paper upsamples with 3×3 transposed convolutions of stride 2
(``upsampler="deconv"``). The default here is ``upsampler="nearest"``: nearest-neighbour ×2 followed
by a 3×3 convolution of stride 1, which avoids the checkerboard artefacts of strided transposed
convolutions. Both have the same number of
parameters (401,859 at ×4, 438,915 at ×8) but are not weight-compatible, so the two use different
key names (``up.N.conv`` vs ``up.N.deconv``) and a file says which one it holds.

The network was trained with a feature-reconstruction loss on VGG-16 ``relu2_2`` plus total
variation, so it scores below bicubic in PSNR: it is a perceptual model.
"""

from __future__ import annotations

import re
from typing import Any

from .registry import ModelSpec, StateDict


def detect(sd: StateDict) -> bool:
    return (
        "conv_in.weight" in sd
        and "bn_in.running_mean" in sd
        and "conv_out.weight" in sd
        and ("up.0.conv.weight" in sd or "up.0.deconv.weight" in sd)
    )


def hparams_from(sd: StateDict) -> dict[str, Any]:
    stages = len({m.group(1) for k in sd if (m := re.match(r"up\.(\d+)\.", k))})
    blocks = len({m.group(1) for k in sd if (m := re.match(r"blocks\.(\d+)\.", k))})
    return {
        "scale": 2**stages,
        "num_features": int(sd["conv_in.weight"].shape[0]),
        "num_blocks": blocks,
        "upsampler": "deconv" if "up.0.deconv.weight" in sd else "nearest",
    }


PERCEPTUAL_SPEC = ModelSpec(
    name="perceptual",
    build="upscale.models.nets.perceptual:PerceptualSR",
    scales=(4, 8),
    title="Perceptual Losses for Real-Time Style Transfer and Super-Resolution (ECCV 2016)",
    colour="rgb",
    input_kind="lr",
    value_range=1.0,
    # In LR pixels: 4 (9×9 in) + 2 per residual block (8) + at most 1 + 1/2 + 1/4 for the ×2
    # stages + 4 / scale for the 9×9 output conv: under 15 at ×4 and ×8 with 4 blocks.
    margin_px=16,
    exact_tiling=True,  # batch norm in eval mode is a fixed affine map
    default_hparams={"num_features": 64, "num_blocks": 4, "upsampler": "nearest"},
    detect=detect,
    hparams_from=hparams_from,
    params={4: 401_859, 8: 438_915},
)

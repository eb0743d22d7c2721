"""RLFN: Residual Local Feature Network (Kong et al., CVPRW 2022, NTIRE 2022 efficient SR).

Key names follow the authors' model zoo (``conv_1``, ``block_N.c1_r``, ``block_N.esa.conv1``, ...),
so their ``.pth`` files load as they are. As in the released weights (not the paper's figure), the
block's activations are LeakyReLU(0.05) and the network works on RGB in [0, 255].
"""

from __future__ import annotations

import re
from typing import Any

from .registry import ModelSpec, StateDict


def detect(sd: StateDict) -> bool:
    return "conv_1.weight" in sd and "block_1.esa.conv_f.weight" in sd and "upsampler.0.weight" in sd


def hparams_from(sd: StateDict) -> dict[str, Any]:
    channels, in_ch = sd["conv_1.weight"].shape[:2]
    up = sd["upsampler.0.weight"].shape[0]
    num_blocks = len({m.group(1) for k in sd if (m := re.match(r"block_(\d+)\.", k))})
    mid = sd["block_1.c1_r.weight"].shape[0]
    scale = round((up / in_ch) ** 0.5)
    return {
        "scale": scale,
        "in_channels": in_ch,
        "out_channels": in_ch,
        "channels": channels,
        "mid_channels": None if mid == channels else mid,
        "num_blocks": num_blocks,
        "esa_channels": sd["block_1.esa.conv1.weight"].shape[0],
    }


def _spec(name: str, channels: int, title: str, accepts, params: dict[int, int]) -> ModelSpec:
    return ModelSpec(
        name=name,
        build="upscale.models.nets.rlfn:RLFN",
        scales=(2, 3, 4),
        title=title,
        colour="rgb",
        input_kind="lr",
        value_range=255.0,
        # Each ESA gates with a mask pooled over a strided grid, so the result depends a little on
        # where a tile starts; 6 blocks of 3×3 convs plus the ESA reach give a wide margin.
        margin_px=32,
        exact_tiling=False,
        min_size_px=16,
        auto_bf16=True,  # official x4: Set5 32.24 dB in fp32 and bf16, Set14 28.62 / 28.61
        default_hparams={"channels": channels},
        detect=lambda sd: detect(sd) and accepts(sd["conv_1.weight"].shape[0]),
        hparams_from=hparams_from,
        params=params,
    )


# ``rlfn`` also takes the pruned NTIRE file (46 features, 48 mid channels, 4 blocks).
RLFN_SPEC = _spec(
    "rlfn",
    52,
    "Residual Local Feature Network (CVPRW 2022)",
    lambda c: c != 48,
    {2: 526_856, 3: 533_891, 4: 543_740},
)
RLFN_S_SPEC = _spec(
    "rlfn-s",
    48,
    "Residual Local Feature Network, small (CVPRW 2022)",
    lambda c: c == 48,
    {2: 454_620, 3: 461_115, 4: 470_208},
)

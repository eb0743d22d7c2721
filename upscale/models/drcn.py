"""DRCN: Deeply-Recursive Convolutional Network (Kim, Lee and Lee, CVPR 2016).

Works on the Y channel of a bicubic-upsampled image, like SRCNN and VDSR. Three sub-networks, all
3×3 convolutions with F filters and padding 1:

* embedding net: ``H_-1 = ReLU(conv(x))``, ``H_0 = ReLU(conv(H_-1))``;
* inference net: ONE convolution applied D times with the same weights, ``H_d = ReLU(W * H_{d-1} + b)``;
* reconstruction net, shared by every recursion: ``ReLU(conv)`` then a linear conv to one channel.

Every intermediate ``H_d`` is reconstructed and the input is added back (skip connection), giving D
predictions ``y_d = x + f3(H_d)``; the output is their learned weighted sum ``Σ_d w_d · y_d``. The
paper's equation also puts a ReLU on the last reconstruction layer; it is kept linear here because
with the skip connection the residual it predicts must be able to go negative. 2 + D + 2 = 20
convolutions give a 41×41 receptive field.
"""

from __future__ import annotations

from typing import Any

from .registry import ModelSpec, StateDict


def detect(sd: StateDict) -> bool:
    keys = ("embedding.0.weight", "embedding.2.weight", "inference.weight", "reconstruction.2.weight", "w")
    return all(k in sd for k in keys) and sd["embedding.0.weight"].shape[1] == 1


def hparams_from(sd: StateDict) -> dict[str, Any]:
    """F and D from the shapes; no scale (one network per scale, but the weights do not say which)."""
    return {"num_filters": int(sd["embedding.0.weight"].shape[0]), "num_recursions": int(sd["w"].numel())}


DRCN_SPEC = ModelSpec(
    name="drcn",
    build="upscale.models.nets.drcn:DRCN",
    scales=(2, 3, 4),
    title="Deeply-Recursive Convolutional Network for Image Super-Resolution (CVPR 2016)",
    colour="y",
    input_kind="bicubic",
    value_range=1.0,
    # 20 3×3 convs reach 20 high-resolution pixels: at most 20 / scale LR pixels, plus 2 LR pixels
    # of bicubic support; 24 covers even scale 1.
    margin_px=24,
    exact_tiling=True,
    any_scale=True,
    default_hparams={"num_filters": 256, "num_recursions": 16},
    detect=detect,
    hparams_from=hparams_from,
    params={2: 1_775_121, 3: 1_775_121, 4: 1_775_121},
)

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

import torch
from torch import nn

from .registry import ModelSpec, StateDict


class DRCN(nn.Module):
    """DRCN with ``num_filters`` (F, 256) filters and ``num_recursions`` (D, 16)."""

    def __init__(self, *, scale: int = 3, num_filters: int = 256, num_recursions: int = 16) -> None:
        super().__init__()
        self.scale = scale  # scale-free network: the input is already upsampled by ``scale``
        f = num_filters
        self.num_recursions = num_recursions
        self.embedding = nn.Sequential(
            nn.Conv2d(1, f, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(f, f, 3, padding=1), nn.ReLU(inplace=True)
        )
        self.inference = nn.Conv2d(f, f, 3, padding=1)
        """The single recursive convolution, applied ``num_recursions`` times."""
        self.reconstruction = nn.Sequential(
            nn.Conv2d(f, f, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(f, 1, 3, padding=1)
        )
        self.w = nn.Parameter(torch.full((num_recursions,), 1.0 / num_recursions))
        """Ensemble weights w_d of the D intermediate predictions."""
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The paper's initialisation: He for all but the recursive conv, which starts as the
        identity (zero except each channel's connection to itself); biases zero; w_d = 1/D."""
        for conv in (*self.embedding, *self.reconstruction):
            if isinstance(conv, nn.Conv2d):
                nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
                nn.init.zeros_(conv.bias)
        with torch.no_grad():
            self.inference.weight.zero_()
            centre = self.inference.kernel_size[0] // 2
            idx = torch.arange(self.inference.out_channels)
            self.inference.weight[idx, idx, centre, centre] = 1.0
            self.inference.bias.zero_()
            self.w.fill_(1.0 / self.num_recursions)

    def _recursions(self, x: torch.Tensor):
        h = self.embedding(x)
        for _ in range(self.num_recursions):
            h = torch.relu(self.inference(h))
            yield x + self.reconstruction(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The ensemble output ``Σ_d w_d · y_d``; the intermediate predictions are not kept."""
        out = torch.zeros_like(x)
        for w_d, y_d in zip(self.w, self._recursions(x), strict=True):
            out = out + w_d * y_d
        return out

    def forward_all(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(ensemble, predictions)`` where ``predictions`` is N×D×1×H×W, for recursive supervision."""
        preds = torch.stack(list(self._recursions(x)), dim=1)
        out = (preds * self.w.view(1, -1, 1, 1, 1).to(preds.dtype)).sum(dim=1)
        return out, preds


def detect(sd: StateDict) -> bool:
    keys = ("embedding.0.weight", "embedding.2.weight", "inference.weight", "reconstruction.2.weight", "w")
    return all(k in sd for k in keys) and sd["embedding.0.weight"].shape[1] == 1


def hparams_from(sd: StateDict) -> dict[str, Any]:
    """F and D from the shapes; no scale (one network per scale, but the weights do not say which)."""
    return {"num_filters": int(sd["embedding.0.weight"].shape[0]), "num_recursions": int(sd["w"].numel())}


DRCN_SPEC = ModelSpec(
    name="drcn",
    build=DRCN,
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
)

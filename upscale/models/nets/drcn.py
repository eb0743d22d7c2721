"""The DRCN network (:mod:`upscale.models.drcn` describes it and reads its checkpoints)."""

from __future__ import annotations

import torch
from torch import nn


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

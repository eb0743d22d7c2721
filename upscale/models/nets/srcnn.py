"""The SRCNN network (:mod:`upscale.models.srcnn` describes it and reads its checkpoints)."""

from __future__ import annotations

import torch
from torch import nn


class SRCNN(nn.Module):
    """SRCNN f1-f2-f3 with n1/n2 filters; input and output are Y in [0, 1] at the output size."""

    def __init__(
        self,
        *,
        scale: int = 3,
        kernel_sizes: tuple[int, int, int] = (9, 1, 5),
        n1: int = 64,
        n2: int = 32,
    ) -> None:
        super().__init__()
        self.scale = scale  # the network itself is scale-free; the caller pre-upsamples by ``scale``
        f1, f2, f3 = kernel_sizes
        self.kernel_sizes = (f1, f2, f3)
        self.conv1 = nn.Conv2d(1, n1, f1, padding=f1 // 2, padding_mode="replicate")
        self.conv2 = nn.Conv2d(n1, n2, f2, padding=f2 // 2, padding_mode="replicate")
        self.conv3 = nn.Conv2d(n2, 1, f3, padding=f3 // 2, padding_mode="replicate")
        self.relu = nn.ReLU(inplace=True)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The paper's initialisation: weights from N(0, 0.001²), biases zero."""
        for conv in (self.conv1, self.conv2, self.conv3):
            nn.init.normal_(conv.weight, mean=0.0, std=1e-3)
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.conv1(x))
        x = self.relu(self.conv2(x))
        return self.conv3(x)

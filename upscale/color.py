"""BT.601 YCbCr as used in the super-resolution literature (MATLAB ``rgb2ycbcr``/``ycbcr2rgb``).

Values are floats in [0, 1] on both sides. Y covers 16/255..235/255 (studio swing), as MATLAB gives
for ``double`` input. This is not OpenCV's ``COLOR_RGB2YCrCb``, which is the full-range JPEG transform.
"""

from __future__ import annotations

import numpy as np
import torch

_RGB_TO_YCBCR = np.array([[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]]) / 255.0
_OFFSET = np.array([16.0, 128.0, 128.0]) / 255.0
_YCBCR_TO_RGB = np.linalg.inv(_RGB_TO_YCBCR)


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """H×W×3 RGB in [0, 1] -> H×W×3 YCbCr in [0, 1] (float32 unless float64 was given)."""
    dtype = rgb.dtype if rgb.dtype == np.float64 else np.float32
    return (rgb.astype(np.float64, copy=False) @ _RGB_TO_YCBCR.T + _OFFSET).astype(dtype, copy=False)


def ycbcr_to_rgb(ycbcr: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_ycbcr`; not clipped."""
    dtype = ycbcr.dtype if ycbcr.dtype == np.float64 else np.float32
    return ((ycbcr.astype(np.float64, copy=False) - _OFFSET) @ _YCBCR_TO_RGB.T).astype(dtype, copy=False)


def rgb_to_y(rgb: np.ndarray) -> np.ndarray:
    """H×W×3 RGB in [0, 1] -> H×W luma Y in [16/255, 235/255]."""
    dtype = rgb.dtype if rgb.dtype == np.float64 else np.float32
    return (rgb.astype(np.float64, copy=False) @ _RGB_TO_YCBCR[0] + _OFFSET[0]).astype(dtype, copy=False)


def _as_tensor(m: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(m, dtype=like.dtype, device=like.device)


def rgb_to_ycbcr_torch(rgb: torch.Tensor) -> torch.Tensor:
    """N×3×H×W RGB in [0, 1] -> N×3×H×W YCbCr in [0, 1]."""
    out = torch.einsum("nchw,dc->ndhw", rgb, _as_tensor(_RGB_TO_YCBCR, rgb))
    return out + _as_tensor(_OFFSET, rgb).view(1, 3, 1, 1)


def ycbcr_to_rgb_torch(ycbcr: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_ycbcr_torch`; not clipped."""
    x = ycbcr - _as_tensor(_OFFSET, ycbcr).view(1, 3, 1, 1)
    return torch.einsum("nchw,dc->ndhw", x, _as_tensor(_YCBCR_TO_RGB, ycbcr))

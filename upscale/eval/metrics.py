"""PSNR and SSIM as the super-resolution literature computes them.

Both take images on the 0..255 scale (uint8, or floats), H×W or H×W×C, and work in float64.
``y_only`` compares the BT.601 luma that MATLAB's ``rgb2ycbcr`` gives (16..235), which is what
published tables report; ``crop_border`` drops that many pixels from every edge first (the
convention is the scale factor). SSIM follows Wang et al.'s MATLAB ``ssim_index``: an 11×11
Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03, L = 255, 'valid' filtering and the mean of
the map, with no down-sampling (the later ``ssim.m`` down-samples large images; published SR
numbers do not).
"""

from __future__ import annotations

import math

import numpy as np

from ..color import rgb_to_y

__all__ = ["gaussian_window", "psnr", "ssim", "to_y"]

_L = 255.0
_C1 = (0.01 * _L) ** 2
_C2 = (0.03 * _L) ** 2


def to_y(img: np.ndarray, *, rounded: bool = False) -> np.ndarray:
    """H×W×3 RGB on 0..255 -> H×W float64 Y on 0..255 (16..235); H×W or H×W×1 is taken as Y already.

    ``rounded`` rounds Y to integers as MATLAB's ``rgb2ycbcr`` does on uint8 input; BasicSR's
    ``to_y_channel`` does not round. The two differ by about 0.01 dB.
    """
    arr = np.asarray(img)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        return arr.astype(np.float64)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected H×W or H×W×3, got shape {arr.shape}")
    y = rgb_to_y(arr.astype(np.float64) / _L) * _L
    return np.round(y) if rounded else y


def _prepare(a: np.ndarray, b: np.ndarray, crop_border: int, y_only: bool) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    if crop_border < 0:
        raise ValueError("crop_border must be >= 0")
    if y_only:
        a, b = to_y(a), to_y(b)
    a, b = a.astype(np.float64), b.astype(np.float64)
    if crop_border:
        if min(a.shape[:2]) <= 2 * crop_border:
            raise ValueError(f"a {a.shape[1]}x{a.shape[0]} image has nothing left after cropping {crop_border} px")
        a = a[crop_border:-crop_border, crop_border:-crop_border]
        b = b[crop_border:-crop_border, crop_border:-crop_border]
    return a, b


def psnr(a: np.ndarray, b: np.ndarray, *, crop_border: int = 0, y_only: bool = False) -> float:
    """``10·log10(255² / MSE)`` in dB over all pixels (and channels); ``inf`` for identical images."""
    x, y = _prepare(a, b, crop_border, y_only)
    mse = float(np.mean((x - y) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(_L**2 / mse)


def gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    """1-D normalised Gaussian; its outer product with itself is MATLAB's ``fspecial('gaussian', size, sigma)``."""
    t = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(t**2) / (2 * sigma**2))
    return g / g.sum()


def _filter_valid(img: np.ndarray, g: np.ndarray) -> np.ndarray:
    """2-D 'valid' correlation with the separable window ``g ⊗ g`` (MATLAB ``filter2(w, img, 'valid')``)."""
    k = g.size
    rows = np.lib.stride_tricks.sliding_window_view(img, k, axis=0) @ g
    return np.lib.stride_tricks.sliding_window_view(rows, k, axis=1) @ g


def _ssim_plane(x: np.ndarray, y: np.ndarray) -> float:
    g = gaussian_window()
    if min(x.shape) < g.size:
        raise ValueError(f"SSIM needs at least {g.size}x{g.size} pixels, got {x.shape[1]}x{x.shape[0]}")
    mu_x, mu_y = _filter_valid(x, g), _filter_valid(y, g)
    var_x = _filter_valid(x * x, g) - mu_x**2
    var_y = _filter_valid(y * y, g) - mu_y**2
    cov = _filter_valid(x * y, g) - mu_x * mu_y
    num = (2 * mu_x * mu_y + _C1) * (2 * cov + _C2)
    den = (mu_x**2 + mu_y**2 + _C1) * (var_x + var_y + _C2)
    return float(np.mean(num / den))


def ssim(a: np.ndarray, b: np.ndarray, *, crop_border: int = 0, y_only: bool = False) -> float:
    """Mean SSIM (MATLAB ``ssim_index``); for several channels, the mean of the per-channel values."""
    x, y = _prepare(a, b, crop_border, y_only)
    if x.ndim == 2:
        return _ssim_plane(x, y)
    return float(np.mean([_ssim_plane(x[..., c], y[..., c]) for c in range(x.shape[2])]))

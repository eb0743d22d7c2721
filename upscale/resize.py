"""MATLAB-compatible bicubic ``imresize`` (antialiased when shrinking), in torch.

The standard SR protocol makes low-resolution images with MATLAB's ``imresize(HR, 1/s, 'bicubic')``
and pre-upsampling models (SRCNN, DRCN) were trained on MATLAB's bicubic upsampling, so published
numbers are only reproducible with the same kernel: Keys cubic with a = -0.5, the kernel stretched
by 1/scale when shrinking, symmetric boundary, sample positions ``x/scale + 0.5 (1 - 1/scale)``.
``torch.nn.functional.interpolate`` uses a = -0.75 and does not antialias, so it is not the same.

The resize along each axis is a matrix product with a cached banded weight matrix, which keeps it
fast on GPU and exact to float precision.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch


def _cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    ax2, ax3 = ax**2, ax**3
    return (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))


@lru_cache(maxsize=64)
def resize_matrix(in_len: int, out_len: int, scale: float, antialias: bool = True) -> np.ndarray:
    """``out_len × in_len`` float64 matrix M such that ``M @ x`` resizes ``x`` like MATLAB."""
    kernel_width = 4.0
    if scale < 1 and antialias:
        kernel_width /= scale

        def h(t: np.ndarray) -> np.ndarray:
            return scale * _cubic(scale * t)
    else:
        h = _cubic
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - kernel_width / 2)
    taps = math.ceil(kernel_width) + 2
    idx = left[:, None] + np.arange(taps)[None, :]
    w = h(u[:, None] - idx)
    w /= w.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    src = mirror[np.mod(idx.astype(np.int64) - 1, 2 * in_len)]
    m = np.zeros((out_len, in_len), dtype=np.float64)
    np.add.at(m, (np.repeat(np.arange(out_len), taps), src.ravel()), w.ravel())
    return m


@lru_cache(maxsize=32)
def _device_matrix(in_len: int, out_len: int, scale: float, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """The matrix on the device, kept so that video frames do not copy it there again each time."""
    with torch.inference_mode(False):  # a normal tensor, usable later with autograd too
        return torch.from_numpy(resize_matrix(in_len, out_len, scale)).to(device=device, dtype=dtype)


def _matrix(in_len: int, out_len: int, scale: float, like: torch.Tensor) -> torch.Tensor:
    return _device_matrix(in_len, out_len, scale, like.device, like.dtype)


def imresize(x: torch.Tensor, scale: float | None = None, size: tuple[int, int] | None = None) -> torch.Tensor:
    """Resize ``…×H×W`` ``x`` by ``scale`` (or to ``size=(h, w)``) as MATLAB's bicubic ``imresize``.

    The output is not rounded or clipped; for MATLAB's uint8 behaviour round and clip afterwards.
    """
    h, w = x.shape[-2:]
    if size is None:
        if scale is None:
            raise ValueError("give scale or size")
        size = (math.ceil(h * scale), math.ceil(w * scale))
        sh = sw = scale
    else:
        sh, sw = (scale, scale) if scale is not None else (size[0] / h, size[1] / w)
    mh = _matrix(h, size[0], sh, x)
    mw = _matrix(w, size[1], sw, x)
    # MATLAB resizes the dimension with the smaller scale first; the results agree to rounding.
    if sh <= sw:
        return torch.matmul(torch.matmul(mh, x), mw.T)
    return torch.matmul(mh, torch.matmul(x, mw.T))


def imresize_np(img: np.ndarray, scale: float | None = None, size: tuple[int, int] | None = None) -> np.ndarray:
    """:func:`imresize` for an H×W or H×W×C numpy array; uint8 in gives rounded uint8 out (MATLAB)."""
    t = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float64))
    chw = t.permute(2, 0, 1) if t.ndim == 3 else t
    out = imresize(chw, scale=scale, size=size)
    out = out.permute(1, 2, 0) if t.ndim == 3 else out
    res = out.numpy()
    if img.dtype == np.uint8:
        return np.clip(np.round(res), 0, 255).astype(np.uint8)
    if img.dtype == np.uint16:
        return np.clip(np.round(res), 0, 65535).astype(np.uint16)
    return res.astype(img.dtype, copy=False)

"""Real-ESRGAN's second-order degradation: synthesise realistic LR training inputs from HR crops.

Bicubic-only LR inputs teach a model nothing about camera blur, sensor noise or repeated JPEG
compression, so it fails on real photos. Real-ESRGAN (Wang et al., ICCVW 2021, Sec. 3) applies the
chain blur -> resize -> noise -> JPEG twice with random parameters, then resizes to the LR size and
adds a sinc filter (ringing/overshoot), with that last step and the second JPEG in random order.
Written from the paper's description and its published ``train_realesrgan_x4plus.yml`` values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..resize import imresize

__all__ = ["KERNEL_KINDS", "RealDegradation", "blur_kernel", "degrade", "jpeg", "random_kernel", "sinc_kernel"]

KERNEL_KINDS = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")
"""Blur kernel kinds, in the order of :attr:`RealDegradation.kernel_prob`."""

Range = tuple[float, float]


@dataclass(frozen=True)
class RealDegradation:
    """Every probability and range of the degradation; defaults are the published ones.

    Fields ending in ``2`` are for the second round. The ``*_prob`` fields that are 1 in the paper
    exist so that a caller can switch a step off (0) without changing the code.
    """

    kernel_size_range: tuple[int, int] = (7, 21)
    """Odd kernel sizes drawn uniformly in this closed range (blur and sinc kernels)."""
    kernel_prob: tuple[float, ...] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
    """Probability of each of :data:`KERNEL_KINDS`, first round."""
    kernel_prob2: tuple[float, ...] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
    """Same, second round."""
    blur_prob: float = 1.0
    """Chance the first round blurs at all (always in the paper)."""
    blur_prob2: float = 0.8
    """Chance the second round blurs."""
    blur_sigma: Range = (0.2, 3.0)
    """Gaussian sigma range, pixels, first round (each axis drawn separately when anisotropic)."""
    blur_sigma2: Range = (0.2, 1.5)
    """Same, second round: milder, as the image is already smaller."""
    betag_range: Range = (0.5, 4.0)
    """Shape exponent of the generalized Gaussian (<1 heavier tails, >1 flatter top)."""
    betag_range2: Range = (0.5, 4.0)
    """Same, second round."""
    betap_range: Range = (1.0, 2.0)
    """Shape exponent of the plateau kernel."""
    betap_range2: Range = (1.0, 2.0)
    """Same, second round."""
    sinc_prob: float = 0.1
    """Chance the first-round blur kernel is a sinc (ringing) instead of one of the kinds above."""
    sinc_prob2: float = 0.1
    """Same, second round."""
    sinc_cutoff: Range = (math.pi / 3, math.pi)
    """Sinc cutoff frequency range, radians per pixel; also used by the final sinc."""
    sinc_cutoff_large: Range = (math.pi / 5, math.pi)
    """Cutoff range for blur-round sinc kernels of size 13 and more, which can afford lower cutoffs."""
    resize_prob: tuple[float, float, float] = (0.2, 0.7, 0.1)
    """Probabilities of resizing up, down, or keeping the current size, first round. (The published code's
    second-round "keep" resizes to the LR size; here it keeps, so the final resize does that.)"""
    resize_prob2: tuple[float, float, float] = (0.3, 0.4, 0.3)
    """Same, second round."""
    resize_range: Range = (0.15, 1.5)
    """Scale factor range of the first resize, relative to the HR size."""
    resize_range2: Range = (0.3, 1.2)
    """Scale factor range of the second resize, relative to the final LR size."""
    resize_modes: tuple[str, ...] = ("area", "bilinear", "bicubic")
    """Interpolation modes, drawn uniformly for every resize including the final one."""
    noise_prob: float = 1.0
    """Chance the first round adds noise (always in the paper)."""
    noise_prob2: float = 1.0
    """Same, second round."""
    gaussian_noise_prob: float = 0.5
    """Chance the noise is Gaussian rather than Poisson, first round."""
    gaussian_noise_prob2: float = 0.5
    """Same, second round."""
    noise_range: Range = (1.0, 30.0)
    """Gaussian noise sigma range, in 8-bit levels (/255), first round."""
    noise_range2: Range = (1.0, 25.0)
    """Same, second round."""
    poisson_scale_range: Range = (0.05, 3.0)
    """Multiplier of 8-bit shot noise (photon count = value × 255), first round."""
    poisson_scale_range2: Range = (0.05, 2.5)
    """Same, second round."""
    gray_noise_prob: float = 0.4
    """Chance the noise is the same in all channels (luminance noise), first round."""
    gray_noise_prob2: float = 0.4
    """Same, second round."""
    jpeg_prob: float = 1.0
    """Chance the first round JPEG-compresses (always in the paper)."""
    jpeg_prob2: float = 1.0
    """Chance the final JPEG is applied (always in the paper)."""
    jpeg_range: tuple[int, int] = (30, 95)
    """JPEG quality range (inclusive), first round."""
    jpeg_range2: tuple[int, int] = (30, 95)
    """Same, final JPEG."""
    final_sinc_prob: float = 0.8
    """Chance the final resize is followed by a sinc filter (ringing artefacts of real resamplers)."""
    jpeg_first_prob: float = 0.5
    """Chance the final JPEG comes before the final resize + sinc rather than after."""


class _Round(NamedTuple):
    kernel_prob: tuple[float, ...]
    sigma: Range
    betag: Range
    betap: Range
    sinc_prob: float


def _round(p: RealDegradation, second: bool) -> _Round:
    if second:
        return _Round(p.kernel_prob2, p.blur_sigma2, p.betag_range2, p.betap_range2, p.sinc_prob2)
    return _Round(p.kernel_prob, p.blur_sigma, p.betag_range, p.betap_range, p.sinc_prob)


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    if size < 1 or size % 2 == 0:
        raise ValueError(f"kernel size must be odd and positive, got {size}")
    r = np.arange(size, dtype=np.float64) - size // 2
    return np.meshgrid(r, r, indexing="xy")


def blur_kernel(kind: str, size: int, sigma_x: float, sigma_y: float, theta: float, beta: float = 1.0) -> np.ndarray:
    """``size×size`` float64 blur kernel summing to 1, of one of :data:`KERNEL_KINDS`.

    With ``d = xᵀ Σ⁻¹ x`` and ``Σ = R(θ) diag(σx², σy²) R(θ)ᵀ``: Gaussian ``exp(-d/2)``, generalized
    ``exp(-d^β/2)``, plateau ``1/(1 + d^β)``. ``*_iso`` kinds use ``sigma_x`` on both axes, no rotation.
    """
    if kind not in KERNEL_KINDS:
        raise ValueError(f"unknown kernel kind {kind!r}; expected one of {KERNEL_KINDS}")
    if kind.endswith("iso") and not kind.endswith("aniso"):
        sigma_y, theta = sigma_x, 0.0
    x, y = _grid(size)
    c, s = math.cos(theta), math.sin(theta)
    u, v = c * x + s * y, -s * x + c * y  # coordinates along the kernel's own axes
    d = (u / sigma_x) ** 2 + (v / sigma_y) ** 2
    if kind.startswith("plateau"):
        k = 1.0 / (1.0 + d**beta)
    else:
        k = np.exp(-0.5 * d ** (beta if kind.startswith("generalized") else 1.0))
    return k / k.sum()


def _bessel_j1(x: np.ndarray) -> np.ndarray:
    """J₁ from Bessel's integral; the trapezoid rule over a full period is exact here (no scipy)."""
    tau = np.linspace(0.0, 2 * np.pi, 256, endpoint=False)
    return np.cos(tau - x[..., None] * np.sin(tau)).mean(axis=-1)


def sinc_kernel(cutoff: float, size: int) -> np.ndarray:
    """Circular 2D sinc (ideal low-pass at ``cutoff`` rad/pixel) truncated to ``size×size``, sum 1.

    Truncation is what makes the ringing and overshoot artefacts the degradation wants to imitate.
    """
    x, y = _grid(size)
    r = np.hypot(x, y)
    safe = np.where(r == 0, 1.0, r)
    k = np.where(r == 0, cutoff**2 / (4 * np.pi), cutoff * _bessel_j1(cutoff * safe) / (2 * np.pi * safe))
    return k / k.sum()


def _uniform(rng: np.random.Generator, r: Range) -> float:
    return float(rng.uniform(r[0], r[1]))


def _kernel_size(rng: np.random.Generator, p: RealDegradation) -> int:
    lo, hi = p.kernel_size_range
    return int(rng.choice(np.arange(lo | 1, hi + 1, 2)))


def random_kernel(rng: np.random.Generator, params: RealDegradation, second: bool) -> np.ndarray:
    """One random blur kernel for the first or ``second`` round: sinc with ``sinc_prob``, else a kind."""
    r = _round(params, second)
    size = _kernel_size(rng, params)
    if rng.random() < r.sinc_prob:
        return sinc_kernel(_uniform(rng, params.sinc_cutoff if size < 13 else params.sinc_cutoff_large), size)
    kind = KERNEL_KINDS[rng.choice(len(KERNEL_KINDS), p=np.asarray(r.kernel_prob) / sum(r.kernel_prob))]
    beta = _uniform(rng, r.betap if kind.startswith("plateau") else r.betag)
    sx, sy, theta = _uniform(rng, r.sigma), _uniform(rng, r.sigma), float(rng.uniform(-np.pi, np.pi))
    return blur_kernel(kind, size, sx, sy, theta, beta)


def _filter(x: torch.Tensor, kernel: np.ndarray) -> torch.Tensor:
    """Depthwise convolution with reflect padding (replicate when the image is smaller than the pad)."""
    pad = kernel.shape[0] // 2
    mode = "reflect" if pad < min(x.shape[-2:]) else "replicate"
    w = torch.from_numpy(kernel).to(x).expand(x.shape[1], 1, *kernel.shape)
    return F.conv2d(F.pad(x, (pad, pad, pad, pad), mode=mode), w, groups=x.shape[1])


def _interpolate(x: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    return F.interpolate(x, size=size, mode=mode, align_corners=None if mode == "area" else False)


def _noise(x: torch.Tensor, rng: np.random.Generator, p: RealDegradation, second: bool) -> torch.Tensor:
    gaussian_prob = p.gaussian_noise_prob2 if second else p.gaussian_noise_prob
    gray = rng.random() < (p.gray_noise_prob2 if second else p.gray_noise_prob)
    if rng.random() < gaussian_prob:
        sigma = _uniform(rng, p.noise_range2 if second else p.noise_range) / 255
        noise = rng.standard_normal((1, 1 if gray else 3, *x.shape[-2:])) * sigma
    else:
        scale = _uniform(rng, p.poisson_scale_range2 if second else p.poisson_scale_range)
        img = x.detach().double().clamp(0, 1).cpu().numpy()
        if gray:  # shot noise of the luminance, BT.601 weights
            img = np.tensordot(np.array([0.299, 0.587, 0.114]), img, axes=([0], [1]))[:, None]
        noise = (rng.poisson(img * 255) / 255 - img) * scale
    return (x + torch.from_numpy(noise).to(x)).clamp(0, 1)


def jpeg(img: torch.Tensor, quality: int) -> torch.Tensor:
    """Round-trip an N×3×H×W [0,1] RGB batch through OpenCV's JPEG codec at ``quality`` (1..100)."""
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be in 1..100, got {quality}")
    out = []
    for rgb in (img.detach().clamp(0, 1) * 255).round().to("cpu", torch.uint8).permute(0, 2, 3, 1).numpy():
        ok, buf = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        if not ok:
            raise RuntimeError("OpenCV failed to encode JPEG")
        out.append(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].copy())
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).to(img.device, img.dtype) / 255


def _random_jpeg(x: torch.Tensor, rng: np.random.Generator, prob: float, qualities: tuple[int, int]) -> torch.Tensor:
    return jpeg(x, int(rng.integers(qualities[0], qualities[1] + 1))) if rng.random() < prob else x


def _degrade_one(x: torch.Tensor, scale: int, rng: np.random.Generator, p: RealDegradation) -> torch.Tensor:
    h, w = x.shape[-2:]
    lr_size = (h // scale, w // scale)
    for second in (False, True):
        if rng.random() < (p.blur_prob2 if second else p.blur_prob):
            x = _filter(x, random_kernel(rng, p, second))
        direction = rng.choice(3, p=p.resize_prob2 if second else p.resize_prob)  # up, down, keep
        if direction < 2:
            lo, hi = p.resize_range2 if second else p.resize_range
            factor = rng.uniform(1, hi) if direction == 0 else rng.uniform(lo, 1)
            ref = lr_size if second else (h, w)
            size = (max(1, int(ref[0] * factor)), max(1, int(ref[1] * factor)))
            x = _interpolate(x, size, str(rng.choice(p.resize_modes)))
        if rng.random() < (p.noise_prob2 if second else p.noise_prob):
            x = _noise(x, rng, p, second)
        if not second:
            x = _random_jpeg(x, rng, p.jpeg_prob, p.jpeg_range)

    def resize_sinc(x: torch.Tensor) -> torch.Tensor:
        mode = str(rng.choice(p.resize_modes))
        x = imresize(x, size=lr_size) if mode == "bicubic" else _interpolate(x, lr_size, mode)
        if rng.random() < p.final_sinc_prob:
            x = _filter(x, sinc_kernel(_uniform(rng, p.sinc_cutoff), _kernel_size(rng, p)))
        return x

    if rng.random() < p.jpeg_first_prob:
        x = resize_sinc(_random_jpeg(x.clamp(0, 1), rng, p.jpeg_prob2, p.jpeg_range2))
    else:
        x = _random_jpeg(resize_sinc(x).clamp(0, 1), rng, p.jpeg_prob2, p.jpeg_range2)
    return x


def degrade(
    hr: torch.Tensor, scale: int, rng: np.random.Generator, params: RealDegradation | None = None
) -> torch.Tensor:
    """Second-order degraded LR of an N×3×H×W float [0,1] HR batch (H, W multiples of ``scale``).

    Returns N×3×(H/scale)×(W/scale) float32 in [0,1] on 1/255 levels, as an 8-bit LR photo would be.
    Each image draws its own parameters from ``rng``; the same seed gives the same output.
    """
    if hr.ndim != 4 or hr.shape[1] != 3 or hr.shape[-2] % scale or hr.shape[-1] % scale:
        raise ValueError(f"expected N×3×H×W with H, W multiples of {scale}, got {tuple(hr.shape)}")
    p = params or RealDegradation()
    out = torch.cat([_degrade_one(img[None].float(), scale, rng, p) for img in hr])
    return ((out.clamp(0, 1) * 255).round() / 255).float()

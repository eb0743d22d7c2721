"""The benchmark protocol behind published super-resolution tables, applied to a folder of HR images.

For each high-resolution image: crop it to a multiple of the scale (``modcrop``), make the
low-resolution input with MATLAB's bicubic ``imresize(HR, 1/s)`` rounded to uint8 (or read a given
LR file), upscale it with the engine, round and clip to uint8, and compare the BT.601 luma of the
result with that of the HR image after dropping ``s`` pixels at every edge. MATLAB's bicubic
upscaling of the same LR image is scored beside it.

Two conventions were settled by reproducing the authors' numbers with their released weights:

* Y is not rounded (BasicSR's ``to_y_channel``). MATLAB's ``rgb2ycbcr`` on uint8 rounds it, which
  lowers PSNR by up to 0.09 dB at x2 (RLFN x2 Set5: 37.99 dB rounded, 38.08 unrounded, 38.07
  published). ``round_y=True`` gives the MATLAB variant.
* Grey images (Set14 ``bridge``): MATLAB demos skip ``rgb2ycbcr`` for single-channel images and
  compare the grey values themselves (``luma``); PyTorch pipelines decode every image as RGB, so
  grey becomes three equal channels and its Y is ``16 + 219/255·g`` (``rgb``), which scores 1.32 dB
  higher on that image (0.09 dB on the Set14 mean). ``auto`` picks ``luma`` for Y-channel models,
  whose published numbers come from MATLAB (SRCNN), and ``rgb`` for RGB models (RLFN).

``degradation="real"`` replaces the bicubic LR with Real-ESRGAN's second-order degradation (blur,
resize, noise, JPEG, twice; :mod:`upscale.train.degradations`), drawn for each image from a generator
seeded with ``seed`` and the image's name: the same LR images on every run and machine, whatever the
order or the other images, to score models meant for real-world inputs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..engine import Upscaler
from ..errors import BadMediaError, UpscaleError
from ..io.files import same_file
from ..io.image import IMAGE_SUFFIXES, read_image, write_image
from ..resize import imresize_np
from .metrics import psnr, ssim, to_y

__all__ = [
    "DatasetResult",
    "ImageResult",
    "Protocol",
    "evaluate_dataset",
    "find_lr",
    "list_images",
    "make_lr",
    "make_real_lr",
    "modcrop",
    "prepare_hr",
    "score",
]

GrayMode = Literal["auto", "luma", "rgb"]
SSIM_WINDOW_PX = 11


@dataclass(frozen=True)
class Protocol:
    """How images are degraded and scored."""

    scale: int
    crop_border: int | None = None
    """Pixels dropped at every edge before scoring; None means ``scale``."""
    round_y: bool = False
    """Round Y to integers as MATLAB's ``rgb2ycbcr`` on uint8 does."""
    gray: GrayMode = "auto"
    """How single-channel HR images are scored (see the module docstring)."""
    degradation: Literal["bicubic", "real"] = "bicubic"
    """How the LR input is made when none is given (see the module docstring)."""
    seed: int = 0
    """Seed of the ``real`` degradation."""

    @property
    def border(self) -> int:
        return self.scale if self.crop_border is None else self.crop_border

    def gray_mode(self, colour: str) -> Literal["luma", "rgb"]:
        if self.gray != "auto":
            return self.gray
        return "luma" if colour == "y" else "rgb"


@dataclass
class ImageResult:
    name: str
    width: int
    """HR width after modcrop."""
    height: int
    psnr: float
    ssim: float
    bicubic_psnr: float
    bicubic_ssim: float
    seconds: float
    """Time spent in the engine for this image."""


@dataclass
class DatasetResult:
    name: str
    path: str
    images: list[ImageResult] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    """``(file, reason)`` for images that could not be evaluated."""

    def mean(self, key: str) -> float:
        values = [getattr(r, key) for r in self.images]
        return float(np.mean(values)) if values else math.nan

    def to_dict(self) -> dict[str, Any]:
        keys = ("psnr", "ssim", "bicubic_psnr", "bicubic_ssim")
        return {
            "name": self.name,
            "path": self.path,
            "count": len(self.images),
            "mean": {k: _finite(self.mean(k)) for k in keys},
            "images": [{k: _finite(v) for k, v in asdict(r).items()} for r in self.images],
            "errors": [{"file": f, "reason": r} for f, r in self.errors],
        }


def _finite(v: Any) -> Any:
    """JSON has no infinity or NaN: identical images (infinite PSNR) become ``null``."""
    return None if isinstance(v, float) and not math.isfinite(v) else v


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom and right edges so both sides are multiples of ``scale``."""
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


def make_lr(hr: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB ``imresize(hr, 1/scale, 'bicubic')`` (antialiased), rounded to uint8 like MATLAB."""
    return imresize_np(hr, 1.0 / scale)


def make_real_lr(hr: np.ndarray, scale: int, seed: int, name: str) -> np.ndarray:
    """Real-world degraded uint8 LR of a uint8 HR image (grey stays grey), drawn from a generator seeded
    with ``seed`` and ``name``."""
    import zlib

    import torch

    from ..train.degradations import degrade

    rgb = np.repeat(hr[..., None], 3, axis=2) if hr.ndim == 2 else hr
    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255.0
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    lr = np.rint(degrade(x, scale, rng)[0].permute(1, 2, 0).numpy() * 255.0).astype(np.uint8)
    return np.rint(lr.mean(axis=2)).astype(np.uint8) if hr.ndim == 2 else lr


def prepare_hr(img: np.ndarray, gray: Literal["luma", "rgb"]) -> np.ndarray:
    """An 8-bit H×W or H×W×3 ground truth: alpha dropped, 16-bit reduced, grey kept or made RGB."""
    if img.dtype == np.uint16:
        img = np.round(img.astype(np.float64) / 257.0).astype(np.uint8)
    elif img.dtype != np.uint8:
        img = np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[..., :3]
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim == 2 and gray == "rgb":
        img = np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(img)


def score(sr: np.ndarray, hr: np.ndarray, *, crop_border: int, round_y: bool = False) -> tuple[float, float]:
    """PSNR and SSIM on the luma (grey images: the grey values) after cropping ``crop_border``."""
    a, b = to_y(sr, rounded=round_y), to_y(hr, rounded=round_y)
    return psnr(a, b, crop_border=crop_border), ssim(a, b, crop_border=crop_border)


def list_images(folder: Path) -> list[Path]:
    """The image files directly in ``folder``, sorted by name; raises when there are none."""
    if not folder.is_dir():
        raise BadMediaError(f"{folder}: not a folder")
    found = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not found:
        raise BadMediaError(f"{folder}: no images (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    return found


def find_lr(lr_dir: Path, hr_path: Path, scale: int) -> Path:
    """The LR file for ``hr_path``: same stem, or the stem with an ``x{scale}`` suffix (DIV2K style)."""
    for stem in (hr_path.stem, f"{hr_path.stem}x{scale}", f"{hr_path.stem}_x{scale}"):
        for p in sorted(lr_dir.glob(f"{stem}.*")):
            if p.suffix.lower() in IMAGE_SUFFIXES:
                return p
    raise BadMediaError(f"{hr_path}: no LR image for it in {lr_dir}")


def _pair(
    hr_path: Path, protocol: Protocol, gray: Literal["luma", "rgb"], lr_dir: Path | None
) -> tuple[np.ndarray, np.ndarray]:
    s, border = protocol.scale, protocol.border
    raw = read_image(hr_path)
    h, w = raw.shape[:2]
    need = 2 * border + SSIM_WINDOW_PX
    if h - h % s < need or w - w % s < need:
        raise UpscaleError(
            f"{hr_path}: {w}x{h} is too small for x{s} (needs {need} px a side: the {border}-px border crop"
            f" plus the {SSIM_WINDOW_PX}-px SSIM window)"
        )
    hr = prepare_hr(modcrop(raw, s), gray)
    if lr_dir is None and protocol.degradation == "real":
        return hr, make_real_lr(hr, s, protocol.seed, hr_path.name)
    if lr_dir is None:
        return hr, make_lr(hr, s)
    lr_path = find_lr(lr_dir, hr_path, s)
    lr = prepare_hr(read_image(lr_path), gray)
    if hr.ndim == 3 and lr.ndim == 2:
        lr = np.repeat(lr[..., None], 3, axis=2)
    expected = (hr.shape[0] // s, hr.shape[1] // s)
    if lr.shape[:2] != expected or lr.ndim != hr.ndim:
        raise UpscaleError(
            f"{lr_path}: is {lr.shape[1]}x{lr.shape[0]}, but the HR image {hr_path.name} at x{s} needs "
            f"{expected[1]}x{expected[0]}"
        )
    return hr, lr


def evaluate_dataset(
    upscaler: Upscaler,
    hr_dir: Path,
    protocol: Protocol,
    *,
    lr_dir: Path | None = None,
    save_dir: Path | None = None,
    on_image: Callable[[str], None] | None = None,
) -> DatasetResult:
    """Score ``upscaler`` and bicubic on every image in ``hr_dir``; a failing image is recorded, not raised.

    ``save_dir`` receives each SR image as ``<stem>.png``. ``on_image`` is called after each image
    (for progress bars).
    """
    if upscaler.scale != protocol.scale or upscaler.model_scale != protocol.scale:
        raise UpscaleError(f"the model runs at x{upscaler.scale:g}, but the evaluation is at x{protocol.scale}")
    result = DatasetResult(hr_dir.name, str(hr_dir))
    paths = list_images(hr_dir)
    if lr_dir is not None and not lr_dir.is_dir():
        raise BadMediaError(f"{lr_dir}: not a folder")
    for folder in (hr_dir, lr_dir):
        if save_dir is not None and folder is not None and same_file(save_dir, folder):
            raise UpscaleError(f"{save_dir}: is an input folder; SR images go to another folder")
    gray = protocol.gray_mode(upscaler.spec.colour)
    for hr_path in paths:
        try:
            result.images.append(_evaluate_one(upscaler, hr_path, protocol, gray, lr_dir, save_dir))
        except UpscaleError as exc:
            result.errors.append((str(hr_path), _reason(exc, hr_path)))
        if on_image is not None:
            on_image(hr_path.name)
    return result


def _reason(exc: Exception, path: Path) -> str:
    text = str(exc)
    prefix = f"{path}: "
    return text[len(prefix) :] if text.startswith(prefix) else text


def _evaluate_one(
    upscaler: Upscaler,
    hr_path: Path,
    protocol: Protocol,
    gray: Literal["luma", "rgb"],
    lr_dir: Path | None,
    save_dir: Path | None,
) -> ImageResult:
    s, border = protocol.scale, protocol.border
    hr, lr = _pair(hr_path, protocol, gray, lr_dir)
    start = time.perf_counter()
    sr = upscaler.upscale(lr)
    seconds = time.perf_counter() - start
    if sr.shape != hr.shape:  # the engine keeps the layout; a shape change means a broken model
        raise UpscaleError(f"{hr_path}: the model gave {sr.shape}, expected {hr.shape}")
    bicubic = imresize_np(lr, s)
    p, q = score(sr, hr, crop_border=border, round_y=protocol.round_y)
    bp, bq = score(bicubic, hr, crop_border=border, round_y=protocol.round_y)
    if save_dir is not None:
        write_image(save_dir / f"{hr_path.stem}.png", sr)
    return ImageResult(hr_path.name, hr.shape[1], hr.shape[0], p, q, bp, bq, seconds)

"""The tiled, half-precision inference engine.

Frames stay in host memory; only tiles go to the device. Each low-resolution frame is cut into
non-overlapping *cores*; a tile is its core plus ``tile_pad`` pixels of context on every side (shifted
inward at the frame border, so every tile of a frame has one shape and tiles of several frames run in
one batch). From each tile's output the engine keeps the core and a ``feather`` band around it, and
cross-fades neighbouring bands with linear weights that sum to one. Where the model's receptive field
fits in ``tile_pad - feather`` the stitched result equals the untiled one.

On CUDA a batch's upload, network and download are queued on three streams from pinned host memory,
and the engine cuts and stitches the tiles of one batch while the GPU runs the next. Several devices
(``cuda:0,cuda:1``) each get their own copy of the network and frames in turn.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import itertools
import logging
import math
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .color import rgb_to_ycbcr, ycbcr_to_rgb
from .errors import UpscaleError
from .fusion import fuse_for_cpu
from .io.limits import DEFAULT_MAX_PIXELS, TooLargeError
from .io.pipeline import Pipeline
from .memory import available_memory
from .models.loading import LoadedModel
from .resize import imresize

log = logging.getLogger("upscale.engine")

Precision = Literal["auto", "fp32", "fp16", "bf16"]
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
"""``--precision`` name -> torch dtype."""
_OOM = tuple({getattr(torch, "OutOfMemoryError", RuntimeError), torch.cuda.OutOfMemoryError})
FEATHER_PX = 4
"""Width in input pixels of the cross-fade on each side of a seam (when ``tile_pad`` allows)."""
MIN_TILE_PX = 32
CPU_MEMORY_SHARE = 0.5
"""On the CPU, ``tile='auto'`` keeps a frame's estimated working memory within this share of the
memory available when it starts; frames that fit run untiled."""
CPU_TILED_BUDGET = 10 * 2**30
"""Most estimated working memory a tiled CPU frame may use, however much RAM is free: tiles larger than
this buy a few percent of speed for gigabytes (ESRGAN x4 on a 1080p frame peaks near 5 GiB RSS)."""
CPU_ESTIMATE_FACTOR = 2.5
"""Measured peak RSS growth over :func:`~upscale.eval.flops.activation_bytes` through the engine
(frame buffers, skip connections): 2.3x for RLFN, 0.9x for ESRGAN."""


@dataclass(frozen=True)
class EngineOptions:
    device: str = "auto"
    """``auto`` (CUDA, then MPS, then CPU), any torch device string, or several joined by commas
    (``cuda:0,cuda:1``): frames then go in turn to one copy of the network per device."""
    precision: Precision = "auto"
    """``auto`` is fp16 on CUDA (bf16 after an overflow, where native); bf16 on CPUs with native bf16 for
    models declaring it safe; else fp32."""
    tile: int | Literal["auto"] = "auto"
    """Core size in input pixels; 0 disables tiling; ``auto`` fits device memory."""
    tile_pad: int | None = None
    """Context in input pixels around each core; default: the model's margin plus the feather."""
    batch_size: int | None = None
    """Tiles (or whole frames) per forward pass; None: 4 on a GPU, 1 on the CPU, where batching
    only costs cache locality."""
    outscale: float | None = None
    """Final scale: the model's output is resized to it. None keeps the model's scale."""
    compile: bool = False
    """Run the network through ``torch.compile`` (the first frame of each size pays for compiling;
    torch falls back to the plain network where compiling fails)."""
    fuse: bool = True
    """On the CPU, fold the activation, residual add or BatchNorm after each convolution into it
    (:mod:`upscale.fusion`); ``--compile`` fuses by itself instead."""
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    """Inputs whose frames declare more pixels are refused before they are decoded (None: no limit);
    the readers of :mod:`upscale.io` take it from here."""


def pick_devices(names: str = "auto") -> list[torch.device]:
    """The devices of a ``--device`` value: one, or several joined by commas."""
    return [pick_device(name.strip()) for name in names.split(",")]


def pick_device(name: str = "auto") -> torch.device:
    if name != "auto":
        try:
            device = torch.device(name)
        except (RuntimeError, ValueError):  # torch's message lists every device type it was built with
            raise UpscaleError(f"'{name}' is not a device; use auto, cpu, cuda, cuda:N or mps") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise UpscaleError(f"device '{name}' asked for, but CUDA is not available")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@functools.cache
def native_cpu_halves() -> frozenset[str]:
    """The half precisions this CPU has native oneDNN kernels for (AVX512-FP16/BF16, AMX). Without
    them torch emulates fp16 and bf16 tens of times slower than fp32."""
    found = set()
    try:
        if torch.ops.mkldnn._is_mkldnn_fp16_supported():
            found.add("fp16")
        if torch.ops.mkldnn._is_mkldnn_bf16_supported():
            found.add("bf16")
    except (AttributeError, RuntimeError):
        pass
    return frozenset(found)


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` runs bf16 on native kernels rather than emulating it."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    return device.type == "cpu" and "bf16" in native_cpu_halves()


def pick_dtype(
    precision: str, device: torch.device, *, supports_half: bool, supports_bf16: bool, auto_bf16: bool = False
) -> torch.dtype:
    """``auto``: fp16 on CUDA; on a CPU, bf16 where it has native bf16 kernels and the model declares
    bf16 safe (``auto_bf16``); fp32 otherwise."""
    if precision == "auto":
        if device.type == "cuda" and supports_half:
            return torch.float16
        if device.type == "cpu" and auto_bf16 and supports_bf16 and "bf16" in native_cpu_halves():
            return torch.bfloat16
        return torch.float32
    if precision not in DTYPES:
        raise UpscaleError(f"unknown precision '{precision}'; use auto, fp32, fp16 or bf16")
    dtype = DTYPES[precision]
    if (dtype is torch.float16 and not supports_half) or (dtype is torch.bfloat16 and not supports_bf16):
        log.warning("the model does not support %s; using fp32", precision)
        return torch.float32
    return dtype


@dataclass
class _Frame:
    """One frame on its way through the engine: its input planes and the output being stitched."""

    planes: np.ndarray
    """C×H×W float32 model-space input."""
    meta: Any
    pending: int = 0
    out: np.ndarray | None = None
    """C×(H·s)×(W·s) float32 output accumulator."""


@dataclass
class _Tile:
    frame: _Frame
    window: tuple[int, int, int, int]
    """Input box ``(top, left, bottom, right)`` the model sees."""
    core: tuple[int, int, int, int]
    """Input box this tile is responsible for; cores partition the frame."""


@dataclass
class _Batch:
    """Tiles on their way through the network; ``out`` holds their outputs once ``done``."""

    tiles: list[_Tile]
    host_in: torch.Tensor
    """N×C×h×w float32 windows (pinned on CUDA), kept to redo a non-finite batch in fp32."""
    out: torch.Tensor
    """N×C×H×W float32 outputs on the host (pinned on CUDA)."""
    dtype: torch.dtype
    """The precision the network ran in."""
    done: Any = None
    """CUDA event recorded after the download; None where the work ran synchronously."""
    nonfinite: torch.Tensor | bool = False
    """Whether a half-precision output held NaN or inf (a device tensor on CUDA, read once done)."""


@dataclass
class _FrameMeta:
    dtype: np.dtype
    max_value: float
    layout: str
    """``gray``, ``rgb`` or ``rgba``; ``gray1`` for H×W×1."""
    chroma: np.ndarray | None = None
    alpha: np.ndarray | None = None


class Upscaler:
    """Runs a :class:`~upscale.models.LoadedModel` over frames of any size, tiled and batched."""

    def __init__(self, model: LoadedModel, options: EngineOptions | None = None) -> None:
        opts = options or EngineOptions()
        self.model = model
        self.spec = model.spec
        self.options = opts
        devices = pick_devices(opts.device)
        self.device = devices[0]
        self.dtype = pick_dtype(
            opts.precision,
            self.device,
            supports_half=self.spec.supports_half,
            supports_bf16=self.spec.supports_bf16,
            auto_bf16=self.spec.auto_bf16,
        )
        if opts.batch_size is not None and opts.batch_size < 1:
            raise UpscaleError("batch size must be at least 1")
        if opts.outscale is not None and opts.outscale <= 0:
            raise UpscaleError("outscale must be positive")
        if opts.tile != "auto" and (not isinstance(opts.tile, int) or opts.tile < 0):
            raise UpscaleError(f"tile must be 'auto', 0 or a positive number of pixels, not {opts.tile!r}")
        self.model_scale = model.scale
        self.scale: float = opts.outscale if opts.outscale else float(model.scale)
        if opts.tile_pad is None:
            self.tile_pad = max(self.spec.margin_px, 8) + FEATHER_PX
        elif opts.tile_pad < 0:
            raise UpscaleError("tile pad must not be negative")
        else:
            self.tile_pad = opts.tile_pad
        self.feather = min(FEATHER_PX, self.tile_pad // 2)
        self.tile_px: int | None = None if opts.tile == "auto" else max(opts.tile, 0)
        if self.tile_px:
            self.tile_px = max(self.tile_px, MIN_TILE_PX, 2 * self.feather)
        self._auto_tiles: dict[tuple[int, int], int] = {}
        self._tile_lowered = False
        """Set once an out-of-memory error has lowered the tile: it then holds for every frame."""
        self.batch_size = opts.batch_size or (1 if self.device.type == "cpu" else 4)
        # NHWC convolutions run on the fast oneDNN/cuDNN kernels: 1.5-2.5x NCHW on CPUs, and tensor cores.
        self._channels_last = self.device.type in ("cuda", "cpu")
        if self.device.type == "cuda":
            # Tiles of a run share one shape, so cuDNN's per-shape algorithm search pays off.
            torch.backends.cudnn.benchmark = True
        self._run_in(self.dtype)
        self._fp32_module: torch.nn.Module | None = None
        self._warned_nonfinite = False
        self._streams = (
            (torch.cuda.Stream(self.device), torch.cuda.Stream(self.device)) if self.device.type == "cuda" else None
        )
        """Upload and download streams, so copies overlap the network on the compute stream."""
        self._in_flight = 1 if self.device.type == "cuda" else 0
        """Batches left running while the host stitches earlier ones and cuts the next."""
        self._replicas: list[Upscaler] = [self] + [
            Upscaler(model, dataclasses.replace(opts, device=str(d))) for d in devices[1:]
        ]

    # ------------------------------------------------------------------ public API
    def upscale(self, img: np.ndarray) -> np.ndarray:
        """Upscale one image (H×W, H×W×1, H×W×3 RGB or H×W×4 RGBA; uint8, uint16 or float in [0, 1])."""
        return next(self.upscale_many([img]))

    def upscale_many(self, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Upscale frames lazily, in order; tiles of consecutive frames share batches."""
        prepared = (self._prepare(f) for f in frames)
        for meta, out in self._run(prepared):
            yield self._finish(out, meta)

    def upscale_planes_many(self, planes: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Model-space frames (H×W×C float32 in [0, 1]; C = 1 for Y models) -> H·s×W·s×C float32."""
        channels = 1 if self.spec.colour == "y" else 3

        def gen() -> Iterator[tuple[None, np.ndarray]]:
            for p in planes:
                arr = p[..., None] if p.ndim == 2 else p
                if arr.shape[2] != channels:
                    raise UpscaleError(f"expected {channels}-channel planes for '{self.spec.name}', got {arr.shape}")
                yield None, np.ascontiguousarray(arr.transpose(2, 0, 1), dtype=np.float32)

        for _, out in self._run(gen()):
            yield out.transpose(1, 2, 0)

    # ------------------------------------------------------------------ colour and layout
    def _prepare(self, img: np.ndarray) -> tuple[_FrameMeta, np.ndarray]:
        if (
            not isinstance(img, np.ndarray)
            or img.ndim not in (2, 3)
            or (img.ndim == 3 and img.shape[2] not in (1, 3, 4))
        ):
            shape = getattr(img, "shape", None)
            raise UpscaleError(f"expected an H×W, H×W×1, H×W×3 or H×W×4 image, got shape {shape}")
        if img.dtype == np.uint8:
            max_value = 255.0
        elif img.dtype == np.uint16:
            max_value = 65535.0
        elif img.dtype in (np.float32, np.float64):
            max_value = 1.0
        else:
            raise UpscaleError(f"unsupported pixel type {img.dtype}")
        x = img.astype(np.float32) / np.float32(max_value)
        if x.ndim == 2 or x.shape[2] == 1:
            layout = "gray1" if x.ndim == 3 else "gray"
            gray = x.reshape(x.shape[0], x.shape[1])
            meta = _FrameMeta(img.dtype, max_value, layout)
            if self.spec.colour == "y":
                planes = (16.0 + 219.0 * gray)[None] / 255.0  # Y of a grey pixel; Cb = Cr = 128
            else:
                planes = np.repeat(gray[None], 3, axis=0)
            return meta, np.ascontiguousarray(planes, dtype=np.float32)
        meta = _FrameMeta(img.dtype, max_value, "rgba" if x.shape[2] == 4 else "rgb")
        if x.shape[2] == 4:
            meta.alpha = x[..., 3]
        rgb = x[..., :3]
        if self.spec.colour == "y":
            ycc = rgb_to_ycbcr(rgb)
            meta.chroma = ycc[..., 1:]
            planes = ycc[..., :1].transpose(2, 0, 1)
        else:
            planes = rgb.transpose(2, 0, 1)
        return meta, np.ascontiguousarray(planes, dtype=np.float32)

    def _finish(self, out: np.ndarray, meta: _FrameMeta) -> np.ndarray:
        h, w = out.shape[1:]
        if self.spec.colour == "y":
            y = out[0]
            if meta.chroma is not None:
                chroma = cv2.resize(meta.chroma, (w, h), interpolation=cv2.INTER_CUBIC)
                res = ycbcr_to_rgb(np.concatenate([y[..., None], chroma], axis=2))
            else:
                res = (y * 255.0 - 16.0) / 219.0
        else:
            res = out.transpose(1, 2, 0)
            if meta.layout.startswith("gray"):
                res = res.mean(axis=2)
        if meta.alpha is not None:
            alpha = cv2.resize(meta.alpha, (w, h), interpolation=cv2.INTER_CUBIC)
            res = np.concatenate([res, alpha[..., None]], axis=2)
        if self.options.outscale and self.options.outscale != self.model_scale:
            lr_h, lr_w = round(h / self.model_scale), round(w / self.model_scale)
            size = (max(1, round(lr_w * self.scale)), max(1, round(lr_h * self.scale)))
            interp = cv2.INTER_AREA if self.scale < self.model_scale else cv2.INTER_LANCZOS4
            res = cv2.resize(res, size, interpolation=interp)
        if meta.layout == "gray1":
            res = res[..., None]
        # In place (``res`` is ``out`` or a fresh array): at x4, a float copy of a 1080p frame's output
        # is 400 MB, and the three the plain expressions make were most of a tiled frame's peak memory.
        np.clip(res, 0.0, 1.0, out=res)
        if meta.max_value == 1.0:
            return res.astype(meta.dtype, copy=False)
        res *= meta.max_value
        return np.rint(res, out=res).astype(meta.dtype)

    # ------------------------------------------------------------------ tiling
    def _auto_tile(self, h: int, w: int) -> int:
        if self.device.type != "cuda":
            return self._auto_tile_cpu(h, w)
        free, _ = torch.cuda.mem_get_info(self.device)
        probe = max(MIN_TILE_PX * 2, self.spec.min_size_px)
        torch.cuda.synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        base = torch.cuda.memory_allocated(self.device)
        c = self._in_channels()
        probe_frame = _Frame(np.zeros((c, probe, probe), np.float32), None)
        box = (0, 0, probe, probe)
        self._result(self._launch([_Tile(probe_frame, box, box)] * self.batch_size, self._probe_module))
        per_px = max(1.0, (torch.cuda.max_memory_allocated(self.device) - base) / (self.batch_size * probe * probe))
        side = int(math.sqrt(0.6 * free / (per_px * self.batch_size))) - 2 * self.tile_pad
        side = max(MIN_TILE_PX, min(side, 2048) // 16 * 16)
        log.info("auto tile: %d px (%.0f bytes per input pixel, %.1f GiB free)", side, per_px, free / 2**30)
        return 0 if side >= max(h, w) else side

    def _auto_tile_cpu(self, h: int, w: int) -> int:
        """Untiled when the frame's estimated memory fits the budget, else the largest tile that does: a
        CPU has no out-of-memory error to recover from, only the kernel's OOM killer."""
        per_px = self._cpu_bytes_per_px
        budget = CPU_MEMORY_SHARE * available_memory()
        if h * w * per_px <= budget:
            return 0
        budget = min(budget, CPU_TILED_BUDGET)
        # The whole frame's planes stay in memory while it is tiled: input, output and the final image.
        frame = 4 * self._in_channels() * h * w * (1 + 2 * self.model_scale**2)
        side = int(math.sqrt(max(budget - frame, 0) / per_px)) - 2 * self.tile_pad
        side = max(MIN_TILE_PX, min(side, 2048) // 16 * 16)
        log.info(
            "auto tile: %d px (about %.0f bytes per input pixel, %.1f GiB available)",
            side,
            per_px,
            budget / 2**30 / CPU_MEMORY_SHARE,
        )
        return side

    @functools.cached_property
    def _cpu_bytes_per_px(self) -> float:
        """Estimated CPU working memory per input pixel of an untiled frame (activations, measured factor)."""
        from .eval.flops import activation_bytes

        unit = self.model_scale if self.spec.input_kind == "bicubic" else 1
        probe = max(64, self.spec.min_size_px)
        shape = (self.batch_size, self._in_channels(), probe * unit, probe * unit)
        itemsize = torch.finfo(self.dtype).bits // 8
        return CPU_ESTIMATE_FACTOR * activation_bytes(self.module, shape) * itemsize / 4 / (probe * probe)

    def memory_needed(
        self, height: int, width: int, channels: int = 3, itemsize: int = 1, frames: int = 1
    ) -> tuple[int, int]:
        """Estimated host memory, in bytes, to upscale a ``height``x``width`` image of ``channels`` samples
        of ``itemsize`` bytes (of ``frames`` such frames, for an animation): ``(frame, work)``.

        ``frame`` is what the frame needs whatever the tiling: the input and its float planes, the float
        output at the model's scale, the result at the final scale and its encoding, and the other frames'
        inputs and results. ``work`` is the network's activations on the CPU, which tiling bounds (0 on a
        GPU, whose memory the engine fits by itself).
        """
        s, c = self.model_scale, max(channels, 1)
        out_h, out_w = round(height * self.scale), round(width * self.scale)
        frame = height * width * (c * itemsize + 4 * c + 4 * self._in_channels())
        frame += height * width * s * s * 4 * max(self._in_channels(), c)
        frame += out_h * out_w * c * (4 + 2 * itemsize)
        frame += (frames - 1) * (height * width + out_h * out_w) * c * itemsize
        if self.device.type != "cpu":
            return frame, 0
        per_px = self._cpu_bytes_per_px
        if self.options.tile == "auto":
            untiled = height * width * per_px
            work = untiled if untiled <= CPU_MEMORY_SHARE * available_memory() else min(untiled, CPU_TILED_BUDGET)
        elif self.tile_px and max(height, width) > self.tile_px:
            side = self.tile_px + 2 * self.tile_pad
            work = min(height, side) * min(width, side) * per_px
        else:
            work = height * width * per_px
        return frame, int(work)

    def check_memory(
        self, name: str, height: int, width: int, channels: int = 3, itemsize: int = 1, frames: int = 1
    ) -> None:
        """Refuse, before any work, an image whose :meth:`memory_needed` exceeds the memory available, with
        one line naming the way out: a tile size that fits, or a smaller output (the frame buffers alone)."""
        frame, work = self.memory_needed(height, width, channels, itemsize, frames)
        avail = available_memory()
        if frame + work <= avail:
            return
        gib = 2**30
        size = f"{width}x{height} at x{self.scale:g}"
        need = f"needs about {(frame + work) / gib:.1f} GiB of memory, {avail / gib:.1f} GiB available"
        if frame < avail * 0.8 and self.device.type == "cpu":
            fit = self._tile_that_fits(avail - frame)
            if fit:
                raise TooLargeError(f"{name}: {size} {need}; use --tile {fit} (or --max-pixels to skip such files)")
        fitting = avail * 0.8 / ((frame + work) / (height * width))  # pixels of an image that would fit
        digits = 10 ** max(int(math.log10(max(fitting, 1))) - 1, 0)
        raise TooLargeError(
            f"{name}: {size} {need} ({frame / gib:.1f} GiB for the frame's buffers, which tiling does not "
            f"shrink); downscale it first, or skip such files with --max-pixels {int(fitting // digits * digits):,}"
        )

    def _tile_that_fits(self, budget: float) -> int:
        """The largest tile (a multiple of 16, at least the minimum) whose working memory fits ``budget``, or 0."""
        side = int(math.sqrt(max(budget, 0) / self._cpu_bytes_per_px)) - 2 * self.tile_pad
        side = min(side, 2048) // 16 * 16
        return side if side >= MIN_TILE_PX else 0

    def _in_channels(self) -> int:
        return 1 if self.spec.colour == "y" else 3

    def _tiles(self, frame: _Frame) -> list[_Tile]:
        _, h, w = frame.planes.shape
        if self.options.tile == "auto" and not self._tile_lowered:  # decided per frame size, once each
            if (h, w) not in self._auto_tiles:
                self._auto_tiles[(h, w)] = self._auto_tile(h, w)
            self.tile_px = self._auto_tiles[(h, w)]
        t = self.tile_px
        if not t or (h <= t and w <= t):
            return [_Tile(frame, (0, 0, h, w), (0, 0, h, w))]
        return self._split(frame, (0, 0, h, w), t)

    def _split(self, frame: _Frame, box: tuple[int, int, int, int], tile: int) -> list[_Tile]:
        """Tiles whose cores partition ``box`` into near-equal parts of at most ``tile`` pixels."""
        _, h, w = frame.planes.shape
        top, left, bottom, right = box

        def axis(lo: int, hi: int, size: int) -> tuple[list[tuple[int, int]], int]:
            n = max(1, math.ceil((hi - lo) / tile))
            edges = [lo + round(i * (hi - lo) / n) for i in range(n + 1)]
            cores = list(itertools.pairwise(edges))
            win = min(size, max(b - a for a, b in cores) + 2 * self.tile_pad)
            return cores, win

        rows, win_h = axis(top, bottom, h)
        cols, win_w = axis(left, right, w)
        tiles = []
        for r0, r1 in rows:
            wt = min(max(r0 - self.tile_pad, 0), h - win_h)
            for c0, c1 in cols:
                wl = min(max(c0 - self.tile_pad, 0), w - win_w)
                tiles.append(_Tile(frame, (wt, wl, wt + win_h, wl + win_w), (r0, c0, r1, c1)))
        return tiles

    def _ramp(self, c0: int, c1: int, w0: int, w1: int, full: int, s: int) -> tuple[int, int, np.ndarray]:
        """Output range and cross-fade weights along one axis for a core ``[c0, c1)`` in window ``[w0, w1)``."""
        f = self.feather * s
        lo = c0 * s - (f if c0 > 0 else 0)
        hi = c1 * s + (f if c1 < full else 0)
        lo, hi = max(lo, w0 * s), min(hi, w1 * s)
        p = np.arange(lo, hi, dtype=np.float32) + 0.5
        wgt = np.ones_like(p)
        if f and c0 > 0:
            wgt = np.minimum(wgt, np.clip(0.5 + (p - c0 * s) / (2 * f), 0.0, 1.0))
        if f and c1 < full:
            wgt = np.minimum(wgt, np.clip(0.5 + (c1 * s - p) / (2 * f), 0.0, 1.0))
        return lo, hi, wgt

    def _accumulate(self, tile: _Tile, out: np.ndarray) -> None:
        frame = tile.frame
        s = self.model_scale
        _, h, w = frame.planes.shape
        if frame.out is None:
            frame.out = np.zeros((out.shape[0], h * s, w * s), np.float32)
        wt, wl, _, _ = tile.window
        r0, c0, r1, c1 = tile.core
        if tile.core == (0, 0, h, w):
            frame.out[:] = out
            return
        y0, y1, wy = self._ramp(r0, r1, wt, tile.window[2], h, s)
        x0, x1, wx = self._ramp(c0, c1, wl, tile.window[3], w, s)
        patch = out[:, y0 - wt * s : y1 - wt * s, x0 - wl * s : x1 - wl * s]
        frame.out[:, y0:y1, x0:x1] += patch * (wy[:, None] * wx[None, :])

    # ------------------------------------------------------------------ running
    def _run(self, items: Iterable[tuple[Any, np.ndarray]]) -> Iterator[tuple[Any, np.ndarray]]:
        """Feed (meta, C×H×W planes) through the model; yield (meta, C×H·s×W·s output) in order."""
        if len(self._replicas) == 1:
            yield from self._run_here(items)
            return
        with Pipeline(depth=2 * self.batch_size) as pipe:
            yield from pipe.spread([r._run_here for r in self._replicas], items, name="device")

    def _run_here(self, items: Iterable[tuple[Any, np.ndarray]]) -> Iterator[tuple[Any, np.ndarray]]:
        """:meth:`_run` on this engine's own device."""
        frames: deque[_Frame] = deque()
        queue: dict[tuple[int, int], list[_Tile]] = {}
        running: deque[_Batch] = deque()

        def flush(shape: tuple[int, int] | None = None, *, keep: int | None = None) -> None:
            for key in [shape] if shape is not None else list(queue):
                tiles = queue.pop(key, [])
                if tiles:
                    running.extend(self._submit_tiles(tiles))
            while len(running) > (self._in_flight if keep is None else keep):
                self._collect(running.popleft())

        def ready() -> Iterator[tuple[Any, np.ndarray]]:
            while frames and frames[0].pending == 0:
                done = frames.popleft()
                assert done.out is not None
                yield done.meta, done.out

        for meta, planes in items:
            frame = _Frame(planes, meta)
            frames.append(frame)
            tiles = self._tiles(frame)
            frame.pending = len(tiles)
            for tile in tiles:
                key = (tile.window[2] - tile.window[0], tile.window[3] - tile.window[1])
                queue.setdefault(key, []).append(tile)
                if len(queue[key]) >= self.batch_size:
                    flush(key)
            if len(frames) > self.batch_size:  # bound the frames held while a batch fills
                flush()
            yield from ready()
        flush(keep=0)
        yield from ready()

    def _submit_tiles(self, tiles: list[_Tile]) -> list[_Batch]:
        """Start tiles through the network, halving the batch and then the tile on out-of-memory errors
        (raised when memory is allocated, so before anything of the batch runs)."""
        try:
            return [self._launch(tiles)]
        except _OOM:
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            if len(tiles) > 1:
                self.batch_size = max(1, len(tiles) // 2)
                log.warning("out of memory: batch size lowered to %d", self.batch_size)
                half = len(tiles) // 2
                return self._submit_tiles(tiles[:half]) + self._submit_tiles(tiles[half:])
            tile = tiles[0]
            r0, c0, r1, c1 = tile.core
            size = max(r1 - r0, c1 - c0)
            new = size // 2
            if new < max(MIN_TILE_PX, 2 * self.feather, self.spec.min_size_px):
                raise UpscaleError(f"out of memory even with {size}-pixel tiles") from None
            self.tile_px, self._tile_lowered = new, True
            log.warning("out of memory: tile size lowered to %d px", new)
            subs = self._split(tile.frame, tile.core, new)
            tile.frame.pending += len(subs) - 1
            return [batch for sub in subs for batch in self._submit_tiles([sub])]

    def _collect(self, batch: _Batch) -> None:
        for tile, out in zip(batch.tiles, self._result(batch), strict=True):
            self._accumulate(tile, out)
            tile.frame.pending -= 1

    @staticmethod
    def _crop(tile: _Tile) -> np.ndarray:
        top, left, bottom, right = tile.window
        return tile.frame.planes[:, top:bottom, left:right]

    def _run_in(self, dtype: torch.dtype) -> None:
        """Run the network in ``dtype`` from now on."""
        self.dtype = dtype
        self.module = self._place(self.model.module, dtype)
        self._probe_module = self.module
        """The uncompiled network: measuring memory for ``tile='auto'`` should not compile a shape."""
        if self.options.compile:
            # A failed compilation (no C++ compiler, an unsupported operator) runs the plain network.
            torch._dynamo.config.suppress_errors = True
            self.module = torch.compile(self.module, dynamic=False)

    def _bf16_after_overflow(self) -> bool:
        """Under ``--precision auto``, fp16 that overflows gives way to bf16 for the rest of the run where
        the device has native bf16 kernels (CUDA from Ampere on): fp32's range at fp16's speed. True
        when the run is in bf16 now."""
        if self.dtype == torch.bfloat16:
            return True
        if self.options.precision != "auto" or not self.spec.supports_bf16 or not native_bf16(self.device):
            return False
        log.warning("fp16 overflowed; running in bf16 from here on (same speed on this %s)", self.device.type)
        self._run_in(torch.bfloat16)
        return True

    def _place(self, module: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
        """``module`` on the engine's device in ``dtype``, its convolutions fused on the CPU; a copy when
        that changes it, so the caller's model is left as it was."""
        first = next(iter(module.parameters()), None)
        if first is not None and (first.device != self.device or first.dtype != dtype):
            module = copy.deepcopy(module)
        module = module.to(device=self.device, dtype=dtype).eval()
        if self._channels_last:
            module = module.to(memory_format=torch.channels_last)
        if self.device.type == "cpu" and self.options.fuse and not self.options.compile:
            module = fuse_for_cpu(module)
        return module

    def _launch(self, tiles: list[_Tile], module: torch.nn.Module | None = None) -> _Batch:
        """Start a batch of equal-sized tiles. On CUDA: upload from pinned memory on one stream, run the
        network on the compute stream, download into pinned memory on another, and return at once."""
        module = module or self.module
        windows = [self._crop(t) for t in tiles]
        cuda = self._streams is not None
        host_in = torch.empty((len(windows), *windows[0].shape), dtype=torch.float32, pin_memory=cuda)
        np.stack(windows, out=host_in.numpy())
        half = self.dtype != torch.float32
        if not cuda:
            y = self._forward_tensor(host_in.to(self.device), module, self.dtype)
            nonfinite = half and not bool(torch.isfinite(y).all())
            return _Batch(tiles, host_in, y.float().clamp(0.0, 1.0).cpu(), self.dtype, nonfinite=nonfinite)
        upload, download = self._streams
        compute = torch.cuda.current_stream(self.device)
        with torch.cuda.stream(upload):
            x = host_in.to(self.device, non_blocking=True)
        compute.wait_stream(upload)
        x.record_stream(compute)
        y = self._forward_tensor(x, module, self.dtype)
        nonfinite = ~torch.isfinite(y).all() if half else False
        y = y.float().clamp(0.0, 1.0)
        out = torch.empty(y.shape, dtype=torch.float32, pin_memory=True)
        download.wait_stream(compute)
        with torch.cuda.stream(download):
            out.copy_(y, non_blocking=True)
            done = torch.cuda.Event()
            done.record(download)
        y.record_stream(download)
        return _Batch(tiles, host_in, out, self.dtype, done, nonfinite)

    def _result(self, batch: _Batch) -> np.ndarray:
        """A batch's N×C×H×W outputs, once done; where half precision overflowed, redone in bf16 after an
        automatic switch (see ``_bf16_after_overflow``), else in fp32."""
        if batch.done is not None:
            batch.done.synchronize()
        if bool(batch.nonfinite):
            x = batch.host_in.to(self.device)
            if batch.dtype == torch.float16 and self._bf16_after_overflow():
                y = self._forward_tensor(x, self.module, torch.bfloat16)
                if bool(torch.isfinite(y).all()):
                    return y.float().clamp(0.0, 1.0).cpu().numpy()
            if not self._warned_nonfinite:
                log.warning("%s produced non-finite values; redoing those batches in fp32", self.dtype)
                self._warned_nonfinite = True
            if self._fp32_module is None:
                self._fp32_module = self._place(self.model.module, torch.float32)
            y = self._forward_tensor(x, self._fp32_module, torch.float32)
            return y.float().clamp(0.0, 1.0).cpu().numpy()
        return batch.out.numpy()

    @torch.inference_mode()
    def _forward_tensor(self, x: torch.Tensor, module: torch.nn.Module, dtype: torch.dtype) -> torch.Tensor:
        spec, s = self.spec, self.model_scale
        if spec.input_kind == "bicubic":
            x = imresize(x, scale=s)
        h, w = x.shape[-2:]
        unit = s if spec.input_kind == "bicubic" else 1
        mult = spec.size_multiple * unit
        need_h = max(math.ceil(h / mult) * mult, spec.min_size_px * unit)
        need_w = max(math.ceil(w / mult) * mult, spec.min_size_px * unit)
        if (need_h, need_w) != (h, w):
            mode = "reflect" if need_h - h < h and need_w - w < w else "replicate"
            x = F.pad(x, (0, need_w - w, 0, need_h - h), mode=mode)
        x = x.to(dtype)
        if self._channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if spec.value_range != 1.0:
            x = x * spec.value_range
        y = module(x)
        if spec.value_range != 1.0:
            y = y / spec.value_range
        out_h = h * (1 if spec.input_kind == "bicubic" else s)
        out_w = w * (1 if spec.input_kind == "bicubic" else s)
        return y[..., :out_h, :out_w]

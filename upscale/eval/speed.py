"""Timing the engine: throughput, latency, achieved GFLOP/s and peak memory on synthetic frames.

Frames are made here (smooth gradients plus noise, so nothing depends on image files); content does
not change the work a convolutional network does. Every figure comes from wall-clock time around
the engine's public API after a warm-up frame, with the device synchronised before the clock stops.
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from ..engine import Upscaler, native_cpu_halves
from .flops import count_macs

__all__ = [
    "SpeedResult",
    "matmul_gflops",
    "measure",
    "peak_memory_bytes",
    "reset_peak_memory",
    "supported_precisions",
    "synchronize",
    "synthetic_frames",
]


@dataclass
class SpeedResult:
    model: str
    scale: int
    device: str
    precision: str
    tile: int
    """Core size in LR pixels the engine used; 0 = whole frames."""
    batch_size: int
    frames: int
    width: int
    """Input frame width."""
    height: int
    seconds: float
    """Wall-clock time for all frames (after warm-up)."""
    fps: float
    output_mpix_per_s: float
    ms_per_frame: float
    """``seconds / frames``: the cost of one frame in a stream (frames share batches)."""
    latency_ms: float
    """Median time of single-frame ``upscale`` calls: how long one image waits."""
    gmacs_per_frame: float
    """Multiply-accumulates of the network on one untiled frame (conv and linear layers)."""
    gflops: float
    """Achieved: ``2 · MACs · frames / seconds``. Tiling overlap is extra work not counted here."""
    peak_memory_bytes: int | None
    memory_kind: str
    """``cuda max_memory_allocated`` or ``process peak RSS`` (the whole process, since it started)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def synthetic_frames(count: int, width: int, height: int, *, seed: int = 0) -> list[np.ndarray]:
    """``count`` RGB uint8 frames: shifted gradients with mild noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = []
    for i in range(count):
        r = 127 + 100 * np.sin((xx + 3 * i) / 23.0)
        g = 127 + 100 * np.cos((yy - 2 * i) / 17.0)
        b = 127 + 60 * np.sin((xx + yy + i) / 31.0)
        img = np.stack([r, g, b], axis=2) + rng.normal(0, 8, (height, width, 3))
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
    return frames


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_bytes(device: torch.device) -> tuple[int | None, str]:
    """CUDA: peak tensor memory since the last reset. Elsewhere: the process's peak resident set."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device)), "cuda max_memory_allocated"
    try:  # Linux: this process's own high-water mark (ru_maxrss keeps a parent's from before exec)
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:")), "process peak RSS"
    except (OSError, StopIteration):
        pass
    try:
        import resource
    except ImportError:  # Windows
        return None, "unavailable"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024), "process peak RSS"


def supported_precisions(device: torch.device, *, supports_half: bool, supports_bf16: bool) -> list[str]:
    """Precisions with native kernels on ``device`` (fp32 always). CPUs without AVX512-BF16/AMX
    emulate half types tens of times slower than fp32, so those are left out."""
    out = ["fp32"]
    if device.type == "cuda":
        if supports_half:
            out.append("fp16")
        if supports_bf16 and torch.cuda.is_bf16_supported():
            out.append("bf16")
    elif device.type == "mps":
        if supports_half:
            out.append("fp16")
    else:
        native = native_cpu_halves()
        out += [p for p, ok in (("fp16", supports_half), ("bf16", supports_bf16)) if ok and p in native]
    return out


def _model_input_shape(up: Upscaler, width: int, height: int) -> tuple[int, int, int, int]:
    spec = up.spec
    unit = up.model_scale if spec.input_kind == "bicubic" else 1
    channels = 1 if spec.colour == "y" else 3
    return (1, channels, height * unit, width * unit)


def measure(
    up: Upscaler,
    frames: list[np.ndarray],
    *,
    latency_runs: int = 3,
) -> SpeedResult:
    """Time ``up`` on ``frames`` (all of one size): one warm-up frame, the stream, then single frames."""
    if not frames:
        raise ValueError("no frames to time")
    height, width = frames[0].shape[:2]
    device = up.device
    macs = count_macs(up.model.module, _model_input_shape(up, width, height))
    next(up.upscale_many(frames[:1]))  # warm-up: lazy init, cuDNN autotuning, auto tile probe
    synchronize(device)
    reset_peak_memory(device)
    start = time.perf_counter()
    count = 0
    out_shape: tuple[int, ...] = ()
    for out in up.upscale_many(frames):
        count += 1
        out_shape = out.shape
    synchronize(device)
    seconds = time.perf_counter() - start
    latencies = []
    for i in range(max(1, min(latency_runs, len(frames)))):
        t0 = time.perf_counter()
        up.upscale(frames[i])
        synchronize(device)
        latencies.append(time.perf_counter() - t0)
    peak, kind = peak_memory_bytes(device)
    out_px = out_shape[0] * out_shape[1]
    return SpeedResult(
        model=up.spec.name,
        scale=up.model_scale,
        device=str(device),
        precision=str(up.dtype).removeprefix("torch."),
        tile=int(up.tile_px or 0),
        batch_size=up.batch_size,
        frames=count,
        width=width,
        height=height,
        seconds=seconds,
        fps=count / seconds,
        output_mpix_per_s=count * out_px / seconds / 1e6,
        ms_per_frame=1000 * seconds / count,
        latency_ms=1000 * statistics.median(latencies),
        gmacs_per_frame=macs / 1e9,
        gflops=2 * macs * count / seconds / 1e9,
        peak_memory_bytes=peak,
        memory_kind=kind,
    )


def matmul_gflops(
    device: torch.device, dtype: torch.dtype = torch.float32, *, size: int = 2048, repeats: int = 5
) -> float:
    """Dense ``size × size`` matrix-multiply throughput: the device's practical peak for ``dtype``."""
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    with torch.inference_mode():
        a @ b  # warm-up
        synchronize(device)
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            a @ b
            synchronize(device)
            best = min(best, time.perf_counter() - t0)
    return 2 * size**3 / best / 1e9

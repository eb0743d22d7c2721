"""Shared pieces of the benchmark scripts: argument parsing, the bare forward pass, interleaved timing.

Importing it applies the allocator setting the CLI applies at start-up (``upscale.memory``), so the
engine is timed as ``upscale`` runs it. In-process bare loops get it too; a plain research script does
not have it, which ``limit.py`` times in a child process.

Ratios are measured side by side: the variants run in turns (A, B, C, A, B, C, ...) and each gets the
median of its rounds, so a slow drift of the machine (clock boost, other load) hits all of them alike.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import torch

from upscale import sysinfo
from upscale.color import rgb_to_ycbcr
from upscale.engine import EngineOptions, Upscaler, _Frame, pick_device
from upscale.eval.speed import synchronize, synthetic_frames
from upscale.memory import keep_freed_memory
from upscale.models import REGISTRY, LoadedModel, build_model, load_model

KEPT_MEMORY = keep_freed_memory()


def parser(doc: str, *, size: str = "640x360", frames: int = 8) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="rlfn", help="model name (default rlfn)")
    p.add_argument("--scale", type=int, default=None, help="model scale (default: the model's)")
    p.add_argument(
        "--weights", default=None, help="weights file (default: random weights; speed does not depend on them)"
    )
    p.add_argument("--size", default=size, help=f"input WxH (default {size})")
    p.add_argument("--frames", type=int, default=frames, help=f"frames per round (default {frames})")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds; each variant reports its median")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=None, help="default: 4 on GPU, 1 on CPU")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    return p


def setup(args: argparse.Namespace) -> None:
    """Apply ``--threads``: on a CPU shared with other work, one thread avoids OpenMP barrier stalls."""
    if args.threads:
        torch.set_num_threads(args.threads)


def load(args: argparse.Namespace) -> LoadedModel:
    setup(args)
    spec = REGISTRY.get(args.model)
    if args.weights:
        return load_model(args.model, scale=args.scale, weights=args.weights)
    return build_model(spec, args.scale or spec.default_scale)


def frames_of(args: argparse.Namespace) -> list[np.ndarray]:
    w, h = (int(v) for v in args.size.lower().split("x"))
    return synthetic_frames(args.frames, w, h)


def upscaler(loaded: LoadedModel, args: argparse.Namespace, *, precision: str = "fp32", tile: int = 0) -> Upscaler:
    opts = EngineOptions(device=args.device, precision=precision, tile=tile, batch_size=args.batch_size)  # type: ignore[arg-type]
    return Upscaler(loaded, opts)


def engine_run(up: Upscaler, frames: list[np.ndarray]) -> Callable[[], None]:
    """One pass of the engine over ``frames``, outputs as uint8 arrays (what a caller gets)."""

    def go() -> None:
        for _ in up.upscale_many(frames):
            pass
        synchronize(up.device)

    return go


def model_inputs(up: Upscaler, frames: list[np.ndarray]) -> list[np.ndarray]:
    """Frames in the model's input space (C×H×W float32 in [0, 1]): RGB, or Y for Y-channel models."""
    out = []
    for f in frames:
        x = f.astype(np.float32) / 255.0
        if up.spec.colour == "y":
            x = rgb_to_ycbcr(x)[..., :1]
        out.append(np.ascontiguousarray(x.transpose(2, 0, 1)))
    return out


def window_area_ratio(up: Upscaler, frame: np.ndarray) -> float:
    """Input pixels the network processes per frame pixel: 1.0 untiled, more with tile overlap."""
    planes = model_inputs(up, [frame])[0]
    tiles = up._tiles(_Frame(planes, None))
    area = sum((t.window[2] - t.window[0]) * (t.window[3] - t.window[1]) for t in tiles)
    return area / (planes.shape[1] * planes.shape[2])


def tile_windows(up: Upscaler, frames: list[np.ndarray]) -> list[np.ndarray]:
    """The windows the engine would feed the network for ``frames`` (C×h×w float32 each)."""
    out = []
    for planes in model_inputs(up, frames):
        for t in up._tiles(_Frame(planes, None)):
            out.append(np.ascontiguousarray(planes[:, t.window[0] : t.window[2], t.window[1] : t.window[3]]))
    return out


def bare_run(
    up: Upscaler, frames: list[np.ndarray], *, transfers: bool = True, planes: list[np.ndarray] | None = None
) -> Callable[[], None]:
    """The plain loop a user would write around ``model(x)``: batch, to device, forward, back to uint8.

    ``transfers=False`` keeps inputs on the device and outputs there too: the forward pass alone.
    Input colour conversion (Y models) and bicubic pre-upsampling are done beforehand, outside the
    clock, so the engine is compared with the network's own cost. ``planes`` replaces the frames by
    ready model inputs (the engine's tile windows, say).
    """
    from upscale.resize import imresize

    spec, module, dtype, device, bs = up.spec, up.module, up.dtype, up.device, up.batch_size
    planes = planes if planes is not None else model_inputs(up, frames)
    batches = [torch.from_numpy(np.stack(planes[i : i + bs])) for i in range(0, len(planes), bs)]
    if spec.input_kind == "bicubic":
        batches = [imresize(b, scale=up.model_scale) for b in batches]
    if not transfers:
        batches = [b.to(device=device, dtype=dtype) for b in batches]

    @torch.inference_mode()
    def go() -> None:
        for b in batches:
            x = b.to(device=device, dtype=dtype, non_blocking=True) if transfers else b
            if up._channels_last:  # the engine's layout, so both use the same kernels
                x = x.contiguous(memory_format=torch.channels_last)
            y = module(x * spec.value_range if spec.value_range != 1.0 else x)
            if spec.value_range != 1.0:
                y = y / spec.value_range
            if transfers:
                (y.float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        synchronize(device)

    return go


def interleaved(variants: dict[str, Callable[[], float | None]], rounds: int) -> dict[str, float]:
    """Median seconds of each variant over ``rounds`` turns, after one untimed warm-up turn each. A
    variant that returns seconds (one that runs in another process) is taken at its word."""
    for fn in variants.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            t0 = time.perf_counter()
            took = fn()
            times[name].append(took if took is not None else time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def encode_pan(path: Path, base: np.ndarray, width: int, frames: int, options: dict[str, str], rate: int = 24) -> None:
    """A libx264 clip of a ``width``-wide window panning across the RGB image ``base``."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=rate, options=options)
        stream.width, stream.height, stream.pix_fmt = width, base.shape[0], "yuv420p"
        for i in range(frames):
            x = ((base.shape[1] - width) * i) // max(frames - 1, 1)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(base[:, x : x + width]), format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def machine(device: str) -> str:
    """``cpu: AMD EPYC, 2 threads, torch 2.13.0``: the device kind, then what :func:`upscale.sysinfo.machine` says."""
    dev = pick_device(device)
    return f"{dev.type}: {sysinfo.machine(str(dev))}"

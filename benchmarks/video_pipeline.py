"""How much of the engine's speed the whole ``upscale video`` pipeline keeps.

Decodes a clip once and times the engine alone on those frames (already converted to its input), then times
the full pipeline (decode, colour conversion, engine, encode, mux) on the same clip with the same engine.
The ratio of the two frame rates is the pipeline's efficiency; overlapping the stages should keep it near 1.

    python benchmarks/video_pipeline.py                      # rlfn x4 with random weights, 320x180 clip
    python benchmarks/video_pipeline.py --model bicubic --size 640x360 --frames 96 --device cuda
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import _harness as h
import cv2
import numpy as np
import torch
from safetensors.torch import save_file

from upscale.engine import EngineOptions, Upscaler
from upscale.io.streaming import VideoOptions, upscale_video
from upscale.io.video import EncodeSettings, VideoReader, encoder_pix_fmt
from upscale.io.yuv import Colour, make_frame_path, output_size
from upscale.models import REGISTRY, build_model, load_model

T = TypeVar("T")


def make_clip(path: Path, width: int, height: int, frames: int) -> None:
    """A pan across a synthetic but detailed texture (no test data needed), 24 fps, libx264."""
    rng = np.random.default_rng(0)
    base = cv2.resize(
        rng.integers(0, 256, (height // 4, width // 2, 3), dtype=np.uint8),
        (width * 2, height),
        interpolation=cv2.INTER_CUBIC,
    )
    base = cv2.GaussianBlur(base, (0, 0), 1.0)
    h.encode_pan(path, base, width, frames, {"crf": "16"})


def engine_fps(up: Upscaler, src: Path, codec: str) -> tuple[float, int]:
    """Frames per second of the engine alone (inputs prepared beforehand, outputs left as arrays)."""
    with VideoReader(src, copy_streams=False) as reader:
        decoded = list(reader.frames())
    first = decoded[0].frame
    pix_fmt = encoder_pix_fmt(codec, None, first.format.name)
    width, height, _ = output_size(up, first.width, first.height, pix_fmt)
    path = make_frame_path(up, first, Colour.of(first), pix_fmt, (width, height))
    inputs = [path.prepare(d.frame)[0] for d in decoded]
    for _ in path.run(inputs[: up.batch_size]):  # warm-up: allocation, cuDNN autotune, auto tile
        pass
    _sync(up)
    t0 = time.perf_counter()
    n = sum(1 for _ in path.run(inputs))
    _sync(up)
    return n / (time.perf_counter() - t0), n


def _in_thread(work: Callable[[], T]) -> T:
    """Run ``work`` on a fresh thread, as the pipeline runs the engine, so both see the same threading."""
    result: list[T] = []
    thread = threading.Thread(target=lambda: result.append(work()))
    thread.start()
    thread.join()
    return result[0]


def _sync(up: Upscaler) -> None:
    if up.device.type == "cuda":
        torch.cuda.synchronize(up.device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="rlfn")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--weights", default=None, help="weights file; default: random weights for the model")
    parser.add_argument("--size", default="320x180")
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--batch-size", type=int, default=None, help="default: 4 on GPU, 1 on CPU")
    parser.add_argument("--codec", default="libx264")
    parser.add_argument("--preset", default="veryfast")
    parser.add_argument("--queue", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3, help="alternating timings of each; the best counts")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        spec = REGISTRY.get(args.model)
        weights = args.weights
        if weights is None and spec.needs_weights:
            weights = str(folder / f"{spec.name}.safetensors")
            net = build_model(spec, args.scale).module
            save_file({k: v.contiguous() for k, v in net.state_dict().items()}, weights)
        loaded = load_model(args.model, scale=args.scale, weights=weights)
        up = Upscaler(loaded, EngineOptions(device=args.device, precision=args.precision, batch_size=args.batch_size))
        src = folder / "clip.mp4"
        make_clip(src, width, height, args.frames)

        opts = VideoOptions(encode=EncodeSettings(codec=args.codec, preset=args.preset), queue_depth=args.queue)
        alone = whole = 0.0
        for _ in range(args.rounds):  # alternate, and keep each one's best: other load on the machine only slows
            fps, n = _in_thread(lambda: engine_fps(up, src, args.codec))
            alone = max(alone, fps)
            result = upscale_video(src, folder / "out.mp4", up, opts)
            (folder / "out.mp4").unlink()
            whole = max(whole, result.frames / result.seconds)

    print(
        f"model {spec.name} x{args.scale} on {up.device} ({up.dtype}), {n} frames {width}x{height} -> "
        f"{round(width * up.scale)}x{round(height * up.scale)}, {args.codec} {args.preset}"
    )
    print(f"engine alone    {alone:8.2f} frames/s")
    print(f"whole pipeline  {whole:8.2f} frames/s")
    print(f"ratio           {whole / alone:8.3f}   (target >= 0.85)")


if __name__ == "__main__":
    main()

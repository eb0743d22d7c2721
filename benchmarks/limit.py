"""How close the engine runs to this machine's own limit.

First the peak: a large 3x3 convolution (128 -> 128 channels, channels_last) in each precision the
device has native kernels for. Then, per model and input size, the engine with its default options
(``--precision auto``, ``--tile auto``) and with ``--precision fp32``: achieved GFLOP/s (2 x the
convolution MACs of a whole frame, ``upscale.eval.flops``) as a share of the peak in the precision the
engine ran, and its speed against a bare fp32 NCHW ``model(x)`` loop, which stands for the usual
research-code inference loop. On the CPU that loop runs in a child process with glibc's allocator as
such a script has it, and ``bare loop, memory kept`` is the same loop in this process, with the
allocator setting the CLI applies at start-up (``upscale.memory``). ``engine, no fusion`` shows what
folding activations and adds into the convolutions (``upscale.fusion``) gives, and where the CPU has
native bf16 but the model is not declared safe in it, ``engine --precision bf16`` shows what bf16 would
give. ``--compile`` adds the engine with ``torch.compile`` (timed after one untimed pass, which
compiles).

    python benchmarks/limit.py                              # esrgan and rlfn x4, 320x180
    python benchmarks/limit.py --models rlfn --sizes 320x180,1280x720 --rounds 3
    python benchmarks/limit.py --device cuda --sizes 320x180,1280x720 --frames 8 --compile
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import _harness as h
import torch

from upscale.engine import DTYPES, EngineOptions, Upscaler, pick_device
from upscale.eval.flops import count_macs
from upscale.eval.speed import supported_precisions, synchronize, synthetic_frames
from upscale.models import REGISTRY, build_model

_NAMES = {dtype: name for name, dtype in DTYPES.items()}


@torch.inference_mode()
def conv_peak(device: torch.device, precision: str, *, side: int = 256, channels: int = 128, runs: int = 5) -> float:
    """GFLOP/s of a large 3x3 convolution in ``precision``, channels_last: the practical peak."""
    dtype = DTYPES[precision]
    conv = torch.nn.Conv2d(channels, channels, 3, padding=1).to(device, dtype).to(memory_format=torch.channels_last)
    x = torch.randn(1, channels, side, side, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
    conv(x)
    synchronize(device)
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        conv(x)
        synchronize(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * channels * channels * 9 * side * side / best / 1e9


def bare_nchw_fp32(module: torch.nn.Module, frames: list, device: torch.device, value_range: float):
    """The loop a research script runs: NCHW fp32 tensor in, ``model(x)``, uint8 out."""
    module = module.to(device, torch.float32).eval()
    batches = [torch.from_numpy(f).permute(2, 0, 1)[None].float().div(255) for f in frames]

    @torch.inference_mode()
    def go() -> None:
        for b in batches:
            y = module(b.to(device) * value_range) / value_range
            (y.clamp(0, 1) * 255).round().to(torch.uint8).cpu()
        synchronize(device)

    return go


def bare_in_plain_process(args: argparse.Namespace, name: str, size: str):
    """The bare loop in a child process with glibc's allocator left as a research script has it
    (``UPSCALE_MALLOC=default``): each call starts one, which runs the loop once untimed and once timed
    and reports the seconds (so the start-up is not counted). Random weights, as here."""
    cmd = [sys.executable, __file__, "--bare-child", "--models", name, "--sizes", size, "--frames", str(args.frames)]
    cmd += ["--device", args.device] + (["--threads", str(args.threads)] if args.threads else [])
    env = {**os.environ, "UPSCALE_MALLOC": "default"}

    def go() -> float:
        return float(subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout.split()[-1])

    return go


def bare_child(args: argparse.Namespace, device: torch.device) -> None:
    spec = REGISTRY.get(args.models)
    w, hgt = (int(v) for v in args.sizes.lower().split("x"))
    go = bare_nchw_fp32(build_model(spec, 4).module, synthetic_frames(args.frames, w, hgt), device, spec.value_range)
    go()
    t0 = time.perf_counter()
    go()
    print(time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="esrgan,rlfn", help="comma-separated x4 models (default esrgan,rlfn)")
    p.add_argument("--sizes", default="320x180", help="comma-separated input sizes WxH (default 320x180)")
    p.add_argument("--frames", type=int, default=1)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--compile", action="store_true", help="also time the engine with --compile")
    p.add_argument("--bare-child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    if args.bare_child:
        return bare_child(args, device)
    native = supported_precisions(device, supports_half=True, supports_bf16=True)
    print(h.machine(args.device))
    peaks = {prec: conv_peak(device, prec) for prec in native}
    print(
        "peak (3x3 conv 128->128, 256x256, channels_last): "
        + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in peaks.items())
    )
    for name in args.models.split(","):
        spec = REGISTRY.get(name)
        loaded = build_model(spec, 4)
        if spec.colour != "rgb" or spec.input_kind != "lr":
            raise SystemExit(f"{name}: the bare loop here takes RGB LR input; pick an RGB LR-input model")
        for size in args.sizes.split(","):
            w, hgt = (int(v) for v in size.lower().split("x"))
            frames = synthetic_frames(args.frames, w, hgt)
            macs = count_macs(loaded.module, (1, 3, hgt, w))
            engines = {
                "engine (defaults)": Upscaler(loaded, EngineOptions(device=args.device)),
                "engine --precision fp32": Upscaler(loaded, EngineOptions(device=args.device, precision="fp32")),
            }
            if "bf16" in peaks and spec.supports_bf16 and engines["engine (defaults)"].dtype != torch.bfloat16:
                # what bf16 would give where --precision auto keeps fp32 (the model is not declared bf16-safe)
                bf16 = EngineOptions(device=args.device, precision="bf16")
                engines["engine --precision bf16"] = Upscaler(loaded, bf16)
            if device.type == "cpu":
                engines["engine, no fusion"] = Upscaler(loaded, EngineOptions(device=args.device, fuse=False))
            if args.compile:
                engines["engine --compile"] = Upscaler(loaded, EngineOptions(device=args.device, compile=True))
            variants = {k: h.engine_run(up, frames) for k, up in engines.items()}
            bare_module = build_model(spec, 4).module
            bare_module.load_state_dict(loaded.module.state_dict())
            in_process = bare_nchw_fp32(bare_module, frames, device, spec.value_range)
            if device.type == "cpu" and h.KEPT_MEMORY:
                variants["bare NCHW fp32 loop"] = bare_in_plain_process(args, name, size)
                variants["bare loop, memory kept"] = in_process
            else:
                variants["bare NCHW fp32 loop"] = in_process
            t = h.interleaved(variants, args.rounds)
            print(f"\n{name} x4, {args.frames} frame(s) of {size}, {2 * macs / 1e9:.0f} GFLOP/frame")
            bare = t["bare NCHW fp32 loop"]
            for label, sec in t.items():
                gflops = 2 * macs * args.frames / sec / 1e9
                prec = "fp32" if label.startswith("bare") else _NAMES[engines[label].dtype]
                share = f"{gflops / peaks[prec]:6.1%} of {prec} peak" if prec in peaks else f"({prec} emulated)"
                per_frame = sec / args.frames
                print(f"  {label:24s} {per_frame:8.2f} s/frame {gflops:8.1f} GFLOP/s  {share}  {bare / sec:5.2f}x bare")


if __name__ == "__main__":
    main()

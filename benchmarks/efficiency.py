"""Efficiency: achieved GFLOP/s of the network (through the engine, and bare) over dense matmul GFLOP/s.

Achieved GFLOP/s counts 2 FLOPs per convolution/linear multiply-accumulate of the whole frame
(``upscale.eval.flops``); the reference is a square matrix multiply in the same precision on the same
device, the most a device practically delivers. Small-channel SR networks are memory-bound, so a
low fraction is expected; the figure tracks kernel and layout choices over time.

    python benchmarks/efficiency.py --device cuda --precision fp16 --size 1280x720
"""

from __future__ import annotations

import _harness as h

from upscale.eval.flops import count_macs
from upscale.eval.speed import matmul_gflops


def main() -> None:
    p = h.parser(__doc__ or "")
    p.add_argument("--precision", default="fp32")
    p.add_argument("--matmul-size", type=int, default=2048)
    args = p.parse_args()
    loaded = h.load(args)
    frames = h.frames_of(args)
    up = h.upscaler(loaded, args, precision=args.precision, tile=0)
    h_in, w_in = frames[0].shape[:2]
    unit = up.model_scale if up.spec.input_kind == "bicubic" else 1
    channels = 1 if up.spec.colour == "y" else 3
    macs = count_macs(loaded.module, (1, channels, h_in * unit, w_in * unit))
    t = h.interleaved(
        {"engine": h.engine_run(up, frames), "bare": h.bare_run(up, frames, transfers=False)}, args.rounds
    )
    peak = matmul_gflops(up.device, up.dtype, size=args.matmul_size)
    n = len(frames)
    print(f"{up.spec.name} x{up.model_scale}, {n} frames of {args.size}, {up.dtype}, {macs / 1e9:.3g} GMAC/frame")
    print(h.machine(args.device))
    print(f"  dense matmul {args.matmul_size}^3:        {peak:9.1f} GFLOP/s")
    for name, sec in t.items():
        achieved = 2 * macs * n / sec / 1e9
        label = "engine (whole frames)" if name == "engine" else "bare forward (on device)"
        print(f"  {label:<28} {achieved:9.1f} GFLOP/s   {achieved / peak:6.3f} of matmul")


if __name__ == "__main__":
    main()

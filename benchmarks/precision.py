"""Precision: the engine's frames/s in fp16 and bf16 divided by its frames/s in fp32.

Only precisions with native kernels on the device run (see ``upscale.eval.speed.supported_precisions``);
``--all`` also times the emulated ones (on CPUs without AVX512-BF16/AMX they are tens of times slower).

    python benchmarks/precision.py --device cuda --size 1280x720
"""

from __future__ import annotations

import copy
import dataclasses

import _harness as h

from upscale.engine import pick_device
from upscale.eval.speed import supported_precisions


def main() -> None:
    p = h.parser(__doc__ or "")
    p.add_argument("--tile", type=int, default=0, help="tile size (LR px; default 0 = untiled)")
    p.add_argument("--all", action="store_true", help="also time precisions the device only emulates")
    args = p.parse_args()
    loaded = h.load(args)
    frames = h.frames_of(args)
    dev = pick_device(args.device)
    spec = loaded.spec
    names = (
        ["fp32", "fp16", "bf16"]
        if args.all
        else supported_precisions(dev, supports_half=spec.supports_half, supports_bf16=spec.supports_bf16)
    )
    # One copy of the network per precision: the engine converts the module it is given in place.
    ups = {
        name: h.upscaler(
            dataclasses.replace(loaded, module=copy.deepcopy(loaded.module)), args, precision=name, tile=args.tile
        )
        for name in names
    }
    t = h.interleaved({k: h.engine_run(up, frames) for k, up in ups.items()}, args.rounds)
    n = len(frames)
    batch = next(iter(ups.values())).batch_size
    print(f"{spec.name} x{loaded.scale}, {n} frames of {args.size}, tile {args.tile}, batch {batch}")
    print(h.machine(args.device))
    if len(names) == 1:
        print("  only fp32 has native kernels here (use --all to time emulated fp16/bf16)")
    for k, sec in t.items():
        print(f"  {k:<5} {n / sec:9.3f} frames/s   {t['fp32'] / sec:6.3f} x fp32")


if __name__ == "__main__":
    main()

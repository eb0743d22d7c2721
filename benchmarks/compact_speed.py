"""Compact vs RRDBNet: realesr-animevideov3's network (SRVGGNetCompact, 16 convolutions) against
realesrgan-x4plus's (RRDBNet, 23 blocks), x4 through the same engine, side by side.

Random weights: the speed depends on the architecture, not on the values. Both run in fp32, then each
in what ``--precision auto`` picks for it on this machine (bf16 only for models declared safe in it, on
CPUs with native bf16 kernels); a pair where auto is fp32 for both is not run twice. The variants run
in turns (``_harness.interleaved``) and each reports its median, so a drift of the machine hits all of
them alike. The goal: compact at least 10x faster than RRDBNet.

    python benchmarks/compact_speed.py                        # 320x180 on the CPU, 1 frame, 2 rounds
    python benchmarks/compact_speed.py --precisions fp32,auto,bf16   # bf16 too, where the CPU has it
    python benchmarks/compact_speed.py --device cuda --size 1280x720 --frames 8 --rounds 3
"""

from __future__ import annotations

import argparse
import copy
import dataclasses

import _harness as h

from upscale.eval.flops import count_macs
from upscale.models import REGISTRY, LoadedModel, build_model

NETWORKS = {
    "compact": ("compact", {"num_conv": 16}, "SRVGGNetCompact, 16 convs (realesr-animevideov3)"),
    "rrdbnet": ("esrgan", {"num_block": 23}, "RRDBNet, 23 blocks (realesrgan-x4plus)"),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default="320x180", help="input WxH (default 320x180)")
    p.add_argument("--frames", type=int, default=1, help="frames per round (default 1)")
    p.add_argument("--rounds", type=int, default=2, help="interleaved rounds; each variant reports its median")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=None, help="default: 4 on GPU, 1 on CPU")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    p.add_argument(
        "--precisions", default="fp32,auto", help="comma-separated: fp32, auto, bf16, fp16 (default fp32,auto)"
    )
    args = p.parse_args()
    h.setup(args)
    print(h.machine(args.device))
    frames = h.frames_of(args)
    w, hgt = (int(v) for v in args.size.lower().split("x"))
    nets: dict[str, LoadedModel] = {}
    for label, (model, hparams, _) in NETWORKS.items():
        nets[label] = build_model(REGISTRY.get(model), 4, **hparams)
    ups = {}
    same_as: dict[str, str] = {}
    for precision in args.precisions.split(","):
        chosen = {}
        for label, loaded in nets.items():
            # One copy of the network per engine: the engine lays the module it is given out channels-last.
            fresh = dataclasses.replace(loaded, module=copy.deepcopy(loaded.module))
            chosen[label] = h.upscaler(fresh, args, precision=precision, tile=0)
        dtypes = {label: up.dtype for label, up in chosen.items()}
        earlier = next((q for q in set(same_as.values()) if _dtypes(ups, q) == dtypes), None)
        if earlier is not None:
            same_as[precision] = earlier  # e.g. auto is fp32 for both here: not timed twice
            continue
        same_as[precision] = precision
        ups.update({(label, precision): up for label, up in chosen.items()})
    t = h.interleaved({key: h.engine_run(up, frames) for key, up in ups.items()}, args.rounds)
    n = len(frames)
    print(f"x4, {n} frame(s) of {args.size} per round, median of {args.rounds} rounds, untiled, the CLI's engine")
    for label, (_, _, what) in NETWORKS.items():
        gmac = count_macs(nets[label].module, (1, 3, hgt, w)) / 1e9
        print(f"  {label}: {what}, {nets[label].num_params:,} parameters, {gmac:.1f} GMAC/frame")
    for precision, timed in same_as.items():
        if timed != precision:
            print(f"  {precision}: the same precisions as {timed} for both here (not timed twice)")
            continue
        for label in NETWORKS:
            sec = t[(label, precision)] / n
            dtype = str(ups[(label, precision)].dtype).removeprefix("torch.")
            print(f"  {label:<8} {precision:<5} ({dtype:<8}) {sec:8.3f} s/frame  {1 / sec:8.3f} frames/s")
        ratio = t[("rrdbnet", precision)] / t[("compact", precision)]
        print(f"  {precision}: compact is {ratio:.1f}x faster than rrdbnet (goal: at least 10x)")


def _dtypes(ups: dict, precision: str) -> dict:
    return {label: up.dtype for (label, p), up in ups.items() if p == precision}


if __name__ == "__main__":
    main()

"""Quality on real-world inputs: Set5 and Set14 degraded by the project's real-world pipeline at a fixed seed.

Every model upscales the same LR images: each HR image (mod-cropped to the scale) degraded once by
Real-ESRGAN's second-order blur, resize, noise and JPEG (``upscale.train.degradations``), drawn from
``--seed`` and the image's name, and is scored by the evaluation protocol (PSNR/SSIM on Y, ``scale``
pixels cropped), as ``upscale eval MODEL --degradation real`` does. The bicubic columns upscale the same
degraded LR images; ``gain`` is over the first model listed.

    python benchmarks/real_world.py --data ../shared/data/bench/Set5 --data ../shared/data/bench/Set14 \\
        --model rlfn --model rlfn-real

A model is a name (its default weights, as a bare ``-m NAME`` runs) or ``NAME=WEIGHTS``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from upscale import sysinfo
from upscale.engine import EngineOptions, Upscaler
from upscale.eval.protocol import Protocol, evaluate_dataset
from upscale.models import load_model

_KEYS = ("psnr", "ssim", "bicubic_psnr", "bicubic_ssim")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, action="append", required=True, help="HR folder (repeatable)")
    p.add_argument("--model", action="append", required=True, help="NAME or NAME=WEIGHTS (repeatable)")
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--seed", type=int, default=0, help="seed of the degradations (default 0)")
    p.add_argument("--precision", default="fp32", help="engine precision (default fp32, as eval scores)")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"cpu: {sysinfo.machine()}; real-world LR, seed {args.seed}, x{args.scale}, {args.precision}")
    protocol = Protocol(args.scale, degradation="real", seed=args.seed)
    scores: dict[tuple[str, str], list[float]] = {}
    for spec in args.model:
        name, _, weights = spec.partition("=")
        loaded = load_model(name, scale=args.scale, weights=weights or None)
        up = Upscaler(loaded, EngineOptions(device="cpu", precision=args.precision, tile=0))
        for hr in args.data:
            r = evaluate_dataset(up, hr, protocol)
            if r.errors:
                raise SystemExit(f"{spec}: {r.errors[0][0]}: {r.errors[0][1]}")
            scores[spec, hr.name] = [r.mean(k) for k in _KEYS]
    width = max(len(m) for m in args.model) + 2
    print(f"\n{'model':<{width}}{'set':<8}{'PSNR':>8}{'SSIM':>8}{'bicubic':>9}{'SSIM':>8}{'gain':>8}")
    for (spec, dataset), (psnr, ssim, bpsnr, bssim) in scores.items():
        gain = psnr - scores[args.model[0], dataset][0]
        print(f"{spec:<{width}}{dataset:<8}{psnr:>8.2f}{ssim:>8.4f}{bpsnr:>9.2f}{bssim:>8.4f}{gain:>+8.2f}")


if __name__ == "__main__":
    main()

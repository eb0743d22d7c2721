"""Training speed: iterations/s of one training step (batch, forward, loss, backward, optimiser step)
per model, precision and memory layout, side by side.

The step is the one ``upscale train`` runs (same objective, optimiser, autocast and layout); the data
are random crops of synthetic photos, made in a temporary folder. Precisions without native kernels
on the device are left out unless ``--all``.

    python benchmarks/train_speed.py --models rlfn,srcnn --batch-size 16 --patch 192
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from pathlib import Path

import _harness as h
import cv2
import torch

from upscale.engine import DTYPES, pick_device
from upscale.eval.speed import supported_precisions, synthetic_frames
from upscale.models import REGISTRY, build_model
from upscale.train.data import PatchSampler
from upscale.train.loop import _optimizer, _param_groups
from upscale.train.objectives import LossSetup, make_objective
from upscale.train.recipes import recipe_for


def step_fn(model: str, scale: int, args: argparse.Namespace, data: Path, precision: str, channels_last: bool):
    spec = REGISTRY.get(model)
    device = pick_device(args.device)
    recipe = recipe_for(model).override(batch_size=args.batch_size, patch=args.patch)
    net = build_model(spec, scale).module.train().to(device)
    objective = make_objective(recipe, spec, LossSetup(scale=scale, random_vgg=True), net, recipe.iters)
    if channels_last:
        net.to(memory_format=torch.channels_last)
    opt = _optimizer(recipe, _param_groups(net, recipe, objective.extra, objective))
    sampler = PatchSampler(
        [data], scale=scale, patch=recipe.patch, colour=spec.colour, pre_upsample=spec.input_kind == "bicubic"
    )
    dtype = None if precision == "fp32" else DTYPES[precision]  # None: no autocast
    layout = torch.channels_last if channels_last else torch.contiguous_format
    it = [0]

    def go() -> None:
        for _ in range(args.steps):
            b = sampler.sample(0, it[0], recipe.batch_size)
            for name in ("lr", "hr", "lr_small"):
                setattr(b, name, getattr(b, name).to(device).contiguous(memory_format=layout))
            ctx = torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()
            with ctx:
                loss, _, _ = objective.loss(net, b, it[0])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            it[0] += 1
        h.synchronize(device)

    return go


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--models", default="rlfn,srcnn,srresnet", help="comma-separated models (default rlfn,srcnn,srresnet)"
    )
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--patch", type=int, default=192, help="HR crop side (default 192: 48-px LR at x4)")
    p.add_argument("--steps", type=int, default=3, help="training steps per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--all", action="store_true", help="also time precisions the device only emulates")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    # Training takes fp16 on CUDA only (see upscale.train.loop.pick_precision).
    cuda = device.type == "cuda"
    if args.all:
        precisions = ["fp32", "fp16", "bf16"] if cuda else ["fp32", "bf16"]
    else:
        precisions = supported_precisions(device, supports_half=cuda, supports_bf16=True)
    print(h.machine(args.device))
    print(f"batch {args.batch_size}, HR patch {args.patch}, {args.steps} steps x {args.rounds} rounds")
    with tempfile.TemporaryDirectory() as tmp:
        for i, frame in enumerate(synthetic_frames(4, 480, 320)):
            cv2.imwrite(str(Path(tmp) / f"{i}.png"), frame[..., ::-1])
        for model in args.models.split(","):
            spec = REGISTRY.get(model)
            scale = args.scale if args.scale in spec.scales or spec.any_scale else spec.default_scale
            variants = {
                f"{prec} {'channels_last' if cl else 'NCHW'}": step_fn(model, scale, args, Path(tmp), prec, cl)
                for prec in precisions
                for cl in (False, True)
            }
            t = h.interleaved(variants, args.rounds)
            base = t["fp32 NCHW"]
            print(f"{model} x{scale}")
            for name, sec in t.items():
                print(
                    f"  {name:<20} {args.steps / sec:7.3f} it/s  {sec / args.steps:7.3f} s/it"
                    f"  {base / sec:5.2f} x fp32 NCHW"
                )


if __name__ == "__main__":
    main()

"""The training loop: one function for every recipe, on one process or many (``torchrun``).

The loop owns what all recipes share: precision and memory format, the optimisers and the learning
rate schedule (a pure function of the iteration, so resuming needs no scheduler state), EMA, gradient
clipping, distributed gradient averaging, validation by the ``eval`` protocol, checkpoints, the metrics
file and its plot. What is minimised comes from :mod:`upscale.train.objectives`.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import logging
import math
import os
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import distributed as dist
from torch import nn
from tqdm import tqdm

from ..engine import DTYPES, EngineOptions, Upscaler, pick_device
from ..errors import UpscaleError
from ..eval.protocol import Protocol, evaluate_dataset
from ..eval.speed import supported_precisions
from ..models import REGISTRY
from ..models.loading import LoadedModel, build_model, read_state_dict
from ..sysinfo import machine
from .checkpoint import CHECKPOINT, FINAL, TrainingError, load_checkpoint, save_checkpoint, save_weights
from .data import PatchSampler, batches, crop_side
from .objectives import ForwardAll, LossSetup, Objective, make_objective
from .probe import checked_objective, objective_modules
from .recipes import Recipe

log = logging.getLogger("upscale.train")

_DTYPE_NAMES = {dtype: name for name, dtype in DTYPES.items()}
RESUME_KEYS = ("model", "scale", "degradation")
"""Settings a resumed run must share with the run it continues (besides the recipe's name)."""


@dataclass
class TrainConfig:
    """Every setting of a run, resolved (the recipe with its overrides applied)."""

    model: str
    scale: int
    data: list[str]
    out: str
    recipe: Recipe
    arch: dict[str, Any] = field(default_factory=dict)
    """Architecture options passed to the model's builder (``num_block`` of ESRGAN, ``n_blocks`` of DRN)."""
    stage: str | None = None
    lr_data: str | None = None
    val: list[str] = field(default_factory=list)
    val_every: int = 1000
    time_limit_s: float | None = None
    init: str | None = None
    resume: bool = False
    precision: str = "auto"
    device: str = "auto"
    seed: int = 0
    degradation: str = "bicubic"
    unpaired: str | None = None
    vgg_weights: str | None = None
    random_vgg: bool = False
    """A randomly initialised VGG for the perceptual losses (tests only)."""
    checkpoint_every: int = 500
    log_every: int = 10
    workers: int | None = None
    """Processes that draw batches ahead of the training step (None: none on the CPU, where they would take
    the step's cores; on a GPU, one per spare core up to 8)."""
    channels_last: bool = True

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["recipe"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self.recipe).items()}
        d["recipe"]["loss_weights"] = dict(self.recipe.loss_weights)
        return d


@dataclass
class TrainResult:
    final: Path
    iterations: int
    seconds: float
    stopped: str
    """``done``, ``time limit`` or ``interrupted``."""
    validation: dict[str, dict[str, float]] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------ helpers


def pick_precision(precision: str, device: torch.device) -> torch.dtype:
    """``auto``: fp16 autocast on CUDA, bf16 where the CPU has native bf16 kernels, fp32 otherwise."""
    if precision == "auto":
        if device.type == "cuda":
            return torch.float16
        if device.type == "cpu" and "bf16" in supported_precisions(device, supports_half=False, supports_bf16=True):
            return torch.bfloat16
        return torch.float32
    if precision not in DTYPES:
        raise UpscaleError(f"unknown precision '{precision}'; use auto, fp32, bf16 or fp16")
    if DTYPES[precision] is torch.float16 and device.type != "cuda":
        raise UpscaleError("fp16 training needs a CUDA device; use bf16 or fp32 on the CPU")
    return DTYPES[precision]


def lr_factor(recipe: Recipe, iteration: int, total: int) -> float:
    """The schedule's multiplier of the base learning rate at ``iteration`` (0-based) of ``total``."""
    if recipe.schedule == "cosine":
        floor = recipe.lr_min / recipe.lr
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(iteration, total) / total))
    if recipe.schedule == "step":
        return recipe.gamma ** sum(iteration >= m * total for m in recipe.milestones)
    return 1.0


def load_init(net: nn.Module, spec_name: str, path: str | Path) -> None:
    """Initialise ``net`` from a weights file of the same architecture; tensors whose shape differs
    (another scale's upsampler, when warm-starting x4 from x2) are left as they are and listed."""
    spec = REGISTRY.get(spec_name)
    sd = read_state_dict(path)
    converted = spec.convert(sd) if spec.convert else sd
    if spec.detect is not None and not spec.detect(converted):
        found = REGISTRY.identify(sd)
        raise TrainingError(
            f"{path}: holds {f'weights of {found.name!r}' if found else 'an unknown architecture'}, not '{spec_name}'"
        )
    own = net.state_dict()
    fitting = {k: v for k, v in converted.items() if k in own and own[k].shape == v.shape}
    if not fitting:
        raise TrainingError(f"{path}: no tensor fits '{spec_name}'")
    net.load_state_dict(fitting, strict=False)
    skipped = sorted(set(own) - set(fitting))
    log.info(
        "initialised %d of %d tensors from %s%s",
        len(fitting),
        len(own),
        path,
        f"; kept the new {', '.join(skipped)}" if skipped else "",
    )


class EMA:
    """Exponential moving average of a network's weights (buffers are copied)."""

    def __init__(self, net: nn.Module, decay: float) -> None:
        self.decay = decay
        self.module = copy.deepcopy(net).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        for e, p in zip(self.module.parameters(), net.parameters(), strict=True):
            e.lerp_(p.detach(), 1 - self.decay)
        for e, b in zip(self.module.buffers(), net.buffers(), strict=True):
            e.copy_(b)


def _world() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), dist.get_world_size()) if world > 1 else (0, 1)


class _StopRequest:
    """Ctrl-C (SIGINT) or SIGTERM asks the loop to stop after the current iteration, so the checkpoint
    it then writes is consistent; a second Ctrl-C stops at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        log.warning("stopping after this iteration (a checkpoint is written); Ctrl-C again to stop at once")

    def agreed(self, world: int, device: torch.device) -> bool:
        """Whether to stop; under torchrun all processes stop at the same iteration."""
        if world == 1:
            return self.requested
        flag = torch.tensor([1.0 if self.requested else 0.0], device=device)
        dist.all_reduce(flag)
        return bool(flag.item())

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _check_replicas(modules: list[nn.Module], world: int, device: torch.device) -> None:
    """Every process must end with the same weights (the model's and the extra networks' trained with it: DRN's
    duals, a discriminator); a difference means the gradients were not shared."""
    flat = torch.cat([p.detach().double().reshape(-1) for m in modules for p in m.parameters()])
    digest = torch.stack([flat.sum(), flat.abs().sum(), (flat * torch.arange(flat.numel(), device=flat.device)).sum()])
    gathered = [torch.zeros_like(digest) for _ in range(world)]
    dist.all_gather(gathered, digest)
    if any(not torch.equal(g, gathered[0]) for g in gathered):
        raise TrainingError(f"the {world} processes ended with different weights")
    log.info("all %d processes hold identical weights", world)


# ------------------------------------------------------------------------------------------ validation


def validate(module: nn.Module, model: str, scale: int, folders: list[str], device: str) -> dict[str, dict[str, float]]:
    """PSNR/SSIM on Y by the ``eval`` protocol, with bicubic beside it, per validation folder."""
    spec = REGISTRY.get(model)
    net = copy.deepcopy(module).float().to(memory_format=torch.contiguous_format).eval()
    up = Upscaler(LoadedModel(spec, net, scale, None), EngineOptions(device=device, precision="fp32", tile=0))
    out = {}
    for folder in folders:
        res = evaluate_dataset(up, Path(folder), Protocol(scale=scale))
        out[Path(folder).name] = {k: res.mean(k) for k in ("psnr", "ssim", "bicubic_psnr", "bicubic_ssim")}
    return out


# ------------------------------------------------------------------------------------------ metrics


class Metrics:
    """``metrics.csv`` in long form (iteration, seconds, metric, value) and its plot ``metrics.png``."""

    def __init__(self, folder: Path, resume_from: int | None) -> None:
        self.path = folder / "metrics.csv"
        self.plot_path = folder / "metrics.png"
        rows = []
        if resume_from is not None and self.path.is_file():
            with self.path.open(newline="") as fh:
                rows = [r for r in csv.DictReader(fh) if int(r["iteration"]) <= resume_from]
        with self.path.open("w", newline="") as fh:  # rows after the checkpoint will be redone
            w = csv.writer(fh)
            w.writerow(["iteration", "seconds", "metric", "value"])
            w.writerows([r["iteration"], r["seconds"], r["metric"], r["value"]] for r in rows)
        self.rows = [(int(r["iteration"]), r["metric"], float(r["value"])) for r in rows]

    def add(self, iteration: int, seconds: float, values: dict[str, float]) -> None:
        with self.path.open("a", newline="") as fh:
            w = csv.writer(fh)
            for k, v in values.items():
                w.writerow([iteration, f"{seconds:.1f}", k, f"{v:.6g}"])
                self.rows.append((iteration, k, v))

    def plot(self) -> None:
        try:
            import matplotlib

            matplotlib.use("Agg")
            from matplotlib import pyplot as plt
        except ImportError:
            log.info("no plot: matplotlib is not installed (pip install 'upscale[train]')")
            return
        fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(10, 3.6))
        for name, ax in (("loss", ax_loss),):
            pts = [(i, v) for i, k, v in self.rows if k == name]
            if pts:
                ax.plot(*zip(*pts, strict=True), lw=0.8)
                ax.set_yscale("log")
            ax.set_xlabel("iteration")
            ax.set_title("training loss")
        val_names = sorted({k for _, k, _ in self.rows if k.endswith("/psnr")})
        for name in val_names:
            pts = [(i, v) for i, k, v in self.rows if k == name]
            (line,) = ax_val.plot(*zip(*pts, strict=True), marker="o", ms=3, label=name.split("/")[0])
            bic = [v for _, k, v in self.rows if k == name.replace("/psnr", "/bicubic_psnr")]
            if bic:
                ax_val.axhline(bic[-1], ls="--", lw=0.8, color=line.get_color())
        ax_val.set_title("validation PSNR (Y), dashed: bicubic")
        ax_val.set_xlabel("iteration")
        if val_names:
            ax_val.legend()
        fig.tight_layout()
        tmp = self.plot_path.with_name(".metrics.part.png")
        fig.savefig(tmp, dpi=80)
        plt.close(fig)
        os.replace(tmp, self.plot_path)


# ------------------------------------------------------------------------------------------ the loop


def train(cfg: TrainConfig, *, progress: bool = True) -> TrainResult:
    """Run (or resume) training as ``cfg`` says; returns where the final weights are."""
    rank, world = _world()
    recipe = cfg.recipe
    if recipe.batch_size % world:
        raise UpscaleError(f"batch size {recipe.batch_size} does not split over {world} processes")
    device = pick_device(cfg.device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    dtype = pick_precision(cfg.precision, device)
    spec = REGISTRY.get(cfg.model)
    spec.check_scale(cfg.scale)
    if cfg.recipe.needs_init and not cfg.init and not cfg.resume:
        raise UpscaleError(f"recipe '{recipe.name}' continues a previous stage: pass --init WEIGHTS")
    out = Path(cfg.out)
    ckpt_path = out / CHECKPOINT
    state = None
    if cfg.resume:
        state = load_checkpoint(ckpt_path)
        _check_resume(state["config"], cfg, ckpt_path)
    elif ckpt_path.exists():
        raise UpscaleError(f"{out}: holds a run already; pass --resume to continue it, or another --out")
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(cfg.seed)
    net = build_model(spec, cfg.scale, **cfg.arch).module.train()
    if cfg.init and state is None:
        load_init(net, cfg.model, cfg.init)
    net.to(device)
    if cfg.channels_last:
        net.to(memory_format=torch.channels_last)
    setup = LossSetup(scale=cfg.scale, vgg_weights=cfg.vgg_weights, random_vgg=cfg.random_vgg)

    def build_objective(patch: int, loss_setup: LossSetup) -> Objective:
        built = make_objective(replace(recipe, patch=patch), spec, loss_setup, net, recipe.iters)
        for m in built.extra.values():
            m.train()
        for m in objective_modules(built):
            m.to(device)
            if cfg.channels_last:
                m.to(memory_format=torch.channels_last)
        return built

    objective = checked_objective(
        build_objective,
        setup,
        net,
        spec,
        scale=cfg.scale,
        patch=crop_side(recipe.patch, cfg.scale),
        given_patch=recipe.patch,
        batch=min(2, recipe.batch_size // world),
        device=device,
        recipe=recipe.name,
    )
    extras = dict(objective.extra)
    ema = EMA(net, recipe.ema) if recipe.ema else None

    opt_g = _optimizer(recipe, _param_groups(net, recipe, extras, objective))
    d_nets = {k: m for k, m in extras.items() if k == "discriminator"}
    d_groups = [{"params": list(m.parameters()), "lr": recipe.d_lr} for m in d_nets.values()]
    opt_d = _optimizer(recipe, d_groups) if d_nets else None
    # What the generator's step averages and clips: not a discriminator, whose gradients (still there from its
    # last step) are its own step's.
    g_modules = [net, *(m for k, m in extras.items() if k not in d_nets)]
    scaler = _grad_scaler(dtype, device)

    start = 0
    if state is not None:
        net.load_state_dict(state["model"])
        for k, m in extras.items():
            m.load_state_dict(state["extra"][k])
        opt_g.load_state_dict(state["opt_g"])
        if opt_d is not None:
            opt_d.load_state_dict(state["opt_d"])
        if ema is not None:
            ema.module.load_state_dict(state["ema"])
        if scaler is not None and "scaler" in state:
            scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"])
        start = int(state["iteration"])
    run_net: nn.Module = ForwardAll(net) if objective.uses_forward_all else net
    if world > 1:
        run_net = nn.parallel.DistributedDataParallel(
            run_net, device_ids=[device.index] if device.type == "cuda" else None
        )

    sampler = PatchSampler(
        cfg.data,
        scale=cfg.scale,
        patch=recipe.patch,
        colour=spec.colour,
        pre_upsample=spec.input_kind == "bicubic",
        lr_folder=cfg.lr_data,
        degradation=cfg.degradation,  # type: ignore[arg-type]
    )
    if cfg.unpaired:
        objective.unpaired = _unpaired_source(cfg, sampler, device, rank, world)  # type: ignore[attr-defined]
    metrics = Metrics(out, start if state else None) if rank == 0 else None
    workers = _workers(cfg.workers, device, world)
    if rank == 0:
        (out / "config.json").write_text(_json(cfg.to_dict()))
        precision_name = _DTYPE_NAMES[dtype] + ("" if dtype is torch.float32 else " autocast")
        layout = ", channels_last" if cfg.channels_last else ""
        line = (
            f"training {cfg.model} x{cfg.scale} with recipe {recipe.name} on {device} ({precision_name}{layout}), "
            f"{len(sampler)} images, iterations {start}..{recipe.iters}"
            + (f", {workers} data workers" if workers else "")
        )
        if progress:
            tqdm.write(line, file=sys.stderr)
        else:
            log.info(line)

    def snapshot(iteration: int) -> dict[str, Any]:
        snap = {
            "iteration": iteration,
            "seconds": elapsed(),
            "config": cfg.to_dict(),
            "model": net.state_dict(),
            "extra": {k: m.state_dict() for k, m in extras.items()},
            "opt_g": opt_g.state_dict(),
            "rng": torch.get_rng_state(),
        }
        if opt_d is not None:
            snap["opt_d"] = opt_d.state_dict()
        if ema is not None:
            snap["ema"] = ema.module.state_dict()
        if scaler is not None:
            snap["scaler"] = scaler.state_dict()
        return snap

    def save(iteration: int) -> None:
        if rank != 0:
            return
        save_checkpoint(ckpt_path, snapshot(iteration))
        meta = {
            **_metadata(cfg, iteration),
            "seconds": f"{elapsed():.0f}",
            "precision": _DTYPE_NAMES[dtype],
            "machine": machine(str(device)) + (f", {world} processes" if world > 1 else ""),
        }
        save_weights(out / FINAL, (ema.module if ema else net), meta)
        metrics.plot()  # type: ignore[union-attr]

    autocast = (
        (lambda: torch.autocast(device.type, dtype=dtype)) if dtype is not torch.float32 else contextlib.nullcontext
    )
    t0 = time.perf_counter()
    before = float(state.get("seconds", 0.0)) if state else 0.0

    def elapsed() -> float:
        """Training seconds over all the sessions of the run."""
        return before + time.perf_counter() - t0

    it = start
    stopped = "done"
    validation: dict[str, dict[str, float]] = {}
    bar = tqdm(total=recipe.iters, initial=start, disable=not progress or rank != 0, unit="it", dynamic_ncols=True)
    last_log = (time.perf_counter(), start)
    stop = _StopRequest()
    stream = batches(
        sampler,
        cfg.seed,
        range(start, recipe.iters),
        recipe.batch_size,
        rank=rank,
        world=world,
        workers=workers,
        pin_memory=device.type == "cuda" and workers > 0,
    )
    try:
        while it < recipe.iters:
            if cfg.time_limit_s is not None and time.perf_counter() - t0 >= cfg.time_limit_s:
                stopped = "time limit"
                break
            if stop.agreed(world, device):
                stopped = "interrupted"
                break
            factor = lr_factor(recipe, it, recipe.iters)
            for opt in filter(None, (opt_g, opt_d)):
                for group in opt.param_groups:
                    group["lr"] = group["base_lr"] * factor
            batch = next(stream)
            for name in ("lr", "hr", "lr_small"):
                t = getattr(batch, name).to(device, non_blocking=True)
                setattr(batch, name, t.contiguous(memory_format=torch.channels_last) if cfg.channels_last else t)
            with autocast():
                loss, parts, sr = objective.loss(run_net, batch, it)
            _check_finite(loss, it + 1, ckpt_path, world)
            _step(opt_g, loss, scaler, g_modules, recipe.grad_clip, world, skip_reduce=run_net)
            if opt_d is not None:

                def d_step(d_loss: torch.Tensor) -> None:
                    _step(opt_d, d_loss, scaler, list(d_nets.values()), 0.0, world)  # type: ignore[arg-type]

                with autocast():
                    parts.update(objective.discriminator_step(batch, sr, d_step))
            if scaler is not None:
                scaler.update()
            if ema is not None:
                ema.update(net)
            it += 1
            bar.update(1)
            if rank != 0:
                continue
            if it % cfg.log_every == 0 or it == recipe.iters:
                now = time.perf_counter()
                ips = (it - last_log[1]) / max(now - last_log[0], 1e-9)
                last_log = (now, it)
                metrics.add(
                    it,
                    elapsed(),
                    {
                        "loss": float(loss.detach()),
                        **parts,  # type: ignore[union-attr]
                        "lr": opt_g.param_groups[0]["lr"],
                        "it_per_s": ips,
                    },
                )
                bar.set_postfix(loss=f"{float(loss.detach()):.4g}", refresh=False)
            if cfg.val and (it % cfg.val_every == 0 or it == recipe.iters):
                validation = validate(ema.module if ema else net, cfg.model, cfg.scale, cfg.val, str(device))
                metrics.add(
                    it,
                    elapsed(),  # type: ignore[union-attr]
                    {f"{n}/{k}": v for n, r in validation.items() for k, v in r.items()},
                )
                bar.set_postfix(
                    loss=f"{float(loss.detach()):.4g}",
                    psnr="/".join(f"{r['psnr']:.2f}" for r in validation.values()),
                    refresh=False,
                )
            if it % cfg.checkpoint_every == 0 and it < recipe.iters:
                save(it)
    finally:
        stop.restore()
        bar.close()
        stream.close()
        sampler.close()
    save(it)
    if world > 1:
        _check_replicas([net, *extras.values()], world, device)
        # Stop the process group's threads now: left to the interpreter's exit, gloo's can abort it
        # ("terminate called without an active exception").
        dist.destroy_process_group()
    return TrainResult(out / FINAL, it, time.perf_counter() - t0, stopped, validation)


def _workers(asked: int | None, device: torch.device, world: int) -> int:
    if asked is not None:
        return asked
    if device.type == "cpu":
        return 0
    return max(0, min(8, (os.cpu_count() or 1) // world - 1))


def _param_groups(net: nn.Module, recipe: Recipe, extras: dict[str, nn.Module], objective: Objective) -> list[dict]:
    params = [p for p in net.parameters() if p.requires_grad]
    groups = [{"params": params, "lr": recipe.lr}]
    if recipe.last_layer_lr_factor != 1.0:
        last = list(net.children())[-1] if not hasattr(net, "conv3") else net.conv3
        last_ids = {id(p) for p in last.parameters()}
        groups = [
            {"params": [p for p in params if id(p) not in last_ids], "lr": recipe.lr},
            {"params": [p for p in params if id(p) in last_ids], "lr": recipe.lr * recipe.last_layer_lr_factor},
        ]
    for name, module in extras.items():
        if name != "discriminator":
            groups.append({"params": list(module.parameters()), "lr": objective.extra_lr.get(name, recipe.lr)})
    return groups


def _optimizer(recipe: Recipe, groups: list[dict]) -> torch.optim.Optimizer:
    for g in groups:
        g["base_lr"] = g["lr"]
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    return torch.optim.Adam(groups, lr=recipe.lr, betas=recipe.betas, weight_decay=recipe.weight_decay)


def _step(
    opt: torch.optim.Optimizer,
    loss: torch.Tensor,
    scaler: torch.amp.GradScaler | None,
    modules: list[nn.Module],
    clip: float,
    world: int,
    skip_reduce: nn.Module | None = None,
) -> None:
    """Backward, average gradients over processes (DDP does it for the model), clip, step."""
    opt.zero_grad(set_to_none=True)
    (scaler.scale(loss) if scaler is not None else loss).backward()
    if world > 1:
        ddp_owned = (
            {id(p) for p in skip_reduce.parameters()}
            if isinstance(skip_reduce, nn.parallel.DistributedDataParallel)
            else set()
        )
        for module in modules:
            for p in module.parameters():
                if p.grad is not None and id(p) not in ddp_owned:
                    dist.all_reduce(p.grad)
                    p.grad.div_(world)
    if scaler is not None:
        scaler.unscale_(opt)
    if clip:
        torch.nn.utils.clip_grad_norm_([p for m in modules for p in m.parameters()], clip)
    if scaler is not None:
        scaler.step(opt)
    else:
        opt.step()


def _grad_scaler(dtype: torch.dtype, device: torch.device) -> torch.amp.GradScaler | None:
    """Loss scaling for fp16 autocast (CUDA only); bf16 and fp32 need none."""
    return torch.amp.GradScaler("cuda") if dtype is torch.float16 else None


def _check_finite(loss: torch.Tensor, iteration: int, ckpt: Path, world: int) -> None:
    bad = torch.tensor([0.0 if torch.isfinite(loss.detach()) else 1.0], device=loss.device)
    if world > 1:
        dist.all_reduce(bad)
    if bad.item():
        kept = f"the last good checkpoint ({ckpt}) is kept" if ckpt.exists() else "no checkpoint was written yet"
        raise TrainingError(
            f"the loss became {float(loss.detach())} at iteration {iteration}; {kept} (try a lower --lr)"
        )


def _check_resume(saved: dict[str, Any], cfg: TrainConfig, path: Path) -> None:
    pairs = [(k, saved.get(k), getattr(cfg, k)) for k in RESUME_KEYS]
    pairs.append(("recipe", saved.get("recipe", {}).get("name"), cfg.recipe.name))
    for key, then, now in pairs:
        if then != now:
            raise TrainingError(f"{path}: the run was made with {key} {then!r}, not {now!r}; use another --out")


def _unpaired_source(cfg: TrainConfig, paired: PatchSampler, device: torch.device, rank: int, world: int) -> Any:
    """LR-only images for DRN's semi-supervised dual loss: random LR crops of the paired crop size."""
    lr_only = PatchSampler([cfg.unpaired], scale=1, patch=paired.patch // cfg.scale)  # type: ignore[list-item]

    def draw(iteration: int) -> torch.Tensor:
        b = lr_only.sample(cfg.seed + 1, iteration, cfg.recipe.batch_size, rank=rank, world=world)
        return b.hr.to(device).contiguous(memory_format=torch.channels_last)

    return draw


def _metadata(cfg: TrainConfig, iteration: int) -> dict[str, str]:
    return {
        "format": "upscale",
        "model": cfg.model,
        "scale": str(cfg.scale),
        "recipe": cfg.recipe.name,
        "iterations": str(iteration),
        "degradation": cfg.degradation,
    }


def _json(d: dict[str, Any]) -> str:
    import json

    return json.dumps(d, indent=2, default=str) + "\n"

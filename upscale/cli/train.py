"""``upscale train``: train a model of the zoo with its paper's recipe."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click

from ..errors import UpscaleError
from .common import known_model
from .console import click_error, verbosity_options

log = logging.getLogger("upscale")


def _list_recipes() -> None:
    from ..train.recipes import STAGES, iter_recipes_table

    for name, models, paper, defaults, note in iter_recipes_table():
        click.echo(f"{name}  [{models}]  {paper}")
        click.echo(f"    {defaults}")
        if note:
            click.echo(f"    {note}")
    click.echo("")
    click.echo(
        "stages (--stage): "
        + "; ".join(f"{m}: {', '.join(f'{k}={v}' for k, v in s.items())}" for m, s in STAGES.items())
    )


@click.command(context_settings={"show_default": True})
@click.argument("model", required=False, callback=known_model)
@click.option(
    "--data", multiple=True, type=click.Path(path_type=Path), help="Folder of HR training images (repeatable)."
)
@click.option(
    "--lr-data",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder of LR images paired with --data by name (instead of making them).",
)
@click.option("-s", "--scale", type=click.IntRange(1), default=None, help="Scale to train.")
@click.option("-o", "--out", type=click.Path(path_type=Path), default=None, help="Run folder.")
@click.option(
    "--val",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Validation folder of HR images, scored by the eval protocol (repeatable).",
)
@click.option("--val-every", type=click.IntRange(1), default=None, help="Validate every N iterations [1000].")
@click.option("--iters", type=click.IntRange(1), default=None, help="Iterations (default: the recipe's).")
@click.option(
    "--time-limit",
    default=None,
    metavar="DURATION",
    help="Stop after this long (90m, 2h, 1h30m), saving a checkpoint; continue with --resume.",
)
@click.option("--recipe", default=None, help="Recipe name (default: the model's paper recipe; see --list-recipes).")
@click.option("--stage", default=None, help="Training stage (rlfn: 1-4; esrgan: psnr, gan); picks the recipe.")
@click.option(
    "--init",
    type=click.Path(path_type=Path),
    default=None,
    help="Start from these weights (a previous stage, another scale, an official file).",
)
@click.option("--resume", is_flag=True, default=None, help="Continue the run in --out from its checkpoint.")
@click.option("--batch-size", type=click.IntRange(1), default=None, help="Batch size (default: the recipe's).")
@click.option("--patch", type=click.IntRange(1), default=None, help="HR crop side in pixels (default: the recipe's).")
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=None, help="Base learning rate.")
@click.option(
    "--precision",
    type=click.Choice(["auto", "fp32", "bf16", "fp16"]),
    default=None,
    help="auto: fp16 on CUDA, bf16 on CPUs with native bf16, else fp32.",
)
@click.option("--device", default=None, help="auto, cpu, cuda, cuda:1.")
@click.option("--seed", type=int, default=None, help="Seed of weights and data order [0].")
@click.option(
    "--degradation",
    type=click.Choice(["bicubic", "real"]),
    default=None,
    help="bicubic: the benchmark protocol; real: Real-ESRGAN's second-order degradations.",
)
@click.option(
    "--unpaired",
    type=click.Path(path_type=Path),
    default=None,
    help="DRN: folder of LR-only images for the semi-supervised dual loss.",
)
@click.option(
    "--vgg-weights",
    default=None,
    metavar="PATH|vgg16|vgg19",
    help="ImageNet VGG weights for perceptual losses (a file, or a name downloaded by 'upscale weights').",
)
@click.option(
    "--random-vgg",
    is_flag=True,
    default=None,
    help="Use an untrained VGG for perceptual losses (for tests; results are meaningless).",
)
@click.option(
    "--arch",
    "arch",
    multiple=True,
    metavar="KEY=VALUE",
    help="Architecture option for the model's builder, e.g. num_block=6 (ESRGAN), n_blocks=20 (DRN).",
)
@click.option(
    "--workers",
    type=click.IntRange(0),
    default=None,
    help="Processes drawing batches ahead of the step [0 on the CPU; on a GPU, one per spare core up to 8].",
)
@click.option("--log-every", type=click.IntRange(1), default=None, help="Write metrics every N iterations [10].")
@click.option("--checkpoint-every", type=click.IntRange(1), default=None, help="Checkpoint every N iterations [500].")
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path),
    default=None,
    help="TOML or YAML file of these settings; the command line overrides it.",
)
@click.option("--list-recipes", is_flag=True, help="Show the recipes with their defaults and papers, and exit.")
@verbosity_options
def train(model: str | None, config_file: Path | None, list_recipes: bool, quiet: bool, **options: Any) -> None:
    """Train MODEL on folders of HR images with its paper's recipe.

    \b
    upscale train rlfn --data DIV2K/ --scale 4 --out runs/rlfn_x4 --val Set5/ --time-limit 2h
    upscale train rlfn --scale 4 --out runs/rlfn_x4 --resume          # continue where it stopped

    A run folder holds config.json, checkpoint.pt, metrics.csv, metrics.png and final.safetensors,
    which --weights takes. Ctrl-C saves a checkpoint. Under torchrun, every process trains a shard of
    each batch and only rank 0 writes.
    """
    if list_recipes:
        _list_recipes()
        return
    from ..train.config import build_config, read_config_file
    from ..train.loop import train as run_training

    try:
        file_values = read_config_file(config_file) if config_file else {}
        if options.get("resume") and config_file is None and options.get("out") and not options.get("data"):
            file_values = _saved_settings(options["out"])  # `--resume --out RUN` alone continues as it was
        options["arch"] = _arch_options(options.get("arch") or ())
        cfg = build_config(file_values, {"model": model, **options})
        result = run_training(cfg, progress=not quiet)
    except UpscaleError as exc:
        raise click_error(exc) from None
    summary = f"{result.stopped} at iteration {result.iterations} ({result.seconds:.0f} s); weights: {result.final}"
    for name, r in result.validation.items():
        summary += f"; {name} {r['psnr']:.2f} dB (bicubic {r['bicubic_psnr']:.2f})"
    click.echo(summary, err=True)
    if result.stopped == "interrupted":
        raise SystemExit(130)


def _arch_options(pairs: tuple[str, ...]) -> dict[str, Any] | None:
    """``("num_block=6",)`` -> ``{"num_block": 6}`` (numbers become int or float)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"'{pair}' is not KEY=VALUE", param_hint="--arch")
        try:
            out[key] = int(value)
        except ValueError:
            try:
                out[key] = float(value)
            except ValueError:
                out[key] = value
    return out or None


def _saved_settings(out: Path) -> dict[str, Any]:
    """The settings a run was started with, from its ``config.json``."""
    import json

    path = Path(out) / "config.json"
    if not path.is_file():
        raise UpscaleError(f"{out}: no run to resume (no config.json)")
    saved = json.loads(path.read_text())
    saved.pop("resume", None)
    time_limit = saved.pop("time_limit_s", None)
    if time_limit is not None:
        saved["time_limit"] = time_limit
    return saved

"""``upscale bench``: how fast a model runs through the engine on this machine."""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
from typing import Any

import click

from ..engine import EngineOptions, Upscaler, pick_devices
from ..errors import UpscaleError, WeightsError
from ..eval.speed import SpeedResult, measure, supported_precisions, synthetic_frames
from ..models import REGISTRY, LoadedModel, build_model
from .common import device_options, known_model, load_announced, weights_options
from .console import verbosity_options

log = logging.getLogger("upscale")


class SizeParam(click.ParamType):
    name = "WxH"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[int, int]:
        if isinstance(value, tuple):
            return value
        try:
            w, h = (int(v) for v in str(value).lower().split("x"))
        except ValueError:
            self.fail(f"{value!r} is not WIDTHxHEIGHT (e.g. 640x360)", param, ctx)
        if w < 1 or h < 1:
            self.fail("width and height must be positive", param, ctx)
        return w, h


class TileListParam(click.ParamType):
    name = "PIXELS,..."

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> list[int]:
        if isinstance(value, list):
            return value
        try:
            tiles = [int(v) for v in str(value).split(",") if v.strip()]
        except ValueError:
            self.fail(f"{value!r} is not a comma-separated list of tile sizes", param, ctx)
        if not tiles or any(t < 0 for t in tiles):
            self.fail("tile sizes must be 0 (untiled) or positive", param, ctx)
        return tiles


def _load(
    model: str, scale: int | None, weights: str | None, random_weights: bool, offline: bool
) -> tuple[LoadedModel, bool]:
    """The model with its weights, or with random ones (speed does not depend on the values)."""
    spec = REGISTRY.get(model)
    if random_weights:
        if weights is not None:
            raise click.UsageError("--random-weights and --weights exclude each other")
        return build_model(spec, scale or spec.default_scale), True
    try:
        return load_announced(model, scale=scale, weights=weights, offline=offline), False
    except WeightsError as exc:
        if weights is not None:
            raise
        log.warning("%s; timing random weights instead (speed does not depend on the values)", exc)
        return build_model(spec, scale or spec.default_scale), True


def _mem(r: SpeedResult) -> str:
    if r.peak_memory_bytes is None:
        return "-"
    return f"{r.peak_memory_bytes / 2**20:.0f} MiB"


def _report(r: SpeedResult, random: bool) -> str:
    out_w, out_h = r.width * r.scale, r.height * r.scale
    tile = "untiled" if r.tile == 0 else f"tile {r.tile} px"
    rows = [
        ("model", f"{r.model} x{r.scale}" + (" (random weights)" if random else "")),
        ("device", f"{r.device}, {r.precision}, {tile}, batch {r.batch_size}"),
        ("frames", f"{r.frames} of {r.width}x{r.height} -> {out_w}x{out_h}"),
        ("frames/s", f"{r.fps:.3g}"),
        ("output MP/s", f"{r.output_mpix_per_s:.3g}"),
        ("ms/frame", f"{r.ms_per_frame:.1f} (stream), {r.latency_ms:.1f} (single-frame latency)"),
        ("compute", f"{r.gmacs_per_frame:.3g} GMAC/frame, {r.gflops:.3g} GFLOP/s achieved"),
        ("peak memory", f"{_mem(r)} ({r.memory_kind})"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _compare_table(results: list[SpeedResult]) -> str:
    base = results[0]
    head = (
        f"{'precision':<9}  {'tile':>5}  {'frames/s':>9}  {'MP/s':>8}  {'ms/frame':>9}"
        f"  {'GFLOP/s':>8}  {'peak mem':>9}  {'vs first':>8}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        tile = "-" if r.tile == 0 else str(r.tile)
        lines.append(
            f"{r.precision:<9}  {tile:>5}  {r.fps:>9.3g}  {r.output_mpix_per_s:>8.3g}  {r.ms_per_frame:>9.1f}"
            f"  {r.gflops:>8.3g}  {_mem(r):>9}  {r.fps / base.fps:>7.2f}x"
        )
    return "\n".join(lines)


@click.command()
@click.argument("model", callback=known_model)
@weights_options
@click.option("--random-weights", is_flag=True, help="Time an untrained network (also used when no weights exist).")
@click.option("--size", type=SizeParam(), default="640x360", show_default=True, help="Input frame size, WxH.")
@click.option(
    "--frames", type=click.IntRange(1), default=None, help="Frames to time [default: 20 on a GPU, 3 on the CPU]."
)
@device_options()
@click.option(
    "--batch-size",
    type=click.IntRange(1),
    default=None,
    help="Tiles or frames per batch (default: 4 on GPU, 1 on CPU).",
)
@click.option("--compare", is_flag=True, help="Time every supported precision with each of --tiles, side by side.")
@click.option(
    "--tiles",
    type=TileListParam(),
    default="0,128,256",
    show_default=True,
    help="Tile sizes for --compare (0 = untiled).",
)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable results on stdout.")
@verbosity_options
def bench(
    model: str,
    scale: int | None,
    weights: str | None,
    offline: bool,
    random_weights: bool,
    size: tuple[int, int],
    frames: int | None,
    device: str,
    precision: str,
    tile: int | str,
    tile_pad: int | None,
    compile_net: bool,
    batch_size: int,
    compare: bool,
    tiles: list[int],
    as_json: bool,
    quiet: bool,
) -> None:
    """Time MODEL on synthetic frames: frames/s, output megapixels/s, latency, GFLOP/s, peak memory.

    GFLOP/s counts the network's convolution and linear multiply-accumulates (2 FLOPs each) on
    whole frames. Peak memory is CUDA's max_memory_allocated, or the process's peak RSS on the CPU.
    """
    try:
        loaded, random = _load(model, scale, weights, random_weights, offline)
        dev = pick_devices(device)[0]
        count = frames or (20 if dev.type != "cpu" else 3)
        width, height = size
        min_side = loaded.spec.min_size_px
        if width < min_side or height < min_side:
            log.info("frames smaller than %d px are padded by the engine", min_side)
        clip = synthetic_frames(count, width, height)
        if compare:
            precisions = supported_precisions(
                dev, supports_half=loaded.spec.supports_half, supports_bf16=loaded.spec.supports_bf16
            )
            configs = [(p, t) for p in precisions for t in tiles]
        else:
            configs = [(precision, tile)]
        results = []
        for prec, t in configs:
            opts = EngineOptions(
                device=device,
                precision=prec,  # type: ignore[arg-type]
                tile=t,  # type: ignore[arg-type]
                tile_pad=tile_pad,
                batch_size=batch_size,
                compile=compile_net,
            )
            if not quiet:
                click.echo(f"timing {loaded.spec.name} x{loaded.scale}: {prec}, tile {t}", err=True)
            # a copy per run: the engine converts the module it is given to its precision in place
            run = dataclasses.replace(loaded, module=copy.deepcopy(loaded.module))
            results.append(measure(Upscaler(run, opts), clip))
    except UpscaleError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        payload = {"random_weights": random, "results": [dataclasses.asdict(r) for r in results]}
        click.echo(json.dumps(payload, indent=2))
    elif compare:
        click.echo(f"{loaded.spec.name} x{loaded.scale}" + (" (random weights)" if random else ""))
        click.echo(f"{results[0].frames} frames of {width}x{height} on {results[0].device}, batch {batch_size}")
        click.echo(_compare_table(results))
    else:
        click.echo(_report(results[0], random))

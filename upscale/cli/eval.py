"""``upscale eval``: PSNR/SSIM on benchmark folders under the standard protocol, beside bicubic."""

from __future__ import annotations

import json
import logging
import math
import sys
from pathlib import Path

import click
from tqdm import tqdm

from ..errors import UpscaleError
from ..eval.protocol import DatasetResult, Protocol, evaluate_dataset, list_images
from .common import build_upscaler, device_options, known_model, weights_options
from .console import error_line, verbosity_options

log = logging.getLogger("upscale")


def _fmt(v: float, digits: int) -> str:
    if math.isnan(v):
        return "-"
    return "inf" if math.isinf(v) else f"{v:.{digits}f}"


def _table(result: DatasetResult, title: str) -> str:
    rows = [(r.name, f"{r.width}x{r.height}", r.psnr, r.ssim, r.bicubic_psnr, r.bicubic_ssim) for r in result.images]
    rows.append(
        (
            "mean",
            f"{len(result.images)} images",
            *(result.mean(k) for k in ("psnr", "ssim", "bicubic_psnr", "bicubic_ssim")),
        )
    )
    w0 = max(len("image"), *(len(r[0]) for r in rows))
    w1 = max(len("size"), *(len(r[1]) for r in rows))
    head = f"{'image':<{w0}}  {'size':>{w1}}  {'PSNR':>7}  {'SSIM':>6}  {'bicubic':>7}  {'SSIM':>6}"
    lines = [title, head, "-" * len(head)]
    for i, (name, size, p, q, bp, bq) in enumerate(rows):
        if i == len(rows) - 1:
            lines.append("-" * len(head))
        lines.append(
            f"{name:<{w0}}  {size:>{w1}}  {_fmt(p, 2):>7}  {_fmt(q, 4):>6}  {_fmt(bp, 2):>7}  {_fmt(bq, 4):>6}"
        )
    return "\n".join(lines)


def _summary(results: list[DatasetResult]) -> str:
    w0 = max(len("dataset"), *(len(r.name) for r in results))
    head = f"{'dataset':<{w0}}  {'images':>6}  {'PSNR':>7}  {'SSIM':>6}  {'bicubic':>7}  {'SSIM':>6}"
    lines = [head, "-" * len(head)]
    for r in results:
        p, q, bp, bq = (r.mean(k) for k in ("psnr", "ssim", "bicubic_psnr", "bicubic_ssim"))
        lines.append(
            f"{r.name:<{w0}}  {len(r.images):>6}  {_fmt(p, 2):>7}  {_fmt(q, 4):>6}  {_fmt(bp, 2):>7}  {_fmt(bq, 4):>6}"
        )
    return "\n".join(lines)


@click.command(name="eval")
@click.argument("model", callback=known_model)
@click.option(
    "-d",
    "--data",
    "data",
    type=click.Path(path_type=Path),
    multiple=True,
    required=True,
    help="Folder of high-resolution images (Set5, Set14, ...); repeat for several, one row each.",
)
@weights_options
@click.option(
    "--lr-dir",
    type=click.Path(path_type=Path),
    multiple=True,
    help="Folder of given LR images (same stem, or stem + 'x{scale}') instead of making them; one per --data.",
)
@click.option(
    "--save", type=click.Path(path_type=Path), default=None, help="Write SR images to SAVE/<dataset>/<stem>.png."
)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable results on stdout instead of tables.")
@click.option(
    "--crop-border", type=click.IntRange(0), default=None, help="Pixels dropped at each edge (default: scale)."
)
@click.option("--round-y", is_flag=True, help="Round Y to integers (MATLAB rgb2ycbcr on uint8); about -0.01..-0.09 dB.")
@click.option(
    "--gray",
    type=click.Choice(["auto", "luma", "rgb"]),
    default="auto",
    show_default=True,
    help="Grey images: score grey values (luma, MATLAB) or as RGB (rgb); auto: luma for Y models.",
)
@click.option(
    "--degradation",
    type=click.Choice(["bicubic", "real"]),
    default="bicubic",
    show_default=True,
    help="How LR inputs are made: bicubic (the published protocol) or real (Real-ESRGAN's blur, noise and JPEG, "
    "drawn per image from --seed), for models meant for real-world inputs.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of --degradation real.")
@device_options(precision="fp32", tile="0")
@verbosity_options
def eval_command(
    model: str,
    data: tuple[Path, ...],
    scale: int | None,
    weights: str | None,
    offline: bool,
    lr_dir: tuple[Path, ...],
    save: Path | None,
    as_json: bool,
    crop_border: int | None,
    round_y: bool,
    gray: str,
    degradation: str,
    seed: int,
    device: str,
    precision: str,
    tile: int | str,
    tile_pad: int | None,
    compile_net: bool,
    quiet: bool,
) -> None:
    """Evaluate MODEL on folders of HR images: PSNR and SSIM on Y, per image and mean, beside bicubic.

    Each HR image is cropped to a multiple of the scale, shrunk with MATLAB's bicubic imresize,
    upscaled, rounded to 8 bits and scored on BT.601 luma with the scale cropped from each edge:
    the protocol of published super-resolution tables. '--degradation real' makes the LR images with
    real-world blur, noise and JPEG instead (the same ones for a given --seed).
    """
    if lr_dir and len(lr_dir) != len(data):
        raise click.UsageError(f"give one --lr-dir per --data folder ({len(data)}), not {len(lr_dir)}")
    if lr_dir and degradation != "bicubic":
        raise click.UsageError("--lr-dir gives the LR images; --degradation cannot make them too")
    for folder in data:  # fail before loading the model
        try:
            list_images(folder)
        except UpscaleError as exc:
            raise click.ClickException(str(exc)) from None
    up = build_upscaler(
        model=model,
        scale=scale,
        weights=weights,
        offline=offline,
        device=device,
        precision=precision,
        tile=tile,
        tile_pad=tile_pad,
        compile_net=compile_net,
        batch_size=1,
    )
    if scale is None and up.spec.any_scale:
        # e.g. SRCNN's .mat files do not record the scale they were trained for
        log.warning(
            "'%s' works at any scale and none was given; evaluating at x%d (use --scale)", model, up.model_scale
        )
    protocol = Protocol(
        scale=up.model_scale,
        crop_border=crop_border,
        round_y=round_y,
        gray=gray,  # type: ignore[arg-type]
        degradation=degradation,  # type: ignore[arg-type]
        seed=seed,
    )
    names = [d.name for d in data]
    results: list[DatasetResult] = []
    failed = 0
    for i, folder in enumerate(data):
        save_dir = None
        if save is not None:
            save_dir = save / (folder.name if names.count(folder.name) == 1 else f"{folder.name}-{i + 1}")
        total = len(list_images(folder))
        with tqdm(total=total, desc=folder.name, unit="img", disable=quiet, file=sys.stderr, dynamic_ncols=True) as bar:
            try:
                res = evaluate_dataset(
                    up,
                    folder,
                    protocol,
                    lr_dir=lr_dir[i] if lr_dir else None,
                    save_dir=save_dir,
                    on_image=lambda _name: bar.update(1),
                )
            except UpscaleError as exc:
                raise click.ClickException(str(exc)) from None
        for path, reason in res.errors:
            error_line(path, reason)
        failed += len(res.errors)
        results.append(res)
        if not as_json:
            title = f"{res.name}  x{protocol.scale}  {up.spec.name}  ({up.model.weights or 'no weights'})"
            if degradation != "bicubic":
                title += f"  {degradation}-world LR, seed {seed}"
            click.echo(_table(res, title) + "\n")
    if as_json:
        payload = {
            "model": up.spec.name,
            "scale": protocol.scale,
            "weights": up.model.weights,
            "protocol": {
                "degradation": "MATLAB bicubic imresize, uint8"
                if degradation == "bicubic"
                else f"real-world (Real-ESRGAN second order), seed {seed}, uint8",
                "metric_channel": "Y (BT.601, MATLAB rgb2ycbcr)",
                "crop_border": protocol.border,
                "round_y": protocol.round_y,
                "gray": protocol.gray_mode(up.spec.colour),
                "precision": str(up.dtype).removeprefix("torch."),
                "device": str(up.device),
            },
            "datasets": [r.to_dict() for r in results],
        }
        click.echo(json.dumps(payload, indent=2))
    elif len(results) > 1:
        click.echo(_summary(results))
    if failed or any(not r.images for r in results):
        raise click.ClickException(f"{failed} image(s) could not be evaluated")

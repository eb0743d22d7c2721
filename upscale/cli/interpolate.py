"""``upscale interpolate``: blend two weight files of one architecture (ESRGAN's network interpolation)."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import UpscaleError
from .console import click_error, verbosity_options


@click.command()
@click.argument("a", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("b", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--alpha",
    type=click.FloatRange(0.0, 1.0),
    required=True,
    help="Weight of B: 0 gives A, 1 gives B, 0.8 is ESRGAN's usual PSNR/GAN blend.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The blended weights (.safetensors); records model, scale and the blend in its metadata.",
)
@click.option("-m", "--model", default=None, metavar="NAME", help="Architecture of A and B (default: detected).")
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists (never an input).")
@verbosity_options
def interpolate(a: Path, b: Path, alpha: float, output: Path, model: str | None, overwrite: bool, quiet: bool) -> None:
    """Blend two weight files: OUTPUT = (1 - ALPHA)·A + ALPHA·B, tensor by tensor.

    A and B must hold the same architecture at the same scale (any layout --weights reads); blending a
    PSNR-trained and a GAN-trained network trades fidelity against texture without retraining.
    """
    from ..models.interpolate import write_interpolated

    try:
        done = write_interpolated(a, b, alpha, output, model=model, overwrite=overwrite)
    except UpscaleError as exc:
        raise click_error(exc) from None
    del quiet  # -q/-v set the log level; the one-line summary is the command's output
    click.echo(
        f"{output}: {done.spec.name} x{done.scale}, {len(done.tensors)} tensors = "
        f"{a.name}@{1.0 - alpha:g} + {b.name}@{alpha:g}"
    )

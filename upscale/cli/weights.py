"""``upscale weights``: list the known official checkpoints, download them into the cache, convert files."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click

from .. import hub
from ..errors import UpscaleError
from .console import click_error, verbosity_options


@click.group()
def weights() -> None:
    """Official checkpoints: list them, download them into the cache, convert files to safetensors.

    A downloaded checkpoint is used with --weights NAME. The cache is $UPSCALE_HOME, else
    $XDG_CACHE_HOME/upscale, else ~/.cache/upscale.
    """


@weights.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per checkpoint, every field in full.")
def list_weights(as_json: bool) -> None:
    """Show the known checkpoints: where they come from, their checksum, licence and whether they are cached.

    The VGG entries are ImageNet feature networks for perceptual training losses, not upscaling models.
    """
    entries = hub.CATALOGUE
    if as_json:
        for e in entries:
            cached = hub.cached_path(e)
            click.echo(json.dumps({**asdict(e), "cached": str(cached) if cached else None}))
        return
    header = ("name", "model", "scale", "source", "sha256", "licence", "cached")
    rows = [
        (
            e.name,
            e.model,
            f"x{e.scale}" if e.kind == "sr" else "-",
            e.url or f"{e.page} (download by hand)",
            e.sha256[:16] if e.sha256 else f"{e.sha256_prefix}..." if e.sha256_prefix else "unverified",
            e.licence,
            "yes" if hub.cached_path(e) else "no",
        )
        for e in entries
    ]
    features = [e.name for e in entries if e.kind == "features"]
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    click.echo("")
    click.echo("sha256: the first 16 hex digits of the checksum checked on download (--json shows it in full);")
    if any(e.sha256 is None and e.sha256_prefix for e in entries):
        click.echo(
            "        'abcd1234...': only this prefix is published (in the file name); downloads are checked against it."
        )
    click.echo("        'unverified': no checksum is known, the file is used as downloaded.")
    if features:
        click.echo(f"{', '.join(features)}: feature networks for training losses (perceptual), not --weights models.")
    click.echo(f"cache: {hub.weights_dir()}")


@weights.command()
@click.argument("names", nargs=-1, required=True)
@click.option("--force", is_flag=True, help="Download again even when the file is cached.")
@verbosity_options
@click.pass_context
def download(ctx: click.Context, names: tuple[str, ...], force: bool, quiet: bool) -> None:
    """Download the checkpoints NAMES into the cache and print their paths.

    An interrupted download resumes where it stopped when run again.
    """
    failed = 0
    for name in names:
        try:
            entry = hub.find(name)
            path = hub.cached_path(entry)
            if path is None or force:
                path = hub.download(entry, progress=not quiet, force=force)
            elif entry.checksum is not None and not hub.digest_matches(entry, hub.sha256_file(path)):
                path = hub.download(entry, progress=not quiet, force=True)
        except UpscaleError as exc:
            click.echo(f"Error: {exc}", err=True)
            failed += 1
            continue
        click.echo(str(path))
    if failed:
        ctx.exit(1)


@weights.command()
@click.argument("src", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("dst", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model", "-m", "model", help="Architecture of SRC (default: detected from its tensors).")
@click.option("--scale", "-s", type=int, help="Scale to record where the tensors do not tell (SRCNN).")
@click.option("--overwrite", is_flag=True, help="Replace DST if it exists.")
@verbosity_options
def convert(src: Path, dst: Path, model: str | None, scale: int | None, overwrite: bool, quiet: bool) -> None:
    """Rewrite the checkpoint SRC (.pth, .pt, .mat or .safetensors) as DST.safetensors in this project's layout.

    The network is built and loaded from SRC before anything is written; DST records the model, the scale
    and the sha256 of SRC in its metadata.
    """
    try:
        done = hub.convert_checkpoint(src, dst, model=model, scale=scale, overwrite=overwrite)
    except UpscaleError as exc:
        raise click_error(exc) from None
    del quiet  # -q/-v set the log level; the one-line summary is the command's output
    click.echo(f"{done.path}: {done.model} x{done.scale}, {done.tensors} tensors (source sha256 {done.source_sha256})")

"""``upscale images``: files, folders, globs, path lists and stdin."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from tqdm import tqdm

from ..errors import BadMediaError, UpscaleError
from ..io.image import FORMATS, IMAGE_SUFFIXES, decode_image, encode_image, read_image, write_image
from .batch import Failure, Job, expand_inputs, plan_jobs
from .common import (
    build_upscaler,
    engine_options,
    error_line,
    existing_output_options,
    output_allowed,
    verbosity_options,
)


def _plan(
    inputs: list[str], out: Path | None, *, recursive: bool, scale: float, fmt: str
) -> tuple[list[Job], list[Failure]]:
    found, errors = expand_inputs(inputs, suffixes=IMAGE_SUFFIXES, noun="images", recursive=recursive)
    jobs, clashes = plan_jobs(
        found,
        out,
        scale=scale,
        suffix_of=lambda src: src.suffix.lower() if fmt == "same" else FORMATS[fmt],
        file_suffixes=IMAGE_SUFFIXES,
        noun="images",
    )
    return jobs, errors + clashes


@click.command()
@click.argument("inputs", nargs=-1)
@click.option(
    "-o", "--output", type=click.Path(path_type=Path), default=None, help="Output folder (or file for one input)."
)
@click.option("-r", "--recursive", is_flag=True, help="Descend into sub-folders; ** in globs.")
@click.option(
    "--from-file",
    type=click.File("r"),
    default=None,
    help="Read input paths from this file, one per line ('-' for stdin).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["same", "png", "jpg", "webp"]),
    default="same",
    show_default=True,
    help="Output format.",
)
@click.option("--quality", type=click.IntRange(1, 100), default=None, help="JPEG/WebP quality.")
@existing_output_options
@engine_options
@verbosity_options
def images(
    inputs: tuple[str, ...],
    output: Path | None,
    recursive: bool,
    from_file: click.utils.LazyFile | None,
    fmt: str,
    quality: int | None,
    existing: str,
    quiet: bool,
    **engine: object,
) -> None:
    """Upscale images: files, folders, globs, or '-' for one image on stdin (written to stdout).

    Outputs are named {stem}_x{scale}.{ext}, beside the input or in OUTPUT mirroring the folders.
    """
    items = list(inputs)
    if from_file is not None:
        items += [line.strip() for line in from_file if line.strip()]
    if not items:
        raise click.UsageError("give at least one input (a file, folder, glob, or '-')")
    if "-" in items:
        if len(items) > 1:
            raise click.UsageError("'-' (stdin) cannot be combined with other inputs")
        _stdio(output, fmt, quality, engine)
        return

    up = build_upscaler(**engine)  # type: ignore[arg-type]
    jobs, failures = _plan(items, output, recursive=recursive, scale=up.scale, fmt=fmt)
    for item, reason in failures:
        error_line(item, reason)
    done = skipped = 0
    failed = len(failures)
    sources = {j.src.resolve() for j in jobs}
    with tqdm(jobs, desc="images", unit="img", disable=quiet or not jobs, file=sys.stderr, dynamic_ncols=True) as bar:
        for job in bar:
            bar.set_postfix_str(job.src.name, refresh=False)
            allowed = output_allowed(job.src, job.dst, sources, existing)
            if not allowed:
                skipped += allowed is None
                failed += allowed is False
                continue
            try:
                write_image(job.dst, up.upscale(read_image(job.src)), quality=quality)
                done += 1
            except UpscaleError as exc:
                error_line(job.src, str(exc))
                failed += 1
            except Exception as exc:  # noqa: BLE001 - one bad file must not stop the batch
                error_line(job.src, f"{type(exc).__name__}: {exc}".splitlines()[0])
                failed += 1
    if not quiet:
        click.echo(f"{done} upscaled, {skipped} skipped, {failed} failed", err=True)
    if failed:
        sys.exit(1)


def _stdio(output: Path | None, fmt: str, quality: int | None, engine: dict[str, object]) -> None:
    data = sys.stdin.buffer.read()
    try:
        img = decode_image(data, "<stdin>")
    except BadMediaError as exc:
        raise click.ClickException(str(exc)) from None
    up = build_upscaler(**engine)  # type: ignore[arg-type]
    try:
        result = up.upscale(img)
    except UpscaleError as exc:
        raise click.ClickException(f"<stdin>: {exc}") from None
    if output is not None:
        write_image(output, result, quality=quality)
        return
    sys.stdout.buffer.write(encode_image(result, FORMATS["png" if fmt == "same" else fmt], quality=quality))
    sys.stdout.buffer.flush()

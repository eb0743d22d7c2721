"""``upscale images``: files, folders, globs, path lists and stdin."""

from __future__ import annotations

import glob
import sys
from dataclasses import dataclass
from pathlib import Path

import click
from tqdm import tqdm

from ..errors import BadMediaError, UpscaleError
from ..io.image import FORMATS, IMAGE_SUFFIXES, decode_image, encode_image, read_image, write_image
from .common import (
    build_upscaler,
    engine_options,
    error_line,
    existing_output_options,
    output_allowed,
    scale_label,
    verbosity_options,
)

_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class Job:
    src: Path
    dst: Path


def expand_inputs(
    inputs: list[str], *, recursive: bool
) -> tuple[list[tuple[Path, Path | None]], list[tuple[str, str]]]:
    """Files to process, each with the folder its output path mirrors; and ``(input, reason)`` failures."""
    found: list[tuple[Path, Path | None]] = []
    errors: list[tuple[str, str]] = []
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            pattern = "**/*" if recursive else "*"
            files = sorted(p for p in path.glob(pattern) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                errors.append((item, "no images in this folder" + ("" if recursive else " (try --recursive)")))
            found += [(p, path) for p in files]
        elif path.exists():
            found.append((path, None))
        elif _GLOB_CHARS & set(item):
            matches = sorted(Path(p) for p in glob.glob(item, recursive=recursive) if Path(p).is_file())
            if not matches:
                errors.append((item, "no file matches this pattern"))
            parts = Path(item).parts
            first = next(i for i, part in enumerate(parts) if _GLOB_CHARS & set(part))
            base = Path(*parts[:first]) if first else Path()
            found += [(p, base if p.is_relative_to(base) else None) for p in matches]
        else:
            errors.append((item, "no such file"))
    return found, errors


def output_path(src: Path, base: Path | None, out: Path | None, *, scale: float, fmt: str) -> Path:
    suffix = src.suffix.lower() if fmt == "same" else FORMATS[fmt]
    name = f"{src.stem}_{scale_label(scale)}{suffix}"
    if out is None:
        return src.with_name(name)
    rel = src.parent.relative_to(base) if base is not None else Path()
    return out / rel / name


def _plan(
    inputs: list[str], out: Path | None, *, recursive: bool, scale: float, fmt: str
) -> tuple[list[Job], list[tuple[str, str]]]:
    found, errors = expand_inputs(inputs, recursive=recursive)
    single_file_out = out is not None and len(found) == 1 and out.suffix.lower() in IMAGE_SUFFIXES and not out.is_dir()
    jobs, seen = [], set()
    for src, base in found:
        dst = out if single_file_out and out is not None else output_path(src, base, out, scale=scale, fmt=fmt)
        if src.resolve() in seen:
            continue
        seen.add(src.resolve())
        jobs.append(Job(src, dst))
    return jobs, errors


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

"""``upscale images``: files, folders, globs, path lists and stdin."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click
from tqdm import tqdm

from ..errors import BadMediaError, UpscaleError, one_line
from ..io.image import (
    FORMATS,
    IMAGE_SUFFIXES,
    Picture,
    check_picture_memory,
    content_suffix,
    decode_picture,
    encode_picture,
    load_picture,
    output_suffix,
    upscale_picture_file,
    write_picture,
)
from .batch import Failure, Job, Tally, batch_outcome, expand_inputs, plan_jobs
from .common import (
    build_upscaler,
    cluster_option,
    engine_options,
    engine_settings,
    existing_output_options,
    job_options,
    join_cluster,
    open_job,
    to_run,
)
from .console import error_line, notice, verbosity_options

if TYPE_CHECKING:
    from ..engine import Upscaler

STDIO = Path("-")
"""``-`` as an input or ``-o``: standard input or output."""


def _plan(
    inputs: list[str], out: Path | None, *, recursive: bool, scale: float, fmt: str, ignored: list[Path]
) -> tuple[list[Job], list[Failure]]:
    found, errors = expand_inputs(inputs, suffixes=IMAGE_SUFFIXES, noun="images", recursive=recursive, ignored=ignored)
    jobs, clashes = plan_jobs(
        found,
        out,
        scale=scale,
        suffix_of=lambda src: output_suffix(src) if fmt == "same" else FORMATS[fmt],
        file_suffixes=IMAGE_SUFFIXES,
        noun="images",
    )
    if fmt == "same":
        _say_converted(jobs)
    return jobs, errors + clashes


def _say_converted(jobs: list[Job]) -> None:
    """Say once which inputs ``--format same`` writes in another format (theirs cannot be written)."""
    changes = {
        (j.src.suffix.lower() or "(no extension)", j.dst.suffix.lower())
        for j in jobs
        if j.dst.suffix.lower() != j.src.suffix.lower() and j.dst.suffix.lower() == output_suffix(j.src)
    }
    by_format: dict[str, list[str]] = {}
    for src, dst in sorted(changes):
        by_format.setdefault(dst, []).append(src)
    for dst, srcs in by_format.items():
        notice(f"{', '.join(srcs)} inputs are written as {dst[1:].upper()} (their format cannot be written)")


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
@click.option(
    "--strip-metadata",
    is_flag=True,
    help="Write no ICC colour profile or EXIF (by default they are copied from the input).",
)
@existing_output_options
@job_options
@cluster_option
@engine_options
@verbosity_options
def images(
    inputs: tuple[str, ...],
    output: Path | None,
    recursive: bool,
    from_file: click.utils.LazyFile | None,
    fmt: str,
    quality: int | None,
    strip_metadata: bool,
    existing: str,
    job_dir: Path | None,
    restart: bool,
    cluster: str | None,
    quiet: bool,
    **engine: object,
) -> None:
    """Upscale images: files, folders, globs, or '-' for one image on stdin (written to stdout).

    Outputs are named {stem}_x{scale}.{ext}, beside the input or in OUTPUT mirroring the folders.
    '-o -' writes one image to stdout, in the input's format unless --format says otherwise.

    A batch keeps a job record (a hidden folder beside the outputs, or --job DIR) until it is done:
    rerunning the same command after an interruption skips the files already finished.

    Inputs whose outputs would share a name are told apart before any work: files named directly that
    meet in OUTPUT keep their folders relative to their common parent; names that still clash (a.jpg
    and a.png with --format png) take the source's extension: a_jpg_x2.png, a_png_x2.png.
    """
    items = list(inputs)
    if from_file is not None:
        items += [line.strip() for line in from_file if line.strip()]
    if not items:
        raise click.UsageError("give at least one input (a file, folder, glob, or '-')")
    _check_format(output, fmt)
    to_stdout = output == STDIO
    limit: int | None = engine["max_pixels"]  # type: ignore[assignment]
    if "-" in items:
        if len(items) > 1:
            raise click.UsageError("'-' (stdin) cannot be combined with other inputs")
        if output is None or to_stdout:
            _refuse_terminal()
        data = sys.stdin.buffer.read()
        suffix = content_suffix(data) if fmt == "same" else FORMATS[fmt]
        pic = _decoded(lambda: decode_picture(data, "<stdin>", max_pixels=limit))
        _stdio(pic, "<stdin>", None if to_stdout else output, suffix, quality, strip_metadata, engine)
        return
    if to_stdout:
        _refuse_terminal()
        src = _single_input(items, recursive=recursive)
        suffix = output_suffix(src) if fmt == "same" else FORMATS[fmt]
        pic = _decoded(lambda: load_picture(src, max_pixels=limit))
        _stdio(pic, str(src), None, suffix, quality, strip_metadata, engine)
        return

    join_cluster(cluster)
    tally = Tally()
    up = build_upscaler(**engine)  # type: ignore[arg-type]
    jobs, failures = _plan(items, output, recursive=recursive, scale=up.scale, fmt=fmt, ignored=tally.ignored)
    for item, reason in failures:
        error_line(item, reason)
    tally.failed = len(failures)
    record = None
    if len(jobs) > 1 or job_dir is not None or cluster is not None:
        settings = {
            **engine_settings(up, cluster=cluster is not None),
            "format": fmt,
            "quality": quality,
            "metadata": not strip_metadata,
        }
        record = open_job("images", items, output, [j.dst for j in jobs], settings, job_dir=job_dir, restart=restart)
    sources = {j.src.resolve() for j in jobs}
    with (
        batch_outcome(tally, quiet=quiet, record=record),
        tqdm(total=len(jobs), desc="images", unit="img", disable=quiet or not jobs, file=sys.stderr) as bar,
    ):
        todo = [job for job in jobs if to_run(job, record, sources, existing, tally)]
        bar.update(len(jobs) - len(todo))
        if cluster is not None:
            from ..cluster import run_images

            assert record is not None
            results = run_images(
                cluster, up, todo, quality=quality, strip_metadata=strip_metadata, job_folder=record.folder
            )
        else:
            results = ((job, _upscale_one(up, job, quality, strip_metadata)) for job in todo)
        for job, error in _reported(results):
            bar.set_postfix_str(job.src.name, refresh=False)
            bar.update()
            if error is not None:
                error_line(job.src, error)
                tally.failed += 1
                continue
            tally.done += 1
            if record is not None:
                record.mark_done(job.src, job.dst)


def _reported(results: Iterator[tuple[Job, str | None]]) -> Iterator[tuple[Job, str | None]]:
    """``results``; a failure of the whole run (the cluster's) ends it with one line, its record kept."""
    try:
        yield from results
    except UpscaleError as exc:
        raise click.ClickException(str(exc)) from None


def _upscale_one(up: Upscaler, job: Job, quality: int | None, strip_metadata: bool) -> str | None:
    """Upscale one file of a batch; the one-line reason it failed, or None."""
    try:
        upscale_picture_file(up, job.src, job.dst, quality=quality, strip_metadata=strip_metadata)
    except Exception as exc:  # noqa: BLE001 - one bad file must not stop the batch
        return one_line(exc)
    return None


def _check_format(output: Path | None, fmt: str) -> None:
    """``-o out.jpg --format png`` asks for two formats: a usage error rather than a guess."""
    if output is None or fmt == "same" or output == STDIO or output.is_dir():
        return
    aliases = {".jpeg": ".jpg", ".tif": ".tiff"}
    suffix = aliases.get(output.suffix.lower(), output.suffix.lower())
    if suffix in IMAGE_SUFFIXES and suffix != FORMATS[fmt]:
        raise click.UsageError(f"-o {output} is a {suffix[1:].upper()} file but --format is {fmt}; give one of them")


def _refuse_terminal() -> None:
    """Image bytes on a terminal are garbage on screen, never what was meant."""
    if sys.stdout.isatty():
        raise click.ClickException(
            "-o -: standard output is a terminal; redirect it to a file (> out.png) or give -o FILE"
        )


def _single_input(items: list[str], *, recursive: bool) -> Path:
    """The one image that ``-o -`` writes to stdout; several are a usage error."""
    found, errors = expand_inputs(items, suffixes=IMAGE_SUFFIXES, noun="images", recursive=recursive)
    if len(found) + len(errors) > 1:
        raise click.UsageError(
            f"-o - writes one image to standard output, but there are {len(found) + len(errors)} inputs; "
            "give a folder with -o"
        )
    if errors:
        item, reason = errors[0]
        raise click.ClickException(f"{item}: {reason}")
    return found[0][0]


def _decoded(read: Callable[[], Picture]) -> Picture:
    """The picture ``read`` gives, or the one-line error it names."""
    try:
        return read()
    except BadMediaError as exc:
        raise click.ClickException(str(exc)) from None


def _stdio(
    pic: Picture,
    name: str,
    output: Path | None,
    suffix: str,
    quality: int | None,
    strip_metadata: bool,
    engine: dict[str, object],
) -> None:
    """One picture (from stdin, or a file for ``-o -``) to ``output``, else to stdout as ``suffix``."""
    up = build_upscaler(**engine)  # type: ignore[arg-type]
    try:
        check_picture_memory(up, pic, name)
        result = pic.map(up.upscale)
        if output is not None:
            write_picture(output, result, quality=quality, strip_metadata=strip_metadata)
            return
        data = encode_picture(result, suffix, quality=quality, strip_metadata=strip_metadata)
    except UpscaleError as exc:  # e.g. an animation asked for as JPEG
        raise click.ClickException(f"{name}: {exc}") from None
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()

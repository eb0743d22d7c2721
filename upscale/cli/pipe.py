"""``upscale pipe``: frames on stdin, upscaled frames on stdout, for shell pipelines with ffmpeg.

    ffmpeg -i in.mkv -f yuv4mpegpipe - | upscale pipe -m rlfn | ffmpeg -i - -c:v libx264 out.mkv

Only frames go to stdout; messages and progress go to stderr.
"""

from __future__ import annotations

import io
import os
import re
import sys
from typing import Any, BinaryIO

import click

from ..errors import UpscaleError
from ..io.streaming import RAW_CHANNELS, upscale_raw, upscale_y4m
from ..io.y4m import Y4MReader
from ..io.yuv import MATRIX_BY_NAME
from .common import build_upscaler, engine_options
from .console import verbosity_options
from .progress import FrameProgress


def _size(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    m = re.fullmatch(r"(\d+)[xX](\d+)", value)
    if m is None or int(m.group(1)) == 0 or int(m.group(2)) == 0:
        raise click.BadParameter(f"{value!r} is not a frame size such as 640x360")
    return int(m.group(1)), int(m.group(2))


@click.command()
@click.option(
    "--raw",
    "raw_size",
    metavar="WxH",
    callback=_size,
    default=None,
    help="Headerless frames of this size instead of YUV4MPEG2 (see --pix-fmt).",
)
@click.option(
    "--pix-fmt",
    type=click.Choice(sorted(RAW_CHANNELS)),
    default="rgb24",
    show_default=True,
    help="Layout of --raw frames (ffmpeg -f rawvideo -pix_fmt ...).",
)
@click.option(
    "--matrix",
    type=click.Choice(["auto", *sorted(MATRIX_BY_NAME)]),
    default="auto",
    show_default=True,
    help="YCbCr matrix of the stream (YUV4MPEG2 does not say): auto is BT.601 below 720 lines, else BT.709.",
)
@click.option(
    "--range",
    "range_",
    type=click.Choice(["auto", "limited", "full"]),
    default="auto",
    show_default=True,
    help="YCbCr range; auto reads XCOLORRANGE from the header, else limited.",
)
@click.option(
    "--progress",
    "progress_mode",
    type=click.Choice(["bar", "json", "none"]),
    default="none",
    show_default=True,
    help="Progress on stderr.",
)
@click.option(
    "--queue",
    "queue_depth",
    type=click.IntRange(1, 256),
    default=4,
    show_default=True,
    help="Frames waiting between reading, inference and writing at most.",
)
@engine_options
@verbosity_options
def pipe(
    raw_size: tuple[int, int] | None,
    pix_fmt: str,
    matrix: str,
    range_: str,
    progress_mode: str,
    queue_depth: int,
    quiet: bool,
    **engine: Any,
) -> None:
    """Upscale a YUV4MPEG2 stream (4:2:0, 4:2:2, 4:4:4 or grey; 8 to 16 bits) from stdin to stdout.

    The output has the input's sampling, bit depth, frame rate and range; the size is multiplied by the scale.
    """
    src, out = _unbuffered_stdin(), sys.stdout.buffer
    if src.isatty():
        raise click.UsageError("pipe reads frames on stdin, e.g. ffmpeg -i in.mp4 -f yuv4mpegpipe - | upscale pipe")
    if out.isatty():
        raise click.UsageError("pipe writes binary frames; send stdout to a program or a file, not the terminal")
    up = build_upscaler(**engine, real_world=True)
    progress = FrameProgress("none" if quiet else progress_mode, "pipe")  # type: ignore[arg-type]
    try:
        if raw_size is not None:
            written = upscale_raw(
                src,
                out,
                up,
                width=raw_size[0],
                height=raw_size[1],
                pix_fmt=pix_fmt,
                queue_depth=queue_depth,
                on_progress=progress.update,
            )
        else:
            reader = Y4MReader(src, "stdin")
            written = upscale_y4m(
                reader,
                out,
                up,
                matrix=None if matrix == "auto" else MATRIX_BY_NAME[matrix],
                full_range=None if range_ == "auto" else range_ == "full",
                queue_depth=queue_depth,
                on_progress=progress.update,
            )
    except KeyboardInterrupt:
        progress.close(success=False)
        click.echo(f"Interrupted after {progress.done} frames.", err=True)
        sys.exit(130)
    except BrokenPipeError:
        progress.close(success=False)
        _silence_stdout(out)
        raise click.ClickException(f"stdout: the reader closed the pipe after {progress.done} frames") from None
    except UpscaleError as exc:
        progress.close(success=False)
        raise click.ClickException(f"{exc} (after {progress.done} frames)" if progress.done else str(exc)) from None
    progress.close()
    if not quiet:
        click.echo(f"pipe: {written} frames", err=True)


def _silence_stdout(out: BinaryIO) -> None:
    """Point stdout at /dev/null so Python's exit-time flush does not raise a second BrokenPipeError."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, out.fileno())
    os.close(devnull)


def _unbuffered_stdin() -> BinaryIO:
    """stdin without Python's buffer: a read left waiting on an idle producer when the command stops then
    holds no lock for the interpreter's shutdown to wait for (a buffered reader's aborts the process)."""
    try:
        return open(sys.stdin.fileno(), "rb", buffering=0, closefd=False)
    except (AttributeError, OSError, io.UnsupportedOperation):  # an in-memory stdin (tests, embedding)
        return sys.stdin.buffer

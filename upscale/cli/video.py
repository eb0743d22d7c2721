"""``upscale video``: video files (or folders of them), decoded, upscaled and encoded as a stream."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, ClassVar

import click

from ..errors import UpscaleError
from ..io.streaming import StreamError, VideoOptions, upscale_video
from ..io.video import CONTAINERS, VIDEO_SUFFIXES, EncodeSettings, check_encoder
from .batch import Failure, Job, expand_inputs, plan_jobs
from .common import (
    build_upscaler,
    engine_options,
    error_line,
    existing_output_options,
    output_allowed,
    verbosity_options,
)
from .progress import FrameProgress

log = logging.getLogger("upscale.video")


class TimeParam(click.ParamType):
    """Seconds (``12.5``) or ``[HH:]MM:SS[.fff]``."""

    name = "TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, int | float):
            return float(value)
        try:
            seconds = 0.0
            for part in str(value).split(":"):
                seconds = seconds * 60 + float(part)
        except ValueError:
            self.fail(f"{value!r} is not a time (seconds, or [HH:]MM:SS[.fff])", param, ctx)
        if seconds < 0 or str(value).count(":") > 2:
            self.fail(f"{value!r} is not a time (seconds, or [HH:]MM:SS[.fff])", param, ctx)
        return seconds


class BitrateParam(click.ParamType):
    """Bits per second: ``800000``, ``2500k``, ``8M``."""

    name = "RATE"
    _UNITS: ClassVar[dict[str, int]] = {"k": 1_000, "m": 1_000_000, "g": 1_000_000_000}

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip().lower()
        factor = self._UNITS.get(text[-1:], 1)
        try:
            rate = float(text[:-1] if factor != 1 else text) * factor
        except ValueError:
            self.fail(f"{value!r} is not a bit rate such as 8M or 2500k", param, ctx)
        if rate <= 0:
            self.fail("the bit rate must be positive", param, ctx)
        return int(rate)


def _plan(
    inputs: list[str], output: Path | None, *, recursive: bool, scale: float, container: str | None
) -> tuple[list[Job], list[Failure]]:
    found, errors = expand_inputs(inputs, suffixes=VIDEO_SUFFIXES, noun="videos", recursive=recursive)
    jobs, clashes = plan_jobs(
        found,
        output,
        scale=scale,
        suffix_of=lambda _src: "." + (container or "mp4"),
        file_suffixes=VIDEO_SUFFIXES | {"." + c for c in CONTAINERS},
        noun="videos",
    )
    return jobs, errors + clashes


@click.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="Output file (one input) or folder. Default: {stem}_x{scale}.mp4 beside each input.",
)
@click.option("-r", "--recursive", is_flag=True, help="Look for videos in sub-folders too.")
@click.option(
    "--codec",
    default="libx264",
    show_default=True,
    help="Video encoder: libx264, libx265, libvpx-vp9, ffv1, or h264_nvenc/hevc_nvenc with --device cuda.",
)
@click.option(
    "--crf",
    type=click.FloatRange(0, 63),
    default=None,
    help="Constant quality (lower is better); default 18 for libx264, 20 libx265, 24 libvpx-vp9.",
)
@click.option("--preset", default=None, help="Encoder speed preset (libx264/libx265: medium, slow ...; NVENC: p1-p7).")
@click.option("--pix-fmt", default=None, help="Output pixel format (default: the input's, if the encoder takes it).")
@click.option("--bitrate", type=BitrateParam(), default=None, help="Target bit rate such as 8M (instead of --crf).")
@click.option(
    "--container",
    type=click.Choice(sorted(CONTAINERS)),
    default=None,
    help="Output container (default: from the output's suffix, else mp4).",
)
@click.option("--no-audio", is_flag=True, help="Drop audio and subtitle streams (copied by default).")
@click.option("--start", type=TimeParam(), default=None, help="Start here (seconds or [HH:]MM:SS).")
@click.option("--duration", type=TimeParam(), default=None, help="Process this much (seconds or [HH:]MM:SS).")
@click.option(
    "--progress",
    "progress_mode",
    type=click.Choice(["bar", "json", "none"]),
    default="bar",
    show_default=True,
    help="Progress on stderr: a bar, or one JSON line per second.",
)
@click.option(
    "--queue",
    "queue_depth",
    type=click.IntRange(1, 256),
    default=8,
    show_default=True,
    help="Frames waiting between decoding, inference and encoding at most.",
)
@existing_output_options
@engine_options
@verbosity_options
def video(
    inputs: tuple[str, ...],
    output: Path | None,
    recursive: bool,
    codec: str,
    crf: float | None,
    preset: str | None,
    pix_fmt: str | None,
    bitrate: int | None,
    container: str | None,
    no_audio: bool,
    start: float | None,
    duration: float | None,
    progress_mode: str,
    queue_depth: int,
    existing: str,
    quiet: bool,
    **engine: Any,
) -> None:
    """Upscale videos: files or folders of them, one after another.

    Every frame keeps its timestamp; audio and subtitles are copied (or audio re-encoded to AAC where the
    container cannot hold it); colour matrix, range, rotation and metadata are kept. Outputs appear under
    their final name only when complete.
    """
    if duration is not None and duration <= 0:
        raise click.BadParameter("must be positive", param_hint="--duration")
    up = build_upscaler(**engine)
    try:
        check_encoder(codec, cuda=up.device.type == "cuda")
    except UpscaleError as exc:
        raise click.ClickException(str(exc)) from None
    opts = VideoOptions(
        encode=EncodeSettings(codec=codec, crf=crf, preset=preset, pix_fmt=pix_fmt, bitrate=bitrate),
        container=container,
        audio=not no_audio,
        start_s=start,
        duration_s=duration,
        queue_depth=queue_depth,
    )
    jobs, failures = _plan(list(inputs), output, recursive=recursive, scale=up.scale, container=container)
    for item, reason in failures:
        error_line(item, reason)
    done = skipped = 0
    failed = len(failures)
    sources = {j.src.resolve() for j in jobs}
    mode = "none" if quiet else progress_mode
    for job in jobs:
        allowed = output_allowed(job.src, job.dst, sources, existing)
        if not allowed:
            skipped += allowed is None
            failed += allowed is False
            continue
        if _run_one(job, up, opts, mode, quiet):
            done += 1
        else:
            failed += 1
    if not quiet and (len(jobs) > 1 or failures or skipped):
        click.echo(f"{len(jobs) + len(failures)} videos: {done} upscaled, {skipped} skipped, {failed} failed", err=True)
    if failed:
        sys.exit(1)


def _run_one(job: Job, up: Any, opts: VideoOptions, mode: str, quiet: bool) -> bool:
    """Process one file; False (after a one-line error) if it failed. Ctrl-C stops the whole command."""
    progress = FrameProgress(mode, job.src.name)  # type: ignore[arg-type]
    try:
        result = upscale_video(job.src, job.dst, up, opts, on_start=progress.set_total, on_progress=progress.update)
    except KeyboardInterrupt:
        progress.close(success=False)
        click.echo(
            f"Interrupted after {progress.done} frames: {job.dst} not written (temporary file removed).", err=True
        )
        sys.exit(130)
    except StreamError as exc:
        progress.close(success=False)
        error_line(
            job.src, f"{exc}; stopped after {exc.frames_done} frames, {job.dst} not written (temporary file removed)"
        )
        return False
    except UpscaleError as exc:
        progress.close(success=False)
        error_line(job.src, str(exc))
        return False
    except Exception as exc:  # noqa: BLE001 - one bad file must not stop the batch
        progress.close(success=False)
        error_line(job.src, f"{type(exc).__name__}: {exc}".splitlines()[0])
        return False
    progress.close()
    if not quiet:
        fps = result.frames / result.seconds if result.seconds > 0 else 0.0
        corrupt = f"; {result.corrupt} damaged packets or frames reported" if result.corrupt else ""
        click.echo(
            f"{job.src} -> {job.dst}: {result.frames} frames in {result.seconds:.1f}s ({fps:.1f} fps){corrupt}",
            err=True,
        )
    return True

"""``upscale video``: video files (or folders of them), decoded, upscaled and encoded as a stream."""

from __future__ import annotations

import logging
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

import click

from ..cluster import ClusterError
from ..errors import UpscaleError
from ..io.segments import SEGMENT_S
from ..io.streaming import StreamError, TruncatedInputError, VideoOptions, upscale_video
from ..io.video import CONTAINERS, VIDEO_SUFFIXES, EncodeSettings, check_encoder, holds_codec
from .batch import Failure, Job, Tally, expand_inputs, plan_jobs
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


FILE_SUFFIXES = VIDEO_SUFFIXES | {"." + c for c in CONTAINERS}
"""An ``-o`` with one of these names a file."""
_SUFFIX_CONTAINER = {"m4v": "mp4"}
"""Suffixes that name another ``--container``."""


def _check_options(output: Path | None, container: str | None, crf: float | None, bitrate: int | None) -> None:
    """Options that contradict each other are usage errors, not silently half-applied."""
    if crf is not None and bitrate is not None:
        raise click.UsageError("--crf and --bitrate exclude each other (a bit rate replaces constant quality)")
    if container and output is not None and not output.is_dir() and output.suffix.lower() in FILE_SUFFIXES:
        named = output.suffix.lower().lstrip(".")
        if _SUFFIX_CONTAINER.get(named, named) != container:
            raise click.UsageError(f"--container {container} disagrees with -o {output}; drop one or make them match")


def _keep_suffix(src: Path, codec: str) -> str:
    """The input's own container when upscale writes it and it holds ``codec``'s video; mp4 otherwise."""
    name = src.suffix.lower().lstrip(".")
    if name not in CONTAINERS or name == "mp4":
        return ".mp4"
    if holds_codec(CONTAINERS[name], codec):
        return "." + name
    notice(f"{src}: {name} cannot hold {codec} video; writing .mp4 (choose --codec or --container to change it)")
    return ".mp4"


def _plan(
    inputs: list[str], output: Path | None, *, recursive: bool, scale: float, container: str | None, codec: str
) -> tuple[list[Job], list[Failure]]:
    found, errors = expand_inputs(inputs, suffixes=VIDEO_SUFFIXES, noun="videos", recursive=recursive)
    suffixes: dict[Path, str] = {}

    def suffix_of(src: Path) -> str:
        if src not in suffixes:
            suffixes[src] = "." + container if container else _keep_suffix(src, codec)
        return suffixes[src]

    jobs, clashes = plan_jobs(
        found, output, scale=scale, suffix_of=suffix_of, file_suffixes=FILE_SUFFIXES, noun="videos"
    )
    return jobs, errors + clashes


@click.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="Output file (one input) or folder. Default: {stem}_x{scale} beside each input, in the input's container "
    "(mp4 when it is not mp4, mkv, mov, webm, avi or nut, or cannot hold the --codec).",
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
@click.option("--no-audio", is_flag=True, help="Drop audio, subtitle and attachment streams (copied by default).")
@click.option(
    "--allow-truncated",
    is_flag=True,
    help="Accept an input that ends before its container says (cut off): a warning, not an error.",
)
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
@click.option(
    "--segment",
    "segment_s",
    type=click.FloatRange(0.1),
    default=SEGMENT_S,
    show_default=True,
    help="Seconds of video per segment (each starts on a keyframe): what an interrupted job redoes at most, "
    "and the unit spread over a cluster.",
)
@existing_output_options
@job_options
@cluster_option
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
    allow_truncated: bool,
    start: float | None,
    duration: float | None,
    progress_mode: str,
    queue_depth: int,
    segment_s: float,
    existing: str,
    job_dir: Path | None,
    restart: bool,
    cluster: str | None,
    quiet: bool,
    **engine: Any,
) -> None:
    """Upscale videos: files or folders of them, one after another.

    Every frame keeps its timestamp; audio, subtitles, chapters and attachments are copied (or audio
    re-encoded to AAC where the container cannot hold it; anything left out is named); colour matrix,
    range, rotation and metadata are kept. Outputs keep the input's container and appear under their
    final name only when complete. An input cut off before its end is finished as far as it goes, then
    reported as an error unless --allow-truncated.

    Each video is made in segments of a few seconds that start on keyframes, then assembled without
    re-encoding the joins. Until the job is done its record (a hidden folder beside the outputs, or
    --job DIR) keeps the finished videos and segments: rerunning the same command after an interruption
    continues from there.
    """
    if duration is not None and duration <= 0:
        raise click.BadParameter("must be positive", param_hint="--duration")
    _check_options(output, container, crf, bitrate)
    join_cluster(cluster)
    counts = Tally(total=0)
    record = None
    try:
        up = build_upscaler(**engine, real_world=True)
        try:
            check_encoder(codec, cuda=up.device.type == "cuda")
        except UpscaleError as exc:
            raise click.ClickException(str(exc)) from None
        opts = VideoOptions(
            encode=EncodeSettings(codec=codec, crf=crf, preset=preset, pix_fmt=pix_fmt, bitrate=bitrate, quiet=quiet),
            container=container,
            audio=not no_audio,
            start_s=start,
            duration_s=duration,
            queue_depth=queue_depth,
            allow_truncated=allow_truncated,
            segment_s=segment_s,
        )
        jobs, failures = _plan(
            list(inputs), output, recursive=recursive, scale=up.scale, container=container, codec=codec
        )
        for item, reason in failures:
            error_line(item, reason)
        counts.total, counts.failed = len(jobs) + len(failures), len(failures)
        settings = {
            **engine_settings(up, cluster=cluster is not None),
            **{k: v for k, v in asdict(opts.encode).items() if k != "quiet"},
            "container": container,
            "audio": not no_audio,
            "start": start,
            "duration": duration,
            "segment": segment_s,
        }
        record = open_job(
            "video", list(inputs), output, [j.dst for j in jobs], settings, job_dir=job_dir, restart=restart
        )
        sources = {j.src.resolve() for j in jobs}
        mode = "none" if quiet else progress_mode
        for job in jobs:
            if not to_run(job, record, sources, existing, counts):
                continue
            if _run_one(job, up, opts, mode, quiet, record.work_folder(job.dst), cluster):
                counts.done += 1
                record.mark_done(job.src, job.dst)
            else:
                counts.failed += 1
    except KeyboardInterrupt:  # while loading, between videos or in one (whose output is already removed)
        if record is not None:
            record.close(finished=False)
        click.echo(counts.summary(interrupted=True, noun="videos"), err=True)
        sys.exit(130)
    record.close(finished=not counts.failed)
    if not quiet and (len(jobs) > 1 or failures or counts.skipped or counts.resumed):
        click.echo(counts.summary(noun="videos"), err=True)
    if counts.failed:
        sys.exit(1)


def _run_one(job: Job, up: Any, opts: VideoOptions, mode: str, quiet: bool, work: Path, cluster: str | None) -> bool:
    """Process one file; False (after a one-line error) if it failed. Ctrl-C stops the whole command."""
    progress = FrameProgress(mode, job.src.name)  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {
        "work": work,
        "on_start": progress.set_total,
        "on_progress": progress.update,
        "on_segment": progress.set_segments,
    }
    try:
        if cluster is not None:
            from ..cluster import segment_runner

            kwargs["runner"] = segment_runner(cluster)
        result = upscale_video(job.src, job.dst, up, opts, **kwargs)
    except KeyboardInterrupt:
        progress.close(success=False)
        click.echo(
            f"Interrupted after {progress.done} frames: {job.dst} not written (temporary file removed); "
            "its finished segments are kept: rerun the same command to continue.",
            err=True,
        )
        raise
    except ClusterError as exc:  # the cluster, not this file: nothing else can run either
        progress.close(success=False)
        raise click.ClickException(str(exc)) from None
    except TruncatedInputError as exc:
        reason = f"{exc}; {job.dst} holds the {exc.result.frames} frames decoded (--allow-truncated accepts it)"
        progress.close(success=False, error=reason)
        error_line(job.src, reason)
        return False
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

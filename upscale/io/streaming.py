"""Whole streams through the engine: a video file to a video file, and YUV4MPEG2 or raw frames from one
byte stream to another. Decoding, inference, colour conversion and encoding each run on their own thread
(:class:`~upscale.io.pipeline.Pipeline`), so the engine is kept busy and memory stays flat.
"""

from __future__ import annotations

import itertools
import json
import logging
import shutil
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..engine import Upscaler
from ..errors import BadMediaError, UpscaleError
from .files import atomic_output, sync, write_durably
from .limits import check_pixels
from .pipeline import Pipeline
from .segments import (
    SEGMENT_S,
    Segment,
    SegmentResult,
    assemble,
    finished,
    load_plan,
    segment_path,
)
from .video import (
    EncodeSettings,
    VideoReader,
    VideoWriter,
    check_encoder,
    container_for,
    describe_error,
    encoder_pix_fmt,
    holds_codec,
)
from .y4m import Y4MReader, Y4MWriter, read_exact
from .yuv import Colour, LumaPath, default_matrix, frame_from_planes, make_frame_path, output_size, planes_of

log = logging.getLogger("upscale.video")

ProgressCallback = Callable[[int], None]
"""Called with the number of frames written so far."""
SegmentRunner = Callable[..., Iterator[tuple[Segment, "SegmentResult | str"]]]
"""``runner(src, plan, todo, folder, up, opts)``: makes the segments ``todo``, yielding each as it is done."""


@dataclass(frozen=True)
class VideoOptions:
    """How ``upscale video`` treats one file, apart from the engine."""

    encode: EncodeSettings = field(default_factory=EncodeSettings)
    container: str | None = None
    """``mp4``, ``mkv`` ...; None: from the output's suffix."""
    audio: bool = True
    """Copy (or transcode) audio and subtitle streams."""
    start_s: float | None = None
    duration_s: float | None = None
    queue_depth: int = 8
    """Frames waiting between two stages at most."""
    allow_truncated: bool = False
    """Accept an input that ends before its container says it does (a warning instead of
    :class:`TruncatedInputError`)."""
    segment_s: float = SEGMENT_S
    """Seconds of video per segment, the unit of resuming and of spreading over workers."""


@dataclass
class FramesRun:
    """What :func:`run_frames` wrote."""

    frames: int
    first_pts: int
    last_duration: int
    rotation: int
    notes: list[str]
    tags: dict[str, int]


@dataclass
class VideoResult:
    output: Path
    frames: int
    seconds: float
    notes: list[str] = field(default_factory=list)
    corrupt: int = 0


class TruncatedInputError(BadMediaError):
    """The input ended before its container said it would; the output holds every frame decoded."""

    def __init__(self, message: str, result: VideoResult) -> None:
        super().__init__(message)
        self.result = result


class StreamError(UpscaleError):
    """A failure part-way through a stream; says how far it got."""

    def __init__(self, message: str, frames_done: int) -> None:
        super().__init__(message)
        self.frames_done = frames_done


def _infer(
    run: Callable[[Iterator[np.ndarray]], Iterator[np.ndarray]], items: Iterator[tuple[np.ndarray, Any]]
) -> Iterator[tuple[np.ndarray, Any]]:
    """Run the engine over (input, metadata) pairs, batching across frames, and pair outputs back up."""
    metas: deque[Any] = deque()

    def arrays() -> Iterator[np.ndarray]:
        for arr, meta in items:
            metas.append(meta)
            yield arr

    for out in run(arrays()):
        yield out, metas.popleft()


def check_frame_size(up: Upscaler, name: str, width: int, height: int, channels: int = 3) -> None:
    """Refuse a stream whose frames declare more than ``--max-pixels``, or whose upscaling needs more
    memory than is available, before its first frame is read (:class:`~.limits.TooLargeError`)."""
    check_pixels(name, width, height, up.options.max_pixels)
    up.check_memory(name, height, width, channels)


def upscale_video(
    src: Path,
    dst: Path,
    up: Upscaler,
    opts: VideoOptions,
    *,
    work: Path | None = None,
    on_start: Callable[[int | None], None] | None = None,
    on_progress: ProgressCallback | None = None,
    on_segment: Callable[[int, int], None] | None = None,
    runner: SegmentRunner | None = None,
) -> VideoResult:
    """Upscale ``src`` into ``dst`` (assembled under a temporary name and renamed when complete).

    The video is made in segments (see :mod:`upscale.io.segments`) kept in ``work`` until the output is
    assembled; segments an earlier, interrupted run left there are used as they are. Without ``work``, a
    hidden folder beside ``dst`` is used and removed. ``on_segment(done, total)`` follows the segments.
    ``runner`` makes the missing segments elsewhere (a cluster), yielding each with its result or the
    reason it failed; by default they are made here, one after another.

    Raises :class:`BadMediaError` for inputs that cannot be read, :class:`UpscaleError` for settings that
    cannot be met, and :class:`StreamError` (or ``KeyboardInterrupt``) part-way through; in every case no
    file appears at ``dst``. An input that ends before its container says it does is finished as far as it
    goes and written, then :class:`TruncatedInputError` is raised unless ``opts.allow_truncated``.
    """
    t0 = time.perf_counter()
    check_encoder(opts.encode.codec, cuda=up.device.type == "cuda")
    format_name = container_for(dst, opts.container)
    if not holds_codec(format_name, opts.encode.codec):
        raise UpscaleError(
            f"{dst}: {format_name} cannot hold what encoder '{opts.encode.codec}' makes "
            "(choose another --codec or --container)"
        )
    with VideoReader(src, copy_streams=False) as probe:
        ctx = probe.stream.codec_context
        check_frame_size(up, str(src), ctx.width, ctx.height)
    own_work = work is None
    folder = work or dst.with_name(f".{dst.name}.segments")
    plan = load_plan(folder, src, opts)
    if on_start is not None:
        on_start(plan.estimated_frames)
    results = {seg.index: r for seg in plan.segments if (r := finished(folder, seg)) is not None}
    todo = [seg for seg in plan.segments if seg.index not in results]
    done_frames = sum(r.frames for r in results.values())

    def count(seg: Segment, result: SegmentResult) -> None:
        nonlocal done_frames
        results[seg.index] = result
        done_frames += result.frames
        if on_segment is not None:
            on_segment(len(results), len(plan.segments))
        if on_progress is not None:
            on_progress(done_frames)

    def failed(seg: Segment, reason: str, frames: int) -> StreamError:
        kept = f"; the {len(results)} finished segments are kept" if results else ""
        return StreamError(f"{plan.describe(seg)}: {reason}{kept}", done_frames + frames)

    if results:  # finished by an earlier run
        if on_segment is not None:
            on_segment(len(results), len(plan.segments))
        if on_progress is not None:
            on_progress(done_frames)
    if runner is not None:
        for seg, outcome in runner(src, plan, todo, folder, up, opts):
            if isinstance(outcome, str):
                raise failed(seg, outcome, 0)
            count(seg, outcome)
    for seg in todo if runner is None else ():
        base = done_frames
        try:
            result = encode_segment(
                src,
                seg,
                up,
                opts,
                folder,
                on_progress=None if on_progress is None else lambda n, base=base: on_progress(base + n),
                describe=seg is todo[0],
            )
        except StreamError as exc:
            raise failed(seg, str(exc), exc.frames_done) from exc
        count(seg, result)
    ordered = [results[seg.index] for seg in plan.segments]
    frames, notes = assemble(src, plan, ordered, folder, dst, opts, format_name=format_name)
    if own_work:
        shutil.rmtree(folder, ignore_errors=True)
    notes = list(dict.fromkeys([n for r in ordered for n in r.notes] + notes))
    for n in notes:
        log.warning("%s: %s", src, n)
    result = VideoResult(dst, frames, time.perf_counter() - t0, notes, sum(r.corrupt for r in ordered))
    ends_early = ordered[-1].ends_early
    if ends_early:
        if not opts.allow_truncated:
            raise TruncatedInputError(f"{src}: {ends_early}", result)
        log.warning("%s: %s; kept the %d frames decoded", src, ends_early, result.frames)
    return result


def encode_segment(
    src: Path,
    seg: Segment,
    up: Any,
    opts: VideoOptions,
    folder: Path,
    *,
    on_progress: Callable[[int], None] | None = None,
    describe: bool = False,
) -> SegmentResult:
    """Decode, upscale and encode one segment into ``folder`` (renamed into place when complete)."""
    with (
        VideoReader(
            src, start_s=opts.start_s, duration_s=opts.duration_s, copy_streams=False, window=(seg.lo, seg.hi)
        ) as reader,
        atomic_output(segment_path(folder, seg)) as tmp,
    ):
        run = run_frames(reader, tmp, up, opts, format_name="nut", on_progress=on_progress, describe=describe)
        result = SegmentResult(
            run.frames,
            run.first_pts,
            run.last_duration,
            reader.corrupt,
            reader.ends_early,
            run.rotation,
            run.notes,
            run.tags,
        )
        sync(tmp)
        write_durably(folder / f"{seg.name}.json", json.dumps(asdict(result)))
    return result


def run_frames(
    reader: VideoReader,
    path_out: Path,
    up: Upscaler,
    opts: VideoOptions,
    *,
    format_name: str,
    on_progress: ProgressCallback | None = None,
    describe: bool = True,
) -> FramesRun:
    """Decode ``reader``'s frames, upscale and encode them into ``path_out`` (video only).

    Raises :class:`StreamError` (with the frames written) for a failure part-way through.
    """
    settings = opts.encode
    decoded = reader.frames()
    first = next(decoded)
    colour = Colour.of(first.frame)
    pix_fmt = encoder_pix_fmt(settings.codec, settings.pix_fmt, first.frame.format.name)
    width, height, note = output_size(up, first.frame.width, first.frame.height, pix_fmt)
    notes = [note] if note else []
    if first.frame.interlaced_frame:
        notes.append("interlaced video is upscaled as whole frames; deinterlace it first for a clean result")
    path = make_frame_path(up, first.frame, colour, pix_fmt, (width, height))
    if describe:
        log.info(
            "%s: %dx%d %s (%s) -> %dx%d %s %s, %s path",
            reader.path,
            first.frame.width,
            first.frame.height,
            first.frame.format.name,
            colour.describe(),
            width,
            height,
            settings.codec,
            pix_fmt,
            "luma" if isinstance(path, LumaPath) else "rgb",
        )

    def prepare() -> Iterator[tuple[np.ndarray, Any]]:
        for item in itertools.chain([first], decoded):
            arr, side = path.prepare(item.frame)
            yield arr, (item.pts, item.duration, side)

    def finish(items: Iterator[tuple[np.ndarray, Any]]) -> Iterator[tuple[Any, Any]]:
        for out, (pts, duration, side) in items:
            yield path.finish(out, side), (pts, duration)

    writer = VideoWriter(
        path_out,
        format_name=format_name,
        settings=settings,
        width=width,
        height=height,
        pix_fmt=pix_fmt,
        rate=reader.rate,
        time_base=reader.time_base,
        colour=colour,
        aspect=reader.stream.codec_context.sample_aspect_ratio,
        name=str(path_out),
    )
    notes += writer.notes
    try:
        with Pipeline(opts.queue_depth) as pipe:
            stage = pipe.stage(prepare(), name="decode")
            stage = pipe.stage(lambda items: _infer(path.run, items), stage, name="infer")
            last_duration = 0
            for frame, (pts, duration) in pipe.stage(finish, stage, name="convert"):
                writer.write(frame, pts, duration)
                last_duration = duration
                if on_progress is not None:
                    on_progress(writer.frames_written)
        writer.finish()
    except KeyboardInterrupt:
        writer.abort()
        raise
    except UpscaleError as exc:
        writer.abort()
        raise StreamError(str(exc), writer.frames_written) from exc
    except Exception as exc:  # FFmpeg, torch, numpy: reported with how far the stream got
        writer.abort()
        raise StreamError(describe_error(exc), writer.frames_written) from exc
    return FramesRun(writer.frames_written, first.pts, last_duration, first.frame.rotation, notes, writer.tags())


# ---------------------------------------------------------------------- byte streams
def upscale_y4m(
    reader: Y4MReader,
    out: BinaryIO,
    up: Upscaler,
    *,
    matrix: int | None = None,
    full_range: bool | None = None,
    queue_depth: int = 4,
    on_progress: ProgressCallback | None = None,
) -> int:
    """Upscale a YUV4MPEG2 stream frame by frame into ``out`` (same sampling and depth); returns frames written.

    The format has no matrix tag: ``matrix`` (an AVColorSpace value) or the height decides, as for
    untagged video; the range comes from ``XCOLORRANGE`` unless ``full_range`` is given, limited otherwise.
    """
    h = reader.header
    if h.has_alpha:
        raise BadMediaError(f"{reader.name}: C{h.chroma} (with alpha) is not supported; use 420, 422, 444 or mono")
    pix_fmt = h.pix_fmt
    rng = full_range if full_range is not None else bool(h.full_range)
    colour = Colour(matrix if matrix is not None else default_matrix(h.height), rng, guessed=matrix is None)
    if h.interlace not in ("p", "?"):
        log.warning(
            "%s: interlaced stream (I%s) is upscaled as whole frames; deinterlace it first for a clean result",
            reader.name,
            h.interlace,
        )
    check_frame_size(up, reader.name, h.width, h.height)
    first_planes = reader.read_frame()
    width, height, note = output_size(up, h.width, h.height, pix_fmt)
    if note:
        log.warning("%s: %s", reader.name, note)
    writer = Y4MWriter(out, h.scaled(width, height))
    if first_planes is None:
        writer.flush()
        return 0
    first = frame_from_planes(first_planes, pix_fmt, h.width, h.height)
    path = make_frame_path(up, first, colour, pix_fmt, (width, height), chroma_left=h.chroma_left)

    damaged: list[BadMediaError] = []

    def prepare() -> Iterator[tuple[np.ndarray, Any]]:
        yield path.prepare(first)
        try:
            for planes in reader:
                yield path.prepare(frame_from_planes(planes, pix_fmt, h.width, h.height))
        except BadMediaError as exc:  # a cut-off stream: finish the complete frames, then report
            damaged.append(exc)

    def finish(items: Iterator[tuple[np.ndarray, Any]]) -> Iterator[list[np.ndarray]]:
        for out_arr, side in items:
            yield planes_of(path.finish(out_arr, side))

    written = 0
    with Pipeline(queue_depth) as pipe:
        stage = pipe.stage(prepare(), name="read", wait=False)
        stage = pipe.stage(lambda items: _infer(path.run, items), stage, name="infer")
        for planes in pipe.stage(finish, stage, name="convert"):
            writer.write(planes)
            writer.flush()
            written += 1
            if on_progress is not None:
                on_progress(written)
    if damaged:
        raise damaged[0]
    return written


RAW_CHANNELS = {"rgb24": 3, "gray": 1}


def upscale_raw(
    src: BinaryIO,
    out: BinaryIO,
    up: Upscaler,
    *,
    width: int,
    height: int,
    pix_fmt: str,
    queue_depth: int = 4,
    name: str = "stdin",
    on_progress: ProgressCallback | None = None,
) -> int:
    """Upscale headerless frames (``rgb24`` or ``gray``, ``width``×``height`` each); returns frames written."""
    channels = RAW_CHANNELS[pix_fmt]
    size = width * height * channels
    check_frame_size(up, name, width, height, channels)

    damaged: list[BadMediaError] = []

    def read() -> Iterator[tuple[np.ndarray, None]]:
        index = 0
        while True:
            data = read_exact(src, size)
            if not data:
                return
            if len(data) < size:  # finish the complete frames, then report
                damaged.append(BadMediaError(f"{name}: frame {index} is truncated ({len(data)} of {size} bytes)"))
                return
            arr = np.frombuffer(data, np.uint8).reshape(height, width, channels)
            yield (arr[..., 0] if channels == 1 else arr), None
            index += 1

    written = 0
    expected: tuple[int, int] | None = None
    with Pipeline(queue_depth) as pipe:
        for result, _ in pipe.stage(
            lambda items: _infer(up.upscale_many, items), pipe.stage(read(), name="read", wait=False), name="infer"
        ):
            if expected is None:
                expected = result.shape[:2]
                log.info("%s: raw %s %dx%d -> %dx%d", name, pix_fmt, width, height, expected[1], expected[0])
            out.write(np.ascontiguousarray(result).tobytes())
            out.flush()
            written += 1
            if on_progress is not None:
                on_progress(written)
    if damaged:
        raise damaged[0]
    return written

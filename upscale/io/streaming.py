"""Whole streams through the engine: a video file to a video file, and YUV4MPEG2 or raw frames from one
byte stream to another. Decoding, inference, colour conversion and encoding each run on their own thread
(:class:`~upscale.io.pipeline.Pipeline`), so the engine is kept busy and memory stays flat.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..engine import Upscaler
from ..errors import BadMediaError, UpscaleError
from .files import atomic_output
from .pipeline import Pipeline
from .video import (
    EncodeSettings,
    VideoReader,
    VideoWriter,
    check_encoder,
    container_for,
    describe_error,
    encoder_pix_fmt,
)
from .y4m import Y4MReader, Y4MWriter, read_exact
from .yuv import Colour, LumaPath, default_matrix, frame_from_planes, make_frame_path, output_size, planes_of

log = logging.getLogger("upscale.video")

ProgressCallback = Callable[[int], None]
"""Called with the number of frames written so far."""


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


def upscale_video(
    src: Path,
    dst: Path,
    up: Upscaler,
    opts: VideoOptions,
    *,
    on_start: Callable[[int | None], None] | None = None,
    on_progress: ProgressCallback | None = None,
) -> VideoResult:
    """Upscale ``src`` into ``dst`` (written under a temporary name and renamed when complete).

    Raises :class:`BadMediaError` for inputs that cannot be read, :class:`UpscaleError` for settings that
    cannot be met, and :class:`StreamError` (or ``KeyboardInterrupt``) part-way through; in every case no
    file appears at ``dst``. An input that ends before its container says it does is finished as far as it
    goes and written, then :class:`TruncatedInputError` is raised unless ``opts.allow_truncated``.
    """
    t0 = time.perf_counter()
    settings = opts.encode
    check_encoder(settings.codec, cuda=up.device.type == "cuda")
    format_name = container_for(dst, opts.container)
    with VideoReader(src, start_s=opts.start_s, duration_s=opts.duration_s, copy_streams=opts.audio) as reader:
        if on_start is not None:
            on_start(reader.estimated_frames())
        decoded = reader.frames()
        first = next(decoded)
        colour = Colour.of(first.frame)
        pix_fmt = encoder_pix_fmt(settings.codec, settings.pix_fmt, first.frame.format.name)
        width, height, note = output_size(up, first.frame.width, first.frame.height, pix_fmt)
        notes = [note] if note else []
        if first.frame.interlaced_frame:
            notes.append("interlaced video is upscaled as whole frames; deinterlace it first for a clean result")
        path = make_frame_path(up, first.frame, colour, pix_fmt, (width, height))
        log.info(
            "%s: %dx%d %s (%s) -> %dx%d %s %s, %s path",
            src,
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
                yield arr, (item.pts, item.duration, item.packets, side)

        def finish(items: Iterator[tuple[np.ndarray, Any]]) -> Iterator[tuple[Any, Any]]:
            for out, (pts, duration, packets, side) in items:
                yield path.finish(out, side), (pts, duration, packets)

        with atomic_output(dst) as tmp:
            writer = VideoWriter(
                tmp,
                format_name=format_name,
                settings=settings,
                width=width,
                height=height,
                pix_fmt=pix_fmt,
                rate=reader.rate,
                time_base=reader.time_base,
                colour=colour,
                rotation=first.frame.rotation,
                aspect=reader.stream.codec_context.sample_aspect_ratio,
                metadata=dict(reader.container.metadata),
                stream_metadata=dict(reader.stream.metadata),
                copy_streams=reader.copy_streams,
                samples=reader.sample_packets(),
                attachments=reader.attachments,
                chapters=reader.chapters(),
                name=str(dst),
            )
            notes += reader.dropped_streams() + writer.notes
            for n in notes:
                log.warning("%s: %s", src, n)
            try:
                with Pipeline(opts.queue_depth) as pipe:
                    stage = pipe.stage(prepare(), name="decode")
                    stage = pipe.stage(lambda items: _infer(path.run, items), stage, name="infer")
                    for frame, (pts, duration, packets) in pipe.stage(finish, stage, name="convert"):
                        writer.write(frame, pts, duration, packets)
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
        result = VideoResult(dst, writer.frames_written, time.perf_counter() - t0, notes, reader.corrupt)
        if reader.ends_early:
            if not opts.allow_truncated:
                raise TruncatedInputError(f"{src}: {reader.ends_early}", result)
            log.warning("%s: %s; kept the %d frames decoded", src, reader.ends_early, result.frames)
        return result


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

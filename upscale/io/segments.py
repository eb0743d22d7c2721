"""A video in segments that start on keyframes, so that a job can stop and resume, or be spread over
workers: each segment is decoded, upscaled and encoded into a file of its own, and the output is then
assembled by remuxing the segments' packets with the source's audio, subtitles, chapters and metadata
(nothing is re-encoded at the joins).

Segment ``k`` holds the frames whose source timestamps fall in ``[lo_k, lo_{k+1})``, where each ``lo``
after the first is a keyframe's; frames keep their source timestamps (shifted by ``--start``), so the
assembled video is continuous, variable frame rates included. Segments are stored as NUT, which keeps
every timestamp exactly and holds any codec; what it does not keep (frame durations, colour tags, the
decoding times of the first packets, an offset it adds to streams that start with negative decoding
times) is kept beside each segment or rebuilt when the output is assembled.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import json
import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import av
import av.error

from ..errors import BadMediaError, UpscaleError
from .files import atomic_output, write_durably
from .video import VideoReader, VideoWriter, describe_error

if TYPE_CHECKING:
    from .streaming import VideoOptions

log = logging.getLogger("upscale.video")

SEGMENT_S = 5.0
"""Default seconds of video per segment (each ends at the first keyframe after that long)."""
PLAN = "plan.json"


@dataclass(frozen=True)
class Segment:
    index: int
    lo: int
    """Timestamp of its first frame, in the source video stream's time base."""
    hi: int | None
    """Timestamp where the next segment begins; None for the last."""

    @property
    def name(self) -> str:
        return f"{self.index:05d}"


@dataclass
class SegmentPlan:
    segments: list[Segment]
    time_base: Fraction
    estimated_frames: int | None
    start_s: float
    source: list[int]
    """Size and modification time of the source the plan was made from."""
    seconds: float

    def describe(self, seg: Segment) -> str:
        """``segment 3 of 7 (10.00 s to 15.04 s)``, in the output's time."""
        lo = max(float(seg.lo * self.time_base) - self.start_s, 0.0)
        hi = "end" if seg.hi is None else f"{float(seg.hi * self.time_base) - self.start_s:.2f} s"
        return f"segment {seg.index + 1} of {len(self.segments)} ({lo:.2f} s to {hi})"


@dataclass
class SegmentResult:
    """What encoding a segment found, kept beside its file for later runs."""

    frames: int
    first_pts: int = 0
    """Presentation time of its first frame (output time line, source time base): NUT shifts every
    timestamp of a stream that starts with a negative decoding time, and this undoes it."""
    last_duration: int = 0
    """How long its last frame lasts (NUT does not keep durations; the others are the gaps between frames)."""
    corrupt: int = 0
    ends_early: str | None = None
    rotation: int = 0
    notes: list[str] = field(default_factory=list)
    tags: dict[str, int] = field(default_factory=dict)
    """The encoder's colour tags, which NUT does not keep."""


def _source_stamp(src: Path) -> list[int]:
    st = src.stat()
    return [st.st_size, st.st_mtime_ns]


def plan_segments(src: Path, opts: VideoOptions) -> SegmentPlan:
    """Cut the stream at keyframes at least ``opts.segment_s`` apart (reading packets only, no decoding)."""
    with VideoReader(src, start_s=opts.start_s, duration_s=opts.duration_s, copy_streams=False) as reader:
        tb = reader.time_base
        start = round(reader.start_s / tb)
        end = None if reader.end_s is None else round(reader.end_s / tb)
        step = max(1, round(opts.segment_s / tb))
        if start > 0:
            reader.container.seek(start, stream=reader.stream, backward=True)
        bounds = [start]
        with contextlib.suppress(av.error.FFmpegError):  # a damaged tail: the last segment finds out
            for packet in reader.container.demux(reader.stream):
                if packet.pts is None or not packet.is_keyframe:
                    continue
                if end is not None and packet.pts >= end:
                    break
                if packet.pts >= bounds[-1] + step:
                    bounds.append(packet.pts)
        estimate = reader.estimated_frames()
        segments = [Segment(i, lo, bounds[i + 1] if i + 1 < len(bounds) else None) for i, lo in enumerate(bounds)]
        return SegmentPlan(segments, tb, estimate, reader.start_s, _source_stamp(src), opts.segment_s)


def load_plan(folder: Path, src: Path, opts: VideoOptions) -> SegmentPlan:
    """The plan kept in ``folder`` by an earlier run, or a new one (the old segments go if the source or
    the segment length changed)."""
    path = folder / PLAN
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        data = json.loads(path.read_text())
        plan = SegmentPlan(
            [Segment(*s) for s in data["segments"]],
            Fraction(data["time_base"]),
            data["estimated_frames"],
            data["start_s"],
            data["source"],
            data["seconds"],
        )
        if plan.source == _source_stamp(src) and plan.seconds == opts.segment_s:
            return plan
    plan = plan_segments(src, opts)
    if folder.exists():
        for stale in folder.iterdir():
            stale.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    record = {**asdict(plan), "time_base": str(plan.time_base)}
    record["segments"] = [[s.index, s.lo, s.hi] for s in plan.segments]
    write_durably(path, json.dumps(record))
    return plan


def segment_path(folder: Path, seg: Segment) -> Path:
    return folder / f"{seg.name}.nut"


def finished(folder: Path, seg: Segment) -> SegmentResult | None:
    """The result of a segment an earlier run (or another worker) finished, or None."""
    if not segment_path(folder, seg).exists():
        return None
    try:
        return SegmentResult(**json.loads((folder / f"{seg.name}.json").read_text()))
    except (OSError, ValueError, TypeError):
        return None


def assemble(
    src: Path,
    plan: SegmentPlan,
    results: list[SegmentResult],
    folder: Path,
    dst: Path,
    opts: VideoOptions,
    *,
    format_name: str,
) -> tuple[int, list[str]]:
    """Remux the finished segments, with the source's copied streams, chapters and metadata, into ``dst``
    (renamed into place when complete); returns the frames written and notes on what was dropped."""
    parts = [(segment_path(folder, s), r) for s, r in zip(plan.segments, results, strict=True)]
    with (
        VideoReader(src, start_s=opts.start_s, duration_s=opts.duration_s, copy_streams=opts.audio) as reader,
        av.open(str(parts[0][0])) as first,
        atomic_output(dst) as tmp,
    ):
        writer = VideoWriter(
            tmp,
            format_name=format_name,
            time_base=reader.time_base,
            rate=reader.rate,
            template=first.streams.video[0],
            tags=results[0].tags,
            rotation=results[0].rotation,
            metadata=dict(reader.container.metadata),
            stream_metadata=dict(reader.stream.metadata),
            copy_streams=reader.copy_streams,
            samples=reader.sample_packets(),
            attachments=reader.attachments,
            chapters=reader.chapters(),
            name=str(dst),
        )
        notes = reader.dropped_streams() + writer.notes
        try:
            for packet in heapq.merge(
                _video_packets(parts, reader.time_base), reader.copied_packets(), key=_packet_time
            ):
                writer.mux_encoded(packet)
            writer.finish()
        except BaseException as exc:
            writer.abort()
            if isinstance(exc, av.error.FFmpegError | OSError | ValueError):
                raise UpscaleError(f"assembling {dst} from its segments: {describe_error(exc)}") from exc
            raise
    return writer.frames_written, notes


def _packet_time(packet: av.Packet) -> Fraction:
    ts = packet.dts if packet.dts is not None else packet.pts
    return (ts or 0) * packet.time_base


def _rescale(value: int, src: Fraction, dst: Fraction) -> int:
    return round(value * src / dst)


def _video_packets(parts: list[tuple[Path, SegmentResult]], tb: Fraction) -> Iterator[av.Packet]:
    """The segments' packets in order, in time base ``tb``, with their frames' durations and increasing
    decoding timestamps.

    The first packets of a segment, whose decoding times NUT does not keep, get the encoder's: their
    presentation times less its reorder delay. Where those would not be after the last of the segment
    before (variable frame rates), they are moved up to the next free tick; presentation times never move.
    """
    last: int | None = None
    for path, result in parts:
        try:
            seg = av.open(str(path))
        except av.error.FFmpegError as exc:
            raise BadMediaError(f"{path}: a finished segment cannot be read ({describe_error(exc)})") from None
        with seg:  # open while its packets are in use: they refer to its stream
            stream = seg.streams.video[0]
            packets = [p for p in seg.demux(stream) if p.size]
            if not packets:
                continue
            shift = min(p.pts for p in packets) - round(result.first_pts * tb / stream.time_base)
            times = sorted(_rescale(p.pts - shift, stream.time_base, tb) for p in packets)
            lasting = dict(itertools.pairwise(times)) | {times[-1]: times[-1] + result.last_duration}
            held: list[av.Packet] = []
            for packet in packets:
                packet.pts = _rescale(packet.pts - shift, stream.time_base, tb)
                packet.dts = None if packet.dts is None else _rescale(packet.dts - shift, stream.time_base, tb)
                packet.time_base = tb
                packet.duration = lasting[packet.pts] - packet.pts
                held.append(packet)
                if packet.dts is None:
                    continue
                k = len(held) - 1  # as the encoder had them: each presentation time, less the reorder delay
                for i, early in enumerate(held[:-1]):
                    early.dts = packet.dts - (times[k] - times[i])
                for out in held:
                    if last is not None and out.dts <= last:
                        out.dts = last + 1
                    last = out.dts
                    yield out
                held = []
            for out in held:  # a stream that never reorders: decoding order is presentation order
                out.dts = out.pts if last is None or out.pts > last else last + 1
                last = out.dts
                yield out

"""Video files with PyAV: a decoder that yields frames with their timestamps and the packets of the streams
to be copied, and a writer that encodes frames and copies (or transcodes) those packets.

Timing is carried, not recomputed: every frame keeps its presentation timestamp in the input stream's time
base (so variable frame rates survive) and its duration is the gap to the next frame, which the writer puts
on the encoded packet (encoders leave it empty, and without it the last frame would be lost from the
duration).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.error

from ..errors import BadMediaError, UpscaleError
from ..sysinfo import cpu_flags
from .yuv import Colour

log = logging.getLogger("upscale.video")

VIDEO_SUFFIXES = frozenset(
    [
        ".mp4",
        ".m4v",
        ".mkv",
        ".mov",
        ".webm",
        ".avi",
        ".ts",
        ".mts",
        ".m2ts",
        ".flv",
        ".wmv",
        ".mpg",
        ".mpeg",
        ".ogv",
        ".3gp",
        ".y4m",
        ".nut",
    ]
)
"""Suffixes of the files a folder input is searched for."""
CONTAINERS = {"mp4": "mp4", "mkv": "matroska", "mov": "mov", "webm": "webm", "avi": "avi", "nut": "nut"}
"""``--container`` name (also the file suffix) -> FFmpeg muxer."""
_IMAGE_DEMUXERS = ("image2", "png_pipe", "jpeg_pipe", "webp_pipe", "bmp_pipe", "tiff_pipe", "gif")
_CHAPTER_FORMATS = frozenset(["matroska", "webm", "mp4", "mov", "ipod", "nut"])
"""Muxers that write chapters."""
_STRIP_METADATA = {"encoder", "major_brand", "minor_version", "compatible_brands"}
"""Container tags the muxer writes itself."""
_TRACK_TAGS = {"name": "title"}
"""Stream tags as demuxers read them -> as muxers write them (mp4/mov read a track's title back as "name")."""


def container_for(path: Path, container: str | None) -> str:
    """The FFmpeg muxer for ``--container`` or, without it, the output suffix."""
    name = (container or path.suffix.lstrip(".") or "mp4").lower()
    if name in CONTAINERS:
        return CONTAINERS[name]
    try:
        av.format.ContainerFormat(name, "w")
    except ValueError:
        known = ", ".join(CONTAINERS)
        raise UpscaleError(f"{path}: unknown container '{name}' (use one of {known})") from None
    return name


@dataclass
class DecodedFrame:
    """A decoded frame with its timing."""

    frame: av.VideoFrame
    pts: int
    """Output timestamp in the input video stream's time base (shifted by ``--start``)."""
    duration: int
    """Gap to the next frame (for the last frame: to the end of the stream), same time base."""
    index: int


class VideoReader:
    """An open input: the first video stream, the streams to copy, and a decoding generator."""

    def __init__(
        self,
        path: Path,
        *,
        start_s: float | None = None,
        duration_s: float | None = None,
        copy_streams: bool = True,
        window: tuple[int, int | None] | None = None,
    ) -> None:
        """``window`` ``(lo, hi)``: decode only the frames with ``lo <= pts < hi`` (source time base; ``hi``
        None for the end), timestamps still shifted by ``start_s``: one segment of a longer job."""
        self.path = path
        self.window = window
        try:
            self.container = av.open(str(path), metadata_errors="replace")
        except FileNotFoundError:
            raise BadMediaError(f"{path}: no such file") from None
        except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
            raise BadMediaError(f"{path}: not a readable video ({_reason(exc)})") from None
        try:
            self._check()
        except BaseException:
            self.container.close()
            raise
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        self.time_base: Fraction = self.stream.time_base or Fraction(1, 90000)
        self.start_s = start_s or 0.0
        self.end_s = None if duration_s is None else self.start_s + duration_s
        self.copy_streams: list[av.stream.Stream] = []
        self.attachments: list[av.stream.Stream] = []
        if copy_streams:
            self.copy_streams = [s for s in self.container.streams if s.type in ("audio", "subtitle")]
            self.attachments = [s for s in self.container.streams if s.type == "attachment"]
        self.corrupt = 0
        """Packets that failed to decode or frames flagged corrupt so far."""
        self.ends_early: str | None = None
        """Set once decoding is over when the container promised more than could be decoded."""
        self._read_error: str | None = None

    def _check(self) -> None:
        fmt = self.container.format.name
        if any(name in _IMAGE_DEMUXERS for name in fmt.split(",")):
            raise BadMediaError(f"{self.path}: is an image, not a video (use 'upscale images')")
        if not self.container.streams.video:
            kinds = sorted({s.type for s in self.container.streams}) or ["no streams"]
            raise BadMediaError(f"{self.path}: has no video stream (only {', '.join(kinds)})")
        stream = self.container.streams.video[0]
        if stream.codec_context is None or not stream.codec_context.width:
            raise BadMediaError(f"{self.path}: video stream {stream.index} cannot be decoded by this FFmpeg build")

    # ------------------------------------------------------------------ facts
    def dropped_streams(self) -> list[str]:
        """Why each stream that is neither upscaled nor copied is left out (``--no-audio`` aside)."""
        notes = []
        for s in self.container.streams:
            if s is self.stream or s in self.copy_streams or s in self.attachments:
                continue
            if getattr(s.discard, "name", "") == "all":  # FFmpeg's own use, e.g. the track mp4 chapters are read from
                continue
            name = s.codec_context.name if s.codec_context is not None else getattr(s, "name", None) or "unknown codec"
            if s.type == "video":
                notes.append(f"video stream {s.index} ({name}) dropped: only the first video stream is upscaled")
            elif s.type not in ("audio", "subtitle", "attachment"):
                notes.append(f"{s.type} stream {s.index} ({name}) dropped: {s.type} streams are not copied")
        return notes

    def chapters(self) -> list[dict]:
        """Chapters inside ``--start``/``--duration``, shifted to the output's time line."""
        out = []
        for chapter in self.container.chapters():
            tb = chapter["time_base"]
            start = max(float(chapter["start"] * tb), self.start_s) - self.start_s
            end = float(chapter["end"] * tb)
            if self.end_s is not None:
                end = min(end, self.end_s)
            end -= self.start_s
            if end > start:
                out.append({**chapter, "start": round(start / tb), "end": round(end / tb)})
        return out

    @property
    def rate(self) -> Fraction | None:
        rate = self.stream.average_rate or self.stream.guessed_rate or self.stream.base_rate
        return Fraction(rate) if rate else None

    @property
    def duration_s(self) -> float | None:
        if self.stream.duration:
            return float(self.stream.duration * self.time_base)
        if self.container.duration:
            return self.container.duration / av.time_base
        return None

    def estimated_frames(self) -> int | None:
        """Frames to be processed: from the stream header, else duration × rate; None when unknown."""
        total_s = self.duration_s
        whole = self.stream.frames or None
        if whole is None and total_s and self.rate:
            whole = round(total_s * self.rate)
        if self.start_s == 0 and self.end_s is None:
            return whole
        if not total_s or not whole:
            return None
        part = max(0.0, min(self.end_s if self.end_s is not None else total_s, total_s) - self.start_s)
        return round(whole * part / total_s)

    # ------------------------------------------------------------------ decoding
    def frames(self) -> Iterator[DecodedFrame]:
        """Decoded frames in presentation order; corrupt packets are reported with their time and skipped."""
        tb = self.time_base
        start = round(self.start_s / tb)
        end = None if self.end_s is None else round(self.end_s / tb)
        lo, hi = self.window or (start, None)
        if self.window is not None and lo > 0:
            # From the keyframe before: frames just after an open-GOP keyframe may need the GOP before it.
            try:
                self.container.seek(lo - 1, stream=self.stream, backward=True)
            except av.error.FFmpegError:
                self.container.seek(lo, stream=self.stream, backward=True)
        elif self.start_s > 0:
            self.container.seek(start, stream=self.stream, backward=True)
        next_pts: int | None = None
        held: av.VideoFrame | None = None
        held_pts = 0
        index = 0
        last_pts: int | None = None
        last_gap = self._nominal_gap()
        for packet in self._packets():
            for frame in self._decode(packet):
                pts = frame.pts
                if pts is None:
                    pts = (last_pts + last_gap) if last_pts is not None else start
                if last_pts is not None and pts <= last_pts:
                    log.warning("%s: frame at %.3fs repeats an earlier timestamp; moved", self.path, float(pts * tb))
                    pts = last_pts + 1
                if pts < lo:
                    continue
                if hi is not None and pts >= hi:
                    next_pts = pts  # the next segment's first frame: the last one here lasts until it
                    break
                if end is not None and pts >= end:
                    break
                if held is not None:
                    last_gap = pts - held_pts
                    yield DecodedFrame(held, held_pts - start, last_gap, index)
                    index += 1
                held, held_pts, last_pts = frame, pts, pts
            else:
                continue
            break  # past --duration
        if held is not None and next_pts is not None:
            yield DecodedFrame(held, held_pts - start, next_pts - held_pts, index)
        elif held is not None:
            own = held.duration if held.duration and held.duration > 0 else last_gap
            self.ends_early = self._shortfall(held_pts + own, own, end)
            gap = own if self.ends_early else self._last_gap(held, held_pts, end, last_gap)
            yield DecodedFrame(held, held_pts - start, gap, index)
        elif index == 0:
            when = f" after {self.start_s:g}s" if self.start_s else ""
            raise BadMediaError(f"{self.path}: no video frame could be decoded{when}")

    def _packets(self) -> Iterator[av.Packet | None]:
        """The video's packets; where the file cannot be read on, a warning and None (which flushes the decoder)."""
        packets = self.container.demux(self.stream)
        last_s = 0.0
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except av.error.FFmpegError as exc:
                self.corrupt += 1
                self._read_error = f"cannot read on: {_reason(exc)}"
                log.warning(
                    "%s: cannot read on after %.3fs (%s); the video ends there", self.path, last_s, _reason(exc)
                )
                yield None
                return
            if packet.pts is not None:
                last_s = float(packet.pts * packet.time_base)
            yield packet

    def _shortfall(self, end_pts: int, gap: int, cut: int | None) -> str | None:
        """``input ends early at 0.84 s of 2.00 s`` when the frames stop clearly before the end the container
        gives (a file cut off with its index intact), or the file could not be read to its end; else None.

        The video stream's own duration is trusted to a few frames; the container's, which other streams may
        outlast the video in, only to a second or 5 %.
        """
        tb = self.time_base
        end_s = float(end_pts * tb)
        gap_s = float(gap * tb)
        total_s = None
        slack = max(3 * gap_s, 0.25)
        if self.stream.duration:
            total_s = float(((self.stream.start_time or 0) + self.stream.duration) * tb)
        elif self.container.duration:
            start_s = (self.container.start_time or 0) / av.time_base
            total_s = start_s + self.container.duration / av.time_base
            slack = max(2 * gap_s, 1.0, 0.05 * self.container.duration / av.time_base)
        if cut is not None:
            total_s = min(total_s, float(cut * tb)) if total_s else None
        if total_s and total_s - end_s > slack:
            return f"input ends early at {end_s:.2f} s of {total_s:.2f} s"
        if self._read_error is not None and (cut is None or end_s < float(cut * tb)):
            return f"input ends early at {end_s:.2f} s ({self._read_error})"
        return None

    def _decode(self, packet: av.Packet | None) -> list[av.VideoFrame]:
        try:
            frames = self.stream.decode(packet) if packet is None else packet.decode()
        except av.error.FFmpegError as exc:
            self.corrupt += 1
            when = f" at {float(packet.pts * packet.time_base):.3f}s" if packet and packet.pts is not None else ""
            log.warning("%s: corrupt video data%s skipped (%s)", self.path, when, _reason(exc))
            return []
        for frame in frames:
            if frame.is_corrupt:
                self.corrupt += 1
                when = f" at {float(frame.time):.3f}s" if frame.pts is not None else ""
                log.warning("%s: frame%s is damaged; kept as decoded", self.path, when)
        return frames

    def _keep_copied(self, packet: av.Packet, offset: int) -> bool:
        """Whether a copied stream's packet falls in ``--start``/``--duration``; shifts it if so."""
        if packet.size == 0:  # the empty packet that marks a stream's end
            return False
        if self.start_s == 0 and self.end_s is None:
            return True
        if packet.pts is None:
            return False
        t = float(packet.pts * packet.time_base)
        if packet.stream.type == "subtitle" and packet.pts < offset < packet.pts + (packet.duration or 0):
            packet.duration -= offset - packet.pts  # a cue on screen at --start shows from the output's start
            packet.pts = packet.dts = offset
        elif t < self.start_s or (self.end_s is not None and t >= self.end_s):
            return False
        packet.pts -= offset
        if packet.dts is not None:
            packet.dts -= offset
        return True

    def copied_packets(self) -> Iterator[av.Packet]:
        """The copied streams' packets inside ``--start``/``--duration``, shifted to the output's time line
        (for assembling an output from encoded segments); a file that cannot be read on ends them."""
        if not self.copy_streams:
            return
        if self.start_s > 0:
            self.container.seek(round(self.start_s / self.time_base), stream=self.stream, backward=True)
        offsets = {s.index: round(self.start_s / s.time_base) for s in self.copy_streams}
        packets = self.container.demux(self.copy_streams)
        while True:
            try:
                packet = next(packets)
            except (StopIteration, av.error.FFmpegError):
                return
            if self._keep_copied(packet, offsets[packet.stream.index]):
                yield packet

    def sample_packets(self, limit: int = 2000) -> dict[int, av.Packet]:
        """The first packet of each copied stream, read through a second handle (for :func:`accepts`)."""
        wanted = {s.index for s in self.copy_streams}
        found: dict[int, av.Packet] = {}
        if not wanted:
            return found
        try:
            with av.open(str(self.path), metadata_errors="replace") as probe:
                streams = [probe.streams[i] for i in sorted(wanted)]
                for n, packet in enumerate(probe.demux(streams)):
                    if packet.size and packet.stream.index not in found:
                        found[packet.stream.index] = packet
                    if len(found) == len(wanted) or n >= limit:
                        break
        except (av.error.FFmpegError, OSError):
            pass
        return found

    def _nominal_gap(self) -> int:
        rate = self.rate
        return max(1, round(1 / (rate * self.time_base))) if rate else 1

    def _last_gap(self, frame: av.VideoFrame, pts: int, end: int | None, last_gap: int) -> int:
        """The last frame lasts until the stream ends (or the cut); failing that, its own duration or the usual gap."""
        gap = 0
        if self.stream.duration:
            gap = (self.stream.start_time or 0) + self.stream.duration - pts
        if gap <= 0 and frame.duration:
            gap = frame.duration
        if gap <= 0:
            gap = last_gap
        if end is not None:
            gap = min(gap, end - pts)
        return max(1, gap)

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _reason(exc: BaseException) -> str:
    """FFmpeg's message without the errno and file name PyAV adds."""
    msg = getattr(exc, "strerror", None) or str(exc)
    return str(msg).split(": '")[0]


def describe_error(exc: BaseException) -> str:
    """One line for an unexpected error: FFmpeg's and the system's own words, else the type and message
    (never the temporary file's name)."""
    if isinstance(exc, av.error.FFmpegError | OSError) and getattr(exc, "strerror", None):
        return _reason(exc)
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


# ---------------------------------------------------------------------- encoding
@dataclass(frozen=True)
class EncodeSettings:
    """What ``upscale video`` asks of the encoder; None leaves the encoder's own choice."""

    codec: str = "libx264"
    crf: float | None = None
    preset: str | None = None
    pix_fmt: str | None = None
    bitrate: int | None = None
    """Bits per second; replaces the constant-quality mode."""
    quiet: bool = False
    """Keep the encoder's own banner and statistics (x265, SVT-AV1 write them straight to stderr) to errors."""


_CRF_OPTION = {
    "libx264": "crf",
    "libx265": "crf",
    "libvpx-vp9": "crf",
    "libaom-av1": "crf",
    "libsvtav1": "crf",
    "h264_nvenc": "cq",
    "hevc_nvenc": "cq",
    "av1_nvenc": "cq",
}
DEFAULT_CRF = {"libx264": 18, "libx265": 20, "libvpx-vp9": 24, "h264_nvenc": 21, "hevc_nvenc": 23}
"""Constant-quality defaults a little above the encoders' own, since upscaled detail is the point."""
_PRESET_CODECS = {"libx264", "libx265", "h264_nvenc", "hevc_nvenc", "av1_nvenc", "libsvtav1"}
NVENC = ("h264_nvenc", "hevc_nvenc", "av1_nvenc")


def encoder_pix_fmt(codec: str, wanted: str | None, input_pix_fmt: str) -> str:
    """``wanted`` if the encoder takes it (else an error); without it, the input's format if the encoder
    takes that, else the encoder's first 4:2:0 format."""
    formats = [f.name for f in (av.codec.Codec(codec, "w").video_formats or [])]
    if wanted:
        if formats and wanted not in formats:
            takes = ", ".join(formats)
            raise UpscaleError(f"encoder '{codec}' does not take pixel format '{wanted}' (it takes {takes})")
        return wanted
    if not formats or input_pix_fmt in formats:
        return input_pix_fmt
    for name in ("yuv420p", "nv12", *formats):
        if name in formats and name != "cuda":
            return name
    return formats[0]


def check_encoder(codec: str, *, cuda: bool) -> None:
    """Fail early for an encoder this FFmpeg build lacks, or NVENC without CUDA."""
    try:
        found = av.codec.Codec(codec, "w")
    except (ValueError, av.error.FFmpegError):
        raise UpscaleError(f"encoder '{codec}' is not available in this FFmpeg build") from None
    if found.type != "video":
        raise UpscaleError(f"'{codec}' is not a video encoder")
    if codec in NVENC and not cuda:
        raise UpscaleError(f"encoder '{codec}' needs the engine on a CUDA device (use --device cuda or another codec)")


def accepts(format_name: str, stream: av.stream.Stream, sample: av.Packet | None = None) -> bool:
    """Whether the muxer stores ``stream``'s codec as it is: a scratch file in memory gets the header, the
    ``sample`` packet and the trailer (some muxers only object to a stream when they write the trailer)."""
    scratch = av.open(io.BytesIO(), "w", format=format_name)
    try:
        out = scratch.add_stream_from_template(stream)
        scratch.start_encoding()
        if sample is not None:
            copy = av.Packet(bytes(sample))
            copy.pts, copy.dts, copy.duration = sample.pts, sample.dts, sample.duration
            copy.time_base = sample.time_base
            copy.stream = out
            scratch.mux(copy)
        scratch.close()
        return True
    except (ValueError, av.error.FFmpegError):
        return False
    finally:
        with contextlib.suppress(ValueError, av.error.FFmpegError):
            scratch.close()


def _deterministic_encoder(codec: str, options: dict[str, str]) -> None:
    """Keep libx264 to its AVX2 routines on CPUs with AVX-512: with its AVX-512 ones the same frames
    encoded twice came out different (about half the runs of a 10-frame segment), which would make a
    resumed or clustered run differ from an uninterrupted one. With AVX2 they came out the same."""
    if codec == "libx264" and "avx512f" in cpu_flags():
        options["x264-params"] = "asm=AVX2"


def _quiet_encoder(codec: str, options: dict[str, str]) -> None:
    """Encoder options (and for SVT-AV1, which has none, its environment) that keep its log to errors."""
    if codec == "libx265":
        options["x265-params"] = "log-level=error"
    elif codec == "libsvtav1":
        os.environ["SVT_LOG"] = "1"  # read by the library when the encoder starts


def holds_codec(format_name: str, codec: str) -> bool:
    """Whether the muxer can store what encoder ``codec`` makes (as FFmpeg knows it)."""
    with av.open(io.BytesIO(), "w", format=format_name) as scratch:
        return av.codec.Codec(codec, "w").canonical_name in scratch.supported_codecs


class _AudioTranscoder:
    """Decodes a copied stream's packets and re-encodes them for a container that cannot hold the original."""

    def __init__(self, source: av.audio.stream.AudioStream, target: av.audio.stream.AudioStream) -> None:
        self.source = source  # its decoder is used only here, on the writer's thread
        self.target = target

    def packets(self, packet: av.Packet | None) -> list[av.Packet]:
        out = []
        for frame in self.source.codec_context.decode(packet):
            out += self.target.encode(frame)
        if packet is None:
            out += self.target.encode(None)
        return out


class VideoWriter:
    """Encodes frames into ``path`` (normally a temporary name; the caller renames it when complete)."""

    def __init__(
        self,
        path: Path,
        *,
        format_name: str,
        settings: EncodeSettings | None = None,
        width: int = 0,
        height: int = 0,
        pix_fmt: str = "",
        rate: Fraction | None = None,
        time_base: Fraction,
        colour: Colour | None = None,
        template: av.stream.Stream | None = None,
        tags: dict[str, int] | None = None,
        rotation: int = 0,
        aspect: Fraction | None = None,
        metadata: dict[str, str] | None = None,
        stream_metadata: dict[str, str] | None = None,
        copy_streams: list[av.stream.Stream] = (),
        samples: dict[int, av.Packet] | None = None,
        attachments: list[av.stream.Stream] = (),
        chapters: list[dict] = (),
        name: str = "",
    ) -> None:
        self.name = name or str(path)
        self.notes: list[str] = []
        self._durations: dict[int, int] = {}
        self._copied: dict[int, av.stream.Stream] = {}
        self._transcoders: dict[int, _AudioTranscoder] = {}
        self.frames_written = 0
        self.format_name = format_name
        self.container = av.open(str(path), "w", format=format_name)
        try:
            if template is not None:
                self._video_from(template, time_base, rate, tags or {})
            else:
                assert settings is not None and colour is not None
                self._video(settings, width, height, pix_fmt, rate, time_base, colour, aspect)
            self._video_tags(rotation, stream_metadata)
            self._streams(copy_streams, format_name, samples or {})
            self._attachments(attachments, format_name)
            self._chapters(chapters, format_name)
            for key, value in (metadata or {}).items():
                if key.lower() not in _STRIP_METADATA:
                    self.container.metadata[key] = value
        except BaseException:
            self.container.close()
            raise

    def _video(
        self,
        s: EncodeSettings,
        width: int,
        height: int,
        pix_fmt: str,
        rate: Fraction | None,
        time_base: Fraction,
        colour: Colour,
        aspect: Fraction | None,
    ) -> None:
        options: dict[str, str] = {}
        crf = s.crf if s.crf is not None else DEFAULT_CRF.get(s.codec)
        if s.bitrate is None and crf is not None and s.codec in _CRF_OPTION:
            options[_CRF_OPTION[s.codec]] = f"{crf:g}"
            if s.codec == "libvpx-vp9":
                options["b"] = "0"  # constant quality, not capped by the default bit rate
        _deterministic_encoder(s.codec, options)
        if s.quiet:
            _quiet_encoder(s.codec, options)
        if s.preset:
            if s.codec not in _PRESET_CODECS:
                self.notes.append(f"--preset ignored: encoder '{s.codec}' has no presets")
            else:
                options["preset"] = s.preset
        try:
            stream = self.container.add_stream(s.codec, rate=rate or Fraction(25), options=options)
        except ValueError as exc:
            raise UpscaleError(f"{self.name}: {_reason(exc)} (choose another --codec or --container)") from None
        ctx = stream.codec_context
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.time_base = time_base
        ctx.time_base = time_base
        if s.bitrate:
            ctx.bit_rate = s.bitrate
        if aspect:
            ctx.sample_aspect_ratio = aspect  # both sides scale alike, so the pixel shape is unchanged
        if not av.VideoFormat(pix_fmt).is_rgb:
            ctx.colorspace = colour.matrix
            ctx.color_range = colour.sws_range.value
            ctx.color_primaries = colour.primaries
            ctx.color_trc = colour.trc
        if ctx.codec.canonical_name == "hevc" and self.format_name in ("mp4", "mov"):
            ctx.codec_tag = "hvc1"  # what Apple players need; FFmpeg's default hev1 does not play there
        try:
            ctx.open()  # fail now for bad options or a missing device, not after the first batch
        except (av.error.FFmpegError, ValueError) as exc:
            raise UpscaleError(f"{self.name}: encoder '{s.codec}' could not be opened ({_reason(exc)})") from None
        self.video = stream

    def _video_from(
        self, template: av.stream.Stream, time_base: Fraction, rate: Fraction | None, tags: dict[str, int]
    ) -> None:
        """A video stream for packets encoded elsewhere (segments of this output): their parameters, with
        the colour ``tags`` (:meth:`tags`) their container may not have kept."""
        stream = self.container.add_stream_from_template(template, opaque=True)  # no encoder: AV1 has none
        stream.time_base = time_base
        if rate:
            stream.codec_context.framerate = rate  # the muxer's nominal rate (Matroska's default duration)
        for name, value in tags.items():
            setattr(stream.codec_context, name, value)
        hevc_in_mp4 = template.codec_context.name == "hevc" and self.format_name in ("mp4", "mov")
        stream.codec_tag = "hvc1" if hevc_in_mp4 else "\0\0\0\0"  # the segments' own container's tag means nothing here
        self.video = stream

    def _video_tags(self, rotation: int, stream_metadata: dict[str, str] | None) -> None:
        if rotation:
            self.video.set_display_rotation(rotation)
        for key, value in (stream_metadata or {}).items():
            if key.lower() not in _STRIP_METADATA and key.lower() not in ("handler_name", "vendor_id", "encoder"):
                self.video.metadata[key] = value

    def _streams(self, sources: list[av.stream.Stream], format_name: str, samples: dict[int, av.Packet]) -> None:
        for src in sources:
            if accepts(format_name, src, samples.get(src.index)):
                out = self.container.add_stream_from_template(src)
                self._copied[src.index] = out
            elif src.type == "audio":
                out = self._audio_target(src, format_name)
                if out is None:
                    continue
                self._copied[src.index] = out
                self._transcoders[src.index] = _AudioTranscoder(src, out)
            else:
                self.notes.append(
                    f"{src.type} stream {src.index} ({src.codec_context.name}) dropped: {format_name} cannot hold it"
                )
                continue
            out.disposition = src.disposition
            for key, value in src.metadata.items():
                if key.lower() not in ("handler_name", "vendor_id", "encoder"):
                    out.metadata[_TRACK_TAGS.get(key, key)] = value

    def _attachments(self, sources: list[av.stream.Stream], format_name: str) -> None:
        """Fonts and other files of Matroska inputs; only Matroska holds them."""
        for src in sources:
            if format_name == "matroska":
                self.container.add_attachment(src.name, src.mimetype, bytes(src.data))
            else:
                self.notes.append(f"attachment stream {src.index} ({src.name}) dropped: {format_name} cannot hold it")

    def _chapters(self, chapters: list[dict], format_name: str) -> None:
        if not chapters:
            return
        if format_name in _CHAPTER_FORMATS:
            self.container.set_chapters(chapters)
        else:
            self.notes.append(f"{len(chapters)} chapters dropped: {format_name} cannot hold them")

    def _audio_target(self, src: av.stream.Stream, format_name: str) -> av.stream.Stream | None:
        codec = "libopus" if format_name == "webm" else "aac"
        ctx = src.codec_context
        rate = ctx.sample_rate if codec == "aac" else 48000
        n = ctx.layout.nb_channels
        layout = "mono" if n == 1 else "stereo" if n == 2 or "channels" in ctx.layout.name else ctx.layout.name
        try:
            trial = av.codec.CodecContext.create(codec, "w")  # a stream once added cannot be taken back
            trial.sample_rate, trial.layout = rate, layout
            trial.format = av.codec.Codec(codec, "w").audio_formats[0]
            trial.open()
            out = self.container.add_stream(codec, rate=rate, layout=layout)
        except (ValueError, av.error.FFmpegError) as exc:
            self.notes.append(
                f"audio stream {src.index} ({ctx.name}) dropped: {format_name} cannot hold it "
                f"and {codec} is unavailable ({_reason(exc)})"
            )
            return None
        self.notes.append(f"audio stream {src.index} ({ctx.name}) transcoded to {codec}: {format_name} cannot hold it")
        return out

    # ------------------------------------------------------------------ writing
    def write(self, frame: av.VideoFrame, pts: int, duration: int) -> None:
        """Encode ``frame`` at ``pts`` lasting ``duration``."""
        frame.pts = pts
        frame.time_base = self.video.codec_context.time_base
        frame.pict_type = av.video.frame.PictureType.NONE  # let the encoder choose; the decoder's types do not apply
        self._durations[pts] = duration
        self._mux_video(self.video.encode(frame))
        self.frames_written += 1

    def _mux_video(self, packets: list[av.Packet]) -> None:
        for packet in packets:
            packet.duration = self._durations.pop(packet.pts, 0)
            self.container.mux(packet)

    _TAGS = ("colorspace", "color_range", "color_primaries", "color_trc")

    def tags(self) -> dict[str, int]:
        """The video's colour tags, as :meth:`_video_from` takes them."""
        ctx = self.video.codec_context
        return {name: int(getattr(ctx, name)) for name in self._TAGS}

    def mux_encoded(self, packet: av.Packet) -> None:
        """Mux a packet of this output's video, encoded elsewhere (a segment), or of a copied stream."""
        if packet.stream.type == "video":
            packet.stream = self.video
            self.container.mux(packet)
            self.frames_written += 1
        else:
            self._mux_copied(packet)

    def _mux_copied(self, packet: av.Packet) -> None:
        index = packet.stream.index
        out = self._copied.get(index)
        if out is None:
            return
        transcoder = self._transcoders.get(index)
        if transcoder is not None:
            for p in transcoder.packets(packet):
                self.container.mux(p)
            return
        packet.stream = out
        self.container.mux(packet)

    def finish(self) -> None:
        """Flush the encoders and write the trailer."""
        if self.video.codec_context.is_encoder and self.video.codec_context.is_open:
            self._mux_video(self.video.encode(None))
        for transcoder in self._transcoders.values():
            for p in transcoder.packets(None):
                self.container.mux(p)
        self.container.close()

    def abort(self) -> None:
        """Close without flushing (the file is to be deleted)."""
        with contextlib.suppress(av.error.FFmpegError, ValueError, OSError):
            self.container.close()

"""Small real videos made with PyAV for the video and pipe tests, and a reader that reports what a file holds."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace

from tests.conftest import photo

SWS = {1: Colorspace.ITU709, 5: Colorspace.ITU601, 6: Colorspace.ITU601}
"""AVColorSpace tag -> the swscale matrix used to make test frames."""


def pan_frames(n: int, size: tuple[int, int], name: str = "astronaut") -> list[np.ndarray]:
    """``n`` RGB frames (w×h = ``size``) panning across a real photo."""
    w, h = size
    img = photo(name, (w * 2, h * 2))
    steps = max(n - 1, 1)
    crops = []
    for i in range(n):
        x0, y0 = (w * i) // steps, (h * i) // (2 * steps)
        crops.append(np.ascontiguousarray(img[y0 : y0 + h, x0 : x0 + w]))
    return crops


def make_video(
    path: Path,
    frames: list[np.ndarray] | None = None,
    *,
    n: int = 12,
    size: tuple[int, int] = (64, 48),
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    pts_ms: list[int] | None = None,
    rate: int = 24,
    audio: str | None = "aac",
    matrix: int | None = None,
    full_range: bool | None = None,
    rotation: int = 0,
    metadata: dict[str, str] | None = None,
    options: dict[str, str] | None = None,
) -> Path:
    """Encode RGB ``frames`` (default: a pan across a photo) at ``pts_ms`` (default: constant ``rate``),
    with a 440 Hz tone as ``audio`` lasting as long as the video, tagged with ``matrix``/``full_range``."""
    frames = frames if frames is not None else pan_frames(n, size)
    h, w = frames[0].shape[:2]
    if pts_ms is None:
        pts_ms = [round(i * 1000 / rate) for i in range(len(frames))]
    end_ms = pts_ms[-1] + (pts_ms[-1] - pts_ms[-2] if len(pts_ms) > 1 else 40)
    tb = Fraction(1, 1000)
    with av.open(str(path), "w") as out:
        if options is None:
            options = {"crf": "10"} if codec in ("libx264", "libx265") else {}
        vs = out.add_stream(codec, rate=rate, options=options)
        vs.width, vs.height, vs.pix_fmt = w, h, pix_fmt
        vs.codec_context.time_base = tb
        if matrix is not None:
            vs.codec_context.colorspace = matrix
        if full_range is not None:
            vs.codec_context.color_range = ColorRange.JPEG if full_range else ColorRange.MPEG
        if rotation:
            vs.set_display_rotation(rotation)
        for key, value in (metadata or {}).items():
            out.metadata[key] = value
        aus = None
        if audio is not None:
            aus = out.add_stream(audio, rate=48000, layout="mono")
        pending: dict[int, int] = {}

        def mux(packets: list[av.Packet]) -> None:
            for p in packets:
                p.duration = pending.pop(p.pts, 0)
                out.mux(p)

        for i, (rgb, pts) in enumerate(zip(frames, pts_ms, strict=True)):
            frame = av.VideoFrame.from_ndarray(rgb, "rgb24")
            if not av.VideoFormat(pix_fmt).is_rgb:
                frame = frame.reformat(
                    format=pix_fmt,
                    dst_colorspace=SWS.get(matrix or 6),
                    dst_color_range=ColorRange.JPEG if full_range else ColorRange.MPEG,
                )
            frame.pts, frame.time_base = pts, tb
            pending[pts] = (pts_ms[i + 1] if i + 1 < len(pts_ms) else end_ms) - pts
            mux(vs.encode(frame))
        mux(vs.encode(None))
        if aus is not None:
            t = np.arange(round(end_ms * 48)) / 48000
            tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            fmt = aus.codec_context.format.name
            step = aus.codec_context.frame_size or 1024
            for k in range(0, len(tone), step):
                chunk = tone[None, k : k + step]
                if fmt.startswith("s16"):
                    chunk = (chunk * 32767).astype(np.int16)
                frame = av.AudioFrame.from_ndarray(chunk, format=fmt, layout="mono")
                frame.sample_rate, frame.pts, frame.time_base = 48000, k, Fraction(1, 48000)
                out.mux(aus.encode(frame))
            out.mux(aus.encode(None))
    return path


@dataclass
class Probe:
    """What a video file holds."""

    width: int
    height: int
    pix_fmt: str
    times: list[float]
    """Presentation time of every decoded video frame, in seconds."""
    duration: float | None
    """Container duration in seconds."""
    rate: Fraction | None
    colorspace: int
    color_range: int
    rotation: int
    metadata: dict[str, str]
    streams: list[tuple[str, str]]
    """(type, codec) of every stream."""
    packets: dict[int, int] = field(default_factory=dict)
    """Non-empty packets per stream index."""
    frames: list[av.VideoFrame] = field(default_factory=list)


def probe(path: Path, *, keep_frames: bool = False) -> Probe:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        frames = list(c.decode(v))
        c.seek(0)
        packets: dict[int, int] = {}
        for p in c.demux():
            if p.size:
                packets[p.stream.index] = packets.get(p.stream.index, 0) + 1
        first = frames[0]
        return Probe(
            width=first.width,
            height=first.height,
            pix_fmt=first.format.name,
            times=[float(f.time) for f in frames],
            duration=c.duration / 1e6 if c.duration else None,
            rate=v.average_rate,
            colorspace=first.colorspace,
            color_range=first.color_range,
            rotation=first.rotation,
            metadata=dict(c.metadata),
            streams=[(s.type, s.codec_context.name if s.codec_context else "") for s in c.streams],
            packets=packets,
            frames=frames if keep_frames else [],
        )


def yuv_planes(frame: av.VideoFrame) -> list[np.ndarray]:
    """Copies of a planar frame's planes (uint8, or uint16 for deeper formats)."""
    dtype = np.uint8 if frame.format.components[0].bits <= 8 else np.dtype("<u2")
    out = []
    for plane in frame.planes:
        per_line = plane.line_size // np.dtype(dtype).itemsize
        arr = np.frombuffer(plane, dtype=dtype, count=plane.height * per_line).reshape(plane.height, per_line)
        out.append(arr[:, : plane.width].copy())
    return out


KR_KB = {1: (0.2126, 0.0722), 5: (0.299, 0.114), 6: (0.299, 0.114)}


def yuv_to_rgb_reference(
    y: np.ndarray, u: np.ndarray, v: np.ndarray, *, matrix: int, full_range: bool, bits: int = 8
) -> np.ndarray:
    """RGB in [0, 255] from 8-bit (or deeper) planes by the textbook equations (chroma already full size)."""
    kr, kb = KR_KB[matrix]
    scale = float(1 << (bits - 8))
    yf, uf, vf = (p.astype(np.float64) / scale for p in (y, u, v))
    if full_range:
        yn, pb, pr = yf / 255.0, (uf - 128.0) / 255.0, (vf - 128.0) / 255.0
    else:
        yn, pb, pr = (yf - 16.0) / 219.0, (uf - 128.0) / 224.0, (vf - 128.0) / 224.0
    r = yn + 2 * (1 - kr) * pr
    b = yn + 2 * (1 - kb) * pb
    g = (yn - kr * r - kb * b) / (1 - kr - kb)
    return np.clip(np.stack([r, g, b], axis=-1) * 255.0, 0, 255)

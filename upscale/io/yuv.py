"""Video frames into and out of the engine, with the colour handling that video needs.

Two paths, chosen by :func:`make_frame_path`:

* :class:`RgbPath` converts each decoded frame to RGB with the matrix and range the video is tagged
  with (BT.601 for SD, BT.709 for HD when untagged), runs the engine, and converts back with the same
  matrix and range.
* :class:`LumaPath`, for models that work on Y alone (``spec.colour == 'y'``), hands the decoded Y plane
  straight to the network and resizes the chroma planes; nothing goes through RGB. The engine's Y is
  MATLAB's studio-swing Y in [0, 1] (Y8/255 for limited-range 8-bit video); full-range planes are
  mapped to studio swing on the way in and back on the way out.

Each path has three steps so a pipeline can run them on different threads: ``prepare`` (decoded frame
-> engine input), ``run`` (the engine, batched across frames) and ``finish`` (engine output -> a frame
ready for the encoder).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import av
import cv2
import numpy as np
from av.video.reformatter import ColorRange, Colorspace, Interpolation

from ..engine import Upscaler

log = logging.getLogger("upscale.video")

# FFmpeg's AVColorSpace values, as VideoFrame.colorspace reports them.
SPC_RGB, SPC_BT709, SPC_UNSPECIFIED, SPC_FCC, SPC_BT470BG, SPC_SMPTE170M, SPC_SMPTE240M = 0, 1, 2, 4, 5, 6, 7
SPC_BT2020_NCL, SPC_BT2020_CL = 9, 10
_SWS_MATRIX = {
    SPC_BT709: Colorspace.ITU709,
    SPC_FCC: Colorspace.FCC,
    SPC_BT470BG: Colorspace.ITU601,
    SPC_SMPTE170M: Colorspace.ITU601,
    SPC_SMPTE240M: Colorspace.SMPTE240M,
    SPC_BT2020_NCL: Colorspace.BT2020,
    SPC_BT2020_CL: Colorspace.BT2020,
}
MATRIX_NAMES = {
    SPC_BT709: "bt709",
    SPC_FCC: "fcc",
    SPC_BT470BG: "bt470bg",
    SPC_SMPTE170M: "smpte170m",
    SPC_SMPTE240M: "smpte240m",
    SPC_BT2020_NCL: "bt2020nc",
    SPC_BT2020_CL: "bt2020c",
}
MATRIX_BY_NAME = {"bt601": SPC_SMPTE170M, **{name: value for value, name in MATRIX_NAMES.items()}}
HD_HEIGHT = 720
"""Untagged video this tall or taller is taken as BT.709, shorter as BT.601 (what players assume)."""
_SCALE_FLAGS = Interpolation.BICUBIC | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT


@dataclass(frozen=True)
class Colour:
    """How a video's YCbCr relates to RGB: the tags it carries, or the defaults players use."""

    matrix: int
    """AVColorSpace: 1 BT.709, 5/6 BT.601 (625/525 lines), 9 BT.2020 ..."""
    full_range: bool
    """True for full (JPEG) range, False for limited (MPEG, studio) range."""
    primaries: int = 2
    trc: int = 2
    guessed: bool = False
    """True when the stream had no matrix tag and the height decided."""

    @classmethod
    def of(cls, frame: av.VideoFrame) -> Colour:
        """The colour description of a decoded frame, with the usual defaults for missing tags."""
        matrix, guessed = frame.colorspace, False
        if matrix not in _SWS_MATRIX:
            matrix, guessed = default_matrix(frame.height), True
        return cls(
            matrix=matrix,
            full_range=is_full_range(frame.format.name, frame.color_range),
            primaries=frame.color_primaries,
            trc=frame.color_trc,
            guessed=guessed,
        )

    @property
    def sws_matrix(self) -> Colorspace:
        return _SWS_MATRIX[self.matrix]

    @property
    def sws_range(self) -> ColorRange:
        return ColorRange.JPEG if self.full_range else ColorRange.MPEG

    def describe(self) -> str:
        name = MATRIX_NAMES.get(self.matrix, str(self.matrix))
        return f"{name}{' (untagged)' if self.guessed else ''}, {'full' if self.full_range else 'limited'} range"

    def tag(self, frame: av.VideoFrame) -> av.VideoFrame:
        """Mark ``frame`` with this description. A guessed matrix is written out so that players, which
        guess from the (new, larger) height, decode with the matrix the frame was made with."""
        if frame.format.is_rgb:
            return frame
        frame.colorspace = self.matrix
        frame.color_range = self.sws_range.value
        frame.color_primaries = self.primaries
        frame.color_trc = self.trc
        return frame


def default_matrix(height: int) -> int:
    return SPC_BT709 if height >= HD_HEIGHT else SPC_SMPTE170M


def is_full_range(pix_fmt: str, color_range: int) -> bool:
    if color_range == ColorRange.JPEG:
        return True
    if color_range == ColorRange.MPEG:
        return False
    return pix_fmt.startswith("yuvj")


# ---------------------------------------------------------------------- formats and planes
@dataclass(frozen=True)
class PlanarYuv:
    """A planar YCbCr pixel format (three planes, no alpha) that the luma path can read and write."""

    name: str
    bits: int
    shift_x: int
    shift_y: int

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint8) if self.bits <= 8 else np.dtype("<u2")

    @property
    def max_value(self) -> int:
        return (1 << self.bits) - 1

    def chroma_size(self, width: int, height: int) -> tuple[int, int]:
        return -(-width >> self.shift_x), -(-height >> self.shift_y)


def planar_yuv(pix_fmt: str) -> PlanarYuv | None:
    """The :class:`PlanarYuv` for ``pix_fmt``, or None for RGB, packed, semi-planar, alpha or big-endian formats."""
    try:
        fmt = av.VideoFormat(pix_fmt)
    except (ValueError, av.FFmpegError):
        return None
    comps = fmt.components
    if fmt.is_rgb or fmt.is_big_endian or fmt.has_palette or len(comps) != 3 or not fmt.is_planar:
        return None
    if [c.plane for c in comps] != [0, 1, 2] or not comps[0].is_luma or comps[0].bits < 8 or comps[0].bits > 16:
        return None
    w, h = 1 << 10, 1 << 10
    return PlanarYuv(
        pix_fmt,
        comps[0].bits,
        (w // fmt.chroma_width(w)).bit_length() - 1,
        (h // fmt.chroma_height(h)).bit_length() - 1,
    )


def subsampling(pix_fmt: str) -> tuple[int, int]:
    """(horizontal, vertical) size multiples a frame of ``pix_fmt`` needs: (2, 2) for 4:2:0."""
    fmt = av.VideoFormat(pix_fmt)
    w, h = 1 << 10, 1 << 10
    return max(1, w // fmt.chroma_width(w)), max(1, h // fmt.chroma_height(h))


def plane_view(frame: av.VideoFrame, index: int, dtype: np.dtype) -> np.ndarray:
    """A writable rows×columns view of one plane, without the line padding."""
    plane = frame.planes[index]
    per_line = plane.line_size // dtype.itemsize
    arr = np.frombuffer(plane, dtype=dtype, count=plane.height * per_line)
    return arr.reshape(plane.height, per_line)[:, : plane.width]


def frame_from_planes(planes: list[np.ndarray], pix_fmt: str, width: int, height: int) -> av.VideoFrame:
    """A new frame of ``pix_fmt`` holding copies of ``planes`` (each rows×columns, in plane order)."""
    frame = av.VideoFrame(width, height, pix_fmt)
    fmt = av.VideoFormat(pix_fmt)
    dtype = np.dtype(np.uint8) if fmt.components[0].bits <= 8 else np.dtype("<u2")
    for i, plane in enumerate(planes):
        plane_view(frame, i, dtype)[...] = plane
    return frame


def planes_of(frame: av.VideoFrame) -> list[np.ndarray]:
    """Copies of every plane of a planar frame, rows×columns each."""
    fmt = frame.format
    dtype = np.dtype(np.uint8) if fmt.components[0].bits <= 8 else np.dtype("<u2")
    return [plane_view(frame, i, dtype).copy() for i in range(len(frame.planes))]


def output_size(upscaler: Upscaler, width: int, height: int, pix_fmt: str) -> tuple[int, int, str | None]:
    """Output width and height, rounded to what ``pix_fmt``'s chroma subsampling needs, and a note when rounded."""
    w, h = max(1, round(width * upscaler.scale)), max(1, round(height * upscaler.scale))
    mx, my = subsampling(pix_fmt)
    w2, h2 = max(mx, round(w / mx) * mx), max(my, round(h / my) * my)
    note = None
    if (w2, h2) != (w, h):
        note = f"{w}x{h} rounded to {w2}x{h2} ({pix_fmt} needs sides that are multiples of {mx} and {my})"
    return w2, h2, note


def _resize(img: np.ndarray, width: int, height: int) -> np.ndarray:
    if img.shape[1] == width and img.shape[0] == height:
        return img
    shrink = width < img.shape[1] or height < img.shape[0]
    return cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def _siting(factor: int, left: bool) -> float:
    """Position of chroma sample 0 in luma samples: co-sited with luma 0 (left) or centred between its luma."""
    return 0.0 if left or factor == 1 else (factor - 1) / 2


def resize_chroma(
    plane: np.ndarray,
    width: int,
    height: int,
    *,
    scale: tuple[float, float],
    in_factor: tuple[int, int],
    out_factor: tuple[int, int],
    left: bool,
) -> np.ndarray:
    """Resize a chroma plane so that every output sample takes its value from where it sits in the picture.

    ``scale`` is the luma scale (x, y), ``in_factor``/``out_factor`` the chroma subsampling (2 for 4:2:0),
    and ``left`` says that chroma is co-sited with the left luma sample (MPEG-2, H.264 and HEVC 4:2:0, and
    all 4:2:2) rather than centred (JPEG). A plain resize assumes centred samples and would shift the colour
    of left-sited video against its (pixel-centre-aligned) upscaled luma.
    """
    matrix = np.zeros((2, 3), np.float64)
    for axis, (s, f_in, f_out) in enumerate(zip(scale, in_factor, out_factor, strict=True)):
        cosited = left and axis == 0  # vertical siting is centred in every common 4:2:0 layout
        o_in, o_out = _siting(f_in, cosited), _siting(f_out, cosited)
        # output chroma j sits at output luma f_out*j + o_out, which is input luma (x + 0.5) / s - 0.5
        matrix[axis, axis] = f_out / (s * f_in)
        matrix[axis, 2] = ((o_out + 0.5) / s - 0.5 - o_in) / f_in
    if matrix[0, 0] > 1 or matrix[1, 1] > 1:  # shrinking: average, siting matters little
        return _resize(plane, width, height)
    return cv2.warpAffine(
        plane, matrix, (width, height), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE
    )


# ---------------------------------------------------------------------- the two paths
class FramePath(Protocol):
    out_width: int
    out_height: int
    out_pix_fmt: str

    def prepare(self, frame: av.VideoFrame) -> tuple[np.ndarray, Any]: ...

    def run(self, inputs: Iterable[np.ndarray]) -> Iterator[np.ndarray]: ...

    def finish(self, out: np.ndarray, side: Any) -> av.VideoFrame: ...


class RgbPath:
    """YCbCr -> RGB (tagged matrix and range) -> engine -> YCbCr with the same matrix and range."""

    def __init__(
        self, upscaler: Upscaler, colour: Colour, out_pix_fmt: str, out_size: tuple[int, int], deep: bool
    ) -> None:
        self.upscaler = upscaler
        self.colour = colour
        self.out_pix_fmt = out_pix_fmt
        self.out_width, self.out_height = out_size
        self.work_fmt = "rgb48le" if deep else "rgb24"
        """16-bit RGB keeps the extra precision of 10-bit and deeper video."""

    def prepare(self, frame: av.VideoFrame) -> tuple[np.ndarray, Any]:
        rgb = frame.reformat(
            format=self.work_fmt,
            src_colorspace=self.colour.sws_matrix,
            src_color_range=self.colour.sws_range,
            dst_color_range=ColorRange.JPEG,
            interpolation=_SCALE_FLAGS,
        )
        return rgb.to_ndarray(), None

    def run(self, inputs: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        return self.upscaler.upscale_many(inputs)

    def finish(self, out: np.ndarray, side: Any) -> av.VideoFrame:
        out = _resize(out, self.out_width, self.out_height)
        rgb = av.VideoFrame.from_ndarray(np.ascontiguousarray(out), format=self.work_fmt)
        if av.VideoFormat(self.out_pix_fmt).is_rgb:
            return rgb.reformat(format=self.out_pix_fmt)
        frame = rgb.reformat(
            format=self.out_pix_fmt,
            src_color_range=ColorRange.JPEG,
            dst_colorspace=self.colour.sws_matrix,
            dst_color_range=self.colour.sws_range,
            interpolation=_SCALE_FLAGS,
        )
        return self.colour.tag(frame)


class LumaPath:
    """Y plane -> engine (studio-swing Y in [0, 1]); Cb and Cr resized; no RGB round trip."""

    def __init__(
        self,
        upscaler: Upscaler,
        colour: Colour,
        in_fmt: PlanarYuv,
        out_fmt: PlanarYuv,
        in_size: tuple[int, int],
        out_size: tuple[int, int],
        chroma_left: bool,
    ) -> None:
        self.upscaler = upscaler
        self.colour = colour
        self.in_fmt = in_fmt
        self.out_fmt = out_fmt
        self.out_pix_fmt = out_fmt.name
        self.out_width, self.out_height = out_size
        self._chroma = {
            "scale": (out_size[0] / in_size[0], out_size[1] / in_size[1]),
            "in_factor": (1 << in_fmt.shift_x, 1 << in_fmt.shift_y),
            "out_factor": (1 << out_fmt.shift_x, 1 << out_fmt.shift_y),
            "left": chroma_left,
        }

    def prepare(self, frame: av.VideoFrame) -> tuple[np.ndarray, Any]:
        fmt = self.in_fmt
        if frame.format.name != fmt.name:  # e.g. nv12 from a hardware decoder: same matrix, new layout
            frame = frame.reformat(
                format=fmt.name,
                src_colorspace=self.colour.sws_matrix,
                dst_colorspace=self.colour.sws_matrix,
                src_color_range=self.colour.sws_range,
                dst_color_range=self.colour.sws_range,
            )
        y = plane_view(frame, 0, fmt.dtype).astype(np.float32)
        if self.colour.full_range:
            y = (16.0 + y * np.float32(219.0 / fmt.max_value)) * np.float32(1 / 255)
        else:
            y *= np.float32(1.0 / (255 << (fmt.bits - 8)))
        chroma = [plane_view(frame, i, fmt.dtype).copy() for i in (1, 2)]
        return y[..., None], chroma

    def run(self, inputs: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        return self.upscaler.upscale_planes_many(inputs)

    def finish(self, out: np.ndarray, side: Any) -> av.VideoFrame:
        fmt = self.out_fmt
        y = _resize(out[..., 0], self.out_width, self.out_height)
        if self.colour.full_range:
            y = (y * np.float32(255.0) - np.float32(16.0)) * np.float32(fmt.max_value / 219.0)
        else:
            y = y * np.float32(255 << (fmt.bits - 8))
        planes = [np.clip(np.rint(y), 0, fmt.max_value).astype(fmt.dtype)]
        cw, ch = fmt.chroma_size(self.out_width, self.out_height)
        for plane in side:
            if self.in_fmt.bits == fmt.bits:  # cv2 rounds and saturates integer types itself
                planes.append(resize_chroma(plane, cw, ch, **self._chroma))
            else:
                scaled = plane.astype(np.float32) * np.float32(2.0 ** (fmt.bits - self.in_fmt.bits))
                resized = resize_chroma(scaled, cw, ch, **self._chroma)
                planes.append(np.clip(np.rint(resized), 0, fmt.max_value).astype(fmt.dtype))
        frame = frame_from_planes(planes, fmt.name, self.out_width, self.out_height)
        return self.colour.tag(frame)


def make_frame_path(
    upscaler: Upscaler,
    first: av.VideoFrame,
    colour: Colour,
    out_pix_fmt: str,
    out_size: tuple[int, int],
    chroma_left: bool | None = None,
) -> FramePath:
    """The luma path for Y models when both formats are planar YCbCr, else the RGB path.

    ``chroma_left``: whether chroma is co-sited with the left luma sample; None assumes what decoders do for
    untagged video: left-sited, except for the full-range JPEG formats (``yuvj*``), which centre it.
    """
    out_fmt = planar_yuv(out_pix_fmt)
    if upscaler.spec.colour == "y" and out_fmt is not None:
        in_fmt = planar_yuv(first.format.name) or out_fmt
        if chroma_left is None:
            chroma_left = not first.format.name.startswith("yuvj")
        return LumaPath(upscaler, colour, in_fmt, out_fmt, (first.width, first.height), out_size, chroma_left)
    deep = max(first.format.components[0].bits, av.VideoFormat(out_pix_fmt).components[0].bits) > 8
    return RgbPath(upscaler, colour, out_pix_fmt, out_size, deep)

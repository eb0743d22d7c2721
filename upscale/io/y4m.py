"""YUV4MPEG2 (``.y4m``) streams: the uncompressed format ``ffmpeg -f yuv4mpegpipe`` reads and writes.

A stream is one text header line (``YUV4MPEG2 W640 H480 F30000:1001 Ip A1:1 C420jpeg ...``) followed by
frames, each a ``FRAME`` line and the planes Y, Cb, Cr (and alpha) one after another, row by row.
Samples deeper than 8 bits take two bytes, little-endian. The format carries no colour matrix; ffmpeg
adds the range as ``XCOLORRANGE=LIMITED|FULL``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import BinaryIO

import numpy as np

from ..errors import BadMediaError

MAGIC = b"YUV4MPEG2"
FRAME = b"FRAME"
MAX_HEADER_BYTES = 4096
"""A header line longer than this is not YUV4MPEG2 (it guards against reading a whole binary file)."""

_SUBSAMPLING = {"420": (1, 1), "422": (1, 0), "444": (0, 0), "411": (2, 0), "mono": None}
_CHROMA_RE = re.compile(r"^(420|422|444|411|mono)(jpeg|paldv|mpeg2|alpha)?(?:p?(\d+))?$")


@dataclass(frozen=True)
class Y4MHeader:
    """The stream parameters from the header line."""

    width: int
    height: int
    rate: Fraction = Fraction(25)
    """Frames per second (``F``)."""
    interlace: str = "p"
    """``p`` progressive, ``t``/``b`` top/bottom field first, ``m`` mixed (``I``)."""
    aspect: Fraction | None = None
    """Pixel aspect ratio (``A``); None when unknown (``A0:0``)."""
    chroma: str = "420jpeg"
    """Sampling and bit depth (``C``): ``420jpeg``, ``420mpeg2``, ``422``, ``444``, ``mono``, ``420p10`` ..."""
    extensions: tuple[str, ...] = ()
    """``X`` parameters, kept verbatim (without the ``X``), e.g. ``COLORRANGE=FULL``."""

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"bad frame size {self.width}x{self.height}")
        if _CHROMA_RE.match(self.chroma) is None:
            raise ValueError(f"unsupported colour space 'C{self.chroma}'")
        if not 8 <= self.bit_depth <= 16:
            raise ValueError(f"unsupported bit depth {self.bit_depth} in 'C{self.chroma}'")

    # ----------------------------------------------------------------- derived
    @property
    def _parts(self) -> tuple[str, str | None, int]:
        m = _CHROMA_RE.match(self.chroma)
        assert m is not None
        return m.group(1), m.group(2), int(m.group(3) or 8)

    @property
    def bit_depth(self) -> int:
        return self._parts[2]

    @property
    def has_alpha(self) -> bool:
        return self._parts[1] == "alpha"

    @property
    def subsampling(self) -> tuple[int, int] | None:
        """log2 of the chroma subsampling (horizontal, vertical); None for ``mono``."""
        return _SUBSAMPLING[self._parts[0]]

    @property
    def pix_fmt(self) -> str:
        """The FFmpeg pixel format with the same memory layout."""
        base, _, depth = self._parts
        suffix = "" if depth == 8 else f"{depth}le"
        if base == "mono":
            return "gray" if depth == 8 else f"gray{suffix}"
        return ("yuva" if self.has_alpha else "yuv") + f"{base}p" + suffix

    @property
    def chroma_left(self) -> bool:
        """Whether chroma is co-sited with the left luma sample: ``420mpeg2``, ``420paldv``, 4:2:2, 4:1:1 and
        the deep 4:2:0 layouts (which do not say, and come from video that is left-sited by default)."""
        base, siting, depth = self._parts
        if base == "420" and depth == 8:
            return siting in ("mpeg2", "paldv")
        return base in ("420", "422", "411")

    @property
    def full_range(self) -> bool | None:
        """From ``XCOLORRANGE``; None when the stream does not say."""
        for ext in self.extensions:
            if ext.upper() == "COLORRANGE=FULL":
                return True
            if ext.upper() == "COLORRANGE=LIMITED":
                return False
        return None

    def plane_shapes(self) -> list[tuple[int, int]]:
        """(rows, columns) of each plane, in stream order."""
        shapes = [(self.height, self.width)]
        sub = self.subsampling
        if sub is not None:
            cw = -(-self.width >> sub[0])
            ch = -(-self.height >> sub[1])
            shapes += [(ch, cw), (ch, cw)]
        if self.has_alpha:
            shapes.append((self.height, self.width))
        return shapes

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint8) if self.bit_depth == 8 else np.dtype("<u2")

    @property
    def frame_bytes(self) -> int:
        return sum(h * w for h, w in self.plane_shapes()) * self.dtype.itemsize

    # ----------------------------------------------------------------- text form
    def encode(self) -> bytes:
        fields = [MAGIC.decode(), f"W{self.width}", f"H{self.height}"]
        fields.append(f"F{self.rate.numerator}:{self.rate.denominator}")
        fields.append(f"I{self.interlace}")
        aspect = self.aspect
        fields.append(f"A{aspect.numerator}:{aspect.denominator}" if aspect else "A0:0")
        fields.append(f"C{self.chroma}")
        fields += [f"X{ext}" for ext in self.extensions]
        return (" ".join(fields) + "\n").encode("ascii")

    @classmethod
    def parse(cls, line: bytes) -> Y4MHeader:
        """Parse a header line (with or without its newline); raises ValueError when malformed."""
        words = line.rstrip(b"\n").split(b" ")
        if not words or words[0] != MAGIC:
            raise ValueError("not a YUV4MPEG2 stream (no 'YUV4MPEG2' signature)")
        values: dict[str, str] = {}
        extensions: list[str] = []
        for raw in words[1:]:
            if not raw:
                continue
            word = raw.decode("ascii", errors="replace")
            key, value = word[0], word[1:]
            if key == "X":
                extensions.append(value)
            else:
                values[key] = value
        try:
            width, height = int(values["W"]), int(values["H"])
        except (KeyError, ValueError):
            raise ValueError("header lacks a valid frame size (W and H)") from None
        rate = _ratio(values.get("F", "25:1"), "F") or Fraction(25)
        aspect = _ratio(values.get("A", "0:0"), "A")
        chroma = values.get("C", "420jpeg")
        return cls(
            width=width,
            height=height,
            rate=rate,
            interlace=values.get("I", "p") or "p",
            aspect=aspect,
            chroma=chroma,
            extensions=tuple(extensions),
        )

    def scaled(self, width: int, height: int) -> Y4MHeader:
        """The header of the upscaled stream: new size, everything else kept."""
        return replace(self, width=width, height=height)


def _ratio(text: str, key: str) -> Fraction | None:
    try:
        num, den = (int(v) for v in text.split(":"))
    except ValueError:
        raise ValueError(f"bad '{key}{text}' in header") from None
    if num == 0 or den == 0:
        return None
    return Fraction(num, den)


def _read_line(stream: BinaryIO, what: str) -> bytes | None:
    """One ``\\n``-terminated line; None at a clean end of stream."""
    buf = bytearray()
    while True:
        ch = stream.read(1)
        if not ch:
            if buf:
                raise BadMediaError(f"stream ends inside the {what} line")
            return None
        if ch == b"\n":
            return bytes(buf)
        buf += ch
        if len(buf) > MAX_HEADER_BYTES:
            raise BadMediaError(f"{what} line longer than {MAX_HEADER_BYTES} bytes; not a YUV4MPEG2 stream")


def read_exact(stream: BinaryIO, n: int) -> bytes:
    chunks = []
    left = n
    while left:
        chunk = stream.read(left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


class Y4MReader:
    """Reads frames from a binary stream; each frame is a list of 2-D plane arrays (Y, Cb, Cr[, A])."""

    def __init__(self, stream: BinaryIO, name: str = "stdin") -> None:
        self.stream = stream
        self.name = name
        signature = read_exact(stream, len(MAGIC))
        if not signature:
            raise BadMediaError(f"{name}: empty input; expected a YUV4MPEG2 stream")
        if signature != MAGIC:
            raise BadMediaError(f"{name}: not a YUV4MPEG2 stream (no 'YUV4MPEG2' signature)")
        try:
            rest = _read_line(stream, "header")
        except BadMediaError as exc:
            raise BadMediaError(f"{name}: {exc}") from None
        try:
            self.header = Y4MHeader.parse(signature + (rest or b""))
        except ValueError as exc:
            raise BadMediaError(f"{name}: {exc}") from None
        self.frames_read = 0

    def read_frame(self) -> list[np.ndarray] | None:
        """The next frame's planes, or None at the end of the stream."""
        try:
            line = _read_line(self.stream, "FRAME")
        except BadMediaError as exc:
            raise BadMediaError(f"{self.name}: frame {self.frames_read}: {exc}") from None
        if line is None:
            return None
        if not line.startswith(FRAME):
            raise BadMediaError(f"{self.name}: frame {self.frames_read}: expected 'FRAME', got {line[:20]!r}")
        h = self.header
        data = read_exact(self.stream, h.frame_bytes)
        if len(data) != h.frame_bytes:
            raise BadMediaError(
                f"{self.name}: frame {self.frames_read} is truncated ({len(data)} of {h.frame_bytes} bytes)"
            )
        planes = []
        offset = 0
        for rows, cols in h.plane_shapes():
            n = rows * cols * h.dtype.itemsize
            planes.append(np.frombuffer(data, dtype=h.dtype, count=rows * cols, offset=offset).reshape(rows, cols))
            offset += n
        self.frames_read += 1
        return planes

    def __iter__(self) -> Iterator[list[np.ndarray]]:
        while (planes := self.read_frame()) is not None:
            yield planes


class Y4MWriter:
    """Writes a header once, then one ``FRAME`` per call to :meth:`write`."""

    def __init__(self, stream: BinaryIO, header: Y4MHeader) -> None:
        self.stream = stream
        self.header = header
        self._shapes = header.plane_shapes()
        self._started = False

    def write(self, planes: list[np.ndarray]) -> None:
        h = self.header
        if len(planes) != len(self._shapes):
            raise ValueError(f"expected {len(self._shapes)} planes for C{h.chroma}, got {len(planes)}")
        for plane, shape in zip(planes, self._shapes, strict=True):
            if plane.shape != shape:
                raise ValueError(f"plane of shape {plane.shape}; C{h.chroma} at {h.width}x{h.height} needs {shape}")
        if not self._started:
            self.stream.write(h.encode())
            self._started = True
        self.stream.write(FRAME + b"\n")
        for plane in planes:
            self.stream.write(np.ascontiguousarray(plane, dtype=h.dtype).tobytes())

    def flush(self) -> None:
        if not self._started:  # an empty stream still gets its header
            self.stream.write(self.header.encode())
            self._started = True
        self.stream.flush()

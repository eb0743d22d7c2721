"""YUV4MPEG2 reading and writing: headers as ffmpeg writes them, every sampling, deep samples, damaged streams."""

from __future__ import annotations

import io
from fractions import Fraction

import numpy as np
import pytest

from upscale.errors import BadMediaError
from upscale.io.y4m import Y4MHeader, Y4MReader, Y4MWriter

FFMPEG_HEADER = b"YUV4MPEG2 W640 H360 F30000:1001 Ip A1:1 C420jpeg XYSCSS=420JPEG XCOLORRANGE=LIMITED\n"


def test_parses_the_header_ffmpeg_writes_and_writes_it_back() -> None:
    h = Y4MHeader.parse(FFMPEG_HEADER)
    assert (h.width, h.height, h.rate, h.interlace, h.aspect) == (640, 360, Fraction(30000, 1001), "p", Fraction(1))
    assert (h.chroma, h.pix_fmt, h.bit_depth, h.full_range) == ("420jpeg", "yuv420p", 8, False)
    assert h.encode() == FFMPEG_HEADER
    assert Y4MHeader.parse(h.scaled(1280, 720).encode()).width == 1280


def test_defaults_when_fields_are_missing() -> None:
    h = Y4MHeader.parse(b"YUV4MPEG2 W8 H6\n")
    assert (h.chroma, h.rate, h.aspect, h.full_range) == ("420jpeg", Fraction(25), None, None)
    assert Y4MHeader.parse(b"YUV4MPEG2 W8 H6 XCOLORRANGE=FULL").full_range is True


@pytest.mark.parametrize(
    ("chroma", "pix_fmt", "shapes", "itemsize"),
    [
        ("420mpeg2", "yuv420p", [(5, 7), (3, 4), (3, 4)], 1),  # odd sides round the chroma up
        ("422", "yuv422p", [(5, 7), (5, 4), (5, 4)], 1),
        ("444", "yuv444p", [(5, 7)] * 3, 1),
        ("mono", "gray", [(5, 7)], 1),
        ("420p10", "yuv420p10le", [(5, 7), (3, 4), (3, 4)], 2),
        ("444p12", "yuv444p12le", [(5, 7)] * 3, 2),
        ("mono16", "gray16le", [(5, 7)], 2),
    ],
)
def test_plane_layout(chroma: str, pix_fmt: str, shapes: list[tuple[int, int]], itemsize: int) -> None:
    h = Y4MHeader(7, 5, chroma=chroma)
    assert h.pix_fmt == pix_fmt
    assert h.plane_shapes() == shapes
    assert h.frame_bytes == sum(r * c for r, c in shapes) * itemsize


@pytest.mark.parametrize("chroma", ["420jpeg", "422", "444", "mono", "420p10", "444p16"])
def test_round_trip(chroma: str) -> None:
    header = Y4MHeader(6, 4, Fraction(24), chroma=chroma, extensions=("COLORRANGE=FULL",))
    rng = np.random.default_rng(0)
    frames = [
        [rng.integers(0, 1 << header.bit_depth, shape).astype(header.dtype) for shape in header.plane_shapes()]
        for _ in range(3)
    ]
    buf = io.BytesIO()
    writer = Y4MWriter(buf, header)
    for planes in frames:
        writer.write(planes)
    writer.flush()
    buf.seek(0)
    reader = Y4MReader(buf)
    assert reader.header == header
    back = list(reader)
    assert len(back) == 3
    for got, want in zip(back, frames, strict=True):
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)


def test_deep_samples_are_little_endian() -> None:
    buf = io.BytesIO()
    header = Y4MHeader(1, 1, chroma="mono16")
    Y4MWriter(buf, header).write([np.array([[0x0102]], np.uint16)])
    assert buf.getvalue().endswith(b"FRAME\n\x02\x01")


def test_frame_lines_may_carry_parameters() -> None:
    data = b"YUV4MPEG2 W2 H2 C444\nFRAME Ixyz\n" + bytes(range(12))
    planes = Y4MReader(io.BytesIO(data)).read_frame()
    assert planes is not None
    np.testing.assert_array_equal(planes[2], [[8, 9], [10, 11]])


def test_empty_stream_is_only_a_header() -> None:
    buf = io.BytesIO()
    Y4MWriter(buf, Y4MHeader(4, 4)).flush()
    buf.seek(0)
    assert list(Y4MReader(buf)) == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty input"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "not a YUV4MPEG2 stream"),
        (b"YUV4MPEG2 W0 H4\n", "bad frame size"),
        (b"YUV4MPEG2 H4\n", "frame size"),
        (b"YUV4MPEG2 W4 H4 C420xyz\n", "unsupported colour space"),
        (b"YUV4MPEG2 W4 H4 Fabc\n", "bad 'Fabc'"),
        (b"YUV4MPEG2" + b" X" * 5000, "longer than"),
    ],
    ids=["empty", "png", "zero-width", "no-width", "chroma", "rate", "endless-line"],
)
def test_bad_headers(data: bytes, message: str) -> None:
    with pytest.raises(BadMediaError, match=message) as info:
        Y4MReader(io.BytesIO(data), name="clip.y4m")
    assert str(info.value).startswith("clip.y4m: ")


def test_truncated_and_garbled_frames() -> None:
    header = Y4MHeader(4, 4, chroma="444").encode()
    whole = b"FRAME\n" + bytes(48)
    reader = Y4MReader(io.BytesIO(header + whole + b"FRAME\n" + bytes(20)))
    assert reader.read_frame() is not None
    with pytest.raises(BadMediaError, match=r"frame 1 is truncated \(20 of 48 bytes\)"):
        reader.read_frame()
    reader = Y4MReader(io.BytesIO(header + whole + b"GARBAGE\n"))
    reader.read_frame()
    with pytest.raises(BadMediaError, match="frame 1: expected 'FRAME'"):
        reader.read_frame()


def test_writer_refuses_planes_of_the_wrong_shape() -> None:
    writer = Y4MWriter(io.BytesIO(), Y4MHeader(4, 4))
    with pytest.raises(ValueError, match="needs"):
        writer.write([np.zeros((4, 4), np.uint8)] * 3)


@pytest.mark.parametrize(
    ("chroma", "left"),
    [("420jpeg", False), ("420", False), ("420mpeg2", True), ("420paldv", True), ("422", True), ("420p10", True)],
)
def test_chroma_siting_follows_the_colour_space_tag(chroma: str, left: bool) -> None:
    assert Y4MHeader(8, 8, chroma=chroma).chroma_left is left

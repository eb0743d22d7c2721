"""What an image file carries besides its pixels: EXIF orientation, the ICC colour profile and EXIF.

Metadata is read with Pillow (``Image.open`` parses headers only) and written into the bytes that
OpenCV encodes, so the encoders and their pixels stay as they are: PNG gets ``iCCP``/``eXIf`` chunks
after ``IHDR``, JPEG ``APP1`` Exif and ``APP2`` ICC_PROFILE segments after ``SOI``/JFIF, and WebP the
extended (``VP8X``) layout with ``ICCP`` and ``EXIF`` chunks.
"""

from __future__ import annotations

import logging
import struct
import warnings
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import ExifTags, Image

__all__ = ["Metadata", "embed_metadata", "icc_for", "orient", "output_exif", "read_metadata", "tiff_stored_order"]

log = logging.getLogger("upscale")

_ORIENTATION = ExifTags.Base.Orientation
_PIXEL_X = ExifTags.Base.ExifImageWidth  # PixelXDimension
_PIXEL_Y = ExifTags.Base.ExifImageHeight  # PixelYDimension
_JPEG_SEGMENT_MAX = 65535 - 2  # payload bytes of one marker segment
_ICC_HEADER = b"ICC_PROFILE\x00"
_EXIF_HEADER = b"Exif\x00\x00"


@dataclass(frozen=True)
class Metadata:
    icc: bytes | None = None
    """The ICC colour profile, copied byte for byte."""
    exif: bytes | None = None
    """EXIF as the input stored it (JPEG, PNG, WebP); None for formats whose tags are not EXIF blocks."""
    orientation: int = 1
    """EXIF/TIFF orientation 1-8 of the input; pixels are turned upright on reading."""


def read_metadata(img: Image.Image) -> Metadata:
    """The metadata of an opened (not necessarily decoded) Pillow image."""
    icc = img.info.get("icc_profile") or None
    try:
        with warnings.catch_warnings():  # Pillow warns about broken tags; they are handled here
            warnings.simplefilter("ignore")
            orientation = int(img.getexif().get(_ORIENTATION, 1))
    except Exception:  # noqa: BLE001 - a broken tag block leaves the pixels as stored
        orientation = 1
    exif = img.info.get("exif") or None  # after getexif(): a PNG's eXIf after the pixels is found only then
    return Metadata(icc, exif, orientation if 1 <= orientation <= 8 else 1)


def orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Turn pixels stored with EXIF ``orientation`` upright (H×W or H×W×C)."""
    if orientation == 2:
        arr = arr[:, ::-1]
    elif orientation == 3:
        arr = arr[::-1, ::-1]
    elif orientation == 4:
        arr = arr[::-1]
    elif orientation == 5:
        arr = arr.swapaxes(0, 1)
    elif orientation == 6:
        arr = np.rot90(arr, -1)
    elif orientation == 7:
        arr = arr.swapaxes(0, 1)[::-1, ::-1]
    elif orientation == 8:
        arr = np.rot90(arr, 1)
    return np.ascontiguousarray(arr)


def tiff_stored_order(data: bytes) -> bytes:
    """A TIFF's bytes with the first page's Orientation set to 1, so that every decoder gives the pixels
    as stored (OpenCV and Pillow turn them upright or not depending on their version), for
    :func:`orient` to turn once. Other data (BigTIFF, no such tag) is returned as it is."""
    order = {b"II": "<", b"MM": ">"}.get(data[:2])
    try:
        if order is None or struct.unpack_from(order + "H", data, 2)[0] != 42:
            return data
        ifd = struct.unpack_from(order + "I", data, 4)[0]
        for n in range(struct.unpack_from(order + "H", data, ifd)[0]):
            at = ifd + 2 + 12 * n
            tag, kind = struct.unpack_from(order + "HH", data, at)
            if tag == _ORIENTATION and kind == 3:  # SHORT: the value is in the entry itself
                out = bytearray(data)
                struct.pack_into(order + "H", out, at + 8, 1)
                return bytes(out)
    except struct.error:  # a broken header: the decoders report it
        pass
    return data


def output_exif(exif: bytes | None, width: int, height: int) -> bytes | None:
    """EXIF for an upright output of ``width``×``height``: as TIFF bytes, without the orientation tag and
    the thumbnail (IFD1), with PixelXDimension/PixelYDimension set when the Exif IFD is present."""
    if not exif:
        return None
    tags = Image.Exif()
    try:
        with warnings.catch_warnings():  # Pillow warns about broken tags; what it could read is kept
            warnings.simplefilter("ignore")
            tags.load(exif)
            tags.pop(_ORIENTATION, None)
            ifd = tags.get_ifd(ExifTags.IFD.Exif)
            if ifd:
                ifd[_PIXEL_X], ifd[_PIXEL_Y] = width, height
            data = tags.tobytes()  # IFD0 with the Exif and GPS IFDs; never IFD1
    except Exception as exc:  # noqa: BLE001 - unreadable EXIF is dropped, the image is still written
        log.warning("EXIF not copied: %s", exc)
        return None
    return data.removeprefix(_EXIF_HEADER)


def icc_for(icc: bytes | None, *, colour: bool) -> bytes | None:
    """``icc`` unless reading or writing changed the colour space it describes, else None with a warning:
    CMYK inputs become RGB, and grey ones RGB in WebP (or RGBA with alpha), and a CMYK or grey profile on
    RGB pixels makes colour-managed viewers misread them. RGB profiles are kept on grey as the input had them."""
    if not icc:
        return None
    space = icc[16:20]
    if space == b"RGB " or (space == b"GRAY" and not colour):
        return icc
    found = space.decode("latin-1").strip() or "unknown"
    log.warning("ICC profile not copied: it is for %s pixels, the output's are %s", found, "RGB" if colour else "grey")
    return None


def embed_metadata(data: bytes, suffix: str, *, icc: bytes | None, exif: bytes | None, size: tuple[int, int]) -> bytes:
    """Insert ``icc`` and ``exif`` (TIFF bytes) into encoded PNG, JPEG or WebP ``data``; other formats
    are returned as they are. ``size`` is the image's (width, height)."""
    if not icc and not exif:
        return data
    suffix = suffix.lower()
    if suffix in (".png", ".apng"):
        return _embed_png(data, icc, exif)
    if suffix in (".jpg", ".jpeg"):
        return _embed_jpeg(data, icc, exif)
    if suffix == ".webp":
        return _embed_webp(data, icc, exif, size)
    return data


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _embed_png(data: bytes, icc: bytes | None, exif: bytes | None) -> bytes:
    ihdr_end = 8 + 12 + struct.unpack(">I", data[8:12])[0]
    extra = b""
    if icc:
        extra += _png_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc))
    if exif:
        extra += _png_chunk(b"eXIf", exif)
    return data[:ihdr_end] + extra + data[ihdr_end:]


def _jpeg_segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def _embed_jpeg(data: bytes, icc: bytes | None, exif: bytes | None) -> bytes:
    pos = 2  # after SOI; a JFIF APP0 stays first
    while data[pos] == 0xFF and data[pos + 1] == 0xE0:
        pos += 2 + struct.unpack(">H", data[pos + 2 : pos + 4])[0]
    extra = b""
    if exif:
        if len(_EXIF_HEADER) + len(exif) <= _JPEG_SEGMENT_MAX:
            extra += _jpeg_segment(0xE1, _EXIF_HEADER + exif)
        else:
            log.warning("EXIF not copied: %d bytes do not fit in a JPEG segment", len(exif))
    if icc:
        step = _JPEG_SEGMENT_MAX - len(_ICC_HEADER) - 2
        parts = [icc[i : i + step] for i in range(0, len(icc), step)]
        if len(parts) > 255:
            log.warning("ICC profile not copied: %d bytes are more than JPEG can hold", len(icc))
            parts = []
        for n, part in enumerate(parts, 1):
            extra += _jpeg_segment(0xE2, _ICC_HEADER + bytes([n, len(parts)]) + part)
    return data[:pos] + extra + data[pos:]


def _riff_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, pos = [], 12
    while pos + 8 <= len(data):
        kind, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        chunks.append((kind, data[pos + 8 : pos + 8 + size]))
        pos += 8 + size + (size & 1)
    return chunks


def _riff_chunk(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("<I", len(payload)) + payload + b"\x00" * (len(payload) & 1)


def _embed_webp(data: bytes, icc: bytes | None, exif: bytes | None, size: tuple[int, int]) -> bytes:
    chunks = _riff_chunks(data)
    if chunks and chunks[0][0] == b"VP8X":
        header, chunks = bytearray(chunks[0][1]), chunks[1:]
    else:
        w, h = size
        alpha = any(kind == b"VP8L" and payload[4] >> 4 & 1 for kind, payload in chunks)
        header = bytearray(struct.pack("<B3x", 0x10 if alpha else 0) + (w - 1).to_bytes(3, "little"))
        header += (h - 1).to_bytes(3, "little")
    out = b""
    if icc:
        header[0] |= 0x20
        out += _riff_chunk(b"ICCP", icc)
    out += b"".join(_riff_chunk(kind, payload) for kind, payload in chunks)
    if exif:
        header[0] |= 0x08
        out += _riff_chunk(b"EXIF", exif)
    body = b"WEBP" + _riff_chunk(b"VP8X", bytes(header)) + out
    return b"RIFF" + struct.pack("<I", len(body)) + body

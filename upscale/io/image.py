"""Reading and writing still and animated images.

OpenCV decodes and encodes the common formats (PNG, JPEG, WebP, TIFF, BMP, PNM); Pillow reads what
OpenCV cannot (TGA, ICO, PCX, SGI, QOI, DDS, PSD, some TIFFs, ...), animations (GIF, APNG, animated
WebP, every frame composited) and the metadata that is carried over (see :mod:`.metadata`).

Arrays are H×W (grey), H×W×3 (RGB) or H×W×4 (RGBA), uint8 or uint16 (float32 in [0, 1] for float
files), in RGB order, upright. Other sample types are mapped, not refused: signed integers are shifted
so the type's minimum is 0 (int8 to uint8, int16 to uint16), 32-bit integers keep their top 16 bits
(uint16; signed ones shifted first), and floats are clipped to [0, 1].
"""

from __future__ import annotations

import functools
import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from ..engine import Upscaler
from PIL import Image

from ..errors import BadMediaError
from ..memory import available_memory
from .decoder_noise import decoder_messages
from .files import atomic_output
from .limits import DEFAULT_MAX_PIXELS, TooLargeError, check_pixels
from .metadata import Metadata, embed_metadata, icc_for, orient, output_exif, read_metadata, tiff_stored_order

# OpenCV's own warnings would duplicate our one-line errors.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
# Pillow only parses headers until asked for pixels: every size a header declares is checked against
# --max-pixels (``limits.check_pixels``) before the pixels are decoded, so Pillow's own guard is off.
Image.MAX_IMAGE_PIXELS = None

WRITABLE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".ppm", ".pgm", ".pnm", ".gif", ".apng"}
)
"""Suffixes kept by ``--format same``; inputs of other formats are written as PNG."""
IMAGE_SUFFIXES = WRITABLE_SUFFIXES | {
    ".tga", ".ico", ".cur", ".icns", ".pcx", ".sgi", ".bw", ".qoi", ".dds", ".blp", ".psd", ".xbm",
    ".xpm", ".fits", ".fit", ".pbm", ".jp2", ".j2k",
}  # fmt: skip
FORMATS = {"png": ".png", "jpg": ".jpg", "jpeg": ".jpg", "webp": ".webp", "tiff": ".tiff", "bmp": ".bmp"}
ANIMATED_SUFFIXES = frozenset({".gif", ".png", ".apng", ".webp"})
"""Output formats that hold an animation."""

_ANIMATED_FORMATS = {"GIF", "PNG", "WEBP"}
_PILLOW_SUFFIX = {"PNG": ".png", "JPEG": ".jpg", "MPO": ".jpg", "WEBP": ".webp", "GIF": ".gif"}
_PILLOW_SUFFIX |= {"TIFF": ".tif", "BMP": ".bmp", "PPM": ".ppm"}
_SAVE_FORMAT = {".gif": "GIF", ".png": "PNG", ".apng": "PNG", ".webp": "WEBP"}
_METADATA_SUFFIXES = frozenset({".png", ".apng", ".jpg", ".jpeg", ".webp"})
"""Output formats the ICC profile and EXIF are written into."""


@dataclass(frozen=True)
class Picture:
    """An image as read: its upright frames, and what is carried over to the output."""

    frames: list[np.ndarray]
    """One array for a still image; every frame, composited, for an animation."""
    durations_ms: list[int] = field(default_factory=list)
    """How long each frame of an animation shows."""
    loop: int | None = None
    """An animation's loop count as the file gives it (0: forever); None when it gives none."""
    metadata: Metadata = field(default_factory=Metadata)

    @property
    def animated(self) -> bool:
        return len(self.frames) > 1

    def map(self, fn: Callable[[np.ndarray], np.ndarray]) -> Picture:
        """The same picture with ``fn`` applied to every frame (``Upscaler.upscale``)."""
        return replace(self, frames=[fn(f) for f in self.frames])


Fits = Callable[[int, int, int, int, int], None]
"""``fits(height, width, channels, itemsize, frames)`` raises where an image of that declared size must
not be decoded (:meth:`upscale.engine.Upscaler.check_memory` with the file's name)."""


def decode_picture(
    data: bytes, name: str = "<stdin>", *, max_pixels: int | None = DEFAULT_MAX_PIXELS, fits: Fits | None = None
) -> Picture:
    """Decode encoded image bytes with every frame and the metadata; raises :class:`BadMediaError` naming ``name``.

    Before any pixels are decoded, a frame declaring more than ``max_pixels`` (None: no limit) is refused
    with :class:`~.limits.TooLargeError`, and ``fits`` is asked about the size the header declares. What
    the decoders print is logged as one line for the file (see :mod:`.decoder_noise`)."""
    if not data:
        raise BadMediaError(f"{name}: empty file")
    with decoder_messages(name):
        return _decode(data, name, max_pixels, fits)


def _decode(data: bytes, name: str, max_pixels: int | None, fits: Fits | None) -> Picture:
    pil = _open_pillow(data)
    if pil is not None:
        check_pixels(name, *pil.size, max_pixels)
        if fits is not None:
            fits(pil.size[1], pil.size[0], *_declared_samples(pil), getattr(pil, "n_frames", 1))
    meta = read_metadata(pil) if pil is not None else Metadata()
    if pil is not None and pil.format == "TIFF" and meta.orientation != 1:
        data = tiff_stored_order(data)
        pil = _open_pillow(data)
    if pil is not None and pil.format in _ANIMATED_FORMATS and getattr(pil, "n_frames", 1) > 1:
        frames, durations, loop = _read_animation(pil, name, max_pixels)
        return Picture([orient(f, meta.orientation) for f in frames], durations, loop, meta)
    arr = None
    if pil is None or pil.format != "GIF":  # OpenCV drops GIF transparency
        # Formats Pillow cannot parse are left to OpenCV's own limit (2^30 pixels) and checked after.
        arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is not None:
        arr = _from_opencv(arr)
        check_pixels(name, arr.shape[1], arr.shape[0], max_pixels)
    elif pil is not None:
        arr = _from_pillow(pil, name)
    else:
        raise BadMediaError(f"{name}: not a readable image (unknown format, truncated or corrupt)")
    return Picture([orient(_map_samples(arr), meta.orientation)], metadata=meta)


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise BadMediaError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise BadMediaError(f"{path}: is a folder") from None
    except OSError as exc:
        raise BadMediaError(f"{path}: cannot read ({exc.strerror})") from None


def load_picture(path: str | Path, *, max_pixels: int | None = DEFAULT_MAX_PIXELS, fits: Fits | None = None) -> Picture:
    path = Path(path)
    return decode_picture(_read_bytes(path), str(path), max_pixels=max_pixels, fits=fits)


def read_image(path: str | Path) -> np.ndarray:
    """Upright pixels of an image file (an animation's first frame)."""
    return load_picture(path).frames[0]


def output_suffix(src: Path) -> str:
    """The output suffix for ``--format same``: the input's when it can be written, else the format found
    in its content (files without an extension), else ``.png``."""
    suffix = src.suffix.lower()
    if suffix in WRITABLE_SUFFIXES:
        return suffix
    try:
        with Image.open(src) as img:
            return _suffix_of(img)
    except Exception:  # noqa: BLE001 - unknown content: reading it reports the error
        return ".png"


def content_suffix(data: bytes) -> str:
    """The suffix of the format encoded ``data`` are in, where it can be written; else ``.png``
    (standard input has no name to go by)."""
    return _suffix_of(_open_pillow(data))


def _suffix_of(img: Image.Image | None) -> str:
    """The writable suffix of an opened image's format; ``.png`` for other formats or no image."""
    return _PILLOW_SUFFIX.get(img.format or "", ".png") if img is not None else ".png"


def _open_pillow(data: bytes) -> Image.Image | None:
    """The image with its headers parsed (pixels are decoded on demand), or None if Pillow cannot."""
    try:
        with warnings.catch_warnings():  # a JPEG's broken EXIF: read_metadata copes with it
            warnings.simplefilter("ignore")
            return Image.open(io.BytesIO(data))
    except Exception:  # noqa: BLE001 - Pillow's plugins raise many types on data they do not know
        return None


def _declared_samples(img: Image.Image) -> tuple[int, int]:
    """``(channels, bytes per sample)`` of the array an opened image will decode to, from its mode."""
    mode = img.mode
    if mode.startswith("I;16") or mode == "I":
        return 1, 2
    if mode == "F":
        return 1, 4
    if mode in ("1", "L"):
        return 1, 1
    return (4 if "A" in mode or "a" in mode or "transparency" in img.info else 3), 1


def _from_opencv(arr: np.ndarray) -> np.ndarray:
    if arr.ndim == 3 and arr.shape[2] == 3:
        return cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)
    if arr.ndim == 3 and arr.shape[2] == 4:
        return cv2.cvtColor(arr, cv2.COLOR_BGRA2RGBA)
    if arr.ndim == 3 and arr.shape[2] == 1:
        return arr[..., 0]
    return arr


def _from_pillow(img: Image.Image, name: str) -> np.ndarray:
    """Pixels of a Pillow image: grey, RGB or RGBA, keeping 16-bit grey and alpha."""
    try:
        img.load()
        mode = img.mode
        if mode.startswith("I;16"):
            return np.asarray(img).astype(np.int16 if mode.endswith("S") else np.uint16)
        if mode == "I":
            return np.asarray(img).astype(_tiff_sample_type(img) or np.int32)
        if mode == "F":
            return np.asarray(img, np.float32)
        if mode in ("1", "L"):
            return np.asarray(img.convert("L"))
        if "A" in mode or "a" in mode or "transparency" in img.info:
            return np.asarray(img.convert("RGBA"))
        return np.asarray(img.convert("RGB"))
    except Exception as exc:  # noqa: BLE001 - Pillow's decoders raise many types on bad data
        reason = str(exc) or type(exc).__name__
        raise BadMediaError(f"{name}: not a readable image ({reason})".splitlines()[0]) from None


def _tiff_sample_type(img: Image.Image) -> type[np.integer] | None:
    """The integer type a TIFF declares (Pillow widens 16- and 32-bit samples to int32)."""
    tags = getattr(img, "tag_v2", None)
    if img.format != "TIFF" or tags is None:
        return None
    bits, fmt = tags.get(258, (32,)), tags.get(339, (1,))
    bits, fmt = bits[0] if isinstance(bits, tuple) else bits, fmt[0] if isinstance(fmt, tuple) else fmt
    return {(16, 1): np.uint16, (16, 2): np.int16, (32, 1): np.uint32, (32, 2): np.int32}.get((bits, fmt))


def _map_samples(arr: np.ndarray) -> np.ndarray:
    """uint8/uint16/float32 as they are; other sample types mapped as the module docstring says."""
    if arr.dtype in (np.uint8, np.uint16):
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if arr.dtype == np.int8:
        return (arr.astype(np.int16) + 128).astype(np.uint8)
    if arr.dtype == np.int16:
        return (arr.astype(np.int32) + 32768).astype(np.uint16)
    if arr.dtype == np.int32:
        return ((arr.astype(np.int64) + 2**31) >> 16).astype(np.uint16)
    if arr.dtype == np.uint32:
        return (arr >> 16).astype(np.uint16)
    if np.issubdtype(arr.dtype, np.floating):
        return np.clip(np.nan_to_num(arr.astype(np.float32)), 0.0, 1.0)
    raise BadMediaError(f"unsupported pixel type {arr.dtype}")


def _read_animation(
    img: Image.Image, name: str, max_pixels: int | None
) -> tuple[list[np.ndarray], list[int], int | None]:
    """Every frame as shown (RGBA, or RGB when no frame has transparency), each frame's duration, the loop.

    A GIF frame may declare extents beyond the screen, which grow the canvas: each frame's size is
    checked after seeking to it, before it is decoded."""
    frames, durations = [], []
    held, avail = 0, available_memory()
    try:
        for i in range(img.n_frames):
            img.seek(i)
            check_pixels(name, *img.size, max_pixels, what=f"frame {i + 1}")
            held += 4 * img.size[0] * img.size[1]
            if held > avail:
                raise TooLargeError(
                    f"{name}: frame {i + 1}: the animation's frames take more memory than is available; "
                    "skip such files with --max-pixels"
                )
            frames.append(np.asarray(img.convert("RGBA")))
            durations.append(int(img.info.get("duration", 0)))
    except BadMediaError:
        raise
    except Exception as exc:  # noqa: BLE001 - Pillow's decoders raise many types on bad data
        reason = str(exc) or type(exc).__name__
        raise BadMediaError(f"{name}: frame {len(frames) + 1}: not readable ({reason})".splitlines()[0]) from None
    if all(f[..., 3].min() == 255 for f in frames):
        frames = [np.ascontiguousarray(f[..., :3]) for f in frames]
    loop = img.info.get("loop")
    return frames, durations, None if loop is None else int(loop)


def _to_8bit(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint16:
        return ((arr.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    if arr.dtype != np.uint8:
        return np.rint(np.clip(arr, 0.0, 1.0) * 255).astype(np.uint8)
    return arr


def _on_off_alpha(arr: np.ndarray) -> np.ndarray:
    """Alpha rounded to 0 or 255 for GIF, which has no partial transparency (Pillow would make every pixel
    that is not fully transparent opaque, a fringe around upscaled edges)."""
    if arr.ndim != 3 or arr.shape[2] != 4:
        return arr
    out = arr.copy()
    out[..., 3] = np.where(arr[..., 3] >= 128, 255, 0)
    return out


def _on_white(rgba: np.ndarray) -> np.ndarray:
    """8-bit RGBA composited onto white, as viewers show it on a page: what transparent pixels hide is
    not meant to be seen (upscaled, it is often black or noise)."""
    rgb, alpha = rgba[..., :3].astype(np.uint32), rgba[..., 3:].astype(np.uint32)
    return ((rgb * alpha + 255 * (255 - alpha) + 127) // 255).astype(np.uint8)


def encode_image(img: np.ndarray, suffix: str, *, quality: int | None = None) -> bytes:
    """Encode to the format of ``suffix``; JPEG gets 8 bits, and alpha flattened onto white."""
    suffix = suffix.lower()
    if suffix in (".gif", ".apng"):
        return _encode_with_pillow(Picture([img]), suffix, quality=quality, metadata=Metadata())
    arr = img
    if suffix in (".jpg", ".jpeg"):
        arr = _to_8bit(arr)
        if arr.ndim == 3 and arr.shape[2] == 4:
            arr = _on_white(arr)
    elif suffix == ".webp" and arr.dtype == np.uint16:
        arr = _to_8bit(arr)
    if arr.ndim == 3 and arr.shape[2] == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGBA2BGRA)
    params: list[int] = []
    if quality is not None:
        if suffix in (".jpg", ".jpeg"):
            params = [cv2.IMWRITE_JPEG_QUALITY, quality]
        elif suffix == ".webp":
            params = [cv2.IMWRITE_WEBP_QUALITY, quality]
    ok, buf = cv2.imencode(suffix, arr, params)
    if not ok:
        raise BadMediaError(f"cannot encode an image as {suffix}")
    return buf.tobytes()


def encode_picture(pic: Picture, suffix: str, *, quality: int | None = None, strip_metadata: bool = False) -> bytes:
    """Encode every frame, with the ICC profile and EXIF (fitted to the output) unless ``strip_metadata``.

    Still images use OpenCV's encoders, animations Pillow's; an animation cannot become a format that
    holds one frame."""
    suffix = suffix.lower()
    meta = Metadata() if strip_metadata else pic.metadata
    h, w = pic.frames[0].shape[:2]
    animated = pic.animated or suffix in (".gif", ".apng")
    if animated and suffix not in ANIMATED_SUFFIXES:
        raise BadMediaError(
            f"an animation of {len(pic.frames)} frames cannot be written as {suffix}; write .png, .gif or .webp"
        )
    exif = output_exif(meta.exif, w, h)
    colour = pic.frames[0].ndim == 3 or suffix == ".webp"  # WebP holds no grey
    icc = icc_for(meta.icc, colour=colour) if suffix in _METADATA_SUFFIXES else None
    if animated:
        return _encode_with_pillow(pic, suffix, quality=quality, metadata=Metadata(icc, exif))
    data = encode_image(pic.frames[0], suffix, quality=quality)
    return embed_metadata(data, suffix, icc=icc, exif=exif, size=(w, h))


def _encode_with_pillow(pic: Picture, suffix: str, *, quality: int | None, metadata: Metadata) -> bytes:
    fmt = _SAVE_FORMAT[suffix]
    frames = [Image.fromarray(_on_off_alpha(_to_8bit(f)) if fmt == "GIF" else _to_8bit(f)) for f in pic.frames]
    options: dict[str, object] = {}
    if len(frames) > 1:
        options |= {"save_all": True, "append_images": frames[1:], "duration": pic.durations_ms or 100}
        if fmt == "GIF" and frames[0].mode == "RGBA":
            options["disposal"] = 2  # each frame is a whole picture: clear before drawing the next
        if pic.loop is not None:
            options["loop"] = pic.loop
    if fmt == "WEBP":
        options |= {"quality": quality} if quality is not None else {"lossless": True}
    if fmt != "GIF":
        if metadata.icc:
            options["icc_profile"] = metadata.icc
        if metadata.exif:
            options["exif"] = b"Exif\x00\x00" + metadata.exif
    buf = io.BytesIO()
    frames[0].save(buf, fmt, **options)
    return buf.getvalue()


def write_image(path: str | Path, img: np.ndarray, *, quality: int | None = None) -> None:
    """Encode and write atomically: the file appears under ``path`` only when complete."""
    write_picture(path, Picture([img]), quality=quality, strip_metadata=True)


def upscale_picture_file(
    up: Upscaler, src: str | Path, dst: str | Path, *, quality: int | None = None, strip_metadata: bool = False
) -> None:
    """Read ``src``, upscale every frame with the engine ``up`` and write ``dst`` atomically.

    Frames declaring more than the engine's ``max_pixels``, and images whose upscaling would need more
    memory than is available, are refused before any work (:class:`~.limits.TooLargeError`)."""
    pic = load_picture(src, max_pixels=up.options.max_pixels, fits=functools.partial(up.check_memory, str(src)))
    check_picture_memory(up, pic, str(src))  # formats only OpenCV reads declare nothing beforehand
    write_picture(dst, pic.map(up.upscale), quality=quality, strip_metadata=strip_metadata)


def check_picture_memory(up: Upscaler, pic: Picture, name: str) -> None:
    """:meth:`Upscaler.check_memory` for the largest frame of ``pic``."""
    frame = max(pic.frames, key=lambda f: f.shape[0] * f.shape[1])
    channels = frame.shape[2] if frame.ndim == 3 else 1
    up.check_memory(name, frame.shape[0], frame.shape[1], channels, frame.dtype.itemsize, len(pic.frames))


def write_picture(path: str | Path, pic: Picture, *, quality: int | None = None, strip_metadata: bool = False) -> None:
    """:func:`encode_picture` to ``path`` (the format of its suffix), written atomically."""
    path = Path(path)
    data = encode_picture(pic, path.suffix, quality=quality, strip_metadata=strip_metadata)
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)

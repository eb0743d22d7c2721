"""Reading and writing still images (PNG, JPEG, WebP, TIFF, BMP, ...) with OpenCV.

Arrays are H×W (grey), H×W×3 (RGB) or H×W×4 (RGBA), uint8 or uint16, in RGB order.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import BadMediaError
from .files import atomic_output

# OpenCV's own warnings would duplicate our one-line errors.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".ppm", ".pgm", ".pnm"})
FORMATS = {"png": ".png", "jpg": ".jpg", "jpeg": ".jpg", "webp": ".webp", "tiff": ".tiff", "bmp": ".bmp"}


def decode_image(data: bytes, name: str = "<stdin>") -> np.ndarray:
    """Decode encoded image bytes; raises :class:`BadMediaError` naming ``name``."""
    if not data:
        raise BadMediaError(f"{name}: empty file")
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise BadMediaError(f"{name}: not a readable image (unknown format, truncated or corrupt)")
    if arr.dtype not in (np.uint8, np.uint16):
        if arr.dtype == np.float32:
            arr = np.clip(arr, 0.0, 1.0)
        else:
            raise BadMediaError(f"{name}: unsupported pixel type {arr.dtype}")
    if arr.ndim == 3 and arr.shape[2] == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = cv2.cvtColor(arr, cv2.COLOR_BGRA2RGBA)
    elif arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    return arr


def read_image(path: str | Path) -> np.ndarray:
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BadMediaError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise BadMediaError(f"{path}: is a folder") from None
    except OSError as exc:
        raise BadMediaError(f"{path}: cannot read ({exc.strerror})") from None
    return decode_image(data, str(path))


def encode_image(img: np.ndarray, suffix: str, *, quality: int | None = None) -> bytes:
    """Encode to the format of ``suffix``; JPEG gets 8 bits and no alpha."""
    suffix = suffix.lower()
    arr = img
    if suffix in (".jpg", ".jpeg"):
        if arr.ndim == 3 and arr.shape[2] == 4:
            arr = arr[..., :3]
        if arr.dtype == np.uint16:
            arr = (arr.astype(np.uint32) * 255 + 32767) // 65535
            arr = arr.astype(np.uint8)
    elif suffix == ".webp" and arr.dtype == np.uint16:
        arr = ((arr.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
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


def write_image(path: str | Path, img: np.ndarray, *, quality: int | None = None) -> None:
    """Encode and write atomically: the file appears under ``path`` only when complete."""
    path = Path(path)
    data = encode_image(img, path.suffix, quality=quality)
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)

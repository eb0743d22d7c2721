"""Refusing inputs too large to decode or upscale, before any of their pixels are allocated.

A decompression bomb is a small file whose header declares a huge image (a GIF frame of 65535x65535
in a 28 KB file): decoding it would take gigabytes and bring the kernel's OOM killer down on a whole
batch. Every decoder path asks :func:`check_pixels` with the size a header declares before it decodes,
and a run asks the engine's memory estimate (:meth:`upscale.engine.Upscaler.check_memory`) before it
starts on a frame.
"""

from __future__ import annotations

from ..errors import BadMediaError

__all__ = ["DEFAULT_MAX_PIXELS", "TooLargeError", "check_pixels"]

DEFAULT_MAX_PIXELS = 300_000_000
"""Declared pixels per frame above which an input is refused unread (``--max-pixels``): above a
16000x16000 scan (256 MP), far below what a bomb declares (GIF and PNG allow up to 4.3 and 4.6e18)."""


class TooLargeError(BadMediaError):
    """An input whose size exceeds ``--max-pixels`` or the memory its upscaling would need."""


def check_pixels(name: str, width: int, height: int, max_pixels: int | None, *, what: str = "") -> None:
    """Raise :class:`TooLargeError` when a ``width``x``height`` frame exceeds ``max_pixels`` (None: no limit).

    ``what`` names the part of the file (``frame 2``), for animations and videos.
    """
    if max_pixels is None or width * height <= max_pixels:
        return
    where = f"{what}: " if what else ""
    raise TooLargeError(
        f"{name}: {where}declares {width}x{height} pixels ({width * height / 1e6:,.0f} MP), more than "
        f"--max-pixels {max_pixels:,}; raise --max-pixels if the file is genuine"
    )

"""Keeping what image libraries print while decoding out of the terminal.

libtiff prints its warnings (``TIFFFetchNormalTag: ...``, ``TIFFFillStrip: ...``) straight onto the
process's stderr, and Pillow raises ``UserWarning``s: hundreds of lines over a folder of odd TIFFs, even
with ``-q``. :func:`decoder_messages` collects both while a file is decoded and logs them as one line
for that file at INFO level, which ``-v`` shows; the file's error, if decoding fails, stays the error.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator

log = logging.getLogger("upscale.io")

_LOCK = threading.Lock()
"""File descriptor 2 is the process's: one capture at a time (others decode uncaptured meanwhile)."""
_SHOWN = 3
"""Messages quoted in the file's line; the rest are counted."""


@contextlib.contextmanager
def decoder_messages(name: str) -> Iterator[None]:
    """Collect Python warnings and C-level stderr output while decoding ``name``; log them in one line
    (also when decoding fails: they may say why)."""
    messages: list[str] = []
    try:
        with contextlib.ExitStack() as stack:
            caught = stack.enter_context(warnings.catch_warnings(record=True))
            warnings.simplefilter("always")
            if _LOCK.acquire(blocking=False):
                stack.callback(_LOCK.release)
                stack.enter_context(_captured_fd2(messages))
            try:
                yield
            finally:
                messages += [str(w.message) for w in caught]
    finally:
        lines = [line.strip() for text in messages for line in text.splitlines() if line.strip()]
        if lines:
            more = f" (and {len(lines) - _SHOWN} more)" if len(lines) > _SHOWN else ""
            log.info("%s: decoder warnings: %s%s", name, "; ".join(lines[:_SHOWN]), more)


@contextlib.contextmanager
def _captured_fd2(into: list[str]) -> Iterator[None]:
    """Point file descriptor 2 at a temporary file, and append what was written there to ``into``."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable stderr: nothing to keep quiet
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            into.append(sink.read(64 * 1024).decode("utf-8", "replace"))

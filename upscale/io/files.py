"""Writing outputs safely: a temporary name in the target folder, renamed only when complete."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def temp_name(final: Path) -> Path:
    """A hidden sibling of ``final`` that keeps its suffix (encoders pick the format from it)."""
    return final.with_name(f".{final.stem}.{secrets.token_hex(4)}.part{final.suffix}")


@contextmanager
def atomic_output(final: str | Path) -> Iterator[Path]:
    """Yield a temporary path; rename it to ``final`` if the block succeeds, delete it otherwise."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(final)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # writers such as safetensors create private (0600) files
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def write_durably(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` all at once, on disk before it is renamed into place (a record that
    must survive a kill or a power cut whole or not at all)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def sync(path: Path) -> None:
    """Flush a finished file to disk, so that it is whole once renamed into place."""
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _umask() -> int:
    """The process umask (reading it means setting it; the stand-in meanwhile is the strictest)."""
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False

"""Turning command-line inputs (files, folders, globs) into (source, output) jobs for a batch."""

from __future__ import annotations

import glob
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

import click

from .common import scale_label

_GLOB_CHARS = set("*?[")
_OUTPUT_NAME = re.compile(r"(.+)_x\d+(?:\.\d+)?$")


@dataclass(frozen=True)
class Job:
    src: Path
    dst: Path


Failure = tuple[str, str]
"""``(input, reason)`` for an input that cannot be processed."""


def is_earlier_output(path: Path, suffixes: Collection[str]) -> bool:
    """``clip_x2.mp4`` beside ``clip.mkv``: an earlier run's output, not another input."""
    m = _OUTPUT_NAME.match(path.stem)
    return m is not None and any(
        p.suffix.lower() in suffixes for p in path.parent.glob(glob.escape(m.group(1)) + ".*") if p != path
    )


def expand_inputs(
    inputs: list[str], *, suffixes: Collection[str], noun: str, recursive: bool
) -> tuple[list[tuple[Path, Path | None]], list[Failure]]:
    """Files to process, each with the folder its output path mirrors (None for files named directly).

    Folders give their files with one of ``suffixes`` (not hidden ones, nor earlier outputs beside
    their source); patterns with ``*?[`` are globs (``**`` with ``recursive``).
    """
    found: list[tuple[Path, Path | None]] = []
    errors: list[Failure] = []
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            files = sorted(
                p
                for p in path.glob("**/*" if recursive else "*")
                if p.is_file() and p.suffix.lower() in suffixes and not p.name.startswith(".")
            )
            files = [p for p in files if not is_earlier_output(p, suffixes)]
            if not files:
                errors.append((item, f"no {noun} in this folder" + ("" if recursive else " (try --recursive)")))
            found += [(p, path) for p in files]
        elif path.exists():
            found.append((path, None))
        elif _GLOB_CHARS & set(item):
            matches = sorted(Path(p) for p in glob.glob(item, recursive=recursive) if Path(p).is_file())
            if not matches:
                errors.append((item, "no file matches this pattern"))
            parts = Path(item).parts
            first = next(i for i, part in enumerate(parts) if _GLOB_CHARS & set(part))
            base = Path(*parts[:first]) if first else Path()
            found += [(p, base) for p in matches]
        else:
            errors.append((item, "no such file"))
    return found, errors


def plan_jobs(
    found: list[tuple[Path, Path | None]],
    output: Path | None,
    *,
    scale: float,
    suffix_of: Callable[[Path], str],
    file_suffixes: Collection[str],
    noun: str,
) -> tuple[list[Job], list[Failure]]:
    """Output paths: ``{stem}_x{scale}{suffix}`` beside each source, or under ``output`` mirroring the
    folders inputs were found in; ``output`` names a file when it has one of ``file_suffixes``."""
    names_file = output is not None and not output.is_dir() and output.suffix.lower() in file_suffixes
    first_seen: dict[Path, tuple[Path, Path | None]] = {}
    for src, base in found:
        first_seen.setdefault(src.resolve(), (src, base))
    unique = list(first_seen.values())
    if names_file and len(unique) > 1:
        raise click.UsageError(f"-o {output} names one file, but there are {len(unique)} {noun}; give a folder")
    jobs: list[Job] = []
    errors: list[Failure] = []
    taken: dict[Path, Path] = {}
    for src, base in unique:
        name = f"{src.stem}_{scale_label(scale)}{suffix_of(src)}"
        if output is None:
            dst = src.with_name(name)
        elif names_file:
            dst = output
        else:
            dst = output / (src.parent.relative_to(base) if base is not None else Path()) / name
        key = dst.resolve()
        if key in taken:  # clip.mp4 and clip.mkv would both become clip_x2.mp4
            errors.append((str(src), f"its output {dst} is also {taken[key]}'s; process it on its own"))
            continue
        taken[key] = src
        jobs.append(Job(src, dst))
    return jobs, errors

"""Turning command-line inputs (files, folders, globs) into (source, output) jobs for a batch."""

from __future__ import annotations

import glob
import os
import re
import sys
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import click

from ..jobs import JobRecord
from .console import notice, scale_label

_GLOB_CHARS = set("*?[")
_OUTPUT_NAME = re.compile(r"(.+)_x\d+(?:\.\d+)?$")


@dataclass(frozen=True)
class Job:
    src: Path
    dst: Path


Failure = tuple[str, str]
"""``(input, reason)`` for an input that cannot be processed."""


def is_earlier_output(path: Path, suffixes: Collection[str]) -> bool:
    """``clip_x2.mp4`` beside ``clip.mkv`` (or ``clip_mkv_x2.mp4``, named apart from another clip's
    output): an earlier run's output, not another input."""
    m = _OUTPUT_NAME.match(path.stem)
    if m is None:
        return False
    stem = m.group(1)
    base, _, ext = stem.rpartition("_")
    patterns = [glob.escape(stem) + ".*"] + ([glob.escape(base) + "." + glob.escape(ext)] if base and ext else [])
    return any(p.suffix.lower() in suffixes for pat in patterns for p in path.parent.glob(pat) if p != path)


def expand_inputs(
    inputs: list[str],
    *,
    suffixes: Collection[str],
    noun: str,
    recursive: bool,
    ignored: list[Path] | None = None,
) -> tuple[list[tuple[Path, Path | None]], list[Failure]]:
    """Files to process, each with the folder its output path mirrors (None for files named directly).

    Folders give their files with one of ``suffixes`` (not hidden ones, nor earlier outputs beside
    their source); their other visible files are added to ``ignored``, so the summary can say so.
    Patterns with ``*?[`` are globs (``**`` with ``recursive``).
    """
    found: list[tuple[Path, Path | None]] = []
    errors: list[Failure] = []
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            visible = sorted(
                p
                for p in path.glob("**/*" if recursive else "*")
                if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if ignored is not None:
                ignored += [p for p in visible if p.suffix.lower() not in suffixes]
            files = [p for p in visible if p.suffix.lower() in suffixes and not is_earlier_output(p, suffixes)]
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
    folders inputs were found in; ``output`` names a file when it has one of ``file_suffixes``.

    Inputs whose outputs would share a name are told apart before anything runs (see
    :func:`_separate`); the few that still clash fail, each on its own line.
    """
    names_file = output is not None and not output.is_dir() and output.suffix.lower() in file_suffixes
    first_seen: dict[Path, tuple[Path, Path | None]] = {}
    for src, base in found:
        first_seen.setdefault(src.resolve(), (src, base))
    unique = list(first_seen.values())
    if names_file and len(unique) > 1:
        raise click.UsageError(f"-o {output} names one file, but there are {len(unique)} {noun}; give a folder")
    if output is not None:
        check_output(output, folder=not names_file, count=len(unique), noun=noun)
    label = scale_label(scale)
    jobs: list[Job] = []
    for src, base in unique:
        name = f"{src.stem}_{label}{suffix_of(src)}"
        if output is None:
            dst = src.with_name(name)
        elif names_file:
            dst = output
        else:
            dst = output / (src.parent.relative_to(base) if base is not None else Path()) / name
        jobs.append(Job(src, dst))
    if not names_file:
        jobs = _separate(jobs, {src: base for src, base in unique}, output, label, suffix_of)
    errors: list[Failure] = []
    taken: dict[Path, Path] = {}
    kept: list[Job] = []
    for job in jobs:
        key = job.dst.resolve()
        if key in taken:  # e.g. two folders given, each with an a.png, flattened into one -o DIR
            errors.append((str(job.src), f"its output {job.dst} is also {taken[key]}'s; process it on its own"))
            continue
        taken[key] = job.src
        kept.append(job)
    return kept, errors


def check_output(output: Path, *, folder: bool, count: int, noun: str) -> None:
    """Fail before any work, on one line, when ``output`` cannot be made: it or a folder above it is a file."""
    if folder and output.exists() and not output.is_dir():
        what = f"{count} {noun} need a folder" if count > 1 else "give a folder, or a file name with a known suffix"
        raise click.ClickException(f"{output}: is a file, not a folder; {what}")
    for parent in output.parents:
        if parent.exists():
            if not parent.is_dir():
                raise click.ClickException(f"{output}: {parent} is a file, not a folder; choose another output")
            return


def _clashes(jobs: list[Job]) -> list[list[int]]:
    """Indices of jobs sharing one output path, per path, in input order."""
    groups: dict[Path, list[int]] = {}
    for i, job in enumerate(jobs):
        groups.setdefault(job.dst.resolve(), []).append(i)
    return [group for group in groups.values() if len(group) > 1]


def _separate(
    jobs: list[Job],
    bases: dict[Path, Path | None],
    output: Path | None,
    label: str,
    suffix_of: Callable[[Path], str],
) -> list[Job]:
    """Give inputs that would share an output name their own, deterministically, saying so in one notice.

    First, files named directly (not found in a folder) that clash in ``output`` keep their folders
    relative to their common parent; then outputs that still clash (``a.jpg`` and ``a.png`` with
    ``--format png``) take the source's extension into the name (``a_jpg_x2.png``, ``a_png_x2.png``).
    """
    jobs = list(jobs)
    said: list[str] = []
    if output is not None:
        for group in _clashes(jobs):
            named = [i for i in group if bases[jobs[i].src] is None]
            if len(named) < 2:
                continue
            parents = [jobs[i].src.resolve().parent for i in named]
            common = Path(os.path.commonpath(parents))
            for i, parent in zip(named, parents, strict=True):
                jobs[i] = Job(jobs[i].src, output / parent.relative_to(common) / jobs[i].dst.name)
            said.append(f"{len(named)} files named directly keep their folders relative to {common}")
    for group in _clashes(jobs):
        suffixes = [jobs[i].src.suffix.lower() for i in group]
        if len(set(suffixes)) < len(suffixes):
            continue  # the extension would not tell them apart: they fail in plan_jobs
        for i in group:
            src = jobs[i].src
            name = f"{src.stem}_{src.suffix.lstrip('.').lower()}_{label}{suffix_of(src)}"
            jobs[i] = Job(src, jobs[i].dst.with_name(name))
        said.append(f"{' and '.join(jobs[i].dst.name for i in group)} carry their source's extension")
    if said:
        notice(f"some outputs would share a name: {'; '.join(said)}")
    return jobs


@dataclass
class Tally:
    """What a batch did, for its summary line and exit code."""

    done: int = 0
    resumed: int = 0
    """Finished by an earlier, interrupted run of the same job."""
    skipped: int = 0
    failed: int = 0
    ignored: list[Path] = field(default_factory=list)
    """Files in the given folders that were not taken (not of the command's kind)."""
    total: int | None = None
    """Inputs of the batch, when the summary should start with their number."""

    def summary(self, *, interrupted: bool = False, noun: str = "images") -> str:
        """``[4 images: ]3 upscaled, 0 skipped, 1 failed[, interrupted][; ignored 2 files that are not
        images (.mp4, .txt)]``."""
        text = f"{self.total} {noun}: " if self.total is not None else ""
        text += f"{self.done} upscaled, "
        if self.resumed:
            text += f"{self.resumed} done before, "
        text += f"{self.skipped} skipped, {self.failed} failed"
        if interrupted:
            text += ", interrupted"
        if self.ignored:
            n = len(self.ignored)
            kinds = sorted({p.suffix.lower() or "no extension" for p in self.ignored})
            one = noun.removesuffix("s")
            article = "an" if one[0] in "aeiou" else "a"
            what = f"file that is not {article} {one}" if n == 1 else f"files that are not {noun}"
            text += f"; ignored {n} {what} ({', '.join(kinds)})"
        return text


@contextmanager
def batch_outcome(
    tally: Tally, *, quiet: bool, noun: str = "images", record: JobRecord | None = None
) -> Iterator[Tally]:
    """Run a batch's loop: then say what it did on stderr and exit 1 if anything failed. Ctrl-C stops
    it with the same summary and exit code 130 (outputs are written atomically, so none is partial).

    The job ``record`` is removed when nothing failed, and kept (for a rerun to resume) otherwise.
    """
    try:
        yield tally
    except KeyboardInterrupt:
        if record is not None:
            record.close(finished=False)
        click.echo(tally.summary(interrupted=True, noun=noun), err=True)
        sys.exit(130)
    if record is not None:
        record.close(finished=not tally.failed)
    if not quiet:
        click.echo(tally.summary(noun=noun), err=True)
    if tally.failed:
        sys.exit(1)

"""Resumable jobs: a small record kept beside the outputs of ``upscale images`` and ``upscale video`` while
a job is unfinished, so that rerunning the same command after any interruption (``kill -9`` included)
continues where it stopped.

A job folder (hidden, in the folder the outputs go to, or ``--job DIR``) holds:

- ``job.json``, written once: the record's format, what the job is (command, inputs, output), the
  settings that shape its result, and the outputs that existed before it began (not the job's own);
- ``done.jsonl``, one line appended per finished output (append-only, so a job of 100 000 files writes
  100 000 short lines rather than rewriting a growing file; a line cut short by a kill is ignored);
- ``video/<key>/``, the segments of a video in progress (see :mod:`upscale.io.segments`).

Every output is renamed into place only when complete, and its line is written just after; an output the
job made whose line a kill prevented is made again. The folder is removed when the job ends with nothing
left to do.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from .errors import UpscaleError
from .io.files import write_durably

log = logging.getLogger("upscale.jobs")

JOB_FORMAT = 1
"""Version of the record's layout; a record of another format is refused (``--restart`` starts over)."""
RECORD = "job.json"
DONE = "done.jsonl"
PREFIX = ".upscale-job-"


class JobError(UpscaleError):
    """A job record that cannot be resumed: of other settings, another version, or unreadable."""


def _version() -> str:
    import upscale

    return str(upscale.__version__)


def job_folder(kind: str, inputs: Iterable[str], output: Path | None, outputs: Iterable[Path]) -> Path:
    """Where a job's record lives when ``--job`` is not given: a hidden folder, named after the command, its
    inputs and ``-o``, in the folder that holds all its outputs."""
    key = json.dumps([kind, sorted(os.path.abspath(i) for i in inputs), os.path.abspath(output or "")])
    parents = [os.path.abspath(p.parent) for p in outputs]
    home = Path(os.path.commonpath(parents)) if parents else Path.cwd()
    return home / f"{PREFIX}{hashlib.sha1(key.encode()).hexdigest()[:10]}"


def fingerprint(model: Any) -> str:
    """A short hash of a network's weights, which says whether two runs use the same ones wherever their
    files came from."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


class JobRecord:
    """An open job: what it is, what it has finished, and where its partial work lives."""

    def __init__(self, folder: Path, meta: dict[str, Any], done: dict[str, dict[str, Any]]) -> None:
        self.folder = folder
        self.meta = meta
        self._done = done
        self._preexisting = set(meta.get("preexisting", []))
        self._log: TextIO | None = None
        self.resumed = False
        """Whether the record was there before this run."""

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(
        cls,
        folder: Path,
        *,
        kind: str,
        inputs: list[str],
        output: Path | None,
        settings: dict[str, Any],
        outputs: Iterable[Path],
        restart: bool = False,
    ) -> JobRecord:
        """Resume the job recorded in ``folder``, or begin one there.

        A record of other settings, of another version, or that cannot be read raises :class:`JobError`
        naming the difference; ``restart`` discards it instead (outputs it had written stay the job's own,
        so they are redone without ``--overwrite``; an unreadable record cannot say which those were).
        """
        folder = folder.absolute()
        identity = {"kind": kind, "inputs": [os.path.abspath(i) for i in inputs], "output": str(output or "")}
        settings = json.loads(json.dumps(settings))
        earlier: set[str] | None = None
        if (folder / RECORD).exists():
            try:
                old = cls._read(folder)
                if not restart:
                    old._check(identity, settings)
                    log.info("job record: %s (resumed, %d outputs done)", folder / RECORD, len(old._done))
                    old.resumed = True
                    return old
                earlier = old._preexisting
            except JobError:
                if not restart:
                    raise
            shutil.rmtree(folder, ignore_errors=True)
        elif folder.exists() and any(folder.iterdir()) and not restart:
            raise JobError(f"{folder}: is not empty and holds no job record; choose another --job folder")
        if earlier is None:
            earlier = {str(p.absolute()) for p in outputs if p.exists()}
        meta = {
            "format": JOB_FORMAT,
            "upscale": _version(),
            **identity,
            "settings": settings,
            "created": time.time(),
            "preexisting": sorted(earlier),
        }
        try:
            folder.mkdir(parents=True, exist_ok=True)
            write_durably(folder / RECORD, json.dumps(meta, indent=1))
        except OSError as exc:
            raise JobError(f"{folder}: cannot keep a job record here ({exc.strerror or exc})") from None
        log.info("job record: %s (new)", folder / RECORD)
        return cls(folder, meta, {})

    @classmethod
    def _read(cls, folder: Path) -> JobRecord:
        path = folder / RECORD
        try:
            meta = json.loads(path.read_text())
            fmt = meta["format"]
            meta["settings"], meta["kind"], meta["inputs"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else f"{type(exc).__name__}: {exc}"
            raise JobError(f"{path}: the job record is unreadable ({reason}); --restart starts over") from None
        if fmt != JOB_FORMAT or meta.get("upscale") != _version():
            raise JobError(
                f"{path}: the job was started by upscale {meta.get('upscale', '?')} (record format {fmt}), "
                f"this is {_version()}; finish it with that version, or --restart to start over"
            )
        done: dict[str, dict[str, Any]] = {}
        with contextlib.suppress(FileNotFoundError), open(folder / DONE) as f:
            for line in f:
                try:
                    entry = json.loads(line)
                    done[entry["dst"]] = entry
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by a kill
        return cls(folder, meta, done)

    def _check(self, identity: dict[str, Any], settings: dict[str, Any]) -> None:
        path = self.folder / RECORD
        for key, value in identity.items():
            if self.meta.get(key) != value:
                raise JobError(f"{path}: holds a job of other {key}; give another --job folder, or --restart")
        old = self.meta["settings"]
        for key in sorted(set(old) | set(settings)):
            if old.get(key) != settings.get(key):
                raise JobError(
                    f"{path}: the job was started with {key} {_show(old.get(key))}, this run has "
                    f"{_show(settings.get(key))}; rerun with the same settings, or --restart to start over"
                )

    # ------------------------------------------------------------------ progress
    @property
    def path(self) -> Path:
        return self.folder / RECORD

    def owns(self, dst: Path) -> bool:
        """Whether ``dst`` is this job's to write over: it did not exist when the job began."""
        return str(dst.absolute()) not in self._preexisting

    def is_done(self, src: Path, dst: Path) -> bool:
        """Whether ``dst`` was finished by this job from ``src`` as it is now. (An output renamed into
        place just before a kill, without its line, is done again: ``owns`` lets it be replaced.)"""
        entry = self._done.get(str(dst.absolute()))
        return entry is not None and _stat(src) == (entry["size"], entry["mtime_ns"]) and dst.exists()

    def mark_done(self, src: Path, dst: Path) -> None:
        size, mtime_ns = _stat(src) or (0, 0)
        entry = {"dst": str(dst.absolute()), "src": str(src.absolute()), "size": size, "mtime_ns": mtime_ns}
        self._done[entry["dst"]] = entry
        if self._log is None:
            self._log = open(self.folder / DONE, "a")  # noqa: SIM115 - kept open for the whole job
        self._log.write(json.dumps(entry) + "\n")
        self._log.flush()
        os.fsync(self._log.fileno())
        shutil.rmtree(self.work_folder(dst), ignore_errors=True)

    def work_folder(self, dst: Path) -> Path:
        """A folder for ``dst``'s partial work (a video's segments), kept until the job ends."""
        key = hashlib.sha1(str(dst.absolute()).encode()).hexdigest()[:12]
        return self.folder / "video" / key

    def close(self, *, finished: bool) -> None:
        """Stop recording. The record is removed when the job is ``finished`` (nothing left to do), or when
        it holds nothing worth resuming (no output finished, no partial work)."""
        if self._log is not None:
            self._log.close()
            self._log = None
        if finished or not (self._done or (self.folder / "video").exists()):
            shutil.rmtree(self.folder, ignore_errors=True)
        else:
            log.info("job record kept: %s (rerun the same command to resume)", self.path)


def _show(value: Any) -> str:
    return "none" if value is None else str(value)

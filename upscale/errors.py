"""Exceptions raised by the library; the CLI turns them into one-line errors."""

from __future__ import annotations


def one_line(exc: BaseException) -> str:
    """A failure in one line: the library's own message, else the type and the first line of the message."""
    if isinstance(exc, UpscaleError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


class UpscaleError(Exception):
    """Base class. ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class UnknownModelError(UpscaleError, KeyError):
    """A model name that the registry does not know."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DuplicateModelError(UpscaleError, ValueError):
    """Two models registered under one name."""


class UnsupportedScaleError(UpscaleError, ValueError):
    """The model has no variant for the requested scale."""


class WeightsError(UpscaleError):
    """A weights file is missing, unreadable, unsafe or of another architecture."""


class BadMediaError(UpscaleError):
    """An input file is not a readable image or video."""


class OutputExistsError(UpscaleError):
    """The output exists and neither --overwrite nor --skip-existing was given."""

"""Talking to the user on stderr: one-line errors, notices, -q/-v and logging. Light to import (no torch),
for the commands that only list or convert things."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from tqdm import tqdm

from ..errors import UpscaleError

log = logging.getLogger("upscale")


def click_error(exc: UpscaleError) -> click.ClickException:
    """The one-line click error for a library error, exiting with the error's own code."""
    err = click.ClickException(str(exc))
    err.exit_code = exc.exit_code
    return err


class _BarSafeHandler(logging.StreamHandler):
    """Log lines on stderr through ``tqdm.write``, which moves a progress bar out of the way first
    (a plain stream handler would append the line to the bar's)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


def setup_logging(quiet: bool, verbose: int) -> None:
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s", handlers=[_BarSafeHandler()], force=True)


def verbosity_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``-q``/``-v`` on a sub-command; sets up logging and passes ``quiet`` on."""

    @click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr; no progress bar.")
    @click.option("-v", "--verbose", count=True, help="More log output on stderr (-vv for debug).")
    @functools.wraps(func)
    def wrapper(*args: Any, quiet: bool, verbose: int, **kwargs: Any) -> Any:
        setup_logging(quiet, verbose)
        return func(*args, quiet=quiet, **kwargs)

    return wrapper


def notice(text: str) -> None:
    """One line on stderr that -q silences: shown while logging lets warnings through, as the progress bars are."""
    if log.isEnabledFor(logging.WARNING):
        click.echo(text, err=True)


def scale_label(scale: float) -> str:
    """``4`` -> ``x4``, ``2.5`` -> ``x2.5``."""
    return f"x{int(scale)}" if float(scale).is_integer() else f"x{scale:g}"


def error_line(path: str | Path, reason: str) -> None:
    """Report one failed file on stderr without stopping the batch."""
    text = str(reason)
    prefix = f"{path}: "
    tqdm.write(f"Error: {text if text.startswith(prefix) else prefix + text}", file=sys.stderr)

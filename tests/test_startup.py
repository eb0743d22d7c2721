"""Commands that only print stay light: ``upscale --help``, ``upscale models`` and ``upscale weights list``
import no torch, and the command list in the help is each command's own summary."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest

from upscale.cli import _COMMANDS, main


def imported_modules(*args: str) -> set[str]:
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "upscale", *args],
        capture_output=True,
        text=True,
        check=False,
        env={"UPSCALE_OFFLINE": "1", "PATH": "", "HOME": "/nonexistent"},
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return {line.split("|")[-1].strip() for line in run.stderr.splitlines() if line.startswith("import time:")}


@pytest.mark.parametrize("args", [("--help",), ("weights", "list"), ("models",)])
def test_listing_commands_do_not_import_torch(args: tuple[str, ...]) -> None:
    modules = imported_modules(*args)
    assert "click" in modules  # the import log was read
    assert "torch" not in modules


def test_help_lists_each_commands_own_summary() -> None:
    ctx = click.Context(main)
    for name, (_, summary) in _COMMANDS.items():
        command = main.get_command(ctx, name)
        assert command is not None
        assert command.get_short_help_str(limit=1000) == summary, name


def test_import_upscale_is_light_until_the_engine_is_used() -> None:
    code = "import sys, upscale; assert 'torch' not in sys.modules; upscale.Upscaler; assert 'torch' in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)

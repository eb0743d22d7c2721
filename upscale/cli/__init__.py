"""The ``upscale`` command. Each sub-command lives in its own module and is imported on use."""

from __future__ import annotations

import importlib

import click

# name -> "module:attribute"; one line per command.
_COMMANDS = {
    "images": "upscale.cli.images:images",
    "models": "upscale.cli.models:models",
    "weights": "upscale.cli.weights:weights",
    "video": "upscale.cli.video:video",
    "pipe": "upscale.cli.pipe:pipe",
    "eval": "upscale.cli.eval:eval_command",
    "bench": "upscale.cli.bench:bench",
    "train": "upscale.cli.train:train",
    "interpolate": "upscale.cli.interpolate:interpolate",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = _COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="upscale")
def main() -> None:
    """Image and video super-resolution: upscale images, videos and pipes; evaluate and benchmark models.

    Every command takes -h for its options; -q/-v on a command set how much it logs to stderr.
    """

"""The ``upscale`` command. Each sub-command lives in its own module and is imported on use."""

from __future__ import annotations

import importlib

import click

from ..memory import keep_freed_memory

# name -> ("module:attribute", summary). The summary is what ``upscale --help`` lists, so the help
# needs no command module (and no torch); a test keeps it equal to each command's own first line.
_COMMANDS = {
    "bench": (
        "upscale.cli.bench:bench",
        "Time MODEL on synthetic frames: frames/s, output megapixels/s, latency, GFLOP/s, peak memory.",
    ),
    "eval": (
        "upscale.cli.eval:eval_command",
        "Evaluate MODEL on folders of HR images: PSNR and SSIM on Y, per image and mean, beside bicubic.",
    ),
    "images": (
        "upscale.cli.images:images",
        "Upscale images: files, folders, globs, or '-' for one image on stdin (written to stdout).",
    ),
    "interpolate": (
        "upscale.cli.interpolate:interpolate",
        "Blend two weight files: OUTPUT = (1 - ALPHA)·A + ALPHA·B, tensor by tensor.",
    ),
    "models": (
        "upscale.cli.models:models",
        "List the models: scales, colour space, input, parameters, the weights a bare name runs with.",
    ),
    "pipe": (
        "upscale.cli.pipe:pipe",
        "Upscale a YUV4MPEG2 stream (4:2:0, 4:2:2, 4:4:4 or grey; 8 to 16 bits) from stdin to stdout.",
    ),
    "train": ("upscale.cli.train:train", "Train MODEL on folders of HR images with its paper's recipe."),
    "video": ("upscale.cli.video:video", "Upscale videos: files or folders of them, one after another."),
    "weights": (
        "upscale.cli.weights:weights",
        "Official checkpoints: list them, download them into the cache, convert files to safetensors.",
    ),
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = _COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target[0].split(":")
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from the summaries above, without importing any command."""
        limit = formatter.width - 6 - max(map(len, _COMMANDS))
        rows = [(name, click.utils.make_default_short_help(summary, limit)) for name, (_, summary) in _COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(sorted(rows))


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="upscale")
def main() -> None:
    """Image and video super-resolution: upscale images, videos and pipes; evaluate and benchmark models.

    Every command takes -h for its options; -q/-v on a command set how much it logs to stderr.
    """
    keep_freed_memory()

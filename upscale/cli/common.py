"""Options shared by the commands that run a model, and the one-line error style."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from tqdm import tqdm

from ..engine import EngineOptions, Upscaler
from ..errors import UpscaleError
from ..io.files import same_file
from ..models import REGISTRY, LoadedModel, default_model_name, default_weights, load_model, model_of_weights

log = logging.getLogger("upscale")


class TileParam(click.ParamType):
    name = "PIXELS|auto"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int | str:
        if isinstance(value, int) or value == "auto":
            return value
        try:
            n = int(value)
        except ValueError:
            self.fail(f"{value!r} is not 'auto' or a whole number of pixels", param, ctx)
        if n < 0:
            self.fail("must be 0 (no tiling) or a positive number of pixels", param, ctx)
        return n


def click_error(exc: UpscaleError) -> click.ClickException:
    """The one-line click error for a library error, exiting with the error's own code."""
    err = click.ClickException(str(exc))
    err.exit_code = exc.exit_code
    return err


def setup_logging(quiet: bool, verbose: int) -> None:
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s", force=True)


def verbosity_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``-q``/``-v`` on a sub-command; sets up logging and passes ``quiet`` on."""

    @click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr; no progress bar.")
    @click.option("-v", "--verbose", count=True, help="More log output on stderr (-vv for debug).")
    @functools.wraps(func)
    def wrapper(*args: Any, quiet: bool, verbose: int, **kwargs: Any) -> Any:
        setup_logging(quiet, verbose)
        return func(*args, quiet=quiet, **kwargs)

    return wrapper


def _apply(func: Callable[..., Any], decorators: list[Callable[..., Any]]) -> Callable[..., Any]:
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def weights_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--scale``, ``--weights`` and ``--offline``."""
    return _apply(
        func,
        [
            click.option(
                "-s",
                "--scale",
                type=click.IntRange(1),
                default=None,
                help="Model scale (default: the weights' or the model's; SRCNN .mat files do not record theirs).",
            ),
            click.option(
                "--weights",
                default=None,
                metavar="PATH|NAME",
                help="Weights file (safetensors, .pth, .mat; official layouts converted) or a known checkpoint name. "
                "Default: the model's bundled weights, else its official checkpoint (see 'upscale models').",
            ),
            click.option(
                "--offline",
                is_flag=True,
                help="Never download: use bundled or cached weights only (also UPSCALE_OFFLINE=1).",
            ),
        ],
    )


def model_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--model``, ``--scale`` and ``--weights``."""
    model = click.option(
        "-m",
        "--model",
        default=None,
        metavar="NAME",
        help=f"Model ({', '.join(REGISTRY.names())}). Default: the best with bundled weights.",
    )
    return model(weights_options(func))


def device_options(*, precision: str = "auto", tile: str = "auto") -> Callable[[Callable[..., Any]], Any]:
    """``--device``, ``--precision``, ``--tile`` and ``--tile-pad``, with the given defaults."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        return _apply(
            func,
            [
                click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1, mps."),
                click.option(
                    "--precision",
                    type=click.Choice(["auto", "fp32", "fp16", "bf16"]),
                    default=precision,
                    show_default=True,
                    help="auto = fp16 on CUDA, fp32 elsewhere.",
                ),
                click.option(
                    "--tile",
                    type=TileParam(),
                    default=tile,
                    show_default=True,
                    help="Tile size in input pixels; 0 = no tiling; auto fits device memory.",
                ),
                click.option(
                    "--tile-pad",
                    type=click.IntRange(0),
                    default=None,
                    help="Context around each tile in input pixels (default: the model's receptive field).",
                ),
            ],
        )

    return decorate


def engine_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Model options plus the engine's device, precision, tiling, batching and output scale."""
    func = _apply(
        func,
        [
            click.option(
                "--batch-size",
                type=click.IntRange(1),
                default=None,
                help="Tiles (or frames) per forward pass (default: 4 on a GPU, 1 on the CPU).",
            ),
            click.option(
                "--outscale",
                type=click.FloatRange(0, min_open=True),
                default=None,
                help="Final scale: the model's output is resized to it (e.g. 2 with a x4 model).",
            ),
        ],
    )
    return model_options(device_options()(func))


def build_upscaler(
    *,
    model: str | None,
    scale: int | None,
    weights: str | None,
    device: str = "auto",
    precision: str = "auto",
    tile: int | str = "auto",
    tile_pad: int | None = None,
    batch_size: int | None = None,
    outscale: float | None = None,
    offline: bool = False,
) -> Upscaler:
    """Load the model and start the engine; any problem becomes a one-line :class:`click.ClickException`.

    ``offline`` False leaves the choice to ``UPSCALE_OFFLINE``.
    """
    try:
        # --weights FILE alone: the file says which model it holds (its metadata, else its tensors).
        name = model or (model_of_weights(weights) if weights is not None else default_model_name())
        loaded = load_announced(name, scale=scale, weights=weights, offline=offline)
        up = Upscaler(
            loaded,
            EngineOptions(
                device=device,
                precision=precision,  # type: ignore[arg-type]
                tile=tile,  # type: ignore[arg-type]
                tile_pad=tile_pad,
                batch_size=batch_size,
                outscale=outscale,
            ),
        )
    except UpscaleError as exc:
        raise click.ClickException(str(exc)) from None
    log.info(
        "model %s x%d (%s), %s, %s", loaded.spec.name, loaded.scale, loaded.weights or "no weights", up.device, up.dtype
    )
    return up


def load_announced(name: str, *, scale: int | None, weights: str | None, offline: bool = False) -> LoadedModel:
    """:func:`load_model`, saying on stderr which weights the run uses (``model esrgan x4, weights:
    esrgan-official (cache)``), unless -q.

    Default weights are announced before loading, so the line explains a download that follows; a given
    ``--weights`` after, once the file has told its scale. ``offline`` False leaves it to ``UPSCALE_OFFLINE``.
    """
    spec = REGISTRY.get(name)
    if scale is not None:
        spec.check_scale(scale)
    if weights is None:
        if not spec.needs_weights:
            notice(f"model {spec.name} x{scale or spec.default_scale} (no weights)")
        elif (choice := default_weights(spec, scale)) is not None:
            notice(f"model {spec.name} x{choice.scale}, weights: {choice.label}")
    loaded = load_model(name, scale=scale, weights=weights, offline=True if offline else None)
    if weights is not None:
        notice(f"model {spec.name} x{loaded.scale}, weights: {weights}")
    return loaded


def notice(text: str) -> None:
    """One line on stderr that -q silences: shown while logging lets warnings through, as the progress bars are."""
    if log.isEnabledFor(logging.WARNING):
        click.echo(text, err=True)


def existing_output_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--skip-existing`` / ``--overwrite``, as ``existing='fail'|'skip'|'overwrite'``."""

    @click.option("--skip-existing", is_flag=True, help="Leave outputs that exist alone.")
    @click.option("--overwrite", is_flag=True, help="Replace outputs that exist (inputs are never replaced).")
    @functools.wraps(func)
    def wrapper(*args: Any, skip_existing: bool, overwrite: bool, **kwargs: Any) -> Any:
        if skip_existing and overwrite:
            raise click.UsageError("--skip-existing and --overwrite exclude each other")
        existing = "skip" if skip_existing else "overwrite" if overwrite else "fail"
        return func(*args, existing=existing, **kwargs)

    return wrapper


def output_allowed(src: Path, dst: Path, sources: set[Path], existing: str) -> bool | None:
    """Whether to write ``dst``: True, None to skip it, False after reporting why not.

    ``sources`` are the resolved inputs of the whole batch, none of which is ever overwritten.
    """
    if dst.resolve() in sources or same_file(src, dst):
        error_line(dst, "is an input; refusing to overwrite it")
        return False
    if dst.exists():
        if existing == "skip":
            return None
        if existing != "overwrite":
            error_line(dst, "exists (use --overwrite or --skip-existing)")
            return False
    return True


def scale_label(scale: float) -> str:
    """``4`` -> ``x4``, ``2.5`` -> ``x2.5``."""
    return f"x{int(scale)}" if float(scale).is_integer() else f"x{scale:g}"


def error_line(path: str | Path, reason: str) -> None:
    """Report one failed file on stderr without stopping the batch."""
    text = str(reason)
    prefix = f"{path}: "
    tqdm.write(f"Error: {text if text.startswith(prefix) else prefix + text}", file=sys.stderr)

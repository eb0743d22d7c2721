"""Options shared by the commands that run a model, and the one-line error style."""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ..engine import DTYPES, EngineOptions, Upscaler
from ..errors import UpscaleError
from ..io.files import same_file
from ..io.limits import DEFAULT_MAX_PIXELS
from ..jobs import JobError, JobRecord, fingerprint, job_folder
from ..models import REGISTRY, LoadedModel, default_model_name, default_weights, load_model, model_of_weights
from ..models.foreign import is_foreign
from ..models.loading import recorded_scale
from .batch import Job, Tally
from .console import error_line, notice

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


class DeviceParam(click.ParamType):
    """``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``, or several joined by commas; anything else is a
    usage error."""

    name = "DEVICE"
    _ONE = r"(auto|cpu|mps|cuda(:\d+)?)"
    _SYNTAX = re.compile(rf"{_ONE}(,{_ONE})*")

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        if not self._SYNTAX.fullmatch(str(value)):
            self.fail(
                f"{value!r} is not a device; use auto, cpu, cuda, cuda:N or mps, or several joined by commas",
                param,
                ctx,
            )
        return str(value)


class ClusterParam(click.ParamType):
    """``local``, ``local:N``, ``auto`` or ``ray://HOST:PORT``."""

    name = "local[:N]|auto|ray://HOST:PORT"
    _SYNTAX = re.compile(r"local(:[1-9]\d*)?|auto|ray://[^/:]+:\d+")

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        if not self._SYNTAX.fullmatch(str(value)):
            self.fail(f"{value!r} is not a cluster; use local, local:N, auto or ray://HOST:PORT", param, ctx)
        return str(value)


def cluster_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--cluster``: run the batch on a Ray cluster (``pip install upscale[cluster]``)."""
    return click.option(
        "--cluster",
        type=ClusterParam(),
        default=None,
        help="Spread the work over a Ray cluster: local[:N] starts one here with N workers, auto joins the "
        "running one, ray://HOST:PORT connects to one. Paths must be visible to every node.",
    )(func)


def join_cluster(address: str | None) -> None:
    """Join ``--cluster`` before any work, so that an unreachable one is a one-line error at once."""
    if address is None:
        return
    from ..cluster import connect

    try:
        connect(address)
    except UpscaleError as exc:
        raise click.ClickException(str(exc)) from None


def known_model(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``-m`` callback: an unknown name is a usage error that lists the known ones."""
    if value is not None and value not in REGISTRY:
        raise click.BadParameter(f"unknown model '{value}'; known models: {', '.join(REGISTRY.names())}")
    return value


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
        callback=known_model,
        help=f"Model ({', '.join(REGISTRY.names())}). Default: the best with bundled weights.",
    )
    return model(weights_options(func))


def device_options(*, precision: str = "auto", tile: str = "auto") -> Callable[[Callable[..., Any]], Any]:
    """``--device``, ``--precision``, ``--tile`` and ``--tile-pad``, with the given defaults."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        return _apply(
            func,
            [
                click.option(
                    "--device",
                    type=DeviceParam(),
                    default="auto",
                    show_default=True,
                    help="auto, cpu, cuda, cuda:1, mps; cuda:0,cuda:1 deals frames to both GPUs in turn.",
                ),
                click.option(
                    "--precision",
                    type=click.Choice(["auto", "fp32", "fp16", "bf16"]),
                    default=precision,
                    show_default=True,
                    help="auto = fp16 on CUDA (bf16 after an overflow, where native); bf16 on CPUs with native bf16 "
                    "for models checked in it; else fp32.",
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
                click.option(
                    "--compile",
                    "compile_net",
                    is_flag=True,
                    help="Compile the network with torch.compile: faster on some devices once each frame size "
                    "has compiled (which takes a while).",
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
                "--denoise",
                type=click.FloatRange(0, 1),
                default=None,
                metavar="0..1",
                help="-m compact: blend realesr-general-x4v3 (1) with its weak-denoise twin realesr-general-wdn-x4v3 "
                "(0), as Real-ESRGAN's --denoise_strength (default there: 0.5); both are fetched on first use.",
            ),
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
            click.option(
                "--max-pixels",
                type=click.IntRange(0),
                default=DEFAULT_MAX_PIXELS,
                show_default=True,
                callback=lambda _ctx, _param, value: value or None,  # 0: no limit, as the readers take it
                help="Refuse inputs whose frames declare more pixels than this, before decoding them "
                "(decompression bombs); 0: no limit.",
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
    denoise: float | None = None,
    compile_net: bool = False,
    offline: bool = False,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    real_world: bool = False,
) -> Upscaler:
    """Load the model and start the engine; any problem becomes a one-line :class:`click.ClickException`.

    ``offline`` False leaves the choice to ``UPSCALE_OFFLINE``. Without a model or weights, ``real_world``
    (videos, pipes) prefers a bundled model made for real inputs.
    """
    try:
        # --weights FILE alone: the file says which model it holds (its metadata, else its tensors).
        name = model or (
            model_of_weights(weights) if weights is not None else default_model_name(real_world=real_world)
        )
        if denoise is None:
            loaded = load_announced(name, scale=scale, weights=weights, offline=offline)
        else:
            loaded = load_denoised(name, scale=scale, weights=weights, denoise=denoise, offline=offline)
        up = Upscaler(
            loaded,
            EngineOptions(
                device=device,
                precision=precision,  # type: ignore[arg-type]
                tile=tile,  # type: ignore[arg-type]
                tile_pad=tile_pad,
                batch_size=batch_size,
                outscale=outscale,
                compile=compile_net,
                max_pixels=max_pixels,
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
    if is_foreign(name):  # a file of an architecture outside the zoo, loaded with spandrel
        loaded = load_model(name, scale=scale, weights=weights)
        notice(f"model {loaded.spec.name} x{loaded.scale}, weights: {weights}")
        return loaded
    spec = REGISTRY.get(name)
    if scale is not None:
        spec.check_scale(scale)
    elif weights is not None and spec.any_scale:
        scale = _scale_of_weights(weights, spec.scales)
    no_network = True if offline else None  # None: UPSCALE_OFFLINE decides
    if weights is None:
        if not spec.needs_weights:
            notice(f"model {spec.name} x{scale or spec.default_scale} (no weights)")
        elif (choice := default_weights(spec, scale, offline=no_network)) is not None:
            notice(f"model {spec.name} x{choice.scale}, weights: {choice.label}")
    loaded = load_model(name, scale=scale, weights=weights, offline=no_network)
    if weights is not None:
        notice(f"model {spec.name} x{loaded.scale}, weights: {weights}")
    return loaded


def load_denoised(name: str, *, scale: int | None, weights: str | None, denoise: float, offline: bool) -> LoadedModel:
    """``--denoise``: realesr-general-x4v3 blended with its weak-denoise twin; a usage error with any other
    model or weights (there is no twin to blend them with)."""
    from ..models.compact import COMPACT_SPEC, GENERAL, GENERAL_WDN, denoised_general

    if name != COMPACT_SPEC.name or (weights is not None and weights.lower() != GENERAL):
        given = f"--weights {weights}" if weights is not None and name == COMPACT_SPEC.name else f"model '{name}'"
        raise click.UsageError(
            f"--denoise blends {GENERAL} with {GENERAL_WDN}, so it works with -m {COMPACT_SPEC.name} only, not {given}"
        )
    notice(f"model {name} x4, weights: {GENERAL} + {GENERAL_WDN} blended at denoise {denoise:g}")
    return denoised_general(denoise, scale=scale, offline=True if offline else None, registry=REGISTRY)


def _scale_of_weights(weights: str, scales: tuple[int, ...]) -> int | None:
    """The scale that weights of a scale-free network (SRCNN, DRCN) were trained for: recorded in the
    file, or in the catalogue entry of a checkpoint name. Their tensors do not say, so without either
    the run would silently use some default: ``--scale`` is asked for instead. None for a missing
    file, which the loader reports."""
    path = Path(weights).expanduser()
    if not path.is_file() and (path.exists() or path.suffix or "/" in weights):
        return None
    if path.is_file():
        recorded = recorded_scale(path)
        if recorded is not None:
            return recorded
        shown = ", ".join(str(s) for s in scales)
        raise click.UsageError(
            f"--weights {weights}: the file does not record the scale it was trained for; "
            f"pass it with --scale ({shown})"
        )
    from ..hub import find  # a catalogue name such as ``srcnn-915-x3``

    return find(weights).scale


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


def job_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--job DIR`` and ``--restart``: where a batch keeps its record, and discarding it."""
    return _apply(
        func,
        [
            click.option(
                "--job",
                "job_dir",
                type=click.Path(file_okay=False, path_type=Path),
                default=None,
                help="Keep the job record (what is finished, for resuming) in this folder "
                "(default: a hidden folder beside the outputs).",
            ),
            click.option(
                "--restart",
                is_flag=True,
                help="Discard an unfinished job's record and start over (its outputs are redone).",
            ),
        ],
    )


def engine_settings(up: Upscaler, *, cluster: bool = False) -> dict[str, Any]:
    """What of the engine shapes a job's result, as its record keeps it. On a ``cluster`` each worker
    resolves ``--precision auto`` for its own device, so the option is kept rather than this machine's
    choice."""
    opts = up.options
    precision = next(name for name, dtype in DTYPES.items() if dtype == up.dtype)
    return {
        "model": up.spec.name,
        "weights": fingerprint(up.model.module),
        "scale": up.model_scale,
        "precision": opts.precision if cluster else precision,
        "tile": opts.tile,
        "tile pad": up.tile_pad,
        "outscale": opts.outscale,
    }


def open_job(
    kind: str,
    inputs: list[str],
    output: Path | None,
    outputs: list[Path],
    settings: dict[str, Any],
    *,
    job_dir: Path | None,
    restart: bool,
) -> JobRecord:
    """The batch's job record (resumed or new), or a one-line error for one that cannot be resumed."""
    folder = job_dir or job_folder(kind, inputs, output, outputs)
    try:
        record = JobRecord.open(
            folder, kind=kind, inputs=inputs, output=output, settings=settings, outputs=outputs, restart=restart
        )
    except JobError as exc:
        raise click.ClickException(str(exc)) from None
    if record.resumed:
        notice(f"resuming the unfinished job recorded in {record.folder}")
    return record


def to_run(job: Job, record: JobRecord | None, sources: set[Path], existing: str, tally: Tally) -> bool:
    """Whether a batch's ``job`` still needs running; if not, counted in ``tally`` (finished by an earlier
    run of the job, skipped, or failed after a one-line error). Outputs the job made are its own to
    replace; other existing outputs follow ``existing``."""
    if record is not None and record.is_done(job.src, job.dst):
        tally.resumed += 1
        return False
    allowed = output_allowed(
        job.src, job.dst, sources, "overwrite" if record is not None and record.owns(job.dst) else existing
    )
    tally.skipped += allowed is None
    tally.failed += allowed is False
    return bool(allowed)


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

"""Whether the training crop fits the network and the recipe's losses, checked before training starts.

Networks and losses bound the crop from below: RLFN's attention pools a strided grid, the VGG of a
perceptual loss pools four times, the SRGAN discriminator halves its input four times, SRCNN's loss
drops 6 pixels at each edge, batch norm needs more than one value per channel. Rather than a table of
those bounds, which would go stale as the zoo and the recipes change, the loop builds the objective for
the run's crop and runs the generator's and the discriminator's losses once on a synthetic batch of
that size. When that fails, it searches the smallest crop (a multiple of the scale) that passes, so the
error names it: doubling, then bisecting, which assumes that a crop larger than one that fits fits too
(true of pooling, strides, cropping and batch norm alike). The search builds its objectives with a
random VGG: only shapes matter there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace

import torch
from torch import nn

from ..errors import UpscaleError
from ..models.registry import ModelSpec
from .data import Batch
from .objectives import ForwardAll, LossSetup, Objective, PatchSizeError

SEARCH_LIMIT = 1024
"""Largest crop side tried when looking for one that fits; a failure up to it is not about the crop size."""

ObjectiveBuilder = Callable[[int, LossSetup], Objective]
"""``build(patch, setup)``: the run's objective for crops of side ``patch``, its modules on the run's device."""


class _NotFinite(ValueError):
    """The probe's loss was NaN or infinite (an empty crop makes a mean of nothing)."""


def objective_modules(objective: Objective) -> list[nn.Module]:
    """The networks an objective holds: its trained extras and its frozen loss networks."""
    found = [*objective.extra.values(), *(v for v in vars(objective).values() if isinstance(v, nn.Module))]
    return list({id(m): m for m in found}.values())


def probe(
    objective: Objective, net: nn.Module, spec: ModelSpec, scale: int, patch: int, batch: int, device: torch.device
) -> Exception | None:
    """Run the generator's and the discriminator's losses once on a synthetic batch of ``patch``-px crops.

    Returns the failure, or None. The networks stay in their modes (batch norm in training mode fails on a
    single value per channel, as training would); their buffers (batch-norm statistics) are restored and
    the global random state is untouched, so a probed run trains exactly as an unprobed one.
    """
    channels = 1 if spec.colour == "y" else 3
    generator = torch.Generator().manual_seed(0)
    hr = torch.rand(batch, channels, patch, patch, generator=generator)
    small = torch.rand(batch, channels, patch // scale, patch // scale, generator=generator)
    synthetic = Batch((hr if spec.input_kind == "bicubic" else small).to(device), hr.to(device), small.to(device))
    run_net = ForwardAll(net) if objective.uses_forward_all else net
    buffers = [(b, b.detach().clone()) for m in (net, *objective_modules(objective)) for b in m.buffers()]
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=cuda), torch.no_grad():
            loss, _, sr = objective.loss(run_net, synthetic, 0)
            if not torch.isfinite(loss).all():
                return _NotFinite(f"the loss of a synthetic batch of {patch}-px crops is {float(loss)}")
            objective.discriminator_step(synthetic, sr, lambda _: None)
    except UpscaleError:
        raise
    except (RuntimeError, ValueError, IndexError) as exc:
        return exc
    finally:
        with torch.no_grad():
            for b, saved in buffers:
                b.copy_(saved)
    return None


def checked_objective(
    build: ObjectiveBuilder,
    setup: LossSetup,
    net: nn.Module,
    spec: ModelSpec,
    *,
    scale: int,
    patch: int,
    given_patch: int,
    batch: int,
    device: torch.device,
    recipe: str,
) -> Objective:
    """The objective for ``patch``-px crops, once a synthetic batch has gone through it.

    Raises :class:`PatchSizeError` naming the smallest crop that works when ``patch`` is too small; a
    failure that no crop size cures is raised as it is. ``given_patch`` is the ``--patch`` asked for
    (``patch`` is it rounded down to a multiple of the scale).
    """
    try:
        objective = build(patch, setup)
    except (PatchSizeError, RuntimeError, ValueError) as exc:  # a network sized by the crop (a discriminator)
        error: Exception | None = exc
        objective = None
    else:
        error = probe(objective, net, spec, scale, patch, batch, device)
    if error is None:
        return objective  # type: ignore[return-value]
    smallest = smallest_patch(
        build, replace(setup, random_vgg=True), net, spec, scale=scale, above=patch, batch=batch, device=device
    )
    if smallest is None:
        if isinstance(error, _NotFinite) and objective is not None:
            return objective  # not about the size: the loop reports a non-finite loss with its iteration
        raise error
    raise PatchSizeError(
        f"--patch {given_patch} is too small to train {spec.name} at x{scale} with recipe {recipe}: "
        f"the smallest patch it accepts is {smallest}"
    )


def smallest_patch(
    build: ObjectiveBuilder,
    setup: LossSetup,
    net: nn.Module,
    spec: ModelSpec,
    *,
    scale: int,
    above: int,
    batch: int,
    device: torch.device,
) -> int | None:
    """The smallest multiple of ``scale`` above the failing crop ``above`` that passes :func:`probe`
    (doubling, then bisecting), or None if none up to :data:`SEARCH_LIMIT` does."""

    def fits(patch: int) -> bool:
        try:
            objective = build(patch, setup)
        except (PatchSizeError, RuntimeError, ValueError):
            return False
        return probe(objective, net, spec, scale, patch, batch, device) is None

    with torch.random.fork_rng(devices=[]):  # building a discriminator or a random VGG draws weights
        bad, good = above // scale, None
        for k in _doubling(bad, SEARCH_LIMIT // scale):
            if fits(k * scale):
                good = k
                break
            bad = k
        if good is None:
            return None
        while good - bad > 1:
            mid = (bad + good) // 2
            if fits(mid * scale):
                good = mid
            else:
                bad = mid
    return good * scale


def _doubling(start: int, limit: int) -> Iterable[int]:
    k = max(1, start)
    while k < limit:
        k = min(2 * k, limit)
        yield k

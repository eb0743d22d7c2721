"""Weights of architectures outside the zoo, loaded with spandrel (``pip install "upscale[models]"``).

`spandrel <https://github.com/chaiNNer-org/spandrel>`_ (the loader of chaiNNer and ComfyUI) recognises
dozens of architectures (SwinIR, HAT, DAT, OmniSR, SPAN, Real-CUGAN, ...) from a state dict's tensors.
A ``--weights FILE`` whose tensors match none of the zoo's layouts is handed to it; the network it
builds runs through this project's engine like any other (tiles, precision, video, pipes, jobs).

The file is read by :func:`~upscale.models.loading.read_state_dict` (safetensors, or
``torch.load(weights_only=True)``), never by spandrel's own loader, and only the state dict reaches
spandrel. Only image-to-image models are accepted (super-resolution, restoration), not inpainting.

The spec built from spandrel's descriptor cannot know the network's receptive field, so tiled output
only approximates untiled output (``exact_tiling=False``); models whose windows are laid on a fixed grid
(SwinIR, HAT, DAT) or that look at the whole image depend on where a tile starts, however wide its
margin. spandrel marks the latter ``DISCOURAGED`` and they get a wider margin.
"""

from __future__ import annotations

import importlib
import logging
import math
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import WeightsError
from .loading import LoadedModel, read_state_dict
from .registry import ModelSpec, StateDict

log = logging.getLogger("upscale.models")

SPANDREL = "spandrel"
"""The model name :func:`~upscale.models.model_of_weights` gives a file none of the zoo's layouts
matches; the loaded model is named ``spandrel:<architecture>`` (``spandrel:SwinIR``)."""
EXTRA = 'pip install "upscale[models]"'
MARGIN_PX = {"SUPPORTED": 32, "DISCOURAGED": 64, "INTERNAL": 64}
"""Tile margin in input pixels by spandrel's ``ModelTiling``: a guess where spandrel says nothing of
the receptive field (see the module)."""
_LUMA = (0.299, 0.587, 0.114)
"""BT.601 weights turning RGB into the grey a one-channel model reads (OpenCV's RGB2GRAY)."""


def is_foreign(name: str | None) -> bool:
    """Whether a model name stands for a spandrel architecture (``spandrel``, ``spandrel:SwinIR``)."""
    return name is not None and (name == SPANDREL or name.startswith(SPANDREL + ":"))


def import_spandrel() -> tuple[ModuleType | None, str]:
    """spandrel, or None and why it cannot be used. Any exception on importing it counts: a torchvision
    that does not fit the installed torch raises RuntimeError rather than ImportError."""
    try:
        return importlib.import_module("spandrel"), ""
    except ModuleNotFoundError as exc:
        if exc.name == "spandrel":
            return None, "spandrel is not installed"
        why = f"ModuleNotFoundError: {exc}"
    except Exception as exc:  # noqa: BLE001 - a broken install is as unusable as a missing one
        why = f"{type(exc).__name__}: {exc}"
    first = why.strip().splitlines()[0] if why.strip() else "unknown error"
    return None, f"importing spandrel failed ({first})"


def describe_tensors(sd: StateDict, shown: int = 3) -> str:
    """``12 tensors: conv.weight 16x3x3x3, conv.bias 16, head.weight 3x16x3x3, ...``"""
    items = list(sd.items())
    parts = [f"{k} {'x'.join(str(d) for d in v.shape) or 'scalar'}" for k, v in items[:shown]]
    more = ", ..." if len(items) > shown else ""
    return f"{len(items)} tensor{'s' if len(items) != 1 else ''}: {', '.join(parts)}{more}"


class SpandrelNet(nn.Module):
    """A spandrel network as the engine calls networks: ``N×3×H×W`` RGB in [0, 1] to ``N×3×sH×sW``.

    Pads the input to spandrel's size requirements (a no-op behind the engine, which pads to
    ``size_multiple`` and ``min_size_px`` itself, except for a square requirement) and crops the output;
    turns RGB into grey for a one-channel input and repeats a one-channel output. Calls the network the
    way spandrel's descriptor does (some return a tuple, or want their input rescaled).
    """

    no_fusion = True
    """:func:`~upscale.fusion.fuse_for_cpu` leaves it alone: tracing runs a forward written elsewhere,
    which may change the network (SPAN recomputes its weights in every forward)."""

    def __init__(
        self,
        net: nn.Module,
        call: Callable[[nn.Module, torch.Tensor], torch.Tensor] | None,
        *,
        scale: int,
        in_channels: int,
        out_channels: int,
        minimum: int = 0,
        multiple: int = 1,
        square: bool = False,
    ) -> None:
        super().__init__()
        self.net = net
        self.call = call
        self.scale = scale
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.minimum = minimum
        self.multiple = multiple
        self.square = square

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.in_channels == 1 and x.shape[1] == 3:
            w = torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
            x = (x * w).sum(dim=1, keepdim=True)
        h, w_ = x.shape[-2:]
        need_h = math.ceil(max(h, self.minimum) / self.multiple) * self.multiple
        need_w = math.ceil(max(w_, self.minimum) / self.multiple) * self.multiple
        if self.square:
            need_h = need_w = max(need_h, need_w)
        if (need_h, need_w) != (h, w_):
            # As spandrel pads: reflection as far as it reaches, then replication.
            ref_w, ref_h = min(need_w - w_, w_ - 1), min(need_h - h, h - 1)
            x = F.pad(x, (0, ref_w, 0, ref_h), mode="reflect")
            x = F.pad(x, (0, need_w - w_ - ref_w, 0, need_h - h - ref_h), mode="replicate")
        y = self.net(x) if self.call is None else self.call(self.net, x)
        y = y[..., : h * self.scale, : w_ * self.scale]
        if self.out_channels == 1:
            y = y.repeat(1, 3, 1, 1)
        return y


def _not_buildable(**_: Any) -> nn.Module:
    raise WeightsError("a spandrel architecture is built from its weights file; pass --weights FILE")


def _call_of(descriptor: Any) -> Callable[[nn.Module, torch.Tensor], torch.Tensor] | None:
    """How spandrel's descriptor calls its network, or None for a plain ``net(x)``. spandrel keeps it
    privately (``_call_fn``); its default is a lambda, which plain pickle cannot carry (Ray's can)."""
    call = getattr(descriptor, "_call_fn", None)
    if call is None or getattr(call, "__qualname__", "").startswith("ImageModelDescriptor.__init__"):
        return None
    return call


def spec_of(descriptor: Any) -> ModelSpec:
    """A :class:`ModelSpec` from spandrel's ``ImageModelDescriptor``."""
    arch = descriptor.architecture
    req = descriptor.size_requirements
    tiling = getattr(descriptor.tiling, "name", "SUPPORTED")
    return ModelSpec(
        name=f"{SPANDREL}:{arch.id}",
        build=_not_buildable,
        scales=(descriptor.scale,),
        title=f"{arch.name} via spandrel ({', '.join([descriptor.purpose, *descriptor.tags])})",
        colour="rgb",
        input_kind="lr",
        value_range=1.0,
        margin_px=max(MARGIN_PX.get(tiling, 64), 2 * req.multiple_of),
        exact_tiling=False,
        min_size_px=max(1, req.minimum),
        size_multiple=max(1, req.multiple_of),
        supports_half=bool(descriptor.supports_half),
        supports_bf16=bool(descriptor.supports_bfloat16),
        needs_weights=True,
    )


def load_foreign(sd: StateDict, *, origin: str, scale: int | None = None) -> LoadedModel:
    """Build the network spandrel recognises in ``sd`` (read safely beforehand) as a :class:`LoadedModel`.

    Raises :class:`WeightsError` in one line where spandrel cannot be imported, does not recognise the
    tensors, cannot build what it recognised, or builds something other than an image-to-image model.
    """
    spandrel, why = import_spandrel()
    if spandrel is None:
        hint = f"{origin}: holds no architecture of the zoo; {EXTRA} to load it with spandrel (SwinIR, HAT, DAT, ...)"
        raise WeightsError(hint if why == "spandrel is not installed" else f"{hint}: {why}")
    state = spandrel.canonicalize_state_dict(dict(sd))
    try:
        descriptor = spandrel.ModelLoader().load_from_state_dict(state)
    except spandrel.UnsupportedModelError:
        raise WeightsError(
            f"{origin}: holds weights of no architecture the zoo or spandrel knows ({describe_tensors(state)})"
        ) from None
    except Exception as exc:  # noqa: BLE001 - an architecture's loader may fail any way on odd tensors
        arch = _detected(spandrel, state)
        what = f"spandrel takes it for {arch} but" if arch else "spandrel"
        detail = (str(exc).strip().splitlines() or [""])[0]
        raise WeightsError(
            f"{origin}: {what} could not build it ({type(exc).__name__}{': ' + detail if detail else ''})"
        ) from None
    arch_name = descriptor.architecture.name
    if not isinstance(descriptor, spandrel.ImageModelDescriptor):
        raise WeightsError(
            f"{origin}: holds a {arch_name} {descriptor.purpose.lower()} model (image and mask in); "
            "upscale runs image-to-image models only"
        )
    cin, cout = descriptor.input_channels, descriptor.output_channels
    if cin not in (1, 3) or cout not in (1, 3):
        raise WeightsError(
            f"{origin}: holds a {arch_name} model with {cin}-channel input and {cout}-channel output; "
            "upscale runs RGB and greyscale models only"
        )
    spec = spec_of(descriptor)
    if scale is not None and scale != descriptor.scale:
        raise WeightsError(f"{origin}: holds '{spec.name}' weights for x{descriptor.scale}, not x{scale}")
    req = descriptor.size_requirements
    module = SpandrelNet(
        descriptor.model,
        _call_of(descriptor),
        scale=descriptor.scale,
        in_channels=cin,
        out_channels=cout,
        minimum=req.minimum,
        multiple=req.multiple_of,
        square=req.square,
    )
    if spec.margin_px > MARGIN_PX["SUPPORTED"]:
        log.info("%s: spandrel discourages tiling %s; tiles may show seams (--tile 0 runs untiled)", origin, arch_name)
    return LoadedModel(spec, module.eval(), descriptor.scale, origin)


def load_foreign_file(weights: str | Path | None, *, scale: int | None = None) -> LoadedModel:
    """:func:`load_foreign` on a weights file, read with :func:`read_state_dict`."""
    if weights is None:
        raise WeightsError(f"model '{SPANDREL}' has no weights of its own; pass --weights FILE")
    path = Path(weights).expanduser()
    return load_foreign(read_state_dict(path), origin=str(path), scale=scale)


def _detected(spandrel: ModuleType, sd: StateDict) -> str | None:
    """The name of the first spandrel architecture whose detection accepts ``sd``."""
    for support in spandrel.MAIN_REGISTRY.architectures("detection"):
        try:
            if support.detect(sd):
                return support.architecture.name
        except Exception:  # noqa: BLE001 - a detector that trips on foreign tensors says no
            continue
    return None

"""Model descriptions (:class:`ModelSpec`) and the :class:`Registry` that maps names to them.

The engine reads only the spec, never the network class: what colour space a model works in,
whether it wants the low-resolution image or a bicubic-upsampled one, its value range and how far
its receptive field reaches are all declared here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

from ..errors import DuplicateModelError, UnknownModelError, UnsupportedScaleError

if TYPE_CHECKING:
    from torch import nn

StateDict = Mapping[str, Any]


@cache
def resolve_network(ref: str) -> Callable[..., nn.Module]:
    """The callable that ``"package.module:name"`` names, imported on first use."""
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class ModelSpec:
    """Everything the engine, the loader and the CLI need to know about one architecture."""

    name: str
    """Lower-case id used on the command line (``rlfn``, ``esrgan``)."""

    build: Callable[..., nn.Module] | str
    """``build(scale=s, **hparams)`` returns an untrained network; a ``"module:name"`` string names it
    without importing it (the network modules import torch), and :attr:`network` resolves it."""

    scales: tuple[int, ...]
    """Scales the architecture is defined for (the published ones)."""

    title: str = ""
    """Paper title and year, for ``upscale models``."""

    fits: str = "clean photos"
    """The inputs the model (with its default weights) is made for, for ``upscale models``: ``clean
    photos`` for networks trained on bicubic downscales, ``real-world photos and video`` for those
    trained on blur, noise and compression."""

    colour: Literal["rgb", "y"] = "rgb"
    """``y``: the network sees the Y of BT.601 YCbCr; Cb and Cr are upscaled by bicubic."""

    input_kind: Literal["lr", "bicubic"] = "lr"
    """``bicubic``: the network takes the input already upsampled to the output size."""

    value_range: float = 1.0
    """Pixel values the network expects: 1.0 for [0, 1], 255.0 for [0, 255]."""

    margin_px: int = 16
    """Context in input pixels a tile needs on each side; the default tile pad is this plus the
    feather. For ``exact_tiling`` models it is the receptive-field radius, so tiled output equals
    untiled output; for the others it is what makes seams invisible in practice."""

    exact_tiling: bool = True
    """False where the result depends on global position (pooling grids, instance statistics),
    so tiled output only approximates untiled output."""

    min_size_px: int = 1
    """Smallest input side the network accepts; smaller inputs are padded by reflection."""

    size_multiple: int = 1
    """Input sides must be a multiple of this; the engine pads and crops."""

    supports_half: bool = True
    supports_bf16: bool = True
    auto_bf16: bool = False
    """``--precision auto`` may pick bf16 on CPUs with native bf16 kernels: set where bf16 output was
    measured to score as fp32 does (a test checks it on Set5)."""

    any_scale: bool = False
    """True where any integer scale works with the same network (pre-upsampling models)."""

    default_hparams: Mapping[str, Any] = field(default_factory=dict)
    """Keyword arguments for ``build`` besides ``scale`` when no weights say otherwise."""

    detect: Callable[[StateDict], bool] | None = None
    """Whether a (converted) state dict belongs to this architecture."""

    convert: Callable[[StateDict], dict[str, Any]] | None = None
    """Maps an official checkpoint layout to this project's key names (identity if absent)."""

    hparams_from: Callable[[StateDict], dict[str, Any]] | None = None
    """Reads ``scale`` and the other ``build`` arguments from tensor shapes."""

    needs_weights: bool = True
    """False for parameter-free models such as bicubic."""

    prefer_official: bool = False
    """A bare model name runs the authors' checkpoint from the catalogue where there is one at that scale,
    even where ``weights/`` has a file: set where the authors' release reproduces the paper and the
    bundled file, trained on a CPU, is the fallback for offline runs that have not cached it."""

    params: Mapping[int, int] = field(default_factory=dict)
    """Parameters per scale of the network built with ``default_hparams``, for ``upscale models``
    without building it (a test checks each count against the built network)."""

    @property
    def network(self) -> Callable[..., nn.Module]:
        """:attr:`build` as a callable, importing its module if it is named by a string."""
        return resolve_network(self.build) if isinstance(self.build, str) else self.build

    def check_scale(self, scale: int) -> int:
        if scale in self.scales or (self.any_scale and isinstance(scale, int) and scale >= 1):
            return scale
        shown = ", ".join(f"x{s}" for s in self.scales) + (" (any integer scale)" if self.any_scale else "")
        raise UnsupportedScaleError(f"model '{self.name}' has no x{scale}; it supports {shown}")

    @property
    def default_scale(self) -> int:
        return 4 if 4 in self.scales else self.scales[-1]


class Registry:
    """An ordered name -> :class:`ModelSpec` map that refuses duplicates and unknown names."""

    def __init__(self, specs: list[ModelSpec] | tuple[ModelSpec, ...] = ()) -> None:
        self._specs: dict[str, ModelSpec] = {}
        for spec in specs:
            self.add(spec)

    def add(self, spec: ModelSpec) -> None:
        if spec.name in self._specs:
            raise DuplicateModelError(f"model '{spec.name}' is registered twice")
        self._specs[spec.name] = spec

    def get(self, name: str) -> ModelSpec:
        try:
            return self._specs[name.lower()]
        except KeyError:
            known = ", ".join(self._specs)
            raise UnknownModelError(f"unknown model '{name}'; known models: {known}") from None

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._specs

    def __iter__(self) -> Iterator[ModelSpec]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    def names(self) -> list[str]:
        return list(self._specs)

    def identify(self, state_dict: StateDict) -> ModelSpec | None:
        """The first architecture whose ``detect`` accepts ``state_dict`` (after its ``convert``)."""
        for spec in self:
            if spec.detect is None:
                continue
            try:
                sd = spec.convert(state_dict) if spec.convert else state_dict
                if spec.detect(sd):
                    return spec
            except Exception:  # noqa: BLE001 - a converter that cannot handle a foreign layout says no
                continue
        return None
